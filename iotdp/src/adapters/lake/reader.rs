//! The lake read back through the query port: an hour's manifest, then its objects, the
//! duplicates removed, then the same answers the memory reference computes
//! ([`crate::query::evaluate`]).

use futures_util::StreamExt;

use super::{HOUR_MS, LakeStore, S3Failure, format};
use crate::domain::{LocationPath, Reading};
use crate::query::evaluate::{
    drill_down_groups, is_under, latest_of, latest_per_device, latest_writes, metric_names_of,
    series_points, values_of,
};
use crate::query::model::{
    Aggregate, DeviceValue, FleetFilter, GroupValue, Point, QueryError, SeriesQuery, TimeRange,
};
use crate::query::ports::TimeSeriesReader;

/// How far back the latest values are looked for, in hours: a device silent longer shows no
/// latest value until the per-device latest item (the next step) replaces this walk.
pub const LATEST_LOOKBACK_HOURS: i64 = 48;
/// Objects fetched at once.
const PARALLEL_GETS: usize = 16;

impl LakeStore {
    /// Every reading of `range` (the latest write of each device and instant), in time order.
    pub async fn readings(&self, range: TimeRange) -> Result<Vec<Reading>, QueryError> {
        let first = range.from_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let hours: Vec<i64> = (first..range.to_ms).step_by(HOUR_MS as usize).collect();
        let mut keys = Vec::new();
        for hour in hours {
            let (manifest, _) = self.manifest(hour).await.map_err(read_error)?;
            keys.extend(manifest.objects.into_iter().map(|o| o.key));
        }
        let files: Vec<Result<Vec<Reading>, QueryError>> = futures_util::stream::iter(keys)
            .map(|key| async move {
                let (bytes, _) = self.get(&key).await.map_err(read_error)?;
                format::decode(bytes).map_err(|e| QueryError::Store(format!("{key}: {e}")))
            })
            .buffer_unordered(PARALLEL_GETS)
            .collect()
            .await;
        let mut all = Vec::new();
        for file in files {
            all.extend(
                file?
                    .into_iter()
                    .filter(|r| r.time_ms >= range.from_ms && r.time_ms < range.to_ms),
            );
        }
        Ok(latest_writes(all))
    }

    /// The readings of the last [`LATEST_LOOKBACK_HOURS`].
    async fn recent(&self) -> Result<Vec<Reading>, QueryError> {
        let now = chrono::Utc::now().timestamp_millis();
        self.readings(TimeRange {
            from_ms: now - LATEST_LOOKBACK_HOURS * HOUR_MS,
            to_ms: now + HOUR_MS,
        })
        .await
    }
}

fn read_error(failure: S3Failure) -> QueryError {
    match failure {
        S3Failure::Retryable(m) | S3Failure::Failed(m) => QueryError::Store(m),
        S3Failure::Missing => QueryError::Store("a manifest names an object that is gone".into()),
        S3Failure::Conflict => QueryError::Store("a read was refused as a conflict".into()),
    }
}

impl TimeSeriesReader for LakeStore {
    async fn metric_names(&self) -> Result<Vec<String>, QueryError> {
        Ok(metric_names_of(&self.recent().await?))
    }

    async fn latest_values(
        &self,
        device_id: &str,
        metrics: &[&str],
    ) -> Result<Vec<(String, Point)>, QueryError> {
        let recent = self.recent().await?;
        Ok(latest_of(
            recent.iter().filter(|r| r.device_id == device_id),
            metrics,
        ))
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Vec<Point>, QueryError> {
        crate::query::names::checked_range(query.range)?;
        let readings = self.readings(query.range).await?;
        let values = values_of(
            readings.iter().filter(|r| r.device_id == query.device_id),
            &query.metric,
        );
        series_points(values, query)
    }

    async fn latest_by_device(
        &self,
        metric: &str,
        filter: &FleetFilter,
    ) -> Result<Vec<DeviceValue>, QueryError> {
        let recent = self.recent().await?;
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
