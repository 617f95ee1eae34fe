//! The registry as each Lambda instance caches it: the ingest path reads devices through here,
//! so a steady stream costs one batched registry read per device per TTL, not one per reading,
//! and one `last_seen` write per device per interval, not one per message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use tokio::time::Instant;

use crate::devices::record::KnownDevice;
use crate::ports::{
    AlertPortError, DeviceDirectory, DeviceLookup, DeviceRegistry, DeviceSnapshot, RegistryError,
    SeenReport,
};

/// BatchGetItem takes at most 100 keys per call: one registry read covers up to 100 devices.
pub const MAX_DEVICES_PER_READ: usize = 100;
/// Beyond this many cached devices, expired entries are dropped on the next fill.
const PRUNE_ABOVE: usize = 200_000;
/// `last_seen` updates in flight at once.
const SEEN_WRITE_CONCURRENCY: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryCacheSettings {
    /// How long a looked-up device (or its absence) is trusted. A suspension takes effect
    /// within this time.
    pub ttl: Duration,
    /// `last_seen` is written only when it moved by more than this.
    pub seen_interval: Duration,
}

impl Default for RegistryCacheSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(60),
            seen_interval: Duration::from_secs(60),
        }
    }
}

struct Entry {
    fetched: Instant,
    /// `None`: not registered (cached too, so a flood from an unknown device costs no reads).
    device: Option<Arc<KnownDevice>>,
    /// The latest `last_seen` this instance wrote or read.
    last_seen_ms: Option<i64>,
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
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
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
        for chunk in missing.chunks(MAX_DEVICES_PER_READ) {
            snapshot.registry_reads += 1;
            let found = self.registry.get_many(chunk).await?;
            let now = Instant::now();
            let mut entries = self.entries();
            if entries.len() > PRUNE_ABOVE {
                let ttl = self.settings.ttl;
                entries.retain(|_, e| e.fetched.elapsed() < ttl);
            }
            for &id in chunk {
                entries.insert(
                    id.to_owned(),
                    Entry {
                        fetched: now,
                        device: None,
                        last_seen_ms: None,
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
                }
            }
        }
        Ok(snapshot)
    }

    async fn record_seen(&self, seen: &[(&str, i64)]) -> SeenReport {
        let interval_ms = self.settings.seen_interval.as_millis() as i64;
        let due: Vec<(String, i64, Option<u32>)> = {
            let entries = self.entries();
            seen.iter()
                .filter_map(|&(id, at)| {
                    let entry = entries.get(id)?;
                    let device = entry.device.as_ref()?;
                    let moved = entry
                        .last_seen_ms
                        .is_none_or(|last| at - last > interval_ms);
                    moved.then(|| (id.to_owned(), at, device.record.heartbeat_seconds))
                })
                .collect()
        };
        let mut report = SeenReport::default();
        let mut writes = stream::iter(due.into_iter().map(|(id, at, heartbeat)| async move {
            let result = self.registry.touch_last_seen(&id, at, heartbeat).await;
            (id, at, result)
        }))
        .buffer_unordered(SEEN_WRITE_CONCURRENCY);
        while let Some((id, at, result)) = writes.next().await {
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

impl<R: DeviceRegistry> DeviceDirectory for CachedRegistry<R> {
    async fn device_types(
        &self,
        device_ids: &[&str],
    ) -> Result<HashMap<String, String>, AlertPortError> {
        let snapshot = self
            .lookup(device_ids)
            .await
            .map_err(|e| AlertPortError(e.to_string()))?;
        Ok(snapshot
            .devices
            .into_iter()
            .map(|(id, d)| (id, d.record.device_type.clone()))
            .collect())
    }
}
