//! The pure ingest path on a 1,000-message SQS batch of mixed single readings (thermostats,
//! battery boxes) and 10-reading gateway batches (green wall): decode + validate, then build
//! the Timestream requests. Plain serde_json parsing of the same bytes is the floor.

use base64::Engine as _;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use iotdp::adapters::influxdb::line_protocol::encode_lines;
use iotdp::adapters::influxdb::{MAX_LINES_PER_WRITE, encode_request_body};
use iotdp::adapters::timestream::{MAX_RECORDS_PER_WRITE, build_write_request};
use iotdp::alerting::evaluator::{AlertEvaluator, AlertSettings};
use iotdp::ingest::batch::prepare_batch;
use iotdp::ingest::validation::TimeWindow;
use iotdp_memory::{MemoryAlertStates, MemoryCommander, MemoryNotifier, MemoryRules};
use iotdp_simulator::reference_sqs_batch;
use std::hint::black_box;
use support::{fifty_rules, warm_states};

mod support;

const RECEIVED: i64 = 1_764_000_000_000;

fn mixed_batch() -> (Vec<(String, String)>, u64) {
    reference_sqs_batch(RECEIVED)
}

fn ingest_path(c: &mut Criterion) {
    let (bodies, readings) = mixed_batch();
    let window = TimeWindow::with_retention_days(73_000);
    let pairs = || bodies.iter().map(|(id, body)| (id.as_str(), body.as_str()));

    let mut group = c.benchmark_group("ingest_1000_messages");
    group.throughput(Throughput::Elements(readings));
    group.bench_function("serde_json_floor", |b| {
        b.iter(|| {
            for (_, body) in pairs() {
                let envelope: serde_json::Value = serde_json::from_str(body).unwrap();
                let payload = base64::engine::general_purpose::STANDARD
                    .decode(envelope["payload"].as_str().unwrap())
                    .unwrap();
                black_box(serde_json::from_slice::<serde_json::Value>(&payload).unwrap());
            }
        });
    });
    group.bench_function("decode_validate", |b| {
        b.iter(|| black_box(prepare_batch(pairs(), window)));
    });
    group.bench_function("decode_validate_build_timestream_requests", |b| {
        b.iter(|| {
            let mut batch = prepare_batch(pairs(), window);
            batch.sort_by_series();
            for chunk in batch.readings.chunks(MAX_RECORDS_PER_WRITE) {
                black_box(build_write_request(chunk).unwrap());
            }
        });
    });
    // The same path plus alert evaluation against 50 active rules (in-memory state store, so
    // this measures the evaluation's CPU cost, not DynamoDB's latency). Steady state: no
    // reading crosses a threshold. Two mixes: thresholds, ranges and rates; and the same with
    // forecasts, anomaly baselines, levels and latched flapping rules in place of half of them.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let now = chrono::DateTime::from_timestamp_millis(RECEIVED).unwrap();
    for (name, rules) in [
        (
            "decode_validate_build_and_evaluate_50_rules",
            fifty_rules(false),
        ),
        (
            "decode_validate_build_and_evaluate_50_rules_with_forecasts_anomalies_levels",
            fifty_rules(true),
        ),
    ] {
        let warm_states = warm_states(&rules, &runtime, now, || prepare_batch(pairs(), window));
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    AlertEvaluator::new(
                        MemoryRules::new(rules.clone()),
                        MemoryAlertStates::from_snapshot(warm_states.clone()),
                        MemoryNotifier::default(),
                        MemoryCommander::default(),
                        AlertSettings::default(),
                    )
                },
                |evaluator| {
                    let mut batch = prepare_batch(pairs(), window);
                    batch.sort_by_series();
                    for chunk in batch.readings.chunks(MAX_RECORDS_PER_WRITE) {
                        black_box(build_write_request(chunk).unwrap());
                    }
                    black_box(runtime.block_on(evaluator.evaluate(&batch.readings, now)));
                    // Returned, so that dropping its states is not timed.
                    evaluator
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();

    // The two stores' request encoders on the same validated, sorted readings.
    let mut sorted = prepare_batch(pairs(), window);
    sorted.sort_by_series();
    let readings = &sorted.readings;
    let mut group = c.benchmark_group("store_encoding_3700_readings");
    group.throughput(Throughput::Elements(readings.len() as u64));
    group.bench_function("timestream_write_records", |b| {
        b.iter(|| {
            for chunk in readings.chunks(MAX_RECORDS_PER_WRITE) {
                black_box(build_write_request(chunk).unwrap());
            }
        });
    });
    group.bench_function("influxdb_line_protocol", |b| {
        let mut out = Vec::with_capacity(1 << 20);
        b.iter(|| {
            for chunk in readings.chunks(MAX_LINES_PER_WRITE) {
                out.clear();
                black_box(encode_lines(chunk, &mut out));
            }
        });
    });
    group.bench_function("influxdb_line_protocol_gzip", |b| {
        b.iter(|| {
            for chunk in readings.chunks(MAX_LINES_PER_WRITE) {
                black_box(encode_request_body(chunk));
            }
        });
    });
    group.finish();
}

/// Derived metrics at ingest: 5 expressions of a battery box's type (one reading another's)
/// applied to 10,000 readings of its 4 metrics, the readings' copies made outside the timing.
/// The budget is 10 % of a reading's ingest CPU.
fn derived_metrics(c: &mut Criterion) {
    use iotdp::devices::types::{Derivation, DerivedMetricSpec, DerivedMetrics};
    use iotdp::domain::{MetricValue, Reading};
    let spec = |name: &str, expression: &str| DerivedMetricSpec {
        name: name.into(),
        expression: expression.into(),
    };
    let derived = DerivedMetrics::compile(
        1,
        &[
            spec("power_w", "voltage * current"),
            spec("temperature_f", "temperature_c * 9 / 5 + 32"),
            spec("power_kw", "power_w / 1000"),
            spec("soc_fraction", "soc / 100"),
            spec("headroom_wh", "(100 - soc) * voltage * 0.8"),
        ],
        &["voltage", "current", "temperature_c", "soc"],
    )
    .unwrap();
    let readings: Vec<Reading> = (0..10_000)
        .map(|i| {
            Reading::new(
                &format!("bb-{:05}", i % 1000),
                RECEIVED + i,
                [
                    ("voltage", MetricValue::Number(12.0 + (i % 7) as f64 / 10.0)),
                    ("current", MetricValue::Number(-3.0 + (i % 11) as f64 / 2.0)),
                    ("temperature_c", MetricValue::Number(20.0 + (i % 13) as f64)),
                    ("soc", MetricValue::Number((i % 100) as f64)),
                ],
            )
        })
        .collect();
    let mut group = c.benchmark_group("derived_metrics_10000_readings");
    group.throughput(Throughput::Elements(readings.len() as u64));
    group.bench_function("five_expressions_per_reading", |b| {
        b.iter_batched(
            || readings.clone(),
            |mut readings| {
                let mut done = Derivation::default();
                for reading in &mut readings {
                    derived.apply(reading, &mut done);
                }
                black_box((readings, done))
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, ingest_path, derived_metrics);
criterion_main!(benches);
