//! The rollup port on the lake: raw readings from the hour partitions, rollup rows as
//! Parquet per tier and day (month for 1-day rows), appended per run and compacted like raw
//! hours. A recomputed window is a row with a later `computed_at`, which replaces the earlier
//! one on read and in the compaction.

use std::collections::{BTreeMap, HashMap};

use super::layout::{KeyHash, Partition, Table};
use super::{LakeStore, S3Failure, format};
use crate::domain::{LocationPath, Reading};
use crate::query::model::{QueryError, TimeRange};
use crate::rollup::model::{RollupRow, RowSelection, SeriesKey, Upkeep};
use crate::rollup::ports::{RollupError, RollupStore};
use crate::rollup::tier::Tier;

/// One row per series, metric and window: the latest computed.
pub fn latest_rows(rows: impl IntoIterator<Item = RollupRow>) -> Vec<RollupRow> {
    let mut kept: HashMap<(SeriesKey, String, i64), RollupRow> = HashMap::new();
    for row in rows {
        let key = (row.key.clone(), row.metric.clone(), row.window_start_ms);
        match kept.get(&key) {
            Some(old) if old.computed_at_ms > row.computed_at_ms => {}
            _ => {
                kept.insert(key, row);
            }
        }
    }
    kept.into_values().collect()
}

fn rows_hash(rows: &[&RollupRow]) -> u64 {
    let mut hash = KeyHash::default();
    for row in rows {
        hash.mix(row.key.name().as_bytes());
        hash.mix(row.metric.as_bytes());
        hash.mix(&row.window_start_ms.to_le_bytes());
        hash.mix(&row.computed_at_ms.to_le_bytes());
    }
    hash.finish()
}

impl RollupStore for LakeStore {
    async fn raw_readings(
        &self,
        range: TimeRange,
        within: &LocationPath,
    ) -> Result<Vec<Reading>, QueryError> {
        crate::query::names::checked_range(range)?;
        let mut readings = self.readings(range).await?;
        if !within.is_empty() {
            readings.retain(|r| crate::query::evaluate::is_under(r, within));
        }
        Ok(readings)
    }

    async fn rollups(
        &self,
        tier: Tier,
        range: TimeRange,
        selection: RowSelection<'_>,
    ) -> Result<Vec<RollupRow>, QueryError> {
        // Rollups are of readings, so they start no earlier than the lake's first hour.
        let Some(from_ms) = self
            .first_readable(range.from_ms)
            .await
            .map_err(super::reader::read_error)?
        else {
            return Ok(Vec::new());
        };
        let partitions = Table::Rollups(tier).partitions(from_ms, range.to_ms);
        let rows = self
            .read_partitions(&partitions, |_, bytes| format::decode_rollups(bytes, tier))
            .await?;
        let mut rows: Vec<RollupRow> = latest_rows(rows.into_iter().filter(|row| {
            row.window_start_ms >= range.from_ms
                && row.window_start_ms < range.to_ms
                && selection.matches(row)
        }));
        crate::rollup::compute::sort_rows(&mut rows);
        Ok(rows)
    }

    async fn write_rollups(&self, tier: Tier, rows: &[RollupRow]) -> Result<(), RollupError> {
        let mut parts: BTreeMap<Partition, Vec<&RollupRow>> = BTreeMap::new();
        for row in rows {
            parts
                .entry(Table::Rollups(tier).partition_of(row.window_start_ms))
                .or_default()
                .push(row);
        }
        for (partition, part) in parts {
            let owned: Vec<RollupRow> = part.iter().map(|r| (*r).clone()).collect();
            let body =
                format::encode_rollups(&owned).map_err(|e| RollupError::Store(e.to_string()))?;
            self.append(partition, rows_hash(&part), body, owned.len())
                .await?;
        }
        Ok(())
    }

    /// The compaction of every marked partition.
    async fn upkeep(&self, now_ms: i64) -> Result<Upkeep, RollupError> {
        let report = self.compact_marked(now_ms).await?;
        tracing::info!(
            partitions = report.partitions,
            objects_replaced = report.objects_replaced,
            rows_written = report.rows_written,
            left_open = report.left_open,
            orphans_deleted = report.orphans_deleted,
            "lake compacted"
        );
        Ok(Upkeep {
            partitions_rewritten: report.partitions,
            objects_replaced: report.objects_replaced,
            rows_rewritten: report.rows_written,
        })
    }
}

impl From<S3Failure> for RollupError {
    fn from(e: S3Failure) -> Self {
        RollupError::Store(e.to_string())
    }
}
