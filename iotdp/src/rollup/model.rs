//! What the rollup feature stores and remembers. Pure.

use crate::domain::{HIERARCHY_LEVELS, LocationPath};
use crate::rollup::aggregate::Aggregates;
use crate::rollup::tier::{Coverage, Tier};

/// Whose readings a row aggregates: one device, or every device at or below a place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SeriesKey {
    Device(String),
    /// A site, zone, section or spot (by the path's depth).
    Group(LocationPath),
}

/// The `level` a device row is stored under (a group's is its hierarchy level).
pub const DEVICE_LEVEL: &str = "device";

impl SeriesKey {
    /// `device`, `site`, `zone`, `section` or `spot`.
    pub fn level(&self) -> &'static str {
        match self {
            SeriesKey::Device(_) => DEVICE_LEVEL,
            SeriesKey::Group(path) => HIERARCHY_LEVELS
                .get(path.segments().len().saturating_sub(1))
                .copied()
                .unwrap_or("site"),
        }
    }

    /// The device id, or the group's path (`wall-1/zone-a`).
    pub fn name(&self) -> String {
        match self {
            SeriesKey::Device(id) => id.clone(),
            SeriesKey::Group(path) => path.to_string(),
        }
    }

    /// Back from what [`level`](Self::level) and [`name`](Self::name) stored; `None` for a
    /// pair no row was written with.
    pub fn parse(level: &str, name: &str) -> Option<Self> {
        if level == DEVICE_LEVEL {
            return Some(SeriesKey::Device(name.to_owned()));
        }
        let path = LocationPath::parse(name).ok()?;
        let depth = HIERARCHY_LEVELS.iter().position(|l| *l == level)? + 1;
        (path.segments().len() == depth).then_some(SeriesKey::Group(path))
    }
}

/// One window of one series and metric, with its provenance: the readings it counts
/// (`aggregates.count`), the window (`window_start_ms`, and the tier's length), and when it
/// was computed (a recomputation has a later `computed_at_ms` and replaces it).
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    pub tier: Tier,
    pub key: SeriesKey,
    pub metric: String,
    pub window_start_ms: i64,
    pub aggregates: Aggregates,
    pub computed_at_ms: i64,
}

impl RollupRow {
    pub fn window_end_ms(&self) -> i64 {
        self.window_start_ms + self.tier.millis()
    }
}

/// Which rows of a tier a read wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSelection<'a> {
    /// Every row (the job, rolling a tier up into the next).
    All,
    Device {
        device_id: &'a str,
        metric: &'a str,
    },
    /// The groups one level below `within` (the zones of a site, the spots of a section).
    Children {
        within: &'a LocationPath,
        metric: &'a str,
    },
}

impl RowSelection<'_> {
    /// Whether `row` is one this selection wants (the memory store filters with this; the
    /// real stores put the same conditions in their queries).
    pub fn matches(&self, row: &RollupRow) -> bool {
        match self {
            RowSelection::All => true,
            RowSelection::Device { device_id, metric } => {
                row.metric == *metric && row.key == SeriesKey::Device((*device_id).to_owned())
            }
            RowSelection::Children { within, metric } => {
                row.metric == *metric
                    && match &row.key {
                        SeriesKey::Group(path) => {
                            path.segments().len() == within.segments().len() + 1
                                && path.starts_with(within)
                        }
                        SeriesKey::Device(_) => false,
                    }
            }
        }
    }
}

/// The job's durable state: what is covered, and the finest tier kept over it. Late windows
/// are kept beside it as [`LateMark`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobState {
    pub since_ms: i64,
    pub watermark_ms: i64,
    /// The finest tier the job keeps over the coverage (`RollupFinestTier`, or with `auto` what
    /// the job measured when it started the coverage); the reader reads it under `auto`.
    /// `None`: `auto` has measured nothing yet (no device has reported twice in the sample),
    /// and no 1-minute rows are kept meanwhile; a measurement that asks for them starts the
    /// coverage again at its day. State written before the field existed reads as 1 minute.
    pub finest: Option<Tier>,
}

impl JobState {
    pub fn coverage(&self) -> Coverage {
        Coverage {
            since_ms: self.since_ms,
            watermark_ms: self.watermark_ms,
        }
    }
}

/// What a store's upkeep did before a run (the lake's compaction).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Upkeep {
    /// Partitions rewritten into one object each.
    pub partitions_rewritten: usize,
    /// Objects those rewrites replaced.
    pub objects_replaced: usize,
    /// Rows the rewritten objects hold.
    pub rows_rewritten: usize,
}

/// A 1-minute window that received readings after the job may have computed it. `token`
/// changes each time the window is marked, so the job clears only the marks it has handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateMark {
    pub window_start_ms: i64,
    pub token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_level_and_name() {
        for key in [
            SeriesKey::Device("ac-1".into()),
            SeriesKey::Group(LocationPath::parse("wall-1").unwrap()),
            SeriesKey::Group(LocationPath::parse("wall-1/z/s/spot-3").unwrap()),
        ] {
            assert_eq!(SeriesKey::parse(key.level(), &key.name()), Some(key));
        }
        assert_eq!(SeriesKey::parse("zone", "wall-1"), None);
        assert_eq!(SeriesKey::parse("floor", "wall-1"), None);
    }
}
