//! SQS messages → envelopes → readings (or rejections), for a whole batch at once. Pure.

use crate::domain::Reading;
use crate::domain::reason::Rejection;
use crate::domain::topic::device_id_span;
use crate::ingest::envelope::{EnvelopeMeta, decode_envelope};
use crate::ingest::validation::{ItemIndex, TimeWindow, validate_payload};

/// Where a reading (or rejection) came from: its SQS message and its place in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadingOrigin {
    /// Index into [`PreparedBatch::messages`].
    pub message: usize,
    pub index: ItemIndex,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RejectedReading {
    pub origin: ReadingOrigin,
    pub rejection: Rejection,
}

/// What is kept of each message: enough to report it to SQS and to quarantine its readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    pub message_id: String,
    pub meta: EnvelopeMeta,
    pub original: OriginalPayload,
    /// Where the publisher's id stands in `meta.topic`: the topic is parsed once per message.
    publisher: Option<std::ops::Range<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginalPayload {
    /// The device's payload, base64-decoded from the envelope.
    Decoded(Vec<u8>),
    /// The SQS body itself, when it could not be decoded as an envelope.
    Undecoded(String),
}

/// A batch after decoding and validation. `readings` and `origins` are parallel vectors.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PreparedBatch {
    pub messages: Vec<MessageInfo>,
    pub readings: Vec<Reading>,
    pub origins: Vec<ReadingOrigin>,
    pub rejections: Vec<RejectedReading>,
}

/// Decode and validate every message of a batch, given as `(message_id, body)` pairs.
pub fn prepare_batch<'m>(
    messages: impl IntoIterator<Item = (&'m str, &'m str)>,
    window: TimeWindow,
) -> PreparedBatch {
    let mut batch = PreparedBatch::default();
    for (message, (message_id, body)) in messages.into_iter().enumerate() {
        let whole = ReadingOrigin {
            message,
            index: None,
        };
        let envelope = match decode_envelope(body) {
            Ok(envelope) => envelope,
            Err(rejected) => {
                batch.messages.push(MessageInfo {
                    message_id: message_id.to_owned(),
                    meta: rejected.meta,
                    original: OriginalPayload::Undecoded(body.to_owned()),
                    publisher: None,
                });
                batch.reject(whole, rejected.rejection);
                continue;
            }
        };
        let meta = EnvelopeMeta {
            topic: Some(envelope.topic),
            received_at_ms: Some(envelope.received_at_ms),
            client_id: envelope.client_id,
        };
        let topic = meta.topic.as_deref().unwrap_or_default();
        let mut publisher = None;
        match device_id_span(topic) {
            Err(rejection) => batch.reject(whole, rejection),
            Ok(span) => {
                let device = &topic[span.clone()];
                publisher = Some(span);
                let validated =
                    validate_payload(&envelope.payload, device, envelope.received_at_ms, window);
                for valid in validated.readings {
                    batch.readings.push(valid.reading);
                    batch.origins.push(ReadingOrigin {
                        message,
                        index: valid.index,
                    });
                }
                for (index, rejection) in validated.rejections {
                    batch.reject(ReadingOrigin { message, index }, rejection);
                }
            }
        }
        batch.messages.push(MessageInfo {
            message_id: message_id.to_owned(),
            meta,
            original: OriginalPayload::Decoded(envelope.payload),
            publisher,
        });
    }
    batch
}

impl MessageInfo {
    /// The device that published the message: the `<id>` of its topic, if it has one.
    pub fn publisher(&self) -> Option<&str> {
        let topic = self.meta.topic.as_deref()?;
        topic.get(self.publisher.clone()?)
    }
}

impl PreparedBatch {
    pub fn reject(&mut self, origin: ReadingOrigin, rejection: Rejection) {
        self.rejections.push(RejectedReading { origin, rejection });
    }

    /// Keep only the readings for which `keep(index, origin)` holds, keeping the vectors
    /// parallel. The origin is handed over so callers need no copy of `origins` to decide.
    pub fn retain_readings(&mut self, mut keep: impl FnMut(usize, &ReadingOrigin) -> bool) {
        let decisions: Vec<bool> = self
            .origins
            .iter()
            .enumerate()
            .map(|(i, origin)| keep(i, origin))
            .collect();
        let mut flags = decisions.iter();
        self.readings.retain(|_| *flags.next().unwrap_or(&false));
        let mut flags = decisions.iter();
        self.origins.retain(|_| *flags.next().unwrap_or(&false));
    }

    /// Order readings by series (device) then event time: the store's preferred write order,
    /// and chunks that share a device compress into `CommonAttributes`.
    pub fn sort_by_series(&mut self) {
        let mut rows: Vec<_> = std::mem::take(&mut self.readings)
            .into_iter()
            .zip(std::mem::take(&mut self.origins))
            .collect();
        rows.sort_by(|(a, _), (b, _)| {
            (a.device_id.as_str(), a.time_ms).cmp(&(b.device_id.as_str(), b.time_ms))
        });
        for (reading, origin) in rows {
            self.readings.push(reading);
            self.origins.push(origin);
        }
    }
}
