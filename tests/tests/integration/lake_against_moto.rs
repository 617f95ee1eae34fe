//! The lake on moto's S3: readings written through the store writer (duplicates, a
//! correction and 5-hour-late readings among them) are answered by the lake's reader exactly as
//! the memory reference answers them, concurrent writers to one hour lose nothing, and the
//! files are standard Parquet that pyarrow reads back to exactly the readings sent.

use std::time::Duration;

use iotdp::adapters::lake::LakeStore;
use iotdp::domain::{LocationPath, Metric, MetricValue, Reading};
use iotdp::ingest::batch::prepare_batch;
use iotdp::ingest::ports::TimeSeriesStore;
use iotdp::ingest::store_writer::{WriteOutcome, WritePolicy, write_readings};
use iotdp::ingest::validation::TimeWindow;
use iotdp::query::model::{Aggregate, FleetFilter, SeriesQuery, TimeRange};
use iotdp::query::ports::TimeSeriesReader;
use iotdp_integration_tests::MotoServer;
use iotdp_memory::MemoryStore;
use iotdp_simulator::{Fleet, FleetConfig};
use tokio::time::Instant;

const HOUR: i64 = 3_600_000;

/// One reading of one metric, version 1 unless given.
fn one(device: String, time_ms: i64, metric: &str, value: f64, version: i64) -> Reading {
    Reading {
        device_id: device,
        time_ms,
        seq: None,
        metrics: vec![Metric {
            name: metric.into(),
            value: MetricValue::Number(value),
        }],
        version,
        dimensions: None,
    }
}

/// The simulated fleet's readings over the last hours, each device placed in one of two
/// sites; then some of them again (a redelivered batch), one corrected (a higher version),
/// and a gateway's 5-hour-late readings.
pub(crate) fn readings(now: i64) -> Vec<Reading> {
    let mut fleet = Fleet::new(FleetConfig {
        devices: 20,
        seed: 5,
        faulty_rate: 0.0,
    });
    let mut bodies = Vec::new();
    for i in 0..400 {
        if let Some((_, topic, payload)) = fleet.next_message(now - 2 * HOUR + i * 9_000) {
            let device = iotdp::domain::topic::device_id_from_topic(&topic)
                .unwrap()
                .to_owned();
            bodies.push((
                format!("m{i}"),
                iotdp::ingest::envelope::encode_envelope(
                    payload.as_bytes(),
                    &topic,
                    now,
                    Some(&device),
                ),
            ));
        }
    }
    let batch = prepare_batch(
        bodies.iter().map(|(id, b)| (id.as_str(), b.as_str())),
        TimeWindow::with_retention_days(73_000),
    );
    let placed = |r: Reading| {
        let site = if r.device_id.len().is_multiple_of(2) {
            "site-a"
        } else {
            "site-b"
        };
        let path = LocationPath::parse(&format!("{site}/zone-1")).unwrap();
        r.with_place("sensor", path)
    };
    let mut out: Vec<Reading> = batch.readings.into_iter().map(placed).collect();
    let again: Vec<Reading> = out.iter().take(40).cloned().collect();
    out.extend(again);
    // A correction re-sends the whole reading, one value changed: a correction that leaves
    // metrics out drops them on Timestream and the lake (the reading is replaced) but not on
    // InfluxDB (its fields merge), as docs/stores.md says.
    let mut corrected = out[3].clone();
    corrected.version += 1_000;
    corrected.metrics[0].value = MetricValue::Number(12_345.0);
    out.push(corrected);
    let late: Vec<Reading> = out
        .iter()
        .take(30)
        .map(|r| {
            let mut r = r.clone();
            r.time_ms -= 5 * HOUR;
            r
        })
        .collect();
    out.extend(late);
    out
}

pub(crate) async fn stored_in_batches<S: TimeSeriesStore>(store: &S, readings: &[Reading]) {
    for batch in readings.chunks(97) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (outcomes, _) = write_readings(store, batch, &WritePolicy::default(), deadline).await;
        assert!(
            outcomes.iter().all(|o| *o == WriteOutcome::Stored),
            "{outcomes:?}"
        );
    }
}

async fn lake_on_moto(moto: &MotoServer) -> LakeStore {
    bucket_on_moto(moto, "lake").await
}

async fn bucket_on_moto(moto: &MotoServer, bucket: &str) -> LakeStore {
    let sdk = moto.sdk_config().await;
    let client = iotdp::wiring::s3_client(&sdk);
    client.create_bucket().bucket(bucket).send().await.unwrap();
    LakeStore::new(client, bucket)
}

/// Every key under `prefix` in the lake's bucket.
async fn keys_under(lake: &LakeStore, moto: &MotoServer, prefix: &str) -> Vec<String> {
    let client = iotdp::wiring::s3_client(&moto.sdk_config().await);
    let listed = client
        .list_objects_v2()
        .bucket(lake.bucket())
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// Every reading of the range, as `(device, time, version, metric names)`, sorted: what a
/// compaction must leave unchanged.
async fn everything(lake: &LakeStore, range: TimeRange) -> Vec<(String, i64, i64, Vec<String>)> {
    let mut out: Vec<_> = lake
        .readings(range)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let mut names: Vec<String> = r.metrics.iter().map(|m| m.name.clone()).collect();
            names.sort();
            (r.device_id, r.time_ms, r.version, names)
        })
        .collect();
    out.sort();
    out
}

/// Rollups on the lake: every tier equals the raw readings whatever the arrival order, the
/// compaction running before each job run (a bucket a case).
#[test]
fn every_tier_on_the_lake_equals_the_raw_readings_whatever_the_arrival_order() {
    let moto = MotoServer::start();
    super::rollups_influxdb::every_tier_equals_the_raw_readings(3, |n| {
        let moto = &moto;
        async move { bucket_on_moto(moto, &format!("case{n}")).await }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lake_computes_the_same_rollups_and_answers_as_the_reference() {
    let moto = MotoServer::start();
    let lake = std::sync::Arc::new(lake_on_moto(&moto).await);
    // Every 30 minutes rather than 10: each run is tens of requests to moto.
    super::rollups_influxdb::same_rollups_and_answers_as_the_reference(lake, 1_800_000).await;
}

/// The compaction rewrites each closed hour into one sorted object of one version of each
/// reading: reads answer the same, the incoming objects and marks are gone, and an
/// independent reader (pyarrow) finds the compacted file sorted, without duplicates, with
/// row-group statistics and a page index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compaction_rewrites_each_hour_once_and_reads_do_not_change() {
    let now = chrono::Utc::now().timestamp_millis();
    let readings = readings(now);
    let moto = MotoServer::start();
    let lake = lake_on_moto(&moto).await;
    stored_in_batches(&lake, &readings).await;
    // Gateways' batches reach 5 hours back, and the late copies 5 more.
    let range = TimeRange {
        from_ms: now - 24 * HOUR,
        to_ms: now + HOUR,
    };
    let before = everything(&lake, range).await;
    assert!(before.len() < readings.len(), "duplicates were written");
    let hours = keys_under(&lake, &moto, "marks/raw/").await.len();
    assert!(hours >= 4, "{hours} hours marked");

    // Two hours on, every hour written is closed.
    let report = lake.compact_marked(now + 2 * HOUR).await.unwrap();
    assert_eq!(report.partitions, hours, "{report:?}");
    assert_eq!(report.left_open, 0);
    assert_eq!(everything(&lake, range).await, before);
    assert!(keys_under(&lake, &moto, "incoming/").await.is_empty());
    assert!(keys_under(&lake, &moto, "marks/").await.is_empty());
    let compacted = keys_under(&lake, &moto, "raw/").await;
    assert_eq!(compacted.len(), hours, "{compacted:?}");
    let rows: usize = before.iter().map(|r| r.3.len()).sum();
    assert_eq!(report.rows_written, rows);

    // Nothing left to do: a second run rewrites nothing.
    let again = lake.compact_marked(now + 2 * HOUR).await.unwrap();
    assert_eq!(again.partitions, 0);

    let client = iotdp::wiring::s3_client(&moto.sdk_config().await);
    let mut files = Vec::new();
    for key in &compacted {
        let object = client
            .get_object()
            .bucket(lake.bucket())
            .key(key)
            .send()
            .await
            .unwrap();
        let path = std::env::temp_dir().join(format!(
            "compacted-{}-{}.parquet",
            std::process::id(),
            files.len()
        ));
        std::fs::write(&path, object.body.collect().await.unwrap().into_bytes()).unwrap();
        files.push(path);
    }
    let script = r#"
import json, sys
import pyarrow.parquet as pq
out = []
for path in sys.argv[1:]:
    t = pq.read_table(path)
    meta = pq.ParquetFile(path).metadata
    col = meta.row_group(0).column(0)
    keys = [(r["device_id"], r["metric"], r["time"].timestamp()) for r in t.to_pylist()]
    out.append({
        "rows": len(keys),
        "sorted": keys == sorted(keys),
        "unique": len(set(keys)) == len(keys),
        "statistics": col.is_stats_set,
        "page_index": col.has_column_index and col.has_offset_index,
    })
print(json.dumps(out))
"#;
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .expect("pyarrow in .venv (make tools)");
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let total: u64 = read.iter().map(|f| f["rows"].as_u64().unwrap()).sum();
    assert_eq!(total as usize, rows);
    for file in &read {
        for check in ["sorted", "unique", "statistics", "page_index"] {
            assert_eq!(file[check], true, "{check}: {read:?}");
        }
    }
}

/// A late reading for a compacted hour marks the hour again, is read at once, and is folded in
/// by the next compaction; the current hour is left open until it holds enough objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reading_reopens_its_compacted_hour() {
    let moto = MotoServer::start();
    let lake = lake_on_moto(&moto).await;
    let now = chrono::Utc::now().timestamp_millis();
    let hour = now / HOUR * HOUR - 3 * HOUR;
    let reading = |device: &str, time_ms: i64, version: i64| {
        one(device.into(), time_ms, "moisture", version as f64, version)
    };
    lake.write(&[reading("a", hour + 1, 1), reading("b", hour + 2, 1)])
        .await
        .unwrap();
    lake.write(&[reading("a", now, 1)]).await.unwrap();
    let report = lake.compact_marked(now).await.unwrap();
    assert_eq!((report.partitions, report.left_open), (1, 1), "{report:?}");

    // Five hours late, and a correction of `a`.
    lake.write(&[reading("c", hour + 3, 1), reading("a", hour + 1, 2)])
        .await
        .unwrap();
    assert_eq!(keys_under(&lake, &moto, "marks/raw/").await.len(), 2);
    let range = TimeRange {
        from_ms: hour,
        to_ms: hour + HOUR,
    };
    let want = vec![
        ("a".to_string(), hour + 1, 2, vec!["moisture".to_string()]),
        ("b".to_string(), hour + 2, 1, vec!["moisture".to_string()]),
        ("c".to_string(), hour + 3, 1, vec!["moisture".to_string()]),
    ];
    assert_eq!(everything(&lake, range).await, want);
    let report = lake.compact_marked(now).await.unwrap();
    assert_eq!(report.partitions, 1, "{report:?}");
    assert_eq!(report.objects_replaced, 2);
    assert_eq!(report.rows_written, 3);
    assert_eq!(everything(&lake, range).await, want);
    let prefix = format!("raw/{}/", iotdp::adapters::lake::partition(hour));
    assert_eq!(keys_under(&lake, &moto, &prefix).await.len(), 1);
}

/// Two compactions of one hour at once, while writers add late readings to it: nothing lost,
/// nothing read twice, and the hour ends as one compacted object once the dust settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_compactions_and_writers_lose_nothing() {
    let moto = MotoServer::start();
    let lake = lake_on_moto(&moto).await;
    let hour = chrono::Utc::now().timestamp_millis() / HOUR * HOUR - 2 * HOUR;
    let batch = |writer: i64| -> Vec<Reading> {
        (0..10)
            .map(|i| one(format!("w{writer}"), hour + i * 1_000, "t", i as f64, 1))
            .collect()
    };
    for w in 0..4 {
        lake.write(&batch(w)).await.unwrap();
    }
    let partition = iotdp::adapters::lake::layout::Table::Raw.partition_of(hour);
    let mut tasks = Vec::new();
    for w in 4..10 {
        let lake = lake.clone();
        let readings = batch(w);
        tasks.push(tokio::spawn(async move {
            lake.write(&readings)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }));
    }
    for _ in 0..2 {
        let lake = lake.clone();
        tasks.push(tokio::spawn(async move {
            lake.compact(partition)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }));
    }
    for task in futures_util::future::join_all(tasks).await {
        task.unwrap().unwrap();
    }
    let range = TimeRange {
        from_ms: hour,
        to_ms: hour + HOUR,
    };
    assert_eq!(everything(&lake, range).await.len(), 10 * 10);
    let now = hour + 3 * HOUR;
    lake.compact_marked(now).await.unwrap();
    lake.compact_marked(now).await.unwrap();
    assert_eq!(everything(&lake, range).await.len(), 10 * 10);
    let prefix = format!("raw/{}/", partition.name());
    let left = keys_under(&lake, &moto, &prefix).await;
    assert!(!left.is_empty() && left.len() <= 3, "{left:?}");
    assert!(keys_under(&lake, &moto, "marks/").await.is_empty());
}

/// What a compaction killed at any step leaves: a compacted object no manifest names (killed
/// before its swap), incoming objects already replaced (killed before its deletes), its mark.
/// Nothing reads the orphans, and the next compaction of the hour deletes them once they are
/// older than any compaction in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_killed_mid_rewrite_loses_and_doubles_nothing() {
    let moto = MotoServer::start();
    let lake = lake_on_moto(&moto).await;
    let now = chrono::Utc::now().timestamp_millis();
    let hour = now / HOUR * HOUR - 2 * HOUR;
    let readings: Vec<Reading> = (0..20)
        .map(|i| one(format!("d{}", i % 3), hour + i * 60_000, "t", i as f64, 1))
        .collect();
    lake.write(&readings[..10]).await.unwrap();
    lake.write(&readings[10..]).await.unwrap();
    let partition = iotdp::adapters::lake::layout::Table::Raw.partition_of(hour);
    let client = iotdp::wiring::s3_client(&moto.sdk_config().await);
    let put = |key: String, body: Vec<u8>| {
        let client = client.clone();
        let bucket = lake.bucket().to_owned();
        async move {
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body.into())
                .send()
                .await
                .unwrap();
        }
    };
    // Killed before the swap: a compacted object holding everything, named by no manifest.
    let all = iotdp::adapters::lake::format::encode(&readings).unwrap();
    put(partition.compacted_key(0xdead), all.clone()).await;
    // Killed after the swap, before its deletes: a replaced incoming object left behind.
    put(partition.incoming_key(0xbeef), all).await;
    let range = TimeRange {
        from_ms: hour,
        to_ms: hour + HOUR,
    };
    assert_eq!(
        everything(&lake, range).await.len(),
        20,
        "orphans are not read"
    );

    // The orphans are younger than a compaction in flight could be: kept.
    let report = lake.compact_marked(now).await.unwrap();
    assert_eq!((report.partitions, report.orphans_deleted), (1, 0));
    assert_eq!(everything(&lake, range).await.len(), 20);
    // A late reading reopens the hour; the compaction half an hour on deletes the orphans.
    let late = Reading {
        time_ms: hour + 59 * 60_000,
        ..readings[0].clone()
    };
    lake.write(std::slice::from_ref(&late)).await.unwrap();
    let report = lake.compact_marked(now + 30 * 60_000).await.unwrap();
    assert_eq!(
        (report.partitions, report.orphans_deleted),
        (1, 2),
        "{report:?}"
    );
    assert_eq!(everything(&lake, range).await.len(), 21);
    let prefix = format!("raw/{}/", partition.name());
    assert_eq!(keys_under(&lake, &moto, &prefix).await.len(), 1);
    assert!(keys_under(&lake, &moto, "incoming/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lake_answers_every_read_as_the_reference_does() {
    let now = chrono::Utc::now().timestamp_millis();
    let readings = readings(now);
    assert!(readings.len() > 300, "{}", readings.len());
    let moto = MotoServer::start();
    let lake = lake_on_moto(&moto).await;
    let reference = MemoryStore::new(1_000);
    stored_in_batches(&lake, &readings).await;
    stored_in_batches(&reference, &readings).await;
    // The closed hours compacted, as the rollup function's schedule keeps them (reads on
    // uncompacted hours are compared with reads after compaction in the compaction's test);
    // the current hour stays as written.
    lake.compact_marked(now).await.unwrap();
    answers_every_read_as_the_reference_does(&lake, &reference, &readings, now).await;
}

/// Equal, or for numbers equal but for the last bits: a store that sums in another order (a
/// query engine's mean) rounds differently.
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

fn same_value(a: &MetricValue, b: &MetricValue) -> bool {
    match (a, b) {
        (MetricValue::Number(a), MetricValue::Number(b)) => close(*a, *b),
        _ => a == b,
    }
}

/// The read contract every store's reader keeps: the same answers as the memory reference on
/// every read route for [`readings`] (duplicates, a correction, 5-hour-late copies), stored in
/// both. The lake runs it here, InfluxDB in `influxdb_store`.
pub(crate) async fn answers_every_read_as_the_reference_does<S: TimeSeriesReader>(
    lake: &S,
    reference: &MemoryStore,
    readings: &[Reading],
    now: i64,
) {
    let range = TimeRange {
        from_ms: now - 8 * HOUR,
        to_ms: now + 60_000,
    };
    let mut metrics = reference.metric_names().await.unwrap();
    assert_eq!(lake.metric_names().await.unwrap(), metrics);
    metrics.push("seq".into());
    let mut devices: Vec<String> = readings.iter().map(|r| r.device_id.clone()).collect();
    devices.sort();
    devices.dedup();
    let mut compared = 0;
    // Every fourth device: each query reads its hours' objects, and moto serves them one at a
    // time.
    for device in devices.iter().step_by(4) {
        let names: Vec<&str> = metrics.iter().map(String::as_str).collect();
        assert_eq!(
            lake.latest_values(device, &names).await.unwrap(),
            reference.latest_values(device, &names).await.unwrap(),
            "{device}"
        );
        for metric in &metrics {
            for bins in [
                None,
                Some((Duration::from_secs(300), Aggregate::Avg)),
                Some((Duration::from_secs(3_600), Aggregate::Count)),
            ] {
                let query = SeriesQuery {
                    device_id: device.clone(),
                    metric: metric.clone(),
                    range,
                    bins,
                    limit: None,
                };
                let want = reference.series(&query).await.unwrap();
                compared += want.len();
                let got = lake.series(&query).await.unwrap();
                assert!(
                    got.len() == want.len()
                        && got.iter().zip(&want).all(|(g, w)| {
                            g.time_ms == w.time_ms && same_value(&g.value, &w.value)
                        }),
                    "{device} {metric} {bins:?}: {got:?} against {want:?}"
                );
            }
        }
    }
    assert!(compared > 100, "{compared}");
    for metric in &metrics {
        let all = FleetFilter::default();
        assert_eq!(
            lake.latest_by_device(metric, &all).await.unwrap(),
            reference.latest_by_device(metric, &all).await.unwrap()
        );
        for (within, aggregate) in [("", Aggregate::Avg), ("site-a", Aggregate::Max)] {
            let within = LocationPath::parse(within).unwrap_or_default();
            let got = lake
                .drill_down(metric, &within, range, aggregate)
                .await
                .unwrap();
            let want = reference
                .drill_down(metric, &within, range, aggregate)
                .await
                .unwrap();
            assert!(
                got.len() == want.len()
                    && got
                        .iter()
                        .zip(&want)
                        .all(|(g, w)| { g.group == w.group && close(g.value, w.value) }),
                "{metric} under {within}: {got:?} against {want:?}"
            );
        }
    }
    // The correction won, on both.
    let corrected = readings.iter().find(|r| r.version > now + 500).unwrap();
    let query = SeriesQuery {
        device_id: corrected.device_id.clone(),
        metric: corrected.metrics[0].name.clone(),
        range: TimeRange {
            from_ms: corrected.time_ms,
            to_ms: corrected.time_ms + 1,
        },
        bins: None,
        limit: None,
    };
    let points = lake.series(&query).await.unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].value, MetricValue::Number(12_345.0));
}

/// Eight writers into one hour at once: every object ends up in the manifest (the conditional
/// writes lose nothing), and every reading is read back once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_to_one_hour_lose_nothing() {
    let moto = MotoServer::start();
    let lake = lake_on_moto(&moto).await;
    let hour = chrono::Utc::now().timestamp_millis() / HOUR * HOUR;
    let batch = |writer: i64| -> Vec<Reading> {
        (0..25)
            .map(|i| one(format!("w{writer}"), hour + i * 1_000, "t", i as f64, 1))
            .collect()
    };
    let writes = (0..8).map(|w| {
        let lake = lake.clone();
        let readings = batch(w);
        tokio::spawn(async move { lake.write(&readings).await })
    });
    for write in futures_util::future::join_all(writes).await {
        write.unwrap().unwrap();
    }
    let all = lake
        .readings(TimeRange {
            from_ms: hour,
            to_ms: hour + HOUR,
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 8 * 25);
}

/// pyarrow, an independent reader, finds in an object exactly the readings sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_reads_the_files_as_written() {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let readings: Vec<Reading> = (0..50)
        .map(|i| Reading {
            device_id: format!("box-{}", i % 5),
            time_ms: 1_765_000_000_000 + i * 60_000,
            seq: Some(i as u64),
            metrics: vec![
                Metric {
                    name: "soc".into(),
                    value: MetricValue::Number(50.0 + i as f64 / 4.0),
                },
                Metric {
                    name: "charging".into(),
                    value: MetricValue::Bool(i % 2 == 0),
                },
            ],
            version: 7,
            dimensions: None,
        })
        .collect();
    let bytes = iotdp::adapters::lake::format::encode(&readings).unwrap();
    let path = std::env::temp_dir().join(format!("lake-{}.parquet", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let script = r#"
import json, sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
meta = pq.ParquetFile(sys.argv[1]).metadata
print(json.dumps({
    "codec": meta.row_group(0).column(0).compression,
    "rows": [[r["device_id"], r["time"].timestamp() * 1000, r["metric"], r["value"], r["flag"], r["seq"]]
             for r in t.to_pylist()],
}))
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .expect("pyarrow in .venv (make tools)");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["codec"], "ZSTD");
    let mut rows: Vec<String> = read["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    rows.sort();
    let mut want: Vec<String> = readings
        .iter()
        .flat_map(|r| {
            r.metrics.iter().map(move |m| {
                let (value, flag) = match m.value {
                    MetricValue::Number(n) => (serde_json::json!(n), serde_json::Value::Null),
                    MetricValue::Bool(b) => (serde_json::Value::Null, serde_json::json!(b)),
                    MetricValue::Text(_) => unreachable!(),
                };
                serde_json::json!([r.device_id, r.time_ms as f64, m.name, value, flag, r.seq])
                    .to_string()
            })
        })
        .collect();
    want.sort();
    assert_eq!(rows, want);
}

/// The lake on an endpoint that keeps objects as S3 does and throttles as S3 does.
async fn lake_on_fake(fake: &iotdp_integration_tests::fake_aws::FakeAws) -> LakeStore {
    let sdk = iotdp_local::platform::local_sdk_config(&fake.endpoint).await;
    LakeStore::new(
        iotdp::wiring::s3_client(&sdk),
        iotdp_integration_tests::fake_aws::LAKE_BUCKET,
    )
}

fn batches_of(hour: i64) -> Vec<Vec<Reading>> {
    (0..5)
        .map(|b| {
            (0..20)
                .map(|i| {
                    one(
                        format!("ac-{b}"),
                        hour + i * 60_000,
                        "temperature",
                        20.0 + i as f64 / 10.0,
                        1,
                    )
                })
                .collect()
        })
        .collect()
}

/// S3 throttling (`503 SlowDown`) on writes and reads: with every other lake request
/// throttled every reading is stored exactly once and read back; with every request
/// throttled a batch is returned for retry (nothing counted as stored), reads fail with a
/// reason, and the retry once S3 recovers stores each reading once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_down_on_writes_and_reads_loses_and_doubles_nothing() {
    let fake = iotdp_integration_tests::fake_aws::FakeAws::start(&[]).await;
    let lake = lake_on_fake(&fake).await;
    let hour = chrono::Utc::now().timestamp_millis() / HOUR * HOUR - 2 * HOUR;
    let batches = batches_of(hour);
    let range = TimeRange {
        from_ms: hour,
        to_ms: hour + HOUR,
    };

    fake.throttle_lake(2);
    for batch in &batches[..3] {
        stored_in_batches(&lake, batch).await;
    }
    assert_eq!(lake.readings(range).await.unwrap().len(), 60);
    let received = fake.take();
    assert!(
        received.calls.get("S3.SlowDown").copied().unwrap_or(0) > 3,
        "{:?}",
        received.calls
    );
    let mut written = received.written.clone();
    written.sort();
    written.dedup();
    assert_eq!(written.len(), 60);
    assert_eq!(
        received.written.len(),
        60,
        "a throttled write was written twice"
    );

    fake.throttle_lake(1);
    let deadline = Instant::now() + Duration::from_secs(20);
    let (outcomes, _) = write_readings(&lake, &batches[3], &WritePolicy::default(), deadline).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, WriteOutcome::Failed(_))),
        "{outcomes:?}"
    );
    let read = lake.readings(range).await;
    assert!(
        read.is_err(),
        "a read through throttling must fail, not answer short"
    );

    fake.throttle_lake(0);
    stored_in_batches(&lake, &batches[3]).await;
    stored_in_batches(&lake, &batches[4]).await;
    assert_eq!(lake.readings(range).await.unwrap().len(), 100);
}

/// A write cut off half way (the connection to S3 dropped) is returned for retry, and the
/// retry stores each reading once: the object's key is the same, and the manifest names it
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_cut_half_way_is_retried_without_a_copy() {
    let moto = MotoServer::start();
    let direct = lake_on_moto(&moto).await;
    let target: std::net::SocketAddr = moto.endpoint.trim_start_matches("http://").parse().unwrap();
    let relay = iotdp_integration_tests::relay::Relay::start(target).await;
    let sdk = iotdp_local::platform::local_sdk_config(&relay.url()).await;
    let lake = LakeStore::new(iotdp::wiring::s3_client(&sdk), direct.bucket());
    let hour = chrono::Utc::now().timestamp_millis() / HOUR * HOUR - 2 * HOUR;
    let batches = batches_of(hour);
    stored_in_batches(&lake, &batches[0]).await;

    relay.cut();
    assert!(lake.write(&batches[1]).await.is_err());
    relay.restore();
    stored_in_batches(&lake, &batches[1]).await;
    // The same batch delivered again (SQS redelivers what it cannot know was stored).
    stored_in_batches(&lake, &batches[1]).await;
    let range = TimeRange {
        from_ms: hour,
        to_ms: hour + HOUR,
    };
    assert_eq!(direct.readings(range).await.unwrap().len(), 40);
    let prefix = format!("incoming/raw/{}/", iotdp::adapters::lake::partition(hour));
    assert_eq!(keys_under(&direct, &moto, &prefix).await.len(), 2);
}

/// A device page on the lake answers from the registry's snapshot of latest values and the
/// readings after it, whatever the device's silence: a device quiet for ten days shows its
/// last values (the lake alone looks back 48 hours), a stale snapshot loses to the readings
/// after it, and both agree with the memory reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_values_come_from_the_registrys_snapshot_and_the_readings_after_it() {
    use iotdp::query::model::{KnownLatest, Point};
    let now = chrono::Utc::now().timestamp_millis();
    let quiet_at = now - 10 * 24 * HOUR;
    let written = vec![
        // The quiet device: its snapshot was written with the first reading, the second came
        // within the same interval (no registry write).
        one("quiet".into(), quiet_at, "temperature", 20.0, quiet_at),
        one(
            "quiet".into(),
            quiet_at + 300_000,
            "temperature",
            21.0,
            quiet_at + 300_000,
        ),
        // A reporting device, its snapshot an hour old.
        one("busy".into(), now - HOUR, "temperature", 30.0, now - HOUR),
        one(
            "busy".into(),
            now - 300_000,
            "temperature",
            31.0,
            now - 300_000,
        ),
    ];
    let moto = MotoServer::start();
    let lake = lake_on_moto(&moto).await;
    stored_in_batches(&lake, &written).await;
    let reference = MemoryStore::new(100);
    stored_in_batches(&reference, &written).await;
    let snapshot = |time_ms: i64, value: f64, last_seen: i64| KnownLatest {
        values: vec![(
            "temperature".to_owned(),
            Point {
                time_ms,
                value: MetricValue::Number(value),
            },
        )],
        tail_until_ms: Some(last_seen + HOUR),
    };

    // Without the snapshot, ten days back is beyond the lake's look-back.
    assert!(
        lake.latest_values("quiet", &["temperature"])
            .await
            .unwrap()
            .is_empty()
    );
    for (device, known) in [
        ("quiet", snapshot(quiet_at, 20.0, quiet_at)),
        ("busy", snapshot(now - HOUR, 30.0, now - HOUR)),
    ] {
        let answer = lake
            .latest_values_after(device, &["temperature"], &known)
            .await
            .unwrap();
        let expected = reference
            .latest_values(device, &["temperature"])
            .await
            .unwrap();
        assert_eq!(answer, expected, "{device}");
        assert_eq!(answer.len(), 1, "{device}: {answer:?}");
    }
    // A metric the snapshot lacks is looked for as without one; an unknown one is absent.
    let answer = lake
        .latest_values_after(
            "busy",
            &["temperature", "humidity"],
            &snapshot(now - HOUR, 30.0, now - HOUR),
        )
        .await
        .unwrap();
    assert_eq!(
        answer,
        reference
            .latest_values("busy", &["temperature", "humidity"])
            .await
            .unwrap()
    );
}

/// The Athena queries docs/lake.md gives an analyst, run as written by DuckDB (an independent
/// engine, pinned in requirements-dev.txt) over the compacted objects under the Glue tables'
/// locations (`raw/`, `rollups/1h/`, `rollups/1d/`, their Hive partitions as columns): they
/// parse, and answer what the readings say. The readings sit on the docs' own dates: a battery
/// box at 12 V and 2 A every 5 minutes on 3 and 4 November 2026 and once on 2 December (six
/// days before "now"), a
/// second box heard only on 20 November (silent last week), and a wall's two spots at moisture
/// 0.4 and 0.6 through 10 November.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analysts_queries_in_the_docs_answer_what_the_readings_say() {
    use iotdp::rollup::job::{RollupJob, RollupSettings};
    use iotdp_memory::MemoryRollupState;
    use std::sync::Arc;
    let day = 24 * HOUR;
    let nov_3 = chrono::DateTime::parse_from_rfc3339("2026-11-03T00:00:00Z")
        .unwrap()
        .timestamp_millis();
    let nov_10 = nov_3 + 7 * day;
    let nov_20 = nov_3 + 17 * day;
    let dec_2 = nov_3 + 29 * day;
    let now = dec_2 + 6 * day;
    let mut written = Vec::new();
    let battery = |device: &str, t: i64| {
        Reading::new(
            device,
            t,
            [
                ("voltage", MetricValue::Number(12.0)),
                ("current", MetricValue::Number(2.0)),
            ],
        )
        .with_place("battery-box", LocationPath::parse("site-9").unwrap())
    };
    for i in 0..(2 * 288) {
        written.push(battery("battery-0001", nov_3 + i * 300_000));
    }
    written.push(battery("battery-0001", dec_2));
    written.push(battery("battery-0002", nov_20));
    for (spot, moisture) in [("spot-01", 0.4), ("spot-02", 0.6)] {
        let path = LocationPath::parse(&format!("wall-2/zone-a/section-1/{spot}")).unwrap();
        for h in 0..24 {
            written.push(
                Reading::new(
                    &format!("wall-2-{spot}"),
                    nov_10 + h * HOUR,
                    [("moisture", MetricValue::Number(moisture))],
                )
                .with_place("plant-sensor", path.clone()),
            );
        }
    }
    let moto = MotoServer::start();
    let lake = Arc::new(lake_on_moto(&moto).await);
    stored_in_batches(lake.as_ref(), &written).await;
    let job = RollupJob::new(
        lake.clone(),
        Arc::new(MemoryRollupState::default()),
        RollupSettings::default(),
    );
    job.run(now).await.unwrap();
    job.rebuild(
        TimeRange {
            from_ms: nov_3 - day,
            to_ms: now,
        },
        &LocationPath::default(),
        now,
        |_, _| {},
    )
    .await
    .unwrap();
    lake.compact_marked(now + 2 * HOUR).await.unwrap();

    // The compacted objects as S3 holds them, under the Glue tables' locations.
    let root = std::env::temp_dir().join(format!("lake-athena-{}", std::process::id()));
    let sdk = moto.sdk_config().await;
    let client = iotdp::wiring::s3_client(&sdk);
    for prefix in ["raw/", "rollups/1h/", "rollups/1d/"] {
        for key in keys_under(&lake, &moto, prefix).await {
            let object = client
                .get_object()
                .bucket("lake")
                .key(&key)
                .send()
                .await
                .unwrap();
            let path = root.join(&key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, object.body.collect().await.unwrap().into_bytes()).unwrap();
        }
    }
    let script = r#"
import json, re, sys
import duckdb
root, doc = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
for table, files in [("readings", "raw/*/*/*.parquet"), ("rollups_1h", "rollups/1h/*/*.parquet"),
                     ("rollups_1d", "rollups/1d/*/*.parquet")]:
    con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{root}/{files}', "
                "hive_partitioning = true, hive_types_autocast = false)")
answers = []
for query in re.findall(r"```sql\n(.*?)```", open(doc).read(), re.S):
    answers.append([[c if isinstance(c, (int, float)) else str(c) for c in row]
                    for row in con.execute(query).fetchall()])
print(json.dumps(answers))
"#;
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let doc = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/lake.md");
    let out = std::process::Command::new(python)
        .args(["-c", script, root.to_str().unwrap(), doc])
        .output()
        .expect("the venv's python (make tools)");
    std::fs::remove_dir_all(&root).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Vec<Vec<serde_json::Value>>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        answers.len(),
        4,
        "four queries in docs/lake.md: {answers:?}"
    );
    let energy = |rows: &[Vec<serde_json::Value>]| -> Vec<f64> {
        rows.iter().map(|r| r[1].as_f64().unwrap()).collect()
    };
    // (a) from the daily rollups: 24 W over each day's 23 h 55 min of readings. December's
    // month partition is still open (not compacted), so Athena does not see it yet.
    let from_rollups = energy(&answers[0]);
    assert_eq!(answers[0].len(), 2, "{:?}", answers[0]);
    assert!(
        (from_rollups[0] - 24.0 * 86_100.0 / 3_600.0).abs() < 1e-6,
        "{from_rollups:?}"
    );
    assert!(
        (from_rollups[1] - 24.0 * 86_100.0 / 3_600.0).abs() < 1e-6,
        "{from_rollups:?}"
    );
    // (a) from the readings: each reading's 24 W held 5 minutes, the last one (no next within
    // 5 minutes) not at all: 288 intervals on the 3rd, 287 on the 4th.
    assert_eq!(answers[1].len(), 2, "{:?}", answers[1]);
    let from_readings = energy(&answers[1]);
    assert!(
        (from_readings[0] - 288.0 * 24.0 / 12.0).abs() < 1e-6,
        "{from_readings:?}"
    );
    assert!(
        (from_readings[1] - 287.0 * 24.0 / 12.0).abs() < 1e-6,
        "{from_readings:?}"
    );
    // (b) the wall's hourly moisture, the mean of its two spots.
    assert_eq!(answers[2].len(), 24, "{:?}", answers[2]);
    for row in &answers[2] {
        assert!((row[1].as_f64().unwrap() - 0.5).abs() < 1e-9, "{row:?}");
    }
    // (c) silent last week: the wall's spots (last heard on 10 November) and the box last heard
    // on the 20th, in that order; not the box heard on the 2nd.
    let silent: Vec<&str> = answers[3].iter().map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(silent.len(), 3, "{silent:?}");
    assert_eq!(silent[2], "battery-0002");
    let mut spots = silent[..2].to_vec();
    spots.sort_unstable();
    assert_eq!(spots, ["wall-2-spot-01", "wall-2-spot-02"]);
}

/// A device page that names no metrics lists the metrics the lake holds from its catalogue:
/// one GET, every name ever written (a metric last sent five days ago too, which a scan of the
/// recent hours missed), and writers adding names at once lose none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metric_names_come_from_a_catalogue_every_writer_adds_to() {
    let now = chrono::Utc::now().timestamp_millis();
    let moto = MotoServer::start();
    let lake = lake_on_moto(&moto).await;
    stored_in_batches(
        &lake,
        &[one(
            "old".into(),
            now - 5 * 24 * HOUR,
            "firmware_crc",
            7.0,
            1,
        )],
    )
    .await;
    let writers = (0..6).map(|w| {
        let lake = lake.clone();
        async move {
            let reading = one(format!("w{w}"), now, &format!("metric_{w}"), 1.0, 1);
            stored_in_batches(&lake, &[reading]).await;
        }
    });
    futures_util::future::join_all(writers).await;
    let mut expected: Vec<String> = (0..6).map(|w| format!("metric_{w}")).collect();
    expected.push("firmware_crc".into());
    expected.sort();
    assert_eq!(lake.metric_names().await.unwrap(), expected);
    // A fresh instance (a cold function) reads the same.
    let fresh = LakeStore::new(iotdp::wiring::s3_client(&moto.sdk_config().await), "lake");
    assert_eq!(fresh.metric_names().await.unwrap(), expected);
}
