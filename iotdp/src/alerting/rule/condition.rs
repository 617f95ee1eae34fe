//! Conditions: what a rule measures against (a threshold, a range, a rate, a forecast or an
//! anomaly score), when they fire, and the clear and debounce that temper them.

use serde::{Deserialize, Serialize};

use crate::domain::whole_number;

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
