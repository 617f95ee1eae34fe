//! The rollup job: each run computes the 1-minute windows that closed since the last one and
//! the late-marked windows, then the hours and days they complete or change, and moves the
//! watermark. Its work grows with new and late data, never with history: a run reads the raw
//! readings of the windows it computes and the finer rows of the coarser windows it touches.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::domain::LocationPath;
use crate::query::model::TimeRange;
use crate::rollup::compute::{roll_up, rows_from_readings, sort_rows};
use crate::rollup::finest::{FinestTier, IntervalSample};
use crate::rollup::model::{JobState, RowSelection, Upkeep};
use crate::rollup::model::{RollupRow, SeriesKey};
use crate::rollup::ports::{RollupError, RollupStateStore, RollupStore};
use crate::rollup::tier::Tier;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// By default, a raw read over this many readings makes the next span half as long (see
/// `RollupJob::compute_from_raw`): about 70 MB of readings in memory.
pub const MAX_READINGS_PER_READ: usize = 200_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupSettings {
    /// How long after its end a window is computed (readings arriving later are late).
    pub grace: Duration,
    /// Most new 1-minute windows one run computes (a job behind catches up over several).
    pub max_windows_per_run: usize,
    /// Raw readings are read at most this many 1-minute windows at a time…
    pub windows_per_read: usize,
    /// …and in shorter spans while a read returns more than this many readings.
    pub max_readings_per_read: usize,
    /// The finest tier kept (`RollupFinestTier`). `Hour` keeps no 1-minute rows: hours are
    /// computed from raw readings when they close, and queries read raw for what hours cannot
    /// answer. For devices reporting less than once a minute a 1-minute row repeats the raw
    /// reading, at the price of a row per metric per series. `Auto` measures the reporting
    /// intervals when the coverage starts (see [`crate::rollup::finest`]) and records the
    /// tier in the state. The default here is 1 minute, as before `auto`; the deployed
    /// functions' default (`ROLLUP_FINEST_TIER` unset) is `auto`.
    pub finest: FinestTier,
}

impl Default for RollupSettings {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(120),
            max_windows_per_run: 24 * 60,
            windows_per_read: 60,
            max_readings_per_read: MAX_READINGS_PER_READ,
            finest: FinestTier::Fixed(Tier::Minute),
        }
    }
}

/// What one run did, for logs, metrics and the live view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunReport {
    /// New 1-minute windows computed.
    pub windows: usize,
    /// Already computed 1-minute windows computed again because late readings marked them.
    pub late_windows: usize,
    pub hours: usize,
    pub days: usize,
    pub rows_written: usize,
    pub raw_readings: usize,
    pub watermark_ms: i64,
    /// How far the watermark is behind now (the grace included).
    pub lag_ms: i64,
    /// The finest tier the state records after the run (`None`: `auto` has measured nothing
    /// yet, and keeps no 1-minute rows meanwhile).
    pub finest: Option<Tier>,
    /// The store's upkeep before the run (the lake's compaction).
    pub upkeep: Upkeep,
}

/// While `auto` has not decided, a run measures at least this much of the latest readings
/// (a device reporting every few minutes shows a few gaps in it).
const SAMPLE_MS: i64 = 3_600_000;

pub struct RollupJob<S, T> {
    store: S,
    state: T,
    settings: RollupSettings,
    /// The span the last raw read of this instance settled on: the next run starts there, so
    /// a caught-up run reads its minutes in one query instead of doubling up from a second
    /// each time (six queries a minute, each a Timestream query's minimum charge).
    settled_span_ms: std::sync::atomic::AtomicI64,
}

impl<S: RollupStore, T: RollupStateStore> RollupJob<S, T> {
    pub fn new(store: S, state: T, settings: RollupSettings) -> Self {
        Self {
            store,
            state,
            settings,
            settled_span_ms: std::sync::atomic::AtomicI64::new(1000),
        }
    }

    pub fn settings(&self) -> RollupSettings {
        self.settings
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn state(&self) -> &T {
        &self.state
    }

    /// The last window start that has closed at `now_ms`.
    fn target(&self, now_ms: i64) -> i64 {
        Tier::Minute.window_start(now_ms - self.settings.grace.as_millis() as i64)
    }

    /// One scheduled run at `now_ms`.
    pub async fn run(&self, now_ms: i64) -> Result<RunReport, RollupError> {
        // Upkeep first, so the run reads compacted partitions; a failed one loses nothing
        // (what it would rewrite stays readable as written) and is tried again next run.
        let upkeep = match self.store.upkeep(now_ms).await {
            Ok(upkeep) => upkeep,
            Err(e) => {
                tracing::warn!(error = %e, "store upkeep failed; the next run tries again");
                Upkeep::default()
            }
        };
        let target = self.target(now_ms);
        let previous = self.state.coverage().await?;
        // The first run starts at the beginning of the current day: everything before is
        // answered from raw readings until `iotdp rollups rebuild` covers it.
        let mut current = previous.unwrap_or(JobState {
            since_ms: Tier::Day.window_start(target),
            watermark_ms: Tier::Day.window_start(target),
            finest: None,
        });
        let max_new = self.settings.max_windows_per_run as i64 * Tier::Minute.millis();
        let new_watermark = target
            .min(current.watermark_ms + max_new)
            .max(current.watermark_ms);
        let mut report = RunReport {
            windows: ((new_watermark - current.watermark_ms) / Tier::Minute.millis()) as usize,
            watermark_ms: new_watermark,
            lag_ms: now_ms - new_watermark,
            upkeep,
            ..RunReport::default()
        };
        let mut finest = match self.settings.finest {
            FinestTier::Fixed(tier) => Some(tier),
            FinestTier::Auto => current.finest,
        };
        if finest.is_none() && new_watermark > current.watermark_ms {
            // `auto`, nothing decided yet (the coverage starts, or no device has reported
            // twice): measure the readings of the windows this run computes, and at least the
            // last hour's, before computing them.
            let sample = TimeRange {
                from_ms: current.watermark_ms.min(new_watermark - SAMPLE_MS),
                to_ms: new_watermark,
            };
            finest = self.measure(sample, &mut report).await?;
            if let Some(tier) = finest {
                tracing::info!(finest = tier.name(), "rollups: finest tier measured");
            }
        }
        // Undecided keeps no 1-minute rows (hours from raw, as with `1h`).
        let kept = finest.unwrap_or(Tier::Hour);
        report.finest = finest;
        // 1-minute rows from now on, over a coverage kept without them (undecided, or `1h`
        // before): the coverage starts again at the current day, whose minutes are computed
        // below; the days before are read raw until `iotdp rollups rebuild` covers them.
        let mut backfill = None;
        if kept == Tier::Minute
            && previous.is_some_and(|p| p.finest != Some(Tier::Minute))
            && current.watermark_ms > current.since_ms
        {
            let day = Tier::Day.window_start(current.watermark_ms);
            current.since_ms = current.since_ms.max(day);
            if current.watermark_ms > current.since_ms {
                backfill = Some(TimeRange {
                    from_ms: current.since_ms,
                    to_ms: current.watermark_ms,
                });
            }
            tracing::info!(
                since_ms = current.since_ms,
                "rollups: 1-minute rows kept from now on; the coverage starts again at the day"
            );
        }
        let marks = self.state.late_marks().await?;
        let late: BTreeSet<i64> = marks
            .iter()
            .map(|m| m.window_start_ms)
            .filter(|w| *w >= current.since_ms && *w < current.watermark_ms)
            .collect();

        report.late_windows = late.len();
        let mut minutes: Vec<TimeRange> = late
            .iter()
            .map(|&w| TimeRange {
                from_ms: w,
                to_ms: w + Tier::Minute.millis(),
            })
            .collect();
        minutes.extend(backfill);
        if new_watermark > current.watermark_ms {
            minutes.push(TimeRange {
                from_ms: current.watermark_ms,
                to_ms: new_watermark,
            });
        }
        if kept == Tier::Minute {
            for range in merge_adjacent(minutes) {
                self.compute_from_raw(
                    Some(Tier::Minute),
                    range,
                    &LocationPath::default(),
                    now_ms,
                    &mut report,
                    None,
                )
                .await?;
            }
        }

        // Coarser windows: those the new watermark closes, and the closed ones a late window
        // sits in.
        let mut touched: BTreeSet<i64> = late.iter().copied().collect();
        touched.extend(
            (current.watermark_ms..new_watermark)
                .step_by(Tier::Minute.millis() as usize)
                .filter(|w| (w + Tier::Minute.millis()) % Tier::Hour.millis() == 0),
        );
        for tier in [Tier::Hour, Tier::Day] {
            let windows: BTreeSet<i64> = touched
                .iter()
                .map(|w| tier.window_start(*w))
                .filter(|w| w + tier.millis() <= new_watermark && *w >= current.since_ms)
                .collect();
            for &window in &windows {
                self.compute_coarse(tier, kept, window, now_ms, &mut report)
                    .await?;
            }
            match tier {
                Tier::Hour => report.hours = windows.len(),
                _ => report.days = windows.len(),
            }
        }

        let next = JobState {
            since_ms: current.since_ms,
            watermark_ms: new_watermark,
            finest,
        };
        if previous != Some(next) {
            self.state.save_coverage(previous, next).await?;
        }
        if !marks.is_empty() {
            self.state.clear_marks(&marks).await?;
        }
        Ok(report)
    }

    /// The finest tier the readings of `range` need ([`IntervalSample::decision`]).
    async fn measure(
        &self,
        range: TimeRange,
        report: &mut RunReport,
    ) -> Result<Option<Tier>, RollupError> {
        let mut sample = IntervalSample::default();
        let within = LocationPath::default();
        self.compute_from_raw(None, range, &within, 0, report, Some(&mut sample))
            .await?;
        Ok(sample.decision())
    }

    /// Rows of `tier` (the finest kept) for `range` (whole windows) from raw readings at or
    /// below `within`; with no `tier`, only the readings' intervals into `sample`.
    ///
    /// Raw readings are read a span at a time, the span adapting to the fleet's density: it
    /// starts at one second (then where the last run left it), doubles (up to `windows_per_read` minutes) while reads stay under
    /// a quarter of `max_readings_per_read`, and halves (down to a second) when one goes over, so a run
    /// holds a bounded number of readings whatever the load (a minute of a 32,000 readings/s
    /// fleet is 1.9 million). Aggregates merge exactly, so a window read in several spans
    /// gets the same row; each window is written once all of it has been read.
    async fn compute_from_raw(
        &self,
        tier: Option<Tier>,
        range: TimeRange,
        within: &LocationPath,
        now_ms: i64,
        report: &mut RunReport,
        mut sample: Option<&mut IntervalSample>,
    ) -> Result<(), RollupError> {
        let longest = self.settings.windows_per_read.max(1) as i64 * Tier::Minute.millis();
        // A fresh instance starts from a second, so its first read is as bounded as the others;
        // later runs start from the span the fleet's density settled on.
        let mut span = self
            .settled_span_ms
            .load(std::sync::atomic::Ordering::Relaxed)
            .clamp(1000.min(longest), longest);
        let mut open: HashMap<(SeriesKey, String, i64), RollupRow> = HashMap::new();
        let mut from = range.from_ms;
        while from < range.to_ms {
            let to = (from + span).min(range.to_ms);
            let readings = self
                .store
                .raw_readings(
                    TimeRange {
                        from_ms: from,
                        to_ms: to,
                    },
                    within,
                )
                .await?;
            report.raw_readings += readings.len();
            let read = readings.len();
            if let Some(sample) = sample.as_deref_mut() {
                sample.add(&readings);
            }
            let rows = match tier {
                Some(tier) => rows_from_readings(&readings, tier, now_ms),
                None => vec![],
            };
            for row in rows {
                match open.entry((row.key.clone(), row.metric.clone(), row.window_start_ms)) {
                    Entry::Occupied(mut merged) => {
                        merged.get_mut().aggregates.merge(&row.aggregates);
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(row);
                    }
                }
            }
            drop(readings);
            from = to;
            // Every window that ends by `from` has been read whole.
            let complete: Vec<_> = open
                .keys()
                .filter(|(_, _, start)| tier.is_some_and(|t| start + t.millis() <= from))
                .cloned()
                .collect();
            if let (Some(tier), false) = (tier, complete.is_empty()) {
                let mut rows: Vec<RollupRow> =
                    complete.iter().filter_map(|k| open.remove(k)).collect();
                sort_rows(&mut rows);
                self.store.write_rollups(tier, &rows).await?;
                report.rows_written += rows.len();
            }
            let most = self.settings.max_readings_per_read.max(1);
            span = if read > most {
                (span / 2).max(1000)
            } else if read < most / 4 {
                (span * 2).min(longest)
            } else {
                span
            };
            self.settled_span_ms
                .store(span, std::sync::atomic::Ordering::Relaxed);
        }
        let mut rest: Vec<RollupRow> = open.into_values().collect();
        if let (Some(tier), false) = (tier, rest.is_empty()) {
            sort_rows(&mut rest);
            self.store.write_rollups(tier, &rest).await?;
            report.rows_written += rest.len();
        }
        Ok(())
    }

    /// One window of `tier` from the rows of the tier below it, or from raw readings when it
    /// is `finest`, the finest tier kept.
    async fn compute_coarse(
        &self,
        tier: Tier,
        finest: Tier,
        window: i64,
        now_ms: i64,
        report: &mut RunReport,
    ) -> Result<(), RollupError> {
        let finer = tier.finer().unwrap_or(Tier::Minute);
        let range = TimeRange {
            from_ms: window,
            to_ms: window + tier.millis(),
        };
        if tier == finest {
            let within = LocationPath::default();
            return self
                .compute_from_raw(Some(tier), range, &within, now_ms, report, None)
                .await;
        }
        let rows = self.store.rollups(finer, range, RowSelection::All).await?;
        let coarse = roll_up(&rows, tier, now_ms);
        self.store.write_rollups(tier, &coarse).await?;
        report.rows_written += coarse.len();
        Ok(())
    }

    /// Recompute `range` (widened to whole days, and up to where the rollups begin so no gap
    /// is left) for the readings at or below `within`: after an import, a corrected batch or a
    /// changed tier. Idempotent. `progress(done, total)` is called after each day, newest
    /// first.
    ///
    /// With `auto`, a rebuild of the whole fleet starts the coverage's decision again: the
    /// finest tier is measured from the readings it reads (the newest day first, until a gap is
    /// measured) and recorded. Hours to minutes only when it rebuilds all the coverage (every
    /// covered day needs 1-minute rows then); otherwise the state keeps hours.
    pub async fn rebuild(
        &self,
        range: TimeRange,
        within: &LocationPath,
        now_ms: i64,
        mut progress: impl FnMut(usize, usize) + Send,
    ) -> Result<RunReport, RollupError> {
        let target = self.target(now_ms);
        let previous = self.state.coverage().await?;
        let from = Tier::Day.window_start(range.from_ms);
        let to = match previous {
            Some(c) => Tier::Day
                .ceil(range.to_ms)
                .max(c.since_ms)
                .min(c.watermark_ms),
            None => Tier::Day.ceil(range.to_ms).min(target),
        };
        let mut report = RunReport::default();
        let recorded = previous.and_then(|c| c.finest);
        let measuring =
            self.settings.finest == FinestTier::Auto && (within.is_empty() || previous.is_none());
        let mut decided = match self.settings.finest {
            FinestTier::Fixed(tier) => Some(tier),
            FinestTier::Auto if measuring => None,
            FinestTier::Auto => recorded,
        };
        let mut days: Vec<i64> = (from..to).step_by(Tier::Day.millis() as usize).collect();
        days.reverse();
        for (done, &day) in days.iter().enumerate() {
            let day_range = TimeRange {
                from_ms: day,
                to_ms: (day + Tier::Day.millis()).min(to),
            };
            // A day at a time from raw, every tier computed from the one below in memory.
            let readings = self.store.raw_readings(day_range, within).await?;
            report.raw_readings += readings.len();
            if measuring && decided.is_none() {
                // Days come newest first, so each is measured on its own.
                let mut sample = IntervalSample::default();
                sample.add(&readings);
                decided = sample.decision();
            }
            // Until a day decides, every tier is written: whichever the decision, the days
            // rebuilt have its rows.
            let kept = decided.unwrap_or(Tier::Minute);
            let minutes = rows_from_readings(&readings, Tier::Minute, now_ms);
            let mut hours = roll_up(&minutes, Tier::Hour, now_ms);
            hours.retain(|r| r.window_end_ms() <= day_range.to_ms);
            let mut day_rows = roll_up(&hours, Tier::Day, now_ms);
            day_rows.retain(|r| r.window_end_ms() <= day_range.to_ms);
            for (tier, rows) in [
                (Tier::Minute, &minutes),
                (Tier::Hour, &hours),
                (Tier::Day, &day_rows),
            ] {
                if tier < kept {
                    continue;
                }
                self.store.write_rollups(tier, rows).await?;
                report.rows_written += rows.len();
            }
            report.windows += ((day_range.to_ms - day) / Tier::Minute.millis()) as usize;
            progress(done + 1, days.len());
        }
        let whole = within.is_empty()
            && previous.is_none_or(|c| from <= c.since_ms && to >= c.watermark_ms);
        let finest = match (decided, recorded) {
            // Nothing measured: what was recorded stays.
            (None, recorded) => recorded,
            // Covered days outside this rebuild may have no 1-minute rows to read: the state
            // keeps what it recorded (and the next scheduled run that keeps minutes starts
            // the coverage again at its day).
            (Some(Tier::Minute), recorded)
                if recorded != Some(Tier::Minute) && previous.is_some() && !whole =>
            {
                tracing::warn!(
                    "rollups: 1-minute rows over a coverage kept without them take a rebuild of \
                     all of it (from its start, the whole fleet)"
                );
                recorded
            }
            (Some(tier), _) => Some(tier),
        };
        let next = match previous {
            Some(c) => JobState {
                since_ms: c.since_ms.min(from),
                watermark_ms: c.watermark_ms,
                finest,
            },
            None => JobState {
                since_ms: from,
                watermark_ms: to.max(from),
                finest,
            },
        };
        if previous != Some(next) {
            self.state.save_coverage(previous, next).await?;
        }
        report.watermark_ms = next.watermark_ms;
        report.lag_ms = now_ms - next.watermark_ms;
        report.finest = next.finest;
        Ok(report)
    }
}

/// Sorted, with touching ranges joined (fewer, longer raw reads).
fn merge_adjacent(mut ranges: Vec<TimeRange>) -> Vec<TimeRange> {
    ranges.sort_by_key(|r| r.from_ms);
    let mut out: Vec<TimeRange> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match out.last_mut() {
            Some(last) if last.to_ms >= range.from_ms => last.to_ms = last.to_ms.max(range.to_ms),
            _ => out.push(range),
        }
    }
    out
}
