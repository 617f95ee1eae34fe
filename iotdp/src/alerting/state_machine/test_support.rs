//! Rules and feeding helpers the state machine's tests share.

use super::{AlertState, apply_reading};
use crate::alerting::event::{AlarmState, EventKind};
use crate::alerting::rule::{AlertRule, Clear, Condition, Debounce, Scope, Severity};

pub(super) fn rule(
    condition: Condition,
    clear: Option<Clear>,
    debounce: Option<Debounce>,
) -> AlertRule {
    AlertRule {
        rule_id: "r".into(),
        name: "r".into(),
        enabled: true,
        scope: Scope::All,
        metric: "t".into(),
        condition,
        clear,
        debounce,
        severity: Severity::Warning,
        levels: Vec::new(),
        renotify_after: None,
        latched: false,
        flapping: None,
        actions: Default::default(),
    }
}

/// Feed values one minute apart; return the state after each and the event kinds.
pub(super) fn run(rule: &AlertRule, values: &[f64]) -> (Vec<AlarmState>, Vec<EventKind>) {
    let mut state = AlertState::default();
    let mut states = Vec::new();
    let mut events = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let step = apply_reading(rule, &mut state, 1_000_000 + i as i64 * 60_000, *v);
        states.push(state.state);
        events.extend(step.event.map(|e| e.kind));
    }
    (states, events)
}

/// Feed values a minute apart from `start_minute`; the (kind, severity) of each event.
pub(super) fn feed(
    rule: &AlertRule,
    state: &mut AlertState,
    start_minute: i64,
    values: &[f64],
) -> Vec<(EventKind, Severity)> {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            apply_reading(rule, state, (start_minute + i as i64) * 60_000, *v)
                .event
                .map(|e| (e.kind, e.severity))
        })
        .collect()
}
