//! What operators do to one pair: acknowledge, snooze, disable, enable and reset.

use super::state::{AlertState, Told};
use crate::alerting::event::AlarmState;

/// What an operator does to one (device, rule) pair (the CLI and the API call these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorAction {
    /// ALARM → ACKNOWLEDGED (no re-notification until it clears); LATCHED → OK.
    Acknowledge,
    /// No notifications before this event time (a time in the past ends a snooze).
    Snooze { until_ms: i64 },
    /// Stop evaluating this pair until enabled (any state → DISABLED).
    Disable,
    /// DISABLED → OK; evaluation resumes with the next reading.
    Enable,
    /// Back to OK from any state but DISABLED, forgetting the alarm; a condition that still
    /// holds raises it again with the next reading.
    Reset,
}

impl OperatorAction {
    pub fn name(self) -> &'static str {
        match self {
            OperatorAction::Acknowledge => "acknowledge",
            OperatorAction::Snooze { .. } => "snooze",
            OperatorAction::Disable => "disable",
            OperatorAction::Enable => "enable",
            OperatorAction::Reset => "reset",
        }
    }

    /// The states the action applies to, as an error message says it.
    pub fn applies_to(self) -> &'static str {
        match self {
            OperatorAction::Acknowledge => "ALARM or LATCHED",
            OperatorAction::Enable => "DISABLED",
            OperatorAction::Disable => "any state but DISABLED",
            OperatorAction::Snooze { .. } | OperatorAction::Reset => "any state but DISABLED",
        }
    }
}

/// Apply an operator's action. Operators' actions are not notified: whoever acted knows, and
/// the API's audit log records it; what subscribers were told is set to the result, so no
/// notification is later sent on account of the action. `Err` carries the state that does not
/// allow it.
pub fn operate(state: &mut AlertState, action: OperatorAction) -> Result<(), AlarmState> {
    let forget_alarm = |state: &mut AlertState, to: AlarmState| {
        state.state = to;
        state.level = None;
        state.told = Some(Told::Ok);
        state.pending_count = 0;
        state.pending_since_ms = None;
        state.alarm_since_ms = None;
        state.suppressed = false;
        state.flapping = false;
        state.changes.clear();
    };
    match (action, state.state) {
        (OperatorAction::Acknowledge, AlarmState::Alarm) => {
            state.state = AlarmState::Acknowledged;
        }
        (OperatorAction::Acknowledge, AlarmState::Latched) => forget_alarm(state, AlarmState::Ok),
        (OperatorAction::Enable, AlarmState::Disabled) => state.state = AlarmState::Ok,
        (OperatorAction::Acknowledge | OperatorAction::Enable, current)
        | (
            OperatorAction::Disable | OperatorAction::Reset | OperatorAction::Snooze { .. },
            current @ AlarmState::Disabled,
        ) => return Err(current),
        (OperatorAction::Disable, _) => {
            forget_alarm(state, AlarmState::Disabled);
            state.snoozed_until_ms = None;
        }
        (OperatorAction::Reset, _) => {
            forget_alarm(state, AlarmState::Ok);
            state.last_notified_ms = None;
        }
        (OperatorAction::Snooze { until_ms }, _) => {
            state.snoozed_until_ms = Some(until_ms);
        }
    }
    Ok(())
}

/// An operator's acknowledgement: only an ALARM (or a LATCHED alarm) can be acknowledged.
pub fn acknowledge(state: &mut AlertState) -> Result<(), AlarmState> {
    operate(state, OperatorAction::Acknowledge)
}

#[cfg(test)]
mod tests {
    use super::super::apply_reading;
    use super::super::test_support::{feed, rule};
    use super::*;
    use crate::alerting::event::EventKind;
    use crate::alerting::rule::{Condition, Severity};

    use AlarmState::Ok as O;

    #[test]
    fn a_disabled_pair_is_not_evaluated_until_enabled_and_reset_forgets_the_alarm() {
        let r = rule(Condition::Above(80.0), None, None);
        let mut state = AlertState::default();
        feed(&r, &mut state, 0, &[90.0]);
        operate(&mut state, OperatorAction::Disable).unwrap();
        assert_eq!(state.state, AlarmState::Disabled);
        assert!(!apply_reading(&r, &mut state, 60_000, 95.0).changed);
        assert_eq!(
            operate(&mut state, OperatorAction::Reset),
            Err(AlarmState::Disabled)
        );
        assert_eq!(
            operate(&mut state, OperatorAction::Snooze { until_ms: 1 }),
            Err(AlarmState::Disabled)
        );
        operate(&mut state, OperatorAction::Enable).unwrap();
        assert_eq!(operate(&mut state, OperatorAction::Enable), Err(O));
        // Enabled while the condition holds: a new alarm, told.
        assert_eq!(
            feed(&r, &mut state, 2, &[95.0]),
            vec![(EventKind::Alarm, Severity::Warning)]
        );
        operate(&mut state, OperatorAction::Reset).unwrap();
        assert_eq!(state.state, O);
        assert_eq!(
            feed(&r, &mut state, 3, &[96.0]),
            vec![(EventKind::Alarm, Severity::Warning)],
            "a condition that still holds raises it again"
        );
    }
}
