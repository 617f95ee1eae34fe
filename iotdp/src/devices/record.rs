//! The registry record of one device, and the rules its fields follow. Pure.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::{
    DeviceDimensions, LocationPath, MetricValue, RecordError, is_valid_device_id, is_valid_label,
};

/// Most free-form tags per device.
pub const MAX_TAGS: usize = 20;
/// Longest silence a heartbeat may promise: a week (gateways batch hours; nothing needs more).
pub const MAX_HEARTBEAT_SECONDS: u32 = 7 * 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Active,
    Suspended,
    Decommissioned,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Active => "active",
            DeviceStatus::Suspended => "suspended",
            DeviceStatus::Decommissioned => "decommissioned",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(DeviceStatus::Active),
            "suspended" => Some(DeviceStatus::Suspended),
            "decommissioned" => Some(DeviceStatus::Decommissioned),
            _ => None,
        }
    }
}

/// A registered device as the ingest path keeps it: the record and the dimensions its
/// readings carry, built once.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownDevice {
    pub record: DeviceRecord,
    pub dimensions: Arc<DeviceDimensions>,
}

impl From<DeviceRecord> for KnownDevice {
    fn from(record: DeviceRecord) -> Self {
        let dimensions = record.dimensions();
        Self { record, dimensions }
    }
}

/// A metric's latest value as the registry keeps it, written with `last_seen` (at most once
/// per interval): a store without an index of latest values (the lake) answers from it and
/// the few hours of readings after it, never from a scan.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestValue {
    /// The reading's event time.
    pub time_ms: i64,
    pub value: MetricValue,
}

/// What ingest writes with a `last_seen`: each metric's latest value in the batch, and the
/// time by which every reading the snapshot lacks was received (`last_seen` plus the write
/// interval: a reading received later writes `last_seen` again).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatestUpdate {
    pub values: Vec<(String, LatestValue)>,
    pub tail_until_ms: Option<i64>,
}

/// One device in the registry.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRecord {
    /// The IoT thing name, and the `<id>` of the device's topics.
    pub device_id: String,
    pub device_type: String,
    pub status: DeviceStatus,
    /// The gateway allowed to report for this device.
    pub gateway_id: Option<String>,
    pub path: LocationPath,
    pub tags: BTreeMap<String, String>,
    /// Longest expected silence; `None`: the device is not watched for `no_data`.
    pub heartbeat_seconds: Option<u32>,
    pub created_at_ms: i64,
    /// IoT Core's receive time of the latest stored reading (written at most once a minute).
    pub last_seen_ms: Option<i64>,
    pub connected: bool,
    pub last_connected_ms: Option<i64>,
    pub last_disconnected_ms: Option<i64>,
    /// The silence deadline as the registry holds it (`watch_at`), so a fresh ingest instance
    /// knows which deadlines are current instead of rewriting every one.
    pub watch_at_ms: Option<i64>,
    /// Each metric's latest value as of the last `last_seen` write ([`LatestValue`]).
    pub latest: BTreeMap<String, LatestValue>,
    /// Readings newer than `latest` were all received by then ([`LatestUpdate`]).
    pub latest_tail_until_ms: Option<i64>,
}

impl DeviceRecord {
    /// A new, active device with only the fields an operator gives.
    pub fn new(device_id: &str, device_type: &str, created_at_ms: i64) -> Self {
        Self {
            device_id: device_id.to_owned(),
            device_type: device_type.to_owned(),
            status: DeviceStatus::Active,
            gateway_id: None,
            path: LocationPath::default(),
            tags: BTreeMap::new(),
            heartbeat_seconds: None,
            created_at_ms,
            last_seen_ms: None,
            connected: false,
            last_connected_ms: None,
            last_disconnected_ms: None,
            watch_at_ms: None,
            latest: BTreeMap::new(),
            latest_tail_until_ms: None,
        }
    }

    /// Every operator-given field follows its rule; the error names the field.
    pub fn validate(&self) -> Result<(), RecordError> {
        if !is_valid_device_id(&self.device_id) {
            return Err(RecordError::new(
                "device_id",
                format!(
                    "'{}' must be 1-128 characters of A-Z a-z 0-9 : _ - (an IoT thing name)",
                    self.device_id
                ),
            ));
        }
        if !is_valid_label(&self.device_type) {
            return Err(RecordError::new(
                "device_type",
                format!(
                    "'{}' must be 1-64 characters of A-Z a-z 0-9 _ . : -",
                    self.device_type
                ),
            ));
        }
        if let Some(gateway) = &self.gateway_id {
            if !is_valid_device_id(gateway) {
                return Err(RecordError::new(
                    "gateway_id",
                    format!("'{gateway}' is not a valid device id"),
                ));
            }
            if gateway == &self.device_id {
                return Err(RecordError::new(
                    "gateway_id",
                    "a device is its own gateway already; leave gateway_id empty",
                ));
            }
        }
        if let Some(h) = self.heartbeat_seconds
            && !(60..=MAX_HEARTBEAT_SECONDS).contains(&h)
        {
            return Err(RecordError::new(
                "heartbeat_seconds",
                format!(
                    "{h} is outside 60..={MAX_HEARTBEAT_SECONDS} (the watch runs once a minute)"
                ),
            ));
        }
        if self.tags.len() > MAX_TAGS {
            return Err(RecordError::new(
                "tags",
                format!("{} tags; at most {MAX_TAGS}", self.tags.len()),
            ));
        }
        for (key, value) in &self.tags {
            if !is_valid_label(key) || value.is_empty() || value.chars().count() > 256 {
                return Err(RecordError::new(
                    "tags",
                    format!(
                        "tag '{key}={value}': keys are 1-64 characters of A-Z a-z 0-9 _ . : -, values 1-256 characters"
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn dimensions(&self) -> Arc<DeviceDimensions> {
        Arc::new(DeviceDimensions {
            device_type: self.device_type.clone(),
            path: self.path.clone(),
        })
    }

    /// Whether the fields an operator manages equal `other`'s (what an import compares).
    pub fn same_definition(&self, other: &DeviceRecord) -> bool {
        self.device_type == other.device_type
            && self.gateway_id == other.gateway_id
            && self.path == other.path
            && self.tags == other.tags
            && self.heartbeat_seconds == other.heartbeat_seconds
    }
}

/// `key=value,key=value` → tags.
pub fn parse_tags(text: &str) -> Result<BTreeMap<String, String>, RecordError> {
    let mut tags = BTreeMap::new();
    for pair in text
        .split([',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| RecordError::new("tags", format!("'{pair}' is not key=value")))?;
        tags.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    Ok(tags)
}

/// How stale `last_seen` may be for a device with this heartbeat: a tenth of it. Ingest
/// writes a watched device's `last_seen` when it moved by more than this (whatever
/// `LastSeenIntervalSeconds` says: that one is for unwatched devices), and the silence watch
/// waits this much past the heartbeat before raising, so `no_data` is never early and at most
/// 10 % late. A 6-hour plant sensor is written every 36 minutes instead of every minute.
pub fn last_seen_resolution_ms(heartbeat_seconds: u32) -> i64 {
    i64::from(heartbeat_seconds) * 100
}

#[cfg(test)]
mod tests {
    use super::last_seen_resolution_ms;

    #[test]
    fn last_seen_is_as_fresh_as_a_tenth_of_the_heartbeat() {
        assert_eq!(last_seen_resolution_ms(21_600), 2_160_000);
        assert_eq!(last_seen_resolution_ms(600), 60_000);
    }

    use super::*;

    #[test]
    fn paths_take_up_to_four_safe_levels() {
        let path = LocationPath::parse("/wall-3/zone-a/s2/spot-07/").unwrap();
        assert_eq!(path.to_string(), "wall-3/zone-a/s2/spot-07");
        assert_eq!(
            path.levels().collect::<Vec<_>>(),
            [
                ("site", "wall-3"),
                ("zone", "zone-a"),
                ("section", "s2"),
                ("spot", "spot-07")
            ]
        );
        assert!(LocationPath::parse("").unwrap().is_empty());
        let e = LocationPath::parse("a/b/c/d/e").unwrap_err();
        assert!(e.to_string().contains("at most 4"), "{e}");
        for hostile in ["a b", "x'y", "a\"b", "a,b", "a=b", "a\\b", "a//b"] {
            assert!(LocationPath::parse(hostile).is_err(), "{hostile}");
        }
    }

    #[test]
    fn a_path_lies_below_its_prefixes() {
        let spot = LocationPath::parse("s/z/sec/spot").unwrap();
        assert!(spot.starts_with(&LocationPath::parse("s/z").unwrap()));
        assert!(spot.starts_with(&LocationPath::default()));
        assert!(!spot.starts_with(&LocationPath::parse("s/y").unwrap()));
    }

    #[test]
    fn validation_names_the_field_to_fix() {
        let mut r = DeviceRecord::new("ac-1", "thermostat", 0);
        assert!(r.validate().is_ok());
        r.heartbeat_seconds = Some(10);
        assert_eq!(r.validate().unwrap_err().field, "heartbeat_seconds");
        r.heartbeat_seconds = Some(3600);
        r.gateway_id = Some("ac-1".into());
        assert_eq!(r.validate().unwrap_err().field, "gateway_id");
        r.gateway_id = None;
        r.device_type = "smart ac".into();
        assert_eq!(r.validate().unwrap_err().field, "device_type");
        r.device_type = "ac".into();
        r.device_id = "a/b".into();
        assert_eq!(r.validate().unwrap_err().field, "device_id");
    }

    #[test]
    fn tags_parse_from_key_value_lists() {
        let tags = parse_tags("owner=ops, plant=fern;").unwrap();
        assert_eq!(tags["owner"], "ops");
        assert_eq!(tags["plant"], "fern");
        assert!(parse_tags("nonsense").is_err());
    }
}
