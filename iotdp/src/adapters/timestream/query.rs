//! Timestream for LiveAnalytics adapter for the read port ([`TimeSeriesReader`]): SQL built
//! from validated names and quoted literals (the same checks as InfluxQL), answers parsed from
//! `Query` rows, pages followed to the end.
//!
//! moto answers Timestream queries only with canned results, so the SQL is unit-tested on the
//! text it produces and the parsing on recorded response shapes; InfluxDB runs the same
//! questions for real in the integration tests.

use aws_sdk_timestreamquery::Client;
use aws_sdk_timestreamquery::types::{ColumnInfo, Datum, Row, ScalarType};

use crate::adapters::timestream::MEASURE_NAME;
use crate::domain::MetricValue;
use crate::domain::{LocationPath, is_valid_label};
use crate::query::model::{
    Aggregate, DeviceValue, FleetFilter, GroupValue, Point, QueryError, SeriesQuery, TimeRange,
};
use crate::query::names::{
    checked_bin, checked_device, checked_metric, checked_range, child_level,
};
use crate::query::ports::TimeSeriesReader;

/// `"name"`, with `"` doubled (SQL identifiers).
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with `'` doubled (SQL literals).
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn aggregate_sql(aggregate: Aggregate, column: &str) -> String {
    match aggregate {
        Aggregate::Avg => format!("avg({column})"),
        Aggregate::Min => format!("min({column})"),
        Aggregate::Max => format!("max({column})"),
        Aggregate::Sum => format!("sum({column})"),
        Aggregate::Count => format!("count({column})"),
        Aggregate::First => format!("min_by({column}, time)"),
        Aggregate::Last => format!("max_by({column}, time)"),
    }
}

/// SQL for the read port against one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestreamSql {
    table: String,
}

impl TimestreamSql {
    pub fn new(database: &str, table: &str) -> Self {
        Self {
            table: format!("{}.{}", ident(database), ident(table)),
        }
    }

    pub(crate) fn time_condition(range: TimeRange) -> String {
        format!(
            "time >= from_milliseconds({}) AND time < from_milliseconds({})",
            range.from_ms, range.to_ms
        )
    }

    /// The table's columns: measures, dimensions, time, measure_name.
    pub fn describe(&self) -> String {
        format!("DESCRIBE {}", self.table)
    }

    pub fn latest_value(&self, device_id: &str, metric: &str) -> Result<String, QueryError> {
        let m = ident(checked_metric(metric)?);
        Ok(format!(
            "SELECT time, {m} AS value FROM {} WHERE measure_name = {} AND device_id = {} AND {m} IS NOT NULL ORDER BY time DESC LIMIT 1",
            self.table,
            literal(MEASURE_NAME),
            literal(checked_device(device_id)?)
        ))
    }

    pub fn series(&self, query: &SeriesQuery) -> Result<String, QueryError> {
        let m = ident(checked_metric(&query.metric)?);
        let filter = format!(
            "measure_name = {} AND device_id = {} AND {} AND {m} IS NOT NULL",
            literal(MEASURE_NAME),
            literal(checked_device(&query.device_id)?),
            Self::time_condition(checked_range(query.range)?)
        );
        let limit = query
            .limit
            .map(|n| format!(" LIMIT {n}"))
            .unwrap_or_default();
        Ok(match query.bins {
            None => format!(
                "SELECT time, {m} AS value FROM {} WHERE {filter} ORDER BY time{limit}",
                self.table
            ),
            Some((bin, aggregate)) => {
                let seconds = checked_bin(bin)?;
                format!(
                    "SELECT bin(time, {seconds}s) AS time, {} AS value FROM {} WHERE {filter} GROUP BY bin(time, {seconds}s) ORDER BY 1{limit}",
                    aggregate_sql(aggregate, &m),
                    self.table
                )
            }
        })
    }

    pub fn latest_by_device(
        &self,
        metric: &str,
        filter: &FleetFilter,
    ) -> Result<String, QueryError> {
        let m = ident(checked_metric(metric)?);
        let mut conditions = vec![
            format!("measure_name = {}", literal(MEASURE_NAME)),
            format!("{m} IS NOT NULL"),
        ];
        for (level, segment) in filter.within.levels() {
            conditions.push(format!("{} = {}", ident(level), literal(segment)));
        }
        if let Some(kind) = &filter.device_type {
            if !is_valid_label(kind) {
                return Err(QueryError::Invalid(format!(
                    "device type '{kind}' must be 1-64 characters of A-Z a-z 0-9 _ . : -"
                )));
            }
            conditions.push(format!("device_type = {}", literal(kind)));
        }
        Ok(format!(
            "SELECT device_id, max(time) AS time, max_by({m}, time) AS value FROM {} WHERE {} GROUP BY device_id ORDER BY device_id",
            self.table,
            conditions.join(" AND ")
        ))
    }

    pub fn drill_down(
        &self,
        metric: &str,
        within: &LocationPath,
        range: TimeRange,
        aggregate: Aggregate,
    ) -> Result<String, QueryError> {
        let m = ident(checked_metric(metric)?);
        let level = ident(child_level(within)?);
        let mut conditions = vec![format!("measure_name = {}", literal(MEASURE_NAME))];
        for (name, segment) in within.levels() {
            conditions.push(format!("{} = {}", ident(name), literal(segment)));
        }
        conditions.push(Self::time_condition(checked_range(range)?));
        conditions.push(format!("{level} IS NOT NULL AND {m} IS NOT NULL"));
        Ok(format!(
            "SELECT {level} AS grp, {} AS value FROM {} WHERE {} GROUP BY {level} ORDER BY {level}",
            aggregate_sql(aggregate, &m),
            self.table,
            conditions.join(" AND ")
        ))
    }
}

/// Timestream's timestamp text (`2025-11-24 12:00:00.123000000`) as epoch ms.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// One cell, by its column's type: numbers, booleans and text become metric values.
fn cell_value(column: &ColumnInfo, datum: &Datum) -> Option<MetricValue> {
    if datum.null_value() == Some(true) {
        return None;
    }
    let text = datum.scalar_value()?;
    match column.r#type().and_then(|t| t.scalar_type()) {
        Some(ScalarType::Double | ScalarType::Bigint | ScalarType::Integer) => {
            text.parse().ok().map(MetricValue::Number)
        }
        Some(ScalarType::Boolean) => text.parse().ok().map(MetricValue::Bool),
        _ => Some(MetricValue::Text(text.to_owned())),
    }
}

/// Rows as `(column name → cell)` lookups.
pub fn row_cells<'a>(
    columns: &'a [ColumnInfo],
    row: &'a Row,
) -> impl Fn(&str) -> Option<(&'a ColumnInfo, &'a Datum)> + 'a {
    move |name| {
        let i = columns.iter().position(|c| c.name() == Some(name))?;
        Some((&columns[i], row.data().get(i)?))
    }
}

/// A `time, value` row as a point.
pub fn point_from_row(columns: &[ColumnInfo], row: &Row) -> Option<Point> {
    let cell = row_cells(columns, row);
    let (_, time) = cell("time")?;
    let (column, value) = cell("value")?;
    Some(Point {
        time_ms: parse_timestamp(time.scalar_value()?)?,
        value: cell_value(column, value)?,
    })
}

/// DESCRIBE answers one row per column (`Column`, `Type`, `Timestream attribute type`): the
/// multi-measure columns are the metrics (`seq` is the device's counter, not a metric).
pub fn measure_names(columns: &[ColumnInfo], rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter_map(|row| {
            let cell = row_cells(columns, row);
            let name = cell("Column")?.1.scalar_value()?;
            let kind = cell("Timestream attribute type")?.1.scalar_value()?;
            (kind == "MULTI" && name != "seq").then(|| name.to_owned())
        })
        .collect()
}

pub struct TimestreamReader {
    client: Client,
    sql: TimestreamSql,
}

impl TimestreamReader {
    pub fn new(client: Client, database: &str, table: &str) -> Self {
        Self {
            client,
            sql: TimestreamSql::new(database, table),
        }
    }

    async fn rows(&self, sql: &str) -> Result<(Vec<ColumnInfo>, Vec<Row>), QueryError> {
        query_all(&self.client, sql).await
    }
}

/// Every row of every page of `sql`, with the columns.
pub(crate) async fn query_all(
    client: &Client,
    sql: &str,
) -> Result<(Vec<ColumnInfo>, Vec<Row>), QueryError> {
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .query()
            .query_string(sql)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| {
                QueryError::Store(format!(
                    "Timestream query: {}",
                    aws_sdk_timestreamquery::error::DisplayErrorContext(e)
                ))
            })?;
        if columns.is_empty() {
            columns = page.column_info().to_vec();
        }
        rows.extend(page.rows().iter().cloned());
        match page.next_token() {
            Some(next) => token = Some(next.to_owned()),
            None => return Ok((columns, rows)),
        }
    }
}

impl TimeSeriesReader for TimestreamReader {
    async fn metric_names(&self) -> Result<Vec<String>, QueryError> {
        let (columns, rows) = self.rows(&self.sql.describe()).await?;
        let mut names = measure_names(&columns, &rows);
        names.sort();
        Ok(names)
    }

    async fn latest_values(
        &self,
        device_id: &str,
        metrics: &[&str],
    ) -> Result<Vec<(String, Point)>, QueryError> {
        let mut out = Vec::new();
        for metric in metrics {
            let (columns, rows) = self
                .rows(&self.sql.latest_value(device_id, metric)?)
                .await?;
            if let Some(point) = rows.first().and_then(|r| point_from_row(&columns, r)) {
                out.push((metric.to_string(), point));
            }
        }
        Ok(out)
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Vec<Point>, QueryError> {
        let (columns, rows) = self.rows(&self.sql.series(query)?).await?;
        Ok(rows
            .iter()
            .filter_map(|r| point_from_row(&columns, r))
            .collect())
    }

    async fn latest_by_device(
        &self,
        metric: &str,
        filter: &FleetFilter,
    ) -> Result<Vec<DeviceValue>, QueryError> {
        let (columns, rows) = self
            .rows(&self.sql.latest_by_device(metric, filter)?)
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let cell = row_cells(&columns, row);
                let point = point_from_row(&columns, row)?;
                Some(DeviceValue {
                    device_id: cell("device_id")?.1.scalar_value()?.to_owned(),
                    time_ms: point.time_ms,
                    value: point.value,
                })
            })
            .collect())
    }

    async fn drill_down(
        &self,
        metric: &str,
        within: &LocationPath,
        range: TimeRange,
        aggregate: Aggregate,
    ) -> Result<Vec<GroupValue>, QueryError> {
        let (columns, rows) = self
            .rows(&self.sql.drill_down(metric, within, range, aggregate)?)
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let cell = row_cells(&columns, row);
                let group = cell("grp")?.1.scalar_value()?.to_owned();
                let (column, value) = cell("value")?;
                match cell_value(column, value)? {
                    MetricValue::Number(value) => Some(GroupValue { group, value }),
                    _ => None,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_timestreamquery::types::{ColumnInfo, Datum, Row, Type};

    use super::*;

    const RANGE: TimeRange = TimeRange {
        from_ms: 1_764_000_000_000,
        to_ms: 1_764_086_400_000,
    };

    fn sql() -> TimestreamSql {
        TimestreamSql::new("iotdp-prod-iotdp", "telemetry")
    }

    #[test]
    fn a_binned_series_is_one_grouped_query() {
        let q = SeriesQuery {
            device_id: "ac-1".into(),
            metric: "temperature".into(),
            range: RANGE,
            bins: Some((Duration::from_secs(60), Aggregate::Last)),
            limit: None,
        };
        assert_eq!(
            sql().series(&q).unwrap(),
            "SELECT bin(time, 60s) AS time, max_by(\"temperature\", time) AS value FROM \"iotdp-prod-iotdp\".\"telemetry\" \
             WHERE measure_name = 'telemetry' AND device_id = 'ac-1' AND time >= from_milliseconds(1764000000000) \
             AND time < from_milliseconds(1764086400000) AND \"temperature\" IS NOT NULL GROUP BY bin(time, 60s) ORDER BY 1"
        );
    }

    #[test]
    fn a_drill_down_groups_by_the_level_below_within_the_path() {
        let within = LocationPath::parse("wall-1/zone-a").unwrap();
        assert_eq!(
            sql()
                .drill_down("moisture", &within, RANGE, Aggregate::Avg)
                .unwrap(),
            "SELECT \"section\" AS grp, avg(\"moisture\") AS value FROM \"iotdp-prod-iotdp\".\"telemetry\" \
             WHERE measure_name = 'telemetry' AND \"site\" = 'wall-1' AND \"zone\" = 'zone-a' \
             AND time >= from_milliseconds(1764000000000) AND time < from_milliseconds(1764086400000) \
             AND \"section\" IS NOT NULL AND \"moisture\" IS NOT NULL GROUP BY \"section\" ORDER BY \"section\""
        );
    }

    #[test]
    fn hostile_input_never_reaches_the_sql() {
        for h in ["x' OR '1'='1", "t\"; DROP TABLE x; --", "a b", ""] {
            assert!(sql().latest_value(h, "t").is_err(), "{h}");
            assert!(sql().latest_value("ac-1", h).is_err(), "{h}");
            let filter = FleetFilter {
                device_type: Some(h.into()),
                within: LocationPath::default(),
            };
            assert!(sql().latest_by_device("t", &filter).is_err(), "{h}");
        }
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
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

    /// The shape Timestream answers `DESCRIBE "db"."table"` with: one row per column.
    #[test]
    fn describe_rows_name_the_measures() {
        let columns = [
            column("Column", ScalarType::Varchar),
            column("Type", ScalarType::Varchar),
            column("Timestream attribute type", ScalarType::Varchar),
        ];
        let rows = [
            row(&[Some("device_id"), Some("varchar"), Some("DIMENSION")]),
            row(&[Some("measure_name"), Some("varchar"), Some("MEASURE_NAME")]),
            row(&[Some("time"), Some("timestamp"), Some("TIMESTAMP")]),
            row(&[Some("voltage"), Some("double"), Some("MULTI")]),
            row(&[Some("seq"), Some("bigint"), Some("MULTI")]),
            row(&[Some("mode"), Some("varchar"), Some("MULTI")]),
        ];
        assert_eq!(measure_names(&columns, &rows), ["voltage", "mode"]);
        assert_eq!(
            sql().describe(),
            "DESCRIBE \"iotdp-prod-iotdp\".\"telemetry\""
        );
    }

    /// The shape Timestream answers `SELECT time, "m" AS value …` with.
    #[test]
    fn rows_parse_into_points_by_column_type() {
        let columns = [
            column("time", ScalarType::Timestamp),
            column("value", ScalarType::Double),
        ];
        let point = point_from_row(
            &columns,
            &row(&[Some("2025-11-24 16:00:00.123000000"), Some("21.5")]),
        )
        .unwrap();
        assert_eq!(point.time_ms, 1_764_000_000_123);
        assert_eq!(point.value, MetricValue::Number(21.5));
        assert!(
            point_from_row(
                &columns,
                &row(&[Some("2025-11-24 16:00:00.000000000"), None])
            )
            .is_none()
        );
        let flags = [
            column("time", ScalarType::Timestamp),
            column("value", ScalarType::Boolean),
        ];
        let point = point_from_row(
            &flags,
            &row(&[Some("2025-11-24 16:00:00.000000000"), Some("true")]),
        )
        .unwrap();
        assert_eq!(point.value, MetricValue::Bool(true));
        let text = [
            column("time", ScalarType::Timestamp),
            column("value", ScalarType::Varchar),
        ];
        let point = point_from_row(
            &text,
            &row(&[Some("2025-11-24 16:00:00.000000000"), Some("eco")]),
        )
        .unwrap();
        assert_eq!(point.value, MetricValue::Text("eco".into()));
    }
}
