//! Alert rules: what to watch, when it is wrong, when it is right again.
//!
//! The JSON form (CLI files, the rules table) is documented in the README, section Alerting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::whole_number;
use crate::domain::{DeviceDimensions, LocationPath};

use crate::domain::is_valid_metric_name;

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

/// Whether `condition` fires on `measured` (the measure its rule computes).
pub fn condition_fires(condition: &Condition, m: f64) -> bool {
    match *condition {
        Condition::Above(t) => m > t,
        Condition::Below(t) => m < t,
        Condition::Outside([l, h]) => m < l || m > h,
        Condition::Inside([l, h]) => (l..=h).contains(&m),
        Condition::RateOfChange(r) if r.per_hour < 0.0 => m < r.per_hour,
        Condition::RateOfChange(r) => m > r.per_hour,
        Condition::Forecast(f) => match f.threshold() {
            (t, true) => m < t,
            (t, false) => m > t,
        },
        Condition::Anomaly(a) => m > a.threshold,
    }
}

/// Whether `higher` fires only where `lower` fires, on the same measure: the shape a level
/// above another must have (a stricter threshold of the same kind).
fn stricter(lower: &Condition, higher: &Condition) -> bool {
    use Condition as C;
    match (*lower, *higher) {
        (C::Above(l), C::Above(h)) => h > l,
        (C::Below(l), C::Below(h)) => h < l,
        (C::Outside([ll, lh]), C::Outside([hl, hh])) => {
            hl <= ll && hh >= lh && (hl, hh) != (ll, lh)
        }
        (C::Inside([ll, lh]), C::Inside([hl, hh])) => hl >= ll && hh <= lh && (hl, hh) != (ll, lh),
        (C::RateOfChange(l), C::RateOfChange(h)) => {
            l.window_seconds == h.window_seconds
                && l.per_hour.signum() == h.per_hour.signum()
                && h.per_hour.abs() > l.per_hour.abs()
        }
        (C::Forecast(l), C::Forecast(h)) => {
            let ((lt, lf), (ht, hf)) = (l.threshold(), h.threshold());
            l.window_seconds == h.window_seconds
                && l.within_seconds == h.within_seconds
                && lf == hf
                && if lf { ht < lt } else { ht > lt }
        }
        (C::Anomaly(l), C::Anomaly(h)) => {
            l.baseline_seconds == h.baseline_seconds && h.threshold > l.threshold
        }
        _ => false,
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

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    Above(f64),
    Below(f64),
    /// Alarm when the value leaves `[low, high]`.
    Outside([f64; 2]),
    /// Alarm when the value enters `[low, high]`.
    Inside([f64; 2]),
    RateOfChange(RateOfChange),
    /// Alarm when the trend fitted over the last `window_seconds` is predicted to cross the
    /// threshold within `within_seconds`.
    Forecast(Forecast),
    /// Alarm when a reading is further from the device's own recent baseline (median) than
    /// `threshold` robust deviations (MAD).
    Anomaly(Anomaly),
}

/// `{"forecast": {"below": 11.8, "within_seconds": 172800, "window_seconds": 86400}}` (or
/// `above`): exactly one of `below` and `above`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forecast {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    #[serde(deserialize_with = "whole_number::exact")]
    pub within_seconds: u64,
    #[serde(deserialize_with = "whole_number::exact")]
    pub window_seconds: u64,
}

impl Forecast {
    /// The threshold, and whether the alarm is for falling below it.
    pub fn threshold(&self) -> (f64, bool) {
        match (self.below, self.above) {
            (Some(t), _) => (t, true),
            (None, Some(t)) => (t, false),
            (None, None) => (f64::NAN, true),
        }
    }
}

/// `{"anomaly": {"threshold": 4, "baseline_seconds": 86400}}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anomaly {
    pub threshold: f64,
    #[serde(deserialize_with = "whole_number::exact")]
    pub baseline_seconds: u64,
}

/// The metric changes faster than `per_hour` (negative: falling, positive: rising), measured as
/// the least-squares slope of the samples in the last `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateOfChange {
    pub per_hour: f64,
    #[serde(deserialize_with = "whole_number::exact")]
    pub window_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Clear {
    Value(f64),
    Range([f64; 2]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Debounce {
    /// N consecutive readings with the condition true.
    Readings(#[serde(deserialize_with = "whole_number::exact")] u32),
    /// The condition true for S seconds of event time.
    Seconds(#[serde(deserialize_with = "whole_number::exact")] u64),
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

    /// The semantic checks serde cannot express.
    pub fn validate(&self) -> Result<(), RuleError> {
        let id_ok = !self.rule_id.is_empty()
            && self.rule_id.len() <= MAX_RULE_ID_LEN
            && self
                .rule_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !id_ok {
            return Err(rule_error(
                "rule_id",
                "must be 1-64 characters of [A-Za-z0-9._-]",
            ));
        }
        if self.rule_id == NO_DATA_RULE_ID {
            return Err(rule_error(
                "rule_id",
                "'no_data' is the built-in silence alert (set a device's heartbeat_seconds instead): choose another id",
            ));
        }
        // Spaces, tabs and line breaks only: the same test as openapi.yaml's pattern.
        if self
            .name
            .bytes()
            .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            return Err(rule_error("name", "must not be empty or blank"));
        }
        if !is_valid_metric_name(&self.metric) {
            return Err(rule_error(
                "metric",
                "must be a metric name (^[A-Za-z][A-Za-z0-9_.-]{0,63}$)",
            ));
        }
        if let Scope::DeviceId(id) | Scope::DeviceType(id) = &self.scope
            && id.is_empty()
        {
            return Err(rule_error("scope", "must name a device id or device type"));
        }
        if matches!(&self.scope, Scope::Path(place) if place.is_empty()) {
            return Err(rule_error(
                "scope.path",
                "must name a place (site[/zone[/section[/spot]]]); the whole fleet is \"all\"",
            ));
        }
        let finite = |field: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(rule_error(field, "must be a finite number"))
            }
        };
        match (self.condition, self.clear) {
            (Condition::Above(t), clear) => {
                finite("condition.above", t)?;
                match clear {
                    None => {}
                    Some(Clear::Value(c)) if c <= t => {}
                    Some(_) => {
                        return Err(rule_error(
                            "clear",
                            format!("must be a number at or below the 'above' threshold {t}"),
                        ));
                    }
                }
            }
            (Condition::Below(t), clear) => {
                finite("condition.below", t)?;
                match clear {
                    None => {}
                    Some(Clear::Value(c)) if c >= t => {}
                    Some(_) => {
                        return Err(rule_error(
                            "clear",
                            format!("must be a number at or above the 'below' threshold {t}"),
                        ));
                    }
                }
            }
            (Condition::Outside([low, high]), clear) => {
                range_ok("condition.outside", low, high)?;
                match clear {
                    None => {}
                    Some(Clear::Range([cl, ch])) if cl >= low && ch <= high && cl <= ch => {}
                    Some(_) => {
                        return Err(rule_error(
                            "clear",
                            format!("must be a range [low, high] inside [{low}, {high}]"),
                        ));
                    }
                }
            }
            (Condition::Inside([low, high]), clear) => {
                range_ok("condition.inside", low, high)?;
                match clear {
                    None => {}
                    Some(Clear::Range([cl, ch])) if cl <= low && ch >= high => {}
                    Some(_) => {
                        return Err(rule_error(
                            "clear",
                            format!("must be a range [low, high] containing [{low}, {high}]"),
                        ));
                    }
                }
            }
            (Condition::Forecast(f), clear) => {
                let (threshold, falling) = match (f.below, f.above) {
                    (Some(t), None) => (t, true),
                    (None, Some(t)) => (t, false),
                    _ => {
                        return Err(rule_error(
                            "condition.forecast",
                            "must have exactly one of below and above",
                        ));
                    }
                };
                finite("condition.forecast", threshold)?;
                for (field, seconds) in [
                    ("condition.forecast.within_seconds", f.within_seconds),
                    ("condition.forecast.window_seconds", f.window_seconds),
                ] {
                    if !(60..=MAX_FORECAST_SECONDS).contains(&seconds) {
                        return Err(rule_error(
                            field,
                            "must be between 60 and 2592000 (30 days)",
                        ));
                    }
                }
                match clear {
                    None => {}
                    Some(Clear::Value(c))
                        if (falling && c >= threshold) || (!falling && c <= threshold) => {}
                    Some(_) => {
                        return Err(rule_error(
                            "clear",
                            format!(
                                "must be a predicted level on the OK side of the threshold {threshold}"
                            ),
                        ));
                    }
                }
            }
            (Condition::Anomaly(a), clear) => {
                if !(a.threshold.is_finite() && a.threshold > 0.0) {
                    return Err(rule_error(
                        "condition.anomaly.threshold",
                        "must be a positive number of robust deviations (4 is a good start)",
                    ));
                }
                if !(3600..=MAX_FORECAST_SECONDS).contains(&a.baseline_seconds) {
                    return Err(rule_error(
                        "condition.anomaly.baseline_seconds",
                        "must be between 3600 and 2592000 (30 days)",
                    ));
                }
                match clear {
                    None => {}
                    Some(Clear::Value(c)) if c > 0.0 && c <= a.threshold => {}
                    Some(_) => {
                        return Err(rule_error(
                            "clear",
                            format!(
                                "must be a score above 0 and at most the threshold {}",
                                a.threshold
                            ),
                        ));
                    }
                }
            }
            (Condition::RateOfChange(rate), clear) => {
                finite("condition.rate_of_change.per_hour", rate.per_hour)?;
                if rate.per_hour == 0.0 {
                    return Err(rule_error(
                        "condition.rate_of_change.per_hour",
                        "must be non-zero: negative for falling, positive for rising",
                    ));
                }
                if !(60..=7 * 86_400).contains(&rate.window_seconds) {
                    return Err(rule_error(
                        "condition.rate_of_change.window_seconds",
                        "must be between 60 and 604800 (7 days)",
                    ));
                }
                match clear {
                    None => {}
                    Some(Clear::Value(c))
                        if c.is_finite()
                            && c.signum() == rate.per_hour.signum()
                            && c.abs() <= rate.per_hour.abs() => {}
                    Some(_) => {
                        return Err(rule_error(
                            "clear",
                            format!(
                                "must be a rate per hour of the same sign as, and no steeper than, {}",
                                rate.per_hour
                            ),
                        ));
                    }
                }
            }
        }
        let mut lower = (self.severity, &self.condition);
        for (severity, condition) in &self.levels {
            let field = format!("levels.{}", severity.as_str());
            range_or_finite(&field, condition)?;
            if !stricter(lower.1, condition) {
                return Err(rule_error(
                    &field,
                    format!(
                        "must be the same kind of condition as the {} level, with a stricter threshold (it may only fire where {} fires)",
                        lower.0.as_str(),
                        lower.0.as_str()
                    ),
                ));
            }
            lower = (*severity, condition);
        }
        if let Some(f) = self.flapping {
            if !(1..=MAX_FLAPPING_CHANGES).contains(&f.high) {
                return Err(rule_error(
                    "flapping.high",
                    "must be between 1 and 20 state changes",
                ));
            }
            if f.low >= f.high {
                return Err(rule_error("flapping.low", "must be below flapping.high"));
            }
            if !(60..=7 * 86_400).contains(&f.window_seconds) {
                return Err(rule_error(
                    "flapping.window_seconds",
                    "must be between 60 and 604800 (7 days)",
                ));
            }
        }
        match self.debounce {
            Some(Debounce::Readings(0)) => {
                return Err(rule_error("for.readings", "must be at least 1"));
            }
            Some(Debounce::Seconds(s)) if s > 7 * 86_400 => {
                return Err(rule_error("for.seconds", "must be at most 604800 (7 days)"));
            }
            _ => {}
        }
        if self.renotify_after == Some(0) {
            return Err(rule_error(
                "renotify_after",
                "must be at least 1 second (or omitted)",
            ));
        }
        for (field, patch) in [
            ("actions.on_alarm", &self.actions.on_alarm),
            ("actions.on_ok", &self.actions.on_ok),
        ] {
            if let Some(patch) = patch
                && !patch.is_object()
            {
                return Err(rule_error(
                    field,
                    "must be a JSON object: the shadow 'desired' patch",
                ));
            }
        }
        Ok(())
    }
}

/// A level's own numbers must be usable (finite, ranges ordered); its kind is checked after.
fn range_or_finite(field: &str, condition: &Condition) -> Result<(), RuleError> {
    let number = |v: f64| {
        if v.is_finite() {
            Ok(())
        } else {
            Err(rule_error(field, "must be a finite number"))
        }
    };
    match *condition {
        Condition::Outside([l, h]) | Condition::Inside([l, h]) => range_ok(field, l, h),
        Condition::RateOfChange(r) => number(r.per_hour),
        Condition::Forecast(f) => number(f.threshold().0),
        Condition::Anomaly(a) => number(a.threshold),
        Condition::Above(t) | Condition::Below(t) => number(t),
    }
}

fn range_ok(field: &str, low: f64, high: f64) -> Result<(), RuleError> {
    if low.is_finite() && high.is_finite() && low <= high {
        Ok(())
    } else {
        Err(rule_error(
            field,
            "must be [low, high] with finite low <= high",
        ))
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

    #[test]
    fn hysteresis_must_point_the_right_way() {
        let above = |clear: &str| {
            format!(
                r#"{{"rule_id":"r","name":"n","scope":"all","metric":"t","condition":{{"above":80}},"clear":{clear},"severity":"warning"}}"#
            )
        };
        assert!(AlertRule::from_json(&above("75")).is_ok());
        assert_eq!(
            AlertRule::from_json(&above("85")).unwrap_err().field,
            "clear"
        );
        let outside = |clear: &str| {
            format!(
                r#"{{"rule_id":"r","name":"n","scope":{{"device_id":"ac-1"}},"metric":"t","condition":{{"outside":[18,26]}},"clear":{clear},"severity":"info"}}"#
            )
        };
        assert!(AlertRule::from_json(&outside("[19,25]")).is_ok());
        assert_eq!(
            AlertRule::from_json(&outside("[17,25]")).unwrap_err().field,
            "clear"
        );
    }
}
