//! Alert notifications: the versioned JSON body, the subject line and the SNS message
//! attributes subscribers filter on.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::alerting::event::{AlarmEvent, AlarmState, EventKind};
use crate::alerting::rule::{AlertRule, Condition, Severity};

/// The body's schema id; bump the suffix on any incompatible change.
pub const NOTIFICATION_SCHEMA: &str = "iotdp.alert/v1";
/// SNS subjects: at most 100 ASCII characters, no line breaks.
pub const MAX_SUBJECT_LEN: usize = 100;

/// The notification body (documented in the README, section Alerting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertNotification {
    pub schema: String,
    /// `<device_id>:<rule_id>:<state version>`: unique per transition, stable across retries,
    /// so a subscriber can drop a duplicate delivery.
    pub alert_id: String,
    pub kind: EventKind,
    pub device_id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub metric: String,
    /// The reading's value; for rate-of-change rules the measured rate per hour, for forecasts
    /// the level predicted at the horizon, for anomaly rules the reading's score.
    pub value: f64,
    /// `value`, `rate_per_hour`, `predicted_value` or `anomaly_score`.
    pub measured: String,
    /// A forecast rule's fit: when the trend crosses the threshold and how well it fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<PredictionBody>,
    /// The rule's condition, as written in the rule (for a rule with levels, the level's).
    pub threshold: serde_json::Value,
    /// The alarm's level (for `ok`, the level it was raised at).
    pub severity: Severity,
    pub old_state: AlarmState,
    pub new_state: AlarmState,
    /// The reading's event time (RFC 3339).
    pub event_time: String,
    /// When the platform evaluated it (RFC 3339).
    pub evaluated_at: String,
}

/// A forecast's prediction as subscribers read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionBody {
    /// When the fitted trend reaches the threshold (RFC 3339; `null`: it moves away).
    pub crossing_time: Option<String>,
    pub r_squared: f64,
    pub slope_per_hour: f64,
    pub points: u32,
}

impl AlertNotification {
    pub fn new(
        rule: &AlertRule,
        device_id: &str,
        event: &AlarmEvent,
        version: u64,
        evaluated_at: DateTime<Utc>,
    ) -> Self {
        let rfc3339 = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let event_time = DateTime::from_timestamp_millis(event.time_ms).unwrap_or(evaluated_at);
        Self {
            schema: NOTIFICATION_SCHEMA.into(),
            alert_id: format!("{device_id}:{}:{version}", rule.rule_id),
            kind: event.kind,
            device_id: device_id.into(),
            rule_id: rule.rule_id.clone(),
            rule_name: rule.name.clone(),
            metric: rule.metric.clone(),
            value: event.measured,
            measured: match rule.condition {
                Condition::RateOfChange(_) => "rate_per_hour".into(),
                Condition::Forecast(_) => "predicted_value".into(),
                Condition::Anomaly(_) => "anomaly_score".into(),
                _ => "value".into(),
            },
            prediction: event.prediction.map(|p| PredictionBody {
                crossing_time: p
                    .crossing_ms
                    .and_then(DateTime::from_timestamp_millis)
                    .map(rfc3339),
                r_squared: (p.r_squared * 1000.0).round() / 1000.0,
                slope_per_hour: p.slope_per_hour,
                points: p.points,
            }),
            threshold: serde_json::to_value(
                rule.all_levels()
                    .find(|(severity, _)| *severity == event.severity)
                    .map_or(&rule.condition, |(_, condition)| condition),
            )
            .unwrap_or_default(),
            severity: event.severity,
            old_state: event.old_state,
            new_state: event.new_state,
            event_time: rfc3339(event_time),
            evaluated_at: rfc3339(evaluated_at),
        }
    }

    /// e.g. `[CRITICAL] ALARM battery-7: Battery voltage falling fast (voltage -0.08/h)`
    pub fn subject(&self) -> String {
        let what = match self.kind {
            EventKind::Alarm => "ALARM",
            EventKind::Ok => "OK",
            EventKind::Renotify => "STILL ALARM",
            EventKind::Escalated => "ESCALATED",
            EventKind::Deescalated => "DEESCALATED",
            EventKind::Flapping => "FLAPPING",
            EventKind::Settled => match self.new_state {
                AlarmState::Ok => "SETTLED OK",
                _ => "SETTLED ALARM",
            },
        };
        let unit = if self.measured == "rate_per_hour" {
            "/h"
        } else {
            ""
        };
        let text = format!(
            "[{}] {what} {}: {} ({} {}{unit})",
            self.severity.as_str().to_ascii_uppercase(),
            self.device_id,
            self.rule_name,
            self.metric,
            (self.value * 1000.0).round() / 1000.0,
        );
        // SNS refuses non-ASCII and control characters in subjects.
        let mut subject: String = text
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        subject.truncate(MAX_SUBJECT_LEN);
        subject
    }

    /// SNS message attributes, for subscription filter policies.
    pub fn attributes(&self) -> [(&'static str, String); 5] {
        [
            ("severity", self.severity.as_str().into()),
            ("kind", self.kind.as_str().into()),
            ("device_id", self.device_id.clone()),
            ("rule_id", self.rule_id.clone()),
            ("state", self.new_state.as_str().into()),
        ]
    }
}
