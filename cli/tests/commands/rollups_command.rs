//! `iotdp rollups`: a rebuild over readings already in the store (InfluxDB here) fills every
//! tier, `status` then shows the coverage, and `iotdp readings` answers hourly bins from the
//! rollups with the same values the raw readings give.

use std::process::Command;
use std::time::Duration;

use iotdp::adapters::influxdb::InfluxDbStore;
use iotdp::domain::{LocationPath, MetricValue, Reading};
use iotdp::ingest::store_writer::{WritePolicy, write_readings};
use iotdp_integration_tests::{InfluxServer, MotoServer, REGION, provision_template_with};
use serde_json::Value;

fn iotdp(endpoint: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_iotdp"))
        .args(args)
        .env_remove("IOTDP_ROLLUP_STATE_TABLE")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .expect("run iotdp");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "iotdp {args:?}: {stderr}");
    (stdout, stderr)
}

#[tokio::test]
async fn a_rebuild_fills_every_tier_and_readings_use_it() {
    let moto = MotoServer::start();
    let influx = InfluxServer::start();
    let parameters = [
        ("TimeSeriesStore", "influxdb"),
        ("InfluxDbUrl", influx.process.url.as_str()),
        ("InfluxDbDatabase", influx.database.as_str()),
    ];
    provision_template_with(&moto.endpoint, "iotdp-rollups", &parameters).await;
    let at = |args: &[&str]| {
        let mut all = vec!["--stack", "iotdp-rollups", "--output", "json"];
        all.extend_from_slice(args);
        iotdp(&moto.endpoint, &all)
    };
    let (status, _) = at(&["rollups", "status"]);
    assert_eq!(
        serde_json::from_str::<Value>(&status).unwrap()["covered"],
        false
    );

    // Two days of readings every 5 minutes, imported before the job ever ran.
    let store = InfluxDbStore::new(&influx.settings()).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let readings: Vec<Reading> = (0..(2 * 24 * 12))
        .map(|i| {
            Reading::new(
                "box-7",
                now - 2 * 86_400_000 + i * 300_000,
                [(
                    "voltage",
                    MetricValue::Number(12.0 + (i % 10) as f64 / 10.0),
                )],
            )
            .with_place("battery-box", LocationPath::parse("site-3").unwrap())
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    write_readings(&store, &readings, &WritePolicy::default(), deadline).await;

    let (raw_answer, raw_note) = iotdp(
        &moto.endpoint,
        &[
            "--stack",
            "iotdp-rollups",
            "--output",
            "json",
            "readings",
            "box-7",
            "voltage",
            "--from",
            "-36h",
            "--bin",
            "1h",
            "--rollup-state-table",
            "none-yet",
        ],
    );
    assert!(raw_note.contains("raw"), "{raw_note}");

    let (rebuilt, _) = at(&["rollups", "rebuild", "--from", "-3d"]);
    let rebuilt: Value = serde_json::from_str(&rebuilt).unwrap();
    assert_eq!(rebuilt["raw_readings"], readings.len());
    assert!(rebuilt["rows_written"].as_u64().unwrap() > 0);
    let (status, _) = at(&["rollups", "status"]);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["covered"], true);
    assert!(status["lag_seconds"].as_i64().unwrap() < 300, "{status}");
    let rows =
        influx.series("SELECT count(\"count\") FROM \"telemetry_1h\" WHERE \"level\" = 'device'");
    assert!(rows[0]["values"][0][1].as_i64().unwrap() >= 47);

    let (from_rollups, note) = at(&[
        "readings", "box-7", "voltage", "--from", "-36h", "--bin", "1h",
    ]);
    assert!(note.contains("1h"), "{note}");
    let points = |text: &str| -> Vec<(String, f64)> {
        text.lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["time"].as_str().unwrap().to_owned(),
                    v["value"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (a, b) = (points(&raw_answer), points(&from_rollups));
    assert_eq!(a.len(), b.len());
    assert!(a.len() >= 36);
    for ((ta, va), (tb, vb)) in a.iter().zip(&b) {
        assert_eq!(ta, tb);
        assert!((va - vb).abs() < 1e-9, "{ta}: {va} vs {vb}");
    }
}
