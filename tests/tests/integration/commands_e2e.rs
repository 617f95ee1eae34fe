//! Commands end to end in `make local`'s platform, over real MQTT: a command issued through
//! the query API reaches a simulated thermostat as a shadow delta, the thermostat applies it
//! and reports, and the command becomes `delivered` (learnt from the shadow's
//! `update/documents` through the topic rule, the queue and the commands function); a command
//! to an offline device is delivered when it reconnects; an expired one is taken back and never
//! applies; the same idempotency key twice is one command.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iotdp::devices::ports::DeviceRegistry;
use iotdp_integration_tests::{http_call, local_options};
use iotdp_local::platform::LocalPlatform;
use iotdp_local::shadow_client::{DeviceEvent, report, run_device};
use iotdp_simulator::{Fleet, FleetConfig};
use rumqttc::{AsyncClient, MqttOptions};
use serde_json::{Value, json};

/// Device `index` of `fleet` on the local broker, following its shadow as `iotdp simulate`
/// runs it: it applies what it is asked through the fleet model and reports back.
fn connect(fleet: &Arc<Mutex<Fleet>>, index: usize, port: u16) -> AsyncClient {
    let id = fleet.lock().unwrap().devices[index].id.clone();
    let mut options = MqttOptions::new(&id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, eventloop) = AsyncClient::new(options, 100);
    let (asked, mut asks) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(run_device(
        eventloop,
        client.clone(),
        id.clone(),
        true,
        move |event| {
            if let DeviceEvent::Asked(desired) = event {
                let _ = asked.send(desired);
            }
        },
    ));
    let (fleet, reporter) = (fleet.clone(), client.clone());
    tokio::spawn(async move {
        while let Some(desired) = asks.recv().await {
            let reported = fleet.lock().unwrap().apply_desired(index, &desired);
            if let Some(reported) = reported {
                report(&reporter, &id, &reported).await.unwrap();
            }
        }
    });
    client
}

async fn api(platform: &LocalPlatform, method: &str, path: &str, body: &str) -> (u16, Value) {
    let addr = platform.api_addr.expect("the local API runs");
    let (method, path, body) = (method.to_owned(), path.to_owned(), body.to_owned());
    let (status, text) =
        tokio::task::spawn_blocking(move || http_call(addr, &method, &path, &body))
            .await
            .unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Poll the command until it leaves `pending`, for up to 30 s.
async fn settled(platform: &LocalPlatform, device: &str, command: &str) -> Value {
    for _ in 0..120 {
        let (status, body) = api(
            platform,
            "GET",
            &format!("/devices/{device}/commands/{command}"),
            "",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if body["command"]["status"] != "pending" {
            return body["command"].clone();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("command {command} to {device} still pending after 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_simulated_devices_and_come_back_delivered() {
    let platform = LocalPlatform::start(local_options("iotdp-commands", None))
        .await
        .expect("local platform starts");
    let port = platform.mqtt_addr.port();
    let fleet = Arc::new(Mutex::new(Fleet::new(FleetConfig {
        devices: 5,
        seed: 1,
        faulty_rate: 0.0,
    })));
    let registry = iotdp::wiring::device_registry(
        &platform.sdk,
        platform.physical("DeviceRegistryTable").unwrap(),
    );
    let records = fleet
        .lock()
        .unwrap()
        .registry_records(chrono::Utc::now().timestamp_millis());
    for record in records {
        registry.create(&record).await.unwrap();
    }
    let (online, offline, battery) = ("ac-0000", "ac-0004", "battery-0001");

    // Online: the delta reaches the thermostat, it applies the setpoint and reports it.
    let thermostat = connect(&fleet, 0, port);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let body = r#"{"desired":{"setpoint":19.5,"mode":"comfort"},"idempotency_key":"e2e-1"}"#;
    let (status, issued) = api(
        &platform,
        "POST",
        &format!("/devices/{online}/commands"),
        body,
    )
    .await;
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["command"]["status"], "pending");
    let delivered = settled(&platform, online, "e2e-1").await;
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    assert_eq!(fleet.lock().unwrap().devices[0].setpoint, 19.5);
    assert_eq!(fleet.lock().unwrap().devices[0].mode, "comfort");
    let (_, shadow) = api(&platform, "GET", &format!("/devices/{online}/shadow"), "").await;
    assert_eq!(
        shadow["reported"],
        json!({"setpoint": 19.5, "mode": "comfort"})
    );
    assert_eq!(shadow["delta"], json!({}));

    // The same idempotency key again: the same command, not a second one.
    let (status, again) = api(
        &platform,
        "POST",
        &format!("/devices/{online}/commands"),
        body,
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["command"]["command_id"], "e2e-1");
    assert_eq!(again["command"]["status"], "delivered");
    let (_, history) = api(&platform, "GET", &format!("/devices/{online}/commands"), "").await;
    assert_eq!(
        history["commands"].as_array().unwrap().len(),
        1,
        "{history}"
    );

    // Offline: pending while it is away, delivered once it reconnects and asks for its shadow.
    let (status, issued) = api(
        &platform,
        "POST",
        &format!("/devices/{offline}/commands"),
        r#"{"desired":{"setpoint":23},"idempotency_key":"e2e-2"}"#,
    )
    .await;
    assert_eq!(status, 200, "{issued}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, waiting) = api(
        &platform,
        "GET",
        &format!("/devices/{offline}/commands/e2e-2"),
        "",
    )
    .await;
    assert_eq!(waiting["command"]["status"], "pending");
    let late = connect(&fleet, 4, port);
    let delivered = settled(&platform, offline, "e2e-2").await;
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    assert_eq!(fleet.lock().unwrap().devices[4].setpoint, 23.0);

    // Expired: a battery box that is away past the deadline never sheds load for it.
    let (status, issued) = api(
        &platform,
        "POST",
        &format!("/devices/{battery}/commands"),
        r#"{"desired":{"load_shedding":true},"expires_in":1,"idempotency_key":"e2e-3"}"#,
    )
    .await;
    assert_eq!(status, 200, "{issued}");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // What EventBridge runs every CommandExpirySchedule, run now.
    let sweep = iotdp::wiring::commands(
        &platform.sdk,
        &iotdp::config::CommandsConfig {
            table: platform.physical("CommandTable").unwrap().to_owned(),
            iot_data_endpoint: Some(platform.iot_data_url.clone()),
        },
    );
    // The shadow report of the write itself may have come after the deadline and expired it
    // already; either way the sweep leaves nothing pending.
    let swept = sweep
        .expire_due(chrono::Utc::now().timestamp_millis())
        .await
        .unwrap();
    assert!(swept <= 1);
    let box_client = connect(&fleet, 1, port);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !fleet.lock().unwrap().devices[1].load_shedding,
        "an expired command never applies"
    );
    let (_, expired) = api(
        &platform,
        "GET",
        &format!("/devices/{battery}/commands/e2e-3"),
        "",
    )
    .await;
    assert_eq!(expired["command"]["status"], "expired");
    let (_, shadow) = api(&platform, "GET", &format!("/devices/{battery}/shadow"), "").await;
    assert_eq!(shadow["desired"], json!({}), "{shadow}");

    for client in [thermostat, late, box_client] {
        let _ = client.disconnect().await;
    }
    assert!(
        platform
            .stats
            .commands_settled
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
    platform.stop().await;
}
