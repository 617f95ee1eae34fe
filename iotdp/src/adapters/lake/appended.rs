//! The row format ingest appends raw readings in: what one invocation adds to an hour, until
//! the compaction rewrites the hour as Parquet ([`super::format`]). Parquet's writer (sort,
//! dictionaries, page statistics, zstd) cost about 1.4 µs a reading, as much as the rest of
//! ingest; this is serde's compact binary encoding (postcard) of the batch with each distinct
//! device, metric and place written once, a tenth of that, and it keeps Parquet's code out of
//! the `ingest` binary. The objects live an hour or so under `incoming/` and analysts never
//! see them: the Glue tables read only compacted `raw/`.

use std::borrow::{Borrow, Cow};
use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::format::FormatError;
use crate::domain::{DeviceDimensions, LocationPath, Metric, MetricValue, Reading};

/// The first bytes of an appended object (a Parquet file starts `PAR1`), and its version.
pub const MAGIC: &[u8; 4] = b"IDR1";

#[derive(Serialize, Deserialize)]
struct Batch<'a> {
    /// The earliest reading's time: each row's time is kept as its offset from it (a few
    /// bytes as a varint, not eight).
    base_ms: i64,
    #[serde(borrow)]
    devices: Vec<&'a str>,
    #[serde(borrow)]
    metrics: Vec<&'a str>,
    /// (device type, place path) of the readings that carry dimensions.
    #[serde(borrow)]
    places: Vec<(&'a str, Cow<'a, str>)>,
    #[serde(borrow)]
    readings: Vec<Row<'a>>,
}

#[derive(Serialize, Deserialize)]
struct Row<'a> {
    device: u32,
    /// `time_ms - base_ms`.
    offset_ms: i64,
    /// The write version less the reading's time (IoT Core's receive time is close to it).
    version_after_ms: i64,
    seq: Option<u64>,
    place: Option<u32>,
    #[serde(borrow)]
    values: Vec<(u32, Value<'a>)>,
}

#[derive(Serialize, Deserialize)]
enum Value<'a> {
    Number(f64),
    Bool(bool),
    Text(&'a str),
}

/// Ids of distinct strings in the order first seen.
struct Ids<'a, K> {
    index: HashMap<K, u32>,
    values: Vec<&'a str>,
}

impl<'a, K: std::hash::Hash + Eq> Ids<'a, K> {
    fn new() -> Self {
        Self {
            index: HashMap::new(),
            values: Vec::new(),
        }
    }

    fn id(&mut self, key: K, value: impl FnOnce() -> &'a str) -> u32 {
        let next = self.values.len() as u32;
        *self.index.entry(key).or_insert_with(|| {
            self.values.push(value());
            next
        })
    }
}

/// `readings` as one appended object, in the order given.
pub fn encode<R: Borrow<Reading>>(readings: &[R]) -> Result<Vec<u8>, FormatError> {
    let (mut devices, mut metrics) = (Ids::new(), Ids::new());
    // A reading's dimensions by their allocation first (the registry's cache shares one per
    // device), then by value, so each distinct place is written and parsed back once.
    let mut places: HashMap<*const DeviceDimensions, u32> = HashMap::new();
    let mut place_ids: HashMap<(&str, String), u32> = HashMap::new();
    let mut place_list = Vec::new();
    let mut rows = Vec::with_capacity(readings.len());
    let base_ms = readings
        .iter()
        .map(|r| r.borrow().time_ms)
        .min()
        .unwrap_or(0);
    for reading in readings.iter().map(Borrow::borrow) {
        let place = reading.dimensions.as_ref().map(|d| {
            *places.entry(Arc::as_ptr(d)).or_insert_with(|| {
                let path = d.path.to_string();
                *place_ids
                    .entry((d.device_type.as_str(), path.clone()))
                    .or_insert_with(|| {
                        place_list.push((d.device_type.as_str(), Cow::Owned(path)));
                        place_list.len() as u32 - 1
                    })
            })
        });
        rows.push(Row {
            device: devices.id(reading.device_id.as_str(), || &reading.device_id),
            offset_ms: reading.time_ms.wrapping_sub(base_ms),
            version_after_ms: reading.version.wrapping_sub(reading.time_ms),
            seq: reading.seq,
            place,
            values: reading
                .metrics
                .iter()
                .map(|m| {
                    let value = match &m.value {
                        MetricValue::Number(n) => Value::Number(*n),
                        MetricValue::Bool(b) => Value::Bool(*b),
                        MetricValue::Text(t) => Value::Text(t),
                    };
                    (metrics.id(m.name.as_str(), || &m.name), value)
                })
                .collect(),
        });
    }
    let batch = Batch {
        base_ms,
        devices: devices.values,
        metrics: metrics.values,
        places: place_list,
        readings: rows,
    };
    let mut out = MAGIC.to_vec();
    postcard::to_io(&batch, &mut out).map_err(|e| FormatError::new(e.to_string()))?;
    Ok(out)
}

/// Whether `bytes` are an appended object rather than a Parquet file.
pub fn is_appended(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// The readings of an appended object (of one device with `Some`), as written.
pub fn decode(bytes: &[u8], only: Option<&str>) -> Result<Vec<Reading>, FormatError> {
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| FormatError::new("not an appended lake object (no IDR1 header)"))?;
    let batch: Batch = postcard::from_bytes(body)
        .map_err(|e| FormatError::new(format!("appended lake object: {e}")))?;
    let places = batch
        .places
        .iter()
        .map(|(device_type, path)| {
            LocationPath::parse(path)
                .map(|path| {
                    Arc::new(DeviceDimensions {
                        device_type: (*device_type).to_owned(),
                        path,
                    })
                })
                .map_err(|e| FormatError::new(format!("appended lake object's place {path}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let name = |ids: &[&str], id: u32, what: &str| {
        ids.get(id as usize)
            .map(|s| (*s).to_owned())
            .ok_or_else(|| {
                FormatError::new(format!(
                    "appended lake object names {what} {id} it does not hold"
                ))
            })
    };
    let mut out = Vec::with_capacity(batch.readings.len());
    for row in batch.readings {
        let device_id = name(&batch.devices, row.device, "device")?;
        if only.is_some_and(|d| d != device_id) {
            continue;
        }
        let dimensions = match row.place {
            Some(p) => Some(places.get(p as usize).cloned().ok_or_else(|| {
                FormatError::new(format!(
                    "appended lake object names place {p} it does not hold"
                ))
            })?),
            None => None,
        };
        let metrics = row
            .values
            .into_iter()
            .map(|(id, value)| {
                Ok(Metric {
                    name: name(&batch.metrics, id, "metric")?,
                    value: match value {
                        Value::Number(n) => MetricValue::Number(n),
                        Value::Bool(b) => MetricValue::Bool(b),
                        Value::Text(t) => MetricValue::Text(t.to_owned()),
                    },
                })
            })
            .collect::<Result<Vec<_>, FormatError>>()?;
        let time_ms = batch.base_ms.wrapping_add(row.offset_ms);
        out.push(Reading {
            device_id,
            time_ms,
            seq: row.seq,
            metrics,
            version: time_ms.wrapping_add(row.version_after_ms),
            dimensions,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(device: &str, time_ms: i64, metrics: Vec<(&str, MetricValue)>) -> Reading {
        Reading::new(device, time_ms, metrics)
    }

    #[test]
    fn every_value_kind_place_and_version_survives_the_object_in_order() {
        let site = LocationPath::parse("site-a/zone-1").unwrap();
        let mut a = reading(
            "b",
            2,
            vec![
                ("t", MetricValue::Number(-1.5)),
                ("on", MetricValue::Bool(true)),
                ("mode", MetricValue::Text("cool".into())),
            ],
        )
        .with_place("thermostat", site.clone());
        a.version = 7;
        a.seq = Some(42);
        let b = reading("a", 1, vec![("t", MetricValue::Number(3.0))]);
        let c =
            reading("b", 3, vec![("t", MetricValue::Number(4.0))]).with_place("thermostat", site);
        let written = vec![a, b, c];
        let bytes = encode(&written).unwrap();
        assert!(is_appended(&bytes));
        assert_eq!(decode(&bytes, None).unwrap(), written);
        let only_b = decode(&bytes, Some("b")).unwrap();
        assert_eq!(only_b, vec![written[0].clone(), written[2].clone()]);
    }

    #[test]
    fn a_damaged_object_is_an_error_that_names_it_never_a_panic() {
        let bytes = encode(&[reading("a", 1, vec![("t", MetricValue::Number(3.0))])]).unwrap();
        for cut in [4, bytes.len() / 2, bytes.len() - 1] {
            let e = decode(&bytes[..cut], None).unwrap_err().to_string();
            assert!(e.contains("appended lake object"), "{e}");
        }
        assert!(decode(b"PAR1....", None).is_err());
    }
}
