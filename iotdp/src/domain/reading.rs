//! The domain model: what a reading is once it has been validated. No AWS types here.

use crate::domain::place::{DeviceDimensions, LocationPath};

/// Longest device id: the IoT thing-name limit.
pub const MAX_DEVICE_ID_LEN: usize = 128;
/// Longest metric name (the contract: `^[A-Za-z][A-Za-z0-9_.-]{0,63}$`).
pub const MAX_METRIC_NAME_LEN: usize = 64;
/// Most metrics in one reading.
pub const MAX_METRICS_PER_READING: usize = 100;
/// Longest string value, in bytes.
pub const MAX_STRING_VALUE_BYTES: usize = 1024;

/// Names that stores use for dimensions or record fields. A metric may not take them,
/// because Timestream refuses a measure that shares its name with a dimension.
pub const RESERVED_METRIC_NAMES: &[&str] = &[
    "device_id",
    "device_type",
    "site",
    "zone",
    "section",
    "spot",
    "time",
    "measure_name",
    "seq",
];

/// One validated reading of one device at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub device_id: String,
    /// Event time, epoch milliseconds.
    pub time_ms: i64,
    /// Device-side sequence number, when the device sends one.
    pub seq: Option<u64>,
    pub metrics: Vec<Metric>,
    /// Write version: IoT Core's receive time in ms. A redelivered message carries the same
    /// version (an idempotent no-op in the store); a later correction carries a higher one and wins.
    pub version: i64,
    /// The device's type and place in the hierarchy, from the registry; `None` for an
    /// unregistered device accepted under the `accept` unknown-device policy.
    pub dimensions: Option<std::sync::Arc<DeviceDimensions>>,
}

impl Reading {
    /// A reading of `metrics` at `time_ms`: no sequence number, write version 1, no
    /// dimensions. Validation fills the fields one by one; tests and tools start from this.
    pub fn new<'a>(
        device_id: &str,
        time_ms: i64,
        metrics: impl IntoIterator<Item = (&'a str, MetricValue)>,
    ) -> Self {
        Self {
            device_id: device_id.to_owned(),
            time_ms,
            seq: None,
            metrics: metrics
                .into_iter()
                .map(|(name, value)| Metric {
                    name: name.to_owned(),
                    value,
                })
                .collect(),
            version: 1,
            dimensions: None,
        }
    }

    /// The same reading, of a registered device of `device_type` at `path`.
    pub fn with_place(mut self, device_type: &str, path: LocationPath) -> Self {
        self.dimensions = Some(std::sync::Arc::new(DeviceDimensions {
            device_type: device_type.to_owned(),
            path,
        }));
        self
    }

    pub fn with_version(mut self, version: i64) -> Self {
        self.version = version;
        self
    }

    pub fn with_seq(mut self, seq: u64) -> Self {
        self.seq = Some(seq);
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: MetricValue,
}

/// Numbers are always doubles, so `20` followed by `20.5` never conflict in the store.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    Number(f64),
    Bool(bool),
    Text(String),
}

/// `[A-Za-z0-9:_-]{1,128}`: the IoT thing-name alphabet.
pub fn is_valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_DEVICE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}

/// `^[A-Za-z][A-Za-z0-9_.-]{0,63}$`, and not a reserved name.
pub fn is_valid_metric_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_METRIC_NAME_LEN
        && bytes[0].is_ascii_alphabetic()
        && bytes[1..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

pub fn is_reserved_metric_name(name: &str) -> bool {
    RESERVED_METRIC_NAMES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_follow_the_thing_name_alphabet() {
        assert!(is_valid_device_id("ac-unit_7:livingroom"));
        assert!(is_valid_device_id(&"a".repeat(128)));
        assert!(!is_valid_device_id(""));
        assert!(!is_valid_device_id(&"a".repeat(129)));
        assert!(!is_valid_device_id("dev/1"));
        assert!(!is_valid_device_id("dev 1"));
        assert!(!is_valid_device_id("dév"));
    }

    #[test]
    fn metric_names_follow_the_contract() {
        assert!(is_valid_metric_name("temperature"));
        assert!(is_valid_metric_name("cell.3_voltage-avg"));
        assert!(is_valid_metric_name(&format!("a{}", "b".repeat(63))));
        assert!(!is_valid_metric_name(&format!("a{}", "b".repeat(64))));
        assert!(!is_valid_metric_name("3phase"));
        assert!(!is_valid_metric_name("_private"));
        assert!(!is_valid_metric_name("with space"));
        assert!(!is_valid_metric_name(""));
    }
}
