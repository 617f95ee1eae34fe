//! Lambda's shapes, kept out of the use cases: each function's event as Lambda delivers it,
//! read into the plain types its use case takes, and the use case's report written back as
//! the answer Lambda expects (`batchItemFailures` for SQS and Kinesis). The binaries in
//! `functions/` call one entry point here each.

pub mod commands;
pub mod ingest;
pub mod lifecycle;
pub mod rollup;
pub mod silence_watch;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

/// `(message id, body)` of every message of an SQS batch, in order: what the use cases read.
pub fn sqs_messages(event: &SqsEvent) -> impl Iterator<Item = (&str, &str)> {
    event.records.iter().map(|m| {
        (
            m.message_id.as_deref().unwrap_or_default(),
            m.body.as_deref().unwrap_or_default(),
        )
    })
}

/// The partial batch response naming `failed_items` (message ids or sequence numbers), which
/// the event source redelivers.
pub fn batch_response(failed_items: &[String]) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for id in failed_items {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id.clone();
        response.batch_item_failures.push(failure);
    }
    response
}
