//! The `lifecycle` function's Lambda shape: an SQS batch of IoT Core's lifecycle events.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

use crate::devices::ports::DeviceRegistry;
use crate::devices::presence::record_presence_events;

use super::{batch_response, sqs_messages};

/// The Lambda entry point of the `lifecycle` function.
pub async fn handle_lifecycle_event<R: DeviceRegistry>(
    registry: &R,
    event: lambda_runtime::LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let (failed_items, report) =
        record_presence_events(registry, sqs_messages(&event.payload)).await;
    tracing::info!(
        applied = report.applied,
        ignored = report.ignored,
        malformed = report.malformed,
        failed = report.failed,
        "presence events recorded"
    );
    Ok(batch_response(&failed_items))
}
