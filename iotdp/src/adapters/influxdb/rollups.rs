//! InfluxDB for the rollup port: raw readings read back with `SELECT *`, rollup rows written
//! as one point per series, metric and window into `telemetry_1m`, `telemetry_1h` and
//! `telemetry_1d` (tags `level`, `series`, `metric`; time = the window's start), so a
//! recomputed window overwrites the same point.
//!
//! `telemetry_1h,level=zone,metric=moisture,series=wall-1/zone-a count=60i,sum=1830.5,min=29.1,max=31.4,first=30.2,first_time=1764000000000i,last=30.9,last_time=1764003540000i,window_end=1764003600000i,computed_at=1764003720000i 1764000000000`

use std::sync::Arc;

use crate::adapters::influxdb::influxql::{quote_ident, quote_string, time_condition};
use crate::adapters::influxdb::line_protocol::{MEASUREMENT, push_key, push_measurement};
use crate::adapters::influxdb::{InfluxDbStore, MAX_LINES_PER_WRITE, error_message, gzip};
use crate::domain::{
    DeviceDimensions, HIERARCHY_LEVELS, LocationPath, Metric, MetricValue, Reading,
};
use crate::query::model::{QueryError, TimeRange};
use crate::query::names::{checked_device, checked_metric, checked_range, child_level};
use crate::rollup::aggregate::Aggregates;
use crate::rollup::model::{DEVICE_LEVEL, RollupRow, RowSelection, SeriesKey};
use crate::rollup::ports::{RollupError, RollupStore};
use crate::rollup::tier::Tier;

/// The measurement a tier's rows are written to.
pub fn rollup_measurement(tier: Tier) -> String {
    format!("{MEASUREMENT}_{}", tier.name())
}

/// Rows as line protocol, one line each.
pub fn encode_rollup_lines(tier: Tier, rows: &[RollupRow], out: &mut Vec<u8>) {
    let measurement = rollup_measurement(tier);
    let mut number = ryu::Buffer::new();
    let mut integer = itoa::Buffer::new();
    for row in rows {
        push_measurement(out, &measurement);
        out.extend_from_slice(b",level=");
        push_key(out, row.key.level());
        out.extend_from_slice(b",metric=");
        push_key(out, &row.metric);
        out.extend_from_slice(b",series=");
        push_key(out, &row.key.name());
        let a = &row.aggregates;
        let field = |out: &mut Vec<u8>, first: bool, name: &str| {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
        };
        field(out, true, " count");
        out.extend_from_slice(integer.format(a.count).as_bytes());
        out.push(b'i');
        for (name, value) in [
            ("sum", a.sum),
            ("min", a.min),
            ("max", a.max),
            ("first", a.first),
            ("last", a.last),
        ] {
            field(out, false, name);
            out.extend_from_slice(number.format_finite(value).as_bytes());
        }
        for (name, value) in [
            ("first_time", a.first_ms),
            ("last_time", a.last_ms),
            ("window_end", row.window_end_ms()),
            ("computed_at", row.computed_at_ms),
        ] {
            field(out, false, name);
            out.extend_from_slice(integer.format(value).as_bytes());
            out.push(b'i');
        }
        out.push(b' ');
        out.extend_from_slice(integer.format(row.window_start_ms).as_bytes());
        out.push(b'\n');
    }
}

/// `SELECT *` of the raw readings in `range` at or below `within`.
pub fn raw_readings_query(range: TimeRange, within: &LocationPath) -> Result<String, QueryError> {
    let mut conditions = vec![time_condition(checked_range(range)?)];
    for (level, segment) in within.levels() {
        conditions.push(format!(
            "{} = {}",
            quote_ident(level),
            quote_string(segment)
        ));
    }
    Ok(format!(
        "SELECT * FROM {} WHERE {}",
        quote_ident(MEASUREMENT),
        conditions.join(" AND ")
    ))
}

/// A regular expression matching exactly the paths below `within` (labels are
/// `[A-Za-z0-9_.:-]`, so only `.` needs escaping).
fn below_regex(within: &LocationPath) -> String {
    format!(
        "/^{}\\//",
        within.to_string().replace('.', "\\.").replace('/', "\\/")
    )
}

pub fn rollups_query(
    tier: Tier,
    range: TimeRange,
    selection: RowSelection<'_>,
) -> Result<String, QueryError> {
    let mut conditions = vec![time_condition(checked_range(range)?)];
    match selection {
        RowSelection::All => {}
        RowSelection::Device { device_id, metric } => {
            conditions.push(format!("\"level\" = {}", quote_string(DEVICE_LEVEL)));
            conditions.push(format!(
                "\"metric\" = {}",
                quote_string(checked_metric(metric)?)
            ));
            conditions.push(format!(
                "\"series\" = {}",
                quote_string(checked_device(device_id)?)
            ));
        }
        RowSelection::Children { within, metric } => {
            conditions.push(format!(
                "\"level\" = {}",
                quote_string(child_level(within)?)
            ));
            conditions.push(format!(
                "\"metric\" = {}",
                quote_string(checked_metric(metric)?)
            ));
            if !within.is_empty() {
                conditions.push(format!("\"series\" =~ {}", below_regex(within)));
            }
        }
    }
    Ok(format!(
        "SELECT * FROM {} WHERE {}",
        quote_ident(&rollup_measurement(tier)),
        conditions.join(" AND ")
    ))
}

/// A `SELECT *` result's rows as `column → value` lookups.
fn each_row<'a>(
    result: &'a serde_json::Value,
) -> impl Iterator<Item = (&'a [serde_json::Value], &'a [serde_json::Value])> + 'a {
    result["series"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|series| {
            let columns = series["columns"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            series["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |row| Some((columns, row.as_array()?.as_slice())))
        })
}

const RAW_TAGS: [&str; 7] = [
    "time",
    "device_id",
    "device_type",
    "site",
    "zone",
    "section",
    "spot",
];

/// Raw readings from a `SELECT *` answer (`seq` is left out: it is not a metric).
pub fn readings_from_answer(result: &serde_json::Value) -> Vec<Reading> {
    let mut places: std::collections::HashMap<(String, String), Arc<DeviceDimensions>> =
        Default::default();
    let mut out = Vec::new();
    for (columns, row) in each_row(result) {
        let cell = |name: &str| {
            columns
                .iter()
                .position(|c| c.as_str() == Some(name))
                .and_then(|i| row.get(i))
                .filter(|v| !v.is_null())
        };
        let (Some(time_ms), Some(device_id)) = (
            cell("time").and_then(serde_json::Value::as_i64),
            cell("device_id").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        let metrics: Vec<Metric> = columns
            .iter()
            .zip(row)
            .filter_map(|(column, value)| {
                let name = column.as_str()?;
                if RAW_TAGS.contains(&name) || name == "seq" {
                    return None;
                }
                let value = match value {
                    serde_json::Value::Number(n) => MetricValue::Number(n.as_f64()?),
                    serde_json::Value::Bool(b) => MetricValue::Bool(*b),
                    serde_json::Value::String(s) => MetricValue::Text(s.clone()),
                    _ => return None,
                };
                Some(Metric {
                    name: name.to_owned(),
                    value,
                })
            })
            .collect();
        let device_type = cell("device_type").and_then(|v| v.as_str());
        let path: Vec<&str> = HIERARCHY_LEVELS
            .iter()
            .map_while(|level| {
                cell(level)
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.is_empty())
            })
            .collect();
        let mut reading = Reading::new(device_id, time_ms, []);
        reading.metrics = metrics;
        if let Some(device_type) = device_type {
            let path = path.join("/");
            let dimensions = places
                .entry((device_type.to_owned(), path.clone()))
                .or_insert_with(|| {
                    Arc::new(DeviceDimensions {
                        device_type: device_type.to_owned(),
                        path: LocationPath::parse(&path).unwrap_or_default(),
                    })
                })
                .clone();
            reading.dimensions = Some(dimensions);
        }
        out.push(reading);
    }
    out
}

/// Rollup rows from a `SELECT *` answer on a tier's measurement.
pub fn rows_from_answer(tier: Tier, result: &serde_json::Value) -> Vec<RollupRow> {
    each_row(result)
        .filter_map(|(columns, row)| {
            let cell = |name: &str| {
                columns
                    .iter()
                    .position(|c| c.as_str() == Some(name))
                    .and_then(|i| row.get(i))
            };
            let int = |name: &str| cell(name).and_then(serde_json::Value::as_i64);
            let float = |name: &str| cell(name).and_then(serde_json::Value::as_f64);
            let key = SeriesKey::parse(cell("level")?.as_str()?, cell("series")?.as_str()?)?;
            Some(RollupRow {
                tier,
                key,
                metric: cell("metric")?.as_str()?.to_owned(),
                window_start_ms: int("time")?,
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

impl RollupStore for InfluxDbStore {
    async fn raw_readings(
        &self,
        range: TimeRange,
        within: &LocationPath,
    ) -> Result<Vec<Reading>, QueryError> {
        let results = self.query(&raw_readings_query(range, within)?).await?;
        Ok(results
            .first()
            .map(readings_from_answer)
            .unwrap_or_default())
    }

    async fn rollups(
        &self,
        tier: Tier,
        range: TimeRange,
        selection: RowSelection<'_>,
    ) -> Result<Vec<RollupRow>, QueryError> {
        let results = self.query(&rollups_query(tier, range, selection)?).await?;
        Ok(results
            .first()
            .map(|r| rows_from_answer(tier, r))
            .unwrap_or_default())
    }

    async fn write_rollups(&self, tier: Tier, rows: &[RollupRow]) -> Result<(), RollupError> {
        for chunk in rows.chunks(MAX_LINES_PER_WRITE) {
            let mut lines = Vec::with_capacity(chunk.len() * 200);
            encode_rollup_lines(tier, chunk, &mut lines);
            let mut request = self
                .client
                .post(&self.write_url)
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .header(reqwest::header::CONTENT_ENCODING, "gzip")
                .body(gzip(&lines));
            if let Some(authorization) = &self.authorization {
                request = request.header(reqwest::header::AUTHORIZATION, authorization);
            }
            let response = request
                .send()
                .await
                .map_err(|e| RollupError::Store(format!("InfluxDB rollup write: {e}")))?;
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(RollupError::Store(format!(
                    "InfluxDB rollup write HTTP {}: {}",
                    status.as_u16(),
                    error_message(&body)
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> RollupRow {
        RollupRow {
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
        }
    }

    #[test]
    fn a_row_is_one_point_per_series_metric_and_window() {
        let mut out = Vec::new();
        encode_rollup_lines(Tier::Hour, &[row()], &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "telemetry_1h,level=zone,metric=moisture,series=wall-1/zone-a count=60i,sum=1830.5,min=29.1,max=31.4,first=30.2,last=30.9,\
             first_time=1764000000000i,last_time=1764003540000i,window_end=1764003600000i,computed_at=1764003720000i 1764000000000\n"
        );
    }

    #[test]
    fn queries_select_by_validated_names_only() {
        let range = TimeRange {
            from_ms: 0,
            to_ms: 60_000,
        };
        let within = LocationPath::parse("wall.1").unwrap();
        assert_eq!(
            rollups_query(
                Tier::Day,
                range,
                RowSelection::Children {
                    within: &within,
                    metric: "moisture"
                }
            )
            .unwrap(),
            "SELECT * FROM \"telemetry_1d\" WHERE time >= 0ms AND time < 60000ms AND \"level\" = 'zone' \
             AND \"metric\" = 'moisture' AND \"series\" =~ /^wall\\.1\\//"
        );
        assert!(
            rollups_query(
                Tier::Day,
                range,
                RowSelection::Device {
                    device_id: "a' OR 1=1",
                    metric: "m"
                }
            )
            .is_err()
        );
        assert_eq!(
            raw_readings_query(range, &within).unwrap(),
            "SELECT * FROM \"telemetry\" WHERE time >= 0ms AND time < 60000ms AND \"site\" = 'wall.1'"
        );
    }

    /// The shape influxd answers `SELECT *` with: tags and fields as columns, nulls where a
    /// point has no such field.
    #[test]
    fn answers_parse_into_readings_and_rows() {
        let raw: serde_json::Value = serde_json::from_str(
            r#"{"series":[{"name":"telemetry","columns":["time","device_id","device_type","moisture","pump_on","section","seq","site","spot","zone"],
            "values":[[60000,"p1","spot-sensor",31.5,null,"s1",4,"wall-1","p1","zone-a"],[61000,"gw","gateway",null,true,null,null,"wall-1",null,null]]}]}"#,
        )
        .unwrap();
        let readings = readings_from_answer(&raw);
        assert_eq!(readings.len(), 2);
        assert_eq!(readings[0].metrics.len(), 1);
        assert_eq!(
            readings[0].dimensions.as_ref().unwrap().path.to_string(),
            "wall-1/zone-a/s1/p1"
        );
        assert_eq!(readings[1].metrics[0].value, MetricValue::Bool(true));
        assert_eq!(
            readings[1].dimensions.as_ref().unwrap().path.to_string(),
            "wall-1"
        );

        let mut line = Vec::new();
        encode_rollup_lines(Tier::Hour, &[row()], &mut line);
        let answer: serde_json::Value = serde_json::json!({"series": [{
            "name": "telemetry_1h",
            "columns": ["time","computed_at","count","first","first_time","last","last_time","level","max","metric","min","series","sum","window_end"],
            "values": [[1_764_000_000_000i64, 1_764_003_720_000i64, 60, 30.2, 1_764_000_000_000i64, 30.9, 1_764_003_540_000i64, "zone", 31.4, "moisture", 29.1, "wall-1/zone-a", 1830.5, 1_764_003_600_000i64]]
        }]});
        assert_eq!(rows_from_answer(Tier::Hour, &answer), [row()]);
    }
}
