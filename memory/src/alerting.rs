//! Alerting's ports in memory: rules, states with DynamoDB's conditional writes, a notifier
//! and a commander that keep what they get, and a wrapper that makes evaluators race.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use iotdp::alerting::notification::AlertNotification;
use iotdp::alerting::ports::{
    AlertKey, AlertPortError, AlertStateStore, ConditionalWrite, DeviceCommander, Notifier,
    RuleSource,
};
use iotdp::alerting::rule::AlertRule;
use iotdp::alerting::state_machine::AlertState;

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

impl iotdp::alerting::ports::RuleStore for MemoryRules {
    async fn put(&self, rule: &AlertRule) -> Result<(), AlertPortError> {
        rule.validate().map_err(|e| AlertPortError(e.to_string()))?;
        let mut rules = self
            .0
            .lock()
            .map_err(|_| AlertPortError("lock poisoned".into()))?;
        rules.retain(|r| r.rule_id != rule.rule_id);
        rules.push(rule.clone());
        Ok(())
    }

    async fn delete(&self, rule_id: &str) -> Result<bool, AlertPortError> {
        let mut rules = self
            .0
            .lock()
            .map_err(|_| AlertPortError("lock poisoned".into()))?;
        let before = rules.len();
        rules.retain(|r| r.rule_id != rule_id);
        Ok(rules.len() < before)
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

    /// Every stored state (benchmarks start each run from the same warmed states).
    pub fn snapshot(&self) -> HashMap<AlertKey, AlertState> {
        self.states.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn from_snapshot(states: HashMap<AlertKey, AlertState>) -> Self {
        Self {
            states: Mutex::new(states),
            ..Self::default()
        }
    }
}

impl iotdp::alerting::ports::AlertStateListing for MemoryAlertStates {
    async fn list(
        &self,
        only: Option<iotdp::alerting::event::AlarmState>,
    ) -> Result<Vec<(AlertKey, AlertState)>, AlertPortError> {
        let states = self
            .states
            .lock()
            .map_err(|_| AlertPortError("lock poisoned".into()))?;
        let mut out: Vec<(AlertKey, AlertState)> = states
            .iter()
            .filter(|(_, s)| only.is_none_or(|o| s.state == o))
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn for_device(
        &self,
        device_id: &str,
    ) -> Result<Vec<(AlertKey, AlertState)>, AlertPortError> {
        let mut all = iotdp::alerting::ports::AlertStateListing::list(self, None).await?;
        all.retain(|(k, _)| k.device_id == device_id);
        Ok(all)
    }
}

impl AlertStateStore for MemoryAlertStates {
    async fn get_many(&self, keys: &[AlertKey]) -> Result<Vec<Option<AlertState>>, AlertPortError> {
        self.batch_reads
            .fetch_add(keys.len().div_ceil(100) as u64, Ordering::Relaxed);
        let states = self
            .states
            .lock()
            .map_err(|_| AlertPortError("lock poisoned".into()))?;
        Ok(keys.iter().map(|k| states.get(k).cloned()).collect())
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
        key: &AlertKey,
        _: u64,
        desired: &serde_json::Value,
    ) -> Result<(), AlertPortError> {
        self.0
            .lock()
            .map_err(|_| AlertPortError("lock poisoned".into()))?
            .push((key.device_id.clone(), desired.clone()));
        Ok(())
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
    async fn get_many(&self, keys: &[AlertKey]) -> Result<Vec<Option<AlertState>>, AlertPortError> {
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
