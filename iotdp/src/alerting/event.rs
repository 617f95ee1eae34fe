//! The vocabulary of an alarm: its states and the events a transition raises. Shared by the
//! state machine that makes them and the notifications that report them.

use serde::{Deserialize, Serialize};

use crate::alerting::rule::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    #[default]
    Ok,
    Pending,
    Alarm,
    Acknowledged,
    /// A latched rule's condition cleared before anyone acknowledged the alarm: it stays
    /// raised until acknowledged (IoT Events' LATCHED).
    Latched,
    /// Switched off for this device by an operator: readings are not evaluated until enabled.
    Disabled,
}

impl AlarmState {
    pub const ALL: [AlarmState; 6] = [
        Self::Ok,
        Self::Pending,
        Self::Alarm,
        Self::Acknowledged,
        Self::Latched,
        Self::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Pending => "PENDING",
            AlarmState::Alarm => "ALARM",
            AlarmState::Acknowledged => "ACKNOWLEDGED",
            AlarmState::Latched => "LATCHED",
            AlarmState::Disabled => "DISABLED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }

    /// Raised, as subscribers see it: ALARM, ACKNOWLEDGED or LATCHED.
    pub fn alarmed(self) -> bool {
        matches!(
            self,
            AlarmState::Alarm | AlarmState::Acknowledged | AlarmState::Latched
        )
    }
}

/// What a change is, as the event and the notification that reports it (its `kind`) say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Entered ALARM.
    Alarm,
    /// Back to OK from ALARM or ACKNOWLEDGED.
    Ok,
    /// Still in ALARM after `renotify_after` (or when a snooze ends on an unacknowledged alarm).
    Renotify,
    /// Still raised, at a higher level of a rule with levels.
    Escalated,
    /// Still raised, at a lower level.
    Deescalated,
    /// The pair started flapping: its transitions are not notified until it settles.
    Flapping,
    /// The pair stopped flapping; the notification carries the state it settled in.
    Settled,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        Self::Alarm,
        Self::Ok,
        Self::Renotify,
        Self::Escalated,
        Self::Deescalated,
        Self::Flapping,
        Self::Settled,
    ];

    /// The serialised name (SNS's `kind` attribute, and the body's `kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Alarm => "alarm",
            EventKind::Ok => "ok",
            EventKind::Renotify => "renotify",
            EventKind::Escalated => "escalated",
            EventKind::Deescalated => "deescalated",
            EventKind::Flapping => "flapping",
            EventKind::Settled => "settled",
        }
    }
}

/// A change worth telling someone about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlarmEvent {
    pub kind: EventKind,
    pub old_state: AlarmState,
    pub new_state: AlarmState,
    /// The alarm's level: the one it is raised at, or for OK the one it was raised at.
    pub severity: Severity,
    pub time_ms: i64,
    /// The value; for rate rules the rate per hour, for forecasts the level predicted at the
    /// horizon, for anomaly rules the reading's score.
    pub measured: f64,
    /// A forecast rule's fit behind the decision.
    pub prediction: Option<Prediction>,
}

/// What a forecast rule saw: the fitted trend, how well it fits, and when it crosses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Event time the fitted line crosses the threshold (`None`: it moves away from it).
    pub crossing_ms: Option<i64>,
    /// The fit's coefficient of determination (0: no trend, 1: a straight line).
    pub r_squared: f64,
    pub slope_per_hour: f64,
    /// Points the line was fitted to.
    pub points: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_kind_serialises_as_its_name() {
        for kind in EventKind::ALL {
            let text = serde_json::to_string(&kind).unwrap();
            assert_eq!(text, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<EventKind>(&text).unwrap(), kind);
        }
    }
}
