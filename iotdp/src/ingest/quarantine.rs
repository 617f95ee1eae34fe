//! Quarantine lines: every rejected reading, with why and exactly what was sent.
//!
//! One JSON Lines object per invocation (not per reading) keeps S3 PUT costs flat; keys are
//! partitioned by hour so Athena or S3 Select can scan a day without listing everything.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::reason::ReasonCode;
use crate::ingest::batch::{OriginalPayload, PreparedBatch, RejectedReading};
use crate::ingest::validation::gateway_item_texts;

/// One line of a quarantine object (the documented schema).
#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct QuarantineLine {
    pub reason: String,
    pub detail: String,
    pub topic: Option<String>,
    pub client_id: Option<String>,
    /// IoT Core's receive time, epoch milliseconds.
    pub received_at: Option<i64>,
    pub message_id: String,
    /// The item's place in a gateway batch; `null` for a single reading or a whole payload.
    pub reading_index: Option<usize>,
    /// What was sent, as text: the whole payload, or the one gateway item at `reading_index`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub payload: Option<String>,
    /// The payload, base64-encoded, when it is not UTF-8 text.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub payload_base64: Option<String>,
}

/// `quarantine/year=YYYY/month=MM/day=DD/hour=HH/<request id>.jsonl`
pub fn quarantine_key(request_id: &str, at: DateTime<Utc>) -> String {
    format!(
        "quarantine/{}/{request_id}.jsonl",
        at.format("year=%Y/month=%m/day=%d/hour=%H")
    )
}

/// Render the given rejections as JSON Lines.
pub fn render_quarantine(batch: &PreparedBatch, rejections: &[&RejectedReading]) -> Vec<u8> {
    let mut out = Vec::new();
    // Gateway payloads are re-split at most once each, only on this (rejection) path.
    let mut item_texts: HashMap<usize, Vec<&str>> = HashMap::new();
    for rejected in rejections {
        let message = &batch.messages[rejected.origin.message];
        let (payload, payload_base64) = match (&message.original, rejected.origin.index) {
            (OriginalPayload::Undecoded(body), _) => (Some(body.clone()), None),
            (OriginalPayload::Decoded(bytes), Some(item)) => {
                let texts = item_texts
                    .entry(rejected.origin.message)
                    .or_insert_with(|| gateway_item_texts(bytes));
                match texts.get(item) {
                    Some(text) => (Some((*text).to_owned()), None),
                    None => text_or_base64(bytes),
                }
            }
            (OriginalPayload::Decoded(bytes), None) => text_or_base64(bytes),
        };
        let line = QuarantineLine {
            reason: rejected.rejection.reason.as_str().to_owned(),
            detail: rejected.rejection.detail.clone(),
            topic: message.meta.topic.clone(),
            client_id: message.meta.client_id.clone(),
            received_at: message.meta.received_at_ms,
            message_id: message.message_id.clone(),
            reading_index: rejected.origin.index,
            payload,
            payload_base64,
        };
        // Serialising plain strings and integers into a Vec cannot fail.
        if serde_json::to_writer(&mut out, &line).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

fn text_or_base64(bytes: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (Some(text.to_owned()), None),
        Err(_) => (None, Some(BASE64.encode(bytes))),
    }
}

/// Count rejections by reason, for metrics.
pub fn count_by_reason<'a>(
    rejections: impl IntoIterator<Item = &'a RejectedReading>,
) -> std::collections::BTreeMap<ReasonCode, u64> {
    let mut counts = std::collections::BTreeMap::new();
    for r in rejections {
        *counts.entry(r.rejection.reason).or_insert(0) += 1;
    }
    counts
}
