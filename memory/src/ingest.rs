//! The ingest path's ports in memory: a store that keeps every reading, a quarantine that
//! keeps every object (and can be told to fail).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use iotdp::domain::Reading;
use iotdp::rollup::model::{RollupRow, SeriesKey};
use iotdp::rollup::tier::Tier;

use iotdp::ingest::ports::{
    QuarantineError, QuarantineSink, StoreError, TimeSeriesStore, WriteReport,
};

/// Keeps every reading written, in write order, indexed by time; and the rollup tables.
#[derive(Debug, Default)]
pub struct MemoryStore {
    pub batch_len: usize,
    written: Mutex<Vec<Reading>>,
    /// `(time, device)` → the index in `written` of the latest write of that instant.
    pub(crate) by_time: Mutex<BTreeMap<(i64, String), usize>>,
    pub(crate) rollups: Mutex<RollupTables>,
    /// Readings and rollup rows every read has returned: what a query costs the store.
    rows_read: AtomicUsize,
}

/// `(tier, window start)` → the rows of that window by series and metric (a later write of the
/// same series and metric replaces the row).
pub(crate) type RollupTables = BTreeMap<(Tier, i64), HashMap<(SeriesKey, String), RollupRow>>;

impl MemoryStore {
    pub fn new(batch_len: usize) -> Self {
        Self {
            batch_len,
            ..Self::default()
        }
    }

    pub fn written(&self) -> Vec<Reading> {
        self.written.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Run `f` over every reading written, without copying them.
    pub fn with_written<R>(&self, f: impl FnOnce(&[Reading]) -> R) -> R {
        match self.written.lock() {
            Ok(written) => f(&written),
            Err(_) => f(&[]),
        }
    }

    /// Readings and rollup rows returned by reads so far.
    pub fn rows_read(&self) -> usize {
        self.rows_read.load(Ordering::Relaxed)
    }

    pub(crate) fn count_read(&self, rows: usize) {
        self.rows_read.fetch_add(rows, Ordering::Relaxed);
    }

    /// Every rollup row of `tier`, in window order.
    pub fn rollup_rows(&self, tier: Tier) -> Vec<RollupRow> {
        let mut rows: Vec<RollupRow> = self
            .rollups
            .lock()
            .map(|r| {
                r.range((tier, i64::MIN)..=(tier, i64::MAX))
                    .flat_map(|(_, window)| window.values().cloned())
                    .collect()
            })
            .unwrap_or_default();
        iotdp::rollup::compute::sort_rows(&mut rows);
        rows
    }
}

impl TimeSeriesStore for MemoryStore {
    fn max_batch_len(&self) -> usize {
        self.batch_len
    }

    async fn write(&self, readings: &[Reading]) -> Result<WriteReport, StoreError> {
        let poisoned = || StoreError::Failed("memory store lock poisoned".into());
        let mut written = self.written.lock().map_err(|_| poisoned())?;
        let mut by_time = self.by_time.lock().map_err(|_| poisoned())?;
        for reading in readings {
            by_time.insert((reading.time_ms, reading.device_id.clone()), written.len());
            written.push(reading.clone());
        }
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
