//! `iotdp readings` against a real `influxd`: the operator reads a device's metric back, raw
//! and in bins, through the same read port as the query API.

use std::process::Command;
use std::time::Duration;

use iotdp::adapters::influxdb::InfluxDbStore;
use iotdp::domain::{Metric, MetricValue, Reading};
use iotdp::ingest::store_writer::{WritePolicy, write_readings};
use iotdp_integration_tests::InfluxServer;

const T0: i64 = 1_764_000_000_000; // 2025-11-24T16:00:00Z

#[tokio::test]
async fn a_device_metric_comes_back_raw_and_binned() {
    let influx = InfluxServer::start();
    let store = InfluxDbStore::new(&influx.settings()).unwrap();
    let readings: Vec<Reading> = [(0, 20.0), (30, 22.0), (60, 24.0), (90, 26.0)]
        .iter()
        .map(|(s, t)| Reading {
            device_id: "ac-1".into(),
            time_ms: T0 + s * 1000,
            seq: None,
            metrics: vec![Metric {
                name: "temperature".into(),
                value: MetricValue::Number(*t),
            }],
            version: T0,
            dimensions: None,
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    write_readings(&store, &readings, &WritePolicy::default(), deadline).await;

    let invoke = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_iotdp"))
            .args([
                "readings",
                "ac-1",
                "temperature",
                "--store",
                "influxdb",
                "--influxdb-url",
                &influx.process.url,
                "--from",
                "2025-11-24T16:00:00Z",
                "--to",
                "2025-11-24T16:02:00Z",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let run = |extra: &[&str]| {
        let out = invoke(extra);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let raw = run(&[]);
    assert_eq!(raw.lines().count(), 5, "{raw}");
    assert!(raw.contains("2025-11-24T16:00:30.000Z  22"), "{raw}");
    let binned = run(&["--bin", "1m", "--agg", "max"]);
    let rows: Vec<&str> = binned.lines().skip(1).collect();
    assert_eq!(
        rows,
        [
            "2025-11-24T16:00:00.000Z  22",
            "2025-11-24T16:01:00.000Z  26"
        ],
        "{binned}"
    );
    // A mistake is named, not a crash.
    let bad = invoke(&["--bin", "2 minutes"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("2 minutes"));
}
