//! The `silence-watch` function's Lambda shape: EventBridge's schedule, whose content does not
//! matter.

use chrono::Utc;

use crate::alerting::ports::{AlertStateStore, Notifier};
use crate::devices::ports::DeviceRegistry;
use crate::devices::silence::{SilenceReport, SilenceWatch};

/// The Lambda entry point of the `silence-watch` function (an EventBridge schedule; the
/// event's content does not matter). A registry failure fails the run: the next one retries.
pub async fn handle_scheduled_run<R, S, N>(
    watch: &SilenceWatch<R, S, N>,
    _event: lambda_runtime::LambdaEvent<serde_json::Value>,
) -> Result<SilenceReport, lambda_runtime::Error>
where
    R: DeviceRegistry,
    S: AlertStateStore,
    N: Notifier,
{
    let report = watch.run(Utc::now()).await?;
    tracing::info!(
        index_queries = report.index_queries,
        overdue = report.overdue,
        resumed = report.resumed,
        raised = report.raised,
        cleared = report.cleared,
        failures = report.failures,
        "silence watch ran"
    );
    Ok(report)
}
