//! The platform's running totals, shared by every task it starts.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64};

use tokio::sync::Mutex;

use crate::broker::BrokerStats;
use crate::streams::ConsumerStats;
use iotdp::ingest::metrics::IngestMetrics;

/// Running totals for the live view and the tests.
#[derive(Debug, Default)]
pub struct PlatformStats {
    pub broker: Arc<BrokerStats>,
    pub rule_matches: AtomicU64,
    pub rule_errors: AtomicU64,
    pub queued: AtomicU64,
    pub ingest: Mutex<IngestMetrics>,
    pub invocations: AtomicU64,
    pub alerts_raised: AtomicU64,
    pub alerts_cleared: AtomicU64,
    pub recent_alerts: Mutex<VecDeque<String>>,
    /// Connect/disconnect events recorded in the registry.
    pub presence_events: AtomicU64,
    /// Messages the lifecycle function handled (recorded, ignored or malformed).
    pub presence_messages: AtomicU64,
    pub silence_runs: AtomicU64,
    pub no_data_raised: AtomicU64,
    /// Rollup job runs, the 1-minute windows they computed, the late windows they computed
    /// again, and how far the watermark trails now (ms; -1 before the first run).
    pub rollup_runs: AtomicU64,
    pub rollup_windows: AtomicU64,
    pub rollup_late_windows: AtomicU64,
    pub rollup_rows: AtomicU64,
    pub rollup_lag_ms: AtomicI64,
    pub rollup_failures: AtomicU64,
    /// Commands the shadow reports settled (delivered, or expired on a late report), and the
    /// ones the expiry sweep expired.
    pub commands_settled: AtomicU64,
    pub commands_expired: AtomicU64,
    /// The Kinesis event source's invocations and the batches it skipped (`Transport=kinesis`).
    pub stream: Arc<ConsumerStats>,
}
