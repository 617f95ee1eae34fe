//! Ports: what the domain needs from the outside world, with no AWS types in sight.
//! Each has one AWS adapter under `adapters/` and an in-memory one for tests.

use std::future::Future;
use std::time::Duration;

use crate::domain::Reading;

/// A time-series store (Timestream for LiveAnalytics today; InfluxDB next).
pub trait TimeSeriesStore: Send + Sync {
    /// Most readings one [`write`](Self::write) takes (Timestream: 100 records per WriteRecords).
    fn max_batch_len(&self) -> usize;

    /// One store request for `readings`. `Ok` lists the readings the store refused one by one;
    /// every other reading in the request is stored.
    fn write(
        &self,
        readings: &[Reading],
    ) -> impl Future<Output = Result<WriteReport, StoreError>> + Send;
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    pub rejected: Vec<StoreRejection>,
}

/// A reading the store refused, by its index in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRejection {
    pub index: usize,
    pub reason: String,
    pub kind: StoreRejectionKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreRejectionKind {
    /// The data itself is unacceptable (duplicate with another value, outside retention,
    /// over a limit): retrying cannot help, so it is quarantined as `rejected_by_store`.
    Data,
    /// Anything the store did not explain as a data problem: the message is retried.
    Transient,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Throttled, 5xx, timeout, connection trouble: retry with backoff.
    #[error("time-series store is throttling or unavailable: {message}")]
    Retryable {
        message: String,
        /// A server-given minimum wait (InfluxDB's Retry-After), if any.
        retry_after: Option<Duration>,
    },
    /// The store refused the whole request as invalid. Some reading in it is at fault:
    /// the writer splits the request to find which.
    #[error("time-series store refused the request as invalid: {0}")]
    InvalidRequest(String),
    /// Anything else (missing table, access denied): the messages are retried through SQS.
    #[error("time-series store write failed: {0}")]
    Failed(String),
}

/// Where rejected readings go: one JSON Lines object per invocation.
pub trait QuarantineSink: Send + Sync {
    fn put(
        &self,
        key: &str,
        jsonl: Vec<u8>,
    ) -> impl Future<Output = Result<(), QuarantineError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quarantine write failed: {0}")]
pub struct QuarantineError(pub String);

// ---- Device registry ports ---------------------------------------------------------------

use std::collections::HashMap;
use std::sync::Arc;

use crate::devices::record::{DeviceRecord, DeviceStatus, KnownDevice};

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
    /// the silence deadline with it. `false` when not registered or already newer.
    fn touch_last_seen(
        &self,
        device_id: &str,
        seen_ms: i64,
        watch_at_ms: Option<i64>,
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

    /// Devices of `shard` whose silence was raised and whose deadline has since moved into the
    /// future (data resumed).
    fn resumed(
        &self,
        shard: u16,
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<Watched>, RegistryError>> + Send;

    /// Move an overdue device to the raised set, if its deadline is still the one listed.
    fn mark_silent(
        &self,
        watched: &Watched,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;

    /// Move a raised device back to the watched set (its silence cleared, or raising failed).
    fn mark_watched(
        &self,
        device_id: &str,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;
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
    /// Registry read calls this lookup made (0 when the cache had everything).
    pub registry_reads: u64,
}

/// What recording `last_seen` cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeenReport {
    pub writes: u64,
    pub failures: u64,
}

/// Batched, cached registry lookups and throttled `last_seen` writes for the ingest path.
pub trait DeviceLookup: Send + Sync {
    fn lookup(
        &self,
        device_ids: &[&str],
    ) -> impl Future<Output = Result<DeviceSnapshot, RegistryError>> + Send;

    /// Devices heard from, with IoT Core's receive time of their latest stored reading.
    fn record_seen(&self, seen: &[(&str, i64)]) -> impl Future<Output = SeenReport> + Send;
}

impl<T: DeviceLookup> DeviceLookup for Arc<T> {
    async fn lookup(&self, device_ids: &[&str]) -> Result<DeviceSnapshot, RegistryError> {
        self.as_ref().lookup(device_ids).await
    }

    async fn record_seen(&self, seen: &[(&str, i64)]) -> SeenReport {
        self.as_ref().record_seen(seen).await
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

    async fn record_seen(&self, seen: &[(&str, i64)]) -> SeenReport {
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

    async fn record_seen(&self, _: &[(&str, i64)]) -> SeenReport {
        SeenReport::default()
    }
}

// ---- Alerting ports -----------------------------------------------------------------------

use crate::alerting::notification::AlertNotification;
use crate::alerting::rule::AlertRule;
use crate::alerting::state_machine::AlertState;

/// Any failure of an alerting dependency, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AlertPortError(pub String);

/// Where alert rules live.
pub trait RuleSource: Send + Sync {
    fn load_rules(&self) -> impl Future<Output = Result<Vec<AlertRule>, AlertPortError>> + Send;
}

/// One (device, rule) pair: the key of an alert state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlertKey {
    pub device_id: String,
    pub rule_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionalWrite {
    Written,
    /// Someone else wrote first (the stored version moved on): re-read and re-evaluate.
    Conflict,
}

/// Alert states, written with optimistic concurrency on `AlertState::version`.
pub trait AlertStateStore: Send + Sync {
    /// The stored states among `keys` (absent keys are simply missing from the answer).
    fn get_many(
        &self,
        keys: &[AlertKey],
    ) -> impl Future<Output = Result<Vec<(AlertKey, AlertState)>, AlertPortError>> + Send;

    /// Store `state` if the stored version is still `expected_version` (0: no item yet).
    fn put_if_version(
        &self,
        key: &AlertKey,
        state: &AlertState,
        expected_version: u64,
    ) -> impl Future<Output = Result<ConditionalWrite, AlertPortError>> + Send;
}

/// Alert states as operators list them (the state table scanned, optionally by state).
pub trait AlertStateListing: Send + Sync {
    fn list(
        &self,
        only: Option<crate::alerting::state_machine::AlarmState>,
    ) -> impl Future<Output = Result<Vec<(AlertKey, AlertState)>, AlertPortError>> + Send;

    /// One device's alert states (a key lookup, not a scan).
    fn for_device(
        &self,
        device_id: &str,
    ) -> impl Future<Output = Result<Vec<(AlertKey, AlertState)>, AlertPortError>> + Send;
}

/// Rules as operators manage them; every rule is validated before it is stored.
pub trait RuleStore: RuleSource {
    fn put(&self, rule: &AlertRule) -> impl Future<Output = Result<(), AlertPortError>> + Send;

    /// `false` when there was no rule with that id.
    fn delete(&self, rule_id: &str) -> impl Future<Output = Result<bool, AlertPortError>> + Send;
}

/// Where notifications go (SNS).
pub trait Notifier: Send + Sync {
    fn publish(
        &self,
        notification: &AlertNotification,
    ) -> impl Future<Output = Result<(), AlertPortError>> + Send;
}

/// Commands back to devices (IoT shadows).
pub trait DeviceCommander: Send + Sync {
    /// Merge `desired` into the device shadow's desired state.
    fn update_desired(
        &self,
        device_id: &str,
        desired: &serde_json::Value,
    ) -> impl Future<Output = Result<(), AlertPortError>> + Send;
}

/// Device types, for rules scoped to a type, for readings that do not carry their type
/// (the registry cache implements it; [`NoDeviceTypes`] knows none).
pub trait DeviceDirectory: Send + Sync {
    fn device_types(
        &self,
        device_ids: &[&str],
    ) -> impl Future<Output = Result<std::collections::HashMap<String, String>, AlertPortError>> + Send;
}

impl<T: DeviceDirectory> DeviceDirectory for Arc<T> {
    async fn device_types(
        &self,
        device_ids: &[&str],
    ) -> Result<HashMap<String, String>, AlertPortError> {
        self.as_ref().device_types(device_ids).await
    }
}

impl<T: DeviceDirectory> DeviceDirectory for Option<T> {
    async fn device_types(
        &self,
        device_ids: &[&str],
    ) -> Result<HashMap<String, String>, AlertPortError> {
        match self {
            Some(directory) => directory.device_types(device_ids).await,
            None => Ok(HashMap::new()),
        }
    }
}

/// For evaluators whose rules send no commands (the silence watch's `no_data`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCommands;

impl DeviceCommander for NoCommands {
    async fn update_desired(
        &self,
        device_id: &str,
        _: &serde_json::Value,
    ) -> Result<(), AlertPortError> {
        Err(AlertPortError(format!(
            "no commands are configured here (asked to command {device_id})"
        )))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct NoDeviceTypes;

impl DeviceDirectory for NoDeviceTypes {
    async fn device_types(
        &self,
        _: &[&str],
    ) -> Result<std::collections::HashMap<String, String>, AlertPortError> {
        Ok(Default::default())
    }
}

/// What the ingest path asks of alerting: evaluate the readings just stored, and say which
/// ones must be retried (their messages go back to SQS).
pub trait ReadingsObserver: Send + Sync {
    fn observe(&self, readings: &[Reading]) -> impl Future<Output = ObserverOutcome> + Send;
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObserverOutcome {
    /// Indexes into the observed readings whose messages must be retried.
    pub retry: Vec<usize>,
    pub stats: crate::alerting::evaluator::AlertStats,
}

/// An observer that may be switched off by configuration.
impl<T: ReadingsObserver> ReadingsObserver for Option<T> {
    async fn observe(&self, readings: &[Reading]) -> ObserverOutcome {
        match self {
            Some(observer) => observer.observe(readings).await,
            None => ObserverOutcome::default(),
        }
    }
}

/// Ingest without alerting.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAlerts;

impl ReadingsObserver for NoAlerts {
    async fn observe(&self, _: &[Reading]) -> ObserverOutcome {
        ObserverOutcome::default()
    }
}

// ---- Shared adapters -------------------------------------------------------------------------
// An adapter behind an `Arc` is the same adapter: tests keep a handle to inspect it, and the
// local platform shares one between functions.

impl<T: TimeSeriesStore> TimeSeriesStore for Arc<T> {
    fn max_batch_len(&self) -> usize {
        self.as_ref().max_batch_len()
    }

    async fn write(&self, readings: &[Reading]) -> Result<WriteReport, StoreError> {
        self.as_ref().write(readings).await
    }
}

impl<T: QuarantineSink> QuarantineSink for Arc<T> {
    async fn put(&self, key: &str, jsonl: Vec<u8>) -> Result<(), QuarantineError> {
        self.as_ref().put(key, jsonl).await
    }
}

impl<T: AlertStateStore> AlertStateStore for Arc<T> {
    async fn get_many(
        &self,
        keys: &[AlertKey],
    ) -> Result<Vec<(AlertKey, AlertState)>, AlertPortError> {
        self.as_ref().get_many(keys).await
    }

    async fn put_if_version(
        &self,
        key: &AlertKey,
        state: &AlertState,
        expected_version: u64,
    ) -> Result<ConditionalWrite, AlertPortError> {
        self.as_ref()
            .put_if_version(key, state, expected_version)
            .await
    }
}

impl<T: Notifier> Notifier for Arc<T> {
    async fn publish(&self, notification: &AlertNotification) -> Result<(), AlertPortError> {
        self.as_ref().publish(notification).await
    }
}

impl<T: DeviceRegistry> DeviceRegistry for Arc<T> {
    async fn get_many(&self, ids: &[&str]) -> Result<Vec<DeviceRecord>, RegistryError> {
        self.as_ref().get_many(ids).await
    }

    async fn list(&self) -> Result<Vec<DeviceRecord>, RegistryError> {
        self.as_ref().list().await
    }

    async fn create(&self, record: &DeviceRecord) -> Result<bool, RegistryError> {
        self.as_ref().create(record).await
    }

    async fn update_definition(&self, record: &DeviceRecord) -> Result<bool, RegistryError> {
        self.as_ref().update_definition(record).await
    }

    async fn set_status(
        &self,
        device_id: &str,
        status: DeviceStatus,
        now_ms: i64,
    ) -> Result<Option<DeviceRecord>, RegistryError> {
        self.as_ref().set_status(device_id, status, now_ms).await
    }

    async fn touch_last_seen(
        &self,
        device_id: &str,
        seen_ms: i64,
        watch_at_ms: Option<i64>,
    ) -> Result<bool, RegistryError> {
        self.as_ref()
            .touch_last_seen(device_id, seen_ms, watch_at_ms)
            .await
    }

    async fn reschedule_watch(
        &self,
        device_id: &str,
        watch_at_ms: i64,
    ) -> Result<bool, RegistryError> {
        self.as_ref().reschedule_watch(device_id, watch_at_ms).await
    }

    async fn record_presence(
        &self,
        device_id: &str,
        change: PresenceChange,
    ) -> Result<bool, RegistryError> {
        self.as_ref().record_presence(device_id, change).await
    }

    async fn overdue(&self, shard: u16, now_ms: i64) -> Result<Vec<Watched>, RegistryError> {
        self.as_ref().overdue(shard, now_ms).await
    }

    async fn resumed(&self, shard: u16, now_ms: i64) -> Result<Vec<Watched>, RegistryError> {
        self.as_ref().resumed(shard, now_ms).await
    }

    async fn mark_silent(&self, watched: &Watched) -> Result<bool, RegistryError> {
        self.as_ref().mark_silent(watched).await
    }

    async fn mark_watched(&self, device_id: &str) -> Result<bool, RegistryError> {
        self.as_ref().mark_watched(device_id).await
    }
}

// ---- Reading the time-series store back ----------------------------------------------------

use crate::devices::record::LocationPath;
use crate::domain::MetricValue;

/// How readings in a bin are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    First,
    Last,
}

impl Aggregate {
    pub const ALL: [Aggregate; 7] = [
        Aggregate::Avg,
        Aggregate::Min,
        Aggregate::Max,
        Aggregate::Sum,
        Aggregate::Count,
        Aggregate::First,
        Aggregate::Last,
    ];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Avg => "avg",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Sum => "sum",
            Aggregate::Count => "count",
            Aggregate::First => "first",
            Aggregate::Last => "last",
        }
    }
}

/// `[from_ms, to_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// One device's metric over a range: raw, or aggregated into bins aligned to the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesQuery {
    pub device_id: String,
    pub metric: String,
    pub range: TimeRange,
    /// `Some((bin, aggregate))`: one point per non-empty bin, stamped with the bin's start.
    pub bins: Option<(Duration, Aggregate)>,
    /// At most this many points, the earliest first: pages continue from the next point's time.
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub time_ms: i64,
    pub value: MetricValue,
}

/// Which devices a fleet-wide query covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetFilter {
    pub device_type: Option<String>,
    /// Devices at or below this place in the hierarchy.
    pub within: LocationPath,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceValue {
    pub device_id: String,
    pub time_ms: i64,
    pub value: MetricValue,
}

/// One group of a drill-down: a zone of a site, a spot of a section.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupValue {
    pub group: String,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A name or value that cannot be queried: says which and why (a 400 for the API).
    #[error("{0}")]
    Invalid(String),
    #[error("time-series store query failed: {0}")]
    Store(String),
}

/// Reading back what the ingest path wrote. One implementation per store; for the same data
/// they give the same answers.
pub trait TimeSeriesReader: Send + Sync {
    /// The metrics the store holds (InfluxDB: field keys; Timestream: the table's measure
    /// columns), for "the latest value of each metric" when the caller names none.
    fn metric_names(&self) -> impl Future<Output = Result<Vec<String>, QueryError>> + Send;

    /// The latest value of each of `metrics` for one device (absent metrics are left out).
    fn latest_values(
        &self,
        device_id: &str,
        metrics: &[&str],
    ) -> impl Future<Output = Result<Vec<(String, Point)>, QueryError>> + Send;

    fn series(
        &self,
        query: &SeriesQuery,
    ) -> impl Future<Output = Result<Vec<Point>, QueryError>> + Send;

    /// The latest value of `metric` for each device the filter covers.
    fn latest_by_device(
        &self,
        metric: &str,
        filter: &FleetFilter,
    ) -> impl Future<Output = Result<Vec<DeviceValue>, QueryError>> + Send;

    /// `metric` aggregated over `range` for each group one level below `within` (the zones
    /// of a site, the spots of a section).
    fn drill_down(
        &self,
        metric: &str,
        within: &LocationPath,
        range: TimeRange,
        aggregate: Aggregate,
    ) -> impl Future<Output = Result<Vec<GroupValue>, QueryError>> + Send;
}

impl<T: TimeSeriesReader> TimeSeriesReader for Arc<T> {
    async fn metric_names(&self) -> Result<Vec<String>, QueryError> {
        self.as_ref().metric_names().await
    }

    async fn latest_values(
        &self,
        device_id: &str,
        metrics: &[&str],
    ) -> Result<Vec<(String, Point)>, QueryError> {
        self.as_ref().latest_values(device_id, metrics).await
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Vec<Point>, QueryError> {
        self.as_ref().series(query).await
    }

    async fn latest_by_device(
        &self,
        metric: &str,
        filter: &FleetFilter,
    ) -> Result<Vec<DeviceValue>, QueryError> {
        self.as_ref().latest_by_device(metric, filter).await
    }

    async fn drill_down(
        &self,
        metric: &str,
        within: &LocationPath,
        range: TimeRange,
        aggregate: Aggregate,
    ) -> Result<Vec<GroupValue>, QueryError> {
        self.as_ref()
            .drill_down(metric, within, range, aggregate)
            .await
    }
}

impl<T: AlertStateListing> AlertStateListing for Arc<T> {
    async fn list(
        &self,
        only: Option<crate::alerting::state_machine::AlarmState>,
    ) -> Result<Vec<(AlertKey, AlertState)>, AlertPortError> {
        self.as_ref().list(only).await
    }

    async fn for_device(
        &self,
        device_id: &str,
    ) -> Result<Vec<(AlertKey, AlertState)>, AlertPortError> {
        self.as_ref().for_device(device_id).await
    }
}

impl<T: RuleSource> RuleSource for Arc<T> {
    async fn load_rules(&self) -> Result<Vec<AlertRule>, AlertPortError> {
        self.as_ref().load_rules().await
    }
}

impl<T: RuleStore> RuleStore for Arc<T> {
    async fn put(&self, rule: &AlertRule) -> Result<(), AlertPortError> {
        self.as_ref().put(rule).await
    }

    async fn delete(&self, rule_id: &str) -> Result<bool, AlertPortError> {
        self.as_ref().delete(rule_id).await
    }
}
