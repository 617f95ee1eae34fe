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
use crate::rollup::aggregate::Aggregates;
use crate::rollup::model::{RollupRow, SeriesKey};
use crate::rollup::tier::Tier;

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

impl FormatError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

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
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema, properties()?)?;
    for rows in rows.chunks(ROW_GROUP_ROWS) {
        write_reading_group(&mut writer, rows)?;
    }
    writer.close()?;
    Ok(out)
}

/// Rows a row group holds: a reader looking for one device skips the groups whose
/// `device_id` statistics exclude it (the rows are sorted by device).
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// zstd, and statistics per page as well as per row group (the page index), so Athena and
/// DuckDB skip what a predicate on device, metric or time excludes.
fn properties() -> Result<Arc<WriterProperties>, FormatError> {
    Ok(Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
            .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Page)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build(),
    ))
}

fn write_reading_group(
    writer: &mut SerializedFileWriter<&mut Vec<u8>>,
    rows: &[Row<'_>],
) -> Result<(), FormatError> {
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
    Ok(())
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

/// A lake object read back into readings, one a (device, time, version, seq) with its
/// metrics: a Parquet file, or an object ingest appended ([`super::appended`]).
pub fn decode(bytes: Vec<u8>) -> Result<Vec<Reading>, FormatError> {
    decode_device(bytes, None)
}

/// The readings of one device (every device with `None`); of a Parquet file, skipping the row
/// groups whose `device_id` statistics say they hold none of its rows.
pub fn decode_device(bytes: Vec<u8>, device: Option<&str>) -> Result<Vec<Reading>, FormatError> {
    if super::appended::is_appended(&bytes) {
        let mut readings = ReadingsByIdentity::new();
        for reading in super::appended::decode(&bytes, device)? {
            let key = (
                reading.device_id.clone(),
                reading.time_ms,
                reading.version,
                reading.seq,
            );
            match readings.entry(key) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(reading);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    for metric in reading.metrics {
                        merge_metric(&mut o.get_mut().metrics, metric.name, metric.value);
                    }
                }
            }
        }
        return Ok(readings.into_values().collect());
    }
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes))?;
    let mut readings = ReadingsByIdentity::new();
    let mut places = PlacesSeen::new();
    for group in 0..reader.num_row_groups() {
        if let Some(device) = device
            && !may_hold(reader.metadata().row_group(group).column(0), device)
        {
            continue;
        }
        let group = reader.get_row_group(group)?;
        decode_rows(
            group.get_row_iter(None)?,
            device,
            &mut readings,
            &mut places,
        )?;
    }
    Ok(readings.into_values().collect())
}

/// Whether a string column's chunk may hold `value`, by its statistics (yes without them).
fn may_hold(column: &parquet::file::metadata::ColumnChunkMetaData, value: &str) -> bool {
    match column.statistics() {
        Some(parquet::file::statistics::Statistics::ByteArray(s)) => {
            let value = value.as_bytes();
            s.min_opt().is_none_or(|min| min.data() <= value)
                && s.max_opt().is_none_or(|max| max.data() >= value)
        }
        _ => true,
    }
}

type ReadingsByIdentity = std::collections::BTreeMap<(String, i64, i64, Option<u64>), Reading>;
type PlacesSeen = std::collections::HashMap<(String, String), Arc<DeviceDimensions>>;

fn decode_rows(
    rows: parquet::record::reader::RowIter<'_>,
    only: Option<&str>,
    readings: &mut ReadingsByIdentity,
    places: &mut PlacesSeen,
) -> Result<(), FormatError> {
    for row in rows {
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
        if only.is_some_and(|d| d != device) {
            continue;
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
        let metrics = &mut readings
            .entry((device.clone(), time, version, seq))
            .or_insert_with(|| Reading {
                device_id: device,
                time_ms: time,
                seq,
                metrics: Vec::new(),
                version,
                dimensions,
            })
            .metrics;
        merge_metric(metrics, metric, value);
    }
    Ok(())
}

/// The same reading written twice in one object (a message delivered twice in one batch) is
/// one reading: its metric's later value replaces the earlier.
fn merge_metric(metrics: &mut Vec<Metric>, name: String, value: MetricValue) {
    match metrics.iter_mut().find(|m| m.name == name) {
        Some(same) => same.value = value,
        None => metrics.push(Metric { name, value }),
    }
}

/// The schema of a rollup file (also the Glue tables' columns, in template.yaml): one row a
/// series, metric and window, the tier given by the file's place.
pub const ROLLUP_SCHEMA: &str = "message rollup {
  REQUIRED BYTE_ARRAY level (STRING);
  REQUIRED BYTE_ARRAY name (STRING);
  REQUIRED BYTE_ARRAY metric (STRING);
  REQUIRED INT64 window_start (TIMESTAMP(MILLIS,true));
  REQUIRED INT64 count;
  REQUIRED DOUBLE sum;
  REQUIRED DOUBLE min;
  REQUIRED DOUBLE max;
  REQUIRED INT64 first_time (TIMESTAMP(MILLIS,true));
  REQUIRED DOUBLE first;
  REQUIRED INT64 last_time (TIMESTAMP(MILLIS,true));
  REQUIRED DOUBLE last;
  REQUIRED INT64 computed_at (TIMESTAMP(MILLIS,true));
}";

/// Rollup rows as one Parquet file, sorted by (level, name, metric, window).
pub fn encode_rollups(rows: &[RollupRow]) -> Result<Vec<u8>, FormatError> {
    let mut rows: Vec<&RollupRow> = rows.iter().collect();
    rows.sort_by(|a, b| {
        (a.key.level(), a.key.name(), &a.metric, a.window_start_ms).cmp(&(
            b.key.level(),
            b.key.name(),
            &b.metric,
            b.window_start_ms,
        ))
    });
    let schema = Arc::new(parse_message_type(ROLLUP_SCHEMA)?);
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema, properties()?)?;
    for rows in rows.chunks(ROW_GROUP_ROWS) {
        let mut group = writer.next_row_group()?;
        let mut index = 0;
        while let Some(mut column) = group.next_column()? {
            let longs = |f: fn(&RollupRow) -> i64| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
            let doubles = |f: fn(&RollupRow) -> f64| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
            match index {
                0 => strings(&mut column, false, rows.iter().map(|r| Some(r.key.level())))?,
                1 => {
                    let names: Vec<String> = rows.iter().map(|r| r.key.name()).collect();
                    strings(&mut column, false, names.iter().map(|n| Some(n.as_str())))?;
                }
                2 => strings(
                    &mut column,
                    false,
                    rows.iter().map(|r| Some(r.metric.as_str())),
                )?,
                3 | 4 | 8 | 10 | 12 => {
                    let values = match index {
                        3 => longs(|r| r.window_start_ms),
                        4 => longs(|r| r.aggregates.count as i64),
                        8 => longs(|r| r.aggregates.first_ms),
                        10 => longs(|r| r.aggregates.last_ms),
                        _ => longs(|r| r.computed_at_ms),
                    };
                    column
                        .typed::<Int64Type>()
                        .write_batch(&values, None, None)?;
                }
                _ => {
                    let values = match index {
                        5 => doubles(|r| r.aggregates.sum),
                        6 => doubles(|r| r.aggregates.min),
                        7 => doubles(|r| r.aggregates.max),
                        9 => doubles(|r| r.aggregates.first),
                        _ => doubles(|r| r.aggregates.last),
                    };
                    column
                        .typed::<DoubleType>()
                        .write_batch(&values, None, None)?;
                }
            }
            column.close()?;
            index += 1;
        }
        group.close()?;
    }
    writer.close()?;
    Ok(out)
}

/// A rollup file of `tier` read back.
pub fn decode_rollups(bytes: Vec<u8>, tier: Tier) -> Result<Vec<RollupRow>, FormatError> {
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes))?;
    let mut out = Vec::new();
    for row in reader.get_row_iter(None)? {
        let row = row?;
        let (mut level, mut name, mut metric) = (String::new(), String::new(), String::new());
        let (mut longs, mut doubles) = ([0i64; 5], [0f64; 5]);
        for (column, field) in row.get_column_iter() {
            let long = match column.as_str() {
                "window_start" => Some(0),
                "count" => Some(1),
                "first_time" => Some(2),
                "last_time" => Some(3),
                "computed_at" => Some(4),
                _ => None,
            };
            let double = match column.as_str() {
                "sum" => Some(0),
                "min" => Some(1),
                "max" => Some(2),
                "first" => Some(3),
                "last" => Some(4),
                _ => None,
            };
            match (column.as_str(), field, long, double) {
                ("level", Field::Str(s), ..) => level.clone_from(s),
                ("name", Field::Str(s), ..) => name.clone_from(s),
                ("metric", Field::Str(s), ..) => metric.clone_from(s),
                (_, Field::TimestampMillis(v) | Field::Long(v), Some(i), _) => longs[i] = *v,
                (_, Field::Double(v), _, Some(i)) => doubles[i] = *v,
                _ => {}
            }
        }
        let key = SeriesKey::parse(&level, &name)
            .ok_or_else(|| FormatError(format!("rollup row of level {level:?} names {name:?}")))?;
        out.push(RollupRow {
            tier,
            key,
            metric,
            window_start_ms: longs[0],
            aggregates: Aggregates {
                count: longs[1].max(0) as u64,
                sum: doubles[0],
                min: doubles[1],
                max: doubles[2],
                first_ms: longs[2],
                first: doubles[3],
                last_ms: longs[3],
                last: doubles[4],
            },
            computed_at_ms: longs[4],
        });
    }
    Ok(out)
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

    #[test]
    fn rollup_rows_survive_the_file_and_one_device_is_read_alone() {
        let row = |key: SeriesKey, window_start_ms: i64| RollupRow {
            tier: Tier::Hour,
            key,
            metric: "soc".into(),
            window_start_ms,
            aggregates: Aggregates {
                count: 3,
                sum: 7.5,
                min: 1.0,
                max: 4.5,
                first_ms: window_start_ms + 1,
                first: 2.0,
                last_ms: window_start_ms + 9,
                last: 1.0,
            },
            computed_at_ms: 99,
        };
        let rows = vec![
            row(SeriesKey::Device("b".into()), 3_600_000),
            row(SeriesKey::Group(LocationPath::parse("w/z").unwrap()), 0),
            row(SeriesKey::Device("a".into()), 0),
        ];
        let mut back = decode_rollups(encode_rollups(&rows).unwrap(), Tier::Hour).unwrap();
        let mut expected = rows.clone();
        let order = |r: &RollupRow| (r.key.clone(), r.window_start_ms);
        back.sort_by_key(order);
        expected.sort_by_key(order);
        assert_eq!(back, expected);

        let many: Vec<Reading> = (0..(ROW_GROUP_ROWS as i64 + 10))
            .map(|i| {
                reading(
                    if i % 2 == 0 { "a" } else { "z" },
                    i,
                    vec![("t", MetricValue::Number(1.0))],
                )
            })
            .collect();
        let bytes = encode(&many).unwrap();
        let only_z = decode_device(bytes, Some("z")).unwrap();
        assert_eq!(only_z.len(), many.len() / 2);
        assert!(only_z.iter().all(|r| r.device_id == "z"));
    }
}
