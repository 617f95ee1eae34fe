//! The read model: what a query asks of the time-series store and what comes back.

use std::time::Duration;

use crate::domain::{LocationPath, MetricValue};

/// How readings in a bin are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    First,
    Last,
}

impl Aggregate {
    pub const ALL: [Aggregate; 7] = [
        Aggregate::Avg,
        Aggregate::Min,
        Aggregate::Max,
        Aggregate::Sum,
        Aggregate::Count,
        Aggregate::First,
        Aggregate::Last,
    ];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Avg => "avg",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Sum => "sum",
            Aggregate::Count => "count",
            Aggregate::First => "first",
            Aggregate::Last => "last",
        }
    }
}

/// `[from_ms, to_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// One device's metric over a range: raw, or aggregated into bins aligned to the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesQuery {
    pub device_id: String,
    pub metric: String,
    pub range: TimeRange,
    /// `Some((bin, aggregate))`: one point per non-empty bin, stamped with the bin's start.
    pub bins: Option<(Duration, Aggregate)>,
    /// At most this many points, the earliest first: pages continue from the next point's time.
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub time_ms: i64,
    pub value: MetricValue,
}

/// What the registry already knows of a device's latest values (written with its
/// `last_seen`): a store without an index of latest values reads only the readings after it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownLatest {
    /// Each metric's latest value as of the registry's last write.
    pub values: Vec<(String, Point)>,
    /// Every reading newer than `values` was received by then (`None`: unknown).
    pub tail_until_ms: Option<i64>,
}

/// Which devices a fleet-wide query covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetFilter {
    pub device_type: Option<String>,
    /// Devices at or below this place in the hierarchy.
    pub within: LocationPath,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceValue {
    pub device_id: String,
    pub time_ms: i64,
    pub value: MetricValue,
}

/// One group of a drill-down: a zone of a site, a spot of a section.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupValue {
    pub group: String,
    pub value: f64,
}

/// An answer and the sources it was read from, coarsest first (`["1d", "1h", "raw"]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Answered<T> {
    pub value: T,
    pub sources: Vec<&'static str>,
}

impl<T> Answered<T> {
    /// Read from raw readings only.
    pub fn raw(value: T) -> Self {
        Self {
            value,
            sources: vec!["raw"],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A name or value that cannot be queried: says which and why (a 400 for the API).
    #[error("{0}")]
    Invalid(String),
    #[error("time-series store query failed: {0}")]
    Store(String),
}
