//! The IoT rule envelope: what the topic rule puts on the ingest queue.
//!
//! The rule (`infra/ingest-rule.sql`) base64-encodes the payload, so even broken JSON reaches
//! the function and gets a reason code instead of vanishing at the rule.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use crate::domain::reason::{ReasonCode, Rejection};

/// IoT Core's own message size limit; anything larger cannot have come from a device.
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;

/// One decoded SQS message: a device's publish and what IoT Core knew about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleEnvelope {
    pub payload: Vec<u8>,
    pub topic: String,
    pub received_at_ms: i64,
    pub client_id: Option<String>,
}

/// What is known of a message whose envelope could not be fully decoded, for its quarantine line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvelopeMeta {
    pub topic: Option<String>,
    pub received_at_ms: Option<i64>,
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeRejection {
    pub rejection: Rejection,
    pub meta: EnvelopeMeta,
}

#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow)]
    payload: Cow<'a, str>,
    #[serde(borrow)]
    topic: Cow<'a, str>,
    received_at: i64,
    #[serde(borrow, default)]
    client_id: Option<Cow<'a, str>>,
}

/// SQS body → envelope. A body that is not an envelope (someone sent straight to the queue)
/// is rejected as `malformed_json`; a payload over 128 KiB as `payload_too_large`.
pub fn decode_envelope(body: &str) -> Result<RuleEnvelope, EnvelopeRejection> {
    let raw: RawEnvelope<'_> = serde_json::from_str(body).map_err(|e| EnvelopeRejection {
        rejection: Rejection::new(
            ReasonCode::MalformedJson,
            format!(
                "SQS message body is not an IoT rule envelope {{payload, topic, received_at}}: {e}"
            ),
        ),
        meta: EnvelopeMeta::default(),
    })?;
    let meta = || EnvelopeMeta {
        topic: Some(raw.topic.to_string()),
        received_at_ms: Some(raw.received_at),
        client_id: raw.client_id.as_deref().map(str::to_owned),
    };
    // Reject on the encoded length before decoding: no allocation for oversized input.
    if raw.payload.len() > MAX_PAYLOAD_BYTES.div_ceil(3) * 4 {
        return Err(EnvelopeRejection {
            rejection: too_large(raw.payload.len() / 4 * 3),
            meta: meta(),
        });
    }
    let payload = BASE64
        .decode(raw.payload.as_bytes())
        .map_err(|e| EnvelopeRejection {
            rejection: Rejection::new(
                ReasonCode::MalformedJson,
                format!("envelope payload is not valid base64: {e}"),
            ),
            meta: meta(),
        })?;
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(EnvelopeRejection {
            rejection: too_large(payload.len()),
            meta: meta(),
        });
    }
    Ok(RuleEnvelope {
        payload,
        topic: raw.topic.into_owned(),
        received_at_ms: raw.received_at,
        client_id: raw.client_id.map(Cow::into_owned),
    })
}

fn too_large(bytes: usize) -> Rejection {
    Rejection::new(
        ReasonCode::PayloadTooLarge,
        format!("payload is {bytes} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes (128 KiB)"),
    )
}

/// The envelope the topic rule produces, for tests, the simulator and the local IoT stand-in.
pub fn encode_envelope(
    payload: &[u8],
    topic: &str,
    received_at_ms: i64,
    client_id: Option<&str>,
) -> String {
    serde_json::json!({
        "payload": BASE64.encode(payload),
        "topic": topic,
        "received_at": received_at_ms,
        "client_id": client_id,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips() {
        let body = encode_envelope(b"{\"metrics\":{}}", "dt/a/telemetry", 42, Some("a"));
        let env = decode_envelope(&body).unwrap();
        assert_eq!(env.payload, b"{\"metrics\":{}}");
        assert_eq!(env.topic, "dt/a/telemetry");
        assert_eq!(env.received_at_ms, 42);
        assert_eq!(env.client_id.as_deref(), Some("a"));
    }

    #[test]
    fn a_body_that_is_not_an_envelope_is_malformed_json() {
        let err = decode_envelope("{\"metrics\":{\"t\":1}}").unwrap_err();
        assert_eq!(err.rejection.reason, ReasonCode::MalformedJson);
        assert!(err.rejection.detail.contains("envelope"));
    }

    #[test]
    fn bad_base64_is_malformed_json_and_keeps_the_topic() {
        let err = decode_envelope(
            r#"{"payload":"!!notbase64","topic":"dt/a/telemetry","received_at":1}"#,
        )
        .unwrap_err();
        assert_eq!(err.rejection.reason, ReasonCode::MalformedJson);
        assert_eq!(err.meta.topic.as_deref(), Some("dt/a/telemetry"));
    }

    #[test]
    fn payloads_over_128_kib_are_too_large() {
        let big = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        let err = decode_envelope(&encode_envelope(&big, "dt/a/telemetry", 1, None)).unwrap_err();
        assert_eq!(err.rejection.reason, ReasonCode::PayloadTooLarge);
        let exact = vec![b' '; MAX_PAYLOAD_BYTES];
        assert!(decode_envelope(&encode_envelope(&exact, "dt/a/telemetry", 1, None)).is_ok());
    }
}
