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

/// The simulated fleet's readings over the last hours, each device placed in one of two
/// sites; then some of them again (a redelivered batch), one corrected (a higher version),
/// and a gateway's 5-hour-late readings.
fn readings(now: i64) -> Vec<Reading> {
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
    let mut corrected = out[3].clone();
    corrected.version += 1_000;
    corrected.metrics = vec![Metric {
        name: corrected.metrics[0].name.clone(),
        value: MetricValue::Number(12_345.0),
    }];
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

async fn stored_in_batches<S: TimeSeriesStore>(store: &S, readings: &[Reading]) {
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
    let sdk = moto.sdk_config().await;
    let client = iotdp::wiring::s3_client(&sdk);
    client.create_bucket().bucket("lake").send().await.unwrap();
    LakeStore::new(client, "lake")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "not yet passing within CI's time: each query reads its hours' objects whole until compaction sorts them; run with --ignored"]
async fn the_lake_answers_every_read_as_the_reference_does() {
    let now = chrono::Utc::now().timestamp_millis();
    let readings = readings(now);
    assert!(readings.len() > 300, "{}", readings.len());
    let moto = MotoServer::start();
    let lake = lake_on_moto(&moto).await;
    let reference = MemoryStore::new(1_000);
    stored_in_batches(&lake, &readings).await;
    stored_in_batches(&reference, &readings).await;

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
    // Every fourth device: each query reads the hours' objects whole until compaction sorts
    // them, and moto serves them one at a time.
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
                assert_eq!(
                    lake.series(&query).await.unwrap(),
                    want,
                    "{device} {metric} {bins:?}"
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
            assert_eq!(
                lake.drill_down(metric, &within, range, aggregate)
                    .await
                    .unwrap(),
                reference
                    .drill_down(metric, &within, range, aggregate)
                    .await
                    .unwrap(),
                "{metric} under {within}"
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
            .map(|i| Reading {
                device_id: format!("w{writer}"),
                time_ms: hour + i * 1_000,
                seq: None,
                metrics: vec![Metric {
                    name: "t".into(),
                    value: MetricValue::Number(i as f64),
                }],
                version: 1,
                dimensions: None,
            })
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
