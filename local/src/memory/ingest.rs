//! The ingest path's ports in memory: a store that keeps every reading, a quarantine that
//! keeps every object (and can be told to fail).

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
