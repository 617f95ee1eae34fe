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

pub mod reads;

use std::collections::BTreeMap;

use iotdp::adapters::timestream::{MAX_RECORDS_PER_WRITE, build_write_request};
use iotdp::devices::cache::DEFAULT_SEEN_INTERVAL;
use iotdp::domain::LocationPath;
use iotdp::ingest::batch::prepare_batch;
use iotdp::ingest::envelope::encode_envelope;
use iotdp::ingest::validation::TimeWindow;

/// Seconds in the month the model bills: 30 days.
pub const MONTH_SECONDS: f64 = 30.0 * 86_400.0;
/// IoT Core meters messages, rules and actions in 5 KB increments.
const IOT_INCREMENT: usize = 5 * 1024;
/// SQS meters each 64 KB of a message as one request.
const SQS_CHUNK: usize = 64 * 1024;
/// Messages per ingest invocation at the template's `IngestBatchSize` under load.
const MESSAGES_PER_INVOCATION: f64 = 1_000.0;
/// Lambda's SQS poller receives and deletes up to 10 messages per request.
const MESSAGES_PER_RECEIVE: f64 = 10.0;
/// The ingest function's memory (template.yaml) and its billed time per reading, measured by
/// `make bench` against an endpoint that answers at once (306 ms per 8,943 readings, warm):
/// real AWS latency comes on top, so treat the Lambda line as a floor.
const INGEST_MEMORY_GB: f64 = 0.25;
const INGEST_MS_PER_READING: f64 = 306.2 / 8_943.0;
/// Messages of one device driven through the registry cache to count its writes.
const SEEN_SAMPLE: usize = 3_600;
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
const HOURS_PER_MONTH: f64 = MONTH_SECONDS / 3_600.0;
/// Timestream's memory store keeps `MemoryStoreRetentionHours` (template default 24 h, so
/// 5-hour-late gateway batches land there); the magnetic store keeps everything after. The
/// storage lines are the twelfth month's: a year of readings in the magnetic store.
const MAGNETIC_MONTHS_HELD: f64 = 12.0;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// One priced item of `infra/prices.toml`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Price {
    pub service: String,
    pub usd: f64,
    pub per: f64,
    pub unit: String,
    pub source: String,
    pub checked: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable(pub BTreeMap<String, Price>);

impl PriceTable {
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str::<BTreeMap<String, Price>>(text)
            .map(Self)
            .map_err(|e| format!("the price table: {e}"))
    }

    fn get(&self, key: &str) -> Result<&Price, String> {
        self.0.get(key).ok_or_else(|| {
            format!("the price table has no [{key}]: add it (see infra/prices.toml)")
        })
    }
}

/// A load: how many devices report how often, with how many metrics, in how many readings per
/// message (gateway batches carry several).
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    pub name: String,
    pub devices: u64,
    pub interval_seconds: f64,
    pub metrics: usize,
    pub readings_per_message: usize,
    /// The devices' heartbeat (`no_data` after it), which sets how fresh `last_seen` is kept.
    pub heartbeat_seconds: Option<u32>,
    /// Alert rules each reading is evaluated by (the baseline prices one IoT Events detector
    /// per rule).
    pub rules: u32,
    /// Where the devices sit in the hierarchy: the rollup job keeps a series per place too.
    pub places: Places,
}

/// How a load's devices sit in the site/zone/section/spot hierarchy, which decides how many
/// place series the rollup job keeps beside the devices' own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Places {
    /// Each device its own site (a battery box per home; a load you describe by its numbers).
    OwnSite,
    /// Homes of `rooms` devices, one per room: `home/room`.
    Homes { rooms: usize },
    /// Walls of `spots` sensors in `zones` zones of `sections` sections each:
    /// `wall/zone/section/spot`.
    Walls {
        spots: usize,
        zones: usize,
        sections: usize,
    },
}

impl Places {
    /// Series of one whole unit (a site, a home, a wall): the rollup sample runs that many, so
    /// the places they share are counted once.
    pub fn unit(self) -> usize {
        match self {
            Places::OwnSite => 1,
            Places::Homes { rooms } => rooms,
            Places::Walls { spots, .. } => spots,
        }
    }

    /// The path of the unit's `n`th series.
    pub fn path(self, unit: usize, n: usize) -> String {
        match self {
            Places::OwnSite => format!("site-{unit}"),
            Places::Homes { .. } => format!("home-{unit}/room-{n}"),
            Places::Walls {
                spots,
                zones,
                sections,
            } => {
                let per_zone = spots.div_ceil(zones.max(1));
                let zone = n / per_zone;
                let per_section = per_zone.div_ceil(sections.max(1));
                let section = n % per_zone / per_section;
                format!("wall-{unit}/zone-{zone}/section-{section}/spot-{n:02}")
            }
        }
    }
}

impl Load {
    /// The reference customers, as docs/cost.md defines them.
    pub fn references() -> Vec<Load> {
        vec![
            Load {
                name: "battery boxes: 100,000 units every 5 minutes, 6 metrics".into(),
                devices: 100_000,
                interval_seconds: 300.0,
                metrics: 6,
                readings_per_message: 1,
                heartbeat_seconds: Some(900),
                rules: 3,
                places: Places::OwnSite,
            },
            Load {
                name: "thermostats: 5,000 messages/s of 2 metrics".into(),
                devices: 50_000,
                interval_seconds: 10.0,
                metrics: 2,
                readings_per_message: 1,
                heartbeat_seconds: None,
                rules: 2,
                places: Places::Homes { rooms: 3 },
            },
            Load {
                name: "green walls: 1,000 walls × 50 spots hourly, 5-hour gateway batches".into(),
                devices: 1_000,
                interval_seconds: 5.0 * 3_600.0,
                metrics: 2,
                readings_per_message: 50 * 5,
                heartbeat_seconds: Some(6 * 3_600),
                rules: 2,
                places: Places::Walls {
                    spots: 50,
                    zones: 2,
                    sections: 5,
                },
            },
        ]
    }

    pub fn messages_per_month(&self) -> f64 {
        self.devices as f64 * MONTH_SECONDS / self.interval_seconds
    }

    pub fn readings_per_month(&self) -> f64 {
        self.messages_per_month() * self.readings_per_message as f64
    }
}

/// What one message of a load costs in metered units, measured through the real code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerMessage {
    /// Payload and topic, as IoT Core meters a publish.
    pub iot_bytes: usize,
    /// The rule's envelope: an SQS message body or a Kinesis record.
    pub envelope_bytes: usize,
    pub readings: usize,
    /// Timestream 1 KB write units, iotdp's multi-measure requests.
    pub timestream_kb: f64,
    /// Timestream 1 KB write units, the built-in action's single-measure records.
    pub baseline_timestream_kb: f64,
    /// DynamoDB write units per message for `last_seen` and the silence deadline: the
    /// registry's per-device writes plus the message's share of the heard log's digests.
    pub registry_writes: f64,
    /// The same at the former `LastSeenIntervalSeconds` of 60 and without the heard log (every
    /// watched device's deadline a registry write), for the before-and-after.
    pub registry_writes_before: f64,
    /// The load's reads a month: the rollup job, dashboards, DynamoDB reads.
    pub reads: reads::Reads,
    /// The deployment priced.
    pub deployment: reads::Deployment,
}

/// One sample message of `load` from device `n`, as a device would publish it.
pub fn sample_payload(load: &Load, n: usize, now_ms: i64) -> String {
    let metrics = |k: usize| -> String {
        (0..load.metrics)
            .map(|m| format!(r#""metric_{m}":{:.3}"#, 20.0 + (k + m) as f64 * 0.137))
            .collect::<Vec<_>>()
            .join(",")
    };
    if load.readings_per_message == 1 {
        format!(r#"{{"ts":{now_ms},"metrics":{{{}}}}}"#, metrics(n))
    } else {
        let items: Vec<String> = (0..load.readings_per_message)
            .map(|i| {
                format!(
                    r#"{{"device_id":"spot-{n}-{:02}","ts":{},"metrics":{{{}}}}}"#,
                    i % 50,
                    now_ms - (i / 50) as i64 * 3_600_000,
                    metrics(i)
                )
            })
            .collect();
        format!(r#"{{"readings":[{}]}}"#, items.join(","))
    }
}

/// Measure `load` through the ingest path's own decoding, validation and request building,
/// over `samples` messages.
/// `samples` should be a batch's worth (the ingest function gets up to 1,000 messages), so
/// the requests are as full as they are deployed.
pub async fn measure(load: &Load, samples: usize) -> Result<PerMessage, String> {
    measure_with(load, samples, &reads::Deployment::default()).await
}

/// [`measure`] for `deployment`.
pub async fn measure_with(
    load: &Load,
    samples: usize,
    deployment: &reads::Deployment,
) -> Result<PerMessage, String> {
    let now_ms = 1_764_000_000_000;
    let bodies: Vec<(String, String, usize)> = (0..samples)
        .map(|n| {
            let device = format!("device-{n:06}");
            let topic = iotdp::domain::topic::telemetry_topic(&device);
            let payload = sample_payload(load, n, now_ms);
            let iot = payload.len() + topic.len();
            let envelope = encode_envelope(payload.as_bytes(), &topic, now_ms, Some(&device));
            (format!("m{n}"), envelope, iot)
        })
        .collect();
    let batch = prepare_batch(
        bodies
            .iter()
            .map(|(id, body, _)| (id.as_str(), body.as_str())),
        TimeWindow::with_retention_days(73_000),
    );
    if !batch.rejections.is_empty() {
        return Err(format!(
            "the sample of '{}' was rejected: {:?}",
            load.name, batch.rejections[0]
        ));
    }
    // Admission puts the registry's type and place on every reading: they are dimensions.
    let readings: Vec<_> = batch
        .readings
        .into_iter()
        .map(|r| {
            r.with_place(
                "sensor",
                LocationPath::parse("site-01/zone-a/section-1").unwrap(),
            )
        })
        .collect();
    // The store writer sends the batch sorted by device, in requests of up to 100 records.
    let mut sorted = readings.clone();
    sorted.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    let mut kb = 0.0;
    for request in sorted.chunks(MAX_RECORDS_PER_WRITE) {
        let built = build_write_request(request).map_err(|e| e.to_string())?;
        kb += (request_bytes(&built) as f64 / 1024.0).ceil();
    }
    // The built-in action: a record per attribute, each its own 1 KB write.
    let baseline_kb = readings.iter().map(|r| r.metrics.len() as f64).sum::<f64>();
    let n = samples as f64;
    let after = registry_writes_per_message(load, DEFAULT_SEEN_INTERVAL).await?;
    let before = registry_writes_per_message(load, std::time::Duration::from_secs(60)).await?;
    let registry_writes = after.write_units();
    let registry_writes_before = before.write_units();
    let reads =
        reads::measure_reads(load, deployment, after.heard, after.heard_entry_bytes).await?;
    Ok(PerMessage {
        iot_bytes: (bodies.iter().map(|b| b.2).sum::<usize>() as f64 / n).ceil() as usize,
        envelope_bytes: (bodies.iter().map(|b| b.1.len()).sum::<usize>() as f64 / n).ceil()
            as usize,
        readings: readings.len() / samples,
        timestream_kb: kb / n,
        baseline_timestream_kb: baseline_kb / n,
        registry_writes,
        registry_writes_before,
        reads,
        deployment: *deployment,
    })
}

/// What keeping `last_seen` and the silence deadline costs per message of a device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegistryCost {
    /// Per-device registry writes (one write unit each: a record is under 1 KB).
    pub writes: f64,
    /// Deadlines appended to the heard log.
    pub heard: f64,
    /// Bytes of one logged deadline in a digest, as the adapter encodes it.
    pub heard_entry_bytes: f64,
}

/// A digest's item beyond its entries: the attribute names and the key, base and expiry
/// values (`pk`, `sk`, `base`, `heard`, `expires_at`), as DynamoDB sizes an item.
const DIGEST_ITEM_OVERHEAD_BYTES: f64 = 80.0;

impl RegistryCost {
    /// Write units per message: the registry's writes, and the message's share of its
    /// invocation's digest (one digest per invocation of distinct devices, metered by the KB).
    pub fn write_units(&self) -> f64 {
        let entries = MESSAGES_PER_INVOCATION * self.heard;
        let digest_units = if entries > 0.0 {
            ((DIGEST_ITEM_OVERHEAD_BYTES + entries * self.heard_entry_bytes) / 1024.0).ceil()
        } else {
            0.0
        };
        self.writes + digest_units / MESSAGES_PER_INVOCATION
    }
}

/// One device's messages, `interval_seconds` apart, through the ingest function's registry
/// cache with `LastSeenIntervalSeconds` at `seen_interval`: the registry writes and heard-log
/// entries it makes per message, counted by the memory registry.
pub async fn registry_writes_per_message(
    load: &Load,
    seen_interval: std::time::Duration,
) -> Result<RegistryCost, String> {
    use iotdp::devices::cache::{CachedRegistry, RegistryCacheSettings};
    use iotdp::devices::ports::DeviceLookup;
    use std::sync::atomic::Ordering::Relaxed;
    let start = 1_764_000_000_000;
    // Named as the fleet's devices are, so a logged deadline has its real size.
    let id = "device-000001";
    let mut record = iotdp::devices::record::DeviceRecord::new(id, "sensor", start);
    record.heartbeat_seconds = load.heartbeat_seconds;
    let registry = std::sync::Arc::new(iotdp_memory::MemoryRegistry::with([record]));
    let cache = CachedRegistry::new(
        registry.clone(),
        RegistryCacheSettings {
            ttl: std::time::Duration::from_secs(3_600),
            seen_interval,
        },
    );
    cache.lookup(&[id]).await.map_err(|e| e.to_string())?;
    let (writes, logged) = (
        registry.seen_writes.load(Relaxed),
        registry.heard_entries.load(Relaxed),
    );
    for n in 1..=SEEN_SAMPLE {
        let at = start + (n as f64 * load.interval_seconds * 1_000.0) as i64;
        cache.record_seen(&[(id, at)]).await;
    }
    let heard = registry.heard_entries.load(Relaxed) - logged;
    Ok(RegistryCost {
        writes: (registry.seen_writes.load(Relaxed) - writes) as f64 / SEEN_SAMPLE as f64,
        heard: heard as f64 / SEEN_SAMPLE as f64,
        heard_entry_bytes: digest_entry_bytes(load),
    })
}

/// A logged deadline's bytes in an invocation's digest, as the adapter encodes it: the
/// fleet's device ids, heard over a minute (a batch's receive times, with some backlog).
fn digest_entry_bytes(load: &Load) -> f64 {
    use iotdp::devices::heard::{HeardEntry, encode};
    let heartbeat = load.heartbeat_seconds.unwrap_or(900);
    let entries: Vec<HeardEntry> = (0..MESSAGES_PER_INVOCATION as i64)
        .map(|n| HeardEntry::new(&format!("device-{n:06}"), n * 60, heartbeat))
        .collect();
    let body: usize = encode(&entries).iter().map(|d| d.body.len()).sum();
    body as f64 / entries.len() as f64
}

/// Timestream's write size of a request: per record its timestamp (8 bytes), dimension names
/// and values, measure names and values; the common attributes once.
fn request_bytes(request: &iotdp::adapters::timestream::TimestreamWriteRequest) -> usize {
    8 * request.records.len()
        + record_bytes(&request.common)
        + request.records.iter().map(record_bytes).sum::<usize>()
}

/// One record's metered bytes beyond its timestamp: dimension names and values, measure
/// names and values (8 bytes for a number), the measure name.
fn record_bytes(r: &aws_sdk_timestreamwrite::types::Record) -> usize {
    let dimensions: usize = r
        .dimensions()
        .iter()
        .map(|d| d.name().len() + d.value().len())
        .sum();
    let measures: usize = r
        .measure_values()
        .iter()
        .map(|m| m.name().len() + measure_bytes(m.r#type().as_str(), m.value()))
        .sum();
    dimensions + measures + r.measure_name().map_or(0, str::len)
}

fn measure_bytes(kind: &str, value: &str) -> usize {
    match kind {
        "BOOLEAN" => 1,
        "DOUBLE" | "BIGINT" => 8,
        _ => value.len(),
    }
}

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

    fn add(&mut self, prices: &PriceTable, key: &str, quantity: f64) -> Result<(), String> {
        self.add_as(prices, key, key, quantity)
    }

    /// A line priced as `key`, named `item` (the same price metering another thing).
    fn add_as(
        &mut self,
        prices: &PriceTable,
        key: &str,
        item: &str,
        quantity: f64,
    ) -> Result<(), String> {
        let price = prices.get(key)?;
        self.lines.push(BillLine {
            service: price.service.clone(),
            item: item.to_owned(),
            quantity,
            usd: quantity / price.per * price.usd,
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
fn connected_minutes(load: &Load) -> f64 {
    load.devices as f64 * MONTH_SECONDS / 60.0
}

fn increments(bytes: usize, unit: usize) -> f64 {
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
) -> Result<Bill, String> {
    let messages = load.messages_per_month();
    let readings = messages * per.readings as f64;
    let iot_units = increments(per.iot_bytes, IOT_INCREMENT);
    let mut bill = Bill::default();
    bill.add(
        prices,
        "iot_core_connectivity_minutes",
        connected_minutes(load),
    )?;
    if !options.basic_ingest {
        bill.add(prices, "iot_core_messaging", messages * iot_units)?;
    }
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
        messages * per.timestream_kb,
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
    let rollup_gb = rollup_kb / (1024.0 * 1024.0);
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

/// Timestream storage for a month's `written_kb` (the metered write size standing in for
/// the stored size): the memory store's hours of data, held all month, and a year of data in
/// the magnetic store.
fn timestream_storage(
    bill: &mut Bill,
    prices: &PriceTable,
    written_kb: f64,
    memory_store_hours: f64,
) -> Result<(), String> {
    let monthly_gb = written_kb / (1024.0 * 1024.0);
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

/// The baseline's monthly bill: the built-in Timestream action and IoT Events alarms.
pub fn baseline_bill(load: &Load, per: &PerMessage, prices: &PriceTable) -> Result<Bill, String> {
    let messages = load.messages_per_month();
    let iot_units = increments(per.iot_bytes, IOT_INCREMENT);
    let mut bill = Bill::default();
    bill.add(
        prices,
        "iot_core_connectivity_minutes",
        connected_minutes(load),
    )?;
    bill.add(prices, "iot_core_messaging", messages * iot_units)?;
    // One rule to Timestream, one to IoT Events: each triggered, each with its action.
    bill.add(
        prices,
        "iot_core_rules_triggered",
        2.0 * messages * iot_units,
    )?;
    bill.add(prices, "iot_core_actions", 2.0 * messages * iot_units)?;
    bill.add(
        prices,
        "timestream_writes",
        messages * per.baseline_timestream_kb,
    )?;
    timestream_storage(
        &mut bill,
        prices,
        messages * per.baseline_timestream_kb,
        per.deployment.memory_store_hours,
    )?;
    // The same dashboards, on the raw table.
    bill.add(
        prices,
        "timestream_query_tcu_hours",
        per.reads.baseline_tcu_hours,
    )?;
    let evaluation_units = increments(per.iot_bytes, 1024);
    bill.add(
        prices,
        "iot_events_message_evaluations",
        messages * evaluation_units * f64::from(load.rules),
    )?;
    Ok(bill)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One figure of each line, by item.
    fn by_item(bill: &Bill, figure: impl Fn(&BillLine) -> f64) -> BTreeMap<&str, f64> {
        bill.lines
            .iter()
            .map(|l| (l.item.as_str(), figure(l)))
            .collect()
    }

    fn prices() -> PriceTable {
        PriceTable::parse(include_str!("../../infra/prices.toml")).unwrap()
    }

    #[test]
    fn the_price_table_parses_and_names_its_sources() {
        let table = prices();
        assert!(table.0.len() >= 10);
        for (key, price) in &table.0 {
            assert!(price.source.starts_with("https://"), "{key}");
            assert!(price.usd > 0.0 && price.per > 0.0, "{key}");
        }
        assert!(
            PriceTable::parse("[x]\nusd = 1")
                .unwrap_err()
                .contains("price table")
        );
    }

    /// A hand-computed case: 1,000 devices every 60 s, 1 message = 1 KB, 1 reading, 2 KB of
    /// Timestream per message, prices of 1 USD per million everywhere.
    #[test]
    fn the_arithmetic_is_the_hand_computed_one() {
        let flat = |service: &str| Price {
            service: service.into(),
            usd: 1.0,
            per: 1_000_000.0,
            unit: "x".into(),
            source: "https://example.com".into(),
            checked: "test".into(),
        };
        let table = PriceTable(
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
        );
        let load = Load {
            name: "test".into(),
            devices: 1_000,
            interval_seconds: 60.0,
            metrics: 1,
            readings_per_message: 1,
            heartbeat_seconds: None,
            rules: 1,
            places: Places::OwnSite,
        };
        let per = PerMessage {
            iot_bytes: 1_000,
            envelope_bytes: 1_500,
            readings: 1,
            timestream_kb: 2.0,
            baseline_timestream_kb: 1.0,
            registry_writes: 1.0,
            registry_writes_before: 3.0,
            reads: reads::Reads {
                rollup_write_kb_per_series_day: 10.0,
                tcu_hours: 100.0,
                baseline_tcu_hours: 40.0,
                registry_read_units: 8_000_000.0,
                registry_read_units_kinesis: 1_000_000.0,
                watch_read_units: 2_000_000.0,
                ..reads::Reads::default()
            },
            deployment: reads::Deployment::default(),
        };
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
        // 86.4 M KB is 82.40 GiB a month: 24 hours of it in the memory store all month
        // (1,977.5 GB-hours), a year of it in the magnetic store (988.8 GB-months).
        let quantity = by_item(&bill, |l| l.quantity);
        let monthly_gb = 86_400_000.0 / (1024.0 * 1024.0);
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

    /// The registry cache writes a device's `last_seen` when it moved by more than the
    /// interval (an hour), and logs a watched device's deadline in between whenever it moved by
    /// more than a tenth of the heartbeat: what the count must show.
    #[tokio::test]
    async fn registry_writes_are_the_ones_the_cache_makes() {
        let load = |interval_seconds: f64, heartbeat_seconds: Option<u32>| Load {
            name: "x".into(),
            devices: 1,
            interval_seconds,
            metrics: 1,
            readings_per_message: 1,
            heartbeat_seconds,
            rules: 0,
            places: Places::OwnSite,
        };
        let minute = std::time::Duration::from_secs(60);
        let cost =
            |l, interval| async move { registry_writes_per_message(&l, interval).await.unwrap() };
        // Every 10 s, no heartbeat: moved by more than an hour at the 361st message (it was
        // the 7th at the former one minute). Nothing is logged for an unwatched device.
        let unwatched = cost(load(10.0, None), DEFAULT_SEEN_INTERVAL).await;
        assert!(
            (unwatched.writes - 1.0 / 361.0).abs() < 0.001,
            "{unwatched:?}"
        );
        assert_eq!(unwatched.heard, 0.0);
        let former = cost(load(10.0, None), minute).await;
        assert!((former.writes - 1.0 / 7.0).abs() < 0.01, "{former:?}");
        // A device reporting every minute, the issue's "$100 a day at 100,000 devices": from
        // every second message to one in 61.
        let per_minute = cost(load(60.0, None), DEFAULT_SEEN_INTERVAL).await;
        assert!(
            (per_minute.writes - 1.0 / 61.0).abs() < 0.002,
            "{per_minute:?}"
        );
        // The battery boxes: every 5 minutes with a 15-minute heartbeat. A registry write every
        // 13th message; the other 12 go to the heard log (a tenth of the heartbeat is 90 s).
        // At the former one minute with no log, every message was a registry write.
        let battery = cost(load(300.0, Some(900)), DEFAULT_SEEN_INTERVAL).await;
        assert!((battery.writes - 1.0 / 13.0).abs() < 0.002, "{battery:?}");
        assert!((battery.heard - 12.0 / 13.0).abs() < 0.002, "{battery:?}");
        // "device-000123 42" and a line break, mostly.
        assert!(
            (16.0..=17.0).contains(&battery.heard_entry_bytes),
            "{battery:?}"
        );
        assert_eq!(cost(load(300.0, Some(900)), minute).await.writes, 1.0);
        // Its write units: 1/13 + a 1,000-entry digest's ceil((80 + 923 × 16.9) / 1024) = 16
        // units shared by 1,000 messages; under a tenth of the former one a message.
        let units = battery.write_units();
        assert!((units - (1.0 / 13.0 + 0.016)).abs() < 0.002, "{units}");
        assert!(units <= 0.1, "{units}");
        // Every 10 s with a 1-hour heartbeat: logged when it moved by more than a tenth
        // (360 s: every 37th message, 9 times), written hourly (every 361st).
        let hourly = cost(load(10.0, Some(3_600)), DEFAULT_SEEN_INTERVAL).await;
        assert!((hourly.writes - 1.0 / 361.0).abs() < 0.001, "{hourly:?}");
        assert!((hourly.heard - 9.0 / 361.0).abs() < 0.001, "{hourly:?}");
    }

    #[tokio::test]
    async fn the_reference_loads_go_through_the_real_ingest_code() {
        for load in Load::references() {
            let per = measure(&load, 20).await.unwrap();
            assert_eq!(per.readings, load.readings_per_message, "{}", load.name);
            assert!(per.timestream_kb > 0.0, "{}", load.name);
            // Multi-measure records with common attributes write less than a record per
            // attribute.
            assert!(
                per.timestream_kb < per.baseline_timestream_kb,
                "{}: {per:?}",
                load.name
            );
        }
    }
}
