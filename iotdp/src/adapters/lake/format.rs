//! Readings as Parquet, one row a metric value: the lake's file format, standard enough for
//! Athena, DuckDB and pyarrow to read as they are. Long rather than wide, so a new metric is
//! new rows, never a new schema. zstd-compressed; sorted by (device, metric, time) so a
//! device's rows sit together and row-group statistics can skip the rest.

use std::sync::Arc;

use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::parser::parse_message_type;

use crate::domain::{DeviceDimensions, LocationPath, Metric, MetricValue, Reading};

/// The schema of a lake file (also the Glue table's columns, in template.yaml).
pub const SCHEMA: &str = "message reading {
  REQUIRED BYTE_ARRAY device_id (STRING);
  REQUIRED INT64 time (TIMESTAMP(MILLIS,true));
  REQUIRED BYTE_ARRAY metric (STRING);
  OPTIONAL DOUBLE value;
  OPTIONAL BOOLEAN flag;
  OPTIONAL BYTE_ARRAY text (STRING);
  REQUIRED INT64 version;
  OPTIONAL INT64 seq;
  OPTIONAL BYTE_ARRAY device_type (STRING);
  OPTIONAL BYTE_ARRAY place (STRING);
}";

/// zstd's level: 3 is its own default, most of the ratio at a fraction of the CPU of higher.
const ZSTD_LEVEL: i32 = 3;

/// Why a lake file could not be written or read back.
#[derive(Debug, thiserror::Error)]
#[error("lake file: {0}")]
pub struct FormatError(String);

impl From<parquet::errors::ParquetError> for FormatError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Self(e.to_string())
    }
}

/// One row: a reading's value of one metric.
struct Row<'a> {
    reading: &'a Reading,
    metric: &'a Metric,
}

/// `readings` as one Parquet file, its rows sorted by (device, metric, time).
pub fn encode(readings: &[Reading]) -> Result<Vec<u8>, FormatError> {
    let mut rows: Vec<Row> = readings
        .iter()
        .flat_map(|reading| {
            reading
                .metrics
                .iter()
                .map(move |metric| Row { reading, metric })
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.reading.device_id, &a.metric.name, a.reading.time_ms).cmp(&(
            &b.reading.device_id,
            &b.metric.name,
            b.reading.time_ms,
        ))
    });
    let schema = Arc::new(parse_message_type(SCHEMA)?);
    let properties = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
            .build(),
    );
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema, properties)?;
    let mut group = writer.next_row_group()?;
    let mut index = 0;
    while let Some(mut column) = group.next_column()? {
        match index {
            0 => strings(
                &mut column,
                false,
                rows.iter().map(|r| Some(r.reading.device_id.as_str())),
            )?,
            1 => column
                .typed::<Int64Type>()
                .write_batch(
                    &rows.iter().map(|r| r.reading.time_ms).collect::<Vec<_>>(),
                    None,
                    None,
                )
                .map(|_| ())?,
            2 => strings(
                &mut column,
                false,
                rows.iter().map(|r| Some(r.metric.name.as_str())),
            )?,
            3 => optional::<DoubleType>(
                &mut column,
                rows.iter().map(|r| match r.metric.value {
                    MetricValue::Number(n) => Some(n),
                    _ => None,
                }),
            )?,
            4 => optional::<BoolType>(
                &mut column,
                rows.iter().map(|r| match r.metric.value {
                    MetricValue::Bool(b) => Some(b),
                    _ => None,
                }),
            )?,
            5 => strings(
                &mut column,
                true,
                rows.iter().map(|r| match &r.metric.value {
                    MetricValue::Text(t) => Some(t.as_str()),
                    _ => None,
                }),
            )?,
            6 => column
                .typed::<Int64Type>()
                .write_batch(
                    &rows.iter().map(|r| r.reading.version).collect::<Vec<_>>(),
                    None,
                    None,
                )
                .map(|_| ())?,
            7 => optional::<Int64Type>(
                &mut column,
                rows.iter().map(|r| r.reading.seq.map(|s| s as i64)),
            )?,
            8 => strings(
                &mut column,
                true,
                rows.iter().map(|r| {
                    r.reading
                        .dimensions
                        .as_ref()
                        .map(|d| d.device_type.as_str())
                }),
            )?,
            _ => {
                let places: Vec<Option<String>> = rows
                    .iter()
                    .map(|r| r.reading.dimensions.as_ref().map(|d| d.path.to_string()))
                    .collect();
                strings(&mut column, true, places.iter().map(Option::as_deref))?;
            }
        }
        column.close()?;
        index += 1;
    }
    group.close()?;
    writer.close()?;
    Ok(out)
}

/// A string column, required or optional (definition levels only where the schema allows
/// nulls).
fn strings<'a>(
    column: &mut parquet::file::writer::SerializedColumnWriter<'_>,
    optional: bool,
    values: impl Iterator<Item = Option<&'a str>>,
) -> Result<(), FormatError> {
    let (mut present, mut levels) = (Vec::new(), Vec::new());
    for value in values {
        levels.push(i16::from(value.is_some()));
        if let Some(v) = value {
            present.push(ByteArray::from(v));
        }
    }
    let levels = optional.then_some(levels.as_slice());
    column
        .typed::<ByteArrayType>()
        .write_batch(&present, levels, None)?;
    Ok(())
}

fn optional<T: parquet::data_type::DataType>(
    column: &mut parquet::file::writer::SerializedColumnWriter<'_>,
    values: impl Iterator<Item = Option<T::T>>,
) -> Result<(), FormatError> {
    let (mut present, mut levels) = (Vec::new(), Vec::new());
    for value in values {
        levels.push(i16::from(value.is_some()));
        if let Some(v) = value {
            present.push(v);
        }
    }
    column
        .typed::<T>()
        .write_batch(&present, Some(&levels), None)?;
    Ok(())
}

/// A lake file read back into readings, one a (device, time, version, seq) with its metrics.
pub fn decode(bytes: Vec<u8>) -> Result<Vec<Reading>, FormatError> {
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes))?;
    let mut readings: std::collections::BTreeMap<(String, i64, i64, Option<u64>), Reading> =
        std::collections::BTreeMap::new();
    let mut places: std::collections::HashMap<(String, String), Arc<DeviceDimensions>> =
        std::collections::HashMap::new();
    for row in reader.get_row_iter(None)? {
        let row = row?;
        let (mut device, mut time, mut metric, mut version, mut seq) =
            (String::new(), 0, String::new(), 0, None);
        let (mut value, mut device_type, mut place) = (None, None, None);
        for (name, field) in row.get_column_iter() {
            match (name.as_str(), field) {
                ("device_id", Field::Str(s)) => device.clone_from(s),
                ("time", Field::TimestampMillis(t) | Field::Long(t)) => time = *t,
                ("metric", Field::Str(s)) => metric.clone_from(s),
                ("value", Field::Double(v)) => value = Some(MetricValue::Number(*v)),
                ("flag", Field::Bool(b)) => value = Some(MetricValue::Bool(*b)),
                ("text", Field::Str(s)) => value = Some(MetricValue::Text(s.clone())),
                ("version", Field::Long(v)) => version = *v,
                ("seq", Field::Long(s)) => seq = u64::try_from(*s).ok(),
                ("device_type", Field::Str(s)) => device_type = Some(s.clone()),
                ("place", Field::Str(s)) => place = Some(s.clone()),
                _ => {}
            }
        }
        let Some(value) = value else {
            return Err(FormatError(format!(
                "row of {device} at {time} for {metric} has no value"
            )));
        };
        let dimensions = match (device_type, place) {
            (Some(t), Some(p)) => {
                let key = (t, p);
                if let Some(d) = places.get(&key) {
                    Some(d.clone())
                } else {
                    let path = LocationPath::parse(&key.1)
                        .map_err(|e| FormatError(format!("place of {device}: {e}")))?;
                    let d = Arc::new(DeviceDimensions {
                        device_type: key.0.clone(),
                        path,
                    });
                    places.insert(key, d.clone());
                    Some(d)
                }
            }
            _ => None,
        };
        readings
            .entry((device.clone(), time, version, seq))
            .or_insert_with(|| Reading {
                device_id: device,
                time_ms: time,
                seq,
                metrics: Vec::new(),
                version,
                dimensions,
            })
            .metrics
            .push(Metric {
                name: metric,
                value,
            });
    }
    Ok(readings.into_values().collect())
}

/// Rows in a file (from its footer, without reading the rows).
pub fn row_count(bytes: Vec<u8>) -> Result<i64, FormatError> {
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes))?;
    Ok(reader.metadata().file_metadata().num_rows())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(device: &str, time_ms: i64, metrics: Vec<(&str, MetricValue)>) -> Reading {
        Reading {
            device_id: device.into(),
            time_ms,
            seq: Some(7),
            metrics: metrics
                .into_iter()
                .map(|(name, value)| Metric {
                    name: name.into(),
                    value,
                })
                .collect(),
            version: time_ms + 5,
            dimensions: None,
        }
    }

    #[test]
    fn readings_survive_the_file_every_value_kind_and_place() {
        let place = LocationPath::parse("site-1/zone-a").unwrap();
        let readings = vec![
            reading(
                "b",
                1_000,
                vec![
                    ("soc", MetricValue::Number(81.5)),
                    ("charging", MetricValue::Bool(true)),
                    ("mode", MetricValue::Text("eco".into())),
                ],
            )
            .with_place("battery", place.clone()),
            reading("a", 2_000, vec![("soc", MetricValue::Number(-3.25))]),
        ];
        let bytes = encode(&readings).unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        assert_eq!(row_count(bytes.clone()).unwrap(), 4);
        let mut back = decode(bytes).unwrap();
        back.sort_by(|x, y| x.device_id.cmp(&y.device_id));
        let mut expected = readings.clone();
        expected.sort_by(|x, y| x.device_id.cmp(&y.device_id));
        for r in &mut back {
            r.metrics.sort_by(|x, y| x.name.cmp(&y.name));
        }
        for r in &mut expected {
            r.metrics.sort_by(|x, y| x.name.cmp(&y.name));
        }
        assert_eq!(back, expected);
        assert!(decode(b"not parquet".to_vec()).is_err());
    }
}
