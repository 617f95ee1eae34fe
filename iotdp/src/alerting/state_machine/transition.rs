//! The state and its transitions: whether a measure fires or clears the rule, where the
//! state moves, and the level an alarm is raised at.
//!
//! Boundaries: `above T` fires when value > T and clears when value ≤ clear (default T);
//! `below T` fires when value < T and clears when value ≥ clear; `outside [l, h]` fires outside
//! and clears inside the clear range (inclusive); `inside [l, h]` fires inside (inclusive) and
//! clears outside the clear range; a rate rule fires when the slope is steeper than `per_hour`
//! and clears when it is no steeper than the clear rate.

use super::measure::Measurement;
use super::state::AlertState;
use crate::alerting::event::AlarmState;
use crate::alerting::rule::{AlertRule, Clear, Condition, Debounce, condition_fires};

/// How one reading moved the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Transition {
    pub old: AlarmState,
    pub new: AlarmState,
    /// The state must be written back.
    pub changed: bool,
}

/// Move the state on `measurement`, and set the level it is raised at.
pub(super) fn advance(
    rule: &AlertRule,
    state: &mut AlertState,
    measurement: &Measurement,
    time_ms: i64,
) -> Transition {
    let old = state.state;
    let (new, moved) = next_state(rule, state, measurement, time_ms);
    let (new, levelled) = set_level(rule, state, new, measurement.measured);
    if new != AlarmState::Pending {
        state.pending_count = 0;
        state.pending_since_ms = None;
    }
    if new.alarmed() && !old.alarmed() {
        state.alarm_since_ms = Some(time_ms);
    } else if !new.alarmed() && old.alarmed() {
        state.alarm_since_ms = None;
    }
    state.state = new;
    Transition {
        old,
        new,
        changed: moved || levelled,
    }
}

/// The state the measure moves the pair to, and whether that is to be written (a pending
/// count debounce counts readings).
fn next_state(
    rule: &AlertRule,
    state: &mut AlertState,
    measurement: &Measurement,
    time_ms: i64,
) -> (AlarmState, bool) {
    let old = state.state;
    let Some(measured) = measurement.measured else {
        return (old, false);
    };
    let fires = measurement.trusted && fires(rule, measured);
    match old {
        AlarmState::Ok if fires => {
            state.pending_count = 1;
            state.pending_since_ms = Some(time_ms);
            if debounce_met(rule, state, time_ms) {
                (AlarmState::Alarm, true)
            } else {
                (AlarmState::Pending, true)
            }
        }
        AlarmState::Pending if fires => {
            state.pending_count = state.pending_count.saturating_add(1);
            if debounce_met(rule, state, time_ms) {
                (AlarmState::Alarm, true)
            } else {
                // A count debounce must remember the count; a time debounce needs no write.
                (
                    AlarmState::Pending,
                    matches!(rule.debounce, Some(Debounce::Readings(_))),
                )
            }
        }
        AlarmState::Pending => (AlarmState::Ok, true),
        AlarmState::Alarm if clears(rule, measured) => {
            if rule.latched {
                (AlarmState::Latched, true)
            } else {
                (AlarmState::Ok, true)
            }
        }
        AlarmState::Acknowledged if clears(rule, measured) => (AlarmState::Ok, true),
        AlarmState::Latched if fires => (AlarmState::Alarm, true),
        AlarmState::Ok
        | AlarmState::Alarm
        | AlarmState::Acknowledged
        | AlarmState::Latched
        | AlarmState::Disabled => (old, false),
    }
}

/// The level, while raised with the condition holding (a latched alarm keeps its own); an
/// acknowledged alarm that escalates is an alarm again. Whether the level changed.
fn set_level(
    rule: &AlertRule,
    state: &mut AlertState,
    new: AlarmState,
    measured: Option<f64>,
) -> (AlarmState, bool) {
    match new {
        AlarmState::Alarm | AlarmState::Acknowledged => {
            let level =
                measured.map_or(state.level.unwrap_or(rule.severity), |m| rule.level_for(m));
            if state.level == Some(level) {
                return (new, false);
            }
            // An acknowledged alarm that escalates needs attention again.
            let escalated = state.level.is_some_and(|l| level > l);
            state.level = Some(level);
            if new == AlarmState::Acknowledged && escalated {
                (AlarmState::Alarm, true)
            } else {
                (new, true)
            }
        }
        AlarmState::Latched if state.level.is_none() => {
            state.level = Some(rule.severity);
            (new, true)
        }
        AlarmState::Latched => (new, false),
        _ => (new, state.level.take().is_some()),
    }
}

fn debounce_met(rule: &AlertRule, state: &AlertState, time_ms: i64) -> bool {
    match rule.debounce {
        None => true,
        Some(Debounce::Readings(n)) => state.pending_count >= n,
        Some(Debounce::Seconds(s)) => state
            .pending_since_ms
            .is_some_and(|since| time_ms - since >= s as i64 * 1000),
    }
}

/// The entry condition fires: the alarm is to be raised.
pub fn fires(rule: &AlertRule, m: f64) -> bool {
    condition_fires(&rule.condition, m)
}

/// The condition clears, past the clear threshold where the rule has one: the alarm is to end.
pub fn clears(rule: &AlertRule, m: f64) -> bool {
    let value = |default: f64| match rule.clear {
        Some(Clear::Value(c)) => c,
        _ => default,
    };
    let range = |default: [f64; 2]| match rule.clear {
        Some(Clear::Range(r)) => r,
        _ => default,
    };
    match rule.condition {
        Condition::Above(t) => m <= value(t),
        Condition::Below(t) => m >= value(t),
        Condition::Outside(r) => {
            let [l, h] = range(r);
            (l..=h).contains(&m)
        }
        Condition::Inside(r) => {
            let [l, h] = range(r);
            m < l || m > h
        }
        Condition::RateOfChange(r) if r.per_hour < 0.0 => m >= value(r.per_hour),
        Condition::RateOfChange(r) => m <= value(r.per_hour),
        Condition::Forecast(f) => match f.threshold() {
            (t, true) => m >= value(t),
            (t, false) => m <= value(t),
        },
        Condition::Anomaly(a) => m <= value(a.threshold),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{feed, rule, run};
    use super::super::{acknowledge, apply_reading};
    use super::*;
    use crate::alerting::event::EventKind;
    use crate::alerting::rule::Severity;
    use proptest::prelude::*;

    use AlarmState::{Alarm as A, Ok as O, Pending as P};

    #[test]
    fn hysteresis_keeps_the_alarm_until_the_clear_threshold() {
        let r = rule(Condition::Above(80.0), Some(Clear::Value(75.0)), None);
        let (states, events) = run(&r, &[70.0, 81.0, 78.0, 76.0, 75.0, 79.0, 80.5]);
        assert_eq!(states, vec![O, A, A, A, O, O, A]);
        assert_eq!(
            events,
            vec![EventKind::Alarm, EventKind::Ok, EventKind::Alarm]
        );
    }

    #[test]
    fn debounce_by_count_needs_consecutive_readings() {
        let r = rule(Condition::Below(10.0), None, Some(Debounce::Readings(3)));
        let (states, events) = run(&r, &[9.0, 9.0, 11.0, 9.0, 9.0, 9.0, 9.0]);
        assert_eq!(states, vec![P, P, O, P, P, A, A]);
        assert_eq!(events, vec![EventKind::Alarm]);
    }

    #[test]
    fn debounce_by_time_needs_the_condition_to_hold_long_enough() {
        let r = rule(
            Condition::Outside([18.0, 26.0]),
            None,
            Some(Debounce::Seconds(150)),
        );
        // One minute apart: pending at 0 s, 60 s, 120 s, fires at 180 s.
        let (states, events) = run(&r, &[27.0, 27.0, 27.0, 27.0, 20.0]);
        assert_eq!(states, vec![P, P, P, A, O]);
        assert_eq!(events, vec![EventKind::Alarm, EventKind::Ok]);
    }

    #[test]
    fn a_time_debounce_costs_no_write_while_pending() {
        let r = rule(Condition::Above(1.0), None, Some(Debounce::Seconds(600)));
        let mut state = AlertState::default();
        assert!(apply_reading(&r, &mut state, 0, 2.0).changed);
        assert!(!apply_reading(&r, &mut state, 60_000, 2.0).changed);
    }

    proptest! {
        /// Without debounce, the state follows the hysteresis model exactly.
        #[test]
        fn thresholds_follow_the_hysteresis_model(
            threshold in 20.0..80.0f64,
            margin in 0.0..15.0f64,
            values in proptest::collection::vec(0.0..100.0f64, 1..100),
        ) {
            let r = rule(Condition::Above(threshold), Some(Clear::Value(threshold - margin)), None);
            let mut state = AlertState::default();
            let mut model_alarmed = false;
            for (i, v) in values.iter().enumerate() {
                apply_reading(&r, &mut state, i as i64 * 1000, *v);
                model_alarmed = if model_alarmed { *v > threshold - margin } else { *v > threshold };
                prop_assert_eq!(state.state == AlarmState::Alarm, model_alarmed);
            }
        }
    }

    fn levels_rule() -> AlertRule {
        AlertRule::from_json(
            r#"{"rule_id":"hot","name":"Room too hot","scope":"all","metric":"t",
                "levels":{"warning":{"above":26},"critical":{"above":30}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn one_rule_escalates_and_deescalates_through_its_levels() {
        let r = levels_rule();
        let mut state = AlertState::default();
        let kinds = feed(&r, &mut state, 0, &[25.0, 27.0, 31.0, 32.0, 28.0, 25.0]);
        assert_eq!(
            kinds,
            vec![
                (EventKind::Alarm, Severity::Warning),
                (EventKind::Escalated, Severity::Critical),
                (EventKind::Deescalated, Severity::Warning),
                (EventKind::Ok, Severity::Warning),
            ]
        );
        // Straight to critical: one alarm, at the critical level.
        let mut state = AlertState::default();
        assert_eq!(
            feed(&r, &mut state, 0, &[35.0, 20.0]),
            vec![
                (EventKind::Alarm, Severity::Critical),
                (EventKind::Ok, Severity::Critical)
            ]
        );
    }

    #[test]
    fn an_acknowledged_warning_that_escalates_is_an_alarm_again() {
        let r = levels_rule();
        let mut state = AlertState::default();
        feed(&r, &mut state, 0, &[27.0]);
        acknowledge(&mut state).unwrap();
        assert_eq!(
            feed(&r, &mut state, 1, &[28.0, 31.0]),
            vec![(EventKind::Escalated, Severity::Critical)]
        );
        assert_eq!(state.state, A);
    }

    #[test]
    fn a_latched_alarm_stays_raised_until_acknowledged() {
        let mut r = rule(Condition::Above(80.0), None, None);
        r.latched = true;
        let mut state = AlertState::default();
        assert_eq!(
            feed(&r, &mut state, 0, &[90.0, 50.0, 40.0]),
            vec![(EventKind::Alarm, Severity::Warning)]
        );
        assert_eq!(state.state, AlarmState::Latched);
        // Firing again while latched is the same alarm: no second notification.
        assert!(feed(&r, &mut state, 3, &[95.0, 50.0]).is_empty());
        assert_eq!(state.state, AlarmState::Latched);
        acknowledge(&mut state).unwrap();
        assert_eq!(state.state, O);
        assert!(
            feed(&r, &mut state, 5, &[50.0]).is_empty(),
            "the acknowledger closed it"
        );
        // Acknowledged before it clears: back to OK when it clears, notified.
        assert_eq!(
            feed(&r, &mut state, 6, &[90.0]),
            vec![(EventKind::Alarm, Severity::Warning)]
        );
        acknowledge(&mut state).unwrap();
        assert_eq!(
            feed(&r, &mut state, 7, &[50.0]),
            vec![(EventKind::Ok, Severity::Warning)]
        );
    }
}
