//! What the ingest benches share: the 50-rule mixes and the warmed alert states they start from.

use chrono::{DateTime, Utc};
use iotdp::alerting::evaluator::{AlertEvaluator, AlertSettings};
use iotdp::alerting::ports::AlertKey;
use iotdp::alerting::rule::AlertRule;
use iotdp::alerting::state_machine::AlertState;
use iotdp::ingest::batch::PreparedBatch;
use iotdp_memory::{MemoryAlertStates, MemoryCommander, MemoryNotifier, MemoryRules};
use std::collections::HashMap;

/// Steady state, not a cold start: the states are warmed with the same readings every 23
/// minutes for the 13 hours before (the last 10 minutes before), so rate and forecast rules
/// hold their samples and anomaly baselines (one day, a sample per 22.5 minutes) are past
/// their warm-up, and no rule's next sample is due: nothing measured is written.
pub fn warm_states(
    rules: &[AlertRule],
    runtime: &tokio::runtime::Runtime,
    now: DateTime<Utc>,
    batch: impl Fn() -> PreparedBatch,
) -> HashMap<AlertKey, AlertState> {
    let evaluator = AlertEvaluator::new(
        MemoryRules::new(rules.to_vec()),
        MemoryAlertStates::default(),
        MemoryNotifier::default(),
        MemoryCommander::default(),
        AlertSettings::default(),
    );
    for minutes_before in (0..34).rev().map(|k| 10 + 23 * k) {
        let mut warm = batch();
        warm.readings
            .iter_mut()
            .for_each(|r| r.time_ms -= minutes_before * 60_000);
        runtime.block_on(evaluator.evaluate(&warm.readings, now));
    }
    evaluator.states().snapshot()
}

/// 50 rules over the metrics the batch carries: thresholds, ranges and rate-of-change, scoped
/// to all devices or to one; with `v2`, every other one a forecast, an anomaly baseline, a
/// rule with levels or a latched rule with flapping detection.
pub fn fifty_rules(v2: bool) -> Vec<AlertRule> {
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
