//! The lake: readings and rollup rows as Parquet objects in the stack's S3 bucket (ingest's
//! batches in a row format of their own until compacted, [`appended`]), under Hive-style
//! partitions ([`layout`]), and a manifest per partition naming the objects a
//! reader reads. Reads never list the bucket: they read a partition's manifest, then its
//! objects. A manifest changes only by a conditional write (`If-Match` its ETag, or
//! `If-None-Match: *` for the first), so two writers never lose each other's objects, and a
//! reader sees an object either not at all or whole. Ingest appends objects as they come;
//! the [`compaction`] rewrites a partition into one object of one version of each row, and
//! swaps it into the manifest by the same conditional write. Until then duplicates (a
//! retried batch, a redelivered message) are removed on read: the latest version of each
//! device and instant wins, as on the other stores.

pub mod appended;
pub mod compaction;
pub mod format;
pub mod layout;
pub mod manifest;
mod reader;
mod rollups;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use crate::domain::Reading;
use crate::ingest::ports::{StoreError, TimeSeriesStore, WriteReport};
use layout::{KeyHash, Partition, Table};
use manifest::{Manifest, ManifestEntry};

/// Conditional manifest updates tried before the batch is returned for retry.
const MANIFEST_ATTEMPTS: u32 = 10;

/// The lake store: raw readings written by ingest, read by the query API.
#[derive(Clone)]
pub struct LakeStore {
    client: Client,
    bucket: String,
    /// The earliest hour this instance knows the lake holds ([`EXTENT_KEY`]), `i64::MAX` until
    /// read: it only moves earlier, so a write at or after it need not touch the extent.
    known_first_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// The metric names this instance knows [`METRICS_KEY`] holds (`None` until read).
    known_metrics: std::sync::Arc<std::sync::Mutex<Option<BTreeSet<String>>>>,
}

/// Every metric name the lake holds, so "the metrics of this device page" is one GET, not a
/// scan: a writer adds a name it has not seen before its readings' objects are named, by a
/// conditional write, as the extent.
const METRICS_KEY: &str = "manifests/metrics.json";

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct MetricCatalogue {
    metrics: BTreeSet<String>,
}

/// The lake's extent: the start of the earliest hour ever written. Reads clamp their range to
/// it, so a range from 1970 reads the partitions that can hold data, not half a million empty
/// manifests; writes move it earlier by a conditional write.
const EXTENT_KEY: &str = "manifests/extent.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct Extent {
    first_ms: i64,
}

/// What a call to S3 failed with, as the ports need it.
#[derive(Debug, thiserror::Error)]
pub enum S3Failure {
    /// Throttled or unavailable (503 SlowDown, 500): worth retrying.
    #[error("{0} (S3 throttled or unavailable: retried later)")]
    Retryable(String),
    /// The object is not there.
    #[error("an object the lake named is gone")]
    Missing,
    /// A conditional write lost to another writer (412, 409).
    #[error("a manifest changed under {MANIFEST_ATTEMPTS} conditional writes in a row")]
    Conflict,
    #[error("{0}")]
    Failed(String),
}

impl S3Failure {
    fn from_sdk<E: ProvideErrorMetadata + std::error::Error + 'static>(
        what: &str,
        e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Self {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let code = e.code().map(str::to_owned);
        let message = format!("{what}: {}", DisplayErrorContext(&e));
        match (status, code.as_deref()) {
            (_, Some("NoSuchKey")) | (Some(404), _) => S3Failure::Missing,
            (Some(412 | 409), _)
            | (_, Some("PreconditionFailed" | "ConditionalRequestConflict")) => S3Failure::Conflict,
            (Some(500 | 503), _)
            | (_, Some("SlowDown" | "ServiceUnavailable" | "InternalError")) => {
                S3Failure::Retryable(message)
            }
            _ if matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => {
                S3Failure::Retryable(message)
            }
            _ => S3Failure::Failed(message),
        }
    }

    fn into_store_error(self) -> StoreError {
        match self {
            S3Failure::Retryable(message) => StoreError::Retryable {
                message,
                retry_after: None,
            },
            S3Failure::Conflict => StoreError::Retryable {
                message: format!(
                    "an hour's manifest changed under {MANIFEST_ATTEMPTS} conditional writes in a row"
                ),
                retry_after: Some(Duration::from_secs(1)),
            },
            S3Failure::Missing => StoreError::Failed("an object vanished while written".into()),
            S3Failure::Failed(message) => StoreError::Failed(message),
        }
    }
}

/// The hour partition of a time: `date=YYYY-MM-DD/hour=HH`.
pub fn partition(time_ms: i64) -> String {
    Table::Raw.partition_of(time_ms).name()
}

/// A raw object's content hash: the same readings (a retried batch) are the same key, so a
/// retry overwrites instead of adding a copy.
fn readings_hash(readings: &[&Reading]) -> u64 {
    let mut hash = KeyHash::default();
    for r in readings {
        hash.mix(r.device_id.as_bytes());
        hash.mix(&r.time_ms.to_le_bytes());
        hash.mix(&r.version.to_le_bytes());
        for m in &r.metrics {
            hash.mix(m.name.as_bytes());
        }
    }
    hash.finish()
}

impl LakeStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            known_first_ms: std::sync::Arc::new(std::sync::atomic::AtomicI64::new(i64::MAX)),
            known_metrics: Default::default(),
        }
    }

    /// The metric catalogue as S3 holds it (`None`: a lake written before it existed), and its
    /// ETag.
    async fn read_catalogue(
        &self,
    ) -> Result<(Option<BTreeSet<String>>, Option<String>), S3Failure> {
        match self.get(METRICS_KEY).await {
            Ok((bytes, etag)) => {
                let catalogue: MetricCatalogue = serde_json::from_slice(&bytes)
                    .map_err(|e| S3Failure::Failed(format!("{METRICS_KEY}: {e}")))?;
                Ok((Some(catalogue.metrics), etag))
            }
            Err(S3Failure::Missing) => Ok((None, None)),
            Err(other) => Err(other),
        }
    }

    /// Every metric name written since the catalogue began (`None` without one).
    pub(crate) async fn catalogued_metrics(&self) -> Result<Option<BTreeSet<String>>, S3Failure> {
        Ok(self.read_catalogue().await?.0)
    }

    /// Add the names of `names` the catalogue lacks (a conditional write; nothing when this
    /// instance already knows them all, the usual case).
    async fn catalogue<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), S3Failure> {
        let known = |name: &str| {
            self.known_metrics
                .lock()
                .ok()
                .and_then(|k| k.as_ref().map(|k| k.contains(name)))
                .unwrap_or(false)
        };
        let new: BTreeSet<String> = names
            .into_iter()
            .filter(|n| !known(n))
            .map(str::to_owned)
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        for attempt in 0..MANIFEST_ATTEMPTS {
            let (held, etag) = self.read_catalogue().await?;
            let mut metrics = held.unwrap_or_default();
            let before = metrics.len();
            metrics.extend(new.iter().cloned());
            if metrics.len() > before {
                let body = serde_json::to_vec(&MetricCatalogue {
                    metrics: metrics.clone(),
                })
                .unwrap_or_default();
                let condition = etag.map_or(Condition::Absent, Condition::Unchanged);
                match self.put(METRICS_KEY, body, condition).await {
                    Ok(()) => {}
                    Err(S3Failure::Conflict) => {
                        backoff(attempt).await;
                        continue;
                    }
                    Err(other) => return Err(other),
                }
            }
            if let Ok(mut known) = self.known_metrics.lock() {
                *known = Some(metrics);
            }
            return Ok(());
        }
        Err(S3Failure::Conflict)
    }

    /// The lake's extent as S3 holds it now (`None`: nothing written yet), and its ETag.
    async fn read_extent(&self) -> Result<(Option<i64>, Option<String>), S3Failure> {
        match self.get(EXTENT_KEY).await {
            Ok((bytes, etag)) => {
                let extent: Extent = serde_json::from_slice(&bytes)
                    .map_err(|e| S3Failure::Failed(format!("{EXTENT_KEY}: {e}")))?;
                self.known_first_ms
                    .fetch_min(extent.first_ms, std::sync::atomic::Ordering::Relaxed);
                Ok((Some(extent.first_ms), etag))
            }
            Err(S3Failure::Missing) => Ok((None, None)),
            Err(other) => Err(other),
        }
    }

    /// The earliest time a read from `from_ms` can find data at: `from_ms` itself when this
    /// instance already knows the lake starts earlier, else the extent read afresh (a writer
    /// may have moved it since), or `None` when the lake is empty.
    pub(crate) async fn first_readable(&self, from_ms: i64) -> Result<Option<i64>, S3Failure> {
        let known = self
            .known_first_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        if from_ms >= known {
            return Ok(Some(from_ms));
        }
        Ok(self.read_extent().await?.0.map(|first| first.max(from_ms)))
    }

    /// Move the extent to `hour_ms` if it starts later (before the hour's object is named, so a
    /// reader that finds the object also finds the extent covering it).
    async fn extend_to(&self, hour_ms: i64) -> Result<(), S3Failure> {
        if hour_ms
            >= self
                .known_first_ms
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(());
        }
        for attempt in 0..MANIFEST_ATTEMPTS {
            let (first, etag) = self.read_extent().await?;
            if first.is_some_and(|f| f <= hour_ms) {
                return Ok(());
            }
            let body = serde_json::to_vec(&Extent { first_ms: hour_ms }).unwrap_or_default();
            let condition = etag.map_or(Condition::Absent, Condition::Unchanged);
            match self.put(EXTENT_KEY, body, condition).await {
                Ok(()) => {
                    self.known_first_ms
                        .fetch_min(hour_ms, std::sync::atomic::Ordering::Relaxed);
                    return Ok(());
                }
                Err(S3Failure::Conflict) => backoff(attempt).await,
                Err(other) => return Err(other),
            }
        }
        Err(S3Failure::Conflict)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub(crate) async fn get(&self, key: &str) -> Result<(Vec<u8>, Option<String>), S3Failure> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                S3Failure::from_sdk(&format!("GetObject s3://{}/{key}", self.bucket), e)
            })?;
        let etag = out.e_tag().map(str::to_owned);
        let body = out.body.collect().await.map_err(|e| {
            S3Failure::Retryable(format!("reading s3://{}/{key}: {e}", self.bucket))
        })?;
        Ok((body.into_bytes().to_vec(), etag))
    }

    pub(crate) async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        condition: Condition,
    ) -> Result<(), S3Failure> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body));
        let request = match condition {
            Condition::None => request,
            Condition::Absent => request.if_none_match("*"),
            Condition::Unchanged(etag) => request.if_match(etag),
        };
        request
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map(|_| ())
            .map_err(|e| S3Failure::from_sdk(&format!("PutObject s3://{}/{key}", self.bucket), e))
    }

    /// Delete `key`; one already gone is no failure.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), S3Failure> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                match S3Failure::from_sdk(&format!("DeleteObject s3://{}/{key}", self.bucket), e) {
                    S3Failure::Missing => Ok(()),
                    other => Err(other),
                }
            }
        }
    }

    /// Every key under `prefix` with when it was last written (epoch ms): the compaction's
    /// listing of marks and of a partition's objects; never on the read path.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>, S3Failure> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                S3Failure::from_sdk(&format!("ListObjectsV2 s3://{}/{prefix}", self.bucket), e)
            })?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    let written = object
                        .last_modified()
                        .and_then(|t| t.to_millis().ok())
                        .unwrap_or(0);
                    out.push((key.to_owned(), written));
                }
            }
        }
        Ok(out)
    }

    /// A partition's manifest and its ETag (an empty one, without, if it has none yet).
    pub(crate) async fn manifest(
        &self,
        partition: Partition,
    ) -> Result<(Manifest, Option<String>), S3Failure> {
        let key = partition.manifest_key();
        match self.get(&key).await {
            Ok((bytes, etag)) => Ok((
                Manifest::parse(&bytes)
                    .map_err(|e| S3Failure::Failed(format!("{key} is not a manifest: {e}")))?,
                etag,
            )),
            Err(S3Failure::Missing) => Ok((Manifest::default(), None)),
            Err(other) => Err(other),
        }
    }

    /// Write `body` as an object of `partition` and name it in the partition's manifest. The
    /// first object since the partition was last compacted also marks the partition for the
    /// compaction, after the manifest names it (so a compaction that consumed the mark before
    /// this write cannot miss it); a retry that finds its object named marks again.
    pub(crate) async fn append(
        &self,
        partition: Partition,
        hash: u64,
        body: Vec<u8>,
        rows: usize,
    ) -> Result<(), S3Failure> {
        let key = partition.incoming_key(hash);
        self.extend_to(partition.start_ms).await?;
        self.put(&key, body, Condition::None).await?;
        let entry = ManifestEntry {
            key,
            rows,
            compacted: false,
        };
        for attempt in 0..MANIFEST_ATTEMPTS {
            let (mut manifest, etag) = self.manifest(partition).await?;
            let first_since_compaction = manifest.uncompacted() == 0;
            if !manifest.add(entry.clone()) {
                return self.mark(partition).await;
            }
            let condition = etag.map_or(Condition::Absent, Condition::Unchanged);
            match self
                .put(&partition.manifest_key(), manifest.to_bytes(), condition)
                .await
            {
                Ok(()) if first_since_compaction => return self.mark(partition).await,
                Ok(()) => return Ok(()),
                Err(S3Failure::Conflict) => backoff(attempt).await,
                Err(other) => return Err(other),
            }
        }
        Err(S3Failure::Conflict)
    }

    /// Name `partition` for the compaction (an empty object; writing it twice is harmless).
    pub(crate) async fn mark(&self, partition: Partition) -> Result<(), S3Failure> {
        self.put(&partition.mark_key(), Vec::new(), Condition::None)
            .await
    }
}

/// After a lost conditional write: a random pause, growing with the attempts, so racing
/// writers spread out.
pub(crate) async fn backoff(attempt: u32) {
    let jitter = fastrand::u64(0..=20u64 << attempt.min(4));
    tokio::time::sleep(Duration::from_millis(jitter)).await;
}

/// What a PUT requires of the object it replaces.
pub(crate) enum Condition {
    None,
    Absent,
    Unchanged(String),
}

impl TimeSeriesStore for LakeStore {
    /// A batch's readings go in one object an hour; 10,000 keeps an object a few hundred KB.
    fn max_batch_len(&self) -> usize {
        10_000
    }

    /// Each hour's readings as one object, then named in the hour's manifest: a reading is
    /// stored once its manifest names it. Any failure returns the whole batch for retry; the
    /// retry writes the same keys again.
    async fn write(&self, readings: &[Reading]) -> Result<WriteReport, StoreError> {
        // The batch's metric names, checked once per distinct set of them (readings of one
        // type carry the same).
        let mut names: BTreeSet<&str> = BTreeSet::new();
        let mut last_set: Option<&[crate::domain::Metric]> = None;
        for r in readings {
            if last_set.is_none_or(|last| {
                last.len() != r.metrics.len()
                    || last.iter().zip(&r.metrics).any(|(a, b)| a.name != b.name)
            }) {
                names.extend(r.metrics.iter().map(|m| m.name.as_str()));
                last_set = Some(&r.metrics);
            }
        }
        self.catalogue(names)
            .await
            .map_err(S3Failure::into_store_error)?;
        let mut hours: std::collections::BTreeMap<Partition, Vec<&Reading>> = Default::default();
        for r in readings {
            hours
                .entry(Table::Raw.partition_of(r.time_ms))
                .or_default()
                .push(r);
        }
        for (hour, part) in hours {
            let body = appended::encode(&part).map_err(|e| StoreError::Failed(e.to_string()))?;
            let rows = part.iter().map(|r| r.metrics.len()).sum();
            self.append(hour, readings_hash(&part), body, rows)
                .await
                .map_err(S3Failure::into_store_error)?;
        }
        Ok(WriteReport::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_utc_hours_and_keys_follow_the_readings() {
        assert_eq!(partition(0), "date=1970-01-01/hour=00");
        assert_eq!(partition(1_765_123_456_789), "date=2025-12-07/hour=16");
        let r = |version| Reading {
            device_id: "d".into(),
            time_ms: 5,
            seq: None,
            metrics: vec![],
            version,
            dimensions: None,
        };
        let (a, b) = (r(1), r(2));
        assert_eq!(readings_hash(&[&a]), readings_hash(&[&a]));
        assert_ne!(readings_hash(&[&a]), readings_hash(&[&b]));
    }
}
