//! The time-series store chosen at deploy time (`TimeSeriesStore`: Timestream for
//! LiveAnalytics, InfluxDB, or the lake), behind each port the store serves: writes, reads and rollups.
//! Each enum forwards a port's calls to the one adapter configured; `wiring` builds them. A
//! third store is a variant here and an adapter family beside the others.

use crate::adapters::influxdb::InfluxDbStore;
use crate::adapters::lake::LakeStore;
use crate::adapters::timestream::TimestreamStore;
use crate::adapters::timestream::rollups::TimestreamRollups;
use crate::domain::Reading;
use crate::ingest::ports::{StoreError, TimeSeriesStore, WriteReport};

/// The time-series store chosen at deploy time (`TIME_SERIES_STORE`).
pub enum SelectedStore {
    Timestream(TimestreamStore),
    InfluxDb(InfluxDbStore),
    Lake(LakeStore),
}

impl TimeSeriesStore for SelectedStore {
    fn max_batch_len(&self) -> usize {
        match self {
            SelectedStore::Timestream(s) => s.max_batch_len(),
            SelectedStore::InfluxDb(s) => s.max_batch_len(),
            SelectedStore::Lake(s) => s.max_batch_len(),
        }
    }

    async fn write(&self, readings: &[Reading]) -> Result<WriteReport, StoreError> {
        match self {
            SelectedStore::Timestream(s) => s.write(readings).await,
            SelectedStore::InfluxDb(s) => s.write(readings).await,
            SelectedStore::Lake(s) => s.write(readings).await,
        }
    }
}

impl SelectedStore {
    /// Which store, for logs and the local live view.
    pub fn describe(&self) -> &'static str {
        match self {
            SelectedStore::Timestream(_) => "Timestream for LiveAnalytics",
            SelectedStore::InfluxDb(_) => "InfluxDB",
            SelectedStore::Lake(_) => "the lake (Parquet on S3)",
        }
    }
}

/// The read side of the store `config` names (the query API and `make local` read through it).
pub enum SelectedReader {
    Timestream(crate::adapters::timestream::query::TimestreamReader),
    InfluxDb(InfluxDbStore),
    Lake(LakeStore),
}

impl SelectedReader {
    pub fn describe(&self) -> &'static str {
        match self {
            SelectedReader::Timestream(_) => "Timestream for LiveAnalytics",
            SelectedReader::InfluxDb(_) => "InfluxDB",
            SelectedReader::Lake(_) => "the lake (Parquet on S3)",
        }
    }
}

impl crate::query::ports::TimeSeriesReader for SelectedReader {
    async fn metric_names(&self) -> Result<Vec<String>, crate::query::model::QueryError> {
        match self {
            SelectedReader::Timestream(r) => r.metric_names().await,
            SelectedReader::InfluxDb(r) => r.metric_names().await,
            SelectedReader::Lake(r) => r.metric_names().await,
        }
    }

    async fn latest_values(
        &self,
        device_id: &str,
        metrics: &[&str],
    ) -> Result<Vec<(String, crate::query::model::Point)>, crate::query::model::QueryError> {
        match self {
            SelectedReader::Timestream(r) => r.latest_values(device_id, metrics).await,
            SelectedReader::InfluxDb(r) => r.latest_values(device_id, metrics).await,
            SelectedReader::Lake(r) => r.latest_values(device_id, metrics).await,
        }
    }

    async fn latest_values_after(
        &self,
        device_id: &str,
        metrics: &[&str],
        known: &crate::query::model::KnownLatest,
    ) -> Result<Vec<(String, crate::query::model::Point)>, crate::query::model::QueryError> {
        match self {
            SelectedReader::Timestream(r) => r.latest_values_after(device_id, metrics, known).await,
            SelectedReader::InfluxDb(r) => r.latest_values_after(device_id, metrics, known).await,
            SelectedReader::Lake(r) => r.latest_values_after(device_id, metrics, known).await,
        }
    }

    async fn series(
        &self,
        query: &crate::query::model::SeriesQuery,
    ) -> Result<Vec<crate::query::model::Point>, crate::query::model::QueryError> {
        match self {
            SelectedReader::Timestream(r) => r.series(query).await,
            SelectedReader::InfluxDb(r) => r.series(query).await,
            SelectedReader::Lake(r) => r.series(query).await,
        }
    }

    async fn latest_by_device(
        &self,
        metric: &str,
        filter: &crate::query::model::FleetFilter,
    ) -> Result<Vec<crate::query::model::DeviceValue>, crate::query::model::QueryError> {
        match self {
            SelectedReader::Timestream(r) => r.latest_by_device(metric, filter).await,
            SelectedReader::InfluxDb(r) => r.latest_by_device(metric, filter).await,
            SelectedReader::Lake(r) => r.latest_by_device(metric, filter).await,
        }
    }

    async fn drill_down(
        &self,
        metric: &str,
        within: &crate::domain::LocationPath,
        range: crate::query::model::TimeRange,
        aggregate: crate::query::model::Aggregate,
    ) -> Result<Vec<crate::query::model::GroupValue>, crate::query::model::QueryError> {
        match self {
            SelectedReader::Timestream(r) => r.drill_down(metric, within, range, aggregate).await,
            SelectedReader::InfluxDb(r) => r.drill_down(metric, within, range, aggregate).await,
            SelectedReader::Lake(r) => r.drill_down(metric, within, range, aggregate).await,
        }
    }
}

/// The rollup port of the store `config` names.
pub enum SelectedRollupStore {
    Timestream(TimestreamRollups),
    InfluxDb(InfluxDbStore),
    Lake(LakeStore),
}

impl crate::rollup::ports::RollupStore for SelectedRollupStore {
    async fn raw_readings(
        &self,
        range: crate::query::model::TimeRange,
        within: &crate::domain::LocationPath,
    ) -> Result<Vec<Reading>, crate::query::model::QueryError> {
        match self {
            SelectedRollupStore::Timestream(s) => s.raw_readings(range, within).await,
            SelectedRollupStore::InfluxDb(s) => s.raw_readings(range, within).await,
            SelectedRollupStore::Lake(s) => s.raw_readings(range, within).await,
        }
    }

    async fn rollups(
        &self,
        tier: crate::rollup::tier::Tier,
        range: crate::query::model::TimeRange,
        selection: crate::rollup::model::RowSelection<'_>,
    ) -> Result<Vec<crate::rollup::model::RollupRow>, crate::query::model::QueryError> {
        match self {
            SelectedRollupStore::Timestream(s) => s.rollups(tier, range, selection).await,
            SelectedRollupStore::InfluxDb(s) => s.rollups(tier, range, selection).await,
            SelectedRollupStore::Lake(s) => s.rollups(tier, range, selection).await,
        }
    }

    async fn write_rollups(
        &self,
        tier: crate::rollup::tier::Tier,
        rows: &[crate::rollup::model::RollupRow],
    ) -> Result<(), crate::rollup::ports::RollupError> {
        match self {
            SelectedRollupStore::Timestream(s) => s.write_rollups(tier, rows).await,
            SelectedRollupStore::InfluxDb(s) => s.write_rollups(tier, rows).await,
            SelectedRollupStore::Lake(s) => s.write_rollups(tier, rows).await,
        }
    }

    async fn upkeep(
        &self,
        now_ms: i64,
    ) -> Result<crate::rollup::model::Upkeep, crate::rollup::ports::RollupError> {
        match self {
            SelectedRollupStore::Timestream(s) => s.upkeep(now_ms).await,
            SelectedRollupStore::InfluxDb(s) => s.upkeep(now_ms).await,
            SelectedRollupStore::Lake(s) => s.upkeep(now_ms).await,
        }
    }
}
