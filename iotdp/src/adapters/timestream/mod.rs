//! Timestream for LiveAnalytics adapter for [`TimeSeriesStore`].
//!
//! One multi-measure record per reading (measure name `telemetry`), numbers as DOUBLE,
//! booleans as BOOLEAN, strings as VARCHAR, `seq` as BIGINT. Whatever every record of a
//! request shares goes into `CommonAttributes` once instead of 100 times.

pub mod query;
pub mod rollups;

use aws_sdk_timestreamwrite::Client;
use aws_sdk_timestreamwrite::error::{BuildError, DisplayErrorContext, SdkError};
use aws_sdk_timestreamwrite::operation::write_records::WriteRecordsError;
use aws_sdk_timestreamwrite::types::{
    Dimension, MeasureValue, MeasureValueType, Record, RejectedRecord, TimeUnit,
};

use crate::domain::{MetricValue, Reading};
use crate::ingest::ports::{
    StoreError, StoreRejection, StoreRejectionKind, TimeSeriesStore, WriteReport,
};

/// WriteRecords takes at most 100 records per call (Timestream quotas).
pub const MAX_RECORDS_PER_WRITE: usize = 100;
/// The multi-measure record name every reading is stored under.
pub const MEASURE_NAME: &str = "telemetry";
/// Dimension holding the device id (the thing name).
pub const DEVICE_DIMENSION: &str = "device_id";
/// Dimension holding the device type (registered devices).
pub const DEVICE_TYPE_DIMENSION: &str = "device_type";
/// Measure holding the device's sequence number.
pub const SEQ_MEASURE: &str = "seq";

pub struct TimestreamStore {
    client: Client,
    database: String,
    table: String,
}

impl TimestreamStore {
    pub fn new(client: Client, database: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            client,
            database: database.into(),
            table: table.into(),
        }
    }
}

impl TimeSeriesStore for TimestreamStore {
    fn max_batch_len(&self) -> usize {
        MAX_RECORDS_PER_WRITE
    }

    async fn write(&self, readings: &[Reading]) -> Result<WriteReport, StoreError> {
        let request = build_write_request(readings)
            .map_err(|e| StoreError::Failed(format!("building Timestream records: {e}")))?;
        let result = self
            .client
            .write_records()
            .database_name(&self.database)
            .table_name(&self.table)
            .common_attributes(request.common)
            .set_records(Some(request.records))
            .send()
            .await;
        match result {
            Ok(_) => Ok(WriteReport::default()),
            Err(error) => classify_write_error(error),
        }
    }
}

/// The records of one WriteRecords call.
#[derive(Debug, Clone, PartialEq)]
pub struct TimestreamWriteRequest {
    pub common: Record,
    pub records: Vec<Record>,
}

/// Readings → one WriteRecords request (the caller keeps to [`MAX_RECORDS_PER_WRITE`]).
pub fn build_write_request(readings: &[Reading]) -> Result<TimestreamWriteRequest, BuildError> {
    let first = readings.first();
    let one_device = first
        .filter(|f| readings.iter().all(|r| r.device_id == f.device_id))
        .map(|f| f.device_id.as_str());
    let one_version = first
        .filter(|f| readings.iter().all(|r| r.version == f.version))
        .map(|f| f.version);

    let mut common = Record::builder()
        .measure_name(MEASURE_NAME)
        .measure_value_type(MeasureValueType::Multi)
        .time_unit(TimeUnit::Milliseconds);
    if let Some(first) = one_device.and(first) {
        common = common.set_dimensions(Some(series_dimensions(first)?));
    }
    if let Some(version) = one_version {
        common = common.version(version);
    }

    let mut records = Vec::with_capacity(readings.len());
    let mut previous: Option<(&str, Vec<Dimension>)> = None;
    let mut number = ryu::Buffer::new();
    let mut integer = itoa::Buffer::new();
    for (index, reading) in readings.iter().enumerate() {
        let mut measures = Vec::with_capacity(reading.metrics.len() + 1);
        for metric in &reading.metrics {
            let (value, kind) = match &metric.value {
                MetricValue::Number(v) => (
                    number.format_finite(*v).to_owned(),
                    MeasureValueType::Double,
                ),
                MetricValue::Bool(b) => (b.to_string(), MeasureValueType::Boolean),
                MetricValue::Text(s) => (s.clone(), MeasureValueType::Varchar),
            };
            measures.push(
                MeasureValue::builder()
                    .name(&metric.name)
                    .value(value)
                    .r#type(kind)
                    .build()?,
            );
        }
        if let Some(seq) = reading.seq {
            measures.push(
                MeasureValue::builder()
                    .name(SEQ_MEASURE)
                    .value(integer.format(seq))
                    .r#type(MeasureValueType::Bigint)
                    .build()?,
            );
        }
        let mut record = Record::builder()
            .time(integer.format(reading.time_ms))
            .set_measure_values(Some(measures));
        if one_device.is_none() {
            // Readings come sorted by series: a device's run of records copies one set
            // instead of building it again.
            let dimensions = match previous.take() {
                Some((device, dimensions)) if device == reading.device_id => dimensions,
                _ => series_dimensions(reading)?,
            };
            if readings
                .get(index + 1)
                .is_some_and(|next| next.device_id == reading.device_id)
            {
                previous = Some((reading.device_id.as_str(), dimensions.clone()));
            }
            record = record.set_dimensions(Some(dimensions));
        }
        if one_version.is_none() {
            record = record.version(reading.version);
        }
        records.push(record.build());
    }
    Ok(TimestreamWriteRequest {
        common: common.build(),
        records,
    })
}

/// `device_id`, then for a registered device `device_type` and each hierarchy level present
/// (`site`, `zone`, `section`, `spot`): what queries group and drill down by. A device's
/// dimensions are the same on every record, so one device is one series.
fn series_dimensions(reading: &Reading) -> Result<Vec<Dimension>, BuildError> {
    let dimension = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    let mut dimensions = Vec::with_capacity(6);
    dimensions.push(dimension(DEVICE_DIMENSION, &reading.device_id)?);
    if let Some(d) = &reading.dimensions {
        dimensions.push(dimension(DEVICE_TYPE_DIMENSION, &d.device_type)?);
        for (level, segment) in d.path.levels() {
            dimensions.push(dimension(level, segment)?);
        }
    }
    Ok(dimensions)
}

/// Sort a failed WriteRecords into retry / split / give up, and map rejected records back.
fn classify_write_error(error: SdkError<WriteRecordsError>) -> Result<WriteReport, StoreError> {
    let status = error.raw_response().map(|r| r.status().as_u16());
    let message = match &error {
        // The modeled error's Display carries its code and message.
        SdkError::ServiceError(service) => service.err().to_string(),
        other => DisplayErrorContext(other).to_string(),
    };
    let retryable = || StoreError::Retryable {
        message: message.clone(),
        retry_after: None,
    };
    match error {
        SdkError::ServiceError(service) => match service.into_err() {
            WriteRecordsError::RejectedRecordsException(rejected) => {
                rejected_report(rejected.rejected_records())
            }
            WriteRecordsError::ThrottlingException(_)
            | WriteRecordsError::InternalServerException(_) => Err(retryable()),
            WriteRecordsError::ValidationException(_) => Err(StoreError::InvalidRequest(message)),
            _ if matches!(status, Some(429 | 500..=599)) => Err(retryable()),
            _ => Err(StoreError::Failed(message)),
        },
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Err(retryable())
        }
        _ => Err(StoreError::Failed(message)),
    }
}

fn rejected_report(rejected: &[RejectedRecord]) -> Result<WriteReport, StoreError> {
    let mut report = WriteReport::default();
    for record in rejected {
        let reason = record.reason().unwrap_or("no reason given").to_owned();
        let Ok(index) = usize::try_from(record.record_index()) else {
            return Err(StoreError::Failed(format!(
                "Timestream rejected record index {}: {reason}",
                record.record_index()
            )));
        };
        let kind = rejection_kind(&reason);
        let reason = match record.existing_version() {
            Some(v) => format!("{reason} (existing version {v})"),
            None => reason,
        };
        report.rejected.push(StoreRejection {
            index,
            reason,
            kind,
        });
    }
    Ok(report)
}

/// Timestream documents three causes of a rejected record, all about the data: a duplicate
/// with another value or a lower version, a time outside retention, a dimension or measure
/// over a limit. A reason that matches none of them is treated as transient: its message is
/// retried through SQS (and ends in the DLQ if it keeps failing), never silently dropped.
pub fn rejection_kind(reason: &str) -> StoreRejectionKind {
    const DATA_CAUSES: &[&str] = &[
        "already exists",
        "version",
        "duplicate",
        "retention",
        "time range",
        "timestamp",
        "exceed",
        "limit",
        "dimension",
        "measure",
        "schema",
        "type",
    ];
    let lower = reason.to_ascii_lowercase();
    if DATA_CAUSES.iter().any(|cause| lower.contains(cause)) {
        StoreRejectionKind::Data
    } else {
        StoreRejectionKind::Transient
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    use crate::domain::LocationPath;

    fn reading(device: &str, dims: Option<(&str, &str)>) -> Reading {
        let reading = Reading::new(
            device,
            1_764_000_000_000,
            [("moisture", MetricValue::Number(0.4))],
        );
        match dims {
            Some((kind, path)) => reading.with_place(kind, LocationPath::parse(path).unwrap()),
            None => reading,
        }
    }

    fn names_and_values(dimensions: &[Dimension]) -> Vec<(&str, &str)> {
        dimensions.iter().map(|d| (d.name(), d.value())).collect()
    }

    #[test]
    fn a_one_device_request_carries_type_and_hierarchy_in_common_attributes() {
        let r = reading("spot-3", Some(("plant-sensor", "wall-1/zone-a/s1/spot-3")));
        let request = build_write_request(&[r.clone(), r]).unwrap();
        assert_eq!(
            names_and_values(request.common.dimensions()),
            [
                ("device_id", "spot-3"),
                ("device_type", "plant-sensor"),
                ("site", "wall-1"),
                ("zone", "zone-a"),
                ("section", "s1"),
                ("spot", "spot-3"),
            ]
        );
        assert!(request.records.iter().all(|r| r.dimensions().is_empty()));
    }

    #[test]
    fn a_mixed_request_carries_each_devices_dimensions_on_its_records() {
        let request = build_write_request(&[
            reading("gw-1", Some(("gateway", "wall-1"))),
            reading("newcomer", None),
        ])
        .unwrap();
        assert!(request.common.dimensions().is_empty());
        assert_eq!(
            names_and_values(request.records[0].dimensions()),
            [
                ("device_id", "gw-1"),
                ("device_type", "gateway"),
                ("site", "wall-1")
            ]
        );
        assert_eq!(
            names_and_values(request.records[1].dimensions()),
            [("device_id", "newcomer")]
        );
    }
}
