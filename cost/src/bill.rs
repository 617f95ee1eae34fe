//! iotdp's monthly bill: the load's messages through the template's shape (one rule, one
//! action, one SQS message or Kinesis record per publish, batches of up to 1,000 per
//! invocation), priced by the table.

use std::collections::BTreeMap;

use crate::load::Load;
use crate::measure::PerMessage;
use crate::prices::{PriceError, PriceTable};
use crate::{HOURS_PER_MONTH, MESSAGES_PER_INVOCATION, MONTH_SECONDS, reads};

/// IoT Core meters messages, rules and actions in 5 KB increments.
pub(crate) const IOT_INCREMENT: usize = 5 * 1024;
/// SQS meters each 64 KB of a message as one request.
const SQS_CHUNK: usize = 64 * 1024;
/// Lambda's SQS poller receives and deletes up to 10 messages per request.
const MESSAGES_PER_RECEIVE: f64 = 10.0;
/// The ingest function's memory (template.yaml) and its billed time per reading, measured by
/// `make bench` against an endpoint that answers at once (306 ms per 8,943 readings, warm):
/// real AWS latency comes on top, so treat the Lambda line as a floor.
const INGEST_MEMORY_GB: f64 = 0.25;
pub(crate) const INGEST_MS_PER_READING: f64 = 306.2 / 8_943.0;
/// Kinesis meters on-demand data in and out per record rounded up to 1 KB, and provisioned
/// PUT payload units in 25 KB.
const KINESIS_KB: usize = 1024;
const KINESIS_PUT_UNIT: usize = 25 * 1024;
/// A shard takes 1,000 records or 1 MB a second.
const SHARD_RECORDS_PER_SECOND: f64 = 1_000.0;
const SHARD_BYTES_PER_SECOND: f64 = 1024.0 * 1024.0;
/// Provisioned shards are sized for twice the average rate (peaks, uneven keys).
const SHARD_HEADROOM: f64 = 2.0;
/// The stream's retention in template.yaml (`KinesisRetentionHours`): a week, of which all but
/// the first day is billed as extended retention.
const KINESIS_RETENTION_HOURS: f64 = 168.0;
/// Timestream's memory store keeps `MemoryStoreRetentionHours` (template default 24 h, so
/// 5-hour-late gateway batches land there); the magnetic store keeps everything after. The
/// storage lines are the twelfth month's: a year of readings in the magnetic store.
const MAGNETIC_MONTHS_HELD: f64 = 12.0;
pub(crate) const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// One line of a bill.
#[derive(Debug, Clone, PartialEq)]
pub struct BillLine {
    pub service: String,
    pub item: String,
    pub quantity: f64,
    pub usd: f64,
    pub checked: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bill {
    pub lines: Vec<BillLine>,
}

impl Bill {
    pub fn total(&self) -> f64 {
        self.lines.iter().map(|l| l.usd).sum()
    }

    pub fn by_service(&self) -> BTreeMap<String, f64> {
        let mut services = BTreeMap::new();
        for line in &self.lines {
            *services.entry(line.service.clone()).or_insert(0.0) += line.usd;
        }
        services
    }

    /// The dollars of one item (0 when the bill has no such line).
    pub fn item(&self, item: &str) -> f64 {
        self.lines
            .iter()
            .filter(|l| l.item == item)
            .map(|l| l.usd)
            .sum()
    }

    pub(crate) fn add(
        &mut self,
        prices: &PriceTable,
        key: &str,
        quantity: f64,
    ) -> Result<(), PriceError> {
        self.add_as(prices, key, key, quantity)
    }

    /// A line priced as `key`, named `item` (the same price metering another thing).
    pub(crate) fn add_as(
        &mut self,
        prices: &PriceTable,
        key: &str,
        item: &str,
        quantity: f64,
    ) -> Result<(), PriceError> {
        let price = prices.get(key)?;
        self.lines.push(BillLine {
            service: price.service.clone(),
            item: item.to_owned(),
            quantity,
            usd: price.usd_for(quantity),
            checked: price.checked.clone(),
        });
        Ok(())
    }
}

/// How the telemetry rule hands messages to ingest (`Transport`, and with kinesis
/// `KinesisStreamMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Sqs,
    KinesisOnDemand,
    KinesisProvisioned,
}

impl Transport {
    pub const ALL: [Transport; 3] = [
        Transport::Sqs,
        Transport::KinesisOnDemand,
        Transport::KinesisProvisioned,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Transport::Sqs => "sqs",
            Transport::KinesisOnDemand => "kinesis_on_demand",
            Transport::KinesisProvisioned => "kinesis_provisioned",
        }
    }
}

/// How the stack is set up for the bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Devices publish through Basic Ingest (no messaging charge).
    pub basic_ingest: bool,
    pub transport: Transport,
    /// Price the registry as it was before the `last_seen` change (the before-and-after).
    pub registry_before: bool,
}

impl Options {
    pub fn new(basic_ingest: bool, transport: Transport) -> Self {
        Self {
            basic_ingest,
            transport,
            registry_before: false,
        }
    }
}

/// Every device connected all month (the same for iotdp and the baseline).
/// IoT Core's lines every set-up pays: the devices' connection minutes, and the publishes'
/// messaging unless they go through Basic Ingest (which IoT Core does not meter as messages).
pub(crate) fn add_iot_core(
    bill: &mut Bill,
    prices: &PriceTable,
    load: &Load,
    per: &PerMessage,
    basic_ingest: bool,
) -> Result<(), PriceError> {
    bill.add(
        prices,
        "iot_core_connectivity_minutes",
        connected_minutes(load),
    )?;
    if !basic_ingest {
        let iot_units = increments(per.iot_bytes, IOT_INCREMENT);
        bill.add(
            prices,
            "iot_core_messaging",
            load.messages_per_month() * iot_units,
        )?;
    }
    Ok(())
}

pub(crate) fn connected_minutes(load: &Load) -> f64 {
    load.devices as f64 * MONTH_SECONDS / 60.0
}

pub(crate) fn increments(bytes: usize, unit: usize) -> f64 {
    bytes.div_ceil(unit).max(1) as f64
}

/// Provisioned shards for `load`: its average record and byte rate, twice over, against a
/// shard's limits.
pub fn shards_for(load: &Load, per: &PerMessage) -> u64 {
    let records_per_second = load.messages_per_month() / MONTH_SECONDS;
    let bytes_per_second = records_per_second * per.envelope_bytes as f64;
    let needed = (records_per_second / SHARD_RECORDS_PER_SECOND)
        .max(bytes_per_second / SHARD_BYTES_PER_SECOND)
        * SHARD_HEADROOM;
    (needed.ceil() as u64).max(1)
}

/// iotdp's monthly bill for `load`.
pub fn iotdp_bill(
    load: &Load,
    per: &PerMessage,
    options: Options,
    prices: &PriceTable,
) -> Result<Bill, PriceError> {
    let messages = load.messages_per_month();
    let readings = messages * per.readings as f64;
    let iot_units = increments(per.iot_bytes, IOT_INCREMENT);
    let mut bill = Bill::default();
    add_iot_core(&mut bill, prices, load, per, options.basic_ingest)?;
    bill.add(prices, "iot_core_rules_triggered", messages * iot_units)?;
    bill.add(prices, "iot_core_actions", messages * iot_units)?;
    match options.transport {
        Transport::Sqs => {
            let chunks = increments(per.envelope_bytes, SQS_CHUNK);
            // Sent by the rule one at a time; received and deleted by Lambda's poller ten at
            // a time.
            let sqs = messages * chunks + 2.0 * messages / MESSAGES_PER_RECEIVE;
            bill.add(prices, "sqs_requests", sqs)?;
        }
        Transport::KinesisOnDemand => {
            // Each record counts as whole kilobytes, in and out (one consumer).
            let gib = messages * increments(per.envelope_bytes, KINESIS_KB) * 1024.0 / GIB;
            bill.add(prices, "kinesis_on_demand_stream_hours", HOURS_PER_MONTH)?;
            bill.add(prices, "kinesis_on_demand_data_in_gb", gib)?;
            bill.add(prices, "kinesis_on_demand_data_out_gb", gib)?;
            // What is kept past the first day: the days beyond it, of a month's bytes.
            let stored_gib = gib * (KINESIS_RETENTION_HOURS - 24.0) / HOURS_PER_MONTH;
            bill.add(
                prices,
                "kinesis_on_demand_extended_retention_gb_months",
                stored_gib,
            )?;
        }
        Transport::KinesisProvisioned => {
            let shard_hours = shards_for(load, per) as f64 * HOURS_PER_MONTH;
            bill.add(prices, "kinesis_shard_hours", shard_hours)?;
            bill.add(
                prices,
                "kinesis_put_payload_units",
                messages * increments(per.envelope_bytes, KINESIS_PUT_UNIT),
            )?;
            bill.add(
                prices,
                "kinesis_extended_retention_shard_hours",
                shard_hours,
            )?;
        }
    }
    bill.add(
        prices,
        "lambda_requests",
        messages / MESSAGES_PER_INVOCATION,
    )?;
    bill.add(
        prices,
        "lambda_arm_gb_seconds",
        readings * INGEST_MS_PER_READING / 1_000.0 * INGEST_MEMORY_GB,
    )?;
    bill.add(prices, "timestream_writes", messages * per.timestream_kb)?;
    timestream_storage(
        &mut bill,
        prices,
        messages * per.stored_bytes,
        per.deployment.memory_store_hours,
    )?;
    let registry_writes = if options.registry_before {
        per.registry_writes_before
    } else {
        per.registry_writes
    };
    bill.add(
        prices,
        "dynamodb_write_request_units",
        messages * registry_writes,
    )?;
    let registry_reads = match options.transport {
        Transport::Sqs => per.reads.registry_read_units,
        _ => per.reads.registry_read_units_kinesis,
    };
    bill.add(
        prices,
        "dynamodb_read_request_units",
        registry_reads + per.reads.watch_read_units,
    )?;
    // The rollup job: its rows' writes and storage (kept, as raw readings), and the TCUs its
    // queries and the dashboards' hold.
    let rollup_kb = per.reads.rollup_write_kb_per_series_day * 30.0 * reads::series_total(load);
    bill.add_as(
        prices,
        "timestream_writes",
        "timestream_writes_rollups",
        rollup_kb,
    )?;
    let rollup_gb =
        per.reads.rollup_stored_bytes_per_series_day * 30.0 * reads::series_total(load) / GIB;
    bill.add_as(
        prices,
        "timestream_memory_gb_hours",
        "timestream_memory_gb_hours_rollups",
        rollup_gb * per.deployment.memory_store_hours,
    )?;
    bill.add_as(
        prices,
        "timestream_magnetic_gb_months",
        "timestream_magnetic_gb_months_rollups",
        rollup_gb * MAGNETIC_MONTHS_HELD,
    )?;
    bill.add(prices, "timestream_query_tcu_hours", per.reads.tcu_hours)?;
    Ok(bill)
}

/// Timestream storage for a month's `stored_bytes` (billed by the bytes held, unrounded):
/// the memory store's hours of data, held all month, and a year of data in the magnetic store.
pub(crate) fn timestream_storage(
    bill: &mut Bill,
    prices: &PriceTable,
    stored_bytes: f64,
    memory_store_hours: f64,
) -> Result<(), PriceError> {
    let monthly_gb = stored_bytes / GIB;
    bill.add(
        prices,
        "timestream_memory_gb_hours",
        monthly_gb * memory_store_hours,
    )?;
    bill.add(
        prices,
        "timestream_magnetic_gb_months",
        monthly_gb * MAGNETIC_MONTHS_HELD,
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::load::Places;
    use crate::prices::Price;

    /// One figure of each line, by item.
    pub(crate) fn by_item(bill: &Bill, figure: impl Fn(&BillLine) -> f64) -> BTreeMap<&str, f64> {
        bill.lines
            .iter()
            .map(|l| (l.item.as_str(), figure(l)))
            .collect()
    }

    /// Every item at 1 USD per million.
    pub(crate) fn flat_prices() -> PriceTable {
        let flat = |service: &str| Price {
            service: service.into(),
            usd: 1.0,
            per: 1_000_000.0,
            unit: "x".into(),
            source: "https://example.com".into(),
            checked: "test".into(),
            tiers: vec![],
        };
        PriceTable(
            [
                "iot_core_connectivity_minutes",
                "iot_core_messaging",
                "iot_core_rules_triggered",
                "iot_core_actions",
                "sqs_requests",
                "kinesis_on_demand_stream_hours",
                "kinesis_on_demand_data_in_gb",
                "kinesis_on_demand_data_out_gb",
                "kinesis_on_demand_extended_retention_gb_months",
                "kinesis_shard_hours",
                "kinesis_put_payload_units",
                "kinesis_extended_retention_shard_hours",
                "lambda_requests",
                "lambda_arm_gb_seconds",
                "timestream_writes",
                "timestream_memory_gb_hours",
                "timestream_magnetic_gb_months",
                "dynamodb_write_request_units",
                "dynamodb_read_request_units",
                "timestream_query_tcu_hours",
            ]
            .into_iter()
            .map(|k| (k.to_owned(), flat(k)))
            .collect(),
        )
    }

    /// 1,000 devices every 60 s, one reading a message, one rule.
    pub(crate) fn hand_load() -> Load {
        Load {
            name: "test".into(),
            devices: 1_000,
            interval_seconds: 60.0,
            metrics: 1,
            readings_per_message: 1,
            heartbeat_seconds: None,
            rules: 1,
            places: Places::OwnSite,
        }
    }

    /// 1 message = 1 KB, 1 reading, 2 KB of Timestream per message (1 KB for the baseline).
    pub(crate) fn hand_per() -> PerMessage {
        PerMessage {
            iot_bytes: 1_000,
            envelope_bytes: 1_500,
            payload_bytes: 980,
            readings: 1,
            timestream_kb: 2.0,
            // 1,024 bytes held a message: a GiB is 1,048,576 messages.
            stored_bytes: 1_024.0,
            baseline_timestream_kb: 1.0,
            baseline_stored_bytes: 512.0,
            timestream_action_unfit: None,
            registry_writes: 1.0,
            registry_writes_before: 3.0,
            reads: reads::Reads {
                rollup_write_kb_per_series_day: 10.0,
                rollup_stored_bytes_per_series_day: 10.0 * 1024.0,
                tcu_hours: 100.0,
                baseline_tcu_hours: 40.0,
                registry_read_units: 8_000_000.0,
                registry_read_units_kinesis: 1_000_000.0,
                watch_read_units: 2_000_000.0,
                ..reads::Reads::default()
            },
            deployment: reads::Deployment::default(),
        }
    }

    /// A hand-computed case: 1,000 devices every 60 s, 1 message = 1 KB, 1 reading, 2 KB of
    /// Timestream per message, prices of 1 USD per million everywhere.
    #[test]
    fn the_arithmetic_is_the_hand_computed_one() {
        let (table, load, per) = (flat_prices(), hand_load(), hand_per());
        // 1,000 × 43,200 minutes = 43.2 M messages a month.
        let bill = iotdp_bill(&load, &per, Options::new(false, Transport::Sqs), &table).unwrap();
        let usd = by_item(&bill, |l| l.usd);
        assert!((usd["iot_core_messaging"] - 43.2).abs() < 1e-9);
        // 1,000 devices connected 43,200 minutes each.
        assert!((usd["iot_core_connectivity_minutes"] - 43.2).abs() < 1e-9);
        assert!((usd["iot_core_actions"] - 43.2).abs() < 1e-9);
        // Sent once, received and deleted in tens: 1.2 requests per message.
        assert!((usd["sqs_requests"] - 51.84).abs() < 1e-9);
        assert!((usd["lambda_requests"] - 0.0432).abs() < 1e-9);
        assert!((usd["timestream_writes"] - 86.4).abs() < 1e-9);
        // 43.2 M messages of 1,024 bytes held are 41.2 GiB a month: 24 hours of it in the
        // memory store all month, a year of it in the magnetic store.
        let quantity = by_item(&bill, |l| l.quantity);
        let monthly_gb = 43_200_000.0 / (1024.0 * 1024.0);
        assert!((quantity["timestream_memory_gb_hours"] - monthly_gb * 24.0).abs() < 1e-9);
        assert!((quantity["timestream_magnetic_gb_months"] - monthly_gb * 12.0).abs() < 1e-9);
        // One registry write per message.
        assert!((usd["dynamodb_write_request_units"] - 43.2).abs() < 1e-9);
        // Reads: 8 M by ingest on SQS, 2 M by the watch; 1 M by ingest on Kinesis.
        assert!((usd["dynamodb_read_request_units"] - 10.0).abs() < 1e-9);
        // Rollups: 10 KB a series a day, 1,000 series, 30 days: 0.3 M KB, stored like raw.
        assert!((usd["timestream_writes_rollups"] - 0.3).abs() < 1e-9);
        let rollup_gb = 300_000.0 / (1024.0 * 1024.0);
        assert!(
            (quantity["timestream_magnetic_gb_months_rollups"] - rollup_gb * 12.0).abs() < 1e-9
        );
        assert!((quantity["timestream_query_tcu_hours"] - 100.0).abs() < 1e-9);
        let basic = iotdp_bill(&load, &per, Options::new(true, Transport::Sqs), &table).unwrap();
        assert!((bill.total() - basic.total() - 43.2).abs() < 1e-9);
        let before = iotdp_bill(
            &load,
            &per,
            Options {
                registry_before: true,
                ..Options::new(false, Transport::Sqs)
            },
            &table,
        )
        .unwrap();
        assert!((before.total() - bill.total() - 2.0 * 43.2).abs() < 1e-9);

        // Kinesis on demand: 1,500 B is 2 KB a record, in and out: 43.2 M × 2 KiB =
        // 82.40 GiB; extended retention keeps 6 of the month's 30 days: 16.48 GiB-months;
        // the stream runs 720 hours. No SQS line.
        let on_demand = iotdp_bill(
            &load,
            &per,
            Options::new(false, Transport::KinesisOnDemand),
            &table,
        )
        .unwrap();
        let usd = by_item(&on_demand, |l| l.quantity);
        assert!(!usd.contains_key("sqs_requests"));
        let gib = 43_200_000.0 * 2.0 / (1024.0 * 1024.0);
        assert!((usd["kinesis_on_demand_data_in_gb"] - gib).abs() < 1e-9);
        assert!((usd["kinesis_on_demand_data_out_gb"] - gib).abs() < 1e-9);
        assert!(
            (usd["kinesis_on_demand_extended_retention_gb_months"] - gib * 144.0 / 720.0).abs()
                < 1e-9
        );
        assert!((usd["kinesis_on_demand_stream_hours"] - 720.0).abs() < 1e-9);
        // Provisioned: 16.7 records/s is one shard (twice over: still one); one 25 KB PUT
        // unit a record.
        assert_eq!(shards_for(&load, &per), 1);
        let provisioned = iotdp_bill(
            &load,
            &per,
            Options::new(false, Transport::KinesisProvisioned),
            &table,
        )
        .unwrap();
        let quantity = by_item(&provisioned, |l| l.quantity);
        assert!((quantity["kinesis_shard_hours"] - 720.0).abs() < 1e-9);
        assert!((quantity["kinesis_put_payload_units"] - 43_200_000.0).abs() < 1e-9);
        // 5,000 records/s of 300 B: 5 shards by records, twice over: 10.
        let thermostats = Load {
            devices: 50_000,
            interval_seconds: 10.0,
            ..load.clone()
        };
        let small = PerMessage {
            envelope_bytes: 300,
            ..per
        };
        assert_eq!(shards_for(&thermostats, &small), 10);
    }
}
