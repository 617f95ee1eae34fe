//! The `commands` function's Lambda shapes: an SQS batch of shadow reports, or EventBridge's
//! schedule event, which runs the expiry sweep.

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::Value;

use crate::commands::ports::{CommandStore, ShadowService};
use crate::commands::service::Commands;
use crate::commands::shadow_events::settle_reports;

use super::{batch_response, sqs_messages};

/// The Lambda entry point of the `commands` function: an SQS batch of shadow reports, or the
/// schedule's event (anything without `Records`), which runs the expiry sweep.
pub async fn handle_commands_event<S: ShadowService, K: CommandStore>(
    commands: &Commands<S, K>,
    event: lambda_runtime::LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    if event.payload.get("Records").is_some() {
        let batch: SqsEvent = serde_json::from_value(event.payload)?;
        let (failed_items, outcome) = settle_reports(commands, sqs_messages(&batch), now_ms).await;
        tracing::info!(
            settled = outcome.settled,
            malformed = outcome.malformed,
            failed = outcome.failed,
            "shadow reports handled"
        );
        Ok(serde_json::to_value(batch_response(&failed_items))?)
    } else {
        let expired = commands.expire_due(now_ms).await?;
        tracing::info!(expired, "expiry sweep");
        Ok(serde_json::json!({ "expired": expired }))
    }
}
