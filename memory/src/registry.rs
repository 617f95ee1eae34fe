//! The device registry in memory, with the DynamoDB adapter's conditional semantics and call
//! counters for the cost figures.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use iotdp::devices::heard::{self, HeardEntry};
use iotdp::devices::ports::{DeviceRegistry, PresenceChange, RegistryError, Watched};
use iotdp::devices::record::{DeviceRecord, DeviceStatus, LatestUpdate};
use iotdp::devices::silence::{watch_deadline, watch_shard};

#[derive(Debug, Clone)]
struct StoredDevice {
    record: DeviceRecord,
    presence_at_ms: Option<i64>,
    /// (raised, deadline): the silence-watch index entry, if the device is watched.
    watch: Option<(bool, i64)>,
    /// Raised while its gateway was silent or suspended (the `held#NN` partition).
    held: bool,
}

/// The registry in memory, with the same conditional semantics as the DynamoDB adapter, and
/// call counters for the cost figures.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    devices: Mutex<HashMap<String, StoredDevice>>,
    pub batch_reads: AtomicU64,
    pub seen_writes: AtomicU64,
    /// `last_seen` writes that also moved the silence deadline (an index write in DynamoDB).
    pub watch_writes: AtomicU64,
    /// The heard log's digests, as the DynamoDB adapter stores them.
    heard_log: Mutex<Vec<heard::Digest>>,
    /// Refuse heard-log appends (DynamoDB throttling, a missing table).
    pub heard_log_failing: std::sync::atomic::AtomicBool,
    /// Deadlines appended, across the digests.
    pub heard_entries: AtomicU64,
    /// The device types the API manages through the registry.
    pub types: MemoryDeviceTypes,
}

impl iotdp::devices::ports::DeviceTypes for MemoryRegistry {
    async fn get_types(
        &self,
        names: &[&str],
    ) -> Result<Vec<iotdp::devices::types::TypeDefinition>, RegistryError> {
        self.types.get_types(names).await
    }

    async fn list_types(
        &self,
    ) -> Result<Vec<iotdp::devices::types::TypeDefinition>, RegistryError> {
        self.types.list_types().await
    }

    async fn put_type(
        &self,
        definition: &iotdp::devices::types::TypeDefinition,
    ) -> Result<Option<u32>, RegistryError> {
        self.types.put_type(definition).await
    }
}

impl MemoryRegistry {
    pub fn with(records: impl IntoIterator<Item = DeviceRecord>) -> Self {
        let registry = Self::default();
        {
            let mut devices = registry.devices.lock().unwrap();
            for record in records {
                let watch = initial_watch(&record, record.created_at_ms);
                devices.insert(
                    record.device_id.clone(),
                    StoredDevice {
                        record,
                        presence_at_ms: None,
                        watch,
                        held: false,
                    },
                );
            }
        }
        registry
    }

    pub fn get(&self, device_id: &str) -> Option<DeviceRecord> {
        self.devices
            .lock()
            .unwrap()
            .get(device_id)
            .map(|d| d.record.clone())
    }

    /// The watch entry: `(raised, deadline)`.
    pub fn watch_entry(&self, device_id: &str) -> Option<(bool, i64)> {
        self.devices.lock().unwrap().get(device_id)?.watch
    }
}

fn initial_watch(record: &DeviceRecord, now_ms: i64) -> Option<(bool, i64)> {
    let heartbeat = record.heartbeat_seconds?;
    (record.status == DeviceStatus::Active).then(|| {
        (
            false,
            watch_deadline(record.last_seen_ms.unwrap_or(now_ms), heartbeat),
        )
    })
}

fn lock_error() -> RegistryError {
    RegistryError("memory registry lock poisoned".into())
}

impl DeviceRegistry for MemoryRegistry {
    async fn get_many(&self, ids: &[&str]) -> Result<Vec<DeviceRecord>, RegistryError> {
        self.batch_reads.fetch_add(1, Ordering::Relaxed);
        let devices = self.devices.lock().map_err(|_| lock_error())?;
        Ok(ids
            .iter()
            .filter_map(|id| devices.get(*id).map(|d| d.record.clone()))
            .collect())
    }

    async fn list(&self) -> Result<Vec<DeviceRecord>, RegistryError> {
        let devices = self.devices.lock().map_err(|_| lock_error())?;
        Ok(devices.values().map(|d| d.record.clone()).collect())
    }

    async fn create(&self, record: &DeviceRecord) -> Result<bool, RegistryError> {
        let mut devices = self.devices.lock().map_err(|_| lock_error())?;
        if devices.contains_key(&record.device_id) {
            return Ok(false);
        }
        devices.insert(
            record.device_id.clone(),
            StoredDevice {
                record: record.clone(),
                presence_at_ms: None,
                watch: initial_watch(record, record.created_at_ms),
                held: false,
            },
        );
        Ok(true)
    }

    async fn update_definition(&self, record: &DeviceRecord) -> Result<bool, RegistryError> {
        let mut devices = self.devices.lock().map_err(|_| lock_error())?;
        let Some(stored) = devices.get_mut(&record.device_id) else {
            return Ok(false);
        };
        let r = &mut stored.record;
        r.device_type = record.device_type.clone();
        r.gateway_id = record.gateway_id.clone();
        r.path = record.path.clone();
        r.tags = record.tags.clone();
        r.heartbeat_seconds = record.heartbeat_seconds;
        let raised = stored.watch.is_some_and(|(raised, _)| raised);
        stored.watch = initial_watch(r, r.created_at_ms).map(|(_, at)| (raised, at));
        Ok(true)
    }

    async fn set_status(
        &self,
        device_id: &str,
        status: DeviceStatus,
        now_ms: i64,
    ) -> Result<Option<DeviceRecord>, RegistryError> {
        let mut devices = self.devices.lock().map_err(|_| lock_error())?;
        let Some(stored) = devices.get_mut(device_id) else {
            return Ok(None);
        };
        stored.record.status = status;
        stored.held = false;
        stored.watch = match status {
            DeviceStatus::Active => stored
                .record
                .heartbeat_seconds
                .map(|h| (false, watch_deadline(now_ms, h))),
            _ => None,
        };
        Ok(Some(stored.record.clone()))
    }

    async fn touch_last_seen(
        &self,
        device_id: &str,
        seen_ms: i64,
        watch_at_ms: Option<i64>,
        latest: &LatestUpdate,
    ) -> Result<bool, RegistryError> {
        self.seen_writes.fetch_add(1, Ordering::Relaxed);
        let mut devices = self.devices.lock().map_err(|_| lock_error())?;
        let Some(stored) = devices.get_mut(device_id) else {
            return Ok(false);
        };
        if stored.record.last_seen_ms.is_some_and(|l| l >= seen_ms) {
            return Ok(false);
        }
        stored.record.last_seen_ms = Some(seen_ms);
        for (metric, value) in &latest.values {
            stored.record.latest.insert(metric.clone(), value.clone());
        }
        if latest.tail_until_ms.is_some() {
            stored.record.latest_tail_until_ms = latest.tail_until_ms;
        }
        if let Some(new_at) = watch_at_ms {
            self.watch_writes.fetch_add(1, Ordering::Relaxed);
            if let Some((_, at)) = stored.watch.as_mut() {
                *at = new_at;
            }
        }
        Ok(true)
    }

    async fn reschedule_watch(
        &self,
        device_id: &str,
        watch_at_ms: i64,
    ) -> Result<bool, RegistryError> {
        let mut devices = self.devices.lock().map_err(|_| lock_error())?;
        match devices.get_mut(device_id).and_then(|d| d.watch.as_mut()) {
            Some((false, at)) if *at < watch_at_ms => {
                *at = watch_at_ms;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn record_presence(
        &self,
        device_id: &str,
        change: PresenceChange,
    ) -> Result<bool, RegistryError> {
        let mut devices = self.devices.lock().map_err(|_| lock_error())?;
        let Some(stored) = devices.get_mut(device_id) else {
            return Ok(false);
        };
        if stored.presence_at_ms.is_some_and(|at| at >= change.at_ms) {
            return Ok(false);
        }
        stored.presence_at_ms = Some(change.at_ms);
        stored.record.connected = change.connected;
        if change.connected {
            stored.record.last_connected_ms = Some(change.at_ms);
        } else {
            stored.record.last_disconnected_ms = Some(change.at_ms);
        }
        Ok(true)
    }

    async fn overdue(&self, shard: u16, now_ms: i64) -> Result<Vec<Watched>, RegistryError> {
        self.watched(shard, |raised, _, at| !raised && at <= now_ms)
    }

    async fn raised(&self, shard: u16) -> Result<Vec<Watched>, RegistryError> {
        self.watched(shard, |raised, held, _| raised && !held)
    }

    async fn held(&self, shard: u16) -> Result<Vec<Watched>, RegistryError> {
        self.watched(shard, |raised, held, _| raised && held)
    }

    async fn mark_held(&self, watched: &Watched) -> Result<bool, RegistryError> {
        let mut devices = self.devices.lock().map_err(|_| lock_error())?;
        let Some(stored) = devices.get_mut(&watched.device_id) else {
            return Ok(false);
        };
        match stored.watch.as_mut() {
            Some((raised, at)) if !*raised && *at == watched.watch_at_ms => {
                *raised = true;
                stored.held = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_held(&self, device_id: &str) -> Result<bool, RegistryError> {
        let mut devices = self.devices.lock().map_err(|_| lock_error())?;
        match devices.get_mut(device_id) {
            Some(stored) if stored.held && stored.watch.is_some() => {
                stored.held = false;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mark_silent(&self, watched: &Watched) -> Result<bool, RegistryError> {
        let mut devices = self.devices.lock().map_err(|_| lock_error())?;
        match devices
            .get_mut(&watched.device_id)
            .and_then(|d| d.watch.as_mut())
        {
            Some((raised, at)) if !*raised && *at == watched.watch_at_ms => {
                *raised = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mark_watched(&self, device_id: &str) -> Result<bool, RegistryError> {
        let mut devices = self.devices.lock().map_err(|_| lock_error())?;
        let Some(stored) = devices.get_mut(device_id) else {
            return Ok(false);
        };
        match stored.watch.as_mut() {
            Some((raised, _)) if *raised => {
                *raised = false;
                stored.held = false;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn append_heard(&self, entries: &[HeardEntry]) -> Result<(), RegistryError> {
        if self.heard_log_failing.load(Ordering::Relaxed) {
            return Err(RegistryError("heard log: throttled".into()));
        }
        let mut log = self.heard_log.lock().map_err(|_| lock_error())?;
        self.heard_entries
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        log.extend(heard::encode(entries));
        Ok(())
    }

    async fn heard_since(&self, since_ms: i64) -> Result<HashMap<String, i64>, RegistryError> {
        let log = self.heard_log.lock().map_err(|_| lock_error())?;
        let mut latest: HashMap<String, i64> = HashMap::new();
        for digest in log.iter().filter(|d| d.latest_ms >= since_ms) {
            for entry in heard::decode(digest.base_s, &digest.body).map_err(RegistryError)? {
                let at = latest.entry(entry.device_id).or_insert(entry.raise_at_ms);
                *at = (*at).max(entry.raise_at_ms);
            }
        }
        Ok(latest)
    }
}

impl MemoryRegistry {
    fn watched(
        &self,
        shard: u16,
        wanted: impl Fn(bool, bool, i64) -> bool,
    ) -> Result<Vec<Watched>, RegistryError> {
        let devices = self.devices.lock().map_err(|_| lock_error())?;
        let mut out: Vec<Watched> = devices
            .values()
            .filter(|d| watch_shard(&d.record.device_id) == shard)
            .filter_map(|d| {
                let (raised, at) = d.watch?;
                wanted(raised, d.held, at).then(|| Watched {
                    device_id: d.record.device_id.clone(),
                    watch_at_ms: at,
                })
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

/// Device type definitions in memory, versioned as the DynamoDB adapter versions them.
#[derive(Debug, Default)]
pub struct MemoryDeviceTypes {
    types: Mutex<std::collections::BTreeMap<String, iotdp::devices::types::TypeDefinition>>,
    /// `get_types` calls, so tests see the cache at work.
    pub reads: AtomicU64,
}

impl iotdp::devices::ports::DeviceTypes for MemoryDeviceTypes {
    async fn get_types(
        &self,
        names: &[&str],
    ) -> Result<Vec<iotdp::devices::types::TypeDefinition>, RegistryError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let types = self.types.lock().map_err(|_| lock_error())?;
        Ok(names
            .iter()
            .filter_map(|n| types.get(*n).cloned())
            .collect())
    }

    async fn list_types(
        &self,
    ) -> Result<Vec<iotdp::devices::types::TypeDefinition>, RegistryError> {
        let types = self.types.lock().map_err(|_| lock_error())?;
        Ok(types.values().cloned().collect())
    }

    async fn put_type(
        &self,
        definition: &iotdp::devices::types::TypeDefinition,
    ) -> Result<Option<u32>, RegistryError> {
        let mut types = self.types.lock().map_err(|_| lock_error())?;
        let version = types.get(&definition.device_type).map_or(0, |t| t.version) + 1;
        types.insert(
            definition.device_type.clone(),
            iotdp::devices::types::TypeDefinition {
                version,
                ..definition.clone()
            },
        );
        Ok(Some(version))
    }
}
