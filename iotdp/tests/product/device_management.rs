//! Device management through the real use cases with in-memory adapters: admission by the
//! registry, dimensions on stored readings, registry cost per 1,000 readings, presence, and
//! the silence watch raising and clearing `no_data`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use iotdp::alerting::event::EventKind;
use iotdp::alerting::ports::NoAlerts;
use iotdp::alerting::rule::NO_DATA_RULE_ID;
use iotdp::alerting::rule::Severity;
use iotdp::devices::admission::UnknownDevicePolicy;
use iotdp::devices::cache::{CachedRegistry, RegistryCacheSettings};
use iotdp::devices::ports::{DeviceLookup, DeviceRegistry, DeviceTypes, Seen};
use iotdp::devices::presence::record_presence_events;
use iotdp::devices::record::{DeviceRecord, DeviceStatus, LatestUpdate, LatestValue};
use iotdp::devices::silence::SilenceWatch;
use iotdp::devices::types::{DerivedMetricSpec, TypeDefinition};
use iotdp::domain::{LocationPath, MetricValue};
use iotdp::ingest::envelope::encode_envelope;
use iotdp::ingest::quarantine::QuarantineLine;
use iotdp::ingest::service::{IngestReport, IngestService, IngestSettings, Invocation};
use iotdp::ingest::store_writer::WritePolicy;
use iotdp::ingest::validation::TimeWindow;
use iotdp_memory::{
    MemoryAlertStates, MemoryDeviceTypes, MemoryNotifier, MemoryQuarantine, MemoryRegistry,
    MemoryStore,
};
use tokio::time::Instant;

const T0: i64 = 1_764_000_000_000;

type Service = IngestService<
    Arc<MemoryStore>,
    Arc<MemoryQuarantine>,
    Arc<CachedRegistry<Arc<MemoryRegistry>, Arc<MemoryDeviceTypes>>>,
    NoAlerts,
>;

fn device(id: &str, kind: &str, path: &str, gateway: Option<&str>) -> DeviceRecord {
    let mut r = DeviceRecord::new(id, kind, T0 - 86_400_000);
    r.path = LocationPath::parse(path).unwrap();
    r.gateway_id = gateway.map(str::to_owned);
    r
}

/// A green wall: gateway gw-1 reports for spot-1 and spot-2; gw-2 is another wall's gateway.
fn green_wall() -> Vec<DeviceRecord> {
    vec![
        device("gw-1", "gateway", "wall-1", None),
        device("gw-2", "gateway", "wall-2", None),
        device(
            "spot-1",
            "plant-sensor",
            "wall-1/zone-a/s1/spot-1",
            Some("gw-1"),
        ),
        device(
            "spot-2",
            "plant-sensor",
            "wall-1/zone-a/s1/spot-2",
            Some("gw-1"),
        ),
        device("ac-1", "thermostat", "home-7/living", None),
    ]
}

struct Harness {
    registry: Arc<MemoryRegistry>,
    types: Arc<MemoryDeviceTypes>,
    store: Arc<MemoryStore>,
    quarantine: Arc<MemoryQuarantine>,
    service: Service,
}

fn harness(records: Vec<DeviceRecord>, policy: UnknownDevicePolicy) -> Harness {
    let registry = Arc::new(MemoryRegistry::with(records));
    let store = Arc::new(MemoryStore::new(100));
    let quarantine = Arc::new(MemoryQuarantine::default());
    let types = Arc::new(MemoryDeviceTypes::default());
    let cache = Arc::new(
        CachedRegistry::new(registry.clone(), RegistryCacheSettings::default())
            .with_types(types.clone()),
    );
    let service = IngestService::new(
        store.clone(),
        quarantine.clone(),
        cache,
        NoAlerts,
        IngestSettings {
            window: TimeWindow::with_retention_days(73_000),
            write: WritePolicy::default(),
            unknown_devices: policy,
        },
    );
    Harness {
        registry,
        types,
        store,
        quarantine,
        service,
    }
}

/// One SQS message: `payload` published on `publisher`'s topic, received at `received`.
fn message(id: &str, publisher: &str, payload: &str, received: i64) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_owned());
    m.body = Some(encode_envelope(
        payload.as_bytes(),
        &iotdp::domain::topic::telemetry_topic(publisher),
        received,
        Some(publisher),
    ));
    m
}

fn single(ts: i64) -> String {
    format!(r#"{{"ts":{ts},"metrics":{{"temperature":21.5}}}}"#)
}

fn gateway_batch(ts: i64, devices: &[&str]) -> String {
    let items: Vec<String> = devices
        .iter()
        .map(|d| format!(r#"{{"device_id":"{d}","ts":{ts},"metrics":{{"moisture":0.41}}}}"#))
        .collect();
    format!(r#"{{"readings":[{}]}}"#, items.join(","))
}

async fn ingest(h: &Harness, messages: Vec<SqsMessage>) -> IngestReport {
    let mut event = SqsEvent::default();
    event.records = messages;
    let invocation = Invocation {
        request_id: format!("req-{}", fastrand::u32(..)),
        deadline: Instant::now() + Duration::from_secs(30),
        started_at: DateTime::from_timestamp_millis(T0).unwrap(),
    };
    iotdp::lambda::ingest::handle_sqs_event(&h.service, &event, &invocation).await
}

fn quarantined(h: &Harness) -> Vec<QuarantineLine> {
    h.quarantine
        .objects()
        .iter()
        .flat_map(|(_, body)| {
            String::from_utf8(body.clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<QuarantineLine>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn unknown_suspended_and_decommissioned_devices_are_quarantined_with_their_codes() {
    let mut records = green_wall();
    records[4].status = DeviceStatus::Suspended;
    records.push({
        let mut r = device("old-1", "thermostat", "", None);
        r.status = DeviceStatus::Decommissioned;
        r
    });
    let h = harness(records, UnknownDevicePolicy::Reject);
    let report = ingest(
        &h,
        vec![
            message("m1", "ac-1", &single(T0 - 1000), T0),
            message("m2", "old-1", &single(T0 - 1000), T0),
            message("m3", "stranger", &single(T0 - 1000), T0),
            message("m4", "gw-1", &single(T0 - 1000), T0),
        ],
    )
    .await;
    assert!(report.failed_items.is_empty());
    let mut reasons: Vec<(String, String)> = quarantined(&h)
        .into_iter()
        .map(|l| (l.message_id, l.reason))
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("m1".into(), "device_suspended".into()),
            ("m2".into(), "device_decommissioned".into()),
            ("m3".into(), "unknown_device".into()),
        ]
    );
    let stored = h.store.written();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].device_id, "gw-1");
}

#[tokio::test]
async fn the_accept_policy_stores_unknown_devices_without_dimensions() {
    let h = harness(green_wall(), UnknownDevicePolicy::Accept);
    ingest(&h, vec![message("m1", "newcomer", &single(T0 - 1000), T0)]).await;
    let stored = h.store.written();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].dimensions, None);
    assert!(
        h.registry.get("newcomer").is_none(),
        "accept does not register"
    );
}

#[tokio::test]
async fn a_gateway_reports_for_its_own_devices_and_for_no_others() {
    let h = harness(green_wall(), UnknownDevicePolicy::Reject);
    ingest(
        &h,
        vec![
            message(
                "own",
                "gw-1",
                &gateway_batch(T0 - 5000, &["spot-1", "spot-2"]),
                T0,
            ),
            message(
                "foreign",
                "gw-2",
                &gateway_batch(T0 - 5000, &["spot-1", "gw-2"]),
                T0,
            ),
        ],
    )
    .await;
    let mut stored: Vec<String> = h.store.written().into_iter().map(|r| r.device_id).collect();
    stored.sort();
    assert_eq!(stored, ["gw-2", "spot-1", "spot-2"]);
    let lines = quarantined(&h);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].reason, "not_authorized_for_device");
    assert_eq!(lines[0].message_id, "foreign");
    assert_eq!(lines[0].reading_index, Some(0));
    assert!(lines[0].detail.contains("gw-2") && lines[0].detail.contains("spot-1"));
}

#[tokio::test]
async fn stored_readings_carry_type_and_hierarchy() {
    let h = harness(green_wall(), UnknownDevicePolicy::Reject);
    ingest(
        &h,
        vec![message(
            "m",
            "gw-1",
            &gateway_batch(T0 - 5000, &["spot-2"]),
            T0,
        )],
    )
    .await;
    let stored = h.store.written();
    let dims = stored[0].dimensions.as_ref().unwrap();
    assert_eq!(dims.device_type, "plant-sensor");
    assert_eq!(
        dims.path.levels().collect::<Vec<_>>(),
        [
            ("site", "wall-1"),
            ("zone", "zone-a"),
            ("section", "s1"),
            ("spot", "spot-2")
        ]
    );
}

#[tokio::test]
async fn last_seen_moves_with_receive_time_at_most_once_per_interval() {
    let h = harness(green_wall(), UnknownDevicePolicy::Reject);
    ingest(&h, vec![message("a", "ac-1", &single(T0 - 10), T0)]).await;
    assert_eq!(h.registry.get("ac-1").unwrap().last_seen_ms, Some(T0));
    // 50 minutes later: within the hour's interval, no write.
    ingest(
        &h,
        vec![message(
            "b",
            "ac-1",
            &single(T0 + 2_999_000),
            T0 + 3_000_000,
        )],
    )
    .await;
    assert_eq!(h.registry.get("ac-1").unwrap().last_seen_ms, Some(T0));
    // 3,601 s after the last write: written.
    ingest(
        &h,
        vec![message(
            "c",
            "ac-1",
            &single(T0 + 3_600_000),
            T0 + 3_601_000,
        )],
    )
    .await;
    assert_eq!(
        h.registry.get("ac-1").unwrap().last_seen_ms,
        Some(T0 + 3_601_000)
    );
    // A gateway's batch: the devices it reports for and the gateway itself are seen.
    ingest(
        &h,
        vec![message(
            "d",
            "gw-1",
            &gateway_batch(T0 - 5000, &["spot-1"]),
            T0,
        )],
    )
    .await;
    assert_eq!(h.registry.get("spot-1").unwrap().last_seen_ms, Some(T0));
    assert_eq!(h.registry.get("gw-1").unwrap().last_seen_ms, Some(T0));
}

/// A device type's derived metrics are computed at ingest from each admitted reading, before
/// it is stored (so rules, rollups and reads see them as any metric); a type without a
/// definition derives nothing; the definitions are read once per cache lifetime, not per batch.
#[tokio::test]
async fn a_types_derived_metrics_are_stored_with_its_readings() {
    let h = harness(green_wall(), UnknownDevicePolicy::Reject);
    let thermostat = TypeDefinition {
        device_type: "thermostat".into(),
        version: 0,
        metrics: vec!["temperature".into()],
        derived: vec![DerivedMetricSpec {
            name: "temperature_f".into(),
            expression: "temperature * 9 / 5 + 32".into(),
        }],
    };
    assert_eq!(h.types.put_type(&thermostat).await.unwrap(), Some(1));
    let report = ingest(
        &h,
        vec![
            message("t", "ac-1", &single(T0 - 10), T0),
            message("g", "gw-1", &gateway_batch(T0 - 5000, &["spot-1"]), T0),
        ],
    )
    .await;
    assert!(report.failed_items.is_empty(), "{report:?}");
    assert_eq!(report.metrics.derived_values, 1);
    let written = h.store.written();
    let ac = written.iter().find(|r| r.device_id == "ac-1").unwrap();
    let fahrenheit = ac
        .metrics
        .iter()
        .find(|m| m.name == "temperature_f")
        .unwrap();
    assert_eq!(
        fahrenheit.value,
        MetricValue::Number(21.5 * 9.0 / 5.0 + 32.0)
    );
    let spot = written.iter().find(|r| r.device_id == "spot-1").unwrap();
    assert_eq!(spot.metrics.len(), 1, "{spot:?}");
    // The next batch within the cache's minute reads no definition again.
    ingest(
        &h,
        vec![message("t2", "ac-1", &single(T0 + 1_000), T0 + 1_010)],
    )
    .await;
    assert_eq!(h.types.reads.load(Ordering::Relaxed), 1);
}

/// Each `last_seen` write carries the device's latest value of each metric in its batch (by
/// event time, not arrival order), and until when every newer reading was received.
#[tokio::test]
async fn last_seen_carries_the_batchs_latest_values_by_event_time() {
    let h = harness(green_wall(), UnknownDevicePolicy::Reject);
    let reading = |ts: i64, t: f64, mode: &str| {
        format!(r#"{{"ts":{ts},"metrics":{{"temperature":{t},"mode":"{mode}"}}}}"#)
    };
    ingest(
        &h,
        vec![
            message("late", "ac-1", &reading(T0 - 60_000, 21.0, "heat"), T0),
            message("new", "ac-1", &reading(T0 - 1_000, 22.5, "cool"), T0 - 500),
            message(
                "older",
                "ac-1",
                &reading(T0 - 30_000, 19.0, "off"),
                T0 - 200,
            ),
        ],
    )
    .await;
    let record = h.registry.get("ac-1").unwrap();
    assert_eq!(record.last_seen_ms, Some(T0));
    assert_eq!(
        record.latest["temperature"],
        LatestValue {
            time_ms: T0 - 1_000,
            value: MetricValue::Number(22.5),
        }
    );
    assert_eq!(
        record.latest["mode"].value,
        MetricValue::Text("cool".into())
    );
    assert_eq!(record.latest_tail_until_ms, Some(T0 + 3_600_000));
    // Within the interval nothing is written: the snapshot stays, the store has the rest.
    ingest(
        &h,
        vec![message(
            "next",
            "ac-1",
            &reading(T0 + 60_000, 23.0, "cool"),
            T0 + 60_000,
        )],
    )
    .await;
    assert_eq!(
        h.registry.get("ac-1").unwrap().latest["temperature"].time_ms,
        T0 - 1_000
    );
}

/// Registry reads and writes per 1,000 readings: 110 devices (10 gateways × 9 sensors, the
/// gateways themselves, 10 thermostats), one reading per device per second, three minutes of
/// one-second invocations on one warm instance (tokio's clock paused and advanced, so the
/// cache's TTL runs as in production). Run with `--nocapture` to see the figures.
#[tokio::test(start_paused = true)]
async fn registry_calls_per_1000_readings_in_steady_state() {
    let mut records = Vec::new();
    for g in 0..10 {
        records.push(device(
            &format!("gw-{g}"),
            "gateway",
            &format!("wall-{g}"),
            None,
        ));
        for s in 0..9 {
            records.push(device(
                &format!("spot-{g}-{s}"),
                "plant-sensor",
                &format!("wall-{g}/z/s/spot-{s}"),
                Some(&format!("gw-{g}")),
            ));
        }
    }
    for t in 0..10 {
        records.push(device(&format!("ac-{t}"), "thermostat", "home", None));
    }
    for r in &mut records {
        r.heartbeat_seconds = Some(3600); // watched: its deadline is logged every 6 minutes
    }
    let h = harness(records, UnknownDevicePolicy::Reject);
    let second = |n: i64| {
        let at = T0 + n * 1000;
        let mut messages = Vec::new();
        for g in 0..10 {
            let sensors: Vec<String> = (0..9).map(|s| format!("spot-{g}-{s}")).collect();
            let refs: Vec<&str> = sensors.iter().map(String::as_str).collect();
            messages.push(message(
                &format!("g{g}-{n}"),
                &format!("gw-{g}"),
                &gateway_batch(at - 100, &refs),
                at,
            ));
            messages.push(message(
                &format!("gself{g}-{n}"),
                &format!("gw-{g}"),
                &single(at - 100),
                at,
            ));
        }
        for t in 0..10 {
            messages.push(message(
                &format!("a{t}-{n}"),
                &format!("ac-{t}"),
                &single(at - 100),
                at,
            ));
        }
        messages
    };
    let (mut reads, mut writes, mut readings) = (0, 0, 0);
    for n in 0..180 {
        let m = ingest(&h, second(n)).await.metrics;
        reads += m.registry_reads;
        writes += m.registry_writes;
        readings += m.readings_accepted;
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    let deadline_moves = h.registry.watch_writes.load(Ordering::Relaxed);
    println!(
        "registry calls over 3 minutes, 110 devices at 1 reading/s each ({readings} readings): \
         {reads} BatchGetItem, {writes} UpdateItem ({deadline_moves} of them moving the silence deadline); \
         per 1000 readings: {:.2} BatchGetItem, {:.1} UpdateItem",
        reads as f64 * 1000.0 / readings as f64,
        writes as f64 * 1000.0 / readings as f64,
    );
    // The index deadline moved once per device, with its first last_seen write.
    assert_eq!(deadline_moves, 110);
    assert_eq!(readings, 180 * 110);
    assert!(quarantined(&h).is_empty());
    // One cache fill a minute (110 devices: two BatchGetItem of ≤100 keys each).
    assert_eq!(reads, 3 * 2);
    // last_seen is written when it moved by more than an hour: once per device in these 3
    // minutes, where every 60 s would have made 3 × 110; nothing is logged before a tenth of
    // the heartbeat (6 minutes) has passed.
    assert_eq!(writes, 110);
    assert_eq!(h.registry.batch_reads.load(Ordering::Relaxed), reads);
}

#[tokio::test]
async fn a_suspension_takes_effect_when_the_cache_entry_expires() {
    let registry = Arc::new(MemoryRegistry::with(green_wall()));
    let cache = CachedRegistry::new(
        registry.clone(),
        RegistryCacheSettings {
            ttl: Duration::from_millis(50),
            seen_interval: Duration::from_secs(60),
        },
    );
    use iotdp::devices::ports::DeviceLookup;
    assert!(
        cache
            .lookup(&["ac-1"])
            .await
            .unwrap()
            .devices
            .contains_key("ac-1")
    );
    registry
        .set_status("ac-1", DeviceStatus::Suspended, T0)
        .await
        .unwrap();
    let cached = cache.lookup(&["ac-1"]).await.unwrap();
    assert_eq!(cached.registry_reads, 0);
    assert_eq!(cached.devices["ac-1"].record.status, DeviceStatus::Active);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let fresh = cache.lookup(&["ac-1"]).await.unwrap();
    assert_eq!(fresh.registry_reads, 1);
    assert_eq!(fresh.devices["ac-1"].record.status, DeviceStatus::Suspended);
}

#[tokio::test]
async fn presence_events_update_the_registry_and_older_ones_are_ignored() {
    let registry = MemoryRegistry::with(green_wall());
    let event = |items: &[(&str, &str, i64)]| {
        let mut e = SqsEvent::default();
        e.records = items
            .iter()
            .enumerate()
            .map(|(i, (client, kind, ts))| {
                let mut m = SqsMessage::default();
                m.message_id = Some(format!("p{i}"));
                m.body = Some(format!(
                    r#"{{"clientId":"{client}","timestamp":{ts},"eventType":"{kind}","sessionIdentifier":"s","principalIdentifier":"p","versionNumber":0}}"#
                ));
                m
            })
            .collect();
        e
    };
    let (failed_items, report) = record_presence_events(
        &registry,
        iotdp::lambda::sqs_messages(&event(&[
            ("ac-1", "connected", T0),
            ("ac-1", "disconnected", T0 + 5000),
            // Delivered late: older than the disconnect, so it changes nothing.
            ("ac-1", "connected", T0 + 1000),
            ("not-registered", "connected", T0),
            ("ac-1", "subscribed", T0 + 9000),
        ])),
    )
    .await;
    assert!(failed_items.is_empty());
    assert_eq!(
        (report.applied, report.ignored, report.malformed),
        (2, 2, 1)
    );
    let ac = registry.get("ac-1").unwrap();
    assert!(!ac.connected);
    assert_eq!(ac.last_connected_ms, Some(T0));
    assert_eq!(ac.last_disconnected_ms, Some(T0 + 5000));
}

#[tokio::test]
async fn a_silent_device_raises_no_data_once_and_clears_when_data_resumes() {
    let mut battery = device("battery-7", "battery-box", "farm-3", None);
    battery.heartbeat_seconds = Some(600);
    battery.created_at_ms = T0;
    let quiet = {
        let mut r = device("quiet-1", "battery-box", "farm-3", None);
        r.created_at_ms = T0;
        r // no heartbeat: never watched
    };
    let registry = Arc::new(MemoryRegistry::with(vec![battery, quiet]));
    let states = Arc::new(MemoryAlertStates::default());
    let notifier = Arc::new(MemoryNotifier::default());
    let watch = SilenceWatch::new(
        registry.clone(),
        states.clone(),
        notifier.clone(),
        Severity::Warning,
    );
    let at = |minutes: i64| DateTime::<Utc>::from_timestamp_millis(T0 + minutes * 60_000).unwrap();

    // 9 minutes after registration: within the heartbeat.
    let report = watch.run(at(9)).await.unwrap();
    assert_eq!((report.raised, report.index_queries), (0, 48));
    // 11 minutes: overdue.
    let report = watch.run(at(11)).await.unwrap();
    assert_eq!(report.raised, 1);
    let published = notifier.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].kind, EventKind::Alarm);
    assert_eq!(published[0].rule_id, NO_DATA_RULE_ID);
    assert_eq!(published[0].device_id, "battery-7");
    assert_eq!(published[0].value, 660.0, "seconds silent");
    // Still silent: the raised device is not overdue again, nothing more is sent.
    let report = watch.run(at(12)).await.unwrap();
    assert_eq!((report.overdue, report.raised, report.resumed), (0, 0, 0));
    assert_eq!(notifier.published().len(), 1);

    // Data resumes: ingest moves last_seen (and with it the deadline).
    registry
        .touch_last_seen(
            "battery-7",
            T0 + 13 * 60_000,
            Some(T0 + 23 * 60_000),
            &LatestUpdate::default(),
        )
        .await
        .unwrap();
    let report = watch.run(at(14)).await.unwrap();
    assert_eq!(report.cleared, 1);
    let published = notifier.published();
    assert_eq!(published.len(), 2);
    assert_eq!(published[1].kind, EventKind::Ok);
    // Watched again: a new silence raises a new alert.
    let report = watch.run(at(24)).await.unwrap();
    assert_eq!(report.raised, 1);
    assert_eq!(notifier.published().len(), 3);
}

#[tokio::test]
async fn a_stale_index_deadline_is_moved_on_not_raised() {
    let mut battery = device("battery-7", "battery-box", "farm-3", None);
    battery.heartbeat_seconds = Some(600);
    battery.created_at_ms = T0;
    let registry = Arc::new(MemoryRegistry::with(vec![battery]));
    // Heard from at minute 8 without moving the deadline (within a quarter heartbeat of the
    // last move, as the ingest cache does).
    registry
        .touch_last_seen("battery-7", T0 + 8 * 60_000, None, &LatestUpdate::default())
        .await
        .unwrap();
    let notifier = Arc::new(MemoryNotifier::default());
    let watch = SilenceWatch::new(
        registry.clone(),
        Arc::new(MemoryAlertStates::default()),
        notifier.clone(),
        Severity::Warning,
    );
    let at = |minutes: i64| DateTime::<Utc>::from_timestamp_millis(T0 + minutes * 60_000).unwrap();
    let report = watch.run(at(11)).await.unwrap();
    assert_eq!(
        (report.overdue, report.rescheduled, report.raised),
        (1, 1, 0)
    );
    assert!(notifier.published().is_empty());
    assert_eq!(
        registry.watch_entry("battery-7"),
        Some((false, T0 + 19 * 60_000)),
        "deadline = last seen + heartbeat + a tenth of it (last_seen's resolution)"
    );
    assert_eq!(watch.run(at(19)).await.unwrap().raised, 1);
}

#[tokio::test]
async fn a_failed_no_data_publish_is_retried_by_the_next_run() {
    let mut battery = device("battery-7", "battery-box", "farm-3", None);
    battery.heartbeat_seconds = Some(600);
    battery.created_at_ms = T0;
    let registry = Arc::new(MemoryRegistry::with(vec![battery]));
    let states = Arc::new(MemoryAlertStates::default());
    let notifier = Arc::new(MemoryNotifier::default());
    notifier.failing.store(true, Ordering::Relaxed);
    let watch = SilenceWatch::new(
        registry.clone(),
        states,
        notifier.clone(),
        Severity::Critical,
    );
    let at = |minutes: i64| DateTime::<Utc>::from_timestamp_millis(T0 + minutes * 60_000).unwrap();
    let report = watch.run(at(11)).await.unwrap();
    assert_eq!((report.raised, report.failures), (0, 1));
    assert_eq!(
        registry.watch_entry("battery-7"),
        Some((false, T0 + 600_000))
    );
    notifier.failing.store(false, Ordering::Relaxed);
    // The state says ALARM with the notification owed; after the lease it is delivered once.
    let report = watch.run(at(13)).await.unwrap();
    assert_eq!(report.raised, 1);
    let published = notifier.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].severity, Severity::Critical);
}

/// A fresh ingest instance trusts the registry's `last_seen`: a device heard from 10 s ago
/// costs nothing; one heard from 10 minutes ago (more than a tenth of its hour's heartbeat)
/// gets its deadline into the heard log, not a registry write. (A cold instance once rewrote
/// every watched device's deadline.)
#[tokio::test(start_paused = true)]
async fn a_cold_instance_logs_only_deadlines_that_are_stale() {
    let mut current = device("ac-1", "thermostat", "home-1", None);
    current.heartbeat_seconds = Some(3600);
    current.last_seen_ms = Some(T0 - 10_000);
    let mut stale = device("ac-2", "thermostat", "home-2", None);
    stale.heartbeat_seconds = Some(3600);
    stale.last_seen_ms = Some(T0 - 600_000);
    let h = harness(vec![current, stale], UnknownDevicePolicy::Reject);
    let report = ingest(
        &h,
        vec![
            message("m1", "ac-1", &single(T0 - 100), T0),
            message("m2", "ac-2", &single(T0 - 100), T0),
        ],
    )
    .await;
    assert_eq!(report.metrics.readings_accepted, 2);
    assert_eq!(report.metrics.registry_writes, 0);
    assert_eq!(report.metrics.heard_log_entries, 1);
    let heard = h.registry.heard_since(T0).await.unwrap();
    assert_eq!(
        heard.keys().collect::<Vec<_>>(),
        ["ac-2"],
        "only ac-2's deadline is logged"
    );
    assert!(
        heard["ac-2"] >= T0 + 3_960_000,
        "heard + heartbeat + a tenth"
    );
}

type Watch = SilenceWatch<Arc<MemoryRegistry>, Arc<MemoryAlertStates>, Arc<MemoryNotifier>>;

/// One battery box (15-minute heartbeat) behind an ingest instance's cache and the watch.
struct BatteryBox {
    registry: Arc<MemoryRegistry>,
    cache: CachedRegistry<Arc<MemoryRegistry>>,
    notifier: Arc<MemoryNotifier>,
    watch: Watch,
}

fn battery_box() -> BatteryBox {
    let mut battery = device("battery-7", "battery-box", "farm-3", None);
    battery.heartbeat_seconds = Some(900);
    battery.created_at_ms = T0;
    let registry = Arc::new(MemoryRegistry::with(vec![battery]));
    let notifier = Arc::new(MemoryNotifier::default());
    BatteryBox {
        cache: CachedRegistry::new(registry.clone(), RegistryCacheSettings::default()),
        watch: SilenceWatch::new(
            registry.clone(),
            Arc::new(MemoryAlertStates::default()),
            notifier.clone(),
            Severity::Warning,
        ),
        registry,
        notifier,
    }
}

/// The battery boxes: a 15-minute heartbeat, a report every 5 minutes. Through the ingest
/// cache and the silence watch together: one registry write an hour per device, never a
/// `no_data` while it reports, `no_data` within a minute of heartbeat + a tenth once it stops
/// (with its real silence, not the hourly `last_seen`'s), and a clear as soon as it reports
/// again, by the heard log alone.
#[tokio::test(start_paused = true)]
async fn the_heard_log_keeps_no_data_exact_at_one_registry_write_an_hour() {
    let BatteryBox {
        registry,
        cache,
        notifier,
        watch,
    } = battery_box();
    let minute = 60_000;
    let report_at = |minutes: i64| {
        let cache = &cache;
        async move {
            cache.lookup(&["battery-7"]).await.unwrap();
            cache
                .record_seen(&[Seen::heard("battery-7", T0 + minutes * minute)])
                .await
        }
    };
    let run = |minutes: i64| {
        watch.run(DateTime::<Utc>::from_timestamp_millis(T0 + minutes * minute).unwrap())
    };
    let (mut writes, mut logged) = (0, 0);
    // Two and a half hours of reports every 5 minutes, the watch every minute.
    for m in 0..150 {
        if m % 5 == 0 {
            let seen = report_at(m).await;
            writes += seen.writes;
            logged += seen.heard;
        }
        let report = run(m).await.unwrap();
        assert_eq!(report.raised, 0, "minute {m}: {report:?}");
    }
    assert_eq!(writes, 3, "one registry write an hour (every 13th report)");
    assert_eq!(logged, 27, "every other report's deadline is logged");
    assert_eq!(registry.seen_writes.load(Ordering::Relaxed), 3);
    // The last report was at minute 145; last_seen in the registry is from minute 130.
    assert_eq!(
        registry.get("battery-7").unwrap().last_seen_ms,
        Some(T0 + 130 * minute)
    );
    // Silent from minute 145: due at 145 + 15 + 1.5 = 161.5.
    for m in 150..=161 {
        assert_eq!(run(m).await.unwrap().raised, 0, "minute {m}");
    }
    assert!(notifier.published().is_empty());
    let report = run(162).await.unwrap();
    assert_eq!(report.raised, 1, "{report:?}");
    let published = notifier.published();
    assert_eq!(published[0].device_id, "battery-7");
    assert_eq!(published[0].value, 17.0 * 60.0, "silent since minute 145");
    // Reports again at minute 170: the heard log clears it at the next run, no registry write.
    let seen = report_at(170).await;
    assert_eq!((seen.writes, seen.heard), (0, 1));
    let report = run(170).await.unwrap();
    assert_eq!(report.cleared, 1, "{report:?}");
    assert_eq!(notifier.published().len(), 2);
    assert_eq!(notifier.published()[1].kind, EventKind::Ok);
}

/// When the heard log cannot be appended to, the batch's watched devices get their deadline in
/// the registry instead, one write each as before the log: the watch still sees them heard,
/// and raises nothing early.
#[tokio::test(start_paused = true)]
async fn a_failed_heard_log_append_falls_back_to_registry_writes() {
    let BatteryBox {
        registry,
        cache,
        watch,
        ..
    } = battery_box();
    registry.heard_log_failing.store(true, Ordering::Relaxed);
    let minute = 60_000;
    let mut fallbacks = 0;
    for m in (0..60).step_by(5) {
        cache.lookup(&["battery-7"]).await.unwrap();
        let seen = cache
            .record_seen(&[Seen::heard("battery-7", T0 + m * minute)])
            .await;
        if m > 0 {
            assert_eq!(
                (seen.heard, seen.failures, seen.writes),
                (1, 1, 1),
                "minute {m}"
            );
            fallbacks += 1;
        }
        let now = DateTime::<Utc>::from_timestamp_millis(T0 + m * minute + 30_000).unwrap();
        assert_eq!(watch.run(now).await.unwrap().raised, 0, "minute {m}");
    }
    assert_eq!(fallbacks, 11);
    assert_eq!(
        registry.get("battery-7").unwrap().last_seen_ms,
        Some(T0 + 55 * minute)
    );
    // Its deadline in the index moved with it: heard at 55, due at 70.
    assert_eq!(
        registry.watch_entry("battery-7"),
        Some((false, T0 + 70 * minute))
    );
}
