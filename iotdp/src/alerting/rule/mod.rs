//! Alert rules: what to watch, when it is wrong, when it is right again.
//!
//! The JSON form (CLI files, the rules table) is documented in the README, section Alerting.
//! Conditions are in `condition`, the checks serde cannot express in `validate`.

mod condition;
mod validate;

pub use condition::{Anomaly, Clear, Condition, Debounce, Forecast, RateOfChange, condition_fires};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::whole_number;
use crate::domain::{DeviceDimensions, LocationPath};

/// A rule as the platform uses it. Its JSON form is [`RuleDocument`]: either one `condition`
/// with its `severity`, or `levels` (severity → condition); here the lowest level is always
/// `condition`/`severity` (it decides ALARM and OK) and `levels` holds the higher ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RuleDocument", into = "RuleDocument")]
pub struct AlertRule {
    pub rule_id: String,
    pub name: String,
    pub enabled: bool,
    pub scope: Scope,
    pub metric: String,
    /// The entry condition: firing it raises the alarm (at `severity`), clearing it ends it.
    pub condition: Condition,
    /// Hysteresis: the value (or range, or rate) the metric must get back past to clear.
    /// Defaults to the condition's own threshold.
    pub clear: Option<Clear>,
    /// Debounce: how long the condition must hold before the alarm fires.
    pub debounce: Option<Debounce>,
    pub severity: Severity,
    /// Higher severities, ascending, each with a stricter condition on the same measure: while
    /// in ALARM the alarm's severity is the highest level whose condition holds.
    pub levels: Vec<(Severity, Condition)>,
    /// While in ALARM (not acknowledged), notify again after this many seconds of event time.
    pub renotify_after: Option<u64>,
    /// IoT Events' acknowledge flow: when the condition clears before anyone acknowledged the
    /// alarm, it stays raised (LATCHED) until acknowledged.
    pub latched: bool,
    /// Replace notifications by one `flapping` notification while the pair keeps changing.
    pub flapping: Option<Flapping>,
    pub actions: Actions,
}

/// The JSON form of a rule (CLI files, the rules table, the API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDocument {
    pub rule_id: String,
    pub name: String,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    pub scope: Scope,
    pub metric: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::present"
    )]
    pub condition: Option<Condition>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::present"
    )]
    pub levels: Option<BTreeMap<Severity, Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<Clear>,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub debounce: Option<Debounce>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::present"
    )]
    pub severity: Option<Severity>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_number::optional"
    )]
    pub renotify_after: Option<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub latched: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::present"
    )]
    pub flapping: Option<Flapping>,
    #[serde(default, skip_serializing_if = "Actions::is_empty")]
    pub actions: Actions,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl TryFrom<RuleDocument> for AlertRule {
    type Error = RuleError;

    fn try_from(doc: RuleDocument) -> Result<Self, RuleError> {
        let (condition, severity, levels) = match (doc.condition, doc.severity, doc.levels) {
            (Some(condition), Some(severity), None) => (condition, severity, Vec::new()),
            (Some(_), _, Some(_)) => {
                return Err(rule_error(
                    "levels",
                    "give either condition and severity, or levels, not both",
                ));
            }
            (None, Some(_), Some(_)) => {
                return Err(rule_error(
                    "severity",
                    "a rule with levels takes its severities from the levels' names: remove severity",
                ));
            }
            (Some(_), None, None) => {
                return Err(rule_error("severity", "missing field `severity`"));
            }
            (None, _, None) => {
                return Err(rule_error(
                    "condition",
                    "missing field `condition` (or `levels`)",
                ));
            }
            (None, None, Some(levels)) => {
                let mut levels = levels.into_iter();
                let Some((severity, condition)) = levels.next() else {
                    return Err(rule_error(
                        "levels",
                        "must name at least one of info, warning and critical",
                    ));
                };
                (condition, severity, levels.collect())
            }
        };
        Ok(AlertRule {
            rule_id: doc.rule_id,
            name: doc.name,
            enabled: doc.enabled,
            scope: doc.scope,
            metric: doc.metric,
            condition,
            clear: doc.clear,
            debounce: doc.debounce,
            severity,
            levels,
            renotify_after: doc.renotify_after,
            latched: doc.latched,
            flapping: doc.flapping,
            actions: doc.actions,
        })
    }
}

impl From<AlertRule> for RuleDocument {
    fn from(rule: AlertRule) -> Self {
        let (condition, severity, levels) = if rule.levels.is_empty() {
            (Some(rule.condition), Some(rule.severity), None)
        } else {
            let mut levels: BTreeMap<Severity, Condition> = rule.levels.into_iter().collect();
            levels.insert(rule.severity, rule.condition);
            (None, None, Some(levels))
        };
        RuleDocument {
            rule_id: rule.rule_id,
            name: rule.name,
            enabled: rule.enabled,
            scope: rule.scope,
            metric: rule.metric,
            condition,
            levels,
            clear: rule.clear,
            debounce: rule.debounce,
            severity,
            renotify_after: rule.renotify_after,
            latched: rule.latched,
            flapping: rule.flapping,
            actions: rule.actions,
        }
    }
}

/// `{"low": 2, "high": 6, "window_seconds": 3600}`: Kapacitor's `flapping(low, high)` over
/// the pair's last state changes, counted in time rather than in evaluations (so steady state
/// still writes nothing). Flapping starts when `high` changes fall within `window_seconds`, and
/// settles when at most `low` remain in the last `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flapping {
    #[serde(deserialize_with = "whole_number::exact")]
    pub low: u32,
    #[serde(deserialize_with = "whole_number::exact")]
    pub high: u32,
    #[serde(deserialize_with = "whole_number::exact")]
    pub window_seconds: u64,
}

/// Most state changes a flapping rule counts (the times kept in the alert state).
pub const MAX_FLAPPING_CHANGES: u32 = 20;

impl AlertRule {
    /// The severity a measure stands at while alarmed: the highest level whose condition
    /// holds, and at least the entry severity (hysteresis may keep an alarm whose entry
    /// condition no longer holds).
    pub fn level_for(&self, measured: f64) -> Severity {
        self.levels
            .iter()
            .rev()
            .find(|(_, condition)| condition_fires(condition, measured))
            .map_or(self.severity, |(severity, _)| *severity)
    }

    /// Every level, lowest first, with its condition.
    pub fn all_levels(&self) -> impl Iterator<Item = (Severity, &Condition)> {
        std::iter::once((self.severity, &self.condition))
            .chain(self.levels.iter().map(|(s, c)| (*s, c)))
    }
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    DeviceId(String),
    DeviceType(String),
    /// The devices at a place or below it (`{"path": "wall-3/zone-a"}`): what a caller scoped
    /// to that place may see and change.
    Path(LocationPath),
    All,
}

impl Scope {
    /// Whether a reading of `device_id`, with the registry's `dimensions` on it, is watched.
    pub fn covers(&self, device_id: &str, dimensions: Option<&DeviceDimensions>) -> bool {
        match self {
            Scope::All => true,
            Scope::DeviceId(id) => id == device_id,
            Scope::DeviceType(t) => dimensions.is_some_and(|d| d.device_type == *t),
            Scope::Path(place) => dimensions.is_some_and(|d| d.path.starts_with(place)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Shadow `desired` patches sent to the device on entering ALARM and on returning to OK.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_alarm: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_ok: Option<Value>,
}

impl Actions {
    pub fn is_empty(&self) -> bool {
        self.on_alarm.is_none() && self.on_ok.is_none()
    }
}

/// A rule file or item that cannot be used, naming the field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule field '{field}': {problem}")]
pub struct RuleError {
    pub field: String,
    pub problem: String,
}

fn rule_error(field: &str, problem: impl Into<String>) -> RuleError {
    RuleError {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

/// Longest rule id: it is half of a DynamoDB key and part of every alert id.
pub const MAX_RULE_ID_LEN: usize = 64;
/// Longest forecast window or horizon, and anomaly baseline: 30 days.
pub const MAX_FORECAST_SECONDS: u64 = 30 * 86_400;
/// The silence watch's rule: reserved, so no operator rule can take its id.
pub const NO_DATA_RULE_ID: &str = "no_data";

impl AlertRule {
    /// Parse and validate a rule from JSON.
    pub fn from_json(text: &str) -> Result<Self, RuleError> {
        let deserializer = &mut serde_json::Deserializer::from_str(text);
        let document: RuleDocument =
            serde_path_to_error::deserialize(deserializer).map_err(|e| {
                let path = e.path().to_string();
                rule_error(
                    if path == "." { "(top level)" } else { &path },
                    e.into_inner().to_string(),
                )
            })?;
        let rule = AlertRule::try_from(document)?;
        rule.validate()?;
        Ok(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATTERY: &str = r#"{
        "rule_id": "battery-fade", "name": "Battery voltage falling fast",
        "scope": {"device_type": "battery-box"}, "metric": "voltage",
        "condition": {"rate_of_change": {"per_hour": -0.05, "window_seconds": 21600}},
        "for": {"readings": 3}, "severity": "critical", "renotify_after": 3600,
        "actions": {"on_alarm": {"load_shedding": true}, "on_ok": {"load_shedding": false}}
    }"#;

    #[test]
    fn a_full_rule_parses() {
        let rule = AlertRule::from_json(BATTERY).unwrap();
        assert!(rule.enabled);
        assert_eq!(rule.scope, Scope::DeviceType("battery-box".into()));
        assert_eq!(rule.debounce, Some(Debounce::Readings(3)));
        assert_eq!(
            rule.condition,
            Condition::RateOfChange(RateOfChange {
                per_hour: -0.05,
                window_seconds: 21600
            })
        );
        let again = AlertRule::from_json(&serde_json::to_string(&rule).unwrap()).unwrap();
        assert_eq!(again, rule);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"rule_id":"a"}"#, "(top level)"),
            (&BATTERY.replace("\"critical\"", "\"urgent\""), "severity"),
            (
                &BATTERY.replace("-0.05", "\"fast\""),
                "condition.rate_of_change.per_hour",
            ),
            (
                &BATTERY.replace("21600", "5"),
                "condition.rate_of_change.window_seconds",
            ),
            (&BATTERY.replace("\"voltage\"", "\"9v\""), "metric"),
            (&BATTERY.replace("battery-fade", "bad id!"), "rule_id"),
            (&BATTERY.replace("battery-fade", "no_data"), "rule_id"),
            (
                &BATTERY.replace("{\"readings\": 3}", "{\"readings\": 0}"),
                "for.readings",
            ),
            (
                &BATTERY.replace("{\"load_shedding\": true}", "[1]"),
                "actions.on_alarm",
            ),
            (&BATTERY.replace("\"metric\"", "\"metrc\""), "metrc"),
        ];
        for (json, field) in cases {
            let err = AlertRule::from_json(json).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }
}
