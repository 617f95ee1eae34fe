//! The device feature's ports: the registry (DynamoDB), IoT Core's control plane, and the
//! batched, cached lookups the ingest path reads the registry through.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use crate::devices::heard::HeardEntry;
use crate::devices::record::{DeviceRecord, DeviceStatus, KnownDevice, LatestUpdate, LatestValue};
use crate::devices::types::{DerivedMetrics, TypeDefinition};

/// Any failure of the device registry, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device registry: {0}")]
pub struct RegistryError(pub String);

/// A connect or disconnect, from IoT Core's lifecycle events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceChange {
    pub connected: bool,
    /// The event's own timestamp: events can arrive out of order, older ones are ignored.
    pub at_ms: i64,
}

/// A device on the silence watch, as the watch index lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Watched {
    pub device_id: String,
    /// When the device's silence becomes overdue: last seen (or created) + heartbeat.
    pub watch_at_ms: i64,
}

/// The device registry (DynamoDB), including its silence-watch index.
pub trait DeviceRegistry: Send + Sync {
    /// The registered devices among `ids` (unknown ids are simply absent).
    fn get_many(
        &self,
        ids: &[&str],
    ) -> impl Future<Output = Result<Vec<DeviceRecord>, RegistryError>> + Send;

    fn list(&self) -> impl Future<Output = Result<Vec<DeviceRecord>, RegistryError>> + Send;

    /// Register a new device; `false` when the id is already registered (nothing changes).
    fn create(
        &self,
        record: &DeviceRecord,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;

    /// Replace the operator-managed fields (type, gateway, path, tags, heartbeat) of an
    /// existing device; `false` when it is not registered.
    fn update_definition(
        &self,
        record: &DeviceRecord,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;

    /// Change a device's status (leaving or joining the silence watch); the updated record,
    /// or `None` when it is not registered.
    fn set_status(
        &self,
        device_id: &str,
        status: DeviceStatus,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<DeviceRecord>, RegistryError>> + Send;

    /// Move `last_seen` forward to `seen_ms` (never back) and, when `watch_at_ms` is given,
    /// the silence deadline with it; with them, `latest`'s values replace those of the same
    /// metrics. `false` when not registered or already newer.
    fn touch_last_seen(
        &self,
        device_id: &str,
        seen_ms: i64,
        watch_at_ms: Option<i64>,
        latest: &LatestUpdate,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;

    /// Move a watched (not raised) device's deadline later, to `watch_at_ms`; `false` if it is
    /// not watched or already later.
    fn reschedule_watch(
        &self,
        device_id: &str,
        watch_at_ms: i64,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;

    /// Record a connect or disconnect unless a newer one is already recorded; `false` when
    /// ignored (older event, or an unregistered client id).
    fn record_presence(
        &self,
        device_id: &str,
        change: PresenceChange,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;

    /// Watched devices of `shard` whose deadline has passed and whose silence is not yet raised.
    fn overdue(
        &self,
        shard: u16,
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<Watched>, RegistryError>> + Send;

    /// Devices of `shard` whose silence was raised (and not held): the watch clears those heard
    /// from again, by the index's deadline or by the heard log. Only silent devices are here.
    fn raised(
        &self,
        shard: u16,
    ) -> impl Future<Output = Result<Vec<Watched>, RegistryError>> + Send;

    /// Move an overdue device to the raised set, if its deadline is still the one listed.
    fn mark_silent(
        &self,
        watched: &Watched,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;

    /// Move a raised or held device back to the watched set (its silence cleared, or raising
    /// failed).
    fn mark_watched(
        &self,
        device_id: &str,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;

    /// Devices of `shard` whose silence was raised while their gateway was silent or
    /// suspended: held back, not notified, until the gateway recovers. Only during a gateway's
    /// outage is this set non-empty.
    fn held(&self, shard: u16) -> impl Future<Output = Result<Vec<Watched>, RegistryError>> + Send;

    /// Move an overdue device to the held set, if its deadline is still the one listed.
    fn mark_held(
        &self,
        watched: &Watched,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;

    /// Move a held device to the raised set: its silence outlasted its gateway's.
    fn release_held(
        &self,
        device_id: &str,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;

    /// Append the silence deadlines an ingest batch moved to the heard log, in digests (see
    /// [`crate::devices::heard`]); they expire on their own once long past.
    fn append_heard(
        &self,
        entries: &[HeardEntry],
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// The latest deadline per device in the heard log's digests holding any deadline at or
    /// after `since_ms`.
    fn heard_since(
        &self,
        since_ms: i64,
    ) -> impl Future<Output = Result<HashMap<String, i64>, RegistryError>> + Send;
}

/// A certificate and key pair IoT Core issued for one device.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    pub certificate_arn: String,
    pub certificate_id: String,
    pub certificate_pem: String,
    pub private_key_pem: String,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("IssuedCertificate")
            .field("certificate_arn", &self.certificate_arn)
            .field("certificate_id", &self.certificate_id)
            .finish_non_exhaustive()
    }
}

/// Any failure of IoT Core's control plane, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("IoT Core: {0}")]
pub struct IotError(pub String);

/// IoT Core's control plane: things, certificates, policies.
pub trait ThingProvisioner: Send + Sync {
    /// Create the thing (an existing thing of that name is fine: re-runs are idempotent).
    fn create_thing(
        &self,
        thing_name: &str,
        device_type: &str,
    ) -> impl Future<Output = Result<(), IotError>> + Send;

    /// A new key pair and an active certificate for it.
    fn issue_certificate(&self)
    -> impl Future<Output = Result<IssuedCertificate, IotError>> + Send;

    /// Attach the device policy to the certificate and the certificate to the thing.
    fn attach_certificate(
        &self,
        thing_name: &str,
        certificate_arn: &str,
        policy_name: &str,
    ) -> impl Future<Output = Result<(), IotError>> + Send;

    /// The account's device data endpoint (`iot:Data-ATS`).
    fn data_endpoint(&self) -> impl Future<Output = Result<String, IotError>> + Send;

    /// Deactivate and detach every certificate of the thing, then delete the thing; the
    /// certificate ARNs retired.
    fn retire_thing(
        &self,
        thing_name: &str,
        policy_name: &str,
    ) -> impl Future<Output = Result<Vec<String>, IotError>> + Send;
}

/// The registry as the ingest path sees it: what it knows about a batch's devices.
#[derive(Debug, Clone, Default)]
pub struct DeviceSnapshot {
    pub devices: HashMap<String, Arc<KnownDevice>>,
    /// The derived metrics of the devices' types that define some.
    pub derived: HashMap<String, Arc<DerivedMetrics>>,
    /// Registry read calls this lookup made (0 when the cache had everything).
    pub registry_reads: u64,
}

/// What recording `last_seen` cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeenReport {
    /// Per-device registry writes (`last_seen`, with the index's deadline for watched devices).
    pub writes: u64,
    /// Deadlines appended to the heard log (one digest write per batch).
    pub heard: u64,
    pub failures: u64,
}

/// Device type definitions: each type's metrics and derived metrics (`DeviceTypesTable`).
pub trait DeviceTypes: Send + Sync {
    /// The definitions among `names` (types without one are simply absent).
    fn get_types(
        &self,
        names: &[&str],
    ) -> impl Future<Output = Result<Vec<TypeDefinition>, RegistryError>> + Send;

    fn list_types(&self)
    -> impl Future<Output = Result<Vec<TypeDefinition>, RegistryError>> + Send;

    /// Store `definition` as the next version of its type (the stored one plus one, 1 for a new
    /// type); the version written, or `None` when another put of the same type came first.
    fn put_type(
        &self,
        definition: &TypeDefinition,
    ) -> impl Future<Output = Result<Option<u32>, RegistryError>> + Send;
}

/// No definitions store: no type derives anything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTypes;

impl DeviceTypes for NoTypes {
    async fn get_types(&self, _: &[&str]) -> Result<Vec<TypeDefinition>, RegistryError> {
        Ok(Vec::new())
    }

    async fn list_types(&self) -> Result<Vec<TypeDefinition>, RegistryError> {
        Ok(Vec::new())
    }

    async fn put_type(&self, _: &TypeDefinition) -> Result<Option<u32>, RegistryError> {
        Err(RegistryError(
            "no device types table is configured: set DEVICE_TYPES_TABLE".into(),
        ))
    }
}

/// A definitions store that may be switched off by configuration (off: as [`NoTypes`]).
impl<T: DeviceTypes> DeviceTypes for Option<T> {
    async fn get_types(&self, names: &[&str]) -> Result<Vec<TypeDefinition>, RegistryError> {
        match self {
            Some(types) => types.get_types(names).await,
            None => NoTypes.get_types(names).await,
        }
    }

    async fn list_types(&self) -> Result<Vec<TypeDefinition>, RegistryError> {
        match self {
            Some(types) => types.list_types().await,
            None => NoTypes.list_types().await,
        }
    }

    async fn put_type(&self, definition: &TypeDefinition) -> Result<Option<u32>, RegistryError> {
        match self {
            Some(types) => types.put_type(definition).await,
            None => NoTypes.put_type(definition).await,
        }
    }
}

/// Batched, cached registry lookups and throttled `last_seen` writes for the ingest path.
pub trait DeviceLookup: Send + Sync {
    fn lookup(
        &self,
        device_ids: &[&str],
    ) -> impl Future<Output = Result<DeviceSnapshot, RegistryError>> + Send;

    /// Devices heard from, with IoT Core's receive time of their latest stored reading.
    fn record_seen(&self, seen: &[Seen<'_>]) -> impl Future<Output = SeenReport> + Send;
}

/// A device heard from in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen<'a> {
    pub device_id: &'a str,
    /// IoT Core's receive time of its latest stored reading.
    pub at_ms: i64,
    /// Its stored readings in the batch (none for a gateway that only published): the latest
    /// value of each metric is taken from them only when `last_seen` is written, so a batch
    /// pays nothing per metric for the devices whose write is not due.
    pub readings: Vec<&'a crate::domain::Reading>,
}

impl Seen<'_> {
    /// Each metric's value at its latest event time among [`Seen::readings`].
    pub fn latest_values(&self) -> Vec<(String, LatestValue)> {
        let mut latest: Vec<(String, LatestValue)> = Vec::new();
        for reading in &self.readings {
            for metric in &reading.metrics {
                let value = LatestValue {
                    time_ms: reading.time_ms,
                    value: metric.value.clone(),
                };
                match latest.iter_mut().find(|(name, _)| *name == metric.name) {
                    Some((_, held)) if held.time_ms <= reading.time_ms => *held = value,
                    Some(_) => {}
                    None => latest.push((metric.name.clone(), value)),
                }
            }
        }
        latest
    }
}

impl<'a> Seen<'a> {
    /// Heard at `at_ms`, with no metric values (a gateway that only published).
    pub fn heard(device_id: &'a str, at_ms: i64) -> Self {
        Self {
            device_id,
            at_ms,
            readings: Vec::new(),
        }
    }
}

/// A registry that may be switched off by configuration (off: as [`NoRegistry`]).
impl<T: DeviceLookup> DeviceLookup for Option<T> {
    async fn lookup(&self, device_ids: &[&str]) -> Result<DeviceSnapshot, RegistryError> {
        match self {
            Some(registry) => registry.lookup(device_ids).await,
            None => Ok(DeviceSnapshot::default()),
        }
    }

    async fn record_seen(&self, seen: &[Seen<'_>]) -> SeenReport {
        match self {
            Some(registry) => registry.record_seen(seen).await,
            None => SeenReport::default(),
        }
    }
}

/// No registry: every device is unknown (pair with the `accept` unknown-device policy). A
/// device may then report only for itself, since no gateway is registered for anyone.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRegistry;

impl DeviceLookup for NoRegistry {
    async fn lookup(&self, _: &[&str]) -> Result<DeviceSnapshot, RegistryError> {
        Ok(DeviceSnapshot::default())
    }

    async fn record_seen(&self, _: &[Seen<'_>]) -> SeenReport {
        SeenReport::default()
    }
}

forward_through_arc!(DeviceTypes {
    fn get_types(&self, names: &[&str]) -> impl Future<Output = Result<Vec<TypeDefinition>, RegistryError>> + Send;
    fn list_types(&self) -> impl Future<Output = Result<Vec<TypeDefinition>, RegistryError>> + Send;
    fn put_type(&self, definition: &TypeDefinition) -> impl Future<Output = Result<Option<u32>, RegistryError>> + Send;
});

forward_through_arc!(DeviceLookup {
    fn lookup(&self, device_ids: &[&str]) -> impl Future<Output = Result<DeviceSnapshot, RegistryError>> + Send;
    fn record_seen(&self, seen: &[Seen<'_>]) -> impl Future<Output = SeenReport> + Send;
});

forward_through_arc!(DeviceRegistry {
    fn get_many(&self, ids: &[&str]) -> impl Future<Output = Result<Vec<DeviceRecord>, RegistryError>> + Send;
    fn list(&self) -> impl Future<Output = Result<Vec<DeviceRecord>, RegistryError>> + Send;
    fn create(&self, record: &DeviceRecord) -> impl Future<Output = Result<bool, RegistryError>> + Send;
    fn update_definition(&self, record: &DeviceRecord) -> impl Future<Output = Result<bool, RegistryError>> + Send;
    fn set_status(&self, device_id: &str, status: DeviceStatus, now_ms: i64) -> impl Future<Output = Result<Option<DeviceRecord>, RegistryError>> + Send;
    fn touch_last_seen(&self, device_id: &str, seen_ms: i64, watch_at_ms: Option<i64>, latest: &LatestUpdate) -> impl Future<Output = Result<bool, RegistryError>> + Send;
    fn reschedule_watch(&self, device_id: &str, watch_at_ms: i64) -> impl Future<Output = Result<bool, RegistryError>> + Send;
    fn record_presence(&self, device_id: &str, change: PresenceChange) -> impl Future<Output = Result<bool, RegistryError>> + Send;
    fn overdue(&self, shard: u16, now_ms: i64) -> impl Future<Output = Result<Vec<Watched>, RegistryError>> + Send;
    fn raised(&self, shard: u16) -> impl Future<Output = Result<Vec<Watched>, RegistryError>> + Send;
    fn mark_silent(&self, watched: &Watched) -> impl Future<Output = Result<bool, RegistryError>> + Send;
    fn mark_watched(&self, device_id: &str) -> impl Future<Output = Result<bool, RegistryError>> + Send;
    fn held(&self, shard: u16) -> impl Future<Output = Result<Vec<Watched>, RegistryError>> + Send;
    fn mark_held(&self, watched: &Watched) -> impl Future<Output = Result<bool, RegistryError>> + Send;
    fn release_held(&self, device_id: &str) -> impl Future<Output = Result<bool, RegistryError>> + Send;
    fn append_heard(&self, entries: &[HeardEntry]) -> impl Future<Output = Result<(), RegistryError>> + Send;
    fn heard_since(&self, since_ms: i64) -> impl Future<Output = Result<HashMap<String, i64>, RegistryError>> + Send;
});
