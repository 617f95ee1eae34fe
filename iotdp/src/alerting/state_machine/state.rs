//! What is remembered for one (device, rule) pair between invocations, and what its
//! subscribers were last told.

use serde::{Deserialize, Serialize};

use super::anomaly::Baseline;
use crate::alerting::event::AlarmState;
use crate::alerting::notification::AlertNotification;
use crate::alerting::rule::{AlertRule, Severity};

/// Everything remembered for one (device, rule) pair between invocations.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertState {
    pub state: AlarmState,
    /// Optimistic concurrency: every write is conditional on the version that was read.
    pub version: u64,
    /// Event time of the last reading that changed this state; older readings do not move it.
    pub last_change_ms: Option<i64>,
    pub pending_count: u32,
    pub pending_since_ms: Option<i64>,
    pub alarm_since_ms: Option<i64>,
    pub last_notified_ms: Option<i64>,
    /// The value (or rate) measured by the last state-changing reading.
    pub last_measured: Option<f64>,
    /// Rate-of-change samples, oldest first: at most one per eighth of the window, so a steady
    /// stream of readings costs a state write only every window/8, not per reading.
    #[serde(default)]
    pub samples: Vec<(i64, f64)>,
    /// Notifications decided but not yet confirmed published (delivered on the next chance).
    #[serde(default)]
    pub owed: Vec<AlertNotification>,
    /// Wall-clock time the owed notifications were decided: a lease, so a concurrent
    /// invocation does not publish what the deciding one is publishing right now.
    pub owed_since_ms: Option<i64>,
    /// The level the alarm is raised at (`None` while not raised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Severity>,
    /// What subscribers were last told. Notifications are the differences between this and
    /// the state, announced whenever nothing quiets them (a snooze, a suppression, flapping).
    /// Absent in states written before it existed: then they were told the state itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub told: Option<Told>,
    /// No notifications for this pair before this event time (an operator's snooze).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snoozed_until_ms: Option<i64>,
    /// The alarm is raised but held back by a suppression (its gateway is silent or
    /// suspended): recorded and listed, notified only if it outlasts the suppression.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suppressed: bool,
    /// Event times of the last state changes, oldest first (flapping rules only, at most
    /// `flapping.high`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<i64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub flapping: bool,
    /// An anomaly rule's baseline (median and scale of its samples), recomputed only when a
    /// sample joins: scoring a reading is then a subtraction and a division, not two sorts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// What subscribers believe about a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Told {
    Ok,
    Alarm(Severity),
}

impl Told {
    /// How the state presents itself to subscribers: raised at its level, or not raised.
    pub fn of(state: AlarmState, level: Option<Severity>, rule: &AlertRule) -> Self {
        if state.alarmed() {
            Told::Alarm(level.unwrap_or(rule.severity))
        } else {
            Told::Ok
        }
    }
}
