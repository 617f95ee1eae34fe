//! In-memory adapters: for tests of the use cases, and for trying the pipeline without AWS.

use std::sync::Mutex;

use iotdp::domain::Reading;
use iotdp::ingest::ports::{
    QuarantineError, QuarantineSink, StoreError, TimeSeriesStore, WriteReport,
};

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

// ---- Device registry -----------------------------------------------------------------------

use iotdp::devices::ports::{DeviceRegistry, PresenceChange, RegistryError, Watched};
use iotdp::devices::record::{DeviceRecord, DeviceStatus};
use iotdp::devices::silence::{watch_deadline, watch_shard};

#[derive(Debug, Clone)]
struct StoredDevice {
    record: DeviceRecord,
    presence_at_ms: Option<i64>,
    /// (raised, deadline): the silence-watch index entry, if the device is watched.
    watch: Option<(bool, i64)>,
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
        self.watched(shard, |raised, at| !raised && at <= now_ms)
    }

    async fn resumed(&self, shard: u16, now_ms: i64) -> Result<Vec<Watched>, RegistryError> {
        self.watched(shard, |raised, at| raised && at > now_ms)
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
        match devices.get_mut(device_id).and_then(|d| d.watch.as_mut()) {
            Some((raised, _)) if *raised => {
                *raised = false;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl MemoryRegistry {
    fn watched(
        &self,
        shard: u16,
        wanted: impl Fn(bool, i64) -> bool,
    ) -> Result<Vec<Watched>, RegistryError> {
        let devices = self.devices.lock().map_err(|_| lock_error())?;
        let mut out: Vec<Watched> = devices
            .values()
            .filter(|d| watch_shard(&d.record.device_id) == shard)
            .filter_map(|d| {
                let (raised, at) = d.watch?;
                wanted(raised, at).then(|| Watched {
                    device_id: d.record.device_id.clone(),
                    watch_at_ms: at,
                })
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

// ---- Reading the memory store back ---------------------------------------------------------

use iotdp::domain::LocationPath;
use iotdp::domain::MetricValue;
use iotdp::query::model::{
    Aggregate, DeviceValue, FleetFilter, GroupValue, Point, QueryError, SeriesQuery, TimeRange,
};
use iotdp::query::ports::TimeSeriesReader;

impl MemoryStore {
    /// `(time, value)` of `metric` for readings matching `keep`, in time order; a later write of
    /// the same series and instant replaces an earlier one, as in the real stores.
    fn values(&self, metric: &str, keep: impl Fn(&Reading) -> bool) -> Vec<(Reading, MetricValue)> {
        let written = self.written();
        let mut latest: HashMap<(String, i64), (Reading, MetricValue)> = HashMap::new();
        for reading in written.into_iter().filter(|r| keep(r)) {
            let value = if metric == "seq" {
                reading.seq.map(|s| MetricValue::Number(s as f64))
            } else {
                reading
                    .metrics
                    .iter()
                    .find(|m| m.name == metric)
                    .map(|m| m.value.clone())
            };
            if let Some(value) = value {
                latest.insert(
                    (reading.device_id.clone(), reading.time_ms),
                    (reading, value),
                );
            }
        }
        let mut out: Vec<_> = latest.into_values().collect();
        out.sort_by_key(|(r, _)| (r.time_ms, r.device_id.clone()));
        out
    }
}

fn in_range(range: TimeRange) -> impl Fn(&Reading) -> bool {
    move |r| r.time_ms >= range.from_ms && r.time_ms < range.to_ms
}

fn under(within: &LocationPath) -> impl Fn(&Reading) -> bool + '_ {
    move |r| {
        r.dimensions
            .as_ref()
            .is_some_and(|d| d.path.starts_with(within))
    }
}

/// Aggregate values in time order, as the stores do; `None` for non-numeric input.
pub fn aggregate_values(aggregate: Aggregate, values: &[MetricValue]) -> Option<MetricValue> {
    if aggregate == Aggregate::Count {
        return Some(MetricValue::Number(values.len() as f64));
    }
    if matches!(aggregate, Aggregate::First | Aggregate::Last) {
        let v = if aggregate == Aggregate::First {
            values.first()
        } else {
            values.last()
        };
        return v.cloned();
    }
    let numbers: Vec<f64> = values
        .iter()
        .map(|v| match v {
            MetricValue::Number(n) => Some(*n),
            _ => None,
        })
        .collect::<Option<_>>()?;
    if numbers.is_empty() {
        return None;
    }
    let value = match aggregate {
        Aggregate::Avg => numbers.iter().sum::<f64>() / numbers.len() as f64,
        Aggregate::Sum => numbers.iter().sum(),
        Aggregate::Min => numbers.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregate::Max => numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregate::Count | Aggregate::First | Aggregate::Last => unreachable!("handled above"),
    };
    Some(MetricValue::Number(value))
}

/// The memory store answers the read port itself: a reference implementation the API tests
/// run on, and that the real stores are compared with.
impl TimeSeriesReader for MemoryStore {
    async fn metric_names(&self) -> Result<Vec<String>, QueryError> {
        let mut names: Vec<String> = self
            .written()
            .iter()
            .flat_map(|r| r.metrics.iter().map(|m| m.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn latest_values(
        &self,
        device_id: &str,
        metrics: &[&str],
    ) -> Result<Vec<(String, Point)>, QueryError> {
        Ok(metrics
            .iter()
            .filter_map(|metric| {
                let (reading, value) = self.values(metric, |r| r.device_id == device_id).pop()?;
                Some((
                    metric.to_string(),
                    Point {
                        time_ms: reading.time_ms,
                        value,
                    },
                ))
            })
            .collect())
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Vec<Point>, QueryError> {
        iotdp::query::names::checked_range(query.range)?;
        let range = in_range(query.range);
        let values = self.values(&query.metric, |r| {
            r.device_id == query.device_id && range(r)
        });
        let mut points: Vec<Point> = match query.bins {
            None => values
                .into_iter()
                .map(|(r, value)| Point {
                    time_ms: r.time_ms,
                    value,
                })
                .collect(),
            Some((bin, aggregate)) => {
                let bin_ms = iotdp::query::names::checked_bin(bin)? as i64 * 1000;
                let mut bins: std::collections::BTreeMap<i64, Vec<MetricValue>> =
                    Default::default();
                for (r, value) in values {
                    bins.entry(r.time_ms - r.time_ms.rem_euclid(bin_ms))
                        .or_default()
                        .push(value);
                }
                bins.into_iter()
                    .filter_map(|(time_ms, values)| {
                        Some(Point {
                            time_ms,
                            value: aggregate_values(aggregate, &values)?,
                        })
                    })
                    .collect()
            }
        };
        if let Some(limit) = query.limit {
            points.truncate(limit);
        }
        Ok(points)
    }

    async fn latest_by_device(
        &self,
        metric: &str,
        filter: &FleetFilter,
    ) -> Result<Vec<DeviceValue>, QueryError> {
        let mut latest: std::collections::BTreeMap<String, DeviceValue> = Default::default();
        let within = under(&filter.within);
        for (r, value) in self.values(metric, |r| {
            (filter.within.is_empty() || within(r))
                && filter
                    .device_type
                    .as_ref()
                    .is_none_or(|t| r.dimensions.as_ref().is_some_and(|d| &d.device_type == t))
        }) {
            latest.insert(
                r.device_id.clone(),
                DeviceValue {
                    device_id: r.device_id,
                    time_ms: r.time_ms,
                    value,
                },
            );
        }
        Ok(latest.into_values().collect())
    }

    async fn drill_down(
        &self,
        metric: &str,
        within: &LocationPath,
        range: TimeRange,
        aggregate: Aggregate,
    ) -> Result<Vec<GroupValue>, QueryError> {
        iotdp::query::names::child_level(within)?;
        let depth = within.segments().len();
        iotdp::query::names::checked_range(range)?;
        let (inside, during) = (under(within), in_range(range));
        let mut groups: std::collections::BTreeMap<String, Vec<MetricValue>> = Default::default();
        for (r, value) in self.values(metric, |r| inside(r) && during(r)) {
            if let Some(group) = r
                .dimensions
                .as_ref()
                .and_then(|d| d.path.segments().get(depth).cloned())
            {
                groups.entry(group).or_default().push(value);
            }
        }
        Ok(groups
            .into_iter()
            .filter_map(
                |(group, values)| match aggregate_values(aggregate, &values)? {
                    MetricValue::Number(value) => Some(GroupValue { group, value }),
                    _ => None,
                },
            )
            .collect())
    }
}
