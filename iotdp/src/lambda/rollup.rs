//! The `rollup` function's Lambda shape: EventBridge's schedule, whose content does not
//! matter.

use crate::rollup::job::{RollupJob, RunReport};
use crate::rollup::ports::{RollupError, RollupStateStore, RollupStore};

/// The scheduled function's handler: one run at the current time. A run that finds the state
/// moved by another (an overlapping run, a rebuild) ends without error; the next one carries on.
pub async fn handle_scheduled_run<S, T>(
    job: &RollupJob<S, T>,
    _event: lambda_runtime::LambdaEvent<serde_json::Value>,
) -> Result<RunReport, lambda_runtime::Error>
where
    S: RollupStore,
    T: RollupStateStore,
{
    match job.run(chrono::Utc::now().timestamp_millis()).await {
        Ok(report) => {
            tracing::info!(
                windows = report.windows,
                late_windows = report.late_windows,
                hours = report.hours,
                days = report.days,
                rows_written = report.rows_written,
                raw_readings = report.raw_readings,
                lag_seconds = report.lag_ms / 1000,
                "rollup job ran"
            );
            Ok(report)
        }
        Err(RollupError::Conflict(why)) => {
            tracing::warn!(%why, "rollup state moved under this run; the next run carries on");
            Ok(RunReport::default())
        }
        Err(e) => Err(e.into()),
    }
}
