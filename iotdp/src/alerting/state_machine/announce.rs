//! What subscribers are told, and the command the device gets: the one place that decides
//! whether a change is notified.
//!
//! Notifications are the differences between what subscribers were last told (`told`: OK, or
//! raised at a level) and the state: raised (`alarm`), cleared (`ok`), a level up or down
//! (`escalated`, `deescalated`). A snooze, a suppression (the device's gateway is down) or
//! flapping quiets them; what is still different when the quiet ends is told then. Flapping
//! replaces the transitions by one `flapping` and one `settled` notification.

use super::state::{AlertState, Told};
use crate::alerting::event::{AlarmState, EventKind};
use crate::alerting::rule::{AlertRule, Flapping, Severity};

/// The shadow patch a step asks for: the rule's `on_alarm` or `on_ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    OnAlarm,
    OnOk,
}

/// What one reading did to the pair: what is announced is decided from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Outcome {
    pub time_ms: i64,
    /// The device's gateway is silent or suspended: record, do not notify.
    pub suppressed: bool,
    /// How the pair presented itself to subscribers before the reading, and after it.
    pub before: Told,
    pub after: Told,
    pub new_state: AlarmState,
}

/// What is to be announced for one reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Announcement {
    /// The notification's kind and the level it reports.
    pub notice: Option<(EventKind, Severity)>,
    pub action: Option<ActionKind>,
    /// The state must be written back (for this or any earlier part of the step).
    pub changed: bool,
}

/// Decide what subscribers are told about `outcome` and what the device is commanded;
/// `changed` says whether the step so far must be written.
pub(super) fn announce(
    rule: &AlertRule,
    state: &mut AlertState,
    outcome: &Outcome,
    changed: bool,
) -> Announcement {
    let stored_told = state.told;
    let told_before = stored_told.unwrap_or(outcome.before);
    // A snooze or a suppression quiets everything, flapping notifications included (the
    // flapping itself is still tracked, and commands still follow the state).
    let snoozed = state
        .snoozed_until_ms
        .is_some_and(|until| outcome.time_ms < until);
    let held = outcome.suppressed || snoozed;
    let flap = rule
        .flapping
        .and_then(|flapping| track_flapping(&flapping, state, outcome));
    let action = command(rule, state, outcome, flap);
    let (kind, told) = notice(rule, state, outcome, flap, held, told_before);
    let mut changed = changed || flap.is_some();
    changed |= update_quiet(state, snoozed, outcome.suppressed && told != outcome.after);
    // A state written before `told` existed is not written only to add it.
    if stored_told != Some(told) && (stored_told.is_some() || changed || told != outcome.before) {
        state.told = Some(told);
        changed = true;
    }
    let notice = kind.map(|kind| {
        state.last_notified_ms = Some(outcome.time_ms);
        changed = true;
        (kind, level_reported(rule, kind, told_before, outcome.after))
    });
    Announcement {
        notice,
        action,
        changed,
    }
}

/// The notification for this reading, if any, and what subscribers believe after it.
fn notice(
    rule: &AlertRule,
    state: &AlertState,
    outcome: &Outcome,
    flap: Option<Flap>,
    held: bool,
    told: Told,
) -> (Option<EventKind>, Told) {
    match flap {
        Some(Flap::Started) if !held => return (Some(EventKind::Flapping), told),
        Some(Flap::Settled) if !held => return (Some(EventKind::Settled), outcome.after),
        _ => {}
    }
    if held || state.flapping {
        return (None, told);
    }
    match difference(told, outcome.after) {
        Some(kind) => (Some(kind), outcome.after),
        None => (
            remind(rule, state, outcome.new_state, outcome.time_ms),
            told,
        ),
    }
}

/// The device's command follows the state itself, not what was told: a snooze quiets people,
/// not the devices' protection. Held back while the pair flaps; on settling, the command for
/// the state it settled in.
fn command(
    rule: &AlertRule,
    state: &AlertState,
    outcome: &Outcome,
    flap: Option<Flap>,
) -> Option<ActionKind> {
    if rule.flapping.is_some() && state.flapping {
        return None;
    }
    if flap == Some(Flap::Settled) {
        return Some(if outcome.new_state.alarmed() {
            ActionKind::OnAlarm
        } else {
            ActionKind::OnOk
        });
    }
    match (outcome.before, outcome.after) {
        (Told::Ok, Told::Alarm(_)) => Some(ActionKind::OnAlarm),
        (Told::Alarm(_), Told::Ok) => Some(ActionKind::OnOk),
        _ => None,
    }
}

/// Forget a snooze that ran out, and mark an alarm a suppression holds back from subscribers.
/// Whether either changed.
fn update_quiet(state: &mut AlertState, snoozed: bool, held_back: bool) -> bool {
    let mut changed = false;
    if state.snoozed_until_ms.is_some() && !snoozed {
        state.snoozed_until_ms = None;
        changed = true;
    }
    if state.suppressed != held_back {
        state.suppressed = held_back;
        changed = true;
    }
    changed
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flap {
    Started,
    Settled,
}

/// Count the pair's changes in what it presents (at most `flapping.high` kept): it starts
/// flapping at `high` changes within the window and settles at `low`.
fn track_flapping(flapping: &Flapping, state: &mut AlertState, outcome: &Outcome) -> Option<Flap> {
    if outcome.after != outcome.before {
        state.changes.push(outcome.time_ms);
        let excess = state.changes.len().saturating_sub(flapping.high as usize);
        state.changes.drain(..excess);
    }
    let window_ms = flapping.window_seconds as i64 * 1000;
    let recent = state
        .changes
        .iter()
        .filter(|&&t| outcome.time_ms - t < window_ms)
        .count();
    if !state.flapping && recent >= flapping.high as usize {
        state.flapping = true;
        Some(Flap::Started)
    } else if state.flapping && recent <= flapping.low as usize {
        state.flapping = false;
        Some(Flap::Settled)
    } else {
        None
    }
}

/// The notification for a difference between what was told and the state.
fn difference(told: Told, after: Told) -> Option<EventKind> {
    match (told, after) {
        _ if told == after => None,
        (Told::Ok, Told::Alarm(_)) => Some(EventKind::Alarm),
        (Told::Alarm(_), Told::Ok) => Some(EventKind::Ok),
        (Told::Alarm(was), Told::Alarm(now)) if now > was => Some(EventKind::Escalated),
        _ => Some(EventKind::Deescalated),
    }
}

/// A reminder for an unacknowledged alarm: `renotify_after` passed, or a snooze ran out.
fn remind(
    rule: &AlertRule,
    state: &AlertState,
    new_state: AlarmState,
    time_ms: i64,
) -> Option<EventKind> {
    if !matches!(new_state, AlarmState::Alarm | AlarmState::Latched) {
        return None;
    }
    let renotify_due = rule.renotify_after.is_some_and(|after| {
        let since = state
            .last_notified_ms
            .or(state.alarm_since_ms)
            .unwrap_or(time_ms);
        time_ms - since >= after as i64 * 1000
    });
    // A snooze that ran out on an unacknowledged alarm: remind once.
    let snooze_over = state.snoozed_until_ms.is_some();
    (renotify_due || snooze_over).then_some(EventKind::Renotify)
}

/// The level a notification reports: the one raised at, or for `ok` the one it was raised at.
fn level_reported(rule: &AlertRule, kind: EventKind, told_before: Told, after: Told) -> Severity {
    match (kind, told_before, after) {
        (EventKind::Ok, Told::Alarm(severity), _) => severity,
        (_, _, Told::Alarm(severity)) => severity,
        _ => rule.severity,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{feed, rule};
    use super::super::{
        ANOMALY_SAMPLES_PER_BASELINE, OperatorAction, acknowledge, apply_reading,
        apply_suppressed_reading, operate,
    };
    use super::*;
    use crate::alerting::rule::{Clear, Condition, Debounce, Forecast, MAX_FLAPPING_CHANGES};
    use proptest::prelude::*;

    use AlarmState::{Alarm as A, Ok as O};

    #[test]
    fn acknowledged_alarms_are_not_renotified_but_still_clear() {
        let mut r = rule(Condition::Above(80.0), None, None);
        r.renotify_after = Some(120);
        let mut state = AlertState::default();
        let mut kinds = Vec::new();
        let mut feed = |state: &mut AlertState, minute: i64, v: f64| {
            kinds.extend(
                apply_reading(&r, state, minute * 60_000, v)
                    .event
                    .map(|e| e.kind),
            );
        };
        feed(&mut state, 0, 90.0);
        feed(&mut state, 1, 90.0);
        feed(&mut state, 2, 90.0); // 120 s since the alarm: renotify
        feed(&mut state, 3, 90.0);
        feed(&mut state, 4, 90.0); // 120 s since the renotify: renotify
        acknowledge(&mut state).unwrap();
        feed(&mut state, 10, 90.0); // acknowledged: silent
        feed(&mut state, 11, 50.0); // clears: back to OK is notified
        assert_eq!(
            kinds,
            vec![
                EventKind::Alarm,
                EventKind::Renotify,
                EventKind::Renotify,
                EventKind::Ok
            ]
        );
        assert_eq!(acknowledge(&mut state), Err(O));
    }

    fn any_rule() -> impl Strategy<Value = AlertRule> {
        let condition = prop_oneof![
            (0.0..100.0f64).prop_map(Condition::Above),
            (0.0..100.0f64).prop_map(Condition::Below),
            (0.0..50.0f64, 50.0..100.0f64).prop_map(|(l, h)| Condition::Outside([l, h])),
            (0.0..50.0f64, 50.0..100.0f64).prop_map(|(l, h)| Condition::Inside([l, h])),
            (0.0..100.0f64, any::<bool>(), 600..7200u64, 600..7200u64).prop_map(
                |(t, falling, within, window)| Condition::Forecast(Forecast {
                    below: falling.then_some(t),
                    above: (!falling).then_some(t),
                    within_seconds: within,
                    window_seconds: window,
                })
            ),
            (1.0..6.0f64, 3600..7200u64).prop_map(|(threshold, baseline)| Condition::Anomaly(
                crate::alerting::rule::Anomaly {
                    threshold,
                    baseline_seconds: baseline
                }
            )),
        ];
        let debounce = prop_oneof![
            Just(None),
            (1..4u32).prop_map(|n| Some(Debounce::Readings(n))),
            (0..300u64).prop_map(|s| Some(Debounce::Seconds(s))),
        ];
        (
            condition,
            debounce,
            0.0..20.0f64,
            proptest::option::of(60..600u64),
        )
            .prop_map(|(condition, debounce, margin, renotify)| {
                let clear = match condition {
                    Condition::Above(t) => Some(Clear::Value(t - margin)),
                    Condition::Below(t) => Some(Clear::Value(t + margin)),
                    Condition::Outside([l, h]) => {
                        Some(Clear::Range([l + margin.min((h - l) / 2.0), h]))
                    }
                    Condition::Inside([l, h]) => Some(Clear::Range([l - margin, h + margin])),
                    Condition::Forecast(f) => match f.threshold() {
                        (t, true) => Some(Clear::Value(t + margin)),
                        (t, false) => Some(Clear::Value(t - margin)),
                    },
                    Condition::Anomaly(a) => {
                        Some(Clear::Value(a.threshold * (1.0 - margin / 40.0)))
                    }
                    Condition::RateOfChange(_) => None,
                };
                let mut r = rule(condition, clear, debounce);
                r.renotify_after = renotify;
                r
            })
    }

    proptest! {
        /// For any rule and any sequence of readings, the notifications are exactly the
        /// transitions into and out of ALARM, alternating, and never anything else.
        #[test]
        fn notifications_equal_transitions_into_and_out_of_alarm(
            rule in any_rule(),
            readings in proptest::collection::vec((0.0..100.0f64, 1..120_000i64, any::<bool>()), 1..200),
        ) {
            let mut state = AlertState::default();
            let mut t = 0;
            let mut alarm_kinds = Vec::new();
            for (value, gap, ack) in readings {
                t += gap;
                let before = state.state;
                let step = apply_reading(&rule, &mut state, t, value);
                let after = state.state;
                let entered = before != AlarmState::Alarm && after == AlarmState::Alarm;
                let left = before.alarmed() && after == AlarmState::Ok;
                let kind = step.event.map(|e| e.kind);
                prop_assert_eq!(kind == Some(EventKind::Alarm), entered);
                prop_assert_eq!(kind == Some(EventKind::Ok), left);
                if kind == Some(EventKind::Renotify) {
                    prop_assert_eq!((before, after), (AlarmState::Alarm, AlarmState::Alarm));
                }
                if step.event.is_some() {
                    prop_assert!(step.changed, "an event is always written");
                }
                if matches!(kind, Some(EventKind::Alarm | EventKind::Ok)) {
                    alarm_kinds.push(kind.unwrap());
                }
                if ack {
                    let _ = acknowledge(&mut state);
                }
            }
            for pair in alarm_kinds.windows(2) {
                prop_assert_ne!(pair[0], pair[1], "ALARM and OK alternate");
            }
        }
    }

    #[test]
    fn a_flapping_pair_sends_one_flapping_and_one_settled_notification() {
        let mut r = rule(Condition::Above(80.0), None, None);
        r.actions.on_alarm = Some(serde_json::json!({"fan": true}));
        r.flapping = Some(crate::alerting::rule::Flapping {
            low: 1,
            high: 4,
            window_seconds: 600,
        });
        let mut state = AlertState::default();
        let mut kinds = Vec::new();
        let mut actions = Vec::new();
        // Alternating every minute for 20 minutes, then steadily in alarm for 20.
        for minute in 0..40i64 {
            let v = if minute < 20 && minute % 2 == 1 {
                70.0
            } else {
                90.0
            };
            let step = apply_reading(&r, &mut state, minute * 60_000, v);
            kinds.extend(step.event.map(|e| (minute, e.kind, e.new_state)));
            actions.extend(step.action.map(|a| (minute, a)));
        }
        assert_eq!(
            kinds,
            vec![
                (0, EventKind::Alarm, A),
                (1, EventKind::Ok, O),
                (2, EventKind::Alarm, A),
                (3, EventKind::Flapping, O),
                // The last change was at minute 20; at 29 only it is in the last 10 minutes.
                (29, EventKind::Settled, A),
            ]
        );
        assert_eq!(
            actions,
            vec![
                (0, ActionKind::OnAlarm),
                (1, ActionKind::OnOk),
                (2, ActionKind::OnAlarm),
                (29, ActionKind::OnAlarm)
            ],
            "commands are held back while flapping and sent for the state it settled in"
        );
        assert!(state.changes.len() <= 4);
    }

    #[test]
    fn a_snooze_holds_notifications_back_and_what_remains_is_told_when_it_ends() {
        let r = rule(Condition::Above(80.0), None, None);
        let mut state = AlertState::default();
        operate(
            &mut state,
            OperatorAction::Snooze {
                until_ms: 10 * 60_000,
            },
        )
        .unwrap();
        // Raised and cleared within the snooze: nobody hears of it.
        assert!(feed(&r, &mut state, 0, &[90.0, 50.0]).is_empty());
        // Raised during the snooze and still raised after it: told when it ends.
        assert!(feed(&r, &mut state, 2, &[90.0, 91.0]).is_empty());
        assert_eq!(
            feed(&r, &mut state, 10, &[92.0, 93.0]),
            vec![(EventKind::Alarm, Severity::Warning)]
        );
        assert_eq!(state.snoozed_until_ms, None);
        // Told before the snooze, still raised after it: reminded once.
        operate(
            &mut state,
            OperatorAction::Snooze {
                until_ms: 20 * 60_000,
            },
        )
        .unwrap();
        assert!(feed(&r, &mut state, 12, &[95.0]).is_empty());
        assert_eq!(
            feed(&r, &mut state, 20, &[95.0, 96.0]),
            vec![(EventKind::Renotify, Severity::Warning)]
        );
    }

    #[test]
    fn a_suppressed_alarm_is_told_only_if_it_outlasts_the_suppression() {
        let r = rule(Condition::Above(0.0), None, None);
        let mut state = AlertState::default();
        let step = apply_suppressed_reading(&r, &mut state, 1_000, 600.0);
        assert!(step.event.is_none() && step.changed);
        assert!(state.suppressed && state.state == A);
        // Still silent, still suppressed: no write.
        assert!(!apply_suppressed_reading(&r, &mut state, 2_000, 700.0).changed);
        // The suppression lifted and the device is still silent: told now.
        let step = apply_reading(&r, &mut state, 3_000, 800.0);
        assert_eq!(step.event.map(|e| e.kind), Some(EventKind::Alarm));
        assert!(!state.suppressed);
        // Another one that clears while suppressed is never told at all.
        let mut other = AlertState::default();
        apply_suppressed_reading(&r, &mut other, 1_000, 600.0);
        assert!(apply_reading(&r, &mut other, 2_000, 0.0).event.is_none());
        assert_eq!(other.state, O);
    }

    #[test]
    fn states_written_before_told_existed_are_taken_as_told() {
        let r = rule(Condition::Above(80.0), None, None);
        let mut state = AlertState::default();
        feed(&r, &mut state, 0, &[90.0]);
        let mut legacy: serde_json::Value = serde_json::to_value(&state).unwrap();
        legacy.as_object_mut().unwrap().remove("told");
        legacy.as_object_mut().unwrap().remove("level");
        let mut legacy: AlertState = serde_json::from_value(legacy).unwrap();
        assert!(
            feed(&r, &mut legacy, 1, &[91.0]).is_empty(),
            "no second alarm"
        );
        assert_eq!(
            feed(&r, &mut legacy, 2, &[50.0]),
            vec![(EventKind::Ok, Severity::Warning)]
        );
    }

    /// Any rule of the v2 vocabulary: levels, latched, flapping on top of [`any_rule`].
    fn any_v2_rule() -> impl Strategy<Value = AlertRule> {
        (
            any_rule(),
            any::<bool>(),
            proptest::option::of((0..3u32, 1..5u32, 120..1800u64)),
            proptest::option::of(1.0..30.0f64),
        )
            .prop_map(|(mut r, latched, flapping, step)| {
                r.latched = latched;
                r.flapping = flapping.map(|(low, extra, window)| crate::alerting::rule::Flapping {
                    low,
                    high: low + extra,
                    window_seconds: window,
                });
                if let (Some(step), Condition::Above(t)) = (step, r.condition) {
                    r.severity = Severity::Info;
                    r.levels = vec![
                        (Severity::Warning, Condition::Above(t + step)),
                        (Severity::Critical, Condition::Above(t + 2.0 * step)),
                    ];
                }
                r
            })
    }

    #[derive(Debug, Clone)]
    enum Input {
        Reading {
            value: f64,
            gap_ms: i64,
            suppressed: bool,
        },
        Operator(OperatorAction),
    }

    fn any_input() -> impl Strategy<Value = Input> {
        prop_oneof![
            6 => (0.0..100.0f64, 1..120_000i64, proptest::bool::weighted(0.15)).prop_map(
                |(value, gap_ms, suppressed)| Input::Reading { value, gap_ms, suppressed }
            ),
            1 => prop_oneof![
                Just(OperatorAction::Acknowledge),
                Just(OperatorAction::Disable),
                Just(OperatorAction::Enable),
                Just(OperatorAction::Reset),
                (0..600_000i64).prop_map(|ahead| OperatorAction::Snooze { until_ms: ahead }),
            ]
            .prop_map(Input::Operator),
        ]
    }

    proptest! {
        /// For any rule (each condition, levels, latched, flapping), any readings, suppressed
        /// or not, and any interleaving of acknowledge, snooze, disable, enable and reset:
        /// every notification is a documented transition of what subscribers were told (never
        /// a repeat), every event is written, and whenever nothing quiets the pair (snooze,
        /// suppression, flapping) subscribers have been told exactly the state.
        #[test]
        fn notifications_are_exactly_the_documented_transitions(
            rule in any_v2_rule(),
            inputs in proptest::collection::vec(any_input(), 1..200),
        ) {
            let mut state = AlertState::default();
            let mut told = Told::Ok;
            let mut t = 0i64;
            let mut last_event_ms = i64::MIN;
            for input in inputs {
                match input {
                    Input::Operator(action) => {
                        let action = match action {
                            OperatorAction::Snooze { until_ms } => OperatorAction::Snooze { until_ms: t + until_ms },
                            other => other,
                        };
                        let before = state.clone();
                        match operate(&mut state, action) {
                            Ok(()) => {
                                let closes = match action {
                                    OperatorAction::Snooze { .. } => false,
                                    OperatorAction::Acknowledge => before.state == AlarmState::Latched,
                                    _ => true,
                                };
                                if closes {
                                    told = Told::Ok;
                                }
                            }
                            Err(current) => prop_assert_eq!(&state, &before, "{:?} refused in {:?} changes nothing", action, current),
                        }
                    }
                    Input::Reading { value, gap_ms, suppressed } => {
                        t += gap_ms;
                        let step = if suppressed {
                            apply_suppressed_reading(&rule, &mut state, t, value)
                        } else {
                            apply_reading(&rule, &mut state, t, value)
                        };
                        let actual = Told::of(state.state, state.level, &rule);
                        if let Some(e) = step.event {
                            prop_assert!(step.changed, "an event is always written");
                            prop_assert!(e.time_ms > last_event_ms, "one event per reading time: alert ids never repeat");
                            last_event_ms = e.time_ms;
                            match e.kind {
                                EventKind::Alarm => {
                                    prop_assert_eq!(told, Told::Ok);
                                    prop_assert_eq!(actual, Told::Alarm(e.severity));
                                    told = actual;
                                }
                                EventKind::Ok => {
                                    prop_assert_eq!(told, Told::Alarm(e.severity));
                                    prop_assert_eq!(actual, Told::Ok);
                                    told = actual;
                                }
                                EventKind::Escalated | EventKind::Deescalated => {
                                    let Told::Alarm(was) = told else {
                                        return Err(TestCaseError::fail(format!("{:?} while told OK", e.kind)));
                                    };
                                    prop_assert_eq!(e.kind == EventKind::Escalated, e.severity > was);
                                    prop_assert_ne!(e.severity, was);
                                    prop_assert_eq!(actual, Told::Alarm(e.severity));
                                    told = actual;
                                }
                                EventKind::Renotify => {
                                    prop_assert_eq!(told, actual);
                                    prop_assert!(matches!(state.state, AlarmState::Alarm | AlarmState::Latched));
                                }
                                EventKind::Flapping => prop_assert!(state.flapping),
                                EventKind::Settled => {
                                    prop_assert!(!state.flapping);
                                    told = actual;
                                }
                            }
                        }
                        let snoozed = state.snoozed_until_ms.is_some_and(|until| t < until);
                        if !suppressed && !snoozed && !state.flapping && state.state != AlarmState::Disabled && rule.enabled {
                            prop_assert_eq!(told, actual, "nothing quiets the pair: subscribers know the state");
                        }
                        prop_assert!(state.changes.len() <= MAX_FLAPPING_CHANGES as usize);
                        prop_assert!(state.samples.len() <= ANOMALY_SAMPLES_PER_BASELINE as usize + 1);
                    }
                }
            }
        }
    }
}
