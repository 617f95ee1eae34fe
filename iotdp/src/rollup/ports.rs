//! The rollup feature's ports: where rows are read from and written to (the time-series store
//! that holds the raw readings), and where the job keeps its state and the late marks.

use std::future::Future;

use crate::domain::{LocationPath, Reading};
use crate::query::model::{QueryError, TimeRange};
use crate::rollup::model::{JobState, LateMark, RollupRow, RowSelection, Upkeep};
use crate::rollup::tier::Tier;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollupError {
    #[error("rollup store: {0}")]
    Store(String),
    #[error("rollup state: {0}")]
    State(String),
    /// Another run moved the state first: nothing is lost, the next run carries on from it.
    #[error("rollup state changed under this run (another run or a rebuild moved it): {0}")]
    Conflict(String),
}

impl From<QueryError> for RollupError {
    fn from(e: QueryError) -> Self {
        RollupError::Store(e.to_string())
    }
}

/// The store's side: raw readings in, rollup rows out and back.
pub trait RollupStore: Send + Sync {
    /// Every reading stored with a time in `range` at or below `within` (everything when
    /// `within` is empty), as the store holds it: one per device and instant, the latest write.
    fn raw_readings(
        &self,
        range: TimeRange,
        within: &LocationPath,
    ) -> impl Future<Output = Result<Vec<Reading>, QueryError>> + Send;

    /// Rows of `tier` with a window starting in `range`.
    fn rollups(
        &self,
        tier: Tier,
        range: TimeRange,
        selection: RowSelection<'_>,
    ) -> impl Future<Output = Result<Vec<RollupRow>, QueryError>> + Send;

    /// Write rows of `tier`; a row for a series, metric and window already written replaces
    /// the earlier one (Timestream: a higher version; InfluxDB: the same point).
    fn write_rollups(
        &self,
        tier: Tier,
        rows: &[RollupRow],
    ) -> impl Future<Output = Result<(), RollupError>> + Send;

    /// The store's own upkeep, run before each job run: the lake compacts the partitions
    /// written since; the other stores need none.
    fn upkeep(&self, _now_ms: i64) -> impl Future<Output = Result<Upkeep, RollupError>> + Send {
        async { Ok(Upkeep::default()) }
    }
}

/// The job's durable state: coverage, and the 1-minute windows marked late.
pub trait RollupStateStore: Send + Sync {
    fn coverage(&self) -> impl Future<Output = Result<Option<JobState>, RollupError>> + Send;

    /// Replace the state if it is still `previous` ([`RollupError::Conflict`] otherwise).
    fn save_coverage(
        &self,
        previous: Option<JobState>,
        next: JobState,
    ) -> impl Future<Output = Result<(), RollupError>> + Send;

    fn late_marks(&self) -> impl Future<Output = Result<Vec<LateMark>, RollupError>> + Send;

    /// Remove each mark whose token is still the one read (a window marked again meanwhile
    /// keeps its mark for the next run).
    fn clear_marks(
        &self,
        marks: &[LateMark],
    ) -> impl Future<Output = Result<(), RollupError>> + Send;
}

/// The ingest path's side: windows that received readings after the job may have computed them.
pub trait LateWindowMarker: Send + Sync {
    fn mark(&self, window_starts: &[i64]) -> impl Future<Output = Result<(), RollupError>> + Send;
}

forward_through_arc!(RollupStore {
    fn raw_readings(&self, range: TimeRange, within: &LocationPath) -> impl Future<Output = Result<Vec<Reading>, QueryError>> + Send;
    fn rollups(&self, tier: Tier, range: TimeRange, selection: RowSelection<'_>) -> impl Future<Output = Result<Vec<RollupRow>, QueryError>> + Send;
    fn write_rollups(&self, tier: Tier, rows: &[RollupRow]) -> impl Future<Output = Result<(), RollupError>> + Send;
    fn upkeep(&self, now_ms: i64) -> impl Future<Output = Result<Upkeep, RollupError>> + Send;
});

forward_through_arc!(RollupStateStore {
    fn coverage(&self) -> impl Future<Output = Result<Option<JobState>, RollupError>> + Send;
    fn save_coverage(&self, previous: Option<JobState>, next: JobState) -> impl Future<Output = Result<(), RollupError>> + Send;
    fn late_marks(&self) -> impl Future<Output = Result<Vec<LateMark>, RollupError>> + Send;
    fn clear_marks(&self, marks: &[LateMark]) -> impl Future<Output = Result<(), RollupError>> + Send;
});

forward_through_arc!(LateWindowMarker {
    fn mark(&self, window_starts: &[i64]) -> impl Future<Output = Result<(), RollupError>> + Send;
});

/// Rollups switched off (no state table configured): no coverage, so reads go to raw
/// readings, and nothing is marked.
impl<T: RollupStateStore> RollupStateStore for Option<T> {
    async fn coverage(&self) -> Result<Option<JobState>, RollupError> {
        match self {
            Some(state) => state.coverage().await,
            None => Ok(None),
        }
    }

    async fn save_coverage(
        &self,
        previous: Option<JobState>,
        next: JobState,
    ) -> Result<(), RollupError> {
        match self {
            Some(state) => state.save_coverage(previous, next).await,
            None => Err(RollupError::State(
                "rollups are not configured (ROLLUP_STATE_TABLE)".into(),
            )),
        }
    }

    async fn late_marks(&self) -> Result<Vec<LateMark>, RollupError> {
        match self {
            Some(state) => state.late_marks().await,
            None => Ok(vec![]),
        }
    }

    async fn clear_marks(&self, marks: &[LateMark]) -> Result<(), RollupError> {
        match self {
            Some(state) => state.clear_marks(marks).await,
            None => Ok(()),
        }
    }
}

impl<M: LateWindowMarker> LateWindowMarker for Option<M> {
    async fn mark(&self, window_starts: &[i64]) -> Result<(), RollupError> {
        match self {
            Some(marker) => marker.mark(window_starts).await,
            None => Ok(()),
        }
    }
}

/// No rollup store configured: never asked, because an absent state means no coverage.
impl<S: RollupStore> RollupStore for Option<S> {
    async fn raw_readings(
        &self,
        range: TimeRange,
        within: &LocationPath,
    ) -> Result<Vec<Reading>, QueryError> {
        match self {
            Some(store) => store.raw_readings(range, within).await,
            None => Ok(vec![]),
        }
    }

    async fn rollups(
        &self,
        tier: Tier,
        range: TimeRange,
        selection: RowSelection<'_>,
    ) -> Result<Vec<RollupRow>, QueryError> {
        match self {
            Some(store) => store.rollups(tier, range, selection).await,
            None => Ok(vec![]),
        }
    }

    async fn write_rollups(&self, tier: Tier, rows: &[RollupRow]) -> Result<(), RollupError> {
        match self {
            Some(store) => store.write_rollups(tier, rows).await,
            None => Err(RollupError::Store(
                "rollups are not configured (ROLLUP_STATE_TABLE)".into(),
            )),
        }
    }

    async fn upkeep(&self, now_ms: i64) -> Result<Upkeep, RollupError> {
        match self {
            Some(store) => store.upkeep(now_ms).await,
            None => Ok(Upkeep::default()),
        }
    }
}
