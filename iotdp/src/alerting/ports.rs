//! Alerting's ports: where rules and alert states live, where notifications and commands go,
//! and what the ingest path asks of alerting ([`ReadingsObserver`]). The figures an evaluation
//! reports ([`AlertStats`]) live here too, so the port does not reach into its driver.

use std::future::Future;

use crate::alerting::event::AlarmState;
use crate::alerting::notification::AlertNotification;
use crate::alerting::rule::AlertRule;
use crate::alerting::state_machine::AlertState;
use crate::domain::Reading;

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
    /// One entry per key, in the keys' order: the stored state, or `None` when there is none.
    /// Aligned answers let the evaluator walk keys and states together, with no map between.
    fn get_many(
        &self,
        keys: &[AlertKey],
    ) -> impl Future<Output = Result<Vec<Option<AlertState>>, AlertPortError>> + Send;

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
        only: Option<AlarmState>,
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
    /// Merge `desired` into the shadow's desired state of `key`'s device, for the transition
    /// that brought `key`'s state to `transition_version` (so a retried batch is one command).
    fn update_desired(
        &self,
        key: &AlertKey,
        transition_version: u64,
        desired: &serde_json::Value,
    ) -> impl Future<Output = Result<(), AlertPortError>> + Send;
}

/// For evaluators whose rules send no commands (the silence watch's `no_data`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCommands;

impl DeviceCommander for NoCommands {
    async fn update_desired(
        &self,
        key: &AlertKey,
        _: u64,
        _: &serde_json::Value,
    ) -> Result<(), AlertPortError> {
        Err(AlertPortError(format!(
            "no commands are configured here (asked to command {})",
            key.device_id
        )))
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
    pub stats: AlertStats,
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

/// Calls made and what came of them, per batch (the figures the README reports).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertStats {
    pub rule_loads: u64,
    pub pairs_evaluated: u64,
    pub state_batch_reads: u64,
    pub state_writes: u64,
    pub conflicts: u64,
    pub notifications_published: u64,
    pub notification_failures: u64,
    pub commands_sent: u64,
    pub command_failures: u64,
}

impl AlertStats {
    /// Add another batch's figures to these.
    pub fn merge(&mut self, o: &AlertStats) {
        self.rule_loads += o.rule_loads;
        self.pairs_evaluated += o.pairs_evaluated;
        self.state_batch_reads += o.state_batch_reads;
        self.state_writes += o.state_writes;
        self.conflicts += o.conflicts;
        self.notifications_published += o.notifications_published;
        self.notification_failures += o.notification_failures;
        self.commands_sent += o.commands_sent;
        self.command_failures += o.command_failures;
    }
}

forward_through_arc!(RuleSource {
    fn load_rules(&self) -> impl Future<Output = Result<Vec<AlertRule>, AlertPortError>> + Send;
});

forward_through_arc!(RuleStore {
    fn put(&self, rule: &AlertRule) -> impl Future<Output = Result<(), AlertPortError>> + Send;
    fn delete(&self, rule_id: &str) -> impl Future<Output = Result<bool, AlertPortError>> + Send;
});

forward_through_arc!(AlertStateStore {
    fn get_many(&self, keys: &[AlertKey]) -> impl Future<Output = Result<Vec<Option<AlertState>>, AlertPortError>> + Send;
    fn put_if_version(&self, key: &AlertKey, state: &AlertState, expected_version: u64) -> impl Future<Output = Result<ConditionalWrite, AlertPortError>> + Send;
});

forward_through_arc!(AlertStateListing {
    fn list(&self, only: Option<AlarmState>) -> impl Future<Output = Result<Vec<(AlertKey, AlertState)>, AlertPortError>> + Send;
    fn for_device(&self, device_id: &str) -> impl Future<Output = Result<Vec<(AlertKey, AlertState)>, AlertPortError>> + Send;
});

forward_through_arc!(Notifier {
    fn publish(&self, notification: &AlertNotification) -> impl Future<Output = Result<(), AlertPortError>> + Send;
});
