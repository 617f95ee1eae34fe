//! Tenant isolation through the query API, route by route: a caller scoped to `site-1` gets
//! nothing of `site-2` (no record, reading, alert, rule, command or shadow, not through a cursor, a drill-down or
//! a fleet-wide list), cannot change anything there, and cannot tell a `site-2` id from one that
//! does not exist; a viewer changes nothing anywhere. Every route in [`ROUTES`] is exercised, so
//! a new route without a case here fails the suite. And where role and scope come from: only
//! the claims of the configured `ApiAuth`, each entry read whole, through the one HTTP adapter.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use iotdp::alerting::event::AlarmState;
use iotdp::alerting::ports::{AlertKey, AlertStateStore};
use iotdp::alerting::rule::AlertRule;
use iotdp::alerting::state_machine::AlertState;
use iotdp::api::access::{Access, ApiAuth, Caller, Claims, Ignored, Role, read_claims};
use iotdp::api::http_adapter::{
    Authority, HttpApi, caller_of, token_payload, unsigned_token, verified_claims,
};
use iotdp::api::{ApiRequest, ApiResponse, QueryApi, ROUTES};
use iotdp::commands::command::{CommandRequest, CommandSource};
use iotdp::commands::service::Commands;
use iotdp::devices::ports::DeviceTypes;
use iotdp::devices::record::DeviceRecord;
use iotdp::domain::{LocationPath, MetricValue, Reading};
use iotdp::ingest::ports::TimeSeriesStore;
use iotdp_memory::{
    MemoryAlertStates, MemoryCommands, MemoryQueryApi, MemoryRegistry, MemoryRules, MemoryShadows,
    MemoryStore,
};
use serde_json::Value;

const T0: i64 = 1_764_000_000_000;

type Api = MemoryQueryApi;

/// Two sites, each with two devices in two zones, readings, a rule on the site, a rule on one
/// of its devices, an open alarm and a command (`c1`, a reported shadow) per device; plus one
/// fleet-wide rule.
const DEVICES: &[(&str, &str)] = &[
    ("s1-a", "site-1/zone-a/s1/spot-1"),
    ("s1-b", "site-1/zone-b/s1/spot-1"),
    ("s2-a", "site-2/zone-a/s1/spot-1"),
    ("s2-b", "site-2/zone-b/s1/spot-1"),
];

/// Everything that would show `site-2` data in a response.
const SITE_2: &[&str] = &[
    "site-2",
    "s2-a",
    "s2-b",
    "s2-dry",
    "s2-a-wet",
    "secret-of-site-2",
];

fn rule(id: &str, scope: &str) -> AlertRule {
    AlertRule::from_json(&format!(
        r#"{{"rule_id":"{id}","name":"{id}","scope":{scope},"metric":"moisture","condition":{{"below":0.3}},"severity":"warning"}}"#
    ))
    .unwrap()
}

async fn api() -> Api {
    let registry = Arc::new(MemoryRegistry::with(DEVICES.iter().map(|(id, path)| {
        let mut r = DeviceRecord::new(id, "plant-sensor", T0);
        r.path = LocationPath::parse(path).unwrap();
        r
    })));
    let store = Arc::new(MemoryStore::new(1000));
    let readings: Vec<Reading> = DEVICES
        .iter()
        .enumerate()
        .flat_map(|(n, (id, path))| {
            (0..5).map(move |i| {
                Reading::new(
                    id,
                    T0 - 3_600_000 + i * 60_000,
                    [("moisture", MetricValue::Number(0.1 * (n + 1) as f64))],
                )
                .with_version(T0)
                .with_place("plant-sensor", LocationPath::parse(path).unwrap())
            })
        })
        .collect();
    store.write(&readings).await.unwrap();
    registry
        .put_type(&serde_json::from_str(PLANT_SENSOR).unwrap())
        .await
        .unwrap();
    let rules = Arc::new(MemoryRules::new(vec![
        rule("s1-dry", r#"{"path":"site-1"}"#),
        rule("s2-dry", r#"{"path":"site-2"}"#),
        rule("s1-a-wet", r#"{"device_id":"s1-a"}"#),
        rule("s2-a-wet", r#"{"device_id":"s2-a"}"#),
        rule("fleet-dry", r#""all""#),
    ]));
    let states = Arc::new(MemoryAlertStates::default());
    for (device, _) in DEVICES {
        let site_rule = if device.starts_with("s1") {
            "s1-dry"
        } else {
            "s2-dry"
        };
        for rule_id in [site_rule, "fleet-dry"] {
            let alarm = AlertState {
                state: AlarmState::Alarm,
                version: 1,
                alarm_since_ms: Some(T0 - 60_000),
                last_measured: Some(0.1),
                ..Default::default()
            };
            let key = AlertKey {
                device_id: (*device).into(),
                rule_id: rule_id.into(),
            };
            states.put_if_version(&key, &alarm, 0).await.unwrap();
        }
    }
    let shadows = Arc::new(MemoryShadows::default());
    let commands = Commands::new(shadows.clone(), Arc::new(MemoryCommands::default()));
    for (device, _) in DEVICES {
        let secret = if device.starts_with("s2") {
            "secret-of-site-2"
        } else {
            "site-1-value"
        };
        shadows
            .report(device, serde_json::json!({ "label": secret }))
            .unwrap();
        let request = CommandRequest::new(
            serde_json::json!({ "label": secret, "valve": "open" })
                .as_object()
                .cloned()
                .unwrap(),
            None,
            Some("c1".into()),
        )
        .unwrap();
        commands
            .issue(device, &request, "setup", CommandSource::Api, T0 - 1_000)
            .await
            .unwrap();
    }
    QueryApi::new(registry, store, states, rules).with_commands(commands)
}

fn site_1(role: Role) -> Caller {
    Caller {
        identity: format!("site-1 {}", role.as_str()),
        role: Some(role),
        access: Access {
            fleet: false,
            places: vec![LocationPath::parse("site-1").unwrap()],
            devices: vec![],
        },
    }
}

async fn call(api: &Api, caller: &Caller, method: &str, path: &str, body: &str) -> ApiResponse {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    api.handle(
        &ApiRequest {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            body: body.as_bytes().to_vec(),
        },
        caller,
        T0,
    )
    .await
}

/// Everything the fleet's admin sees, to show that refused calls changed nothing.
async fn everything(api: &Api) -> Vec<Value> {
    let admin = Caller::admin("check");
    let mut seen = Vec::new();
    for path in [
        "/devices",
        "/rules",
        "/types",
        "/alerts",
        "/readings/moisture/latest",
        "/devices/s2-a",
        "/devices/s2-a/readings/moisture?from=-2h&to=now",
        "/devices/s2-a/commands",
        "/devices/s2-a/shadow",
    ] {
        let r = call(api, &admin, "GET", path, "").await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        seen.push(r.body);
    }
    seen
}

fn assert_no_site_2(what: &str, body: &Value) {
    let text = body.to_string();
    for marker in SITE_2 {
        assert!(
            !text.contains(marker),
            "{what} shows '{marker}' to a site-1 caller: {text}"
        );
    }
}

/// `template` with `device` and `rule` in its place-holders.
/// The fleet's one device type: types hold no site's data, and apply across sites.
const PLANT_SENSOR: &str = r#"{"device_type":"plant-sensor","metrics":["moisture"],"derived":[{"name":"moisture_pct","expression":"moisture * 100"}]}"#;

fn concrete(template: &str, device: &str, rule: &str) -> String {
    template
        .replace("{device_type}", "plant-sensor")
        .replace("{device_id}", device)
        .replace("{rule_id}", rule)
        .replace("{metric}", "moisture")
        .replace("{command_id}", "c1")
}

/// The body each state-changing route is tried with: a valid one, which would succeed in scope,
/// and which for `site-2` targets tries to pull the item into `site-1`.
fn body_for(method: &str, template: &str, device: &str, rule: &str) -> String {
    match (method, template) {
        ("POST", "/devices") => r#"{"device_id":"s2-new","device_type":"plant-sensor","path":"site-2/zone-a/s1/spot-9"}"#.into(),
        ("PUT", "/devices/{device_id}") => format!(
            r#"{{"device_id":"{device}","device_type":"plant-sensor","path":"site-1/zone-a/s1/spot-7"}}"#
        ),
        ("PUT", "/rules/{rule_id}") => format!(
            r#"{{"rule_id":"{rule}","name":"mine now","scope":{{"path":"site-1"}},"metric":"moisture","condition":{{"below":0.2}},"severity":"info"}}"#
        ),
        ("POST", "/alerts/{device_id}/{rule_id}/snooze") => r#"{"for_seconds":3600}"#.into(),
        ("PUT", "/types/{device_type}") => PLANT_SENSOR.into(),
        ("POST", "/devices/{device_id}/commands") => {
            r#"{"desired":{"valve":"closed"},"idempotency_key":"c2"}"#.into()
        }
        _ => String::new(),
    }
}

/// Every route, aimed at `site-2`, answers a site-1 admin as it answers for an id that does not
/// exist (404, the same code and detail but for the id), or filters `site-2` out of its list;
/// and afterwards the fleet is as it was.
#[tokio::test]
async fn a_site_1_caller_gets_nothing_of_site_2_on_any_route() {
    let api = api().await;
    let before = everything(&api).await;
    let caller = site_1(Role::Admin);
    for route in ROUTES {
        let (method, template) = (&route.method, &route.path);
        let what = format!("{method} {template}");
        let uses_device = template.contains("{device_id}");
        let uses_rule = template.contains("{rule_id}");
        if template.starts_with("/types") {
            // Types hold no site's data: read by any viewer, and changed only by an admin of
            // the whole fleet, since a type applies to its devices on every site.
            let path = concrete(template, "", "");
            let r = call(
                &api,
                &caller,
                method,
                &path,
                &body_for(method, template, "", ""),
            )
            .await;
            match *method {
                "GET" => assert_eq!(r.status, 200, "{what}: {}", r.body),
                _ => assert_eq!(
                    (r.status, r.body["code"].as_str()),
                    (403, Some("outside_scope")),
                    "{what}: {}",
                    r.body
                ),
            }
            continue;
        }
        if !uses_device && !uses_rule {
            match (*method, *template) {
                ("GET", "/devices" | "/alerts") => {
                    // Page by page through the cursors: never an item of site-2, and every item
                    // of site-1.
                    let mut cursor: Option<String> = None;
                    let mut items = Vec::new();
                    loop {
                        let page = match &cursor {
                            Some(c) => format!("{template}?limit=1&cursor={c}"),
                            None => format!("{template}?limit=1"),
                        };
                        let r = call(&api, &caller, method, &page, "").await;
                        assert_eq!(r.status, 200, "{what}: {}", r.body);
                        assert_no_site_2(&what, &r.body);
                        let key = &template[1..];
                        items.extend(r.body[key].as_array().unwrap().iter().cloned());
                        match r.body["next"].as_str() {
                            Some(next) => cursor = Some(next.to_owned()),
                            None => break,
                        }
                    }
                    let expected = if *template == "/devices" { 2 } else { 4 };
                    assert_eq!(items.len(), expected, "{what}: {items:?}");
                }
                ("GET", "/rules") => {
                    let r = call(&api, &caller, method, template, "").await;
                    assert_no_site_2(&what, &r.body);
                    let ids: Vec<&str> = r.body["rules"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["rule_id"].as_str().unwrap())
                        .collect();
                    // The fleet-wide rule watches site-2 too, so it is the fleet's, not theirs.
                    assert_eq!(ids, ["s1-a-wet", "s1-dry"], "{what}");
                }
                ("GET", "/readings/{metric}/latest") => {
                    for query in ["", "?path=site-2", "?device_type=plant-sensor"] {
                        let path = format!("/readings/moisture/latest{query}");
                        let r = call(&api, &caller, method, &path, "").await;
                        assert_eq!(r.status, 200, "{what}{query}: {}", r.body);
                        assert_no_site_2(&what, &r.body);
                    }
                    let all = call(&api, &caller, method, "/readings/moisture/latest", "").await;
                    assert_eq!(all.body["devices"].as_array().unwrap().len(), 2);
                }
                ("GET", "/readings/{metric}/drill-down") => {
                    // From the fleet's root or site-2 (places that hold site-2's devices):
                    // not found, as a place that does not exist.
                    let ghost = call(
                        &api,
                        &caller,
                        method,
                        "/readings/moisture/drill-down?path=site-9&from=-2h&to=now",
                        "",
                    )
                    .await;
                    for place in ["", "site-2", "site-2/zone-a"] {
                        let path =
                            format!("/readings/moisture/drill-down?path={place}&from=-2h&to=now");
                        let r = call(&api, &caller, method, &path, "").await;
                        assert_eq!(
                            (r.status, r.body["code"].as_str()),
                            (404, Some("unknown_place")),
                            "{what} from '{place}': {}",
                            r.body
                        );
                        assert_eq!(ghost.body["code"], r.body["code"]);
                    }
                    // From their own site: its zones only, with its readings only.
                    let own = call(
                        &api,
                        &caller,
                        method,
                        "/readings/moisture/drill-down?path=site-1&from=-2h&to=now&agg=max",
                        "",
                    )
                    .await;
                    assert_eq!(own.status, 200, "{}", own.body);
                    assert_no_site_2(&what, &own.body);
                    let groups = own.body["groups"].as_array().unwrap();
                    assert_eq!(groups.len(), 2, "{}", own.body);
                    let most = groups
                        .iter()
                        .map(|g| g["value"].as_f64().unwrap())
                        .fold(f64::MIN, f64::max);
                    assert!((most - 0.2).abs() < 1e-9, "{}", own.body);
                }
                ("POST", "/devices") => {
                    let body = body_for(method, template, "", "");
                    let r = call(&api, &caller, method, template, &body).await;
                    assert_eq!(
                        (r.status, r.body["code"].as_str()),
                        (403, Some("outside_scope")),
                        "{what}: {}",
                        r.body
                    );
                }
                _ => panic!("{what}: add this route to the isolation suite"),
            }
            continue;
        }
        // An item route: aimed at site-2's device and rule, and at ones that do not exist.
        let (device, rule) = ("s2-a", "s2-dry");
        let (ghost_device, ghost_rule) = ("s9-x", "s9-rule");
        let query = if template.contains("/readings/") {
            "?from=-2h&to=now"
        } else {
            ""
        };
        let target = format!("{}{query}", concrete(template, device, rule));
        let body = body_for(method, template, device, rule);
        let r = call(&api, &caller, method, &target, &body).await;
        assert_eq!(r.status, 404, "{what} on site-2: {}", r.body);
        let ghost_target = format!("{}{query}", concrete(template, ghost_device, ghost_rule));
        let ghost_body = body_for(method, template, ghost_device, ghost_rule);
        let ghost = call(&api, &caller, method, &ghost_target, &ghost_body).await;
        if (*method, *template) == ("PUT", "/rules/{rule_id}") {
            // Rule ids are the fleet's: a free one is theirs to take, a taken one is not
            // found for them, never replaced.
            assert_eq!(ghost.status, 200, "{}", ghost.body);
            assert_eq!(r.body["code"], "unknown_rule");
            call(&api, &caller, "DELETE", "/rules/s9-rule", "").await;
            continue;
        }
        let anonymised = |v: &Value| {
            v.to_string()
                .replace(device, "ID")
                .replace(rule, "RULE")
                .replace(ghost_device, "ID")
                .replace(ghost_rule, "RULE")
        };
        assert_eq!(
            (ghost.status, anonymised(&ghost.body)),
            (r.status, anonymised(&r.body)),
            "{what}: site-2's answer differs from a missing id's"
        );
        // The rule on a site-2 device, through the device routes' rule place-holder.
        if uses_rule {
            let r = call(
                &api,
                &caller,
                method,
                &concrete(template, "s1-a", "s2-a-wet"),
                &body_for(method, template, "s1-a", "s2-a-wet"),
            )
            .await;
            assert_eq!(r.status, 404, "{what} on s2-a-wet: {}", r.body);
        }
    }
    assert_eq!(
        everything(&api).await,
        before,
        "a refused call changed the fleet"
    );
}

/// The same caller reaches all of its own site on every route, so the suite above refuses
/// site-2 for being site-2, not for being anything.
#[tokio::test]
async fn a_site_1_admin_reaches_its_own_site_on_every_route() {
    for route in ROUTES {
        let (method, template) = (&route.method, &route.path);
        let api = api().await;
        let caller = site_1(Role::Admin);
        let rule = if template.starts_with("/alerts/") {
            "s1-dry"
        } else {
            "s1-a-wet"
        };
        let query = match *template {
            t if t.contains("drill-down") => "?path=site-1&from=-2h&to=now",
            t if t.contains("/readings/") => "?from=-2h&to=now",
            _ => "",
        };
        let mut body = body_for(method, template, "s1-a", rule);
        if (*method, *template) == ("POST", "/devices") {
            body = body.replace("site-2", "site-1").replace("s2-new", "s1-new");
        }
        let path = format!("{}{query}", concrete(template, "s1-a", rule));
        if (*method, *template) == ("PUT", "/types/{device_type}") {
            // A type applies across the fleet: a site's admin is refused (the suite above).
            continue;
        }
        // Resume needs a suspended device.
        if template.ends_with("/resume") {
            call(&api, &caller, "POST", "/devices/s1-a/suspend", "").await;
        }
        if template.ends_with("/enable") {
            call(&api, &caller, "POST", "/alerts/s1-a/s1-dry/disable", "").await;
        }
        let r = call(&api, &caller, method, &path, &body).await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    }
}

/// A viewer reads their site and changes nothing, on any route; an operator acts on alerts but
/// changes no device or rule.
#[tokio::test]
async fn viewers_change_nothing_and_operators_only_alerts() {
    let api = api().await;
    let before = everything(&api).await;
    for route in ROUTES.iter().filter(|r| r.method != "GET") {
        let (method, template) = (&route.method, &route.path);
        let rule = if template.starts_with("/alerts/") {
            "s1-dry"
        } else {
            "s1-a-wet"
        };
        let path = concrete(template, "s1-a", rule);
        let mut body = body_for(method, template, "s1-a", rule);
        if (*method, *template) == ("POST", "/devices") {
            body = body.replace("site-2", "site-1");
        }
        let mut refused = vec![Role::Viewer];
        if !template.starts_with("/alerts/") && !template.ends_with("/commands") {
            refused.push(Role::Operator);
        }
        for role in refused {
            let r = call(&api, &site_1(role), method, &path, &body).await;
            assert_eq!(
                (r.status, r.body["code"].as_str()),
                (403, Some("forbidden")),
                "{method} {path} as {}: {}",
                role.as_str(),
                r.body
            );
            assert!(
                r.body["detail"].as_str().unwrap().contains("admin")
                    || r.body["detail"].as_str().unwrap().contains("operator"),
                "the refusal names the role needed: {}",
                r.body
            );
        }
    }
    assert_eq!(everything(&api).await, before);
    for route in ROUTES.iter().filter(|r| r.method == "GET") {
        let (method, template) = (&route.method, &route.path);
        let query = match *template {
            t if t.contains("drill-down") => "?path=site-1&from=-2h&to=now",
            t if t.contains("/readings/") => "?from=-2h&to=now",
            _ => "",
        };
        let path = format!("{}{query}", concrete(template, "s1-a", "s1-dry"));
        let r = call(&api, &site_1(Role::Viewer), method, &path, "").await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    }
    let ack = call(
        &api,
        &site_1(Role::Operator),
        "POST",
        "/alerts/s1-a/s1-dry/ack",
        "",
    )
    .await;
    assert_eq!(ack.status, 200, "{}", ack.body);
    let command = call(
        &api,
        &site_1(Role::Operator),
        "POST",
        "/devices/s1-a/commands",
        r#"{"desired":{"setpoint":21}}"#,
    )
    .await;
    assert_eq!(command.status, 200, "{}", command.body);
    assert_eq!(command.body["command"]["issued_by"], "site-1 operator");
}

/// A caller scoped to single devices (an owner's app) sees those devices, rules on them, and
/// no place: drill-downs need a place in scope.
#[tokio::test]
async fn a_caller_scoped_to_a_device_sees_that_device_only() {
    let api = api().await;
    let owner = Caller {
        identity: "owner".into(),
        role: Some(Role::Operator),
        access: Access {
            fleet: false,
            places: vec![],
            devices: vec!["s2-b".into()],
        },
    };
    let devices = call(&api, &owner, "GET", "/devices", "").await;
    let ids: Vec<&str> = devices.body["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["s2-b"]);
    assert_eq!(
        call(&api, &owner, "GET", "/devices/s2-a", "").await.status,
        404
    );
    let alerts = call(&api, &owner, "GET", "/alerts", "").await;
    assert!(
        alerts.body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["device_id"] == "s2-b"),
        "{}",
        alerts.body
    );
    assert_eq!(
        call(
            &api,
            &owner,
            "GET",
            "/readings/moisture/drill-down?path=site-2",
            ""
        )
        .await
        .status,
        404
    );
    assert_eq!(
        call(&api, &owner, "POST", "/alerts/s2-b/s2-dry/ack", "")
            .await
            .status,
        200
    );
    assert_eq!(
        call(&api, &owner, "POST", "/alerts/s2-a/s2-dry/ack", "")
            .await
            .status,
        404
    );
}

/// A route is role-checked however its path is spelled: empty segments and `%`-escapes reach
/// the route they decode to, and so its role check, not around it.
#[tokio::test]
async fn a_route_spelled_otherwise_is_still_role_checked() {
    let api = api().await;
    let before = everything(&api).await;
    for path in [
        "/devices//s1-a/suspend",
        "//devices/s1-a/suspend/",
        "/devices/s1-a/%73uspend",
        "/%72ules/s1-dry",
    ] {
        let method = if path.contains("ules") {
            "DELETE"
        } else {
            "POST"
        };
        let r = call(&api, &site_1(Role::Viewer), method, path, "").await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (403, Some("forbidden")),
            "{method} {path}: {}",
            r.body
        );
    }
    assert_eq!(everything(&api).await, before);
    let r = call(
        &api,
        &site_1(Role::Admin),
        "POST",
        "/devices//s1-a/%73uspend",
        "",
    )
    .await;
    assert_eq!(r.body["device"]["status"], "suspended", "{}", r.body);
}

// ---- Where role and scope come from: the claims of the configured `ApiAuth`, read exactly ----

fn claims(value: Value) -> Claims {
    value.as_object().cloned().expect("claims are an object")
}

/// The request context API Gateway (payload 2.0) hands the function for a JWT caller whose
/// verified claims are `claims` (as API Gateway flattens them: text, arrays as `[a b]`).
fn jwt_context(claims: &Claims) -> ApiGatewayV2httpRequestContext {
    let flattened: serde_json::Map<String, Value> = claims
        .iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Array(items) => format!(
                    "[{}]",
                    items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                other => other.to_string(),
            };
            (name.clone(), Value::String(text))
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "accountId": "123456789012",
        "apiId": "api-id",
        "authorizer": {"jwt": {"claims": flattened, "scopes": null}},
        "domainName": "id.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "id",
        "http": {"method": "GET", "path": "/devices", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "agent"},
        "requestId": "id",
        "routeKey": "$default",
        "stage": "$default",
        "time": "12/Mar/2020:19:03:58 +0000",
        "timeEpoch": 1583348638390i64
    }))
    .expect("the documented payload 2.0 shape")
}

/// The caller API Gateway's context gives for a token with `token_claims` under `auth`, the
/// token itself in `Authorization` as API Gateway passes it on.
fn deployed_caller(auth: ApiAuth, token_claims: &Value) -> Caller {
    let claims = claims(token_claims.clone());
    let token = unsigned_token(token_claims);
    caller_of(
        auth,
        &jwt_context(&claims),
        Some(&format!("Bearer {token}")),
    )
}

fn scope_of(caller: &Caller) -> (Option<Role>, String) {
    (caller.role, caller.access.describe())
}

#[test]
fn a_typo_in_a_group_narrows_access_and_never_widens_it() {
    let caller = deployed_caller(
        ApiAuth::Cognito,
        &serde_json::json!({
            "sub": "u-1",
            "cognito:groups": [
                "iotdp-viewer", "place:site-1", "plce:site-2", "place:site-2 ", " fleet",
                "Fleet", "iotdp-admn", "iotdp-Admin", "device:", "device:s2 a", "place:site-2/",
            ],
        }),
    );
    assert_eq!(
        scope_of(&caller),
        (Some(Role::Viewer), "place:site-1".to_owned())
    );
    let reading = read_claims(
        ApiAuth::Cognito,
        &claims(
            serde_json::json!({"cognito:groups": ["place:site-1", "plce:site-2", "place:site-2 "]}),
        ),
    );
    assert_eq!(
        reading.ignored,
        [
            Ignored::Entry {
                claim: "cognito:groups",
                entry: "plce:site-2".into()
            },
            Ignored::Entry {
                claim: "cognito:groups",
                entry: "place:site-2 ".into()
            },
        ]
    );
}

/// A group name with spaces or commas in it is one name, which is no known entry: it is not
/// split into the grants it spells, though API Gateway's flattened `[a b]` text would make
/// them look like several groups.
#[test]
fn a_group_with_spaces_or_commas_is_not_split_into_grants() {
    let token = serde_json::json!({
        "sub": "u-2",
        "cognito:groups": ["iotdp-viewer place:site-2", "place:site-1,fleet", "iotdp-admin fleet", "[fleet]"],
    });
    // Flattened, this is `[iotdp-viewer place:site-2 place:site-1,fleet iotdp-admin fleet [fleet]]`.
    let context = jwt_context(&claims(token.clone()));
    let flattened = &context
        .authorizer
        .as_ref()
        .unwrap()
        .jwt
        .as_ref()
        .unwrap()
        .claims["cognito:groups"];
    assert!(flattened.contains("iotdp-admin fleet"), "{flattened}");
    let caller = deployed_caller(ApiAuth::Cognito, &token);
    assert_eq!(scope_of(&caller), (None, "nothing".to_owned()));
    // In iotdp_scope, entries are separated by spaces (the claim's documented form) and by
    // nothing else.
    let caller = deployed_caller(
        ApiAuth::Jwt,
        &serde_json::json!({"sub": "u-3", "iotdp_role": "viewer", "iotdp_scope": "place:site-1,fleet device:s1-a\tfleet"}),
    );
    assert_eq!(
        scope_of(&caller),
        (Some(Role::Viewer), "nothing".to_owned())
    );
}

#[test]
fn the_other_modes_claims_are_ignored() {
    let both = serde_json::json!({
        "sub": "u-4",
        "cognito:groups": ["iotdp-viewer", "place:site-1"],
        "iotdp_role": "admin",
        "iotdp_scope": "fleet",
    });
    assert_eq!(
        scope_of(&deployed_caller(ApiAuth::Cognito, &both)),
        (Some(Role::Viewer), "place:site-1".to_owned())
    );
    let both = serde_json::json!({
        "sub": "u-4",
        "cognito:groups": ["iotdp-admin", "fleet"],
        "iotdp_role": "viewer",
        "iotdp_scope": "place:site-1",
    });
    assert_eq!(
        scope_of(&deployed_caller(ApiAuth::Jwt, &both)),
        (Some(Role::Viewer), "place:site-1".to_owned())
    );
    // With IAM, no JWT gives anything (an IAM-signed caller is the fleet's admin).
    assert_eq!(
        scope_of(&deployed_caller(ApiAuth::Iam, &both)),
        (None, "nothing".to_owned())
    );
    assert!(
        read_claims(ApiAuth::Cognito, &claims(both))
            .ignored
            .iter()
            .any(|i| matches!(
                i,
                Ignored::OtherModesClaim {
                    claim: "iotdp_role",
                    ..
                }
            ))
    );
}

/// API Gateway hands the groups over as `[a b]` text; they are read from the verified token's
/// own payload, and only when that payload holds what the context does.
#[test]
fn the_flattened_groups_are_read_from_the_tokens_payload() {
    let token_claims = serde_json::json!({
        "sub": "u-5",
        "cognito:username": "ana",
        "iss": "https://cognito-idp.us-east-1.amazonaws.com/pool",
        "exp": 1_764_000_000,
        "cognito:groups": ["iotdp-operator", "place:site-1", "device:s2-b"],
    });
    let context = jwt_context(&claims(token_claims.clone()));
    let token = unsigned_token(&token_claims);
    let caller = caller_of(ApiAuth::Cognito, &context, Some(&format!("Bearer {token}")));
    assert_eq!(caller.identity, "ana");
    assert_eq!(
        scope_of(&caller),
        (Some(Role::Operator), "place:site-1 device:s2-b".to_owned())
    );
    // No token, an unreadable one, or one that is not the token API Gateway verified: the
    // flattened groups give nothing (the text is not guessed at), the rest still reads.
    let other = unsigned_token(&serde_json::json!({
        "sub": "u-5",
        "cognito:username": "ana",
        "iss": "https://cognito-idp.us-east-1.amazonaws.com/pool",
        "exp": 1_764_000_000,
        "cognito:groups": ["iotdp-admin", "fleet"],
    }));
    for authorization in [None, Some("Bearer not-a-jwt"), Some(other.as_str())] {
        let caller = caller_of(ApiAuth::Cognito, &context, authorization);
        assert_eq!(caller.identity, "ana", "{authorization:?}");
        assert_eq!(
            scope_of(&caller),
            (None, "nothing".to_owned()),
            "{authorization:?}"
        );
    }
    let verified = verified_claims(
        &context
            .authorizer
            .as_ref()
            .unwrap()
            .jwt
            .as_ref()
            .unwrap()
            .claims,
        Some(&token),
    );
    assert_eq!(verified["cognito:groups"], token_claims["cognito:groups"]);
    assert_eq!(verified["exp"], 1_764_000_000);
}

#[test]
fn valid_entries_still_give_their_role_and_scope() {
    let cognito = deployed_caller(
        ApiAuth::Cognito,
        &serde_json::json!({"sub": "u-6", "cognito:groups": ["iotdp-viewer", "iotdp-admin", "fleet", "other-app"]}),
    );
    assert_eq!(scope_of(&cognito), (Some(Role::Admin), "fleet".to_owned()));
    let scoped = deployed_caller(
        ApiAuth::Cognito,
        &serde_json::json!({"sub": "u-7", "cognito:groups": ["iotdp-operator", "place:site-1/zone-a", "device:s2-b"]}),
    );
    assert_eq!(
        scope_of(&scoped),
        (
            Some(Role::Operator),
            "place:site-1/zone-a device:s2-b".to_owned()
        )
    );
    let jwt = deployed_caller(
        ApiAuth::Jwt,
        &serde_json::json!({"sub": "u-8", "iotdp_role": "operator", "iotdp_scope": "place:site-1 device:s2-b iotdp-admin"}),
    );
    assert_eq!(
        scope_of(&jwt),
        (Some(Role::Admin), "place:site-1 device:s2-b".to_owned())
    );
    let jwt_array = deployed_caller(
        ApiAuth::Jwt,
        &serde_json::json!({"sub": "u-9", "iotdp_role": "viewer", "iotdp_scope": ["place:site-1", "device:s2-b"]}),
    );
    assert_eq!(
        scope_of(&jwt_array),
        (Some(Role::Viewer), "place:site-1 device:s2-b".to_owned())
    );
}

/// One HTTP adapter for both front ends: a request through [`HttpApi::answer`] as the local
/// server sends it (no token: the local admin; a bearer token: its claims, unverified, under
/// the mode) and as API Gateway does.
#[tokio::test]
async fn the_http_adapter_answers_each_caller_as_its_mode_reads_them() {
    let answer = |auth: ApiAuth, authorization: Option<String>, authority: &'static str| async move {
        let api = HttpApi {
            api: api().await,
            auth,
        };
        let mut request = http::Request::builder()
            .method("GET")
            .uri("/devices?limit=10");
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let request = request.body(Vec::<u8>::new()).unwrap();
        let context = authorization
            .as_deref()
            .and_then(|value| token_payload(value.trim_start_matches("Bearer ")))
            .map(|claims| jwt_context(&claims));
        let authority = match authority {
            "local" => Authority::LocalUnverified,
            _ => Authority::ApiGateway(context.as_ref()),
        };
        let response = api.answer(&request, authority, None, T0).await;
        let body: Value = serde_json::from_str(response.body()).unwrap();
        let ids: Vec<String> = body["devices"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|d| d["device_id"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        (response.status().as_u16(), ids)
    };
    let bearer = |claims: Value| Some(format!("Bearer {}", unsigned_token(&claims)));
    let all = ["s1-a", "s1-b", "s2-a", "s2-b"].map(str::to_owned).to_vec();
    let site_1 = ["s1-a", "s1-b"].map(str::to_owned).to_vec();
    let groups =
        serde_json::json!({"sub": "v", "cognito:groups": ["iotdp-viewer", "place:site-1"]});
    let custom =
        serde_json::json!({"sub": "v", "iotdp_role": "viewer", "iotdp_scope": "place:site-1"});
    // Locally: no token is the admin; with the default `iam` a token is read as a user
    // pool's; with `jwt`, as your provider's.
    assert_eq!(
        answer(ApiAuth::Iam, None, "local").await,
        (200, all.clone())
    );
    assert_eq!(
        answer(ApiAuth::Iam, bearer(groups.clone()), "local").await,
        (200, site_1.clone())
    );
    assert_eq!(
        answer(ApiAuth::Cognito, bearer(groups.clone()), "local").await,
        (200, site_1.clone())
    );
    assert_eq!(
        answer(ApiAuth::Jwt, bearer(groups.clone()), "local")
            .await
            .0,
        403
    );
    assert_eq!(
        answer(ApiAuth::Jwt, bearer(custom.clone()), "local").await,
        (200, site_1.clone())
    );
    assert_eq!(
        answer(ApiAuth::Iam, Some("Bearer garbage".into()), "local")
            .await
            .0,
        403
    );
    // Deployed: API Gateway's context, and the token it verified.
    assert_eq!(
        answer(ApiAuth::Cognito, bearer(groups.clone()), "apigw").await,
        (200, site_1.clone())
    );
    assert_eq!(
        answer(ApiAuth::Cognito, bearer(custom.clone()), "apigw")
            .await
            .0,
        403
    );
    assert_eq!(
        answer(ApiAuth::Jwt, bearer(custom), "apigw").await,
        (200, site_1)
    );
    assert_eq!(answer(ApiAuth::Iam, bearer(groups), "apigw").await.0, 403);
    assert_eq!(
        answer(ApiAuth::Cognito, None, "apigw").await.0,
        403,
        "no context, no caller"
    );
}

/// The console's page is answered before any authorization, by the same adapter.
#[tokio::test]
async fn the_console_is_served_before_authorization() {
    let api = HttpApi {
        api: api().await,
        auth: ApiAuth::Cognito,
    };
    let request = http::Request::builder()
        .method("GET")
        .uri("/console/config.json")
        .body(Vec::<u8>::new())
        .unwrap();
    let response = api
        .answer(&request, Authority::ApiGateway(None), None, T0)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), r#"{"sign_in":null}"#);
}
