//! The pure ingest path on a 1,000-message SQS batch of mixed single readings (thermostats,
//! battery boxes) and 10-reading gateway batches (green wall): decode + validate, then build
//! the Timestream requests. Plain serde_json parsing of the same bytes is the floor.

use base64::Engine as _;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use iotdp::adapters::influxdb::line_protocol::encode_lines;
use iotdp::adapters::influxdb::{MAX_LINES_PER_WRITE, encode_request_body};
use iotdp::adapters::timestream::{MAX_RECORDS_PER_WRITE, build_write_request};
use iotdp::alerting::evaluator::{AlertEvaluator, AlertSettings};
use iotdp::alerting::rule::AlertRule;
use iotdp::ingest::batch::prepare_batch;
use iotdp::ingest::validation::TimeWindow;
use iotdp_local::memory::{MemoryAlertStates, MemoryCommander, MemoryNotifier, MemoryRules};
use iotdp_local::simulator::reference_sqs_batch;
use std::hint::black_box;

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
        // Steady state, not a cold start: the states are warmed with the same readings every 23
        // minutes for the 13 hours before (the last 10 minutes before), so rate and forecast
        // rules hold their samples and anomaly baselines (one day, a sample per 22.5 minutes)
        // are past their warm-up, and no rule's next sample is due: nothing measured is written.
        let warm_states = {
            let evaluator = AlertEvaluator::new(
                MemoryRules::new(rules.clone()),
                MemoryAlertStates::default(),
                MemoryNotifier::default(),
                MemoryCommander::default(),
                AlertSettings::default(),
            );
            for minutes_before in (0..34).rev().map(|k| 10 + 23 * k) {
                let mut warm = prepare_batch(pairs(), window);
                warm.readings
                    .iter_mut()
                    .for_each(|r| r.time_ms -= minutes_before * 60_000);
                runtime.block_on(evaluator.evaluate(&warm.readings, now));
            }
            evaluator.states().snapshot()
        };
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

/// 50 rules over the metrics the batch carries: thresholds, ranges and rate-of-change, scoped
/// to all devices or to one; with `v2`, every other one a forecast, an anomaly baseline, a
/// rule with levels or a latched rule with flapping detection.
fn fifty_rules(v2: bool) -> Vec<AlertRule> {
    let metrics = [
        "temperature",
        "setpoint",
        "voltage",
        "current",
        "soc",
        "temperature_c",
        "moisture",
        "lux",
    ];
    (0..50)
        .map(|i| {
            let metric = metrics[i % metrics.len()];
            let condition = match (v2 && i % 2 == 1, i % 5) {
                (false, 0) => r#""condition": {"above": 1000000}, "severity": "warning""#,
                (false, 1) => r#""condition": {"below": -1000000}, "severity": "warning""#,
                (false, 2) => r#""condition": {"outside": [-1000000, 1000000]}, "severity": "warning""#,
                (false, 3) => r#""condition": {"rate_of_change": {"per_hour": -1000, "window_seconds": 21600}}, "severity": "warning""#,
                (false, _) => r#""condition": {"inside": [5000000, 6000000]}, "severity": "warning""#,
                (true, 0 | 4) => r#""condition": {"forecast": {"below": -1000000, "within_seconds": 86400, "window_seconds": 21600}}, "severity": "warning""#,
                (true, 1) => r#""condition": {"anomaly": {"threshold": 1000000, "baseline_seconds": 86400}}, "severity": "warning""#,
                (true, 2) => r#""levels": {"warning": {"above": 1000000}, "critical": {"above": 2000000}}"#,
                (true, _) => r#""condition": {"above": 1000000}, "severity": "critical", "latched": true, "flapping": {"low": 1, "high": 4, "window_seconds": 600}"#,
            };
            let scope = if i % 7 == 0 { r#"{"device_id": "ac-0"}"# } else { r#""all""# };
            AlertRule::from_json(&format!(
                r#"{{"rule_id":"r{i}","name":"rule {i}","scope":{scope},"metric":"{metric}",{condition}}}"#
            ))
            .unwrap()
        })
        .collect()
}

criterion_group!(benches, ingest_path);
criterion_main!(benches);
