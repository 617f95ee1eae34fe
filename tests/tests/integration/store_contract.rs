//! One contract, both stores: the same readings written through the store writer to
//! Timestream (moto's server) and to InfluxDB (a real `influxd`) must all be reported stored,
//! and each store must then hold exactly those readings: same times, same metric values, with
//! types kept. moto keeps a request's `CommonAttributes` apart from its records, so for
//! Timestream the check uses what moto shows per record; InfluxDB is read back in full.

use std::collections::BTreeMap;
use std::time::Duration;

use iotdp::adapters::influxdb::InfluxDbStore;
use iotdp::adapters::timestream::TimestreamStore;
use iotdp::domain::{MetricValue, Reading};
use iotdp::ingest::batch::prepare_batch;
use iotdp::ingest::ports::TimeSeriesStore;
use iotdp::ingest::store_writer::{WriteOutcome, WritePolicy, write_readings};
use iotdp::ingest::validation::TimeWindow;
use iotdp_integration_tests::{InfluxServer, MotoServer, create_ingest_resources};
use iotdp_simulator::{Fleet, FleetConfig, reference_sqs_batch};
use tokio::time::Instant;

/// What a store holds for one reading: its time and its metrics, values as text by type.
type Stored = (i64, BTreeMap<String, String>);

fn canonical(value: &MetricValue) -> String {
    match value {
        MetricValue::Number(v) => format!("number:{v}"),
        MetricValue::Bool(b) => format!("bool:{b}"),
        MetricValue::Text(s) => format!("text:{s}"),
    }
}

fn expected(readings: &[Reading]) -> Vec<Stored> {
    let mut out: Vec<Stored> = readings
        .iter()
        .map(|r| {
            let mut metrics: BTreeMap<String, String> = r
                .metrics
                .iter()
                .map(|m| (m.name.clone(), canonical(&m.value)))
                .collect();
            if let Some(seq) = r.seq {
                metrics.insert("seq".into(), format!("integer:{seq}"));
            }
            (r.time_ms, metrics)
        })
        .collect();
    out.sort();
    out
}

/// Readings from the reference batch and from the simulated fleet (noisy values, strings,
/// booleans, sequence numbers, 5-hour-late gateway batches), deduplicated by series and time
/// (a store keeps one value per series and instant).
fn contract_readings() -> Vec<Reading> {
    let now = chrono::Utc::now().timestamp_millis();
    let (mut bodies, _) = reference_sqs_batch(now);
    let mut fleet = Fleet::new(FleetConfig {
        devices: 30,
        seed: 11,
        faulty_rate: 0.0,
    });
    for i in 0..300 {
        if let Some((_, topic, payload)) = fleet.next_message(now - 1000 + i) {
            let device = iotdp::domain::topic::device_id_from_topic(&topic)
                .unwrap()
                .to_owned();
            bodies.push((
                format!("sim-{i}"),
                iotdp::ingest::envelope::encode_envelope(
                    payload.as_bytes(),
                    &topic,
                    now,
                    Some(&device),
                ),
            ));
        }
    }
    let mut batch = prepare_batch(
        bodies.iter().map(|(id, b)| (id.as_str(), b.as_str())),
        TimeWindow::with_retention_days(73_000),
    );
    batch.sort_by_series();
    let mut readings = batch.readings;
    readings.dedup_by(|a, b| a.device_id == b.device_id && a.time_ms == b.time_ms);
    readings
}

async fn all_stored<S: TimeSeriesStore>(store: &S, readings: &[Reading]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (outcomes, _) = write_readings(store, readings, &WritePolicy::default(), deadline).await;
    let refused: Vec<_> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| **o != WriteOutcome::Stored)
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_stores_hold_exactly_what_was_written() {
    let readings = contract_readings();
    assert!(readings.len() > 2000, "{}", readings.len());
    let want = expected(&readings);

    // Timestream (moto).
    let moto = MotoServer::start();
    let sdk = iotdp_local::platform::local_sdk_config(&moto.endpoint).await;
    create_ingest_resources(&sdk).await;
    let timestream = TimestreamStore::new(
        aws_sdk_timestreamwrite::Client::new(&sdk),
        "iotdp",
        "telemetry",
    );
    all_stored(&timestream, &readings).await;
    let mut held: Vec<Stored> = moto
        .timestream_records("telemetry")
        .iter()
        .map(|record| {
            let time = record["Time"].as_str().unwrap().parse().unwrap();
            let metrics = record["MeasureValues"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    let value = m["Value"].as_str().unwrap();
                    let typed = match m["Type"].as_str().unwrap() {
                        "DOUBLE" => format!("number:{}", value.parse::<f64>().unwrap()),
                        "BOOLEAN" => format!("bool:{value}"),
                        "BIGINT" => format!("integer:{value}"),
                        _ => format!("text:{value}"),
                    };
                    (m["Name"].as_str().unwrap().to_owned(), typed)
                })
                .collect();
            (time, metrics)
        })
        .collect();
    held.sort();
    assert_eq!(held.len(), want.len());
    assert!(
        held == want,
        "Timestream holds something else than was written"
    );

    // InfluxDB.
    let influx = InfluxServer::start();
    let store = InfluxDbStore::new(&influx.settings()).unwrap();
    all_stored(&store, &readings).await;
    // A redelivered batch is written again as the same points: nothing doubles.
    all_stored(&store, &readings).await;
    let series = influx.series("SELECT * FROM telemetry");
    let columns: Vec<&str> = series[0]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let tags = [
        "device_id",
        "device_type",
        "site",
        "zone",
        "section",
        "spot",
    ];
    let mut held: Vec<Stored> = series[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let row = row.as_array().unwrap();
            let mut metrics = BTreeMap::new();
            for (column, value) in columns.iter().zip(row).skip(1) {
                if tags.contains(column) || value.is_null() {
                    continue;
                }
                let typed = match value {
                    serde_json::Value::Bool(b) => format!("bool:{b}"),
                    serde_json::Value::String(s) => format!("text:{s}"),
                    n if *column == "seq" => format!("integer:{n}"),
                    n => format!("number:{}", n.as_f64().unwrap()),
                };
                metrics.insert(column.to_string(), typed);
            }
            (row[0].as_i64().unwrap(), metrics)
        })
        .collect();
    held.sort();
    assert_eq!(held.len(), want.len());
    assert!(
        held == want,
        "InfluxDB holds something else than was written"
    );
}
