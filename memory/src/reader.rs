//! The memory store read back: the reference implementation of the read port every store's
//! reader is held to.

use super::ingest::MemoryStore;
use iotdp::domain::LocationPath;
use iotdp::domain::Reading;
use iotdp::query::evaluate::{
    StoredValue, drill_down_groups, is_under, latest_per_device, series_points, values_of,
};
use iotdp::query::model::{
    Aggregate, DeviceValue, FleetFilter, GroupValue, Point, QueryError, SeriesQuery, TimeRange,
};
use iotdp::query::ports::TimeSeriesReader;

impl MemoryStore {
    /// `metric`'s value in each stored reading matching `keep`, in time order: the latest write
    /// of each device and instant, as the real stores keep it.
    fn values(&self, metric: &str, keep: impl Fn(&Reading) -> bool) -> Vec<StoredValue> {
        let Ok(by_time) = self.by_time.lock() else {
            return vec![];
        };
        let out = self.with_written(|written| {
            values_of(
                by_time.values().map(|&i| &written[i]).filter(|r| keep(r)),
                metric,
            )
        });
        self.count_read(out.len());
        out
    }
}

fn in_range(range: TimeRange) -> impl Fn(&Reading) -> bool {
    move |r| r.time_ms >= range.from_ms && r.time_ms < range.to_ms
}

/// The memory store answers the read port itself: a reference implementation the API tests
/// run on, and that the real stores are compared with.
impl TimeSeriesReader for MemoryStore {
    async fn metric_names(&self) -> Result<Vec<String>, QueryError> {
        let mut names: Vec<String> = self
            .written()
            .iter()
            .flat_map(|r| r.metrics.iter().map(|m| m.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn latest_values(
        &self,
        device_id: &str,
        metrics: &[&str],
    ) -> Result<Vec<(String, Point)>, QueryError> {
        Ok(metrics
            .iter()
            .filter_map(|metric| {
                let found = self.values(metric, |r| r.device_id == device_id).pop()?;
                Some((
                    metric.to_string(),
                    Point {
                        time_ms: found.time_ms,
                        value: found.value,
                    },
                ))
            })
            .collect())
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Vec<Point>, QueryError> {
        iotdp::query::names::checked_range(query.range)?;
        let range = in_range(query.range);
        let values = self.values(&query.metric, |r| {
            r.device_id == query.device_id && range(r)
        });
        series_points(values, query)
    }

    async fn latest_by_device(
        &self,
        metric: &str,
        filter: &FleetFilter,
    ) -> Result<Vec<DeviceValue>, QueryError> {
        let values = self.values(metric, |r| {
            (filter.within.is_empty() || is_under(r, &filter.within))
                && filter
                    .device_type
                    .as_ref()
                    .is_none_or(|t| r.dimensions.as_ref().is_some_and(|d| &d.device_type == t))
        });
        Ok(latest_per_device(values))
    }

    async fn drill_down(
        &self,
        metric: &str,
        within: &LocationPath,
        range: TimeRange,
        aggregate: Aggregate,
    ) -> Result<Vec<GroupValue>, QueryError> {
        iotdp::query::names::child_level(within)?;
        iotdp::query::names::checked_range(range)?;
        let during = in_range(range);
        let values = self.values(metric, |r| is_under(r, within) && during(r));
        Ok(drill_down_groups(values, within, aggregate))
    }
}
