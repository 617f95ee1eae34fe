//! The rollup feature's ports in memory: the memory store's rollup tables, and the job's state
//! and late marks. The reference the real stores are compared with.

use std::collections::BTreeMap;
use std::sync::Mutex;

use iotdp::domain::{LocationPath, Reading};
use iotdp::query::model::{QueryError, TimeRange};
use iotdp::rollup::model::{JobState, LateMark, RollupRow, RowSelection};
use iotdp::rollup::ports::{LateWindowMarker, RollupError, RollupStateStore, RollupStore};
use iotdp::rollup::tier::Tier;

use super::ingest::MemoryStore;

impl RollupStore for MemoryStore {
    async fn raw_readings(
        &self,
        range: TimeRange,
        within: &LocationPath,
    ) -> Result<Vec<Reading>, QueryError> {
        iotdp::query::names::checked_range(range)?;
        let indexes: Vec<usize> = self
            .by_time
            .lock()
            .map_err(|_| QueryError::Store("memory store lock poisoned".into()))?
            .range((range.from_ms, String::new())..(range.to_ms, String::new()))
            .map(|(_, &i)| i)
            .collect();
        let out: Vec<Reading> = self.with_written(|written| {
            indexes
                .iter()
                .map(|&i| &written[i])
                .filter(|r| {
                    within.is_empty()
                        || r.dimensions
                            .as_ref()
                            .is_some_and(|d| d.path.starts_with(within))
                })
                .cloned()
                .collect()
        });
        self.count_read(out.len());
        Ok(out)
    }

    async fn rollups(
        &self,
        tier: Tier,
        range: TimeRange,
        selection: RowSelection<'_>,
    ) -> Result<Vec<RollupRow>, QueryError> {
        let rows = self
            .rollups
            .lock()
            .map_err(|_| QueryError::Store("memory store lock poisoned".into()))?;
        let mut out: Vec<RollupRow> = rows
            .range((tier, range.from_ms)..(tier, range.to_ms.max(range.from_ms)))
            .flat_map(|(_, window)| window.values())
            .filter(|row| selection.matches(row))
            .cloned()
            .collect();
        iotdp::rollup::compute::sort_rows(&mut out);
        drop(rows);
        self.count_read(out.len());
        Ok(out)
    }

    async fn write_rollups(&self, tier: Tier, rows: &[RollupRow]) -> Result<(), RollupError> {
        let mut table = self
            .rollups
            .lock()
            .map_err(|_| RollupError::Store("memory store lock poisoned".into()))?;
        for row in rows {
            table
                .entry((tier, row.window_start_ms))
                .or_default()
                .insert((row.key.clone(), row.metric.clone()), row.clone());
        }
        Ok(())
    }
}

/// The job's state and the late marks, in memory; counts what the ingest path marked.
#[derive(Debug, Default)]
pub struct MemoryRollupState {
    coverage: Mutex<Option<JobState>>,
    marks: Mutex<BTreeMap<i64, String>>,
    next_token: std::sync::atomic::AtomicU64,
}

impl MemoryRollupState {
    pub fn marked(&self) -> Vec<i64> {
        self.marks
            .lock()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }
}

fn poisoned() -> RollupError {
    RollupError::State("memory rollup state lock poisoned".into())
}

impl RollupStateStore for MemoryRollupState {
    async fn coverage(&self) -> Result<Option<JobState>, RollupError> {
        Ok(*self.coverage.lock().map_err(|_| poisoned())?)
    }

    async fn save_coverage(
        &self,
        previous: Option<JobState>,
        next: JobState,
    ) -> Result<(), RollupError> {
        let mut coverage = self.coverage.lock().map_err(|_| poisoned())?;
        if *coverage != previous {
            return Err(RollupError::Conflict(format!(
                "expected {previous:?}, found {:?}",
                *coverage
            )));
        }
        *coverage = Some(next);
        Ok(())
    }

    async fn late_marks(&self) -> Result<Vec<LateMark>, RollupError> {
        Ok(self
            .marks
            .lock()
            .map_err(|_| poisoned())?
            .iter()
            .map(|(&window_start_ms, token)| LateMark {
                window_start_ms,
                token: token.clone(),
            })
            .collect())
    }

    async fn clear_marks(&self, marks: &[LateMark]) -> Result<(), RollupError> {
        let mut held = self.marks.lock().map_err(|_| poisoned())?;
        for mark in marks {
            if held.get(&mark.window_start_ms) == Some(&mark.token) {
                held.remove(&mark.window_start_ms);
            }
        }
        Ok(())
    }
}

impl LateWindowMarker for MemoryRollupState {
    async fn mark(&self, window_starts: &[i64]) -> Result<(), RollupError> {
        let mut held = self.marks.lock().map_err(|_| poisoned())?;
        for &window in window_starts {
            let token = self
                .next_token
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            held.insert(window, token.to_string());
        }
        Ok(())
    }
}
