//! Readings → store requests → one outcome per reading.
//!
//! Store-agnostic: chunks of the store's batch size, several requests in flight (bounded),
//! retries with full-jitter backoff while the invocation has time, and bisection of requests
//! the store refuses as invalid, so one bad reading never sinks its neighbours.

use std::ops::Range;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use tokio::time::Instant;

use crate::domain::Reading;
use crate::ingest::ports::{StoreError, StoreRejectionKind, TimeSeriesStore};
use crate::retry::RetryPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WritePolicy {
    /// Store requests in flight at once.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// Retries stop this long before the invocation's deadline, leaving time to quarantine
    /// and to answer SQS; whatever is still unwritten is then retried through SQS.
    pub deadline_margin: Duration,
}

impl Default for WritePolicy {
    fn default() -> Self {
        Self {
            concurrency: 8,
            retry: RetryPolicy::default(),
            deadline_margin: Duration::from_millis(1500),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Stored,
    /// The store refused this reading's data: quarantine it as `rejected_by_store`.
    RejectedByStore(String),
    /// Not written (retries exhausted, out of time, store failure): retry its message.
    Failed(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteStats {
    pub write_calls: u64,
    pub retries: u64,
    pub records_written: u64,
    /// Latency of each store request, in milliseconds.
    pub latencies_ms: Vec<f64>,
}

impl WriteStats {
    fn merge(&mut self, other: WriteStats) {
        self.write_calls += other.write_calls;
        self.retries += other.retries;
        self.records_written += other.records_written;
        self.latencies_ms.extend(other.latencies_ms);
    }
}

/// Write `readings` (already in series/time order) and return one outcome per reading.
pub async fn write_readings<S: TimeSeriesStore>(
    store: &S,
    readings: &[Reading],
    policy: &WritePolicy,
    deadline: Instant,
) -> (Vec<WriteOutcome>, WriteStats) {
    let mut outcomes = vec![WriteOutcome::Stored; readings.len()];
    let mut stats = WriteStats::default();
    let chunk = store.max_batch_len().max(1);
    let ranges = (0..readings.len())
        .step_by(chunk)
        .map(|start| start..(start + chunk).min(readings.len()));
    let mut results = stream::iter(ranges)
        .map(|range| write_chunk(store, readings, range, policy, deadline))
        .buffer_unordered(policy.concurrency.max(1));
    while let Some((chunk_outcomes, chunk_stats)) = results.next().await {
        for (index, outcome) in chunk_outcomes {
            outcomes[index] = outcome;
        }
        stats.merge(chunk_stats);
    }
    (outcomes, stats)
}

/// One chunk, split further whenever the store calls a request invalid.
async fn write_chunk<S: TimeSeriesStore>(
    store: &S,
    readings: &[Reading],
    range: Range<usize>,
    policy: &WritePolicy,
    deadline: Instant,
) -> (Vec<(usize, WriteOutcome)>, WriteStats) {
    let mut outcomes = Vec::new();
    let mut stats = WriteStats::default();
    let mut pending = vec![range];
    while let Some(range) = pending.pop() {
        match write_with_retries(
            store,
            &readings[range.clone()],
            policy,
            deadline,
            &mut stats,
        )
        .await
        {
            Ok(report) => {
                let mut refused = vec![None; range.len()];
                for rejection in report.rejected {
                    let Some(slot) = refused.get_mut(rejection.index) else {
                        // An index we never sent: nothing in this request can be trusted as stored.
                        let why = format!(
                            "store rejected record index {} of a {}-record request",
                            rejection.index,
                            range.len()
                        );
                        refused
                            .iter_mut()
                            .for_each(|r| *r = Some(WriteOutcome::Failed(why.clone())));
                        break;
                    };
                    *slot = Some(match rejection.kind {
                        StoreRejectionKind::Data => WriteOutcome::RejectedByStore(rejection.reason),
                        StoreRejectionKind::Transient => WriteOutcome::Failed(rejection.reason),
                    });
                }
                for (offset, outcome) in refused.into_iter().enumerate() {
                    let outcome = outcome.unwrap_or(WriteOutcome::Stored);
                    if outcome == WriteOutcome::Stored {
                        stats.records_written += 1;
                    }
                    outcomes.push((range.start + offset, outcome));
                }
            }
            Err(StoreError::InvalidRequest(message)) if range.len() == 1 => {
                outcomes.push((range.start, WriteOutcome::RejectedByStore(message)));
            }
            Err(StoreError::InvalidRequest(_)) => {
                let middle = range.start + range.len() / 2;
                pending.push(middle..range.end);
                pending.push(range.start..middle);
            }
            Err(error) => {
                let why = error.to_string();
                outcomes.extend(range.map(|i| (i, WriteOutcome::Failed(why.clone()))));
            }
        }
    }
    (outcomes, stats)
}

async fn write_with_retries<S: TimeSeriesStore>(
    store: &S,
    readings: &[Reading],
    policy: &WritePolicy,
    deadline: Instant,
    stats: &mut WriteStats,
) -> Result<crate::ingest::ports::WriteReport, StoreError> {
    let mut attempt = 1;
    loop {
        let started = Instant::now();
        let result = store.write(readings).await;
        stats.write_calls += 1;
        stats
            .latencies_ms
            .push(started.elapsed().as_secs_f64() * 1000.0);
        let Err(StoreError::Retryable {
            message,
            retry_after,
        }) = result
        else {
            return result;
        };
        if attempt >= policy.retry.max_attempts {
            return Err(StoreError::Failed(format!(
                "gave up after {attempt} attempts: {message}"
            )));
        }
        let delay = policy.retry.delay(attempt, retry_after);
        if Instant::now() + delay + policy.deadline_margin > deadline {
            return Err(StoreError::Failed(format!(
                "out of invocation time after {attempt} attempts: {message}"
            )));
        }
        tokio::time::sleep(delay).await;
        stats.retries += 1;
        attempt += 1;
    }
}
