//! Lambda's SQS event source, locally: gather up to `BatchSize` messages or until the batching
//! window closes, invoke the handler, delete what succeeded. With `ReportBatchItemFailures`
//! only the reported messages stay (they come back after the visibility timeout and, after
//! `maxReceiveCount` receives, SQS's redrive moves them to the dead-letter queue); without it
//! any failure keeps the whole batch.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::local::provision::SqsTrigger;

/// SQS returns at most 10 messages per ReceiveMessage.
const MAX_RECEIVE: i32 = 10;

/// Poll `trigger`'s queue and invoke `handler` until `shutdown` turns true.
pub async fn run<H, F>(
    sqs: aws_sdk_sqs::Client,
    trigger: SqsTrigger,
    handler: Arc<H>,
    mut shutdown: watch::Receiver<bool>,
) where
    H: Fn(SqsEvent) -> F + Send + Sync + 'static,
    F: Future<Output = SqsBatchResponse> + Send,
{
    let queue_arn = trigger
        .queue_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    while !*shutdown.borrow() {
        let batch = tokio::select! {
            batch = gather(&sqs, &trigger) => batch,
            _ = shutdown.changed() => return,
        };
        let Ok(messages) = batch else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        if messages.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        event.records = messages
            .iter()
            .map(|m| lambda_message(m, &queue_arn))
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
        let done: Vec<_> = messages
            .iter()
            .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
            .filter_map(|m| m.receipt_handle())
            .collect();
        for chunk in done.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, handle)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(*handle)
                        .build()
                        .ok()
                })
                .collect();
            if let Err(e) = sqs
                .delete_message_batch()
                .queue_url(&trigger.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "deleting processed messages failed; they will be redelivered");
            }
        }
    }
}

/// Up to `batch_size` messages, waiting at most the batching window once the first arrived.
async fn gather(
    sqs: &aws_sdk_sqs::Client,
    trigger: &SqsTrigger,
) -> Result<Vec<aws_sdk_sqs::types::Message>, aws_sdk_sqs::Error> {
    let mut messages = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if remaining == Some(Duration::ZERO) || messages.len() >= trigger.batch_size {
            return Ok(messages);
        }
        let wait = remaining.map_or(1, |r| r.as_secs().min(1)) as i32;
        let want = (trigger.batch_size - messages.len()).min(MAX_RECEIVE as usize) as i32;
        let received = sqs
            .receive_message()
            .queue_url(&trigger.queue_url)
            .max_number_of_messages(want)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await?;
        let got = received.messages().len();
        messages.extend(received.messages.unwrap_or_default());
        if messages.is_empty() {
            return Ok(messages); // nothing waiting: let the caller check for shutdown
        }
        if deadline.is_none() {
            deadline = Some(Instant::now() + Duration::from_secs(trigger.window_seconds));
        }
        if got == 0 && trigger.window_seconds == 0 {
            return Ok(messages);
        }
        if got == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn lambda_message(m: &aws_sdk_sqs::types::Message, queue_name: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = m.message_id().map(str::to_owned);
    message.receipt_handle = m.receipt_handle().map(str::to_owned);
    message.body = m.body().map(str::to_owned);
    message.md5_of_body = m.md5_of_body().map(str::to_owned);
    message.event_source = Some("aws:sqs".into());
    message.event_source_arn = Some(format!("arn:aws:sqs:us-east-1:123456789012:{queue_name}"));
    message.aws_region = Some("us-east-1".into());
    if let Some(attributes) = m.attributes() {
        for (name, value) in attributes {
            message
                .attributes
                .insert(name.as_str().to_owned(), value.clone());
        }
    }
    message
}
