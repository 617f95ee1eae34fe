//! Outages mid-run, end to end: the local platform (real MQTT, the template's topic rule and
//! queues, the real ingest handler) with its store on a real influxd. A fleet keeps publishing
//! through a 30 s outage of the store (influxd stopped, then started again on the same port
//! and data), and in another run of moto (DynamoDB, S3 and everything else behind the AWS
//! endpoint made unreachable). Afterwards every good reading is in influxd exactly once with
//! the value sent, every bad one is quarantined once with its reason, and the retries and
//! the drained backlog are visible in the platform's figures (what the live view shows).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use iotdp::devices::ports::DeviceRegistry;
use iotdp::devices::record::DeviceRecord;
use iotdp_integration_tests::relay::Relay;
use iotdp_integration_tests::{local_options, moto_binary, quarantine_lines};
use iotdp_local::moto::MotoProcess;
use iotdp_local::platform::{Endpoint, LocalOptions, LocalPlatform};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::sync::Mutex;

const DEVICES: usize = 8;
/// Publishes per device per second.
const RATE: u64 = 10;
const OUTAGE: Duration = Duration::from_secs(30);
/// Every this many messages, a malformed one that must be quarantined.
const BAD_EVERY: u64 = 40;

/// Readings by (device, time), with their value.
type Readings = BTreeMap<(String, i64), f64>;

/// What the fleet sent: the good readings by (device, time) with their value, and how many
/// malformed messages.
#[derive(Default)]
struct Sent {
    readings: Readings,
    malformed: u64,
}

/// How the run looked from the platform's figures, sampled once a second.
#[derive(Default, Debug)]
struct Observed {
    peak_backlog: usize,
    retried_messages: u64,
    backlog_after: usize,
    dead_letters: usize,
}

async fn start_platform(
    name: &str,
    endpoint: Endpoint,
    transport: &str,
) -> (LocalPlatform, std::path::PathBuf) {
    let data_dir = iotdp_integration_tests::fresh_influxd_dir(name);
    let parameters = HashMap::from([
        ("IngestBatchingWindowSeconds".to_owned(), "1".to_owned()),
        // The outage outlasts the default five receives at this visibility timeout; a
        // deployment's 360 s timeout gives five receives 30 minutes.
        ("IngestMaxReceiveCount".to_owned(), "1000".to_owned()),
        ("Transport".to_owned(), transport.to_owned()),
    ]);
    let platform = LocalPlatform::start(LocalOptions {
        parameters,
        endpoint,
        // Redelivery within seconds, not the template's six minutes.
        visibility_timeout_cap: Some(Duration::from_secs(5)),
        ..local_options(&format!("iotdp-{name}"), Some(data_dir.clone()))
    })
    .await
    .expect("local platform starts");
    let registry = iotdp::wiring::device_registry(
        &platform.sdk,
        platform.physical("DeviceRegistryTable").unwrap(),
    );
    let now = chrono::Utc::now().timestamp_millis();
    for i in 0..DEVICES {
        assert!(
            registry
                .create(&DeviceRecord::new(&format!("ac-{i}"), "thermostat", now))
                .await
                .unwrap()
        );
    }
    (platform, data_dir)
}

/// Each device publishes `RATE` times a second until `stop`; every `BAD_EVERY`th message is
/// malformed (a metric name the validation refuses).
async fn publish_until(
    port: u16,
    sent: Arc<Mutex<Sent>>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut clients = Vec::new();
    for i in 0..DEVICES {
        let mut options = MqttOptions::new(format!("ac-{i}"), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(options, 1000);
        tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
        clients.push(client);
    }
    let start_ms = chrono::Utc::now().timestamp_millis();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE));
    let mut number: u64 = 0;
    while !*stop.borrow() {
        tick.tick().await;
        for (i, client) in clients.iter().enumerate() {
            number += 1;
            let device = format!("ac-{i}");
            let ts = start_ms + (number as i64) * 7; // distinct per reading
            let value = 18.0 + (number % 100) as f64 / 10.0;
            let payload = if number.is_multiple_of(BAD_EVERY) {
                format!(r#"{{"ts":{ts},"metrics":{{"temp erature!":{value}}}}}"#)
            } else {
                format!(r#"{{"ts":{ts},"metrics":{{"temperature":{value}}}}}"#)
            };
            client
                .publish(
                    format!("dt/{device}/telemetry"),
                    QoS::AtLeastOnce,
                    false,
                    payload,
                )
                .await
                .expect("publish");
            let mut sent = sent.lock().await;
            if number.is_multiple_of(BAD_EVERY) {
                sent.malformed += 1;
            } else {
                sent.readings.insert((device, ts), value);
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // the last PUBACKs
}

/// Every point in influxd's `telemetry`: (device, time) → temperature, and how many rows.
fn stored(platform: &LocalPlatform) -> Option<(Readings, usize)> {
    let influxd = platform.influxd()?;
    let answer = influxd
        .query("iotdp", "SELECT temperature, device_id FROM telemetry")
        .ok()?;
    let mut points = BTreeMap::new();
    let mut rows = 0;
    for series in answer["results"][0]["series"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for row in series["values"].as_array().into_iter().flatten() {
            rows += 1;
            let (time, value, device) = (row[0].as_i64()?, row[1].as_f64()?, row[2].as_str()?);
            points.insert((device.to_owned(), time), value);
        }
    }
    Some((points, rows))
}

/// Publish for a while, run `outage` (which starts it and returns what ends it), keep
/// publishing through it, end it, publish a little more, then wait for the backlog to drain.
async fn run_through<F, R>(platform: &mut LocalPlatform, cut: F, restore: R) -> (Sent, Observed)
where
    F: FnOnce(&mut LocalPlatform),
    R: FnOnce(&mut LocalPlatform),
{
    let sent = Arc::new(Mutex::new(Sent::default()));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let publisher = tokio::spawn(publish_until(
        platform.mqtt_addr.port(),
        sent.clone(),
        stop_rx,
    ));
    let mut observed = Observed::default();
    tokio::time::sleep(Duration::from_secs(5)).await;
    cut(platform);
    for _ in 0..OUTAGE.as_secs() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        sample(platform, &mut observed).await;
    }
    restore(platform);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = stop.send(true);
    publisher.await.unwrap();
    let sent = Arc::try_unwrap(sent).ok().unwrap().into_inner();
    // Drained: every good reading stored and nothing left in the queue.
    for _ in 0..240 {
        let backlog = sample(platform, &mut observed).await;
        let count = stored(platform).map_or(0, |(points, _)| points.len());
        if backlog == 0 && count >= sent.readings.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    observed.backlog_after = platform.ingest_backlog().await.unwrap_or(usize::MAX);
    // Given up on: the SQS dead-letter queue, and with a stream its failure queue.
    let mut given_up = vec!["IngestDeadLetterQueue"];
    if !platform.stack.streams.is_empty() {
        given_up.push("IngestStreamFailureQueue");
    }
    for queue in given_up {
        let url = platform.physical(queue).unwrap().to_owned();
        observed.dead_letters += platform.queues.depth(&url).await.unwrap_or(usize::MAX);
    }
    (sent, observed)
}

/// The figures the live view shows: the backlog now (its peak kept) and messages retried.
async fn sample(platform: &LocalPlatform, observed: &mut Observed) -> usize {
    let backlog = platform.ingest_backlog().await.unwrap_or_default();
    observed.peak_backlog = observed.peak_backlog.max(backlog);
    observed.retried_messages = platform.stats.ingest.lock().await.failed_messages;
    backlog
}

/// Every good reading stored exactly once with its value; every malformed message quarantined
/// once, with the reason the validation gives.
async fn assert_nothing_lost_nothing_doubled(
    platform: &LocalPlatform,
    sent: &Sent,
    observed: &Observed,
) {
    let (points, rows) = stored(platform).expect("influxd answers");
    let missing: Vec<_> = sent
        .readings
        .keys()
        .filter(|k| !points.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<_> = points
        .keys()
        .filter(|k| !sent.readings.contains_key(*k))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "readings lost (first 5): {missing:?}; {observed:?}"
    );
    assert!(extra.is_empty(), "readings never sent: {extra:?}");
    assert_eq!(
        rows,
        sent.readings.len(),
        "rows in influxd vs readings sent"
    );
    for (key, value) in &sent.readings {
        assert!(
            (points[key] - value).abs() < 1e-9,
            "{key:?}: stored {} sent {value}",
            points[key]
        );
    }
    let bucket = platform.physical("QuarantineBucket").unwrap();
    let lines = quarantine_lines(&platform.sdk, bucket).await;
    let distinct: HashSet<(&str, Option<usize>)> = lines
        .iter()
        .map(|l| (l.message_id.as_str(), l.reading_index))
        .collect();
    assert_eq!(
        distinct.len() as u64,
        sent.malformed,
        "quarantined messages"
    );
    assert_eq!(
        lines.len(),
        distinct.len(),
        "a quarantined message written twice"
    );
    assert!(
        lines.iter().all(|l| l.reason == "invalid_metric_name"),
        "{:?}",
        lines.first()
    );
    assert!(
        observed.retried_messages > 0,
        "the outage made ingest return messages for retry: {observed:?}"
    );
    assert!(
        observed.peak_backlog > 0,
        "the outage built a backlog: {observed:?}"
    );
    assert_eq!(
        observed.backlog_after, 0,
        "the backlog drained: {observed:?}"
    );
    assert_eq!(
        observed.dead_letters, 0,
        "nothing in the dead-letter queue: {observed:?}"
    );
    println!(
        "sent {} readings and {} malformed messages; stored {} (lost 0, doubled 0), quarantined {}; \
         {} messages returned for retry, backlog peaked at {}",
        sent.readings.len(),
        sent.malformed,
        rows,
        lines.len(),
        observed.retried_messages,
        observed.peak_backlog
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxd_stopped_for_30_s_and_restarted() {
    influxd_outage("outage-influxd", "sqs").await;
}

/// The same outage on `Transport=kinesis`: failed batches hold their shard and are retried from
/// the first failed record until the store is back; nothing skipped, lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxd_stopped_for_30_s_on_the_kinesis_transport() {
    influxd_outage("outage-influxd-kinesis", "kinesis").await;
}

async fn influxd_outage(name: &str, transport: &str) {
    let (mut platform, data_dir) = start_platform(
        name,
        Endpoint::StartMoto {
            binary: moto_binary(),
            port: 0,
        },
        transport,
    )
    .await;
    let (sent, observed) = run_through(
        &mut platform,
        |p| p.stop_influxd().expect("the platform runs influxd"),
        |p| p.restart_influxd().expect("influxd starts again"),
    )
    .await;
    assert_nothing_lost_nothing_doubled(&platform, &sent, &observed).await;
    platform.stop().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_endpoint_unreachable_for_30_s() {
    let moto = MotoProcess::start(&moto_binary(), 0).expect("moto starts");
    let relay = Arc::new(Relay::start(([127, 0, 0, 1], moto.port).into()).await);
    let (mut platform, data_dir) =
        start_platform("outage-moto", Endpoint::Existing(relay.url()), "sqs").await;
    let (cut, restore) = (relay.clone(), relay.clone());
    let (sent, observed) = run_through(
        &mut platform,
        move |_| cut.cut(),
        move |_| restore.restore(),
    )
    .await;
    assert_nothing_lost_nothing_doubled(&platform, &sent, &observed).await;
    platform.stop().await;
    drop(moto);
    let _ = std::fs::remove_dir_all(&data_dir);
}
