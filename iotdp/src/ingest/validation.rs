//! Payload → readings, or rejections with exactly one reason code each.
//!
//! Pure and synchronous. The JSON is read into lenient borrowed shapes that never fail on a
//! wrong type (only on broken syntax), so every problem is classified by the rules below rather
//! than by whatever serde happened to trip over first.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::domain::reason::{ReasonCode, Rejection};
use crate::domain::{
    MAX_METRICS_PER_READING, MAX_STRING_VALUE_BYTES, Metric, MetricValue, Reading,
    is_reserved_metric_name, is_valid_device_id, is_valid_metric_name,
};

/// Most readings in one gateway batch.
pub const MAX_READINGS_PER_BATCH: usize = 1000;
/// Earliest accepted event time (2000-01-01T00:00:00Z): anything earlier is almost always a
/// device sending epoch *seconds* where milliseconds are expected.
pub const EARLIEST_TIMESTAMP_MS: i64 = 946_684_800_000;

/// Time bounds a reading must fall within, relative to IoT Core's receive time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// How far past the receive time an event may be (clock skew): 5 minutes by contract.
    pub max_future_ms: i64,
    /// How far before the receive time an event may be: the table's magnetic-store retention.
    /// Timestream would reject older records anyway; rejecting here gives the precise reason.
    pub max_age_ms: i64,
}

impl TimeWindow {
    pub fn with_retention_days(days: u32) -> Self {
        Self {
            max_future_ms: 5 * 60 * 1000,
            max_age_ms: i64::from(days) * 86_400_000,
        }
    }
}

/// Where a reading sat in its payload: `None` for a single-reading payload (or a rejection of
/// the whole payload), `Some(i)` for item `i` of a gateway batch.
pub type ItemIndex = Option<usize>;

/// A valid reading, and whether it names a device other than the topic's (a gateway claim
/// that the registry must allow before it is written, see `devices::admission`).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidReading {
    pub index: ItemIndex,
    pub reading: Reading,
    pub needs_authorization: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ValidatedPayload {
    pub readings: Vec<ValidReading>,
    pub rejections: Vec<(ItemIndex, Rejection)>,
}

/// Validate one publish from `topic_device`, received at `received_at_ms`.
pub fn validate_payload(
    payload: &[u8],
    topic_device: &str,
    received_at_ms: i64,
    window: TimeWindow,
) -> ValidatedPayload {
    let mut out = ValidatedPayload::default();
    let top = match parse_object(payload) {
        Ok(top) => top,
        Err(rejection) => {
            out.rejections.push((None, rejection));
            return out;
        }
    };
    let ctx = ReadingContext {
        topic_device,
        received_at_ms,
        window,
    };
    let Some(items) = top.readings else {
        match ctx.reading(top) {
            Ok(valid) => out.readings.push(valid.at(None)),
            Err(rejection) => out.rejections.push((None, rejection)),
        }
        return out;
    };
    let whole = |reason, detail: &str| (None, Rejection::new(reason, detail));
    let items = match items {
        RawItems::Items(items) => items,
        RawItems::NotAnArray => {
            out.rejections.push(whole(
                ReasonCode::NotAnObject,
                "'readings' must be an array of reading objects",
            ));
            return out;
        }
    };
    if top.metrics.is_some() {
        out.rejections.push(whole(
            ReasonCode::InvalidValue,
            "payload has both 'readings' and 'metrics': send a single reading or a gateway batch",
        ));
    } else if items.is_empty() {
        out.rejections.push(whole(
            ReasonCode::MissingMetrics,
            "'readings' is empty: a gateway batch needs at least one reading",
        ));
    } else if items.len() > MAX_READINGS_PER_BATCH {
        out.rejections.push((
            None,
            Rejection::new(
                ReasonCode::TooManyReadings,
                format!(
                    "gateway batch has {} readings; the limit is {MAX_READINGS_PER_BATCH}: split it",
                    items.len()
                ),
            ),
        ));
    } else {
        out.readings.reserve(items.len());
        for (i, item) in items.iter().enumerate() {
            let result = parse_object(item.get().as_bytes()).and_then(|raw| {
                if raw.readings.is_some() {
                    return Err(Rejection::new(
                        ReasonCode::InvalidValue,
                        "a gateway batch item may not contain 'readings' (no nesting)",
                    ));
                }
                ctx.reading(raw)
            });
            match result {
                Ok(valid) => out.readings.push(valid.at(Some(i))),
                Err(rejection) => out.rejections.push((Some(i), rejection)),
            }
        }
    }
    out
}

/// The raw JSON text of each gateway item, for quarantine lines (rejection path only).
pub fn gateway_item_texts(payload: &[u8]) -> Vec<&str> {
    #[derive(Deserialize)]
    struct Items<'a> {
        #[serde(borrow)]
        readings: Vec<&'a RawValue>,
    }
    serde_json::from_slice::<Items<'_>>(payload)
        .map(|items| items.readings.into_iter().map(RawValue::get).collect())
        .unwrap_or_default()
}

struct ReadingContext<'t> {
    topic_device: &'t str,
    received_at_ms: i64,
    window: TimeWindow,
}

struct Accepted {
    reading: Reading,
    needs_authorization: bool,
}

impl Accepted {
    fn at(self, index: ItemIndex) -> ValidReading {
        ValidReading {
            index,
            reading: self.reading,
            needs_authorization: self.needs_authorization,
        }
    }
}

impl ReadingContext<'_> {
    /// Checks run in a fixed order, so a reading with several faults always gets the same code:
    /// device, metrics, sequence number, timestamp.
    fn reading(&self, raw: RawReading<'_>) -> Result<Accepted, Rejection> {
        let (device_id, needs_authorization) = match raw.device_id {
            None => (self.topic_device.to_owned(), false),
            Some(Scalar::Str(id)) if is_valid_device_id(&id) => {
                let other = *id != *self.topic_device;
                (id.into_owned(), other)
            }
            Some(other) => {
                return Err(Rejection::new(
                    ReasonCode::InvalidDeviceId,
                    format!(
                        "device_id {} must be 1-128 characters of [A-Za-z0-9:_-]",
                        other.describe()
                    ),
                ));
            }
        };
        let metrics = metrics(raw.metrics)?;
        let seq = match raw.seq {
            None => None,
            Some(Scalar::U64(seq)) => Some(seq),
            Some(other) => {
                return Err(Rejection::new(
                    ReasonCode::InvalidValue,
                    format!("seq must be an unsigned integer, got {}", other.describe()),
                ));
            }
        };
        let time_ms = self.event_time(raw.ts)?;
        Ok(Accepted {
            reading: Reading {
                device_id,
                time_ms,
                seq,
                metrics,
                version: self.received_at_ms,
                dimensions: None,
            },
            needs_authorization,
        })
    }

    fn event_time(&self, ts: Option<Scalar<'_>>) -> Result<i64, Rejection> {
        let invalid = |what: String| {
            Rejection::new(
                ReasonCode::InvalidTimestamp,
                format!(
                    "ts must be epoch milliseconds (integer) or an RFC 3339 string, got {what}"
                ),
            )
        };
        let time_ms = match ts {
            None => return Ok(self.received_at_ms),
            Some(Scalar::U64(ms)) => i64::try_from(ms).map_err(|_| invalid(ms.to_string()))?,
            Some(Scalar::Str(text)) => chrono::DateTime::parse_from_rfc3339(&text)
                .map_err(|e| invalid(format!("'{text}' ({e})")))?
                .timestamp_millis(),
            Some(other) => return Err(invalid(other.describe())),
        };
        if time_ms < EARLIEST_TIMESTAMP_MS {
            return Err(Rejection::new(
                ReasonCode::InvalidTimestamp,
                format!(
                    "ts {time_ms} is before 2000-01-01; ts is epoch milliseconds (was it sent in seconds?)"
                ),
            ));
        }
        let ahead = time_ms - self.received_at_ms;
        if ahead > self.window.max_future_ms {
            return Err(Rejection::new(
                ReasonCode::TimestampInFuture,
                format!(
                    "ts is {ahead} ms after IoT Core received it; at most {} ms is allowed: check the device clock",
                    self.window.max_future_ms
                ),
            ));
        }
        let age = self.received_at_ms - time_ms;
        if age > self.window.max_age_ms {
            return Err(Rejection::new(
                ReasonCode::TimestampTooOld,
                format!(
                    "ts is {} days before IoT Core received it; the table keeps {} days",
                    age / 86_400_000,
                    self.window.max_age_ms / 86_400_000
                ),
            ));
        }
        Ok(time_ms)
    }
}

fn metrics(raw: Option<RawMetrics<'_>>) -> Result<Vec<Metric>, Rejection> {
    let entries = match raw {
        None => {
            return Err(Rejection::new(
                ReasonCode::MissingMetrics,
                "reading has no 'metrics' object",
            ));
        }
        Some(RawMetrics::NotAnObject(kind)) => {
            return Err(Rejection::new(
                ReasonCode::MissingMetrics,
                format!("'metrics' must be an object of name → value, got {kind}"),
            ));
        }
        Some(RawMetrics::Entries(entries)) => entries,
    };
    if entries.is_empty() {
        return Err(Rejection::new(
            ReasonCode::EmptyMetrics,
            "'metrics' is empty: send at least one metric",
        ));
    }
    if entries.len() > MAX_METRICS_PER_READING {
        return Err(Rejection::new(
            ReasonCode::TooManyMetrics,
            format!(
                "reading has {} metrics; the limit is {MAX_METRICS_PER_READING}",
                entries.len()
            ),
        ));
    }
    let mut metrics = Vec::with_capacity(entries.len());
    for (CowStr(name), value) in entries {
        if !is_valid_metric_name(&name) {
            return Err(Rejection::new(
                ReasonCode::InvalidMetricName,
                format!(
                    "metric name '{}' must match ^[A-Za-z][A-Za-z0-9_.-]{{0,63}}$",
                    name.escape_debug()
                ),
            ));
        }
        if is_reserved_metric_name(&name) {
            return Err(Rejection::new(
                ReasonCode::InvalidMetricName,
                format!("metric name '{name}' is reserved for a dimension or record field"),
            ));
        }
        if metrics.iter().any(|m: &Metric| m.name == *name) {
            return Err(Rejection::new(
                ReasonCode::InvalidMetricName,
                format!("metric '{name}' appears twice"),
            ));
        }
        let value = metric_value(&name, value)?;
        metrics.push(Metric {
            name: name.into_owned(),
            value,
        });
    }
    Ok(metrics)
}

fn metric_value(name: &str, value: Scalar<'_>) -> Result<MetricValue, Rejection> {
    let invalid = |why: String| {
        Rejection::new(
            ReasonCode::InvalidValue,
            format!(
                "metric '{name}': {why}; values are finite numbers, booleans or strings up to {MAX_STRING_VALUE_BYTES} bytes"
            ),
        )
    };
    match value {
        Scalar::F64(v) => Ok(MetricValue::Number(v)),
        Scalar::U64(v) => Ok(MetricValue::Number(v as f64)),
        Scalar::I64(v) => Ok(MetricValue::Number(v as f64)),
        Scalar::Bool(b) => Ok(MetricValue::Bool(b)),
        Scalar::Str(s) if s.is_empty() => Err(invalid("empty string".into())),
        Scalar::Str(s) if s.len() > MAX_STRING_VALUE_BYTES => {
            Err(invalid(format!("string of {} bytes", s.len())))
        }
        Scalar::Str(s) => Ok(MetricValue::Text(s.into_owned())),
        other => Err(invalid(other.describe())),
    }
}

/// Parse an object, telling broken syntax (`malformed_json`) from valid non-objects
/// (`not_an_object`).
fn parse_object(bytes: &[u8]) -> Result<RawReading<'_>, Rejection> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        serde_json::from_slice(bytes).map_err(malformed)
    } else {
        match serde_json::from_slice::<IgnoredAny>(bytes) {
            Ok(_) => Err(Rejection::new(
                ReasonCode::NotAnObject,
                "a reading must be a JSON object like {\"metrics\": {...}}",
            )),
            Err(e) => Err(malformed(e)),
        }
    }
}

fn malformed(e: serde_json::Error) -> Rejection {
    Rejection::new(
        ReasonCode::MalformedJson,
        format!("payload is not valid JSON: {e}"),
    )
}

// ---- Lenient borrowed JSON shapes ----------------------------------------------------------

#[derive(Deserialize)]
struct RawReading<'a> {
    #[serde(borrow, default)]
    device_id: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    ts: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    seq: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    metrics: Option<RawMetrics<'a>>,
    #[serde(borrow, default)]
    readings: Option<RawItems<'a>>,
}

/// Any JSON value: scalars kept (strings borrowed when unescaped), containers only named.
enum Scalar<'a> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl Scalar<'_> {
    fn describe(&self) -> String {
        match self {
            Scalar::Null => "null".into(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::U64(v) => v.to_string(),
            Scalar::I64(v) => v.to_string(),
            Scalar::F64(v) => v.to_string(),
            Scalar::Str(s) => format!("'{}'", s.escape_debug()),
            Scalar::Array => "an array".into(),
            Scalar::Object => "an object".into(),
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::U64(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::I64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::F64(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// A map key, borrowed from the input unless it had escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Scalar::deserialize(d)? {
            Scalar::Str(s) => Ok(CowStr(s)),
            _ => Err(de::Error::custom("object keys are strings")),
        }
    }
}

enum RawMetrics<'a> {
    Entries(Vec<(CowStr<'a>, Scalar<'a>)>),
    NotAnObject(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for RawMetrics<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MetricsVisitor;
        impl<'de> Visitor<'de> for MetricsVisitor {
            type Value = RawMetrics<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of metrics")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(RawMetrics::Entries(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                ScalarVisitor.visit_seq(seq)?;
                Ok(RawMetrics::NotAnObject("an array"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RawMetrics::NotAnObject("a boolean"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(RawMetrics::NotAnObject("a number"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(RawMetrics::NotAnObject("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RawMetrics::NotAnObject("a number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(RawMetrics::NotAnObject("a string"))
            }
        }
        d.deserialize_any(MetricsVisitor)
    }
}

enum RawItems<'a> {
    Items(Vec<&'a RawValue>),
    NotAnArray,
}

impl<'de: 'a, 'a> Deserialize<'de> for RawItems<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ItemsVisitor;
        impl<'de> Visitor<'de> for ItemsVisitor {
            type Value = RawItems<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of readings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(16));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(RawItems::Items(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                ScalarVisitor.visit_map(map)?;
                Ok(RawItems::NotAnArray)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RawItems::NotAnArray)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(RawItems::NotAnArray)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(RawItems::NotAnArray)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RawItems::NotAnArray)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(RawItems::NotAnArray)
            }
        }
        d.deserialize_any(ItemsVisitor)
    }
}
