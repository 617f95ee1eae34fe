//! The ingest use case, top to bottom:
//! SQS batch → envelopes → readings (or rejections) → device admission (registry) → store
//! writes → last seen → alert evaluation → quarantine → SQS batch response. Nothing is dropped: every reading ends stored, quarantined
//! with a reason, or with its message reported failed so SQS redelivers it.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::alerting::ports::ReadingsObserver;
use crate::devices::admission::{UnknownDevicePolicy, admit};
use crate::devices::ports::{DeviceLookup, Seen};
use crate::devices::types::Derivation;
use crate::domain::Reading;
use crate::domain::reason::{ReasonCode, Rejection};
use crate::ingest::batch::{PreparedBatch, prepare_batch};
use crate::ingest::metrics::IngestMetrics;
use crate::ingest::ports::{QuarantineSink, TimeSeriesStore};
use crate::ingest::quarantine::{count_by_reason, quarantine_key, render_quarantine};
use crate::ingest::store_writer::{WriteOutcome, WritePolicy, write_readings};
use crate::ingest::validation::TimeWindow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestSettings {
    pub window: TimeWindow,
    pub write: WritePolicy,
    pub unknown_devices: UnknownDevicePolicy,
}

/// One invocation's identity and time budget.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub deadline: Instant,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IngestReport {
    /// The ids of the messages (or records) to redeliver, in batch order: what the event
    /// source's `batchItemFailures` names.
    pub failed_items: Vec<String>,
    pub metrics: IngestMetrics,
}

/// The ingest use case over its ports: a time-series store, a quarantine, the device registry
/// (through its cache), and an observer of stored readings (alert evaluation).
pub struct IngestService<S, Q, D, O> {
    store: S,
    quarantine: Q,
    devices: D,
    observer: O,
    settings: IngestSettings,
}

impl<S, Q, D, O> IngestService<S, Q, D, O>
where
    S: TimeSeriesStore,
    Q: QuarantineSink,
    D: DeviceLookup,
    O: ReadingsObserver,
{
    pub fn new(store: S, quarantine: Q, devices: D, observer: O, settings: IngestSettings) -> Self {
        Self {
            store,
            quarantine,
            devices,
            observer,
            settings,
        }
    }

    pub fn observer(&self) -> &O {
        &self.observer
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn devices(&self) -> &D {
        &self.devices
    }

    /// `(message id, body)` pairs of an SQS batch → stored, quarantined or returned for retry.
    pub async fn handle_messages<'a>(
        &self,
        messages: impl Iterator<Item = (&'a str, &'a str)>,
        invocation: &Invocation,
    ) -> IngestReport {
        self.handle_messages_with(messages, invocation, Redelivery::EachFailed)
            .await
    }

    /// The same with the event source's redelivery: a Kinesis batch is redelivered from its
    /// first failed record on, so there a failure also returns every record after it.
    pub async fn handle_messages_with<'a>(
        &self,
        messages: impl Iterator<Item = (&'a str, &'a str)>,
        invocation: &Invocation,
        redelivery: Redelivery,
    ) -> IngestReport {
        let mut batch = prepare_batch(messages, self.settings.window);
        let mut failures = MessageFailures::new(batch.messages.len(), redelivery);

        let (registry_reads, derivation) = self.admit_devices(&mut batch, &mut failures).await;
        // Readings of a message that will be redelivered are written on redelivery.
        batch.retain_readings(|_, origin| !failures.has(origin.message));
        batch.sort_by_series();

        let (outcomes, write_stats) = write_readings(
            &self.store,
            &batch.readings,
            &self.settings.write,
            invocation.deadline,
        )
        .await;
        let mut stored = Vec::with_capacity(batch.readings.len());
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let origin = batch.origins[i];
            match outcome {
                WriteOutcome::Stored => stored.push(i),
                WriteOutcome::RejectedByStore(reason) => {
                    batch.reject(origin, Rejection::new(ReasonCode::RejectedByStore, reason));
                }
                WriteOutcome::Failed(why) => failures.fail(origin.message, &why),
            }
        }
        if redelivery == Redelivery::FromFirstFailure {
            // Records after a failed one come again: they are evaluated then, in order.
            stored.retain(|&i| !failures.has(batch.origins[i].message));
        }

        let seen = self.record_last_seen(&batch, &stored).await;

        // Alerts see what was stored, in series/time order. A reading whose evaluation could
        // not complete sends its message back: redelivery rewrites it (an idempotent no-op)
        // and evaluates it again.
        let alerts = if stored.len() == batch.readings.len() {
            self.observer.observe(&batch.readings).await
        } else {
            let subset: Vec<Reading> = stored.iter().map(|&i| batch.readings[i].clone()).collect();
            self.observer.observe(&subset).await
        };
        for i in alerts.retry {
            failures.fail(
                batch.origins[stored[i]].message,
                "alert evaluation did not complete",
            );
        }

        let quarantined = self
            .quarantine_rejections(&batch, &mut failures, invocation)
            .await;

        let mut metrics = IngestMetrics {
            messages: batch.messages.len() as u64,
            readings_accepted: batch.readings.len() as u64,
            rejected_by_reason: count_by_reason(
                batch
                    .rejections
                    .iter()
                    .filter(|r| !failures.has(r.origin.message)),
            ),
            records_written: write_stats.records_written,
            write_calls: write_stats.write_calls,
            write_retries: write_stats.retries,
            write_latencies_ms: write_stats.latencies_ms,
            quarantine_lines: quarantined,
            alerts: alerts.stats,
            registry_reads,
            registry_writes: seen.writes,
            heard_log_entries: seen.heard,
            registry_write_failures: seen.failures,
            derived_values: derivation.computed,
            derived_skipped: derivation.skipped,
            ..Default::default()
        };
        let failed_items = failures.into_failed_items(&batch);
        metrics.failed_messages = failed_items.len() as u64;
        IngestReport {
            failed_items,
            metrics,
        }
    }

    /// Every reading needs the registry's yes (see [`admit`]): its publisher (the topic's
    /// device) and the device it is for must be active, and a gateway must be the device's
    /// registered gateway. Admitted readings get the device's dimensions and their type's
    /// derived metrics. Returns the registry reads made and what was derived. If the registry
    /// cannot be read, the messages are retried.
    async fn admit_devices(
        &self,
        batch: &mut PreparedBatch,
        failures: &mut MessageFailures,
    ) -> (u64, Derivation) {
        if batch.readings.is_empty() {
            return (0, Derivation::default());
        }
        let publishers: Vec<&str> = batch
            .messages
            .iter()
            .map(|m| m.publisher().unwrap_or_default())
            .collect();
        let mut ids: Vec<&str> = batch
            .readings
            .iter()
            .map(|r| r.device_id.as_str())
            .chain(batch.origins.iter().map(|o| publishers[o.message]))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let snapshot = match self.devices.lookup(&ids).await {
            Ok(snapshot) => snapshot,
            Err(e) => {
                let why = e.to_string();
                tracing::warn!(error = %why, "device registry unavailable; messages will be retried");
                for origin in &batch.origins {
                    failures.fail(origin.message, &why);
                }
                return (0, Derivation::default());
            }
        };
        let verdicts: Vec<_> = batch
            .readings
            .iter()
            .zip(&batch.origins)
            .map(|(reading, origin)| {
                admit(
                    &reading.device_id,
                    publishers[origin.message],
                    &snapshot.devices,
                    self.settings.unknown_devices,
                )
            })
            .collect();
        drop(publishers);
        let mut admitted = Vec::with_capacity(verdicts.len());
        let mut derivation = Derivation::default();
        for (i, verdict) in verdicts.into_iter().enumerate() {
            match verdict {
                Ok(dimensions) => {
                    // The type's derived metrics, before storage and alerting see the reading.
                    if let Some(derived) = dimensions
                        .as_ref()
                        .and_then(|d| snapshot.derived.get(&d.device_type))
                    {
                        derived.apply(&mut batch.readings[i], &mut derivation);
                    }
                    batch.readings[i].dimensions = dimensions;
                    admitted.push(true);
                }
                Err(rejection) => {
                    let origin = batch.origins[i];
                    batch.reject(origin, rejection);
                    admitted.push(false);
                }
            }
        }
        batch.retain_readings(|i, _| admitted[i]);
        (snapshot.registry_reads, derivation)
    }

    /// `last_seen` of every device whose readings were stored (and of the gateways that
    /// published them): IoT Core's latest receive time, written by the cache only when it
    /// moved by more than its interval.
    async fn record_last_seen(
        &self,
        batch: &PreparedBatch,
        stored: &[usize],
    ) -> crate::devices::ports::SeenReport {
        // Per device: its latest receive time and its stored readings (the latest values are
        // taken from them only for the devices whose last_seen write is due).
        let mut latest: std::collections::HashMap<&str, (i64, Vec<&crate::domain::Reading>)> =
            std::collections::HashMap::new();
        for &i in stored {
            let reading = &batch.readings[i];
            let (at, readings) = latest
                .entry(reading.device_id.as_str())
                .or_insert((reading.version, Vec::new()));
            *at = (*at).max(reading.version);
            readings.push(reading);
            if let Some(publisher) = batch.messages[batch.origins[i].message].publisher() {
                let (at, _) = latest
                    .entry(publisher)
                    .or_insert((reading.version, Vec::new()));
                *at = (*at).max(reading.version);
            }
        }
        if latest.is_empty() {
            return crate::devices::ports::SeenReport::default();
        }
        let seen: Vec<Seen> = latest
            .into_iter()
            .map(|(device_id, (at_ms, readings))| Seen {
                device_id,
                at_ms,
                readings,
            })
            .collect();
        self.devices.record_seen(&seen).await
    }

    /// Write every rejection of a message that is not being retried; if that fails, the
    /// messages concerned are retried instead, so a rejection is never lost untraced.
    async fn quarantine_rejections(
        &self,
        batch: &PreparedBatch,
        failures: &mut MessageFailures,
        invocation: &Invocation,
    ) -> u64 {
        let lines: Vec<_> = batch
            .rejections
            .iter()
            .filter(|r| !failures.has(r.origin.message))
            .collect();
        if lines.is_empty() {
            return 0;
        }
        let body = render_quarantine(batch, &lines);
        let key = quarantine_key(&invocation.request_id, invocation.started_at);
        match self.quarantine.put(&key, body).await {
            Ok(()) => lines.len() as u64,
            Err(error) => {
                let why = error.to_string();
                tracing::error!(error = %why, key, "quarantine write failed; messages will be retried");
                for line in lines {
                    failures.fail(line.origin.message, &why);
                }
                0
            }
        }
    }
}

/// What the event source redelivers when a batch reports failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redelivery {
    /// SQS: exactly the messages reported.
    EachFailed,
    /// Kinesis: the shard's checkpoint stops at the first reported record, and it and every
    /// record after it come again. Those later records are then returned unfinished (stored
    /// readings are rewritten idempotently; alerts and quarantine wait for the redelivery), so
    /// nothing is quarantined twice and a device's readings reach alert evaluation in order.
    FromFirstFailure,
}

/// Which messages must go back to the event source, and the first reason why (for the logs).
struct MessageFailures {
    reasons: Vec<Option<String>>,
    redelivery: Redelivery,
    /// With [`Redelivery::FromFirstFailure`]: the first failed message; every later one is
    /// returned too (derived, not written into each).
    first: Option<usize>,
}

impl MessageFailures {
    fn new(messages: usize, redelivery: Redelivery) -> Self {
        Self {
            reasons: vec![None; messages],
            redelivery,
            first: None,
        }
    }

    fn fail(&mut self, message: usize, why: &str) {
        if self.reasons[message].is_none() {
            self.reasons[message] = Some(why.to_owned());
        }
        if self.redelivery == Redelivery::FromFirstFailure {
            self.first = Some(self.first.map_or(message, |f| f.min(message)));
        }
    }

    fn has(&self, message: usize) -> bool {
        self.reasons[message].is_some() || self.first.is_some_and(|f| message > f)
    }

    fn into_failed_items(self, batch: &PreparedBatch) -> Vec<String> {
        const AFTER_FIRST: &str = "an earlier record of the shard failed; redelivered after it";
        let mut failed = Vec::new();
        for (message, why) in self.reasons.iter().enumerate() {
            let why = match why {
                Some(why) => why.as_str(),
                None if self.first.is_some_and(|f| message > f) => AFTER_FIRST,
                None => continue,
            };
            let id = batch.messages[message].message_id.clone();
            tracing::warn!(message_id = %id, reason = %why, "message returned for retry");
            failed.push(id);
        }
        failed
    }
}
