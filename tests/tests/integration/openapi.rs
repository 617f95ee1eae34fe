//! `openapi.yaml` describes the handlers as they are: every documented route is answered, with
//! a documented status and the documented required fields, and the router answers nothing the
//! document leaves out.

use std::sync::Arc;

use iotdp::alerting::event::AlarmState;
use iotdp::alerting::ports::{AlertKey, AlertStateStore};
use iotdp::alerting::rule::AlertRule;
use iotdp::alerting::state_machine::AlertState;
use iotdp::api::access::{Access, Caller, Role};
use iotdp::api::routes::route_for;
use iotdp::api::{ApiRequest, QueryApi, ROUTES};
use iotdp::commands::command::{CommandRequest, CommandSource};
use iotdp::commands::service::Commands;
use iotdp::devices::ports::DeviceTypes;
use iotdp::devices::record::DeviceRecord;
use iotdp::domain::{Metric, MetricValue, Reading};
use iotdp::ingest::ports::TimeSeriesStore;
use iotdp_memory::{
    MemoryAlertStates, MemoryCommands, MemoryQueryApi, MemoryRegistry, MemoryRules, MemoryShadows,
    MemoryStore,
};
use serde_json::Value;

const T0: i64 = 1_764_000_000_000;
const HOT: &str = r#"{"rule_id":"too-hot","name":"Room too hot","scope":"all","metric":"temperature","condition":{"above":28},"severity":"warning"}"#;

fn spec() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml"))
        .expect("openapi.yaml");
    serde_yaml_ng::from_str(&text).expect("openapi.yaml parses")
}

/// Follow a local `$ref` (`#/components/...`).
fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .trim_start_matches("#/")
            .split('/')
            .fold(spec, |node, key| &node[key]),
        None => value,
    }
}

async fn api() -> MemoryQueryApi {
    let registry = Arc::new(MemoryRegistry::with([DeviceRecord::new(
        "ac-1",
        "thermostat",
        T0,
    )]));
    // A device type named as the routes' ids are here ("ac-1"), for GET /types/{device_type}.
    registry
        .put_type(&serde_json::from_str(AC_TYPE).unwrap())
        .await
        .unwrap();
    let store = Arc::new(MemoryStore::new(100));
    store
        .write(&[Reading {
            device_id: "ac-1".into(),
            time_ms: T0 - 60_000,
            seq: None,
            metrics: vec![Metric {
                name: "temperature".into(),
                value: MetricValue::Number(29.5),
            }],
            version: T0,
            dimensions: None,
        }])
        .await
        .unwrap();
    let states = Arc::new(MemoryAlertStates::default());
    let key = AlertKey {
        device_id: "ac-1".into(),
        rule_id: "too-hot".into(),
    };
    let alarm = AlertState {
        state: AlarmState::Alarm,
        version: 1,
        ..Default::default()
    };
    states.put_if_version(&key, &alarm, 0).await.unwrap();
    let rules = Arc::new(MemoryRules::new(vec![AlertRule::from_json(HOT).unwrap()]));
    // One command, c1, for the routes that read one.
    let commands = Commands::new(
        Arc::new(MemoryShadows::default()),
        Arc::new(MemoryCommands::default()),
    );
    let request = CommandRequest::new(
        serde_json::json!({"setpoint": 21})
            .as_object()
            .cloned()
            .unwrap(),
        None,
        Some("c1".into()),
    )
    .unwrap();
    commands
        .issue("ac-1", &request, "test", CommandSource::Api, T0 - 1_000)
        .await
        .unwrap();
    QueryApi::new(registry, store, states, rules).with_commands(commands)
}

fn concrete(path: &str, device: &str) -> String {
    path.replace("{device_id}", device)
        .replace("{metric}", "temperature")
        .replace("{rule_id}", "too-hot")
        .replace("{command_id}", "c1")
        .replace("{device_type}", device)
}

/// The response's status is documented and its body has the documented required fields.
fn check(spec: &Value, operation: &Value, what: &str, status: u16, body: &Value) {
    let responses = &operation["responses"];
    let documented = responses
        .get(status.to_string())
        .unwrap_or_else(|| panic!("{what}: status {status} is not documented: {body}"));
    let response = resolve(spec, documented);
    let content = response["content"].as_object().expect("content");
    let schema = resolve(spec, &content.values().next().unwrap()["schema"]);
    for field in schema["required"].as_array().into_iter().flatten() {
        let field = field.as_str().unwrap();
        assert!(
            body.get(field).is_some(),
            "{what}: {status} body lacks '{field}': {body}"
        );
    }
}

const AC_TYPE: &str = r#"{"device_type":"ac-1","metrics":["temperature"],"derived":[{"name":"temperature_f","expression":"temperature * 9 / 5 + 32"}]}"#;

#[tokio::test]
async fn every_documented_route_answers_as_documented() {
    let spec = spec();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            documented.push((method.to_ascii_uppercase(), path.clone()));
            let method = method.to_ascii_uppercase();
            // Fresh state per call: the happy path of each operation.
            let api = api().await;
            let body = match (method.as_str(), path.as_str()) {
                ("PUT", "/rules/{rule_id}") => HOT.to_owned(),
                ("PUT", "/types/{device_type}") => AC_TYPE.to_owned(),
                ("POST", "/devices") => r#"{"device_id":"ac-2","device_type":"thermostat","path":"home-2","heartbeat_seconds":3600}"#.to_owned(),
                ("PUT", "/devices/{device_id}") => r#"{"device_id":"ac-1","device_type":"thermostat","path":"home-1/kitchen","tags":{"owner":"ops"}}"#.to_owned(),
                ("POST", "/alerts/{device_id}/{rule_id}/snooze") => r#"{"for_seconds":3600}"#.to_owned(),
                ("POST", "/alerts/{device_id}/{rule_id}/disable") => r#"{"version":1}"#.to_owned(),
                ("POST", "/devices/{device_id}/commands") => r#"{"desired":{"setpoint":22},"expires_in":600}"#.to_owned(),
                _ => String::new(),
            };
            if path.ends_with("/enable") {
                // Only a disabled pair can be enabled.
                let disable = ApiRequest {
                    method: "POST".into(),
                    path: concrete("/alerts/{device_id}/{rule_id}/disable", "ac-1"),
                    query: String::new(),
                    body: vec![],
                };
                assert_eq!(
                    api.handle(&disable, &Caller::admin("test"), T0)
                        .await
                        .status,
                    200
                );
            }
            let request = ApiRequest {
                method: method.clone(),
                path: concrete(path, "ac-1"),
                query: String::new(),
                body: body.clone().into_bytes(),
            };
            let response = api.handle(&request, &Caller::admin("test"), T0).await;
            let what = format!("{method} {path}");
            assert!(
                response.status < 300,
                "{what}: {} {}",
                response.status,
                response.body
            );
            check(&spec, operation, &what, response.status, &response.body);
            // Each documented 404 is what an unknown id gets, as a problem document.
            if operation["responses"].get("404").is_some() {
                let request = ApiRequest {
                    path: concrete(path, "nobody").replace(
                        "too-hot",
                        if method == "DELETE" {
                            "no-rule"
                        } else {
                            "too-hot"
                        },
                    ),
                    body: body.replace("ac-1", "nobody").into_bytes(),
                    ..request
                };
                let response = api.handle(&request, &Caller::admin("test"), T0).await;
                assert_eq!(response.status, 404, "{what}: {}", response.body);
                assert!(response.problem);
                check(&spec, operation, &what, 404, &response.body);
            }
            // Each documented 400 is what a bad parameter (or body) gets: a bad body where the
            // operation takes one, else a device id outside its pattern.
            if operation["responses"].get("400").is_some() && method != "GET" {
                let has_body = operation.get("requestBody").is_some();
                let request = ApiRequest {
                    method: method.clone(),
                    path: concrete(path, if has_body { "ac-1" } else { "bad%20id" }),
                    query: String::new(),
                    body: br#"{"device_id":"ac-1","device_type":"bad type","rule_id":"x"}"#
                        .to_vec(),
                };
                let response = api.handle(&request, &Caller::admin("test"), T0).await;
                assert_eq!(response.status, 400, "{what}: {}", response.body);
                check(&spec, operation, &what, 400, &response.body);
            }
            if operation["responses"].get("400").is_some() && method == "GET" {
                // Bad query parameters where it takes any, else a device id outside its pattern.
                let takes_query = operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| resolve(&spec, p)["in"] == "query");
                let request = ApiRequest {
                    method: method.clone(),
                    path: concrete(path, if takes_query { "ac-1" } else { "bad%20id" }),
                    query: "limit=0&from=yesterday&agg=median&bin=9x&status=x&state=x&severity=x&path=a%20b&metrics=9x".into(),
                    body: vec![],
                };
                let response = api.handle(&request, &Caller::admin("test"), T0).await;
                assert_eq!(response.status, 400, "{what}: {}", response.body);
                check(&spec, operation, &what, 400, &response.body);
            }
        }
    }
    let mut routes: Vec<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    routes.sort();
    documented.sort();
    assert_eq!(
        routes, documented,
        "the router's routes and openapi.yaml differ"
    );
}

/// Each operation documents the least role it needs (`x-iotdp-role`), and the router agrees:
/// a caller with exactly that role is let through, one a role below is refused with
/// `forbidden` before any store answers.
#[tokio::test]
async fn every_operation_documents_the_role_the_router_requires() {
    let spec = spec();
    let caller = |role: Role| Caller {
        identity: format!("a {}", role.as_str()),
        role: Some(role),
        access: Access::fleet(),
    };
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = method.to_ascii_uppercase();
            let what = format!("{method} {path}");
            let documented = operation["x-iotdp-role"]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: no x-iotdp-role"));
            let needed = route_for(&method, path)
                .unwrap_or_else(|| panic!("{what}: not in the route table"))
                .role;
            assert_eq!(documented, needed.as_str(), "{what}");
            let request = ApiRequest {
                method: method.clone(),
                path: concrete(path, "ac-1"),
                query: String::new(),
                body: vec![],
            };
            let api = api().await;
            let allowed = api.handle(&request, &caller(needed), T0).await;
            assert_ne!(
                allowed.status, 403,
                "{what} as {documented}: {}",
                allowed.body
            );
            let below = match needed {
                Role::Viewer => None,
                Role::Operator => Some(Role::Viewer),
                Role::Admin => Some(Role::Operator),
            };
            for role in below
                .into_iter()
                .chain((needed == Role::Admin).then_some(Role::Viewer))
            {
                let refused = api.handle(&request, &caller(role), T0).await;
                assert_eq!(
                    (refused.status, refused.body["code"].as_str()),
                    (403, Some("forbidden")),
                    "{what} as {}",
                    role.as_str()
                );
                check(&spec, operation, &what, 403, &refused.body);
            }
            let nobody = Caller {
                role: None,
                ..caller(Role::Viewer)
            };
            assert_eq!(
                api.handle(&request, &nobody, T0).await.status,
                403,
                "{what}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len());
}

/// Every operation that documents `from`/`to` takes each documented example (relative times
/// among them) and answers with the instant it resolved, against the request's clock.
#[tokio::test]
async fn relative_times_are_answered_wherever_the_document_offers_them() {
    let spec = spec();
    let mut exercised = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        let Some(operation) = item.get("get") else {
            continue;
        };
        let parameters: Vec<&Value> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| resolve(&spec, p))
            .collect();
        let examples = |name: &str| -> Vec<String> {
            parameters
                .iter()
                .filter(|p| p["name"] == name)
                .flat_map(|p| p["examples"].as_object().into_iter().flatten())
                .map(|(_, e)| e["value"].as_str().unwrap().to_owned())
                .collect()
        };
        let (froms, tos) = (examples("from"), examples("to"));
        if froms.is_empty() {
            continue;
        }
        assert!(
            froms.iter().any(|f| f.starts_with('-')) && tos.contains(&"now".to_owned()),
            "GET {path}: the document shows no relative time"
        );
        for from in &froms {
            for to in &tos {
                let api = api().await;
                let request = ApiRequest {
                    method: "GET".into(),
                    path: concrete(path, "ac-1"),
                    query: format!("from={from}&to={to}"),
                    body: vec![],
                };
                let response = api.handle(&request, &Caller::admin("test"), T0).await;
                let what = format!("GET {path}?from={from}&to={to}");
                let expected_from = iotdp::api::params::parse_instant(from, T0).unwrap();
                let expected_to = iotdp::api::params::parse_instant(to, T0).unwrap();
                if expected_from >= expected_to {
                    assert_eq!(response.status, 400, "{what}: {}", response.body);
                    continue;
                }
                assert_eq!(response.status, 200, "{what}: {}", response.body);
                check(&spec, operation, &what, 200, &response.body);
                assert_eq!(
                    response.body["from"],
                    iotdp::api::params::rfc3339(expected_from),
                    "{what}"
                );
                assert_eq!(
                    response.body["to"],
                    iotdp::api::params::rfc3339(expected_to),
                    "{what}"
                );
                exercised += 1;
            }
        }
    }
    assert!(exercised >= 2, "no operation documents relative times");
}

#[tokio::test]
async fn anything_undocumented_is_a_problem_not_an_answer() {
    let api = api().await;
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/devices/ac-1/secrets"),
        ("PATCH", "/devices/ac-1"),
        ("GET", "/rules/too-hot"),
    ] {
        let response = api
            .handle(
                &ApiRequest {
                    method: method.into(),
                    path: path.into(),
                    query: String::new(),
                    body: vec![],
                },
                &Caller::admin("test"),
                T0,
            )
            .await;
        assert!(
            response.problem && matches!(response.status, 404 | 405),
            "{method} {path}: {}",
            response.status
        );
    }
}
