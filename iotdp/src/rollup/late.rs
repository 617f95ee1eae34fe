//! Late readings mark their windows. The decision is pure; [`LateMarkingStore`] wraps the
//! ingest path's store so every write that lands readings in a window the job may already
//! have computed marks that window before the write counts as done.

use std::collections::BTreeSet;

use crate::domain::Reading;
use crate::ingest::ports::{StoreError, TimeSeriesStore, WriteReport};
use crate::rollup::ports::LateWindowMarker;
use crate::rollup::tier::Tier;

/// Allowance for clocks of different functions disagreeing: a window is marked if the job
/// could have computed it up to this long before the reading was stored.
pub const CLOCK_MARGIN_MS: i64 = 60_000;

/// The 1-minute windows of `readings` that a job running at or before `stored_at_ms` (give or
/// take [`CLOCK_MARGIN_MS`]) may have computed without them: the job computes a window once
/// its end is `grace_ms` in the past.
pub fn late_windows<'a>(
    readings: impl IntoIterator<Item = &'a Reading>,
    stored_at_ms: i64,
    grace_ms: i64,
) -> Vec<i64> {
    let windows: BTreeSet<i64> = readings
        .into_iter()
        .map(|r| Tier::Minute.window_start(r.time_ms))
        .filter(|start| start + Tier::Minute.millis() + grace_ms <= stored_at_ms + CLOCK_MARGIN_MS)
        .collect();
    windows.into_iter().collect()
}

/// The wall clock, epoch milliseconds.
pub type Clock = fn() -> i64;

fn wall_clock() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A store that marks late windows after each write it passes on.
pub struct LateMarkingStore<S, M> {
    store: S,
    marker: M,
    grace_ms: i64,
    clock: Box<dyn Fn() -> i64 + Send + Sync>,
}

impl<S, M> LateMarkingStore<S, M> {
    pub fn new(store: S, marker: M, grace: std::time::Duration) -> Self {
        Self {
            store,
            marker,
            grace_ms: grace.as_millis() as i64,
            clock: Box::new(wall_clock as Clock),
        }
    }

    /// The same, judging lateness by `clock` (simulated time in tests and the simulator).
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    pub fn inner(&self) -> &S {
        &self.store
    }
}

impl<S: TimeSeriesStore, M: LateWindowMarker> TimeSeriesStore for LateMarkingStore<S, M> {
    fn max_batch_len(&self) -> usize {
        self.store.max_batch_len()
    }

    async fn write(&self, readings: &[Reading]) -> Result<WriteReport, StoreError> {
        let report = self.store.write(readings).await?;
        let stored_at_ms = (self.clock)();
        let stored = readings
            .iter()
            .enumerate()
            .filter(|(i, _)| !report.rejected.iter().any(|r| r.index == *i))
            .map(|(_, r)| r);
        let windows = late_windows(stored, stored_at_ms, self.grace_ms);
        if !windows.is_empty() {
            // Unmarked, the job would never see these readings: retry the write (the store
            // takes the same readings again as the same points) rather than report it done.
            self.marker
                .mark(&windows)
                .await
                .map_err(|e| StoreError::Retryable {
                    message: format!(
                        "readings stored, but marking their windows late for the rollup job failed: {e}"
                    ),
                    retry_after: None,
                })?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MetricValue;

    #[test]
    fn only_windows_the_job_may_have_closed_are_late() {
        let now = 10 * 60_000;
        let grace = 120_000;
        let reading = |t| Reading::new("a", t, [("t", MetricValue::Number(1.0))]);
        let readings = [
            reading(now - 5 * 3_600_000),
            reading(now - 5 * 3_600_000 + 1),
            // Its window ends 60 s before now: inside the grace plus the margin, so marked.
            reading(now - 120_000),
            reading(now - 30_000),
        ];
        assert_eq!(
            late_windows(&readings, now, grace),
            [now - 5 * 3_600_000, now - 120_000]
        );
    }
}
