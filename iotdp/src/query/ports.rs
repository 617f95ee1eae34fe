//! The port every store's reader implements; for the same data they give the same answers.

use std::future::Future;

use crate::domain::LocationPath;
use crate::query::model::{
    Aggregate, Answered, DeviceValue, FleetFilter, GroupValue, KnownLatest, Point, QueryError,
    SeriesQuery, TimeRange,
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

    /// [`latest_values`](Self::latest_values), given what the registry knows: the stores
    /// that index their latest values ignore it; the lake reads only the readings after it.
    fn latest_values_after(
        &self,
        device_id: &str,
        metrics: &[&str],
        known: &KnownLatest,
    ) -> impl Future<Output = Result<Vec<(String, Point)>, QueryError>> + Send {
        let _ = known;
        self.latest_values(device_id, metrics)
    }

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

    /// [`series`](Self::series), saying which sources answered (a reader over raw readings
    /// only: `raw`; the rollup-aware reader: the tiers it stitched).
    fn series_answered(
        &self,
        query: &SeriesQuery,
    ) -> impl Future<Output = Result<Answered<Vec<Point>>, QueryError>> + Send {
        async move { Ok(Answered::raw(self.series(query).await?)) }
    }

    /// [`drill_down`](Self::drill_down), saying which sources answered.
    fn drill_down_answered(
        &self,
        metric: &str,
        within: &LocationPath,
        range: TimeRange,
        aggregate: Aggregate,
    ) -> impl Future<Output = Result<Answered<Vec<GroupValue>>, QueryError>> + Send {
        async move {
            Ok(Answered::raw(
                self.drill_down(metric, within, range, aggregate).await?,
            ))
        }
    }
}

forward_through_arc!(TimeSeriesReader {
    fn metric_names(&self) -> impl Future<Output = Result<Vec<String>, QueryError>> + Send;
    fn latest_values(&self, device_id: &str, metrics: &[&str]) -> impl Future<Output = Result<Vec<(String, Point)>, QueryError>> + Send;
    fn series(&self, query: &SeriesQuery) -> impl Future<Output = Result<Vec<Point>, QueryError>> + Send;
    fn latest_by_device(&self, metric: &str, filter: &FleetFilter) -> impl Future<Output = Result<Vec<DeviceValue>, QueryError>> + Send;
    fn drill_down(&self, metric: &str, within: &LocationPath, range: TimeRange, aggregate: Aggregate) -> impl Future<Output = Result<Vec<GroupValue>, QueryError>> + Send;
    fn series_answered(&self, query: &SeriesQuery) -> impl Future<Output = Result<Answered<Vec<Point>>, QueryError>> + Send;
    fn drill_down_answered(&self, metric: &str, within: &LocationPath, range: TimeRange, aggregate: Aggregate) -> impl Future<Output = Result<Answered<Vec<GroupValue>>, QueryError>> + Send;
});
