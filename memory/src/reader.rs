//! The memory store read back: the reference implementation of the read port every store's
//! reader is held to.

use super::ingest::MemoryStore;
use iotdp::domain::LocationPath;
use iotdp::domain::Reading;
use iotdp::query::evaluate::{
    StoredValue, drill_down_groups, is_under, latest_of, latest_per_device, metric_names_of,
    series_points, values_of,
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

impl MemoryStore {
    /// A device's stored readings (the latest write of each instant), in time order.
    fn latest_writes_of(&self, device_id: &str) -> Vec<Reading> {
        let Ok(by_time) = self.by_time.lock() else {
            return vec![];
        };
        let mine: Vec<Reading> = self.with_written(|written| {
            by_time
                .values()
                .map(|&i| &written[i])
                .filter(|r| r.device_id == device_id)
                .cloned()
                .collect()
        });
        self.count_read(mine.len());
        mine
    }
}

fn in_range(range: TimeRange) -> impl Fn(&Reading) -> bool {
    move |r| r.time_ms >= range.from_ms && r.time_ms < range.to_ms
}

/// The memory store answers the read port itself: a reference implementation the API tests
/// run on, and that the real stores are compared with.
impl TimeSeriesReader for MemoryStore {
    async fn metric_names(&self) -> Result<Vec<String>, QueryError> {
        Ok(self.with_written(|written| metric_names_of(written)))
    }

    async fn latest_values(
        &self,
        device_id: &str,
        metrics: &[&str],
    ) -> Result<Vec<(String, Point)>, QueryError> {
        let mine = self.latest_writes_of(device_id);
        Ok(latest_of(&mine, metrics))
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
