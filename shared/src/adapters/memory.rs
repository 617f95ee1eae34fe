//! In-memory adapters: for tests of the use cases, and for trying the pipeline without AWS.

use std::sync::Mutex;

use crate::domain::Reading;
use crate::ports::{QuarantineError, QuarantineSink, StoreError, TimeSeriesStore, WriteReport};

/// Keeps every reading written, in write order.
#[derive(Debug, Default)]
pub struct MemoryStore {
    pub batch_len: usize,
    written: Mutex<Vec<Reading>>,
}

impl MemoryStore {
    pub fn new(batch_len: usize) -> Self {
        Self {
            batch_len,
            written: Mutex::default(),
        }
    }

    pub fn written(&self) -> Vec<Reading> {
        self.written.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

impl TimeSeriesStore for MemoryStore {
    fn max_batch_len(&self) -> usize {
        self.batch_len
    }

    async fn write(&self, readings: &[Reading]) -> Result<WriteReport, StoreError> {
        self.written
            .lock()
            .map_err(|_| StoreError::Failed("memory store lock poisoned".into()))?
            .extend_from_slice(readings);
        Ok(WriteReport::default())
    }
}

/// Keeps every quarantine object as `(key, body)`; can be told to fail.
#[derive(Debug, Default)]
pub struct MemoryQuarantine {
    pub fail_with: Option<String>,
    objects: Mutex<Vec<(String, Vec<u8>)>>,
}

impl MemoryQuarantine {
    pub fn failing(why: &str) -> Self {
        Self {
            fail_with: Some(why.into()),
            objects: Mutex::default(),
        }
    }

    pub fn objects(&self) -> Vec<(String, Vec<u8>)> {
        self.objects.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

impl QuarantineSink for MemoryQuarantine {
    async fn put(&self, key: &str, jsonl: Vec<u8>) -> Result<(), QuarantineError> {
        if let Some(why) = &self.fail_with {
            return Err(QuarantineError(why.clone()));
        }
        self.objects
            .lock()
            .map_err(|_| QuarantineError("memory quarantine lock poisoned".into()))?
            .push((key.to_owned(), jsonl));
        Ok(())
    }
}

// ---- Alerting -----------------------------------------------------------------------------

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::alerting::notification::AlertNotification;
use crate::alerting::rule::AlertRule;
use crate::alerting::state_machine::AlertState;
use crate::ports::{
    AlertKey, AlertPortError, AlertStateStore, ConditionalWrite, DeviceCommander, Notifier,
    RuleSource,
};

#[derive(Debug, Default)]
pub struct MemoryRules(pub Mutex<Vec<AlertRule>>);

impl MemoryRules {
    pub fn new(rules: Vec<AlertRule>) -> Self {
        Self(Mutex::new(rules))
    }
}

impl RuleSource for MemoryRules {
    async fn load_rules(&self) -> Result<Vec<AlertRule>, AlertPortError> {
        Ok(self.0.lock().map(|r| r.clone()).unwrap_or_default())
    }
}

/// Alert states with the same conditional-write semantics as DynamoDB, and call counters.
#[derive(Debug, Default)]
pub struct MemoryAlertStates {
    states: Mutex<HashMap<AlertKey, AlertState>>,
    pub batch_reads: AtomicU64,
    pub writes: AtomicU64,
}

impl MemoryAlertStates {
    pub fn get(&self, key: &AlertKey) -> Option<AlertState> {
        self.states.lock().ok()?.get(key).cloned()
    }
}

impl AlertStateStore for MemoryAlertStates {
    async fn get_many(
        &self,
        keys: &[AlertKey],
    ) -> Result<Vec<(AlertKey, AlertState)>, AlertPortError> {
        self.batch_reads
            .fetch_add(keys.len().div_ceil(100) as u64, Ordering::Relaxed);
        let states = self
            .states
            .lock()
            .map_err(|_| AlertPortError("lock poisoned".into()))?;
        Ok(keys
            .iter()
            .filter_map(|k| states.get(k).map(|s| (k.clone(), s.clone())))
            .collect())
    }

    async fn put_if_version(
        &self,
        key: &AlertKey,
        state: &AlertState,
        expected_version: u64,
    ) -> Result<ConditionalWrite, AlertPortError> {
        let mut states = self
            .states
            .lock()
            .map_err(|_| AlertPortError("lock poisoned".into()))?;
        let current = states.get(key).map_or(0, |s| s.version);
        if current != expected_version {
            return Ok(ConditionalWrite::Conflict);
        }
        self.writes.fetch_add(1, Ordering::Relaxed);
        states.insert(key.clone(), state.clone());
        Ok(ConditionalWrite::Written)
    }
}

/// Keeps published notifications; can be switched to failing.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    pub failing: AtomicBool,
    published: Mutex<Vec<AlertNotification>>,
}

impl MemoryNotifier {
    pub fn published(&self) -> Vec<AlertNotification> {
        self.published.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

impl Notifier for MemoryNotifier {
    async fn publish(&self, notification: &AlertNotification) -> Result<(), AlertPortError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(AlertPortError("notifier is down".into()));
        }
        self.published
            .lock()
            .map_err(|_| AlertPortError("lock poisoned".into()))?
            .push(notification.clone());
        Ok(())
    }
}

/// Keeps `(device, desired)` commands.
#[derive(Debug, Default)]
pub struct MemoryCommander(Mutex<Vec<(String, serde_json::Value)>>);

impl MemoryCommander {
    pub fn sent(&self) -> Vec<(String, serde_json::Value)> {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl DeviceCommander for MemoryCommander {
    async fn update_desired(
        &self,
        device_id: &str,
        desired: &serde_json::Value,
    ) -> Result<(), AlertPortError> {
        self.0
            .lock()
            .map_err(|_| AlertPortError("lock poisoned".into()))?
            .push((device_id.to_owned(), desired.clone()));
        Ok(())
    }
}

/// Any alert-state store shared between evaluators (two Lambda instances on one table).
impl<S: AlertStateStore> AlertStateStore for std::sync::Arc<S> {
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

/// A store wrapper that holds the first `readers` reads at a barrier until all of them have
/// read: it forces concurrent evaluators to race on the same version, for tests of the
/// conditional write.
pub struct RacingReads<S> {
    inner: S,
    barrier: tokio::sync::Barrier,
    readers: u64,
    reads: AtomicU64,
}

impl<S> RacingReads<S> {
    pub fn new(inner: S, readers: usize) -> Self {
        Self {
            inner,
            barrier: tokio::sync::Barrier::new(readers),
            readers: readers as u64,
            reads: AtomicU64::new(0),
        }
    }
}

impl<S: AlertStateStore> AlertStateStore for RacingReads<S> {
    async fn get_many(
        &self,
        keys: &[AlertKey],
    ) -> Result<Vec<(AlertKey, AlertState)>, AlertPortError> {
        let found = self.inner.get_many(keys).await;
        if self.reads.fetch_add(1, Ordering::SeqCst) < self.readers {
            self.barrier.wait().await;
        }
        found
    }

    async fn put_if_version(
        &self,
        key: &AlertKey,
        state: &AlertState,
        expected_version: u64,
    ) -> Result<ConditionalWrite, AlertPortError> {
        self.inner
            .put_if_version(key, state, expected_version)
            .await
    }
}
