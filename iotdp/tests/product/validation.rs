//! The device contract: every reason code, and what a valid payload becomes.

use iotdp::domain::MetricValue;
use iotdp::domain::reason::ReasonCode;
use iotdp::ingest::validation::{TimeWindow, ValidatedPayload, validate_payload};

const RECEIVED: i64 = 1_764_000_000_000; // 2025-11-24T16:00:00Z

fn validate(payload: &str) -> ValidatedPayload {
    validate_payload(
        payload.as_bytes(),
        "dev-1",
        RECEIVED,
        TimeWindow::with_retention_days(365),
    )
}

/// The single reason of a payload that must be rejected whole.
fn reason(payload: &str) -> ReasonCode {
    let out = validate(payload);
    assert!(out.readings.is_empty(), "accepted: {payload}");
    assert_eq!(out.rejections.len(), 1, "{payload}: {:?}", out.rejections);
    out.rejections[0].1.reason
}

#[test]
fn a_single_reading_becomes_one_reading_of_the_topic_device() {
    let out = validate(
        r#"{"ts": 1764000000123, "seq": 42, "metrics": {"temperature": 21.4, "door_open": false, "mode": "eco", "fan": 3}}"#,
    );
    assert!(out.rejections.is_empty());
    let reading = &out.readings[0].reading;
    assert_eq!(reading.device_id, "dev-1");
    assert_eq!(reading.time_ms, 1_764_000_000_123);
    assert_eq!(reading.seq, Some(42));
    assert_eq!(reading.version, RECEIVED);
    let values: Vec<_> = reading
        .metrics
        .iter()
        .map(|m| (m.name.as_str(), m.value.clone()))
        .collect();
    assert_eq!(
        values,
        vec![
            ("temperature", MetricValue::Number(21.4)),
            ("door_open", MetricValue::Bool(false)),
            ("mode", MetricValue::Text("eco".into())),
            // Integers are stored as doubles, so 20 then 20.5 never conflict.
            ("fan", MetricValue::Number(3.0)),
        ]
    );
    assert!(!out.readings[0].needs_authorization);
}

#[test]
fn ts_defaults_to_the_receive_time_and_accepts_rfc3339() {
    assert_eq!(
        validate(r#"{"metrics":{"t":1}}"#).readings[0]
            .reading
            .time_ms,
        RECEIVED
    );
    let out = validate(r#"{"ts":"2025-11-24T15:59:00.500+01:00","metrics":{"t":1}}"#);
    assert_eq!(
        out.readings[0].reading.time_ms,
        RECEIVED - 3_600_000 - 59_500
    );
    let out = validate(r#"{"ts":"2025-11-24T16:00:00Z","metrics":{"t":1}}"#);
    assert_eq!(out.readings[0].reading.time_ms, RECEIVED);
}

#[test]
fn malformed_json() {
    assert_eq!(reason(r#"{"metrics": {"t": 1"#), ReasonCode::MalformedJson);
    assert_eq!(reason("\u{1}garbage"), ReasonCode::MalformedJson);
    assert_eq!(
        reason(r#"{"metrics": {"t": NaN}}"#),
        ReasonCode::MalformedJson
    );
    assert_eq!(reason(""), ReasonCode::MalformedJson);
}

#[test]
fn not_an_object() {
    assert_eq!(reason("[1,2]"), ReasonCode::NotAnObject);
    assert_eq!(reason("42"), ReasonCode::NotAnObject);
    assert_eq!(reason(r#""hello""#), ReasonCode::NotAnObject);
    assert_eq!(reason(r#"{"readings": 5}"#), ReasonCode::NotAnObject);
}

#[test]
fn invalid_device_id() {
    assert_eq!(
        reason(r#"{"device_id":"a b","metrics":{"t":1}}"#),
        ReasonCode::InvalidDeviceId
    );
    assert_eq!(
        reason(r#"{"device_id":7,"metrics":{"t":1}}"#),
        ReasonCode::InvalidDeviceId
    );
}

#[test]
fn missing_empty_and_too_many_metrics() {
    assert_eq!(
        reason(r#"{"ts": 1764000000000}"#),
        ReasonCode::MissingMetrics
    );
    assert_eq!(reason(r#"{"metrics": [1]}"#), ReasonCode::MissingMetrics);
    assert_eq!(reason(r#"{"metrics": {}}"#), ReasonCode::EmptyMetrics);
    let metrics = |n: usize| {
        let body: Vec<String> = (0..n).map(|i| format!("\"m{i}\":{i}")).collect();
        format!("{{\"metrics\":{{{}}}}}", body.join(","))
    };
    assert_eq!(validate(&metrics(100)).readings.len(), 1);
    assert_eq!(reason(&metrics(101)), ReasonCode::TooManyMetrics);
}

#[test]
fn invalid_metric_name() {
    for name in [
        "9lives",
        "with space",
        "",
        "_x",
        "ünïcode",
        "device_id",
        "seq",
    ] {
        let payload = format!("{{\"metrics\":{{\"{name}\":1}}}}");
        assert_eq!(reason(&payload), ReasonCode::InvalidMetricName, "{name}");
    }
    assert_eq!(
        reason(&format!("{{\"metrics\":{{\"a{}\":1}}}}", "b".repeat(64))),
        ReasonCode::InvalidMetricName
    );
    assert_eq!(
        reason(r#"{"metrics":{"t":1,"t":2}}"#),
        ReasonCode::InvalidMetricName
    );
}

#[test]
fn invalid_value() {
    for value in [
        "null",
        "[1]",
        "{\"a\":1}",
        "\"\"",
        &format!("\"{}\"", "x".repeat(1025)),
    ] {
        let payload = format!("{{\"metrics\":{{\"t\":{value}}}}}");
        assert_eq!(reason(&payload), ReasonCode::InvalidValue, "{value}");
    }
    assert_eq!(
        validate(&format!(
            "{{\"metrics\":{{\"t\":\"{}\"}}}}",
            "x".repeat(1024)
        ))
        .readings
        .len(),
        1
    );
    assert_eq!(
        reason(r#"{"seq":-1,"metrics":{"t":1}}"#),
        ReasonCode::InvalidValue
    );
    assert_eq!(
        reason(r#"{"readings":[],"metrics":{"t":1}}"#),
        ReasonCode::InvalidValue
    );
}

#[test]
fn invalid_timestamp() {
    for ts in [
        "-5",
        "1.5e12",
        "true",
        "\"yesterday\"",
        "\"2025-13-01T00:00:00Z\"",
        "1764000000",
    ] {
        let payload = format!("{{\"ts\":{ts},\"metrics\":{{\"t\":1}}}}");
        assert_eq!(reason(&payload), ReasonCode::InvalidTimestamp, "{ts}");
    }
}

#[test]
fn timestamps_in_the_future_and_too_old() {
    let at = |ts: i64| format!("{{\"ts\":{ts},\"metrics\":{{\"t\":1}}}}");
    assert_eq!(validate(&at(RECEIVED + 300_000)).readings.len(), 1);
    assert_eq!(
        reason(&at(RECEIVED + 300_001)),
        ReasonCode::TimestampInFuture
    );
    let year = 365 * 86_400_000;
    assert_eq!(validate(&at(RECEIVED - year)).readings.len(), 1);
    assert_eq!(
        reason(&at(RECEIVED - year - 1)),
        ReasonCode::TimestampTooOld
    );
}

#[test]
fn gateway_batches_keep_good_items_and_reject_bad_ones_one_by_one() {
    let out = validate(
        r#"{"readings":[
            {"metrics":{"moisture":0.31}},
            {"device_id":"spot-7","ts":1764000000000,"metrics":{"moisture":0.28}},
            {"metrics":{}},
            "nope",
            {"metrics":{"moisture":"x","bad name":1}},
            {"ts":"soon","metrics":{"m":1}}
        ]}"#,
    );
    let accepted: Vec<_> = out
        .readings
        .iter()
        .map(|r| (r.index, r.reading.device_id.as_str(), r.needs_authorization))
        .collect();
    assert_eq!(
        accepted,
        vec![(Some(0), "dev-1", false), (Some(1), "spot-7", true)]
    );
    let rejected: Vec<_> = out.rejections.iter().map(|(i, r)| (*i, r.reason)).collect();
    assert_eq!(
        rejected,
        vec![
            (Some(2), ReasonCode::EmptyMetrics),
            (Some(3), ReasonCode::NotAnObject),
            (Some(4), ReasonCode::InvalidMetricName),
            (Some(5), ReasonCode::InvalidTimestamp),
        ]
    );
}

#[test]
fn too_many_readings() {
    let item = r#"{"metrics":{"t":1}}"#;
    let batch = |n: usize| format!("{{\"readings\":[{}]}}", vec![item; n].join(","));
    assert_eq!(validate(&batch(1000)).readings.len(), 1000);
    assert_eq!(reason(&batch(1001)), ReasonCode::TooManyReadings);
}

#[test]
fn every_rejection_says_what_to_fix() {
    let out = validate(r#"{"ts":"soon","metrics":{"t":1}}"#);
    let detail = &out.rejections[0].1.detail;
    assert!(
        detail.contains("RFC 3339") && detail.contains("soon"),
        "{detail}"
    );
}
