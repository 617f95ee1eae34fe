//! The lake's bill (`TimeSeriesStore=lake`: Parquet on S3): its requests counted by a small
//! pure model of how the lake writes, compacts and reads, its bytes measured by encoding the
//! load's readings with the real writer (`adapters::lake::format::encode`), and everything
//! else exactly as on the other stores (IoT Core, SQS or Kinesis, ingest's Lambda, DynamoDB).
//!
//! How the lake behaves, as priced:
//! - **Ingest**, per invocation and per hour partition its readings fall in: a PUT of the
//!   object (`incoming/raw/date=/hour=/`), a GET of the hour's manifest and a conditional PUT
//!   of it; and a PUT of a mark when the manifest had no uncompacted object (the hour's first,
//!   or the first after a compaction).
//! - **Compaction**, in the rollup function's scheduled run: a LIST of `marks/` a run; per
//!   partition compacted a GET of the manifest, a GET of each object in it (the compacted one
//!   too), a PUT of the new compacted object and a PUT of the manifest (DELETEs are free). A
//!   partition is compacted once closed (10 minutes past its end), and while open once it
//!   holds 32 uncompacted objects; late data reopens it.
//! - **Rollups** are written by the job as one object a (tier, partition) a run, partitions a
//!   day for 1m and 1h and a month for 1d, and compacted by the same rules; the job reads the
//!   raw hours and rollup partitions it computes from (a manifest and its objects each), as
//!   the dashboards do (counted through the real job and planner in [`crate::reads`]).
//! - **Storage**: a year of compacted Parquet (the twelfth month's bill, as Timestream's):
//!   raw readings in S3 Standard for `raw_transition_days`, then in `raw_class`; rollups in
//!   Standard.
//! - **Athena**: `analyst_queries` a month, a third each of the three queries the lake's docs
//!   show: a device's daily energy from a year of 1-day rollups, a site's hourly average over
//!   a year from the 1-hour rollups, and the devices silent last week from a week of raw
//!   readings' `device_id` and `time` columns.

use iotdp::adapters::lake::format::{FormatError, encode};
use iotdp::domain::{LocationPath, Metric, MetricValue, Reading};
use iotdp::rollup::tier::Tier;

use crate::bill::{Bill, GIB, Options, iotdp_bill};
use crate::load::Load;
use crate::measure::PerMessage;
use crate::prices::{PriceError, PriceTable};
pub use crate::reads::rollup_partition;
use crate::{HOURS_PER_MONTH, MESSAGES_PER_INVOCATION};

/// A partition closes this long after its end (late readings still expected).
pub const CLOSE_GRACE_SECONDS: f64 = 600.0;
/// An open partition is compacted once it holds this many uncompacted objects.
pub const OPEN_COMPACTION_OBJECTS: usize = 32;
/// The lake store's `max_batch_len`: the store writer's chunk, each an object an hour.
const READINGS_PER_WRITE: f64 = 10_000.0;
/// The template's `IngestBatchingWindowSeconds` (5) and the SQS event source's five pollers,
/// each gathering its own batch: an invocation gathers a fifth of five seconds of messages,
/// at least one, at most `IngestBatchSize` (1,000).
const BATCHING_WINDOW_SECONDS: f64 = 5.0;
const POLLERS: f64 = 5.0;
/// The rollup function's `MemorySize` in template.yaml (512 MB): compaction runs there.
const ROLLUP_MEMORY_GB: f64 = 0.5;
/// Decoding and re-encoding a row (one metric value) when a partition is compacted, in
/// seconds: 1 / 70,000 rows a second (the green walls' sample hour, the slowest of the three
/// reference loads: 118,000 and 108,000 for the others), measured by
/// `cargo run -p iotdp-cost --example compaction_speed` (2026-12-08, an unoptimised dev
/// build on a shared 2-core machine: a release build is faster, so this bounds the line from
/// above).
pub const COMPACTION_SECONDS_PER_ROW: f64 = 1.0 / 70_000.0;
/// Athena bills at least 10 MB a query, rounded up to the MB.
const ATHENA_MINIMUM_BYTES: f64 = 10.0 * 1024.0 * 1024.0;
const MB: f64 = 1024.0 * 1024.0;
/// A Parquet object read by a query: its footer, then its column chunks (as the Firehose
/// baseline's).
const ATHENA_GETS_PER_OBJECT: f64 = 2.0;
/// S3 Standard-IA and Glacier Instant Retrieval bill an object of less than 128 KB as 128 KB.
const MINIMUM_BILLED_OBJECT_BYTES: f64 = 128.0 * 1024.0;
/// The months of data held (the twelfth month's bill, as Timestream's storage lines).
const MONTHS_HELD: f64 = 12.0;
const DAYS_PER_MONTH: f64 = 30.0;
const HOUR_SECONDS: f64 = 3_600.0;
const DAY_SECONDS: f64 = 86_400.0;
/// Rows the measured sample hour aims at (enough for the dictionary and zstd's steady state).
const SAMPLE_ROWS: f64 = 100_000.0;

/// Where raw readings go after `raw_transition_days` (the lifecycle rule's storage class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageClass {
    Standard,
    StandardIa,
    GlacierIr,
}

impl StorageClass {
    /// As S3's API names it: `STANDARD`, `STANDARD_IA`, `GLACIER_IR`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "STANDARD" => Some(Self::Standard),
            "STANDARD_IA" => Some(Self::StandardIa),
            "GLACIER_IR" => Some(Self::GlacierIr),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Standard => "STANDARD",
            Self::StandardIa => "STANDARD_IA",
            Self::GlacierIr => "GLACIER_IR",
        }
    }

    fn storage_key(self) -> &'static str {
        match self {
            Self::Standard => "s3_standard_gb_months",
            Self::StandardIa => "s3_standard_ia_gb_months",
            Self::GlacierIr => "s3_glacier_ir_gb_months",
        }
    }

    fn transition_key(self) -> Option<&'static str> {
        match self {
            Self::Standard => None,
            Self::StandardIa => Some("s3_lifecycle_transitions_standard_ia"),
            Self::GlacierIr => Some("s3_lifecycle_transitions_glacier_ir"),
        }
    }
}

/// The lake's own parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LakeOptions {
    /// Days raw readings stay in S3 Standard before the lifecycle rule moves them.
    pub raw_transition_days: f64,
    pub raw_class: StorageClass,
    /// Athena queries analysts run a month.
    pub analyst_queries: f64,
}

impl Default for LakeOptions {
    fn default() -> Self {
        Self {
            raw_transition_days: 90.0,
            raw_class: StorageClass::GlacierIr,
            analyst_queries: 100.0,
        }
    }
}

/// When the scheduled run compacts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub every_seconds: f64,
    pub grace_seconds: f64,
    pub threshold: usize,
}

impl Schedule {
    pub fn every_minutes(minutes: f64) -> Self {
        Self {
            every_seconds: minutes.max(1.0) * 60.0,
            grace_seconds: CLOSE_GRACE_SECONDS,
            threshold: OPEN_COMPACTION_OBJECTS,
        }
    }
}

/// What one partition costs, by the lake's rules.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PartitionCounts {
    /// Objects written into it: a PUT, a manifest GET and a manifest PUT each.
    pub objects: f64,
    /// Mark PUTs: an object found the manifest with nothing uncompacted.
    pub marks: f64,
    /// Compactions: a manifest GET, a PUT of the compacted object and of the manifest each.
    pub compactions: f64,
    /// Objects GET by the compactions (the previous compacted object included).
    pub compaction_object_gets: f64,
    /// Rows decoded and encoded again by the compactions.
    pub rows_compacted: f64,
    /// Objects a reader finds in the manifest while the partition is open (after each run,
    /// on average).
    pub open_objects: f64,
    /// Objects a reader finds once it is closed and compacted.
    pub closed_objects: f64,
}

impl PartitionCounts {
    fn scaled(mut self, by: f64) -> Self {
        self.objects *= by;
        self.marks *= by;
        self.compactions *= by;
        self.compaction_object_gets *= by;
        self.rows_compacted *= by;
        self
    }
}

/// One partition of `length_seconds` through the scheduled runs (every `schedule.every_seconds`
/// from the partition's start): `arrivals` are its objects, each (seconds after the
/// partition's start it is written, rows it holds).
pub fn partition_counts(
    arrivals: &[(f64, f64)],
    length_seconds: f64,
    schedule: Schedule,
) -> PartitionCounts {
    let mut arrivals = arrivals.to_vec();
    arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut counts = PartitionCounts {
        objects: arrivals.len() as f64,
        ..PartitionCounts::default()
    };
    let last = arrivals.last().map_or(0.0, |a| a.0).max(length_seconds);
    let (mut compacted, mut pending, mut pending_rows) = (None::<f64>, 0usize, 0.0);
    let (mut next, mut open_sum, mut open_runs) = (0, 0.0, 0.0);
    let mut run = 1.0;
    while (run - 1.0) * schedule.every_seconds <= last + schedule.grace_seconds {
        let at = run * schedule.every_seconds;
        while next < arrivals.len() && arrivals[next].0 < at {
            if pending == 0 {
                counts.marks += 1.0;
            }
            pending += 1;
            pending_rows += arrivals[next].1;
            next += 1;
        }
        let closed = at >= length_seconds + schedule.grace_seconds;
        if pending > 0 && (closed || pending >= schedule.threshold) {
            counts.compactions += 1.0;
            counts.compaction_object_gets += (pending + usize::from(compacted.is_some())) as f64;
            let rows = compacted.unwrap_or(0.0) + pending_rows;
            counts.rows_compacted += rows;
            compacted = Some(rows);
            (pending, pending_rows) = (0, 0.0);
        }
        if at < length_seconds {
            open_sum += (pending + usize::from(compacted.is_some())) as f64;
            open_runs += 1.0;
        }
        run += 1.0;
    }
    counts.open_objects = if open_runs > 0.0 {
        open_sum / open_runs
    } else {
        0.0
    };
    counts.closed_objects = (pending + usize::from(compacted.is_some())) as f64;
    counts
}

/// `n` objects of `rows` rows in all, spread evenly over `[from, from + span)` seconds.
fn spread(n: f64, rows: f64, from: f64, span: f64) -> Vec<(f64, f64)> {
    let count = n.round().max(1.0) as usize;
    (0..count)
        .map(|i| {
            (
                from + (i as f64 + 0.5) * span / count as f64,
                rows / count as f64,
            )
        })
        .collect()
}

/// What the lake's bytes and batching are for a load, measured through the real code.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeMeasure {
    /// Bytes a row (a metric value) takes in a compacted hour, by the real writer.
    pub raw_bytes_per_row: f64,
    /// The `device_id` and `time` columns' share of those bytes.
    pub raw_key_bytes_per_row: f64,
    /// What a file costs beyond its rows (an empty file's bytes: magic, schema, footer).
    pub file_bytes: f64,
    /// Rows in the measured sample hour.
    pub sample_rows: usize,
    /// How late a message's readings are, in whole hours behind the hour it is ingested in,
    /// and the share of its readings each such hour holds.
    pub hour_offsets: Vec<(u32, f64)>,
}

/// Why the lake could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("{0}")]
    Place(#[from] iotdp::domain::RecordError),
    #[error("reading back the sample's Parquet: {0}")]
    Parquet(String),
    #[error("the sample of '{0}' was rejected by ingest's validation")]
    SampleRejected(String),
}

/// A small seeded generator (xorshift64*): the sample's values are noisy, as sensors' are,
/// so zstd is not flattered by constant columns.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An hour of `load`'s readings for a sample of its series, as ingest stores them (each
/// series' type and place, IoT Core's receive time as version), values a random walk at the
/// three decimals the sample payloads carry.
pub fn sample_hour(load: &Load) -> Result<Vec<Reading>, LakeError> {
    let (series_per_device, interval) = crate::reads::series_of(load);
    let per_hour = (HOUR_SECONDS / interval).max(1.0).floor() as usize;
    let total_series = (load.devices as f64 * series_per_device).max(1.0);
    let series = (SAMPLE_ROWS / (per_hour * load.metrics.max(1)) as f64)
        .clamp(20.0, total_series.max(20.0))
        .round() as usize;
    let unit = load.places.unit().max(1);
    let start_ms = 1_764_000_000_000;
    let step_ms = (interval * 1_000.0).min(HOUR_SECONDS * 1_000.0) as i64;
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut readings = Vec::with_capacity(series * per_hour);
    for s in 0..series {
        let place = LocationPath::parse(&load.places.path(s / unit, s % unit))?;
        let device = if series_per_device > 1.0 {
            format!("spot-{}-{:02}", s / 50, s % 50)
        } else {
            format!("device-{s:06}")
        };
        let mut values: Vec<f64> = (0..load.metrics)
            .map(|m| 20.0 + 10.0 * noise.next() + m as f64)
            .collect();
        let offset = (s as i64 * 7_919) % step_ms.max(1);
        for k in 0..per_hour {
            let at = start_ms + offset + k as i64 * step_ms;
            let metrics = values
                .iter_mut()
                .enumerate()
                .map(|(m, v)| {
                    *v += noise.next() - 0.5;
                    Metric {
                        name: format!("metric_{m}"),
                        value: MetricValue::Number((*v * 1_000.0).round() / 1_000.0),
                    }
                })
                .collect();
            readings.push(
                Reading {
                    device_id: device.clone(),
                    time_ms: at,
                    seq: None,
                    metrics,
                    version: at + 200 + (noise.next() * 1_500.0) as i64,
                    dimensions: None,
                }
                .with_place("sensor", place.clone()),
            );
        }
    }
    Ok(readings)
}

/// Bytes of a lake file's columns named `columns`, from its footer.
fn column_bytes(file: &[u8], columns: &[&str]) -> Result<f64, LakeError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(bytes::Bytes::from(file.to_vec()))
        .map_err(|e| LakeError::Parquet(e.to_string()))?;
    let mut total = 0.0;
    for group in reader.metadata().row_groups() {
        for column in group.columns() {
            if columns.contains(&column.column_descr().name()) {
                total += column.compressed_size() as f64;
            }
        }
    }
    Ok(total)
}

/// Measure `load` on the lake: a compacted hour of a sample of its series through the real
/// writer, and a sample message's readings through ingest's validation into hour partitions.
pub fn measure_lake(load: &Load) -> Result<LakeMeasure, LakeError> {
    let hour = sample_hour(load)?;
    let rows: usize = hour.iter().map(|r| r.metrics.len()).sum();
    let file = encode(&hour)?;
    let empty = encode(&[])?.len() as f64;
    let key = column_bytes(&file, &["device_id", "time"])?;
    Ok(LakeMeasure {
        raw_bytes_per_row: (file.len() as f64 - empty) / rows as f64,
        raw_key_bytes_per_row: key / rows as f64,
        file_bytes: empty,
        sample_rows: rows,
        hour_offsets: hour_offsets(load)?,
    })
}

/// How a sample message's readings, validated as ingest validates them, fall into hour
/// partitions behind the hour it arrives in.
fn hour_offsets(load: &Load) -> Result<Vec<(u32, f64)>, LakeError> {
    use iotdp::ingest::batch::prepare_batch;
    use iotdp::ingest::envelope::encode_envelope;
    use iotdp::ingest::validation::TimeWindow;
    // Half past an hour.
    let now_ms = 1_764_000_000_000 + 1_800_000;
    let device = "device-000001";
    let topic = iotdp::domain::topic::telemetry_topic(device);
    let payload = crate::load::sample_payload(load, 1, now_ms);
    let envelope = encode_envelope(payload.as_bytes(), &topic, now_ms, Some(device));
    let batch = prepare_batch(
        [("m", envelope.as_str())],
        TimeWindow::with_retention_days(73_000),
    );
    if !batch.rejections.is_empty() || batch.readings.is_empty() {
        return Err(LakeError::SampleRejected(load.name.clone()));
    }
    let arrived = iotdp::adapters::lake::partition(now_ms);
    let hour_ms = HOUR_SECONDS as i64 * 1_000;
    let mut offsets = std::collections::BTreeMap::<u32, f64>::new();
    for r in &batch.readings {
        let late = (now_ms.div_euclid(hour_ms) - r.time_ms.div_euclid(hour_ms)).max(0) as u32;
        debug_assert!(late > 0 || iotdp::adapters::lake::partition(r.time_ms) == arrived);
        *offsets.entry(late).or_default() += 1.0;
    }
    let n = batch.readings.len() as f64;
    Ok(offsets.into_iter().map(|(k, c)| (k, c / n)).collect())
}

/// A rollup tier's partition length in seconds.
fn partition_seconds(tier: Tier) -> f64 {
    match tier {
        Tier::Day => DAYS_PER_MONTH * DAY_SECONDS,
        _ => DAY_SECONDS,
    }
}

/// A month of the lake for a load: its requests, bytes and compute.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LakeMonth {
    pub messages_per_invocation: f64,
    pub invocations: f64,
    /// One raw hour partition, and one rollup partition of each tier (`Tier::ALL` order),
    /// and how many of those a month holds.
    pub raw: PartitionCounts,
    pub rollups: [PartitionCounts; 3],
    pub rollup_partitions: [f64; 3],
    pub ingest_puts: f64,
    pub ingest_gets: f64,
    pub compaction_lists: f64,
    pub compaction_puts: f64,
    pub compaction_gets: f64,
    pub rollup_puts: f64,
    pub rollup_gets: f64,
    pub job_gets: f64,
    pub dashboard_gets: f64,
    pub athena_gets: f64,
    pub athena_tb: f64,
    pub compaction_gb_seconds: f64,
    /// A month of raw readings and of rollups, compacted, in GiB.
    pub raw_gib_per_month: f64,
    pub rollup_gib_per_month: f64,
    /// GiB-months held in the twelfth month: raw in Standard, raw in the colder class
    /// (billed at its 128 KB minimum an object), rollups in Standard.
    pub raw_standard_gib_months: f64,
    pub raw_class_gib_months: f64,
    pub rollup_gib_months: f64,
    /// Objects the lifecycle rule moves a month.
    pub transitions: f64,
}

/// The lake's month for `load`, from what was measured (`lake`), the job's counts
/// (`per.reads.lake`) and the deployment.
pub fn lake_month(
    load: &Load,
    per: &PerMessage,
    lake: &LakeMeasure,
    options: &LakeOptions,
) -> LakeMonth {
    let deployment = &per.deployment;
    let schedule = Schedule::every_minutes(deployment.rollup_every_minutes);
    let runs = HOURS_PER_MONTH * HOUR_SECONDS / schedule.every_seconds;
    let job = &per.reads.lake;
    let messages = load.messages_per_month();
    let rate = messages / (HOURS_PER_MONTH * HOUR_SECONDS);
    let per_invocation =
        (rate * BATCHING_WINDOW_SECONDS / POLLERS).clamp(1.0, MESSAGES_PER_INVOCATION);
    let invocations = messages / per_invocation;
    let readings_per_invocation = per_invocation * per.readings.max(1) as f64;
    let chunks = (readings_per_invocation / READINGS_PER_WRITE)
        .ceil()
        .max(1.0);
    // One raw hour: every invocation in the hours it is late by leaves an object per chunk.
    let rows_per_hour = load.readings_per_month() * load.metrics as f64 / HOURS_PER_MONTH;
    let objects_per_hour = invocations / HOURS_PER_MONTH * chunks;
    let mut arrivals = Vec::new();
    let scale = objects_per_hour.min(1.0);
    for &(late, share) in &lake.hour_offsets {
        arrivals.extend(spread(
            objects_per_hour.max(1.0),
            rows_per_hour * share / scale,
            f64::from(late) * HOUR_SECONDS,
            HOUR_SECONDS,
        ));
    }
    let raw = partition_counts(&arrivals, HOUR_SECONDS, schedule).scaled(scale);
    // Rollup partitions: the job writes an object a (tier, partition) a run.
    let series = crate::reads::series_total(load);
    let mut rollups = [PartitionCounts::default(); 3];
    let mut rollup_partitions = [0.0; 3];
    let mut rollup_bytes = 0.0;
    for (i, tier) in Tier::ALL.into_iter().enumerate() {
        let length = partition_seconds(tier);
        let partitions = HOURS_PER_MONTH * HOUR_SECONDS / length;
        let rows = job.rollup_rows_per_series_day[i] * DAYS_PER_MONTH * series / partitions;
        let objects = job.rollup_partitions_written_per_run[i] * length / schedule.every_seconds;
        if objects > 0.0 {
            let scale = objects.min(1.0);
            let arrivals = spread(objects.max(1.0), rows / scale, 0.0, length);
            rollups[i] = partition_counts(&arrivals, length, schedule).scaled(scale);
        }
        rollup_partitions[i] = partitions;
        rollup_bytes += rows * partitions * job.rollup_bytes_per_row[i];
    }
    let monthly = |f: fn(&PartitionCounts) -> f64| -> f64 {
        (0..3).map(|i| f(&rollups[i]) * rollup_partitions[i]).sum()
    };
    let rollup_objects: f64 = rollup_partitions.iter().sum();
    let raw_partitions = HOURS_PER_MONTH;
    let ingest_objects = raw.objects * raw_partitions;
    let rollup_written = monthly(|r| r.objects);
    let compactions = raw.compactions * raw_partitions + monthly(|r| r.compactions);
    let compaction_object_gets =
        raw.compaction_object_gets * raw_partitions + monthly(|r| r.compaction_object_gets);
    let rollup_rows_compacted = monthly(|r| r.rows_compacted);
    // The job's reads: a manifest and its objects per raw hour and rollup partition.
    let open_rollup = |i: usize| 1.0 + rollups[i].open_objects.max(1.0);
    let job_gets = runs
        * (job.raw_hours_read_per_run * (1.0 + raw.open_objects.max(1.0))
            + (0..3)
                .map(|i| job.rollup_partitions_read_per_run[i] * open_rollup(i))
                .sum::<f64>());
    // A chart of the last 24 hours, refreshed once a minute while anyone watches.
    let charts = deployment.dashboard_hours.clamp(0.0, HOURS_PER_MONTH) * 60.0;
    let chart = job.chart_raw_open_hours * (1.0 + raw.open_objects.max(1.0))
        + job.chart_raw_closed_hours * (1.0 + raw.closed_objects.max(1.0))
        + (0..3)
            .map(|i| {
                job.chart_rollup_open[i] * open_rollup(i)
                    + job.chart_rollup_closed[i] * (1.0 + rollups[i].closed_objects.max(1.0))
            })
            .sum::<f64>();
    // Bytes: a month of each, compacted (one file an hour partition for raw).
    let raw_bytes =
        rows_per_hour * HOURS_PER_MONTH * lake.raw_bytes_per_row + raw_partitions * lake.file_bytes;
    let rollup_bytes = rollup_bytes + rollup_objects * lake.file_bytes;
    let raw_gib = raw_bytes / GIB;
    let rollup_gib = rollup_bytes / GIB;
    let standard_months = match options.raw_class {
        StorageClass::Standard => MONTHS_HELD,
        _ => (options.raw_transition_days / DAYS_PER_MONTH).clamp(0.0, MONTHS_HELD),
    };
    let object_bytes = raw_bytes / raw_partitions;
    let billed = object_bytes.max(MINIMUM_BILLED_OBJECT_BYTES) / object_bytes.max(1.0);
    // Athena: a third each of the docs' three queries.
    let third = options.analyst_queries.max(0.0) / 3.0;
    let year_of =
        |i: usize| job.rollup_rows_per_series_day[i] * 365.0 * series * job.rollup_bytes_per_row[i];
    let week_of_keys = rows_per_hour * 24.0 * 7.0 * lake.raw_key_bytes_per_row;
    let scanned: f64 = [year_of(2), year_of(1), week_of_keys]
        .into_iter()
        .map(|bytes| (bytes / MB).ceil().max(ATHENA_MINIMUM_BYTES / MB) * MB)
        .sum();
    let objects_scanned = 12.0 + 365.0 + 24.0 * 7.0;
    LakeMonth {
        messages_per_invocation: per_invocation,
        invocations,
        raw,
        rollups,
        rollup_partitions,
        ingest_puts: ingest_objects * 2.0 + raw.marks * raw_partitions,
        ingest_gets: ingest_objects,
        compaction_lists: runs,
        compaction_puts: compactions * 2.0,
        compaction_gets: compactions + compaction_object_gets,
        rollup_puts: rollup_written * 2.0 + monthly(|r| r.marks),
        rollup_gets: rollup_written,
        job_gets,
        dashboard_gets: charts * chart,
        athena_gets: third * objects_scanned * ATHENA_GETS_PER_OBJECT,
        athena_tb: third * scanned / (GIB * 1024.0),
        compaction_gb_seconds: (raw.rows_compacted * raw_partitions + rollup_rows_compacted)
            * COMPACTION_SECONDS_PER_ROW
            * ROLLUP_MEMORY_GB,
        raw_gib_per_month: raw_gib,
        rollup_gib_per_month: rollup_gib,
        raw_standard_gib_months: raw_gib * standard_months,
        raw_class_gib_months: raw_gib * (MONTHS_HELD - standard_months) * billed,
        rollup_gib_months: rollup_gib * MONTHS_HELD,
        transitions: if standard_months < MONTHS_HELD {
            raw_partitions
        } else {
            0.0
        },
    }
}

/// iotdp on the lake: everything but the store as on the other stores (the `options`
/// transport, with or without Basic Ingest), and the lake's lines.
pub fn lake_bill(
    load: &Load,
    per: &PerMessage,
    lake: &LakeMeasure,
    options: Options,
    lake_options: &LakeOptions,
    prices: &PriceTable,
) -> Result<Bill, PriceError> {
    let mut bill = iotdp_bill(load, per, options, prices)?;
    bill.lines.retain(|l| l.service != "Timestream");
    let month = lake_month(load, per, lake, lake_options);
    let put = "s3_put_requests";
    let get = "s3_get_requests";
    for (key, item, quantity) in [
        (put, "lake_s3_put_ingest", month.ingest_puts),
        (get, "lake_s3_get_ingest", month.ingest_gets),
        (put, "lake_s3_list_compaction", month.compaction_lists),
        (put, "lake_s3_put_compaction", month.compaction_puts),
        (get, "lake_s3_get_compaction", month.compaction_gets),
        (put, "lake_s3_put_rollups", month.rollup_puts),
        (get, "lake_s3_get_rollups", month.rollup_gets),
        (get, "lake_s3_get_rollup_job", month.job_gets),
        (get, "lake_s3_get_dashboards", month.dashboard_gets),
        (get, "lake_s3_get_athena", month.athena_gets),
        (
            "s3_standard_gb_months",
            "lake_raw_standard_gb_months",
            month.raw_standard_gib_months,
        ),
        (
            "s3_standard_gb_months",
            "lake_rollups_standard_gb_months",
            month.rollup_gib_months,
        ),
        (
            "athena_tb_scanned",
            "lake_athena_tb_scanned",
            month.athena_tb,
        ),
        (
            "lambda_arm_gb_seconds",
            "lake_compaction_gb_seconds",
            month.compaction_gb_seconds,
        ),
    ] {
        bill.add_as(prices, key, item, quantity)?;
    }
    if lake_options.raw_class != StorageClass::Standard {
        let class = lake_options.raw_class;
        bill.add_as(
            prices,
            class.storage_key(),
            &format!("lake_raw_{}_gb_months", class.name().to_lowercase()),
            month.raw_class_gib_months,
        )?;
        if let Some(key) = class.transition_key() {
            bill.add_as(prices, key, "lake_lifecycle_transitions", month.transitions)?;
        }
    }
    Ok(bill)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE: Schedule = Schedule {
        every_seconds: 300.0,
        grace_seconds: 600.0,
        threshold: 32,
    };

    /// Three objects early in an hour: one mark (the first found the manifest empty); under
    /// 32, so nothing is compacted while open, and the 11 runs inside the hour (5, 10, …, 55
    /// minutes) find three objects; closed at 70 minutes (the run at 70 is past 60 + 10), one
    /// compaction reads the manifest and the three, writes one object and the manifest.
    #[test]
    fn a_quiet_hour_is_compacted_once_closed() {
        let counts = partition_counts(&[(10.0, 5.0), (20.0, 5.0), (30.0, 5.0)], 3_600.0, SCHEDULE);
        assert_eq!(counts.objects, 3.0);
        assert_eq!(counts.marks, 1.0);
        assert_eq!(counts.compactions, 1.0);
        assert_eq!(counts.compaction_object_gets, 3.0);
        assert_eq!(counts.rows_compacted, 15.0);
        assert_eq!(counts.open_objects, 3.0);
        assert_eq!(counts.closed_objects, 1.0);
    }

    /// 40 objects in the first 40 seconds: the run at 5 minutes finds 40 ≥ 32 and compacts the
    /// open hour; nothing comes after, so closing it costs nothing more. Readers of the open
    /// hour find the one compacted object.
    #[test]
    fn a_busy_open_hour_is_compacted_at_32_objects() {
        let arrivals: Vec<(f64, f64)> = (0..40).map(|i| (i as f64, 1.0)).collect();
        let counts = partition_counts(&arrivals, 3_600.0, SCHEDULE);
        assert_eq!(
            (
                counts.marks,
                counts.compactions,
                counts.compaction_object_gets
            ),
            (1.0, 1.0, 40.0)
        );
        assert_eq!(counts.open_objects, 1.0);
        // 768 objects evenly over the hour, 64 before each run: every run from 5 to 60
        // minutes finds 64 ≥ 32 and compacts them with the previous compacted object, so
        // nothing is left for the close at 70: 12 compactions, each after a mark.
        let steady: Vec<(f64, f64)> = (0..768)
            .map(|i| (i as f64 * 3_600.0 / 768.0, 1.0))
            .collect();
        let counts = partition_counts(&steady, 3_600.0, SCHEDULE);
        assert_eq!(counts.marks, 12.0);
        assert_eq!(counts.compactions, 12.0);
        // The first reads 64, the 11 after it 64 and the compacted one.
        assert_eq!(counts.compaction_object_gets, 64.0 + 11.0 * 65.0);
        // Rows rewritten: 64, 128, …, 768.
        assert_eq!(counts.rows_compacted, 64.0 * (1..=12).sum::<i32>() as f64);
    }

    /// Late data after the close reopens the hour: a new mark, and a second compaction that
    /// reads the compacted object and the late one.
    #[test]
    fn late_data_reopens_a_compacted_hour() {
        let counts = partition_counts(&[(10.0, 2.0), (5_000.0, 1.0)], 3_600.0, SCHEDULE);
        assert_eq!(counts.marks, 2.0);
        assert_eq!(counts.compactions, 2.0);
        assert_eq!(counts.compaction_object_gets, 1.0 + 2.0);
        assert_eq!(counts.rows_compacted, 2.0 + 3.0);
        assert_eq!(counts.closed_objects, 1.0);
    }

    fn hand_measure() -> LakeMeasure {
        LakeMeasure {
            raw_bytes_per_row: 4.0,
            raw_key_bytes_per_row: 1.0,
            file_bytes: 1_000.0,
            sample_rows: 1,
            hour_offsets: vec![(0, 1.0)],
        }
    }

    /// The bill's hand case (1,000 devices every 60 s, one metric: 43.2 M messages, 16.7 a
    /// second), with no rollups: an invocation gathers a fifth of 5 s (16.7 messages), so
    /// 3,600 objects an hour, 300 before each run: 12 compactions an hour, each after a mark.
    #[test]
    fn the_month_is_the_hand_computed_one() {
        use crate::bill::tests::{hand_load, hand_per};
        let (load, per) = (hand_load(), hand_per());
        let month = lake_month(&load, &per, &hand_measure(), &LakeOptions::default());
        assert!((month.messages_per_invocation - 50.0 / 3.0).abs() < 1e-9);
        assert!((month.invocations - 2_592_000.0).abs() < 1e-6);
        assert_eq!((month.raw.objects, month.raw.marks), (3_600.0, 12.0));
        // Each object a PUT, a manifest GET and PUT; 12 marks an hour; 720 hours.
        assert!((month.ingest_puts - (3_600.0 * 2.0 + 12.0) * 720.0).abs() < 1e-6);
        assert!((month.ingest_gets - 3_600.0 * 720.0).abs() < 1e-6);
        // A LIST a run; each compaction a manifest GET, its objects (300, then 300 and the
        // compacted one), a PUT of the object and of the manifest.
        assert_eq!(month.compaction_lists, 8_640.0);
        assert!((month.compaction_puts - 12.0 * 2.0 * 720.0).abs() < 1e-6);
        let gets = 12.0 + 300.0 + 11.0 * 301.0;
        assert!((month.compaction_gets - gets * 720.0).abs() < 1e-6);
        // 60,000 rows an hour, rewritten 5,000, 10,000, … 60,000 rows at a time.
        let rows = 5_000.0 * 78.0 * 720.0;
        assert!((month.compaction_gb_seconds - rows / 70_000.0 * 0.5).abs() < 1e-6);
        // 4 bytes a row and a 1,000-byte file an hour; a year held, 3 months in Standard.
        let gib = (60_000.0 * 720.0 * 4.0 + 720.0 * 1_000.0) / GIB;
        assert!((month.raw_gib_per_month - gib).abs() < 1e-12);
        assert!((month.raw_standard_gib_months - 3.0 * gib).abs() < 1e-12);
        assert!((month.raw_class_gib_months - 9.0 * gib).abs() < 1e-12);
        assert_eq!(month.transitions, 720.0);
        // Athena: no rollups here, and a week of keys is 10,080,000 bytes (9.6 MiB): each
        // query pays the 10 MB minimum, 100 a month.
        assert!((month.athena_tb - 100.0 * 10.0 * MB / (GIB * 1024.0)).abs() < 1e-12);
        // Everything in Standard: no colder class, no transitions.
        let standard = LakeOptions {
            raw_class: StorageClass::Standard,
            ..LakeOptions::default()
        };
        let month = lake_month(&load, &per, &hand_measure(), &standard);
        assert!((month.raw_standard_gib_months - 12.0 * gib).abs() < 1e-12);
        assert_eq!((month.raw_class_gib_months, month.transitions), (0.0, 0.0));
    }

    /// A gateway's 5-hour batch, one message an invocation: five objects an invocation, one
    /// in each hour it reaches back to.
    #[test]
    fn a_five_hour_batch_touches_five_hours() {
        let load = &Load::references()[2];
        let offsets = hour_offsets(load).unwrap();
        assert_eq!(
            offsets.iter().map(|o| o.0).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert!(offsets.iter().all(|o| (o.1 - 0.2).abs() < 1e-9));
        use crate::bill::tests::hand_per;
        let per = PerMessage {
            readings: 250,
            ..hand_per()
        };
        let measure = LakeMeasure {
            hour_offsets: offsets,
            ..hand_measure()
        };
        let month = lake_month(load, &per, &measure, &LakeOptions::default());
        assert_eq!(month.messages_per_invocation, 1.0);
        // 200 messages an hour, each an object in five hours: 1,000 a partition.
        assert!((month.raw.objects - 1_000.0).abs() < 1e-9);
        assert!((month.ingest_gets - 144_000.0 * 5.0).abs() < 1e-6);
    }

    /// The lake's bill has every line of the other stores but Timestream's, and its own.
    #[test]
    fn the_lake_bill_replaces_the_store_lines_only() {
        use crate::bill::tests::{flat_prices, hand_load, hand_per};
        let mut prices = flat_prices();
        let flat = prices.0["sqs_requests"].clone();
        for key in [
            "s3_put_requests",
            "s3_get_requests",
            "s3_standard_gb_months",
            "s3_glacier_ir_gb_months",
            "s3_lifecycle_transitions_glacier_ir",
            "athena_tb_scanned",
        ] {
            prices.0.insert(key.into(), flat.clone());
        }
        let (load, per) = (hand_load(), hand_per());
        let options = Options::new(true, crate::Transport::Sqs);
        let bill = lake_bill(
            &load,
            &per,
            &hand_measure(),
            options,
            &LakeOptions::default(),
            &prices,
        )
        .unwrap();
        let items: Vec<&str> = bill.lines.iter().map(|l| l.item.as_str()).collect();
        for item in [
            "iot_core_connectivity_minutes",
            "iot_core_rules_triggered",
            "sqs_requests",
            "lambda_requests",
            "dynamodb_write_request_units",
            "lake_s3_put_ingest",
            "lake_s3_get_compaction",
            "lake_raw_standard_gb_months",
            "lake_raw_glacier_ir_gb_months",
            "lake_rollups_standard_gb_months",
            "lake_athena_tb_scanned",
            "lake_compaction_gb_seconds",
            "lake_lifecycle_transitions",
        ] {
            assert!(items.contains(&item), "{item} in {items:?}");
        }
        assert!(!bill.by_service().contains_key("Timestream"));
        let timestream = iotdp_bill(&load, &per, options, &prices).unwrap();
        let shared = |b: &Bill| b.item("sqs_requests") + b.item("iot_core_actions");
        assert_eq!(shared(&bill), shared(&timestream));
    }

    #[test]
    fn rollup_partitions_are_days_and_months() {
        let t = 1_765_123_456_789; // 2025-12-07T16:04Z
        assert_eq!(
            rollup_partition(Tier::Minute, t),
            "rollups/1m/date=2025-12-07"
        );
        assert_eq!(
            rollup_partition(Tier::Hour, t),
            "rollups/1h/date=2025-12-07"
        );
        assert_eq!(rollup_partition(Tier::Day, t), "rollups/1d/month=2025-12");
        assert_eq!(
            StorageClass::parse("GLACIER_IR"),
            Some(StorageClass::GlacierIr)
        );
        assert_eq!(StorageClass::parse("glacier"), None);
    }
}
