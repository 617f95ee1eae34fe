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

/// A gateway's claim to report for another device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GatewayClaim<'a> {
    pub gateway: &'a str,
    pub device: &'a str,
}

/// Decides which devices a gateway may report for. Batched: one call per SQS batch.
pub trait GatewayAuthorizer: Send + Sync {
    /// One answer per claim, in order.
    fn authorize(
        &self,
        claims: &[GatewayClaim<'_>],
    ) -> impl Future<Output = Result<Vec<bool>, AuthorizerError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gateway authorization failed: {0}")]
pub struct AuthorizerError(pub String);

/// The default until the device registry exists: a device may report only for itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct DenyOtherDevices;

impl GatewayAuthorizer for DenyOtherDevices {
    async fn authorize(&self, claims: &[GatewayClaim<'_>]) -> Result<Vec<bool>, AuthorizerError> {
        Ok(claims.iter().map(|c| c.gateway == c.device).collect())
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

/// Device types, for rules scoped to a type. The device registry will implement this; until
/// then [`NoDeviceTypes`] knows none, so type-scoped rules match nothing.
pub trait DeviceDirectory: Send + Sync {
    fn device_types(
        &self,
        device_ids: &[&str],
    ) -> impl Future<Output = Result<std::collections::HashMap<String, String>, AlertPortError>> + Send;
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
