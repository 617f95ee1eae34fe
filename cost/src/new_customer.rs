//! The baselines a new AWS customer can build: Timestream for LiveAnalytics has been closed to
//! new customers since 2025-06-20
//! (<https://docs.aws.amazon.com/timestream/latest/developerguide/writes.batching-writes.html>,
//! read 2026-12-07).
//!
//! - **Firehose to Parquet on S3, read with Athena**, the path AWS points IoT Analytics' users
//!   to: IoT Core (Basic Ingest) → the rule's Firehose action, one record a message →
//!   Firehose's record format conversion (JSON to Parquet) → S3, hourly prefixes → Athena, with
//!   the same dashboards as every other set-up.
//! - **Timestream for InfluxDB**: its instance-hour price was not found (the pricing page
//!   renders it by script), so it is priced only when given (`--influxdb-hourly`), behind the
//!   team's own Lambda (no rule action writes to InfluxDB).

use crate::baseline::{add_own_lambda, add_rules};
use crate::bill::{Bill, GIB, increments};
use crate::load::Load;
use crate::measure::PerMessage;
use crate::prices::{PriceError, PriceTable};
use crate::{HOURS_PER_MONTH, MONTH_SECONDS};

/// Firehose meters ingestion and format conversion per record, rounded up to 5 KB (the
/// pricing page: "a 3 KB record is billed as 5 KB"; the rounding is per record, not per
/// PutRecordBatch call). <https://aws.amazon.com/kinesis/data-firehose/pricing/>, read
/// 2026-12-07.
const FIREHOSE_INCREMENT: usize = 5 * 1024;
/// Firehose delivers when its buffer reaches 128 MB or its interval (300 s, the default)
/// passes: an S3 PUT each.
const FIREHOSE_BUFFER_BYTES: f64 = 128.0 * 1024.0 * 1024.0;
const FIREHOSE_BUFFER_SECONDS: f64 = 300.0;
/// Parquet's plain encoding holds an INT64 timestamp and a DOUBLE in 8 bytes each; a device id
/// in a dictionary-encoded column takes a few bytes a row. A stated model of the bytes held,
/// before compression (which only shrinks them).
const PARQUET_TIME_BYTES: f64 = 8.0;
const PARQUET_VALUE_BYTES: f64 = 8.0;
const PARQUET_DEVICE_BYTES: f64 = 4.0;
/// Athena bills the bytes a query scans, at least 10 MB a query.
const ATHENA_MINIMUM_BYTES: f64 = 10.0 * 1024.0 * 1024.0;
/// A Parquet object read by a query: its footer, then its column chunks.
const GETS_PER_OBJECT: f64 = 2.0;
/// The months of readings held (the twelfth month's bill, as Timestream's storage).
const MONTHS_HELD: f64 = 12.0;

/// What a month of `load` holds in Parquet, by the stated model.
pub fn parquet_bytes_per_month(load: &Load) -> f64 {
    load.readings_per_month()
        * (PARQUET_TIME_BYTES + PARQUET_DEVICE_BYTES + PARQUET_VALUE_BYTES * load.metrics as f64)
}

/// IoT Core → Firehose (Parquet) → S3 → Athena, with Basic Ingest and the dashboards of the
/// other set-ups: a chart of a device's last 24 hours, refreshed once a minute while anyone
/// watches, scans the day's partition's time, device and metric columns (Firehose's files
/// are not sorted by device, so no row group can be skipped).
pub fn firehose_bill(
    load: &Load,
    per: &PerMessage,
    prices: &PriceTable,
) -> Result<Bill, PriceError> {
    let messages = load.messages_per_month();
    let mut bill = Bill::default();
    add_rules(&mut bill, prices, load, per, 1.0)?;
    let ingested_gb =
        messages * increments(per.payload_bytes, FIREHOSE_INCREMENT) * FIREHOSE_INCREMENT as f64
            / GIB;
    bill.add(prices, "firehose_ingest_gb", ingested_gb)?;
    bill.add(prices, "firehose_format_conversion_gb", ingested_gb)?;
    let monthly_bytes = parquet_bytes_per_month(load);
    bill.add(
        prices,
        "s3_standard_gb_months",
        monthly_bytes / GIB * MONTHS_HELD,
    )?;
    let objects_per_month =
        (MONTH_SECONDS / FIREHOSE_BUFFER_SECONDS).max(monthly_bytes / FIREHOSE_BUFFER_BYTES);
    bill.add(prices, "s3_put_requests", objects_per_month)?;
    let queries = per.deployment.dashboard_hours.clamp(0.0, HOURS_PER_MONTH) * 60.0;
    let day_readings = load.readings_per_month() / 30.0;
    let scanned = (day_readings
        * (PARQUET_TIME_BYTES + PARQUET_DEVICE_BYTES + PARQUET_VALUE_BYTES))
        .max(ATHENA_MINIMUM_BYTES);
    bill.add(
        prices,
        "athena_tb_scanned",
        queries * scanned / (GIB * 1024.0),
    )?;
    bill.add(
        prices,
        "s3_get_requests",
        queries * objects_per_month / 30.0 * GETS_PER_OBJECT,
    )?;
    Ok(bill)
}

/// Timestream for InfluxDB's smallest instance at `hourly_usd` (a parameter: its price was not
/// found), written by the team's own Lambda behind the rule. No charge per query.
pub fn influxdb_bill(
    load: &Load,
    per: &PerMessage,
    prices: &PriceTable,
    hourly_usd: f64,
) -> Result<Bill, PriceError> {
    let mut bill = Bill::default();
    add_rules(&mut bill, prices, load, per, 1.0)?;
    add_own_lambda(&mut bill, prices, load, per)?;
    bill.lines.push(crate::bill::BillLine {
        service: "Timestream for InfluxDB".into(),
        item: "influxdb_instance_hours".into(),
        quantity: HOURS_PER_MONTH,
        usd: HOURS_PER_MONTH * hourly_usd,
        checked: "a parameter (--influxdb-hourly): the price was not found".into(),
    });
    Ok(bill)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bill::tests::{by_item, flat_prices, hand_load, hand_per};

    fn priced() -> PriceTable {
        let mut prices = flat_prices();
        let flat = prices.0["sqs_requests"].clone();
        for key in [
            "firehose_ingest_gb",
            "firehose_format_conversion_gb",
            "s3_standard_gb_months",
            "s3_put_requests",
            "s3_get_requests",
            "athena_tb_scanned",
        ] {
            prices.0.insert(key.into(), flat.clone());
        }
        prices
    }

    /// 43.2 M messages of 980 bytes: each a 5 KB Firehose record (206 GiB in, converted);
    /// 43.2 M readings of one metric are 20 bytes each in Parquet (a year held); a PUT every
    /// 300 s; 40 dashboard hours of a query a minute, each over the 10 MB minimum.
    #[test]
    fn the_firehose_path_rounds_records_to_5_kb_and_scans_a_day_a_chart() {
        let (load, mut per) = (hand_load(), hand_per());
        per.deployment.dashboard_hours = 40.0;
        let bill = firehose_bill(&load, &per, &priced()).unwrap();
        let quantity = by_item(&bill, |l| l.quantity);
        let ingested = 43_200_000.0 * 5.0 * 1024.0 / GIB;
        assert!((quantity["firehose_ingest_gb"] - ingested).abs() < 1e-9);
        assert!((quantity["firehose_format_conversion_gb"] - ingested).abs() < 1e-9);
        let held = 43_200_000.0 * 20.0 / GIB * 12.0;
        assert!((quantity["s3_standard_gb_months"] - held).abs() < 1e-9);
        assert!((quantity["s3_put_requests"] - 8_640.0).abs() < 1e-9);
        // A day is 1.44 M readings × 20 bytes = 27.5 MiB scanned, over the minimum.
        let scanned = 2_400.0 * 1_440_000.0 * 20.0 / (GIB * 1024.0);
        assert!((quantity["athena_tb_scanned"] - scanned).abs() < 1e-12);
        assert!((quantity["s3_get_requests"] - 2_400.0 * 288.0 * 2.0).abs() < 1e-6);
        // Basic Ingest, one rule, no Timestream, no queue.
        for item in [
            "iot_core_messaging",
            "timestream_writes",
            "timestream_query_tcu_hours",
            "sqs_requests",
        ] {
            assert!(!quantity.contains_key(item), "{item}");
        }
        assert!((quantity["iot_core_rules_triggered"] - 43_200_000.0).abs() < 1e-6);
        // A tiny fleet's query still pays Athena's 10 MB.
        let tiny = Load { devices: 1, ..load };
        let small = firehose_bill(&tiny, &per, &priced()).unwrap();
        let quantity = by_item(&small, |l| l.quantity);
        let minimum = 2_400.0 * 10.0 * 1024.0 * 1024.0 / (GIB * 1024.0);
        assert!((quantity["athena_tb_scanned"] - minimum).abs() < 1e-12);
    }

    #[test]
    fn influxdb_is_its_instance_all_month_and_the_own_lambda() {
        let (load, per) = (hand_load(), hand_per());
        let bill = influxdb_bill(&load, &per, &priced(), 0.25).unwrap();
        assert!((bill.item("influxdb_instance_hours") - 720.0 * 0.25).abs() < 1e-9);
        assert!(bill.item("lambda_requests") > 0.0);
        assert_eq!(bill.item("timestream_query_tcu_hours"), 0.0);
    }
}
