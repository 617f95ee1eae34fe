//! Alert evaluation over a batch of stored readings.
//!
//! Per batch: rules from a per-instance cache (TTL), one BatchGetItem-style read for just the
//! (device, rule) pairs the batch touches, then per pair the readings in event-time order
//! through the state machine. Only a changed state is written, conditionally on the version
//! read, so two invocations racing on one transition produce one write and one notification.
//! A notification is recorded as owed in the same write and cleared once published: if the
//! publish fails, the next invocation that touches the pair (or the SQS redelivery) sends it.

use std::collections::HashMap;
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
use crate::domain::{MetricValue, Reading};

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
    by_metric: HashMap<String, Vec<usize>>,
}

impl RuleSet {
    pub fn new(rules: Vec<AlertRule>) -> Self {
        let mut by_metric: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, rule) in rules.iter().enumerate().filter(|(_, r)| r.enabled) {
            by_metric.entry(rule.metric.clone()).or_default().push(i);
        }
        Self { rules, by_metric }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// The (device, rule) pairs a batch touches. Each pair's readings (batch index, event time,
/// value), in event-time order, are a range of one shared buffer: no allocation per pair.
#[derive(Debug, Default)]
pub struct TouchedPairs {
    entries: Vec<(usize, i64, f64)>,
    /// (rule index, device id, range of `entries`).
    pairs: Vec<(usize, String, std::ops::Range<usize>)>,
}

impl TouchedPairs {
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The readings of pair `pair`.
    pub fn readings(&self, pair: usize) -> &[(usize, i64, f64)] {
        &self.entries[self.pairs[pair].2.clone()]
    }

    /// `(rule index, device id, readings)` per pair.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &str, &[(usize, i64, f64)])> {
        self.pairs
            .iter()
            .map(|(rule, device, range)| (*rule, device.as_str(), &self.entries[range.clone()]))
    }
}

/// Group readings by (device, rule): the pure first step. Readings are walked device by device
/// in time order (the ingest path hands them over sorted by series, so the sort below finds
/// them in order); a device's matches are then ordered by rule, keeping time order.
pub fn pairs_touched(rules: &RuleSet, readings: &[Reading]) -> TouchedPairs {
    let mut order: Vec<usize> = (0..readings.len()).collect();
    order.sort_by(|&a, &b| {
        (readings[a].device_id.as_str(), readings[a].time_ms)
            .cmp(&(readings[b].device_id.as_str(), readings[b].time_ms))
    });
    let mut out = TouchedPairs::default();
    // Per rule, the current device's matches. The slots keep their capacity from device to
    // device, so after the first few devices grouping allocates nothing.
    let mut slots: Vec<Vec<(usize, i64, f64)>> = vec![Vec::new(); rules.rules.len()];
    let mut touched: Vec<usize> = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let device = readings[order[start]].device_id.as_str();
        let end = order[start..]
            .iter()
            .position(|&i| readings[i].device_id != device)
            .map_or(order.len(), |offset| start + offset);
        for &index in &order[start..end] {
            let reading = &readings[index];
            // Admission put the registry's type on the reading: no second registry read.
            let device_type = reading
                .dimensions
                .as_deref()
                .map(|d| d.device_type.as_str());
            for metric in &reading.metrics {
                let Some(rule_ids) = rules.by_metric.get(&metric.name) else {
                    continue;
                };
                let value = match metric.value {
                    MetricValue::Number(v) => v,
                    MetricValue::Bool(b) => f64::from(u8::from(b)),
                    MetricValue::Text(_) => continue,
                };
                for &rule in rule_ids {
                    if rules.rules[rule].scope.covers(device, device_type) {
                        if slots[rule].is_empty() {
                            touched.push(rule);
                        }
                        slots[rule].push((index, reading.time_ms, value));
                    }
                }
            }
        }
        touched.sort_unstable();
        for rule in touched.drain(..) {
            let begin = out.entries.len();
            out.entries.append(&mut slots[rule]);
            out.pairs
                .push((rule, device.to_owned(), begin..out.entries.len()));
        }
        start = end;
    }
    out
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
    readings: &[(usize, i64, f64)],
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
    for &(index, time_ms, value) in readings {
        let step = if suppressed.binary_search(&index).is_ok() {
            apply_suppressed_reading(rule, &mut next, time_ms, value)
        } else {
            apply_reading(rule, &mut next, time_ms, value)
        };
        changed |= step.changed;
        let action = match step.action {
            Some(ActionKind::OnAlarm) => rule.actions.on_alarm.as_ref(),
            Some(ActionKind::OnOk) => rule.actions.on_ok.as_ref(),
            None => None,
        };
        commands.extend(action.cloned());
        if let Some(event) = step.event {
            let notification = AlertNotification::new(
                rule,
                &key.device_id,
                &event,
                time_ms_as_version(time_ms),
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
        let keys: Vec<AlertKey> = pairs
            .iter()
            .map(|(rule, device, _)| AlertKey {
                device_id: device.to_owned(),
                rule_id: rules.rules[rule].rule_id.clone(),
            })
            .collect();
        stats.state_batch_reads += 1;
        let mut stored: HashMap<AlertKey, AlertState> = match self.states.get_many(&keys).await {
            Ok(found) => found.into_iter().collect(),
            Err(e) => {
                tracing::error!(error = %e, "alert states unavailable; readings will be retried");
                return all();
            }
        };
        // Decide every pair synchronously; only pairs whose state changes go on to the
        // (asynchronous) conditional write, publish and commands.
        stats.pairs_evaluated = pairs.len() as u64;
        let mut to_write = Vec::new();
        for (pair, ((rule, _, list), key)) in pairs.iter().zip(keys).enumerate() {
            let state = stored.remove(&key).unwrap_or_default();
            if let Some(decision) = decide(
                &rules.rules[rule],
                &key,
                state,
                list,
                suppressed,
                now,
                self.settings.owed_lease,
            ) {
                to_write.push((rule, key, decision, pair));
            }
        }
        let pairs = &pairs;
        let rules = &rules;
        let work = to_write
            .into_iter()
            .map(|(rule, key, decision, pair)| async move {
                let rule = &rules.rules[rule];
                let list = pairs.readings(pair);
                let mut pair_stats = AlertStats::default();
                let ok = self
                    .commit_pair(
                        rule,
                        &key,
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
                retry.extend(list.iter().map(|(i, _, _)| *i));
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
        (readings, suppressed): (&[(usize, i64, f64)], &[usize]),
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
                        match self.commander.update_desired(&key.device_id, desired).await {
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
                        Ok(mut found) => found.pop().map(|(_, s)| s).unwrap_or_default(),
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
