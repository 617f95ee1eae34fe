//! Lambda's SQS event source, locally: gather up to `BatchSize` messages or until the batching
//! window closes, invoke the handler, delete what succeeded. With `ReportBatchItemFailures`
//! only the reported messages stay (they come back after the visibility timeout and, after
//! `maxReceiveCount` receives, SQS's redrive moves them to the dead-letter queue); without it
//! any failure keeps the whole batch.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::provision::SqsTrigger;
use crate::queues::{QueueBackend, QueueError, Received};

/// SQS returns at most 10 messages per ReceiveMessage; the in-process queues take more.
const MAX_RECEIVE: usize = 10;

/// Poll `trigger`'s queue and invoke `handler` until `shutdown` turns true.
pub async fn run<H, F>(
    queues: QueueBackend,
    trigger: SqsTrigger,
    handler: Arc<H>,
    mut shutdown: watch::Receiver<bool>,
) where
    H: Fn(SqsEvent) -> F + Send + Sync + 'static,
    F: Future<Output = SqsBatchResponse> + Send,
{
    let queue_name = trigger
        .queue_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    while !*shutdown.borrow() {
        let batch = tokio::select! {
            batch = gather(&queues, &trigger) => batch,
            _ = shutdown.changed() => return,
        };
        let messages = match batch {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(error = %e, "receiving from the local queue failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        event.records = messages
            .iter()
            .map(|m| lambda_message(m, &queue_name))
            .collect();
        let response = handler(event).await;
        let failed: std::collections::HashSet<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        if !failed.is_empty() && !trigger.report_batch_item_failures {
            continue; // the whole batch is retried
        }
        let done: Vec<String> = messages
            .iter()
            .filter(|m| !failed.contains(m.message_id.as_str()))
            .map(|m| m.receipt_handle.clone())
            .collect();
        if let Err(e) = queues.delete(&trigger.queue_url, &done).await {
            tracing::warn!(error = %e, "deleting processed messages failed; they will be redelivered");
        }
    }
}

/// Up to `batch_size` messages, waiting at most the batching window once the first arrived.
async fn gather(queues: &QueueBackend, trigger: &SqsTrigger) -> Result<Vec<Received>, QueueError> {
    let mut messages = Vec::new();
    let mut deadline: Option<Instant> = None;
    let per_call = match queues {
        QueueBackend::Moto(_) => MAX_RECEIVE,
        QueueBackend::InProcess(_) => trigger.batch_size,
    };
    loop {
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if remaining == Some(Duration::ZERO) || messages.len() >= trigger.batch_size {
            return Ok(messages);
        }
        let wait = remaining.map_or(Duration::from_secs(1), |r| r.min(Duration::from_secs(1)));
        let want = (trigger.batch_size - messages.len()).min(per_call);
        let received = queues.receive(&trigger.queue_url, want, wait).await?;
        let got = received.len();
        messages.extend(received);
        if messages.is_empty() {
            return Ok(messages); // nothing waiting: let the caller check for shutdown
        }
        if deadline.is_none() {
            deadline = Some(Instant::now() + Duration::from_secs(trigger.window_seconds));
        }
        if got == 0 && trigger.window_seconds == 0 {
            return Ok(messages);
        }
    }
}

fn lambda_message(m: &Received, queue_name: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(m.message_id.clone());
    message.receipt_handle = Some(m.receipt_handle.clone());
    message.body = Some(m.body.clone());
    message.event_source = Some("aws:sqs".into());
    message.event_source_arn = Some(format!("arn:aws:sqs:us-east-1:123456789012:{queue_name}"));
    message.aws_region = Some("us-east-1".into());
    message.attributes.insert(
        "ApproximateReceiveCount".into(),
        m.receive_count.to_string(),
    );
    message
}
