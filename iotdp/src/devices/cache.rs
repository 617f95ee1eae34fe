//! The registry as each Lambda instance caches it: the ingest path reads devices through here,
//! so a steady stream costs one batched registry read per device per TTL, not one per reading,
//! and one `last_seen` write per device per interval, not one per message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use tokio::time::Instant;

use crate::devices::heard::HeardEntry;
use crate::devices::ports::{
    DeviceLookup, DeviceRegistry, DeviceSnapshot, DeviceTypes, NoTypes, RegistryError, Seen,
    SeenReport,
};
use crate::devices::record::{DeviceStatus, KnownDevice, LatestUpdate, last_seen_resolution_ms};
use crate::devices::silence::watch_deadline;
use crate::devices::types::DerivedMetrics;

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
    /// A device's `last_seen` is written to the registry only when it moved by more than
    /// this. A watched device's silence deadline is kept as fresh as a tenth of its heartbeat
    /// ([`last_seen_resolution_ms`]) through the heard log in between.
    pub seen_interval: Duration,
}

/// The default `last_seen` interval: an hour. `last_seen` tells an operator roughly when a
/// device last reported (the readings carry exact times, and the silence watch reads the heard
/// log), and a device reporting every 5 minutes then costs one registry write in 13 messages,
/// every 10 s one in 361 (docs/cost.md).
pub const DEFAULT_SEEN_INTERVAL: Duration = Duration::from_secs(3600);

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
    /// The latest heard time this instance logged (heard log or registry), for watched devices.
    heard_logged_ms: Option<i64>,
}

pub struct CachedRegistry<R, T = NoTypes> {
    registry: R,
    types: T,
    settings: RegistryCacheSettings,
    entries: Mutex<HashMap<String, Entry>>,
    /// Each device type's compiled derived metrics (`None`: it defines none), trusted for the
    /// same TTL as the devices: a new definition takes effect within it.
    derived: Mutex<HashMap<String, CachedType>>,
}

/// When a type's definition was read, and its derived metrics (`None`: it defines none).
type CachedType = (Instant, Option<Arc<DerivedMetrics>>);

impl<R: DeviceRegistry> CachedRegistry<R> {
    pub fn new(registry: R, settings: RegistryCacheSettings) -> Self {
        Self {
            registry,
            types: NoTypes,
            settings,
            entries: Mutex::default(),
            derived: Mutex::default(),
        }
    }
}

impl<R: DeviceRegistry, T: DeviceTypes> CachedRegistry<R, T> {
    /// With the device types whose derived metrics the readings get.
    pub fn with_types<U: DeviceTypes>(self, types: U) -> CachedRegistry<R, U> {
        CachedRegistry {
            registry: self.registry,
            types,
            settings: self.settings,
            entries: self.entries,
            derived: self.derived,
        }
    }

    /// The derived metrics of `types`, from the cache or one read of the definitions. A
    /// definition that no longer compiles (stored by hand) derives nothing and is logged.
    async fn derived_of(
        &self,
        types: Vec<&str>,
    ) -> Result<HashMap<String, Arc<DerivedMetrics>>, RegistryError> {
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        {
            let cached = self
                .derived
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for name in types {
                match cached.get(name) {
                    Some((fetched, derived)) if fetched.elapsed() < self.settings.ttl => {
                        if let Some(d) = derived {
                            out.insert(name.to_owned(), d.clone());
                        }
                    }
                    _ => missing.push(name),
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let found = self.types.get_types(&missing).await?;
        let now = Instant::now();
        let mut cached = self
            .derived
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for name in &missing {
            cached.insert((*name).to_owned(), (now, None));
        }
        for definition in found {
            match definition.compile() {
                Ok(derived) if derived.names().next().is_some() => {
                    let derived = Arc::new(derived);
                    out.insert(definition.device_type.clone(), derived.clone());
                    cached.insert(definition.device_type, (now, Some(derived)));
                }
                Ok(_) => {}
                Err(e) => tracing::error!(
                    device_type = %definition.device_type,
                    error = %e,
                    "a stored device type no longer compiles: it derives nothing until put again"
                ),
            }
        }
        Ok(out)
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

impl<R: DeviceRegistry, T: DeviceTypes> DeviceLookup for CachedRegistry<R, T> {
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
                // A refill keeps what this instance knows it logged.
                let heard_logged_ms = entries.get(id).and_then(|e| e.heard_logged_ms);
                entries.insert(
                    id.to_owned(),
                    Entry {
                        fetched: now,
                        device: None,
                        last_seen_ms: None,
                        heard_logged_ms,
                    },
                );
            }
            for record in found {
                let id = record.device_id.clone();
                let last_seen = record.last_seen_ms;
                let device = Arc::new(KnownDevice::from(record));
                snapshot.devices.insert(id.clone(), device.clone());
                if let Some(e) = entries.get_mut(&id) {
                    e.device = Some(device);
                    e.last_seen_ms = last_seen;
                    e.heard_logged_ms = e.heard_logged_ms.max(last_seen);
                }
            }
        }
        let mut types: Vec<&str> = snapshot
            .devices
            .values()
            .map(|d| d.record.device_type.as_str())
            .collect();
        types.sort_unstable();
        types.dedup();
        let derived = self.derived_of(types).await?;
        snapshot.derived = derived;
        Ok(snapshot)
    }

    /// Every device's `last_seen` is written to the registry when it moved by more than the
    /// interval (a watched device's with its index deadline). A watched device's silence
    /// deadline otherwise goes to the heard log, in one digest for the whole batch, whenever
    /// it moved by more than a tenth of the heartbeat: exactly the freshness the silence watch
    /// assumes, at about 20 bytes a device instead of a registry write.
    async fn record_seen(&self, seen: &[Seen<'_>]) -> SeenReport {
        let interval_ms = self.settings.seen_interval.as_millis() as i64;
        // With a last_seen: the batch's latest values, and the time by which any reading not
        // among them was received (a later one writes last_seen again).
        let update = |seen: &Seen<'_>| LatestUpdate {
            values: seen.latest_values(),
            tail_until_ms: Some(seen.at_ms + interval_ms),
        };
        let mut heard = Vec::new();
        let mut heard_at = Vec::new();
        let mut due: Vec<(String, i64, Option<i64>, LatestUpdate)> = {
            let mut entries = self.entries();
            seen.iter()
                .filter_map(|seen| {
                    let (id, at) = (seen.device_id, seen.at_ms);
                    let entry = entries.get_mut(id)?;
                    let record = &entry.device.as_ref()?.record;
                    let heartbeat = record
                        .heartbeat_seconds
                        .filter(|_| record.status == DeviceStatus::Active);
                    let seen_moved = entry
                        .last_seen_ms
                        .is_none_or(|last| at - last > interval_ms);
                    if seen_moved {
                        let watch_at = heartbeat.map(|h| watch_deadline(at, h));
                        if heartbeat.is_some() {
                            entry.heard_logged_ms = Some(at);
                        }
                        return Some((id.to_owned(), at, watch_at, update(seen)));
                    }
                    let heartbeat = heartbeat?;
                    if entry
                        .heard_logged_ms
                        .is_none_or(|logged| at - logged > last_seen_resolution_ms(heartbeat))
                    {
                        entry.heard_logged_ms = Some(at);
                        heard.push(HeardEntry::new(id, at, heartbeat));
                        heard_at.push((at, heartbeat));
                    }
                    None
                })
                .collect()
        };
        let mut report = SeenReport::default();
        if !heard.is_empty() {
            report.heard = heard.len() as u64;
            if let Err(e) = self.registry.append_heard(&heard).await {
                // Then as before the heard log: each of these devices' last_seen and deadline
                // in its own registry write, so the watch still sees them heard.
                report.failures += 1;
                tracing::warn!(
                    error = %e,
                    devices = heard.len(),
                    "heard log append failed: writing these devices' deadlines to the registry"
                );
                for (entry, (at, heartbeat)) in heard.iter().zip(&heard_at) {
                    due.push((
                        entry.device_id.clone(),
                        *at,
                        Some(watch_deadline(*at, *heartbeat)),
                        LatestUpdate {
                            values: Vec::new(),
                            tail_until_ms: Some(*at + interval_ms),
                        },
                    ));
                }
            }
        }
        let mut writes = stream::iter(due.into_iter().map(
            |(id, at, watch_at, latest)| async move {
                let result = self
                    .registry
                    .touch_last_seen(&id, at, watch_at, &latest)
                    .await;
                (id, at, watch_at, result)
            },
        ))
        .buffer_unordered(SEEN_WRITE_CONCURRENCY);
        while let Some((id, at, _, result)) = writes.next().await {
            report.writes += 1;
            match result {
                Ok(_) => {
                    if let Some(e) = self.entries().get_mut(&id) {
                        e.last_seen_ms = Some(e.last_seen_ms.map_or(at, |l| l.max(at)));
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
