//! An AWS endpoint on 127.0.0.1 that answers at once, for the end-to-end benchmark of the real
//! `ingest` binary. Its answers are the ones AWS sends: Timestream WriteRecords, S3 PutObject,
//! DynamoDB (a small in-memory table store), SNS Publish, IoT Data Get/UpdateThingShadow, and
//! InfluxDB's `/write`. It also records what it is sent (each stored reading's series and time,
//! each quarantined line's reason), so the benchmark can check that nothing was written twice
//! or lost. Nothing is slow on purpose: the figures measure the binary, not the endpoint.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::io::Read;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// What the endpoint was sent since the last [`FakeAws::take`].
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Calls by kind, e.g. `DynamoDB.UpdateItem`, `Timestream.WriteRecords`, `InfluxDB.write`.
    pub calls: BTreeMap<String, u64>,
    /// `(device_id, time_ms)` of every record written to the store.
    pub written: Vec<(String, i64)>,
    /// The `reason` of every quarantined line.
    pub quarantined: Vec<String>,
    /// Calls it could not parse, with why (the benchmark fails on any).
    pub malformed: Vec<String>,
}

#[derive(Default)]
struct State {
    received: Received,
    /// DynamoDB items by table, then by their key's values.
    tables: HashMap<String, BTreeMap<String, Value>>,
    /// The lake bucket's objects (`/<LAKE_BUCKET>/<key>`): body and ETag.
    lake: HashMap<String, (Bytes, String)>,
    etags: u64,
    /// Every `throttle_every`-th lake request is answered `503 SlowDown` (0: none).
    throttle_every: u64,
    lake_requests: u64,
}

/// The bucket the benchmark's lake writes to: its objects are kept, so manifests can be read
/// back and conditional writes judged as S3 judges them.
pub const LAKE_BUCKET: &str = "lake";

/// The endpoint: `endpoint` is its URL (for `AWS_ENDPOINT_URL` and `INFLUXDB_URL`).
pub struct FakeAws {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    /// Each table's key attributes, as template.yaml defines them.
    keys: Arc<HashMap<String, Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeAws {
    /// Start on a free port. `table_keys`: each DynamoDB table's key attribute names.
    pub async fn start(table_keys: &[(&str, &[&str])]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let keys: Arc<HashMap<String, Vec<String>>> = Arc::new(
            table_keys
                .iter()
                .map(|(table, names)| {
                    (
                        (*table).to_owned(),
                        names.iter().map(|n| (*n).to_owned()).collect(),
                    )
                })
                .collect(),
        );
        let server = {
            let (state, keys) = (state.clone(), keys.clone());
            serve(listener, move |request| {
                let (state, keys) = (state.clone(), keys.clone());
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(http_body_util::Collected::to_bytes)
                        .unwrap_or_default();
                    answer(&state, &keys, &parts, &body)
                }
            })
        };
        Self {
            endpoint,
            state,
            keys,
            server,
        }
    }

    /// What was sent since the last call, and a fresh record from now on.
    pub fn take(&self) -> Received {
        std::mem::take(&mut self.state.lock().unwrap().received)
    }

    /// How many items a table holds.
    /// Answer every `every`-th request to the lake bucket with `503 SlowDown`, as S3 throttles
    /// a prefix (1: all of them; 0: none).
    pub fn throttle_lake(&self, every: u64) {
        self.state.lock().unwrap().throttle_every = every;
    }

    pub fn items(&self, table: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .tables
            .get(table)
            .map_or(0, BTreeMap::len)
    }

    /// Each table's key attribute names.
    pub fn table_keys(&self) -> &HashMap<String, Vec<String>> {
        &self.keys
    }
}

impl Drop for FakeAws {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Serve HTTP/1 on `listener` with `handler` until the task is aborted (the benchmark's
/// endpoint and its Lambda Runtime API both).
pub(crate) fn serve<H, F>(listener: TcpListener, handler: H) -> tokio::task::JoinHandle<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let answer = handler(request);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", "fake")
        .body(Full::new(body.into()))
        .expect("a valid response")
}

fn json_answer(value: &Value) -> Response<Full<Bytes>> {
    respond(
        StatusCode::OK,
        "application/x-amz-json-1.0",
        value.to_string(),
    )
}

fn answer(
    state: &Mutex<State>,
    keys: &HashMap<String, Vec<String>>,
    parts: &hyper::http::request::Parts,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let target = header("x-amz-target").to_owned();
    let path = parts.uri.path().to_owned();
    let mut state = state.lock().unwrap();
    let kind = if let Some((service, operation)) = target.split_once('.') {
        let service = match service {
            "Timestream_20181101" => "Timestream",
            "DynamoDB_20120810" => "DynamoDB",
            other => other,
        };
        format!("{service}.{operation}")
    } else if path.starts_with("/write") {
        "InfluxDB.write".to_owned()
    } else if path.starts_with("/ping") {
        "InfluxDB.ping".to_owned()
    } else if path.starts_with("/things/") && parts.method == hyper::Method::GET {
        "IotData.GetThingShadow".to_owned()
    } else if path.starts_with("/things/") {
        "IotData.UpdateThingShadow".to_owned()
    } else if path.starts_with(&format!("/{LAKE_BUCKET}/")) {
        format!(
            "S3.{}Object.lake",
            if parts.method == hyper::Method::PUT {
                "Put"
            } else {
                "Get"
            }
        )
    } else if parts.method == hyper::Method::PUT {
        "S3.PutObject".to_owned()
    } else if body.starts_with(b"Action=") {
        let action = form_value(body, "Action").unwrap_or_default();
        format!("SNS.{action}")
    } else {
        format!("unknown {} {path}", parts.method)
    };
    *state.received.calls.entry(kind.clone()).or_insert(0) += 1;
    let request: Value = if target.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                state.received.malformed.push(format!("{kind}: {e}"));
                return respond(StatusCode::BAD_REQUEST, "text/plain", "bad json");
            }
        }
    };
    match kind.as_str() {
        "Timestream.WriteRecords" => {
            let written = timestream_records(&request);
            let total = written.len();
            state.received.written.extend(written);
            json_answer(
                &json!({"RecordsIngested": {"Total": total, "MemoryStore": total, "MagneticStore": 0}}),
            )
        }
        "Timestream.DescribeEndpoints" => {
            let host = header("host").to_owned();
            json_answer(&json!({"Endpoints": [{"Address": host, "CachePeriodInMinutes": 1440}]}))
        }
        "InfluxDB.write" => {
            let text = decompress(header("content-encoding"), body);
            match text {
                Ok(text) => {
                    let written = influx_lines(&text);
                    state.received.written.extend(written);
                    respond(StatusCode::NO_CONTENT, "text/plain", "")
                }
                Err(e) => {
                    state
                        .received
                        .malformed
                        .push(format!("InfluxDB.write: {e}"));
                    respond(StatusCode::BAD_REQUEST, "text/plain", "bad body")
                }
            }
        }
        "InfluxDB.ping" => respond(StatusCode::NO_CONTENT, "text/plain", ""),
        "S3.PutObject" => {
            let content = if header("content-encoding").contains("aws-chunked") {
                dechunk(body)
            } else {
                body.to_vec()
            };
            for line in String::from_utf8_lossy(&content).lines() {
                match serde_json::from_str::<Value>(line) {
                    Ok(v) => state
                        .received
                        .quarantined
                        .push(v["reason"].as_str().unwrap_or("no reason").to_owned()),
                    Err(e) => state
                        .received
                        .malformed
                        .push(format!("S3 line: {e}: {line}")),
                }
            }
            Response::builder()
                .status(StatusCode::OK)
                .header("etag", "\"fake\"")
                .body(Full::new(Bytes::new()))
                .expect("a valid response")
        }
        "S3.PutObject.lake" | "S3.GetObject.lake" => {
            let key = path[LAKE_BUCKET.len() + 2..].to_owned();
            let content = if header("content-encoding").contains("aws-chunked") {
                dechunk(body)
            } else {
                body.to_vec()
            };
            lake_answer(
                &mut state,
                &key,
                parts.method == hyper::Method::PUT,
                (header("if-match"), header("if-none-match")),
                content,
            )
        }
        "SNS.Publish" => respond(
            StatusCode::OK,
            "text/xml",
            r#"<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>00000000-0000-4000-8000-000000000000</MessageId></PublishResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></PublishResponse>"#,
        ),
        // Shadows are not kept: each answers as a first write would (version 1), and a read
        // finds none, as for a device that never had one.
        "IotData.UpdateThingShadow" => {
            let mut accepted: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            accepted["version"] = json!(1);
            json_answer(&accepted)
        }
        "IotData.GetThingShadow" => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header("content-type", "application/json")
            .header("x-amzn-ErrorType", "ResourceNotFoundException")
            .body(Full::new(Bytes::from_static(
                br#"{"message":"No shadow exists"}"#,
            )))
            .expect("a valid response"),
        dynamodb if dynamodb.starts_with("DynamoDB.") => {
            dynamodb_answer(&mut state, keys, &dynamodb[9..], &request)
        }
        _ => {
            state.received.malformed.push(kind);
            respond(StatusCode::NOT_FOUND, "text/plain", "not served here")
        }
    }
}

fn form_value(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `(device_id, time)` of each record, with `CommonAttributes` applied as Timestream does.
/// S3 as the lake sees it: GetObject of a missing key is `NoSuchKey`; a PUT `If-None-Match: *`
/// of a key that exists, or `If-Match` another ETag, is `PreconditionFailed`. Each raw object
/// written records its readings.
fn lake_answer(
    state: &mut State,
    key: &str,
    put: bool,
    (if_match, if_none_match): (&str, &str),
    content: Vec<u8>,
) -> Response<Full<Bytes>> {
    let error = |status: StatusCode, code: &str| {
        respond(
            status,
            "application/xml",
            format!("<Error><Code>{code}</Code><Message>{code}</Message></Error>"),
        )
    };
    state.lake_requests += 1;
    if state.throttle_every > 0 && state.lake_requests.is_multiple_of(state.throttle_every) {
        *state
            .received
            .calls
            .entry("S3.SlowDown".into())
            .or_insert(0) += 1;
        return error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown");
    }
    let held = state.lake.get(key).map(|(_, etag)| etag.clone());
    if !put {
        return match state.lake.get(key) {
            Some((body, etag)) => Response::builder()
                .status(StatusCode::OK)
                .header("etag", etag.as_str())
                .body(Full::new(body.clone()))
                .expect("a valid response"),
            None => error(StatusCode::NOT_FOUND, "NoSuchKey"),
        };
    }
    let refused = (if_none_match == "*" && held.is_some())
        || (!if_match.is_empty() && held.as_deref() != Some(if_match));
    if refused {
        return error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed");
    }
    if key.starts_with("incoming/raw/") && held.is_none() {
        match iotdp::adapters::lake::format::decode(content.clone()) {
            Ok(readings) => state
                .received
                .written
                .extend(readings.into_iter().map(|r| (r.device_id, r.time_ms))),
            Err(e) => state.received.malformed.push(format!("lake {key}: {e}")),
        }
    }
    state.etags += 1;
    let etag = format!("\"{}\"", state.etags);
    state
        .lake
        .insert(key.to_owned(), (Bytes::from(content), etag.clone()));
    Response::builder()
        .status(StatusCode::OK)
        .header("etag", etag)
        .body(Full::new(Bytes::new()))
        .expect("a valid response")
}

fn timestream_records(request: &Value) -> Vec<(String, i64)> {
    let common = &request["CommonAttributes"];
    let device = |record: &Value| {
        [record, common].iter().find_map(|r| {
            r["Dimensions"]
                .as_array()?
                .iter()
                .find(|d| d["Name"] == "device_id")
                .and_then(|d| d["Value"].as_str())
                .map(str::to_owned)
        })
    };
    request["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|record| {
            let time = record["Time"]
                .as_str()
                .or_else(|| common["Time"].as_str())
                .and_then(|t| t.parse().ok())
                .unwrap_or(i64::MIN);
            (device(record).unwrap_or_default(), time)
        })
        .collect()
}

/// `(device_id, time)` of each line of line protocol.
fn influx_lines(text: &str) -> Vec<(String, i64)> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let device = line
                .split_once("device_id=")
                .map(|(_, rest)| rest.split([',', ' ']).next().unwrap_or_default().to_owned())
                .unwrap_or_default();
            let time = line
                .rsplit(' ')
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(i64::MIN);
            (device, time)
        })
        .collect()
}

fn decompress(encoding: &str, body: &[u8]) -> Result<String, String> {
    if encoding.contains("gzip") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(body)
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())?;
        Ok(text)
    } else {
        String::from_utf8(body.to_vec()).map_err(|e| e.to_string())
    }
}

/// The payload of an `aws-chunked` body (`<hex size>[;ext]\r\n<data>\r\n … 0\r\n<trailers>`).
fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let header = String::from_utf8_lossy(&rest[..line_end]);
        let size =
            usize::from_str_radix(header.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        rest = &rest[line_end + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
    out
}

fn item_key(keys: &HashMap<String, Vec<String>>, table: &str, item: &Value) -> String {
    keys.get(table)
        .map(|names| {
            names
                .iter()
                .map(|n| item[n].to_string())
                .collect::<Vec<_>>()
                .join("|")
        })
        .unwrap_or_default()
}

fn dynamodb_answer(
    state: &mut State,
    keys: &HashMap<String, Vec<String>>,
    operation: &str,
    request: &Value,
) -> Response<Full<Bytes>> {
    let table = request["TableName"].as_str().unwrap_or_default().to_owned();
    match operation {
        "BatchGetItem" => {
            let mut responses = serde_json::Map::new();
            for (table, wanted) in request["RequestItems"].as_object().into_iter().flatten() {
                let items = state.tables.get(table);
                let found: Vec<Value> = wanted["Keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| items?.get(&item_key(keys, table, k)).cloned())
                    .collect();
                responses.insert(table.clone(), Value::Array(found));
            }
            json_answer(&json!({"Responses": responses, "UnprocessedKeys": {}}))
        }
        "GetItem" => {
            let key = item_key(keys, &table, &request["Key"]);
            match state.tables.get(&table).and_then(|t| t.get(&key)) {
                Some(item) => json_answer(&json!({ "Item": item })),
                None => json_answer(&json!({})),
            }
        }
        "PutItem" => {
            let item = request["Item"].clone();
            let key = item_key(keys, &table, &item);
            state.tables.entry(table).or_default().insert(key, item);
            json_answer(&json!({}))
        }
        "DeleteItem" => {
            let key = item_key(keys, &table, &request["Key"]);
            if let Some(t) = state.tables.get_mut(&table) {
                t.remove(&key);
            }
            json_answer(&json!({}))
        }
        "UpdateItem" => {
            // Only `SET a = :x, b = :y` is applied (what the ingest path sends); the answer
            // is what UpdateItem returns without ReturnValues.
            let key = item_key(keys, &table, &request["Key"]);
            let expression = request["UpdateExpression"].as_str().unwrap_or_default();
            if let Some(item) = state.tables.get_mut(&table).and_then(|t| t.get_mut(&key))
                && let Some(assignments) = expression.strip_prefix("SET ")
            {
                for assignment in assignments.split(',') {
                    if let Some((name, value)) = assignment.split_once('=') {
                        let value = &request["ExpressionAttributeValues"][value.trim()];
                        item[name.trim()] = value.clone();
                    }
                }
            }
            json_answer(&json!({}))
        }
        "Scan" => {
            let items: Vec<Value> = state
                .tables
                .get(&table)
                .map(|t| t.values().cloned().collect())
                .unwrap_or_default();
            json_answer(&json!({"Items": items, "Count": items.len(), "ScannedCount": items.len()}))
        }
        "Query" => json_answer(&json!({"Items": [], "Count": 0, "ScannedCount": 0})),
        other => {
            state.received.malformed.push(format!("DynamoDB.{other}"));
            respond(StatusCode::BAD_REQUEST, "application/x-amz-json-1.0", "{}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_protocol_and_chunked_bodies_are_read_as_sent() {
        assert_eq!(
            influx_lines("telemetry,device_id=ac-1,device_type=t t=1 1764000000123\n"),
            [("ac-1".to_owned(), 1_764_000_000_123)]
        );
        assert_eq!(
            dechunk(b"5;chunk-signature=x\r\nhello\r\n0\r\nx-amz-checksum-crc32:abc\r\n\r\n"),
            b"hello"
        );
        let request = json!({
            "CommonAttributes": {"Dimensions": [{"Name": "device_id", "Value": "ac-1"}]},
            "Records": [{"Time": "5"}, {"Time": "6", "Dimensions": [{"Name": "device_id", "Value": "ac-2"}]}]
        });
        assert_eq!(
            timestream_records(&request),
            [("ac-1".to_owned(), 5), ("ac-2".to_owned(), 6)]
        );
    }
}
