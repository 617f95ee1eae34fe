//! The per-reading cost of alert evaluation relative to the ingest path it rides on, measured
//! interleaved: each round times the path (decode, validate, sort, build the Timestream
//! requests) and then the evaluation of the same batch against 50 rules, back to back, and
//! keeps their ratio. This VM's speed drifts by ±20 % within minutes, which moves separate
//! criterion rows against each other; a ratio taken within one round does not drift.
//!
//! `cargo bench -p iotdp --bench alert_overhead` prints the median and spread per rule mix.

use iotdp::adapters::timestream::{MAX_RECORDS_PER_WRITE, build_write_request};
use iotdp::alerting::evaluator::{AlertEvaluator, AlertSettings};
use iotdp::ingest::batch::prepare_batch;
use iotdp::ingest::validation::TimeWindow;
use iotdp_memory::{MemoryAlertStates, MemoryCommander, MemoryNotifier, MemoryRules};
use iotdp_simulator::reference_sqs_batch;
use std::hint::black_box;
use std::time::Instant;
use support::{fifty_rules, warm_states};

mod support;

const RECEIVED: i64 = 1_764_000_000_000;
const ROUNDS: usize = 400;

fn main() {
    let (bodies, _) = reference_sqs_batch(RECEIVED);
    let window = TimeWindow::with_retention_days(73_000);
    let pairs = || bodies.iter().map(|(id, body)| (id.as_str(), body.as_str()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let now = chrono::DateTime::from_timestamp_millis(RECEIVED).expect("a valid instant");
    for (name, rules) in [
        ("50 rules (thresholds, ranges, rates)", fifty_rules(false)),
        (
            "50 rules with forecasts, anomalies, levels, latched + flapping",
            fifty_rules(true),
        ),
    ] {
        let warm = warm_states(&rules, &runtime, now, || prepare_batch(pairs(), window));
        let mut ratios = Vec::with_capacity(ROUNDS);
        let (mut path_total, mut evaluation_total) = (0.0, 0.0);
        for round in 0..ROUNDS + 20 {
            let evaluator = AlertEvaluator::new(
                MemoryRules::new(rules.clone()),
                MemoryAlertStates::from_snapshot(warm.clone()),
                MemoryNotifier::default(),
                MemoryCommander::default(),
                AlertSettings::default(),
            );
            let started = Instant::now();
            let mut batch = prepare_batch(pairs(), window);
            batch.sort_by_series();
            for chunk in batch.readings.chunks(MAX_RECORDS_PER_WRITE) {
                black_box(build_write_request(chunk).expect("valid readings build"));
            }
            let path = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let outcome = runtime.block_on(evaluator.evaluate(&batch.readings, now));
            let evaluation = started.elapsed().as_secs_f64();
            assert!(outcome.retry.is_empty(), "steady state retries nothing");
            assert_eq!(outcome.stats.state_writes, 0, "steady state writes nothing");
            // The first rounds warm caches and the allocator.
            if round >= 20 {
                ratios.push(evaluation / path);
                path_total += path;
                evaluation_total += evaluation;
            }
            drop(evaluator);
        }
        ratios.sort_by(f64::total_cmp);
        let at = |q: f64| 100.0 * ratios[((ratios.len() - 1) as f64 * q) as usize];
        println!(
            "{name}: evaluation adds {:+.1} % per reading (median of {ROUNDS} interleaved rounds; \
             p10 {:+.1} %, p90 {:+.1} %); path {:.2} ms, evaluation {:.2} ms per batch on average",
            at(0.5),
            at(0.1),
            at(0.9),
            1e3 * path_total / ROUNDS as f64,
            1e3 * evaluation_total / ROUNDS as f64,
        );
    }
}
