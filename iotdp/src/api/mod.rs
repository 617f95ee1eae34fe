//! The query API's use cases, independent of the HTTP framework: a request (method, path,
//! query string, body) in, a JSON response or a problem document out. The Lambda function and
//! the local server adapt their HTTP types to these.
//!
//! Routes (all JSON):
//! - `GET /devices?type=&status=&path=&limit=&cursor=`: the registry, filtered, paginated by id;
//! - `GET /devices/{id}?metrics=a,b`: one device's record and the latest value of each metric;
//! - `POST /devices/{id}/suspend`, `POST /devices/{id}/resume`;
//! - `GET /devices/{id}/readings/{metric}?from=&to=&bin=&agg=&limit=&cursor=`: raw or binned,
//!   paginated (never truncated: `next` continues where a page ends);
//! - `GET /readings/{metric}/latest?type=&path=`: the latest value per device across a fleet;
//! - `GET /readings/{metric}/drill-down?path=&from=&to=&agg=`: one level below a place;
//! - `GET /rules`, `PUT /rules/{id}`, `DELETE /rules/{id}`: the same validation as the CLI;
//! - `GET /alerts?state=&severity=&device=&limit=&cursor=`, `POST /alerts/{device}/{rule}/ack`.

pub mod http_adapter;
pub mod params;

use serde_json::{Value, json};

use crate::alerting::admin::{AckError, acknowledge_alert};
use crate::alerting::event::AlarmState;
use crate::alerting::ports::{AlertKey, AlertStateListing, AlertStateStore, RuleStore};
use crate::alerting::rule::AlertRule;
use crate::devices::ports::DeviceRegistry;
use crate::devices::provisioning::{ProvisioningError, set_device_status};
use crate::devices::record::{DeviceRecord, DeviceStatus};
use crate::domain::MetricValue;
use crate::query::model::{FleetFilter, Point, QueryError, SeriesQuery, TimeRange};
use crate::query::names::checked_metric;
use crate::query::ports::TimeSeriesReader;
use params::{Params, rfc3339};

/// Every route the router answers, as `openapi.yaml` documents it (a test keeps the two equal).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/devices"),
    ("POST", "/devices"),
    ("GET", "/devices/{device_id}"),
    ("PUT", "/devices/{device_id}"),
    ("POST", "/devices/{device_id}/suspend"),
    ("POST", "/devices/{device_id}/resume"),
    ("GET", "/devices/{device_id}/readings/{metric}"),
    ("GET", "/readings/{metric}/latest"),
    ("GET", "/readings/{metric}/drill-down"),
    ("GET", "/rules"),
    ("PUT", "/rules/{rule_id}"),
    ("DELETE", "/rules/{rule_id}"),
    ("GET", "/alerts"),
    ("POST", "/alerts/{device_id}/{rule_id}/ack"),
];

/// A request, as any HTTP front end can hand it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    pub body: Vec<u8>,
}

/// A response: status and JSON body (`application/problem+json` when `problem`).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
    pub problem: bool,
}

impl ApiResponse {
    fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body,
            problem: false,
        }
    }

    pub fn content_type(&self) -> &'static str {
        if self.problem {
            "application/problem+json"
        } else {
            "application/json"
        }
    }
}

/// An RFC 9457 problem: a stable `code`, and a `detail` that says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub code: &'static str,
    pub detail: String,
}

impl Problem {
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: "invalid_parameter",
            detail: detail.into(),
        }
    }

    fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status: 404,
            code,
            detail: detail.into(),
        }
    }

    fn into_response(self) -> ApiResponse {
        let title = match self.status {
            400 => "Bad request",
            404 => "Not found",
            405 => "Method not allowed",
            409 => "Conflict",
            _ => "Service unavailable",
        };
        ApiResponse {
            status: self.status,
            body: json!({
                "type": format!("https://github.com/iotdp/iotdp/blob/main/README.md#problem-{}", self.code),
                "title": title,
                "status": self.status,
                "code": self.code,
                "detail": self.detail,
            }),
            problem: true,
        }
    }
}

impl From<QueryError> for Problem {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Invalid(detail) => Problem::invalid(detail),
            QueryError::Store(detail) => Problem {
                status: 503,
                code: "store_unavailable",
                detail: format!("{detail}: retry later"),
            },
        }
    }
}

fn alerting_problem(e: impl std::fmt::Display) -> Problem {
    Problem {
        status: 503,
        code: "alerting_unavailable",
        detail: format!("{e}: retry later"),
    }
}

fn registry_problem(e: impl std::fmt::Display) -> Problem {
    Problem {
        status: 503,
        code: "registry_unavailable",
        detail: format!("{e}: retry later"),
    }
}

/// Most items in one page, and the default.
pub const MAX_PAGE: usize = 10_000;
pub const DEFAULT_PAGE: usize = 1_000;

pub struct QueryApi<R, T, A, U> {
    registry: R,
    reader: T,
    states: A,
    rules: U,
}

impl<R, T, A, U> QueryApi<R, T, A, U>
where
    R: DeviceRegistry,
    T: TimeSeriesReader,
    A: AlertStateStore + AlertStateListing,
    U: RuleStore,
{
    pub fn new(registry: R, reader: T, states: A, rules: U) -> Self {
        Self {
            registry,
            reader,
            states,
            rules,
        }
    }

    /// Answer `request` at wall-clock time `now_ms`. Never panics; user mistakes are 4xx.
    pub async fn handle(&self, request: &ApiRequest, now_ms: i64) -> ApiResponse {
        match self.route(request, now_ms).await {
            Ok(body) => ApiResponse::ok(body),
            Err(problem) => problem.into_response(),
        }
    }

    async fn route(&self, request: &ApiRequest, now_ms: i64) -> Result<Value, Problem> {
        let params = Params::parse(&request.query)?;
        let decoded: Vec<String> = request
            .path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect::<Result<_, _>>()?;
        let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
        match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["devices"]) => self.list_devices(&params).await,
            ("GET", ["devices", id]) => self.get_device(id, &params).await,
            ("POST", ["devices"]) => self.create_device(&request.body, now_ms).await,
            ("PUT", ["devices", id]) => self.update_device(id, &request.body, now_ms).await,
            ("POST", ["devices", id, action @ ("suspend" | "resume")]) => {
                let status = if *action == "suspend" {
                    DeviceStatus::Suspended
                } else {
                    DeviceStatus::Active
                };
                self.set_status(id, status, now_ms).await
            }
            ("GET", ["devices", id, "readings", metric]) => {
                self.device_readings(id, metric, &params, now_ms).await
            }
            ("GET", ["readings", metric, "latest"]) => self.latest_by_device(metric, &params).await,
            ("GET", ["readings", metric, "drill-down"]) => {
                self.drill_down(metric, &params, now_ms).await
            }
            ("GET", ["rules"]) => self.list_rules().await,
            ("PUT", ["rules", id]) => self.put_rule(id, &request.body).await,
            ("DELETE", ["rules", id]) => self.delete_rule(id).await,
            ("GET", ["alerts"]) => self.list_alerts(&params).await,
            ("POST", ["alerts", device, rule, "ack"]) => self.acknowledge(device, rule).await,
            (
                _,
                ["devices" | "rules" | "alerts"]
                | ["devices" | "rules", _]
                | ["devices", _, "suspend" | "resume"]
                | ["devices", _, "readings", _]
                | ["readings", _, "latest" | "drill-down"]
                | ["alerts", _, _, "ack"],
            ) => Err(Problem {
                status: 405,
                code: "method_not_allowed",
                detail: format!("{} is not allowed on {}", request.method, request.path),
            }),
            _ => Err(Problem::not_found(
                "no_such_route",
                format!(
                    "no route {} {}: see openapi.yaml",
                    request.method, request.path
                ),
            )),
        }
    }
}

/// A path segment with its `%XX` escapes decoded (`+` stays itself, unlike in query strings).
fn percent_decode(segment: &str) -> Result<String, Problem> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    Problem::invalid(format!("path segment '{segment}' has a broken %-escape"))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Problem::invalid(format!("path segment '{segment}' is not UTF-8")))
}

impl<R, T, A, U> QueryApi<R, T, A, U>
where
    R: DeviceRegistry,
    T: TimeSeriesReader,
    A: AlertStateStore + AlertStateListing,
    U: RuleStore,
{
    /// A device definition from a request body (the fields an operator manages).
    fn definition(body: &[u8], now_ms: i64) -> Result<DeviceRecord, Problem> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Definition {
            device_id: String,
            device_type: String,
            #[serde(default)]
            path: String,
            #[serde(default)]
            gateway_id: Option<String>,
            #[serde(default)]
            heartbeat_seconds: Option<u32>,
            #[serde(default)]
            tags: std::collections::BTreeMap<String, String>,
        }
        let d: Definition = serde_json::from_slice(body).map_err(|e| Problem {
            status: 400,
            code: "invalid_device",
            detail: format!("the body must be a device definition (device_id, device_type, path, gateway_id, heartbeat_seconds, tags): {e}"),
        })?;
        let mut record = DeviceRecord::new(&d.device_id, &d.device_type, now_ms);
        record.path = crate::domain::LocationPath::parse(&d.path).map_err(|e| Problem {
            status: 400,
            code: "invalid_device",
            detail: e.to_string(),
        })?;
        record.gateway_id = d.gateway_id.filter(|g| !g.is_empty());
        record.heartbeat_seconds = d.heartbeat_seconds;
        record.tags = d.tags;
        record.validate().map_err(|e| Problem {
            status: 400,
            code: "invalid_device",
            detail: e.to_string(),
        })?;
        Ok(record)
    }

    /// Registers a device (certificates stay with `iotdp devices create`, which writes the
    /// private key to the operator's disk rather than into an HTTP response).
    async fn create_device(&self, body: &[u8], now_ms: i64) -> Result<Value, Problem> {
        let record = Self::definition(body, now_ms)?;
        if self
            .registry
            .create(&record)
            .await
            .map_err(registry_problem)?
        {
            Ok(json!({ "device": device_json(&record) }))
        } else {
            Err(Problem {
                status: 409,
                code: "device_exists",
                detail: format!(
                    "device '{}' is already registered: PUT /devices/{} changes its definition",
                    record.device_id, record.device_id
                ),
            })
        }
    }

    async fn update_device(&self, id: &str, body: &[u8], now_ms: i64) -> Result<Value, Problem> {
        let record = Self::definition(body, now_ms)?;
        if record.device_id != id {
            return Err(Problem::invalid(format!(
                "the body's device_id '{}' differs from the path's '{id}'",
                record.device_id
            )));
        }
        let current = self.registered(id).await?;
        if current.status == DeviceStatus::Decommissioned {
            return Err(Problem {
                status: 409,
                code: "device_decommissioned",
                detail: format!("device '{id}' is decommissioned: its id stays retired"),
            });
        }
        self.registry
            .update_definition(&record)
            .await
            .map_err(registry_problem)?;
        let updated = self.registered(id).await?;
        Ok(json!({ "device": device_json(&updated) }))
    }

    async fn list_rules(&self) -> Result<Value, Problem> {
        let mut rules = self.rules.load_rules().await.map_err(alerting_problem)?;
        rules.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
        Ok(json!({ "rules": rules }))
    }

    async fn put_rule(&self, id: &str, body: &[u8]) -> Result<Value, Problem> {
        let text = std::str::from_utf8(body)
            .map_err(|_| Problem::invalid("the rule must be UTF-8 JSON"))?;
        let rule = AlertRule::from_json(text).map_err(|e| Problem {
            status: 400,
            code: "invalid_rule",
            detail: e.to_string(),
        })?;
        if rule.rule_id != id {
            return Err(Problem::invalid(format!(
                "the body's rule_id '{}' differs from the path's '{id}'",
                rule.rule_id
            )));
        }
        self.rules.put(&rule).await.map_err(alerting_problem)?;
        Ok(json!({ "rule": rule }))
    }

    async fn delete_rule(&self, id: &str) -> Result<Value, Problem> {
        if self.rules.delete(id).await.map_err(alerting_problem)? {
            Ok(json!({ "deleted": id }))
        } else {
            Err(Problem::not_found(
                "unknown_rule",
                format!("no rule with rule_id '{id}'"),
            ))
        }
    }

    async fn list_alerts(&self, params: &Params) -> Result<Value, Problem> {
        let limit = params.limit()?;
        let state = params
            .get("state")
            .map(|s| {
                AlarmState::parse(&s.to_ascii_uppercase()).ok_or_else(|| {
                    Problem::invalid(format!(
                        "state '{s}' must be OK, PENDING, ALARM or ACKNOWLEDGED"
                    ))
                })
            })
            .transpose()?;
        let severity = params.get("severity");
        if let Some(s) = severity
            && !["info", "warning", "critical"].contains(&s)
        {
            return Err(Problem::invalid(format!(
                "severity '{s}' must be info, warning or critical"
            )));
        }
        let device = params.get("device");
        let cursor = params.get("cursor").unwrap_or_default();
        let severities: std::collections::HashMap<String, &'static str> = self
            .rules
            .load_rules()
            .await
            .map_err(alerting_problem)?
            .into_iter()
            .map(|r| (r.rule_id, r.severity.as_str()))
            .collect();
        let all = self.states.list(state).await.map_err(alerting_problem)?;
        let mut page: Vec<Value> = all
            .iter()
            .filter(|(k, _)| format!("{}/{}", k.device_id, k.rule_id).as_str() > cursor)
            .filter(|(k, _)| device.is_none_or(|d| k.device_id == d))
            .filter(|(k, _)| {
                severity.is_none_or(|s| severities.get(&k.rule_id).copied() == Some(s))
            })
            .take(limit + 1)
            .map(|(k, s)| {
                json!({
                    "device_id": k.device_id,
                    "rule_id": k.rule_id,
                    "severity": severities.get(&k.rule_id),
                    "state": s.state.as_str(),
                    "since": s.alarm_since_ms.or(s.last_change_ms).map(rfc3339),
                    "last_value": s.last_measured,
                })
            })
            .collect();
        let next = (page.len() > limit).then(|| {
            page.truncate(limit);
            page.last().map(|a| {
                format!(
                    "{}/{}",
                    a["device_id"].as_str().unwrap_or_default(),
                    a["rule_id"].as_str().unwrap_or_default()
                )
            })
        });
        Ok(json!({ "alerts": page, "next": next.flatten() }))
    }

    async fn acknowledge(&self, device: &str, rule: &str) -> Result<Value, Problem> {
        let key = AlertKey {
            device_id: device.to_owned(),
            rule_id: rule.to_owned(),
        };
        match acknowledge_alert(&self.states, &key).await {
            Ok(()) => Ok(json!({ "device_id": device, "rule_id": rule, "state": "ACKNOWLEDGED" })),
            Err(e @ AckError::NotFound(_)) => {
                Err(Problem::not_found("unknown_alert", e.to_string()))
            }
            Err(e @ AckError::NotInAlarm(..)) => Err(Problem {
                status: 409,
                code: "not_in_alarm",
                detail: e.to_string(),
            }),
            Err(e) => Err(alerting_problem(e)),
        }
    }

    async fn registered(&self, id: &str) -> Result<DeviceRecord, Problem> {
        crate::query::names::checked_device(id)?;
        self.registry
            .get_many(&[id])
            .await
            .map_err(registry_problem)?
            .pop()
            .ok_or_else(|| {
                Problem::not_found("unknown_device", format!("device '{id}' is not registered"))
            })
    }

    async fn list_devices(&self, params: &Params) -> Result<Value, Problem> {
        let limit = params.limit()?;
        let status = params
            .get("status")
            .map(|s| {
                DeviceStatus::parse(s).ok_or_else(|| {
                    Problem::invalid(format!(
                        "status '{s}' must be active, suspended or decommissioned"
                    ))
                })
            })
            .transpose()?;
        let within = params.path("path")?;
        let kind = params.get("type");
        let cursor = params.get("cursor").unwrap_or_default();
        let mut devices = self.registry.list().await.map_err(registry_problem)?;
        devices.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        let mut page: Vec<&DeviceRecord> = devices
            .iter()
            .filter(|d| d.device_id.as_str() > cursor)
            .filter(|d| kind.is_none_or(|k| d.device_type == k))
            .filter(|d| status.is_none_or(|s| d.status == s))
            .filter(|d| d.path.starts_with(&within))
            .take(limit + 1)
            .collect();
        let next = (page.len() > limit).then(|| {
            page.truncate(limit);
            page.last().map(|d| d.device_id.clone())
        });
        Ok(json!({
            "devices": page.into_iter().map(device_json).collect::<Vec<_>>(),
            "next": next.flatten(),
        }))
    }

    async fn get_device(&self, id: &str, params: &Params) -> Result<Value, Problem> {
        let device = self.registered(id).await?;
        // Named metrics, or every metric the store holds.
        let known;
        let metrics: Vec<&str> = match params.get("metrics") {
            Some(m) => m.split(',').filter(|m| !m.is_empty()).collect(),
            None => {
                known = self.reader.metric_names().await?;
                known.iter().map(String::as_str).collect()
            }
        };
        for metric in &metrics {
            checked_metric(metric)?;
        }
        let latest = self.reader.latest_values(id, &metrics).await?;
        let latest: serde_json::Map<String, Value> = latest
            .into_iter()
            .map(|(metric, point)| (metric, point_json(&point)))
            .collect();
        let open_alerts: Vec<Value> = self
            .states
            .for_device(id)
            .await
            .map_err(alerting_problem)?
            .into_iter()
            .filter(|(_, s)| matches!(s.state, AlarmState::Alarm | AlarmState::Acknowledged))
            .map(|(k, s)| {
                json!({
                    "rule_id": k.rule_id,
                    "state": s.state.as_str(),
                    "since": s.alarm_since_ms.or(s.last_change_ms).map(rfc3339),
                    "last_value": s.last_measured,
                })
            })
            .collect();
        Ok(json!({ "device": device_json(&device), "latest": latest, "open_alerts": open_alerts }))
    }

    async fn set_status(
        &self,
        id: &str,
        status: DeviceStatus,
        now_ms: i64,
    ) -> Result<Value, Problem> {
        crate::query::names::checked_device(id)?;
        match set_device_status(&self.registry, id, status, now_ms).await {
            Ok(device) => Ok(json!({ "device": device_json(&device) })),
            Err(ProvisioningError::NotRegistered(_)) => Err(Problem::not_found(
                "unknown_device",
                format!("device '{id}' is not registered"),
            )),
            Err(ProvisioningError::Decommissioned(_)) => Err(Problem {
                status: 409,
                code: "device_decommissioned",
                detail: format!("device '{id}' is decommissioned: its id stays retired"),
            }),
            Err(e) => Err(registry_problem(e)),
        }
    }

    async fn device_readings(
        &self,
        id: &str,
        metric: &str,
        params: &Params,
        now_ms: i64,
    ) -> Result<Value, Problem> {
        self.registered(id).await?;
        checked_metric(metric)?;
        let mut range = params.range(now_ms)?;
        let limit = params.limit()?;
        if let Some(cursor) = params.get("cursor") {
            let resume: i64 = cursor.parse().map_err(|_| {
                Problem::invalid(format!("cursor '{cursor}' is not one this API handed out"))
            })?;
            if resume < range.from_ms || resume >= range.to_ms {
                return Err(Problem::invalid(format!(
                    "cursor '{cursor}' lies outside the requested range"
                )));
            }
            range.from_ms = resume;
        }
        let bins = params.bins()?;
        let query = SeriesQuery {
            device_id: id.to_owned(),
            metric: metric.to_owned(),
            range,
            bins,
            limit: Some(limit + 1),
        };
        let mut points = self.reader.series(&query).await?;
        let next = (points.len() > limit).then(|| {
            let next = points[limit].time_ms;
            points.truncate(limit);
            next.to_string()
        });
        Ok(json!({
            "device_id": id,
            "metric": metric,
            "from": rfc3339(range.from_ms),
            "to": rfc3339(range.to_ms),
            "bin_seconds": bins.map(|(b, _)| b.as_secs()),
            "agg": bins.map(|(_, a)| a.as_str()),
            "points": points.iter().map(point_json).collect::<Vec<_>>(),
            "next": next,
        }))
    }

    async fn latest_by_device(&self, metric: &str, params: &Params) -> Result<Value, Problem> {
        checked_metric(metric)?;
        let filter = FleetFilter {
            device_type: params.get("type").map(str::to_owned),
            within: params.path("path")?,
        };
        let devices = self.reader.latest_by_device(metric, &filter).await?;
        Ok(json!({
            "metric": metric,
            "devices": devices.iter().map(|d| json!({
                "device_id": d.device_id,
                "time": rfc3339(d.time_ms),
                "value": value_json(&d.value),
            })).collect::<Vec<_>>(),
        }))
    }

    async fn drill_down(
        &self,
        metric: &str,
        params: &Params,
        now_ms: i64,
    ) -> Result<Value, Problem> {
        let within = params.path("path")?;
        let level = crate::query::names::child_level(&within)?;
        let range: TimeRange = params.range(now_ms)?;
        let aggregate = params.aggregate()?;
        let groups = self
            .reader
            .drill_down(metric, &within, range, aggregate)
            .await?;
        Ok(json!({
            "metric": metric,
            "path": within.to_string(),
            "level": level,
            "agg": aggregate.as_str(),
            "from": rfc3339(range.from_ms),
            "to": rfc3339(range.to_ms),
            "groups": groups.iter().map(|g| json!({"name": g.group, "value": g.value})).collect::<Vec<_>>(),
        }))
    }
}

pub fn device_json(d: &DeviceRecord) -> Value {
    let time = |ms: Option<i64>| ms.map(rfc3339);
    json!({
        "device_id": d.device_id,
        "device_type": d.device_type,
        "status": d.status.as_str(),
        "gateway_id": d.gateway_id,
        "path": d.path.to_string(),
        "tags": d.tags,
        "heartbeat_seconds": d.heartbeat_seconds,
        "created_at": rfc3339(d.created_at_ms),
        "last_seen": time(d.last_seen_ms),
        "connected": d.connected,
        "last_connected": time(d.last_connected_ms),
        "last_disconnected": time(d.last_disconnected_ms),
    })
}

fn value_json(value: &MetricValue) -> Value {
    match value {
        MetricValue::Number(v) => json!(v),
        MetricValue::Bool(b) => json!(b),
        MetricValue::Text(s) => json!(s),
    }
}

fn point_json(point: &Point) -> Value {
    json!({ "time": rfc3339(point.time_ms), "value": value_json(&point.value) })
}
