//! The alarm state machine for one (device, rule) pair. Pure: readings in, state and events out.
//!
//! ```text
//!   OK ──fires──▶ PENDING ──debounce met──▶ ALARM ──ack──▶ ACKNOWLEDGED
//!    ▲  (or straight to ALARM without debounce)  │                  │
//!    └──────────────── clears ◀──────────────────┴──────────────────┘
//!   PENDING ──stops firing──▶ OK (silently: it never alarmed)
//!   ALARM ──clears, rule latched──▶ LATCHED ──ack──▶ OK   (fires again: ALARM)
//!   any ──disable──▶ DISABLED ──enable──▶ OK;   any but DISABLED ──reset──▶ OK
//! ```
//!
//! Each reading is measured (`measure`: the value, a rate or a predicted level from `trend`,
//! a score from `anomaly`), moves the `state` (`transition`), and `announce` decides what
//! subscribers are told and the device is commanded. Operators act through `operator`.

mod announce;
mod anomaly;
mod measure;
mod operator;
mod state;
#[cfg(test)]
mod test_support;
mod transition;
mod trend;

pub use announce::ActionKind;
pub use anomaly::{
    ANOMALY_SAMPLES_PER_BASELINE, ANOMALY_SPARSE_WARM_UP_SAMPLES, ANOMALY_WARM_UP_SAMPLES,
    Baseline, anomaly_score, baseline_of,
};
pub use operator::{OperatorAction, acknowledge, operate};
pub use state::{AlertState, Told};
pub use transition::{clears, fires};
pub use trend::{FORECAST_SAMPLES_PER_WINDOW, Fit, MIN_FORECAST_POINTS, MIN_FORECAST_R_SQUARED};

use crate::alerting::event::{AlarmEvent, AlarmState};
use crate::alerting::rule::AlertRule;
use announce::{Outcome, announce};
use measure::measure;
use transition::advance;

/// What one reading asks of the caller: a write, a notification, a command.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Step {
    /// The state must be written back.
    pub changed: bool,
    pub event: Option<AlarmEvent>,
    /// A command for the device. It follows the state itself, not what was told: a snooze
    /// quiets people, not the devices' protection. Held back only while the pair flaps.
    pub action: Option<ActionKind>,
}

/// Apply one reading of the rule's metric at event time `time_ms`.
pub fn apply_reading(rule: &AlertRule, state: &mut AlertState, time_ms: i64, value: f64) -> Step {
    evaluate(rule, state, time_ms, value, false)
}

/// Apply one reading whose transitions are recorded but not notified (the device's gateway
/// is silent or suspended); the next reading without suppression announces what remains.
pub fn apply_suppressed_reading(
    rule: &AlertRule,
    state: &mut AlertState,
    time_ms: i64,
    value: f64,
) -> Step {
    evaluate(rule, state, time_ms, value, true)
}

fn evaluate(
    rule: &AlertRule,
    state: &mut AlertState,
    time_ms: i64,
    value: f64,
    suppressed: bool,
) -> Step {
    if !evaluated(rule, state, time_ms) {
        return Step::default();
    }
    let measurement = measure(rule, state, time_ms, value);
    let before = Told::of(state.state, state.level, rule);
    let transition = advance(rule, state, &measurement, time_ms);
    let outcome = Outcome {
        time_ms,
        suppressed,
        before,
        after: Told::of(transition.new, state.level, rule),
        new_state: transition.new,
    };
    let announcement = announce(
        rule,
        state,
        &outcome,
        measurement.changed || transition.changed,
    );
    let measured = measurement.measured.unwrap_or(value);
    let event = announcement.notice.map(|(kind, severity)| AlarmEvent {
        kind,
        old_state: transition.old,
        new_state: transition.new,
        severity,
        time_ms,
        measured,
        prediction: measurement.prediction,
    });
    if announcement.changed {
        state.last_change_ms = Some(time_ms);
        state.last_measured = Some(measured);
    }
    Step {
        changed: announcement.changed,
        event,
        action: announcement.action,
    }
}

/// A disabled rule or pair is not evaluated, nor is a reading no newer than the last change
/// (a redelivered or late reading must not move the state back).
fn evaluated(rule: &AlertRule, state: &AlertState, time_ms: i64) -> bool {
    rule.enabled
        && state.state != AlarmState::Disabled
        && state.last_change_ms.is_none_or(|last| time_ms > last)
}

#[cfg(test)]
mod tests {
    use super::test_support::rule;
    use super::*;
    use crate::alerting::rule::Condition;

    use AlarmState::Alarm as A;

    #[test]
    fn steady_state_writes_nothing() {
        let r = rule(Condition::Above(80.0), None, None);
        let mut state = AlertState::default();
        for i in 0..100 {
            assert!(!apply_reading(&r, &mut state, i * 1000, 20.0).changed);
        }
        apply_reading(&r, &mut state, 100_000, 90.0);
        for i in 101..200 {
            assert!(!apply_reading(&r, &mut state, i * 1000, 90.0).changed);
        }
    }

    #[test]
    fn older_readings_do_not_move_the_state() {
        let r = rule(Condition::Above(80.0), None, None);
        let mut state = AlertState::default();
        apply_reading(&r, &mut state, 10_000, 90.0);
        let step = apply_reading(&r, &mut state, 5_000, 10.0);
        assert_eq!(step, Step::default());
        assert_eq!(state.state, A);
    }
}
