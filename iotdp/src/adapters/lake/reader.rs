//! The lake read back through the query port: each partition's manifest, then its objects,
//! the duplicates removed, then the same answers the memory reference computes
//! ([`crate::query::evaluate`]).

use futures_util::StreamExt;

use super::layout::{Partition, Table};
use super::{LakeStore, S3Failure, format};
use crate::domain::{LocationPath, Reading};
use crate::query::evaluate::{
    drill_down_groups, is_under, latest_of, latest_per_device, latest_writes, metric_names_of,
    series_points, values_of,
};
use crate::query::model::{
    Aggregate, DeviceValue, FleetFilter, GroupValue, KnownLatest, Point, QueryError, SeriesQuery,
    TimeRange,
};
use crate::query::ports::TimeSeriesReader;

/// How far back the latest values are looked for, in hours: a device silent longer shows no
/// latest value on the lake (the other stores look back without limit).
pub const LATEST_LOOKBACK_HOURS: i64 = 48;
/// Objects fetched at once.
const PARALLEL_GETS: usize = 16;
/// Reads of a set of partitions begun again when an object a manifest named was gone (a
/// compaction replaced it between the manifest's read and the object's).
const READ_ATTEMPTS: u32 = 4;
const HOUR_MS: i64 = 3_600_000;

impl LakeStore {
    /// Every object the manifests of `partitions` name, each decoded by `decode`, read as of
    /// one moment of each manifest: if a compaction replaces an object while it is read, the
    /// read begins again from the new manifest, so no row is seen twice or missed.
    pub(crate) async fn read_partitions<T, D>(
        &self,
        partitions: &[Partition],
        decode: D,
    ) -> Result<Vec<T>, QueryError>
    where
        D: Fn(Partition, Vec<u8>) -> Result<Vec<T>, format::FormatError> + Sync,
        T: Send,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.read_once(partitions, &decode).await {
                Err(S3Failure::Missing) if attempt < READ_ATTEMPTS => continue,
                Err(S3Failure::Missing) => {
                    return Err(QueryError::Store(format!(
                        "objects kept vanishing under {READ_ATTEMPTS} reads in a row (compactions running back to back?): try again"
                    )));
                }
                other => return other.map_err(read_error),
            }
        }
    }

    async fn read_once<T, D>(
        &self,
        partitions: &[Partition],
        decode: &D,
    ) -> Result<Vec<T>, S3Failure>
    where
        D: Fn(Partition, Vec<u8>) -> Result<Vec<T>, format::FormatError> + Sync,
    {
        let manifests: Vec<Result<(Partition, Vec<String>), S3Failure>> =
            futures_util::stream::iter(partitions.iter().copied())
                .map(|p| async move {
                    let (manifest, _) = self.manifest(p).await?;
                    Ok((p, manifest.objects.into_iter().map(|o| o.key).collect()))
                })
                .buffered(PARALLEL_GETS)
                .collect()
                .await;
        let mut keys = Vec::new();
        for m in manifests {
            let (p, names) = m?;
            keys.extend(names.into_iter().map(|k| (p, k)));
        }
        let files: Vec<Result<Vec<T>, S3Failure>> = futures_util::stream::iter(keys)
            .map(|(p, key)| async move {
                let (bytes, _) = self.get(&key).await?;
                decode(p, bytes).map_err(|e| S3Failure::Failed(format!("{key}: {e}")))
            })
            .buffer_unordered(PARALLEL_GETS)
            .collect()
            .await;
        let mut all = Vec::new();
        for file in files {
            all.extend(file?);
        }
        Ok(all)
    }

    /// Every reading of `range` (the latest write of each device and instant), of one device
    /// or of all, in time order.
    pub async fn readings_of(
        &self,
        range: TimeRange,
        device: Option<&str>,
    ) -> Result<Vec<Reading>, QueryError> {
        let Some(from_ms) = self
            .first_readable(range.from_ms)
            .await
            .map_err(read_error)?
        else {
            return Ok(Vec::new());
        };
        let partitions = Table::Raw.partitions(from_ms, range.to_ms);
        let all = self
            .read_partitions(&partitions, |_, bytes| format::decode_device(bytes, device))
            .await?;
        Ok(latest_writes(all.into_iter().filter(|r| {
            r.time_ms >= range.from_ms && r.time_ms < range.to_ms
        })))
    }

    /// Every reading of `range`.
    pub async fn readings(&self, range: TimeRange) -> Result<Vec<Reading>, QueryError> {
        self.readings_of(range, None).await
    }

    /// The readings of the last [`LATEST_LOOKBACK_HOURS`].
    async fn recent(&self, device: Option<&str>) -> Result<Vec<Reading>, QueryError> {
        let now = chrono::Utc::now().timestamp_millis();
        self.readings_of(
            TimeRange {
                from_ms: now - LATEST_LOOKBACK_HOURS * HOUR_MS,
                to_ms: now + HOUR_MS,
            },
            device,
        )
        .await
    }
}

pub(crate) fn read_error(failure: S3Failure) -> QueryError {
    match failure {
        S3Failure::Retryable(m) | S3Failure::Failed(m) => QueryError::Store(m),
        S3Failure::Missing => QueryError::Store("a manifest names an object that is gone".into()),
        S3Failure::Conflict => QueryError::Store("a read was refused as a conflict".into()),
    }
}

impl TimeSeriesReader for LakeStore {
    /// From the metric catalogue (one GET); a lake written before it existed is scanned over
    /// the last [`LATEST_LOOKBACK_HOURS`].
    async fn metric_names(&self) -> Result<Vec<String>, QueryError> {
        match self.catalogued_metrics().await.map_err(read_error)? {
            Some(names) => Ok(names.into_iter().collect()),
            None => Ok(metric_names_of(&self.recent(None).await?)),
        }
    }

    async fn latest_values(
        &self,
        device_id: &str,
        metrics: &[&str],
    ) -> Result<Vec<(String, Point)>, QueryError> {
        // The last two hours first: a device reporting finds all its latest values there.
        let now = chrono::Utc::now().timestamp_millis();
        let last_hours = self
            .readings_of(
                TimeRange {
                    from_ms: now - 2 * HOUR_MS,
                    to_ms: now + HOUR_MS,
                },
                Some(device_id),
            )
            .await?;
        let found = latest_of(last_hours.iter(), metrics);
        if found.len() == metrics.len() {
            return Ok(found);
        }
        let recent = self.recent(Some(device_id)).await?;
        Ok(latest_of(recent.iter(), metrics))
    }

    /// From the registry's snapshot and the readings after it: the partitions from the
    /// snapshot's oldest value to the time by which every later reading was received, a
    /// few hours whenever the device went quiet, never a scan. A metric the snapshot lacks
    /// is looked for as without one.
    async fn latest_values_after(
        &self,
        device_id: &str,
        metrics: &[&str],
        known: &KnownLatest,
    ) -> Result<Vec<(String, Point)>, QueryError> {
        let known_of = |metric: &str| known.values.iter().find(|(m, _)| m == metric);
        let Some(from_ms) = metrics
            .iter()
            .map(|m| known_of(m).map(|(_, p)| p.time_ms))
            .collect::<Option<Vec<_>>>()
            .and_then(|times| times.into_iter().min())
        else {
            return self.latest_values(device_id, metrics).await;
        };
        let now = chrono::Utc::now().timestamp_millis();
        // Event times run up to a device's clock skew past their receipt (an hour, as for the
        // readings of the last hours above).
        let to_ms = known.tail_until_ms.map_or(now, |until| until.min(now)) + HOUR_MS;
        let tail = self
            .readings_of(
                TimeRange {
                    from_ms,
                    to_ms: to_ms.max(from_ms + 1),
                },
                Some(device_id),
            )
            .await?;
        let found = latest_of(tail.iter(), metrics);
        Ok(metrics
            .iter()
            .filter_map(|metric| {
                let read = found.iter().find(|(m, _)| m == metric);
                let known = known_of(metric);
                match (read, known) {
                    // The same instant read back wins: a correction may have replaced it.
                    (Some(read), Some(known)) if read.1.time_ms >= known.1.time_ms => {
                        Some(read.clone())
                    }
                    (_, Some(known)) => Some(known.clone()),
                    (read, None) => read.cloned(),
                }
            })
            .collect())
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Vec<Point>, QueryError> {
        crate::query::names::checked_range(query.range)?;
        let readings = self
            .readings_of(query.range, Some(&query.device_id))
            .await?;
        let values = values_of(readings.iter(), &query.metric);
        series_points(values, query)
    }

    async fn latest_by_device(
        &self,
        metric: &str,
        filter: &FleetFilter,
    ) -> Result<Vec<DeviceValue>, QueryError> {
        let recent = self.recent(None).await?;
        let values = values_of(
            recent.iter().filter(|r| {
                (filter.within.is_empty() || is_under(r, &filter.within))
                    && filter
                        .device_type
                        .as_ref()
                        .is_none_or(|t| r.dimensions.as_ref().is_some_and(|d| &d.device_type == t))
            }),
            metric,
        );
        Ok(latest_per_device(values))
    }

    async fn drill_down(
        &self,
        metric: &str,
        within: &LocationPath,
        range: TimeRange,
        aggregate: Aggregate,
    ) -> Result<Vec<GroupValue>, QueryError> {
        crate::query::names::child_level(within)?;
        crate::query::names::checked_range(range)?;
        let readings = self.readings(range).await?;
        let values = values_of(readings.iter().filter(|r| is_under(r, within)), metric);
        Ok(drill_down_groups(values, within, aggregate))
    }
}
