//! The rollup tiers and the window arithmetic the job, the stores and the queries share. Pure.
//!
//! Windows are aligned to the Unix epoch (UTC), so every 1-minute window lies inside one hour
//! and every hour inside one day, and every bin the query API offers that is a whole number of
//! a tier's windows lines up with them.

use crate::query::model::TimeRange;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// A rollup tier: every window of it holds one row per series and metric that had readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    Minute,
    Hour,
    Day,
}

impl Tier {
    /// Finest first.
    pub const ALL: [Tier; 3] = [Tier::Minute, Tier::Hour, Tier::Day];

    pub fn millis(self) -> i64 {
        match self {
            Tier::Minute => MINUTE_MS,
            Tier::Hour => HOUR_MS,
            Tier::Day => DAY_MS,
        }
    }

    /// `1m`, `1h`, `1d`: the name the API's `tiers` field, the CLI and the tables use.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Minute => "1m",
            Tier::Hour => "1h",
            Tier::Day => "1d",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == text)
    }

    /// The tier each window of this one is computed from (`None`: from raw readings).
    pub fn finer(self) -> Option<Tier> {
        match self {
            Tier::Minute => None,
            Tier::Hour => Some(Tier::Minute),
            Tier::Day => Some(Tier::Hour),
        }
    }

    pub fn coarser(self) -> Option<Tier> {
        match self {
            Tier::Minute => Some(Tier::Hour),
            Tier::Hour => Some(Tier::Day),
            Tier::Day => None,
        }
    }

    /// The start of the window holding `time_ms`.
    pub fn window_start(self, time_ms: i64) -> i64 {
        time_ms.div_euclid(self.millis()) * self.millis()
    }

    /// The first window start at or after `time_ms`.
    pub fn ceil(self, time_ms: i64) -> i64 {
        let start = self.window_start(time_ms);
        if start == time_ms {
            start
        } else {
            start + self.millis()
        }
    }

    /// The coarsest tier whose windows tile bins of `bin_ms` (each window inside one bin).
    pub fn for_bin(bin_ms: i64) -> Option<Tier> {
        Self::ALL
            .into_iter()
            .rev()
            .find(|t| bin_ms > 0 && bin_ms % t.millis() == 0)
    }
}

/// As its [`name`](Tier::name), in reports.
impl serde::Serialize for Tier {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Where a part of an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Tier(Tier),
    Raw,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Tier(tier) => tier.name(),
            Source::Raw => "raw",
        }
    }

    /// Coarsest first, as the API lists them: `["1d", "1h", "raw"]`.
    pub fn names(sources: &[Source]) -> Vec<&'static str> {
        let mut sorted = sources.to_vec();
        sorted.sort_by_key(|s| match s {
            Source::Tier(t) => -t.millis(),
            Source::Raw => 0,
        });
        sorted.dedup();
        sorted.into_iter().map(Source::name).collect()
    }
}

/// What the rollup job has computed: every window of every tier that starts at or after
/// `since_ms` and ends at or before `watermark_ms` (`since_ms` is a day boundary, so each tier's
/// windows start there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    pub since_ms: i64,
    pub watermark_ms: i64,
}

/// A part of a query's range and what answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub source: Source,
    pub range: TimeRange,
}

/// `range` split into segments, each answered by the coarsest tier (at most `coarsest`) whose
/// whole windows fit inside it and inside what the job has covered; the rest from raw readings.
/// The segments are in time order and tile `range` exactly.
pub fn cover(range: TimeRange, coverage: Option<Coverage>, coarsest: Tier) -> Vec<Segment> {
    cover_down_to(range, coverage, coarsest, Tier::Minute)
}

/// [`cover`] with no tier finer than `finest` (the job keeps no finer one): what the finest
/// tier cannot answer is read raw.
pub fn cover_down_to(
    range: TimeRange,
    coverage: Option<Coverage>,
    coarsest: Tier,
    finest: Tier,
) -> Vec<Segment> {
    let mut out = Vec::new();
    cover_into(range, coverage, Some(coarsest), finest, &mut out);
    out
}

fn cover_into(
    range: TimeRange,
    coverage: Option<Coverage>,
    tier: Option<Tier>,
    finest: Tier,
    out: &mut Vec<Segment>,
) {
    let tier = tier.filter(|t| *t >= finest);
    if range.from_ms >= range.to_ms {
        return;
    }
    let raw = Segment {
        source: Source::Raw,
        range,
    };
    let (Some(tier), Some(coverage)) = (tier, coverage) else {
        out.push(raw);
        return;
    };
    let covered_from = range.from_ms.max(coverage.since_ms);
    let covered_to = range.to_ms.min(coverage.watermark_ms);
    let start = tier.ceil(covered_from);
    let end = tier.window_start(covered_to);
    if covered_from >= covered_to || start >= end {
        cover_into(range, Some(coverage), tier.finer(), finest, out);
        return;
    }
    cover_into(
        TimeRange {
            from_ms: range.from_ms,
            to_ms: start,
        },
        Some(coverage),
        tier.finer(),
        finest,
        out,
    );
    out.push(Segment {
        source: Source::Tier(tier),
        range: TimeRange {
            from_ms: start,
            to_ms: end,
        },
    });
    cover_into(
        TimeRange {
            from_ms: end,
            to_ms: range.to_ms,
        },
        Some(coverage),
        tier.finer(),
        finest,
        out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = DAY_MS;

    fn range(from_ms: i64, to_ms: i64) -> TimeRange {
        TimeRange { from_ms, to_ms }
    }

    /// Each segment as (source, from, to).
    fn shape(segments: &[Segment]) -> Vec<(&'static str, i64, i64)> {
        segments
            .iter()
            .map(|s| (s.source.name(), s.range.from_ms, s.range.to_ms))
            .collect()
    }

    #[test]
    fn windows_align_to_the_epoch() {
        assert_eq!(Tier::Hour.window_start(3 * HOUR_MS + 5), 3 * HOUR_MS);
        assert_eq!(Tier::Minute.window_start(-1), -MINUTE_MS);
        assert_eq!(Tier::Day.ceil(DAY + 1), 2 * DAY);
        assert_eq!(Tier::Day.ceil(DAY), DAY);
        assert_eq!(Tier::for_bin(DAY_MS), Some(Tier::Day));
        assert_eq!(Tier::for_bin(6 * HOUR_MS), Some(Tier::Hour));
        assert_eq!(Tier::for_bin(5 * MINUTE_MS), Some(Tier::Minute));
        assert_eq!(Tier::for_bin(30_000), None);
    }

    #[test]
    fn a_range_is_answered_by_the_coarsest_windows_that_fit_and_raw_for_the_rest() {
        let coverage = Coverage {
            since_ms: 0,
            watermark_ms: 10 * DAY + 5 * HOUR_MS + 7 * MINUTE_MS,
        };
        let from = DAY - HOUR_MS - 30_000;
        let to = 10 * DAY + 6 * HOUR_MS;
        assert_eq!(
            shape(&cover(range(from, to), Some(coverage), Tier::Day)),
            [
                ("raw", from, DAY - HOUR_MS),
                ("1h", DAY - HOUR_MS, DAY),
                ("1d", DAY, 10 * DAY),
                ("1h", 10 * DAY, 10 * DAY + 5 * HOUR_MS),
                ("1m", 10 * DAY + 5 * HOUR_MS, coverage.watermark_ms),
                ("raw", coverage.watermark_ms, to),
            ]
        );
    }

    /// A job that keeps no 1-minute rows: what hours cannot answer is read raw.
    #[test]
    fn with_hours_the_finest_tier_the_edges_are_raw() {
        let coverage = Coverage {
            since_ms: 0,
            watermark_ms: 10 * DAY + 5 * HOUR_MS + 7 * MINUTE_MS,
        };
        let from = DAY - HOUR_MS - 30_000;
        let to = 10 * DAY + 6 * HOUR_MS;
        assert_eq!(
            shape(&cover_down_to(
                range(from, to),
                Some(coverage),
                Tier::Day,
                Tier::Hour
            )),
            [
                ("raw", from, DAY - HOUR_MS),
                ("1h", DAY - HOUR_MS, DAY),
                ("1d", DAY, 10 * DAY),
                ("1h", 10 * DAY, 10 * DAY + 5 * HOUR_MS),
                ("raw", 10 * DAY + 5 * HOUR_MS, to),
            ]
        );
        // Minute bins ask for minutes: none kept, so raw.
        assert_eq!(
            cover_down_to(range(0, HOUR_MS), Some(coverage), Tier::Minute, Tier::Hour),
            [Segment {
                source: Source::Raw,
                range: range(0, HOUR_MS)
            }]
        );
    }

    #[test]
    fn nothing_before_since_or_without_coverage_comes_from_rollups() {
        let coverage = Coverage {
            since_ms: 5 * DAY,
            watermark_ms: 8 * DAY,
        };
        let segments = cover(range(0, 8 * DAY), Some(coverage), Tier::Day);
        assert_eq!(segments[0].source, Source::Raw);
        assert_eq!(segments[0].range, range(0, 5 * DAY));
        assert_eq!(segments[1].source, Source::Tier(Tier::Day));
        assert_eq!(
            cover(range(0, DAY), None, Tier::Day),
            [Segment {
                source: Source::Raw,
                range: range(0, DAY)
            }]
        );
    }

    #[test]
    fn segments_tile_the_range_for_any_bounds() {
        let coverage = Coverage {
            since_ms: DAY,
            watermark_ms: 3 * DAY + 17 * MINUTE_MS,
        };
        for from in (0..4 * DAY).step_by(7_919_999) {
            for to in ((from + 1)..5 * DAY).step_by(13_000_007) {
                for coarsest in Tier::ALL {
                    let segments = cover(range(from, to), Some(coverage), coarsest);
                    assert_eq!(segments.first().unwrap().range.from_ms, from);
                    assert_eq!(segments.last().unwrap().range.to_ms, to);
                    for pair in segments.windows(2) {
                        assert_eq!(pair[0].range.to_ms, pair[1].range.from_ms);
                    }
                    for s in &segments {
                        if let Source::Tier(t) = s.source {
                            assert!(t <= coarsest);
                            assert_eq!(t.window_start(s.range.from_ms), s.range.from_ms);
                            assert_eq!(t.window_start(s.range.to_ms), s.range.to_ms);
                            assert!(s.range.from_ms >= coverage.since_ms);
                            assert!(s.range.to_ms <= coverage.watermark_ms);
                        }
                    }
                }
            }
        }
        assert_eq!(
            Source::names(&[
                Source::Raw,
                Source::Tier(Tier::Minute),
                Source::Tier(Tier::Day)
            ]),
            ["1d", "1m", "raw"]
        );
    }
}
