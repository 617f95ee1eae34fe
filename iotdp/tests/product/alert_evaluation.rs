//! Alert evaluation over batches, with in-memory ports that keep DynamoDB's conditional-write
//! semantics: notifications, commands, owed delivery, concurrency, and what it costs.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use iotdp::alerting::evaluator::{AlertEvaluator, AlertSettings};
use iotdp::alerting::event::AlarmState;
use iotdp::alerting::event::EventKind;
use iotdp::alerting::ports::AlertKey;
use iotdp::alerting::rule::AlertRule;
use iotdp::domain::{MetricValue, Reading};
use iotdp_memory::{MemoryAlertStates, MemoryCommander, MemoryNotifier, MemoryRules, RacingReads};

type Evaluator = AlertEvaluator<MemoryRules, MemoryAlertStates, MemoryNotifier, MemoryCommander>;

const T0: i64 = 1_764_000_000_000;

fn valve_rule() -> AlertRule {
    AlertRule::from_json(
        r#"{"rule_id":"dry-soil","name":"Soil too dry","scope":"all","metric":"moisture",
            "condition":{"below":0.2},"clear":0.25,"severity":"warning",
            "actions":{"on_alarm":{"valve":"open"},"on_ok":{"valve":"closed"}}}"#,
    )
    .unwrap()
}

fn evaluator(rules: Vec<AlertRule>) -> Evaluator {
    AlertEvaluator::new(
        MemoryRules::new(rules),
        MemoryAlertStates::default(),
        MemoryNotifier::default(),
        MemoryCommander::default(),
        AlertSettings::default(),
    )
}

fn reading(device: &str, minute: i64, metric: &str, value: f64) -> Reading {
    Reading::new(
        device,
        T0 + minute * 60_000,
        [(metric, MetricValue::Number(value))],
    )
    .with_version(T0)
}

fn at(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(T0 + minute * 60_000).unwrap()
}

fn key(device: &str, rule: &str) -> AlertKey {
    AlertKey {
        device_id: device.into(),
        rule_id: rule.into(),
    }
}

#[tokio::test]
async fn a_rule_fires_and_clears_with_one_notification_and_command_each() {
    let evaluator = evaluator(vec![valve_rule()]);
    let readings = vec![
        reading("spot-1", 0, "moisture", 0.30),
        reading("spot-1", 60, "moisture", 0.15),
        reading("spot-1", 120, "moisture", 0.22), // above 0.2 but not past the 0.25 clear
    ];
    let outcome = evaluator.evaluate(&readings, at(120)).await;
    assert!(outcome.retry.is_empty());
    let outcome = evaluator
        .evaluate(&[reading("spot-1", 180, "moisture", 0.27)], at(180))
        .await;
    assert!(outcome.retry.is_empty());

    let kinds: Vec<_> = evaluator
        .notifier()
        .published()
        .iter()
        .map(|n| (n.kind, n.new_state))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventKind::Alarm, AlarmState::Alarm),
            (EventKind::Ok, AlarmState::Ok)
        ]
    );
    let alarm = &evaluator.notifier().published()[0];
    assert_eq!(alarm.device_id, "spot-1");
    assert_eq!(alarm.value, 0.15);
    assert_eq!(
        alarm.alert_id,
        format!("spot-1:dry-soil:{}", T0 + 60 * 60_000)
    );
    assert_eq!(alarm.attributes()[0], ("severity", "warning".to_owned()));
    assert_eq!(
        evaluator.commander().sent(),
        vec![
            ("spot-1".to_owned(), serde_json::json!({"valve": "open"})),
            ("spot-1".to_owned(), serde_json::json!({"valve": "closed"})),
        ]
    );
    let state = evaluator.states().get(&key("spot-1", "dry-soil")).unwrap();
    assert_eq!(state.state, AlarmState::Ok);
    assert!(state.owed.is_empty());
}

#[tokio::test]
async fn steady_state_costs_reads_but_no_writes() {
    let evaluator = evaluator(vec![valve_rule()]);
    let batch: Vec<_> = (0..1000)
        .map(|i| reading(&format!("spot-{}", i % 100), i, "moisture", 0.4))
        .collect();
    let outcome = evaluator.evaluate(&batch, at(1000)).await;
    assert!(outcome.retry.is_empty());
    assert_eq!(outcome.stats.state_writes, 0);
    assert_eq!(outcome.stats.notifications_published, 0);
    assert_eq!(
        evaluator.states().batch_reads.load(Ordering::Relaxed),
        1,
        "100 pairs: one BatchGetItem"
    );
}

#[tokio::test]
async fn readings_of_metrics_no_rule_watches_cost_nothing() {
    let evaluator = evaluator(vec![valve_rule()]);
    let batch: Vec<_> = (0..100)
        .map(|i| reading("ac-1", i, "temperature", 21.0))
        .collect();
    let outcome = evaluator.evaluate(&batch, at(100)).await;
    assert_eq!(outcome.stats.pairs_evaluated, 0);
    assert_eq!(evaluator.states().batch_reads.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_failed_publish_stays_owed_and_is_delivered_once_later() {
    let evaluator = evaluator(vec![valve_rule()]);
    evaluator.notifier().failing.store(true, Ordering::Relaxed);
    let outcome = evaluator
        .evaluate(&[reading("spot-1", 0, "moisture", 0.1)], at(0))
        .await;
    assert_eq!(outcome.retry, vec![0], "the message goes back to SQS");
    let state = evaluator.states().get(&key("spot-1", "dry-soil")).unwrap();
    assert_eq!((state.state, state.owed.len()), (AlarmState::Alarm, 1));

    evaluator.notifier().failing.store(false, Ordering::Relaxed);
    // The SQS redelivery within the lease: the transition is not decided twice, and the
    // lease keeps it from being published by someone who might race the owner.
    let outcome = evaluator
        .evaluate(&[reading("spot-1", 0, "moisture", 0.1)], at(1))
        .await;
    assert!(outcome.retry.is_empty());
    assert!(evaluator.notifier().published().is_empty());
    // After the lease, whoever touches the pair delivers it, exactly once.
    evaluator
        .evaluate(&[reading("spot-1", 0, "moisture", 0.1)], at(3))
        .await;
    evaluator
        .evaluate(&[reading("spot-1", 5, "moisture", 0.1)], at(5))
        .await;
    let published = evaluator.notifier().published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].kind, EventKind::Alarm);
    assert!(
        evaluator
            .states()
            .get(&key("spot-1", "dry-soil"))
            .unwrap()
            .owed
            .is_empty()
    );
}

#[tokio::test]
async fn two_evaluators_racing_on_one_transition_notify_once() {
    let evaluator = AlertEvaluator::new(
        MemoryRules::new(vec![valve_rule()]),
        // Both evaluators read the state before either writes.
        RacingReads::new(MemoryAlertStates::default(), 2),
        MemoryNotifier::default(),
        MemoryCommander::default(),
        AlertSettings::default(),
    );
    let batch = vec![reading("spot-1", 0, "moisture", 0.1)];
    let (a, b) = tokio::join!(
        evaluator.evaluate(&batch, at(0)),
        evaluator.evaluate(&batch, at(0))
    );
    assert!(a.retry.is_empty() && b.retry.is_empty());
    assert_eq!(
        a.stats.conflicts + b.stats.conflicts,
        1,
        "exactly one lost the race"
    );
    assert_eq!(evaluator.notifier().published().len(), 1);
    assert_eq!(evaluator.commander().sent().len(), 1);
}

#[tokio::test]
async fn rules_are_cached_for_their_ttl() {
    let evaluator = AlertEvaluator::new(
        MemoryRules::new(vec![valve_rule()]),
        MemoryAlertStates::default(),
        MemoryNotifier::default(),
        MemoryCommander::default(),
        AlertSettings {
            rules_ttl: Duration::from_secs(60),
            ..AlertSettings::default()
        },
    );
    let first = evaluator
        .evaluate(&[reading("s", 0, "moisture", 0.5)], at(0))
        .await;
    let second = evaluator
        .evaluate(&[reading("s", 1, "moisture", 0.5)], at(1))
        .await;
    assert_eq!((first.stats.rule_loads, second.stats.rule_loads), (1, 0));
}

/// DynamoDB and SNS calls per 1,000 readings (100 devices × 10 readings, one rule), the
/// figures the README reports. Run with `--nocapture` to see them.
#[tokio::test]
async fn calls_per_1000_readings_in_steady_state_and_in_an_alert_storm() {
    let evaluator = evaluator(vec![valve_rule()]);
    let batch = |minute: i64, value: f64| -> Vec<Reading> {
        (0..1000)
            .map(|i| {
                reading(
                    &format!("spot-{}", i % 100),
                    minute + i / 100,
                    "moisture",
                    value,
                )
            })
            .collect()
    };
    let steady = evaluator.evaluate(&batch(0, 0.4), at(10)).await.stats;
    let storm = evaluator.evaluate(&batch(20, 0.1), at(30)).await.stats;
    let after = evaluator.evaluate(&batch(40, 0.1), at(50)).await.stats;
    println!(
        "per 1000 readings: steady state {} BatchGetItem, {} PutItem, {} Publish; \
         alert storm (100 devices cross at once) {} BatchGetItem, {} PutItem, {} Publish; \
         staying in alarm {} BatchGetItem, {} PutItem, {} Publish",
        steady.state_batch_reads,
        steady.state_writes,
        steady.notifications_published,
        storm.state_batch_reads,
        storm.state_writes,
        storm.notifications_published,
        after.state_batch_reads,
        after.state_writes,
        after.notifications_published,
    );
    assert_eq!(
        (
            steady.state_batch_reads,
            steady.state_writes,
            steady.notifications_published
        ),
        (1, 0, 0)
    );
    // Each crossing: one conditional write deciding it (notification owed), one publish, one
    // write clearing the owed notification.
    assert_eq!(
        (
            storm.state_batch_reads,
            storm.state_writes,
            storm.notifications_published
        ),
        (1, 200, 100)
    );
    assert_eq!(storm.commands_sent, 100);
    assert_eq!((after.state_writes, after.notifications_published), (0, 0));
}

/// Calls per 1,000 readings while every one of 100 devices flaps (10 readings each, crossing
/// the threshold every reading), with and without the rule's `flapping` setting; then the
/// batch in which they settle. Run with `--nocapture` to see them.
#[tokio::test]
async fn calls_per_1000_readings_while_flapping() {
    let plain = evaluator(vec![valve_rule()]);
    let mut flapping_rule = valve_rule();
    flapping_rule.flapping = Some(iotdp::alerting::rule::Flapping {
        low: 1,
        high: 4,
        window_seconds: 3600,
    });
    let flapping = evaluator(vec![flapping_rule]);
    let batch = |minute: i64, alternating: bool| -> Vec<Reading> {
        (0..1000)
            .map(|i| {
                let value = if alternating && (i / 100) % 2 == 0 {
                    0.1
                } else {
                    0.4
                };
                reading(
                    &format!("spot-{}", i % 100),
                    minute + i / 100,
                    "moisture",
                    value,
                )
            })
            .collect()
    };
    let mut rows = Vec::new();
    for (name, readings, now) in [
        ("flapping, first batch", batch(0, true), at(10)),
        ("flapping, still", batch(10, true), at(20)),
        ("settled, an hour later", batch(80, false), at(90)),
    ] {
        let p = plain.evaluate(&readings, now).await.stats;
        let f = flapping.evaluate(&readings, now).await.stats;
        println!(
            "per 1000 readings, {name}: without flapping {} BatchGetItem, {} PutItem, {} Publish, {} commands; \
             with flapping {} BatchGetItem, {} PutItem, {} Publish, {} commands",
            p.state_batch_reads,
            p.state_writes,
            p.notifications_published,
            p.commands_sent,
            f.state_batch_reads,
            f.state_writes,
            f.notifications_published,
            f.commands_sent,
        );
        rows.push((
            (p.state_writes, p.notifications_published, p.commands_sent),
            (f.state_writes, f.notifications_published, f.commands_sent),
        ));
    }
    // Without: every crossing is told and commanded. With: alarm, ok, alarm, then one
    // flapping notification per device; nothing while it goes on; one settled when it stops.
    assert_eq!(rows[0], ((200, 1000, 1000), (200, 400, 300)));
    assert_eq!(rows[1], ((200, 1000, 1000), (100, 0, 0)));
    assert_eq!(rows[2], ((0, 0, 0), (200, 100, 100)));
    let kinds: Vec<EventKind> = flapping
        .notifier()
        .published()
        .iter()
        .filter(|n| n.device_id == "spot-7")
        .map(|n| n.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::Alarm,
            EventKind::Ok,
            EventKind::Alarm,
            EventKind::Flapping,
            EventKind::Settled
        ]
    );
}
