//! The local IoT Core stand-in's Device Shadow service, as a device and as the IoT Data Plane
//! SDK see it: updates over MQTT answered on `accepted` / `rejected` with `delta` and
//! `documents`, `get` answered with the document, `clientToken` echoed, a stale version
//! rejected with 409; and the HTTP side, called through the deployed adapter, reading and
//! writing the same shadows (a write there reaches the device as a delta).

use std::sync::Arc;
use std::time::Duration;

use iotdp::adapters::iot_shadow::IotShadowService;
use iotdp::commands::ports::{ShadowService, ShadowWrite};
use iotdp_local::broker::{self, Broker, BrokerStats};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Every publish `client` receives, as (topic, JSON).
fn received(mut eventloop: rumqttc::EventLoop) -> mpsc::UnboundedReceiver<(String, Value)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Incoming::Publish(p)) = event {
                let body = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                let _ = tx.send((p.topic.clone(), body));
            }
        }
    });
    rx
}

/// The next publish on a topic ending with `suffix` (others are skipped), within 5 s.
async fn next_on(rx: &mut mpsc::UnboundedReceiver<(String, Value)>, suffix: &str) -> Value {
    let wait = async {
        loop {
            let (topic, body) = rx.recv().await.expect("the connection stays up");
            if topic.ends_with(suffix) {
                return body;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or_else(|_| panic!("nothing on …{suffix} within 5 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_and_the_data_plane_share_one_shadow_with_the_documented_rules() {
    let (inbound, mut rules_engine) = mpsc::channel(1000);
    let iot = Broker::new(inbound, Arc::new(BrokerStats::default()));
    let listener = broker::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(broker::serve(listener, iot.clone()));
    let http = broker::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let data_plane = format!("http://{}", http.local_addr().unwrap());
    let (_stop, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(iotdp_local::broker::serve_data_plane(
        http,
        iot.clone(),
        stop,
    ));

    let (client, eventloop) = AsyncClient::new(MqttOptions::new("ac-1", "127.0.0.1", port), 100);
    let mut inbox = received(eventloop);
    client
        .subscribe("$aws/things/ac-1/shadow/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // No shadow yet: get is rejected with 404.
    client
        .publish(
            "$aws/things/ac-1/shadow/get",
            QoS::AtLeastOnce,
            false,
            r#"{"clientToken":"t0"}"#,
        )
        .await
        .unwrap();
    let missing = next_on(&mut inbox, "/get/rejected").await;
    assert_eq!(
        (missing["code"].clone(), missing["clientToken"].clone()),
        (json!(404), json!("t0"))
    );

    // The device reports; accepted echoes the request and the version, documents go to the
    // rules engine too (the shadow-reports rule reads them).
    client
        .publish(
            "$aws/things/ac-1/shadow/update",
            QoS::AtLeastOnce,
            false,
            r#"{"state":{"reported":{"setpoint":20,"mode":{"fan":"auto"}}},"clientToken":"t1"}"#,
        )
        .await
        .unwrap();
    let accepted = next_on(&mut inbox, "/update/accepted").await;
    assert_eq!(accepted["version"], 1);
    assert_eq!(accepted["clientToken"], "t1");
    let documents = next_on(&mut inbox, "/update/documents").await;
    assert_eq!(documents["previous"], Value::Null);
    assert_eq!(documents["current"]["state"]["reported"]["setpoint"], 20);
    let to_rules = loop {
        let publish = rules_engine.recv().await.unwrap();
        if publish.topic.ends_with("/update/documents") {
            break publish;
        }
    };
    assert_eq!(to_rules.topic, "$aws/things/ac-1/shadow/update/documents");

    // The API's side writes desired through the deployed adapter: the device gets the delta.
    let shadows = IotShadowService::new(iotdp::wiring::iot_data_client(
        &iotdp_local::platform::local_sdk_config(&data_plane).await,
        Some(&data_plane),
    ));
    let desired = json!({"setpoint": 21, "mode": {"fan": "high"}});
    assert_eq!(
        shadows
            .update_desired("ac-1", desired.as_object().unwrap(), Some(1))
            .await
            .unwrap(),
        ShadowWrite::Written { version: 2 }
    );
    let delta = next_on(&mut inbox, "/update/delta").await;
    assert_eq!(
        delta["state"],
        json!({"setpoint": 21, "mode": {"fan": "high"}})
    );
    assert_eq!(delta["version"], 2);
    // A write at a version someone moved past is a conflict, over HTTP and over MQTT alike.
    assert_eq!(
        shadows
            .update_desired("ac-1", desired.as_object().unwrap(), Some(1))
            .await
            .unwrap(),
        ShadowWrite::Conflict
    );
    let over_http = next_on(&mut inbox, "/update/rejected").await;
    assert_eq!(
        (over_http["code"].clone(), over_http.get("clientToken")),
        (json!(409), None)
    );
    client
        .publish(
            "$aws/things/ac-1/shadow/update",
            QoS::AtLeastOnce,
            false,
            r#"{"state":{"reported":{"setpoint":21}},"version":1,"clientToken":"t2"}"#,
        )
        .await
        .unwrap();
    let rejected = next_on(&mut inbox, "/update/rejected").await;
    assert_eq!(
        (rejected["code"].clone(), rejected["clientToken"].clone()),
        (json!(409), json!("t2"))
    );

    // The device applies part of it: null deletes, objects merge; the delta shrinks.
    client
        .publish(
            "$aws/things/ac-1/shadow/update",
            QoS::AtLeastOnce,
            false,
            r#"{"state":{"reported":{"setpoint":21.0,"mode":{"fan":"high","swing":null}}}}"#,
        )
        .await
        .unwrap();
    next_on(&mut inbox, "/update/accepted").await;
    client
        .publish("$aws/things/ac-1/shadow/get", QoS::AtLeastOnce, false, "")
        .await
        .unwrap();
    let document = next_on(&mut inbox, "/get/accepted").await;
    assert_eq!(document["version"], 3);
    assert!(document["state"].get("delta").is_none(), "{document}");
    // And the data plane reads exactly what the device sees.
    let read = shadows.get("ac-1").await.unwrap().unwrap();
    assert_eq!(read.version, 3);
    assert_eq!(
        Value::Object(read.reported),
        json!({"setpoint": 21.0, "mode": {"fan": "high"}})
    );
    assert_eq!(shadows.get("ac-9").await.unwrap(), None);

    // Malformed updates are rejected with a reason, not dropped in silence.
    client
        .publish(
            "$aws/things/ac-1/shadow/update",
            QoS::AtLeastOnce,
            false,
            r#"{"desired":{}}"#,
        )
        .await
        .unwrap();
    let refused = next_on(&mut inbox, "/update/rejected").await;
    assert_eq!(refused["code"], 400);
    assert!(
        refused["message"].as_str().unwrap().contains("state"),
        "{refused}"
    );
}
