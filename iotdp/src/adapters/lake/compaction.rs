//! The compaction: each partition a mark names is rewritten into one object, one version of
//! each row, sorted, and swapped into the partition's manifest by a conditional write. Run by
//! the `rollup` function's schedule, before the rollup job, when the store is the lake.
//!
//! Why nothing is lost or doubled:
//! - the swap is `If-Match` the manifest the compaction read; a writer that added an object
//!   meanwhile makes it fail, and the compaction reads again and keeps that object after its
//!   own (or, if another compaction replaced the sources first, gives way);
//! - the compacted object's key comes from the objects it replaces, so two compactions of
//!   different states never write the same key, and one killed before its swap is redone
//!   from the same manifest (or left as an orphan the next compaction of the partition
//!   deletes: no manifest names it, and nothing reads what no manifest names);
//! - replaced objects are deleted after the swap; a reader that read the old manifest and
//!   finds one gone reads again from the new manifest;
//! - the mark is deleted after the swap, and the manifest read again: objects written since
//!   mark it again (a writer marks after its manifest update, so one that lands later marks
//!   after this deletion).

use super::layout::{KeyHash, MARKS_PREFIX, Partition, Table};
use super::manifest::ManifestEntry;
use super::{Condition, LakeStore, MANIFEST_ATTEMPTS, S3Failure, backoff, format};
use crate::query::evaluate::latest_writes;

/// A partition is closed, and compacted whatever it holds, once its end is this far past: a
/// reading a few minutes behind (a device's clock, a batch in flight) is then already in.
pub const CLOSE_GRACE_MS: i64 = 10 * 60_000;
/// An open partition (the current hour or day) is compacted early once it holds this many
/// objects written since its last compaction, so reads of today stay a few GETs.
pub const OPEN_PARTITION_OBJECTS: usize = 32;
/// Objects no manifest names are deleted once this old: older than any write or compaction
/// in flight can be (a Lambda runs at most 15 minutes), so only orphans go.
pub const ORPHAN_AGE_MS: i64 = 20 * 60_000;

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CompactionReport {
    /// Partitions rewritten.
    pub partitions: usize,
    /// Objects replaced by the rewrites.
    pub objects_replaced: usize,
    /// Rows the rewritten objects hold.
    pub rows_written: usize,
    /// Marked partitions left for a later run: open, and not yet holding enough objects.
    pub left_open: usize,
    /// Objects no manifest named, deleted.
    pub orphans_deleted: usize,
}

/// What compacting one partition did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PartitionCompaction {
    pub objects_replaced: usize,
    pub rows_written: usize,
    /// Another compaction replaced the objects first.
    pub gave_way: bool,
}

impl LakeStore {
    /// Every marked partition that is closed, or open with [`OPEN_PARTITION_OBJECTS`]
    /// objects to compact, as of `now_ms`.
    pub async fn compact_marked(&self, now_ms: i64) -> Result<CompactionReport, S3Failure> {
        let mut report = CompactionReport::default();
        let marked: Vec<Partition> = self
            .list(MARKS_PREFIX)
            .await?
            .into_iter()
            .filter_map(|(key, _)| Partition::from_mark_key(&key))
            .collect();
        for partition in marked {
            let closed = partition.end_ms() + CLOSE_GRACE_MS <= now_ms;
            if !closed {
                let (manifest, _) = self.manifest(partition).await?;
                if manifest.uncompacted() < OPEN_PARTITION_OBJECTS {
                    report.left_open += 1;
                    continue;
                }
            }
            let done = self.compact(partition).await?;
            report.partitions += usize::from(done.objects_replaced > 0);
            report.objects_replaced += done.objects_replaced;
            report.rows_written += done.rows_written;
            report.orphans_deleted += self.delete_orphans(partition, now_ms).await?;
            self.delete(&partition.mark_key()).await?;
            let (after, _) = self.manifest(partition).await?;
            if after.uncompacted() > 0 {
                self.mark(partition).await?;
            }
        }
        Ok(report)
    }

    /// Rewrite `partition` into one object and swap it into the manifest.
    pub async fn compact(&self, partition: Partition) -> Result<PartitionCompaction, S3Failure> {
        let (manifest, mut etag) = self.manifest(partition).await?;
        if !manifest.needs_compaction() {
            return Ok(PartitionCompaction::default());
        }
        let sources = manifest.objects.clone();
        let (body, rows) = self.merged(partition, &sources).await?;
        let mut hash = KeyHash::default();
        for source in &sources {
            hash.mix(source.key.as_bytes());
        }
        let compacted = ManifestEntry {
            key: partition.compacted_key(hash.finish()),
            rows,
            compacted: true,
        };
        self.put(&compacted.key, body, Condition::None).await?;
        let mut current = manifest;
        for attempt in 0..MANIFEST_ATTEMPTS {
            let Some(next) = current.replaced(&sources, compacted.clone()) else {
                if !current.names(&compacted.key) {
                    self.delete(&compacted.key).await?;
                }
                return Ok(PartitionCompaction {
                    gave_way: true,
                    ..Default::default()
                });
            };
            let condition = etag.clone().map_or(Condition::Absent, Condition::Unchanged);
            match self
                .put(&partition.manifest_key(), next.to_bytes(), condition)
                .await
            {
                Ok(()) => {
                    for source in sources.iter().filter(|s| s.key != compacted.key) {
                        self.delete(&source.key).await?;
                    }
                    return Ok(PartitionCompaction {
                        objects_replaced: sources.len(),
                        rows_written: rows,
                        gave_way: false,
                    });
                }
                Err(S3Failure::Conflict) => {
                    backoff(attempt).await;
                    (current, etag) = self.manifest(partition).await?;
                }
                Err(other) => return Err(other),
            }
        }
        Err(S3Failure::Conflict)
    }

    /// The sources' rows, one version of each, as one object, and its row count.
    async fn merged(
        &self,
        partition: Partition,
        sources: &[ManifestEntry],
    ) -> Result<(Vec<u8>, usize), S3Failure> {
        let mut objects = Vec::with_capacity(sources.len());
        for source in sources {
            objects.push(self.get(&source.key).await?.0);
        }
        merge(partition.table, objects)
            .map_err(|e| S3Failure::Failed(format!("{}: {e}", partition.name())))
    }

    /// Delete the partition's objects no manifest names, older than [`ORPHAN_AGE_MS`]: what a
    /// compaction killed before its swap, or after its swap and before its deletes, left.
    async fn delete_orphans(&self, partition: Partition, now_ms: i64) -> Result<usize, S3Failure> {
        let (manifest, _) = self.manifest(partition).await?;
        let mut deleted = 0;
        for prefix in [
            format!("{}/{}/", partition.table.prefix(), partition.name()),
            format!(
                "incoming/{}/{}/",
                partition.table.prefix(),
                partition.name()
            ),
        ] {
            for (key, written_ms) in self.list(&prefix).await? {
                if !manifest.names(&key) && written_ms + ORPHAN_AGE_MS <= now_ms {
                    self.delete(&key).await?;
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }
}

/// A partition's objects of `table` merged into one: one version of each row (the latest
/// version of a device and instant, the latest computed window), sorted; and its row count.
/// Pure, so the benchmark measures exactly what a compaction does between its GETs and PUT.
pub fn merge(table: Table, objects: Vec<Vec<u8>>) -> Result<(Vec<u8>, usize), format::FormatError> {
    match table {
        Table::Raw => {
            let mut readings = Vec::new();
            for bytes in objects {
                readings.extend(format::decode(bytes)?);
            }
            let readings = latest_writes(readings);
            let rows = readings.iter().map(|r| r.metrics.len()).sum();
            Ok((format::encode(&readings)?, rows))
        }
        Table::Rollups(tier) => {
            let mut rows = Vec::new();
            for bytes in objects {
                rows.extend(format::decode_rollups(bytes, tier)?);
            }
            let rows = super::rollups::latest_rows(rows);
            Ok((format::encode_rollups(&rows)?, rows.len()))
        }
    }
}
