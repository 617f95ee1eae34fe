//! A whole SQS batch: envelopes, topics, and where each reading came from.

use iotdp::domain::reason::ReasonCode;
use iotdp::ingest::batch::{OriginalPayload, prepare_batch};
use iotdp::ingest::envelope::encode_envelope;
use iotdp::ingest::validation::TimeWindow;

const RECEIVED: i64 = 1_764_000_000_000;

#[test]
fn readings_keep_their_message_and_item_index() {
    let a = encode_envelope(
        br#"{"metrics":{"t":1}}"#,
        "dt/a/telemetry",
        RECEIVED,
        Some("a"),
    );
    let b = encode_envelope(
        br#"{"readings":[{"metrics":{"t":2}},{"metrics":{}}]}"#,
        "dt/gw/telemetry",
        RECEIVED,
        Some("gw"),
    );
    let c = "not an envelope".to_owned();
    let d = encode_envelope(
        br#"{"metrics":{"t":1}}"#,
        "dt/bad id/telemetry",
        RECEIVED,
        None,
    );
    let batch = prepare_batch(
        [
            ("m-a", a.as_str()),
            ("m-b", b.as_str()),
            ("m-c", c.as_str()),
            ("m-d", d.as_str()),
        ],
        TimeWindow::with_retention_days(365),
    );
    assert_eq!(batch.messages.len(), 4);
    let origins: Vec<_> = batch.origins.iter().map(|o| (o.message, o.index)).collect();
    assert_eq!(origins, vec![(0, None), (1, Some(0))]);
    assert_eq!(batch.readings[1].device_id, "gw");
    let rejected: Vec<_> = batch
        .rejections
        .iter()
        .map(|r| (r.origin.message, r.origin.index, r.rejection.reason))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (1, Some(1), ReasonCode::EmptyMetrics),
            (2, None, ReasonCode::MalformedJson),
            (3, None, ReasonCode::InvalidDeviceId),
        ]
    );
    assert_eq!(
        batch.messages[2].original,
        OriginalPayload::Undecoded(c.clone())
    );
    assert_eq!(batch.messages[1].meta.client_id.as_deref(), Some("gw"));
}

#[test]
fn sorting_by_series_keeps_origins_aligned() {
    let bodies: Vec<String> = [("z", 3), ("a", 2), ("z", 1), ("a", 1)]
        .iter()
        .map(|(device, offset)| {
            let payload = format!(
                "{{\"ts\":{},\"metrics\":{{\"o\":{offset}}}}}",
                RECEIVED - offset
            );
            encode_envelope(
                payload.as_bytes(),
                &iotdp::domain::topic::telemetry_topic(device),
                RECEIVED,
                None,
            )
        })
        .collect();
    let ids = ["0", "1", "2", "3"];
    let mut batch = prepare_batch(
        ids.iter().copied().zip(bodies.iter().map(String::as_str)),
        TimeWindow::with_retention_days(365),
    );
    batch.sort_by_series();
    let order: Vec<_> = batch
        .readings
        .iter()
        .zip(&batch.origins)
        .map(|(r, o)| (r.device_id.as_str(), r.time_ms, o.message))
        .collect();
    assert_eq!(
        order,
        vec![
            ("a", RECEIVED - 2, 1),
            ("a", RECEIVED - 1, 3),
            ("z", RECEIVED - 3, 0),
            ("z", RECEIVED - 1, 2)
        ]
    );
}
