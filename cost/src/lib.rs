//! The monthly bill of a load, from what the real code sends: sample messages of the load go
//! through the ingest path's decoding and validation (`prepare_batch`) and the Timestream
//! request builder (`build_write_request`), which give the payload bytes IoT Core and SQS
//! meter and the write kilobytes Timestream meters; one device's messages go through the
//! registry cache the ingest function runs (`CachedRegistry`), which gives the `last_seen`
//! writes. The rest follows from the template's shape (one rule, one action, one SQS message
//! or Kinesis record per publish, batches of up to 1,000 per invocation). The prices come from
//! `infra/prices.toml`.
//!
//! The baseline is what a team would build without iotdp: IoT Core's built-in Timestream rule
//! action (one single-measure record per attribute) and AWS IoT Events alarms at the same rule
//! count.
//!
//! From the inputs to the bill: [`prices`] (the table), [`load`] (what the devices send),
//! [`measure`] (a message's metered units, through the real code; `write_size` as Timestream counts bytes) and [`reads`] (the reads a
//! month), then [`bill`] (iotdp's) and [`baseline`].

pub mod baseline;
pub mod bill;
pub mod load;
pub mod measure;
pub mod prices;
pub mod reads;
mod write_size;

pub use baseline::baseline_bill;
pub use bill::{Bill, BillLine, Options, Transport, iotdp_bill, shards_for};
pub use load::{Load, Places, sample_payload};
pub use measure::{
    MeasureError, PerMessage, RegistryCost, measure, measure_with, registry_writes_per_message,
};
pub use prices::{Price, PriceError, PriceTable};

/// Seconds in the month the model bills: 30 days.
pub const MONTH_SECONDS: f64 = 30.0 * 86_400.0;
const HOURS_PER_MONTH: f64 = MONTH_SECONDS / 3_600.0;
/// Messages per ingest invocation at the template's `IngestBatchSize` under load.
const MESSAGES_PER_INVOCATION: f64 = 1_000.0;
