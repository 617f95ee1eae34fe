//! Timestream for LiveAnalytics for the rollup port: raw readings read back with `SELECT *`,
//! rollup rows written as multi-measure records (measure name `rollup`, dimensions `level`,
//! `series`, `metric`; time = the window's start) into one table per tier, with the time they
//! were computed as the record version, so a recomputed window replaces the earlier record.
//!
//! The SQL is built from validated names and quoted literals; moto answers Timestream queries
//! only with canned results, so it is unit-tested on its text and on recorded response shapes.

use std::sync::Arc;

use aws_sdk_timestreamquery::types::{ColumnInfo, Row, ScalarType};
use aws_sdk_timestreamwrite::error::DisplayErrorContext;
use aws_sdk_timestreamwrite::types::{Dimension, MeasureValue, MeasureValueType, Record, TimeUnit};

use crate::adapters::timestream::MEASURE_NAME;
use crate::adapters::timestream::query::{
    TimestreamSql, ident, literal, parse_timestamp, query_all, row_cells,
};
use crate::domain::{
    DeviceDimensions, HIERARCHY_LEVELS, LocationPath, Metric, MetricValue, Reading,
};
use crate::query::model::{QueryError, TimeRange};
use crate::query::names::{checked_device, checked_metric, checked_range, child_level};
use crate::rollup::aggregate::Aggregates;
use crate::rollup::model::{DEVICE_LEVEL, RollupRow, RowSelection, SeriesKey};
use crate::rollup::ports::{RollupError, RollupStore};
use crate::rollup::tier::Tier;

/// The measure name of every rollup record.
pub const ROLLUP_MEASURE_NAME: &str = "rollup";
/// WriteRecords takes at most 100 records per call.
const RECORDS_PER_WRITE: usize = 100;

/// The tables: raw readings and one per tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupTables {
    pub database: String,
    pub raw: String,
    /// `[1m, 1h, 1d]`.
    pub tiers: [String; 3],
}

impl RollupTables {
    fn tier(&self, tier: Tier) -> &str {
        &self.tiers[Tier::ALL.iter().position(|t| *t == tier).unwrap_or(0)]
    }

    fn qualified(&self, table: &str) -> String {
        format!("{}.{}", ident(&self.database), ident(table))
    }

    pub fn raw_readings_sql(
        &self,
        range: TimeRange,
        within: &LocationPath,
    ) -> Result<String, QueryError> {
        let mut conditions = vec![
            format!("measure_name = {}", literal(MEASURE_NAME)),
            TimestreamSql::time_condition(checked_range(range)?),
        ];
        for (level, segment) in within.levels() {
            conditions.push(format!("{} = {}", ident(level), literal(segment)));
        }
        Ok(format!(
            "SELECT * FROM {} WHERE {}",
            self.qualified(&self.raw),
            conditions.join(" AND ")
        ))
    }

    pub fn rollups_sql(
        &self,
        tier: Tier,
        range: TimeRange,
        selection: RowSelection<'_>,
    ) -> Result<String, QueryError> {
        let mut conditions = vec![
            format!("measure_name = {}", literal(ROLLUP_MEASURE_NAME)),
            TimestreamSql::time_condition(checked_range(range)?),
        ];
        match selection {
            RowSelection::All => {}
            RowSelection::Device { device_id, metric } => {
                conditions.push(format!("level = {}", literal(DEVICE_LEVEL)));
                conditions.push(format!("metric = {}", literal(checked_metric(metric)?)));
                conditions.push(format!("series = {}", literal(checked_device(device_id)?)));
            }
            RowSelection::Children { within, metric } => {
                conditions.push(format!("level = {}", literal(child_level(within)?)));
                conditions.push(format!("metric = {}", literal(checked_metric(metric)?)));
                if !within.is_empty() {
                    // Labels are `[A-Za-z0-9_.:-]`: only `.` means something in a pattern.
                    let pattern = format!("^{}/", within.to_string().replace('.', "\\."));
                    conditions.push(format!("regexp_like(series, {})", literal(&pattern)));
                }
            }
        }
        Ok(format!(
            "SELECT * FROM {} WHERE {}",
            self.qualified(self.tier(tier)),
            conditions.join(" AND ")
        ))
    }
}

/// One tier's rows as multi-measure records.
pub fn rollup_records(
    rows: &[RollupRow],
) -> Result<Vec<Record>, aws_sdk_timestreamwrite::error::BuildError> {
    let mut number = ryu::Buffer::new();
    let mut integer = itoa::Buffer::new();
    rows.iter()
        .map(|row| {
            let a = &row.aggregates;
            let doubles = [
                ("sum", a.sum),
                ("min", a.min),
                ("max", a.max),
                ("first", a.first),
                ("last", a.last),
            ]
            .map(|(name, v)| {
                (
                    name,
                    number.format_finite(v).to_owned(),
                    MeasureValueType::Double,
                )
            });
            let bigints = [
                ("count", i64::try_from(a.count).unwrap_or(i64::MAX)),
                ("first_time", a.first_ms),
                ("last_time", a.last_ms),
                ("window_end", row.window_end_ms()),
                ("computed_at", row.computed_at_ms),
            ]
            .map(|(name, v)| (name, integer.format(v).to_owned(), MeasureValueType::Bigint));
            let mut measures = Vec::with_capacity(10);
            for (name, value, kind) in bigints.into_iter().chain(doubles) {
                measures.push(
                    MeasureValue::builder()
                        .name(name)
                        .value(value)
                        .r#type(kind)
                        .build()?,
                );
            }
            let dimensions = [
                ("level", row.key.level().to_owned()),
                ("metric", row.metric.clone()),
                ("series", row.key.name()),
            ]
            .into_iter()
            .map(|(name, value)| Dimension::builder().name(name).value(value).build())
            .collect::<Result<Vec<_>, _>>()?;
            Ok(Record::builder()
                .measure_name(ROLLUP_MEASURE_NAME)
                .measure_value_type(MeasureValueType::Multi)
                .time_unit(TimeUnit::Milliseconds)
                .time(integer.format(row.window_start_ms))
                .version(row.computed_at_ms)
                .set_dimensions(Some(dimensions))
                .set_measure_values(Some(measures))
                .build())
        })
        .collect()
}

/// A cell as text, when not null.
fn text<'a>(
    cell: Option<(&'a ColumnInfo, &'a aws_sdk_timestreamquery::types::Datum)>,
) -> Option<&'a str> {
    let (_, datum) = cell?;
    if datum.null_value() == Some(true) {
        return None;
    }
    datum.scalar_value()
}

const RAW_COLUMNS: [&str; 9] = [
    "time",
    "measure_name",
    "device_id",
    "device_type",
    "site",
    "zone",
    "section",
    "spot",
    "seq",
];

/// Raw readings from `SELECT *` rows (the multi-measure columns are the metrics).
pub fn readings_from_rows(columns: &[ColumnInfo], rows: &[Row]) -> Vec<Reading> {
    let mut places: std::collections::HashMap<(String, String), Arc<DeviceDimensions>> =
        Default::default();
    rows.iter()
        .filter_map(|row| {
            let cell = row_cells(columns, row);
            let time_ms = parse_timestamp(text(cell("time"))?)?;
            let device_id = text(cell("device_id"))?;
            let metrics: Vec<Metric> = columns
                .iter()
                .zip(row.data())
                .filter_map(|(column, datum)| {
                    let name = column.name()?;
                    if RAW_COLUMNS.contains(&name) || datum.null_value() == Some(true) {
                        return None;
                    }
                    let value = datum.scalar_value()?;
                    let value = match column.r#type().and_then(|t| t.scalar_type()) {
                        Some(ScalarType::Double | ScalarType::Bigint | ScalarType::Integer) => {
                            MetricValue::Number(value.parse().ok()?)
                        }
                        Some(ScalarType::Boolean) => MetricValue::Bool(value.parse().ok()?),
                        _ => MetricValue::Text(value.to_owned()),
                    };
                    Some(Metric {
                        name: name.to_owned(),
                        value,
                    })
                })
                .collect();
            let mut reading = Reading::new(device_id, time_ms, []);
            reading.metrics = metrics;
            if let Some(device_type) = text(cell("device_type")) {
                let path: Vec<&str> = HIERARCHY_LEVELS
                    .iter()
                    .map_while(|level| text(cell(level)))
                    .collect();
                let path = path.join("/");
                reading.dimensions = Some(
                    places
                        .entry((device_type.to_owned(), path.clone()))
                        .or_insert_with(|| {
                            Arc::new(DeviceDimensions {
                                device_type: device_type.to_owned(),
                                path: LocationPath::parse(&path).unwrap_or_default(),
                            })
                        })
                        .clone(),
                );
            }
            Some(reading)
        })
        .collect()
}

/// Rollup rows from `SELECT *` rows of a tier's table.
pub fn rows_from_rows(tier: Tier, columns: &[ColumnInfo], rows: &[Row]) -> Vec<RollupRow> {
    rows.iter()
        .filter_map(|row| {
            let cell = row_cells(columns, row);
            let int = |name: &str| text(cell(name))?.parse::<i64>().ok();
            let float = |name: &str| text(cell(name))?.parse::<f64>().ok();
            Some(RollupRow {
                tier,
                key: SeriesKey::parse(text(cell("level"))?, text(cell("series"))?)?,
                metric: text(cell("metric"))?.to_owned(),
                window_start_ms: parse_timestamp(text(cell("time"))?)?,
                aggregates: Aggregates {
                    count: u64::try_from(int("count")?).ok()?,
                    sum: float("sum")?,
                    min: float("min")?,
                    max: float("max")?,
                    first_ms: int("first_time")?,
                    first: float("first")?,
                    last_ms: int("last_time")?,
                    last: float("last")?,
                },
                computed_at_ms: int("computed_at")?,
            })
        })
        .collect()
}

/// The rollup port over Timestream: the query client reads, the write client writes.
pub struct TimestreamRollups {
    query: aws_sdk_timestreamquery::Client,
    write: aws_sdk_timestreamwrite::Client,
    tables: RollupTables,
}

impl TimestreamRollups {
    pub fn new(
        query: aws_sdk_timestreamquery::Client,
        write: aws_sdk_timestreamwrite::Client,
        tables: RollupTables,
    ) -> Self {
        Self {
            query,
            write,
            tables,
        }
    }

    async fn rows(&self, sql: &str) -> Result<(Vec<ColumnInfo>, Vec<Row>), QueryError> {
        query_all(&self.query, sql).await
    }
}

impl RollupStore for TimestreamRollups {
    async fn raw_readings(
        &self,
        range: TimeRange,
        within: &LocationPath,
    ) -> Result<Vec<Reading>, QueryError> {
        let (columns, rows) = self
            .rows(&self.tables.raw_readings_sql(range, within)?)
            .await?;
        Ok(readings_from_rows(&columns, &rows))
    }

    async fn rollups(
        &self,
        tier: Tier,
        range: TimeRange,
        selection: RowSelection<'_>,
    ) -> Result<Vec<RollupRow>, QueryError> {
        let (columns, rows) = self
            .rows(&self.tables.rollups_sql(tier, range, selection)?)
            .await?;
        Ok(rows_from_rows(tier, &columns, &rows))
    }

    async fn write_rollups(&self, tier: Tier, rows: &[RollupRow]) -> Result<(), RollupError> {
        for chunk in rows.chunks(RECORDS_PER_WRITE) {
            let records = rollup_records(chunk)
                .map_err(|e| RollupError::Store(format!("building rollup records: {e}")))?;
            self.write
                .write_records()
                .database_name(&self.tables.database)
                .table_name(self.tables.tier(tier))
                .set_records(Some(records))
                .send()
                .await
                .map_err(|e| {
                    RollupError::Store(format!(
                        "Timestream rollup write to {}: {}",
                        self.tables.tier(tier),
                        DisplayErrorContext(e)
                    ))
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_timestreamquery::types::{Datum, Type};

    use super::*;

    fn tables() -> RollupTables {
        RollupTables {
            database: "iotdp-prod".into(),
            raw: "telemetry".into(),
            tiers: [
                "telemetry_1m".into(),
                "telemetry_1h".into(),
                "telemetry_1d".into(),
            ],
        }
    }

    const RANGE: TimeRange = TimeRange {
        from_ms: 1_764_000_000_000,
        to_ms: 1_764_086_400_000,
    };

    #[test]
    fn the_sql_reads_raw_readings_and_each_selection_of_rows() {
        let within = LocationPath::parse("wall.1/zone-a").unwrap();
        assert_eq!(
            tables().raw_readings_sql(RANGE, &within).unwrap(),
            "SELECT * FROM \"iotdp-prod\".\"telemetry\" WHERE measure_name = 'telemetry' AND \
             time >= from_milliseconds(1764000000000) AND time < from_milliseconds(1764086400000) \
             AND \"site\" = 'wall.1' AND \"zone\" = 'zone-a'"
        );
        assert_eq!(
            tables()
                .rollups_sql(
                    Tier::Day,
                    RANGE,
                    RowSelection::Children {
                        within: &within,
                        metric: "moisture"
                    }
                )
                .unwrap(),
            "SELECT * FROM \"iotdp-prod\".\"telemetry_1d\" WHERE measure_name = 'rollup' AND \
             time >= from_milliseconds(1764000000000) AND time < from_milliseconds(1764086400000) \
             AND level = 'section' AND metric = 'moisture' AND regexp_like(series, '^wall\\.1/zone-a/')"
        );
        assert_eq!(
            tables()
                .rollups_sql(
                    Tier::Minute,
                    RANGE,
                    RowSelection::Device {
                        device_id: "ac-1",
                        metric: "temperature"
                    }
                )
                .unwrap(),
            "SELECT * FROM \"iotdp-prod\".\"telemetry_1m\" WHERE measure_name = 'rollup' AND \
             time >= from_milliseconds(1764000000000) AND time < from_milliseconds(1764086400000) \
             AND level = 'device' AND metric = 'temperature' AND series = 'ac-1'"
        );
        for hostile in ["x' OR '1'='1", "a\"b", ""] {
            assert!(
                tables()
                    .rollups_sql(
                        Tier::Hour,
                        RANGE,
                        RowSelection::Device {
                            device_id: hostile,
                            metric: "t"
                        }
                    )
                    .is_err()
            );
            assert!(
                tables()
                    .rollups_sql(
                        Tier::Hour,
                        RANGE,
                        RowSelection::Device {
                            device_id: "a",
                            metric: hostile
                        }
                    )
                    .is_err()
            );
        }
    }

    fn column(name: &str, scalar: ScalarType) -> ColumnInfo {
        ColumnInfo::builder()
            .name(name)
            .r#type(Type::builder().scalar_type(scalar).build())
            .build()
    }

    fn row(cells: &[Option<&str>]) -> Row {
        Row::builder()
            .set_data(Some(
                cells
                    .iter()
                    .map(|c| match c {
                        Some(v) => Datum::builder().scalar_value(*v).build(),
                        None => Datum::builder().null_value(true).build(),
                    })
                    .collect(),
            ))
            .build()
            .unwrap()
    }

    /// The shape Timestream answers `SELECT *` on the raw table with: dimensions, then
    /// `measure_name`, `time`, and one column per measure of the multi-measure records.
    #[test]
    fn raw_rows_become_readings_with_their_place() {
        let columns = [
            column("device_id", ScalarType::Varchar),
            column("device_type", ScalarType::Varchar),
            column("site", ScalarType::Varchar),
            column("zone", ScalarType::Varchar),
            column("measure_name", ScalarType::Varchar),
            column("time", ScalarType::Timestamp),
            column("moisture", ScalarType::Double),
            column("pump_on", ScalarType::Boolean),
            column("seq", ScalarType::Bigint),
        ];
        let rows = [
            row(&[
                Some("p1"),
                Some("spot-sensor"),
                Some("wall-1"),
                Some("zone-a"),
                Some("telemetry"),
                Some("2025-11-24 16:00:00.123000000"),
                Some("31.5"),
                None,
                Some("4"),
            ]),
            row(&[
                Some("x"),
                None,
                None,
                None,
                Some("telemetry"),
                Some("2025-11-24 16:00:01.000000000"),
                None,
                Some("true"),
                None,
            ]),
        ];
        let readings = readings_from_rows(&columns, &rows);
        assert_eq!(readings.len(), 2);
        assert_eq!(readings[0].time_ms, 1_764_000_000_123);
        assert_eq!(
            readings[0].metrics,
            [Metric {
                name: "moisture".into(),
                value: MetricValue::Number(31.5)
            }]
        );
        assert_eq!(
            readings[0].dimensions.as_ref().unwrap().path.to_string(),
            "wall-1/zone-a"
        );
        assert_eq!(readings[1].metrics[0].value, MetricValue::Bool(true));
        assert!(readings[1].dimensions.is_none());
    }

    #[test]
    fn a_row_written_as_a_record_reads_back_the_same() {
        let original = RollupRow {
            tier: Tier::Hour,
            key: SeriesKey::Group(LocationPath::parse("wall-1/zone-a").unwrap()),
            metric: "moisture".into(),
            window_start_ms: 1_764_000_000_000,
            aggregates: Aggregates {
                count: 60,
                sum: 1830.5,
                min: 29.1,
                max: 31.4,
                first_ms: 1_764_000_000_000,
                first: 30.2,
                last_ms: 1_764_003_540_000,
                last: 30.9,
            },
            computed_at_ms: 1_764_003_720_000,
        };
        let records = rollup_records(std::slice::from_ref(&original)).unwrap();
        let record = &records[0];
        assert_eq!(record.version(), Some(original.computed_at_ms));
        assert_eq!(record.time(), Some("1764000000000"));
        // Read back: the dimensions and measures as columns, as a SELECT * answers.
        let mut columns = vec![
            column("level", ScalarType::Varchar),
            column("metric", ScalarType::Varchar),
            column("series", ScalarType::Varchar),
            column("measure_name", ScalarType::Varchar),
            column("time", ScalarType::Timestamp),
        ];
        let mut cells: Vec<String> = record
            .dimensions()
            .iter()
            .map(|d| d.value().to_owned())
            .collect();
        cells.push("rollup".into());
        cells.push("2025-11-24 16:00:00.000000000".into());
        for measure in record.measure_values() {
            let scalar = match measure.r#type() {
                MeasureValueType::Double => ScalarType::Double,
                _ => ScalarType::Bigint,
            };
            columns.push(column(measure.name(), scalar));
            cells.push(measure.value().to_owned());
        }
        let cells: Vec<Option<&str>> = cells.iter().map(|c| Some(c.as_str())).collect();
        assert_eq!(
            rows_from_rows(Tier::Hour, &columns, &[row(&cells)]),
            [original]
        );
    }
}
