//! The monthly bill of a load, from what the real code sends: sample messages of the load go
//! through the ingest path's decoding and validation (`prepare_batch`) and the Timestream
//! request builder (`build_write_request`), which give the payload bytes IoT Core and SQS
//! meter and the write kilobytes Timestream meters; one device's messages go through the
//! registry cache the ingest function runs (`CachedRegistry`), which gives the `last_seen`
//! writes. The rest follows from the template's shape (one rule, one action, one SQS message
//! or Kinesis record per publish, batches of up to 1,000 per invocation). The prices come from
//! `infra/prices.toml`.
//!
//! The baselines are what a competent team would build without iotdp, each with Basic Ingest:
//! IoT Core's Timestream rule action (one request a message, a single-measure record per
//! attribute; [`baseline`]), its own Lambda where that action cannot store the load, and for
//! new customers, to whom Timestream for LiveAnalytics is closed, Firehose into Parquet on S3
//! read by Athena, or Timestream for InfluxDB ([`new_customer`]).
//!
//! From the inputs to the bill: [`prices`] (the table), [`load`] (what the devices send),
//! [`measure`] (a message's metered units, through the real code; `write_size` as Timestream counts bytes) and [`reads`] (the reads a
//! month), then [`bill`] (iotdp's on Timestream), [`lake`] (iotdp's on the lake: Parquet on
//! S3, its bytes from the real writer), [`baseline`] and [`new_customer`].

pub mod baseline;
pub mod bill;
pub mod lake;
pub mod load;
pub mod measure;
pub mod new_customer;
pub mod prices;
pub mod reads;
mod write_size;

pub use baseline::{baseline_bill, own_lambda_bill};
pub use bill::{Bill, BillLine, Options, Transport, iotdp_bill, shards_for};
pub use lake::{LakeMeasure, LakeOptions, StorageClass, lake_bill, measure_lake};
pub use load::{Load, Places, sample_payload};
pub use measure::{
    MeasureError, PerMessage, RegistryCost, measure, measure_with, registry_writes_per_message,
};
pub use new_customer::{firehose_bill, influxdb_bill};
pub use prices::{Price, PriceError, PriceTable, PriceTier};

/// Seconds in the month the model bills: 30 days.
pub const MONTH_SECONDS: f64 = 30.0 * 86_400.0;
pub(crate) const HOURS_PER_MONTH: f64 = MONTH_SECONDS / 3_600.0;
/// Messages per ingest invocation at the template's `IngestBatchSize` under load.
const MESSAGES_PER_INVOCATION: f64 = 1_000.0;
