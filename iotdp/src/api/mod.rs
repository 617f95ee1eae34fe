//! The query API's use cases, independent of the HTTP framework: a request (method, path,
//! query string, body) in, a JSON response or a problem document out. The Lambda function and
//! the local server adapt their HTTP types to these.
//!
//! The routes (all JSON) are [`routes::ROUTES`], as `openapi.yaml` documents them: each with
//! its method, path pattern, least role and handler, one file per resource below.

pub mod access;
mod alerts;
mod commands;
pub mod console;
mod devices;
pub mod http_adapter;
pub mod params;
mod problem;
mod readings;
pub mod routes;
mod rules;
mod types;

pub use alerts::alert_json;
pub use commands::{command_json, shadow_json};
pub use devices::device_json;
pub use problem::{Problem, ProblemCode};
pub use readings::point_json;
pub use routes::{ROUTES, Route};

use serde_json::Value;

use crate::alerting::ports::{AlertStateListing, AlertStateStore, RuleStore};
use crate::commands::ports::{CommandStore, NoCommandHistory, NoShadows, ShadowService};
use crate::commands::service::Commands;
use crate::devices::ports::{DeviceRegistry, DeviceTypes};
use crate::query::ports::TimeSeriesReader;
use access::Caller;
use params::Params;
use routes::{Destination, Handler, PathParameters, RequestPath};

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
    R: DeviceRegistry + DeviceTypes,
    T: TimeSeriesReader,
    A: AlertStateStore + AlertStateListing,
    U: RuleStore,
    S: ShadowService,
    K: CommandStore,
{
    /// Answer `request` from `caller` at wall-clock time `now_ms`. Never panics; user mistakes
    /// are 4xx. Every state-changing call is logged as one audit line.
    pub async fn handle(&self, request: &ApiRequest, caller: &Caller, now_ms: i64) -> ApiResponse {
        let path = RequestPath::parse(&request.path);
        let response = match self.answer(request, &path, caller, now_ms).await {
            Ok(body) => ApiResponse::ok(body),
            Err(problem) => {
                let status = problem.status;
                let mut response = problem.into_response();
                if status == 405 {
                    response.allow = Some(path.allowed_methods().join(", "));
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
    async fn answer(
        &self,
        request: &ApiRequest,
        path: &RequestPath,
        caller: &Caller,
        now_ms: i64,
    ) -> Result<Value, Problem> {
        let destination = path.destination(&request.method);
        if let Destination::Route(route) = destination
            && caller.role.is_none_or(|role| role < route.role)
        {
            return Err(Problem {
                status: 403,
                code: ProblemCode::Forbidden,
                detail: format!(
                    "{} {} needs the {} role; {} has {}",
                    request.method,
                    route.path,
                    route.role.as_str(),
                    caller.identity,
                    caller
                        .role
                        .map_or("no iotdp role (see docs/access.md)", |r| r.as_str())
                ),
            });
        }
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
        let segments = path.decoded()?;
        match destination {
            Destination::Route(route) => {
                let ids = PathParameters::of(route, &segments);
                self.dispatch(route.handler, &ids, request, &params, caller, now_ms)
                    .await
            }
            Destination::WrongMethod => Err(Problem {
                status: 405,
                code: ProblemCode::MethodNotAllowed,
                detail: format!("{} is not allowed on {}", request.method, request.path),
            }),
            Destination::NoRoute => Err(Problem::not_found(
                ProblemCode::NoSuchRoute,
                format!(
                    "no route {} {}: see openapi.yaml",
                    request.method, request.path
                ),
            )),
        }
    }

    /// Call the use case `handler` names with the route's path parameters `ids`.
    async fn dispatch(
        &self,
        handler: Handler,
        ids: &PathParameters<'_>,
        request: &ApiRequest,
        params: &Params,
        caller: &Caller,
        now_ms: i64,
    ) -> Result<Value, Problem> {
        let access = &caller.access;
        let body = &request.body;
        let device = ids.get("device_id");
        match handler {
            Handler::ListDevices => self.list_devices(params, access).await,
            Handler::CreateDevice => self.create_device(body, now_ms, access).await,
            Handler::GetDevice => self.get_device(device, params, access).await,
            Handler::UpdateDevice => self.update_device(device, body, now_ms, access).await,
            Handler::SetStatus(status) => self.set_status(device, status, now_ms, access).await,
            Handler::IssueCommand => {
                self.issue_command(device, body, &caller.identity, now_ms, access)
                    .await
            }
            Handler::ListCommands => self.list_commands(device, params, access).await,
            Handler::GetCommand => {
                self.get_command(device, ids.get("command_id"), access)
                    .await
            }
            Handler::GetShadow => self.get_shadow(device, access).await,
            Handler::DeviceReadings => {
                self.device_readings(device, ids.get("metric"), params, now_ms, access)
                    .await
            }
            Handler::LatestByDevice => {
                self.latest_by_device(ids.get("metric"), params, access)
                    .await
            }
            Handler::DrillDown => {
                self.drill_down(ids.get("metric"), params, now_ms, access)
                    .await
            }
            Handler::ListTypes => self.list_types().await,
            Handler::GetType => self.get_type(ids.get("device_type")).await,
            Handler::PutType => self.put_type(ids.get("device_type"), body, access).await,
            Handler::ListRules => self.list_rules(access).await,
            Handler::PutRule => self.put_rule(ids.get("rule_id"), body, access).await,
            Handler::DeleteRule => self.delete_rule(ids.get("rule_id"), access).await,
            Handler::ListAlerts => self.list_alerts(params, access).await,
            Handler::ActOnAlert(action) => {
                self.act(device, ids.get("rule_id"), action, body, now_ms, access)
                    .await
            }
        }
    }
}
