//! Device management against moto's server, on the resources template.yaml defines: the
//! registry admits, enriches and refuses readings in the deployed ingest path; the silence
//! watch raises and clears `no_data` through the sparse index, the state table and SNS.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use iotdp::config::FromEnvironment;
use iotdp::config::{IngestConfig, SilenceWatchConfig};
use iotdp::devices::ports::DeviceRegistry;
use iotdp::devices::record::{DeviceRecord, DeviceStatus, LatestUpdate, LatestValue};
use iotdp::domain::{LocationPath, MetricValue};
use iotdp::ingest::envelope::encode_envelope;
use iotdp::ingest::service::Invocation;
use iotdp::wiring::{device_registry, ingest_service_with, silence_watch};
use iotdp_integration_tests::{
    MotoServer, drain_sns_envelopes, function_environment, provision_template, quarantine_lines,
    subscribed_queue,
};

fn record(id: &str, kind: &str, path: &str, gateway: Option<&str>, now: i64) -> DeviceRecord {
    let mut r = DeviceRecord::new(id, kind, now);
    r.path = LocationPath::parse(path).unwrap();
    r.gateway_id = gateway.map(str::to_owned);
    r
}

fn message(id: &str, publisher: &str, payload: String, received: i64) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.body = Some(encode_envelope(
        payload.as_bytes(),
        &iotdp::domain::topic::telemetry_topic(publisher),
        received,
        Some(publisher),
    ));
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_admits_enriches_and_refuses_readings_in_the_deployed_ingest_path() {
    let moto = MotoServer::start();
    let (sdk, stack) = provision_template(&moto.endpoint).await;
    let config = IngestConfig::from_lookup(function_environment(&stack, "ingest")).unwrap();
    let registry_table = config
        .registry
        .as_ref()
        .expect("the template configures the registry")
        .table
        .clone();
    let registry = device_registry(&sdk, &registry_table);
    let now = chrono::Utc::now().timestamp_millis();
    for r in [
        record("gw-1", "gateway", "wall-1", None, now),
        record("gw-2", "gateway", "wall-2", None, now),
        record(
            "spot-1",
            "plant-sensor",
            "wall-1/zone-a/s1/spot-1",
            Some("gw-1"),
            now,
        ),
        record(
            "spot-2",
            "plant-sensor",
            "wall-1/zone-a/s2/spot-2",
            Some("gw-1"),
            now,
        ),
        record("ac-1", "thermostat", "home-7", None, now),
    ] {
        assert!(registry.create(&r).await.unwrap());
    }
    registry
        .set_status("ac-1", DeviceStatus::Suspended, now)
        .await
        .unwrap();
    let service = ingest_service_with(&sdk, &config).await.unwrap();

    let item = |device: &str, ts: i64| {
        format!(r#"{{"device_id":"{device}","ts":{ts},"metrics":{{"moisture":0.4}}}}"#)
    };
    let mut event = SqsEvent::default();
    event.records = vec![
        // Five-hour-late gateway batch for its own spots: stored, one request, two series.
        message(
            "own",
            "gw-1",
            format!(
                r#"{{"readings":[{},{}]}}"#,
                item("spot-1", now - 5 * 3_600_000),
                item("spot-2", now - 4 * 3_600_000)
            ),
            now,
        ),
        // Another wall's gateway claiming spot-1: refused.
        message(
            "foreign",
            "gw-2",
            format!(r#"{{"readings":[{}]}}"#, item("spot-1", now - 1000)),
            now,
        ),
        message(
            "suspended",
            "ac-1",
            format!(
                r#"{{"ts":{},"metrics":{{"temperature":21.5}}}}"#,
                now - 1000
            ),
            now,
        ),
        message(
            "unknown",
            "ghost-9",
            format!(
                r#"{{"ts":{},"metrics":{{"temperature":21.5}}}}"#,
                now - 1000
            ),
            now,
        ),
    ];
    let invocation = Invocation {
        request_id: "devices-1".into(),
        deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(30),
        started_at: chrono::Utc::now(),
    };
    let report = iotdp::lambda::ingest::handle_sqs_event(&service, &event, &invocation).await;
    assert!(report.failed_items.is_empty(), "{report:?}");
    assert_eq!(
        report.metrics.registry_reads, 1,
        "one BatchGetItem for the whole batch"
    );

    // Stored: the two spots, each record with its own type and hierarchy dimensions.
    let records = moto.timestream_records("telemetry");
    let mut dims: Vec<Vec<(String, String)>> = records
        .iter()
        .map(|r| {
            r["Dimensions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    (
                        d["Name"].as_str().unwrap().to_owned(),
                        d["Value"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .collect();
    dims.sort();
    let expected = |spot: &str, section: &str| -> Vec<(String, String)> {
        [
            ("device_id", spot),
            ("device_type", "plant-sensor"),
            ("site", "wall-1"),
            ("zone", "zone-a"),
            ("section", section),
            ("spot", spot),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    assert_eq!(
        dims,
        vec![expected("spot-1", "s1"), expected("spot-2", "s2")]
    );

    // Quarantined, each with its reason.
    let bucket = stack.stack.physical["QuarantineBucket"].reference.clone();
    let mut reasons: Vec<(String, String)> = quarantine_lines(&sdk, &bucket)
        .await
        .into_iter()
        .map(|line| (line.message_id, line.reason))
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("foreign".to_owned(), "not_authorized_for_device".to_owned()),
            ("suspended".to_owned(), "device_suspended".to_owned()),
            ("unknown".to_owned(), "unknown_device".to_owned()),
        ]
    );

    // last_seen: the spots and the gateway that reported for them.
    let seen = registry
        .get_many(&["spot-1", "spot-2", "gw-1", "gw-2", "ac-1"])
        .await
        .unwrap();
    for r in &seen {
        let expect = matches!(r.device_id.as_str(), "spot-1" | "spot-2" | "gw-1");
        assert_eq!(r.last_seen_ms.is_some(), expect, "{r:?}");
    }
    // With last_seen, each device's latest values (what the lake answers a device page from)
    // and until when newer readings were all received: last_seen plus the hour's interval.
    let spot_1 = seen.iter().find(|r| r.device_id == "spot-1").unwrap();
    assert_eq!(
        spot_1.latest.get("moisture"),
        Some(&LatestValue {
            time_ms: now - 5 * 3_600_000,
            value: MetricValue::Number(0.4),
        })
    );
    assert_eq!(
        spot_1.latest_tail_until_ms,
        spot_1.last_seen_ms.map(|l| l + 3_600_000)
    );
    let gateway = seen.iter().find(|r| r.device_id == "gw-1").unwrap();
    assert!(gateway.latest.is_empty(), "{gateway:?}");
    // A later write of another metric keeps this one's value.
    let other = LatestUpdate {
        values: vec![(
            "battery_v".to_owned(),
            LatestValue {
                time_ms: now,
                value: MetricValue::Text("low".into()),
            },
        )],
        tail_until_ms: Some(now + 7_200_000),
    };
    assert!(
        registry
            .touch_last_seen("spot-1", now + 3_600_001, None, &other)
            .await
            .unwrap()
    );
    let spot_1 = &registry.get_many(&["spot-1"]).await.unwrap()[0];
    assert_eq!(spot_1.latest.len(), 2, "{spot_1:?}");
    assert_eq!(
        spot_1.latest["battery_v"].value,
        MetricValue::Text("low".into())
    );
    assert_eq!(spot_1.latest_tail_until_ms, Some(now + 7_200_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_device_raises_no_data_and_clears_it_when_data_resumes() {
    let moto = MotoServer::start();
    let (sdk, stack) = provision_template(&moto.endpoint).await;
    let config =
        SilenceWatchConfig::from_lookup(function_environment(&stack, "silence-watch")).unwrap();
    let registry = device_registry(&sdk, &config.registry_table);
    let now = chrono::Utc::now();
    let now_ms = now.timestamp_millis();
    // Registered two minutes ago with a one-minute heartbeat, never heard from.
    let mut battery = record("battery-7", "battery-box", "farm-3", None, now_ms - 120_000);
    battery.heartbeat_seconds = Some(60);
    registry.create(&battery).await.unwrap();
    // A device with no heartbeat is never watched; a fresh one is within its heartbeat.
    registry
        .create(&record(
            "quiet-1",
            "battery-box",
            "farm-3",
            None,
            now_ms - 120_000,
        ))
        .await
        .unwrap();
    let mut fresh = record("battery-8", "battery-box", "farm-3", None, now_ms);
    fresh.heartbeat_seconds = Some(600);
    registry.create(&fresh).await.unwrap();

    let inbox = subscribed_queue(&sdk, &config.topic_arn, "no-data-inbox").await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let watch = silence_watch(&sdk, &config);
    let notifications = || async {
        drain_sns_envelopes(&sqs, &inbox)
            .await
            .iter()
            .map(|e| {
                let body: serde_json::Value =
                    serde_json::from_str(e["Message"].as_str().unwrap()).unwrap();
                (
                    body["kind"].as_str().unwrap().to_owned(),
                    body["device_id"].as_str().unwrap().to_owned(),
                    body["rule_id"].as_str().unwrap().to_owned(),
                    e["MessageAttributes"]["severity"]["Value"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };

    let report = watch.run(now).await.unwrap();
    assert_eq!(
        (report.overdue, report.raised, report.index_queries),
        (1, 1, 48)
    );
    assert_eq!(
        notifications().await,
        [(
            "alarm".into(),
            "battery-7".into(),
            "no_data".into(),
            "warning".into()
        )]
    );
    // Still silent a minute later: nothing new.
    let report = watch
        .run(now + chrono::Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!((report.overdue, report.raised), (0, 0));
    assert!(notifications().await.is_empty());

    // Data resumes (the ingest path writes last_seen), and the next run clears the alert.
    let resumed_at = now_ms + 90_000;
    assert!(
        registry
            .touch_last_seen(
                "battery-7",
                resumed_at,
                Some(resumed_at + 60_000),
                &LatestUpdate::default(),
            )
            .await
            .unwrap()
    );
    let report = watch
        .run(now + chrono::Duration::seconds(100))
        .await
        .unwrap();
    assert_eq!((report.resumed, report.cleared), (1, 1));
    assert_eq!(
        notifications().await,
        [(
            "ok".into(),
            "battery-7".into(),
            "no_data".into(),
            "warning".into()
        )]
    );
}

/// Suppression by hierarchy against moto: while a gateway is silent, the `no_data` of the spots
/// it reports for is raised suppressed (recorded, listed, not notified); when the gateway is
/// heard from again, a spot that came back with it clears unnotified and one still silent is
/// notified then. A suspended gateway suppresses the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_gateway_suppresses_its_spots_no_data_until_it_recovers() {
    let moto = MotoServer::start();
    let (sdk, stack) = provision_template(&moto.endpoint).await;
    let config =
        SilenceWatchConfig::from_lookup(function_environment(&stack, "silence-watch")).unwrap();
    let registry = device_registry(&sdk, &config.registry_table);
    let now = chrono::Utc::now();
    let now_ms = now.timestamp_millis();
    let created = now_ms - 600_000;
    let mut devices = vec![record("gw-9", "gateway", "wall-9", None, created)];
    for spot in ["spot-91", "spot-92"] {
        devices.push(record(
            spot,
            "plant-sensor",
            &format!("wall-9/zone-a/s1/{spot}"),
            Some("gw-9"),
            created,
        ));
    }
    devices.push(record("gw-8", "gateway", "wall-8", None, created));
    devices.push(record(
        "spot-81",
        "plant-sensor",
        "wall-8/zone-a/s1/spot-81",
        Some("gw-8"),
        created,
    ));
    for mut device in devices {
        device.heartbeat_seconds = Some(60);
        registry.create(&device).await.unwrap();
    }
    // gw-8 is suspended by an operator and stays heard from otherwise.
    registry
        .set_status("gw-8", DeviceStatus::Suspended, now_ms)
        .await
        .unwrap();

    let inbox = subscribed_queue(&sdk, &config.topic_arn, "hierarchy-inbox").await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let watch = silence_watch(&sdk, &config);
    let notified = || async {
        let mut told: Vec<(String, String)> = drain_sns_envelopes(&sqs, &inbox)
            .await
            .iter()
            .map(|e| {
                let body: serde_json::Value =
                    serde_json::from_str(e["Message"].as_str().unwrap()).unwrap();
                (
                    body["kind"].as_str().unwrap().to_owned(),
                    body["device_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        told.sort();
        told
    };
    let states = iotdp::adapters::dynamodb::alerts::DynamoDbAlertStates::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        &config.state_table,
    );
    let listed = || async {
        let mut rows: Vec<(String, String, bool)> = states
            .list(None)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, s)| (k.device_id, s.state.as_str().to_owned(), s.suppressed))
            .collect();
        rows.sort();
        rows
    };

    let report = watch.run(now).await.unwrap();
    assert_eq!((report.raised, report.suppressed), (1, 3), "{report:?}");
    assert_eq!(notified().await, [("alarm".into(), "gw-9".into())]);
    assert_eq!(
        listed().await,
        [
            ("gw-9".into(), "ALARM".into(), false),
            ("spot-81".into(), "ALARM".into(), true),
            ("spot-91".into(), "ALARM".into(), true),
            ("spot-92".into(), "ALARM".into(), true),
        ]
    );
    // Still down a minute later: nothing new, nothing told.
    let report = watch
        .run(now + chrono::Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!((report.held, report.raised, report.released), (3, 0, 0));
    assert!(notified().await.is_empty());

    // gw-9's batch arrives with spot-91's readings, not spot-92's.
    let back = now_ms + 90_000;
    for id in ["gw-9", "spot-91"] {
        assert!(
            registry
                .touch_last_seen(id, back, Some(back + 60_000), &LatestUpdate::default())
                .await
                .unwrap()
        );
    }
    let report = watch
        .run(now + chrono::Duration::seconds(100))
        .await
        .unwrap();
    assert_eq!((report.released, report.cleared), (1, 2), "{report:?}");
    assert_eq!(
        notified().await,
        [
            ("alarm".into(), "spot-92".into()),
            ("ok".into(), "gw-9".into())
        ],
        "spot-91 came back with its gateway: never told; spot-92 outlasted it: told now"
    );
    assert_eq!(
        listed().await,
        [
            ("gw-9".into(), "OK".into(), false),
            ("spot-81".into(), "ALARM".into(), true),
            ("spot-91".into(), "OK".into(), false),
            ("spot-92".into(), "ALARM".into(), false),
        ]
    );
    // spot-92 is an ordinary raised silence now: it clears, notified, when it is heard from.
    let later = now_ms + 150_000;
    for id in ["gw-9", "spot-91", "spot-92"] {
        registry
            .touch_last_seen(id, later, Some(later + 60_000), &LatestUpdate::default())
            .await
            .unwrap();
    }
    let report = watch
        .run(now + chrono::Duration::seconds(160))
        .await
        .unwrap();
    assert_eq!(report.cleared, 1);
    assert_eq!(notified().await, [("ok".into(), "spot-92".into())]);
}

/// The heard log on the table the template defines: digests split at their size limit, read
/// back by deadline, the latest deadline per device, and digests long past left unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heard_log_round_trips_through_dynamodb() {
    use iotdp::adapters::dynamodb::registry::DynamoDbRegistry;
    use iotdp::devices::heard::{HeardEntry, MAX_ENTRIES_PER_DIGEST};
    let moto = MotoServer::start();
    let (sdk, stack) = provision_template(&moto.endpoint).await;
    let config =
        SilenceWatchConfig::from_lookup(function_environment(&stack, "silence-watch")).unwrap();
    let registry =
        DynamoDbRegistry::new(aws_sdk_dynamodb::Client::new(&sdk), &config.registry_table)
            .with_heard_log(&config.heard_log_table);
    let now = chrono::Utc::now().timestamp_millis();
    // An old digest: its deadline passed an hour ago.
    registry
        .append_heard(&[
            HeardEntry::new("battery-1", now - 7_200_000, 900),
            HeardEntry::new("battery-old", now - 7_200_000, 900),
        ])
        .await
        .unwrap();
    // A batch larger than one digest holds, with battery-1 heard again.
    let mut batch: Vec<HeardEntry> = (0..MAX_ENTRIES_PER_DIGEST + 5)
        .map(|n| HeardEntry::new(&format!("battery-{n:06}"), now - n as i64, 900))
        .collect();
    batch.push(HeardEntry::new("battery-1", now, 900));
    registry.append_heard(&batch).await.unwrap();
    let heard = registry.heard_since(now).await.unwrap();
    assert_eq!(heard.len(), MAX_ENTRIES_PER_DIGEST + 6);
    assert!(
        !heard.contains_key("battery-old"),
        "a digest long past is not read"
    );
    let due = |heard_ms: i64| heard_ms + 990_000;
    assert!((due(now)..due(now) + 1000).contains(&heard["battery-1"]));
    let last = format!("battery-{:06}", MAX_ENTRIES_PER_DIGEST + 4);
    let heard_ms = now - (MAX_ENTRIES_PER_DIGEST + 4) as i64;
    assert!((due(heard_ms)..due(heard_ms) + 1000).contains(&heard[&last]));
    // Reading from before the old digest's deadline includes it, but the newer deadline wins.
    let all = registry.heard_since(now - 8_000_000).await.unwrap();
    assert_eq!(all["battery-1"], heard["battery-1"]);
    assert!(all.contains_key("battery-old"));
    // Without the table configured, the error says what to set.
    let bare = DynamoDbRegistry::new(aws_sdk_dynamodb::Client::new(&sdk), &config.registry_table);
    let e = bare.heard_since(now).await.unwrap_err();
    assert!(e.to_string().contains("HEARD_LOG_TABLE"), "{e}");
}
