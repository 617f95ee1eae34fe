//! The registry as each Lambda instance caches it: the ingest path reads devices through here,
//! so a steady stream costs one batched registry read per device per TTL, not one per reading,
//! and one `last_seen` write per device per interval, not one per message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use tokio::time::Instant;

use crate::devices::ports::{
    DeviceLookup, DeviceRegistry, DeviceSnapshot, RegistryError, SeenReport,
};
use crate::devices::record::{DeviceStatus, KnownDevice, last_seen_resolution_ms};

/// BatchGetItem takes at most 100 keys per call: one registry read covers up to 100 devices.
pub const MAX_DEVICES_PER_READ: usize = 100;
/// Beyond this many cached devices, expired entries are dropped on the next fill.
const PRUNE_ABOVE: usize = 200_000;
/// Registry reads (BatchGetItem, 100 devices each) in flight at once.
const READ_CONCURRENCY: usize = 8;
/// `last_seen` updates in flight at once.
const SEEN_WRITE_CONCURRENCY: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryCacheSettings {
    /// How long a looked-up device (or its absence) is trusted. A suspension takes effect
    /// within this time.
    pub ttl: Duration,
    /// An unwatched device's (no heartbeat) `last_seen` is written only when it moved by more
    /// than this. A watched device's follows its heartbeat ([`last_seen_resolution_ms`]).
    pub seen_interval: Duration,
}

/// The default `last_seen` interval of unwatched devices: 15 minutes. Nothing raises on their
/// silence, `last_seen` only tells an operator roughly when they last reported (the readings
/// carry exact times), and a device reporting every 10 s then costs one registry write in 90
/// messages instead of one in 7 (docs/cost.md).
pub const DEFAULT_SEEN_INTERVAL: Duration = Duration::from_secs(900);

impl Default for RegistryCacheSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(60),
            seen_interval: DEFAULT_SEEN_INTERVAL,
        }
    }
}

struct Entry {
    fetched: Instant,
    /// `None`: not registered (cached too, so a flood from an unknown device costs no reads).
    device: Option<Arc<KnownDevice>>,
    /// The latest `last_seen` this instance wrote or read.
    last_seen_ms: Option<i64>,
    /// The `last_seen` at which this instance last moved the silence deadline.
    watch_written_ms: Option<i64>,
}

pub struct CachedRegistry<R> {
    registry: R,
    settings: RegistryCacheSettings,
    entries: Mutex<HashMap<String, Entry>>,
}

impl<R: DeviceRegistry> CachedRegistry<R> {
    pub fn new(registry: R, settings: RegistryCacheSettings) -> Self {
        Self {
            registry,
            settings,
            entries: Mutex::default(),
        }
    }

    pub fn registry(&self) -> &R {
        &self.registry
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<R: DeviceRegistry> DeviceLookup for CachedRegistry<R> {
    async fn lookup(&self, device_ids: &[&str]) -> Result<DeviceSnapshot, RegistryError> {
        let mut snapshot = DeviceSnapshot::default();
        let mut missing: Vec<&str> = Vec::new();
        {
            let entries = self.entries();
            for &id in device_ids {
                match entries.get(id) {
                    Some(e) if e.fetched.elapsed() < self.settings.ttl => {
                        if let Some(device) = &e.device {
                            snapshot.devices.insert(id.to_owned(), device.clone());
                        }
                    }
                    _ => missing.push(id),
                }
            }
        }
        missing.sort_unstable();
        missing.dedup();
        // A cold instance reads its whole fleet at once: the reads go out together, not one
        // after another.
        let mut pending = Vec::new();
        for chunk in missing.chunks(MAX_DEVICES_PER_READ) {
            let registry = &self.registry;
            pending.push(async move { (chunk, registry.get_many(chunk).await) });
        }
        let reads: Vec<_> = stream::iter(pending)
            .buffer_unordered(READ_CONCURRENCY)
            .collect()
            .await;
        for (chunk, found) in reads {
            snapshot.registry_reads += 1;
            let found = found?;
            let now = Instant::now();
            let mut entries = self.entries();
            if entries.len() > PRUNE_ABOVE {
                let ttl = self.settings.ttl;
                entries.retain(|_, e| e.fetched.elapsed() < ttl);
            }
            for &id in chunk {
                // A refill keeps what this instance knows it wrote.
                let watch_written_ms = entries.get(id).and_then(|e| e.watch_written_ms);
                entries.insert(
                    id.to_owned(),
                    Entry {
                        fetched: now,
                        device: None,
                        last_seen_ms: None,
                        watch_written_ms,
                    },
                );
            }
            for record in found {
                let id = record.device_id.clone();
                let last_seen = record.last_seen_ms;
                // The stored deadline is `seen + heartbeat`: what it was written for.
                let deadline_written_for = record
                    .watch_at_ms
                    .zip(record.heartbeat_seconds)
                    .map(|(at, h)| at - i64::from(h) * 1000);
                let device = Arc::new(KnownDevice::from(record));
                snapshot.devices.insert(id.clone(), device.clone());
                if let Some(e) = entries.get_mut(&id) {
                    e.device = Some(device);
                    e.last_seen_ms = last_seen;
                    e.watch_written_ms = e.watch_written_ms.max(deadline_written_for);
                }
            }
        }
        Ok(snapshot)
    }

    /// `last_seen` is written when it moved by more than the interval. A watched device's
    /// silence deadline moves with it at most every quarter heartbeat: each deadline move is an
    /// index write, and a deadline at most a quarter heartbeat stale never fires early (the
    /// silence watch re-checks `last_seen` before raising anyway).
    async fn record_seen(&self, seen: &[(&str, i64)]) -> SeenReport {
        let interval_ms = self.settings.seen_interval.as_millis() as i64;
        let due: Vec<(String, i64, Option<i64>)> = {
            let entries = self.entries();
            seen.iter()
                .filter_map(|&(id, at)| {
                    let entry = entries.get(id)?;
                    let record = &entry.device.as_ref()?.record;
                    let heartbeat_ms = record
                        .heartbeat_seconds
                        .filter(|_| record.status == DeviceStatus::Active)
                        .map(|h| i64::from(h) * 1000);
                    let move_deadline = heartbeat_ms
                        .filter(|h| entry.watch_written_ms.is_none_or(|w| at - w >= h / 4));
                    // Watched: exactly as fresh as the silence watch assumes (never staler,
                    // or no_data could be raised early). Unwatched: the interval.
                    let resolution_ms = record
                        .heartbeat_seconds
                        .filter(|_| record.status == DeviceStatus::Active)
                        .map_or(interval_ms, last_seen_resolution_ms);
                    let seen_moved = entry
                        .last_seen_ms
                        .is_none_or(|last| at - last > resolution_ms);
                    (seen_moved || move_deadline.is_some())
                        .then(|| (id.to_owned(), at, move_deadline.map(|h| at + h)))
                })
                .collect()
        };
        let mut report = SeenReport::default();
        let mut writes = stream::iter(due.into_iter().map(|(id, at, watch_at)| async move {
            let result = self.registry.touch_last_seen(&id, at, watch_at).await;
            (id, at, watch_at, result)
        }))
        .buffer_unordered(SEEN_WRITE_CONCURRENCY);
        while let Some((id, at, watch_at, result)) = writes.next().await {
            report.writes += 1;
            match result {
                Ok(_) => {
                    if let Some(e) = self.entries().get_mut(&id) {
                        e.last_seen_ms = Some(e.last_seen_ms.map_or(at, |l| l.max(at)));
                        if watch_at.is_some() {
                            e.watch_written_ms = Some(at);
                        }
                    }
                }
                Err(e) => {
                    // Best effort: a missed write only delays last_seen by one interval.
                    report.failures += 1;
                    tracing::warn!(error = %e, device = %id, "last_seen write failed");
                }
            }
        }
        report
    }
}
