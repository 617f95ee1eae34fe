//! The ingest path's ports: the time-series store it writes to and the quarantine it puts
//! rejections in. No AWS types: one adapter per store under `adapters/`.

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

forward_through_arc!(TimeSeriesStore {
    fn max_batch_len(&self) -> usize;
    fn write(&self, readings: &[Reading]) -> impl Future<Output = Result<WriteReport, StoreError>> + Send;
});

forward_through_arc!(QuarantineSink {
    fn put(&self, key: &str, jsonl: Vec<u8>) -> impl Future<Output = Result<(), QuarantineError>> + Send;
});
