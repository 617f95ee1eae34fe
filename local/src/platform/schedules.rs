//! EventBridge's schedules, locally: the silence watch, the rollup job and the command expiry
//! sweep run every `rate(...)` of their function.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

use super::PlatformStats;
use iotdp::rollup::job::RunReport;
use iotdp::rollup::ports::RollupError;
use iotdp::wiring::{AwsCommands, AwsRollupJob, AwsSilenceWatch};

/// `run` every `interval` until shutdown, the first run one interval away as EventBridge's
/// is, or at once with `at_once`.
pub(super) async fn on_schedule<F, Fut>(
    interval: Duration,
    at_once: bool,
    mut shutdown: watch::Receiver<bool>,
    mut run: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(interval);
    if !at_once {
        ticks.tick().await; // the first tick is immediate
    }
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.changed() => return,
        }
        run().await;
    }
}

/// The silence watch on its schedule.
pub(super) async fn run_silence_watch_on_schedule(
    watch: Arc<AwsSilenceWatch>,
    interval: Duration,
    stats: Arc<PlatformStats>,
    shutdown: watch::Receiver<bool>,
) {
    on_schedule(interval, false, shutdown, || async {
        match watch.run(chrono::Utc::now()).await {
            Ok(report) => {
                stats.silence_runs.fetch_add(1, Ordering::Relaxed);
                stats
                    .no_data_raised
                    .fetch_add(report.raised, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "silence watch run failed"),
        }
    })
    .await;
}

/// The rollup job on its schedule. Its first run is at once, so the live view shows the
/// watermark from the start.
pub(super) async fn run_rollups_on_schedule(
    job: Arc<AwsRollupJob>,
    interval: Duration,
    stats: Arc<PlatformStats>,
    shutdown: watch::Receiver<bool>,
) {
    on_schedule(interval, true, shutdown, || async {
        record_rollup_run(&stats, job.run(chrono::Utc::now().timestamp_millis()).await);
    })
    .await;
}

/// A rollup run's figures for the live view: what it computed and how far it trails.
fn record_rollup_run(stats: &PlatformStats, outcome: Result<RunReport, RollupError>) {
    match outcome {
        Ok(report) => {
            stats.rollup_runs.fetch_add(1, Ordering::Relaxed);
            stats
                .rollup_windows
                .fetch_add(report.windows as u64, Ordering::Relaxed);
            stats
                .rollup_late_windows
                .fetch_add(report.late_windows as u64, Ordering::Relaxed);
            stats
                .rollup_rows
                .fetch_add(report.rows_written as u64, Ordering::Relaxed);
            stats.rollup_lag_ms.store(report.lag_ms, Ordering::Relaxed);
        }
        Err(e) => {
            stats.rollup_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "rollup job run failed");
        }
    }
}

/// The `commands` function's schedule: overdue commands expired.
pub(super) async fn run_command_expiry_on_schedule(
    commands: Arc<AwsCommands>,
    interval: Duration,
    stats: Arc<PlatformStats>,
    shutdown: watch::Receiver<bool>,
) {
    on_schedule(interval, false, shutdown, || async {
        match commands
            .expire_due(chrono::Utc::now().timestamp_millis())
            .await
        {
            Ok(expired) => {
                stats
                    .commands_expired
                    .fetch_add(expired as u64, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "command expiry sweep failed"),
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// `on_schedule` counting its runs, started at the (paused) clock's now.
    fn counted(
        interval: Duration,
        at_once: bool,
    ) -> (
        Arc<AtomicU64>,
        watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ) {
        let runs = Arc::new(AtomicU64::new(0));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let counter = runs.clone();
        let task = tokio::spawn(on_schedule(interval, at_once, shutdown_rx, move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
        (runs, shutdown, task)
    }

    async fn at(seconds: u64, start: tokio::time::Instant) {
        tokio::time::sleep_until(start + Duration::from_secs(seconds)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_run_is_one_interval_away_then_one_each_interval_until_shutdown() {
        let start = tokio::time::Instant::now();
        let (runs, shutdown, task) = counted(Duration::from_secs(60), false);
        at(59, start).await;
        assert_eq!(
            runs.load(Ordering::Relaxed),
            0,
            "EventBridge waits an interval"
        );
        at(61, start).await;
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        at(181, start).await;
        assert_eq!(runs.load(Ordering::Relaxed), 3);
        shutdown.send(true).unwrap();
        task.await.unwrap();
        at(600, start).await;
        assert_eq!(runs.load(Ordering::Relaxed), 3, "no run after shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn at_once_runs_at_start_and_then_on_the_interval() {
        let start = tokio::time::Instant::now();
        let (runs, shutdown, task) = counted(Duration::from_secs(300), true);
        at(1, start).await;
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        at(299, start).await;
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        at(301, start).await;
        assert_eq!(runs.load(Ordering::Relaxed), 2);
        drop(shutdown);
        task.await.unwrap();
    }

    #[test]
    fn a_rollup_run_adds_its_windows_and_rows_and_sets_the_lag_a_failure_counts_apart() {
        let stats = PlatformStats::default();
        let report = |windows, lag_ms| RunReport {
            windows,
            late_windows: 1,
            rows_written: 10,
            lag_ms,
            ..RunReport::default()
        };
        record_rollup_run(&stats, Ok(report(5, 90_000)));
        record_rollup_run(&stats, Ok(report(2, 30_000)));
        record_rollup_run(&stats, Err(RollupError::Store("down".into())));
        let figure = |f: &AtomicU64| f.load(Ordering::Relaxed);
        assert_eq!(figure(&stats.rollup_runs), 2);
        assert_eq!(figure(&stats.rollup_windows), 7);
        assert_eq!(figure(&stats.rollup_late_windows), 2);
        assert_eq!(figure(&stats.rollup_rows), 20);
        assert_eq!(
            stats.rollup_lag_ms.load(Ordering::Relaxed),
            30_000,
            "the latest run's"
        );
        assert_eq!(figure(&stats.rollup_failures), 1);
    }
}
