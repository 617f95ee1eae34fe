//! Alert evaluation over a batch of stored readings.
//!
//! Per batch: rules from a per-instance cache (TTL), one BatchGetItem-style read for just the
//! (device, rule) pairs the batch touches, then per pair the readings in event-time order
//! through the state machine. Only a changed state is written, conditionally on the version
//! read, so two invocations racing on one transition produce one write and one notification.
//! A notification is recorded as owed in the same write and cleared once published: if the
//! publish fails, the next invocation that touches the pair (or the SQS redelivery) sends it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::alerting::notification::AlertNotification;
use crate::alerting::ports::{
    AlertKey, AlertPortError, AlertStateStore, AlertStats, ConditionalWrite, DeviceCommander,
    Notifier, ObserverOutcome, ReadingsObserver, RuleSource,
};
use crate::alerting::rule::AlertRule;
use crate::alerting::state_machine::{
    ActionKind, AlertState, apply_reading, apply_suppressed_reading,
};
use crate::domain::{DeviceDimensions, MetricValue, Reading};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertSettings {
    /// How long a Lambda instance reuses the rules it loaded.
    pub rules_ttl: Duration,
    /// How long owed notifications belong to the invocation that decided them; after that any
    /// invocation touching the pair delivers them. Longer than the function timeout.
    pub owed_lease: Duration,
    /// Re-read-and-retry rounds after a conditional-write conflict.
    pub max_conflict_retries: u32,
    /// (device, rule) pairs evaluated concurrently.
    pub concurrency: usize,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            rules_ttl: Duration::from_secs(60),
            owed_lease: Duration::from_secs(90),
            max_conflict_retries: 3,
            concurrency: 16,
        }
    }
}

/// Rules indexed by metric, so a reading only meets the rules that watch its metrics.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<AlertRule>,
    /// Sorted by metric name. A fleet watches tens of metrics, so a binary search over short
    /// names is cheaper than hashing each reading's metric names.
    by_metric: Vec<(String, Vec<usize>)>,
}

impl RuleSet {
    pub fn new(rules: Vec<AlertRule>) -> Self {
        let mut by_metric: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, rule) in rules.iter().enumerate().filter(|(_, r)| r.enabled) {
            match by_metric.binary_search_by(|(name, _)| name.as_str().cmp(&rule.metric)) {
                Ok(at) => by_metric[at].1.push(i),
                Err(at) => by_metric.insert(at, (rule.metric.clone(), vec![i])),
            }
        }
        Self { rules, by_metric }
    }

    /// Where `metric`'s rules are in `by_metric`, if any enabled rule watches it.
    fn metric_slot(&self, metric: &str) -> Option<usize> {
        self.by_metric
            .binary_search_by(|(name, _)| name.as_str().cmp(metric))
            .ok()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// One reading of the metric a (device, rule) pair watches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairReading {
    /// Where the reading is in the batch: what is retried, and what a suppression names.
    pub batch_index: usize,
    pub time_ms: i64,
    pub value: f64,
}

/// The (device, rule) pairs a batch touches. Each pair's readings, in event-time order, are a
/// range of one shared buffer: no allocation per pair.
#[derive(Debug, Default)]
pub struct TouchedPairs {
    entries: Vec<PairReading>,
    /// (rule index, range of `entries`) per pair.
    pairs: Vec<(usize, std::ops::Range<usize>)>,
    /// Each pair's state key, in the same order: what the state store is asked for.
    keys: Vec<AlertKey>,
}

impl TouchedPairs {
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The readings of pair `pair`.
    pub fn readings(&self, pair: usize) -> &[PairReading] {
        &self.entries[self.pairs[pair].1.clone()]
    }

    /// Every pair's state key, in pair order.
    pub fn keys(&self) -> &[AlertKey] {
        &self.keys
    }

    /// `(rule index, device id, readings)` per pair.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &str, &[PairReading])> {
        self.pairs
            .iter()
            .zip(&self.keys)
            .map(|((rule, range), key)| {
                (*rule, key.device_id.as_str(), &self.entries[range.clone()])
            })
    }
}

/// Group readings by (device, rule): the pure first step. Readings are walked device by device
/// in time order (the ingest path hands them over sorted by series, so the sort below finds
/// them in order). A device's readings are gathered once per metric, and every rule on that
/// metric whose scope covers the device shares that one range: the rules of a fleet mostly
/// watch a few metrics, so copying readings per rule would copy each one several times.
pub fn pairs_touched(rules: &RuleSet, readings: &[Reading]) -> TouchedPairs {
    let mut order: Vec<usize> = (0..readings.len()).collect();
    order.sort_by(|&a, &b| {
        (readings[a].device_id.as_str(), readings[a].time_ms)
            .cmp(&(readings[b].device_id.as_str(), readings[b].time_ms))
    });
    let dimensions = |index: usize| dimensions_of(&readings[index]);
    let mut out = TouchedPairs::default();
    // Per watched metric, the current device's readings of it. The slots keep their capacity
    // from device to device, so after the first few devices grouping allocates nothing.
    let mut slots: Vec<Vec<PairReading>> = vec![Vec::new(); rules.by_metric.len()];
    // Whether a slot's readings all carry the same dimensions (admission puts the registry's
    // on each, so they do); a type- or place-scoped rule then covers all of them or none.
    let mut uniform: Vec<bool> = vec![true; rules.by_metric.len()];
    let mut touched: Vec<usize> = Vec::new();
    let mut device_pairs: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
    // A device's readings name their metrics in the same order: looking a name up where it
    // was last found is one comparison, not a search.
    let mut found_at: Vec<(&str, Option<usize>)> = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let device = readings[order[start]].device_id.as_str();
        let end = order[start..]
            .iter()
            .position(|&i| readings[i].device_id != device)
            .map_or(order.len(), |offset| start + offset);
        for &index in &order[start..end] {
            let reading = &readings[index];
            for (position, metric) in reading.metrics.iter().enumerate() {
                let slot = match found_at.get(position) {
                    Some(&(name, slot)) if name == metric.name => slot,
                    _ => {
                        let slot = rules.metric_slot(&metric.name);
                        if position < found_at.len() {
                            found_at[position] = (&metric.name, slot);
                        } else if position == found_at.len() {
                            found_at.push((&metric.name, slot));
                        }
                        slot
                    }
                };
                let Some(slot) = slot else {
                    continue;
                };
                let value = match metric.value {
                    MetricValue::Number(v) => v,
                    MetricValue::Bool(b) => f64::from(u8::from(b)),
                    MetricValue::Text(_) => continue,
                };
                match slots[slot].first() {
                    None => {
                        touched.push(slot);
                        uniform[slot] = true;
                    }
                    Some(first) => {
                        uniform[slot] &= same_dimensions(&readings[first.batch_index], reading);
                    }
                }
                slots[slot].push(PairReading {
                    batch_index: index,
                    time_ms: reading.time_ms,
                    value,
                });
            }
        }
        for slot in touched.drain(..) {
            let begin = out.entries.len();
            out.entries.append(&mut slots[slot]);
            let shared = begin..out.entries.len();
            let first = dimensions(out.entries[begin].batch_index);
            for &rule in &rules.by_metric[slot].1 {
                let scope = &rules.rules[rule].scope;
                if uniform[slot] {
                    if scope.covers(device, first) {
                        device_pairs.push((rule, shared.clone()));
                    }
                } else {
                    // Readings of one device with different types: this rule gets its own copy
                    // of the readings its scope covers.
                    let own = out.entries.len();
                    for at in shared.clone() {
                        let entry = out.entries[at];
                        if scope.covers(device, dimensions(entry.batch_index)) {
                            out.entries.push(entry);
                        }
                    }
                    if out.entries.len() > own {
                        device_pairs.push((rule, own..out.entries.len()));
                    }
                }
            }
        }
        device_pairs.sort_unstable_by_key(|(rule, _)| *rule);
        for (rule, range) in device_pairs.drain(..) {
            out.pairs.push((rule, range));
            out.keys.push(AlertKey {
                device_id: device.to_owned(),
                rule_id: rules.rules[rule].rule_id.clone(),
            });
        }
        start = end;
    }
    out
}

fn dimensions_of(reading: &Reading) -> Option<&DeviceDimensions> {
    reading.dimensions.as_deref()
}

/// Admission shares one `Arc` per device, so this is a pointer comparison in practice.
fn same_dimensions(a: &Reading, b: &Reading) -> bool {
    match (&a.dimensions, &b.dimensions) {
        (Some(x), Some(y)) => Arc::ptr_eq(x, y) || x == y,
        (None, None) => true,
        _ => false,
    }
}

/// What evaluating one pair's readings decided: the state to write, what to publish, which
/// commands to send.
struct Decision {
    next: AlertState,
    deliver: Vec<AlertNotification>,
    commands: Vec<serde_json::Value>,
}

/// Run a pair's readings through the state machine. Pure; `None` when nothing is to be written.
fn decide(
    rule: &AlertRule,
    key: &AlertKey,
    mut next: AlertState,
    readings: &[PairReading],
    suppressed: &[usize],
    now: DateTime<Utc>,
    owed_lease: Duration,
) -> Option<Decision> {
    let now_ms = now.timestamp_millis();
    // Owed notifications of another invocation are ours to deliver once its lease ran out.
    let inherited = !next.owed.is_empty()
        && next
            .owed_since_ms
            .is_none_or(|since| now_ms - since >= owed_lease.as_millis() as i64);
    // The state is taken by value and changed in place: the version it was read at is all the
    // conditional write needs, and a steady-state pair then costs no copy.
    let read_version = next.version;
    let mut deliver: Vec<AlertNotification> = if inherited { next.owed.clone() } else { vec![] };
    let mut commands = Vec::new();
    let mut changed = false;
    for reading in readings {
        let step = if suppressed.binary_search(&reading.batch_index).is_ok() {
            apply_suppressed_reading(rule, &mut next, reading.time_ms, reading.value)
        } else {
            apply_reading(rule, &mut next, reading.time_ms, reading.value)
        };
        changed |= step.changed;
        let action = match step.action {
            Some(ActionKind::OnAlarm) => rule.actions.on_alarm.as_ref(),
            Some(ActionKind::OnOk) => rule.actions.on_ok.as_ref(),
            None => None,
        };
        if let Some(desired) = action {
            commands.push(desired.clone());
        }
        if let Some(event) = step.event {
            let notification = AlertNotification::new(
                rule,
                &key.device_id,
                &event,
                time_ms_as_version(reading.time_ms),
                now,
            );
            next.owed.push(notification.clone());
            deliver.push(notification);
        }
    }
    if !changed && deliver.is_empty() {
        return None;
    }
    if !deliver.is_empty() {
        next.owed_since_ms = Some(now_ms);
    }
    next.version = read_version + 1;
    Some(Decision {
        next,
        deliver,
        commands,
    })
}

pub struct AlertEvaluator<R, S, N, C> {
    rules: R,
    states: S,
    notifier: N,
    commander: C,
    settings: AlertSettings,
    cache: Mutex<Option<(Instant, Arc<RuleSet>)>>,
}

impl<R, S, N, C> AlertEvaluator<R, S, N, C>
where
    R: RuleSource,
    S: AlertStateStore,
    N: Notifier,
    C: DeviceCommander,
{
    pub fn new(rules: R, states: S, notifier: N, commander: C, settings: AlertSettings) -> Self {
        Self {
            rules,
            states,
            notifier,
            commander,
            settings,
            cache: Mutex::new(None),
        }
    }

    pub fn states(&self) -> &S {
        &self.states
    }

    pub fn notifier(&self) -> &N {
        &self.notifier
    }

    pub fn commander(&self) -> &C {
        &self.commander
    }

    /// The cached rules, reloaded when older than the TTL. If a reload fails, the previous
    /// rules keep serving (a rules-table hiccup should not stop alerting).
    async fn rule_set(&self, stats: &mut AlertStats) -> Result<Arc<RuleSet>, AlertPortError> {
        let mut cache = self.cache.lock().await;
        if let Some((loaded, rules)) = cache.as_ref()
            && loaded.elapsed() < self.settings.rules_ttl
        {
            return Ok(rules.clone());
        }
        stats.rule_loads += 1;
        match self.rules.load_rules().await {
            Ok(rules) => {
                let set = Arc::new(RuleSet::new(rules));
                *cache = Some((Instant::now(), set.clone()));
                Ok(set)
            }
            Err(e) => match cache.as_ref() {
                Some((_, stale)) => {
                    tracing::warn!(error = %e, "rule reload failed; using the rules loaded before");
                    Ok(stale.clone())
                }
                None => Err(e),
            },
        }
    }

    /// Evaluate `readings` at wall-clock time `now`.
    pub async fn evaluate(&self, readings: &[Reading], now: DateTime<Utc>) -> ObserverOutcome {
        self.evaluate_with_suppression(readings, &[], now).await
    }

    /// Evaluate `readings`, those at the (sorted) indexes `suppressed` recording their
    /// transitions without notifying them (see [`apply_suppressed_reading`]).
    pub async fn evaluate_with_suppression(
        &self,
        readings: &[Reading],
        suppressed: &[usize],
        now: DateTime<Utc>,
    ) -> ObserverOutcome {
        let mut stats = AlertStats::default();
        let all = || ObserverOutcome {
            retry: (0..readings.len()).collect(),
            stats: AlertStats::default(),
        };
        let rules = match self.rule_set(&mut stats).await {
            Ok(rules) => rules,
            Err(e) => {
                tracing::error!(error = %e, "alert rules unavailable; readings will be retried");
                return all();
            }
        };
        if rules.is_empty() {
            return ObserverOutcome {
                retry: vec![],
                stats,
            };
        }
        let pairs = pairs_touched(&rules, readings);
        if pairs.is_empty() {
            return ObserverOutcome {
                retry: vec![],
                stats,
            };
        }
        stats.state_batch_reads += 1;
        let stored = match self.states.get_many(pairs.keys()).await {
            Ok(found) if found.len() == pairs.len() => found,
            Ok(found) => {
                tracing::error!(
                    asked = pairs.len(),
                    answered = found.len(),
                    "alert state store answered a different number of keys; readings will be retried"
                );
                return all();
            }
            Err(e) => {
                tracing::error!(error = %e, "alert states unavailable; readings will be retried");
                return all();
            }
        };
        // Decide every pair synchronously; only pairs whose state changes go on to the
        // (asynchronous) conditional write, publish and commands.
        stats.pairs_evaluated = pairs.len() as u64;
        let mut to_write = Vec::new();
        for (pair, ((rule, _, list), state)) in pairs.iter().zip(stored).enumerate() {
            let key = &pairs.keys()[pair];
            if let Some(decision) = decide(
                &rules.rules[rule],
                key,
                state.unwrap_or_default(),
                list,
                suppressed,
                now,
                self.settings.owed_lease,
            ) {
                to_write.push((rule, decision, pair));
            }
        }
        let pairs = &pairs;
        let rules = &rules;
        let work = to_write
            .into_iter()
            .map(|(rule, decision, pair)| async move {
                let rule = &rules.rules[rule];
                let key = &pairs.keys()[pair];
                let list = pairs.readings(pair);
                let mut pair_stats = AlertStats::default();
                let ok = self
                    .commit_pair(
                        rule,
                        key,
                        decision,
                        (list, suppressed),
                        now,
                        &mut pair_stats,
                    )
                    .await;
                (ok, list, pair_stats)
            });
        let mut results = stream::iter(work).buffer_unordered(self.settings.concurrency.max(1));
        let mut retry = Vec::new();
        while let Some((ok, list, pair_stats)) = results.next().await {
            stats.merge(&pair_stats);
            if !ok {
                retry.extend(list.iter().map(|reading| reading.batch_index));
            }
        }
        retry.sort_unstable();
        retry.dedup();
        ObserverOutcome { retry, stats }
    }

    /// Write a pair's decision conditionally; on conflict re-read and decide again. Then send
    /// its commands and notifications. `false` when its readings must be retried.
    async fn commit_pair(
        &self,
        rule: &AlertRule,
        key: &AlertKey,
        mut decision: Decision,
        (readings, suppressed): (&[PairReading], &[usize]),
        now: DateTime<Utc>,
        stats: &mut AlertStats,
    ) -> bool {
        for _ in 0..=self.settings.max_conflict_retries {
            let expected = decision.next.version - 1;
            stats.state_writes += 1;
            match self
                .states
                .put_if_version(key, &decision.next, expected)
                .await
            {
                Ok(ConditionalWrite::Written) => {
                    for desired in &decision.commands {
                        match self
                            .commander
                            .update_desired(key, decision.next.version, desired)
                            .await
                        {
                            Ok(()) => stats.commands_sent += 1,
                            Err(e) => {
                                // Commands never hold up storage or alerting: counted and logged.
                                stats.command_failures += 1;
                                tracing::error!(error = %e, device = %key.device_id, rule = %key.rule_id, "shadow command failed");
                            }
                        }
                    }
                    return self
                        .deliver(key, decision.next, decision.deliver, stats)
                        .await;
                }
                Ok(ConditionalWrite::Conflict) => {
                    stats.conflicts += 1;
                    let reread = match self.states.get_many(std::slice::from_ref(key)).await {
                        Ok(mut found) => found.pop().flatten().unwrap_or_default(),
                        Err(e) => {
                            tracing::error!(error = %e, ?key, "alert state re-read failed");
                            return false;
                        }
                    };
                    match decide(
                        rule,
                        key,
                        reread,
                        readings,
                        suppressed,
                        now,
                        self.settings.owed_lease,
                    ) {
                        Some(again) => decision = again,
                        // Someone else already made this change: nothing left for us to do.
                        None => return true,
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, ?key, "alert state write failed");
                    return false;
                }
            }
        }
        tracing::error!(
            ?key,
            "alert state kept changing under us; readings will be retried"
        );
        false
    }

    /// Publish, then clear what was published from the owed list (conditionally: if someone
    /// else wrote meanwhile, the owed list they see is delivered by them after the lease).
    async fn deliver(
        &self,
        key: &AlertKey,
        mut state: AlertState,
        notifications: Vec<AlertNotification>,
        stats: &mut AlertStats,
    ) -> bool {
        let mut all_sent = true;
        for notification in &notifications {
            match self.notifier.publish(notification).await {
                Ok(()) => {
                    stats.notifications_published += 1;
                    state
                        .owed
                        .retain(|owed| owed.alert_id != notification.alert_id);
                }
                Err(e) => {
                    stats.notification_failures += 1;
                    all_sent = false;
                    tracing::error!(error = %e, alert_id = %notification.alert_id, "notification publish failed; it stays owed");
                }
            }
        }
        if !notifications
            .iter()
            .any(|n| !state.owed.iter().any(|o| o.alert_id == n.alert_id))
        {
            return all_sent; // nothing was delivered: nothing to clear
        }
        if state.owed.is_empty() {
            state.owed_since_ms = None;
        }
        let expected = state.version;
        state.version += 1;
        stats.state_writes += 1;
        if let Err(e) = self.states.put_if_version(key, &state, expected).await {
            tracing::warn!(error = %e, ?key, "could not clear delivered notifications");
        }
        all_sent
    }
}

/// Alert ids use the event time of the reading that caused the transition: unique per
/// transition of a pair, and the same when a redelivered message re-decides it.
fn time_ms_as_version(time_ms: i64) -> u64 {
    time_ms.max(0) as u64
}

impl<R, S, N, C> ReadingsObserver for AlertEvaluator<R, S, N, C>
where
    R: RuleSource,
    S: AlertStateStore,
    N: Notifier,
    C: DeviceCommander,
{
    async fn observe(&self, readings: &[Reading]) -> ObserverOutcome {
        self.evaluate(readings, Utc::now()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LocationPath, MetricValue};

    fn rule(id: &str, metric: &str, scope: &str) -> AlertRule {
        AlertRule::from_json(&format!(
            r#"{{"rule_id":"{id}","name":"{id}","scope":{scope},"metric":"{metric}","condition":{{"above":1}},"severity":"warning"}}"#
        ))
        .unwrap()
    }

    fn reading(device: &str, time_ms: i64, metrics: &[(&str, MetricValue)], kind: &str) -> Reading {
        Reading::new(
            device,
            time_ms,
            metrics.iter().map(|(n, v)| (*n, v.clone())),
        )
        .with_place(kind, LocationPath::parse("site-1").unwrap())
    }

    /// `(rule id, device, [(batch index, time)])`: one pair as the evaluator reads it.
    type Grouped = (String, String, Vec<(usize, i64)>);

    fn grouped(rules: &RuleSet, readings: &[Reading]) -> Vec<Grouped> {
        let pairs = pairs_touched(rules, readings);
        pairs
            .iter()
            .zip(pairs.keys())
            .map(|((rule, device, list), key)| {
                assert_eq!(
                    (key.device_id.as_str(), key.rule_id.as_str()),
                    (device, rules.rules[rule].rule_id.as_str())
                );
                (
                    key.rule_id.clone(),
                    device.to_owned(),
                    list.iter().map(|r| (r.batch_index, r.time_ms)).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn rules_on_one_metric_share_the_devices_readings_in_time_order() {
        let rules = RuleSet::new(vec![
            rule("b-hot", "temperature", r#""all""#),
            rule("a-hot", "temperature", r#""all""#),
            rule("only-ac-2", "temperature", r#"{"device_id": "ac-2"}"#),
            rule("humid", "humidity", r#""all""#),
        ]);
        let n = |v: f64| MetricValue::Number(v);
        let readings = [
            reading(
                "ac-1",
                30,
                &[("temperature", n(1.0)), ("humidity", n(2.0))],
                "thermostat",
            ),
            // Metrics in another order, a text metric and one no rule watches.
            reading(
                "ac-1",
                10,
                &[("humidity", n(3.0)), ("temperature", n(4.0))],
                "thermostat",
            ),
            reading(
                "ac-2",
                20,
                &[
                    ("label", MetricValue::Text("x".into())),
                    ("temperature", n(5.0)),
                ],
                "thermostat",
            ),
            reading("ac-1", 20, &[("lux", n(6.0))], "thermostat"),
        ];
        assert_eq!(
            grouped(&rules, &readings),
            [
                ("b-hot".into(), "ac-1".into(), vec![(1, 10), (0, 30)]),
                ("a-hot".into(), "ac-1".into(), vec![(1, 10), (0, 30)]),
                ("humid".into(), "ac-1".into(), vec![(1, 10), (0, 30)]),
                ("b-hot".into(), "ac-2".into(), vec![(2, 20)]),
                ("a-hot".into(), "ac-2".into(), vec![(2, 20)]),
                ("only-ac-2".into(), "ac-2".into(), vec![(2, 20)]),
            ]
        );
    }

    #[test]
    fn a_type_scoped_rule_gets_only_the_readings_of_its_type() {
        let rules = RuleSet::new(vec![
            rule("boxes", "voltage", r#"{"device_type": "battery-box"}"#),
            rule("any", "voltage", r#""all""#),
        ]);
        let v = |x: f64| [("voltage", MetricValue::Number(x))];
        // One device whose readings carry two types (a re-registration inside one batch).
        let readings = [
            reading("box-1", 10, &v(12.0), "battery-box"),
            reading("box-1", 20, &v(12.1), "gateway"),
            reading("box-1", 30, &v(12.2), "battery-box"),
            reading("gw-1", 10, &v(5.0), "gateway"),
        ];
        assert_eq!(
            grouped(&rules, &readings),
            [
                ("boxes".into(), "box-1".into(), vec![(0, 10), (2, 30)]),
                (
                    "any".into(),
                    "box-1".into(),
                    vec![(0, 10), (1, 20), (2, 30)]
                ),
                ("any".into(), "gw-1".into(), vec![(3, 10)]),
            ]
        );
    }
}
