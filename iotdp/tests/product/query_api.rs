//! The query API's use cases on the in-memory registry and reference reader: routes, pages that
//! never truncate, problem documents for every user mistake (never a 500).

use std::sync::Arc;

use iotdp::alerting::event::AlarmState;
use iotdp::alerting::ports::{AlertKey, AlertStateStore};
use iotdp::alerting::rule::AlertRule;
use iotdp::alerting::state_machine::AlertState;
use iotdp::api::access::Caller;
use iotdp::api::{ApiRequest, ApiResponse, QueryApi};
use iotdp::devices::record::{DeviceRecord, DeviceStatus};
use iotdp::domain::LocationPath;
use iotdp::domain::{MetricValue, Reading};
use iotdp::ingest::ports::TimeSeriesStore;
use iotdp_memory::{MemoryAlertStates, MemoryRegistry, MemoryRules, MemoryStore};
use serde_json::Value;

const T0: i64 = 1_764_000_000_000; // 2025-11-24T16:00:00Z

type Api =
    QueryApi<Arc<MemoryRegistry>, Arc<MemoryStore>, Arc<MemoryAlertStates>, Arc<MemoryRules>>;

fn device(id: &str, kind: &str, path: &str) -> DeviceRecord {
    let mut r = DeviceRecord::new(id, kind, T0);
    r.path = LocationPath::parse(path).unwrap();
    r
}

fn reading(id: &str, kind: &str, path: &str, time_ms: i64, metric: &str, value: f64) -> Reading {
    Reading::new(id, time_ms, [(metric, MetricValue::Number(value))])
        .with_version(T0)
        .with_place(kind, LocationPath::parse(path).unwrap())
}

async fn api() -> Api {
    let mut old = device("old-1", "thermostat", "home-1");
    old.status = DeviceStatus::Decommissioned;
    let registry = Arc::new(MemoryRegistry::with([
        device("ac-1", "thermostat", "home-7"),
        device("spot-1", "plant-sensor", "wall-1/zone-a/s1/spot-1"),
        device("spot-2", "plant-sensor", "wall-1/zone-a/s1/spot-2"),
        device("spot-3", "plant-sensor", "wall-1/zone-b/s1/spot-3"),
        old,
    ]));
    let store = Arc::new(MemoryStore::new(1000));
    // ac-1: 25 readings, one every 10 s, 20.0, 20.1, …
    let mut readings: Vec<Reading> = (0..25)
        .map(|i| {
            reading(
                "ac-1",
                "thermostat",
                "home-7",
                T0 + i * 10_000,
                "temperature",
                20.0 + i as f64 / 10.0,
            )
        })
        .collect();
    for (i, (spot, zone, m)) in [
        ("spot-1", "zone-a", 0.2),
        ("spot-2", "zone-a", 0.4),
        ("spot-3", "zone-b", 0.6),
    ]
    .into_iter()
    .enumerate()
    {
        readings.push(reading(
            spot,
            "plant-sensor",
            &format!("wall-1/{zone}/s1/{spot}"),
            T0 + i as i64,
            "moisture",
            m,
        ));
    }
    store.write(&readings).await.unwrap();
    let rules = Arc::new(MemoryRules::new(vec![AlertRule::from_json(HOT).unwrap()]));
    let states = Arc::new(MemoryAlertStates::default());
    let alarm = AlertState {
        state: AlarmState::Alarm,
        version: 1,
        alarm_since_ms: Some(T0),
        last_measured: Some(29.5),
        ..Default::default()
    };
    for device in ["ac-1", "ac-2"] {
        let key = AlertKey {
            device_id: device.into(),
            rule_id: "too-hot".into(),
        };
        states.put_if_version(&key, &alarm, 0).await.unwrap();
    }
    QueryApi::new(registry, store, states, rules)
}

const HOT: &str = r#"{"rule_id":"too-hot","name":"Room too hot","scope":"all","metric":"temperature","condition":{"above":28},"clear":26,"severity":"warning"}"#;

async fn send(api: &Api, method: &str, path: &str, body: &str) -> ApiResponse {
    api.handle(
        &ApiRequest {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            body: body.as_bytes().to_vec(),
        },
        &Caller::admin("test"),
        T0,
    )
    .await
}

/// Device types are put in versions with the CLI's checks, read back, and changed only by an
/// admin whose scope is the whole fleet.
#[tokio::test]
async fn device_types_are_put_in_versions_with_the_same_checks_as_the_cli() {
    let api = api().await;
    let battery = r#"{"device_type":"battery-box","metrics":["voltage","current"],"derived":[{"name":"power_w","expression":"voltage * current"}]}"#;
    let first = send(&api, "PUT", "/types/battery-box", battery).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["type"]["version"], 1);
    let second = send(&api, "PUT", "/types/battery-box", battery).await;
    assert_eq!(second.body["type"]["version"], 2);
    let shown = get(&api, "/types/battery-box").await;
    assert_eq!(shown["type"]["derived"][0]["name"], "power_w");
    assert_eq!(shown["type"]["version"], 2);
    assert_eq!(
        get(&api, "/types").await["types"].as_array().unwrap().len(),
        1
    );
    let unknown = send(&api, "GET", "/types/thermostat", "").await;
    assert_eq!(
        (unknown.status, unknown.body["code"].as_str()),
        (404, Some("unknown_device_type"))
    );
    let bad = send(
        &api,
        "PUT",
        "/types/battery-box",
        &battery.replace("voltage * current", "voltage * amps"),
    )
    .await;
    assert_eq!(
        (bad.status, bad.body["code"].as_str()),
        (422, Some("invalid_device_type"))
    );
    let detail = bad.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("derived[0].expression") && detail.contains("'amps'"),
        "{detail}"
    );
    let not_a_type = send(
        &api,
        "PUT",
        "/types/battery-box",
        r#"{"device_type":"battery-box"}"#,
    )
    .await;
    assert_eq!(not_a_type.status, 400, "{}", not_a_type.body);
    let mismatch = send(&api, "PUT", "/types/other", battery).await;
    assert_eq!(mismatch.status, 422);
    // A site's admin may not change what every battery box of the fleet computes.
    let mut site_admin = Caller::admin("site-admin");
    site_admin.access = iotdp::api::access::Access {
        fleet: false,
        places: vec![iotdp::domain::LocationPath::parse("site-1").unwrap()],
        devices: Vec::new(),
    };
    let scoped = api
        .handle(
            &ApiRequest {
                method: "PUT".into(),
                path: "/types/battery-box".into(),
                query: String::new(),
                body: battery.as_bytes().to_vec(),
            },
            &site_admin,
            T0,
        )
        .await;
    assert_eq!(
        (scoped.status, scoped.body["code"].as_str()),
        (403, Some("outside_scope"))
    );
    assert_eq!(get(&api, "/types/battery-box").await["type"]["version"], 2);
}

#[tokio::test]
async fn rules_are_managed_with_the_same_validation_as_the_cli() {
    let api = api().await;
    let cold = r#"{"rule_id":"too-cold","name":"Room too cold","scope":"all","metric":"temperature","condition":{"below":16},"severity":"info"}"#;
    let r = send(&api, "PUT", "/rules/too-cold", cold).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ids: Vec<String> = get(&api, "/rules").await["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["too-cold", "too-hot"]);
    let bad = send(
        &api,
        "PUT",
        "/rules/too-cold",
        &cold.replace("16", "\"chilly\""),
    )
    .await;
    assert_eq!(
        (bad.status, bad.body["code"].as_str()),
        (400, Some("invalid_rule"))
    );
    assert!(
        bad.body["detail"]
            .as_str()
            .unwrap()
            .contains("condition.below")
    );
    let mismatch = send(&api, "PUT", "/rules/other", cold).await;
    assert_eq!(mismatch.status, 422);
    assert_eq!(
        send(&api, "DELETE", "/rules/too-cold", "").await.status,
        200
    );
    let gone = send(&api, "DELETE", "/rules/too-cold", "").await;
    assert_eq!(
        (gone.status, gone.body["code"].as_str()),
        (404, Some("unknown_rule"))
    );
}

#[tokio::test]
async fn alerts_are_listed_filtered_and_acknowledged() {
    let api = api().await;
    let alerts = get(&api, "/alerts?state=ALARM&severity=warning").await;
    let devices: Vec<&str> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(devices, ["ac-1", "ac-2"]);
    assert_eq!(alerts["alerts"][0]["last_value"], 29.5);
    let first = get(&api, "/alerts?limit=1").await;
    let next = first["next"].as_str().unwrap().to_owned();
    let second = get(&api, &format!("/alerts?limit=1&cursor={next}")).await;
    assert_eq!(second["alerts"][0]["device_id"], "ac-2");
    assert!(
        get(&api, "/alerts?severity=critical").await["alerts"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let ack = send(&api, "POST", "/alerts/ac-1/too-hot/ack", "").await;
    assert_eq!(
        (ack.status, ack.body["state"].as_str()),
        (200, Some("ACKNOWLEDGED"))
    );
    let again = send(&api, "POST", "/alerts/ac-1/too-hot/ack", "").await;
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (409, Some("not_in_alarm"))
    );
    let none = send(&api, "POST", "/alerts/ac-9/too-hot/ack", "").await;
    assert_eq!(
        (none.status, none.body["code"].as_str()),
        (404, Some("unknown_alert"))
    );
    let remaining = get(&api, "/alerts?state=ALARM").await;
    assert_eq!(remaining["alerts"].as_array().unwrap().len(), 1);
}

/// Snooze, disable, enable and reset through the API, each conditional on the version the
/// caller read when it names one, each refused with the code that says why.
#[tokio::test]
async fn operators_snooze_disable_enable_and_reset_alerts_conditionally_on_their_version() {
    let api = api().await;
    let listed = get(&api, "/alerts?device=ac-1").await;
    let version = listed["alerts"][0]["version"].as_u64().unwrap();
    assert_eq!(version, 1);

    let stale = send(
        &api,
        "POST",
        "/alerts/ac-1/too-hot/disable",
        r#"{"version":0}"#,
    )
    .await;
    assert_eq!(
        (stale.status, stale.body["code"].as_str()),
        (409, Some("stale_version"))
    );
    assert!(
        stale.body["detail"]
            .as_str()
            .unwrap()
            .contains("version 1, not 0"),
        "{}",
        stale.body
    );

    let snoozed = send(
        &api,
        "POST",
        "/alerts/ac-1/too-hot/snooze",
        r#"{"for_seconds":7200,"version":1}"#,
    )
    .await;
    assert_eq!(snoozed.status, 200, "{}", snoozed.body);
    assert_eq!(snoozed.body["state"], "ALARM");
    assert_eq!(snoozed.body["version"], 2);
    assert_eq!(
        snoozed.body["snoozed_until"],
        iotdp::api::params::rfc3339(T0 + 7_200_000)
    );
    for (body, status) in [
        (r#"{"until":"2020-01-01T00:00:00Z"}"#, 422),
        (r#"{"for_seconds":99999999}"#, 422),
        (r#"{"until":"2026-01-01T00:00:00Z","for_seconds":60}"#, 400),
        ("", 400),
        (r#"{"until":"soon"}"#, 400),
        (r#"{"for_seconds":null}"#, 400),
        (r#"{"for_seconds":60,"version":null}"#, 400),
    ] {
        let refused = send(&api, "POST", "/alerts/ac-1/too-hot/snooze", body).await;
        assert_eq!(refused.status, status, "{body}: {}", refused.body);
        assert!(refused.problem);
    }

    let disabled = send(&api, "POST", "/alerts/ac-1/too-hot/disable", "").await;
    assert_eq!(
        (disabled.status, disabled.body["state"].as_str()),
        (200, Some("DISABLED"))
    );
    for action in ["disable", "reset", "snooze"] {
        let body = if action == "snooze" {
            r#"{"for_seconds":60}"#
        } else {
            ""
        };
        let refused = send(
            &api,
            "POST",
            &format!("/alerts/ac-1/too-hot/{action}"),
            body,
        )
        .await;
        assert_eq!(
            (refused.status, refused.body["code"].as_str()),
            (409, Some("wrong_alert_state")),
            "{action}: {}",
            refused.body
        );
    }
    let listed = get(&api, "/alerts?state=DISABLED").await;
    assert_eq!(listed["alerts"][0]["device_id"], "ac-1");
    let enabled = send(&api, "POST", "/alerts/ac-1/too-hot/enable", "").await;
    assert_eq!(
        (enabled.status, enabled.body["state"].as_str()),
        (200, Some("OK"))
    );
    let again = send(&api, "POST", "/alerts/ac-1/too-hot/enable", "").await;
    assert_eq!(again.body["code"], "wrong_alert_state");

    let reset = send(&api, "POST", "/alerts/ac-2/too-hot/reset", "").await;
    assert_eq!(
        (reset.status, reset.body["state"].as_str()),
        (200, Some("OK"))
    );

    // A pair never evaluated may be disabled, for a real device and rule only.
    let fresh = send(&api, "POST", "/alerts/spot-1/too-hot/disable", "").await;
    assert_eq!(
        (fresh.status, fresh.body["state"].as_str()),
        (200, Some("DISABLED"))
    );
    let no_rule = send(&api, "POST", "/alerts/spot-1/no-such-rule/disable", "").await;
    assert_eq!(
        (no_rule.status, no_rule.body["code"].as_str()),
        (404, Some("unknown_rule"))
    );
    let no_device = send(&api, "POST", "/alerts/ghost/too-hot/disable", "").await;
    assert_eq!(
        (no_device.status, no_device.body["code"].as_str()),
        (404, Some("unknown_device"))
    );
    let no_state = send(&api, "POST", "/alerts/spot-2/too-hot/reset", "").await;
    assert_eq!(
        (no_state.status, no_state.body["code"].as_str()),
        (404, Some("unknown_alert"))
    );
}

async fn call(api: &Api, method: &str, path_and_query: &str) -> ApiResponse {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    api.handle(
        &ApiRequest {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            body: vec![],
        },
        &Caller::admin("test"),
        T0 + 3_600_000,
    )
    .await
}

async fn get(api: &Api, path_and_query: &str) -> Value {
    let response = call(api, "GET", path_and_query).await;
    assert_eq!(response.status, 200, "{path_and_query}: {}", response.body);
    response.body
}

#[tokio::test]
async fn a_long_range_comes_back_in_pages_not_truncated() {
    let api = api().await;
    let base = "/devices/ac-1/readings/temperature?from=2025-11-24T16:00:00Z&to=2025-11-24T17:00:00Z&limit=10";
    let mut all = Vec::new();
    let mut url = base.to_owned();
    let mut pages = 0;
    loop {
        let page = get(&api, &url).await;
        pages += 1;
        all.extend(
            page["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["value"].as_f64().unwrap()),
        );
        match page["next"].as_str() {
            Some(next) => url = format!("{base}&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(all.len(), 25);
    assert_eq!(all.first(), Some(&20.0));
    assert!((all[24] - 22.4).abs() < 1e-9);
}

#[tokio::test]
async fn readings_are_aggregated_into_bins() {
    let api = api().await;
    let page = get(&api, "/devices/ac-1/readings/temperature?from=2025-11-24T16:00:00Z&to=2025-11-24T16:05:00Z&bin=1m&agg=max").await;
    let points: Vec<(String, f64)> = page["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["time"].as_str().unwrap().to_owned(),
                (p["value"].as_f64().unwrap() * 10.0).round() / 10.0,
            )
        })
        .collect();
    assert_eq!(
        points,
        [
            ("2025-11-24T16:00:00.000Z".into(), 20.5),
            ("2025-11-24T16:01:00.000Z".into(), 21.1),
            ("2025-11-24T16:02:00.000Z".into(), 21.7),
            ("2025-11-24T16:03:00.000Z".into(), 22.3),
            ("2025-11-24T16:04:00.000Z".into(), 22.4),
        ]
    );
    assert_eq!(page["bin_seconds"], 60);
    assert_eq!(page["agg"], "max");
}

#[tokio::test]
async fn fleet_latest_and_drill_down() {
    let api = api().await;
    let latest = get(
        &api,
        "/readings/moisture/latest?type=plant-sensor&path=wall-1/zone-a",
    )
    .await;
    let ids: Vec<&str> = latest["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["spot-1", "spot-2"]);
    let zones = get(
        &api,
        "/readings/moisture/drill-down?path=wall-1&from=2025-11-24T15:00:00Z&agg=avg",
    )
    .await;
    assert_eq!(zones["level"], "zone");
    let groups: Vec<(String, i64)> = zones["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                (g["value"].as_f64().unwrap() * 100.0).round() as i64,
            )
        })
        .collect();
    assert_eq!(groups, [("zone-a".into(), 30), ("zone-b".into(), 60)]);
}

#[tokio::test]
async fn devices_are_listed_filtered_paginated_and_shown_with_latest_values() {
    let api = api().await;
    let first = get(&api, "/devices?type=plant-sensor&limit=2").await;
    let ids = |page: &Value| -> Vec<String> {
        page["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["device_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&first), ["spot-1", "spot-2"]);
    let next = first["next"].as_str().unwrap();
    let second = get(
        &api,
        &format!("/devices?type=plant-sensor&limit=2&cursor={next}"),
    )
    .await;
    assert_eq!(ids(&second), ["spot-3"]);
    assert!(second["next"].is_null());
    assert_eq!(
        ids(&get(&api, "/devices?status=decommissioned").await),
        ["old-1"]
    );
    assert_eq!(
        ids(&get(&api, "/devices?path=wall-1/zone-b").await),
        ["spot-3"]
    );

    let shown = get(&api, "/devices/ac-1?metrics=temperature,humidity").await;
    assert_eq!(shown["device"]["device_type"], "thermostat");
    assert!((shown["latest"]["temperature"]["value"].as_f64().unwrap() - 22.4).abs() < 1e-9);
    assert!(shown["latest"].get("humidity").is_none());
    let open: Vec<&str> = shown["open_alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(open, ["too-hot"]);
    assert!(
        get(&api, "/devices/spot-1").await["open_alerts"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn devices_are_registered_and_redefined_through_the_api() {
    let api = api().await;
    let body = r#"{"device_id":"spot-9","device_type":"plant-sensor","path":"wall-1/zone-b/s2/spot-9","gateway_id":"gw-1","heartbeat_seconds":21600,"tags":{"plant":"fern"}}"#;
    let r = send(&api, "POST", "/devices", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["device"]["path"], "wall-1/zone-b/s2/spot-9");
    let again = send(&api, "POST", "/devices", body).await;
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (409, Some("device_exists"))
    );
    let moved = send(
        &api,
        "PUT",
        "/devices/spot-9",
        &body
            .replace("s2/spot-9", "s3/spot-9")
            .replace("fern", "moss"),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.body["device"]["path"], "wall-1/zone-b/s3/spot-9");
    assert_eq!(moved.body["device"]["tags"]["plant"], "moss");
    let bad = send(
        &api,
        "POST",
        "/devices",
        r#"{"device_id":"x","device_type":"t","heartbeat_seconds":5}"#,
    )
    .await;
    assert_eq!(
        (bad.status, bad.body["code"].as_str()),
        (400, Some("invalid_device"))
    );
    assert!(
        bad.body["detail"]
            .as_str()
            .unwrap()
            .contains("heartbeat_seconds")
    );
    let unknown_field = send(
        &api,
        "POST",
        "/devices",
        r#"{"device_id":"x","device_type":"t","colour":"red"}"#,
    )
    .await;
    assert_eq!(unknown_field.status, 400);
    assert!(
        unknown_field.body["detail"]
            .as_str()
            .unwrap()
            .contains("colour")
    );
}

#[tokio::test]
async fn suspend_and_resume_through_the_api() {
    let api = api().await;
    let r = call(&api, "POST", "/devices/ac-1/suspend").await;
    assert_eq!(
        (r.status, r.body["device"]["status"].as_str()),
        (200, Some("suspended"))
    );
    let r = call(&api, "POST", "/devices/ac-1/resume").await;
    assert_eq!(r.body["device"]["status"], "active");
    let r = call(&api, "POST", "/devices/old-1/resume").await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("device_decommissioned"))
    );
}

/// A 405 says which methods the path takes (RFC 9110's `Allow`), over HTTP too.
#[tokio::test]
async fn a_method_not_allowed_names_the_methods_that_are() {
    let api = api().await;
    for (method, path, allow) in [
        ("TRACE", "/devices", "GET, POST"),
        ("DELETE", "/devices/ac-1", "GET, PUT"),
        ("GET", "/rules/too-hot", "PUT, DELETE"),
        ("PATCH", "/alerts/ac-1/too-hot/ack", "POST"),
    ] {
        let response = call(&api, method, path).await;
        assert_eq!(response.status, 405, "{method} {path}");
        assert_eq!(response.allow.as_deref(), Some(allow), "{method} {path}");
        let http = iotdp::api::http_adapter::http_response(&response);
        assert_eq!(http.headers()["allow"], allow);
    }
    assert_eq!(call(&api, "GET", "/devices").await.allow, None);
}

/// Every user mistake is a problem document with a stable code and a fix, never a 500.
#[tokio::test]
async fn mistakes_are_problem_documents_that_say_what_to_fix() {
    let api = api().await;
    let cases = [
        (
            "GET",
            "/devices/nobody/readings/temperature",
            404,
            "unknown_device",
            "nobody",
        ),
        (
            "GET",
            "/devices/ac-1/readings/temperature?bin=7x",
            400,
            "invalid_parameter",
            "bin",
        ),
        (
            "GET",
            "/devices/ac-1/readings/temperature?bin=2d",
            400,
            "invalid_parameter",
            "1d",
        ),
        (
            "GET",
            "/devices/ac-1/readings/temperature?bin=1m&agg=median",
            400,
            "invalid_parameter",
            "agg",
        ),
        (
            "GET",
            "/devices/ac-1/readings/temperature?agg=max",
            422,
            "invalid_parameter",
            "bin",
        ),
        (
            "GET",
            "/devices/ac-1/readings/temperature?from=yesterday",
            400,
            "invalid_parameter",
            "RFC 3339",
        ),
        (
            "GET",
            "/devices/ac-1/readings/temperature?from=2025-11-25T00:00:00Z&to=2025-11-24T00:00:00Z",
            422,
            "invalid_parameter",
            "before",
        ),
        (
            "GET",
            "/devices/ac-1/readings/temperature?limit=0",
            400,
            "invalid_parameter",
            "limit",
        ),
        (
            "GET",
            "/devices/ac-1/readings/temperature?cursor=abc",
            422,
            "invalid_parameter",
            "cursor",
        ),
        (
            "GET",
            "/devices/ac-1/readings/temperature%22)%20OR%201%3D1",
            400,
            "invalid_parameter",
            "metric",
        ),
        (
            "GET",
            "/devices/ac-1'%20OR%20'1'='1/readings/temperature",
            400,
            "invalid_parameter",
            "device id",
        ),
        (
            "GET",
            "/readings/moisture/drill-down?path=a/b/c/d",
            400,
            "invalid_parameter",
            "spot",
        ),
        (
            "GET",
            "/readings/moisture/latest?path=a%20b",
            400,
            "invalid_parameter",
            "path",
        ),
        (
            "GET",
            "/devices?status=asleep",
            400,
            "invalid_parameter",
            "status",
        ),
        (
            "GET",
            "/devices?limit=1&limit=2",
            400,
            "invalid_parameter",
            "twice",
        ),
        (
            "DELETE",
            "/devices/ac-1/readings/temperature",
            405,
            "method_not_allowed",
            "DELETE",
        ),
        ("GET", "/nowhere", 404, "no_such_route", "openapi"),
        // A value with a format or a set of values is refused empty, not read as absent.
        (
            "GET",
            "/alerts?severity=",
            400,
            "invalid_parameter",
            "empty",
        ),
        ("GET", "/alerts?state=ok", 400, "invalid_parameter", "ALARM"),
        ("GET", "/devices?status=", 400, "invalid_parameter", "empty"),
        (
            "GET",
            "/devices/ac-1/readings/temperature?to=",
            400,
            "invalid_parameter",
            "empty",
        ),
        (
            "GET",
            "/devices/ac-1/readings/temperature?from=-99999999999",
            400,
            "invalid_parameter",
            "RFC 3339",
        ),
        (
            "GET",
            "/devices?path=wall-1/",
            400,
            "invalid_parameter",
            "trailing",
        ),
        (
            "GET",
            "/devices/ac-1?metrics=temperature,,humidity",
            400,
            "invalid_parameter",
            "metric",
        ),
    ];
    for (method, url, status, code, hint) in cases {
        let r = call(&api, method, url).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (status, Some(code)),
            "{method} {url}: {}",
            r.body
        );
        assert!(r.problem && r.content_type() == "application/problem+json");
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.contains(hint), "{url}: {detail}");
    }
}

/// Serde reads a struct from a JSON array as readily as from an object: a body that is not an
/// object is refused on every route, before any handler reads it.
#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused_on_every_route() {
    let api = api().await;
    for (method, path, body) in [
        ("POST", "/alerts/ac-1/too-hot/reset", "[]"),
        ("POST", "/devices", r#"["ac-9", "thermostat"]"#),
        ("POST", "/devices/ac-1/commands", r#"[{"setpoint": 21}]"#),
        ("PUT", "/rules/too-hot", " 7"),
    ] {
        let response = send(&api, method, path, body).await;
        assert_eq!(
            (response.status, response.body["code"].as_str()),
            (400, Some("invalid_parameter")),
            "{method} {path} {body}: {}",
            response.body
        );
        assert!(
            response.body["detail"]
                .as_str()
                .unwrap()
                .contains("JSON object")
        );
    }
    // An empty body is still the default action.
    let reset = send(&api, "POST", "/alerts/ac-1/too-hot/reset", "").await;
    assert_ne!(reset.status, 400, "{}", reset.body);
}
