//! Tenant isolation through the query API, route by route: a caller scoped to `site-1` gets
//! nothing of `site-2` (no record, reading, alert, rule, command or shadow, not through a cursor, a drill-down or
//! a fleet-wide list), cannot change anything there, and cannot tell a `site-2` id from one that
//! does not exist; a viewer changes nothing anywhere. Every route in [`ROUTES`] is exercised, so
//! a new route without a case here fails the suite.

use std::sync::Arc;

use iotdp::alerting::event::AlarmState;
use iotdp::alerting::ports::{AlertKey, AlertStateStore};
use iotdp::alerting::rule::AlertRule;
use iotdp::alerting::state_machine::AlertState;
use iotdp::api::access::{Access, Caller, Role};
use iotdp::api::{ApiRequest, ApiResponse, QueryApi, ROUTES};
use iotdp::commands::command::{CommandRequest, CommandSource};
use iotdp::commands::service::Commands;
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
fn concrete(template: &str, device: &str, rule: &str) -> String {
    template
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
    for (method, template) in ROUTES {
        let what = format!("{method} {template}");
        let uses_device = template.contains("{device_id}");
        let uses_rule = template.contains("{rule_id}");
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
    for (method, template) in ROUTES {
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
    for (method, template) in ROUTES.iter().filter(|(m, _)| *m != "GET") {
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
    for (method, template) in ROUTES.iter().filter(|(m, _)| *m == "GET") {
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
