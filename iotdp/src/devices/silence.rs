//! The silence watch: active devices quiet for longer than their `heartbeat_seconds` raise a
//! `no_data` alert through the same state machine, state table and SNS topic as every other
//! rule, and clear it when data resumes.
//!
//! The registry keeps, for each watched device, a deadline (`watch_at` = last seen +
//! heartbeat) in a sparse index partitioned into [`SILENCE_SHARDS`] shards and, within a
//! shard, into the devices being watched (`due`) and those whose silence was raised (`open`).
//! That deadline moves only with the hourly `last_seen` write; in between, ingest appends each
//! device's next deadline to the heard log ([`crate::devices::heard`]), a few digests a minute
//! for the whole fleet. A run lists the `due` devices whose index deadline passed and the
//! `open` ones, reads the log's recent digests, skips the overdue devices the log shows alive
//! (no read, no write), and reads the records of the rest: only those need action.
//! Suspended and decommissioned devices and devices without a heartbeat are not in the index.
//!
//! Suppression by hierarchy (Kapacitor's `inhibit`): a device whose gateway is itself silent
//! or suspended is claimed into a third set (`held`) and its `no_data` raised suppressed:
//! recorded and listed, not notified. Each run looks at the held set (empty but during a
//! gateway's outage): a held device heard from again clears unnotified; one still silent once
//! its gateway is back is notified then, and moves to the raised set.

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream;

use crate::alerting::evaluator::{AlertEvaluator, AlertSettings};

use crate::alerting::ports::AlertStats;
use crate::alerting::ports::{AlertPortError, AlertStateStore, NoCommands, Notifier, RuleSource};
use crate::alerting::rule::{Actions, AlertRule, Condition, NO_DATA_RULE_ID, Scope, Severity};
use std::collections::HashMap;

use crate::devices::heard::{heard_from_raise_at, raise_at};
use crate::devices::ports::{DeviceRegistry, RegistryError, Watched};
use crate::devices::record::{DeviceRecord, DeviceStatus};
use crate::domain::{Metric, MetricValue, Reading};

/// Index partitions. 16 keeps each under DynamoDB's per-partition write rate at 100,000
/// devices writing `last_seen` once a minute (~104 index writes/s per shard), while an idle
/// run costs only 32 empty queries.
pub const SILENCE_SHARDS: u16 = 16;
/// How far back the watch reads the heard log past `now`: the devices that fell silent since
/// the last run (minutes ago, or longer after missed runs) are raised with the time they were
/// really heard last, not the registry's hourly `last_seen`.
pub const HEARD_LOOKBACK_MS: i64 = 10 * 60 * 1000;
/// The metric `no_data` notifications report: how long the device has been silent.
pub const SILENCE_METRIC: &str = "seconds_silent";

/// Which shard a device's watch entry lives in: a stable hash (FNV-1a) of its id.
pub fn watch_shard(device_id: &str) -> u16 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in device_id.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (hash % u32::from(SILENCE_SHARDS)) as u16
}

/// The deadline after which a device heard from at `heard_ms` is silent for too long.
pub fn watch_deadline(heard_ms: i64, heartbeat_seconds: u32) -> i64 {
    heard_ms + i64::from(heartbeat_seconds) * 1000
}

/// The built-in `no_data` rule: fires when a device is silent at all past its deadline,
/// clears when it is heard from again.
pub fn no_data_rule(severity: Severity) -> AlertRule {
    AlertRule {
        rule_id: NO_DATA_RULE_ID.into(),
        name: "No data: silent for longer than its heartbeat".into(),
        enabled: true,
        scope: Scope::All,
        metric: SILENCE_METRIC.into(),
        condition: Condition::Above(0.0),
        clear: None,
        debounce: None,
        severity,
        levels: Vec::new(),
        renotify_after: None,
        latched: false,
        flapping: None,
        actions: Actions::default(),
    }
}

/// The one rule the silence watch evaluates.
pub struct NoDataRule(pub Severity);

impl RuleSource for NoDataRule {
    async fn load_rules(&self) -> Result<Vec<AlertRule>, AlertPortError> {
        Ok(vec![no_data_rule(self.0)])
    }
}

/// What one run found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SilenceReport {
    pub index_queries: u64,
    /// Devices in the heard log's digests read this run.
    pub heard_log_devices: u64,
    /// Overdue by the index but heard from within their heartbeat by the heard log: skipped
    /// without a read or a write.
    pub alive_by_log: u64,
    /// Overdue by the index and not alive by the log: their records decide.
    pub overdue: u64,
    /// Overdue by the index but heard from within the heartbeat: deadline moved on.
    pub rescheduled: u64,
    pub resumed: u64,
    pub raised: u64,
    /// Raised while the gateway they report through is silent or suspended: recorded, not
    /// notified.
    pub suppressed: u64,
    /// Devices in the held set this run looked at.
    pub held: u64,
    /// Held devices still silent after their gateway recovered: notified now.
    pub released: u64,
    pub cleared: u64,
    /// Devices whose alert could not be raised or cleared this run (retried on the next).
    pub failures: u64,
    #[serde(skip)]
    pub alerts: AlertStats,
}

pub struct SilenceWatch<R, S, N> {
    registry: R,
    alerts: AlertEvaluator<NoDataRule, S, N, NoCommands>,
}

impl<R, S, N> SilenceWatch<R, S, N>
where
    R: DeviceRegistry,
    S: AlertStateStore,
    N: Notifier,
{
    pub fn new(registry: R, states: S, notifier: N, severity: Severity) -> Self {
        Self {
            registry,
            alerts: AlertEvaluator::new(
                NoDataRule(severity),
                states,
                notifier,
                NoCommands,
                AlertSettings::default(),
            ),
        }
    }

    pub fn registry(&self) -> &R {
        &self.registry
    }

    /// One pass over every shard at wall-clock time `now`: list who is overdue, raised and held;
    /// drop those the heard log shows alive; decide each one; tell the alert evaluator; settle
    /// the registry by what it delivered.
    pub async fn run(&self, now: DateTime<Utc>) -> Result<SilenceReport, RegistryError> {
        let now_ms = now.timestamp_millis();
        let mut report = SilenceReport::default();
        let (mut overdue, raised, held) = self.list_shards(&mut report, now_ms).await?;
        // The heard log's deadlines: what moved since the registry's (coarser) deadline was
        // written, and, looking back a little, when the devices that just fell silent were
        // heard last.
        let heard = self
            .registry
            .heard_since(now_ms - HEARD_LOOKBACK_MS)
            .await?;
        report.heard_log_devices = heard.len() as u64;
        let alive_by_log = |id: &str| heard.get(id).is_some_and(|&at| at > now_ms);
        // Overdue by the index but heard from within the heartbeat, by the log: nothing to do
        // and nothing to write (the index's deadline moves with the next hourly last_seen).
        let listed = overdue.len();
        overdue.retain(|w| !alive_by_log(&w.device_id));
        report.alive_by_log = (listed - overdue.len()) as u64;
        report.overdue = overdue.len() as u64;
        let resumed: Vec<Watched> = raised
            .into_iter()
            .filter(|w| w.watch_at_ms > now_ms || alive_by_log(&w.device_id))
            .collect();
        report.resumed = resumed.len() as u64;

        let records = self.records_with_gateways(&overdue, &held).await?;
        let mut decisions = Decisions::default();
        let seen = Seen {
            records: &records,
            heard: &heard,
            now_ms,
        };
        self.decide_overdue(&overdue, &seen, &mut decisions, &mut report)
            .await?;
        decide_held(&held, &seen, resumed, &mut decisions);
        report.suppressed = decisions.suppressed.len() as u64;
        report.held = held.len() as u64;
        if decisions.readings.is_empty() && decisions.clearing.is_empty() {
            return Ok(report);
        }
        self.tell_and_settle(decisions, now, &mut report).await?;
        Ok(report)
    }

    /// Every shard's overdue, raised and held entries (three index queries a shard).
    async fn list_shards(
        &self,
        report: &mut SilenceReport,
        now_ms: i64,
    ) -> Result<(Vec<Watched>, Vec<Watched>, Vec<Watched>), RegistryError> {
        let lists: Vec<_> = stream::iter(0..SILENCE_SHARDS)
            .map(|shard| async move {
                let overdue = self.registry.overdue(shard, now_ms).await?;
                let raised = self.registry.raised(shard).await?;
                let held = self.registry.held(shard).await?;
                Ok::<_, RegistryError>((overdue, raised, held))
            })
            .buffer_unordered(4)
            .collect()
            .await;
        let (mut overdue, mut raised, mut held) = (Vec::new(), Vec::new(), Vec::new());
        for list in lists {
            let (o, r, h) = list?;
            report.index_queries += 3;
            overdue.extend(o);
            raised.extend(r);
            held.extend(h);
        }
        Ok((overdue, raised, held))
    }

    /// The records of every device to decide on, and of their gateways.
    async fn records_with_gateways(
        &self,
        overdue: &[Watched],
        held: &[Watched],
    ) -> Result<HashMap<String, DeviceRecord>, RegistryError> {
        let mut records = HashMap::new();
        let ids: Vec<&str> = overdue
            .iter()
            .chain(held)
            .map(|w| w.device_id.as_str())
            .collect();
        self.load_records(&ids, &mut records).await?;
        // Each gateway once: BatchGetItem refuses a list with a key twice.
        let gateways: std::collections::BTreeSet<String> = records
            .values()
            .filter_map(|r| r.gateway_id.clone())
            .filter(|g| !records.contains_key(g))
            .collect();
        let gateways: Vec<&str> = gateways.iter().map(String::as_str).collect();
        self.load_records(&gateways, &mut records).await?;
        Ok(records)
    }

    /// Raise: each overdue device's own last_seen and the log decide: still within its
    /// heartbeat by the record, the deadline is moved on; silent, the entry is claimed
    /// (conditional on the deadline we saw, so data arriving meanwhile wins) and alerted; a
    /// failed alert hands it back. A device whose gateway is silent or suspended is claimed
    /// into the held set instead, and its alert raised suppressed.
    async fn decide_overdue(
        &self,
        overdue: &[Watched],
        seen: &Seen<'_>,
        decisions: &mut Decisions,
        report: &mut SilenceReport,
    ) -> Result<(), RegistryError> {
        for watched in overdue {
            let Some(record) = seen.records.get(&watched.device_id) else {
                continue;
            };
            let Some(heartbeat) = record.heartbeat_seconds else {
                continue;
            };
            let heard_ms = last_heard(record, seen.heard);
            // last_seen may be up to its resolution stale: wait that long too, never raise early.
            let deadline = raise_at(heard_ms, heartbeat);
            let silence = || silence_reading(&watched.device_id, heard_ms, seen.now_ms);
            if deadline > seen.now_ms {
                self.registry
                    .reschedule_watch(&watched.device_id, deadline)
                    .await?;
                report.rescheduled += 1;
            } else if seen.gateway_down(record) {
                if self.registry.mark_held(watched).await? {
                    decisions.suppressed.push(decisions.readings.len());
                    decisions.readings.push(silence());
                    decisions
                        .raising
                        .push((watched.device_id.clone(), Claim::Held));
                }
            } else if self.registry.mark_silent(watched).await? {
                decisions.readings.push(silence());
                decisions
                    .raising
                    .push((watched.device_id.clone(), Claim::Raised));
            }
        }
        Ok(())
    }

    /// The readings go to the alert evaluator (the suppressed ones unnotified); then each
    /// claim is kept, released or handed back by whether its evaluation completed.
    async fn tell_and_settle(
        &self,
        decisions: Decisions,
        now: DateTime<Utc>,
        report: &mut SilenceReport,
    ) -> Result<(), RegistryError> {
        let Decisions {
            mut readings,
            suppressed,
            raising,
            releasing,
            clearing,
        } = decisions;
        let releasing_from = raising.len();
        let clearing_from = readings.len();
        readings.extend(
            clearing
                .iter()
                .map(|id| resumed_reading(id, now.timestamp_millis())),
        );
        let outcome = self
            .alerts
            .evaluate_with_suppression(&readings, &suppressed, now)
            .await;
        report.alerts = outcome.stats;
        let failed: std::collections::HashSet<usize> = outcome.retry.into_iter().collect();
        for (i, (id, claim)) in raising.iter().enumerate() {
            if failed.contains(&i) {
                report.failures += 1;
                self.registry.mark_watched(id).await?;
            } else if *claim == Claim::Raised {
                report.raised += 1;
            }
        }
        for (j, id) in releasing.iter().enumerate() {
            if failed.contains(&(releasing_from + j)) {
                report.failures += 1; // still held: decided again next run
            } else if self.registry.release_held(id).await? {
                report.raised += 1;
                report.released += 1;
            }
        }
        for (j, id) in clearing.iter().enumerate() {
            if failed.contains(&(clearing_from + j)) {
                report.failures += 1; // still listed as resumed (or held) next run
            } else if self.registry.mark_watched(id).await? {
                report.cleared += 1;
            }
        }
        Ok(())
    }

    async fn load_records(
        &self,
        ids: &[&str],
        into: &mut std::collections::HashMap<String, DeviceRecord>,
    ) -> Result<(), RegistryError> {
        for chunk in ids.chunks(100) {
            for record in self.registry.get_many(chunk).await? {
                into.insert(record.device_id.clone(), record);
            }
        }
        Ok(())
    }
}

/// What a run decided to tell the alert evaluator, in the order of `readings`: first one
/// reading per claim in `raising`, then one per device in `releasing`; `clearing`'s readings
/// are appended when told. `suppressed` indexes the raising readings whose gateway is down.
#[derive(Default)]
struct Decisions {
    readings: Vec<Reading>,
    suppressed: Vec<usize>,
    raising: Vec<(String, Claim)>,
    releasing: Vec<String>,
    clearing: Vec<String>,
}

/// What a run knows of the devices it decides on.
struct Seen<'a> {
    records: &'a HashMap<String, DeviceRecord>,
    heard: &'a HashMap<String, i64>,
    now_ms: i64,
}

impl Seen<'_> {
    /// Whether the device's gateway is silent or suspended (its spots' silence is then the
    /// gateway's, and suppressed).
    fn gateway_down(&self, record: &DeviceRecord) -> bool {
        record
            .gateway_id
            .as_ref()
            .and_then(|g| self.records.get(g))
            .is_some_and(|gateway| is_silent_or_suspended(gateway, self.heard, self.now_ms))
    }
}

/// Held devices: heard from again, their suppressed alert clears unnotified; still silent once
/// the gateway is back, it is notified now (it outlasted the gateway).
fn decide_held(
    held: &[Watched],
    seen: &Seen<'_>,
    mut resumed: Vec<Watched>,
    decisions: &mut Decisions,
) {
    for watched in held {
        let Some(record) = seen.records.get(&watched.device_id) else {
            continue;
        };
        let heard_ms = last_heard(record, seen.heard);
        let silent = record
            .heartbeat_seconds
            .is_none_or(|heartbeat| raise_at(heard_ms, heartbeat) <= seen.now_ms);
        if !silent {
            resumed.push(watched.clone());
        } else if !seen.gateway_down(record) {
            decisions
                .readings
                .push(silence_reading(&watched.device_id, heard_ms, seen.now_ms));
            decisions.releasing.push(watched.device_id.clone());
        }
    }
    decisions.clearing = resumed.into_iter().map(|w| w.device_id).collect();
}

/// How an overdue device was claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    Raised,
    Held,
}

/// A gateway whose own silence is (or is about to be) raised, or that an operator suspended:
/// the devices it reports for are not to be alerted on while it is down.
pub fn is_silent_or_suspended(
    gateway: &DeviceRecord,
    heard: &HashMap<String, i64>,
    now_ms: i64,
) -> bool {
    if gateway.status == DeviceStatus::Suspended {
        return true;
    }
    gateway
        .heartbeat_seconds
        .is_some_and(|heartbeat| raise_at(last_heard(gateway, heard), heartbeat) <= now_ms)
}

/// When a device was heard from last: its registry `last_seen` (written hourly), or later by
/// the heard log (kept to a tenth of its heartbeat), or its creation if never.
pub fn last_heard(record: &DeviceRecord, heard: &HashMap<String, i64>) -> i64 {
    let recorded = record.last_seen_ms.unwrap_or(record.created_at_ms);
    match (heard.get(&record.device_id), record.heartbeat_seconds) {
        (Some(&raise_at_ms), Some(heartbeat)) => {
            recorded.max(heard_from_raise_at(raise_at_ms, heartbeat))
        }
        _ => recorded,
    }
}

fn silence_reading(device_id: &str, heard_ms: i64, now_ms: i64) -> Reading {
    let silent_ms = now_ms - heard_ms;
    synthetic(device_id, now_ms, (silent_ms.max(1000) / 1000) as f64)
}

fn resumed_reading(device_id: &str, now_ms: i64) -> Reading {
    synthetic(device_id, now_ms, 0.0)
}

fn synthetic(device_id: &str, now_ms: i64, seconds_silent: f64) -> Reading {
    Reading {
        device_id: device_id.to_owned(),
        time_ms: now_ms,
        seq: None,
        metrics: vec![Metric {
            name: SILENCE_METRIC.into(),
            value: MetricValue::Number(seconds_silent),
        }],
        version: now_ms,
        dimensions: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(watch_shard("battery-001"), watch_shard("battery-001"));
        let mut counts = [0u32; SILENCE_SHARDS as usize];
        for i in 0..16_000 {
            counts[watch_shard(&format!("device-{i}")) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn the_deadline_is_heard_plus_heartbeat() {
        assert_eq!(watch_deadline(1_000, 3600), 3_601_000);
    }
}
