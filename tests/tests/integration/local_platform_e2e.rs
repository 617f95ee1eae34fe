//! `make local`'s platform, started programmatically on free ports: real MQTT in, the topic
//! rule from template.yaml executed, Lambda's SQS event source running the real ingest handler
//! against moto. Asserts stored records, quarantine reasons, one notification per transition on
//! a subscribed queue, and the shadow command; then that nothing is left listening.

use std::collections::HashMap;
use std::time::Duration;

use iotdp::adapters::dynamodb::alerts::DynamoDbRules;
use iotdp::adapters::dynamodb::registry::DynamoDbRegistry;
use iotdp::alerting::rule::AlertRule;
use iotdp::devices::ports::DeviceRegistry;
use iotdp::devices::record::DeviceRecord;
use iotdp::domain::LocationPath;
use iotdp::ingest::quarantine::QuarantineLine;
use iotdp_integration_tests::{drain_sns_envelopes, moto_binary, moto_state, subscribed_queue};
use iotdp_local::platform::{Endpoint, LocalOptions, LocalPlatform, QueueMode};
use rumqttc::{AsyncClient, MqttOptions, QoS};

/// `id` registered, then four voltages published over MQTT 30 s apart, from two minutes ago:
/// bins of [12.8, 12.6] and [12.4, 12.2]. Returns the first reading's minute, and the device's
/// client, kept connected while the caller waits for the readings.
async fn four_readings_of_a_registered_battery(
    platform: &LocalPlatform,
    id: &str,
) -> (i64, AsyncClient) {
    let registry = iotdp::wiring::device_registry(
        &platform.sdk,
        platform.physical("DeviceRegistryTable").unwrap(),
    );
    let now = chrono::Utc::now().timestamp_millis();
    registry
        .create(&DeviceRecord::new(id, "battery-box", now))
        .await
        .unwrap();
    let battery = device(id, platform.mqtt_addr.port()).await;
    let minute = now - now.rem_euclid(60_000) - 120_000;
    for (offset, volts) in [(0, 12.8), (30_000, 12.6), (60_000, 12.4), (90_000, 12.2)] {
        battery
            .publish(
                format!("dt/{id}/telemetry"),
                QoS::AtLeastOnce,
                false,
                format!(
                    r#"{{"ts":{},"metrics":{{"voltage":{volts}}}}}"#,
                    minute + offset
                ),
            )
            .await
            .unwrap();
    }
    (minute, battery)
}

async fn device(id: &str, port: u16) -> AsyncClient {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    client
}

/// Poll `probe` until it returns `Some`, for up to 60 s.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    for _ in 0..120 {
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_in_process_queues() {
    mqtt_in_records_stored_bad_data_quarantined_alerts_out(QueueMode::InProcess, "sqs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_motos_sqs_queues() {
    mqtt_in_records_stored_bad_data_quarantined_alerts_out(QueueMode::Moto, "sqs").await;
}

/// `Transport=kinesis`: the same scenario, both topic forms, through the stream keyed by
/// device (the rule's Kinesis action, Lambda's Kinesis event source) instead of the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_kinesis_stream() {
    mqtt_in_records_stored_bad_data_quarantined_alerts_out(QueueMode::InProcess, "kinesis").await;
}

async fn mqtt_in_records_stored_bad_data_quarantined_alerts_out(
    queues: QueueMode,
    transport: &str,
) {
    let platform = LocalPlatform::start(LocalOptions {
        queues,
        template: concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml").into(),
        stack_name: "iotdp-e2e".into(),
        parameters: HashMap::from([
            ("IngestBatchingWindowSeconds".to_owned(), "1".to_owned()),
            ("Transport".to_owned(), transport.to_owned()),
            // The records exactly as the store is sent them: moto keeps Timestream's.
            ("TimeSeriesStore".to_owned(), "timestream".to_owned()),
        ]),
        mqtt: "127.0.0.1:0".parse().unwrap(),
        api: "127.0.0.1:0".parse().unwrap(),
        iot_data: "127.0.0.1:0".parse().unwrap(),
        endpoint: Endpoint::StartMoto {
            binary: moto_binary(),
            port: 0,
        },
        influxdb: None,
        visibility_timeout_cap: None,
        console_sign_in: None,
    })
    .await
    .expect("local platform starts");
    let sdk = platform.sdk.clone();
    let port = platform.mqtt_addr.port();

    let rules = DynamoDbRules::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        platform.physical("AlertRulesTable").unwrap(),
    );
    rules
        .put(&AlertRule::from_json(
            r#"{"rule_id":"dry-soil","name":"Soil too dry","scope":{"device_id":"valve-ctl-1"},"metric":"moisture",
                "condition":{"below":0.2},"clear":0.25,"severity":"critical",
                "actions":{"on_alarm":{"valve":"open"},"on_ok":{"valve":"closed"}}}"#,
        ).unwrap())
        .await
        .unwrap();
    aws_sdk_iot::Client::new(&sdk)
        .create_thing()
        .thing_name("valve-ctl-1")
        .send()
        .await
        .unwrap();
    // The registry knows the valve (on a green wall's spot) and the gateway; faulty-1 and
    // stranger-1 are not registered.
    let registry = DynamoDbRegistry::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        platform.physical("DeviceRegistryTable").unwrap(),
    );
    let now = chrono::Utc::now().timestamp_millis();
    let mut valve_record = DeviceRecord::new("valve-ctl-1", "valve-controller", now);
    valve_record.path = LocationPath::parse("wall-1/zone-a/s1/spot-3").unwrap();
    let mut gateway_record = DeviceRecord::new("wall-gw-1", "gateway", now);
    gateway_record.path = LocationPath::parse("wall-1").unwrap();
    assert!(registry.create(&valve_record).await.unwrap());
    assert!(registry.create(&gateway_record).await.unwrap());
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let inbox = subscribed_queue(&sdk, &platform.stack.topics[0], "e2e-inbox").await;

    let valve = device("valve-ctl-1", port).await;
    let gateway = device("wall-gw-1", port).await;
    let faulty = device("faulty-1", port).await;
    let stranger = device("stranger-1", port).await;
    // IoT Core's lifecycle event → presence rule → queue → lifecycle function → registry.
    eventually("the valve's connection in the registry", || {
        let registry = &registry;
        async move {
            let record = registry.get_many(&["valve-ctl-1"]).await.ok()?.pop()?;
            record.connected.then_some(record.last_connected_ms?)
        }
    })
    .await;
    // A subscriber to everything: it sees broker publishes, never a Basic Ingest one.
    let (watcher, mut watched) =
        AsyncClient::new(MqttOptions::new("watcher", "127.0.0.1", port), 100);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok(event) = watched.poll().await {
                if let rumqttc::Event::Incoming(rumqttc::Incoming::Publish(p)) = event {
                    seen.lock().unwrap().push(p.topic.clone());
                }
            }
        });
    }
    watcher.subscribe("#", QoS::AtMostOnce).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let telemetry_rule = platform
        .stack
        .rules
        .iter()
        .find(|r| r.name == "TelemetryRule")
        .unwrap()
        .rule_name
        .clone();
    let publish = |client: &AsyncClient, topic: &str, payload: String| {
        let (client, topic) = (client.clone(), topic.to_owned());
        async move {
            client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .unwrap();
        }
    };
    publish(
        &valve,
        "dt/valve-ctl-1/telemetry",
        format!(r#"{{"ts":{},"metrics":{{"moisture":0.31}}}}"#, now - 3000),
    )
    .await;
    // The reading that raises the alarm comes through Basic Ingest: the same rule, the same
    // identity from the topic, no broker.
    publish(
        &valve,
        &iotdp::domain::topic::basic_ingest_topic(&telemetry_rule, "valve-ctl-1"),
        format!(r#"{{"ts":{},"metrics":{{"moisture":0.12}}}}"#, now - 2000),
    )
    .await;
    publish(
        &gateway,
        "dt/wall-gw-1/telemetry",
        format!(
            r#"{{"readings":[{{"ts":{},"metrics":{{"moisture":0.4}}}},{{"metrics":{{"9x":1}}}},{{"ts":{},"metrics":{{"moisture":0.35}}}}]}}"#,
            now - 5 * 3_600_000,
            now - 4 * 3_600_000
        ),
    )
    .await;
    publish(&faulty, "dt/faulty-1/telemetry", "}{ garbage".to_owned()).await;
    publish(
        &stranger,
        "dt/stranger-1/telemetry",
        format!(r#"{{"ts":{},"metrics":{{"moisture":0.5}}}}"#, now - 1000),
    )
    .await;

    let notifications = |sqs: aws_sdk_sqs::Client, inbox: String| async move {
        drain_sns_envelopes(&sqs, &inbox)
            .await
            .iter()
            .map(|envelope| {
                let body: serde_json::Value =
                    serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
                body["kind"].as_str().unwrap().to_owned()
            })
            .collect::<Vec<_>>()
    };
    let alarm = eventually("the alarm notification", || {
        let (sqs, inbox) = (sqs.clone(), inbox.clone());
        async move { Some(notifications(sqs, inbox).await).filter(|k| !k.is_empty()) }
    })
    .await;
    assert_eq!(alarm, vec!["alarm"]);
    publish(
        &valve,
        "dt/valve-ctl-1/telemetry",
        format!(r#"{{"ts":{now},"metrics":{{"moisture":0.3}}}}"#),
    )
    .await;
    let ok = eventually("the ok notification", || {
        let (sqs, inbox) = (sqs.clone(), inbox.clone());
        async move { Some(notifications(sqs, inbox).await).filter(|k| !k.is_empty()) }
    })
    .await;
    assert_eq!(ok, vec!["ok"], "exactly one notification per transition");

    // Five good readings stored (two late gateway ones included).
    let endpoint = platform.endpoint.clone();
    let records = eventually("five stored records", || {
        let endpoint = endpoint.clone();
        async move {
            let state = tokio::task::spawn_blocking(move || moto_state(&endpoint))
                .await
                .unwrap();
            let records: Vec<serde_json::Value> = state["timestreamwrite"]["TimestreamTable"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|t| t["records"].as_array().cloned().unwrap_or_default())
                .collect();
            (records.len() >= 5).then_some(records)
        }
    })
    .await;
    assert_eq!(records.len(), 5);
    // Each record carries the device's type and place in the hierarchy as dimensions.
    let dimensions = |record: &serde_json::Value| -> Vec<(String, String)> {
        let mut dims: Vec<(String, String)> = record["Dimensions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                (
                    d["Name"].as_str().unwrap_or_default().to_owned(),
                    d["Value"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        dims.sort();
        dims
    };
    let expected = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let valve_dims = expected(&[
        ("device_id", "valve-ctl-1"),
        ("device_type", "valve-controller"),
        ("section", "s1"),
        ("site", "wall-1"),
        ("spot", "spot-3"),
        ("zone", "zone-a"),
    ]);
    let gateway_dims = expected(&[
        ("device_id", "wall-gw-1"),
        ("device_type", "gateway"),
        ("site", "wall-1"),
    ]);
    // moto keeps a request's CommonAttributes apart from its records (Timestream merges
    // them), so a one-device request's dimensions are not on its record here (how requests
    // group depends on batching); the adapter's unit tests and devices_against_moto cover
    // both request shapes. Every dimension set that is visible must be the device's own.
    let with_dims: Vec<Vec<(String, String)>> = records
        .iter()
        .map(dimensions)
        .filter(|d| !d.is_empty())
        .collect();
    for dims in &with_dims {
        assert!(dims == &valve_dims || dims == &gateway_dims, "{dims:?}");
    }

    // Quarantine: the garbage and the bad gateway item, each with its reason and publisher.
    let s3 = iotdp::wiring::s3_client(&sdk);
    let bucket = platform.physical("QuarantineBucket").unwrap().to_owned();
    let lines = eventually("three quarantine lines", || {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        async move {
            let listed = s3
                .list_objects_v2()
                .bucket(&bucket)
                .prefix("quarantine/")
                .send()
                .await
                .ok()?;
            let mut lines = Vec::new();
            for key in listed.contents().iter().filter_map(|o| o.key()) {
                let body = s3
                    .get_object()
                    .bucket(&bucket)
                    .key(key)
                    .send()
                    .await
                    .ok()?
                    .body
                    .collect()
                    .await
                    .ok()?
                    .into_bytes();
                for line in std::str::from_utf8(&body).ok()?.lines() {
                    lines.push(serde_json::from_str::<QuarantineLine>(line).ok()?);
                }
            }
            (lines.len() >= 3).then_some(lines)
        }
    })
    .await;
    let mut reasons: Vec<_> = lines
        .iter()
        .map(|l| (l.reason.as_str(), l.client_id.as_deref(), l.reading_index))
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            ("invalid_metric_name", Some("wall-gw-1"), Some(1)),
            ("malformed_json", Some("faulty-1"), None),
            ("unknown_device", Some("stranger-1"), None),
        ]
    );

    let topics = seen.lock().unwrap().clone();
    assert!(
        topics.iter().any(|t| t == "dt/valve-ctl-1/telemetry"),
        "{topics:?}"
    );
    assert!(
        !topics.iter().any(|t| t.starts_with("$aws/rules/")),
        "Basic Ingest reached a subscriber: {topics:?}"
    );

    // The command reached the device's shadow (the IoT Core stand-in's, as devices see it).
    let shadow = iotdp::wiring::iot_data_client(&sdk, Some(&platform.iot_data_url))
        .get_thing_shadow()
        .thing_name("valve-ctl-1")
        .send()
        .await
        .unwrap();
    let document: serde_json::Value =
        serde_json::from_slice(shadow.payload().unwrap().as_ref()).unwrap();
    assert_eq!(document["state"]["desired"]["valve"], "closed");

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        notifications(sqs.clone(), inbox.clone()).await.is_empty(),
        "no duplicate notifications"
    );
    assert_eq!(
        platform
            .stats
            .broker
            .connected
            .load(std::sync::atomic::Ordering::Relaxed),
        5,
        "four devices and the watcher"
    );
    // A disconnect is recorded too.
    valve.disconnect().await.unwrap();
    eventually("the valve's disconnection in the registry", || {
        let registry = &registry;
        async move {
            let record = registry.get_many(&["valve-ctl-1"]).await.ok()?.pop()?;
            (!record.connected).then_some(record.last_disconnected_ms?)
        }
    })
    .await;

    // Every telemetry message went the transport's way, and only that way.
    let stream_invocations = platform
        .stats
        .stream
        .invocations
        .load(std::sync::atomic::Ordering::Relaxed);
    match transport {
        "kinesis" => {
            assert!(stream_invocations > 0, "ingest ran from the stream");
            let stream = platform.physical("IngestStream").unwrap();
            assert_eq!(platform.streams.depth(stream).await, Some(0));
            let failures = platform.physical("IngestStreamFailureQueue").unwrap();
            assert_eq!(platform.queues.depth(failures).await, Some(0));
            assert_eq!(
                platform.outputs.get("IngestStreamName").map(String::as_str),
                Some(stream)
            );
        }
        _ => {
            assert_eq!(stream_invocations, 0);
            assert!(
                platform.stack.streams.is_empty(),
                "no stream without Transport=kinesis"
            );
        }
    }

    let mqtt = platform.mqtt_addr;
    platform.stop().await;
    assert!(
        std::net::TcpStream::connect(mqtt).is_err(),
        "the MQTT port is closed after stop"
    );
}

/// `make local` with InfluxDB as the store: MQTT in, the same ingest handler writing to a
/// local `influxd`, and the readings coming back aggregated through the read port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_influxdb_readings_come_back_through_the_read_port() {
    use iotdp::query::model::{Aggregate, SeriesQuery, TimeRange};
    use iotdp::query::ports::TimeSeriesReader;
    let data_dir = iotdp_integration_tests::fresh_influxd_dir("e2e");
    let platform = LocalPlatform::start(iotdp_integration_tests::local_options(
        "iotdp-influx",
        Some(data_dir.clone()),
    ))
    .await
    .expect("local platform starts");
    assert!(platform.store_description.starts_with("InfluxDB"));
    // Four readings in two minutes: bins of [12.8, 12.6] and [12.4, 12.2].
    let (minute, _battery) = four_readings_of_a_registered_battery(&platform, "battery-9").await;
    let query = SeriesQuery {
        device_id: "battery-9".into(),
        metric: "voltage".into(),
        range: TimeRange {
            from_ms: minute,
            to_ms: minute + 120_000,
        },
        bins: Some((Duration::from_secs(60), Aggregate::Avg)),
        limit: None,
    };
    let points = eventually("two one-minute bins", || {
        let (reader, query) = (&platform.reader, &query);
        async move {
            let points = reader.series(query).await.ok()?;
            (points.len() == 2).then_some(points)
        }
    })
    .await;
    let values: Vec<(i64, f64)> = points
        .iter()
        .map(|p| match p.value {
            iotdp::domain::MetricValue::Number(v) => {
                (p.time_ms - minute, (v * 100.0).round() / 100.0)
            }
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(values, [(0, 12.7), (60_000, 12.3)]);

    // The same through the local query API, over real HTTP.
    let api = platform
        .api_addr
        .expect("the template's api function is served");
    let path = format!(
        "/devices/battery-9/readings/voltage?from={}&to={}&bin=1m&agg=avg",
        minute,
        minute + 120_000
    );
    let response = tokio::task::spawn_blocking(move || http_get_full(api, &path))
        .await
        .unwrap();
    // The local API says where its readings come from.
    assert!(
        response
            .to_ascii_lowercase()
            .contains("x-iotdp-readings-source: influxdb at"),
        "{response}"
    );
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let values: Vec<f64> = page["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["value"].as_f64().unwrap() * 100.0).round() / 100.0)
        .collect();
    assert_eq!(values, [12.7, 12.3], "{page}");
    // The rollup job runs on the template's schedule (its first run at start): the answer
    // says which sources gave it, and is the same whether the job has reached these minutes.
    assert!(
        page["tiers"].as_array().is_some_and(|t| !t.is_empty()),
        "{page}"
    );
    let runs = eventually("the rollup job's first run", || {
        let stats = platform.stats.clone();
        async move {
            let runs = stats.rollup_runs.load(std::sync::atomic::Ordering::Relaxed);
            (runs >= 1).then_some(runs)
        }
    })
    .await;
    assert!(runs >= 1);
    let lag = platform
        .stats
        .rollup_lag_ms
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!((120_000..300_000).contains(&lag), "watermark lag {lag} ms");
    let body = tokio::task::spawn_blocking(move || http_get(api, "/devices/nobody"))
        .await
        .unwrap();
    assert!(body.contains("unknown_device"), "{body}");

    // The stack is registered under its name with the template's outputs, so `iotdp --stack
    // iotdp-influx` finds every name, the local store and the local API among them.
    use iotdp::config::StackOutputSource;
    let outputs = iotdp::adapters::cloudformation::CloudFormationStacks::new(
        aws_sdk_cloudformation::Client::new(&platform.sdk),
    )
    .outputs("iotdp-influx")
    .await
    .unwrap();
    assert_eq!(outputs, platform.outputs);
    assert_eq!(outputs["TimeSeriesStoreInUse"], "influxdb");
    assert!(
        outputs["InfluxDbUrl"].starts_with("http://127.0.0.1:"),
        "{outputs:?}"
    );
    assert_eq!(outputs["QueryApiUrl"], format!("http://{api}"));
    assert_eq!(
        Some(outputs["DeviceRegistryTableName"].as_str()),
        platform.physical("DeviceRegistryTable")
    );
    assert!(
        !outputs.contains_key("TimestreamDatabaseName"),
        "{outputs:?}"
    );
    platform.stop().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// The body of a GET.
fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let response = http_get_full(addr, path);
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// A minimal HTTP/1.1 GET with `Connection: close`: the whole response, head and body.
fn http_get_full(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// `make local` as it starts by default, on the lake (the template's default store): MQTT in,
/// the ingest handler writing Parquet objects to moto's S3, a device's series back through the
/// local query API over HTTP; the lake's bucket, Glue database and Athena workgroup created in
/// moto and named in the stack's outputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_default_lake_readings_come_back_through_the_api() {
    let platform = LocalPlatform::start(iotdp_integration_tests::local_options("iotdp-lake", None))
        .await
        .expect("local platform starts");
    assert!(
        platform.store_description.contains("lake"),
        "{}",
        platform.store_description
    );
    let outputs = platform.outputs.clone();
    assert_eq!(outputs["TimeSeriesStoreInUse"], "lake");
    assert_eq!(
        Some(outputs["LakeBucketName"].as_str()),
        platform.physical("LakeBucket")
    );
    assert_eq!(outputs["GlueDatabaseName"], "iotdp_lake_lake");
    assert_eq!(outputs["AthenaWorkGroupName"], "iotdp-lake-lake");
    assert!(
        !outputs.contains_key("TimestreamDatabaseName"),
        "{outputs:?}"
    );
    // The catalogue is in moto as the template defines it, not merely named.
    let endpoint = platform.endpoint.clone();
    let table = tokio::task::spawn_blocking(move || {
        glue_call(
            &endpoint,
            "AWSGlue.GetTable",
            r#"{"DatabaseName":"iotdp_lake_lake","Name":"rollups_1d"}"#,
        )
    })
    .await
    .unwrap();
    assert!(
        table.contains(r#""projection.month.interval.unit": "MONTHS""#),
        "{table}"
    );

    let (minute, _battery) = four_readings_of_a_registered_battery(&platform, "battery-3").await;
    let api = platform
        .api_addr
        .expect("the template's api function is served");
    let path = format!(
        "/devices/battery-3/readings/voltage?from={}&to={}",
        minute,
        minute + 120_000
    );
    let (response, page) = eventually("the four readings through the API", || {
        let path = path.clone();
        async move {
            let response = tokio::task::spawn_blocking(move || http_get_full(api, &path))
                .await
                .ok()?;
            let body = response.split_once("\r\n\r\n")?.1.to_owned();
            let page: serde_json::Value = serde_json::from_str(&body).ok()?;
            (page["points"].as_array()?.len() == 4).then_some((response, page))
        }
    })
    .await;
    assert!(
        response
            .to_ascii_lowercase()
            .contains("x-iotdp-readings-source: the lake in moto's s3"),
        "{response}"
    );
    let values: Vec<f64> = page["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [12.8, 12.6, 12.4, 12.2], "{page}");
    platform.stop().await;
}

/// One Glue API call to moto (JSON 1.1, routed by the credential scope): the response body.
fn glue_call(endpoint: &str, target: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let authority = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: {target}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/glue/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}
