//! The lake: readings as Parquet objects in the stack's S3 bucket, under `date=/hour=`
//! partitions, and a manifest per hour naming the objects a reader reads. Reads never list
//! the bucket: they read an hour's manifest, then its objects. A manifest changes only by a
//! conditional write (`If-Match` its ETag, or `If-None-Match: *` for the first), so two
//! writers never lose each other's objects, and a reader sees an object either not at all or
//! whole. Duplicates (a retried batch, a redelivered message) are removed on read: the latest
//! version of each device and instant wins, as on the other stores.

pub mod format;
pub mod manifest;
mod reader;

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use crate::domain::Reading;
use crate::ingest::ports::{StoreError, TimeSeriesStore, WriteReport};
use manifest::{Manifest, ManifestEntry};

/// An hour in milliseconds: the partition of raw objects and manifests.
const HOUR_MS: i64 = 3_600_000;
/// Conditional manifest updates tried before the batch is returned for retry.
const MANIFEST_ATTEMPTS: u32 = 10;

/// The lake store: raw readings written by ingest, read by the query API.
#[derive(Clone)]
pub struct LakeStore {
    client: Client,
    bucket: String,
}

/// What a call to S3 failed with, as the ports need it.
#[derive(Debug)]
pub(crate) enum S3Failure {
    /// Throttled or unavailable (503 SlowDown, 500): worth retrying.
    Retryable(String),
    /// The object is not there.
    Missing,
    /// A conditional write lost to another writer (412, 409).
    Conflict,
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
    let hour = time_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let at = chrono::DateTime::from_timestamp_millis(hour).unwrap_or_default();
    at.format("date=%Y-%m-%d/hour=%H").to_string()
}

/// The manifest of an hour.
fn manifest_key(hour_ms: i64) -> String {
    format!("manifests/raw/{}.json", partition(hour_ms))
}

/// A raw object's key from what it holds: the same readings (a retried batch) are the same
/// key, so a retry overwrites instead of adding a copy. FNV-1a over each reading's identity.
fn object_key(hour_ms: i64, readings: &[&Reading]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for r in readings {
        mix(r.device_id.as_bytes());
        mix(&r.time_ms.to_le_bytes());
        mix(&r.version.to_le_bytes());
        for m in &r.metrics {
            mix(m.name.as_bytes());
        }
    }
    format!("raw/{}/{hash:016x}.parquet", partition(hour_ms))
}

impl LakeStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
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

    async fn put(&self, key: &str, body: Vec<u8>, condition: Condition) -> Result<(), S3Failure> {
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

    /// An hour's manifest and its ETag (an empty one, without, if the hour has none yet).
    pub(crate) async fn manifest(
        &self,
        hour_ms: i64,
    ) -> Result<(Manifest, Option<String>), S3Failure> {
        match self.get(&manifest_key(hour_ms)).await {
            Ok((bytes, etag)) => Ok((
                Manifest::parse(&bytes).map_err(|e| {
                    S3Failure::Failed(format!("{} is not a manifest: {e}", manifest_key(hour_ms)))
                })?,
                etag,
            )),
            Err(S3Failure::Missing) => Ok((Manifest::default(), None)),
            Err(other) => Err(other),
        }
    }

    /// Add `entry` to its hour's manifest, by conditional writes, retried while another
    /// writer wins the race.
    async fn add_to_manifest(&self, hour_ms: i64, entry: ManifestEntry) -> Result<(), S3Failure> {
        for attempt in 0..MANIFEST_ATTEMPTS {
            let (mut manifest, etag) = self.manifest(hour_ms).await?;
            if !manifest.add(entry.clone()) {
                return Ok(());
            }
            let condition = etag.map_or(Condition::Absent, Condition::Unchanged);
            match self
                .put(&manifest_key(hour_ms), manifest.to_bytes(), condition)
                .await
            {
                Ok(()) => return Ok(()),
                Err(S3Failure::Conflict) => {
                    let jitter = fastrand::u64(0..=20u64 << attempt.min(4));
                    tokio::time::sleep(Duration::from_millis(jitter)).await;
                }
                Err(other) => return Err(other),
            }
        }
        Err(S3Failure::Conflict)
    }
}

enum Condition {
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
        let mut hours: std::collections::BTreeMap<i64, Vec<&Reading>> = Default::default();
        for r in readings {
            hours
                .entry(r.time_ms.div_euclid(HOUR_MS) * HOUR_MS)
                .or_default()
                .push(r);
        }
        for (hour_ms, part) in hours {
            let owned: Vec<Reading> = part.iter().map(|r| (*r).clone()).collect();
            let body = format::encode(&owned).map_err(|e| StoreError::Failed(e.to_string()))?;
            let key = object_key(hour_ms, &part);
            let rows = owned.iter().map(|r| r.metrics.len()).sum();
            self.put(&key, body, Condition::None)
                .await
                .map_err(S3Failure::into_store_error)?;
            self.add_to_manifest(hour_ms, ManifestEntry { key, rows })
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
        assert_eq!(object_key(0, &[&a]), object_key(0, &[&a]));
        assert_ne!(object_key(0, &[&a]), object_key(0, &[&b]));
        assert!(object_key(0, &[&a]).starts_with("raw/date=1970-01-01/hour=00/"));
    }
}
