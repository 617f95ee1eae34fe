//! The port every store's reader implements; for the same data they give the same answers.

use std::future::Future;

use crate::domain::LocationPath;
use crate::query::model::{
    Aggregate, DeviceValue, FleetFilter, GroupValue, Point, QueryError, SeriesQuery, TimeRange,
};

/// Reading back what the ingest path wrote. One implementation per store.
pub trait TimeSeriesReader: Send + Sync {
    /// The metrics the store holds (InfluxDB: field keys; Timestream: the table's measure
    /// columns), for "the latest value of each metric" when the caller names none.
    fn metric_names(&self) -> impl Future<Output = Result<Vec<String>, QueryError>> + Send;

    /// The latest value of each of `metrics` for one device (absent metrics are left out).
    fn latest_values(
        &self,
        device_id: &str,
        metrics: &[&str],
    ) -> impl Future<Output = Result<Vec<(String, Point)>, QueryError>> + Send;

    fn series(
        &self,
        query: &SeriesQuery,
    ) -> impl Future<Output = Result<Vec<Point>, QueryError>> + Send;

    /// The latest value of `metric` for each device the filter covers.
    fn latest_by_device(
        &self,
        metric: &str,
        filter: &FleetFilter,
    ) -> impl Future<Output = Result<Vec<DeviceValue>, QueryError>> + Send;

    /// `metric` aggregated over `range` for each group one level below `within` (the zones
    /// of a site, the spots of a section).
    fn drill_down(
        &self,
        metric: &str,
        within: &LocationPath,
        range: TimeRange,
        aggregate: Aggregate,
    ) -> impl Future<Output = Result<Vec<GroupValue>, QueryError>> + Send;
}

forward_through_arc!(TimeSeriesReader {
    fn metric_names(&self) -> impl Future<Output = Result<Vec<String>, QueryError>> + Send;
    fn latest_values(&self, device_id: &str, metrics: &[&str]) -> impl Future<Output = Result<Vec<(String, Point)>, QueryError>> + Send;
    fn series(&self, query: &SeriesQuery) -> impl Future<Output = Result<Vec<Point>, QueryError>> + Send;
    fn latest_by_device(&self, metric: &str, filter: &FleetFilter) -> impl Future<Output = Result<Vec<DeviceValue>, QueryError>> + Send;
    fn drill_down(&self, metric: &str, within: &LocationPath, range: TimeRange, aggregate: Aggregate) -> impl Future<Output = Result<Vec<GroupValue>, QueryError>> + Send;
});
