//! InfluxDB adapter for [`TimeSeriesStore`]: line protocol over the v1-compatible HTTP API
//! (`POST /write?db=…&precision=ms`), which InfluxDB 1.x, 2.x (Timestream for InfluxDB) and
//! 3.x all serve, with token authentication and gzip-compressed bodies.
//!
//! Responses are sorted as the store writer expects: 429 and 5xx are retryable (honouring
//! `Retry-After`); a partial write whose offending readings can be named exactly (a field type
//! conflict names the field and the type) reports just those as rejected by the store, with
//! InfluxDB's message; any other 400 makes the writer split the request until the bad reading
//! is alone. Points already written are written again identically, which InfluxDB treats as
//! the same point.

pub mod influxql;
pub mod line_protocol;
pub mod rollups;

use std::io::Write as _;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::adapters::influxdb::line_protocol::{encode_lines, field_type};
use crate::domain::LocationPath;
use crate::domain::{MetricValue, Reading};
use crate::ingest::ports::{
    StoreError, StoreRejection, StoreRejectionKind, TimeSeriesStore, WriteReport,
};
use crate::query::model::{
    Aggregate, DeviceValue, FleetFilter, GroupValue, Point, QueryError, SeriesQuery, TimeRange,
};
use crate::query::ports::TimeSeriesReader;

/// Lines per write request: InfluxDB's recommended batch size.
pub const MAX_LINES_PER_WRITE: usize = 5_000;
/// Per-request timeout: a hung connection is retried rather than holding the invocation.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, PartialEq, Eq)]
pub struct InfluxDbSettings {
    /// e.g. `https://<id>-<account>.timestream-influxdb.<region>.on.aws:8086`
    pub url: String,
    /// The v1 database (on 2.x/3.x, mapped to a bucket by a DBRP mapping).
    pub database: String,
    /// Sent as `Authorization: Token …`; `None` for a server without authentication.
    pub token: Option<String>,
}

impl std::fmt::Debug for InfluxDbSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("InfluxDbSettings")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

pub struct InfluxDbStore {
    client: reqwest::Client,
    write_url: String,
    query_url: String,
    database: String,
    authorization: Option<String>,
}

/// An HTTP client's builder with TLS on the SDK's crypto provider: reqwest's rustls takes the
/// process's default provider, installed here once (an `Err` is one already installed, which
/// is as good), so no binary carries a second crypto library.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
}

impl InfluxDbStore {
    pub fn new(settings: &InfluxDbSettings) -> Result<Self, StoreError> {
        let client = http_client_builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| StoreError::Failed(format!("building the InfluxDB HTTP client: {e}")))?;
        let base = settings.url.trim_end_matches('/');
        Ok(Self {
            client,
            write_url: format!(
                "{base}/write?db={}&precision=ms",
                percent_encode(&settings.database)
            ),
            query_url: format!("{base}/query"),
            database: settings.database.clone(),
            authorization: settings.token.as_ref().map(|t| format!("Token {t}")),
        })
    }
}

/// Percent-encode everything but RFC 3986's unreserved characters (query-string values).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Line protocol for `readings`, gzip-compressed (fast level: the win is in the first pass).
pub fn encode_request_body(readings: &[Reading]) -> Vec<u8> {
    let mut lines = Vec::with_capacity(readings.len() * 160);
    encode_lines(readings, &mut lines);
    gzip(&lines)
}

/// `bytes` gzip-compressed at the fast level (the win is in the first pass).
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gzip = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = gzip.write_all(bytes);
    gzip.finish().unwrap_or_default()
}

impl TimeSeriesStore for InfluxDbStore {
    fn max_batch_len(&self) -> usize {
        MAX_LINES_PER_WRITE
    }

    async fn write(&self, readings: &[Reading]) -> Result<WriteReport, StoreError> {
        let body = encode_request_body(readings);
        let mut request = self
            .client
            .post(&self.write_url)
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(reqwest::header::CONTENT_ENCODING, "gzip")
            .body(body);
        if let Some(authorization) = &self.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        let response = match request.send().await {
            Ok(response) => response,
            // Connection refused, reset, timeout: the store is unreachable for now.
            Err(e) => {
                return Err(StoreError::Retryable {
                    message: format!("InfluxDB write: {e}"),
                    retry_after: None,
                });
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = response.text().await.unwrap_or_default();
        classify_write_response(status, retry_after, &text, readings)
    }
}

impl InfluxDbStore {
    /// Run InfluxQL (one or more statements); each statement's result, in order.
    async fn query(&self, influxql: &str) -> Result<Vec<serde_json::Value>, QueryError> {
        let mut request = self.client.get(&self.query_url).query(&[
            ("db", self.database.as_str()),
            ("epoch", "ms"),
            ("q", influxql),
        ]);
        if let Some(authorization) = &self.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        let response = request
            .send()
            .await
            .map_err(|e| QueryError::Store(format!("InfluxDB query: {e}")))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| QueryError::Store(format!("InfluxDB query: {e}")))?;
        if status != 200 {
            return Err(QueryError::Store(format!(
                "InfluxDB query HTTP {status}: {}",
                error_message(&body)
            )));
        }
        let answer: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| QueryError::Store(format!("InfluxDB query answer: {e}")))?;
        let results = answer["results"].as_array().cloned().unwrap_or_default();
        for result in &results {
            if let Some(error) = result["error"].as_str() {
                return Err(QueryError::Store(format!("InfluxDB: {error}")));
            }
        }
        Ok(results)
    }
}

/// A JSON value from a query answer as a metric value (`null`: no value).
fn metric_value(value: &serde_json::Value) -> Option<MetricValue> {
    match value {
        serde_json::Value::Number(n) => n.as_f64().map(MetricValue::Number),
        serde_json::Value::Bool(b) => Some(MetricValue::Bool(*b)),
        serde_json::Value::String(s) => Some(MetricValue::Text(s.clone())),
        _ => None,
    }
}

/// `(time, value)` rows of a result's series, with each series' tags.
fn rows(
    result: &serde_json::Value,
) -> impl Iterator<
    Item = (
        &serde_json::Map<String, serde_json::Value>,
        i64,
        MetricValue,
    ),
> {
    static NO_TAGS: std::sync::OnceLock<serde_json::Map<String, serde_json::Value>> =
        std::sync::OnceLock::new();
    result["series"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|series| {
            let tags = series["tags"]
                .as_object()
                .unwrap_or_else(|| NO_TAGS.get_or_init(Default::default));
            series["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |row| {
                    let time = row.get(0)?.as_i64()?;
                    let value = metric_value(row.get(1)?)?;
                    Some((tags, time, value))
                })
        })
}

/// InfluxDB refuses a numeric aggregate (mean, sum, min, max) of a boolean or string field
/// ("unsupported mean iterator type: *query.booleanInterruptIterator"); the other stores answer
/// it with no bins, as a metric without numbers has no average. So does this one.
fn numeric_or_nothing<T: Default>(answer: Result<T, QueryError>) -> Result<T, QueryError> {
    match answer {
        Err(QueryError::Store(message))
            if message.contains("unsupported") && message.contains("iterator type") =>
        {
            Ok(T::default())
        }
        other => other,
    }
}

impl TimeSeriesReader for InfluxDbStore {
    async fn metric_names(&self) -> Result<Vec<String>, QueryError> {
        let results = self.query("SHOW FIELD KEYS FROM \"telemetry\"").await?;
        let mut names: Vec<String> = results
            .first()
            .and_then(|r| r["series"][0]["values"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|row| row.get(0)?.as_str().map(str::to_owned))
            .filter(|name| name != "seq")
            .collect();
        names.sort();
        Ok(names)
    }

    async fn latest_values(
        &self,
        device_id: &str,
        metrics: &[&str],
    ) -> Result<Vec<(String, Point)>, QueryError> {
        if metrics.is_empty() {
            return Ok(vec![]);
        }
        let results = self
            .query(&influxql::latest_values_query(device_id, metrics)?)
            .await?;
        Ok(metrics
            .iter()
            .zip(&results)
            .filter_map(|(metric, result)| {
                let (_, time_ms, value) = rows(result).next()?;
                Some((metric.to_string(), Point { time_ms, value }))
            })
            .collect())
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Vec<Point>, QueryError> {
        let results = numeric_or_nothing(self.query(&influxql::series_query(query)?).await)?;
        Ok(results
            .first()
            .map(|r| {
                rows(r)
                    .map(|(_, time_ms, value)| Point { time_ms, value })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn latest_by_device(
        &self,
        metric: &str,
        filter: &FleetFilter,
    ) -> Result<Vec<DeviceValue>, QueryError> {
        let results = self
            .query(&influxql::latest_by_device_query(metric, filter)?)
            .await?;
        let mut out: Vec<DeviceValue> = results
            .first()
            .map(|r| {
                rows(r)
                    .filter_map(|(tags, time_ms, value)| {
                        Some(DeviceValue {
                            device_id: tags.get("device_id")?.as_str()?.to_owned(),
                            time_ms,
                            value,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        Ok(out)
    }

    async fn drill_down(
        &self,
        metric: &str,
        within: &LocationPath,
        range: TimeRange,
        aggregate: Aggregate,
    ) -> Result<Vec<GroupValue>, QueryError> {
        let level = crate::query::names::child_level(within)?;
        let results = numeric_or_nothing(
            self.query(&influxql::drill_down_query(
                metric, within, range, aggregate,
            )?)
            .await,
        )?;
        let mut out: Vec<GroupValue> = results
            .first()
            .map(|r| {
                rows(r)
                    .filter_map(|(tags, _, value)| {
                        let group = tags.get(level)?.as_str()?;
                        // Devices placed above this level have no value for it: not a group.
                        let MetricValue::Number(value) = value else {
                            return None;
                        };
                        (!group.is_empty()).then(|| GroupValue {
                            group: group.to_owned(),
                            value,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(out)
    }
}

/// `Retry-After` in seconds (the form InfluxDB sends).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// InfluxDB's answer to one write → the store port's vocabulary. Pure.
pub fn classify_write_response(
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
    readings: &[Reading],
) -> Result<WriteReport, StoreError> {
    let message = error_message(body);
    match status {
        200..=299 => Ok(WriteReport::default()),
        400 => match type_conflict_rejections(&message, readings) {
            Some(rejected) => Ok(WriteReport { rejected }),
            None => Err(StoreError::InvalidRequest(format!("InfluxDB: {message}"))),
        },
        // Body over the server's limit: smaller requests will do.
        413 => Err(StoreError::InvalidRequest(format!("InfluxDB: {message}"))),
        401 | 403 => Err(StoreError::Failed(format!(
            "InfluxDB refused the credentials (HTTP {status}: {message}): check the token secret and its permissions on the database"
        ))),
        404 => Err(StoreError::Failed(format!(
            "InfluxDB: {message} (HTTP 404): check the database name and the URL"
        ))),
        429 | 500..=599 => Err(StoreError::Retryable {
            message: format!("InfluxDB HTTP {status}: {message}"),
            retry_after,
        }),
        _ => Err(StoreError::Failed(format!(
            "InfluxDB HTTP {status}: {message}"
        ))),
    }
}

/// The `error` of InfluxDB's JSON error body, or the body itself.
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned())
}

/// A partial write for a field type conflict names the field, its type in the request and
/// `dropped=N`: the readings carrying that field with that type are exactly the dropped ones.
/// `None` when the message is of another kind or the count does not match.
fn type_conflict_rejections(message: &str, readings: &[Reading]) -> Option<Vec<StoreRejection>> {
    let rest = message.split("input field \"").nth(1)?;
    let (field, rest) = rest.split_once('"')?;
    let input_type = rest.split("is type ").nth(1)?.split([',', ' ']).next()?;
    let dropped: usize = message.rsplit("dropped=").next()?.trim().parse().ok()?;
    let rejected: Vec<StoreRejection> = readings
        .iter()
        .enumerate()
        .filter(|(_, r)| field_type_in(r, field) == Some(input_type))
        .map(|(index, _)| StoreRejection {
            index,
            reason: format!("InfluxDB: {message}"),
            kind: StoreRejectionKind::Data,
        })
        .collect();
    (rejected.len() == dropped && dropped > 0).then_some(rejected)
}

/// The InfluxDB type of `field` in `reading`, if it carries it.
fn field_type_in(reading: &Reading, field: &str) -> Option<&'static str> {
    if field == "seq" {
        return reading.seq.map(|s| {
            if i64::try_from(s).is_ok() {
                "integer"
            } else {
                "float"
            }
        });
    }
    reading
        .metrics
        .iter()
        .find(|m| m.name == field)
        .map(|m| field_type(&m.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(device: &str, field: &str, value: MetricValue) -> Reading {
        Reading::new(device, 1_764_000_000_000, [(field, value)])
    }

    #[test]
    fn a_type_conflict_names_exactly_the_readings_dropped() {
        let readings = [
            reading("a", "mode", MetricValue::Text("eco".into())),
            reading("b", "mode", MetricValue::Number(1.0)),
            reading("c", "temperature", MetricValue::Number(21.0)),
        ];
        let body = r#"{"error":"partial write: field type conflict: input field \"mode\" on measurement \"telemetry\" is type float, already exists as type string dropped=1"}"#;
        let report = classify_write_response(400, None, body, &readings).unwrap();
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(report.rejected[0].index, 1);
        assert_eq!(report.rejected[0].kind, StoreRejectionKind::Data);
        assert!(
            report.rejected[0]
                .reason
                .contains("already exists as type string")
        );
    }

    #[test]
    fn a_400_that_cannot_be_pinned_down_asks_for_a_split() {
        let readings = [
            reading("a", "mode", MetricValue::Number(1.0)),
            reading("b", "mode", MetricValue::Text("x".into())),
        ];
        for body in [
            r#"{"error":"field type conflict"}"#,
            r#"{"error":"unable to parse 'telemetry x=': missing field value"}"#,
            // The count does not match what the request carries.
            r#"{"error":"partial write: field type conflict: input field \"mode\" on measurement \"telemetry\" is type float, already exists as type string dropped=2"}"#,
        ] {
            assert!(matches!(
                classify_write_response(400, None, body, &readings),
                Err(StoreError::InvalidRequest(_))
            ));
        }
    }

    #[test]
    fn throttling_and_outages_are_retried_after_the_servers_wait() {
        let readings = [reading("a", "t", MetricValue::Number(1.0))];
        for status in [429, 500, 503] {
            match classify_write_response(status, parse_retry_after("7"), "{}", &readings) {
                Err(StoreError::Retryable { retry_after, .. }) => {
                    assert_eq!(retry_after, Some(Duration::from_secs(7)));
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        assert!(matches!(
            classify_write_response(401, None, r#"{"error":"unauthorized"}"#, &readings),
            Err(StoreError::Failed(m)) if m.contains("token")
        ));
        assert!(matches!(
            classify_write_response(404, None, r#"{"error":"database not found: \"x\""}"#, &readings),
            Err(StoreError::Failed(m)) if m.contains("database")
        ));
        assert_eq!(
            classify_write_response(204, None, "", &readings),
            Ok(WriteReport::default())
        );
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let settings = InfluxDbSettings {
            url: "http://x".into(),
            database: "iotdp".into(),
            token: Some("s3cret".into()),
        };
        assert!(!format!("{settings:?}").contains("s3cret"));
    }
}
