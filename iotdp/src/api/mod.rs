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
//! - `GET /alerts?state=&severity=&device=&limit=&cursor=`;
//! - `POST /alerts/{device}/{rule}/ack|snooze|disable|enable|reset` (conditional on `version`);
//! - `POST /devices/{id}/commands`, `GET /devices/{id}/commands`, `GET
//!   /devices/{id}/commands/{command_id}`, `GET /devices/{id}/shadow`.

pub mod access;
mod alerts;
mod commands;
pub mod console;
mod devices;
pub mod http_adapter;
pub mod params;
mod problem;
mod readings;
mod rules;

pub use alerts::alert_json;
pub use commands::{command_json, shadow_json};
pub use devices::device_json;
pub use problem::{Problem, ProblemCode};
pub use readings::point_json;

use serde_json::Value;

use crate::alerting::ports::{AlertStateListing, AlertStateStore, RuleStore};
use crate::commands::ports::{CommandStore, NoCommandHistory, NoShadows, ShadowService};
use crate::commands::service::Commands;
use crate::devices::ports::DeviceRegistry;
use crate::devices::record::DeviceStatus;
use crate::query::ports::TimeSeriesReader;
use access::{Caller, required_role};
use params::Params;

/// Every route the router answers, as `openapi.yaml` documents it (a test keeps the two equal).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/devices"),
    ("POST", "/devices"),
    ("GET", "/devices/{device_id}"),
    ("PUT", "/devices/{device_id}"),
    ("POST", "/devices/{device_id}/suspend"),
    ("POST", "/devices/{device_id}/resume"),
    ("POST", "/devices/{device_id}/commands"),
    ("GET", "/devices/{device_id}/commands"),
    ("GET", "/devices/{device_id}/commands/{command_id}"),
    ("GET", "/devices/{device_id}/shadow"),
    ("GET", "/devices/{device_id}/readings/{metric}"),
    ("GET", "/readings/{metric}/latest"),
    ("GET", "/readings/{metric}/drill-down"),
    ("GET", "/rules"),
    ("PUT", "/rules/{rule_id}"),
    ("DELETE", "/rules/{rule_id}"),
    ("GET", "/alerts"),
    ("POST", "/alerts/{device_id}/{rule_id}/ack"),
    ("POST", "/alerts/{device_id}/{rule_id}/snooze"),
    ("POST", "/alerts/{device_id}/{rule_id}/disable"),
    ("POST", "/alerts/{device_id}/{rule_id}/enable"),
    ("POST", "/alerts/{device_id}/{rule_id}/reset"),
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
    /// The methods a 405's path takes (its `Allow` header, RFC 9110 §15.5.6).
    pub allow: Option<String>,
}

impl ApiResponse {
    fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body,
            problem: false,
            allow: None,
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

/// Most items in one page, and the default.
pub const MAX_PAGE: usize = 10_000;
pub const DEFAULT_PAGE: usize = 1_000;

/// The API over the registry, the reader, alert states, rules, and commands (shadows `S`
/// and history `K`; an API built by [`QueryApi::new`] alone answers commands with 503 until
/// [`QueryApi::with_commands`] gives it both).
pub struct QueryApi<R, T, A, U, S = NoShadows, K = NoCommandHistory> {
    registry: R,
    reader: T,
    states: A,
    rules: U,
    commands: Commands<S, K>,
}

impl<R, T, A, U> QueryApi<R, T, A, U> {
    pub fn new(registry: R, reader: T, states: A, rules: U) -> Self {
        Self {
            registry,
            reader,
            states,
            rules,
            commands: Commands::new(NoShadows, NoCommandHistory),
        }
    }
}

impl<R, T, A, U, S, K> QueryApi<R, T, A, U, S, K> {
    /// The same API, commanding devices through `commands`.
    pub fn with_commands<S2, K2>(self, commands: Commands<S2, K2>) -> QueryApi<R, T, A, U, S2, K2> {
        QueryApi {
            registry: self.registry,
            reader: self.reader,
            states: self.states,
            rules: self.rules,
            commands,
        }
    }
}

impl<R, T, A, U, S, K> QueryApi<R, T, A, U, S, K>
where
    R: DeviceRegistry,
    T: TimeSeriesReader,
    A: AlertStateStore + AlertStateListing,
    U: RuleStore,
    S: ShadowService,
    K: CommandStore,
{
    /// Answer `request` from `caller` at wall-clock time `now_ms`. Never panics; user mistakes
    /// are 4xx. Every state-changing call is logged as one audit line.
    pub async fn handle(&self, request: &ApiRequest, caller: &Caller, now_ms: i64) -> ApiResponse {
        let response = match self.authorised_route(request, caller, now_ms).await {
            Ok(body) => ApiResponse::ok(body),
            Err(problem) => {
                let status = problem.status;
                let mut response = problem.into_response();
                if status == 405 {
                    response.allow = Some(allowed_methods(&request.path).join(", "));
                }
                response
            }
        };
        if request.method != "GET" && request.method != "HEAD" {
            tracing::info!(
                audit = "api_call",
                caller = %caller.identity,
                role = caller.role.map_or("none", |r| r.as_str()),
                scope = %caller.access.describe(),
                method = %request.method,
                path = %request.path,
                status = response.status,
                "state-changing API call"
            );
        }
        response
    }

    /// The role check comes first and depends on the route alone, so it reveals nothing; the
    /// scope checks are in the handlers, before any store answers.
    async fn authorised_route(
        &self,
        request: &ApiRequest,
        caller: &Caller,
        now_ms: i64,
    ) -> Result<Value, Problem> {
        if let Some(template) = route_template(&request.method, &request.path) {
            let needed = required_role(&request.method, template);
            if caller.role.is_none_or(|role| role < needed) {
                return Err(Problem {
                    status: 403,
                    code: ProblemCode::Forbidden,
                    detail: format!(
                        "{} {template} needs the {} role; {} has {}",
                        request.method,
                        needed.as_str(),
                        caller.identity,
                        caller
                            .role
                            .map_or("no iotdp role (see docs/access.md)", |r| r.as_str())
                    ),
                });
            }
        }
        self.route(request, caller, now_ms).await
    }

    async fn route(
        &self,
        request: &ApiRequest,
        caller: &Caller,
        now_ms: i64,
    ) -> Result<Value, Problem> {
        let access = &caller.access;
        let params = Params::parse(&request.query)?;
        // Every body openapi.yaml documents is an object. Serde would read a struct from a JSON
        // array too (`[]` as an empty action, `["ac-1", "thermostat"]` as a device), so
        // anything else is refused here, once for every route.
        if let Some(first) = request.body.iter().find(|b| !b.is_ascii_whitespace())
            && *first != b'{'
        {
            return Err(Problem::invalid(format!(
                "the body of {} {} must be a JSON object: see openapi.yaml",
                request.method, request.path
            )));
        }
        let decoded: Vec<String> = request
            .path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect::<Result<_, _>>()?;
        let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
        match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["devices"]) => self.list_devices(&params, access).await,
            ("GET", ["devices", id]) => self.get_device(id, &params, access).await,
            ("POST", ["devices"]) => self.create_device(&request.body, now_ms, access).await,
            ("PUT", ["devices", id]) => self.update_device(id, &request.body, now_ms, access).await,
            ("POST", ["devices", id, action @ ("suspend" | "resume")]) => {
                let status = if *action == "suspend" {
                    DeviceStatus::Suspended
                } else {
                    DeviceStatus::Active
                };
                self.set_status(id, status, now_ms, access).await
            }
            ("POST", ["devices", id, "commands"]) => {
                self.issue_command(id, &request.body, &caller.identity, now_ms, access)
                    .await
            }
            ("GET", ["devices", id, "commands"]) => self.list_commands(id, &params, access).await,
            ("GET", ["devices", id, "commands", command]) => {
                self.get_command(id, command, access).await
            }
            ("GET", ["devices", id, "shadow"]) => self.get_shadow(id, access).await,
            ("GET", ["devices", id, "readings", metric]) => {
                self.device_readings(id, metric, &params, now_ms, access)
                    .await
            }
            ("GET", ["readings", metric, "latest"]) => {
                self.latest_by_device(metric, &params, access).await
            }
            ("GET", ["readings", metric, "drill-down"]) => {
                self.drill_down(metric, &params, now_ms, access).await
            }
            ("GET", ["rules"]) => self.list_rules(access).await,
            ("PUT", ["rules", id]) => self.put_rule(id, &request.body, access).await,
            ("DELETE", ["rules", id]) => self.delete_rule(id, access).await,
            ("GET", ["alerts"]) => self.list_alerts(&params, access).await,
            (
                "POST",
                [
                    "alerts",
                    device,
                    rule,
                    action @ ("ack" | "snooze" | "disable" | "enable" | "reset"),
                ],
            ) => {
                self.act(device, rule, action, &request.body, now_ms, access)
                    .await
            }
            (
                _,
                ["devices" | "rules" | "alerts"]
                | ["devices" | "rules", _]
                | ["devices", _, "suspend" | "resume" | "commands" | "shadow"]
                | ["devices", _, "commands" | "readings", _]
                | ["readings", _, "latest" | "drill-down"]
                | [
                    "alerts",
                    _,
                    _,
                    "ack" | "snooze" | "disable" | "enable" | "reset",
                ],
            ) => Err(Problem {
                status: 405,
                code: ProblemCode::MethodNotAllowed,
                detail: format!("{} is not allowed on {}", request.method, request.path),
            }),
            _ => Err(Problem::not_found(
                ProblemCode::NoSuchRoute,
                format!(
                    "no route {} {}: see openapi.yaml",
                    request.method, request.path
                ),
            )),
        }
    }
}

/// The [`ROUTES`] template `method` on `path` is answered by, if any.
pub fn route_template(method: &str, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    ROUTES
        .iter()
        .find(|(m, template)| *m == method && matches_template(template, &segments))
        .map(|(_, template)| *template)
}

fn matches_template(template: &str, segments: &[&str]) -> bool {
    let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
    parts.len() == segments.len()
        && parts
            .iter()
            .zip(segments)
            .all(|(part, segment)| part.starts_with('{') || part == segment)
}

/// The methods [`ROUTES`] answers on `path` (`{name}` matches any one segment).
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    ROUTES
        .iter()
        .filter(|(_, template)| matches_template(template, &segments))
        .map(|(method, _)| *method)
        .collect()
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
