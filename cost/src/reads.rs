//! What reading the data costs: the rollup job, dashboards, and the DynamoDB reads behind
//! ingest and the silence watch.
//!
//! - **The rollup job** runs for a day of a sample of the load's series through the real job
//!   (`RollupJob`) over the memory store, wrapped to count its queries and to size the rows it
//!   writes as the Timestream adapter's records (`rollup_records`). The sample is three whole
//!   units of the load's hierarchy (sites, homes, walls), so the place rows its devices share
//!   are counted once per unit.
//! - **Dashboards**: a series query over the last 24 hours is split by the API's own planner
//!   (`cover`) into rollup tiers and the raw tail, one query each; the baseline asks the raw
//!   table once. Timestream for LiveAnalytics bills queries by Timestream compute units: at
//!   least 4 TCUs, per second, with a 30-second minimum. A dashboard refreshed every minute by
//!   its viewers keeps those 4 busy while anyone watches; the job, querying every five minutes,
//!   keeps them busy 30 seconds of each five.
//! - **DynamoDB reads**: each ingest instance reads a device's record once per
//!   `RegistryCacheSeconds`; the silence watch reads its index's overdue entries and the heard
//!   log's recent digests every minute.

use iotdp::adapters::lake::layout::Table;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use iotdp::domain::{LocationPath, Metric, MetricValue, Reading};
use iotdp::ingest::ports::TimeSeriesStore;
use iotdp::query::model::{QueryError, TimeRange};
use iotdp::rollup::job::{RollupJob, RollupSettings};
use iotdp::rollup::model::{RollupRow, RowSelection};
use iotdp::rollup::ports::{RollupError, RollupStore};
use iotdp::rollup::tier::{Coverage, Segment, Source, Tier, cover_down_to};

use super::Load;
use iotdp_memory::{MemoryRollupState, MemoryStore};

/// Why the reads of a load could not be counted through the rollup job.
#[derive(Debug, thiserror::Error)]
pub enum ReadsError {
    /// A place of the load's hierarchy is not a valid path (`Places::path`).
    #[error("{0}")]
    Place(#[from] iotdp::domain::RecordError),
    /// The memory store refused the rollup sample's readings.
    #[error("{0}")]
    Store(#[from] iotdp::ingest::ports::StoreError),
    /// The rollup job failed on the sample.
    #[error("{0}")]
    Rollup(#[from] RollupError),
    /// The lake's writer refused the rollup rows (sizing them as the lake holds them).
    #[error("{0}")]
    Lake(String),
}

/// Units (sites, homes, walls) the rollup sample runs.
const SAMPLE_UNITS: usize = 3;
/// A day boundary the sample starts at.
const DAY_MS: i64 = 86_400_000;
const SAMPLE_START_MS: i64 = 20_416 * DAY_MS;
/// Timestream for LiveAnalytics runs queries on at least 4 TCUs, billed per second for at
/// least 30 seconds.
pub const MIN_TCUS: f64 = 4.0;
const TCU_MINIMUM_SECONDS: f64 = 30.0;
/// DynamoDB: an eventually consistent read unit reads 4 KB; a registry record is under 4 KB.
const READ_UNIT_BYTES: f64 = 4096.0;
const EVENTUALLY_CONSISTENT: f64 = 0.5;
/// A keys-only silence-watch index entry (device id, partition, deadline), as DynamoDB sizes it.
const INDEX_ENTRY_BYTES: f64 = 60.0;
/// How far back the watch reads the heard log past now (`HEARD_LOOKBACK_MS`).
const HEARD_LOOKBACK_SECONDS: f64 = 600.0;
/// Lambda's SQS event source starts with five concurrent batches; each ingest instance keeps
/// its own registry cache.
const SQS_INGEST_INSTANCES: f64 = 5.0;

/// The deployment the bill is for: the template parameters that move it, and how long
/// someone watches a dashboard. The console refreshes its charts every 15 seconds and Grafana
/// about every minute, so while anyone watches, queries come more often than the 30-second TCU
/// minimum: the 4 TCUs are held throughout, however many viewers and charts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deployment {
    /// Hours a month someone has a dashboard open (default 8 hours a day, 22 days).
    pub dashboard_hours: f64,
    /// `RollupSchedule`, in minutes (template default: 5).
    pub rollup_every_minutes: f64,
    /// `RollupFinestTier`: `None` is the template's `auto`, which follows the reporting
    /// interval (see [`Deployment::finest_for`]).
    pub rollup_finest: Option<Tier>,
    /// `MemoryStoreRetentionHours`, for the raw and rollup tables alike (template default 24,
    /// so 5-hour-late gateway batches land in the memory store); the baseline's table too.
    pub memory_store_hours: f64,
}

impl Default for Deployment {
    fn default() -> Self {
        Self {
            dashboard_hours: 8.0 * 22.0,
            rollup_every_minutes: 5.0,
            rollup_finest: None,
            memory_store_hours: 24.0,
        }
    }
}

impl Deployment {
    /// The finest tier the job keeps for `load`: the override, or under `auto` minutes only
    /// for series that report more than once a minute (a slower series' 1-minute row repeats
    /// its reading, at the price of a row per metric).
    pub fn finest_for(&self, load: &Load) -> Tier {
        self.rollup_finest.unwrap_or_else(|| {
            if series_of(load).1 < 60.0 {
                Tier::Minute
            } else {
                Tier::Hour
            }
        })
    }
}

/// What one load's reads cost in metered units a month.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reads {
    /// Queries the rollup job sends per run (raw readings and rollup rows), counted.
    pub rollup_queries_per_run: f64,
    /// Rollup rows written per series per day (its device rows and its place rows).
    pub rollup_rows_per_series_day: f64,
    /// Timestream write KB of those rows, per series per day.
    pub rollup_write_kb_per_series_day: f64,
    /// What those rows hold in Timestream's storage, per series per day (each measure a
    /// record, unrounded).
    pub rollup_stored_bytes_per_series_day: f64,
    /// The finest tier the job kept.
    pub rollup_finest: Option<Tier>,
    /// Queries one 24-hour chart sends: iotdp (tiers and raw tail), the baseline (raw).
    pub chart_queries: f64,
    pub baseline_chart_queries: f64,
    /// TCU-hours a month: iotdp (dashboards and the rollup job), the baseline (dashboards).
    pub tcu_hours: f64,
    pub baseline_tcu_hours: f64,
    /// DynamoDB read units a month: ingest's registry lookups (on SQS, on Kinesis), the
    /// silence watch's runs.
    pub registry_read_units: f64,
    pub registry_read_units_kinesis: f64,
    pub watch_read_units: f64,
    /// What the job and a chart read and write on the lake.
    pub lake: LakeJob,
}

/// The rollup job's and a chart's partitions on the lake, counted through the same sample
/// run and planner; by tier in `Tier::ALL` order (1m, 1h, 1d).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LakeJob {
    /// Raw hour partitions the job reads a run.
    pub raw_hours_read_per_run: f64,
    /// Rollup partitions (a day for 1m and 1h, a month for 1d) the job reads a run.
    pub rollup_partitions_read_per_run: [f64; 3],
    /// (tier, partition) pairs the job writes a run: an object each.
    pub rollup_partitions_written_per_run: [f64; 3],
    /// Rows written per series per day.
    pub rollup_rows_per_series_day: [f64; 3],
    /// Bytes a rollup row takes in a compacted partition, by the lake's writer
    /// (`format::encode_rollups`).
    pub rollup_bytes_per_row: [f64; 3],
    /// A 24-hour chart's partitions: raw hours open (the current one) and closed, rollup
    /// partitions open (today's, this month's) and closed.
    pub chart_raw_open_hours: f64,
    pub chart_raw_closed_hours: f64,
    pub chart_rollup_open: [f64; 3],
    pub chart_rollup_closed: [f64; 3],
}

/// Series (devices that carry readings) per message-sending device, and the seconds between
/// one series' readings: a gateway batch carries 50 spots' readings, as `sample_payload`.
pub(crate) fn series_of(load: &Load) -> (f64, f64) {
    let series = if load.readings_per_message == 1 {
        1.0
    } else {
        50.0
    };
    let reading_interval = load.interval_seconds * series / load.readings_per_message as f64;
    (series, reading_interval)
}

/// The reads of `load` in `deployment`, counted through the real rollup job and
/// planner. `heard_per_message` (heard-log entries per message) and `heard_entry_bytes` size
/// the log the watch reads.
pub async fn measure_reads(
    load: &Load,
    deployment: &Deployment,
    heard_per_message: f64,
    heard_entry_bytes: f64,
) -> Result<Reads, ReadsError> {
    let rollup_every_ms = (deployment.rollup_every_minutes.max(1.0) * 60_000.0) as i64;
    let finest = deployment.finest_for(load);
    let job = run_rollup_sample(load, rollup_every_ms, finest).await?;
    let (chart_queries, baseline_chart_queries) = chart_queries(finest);
    let mut lake = job.lake;
    chart_lake_partitions(finest, &mut lake);
    // Dashboards keep the minimum TCUs busy while watched; the job keeps them busy for its
    // 30-second minimum once a run, in the hours nobody watches.
    let viewing_hours = deployment
        .dashboard_hours
        .clamp(0.0, super::HOURS_PER_MONTH);
    let dashboard_tcu_hours = MIN_TCUS * viewing_hours;
    let unwatched_hours = super::HOURS_PER_MONTH - viewing_hours;
    let job_duty = (TCU_MINIMUM_SECONDS * 1_000.0 / rollup_every_ms as f64).min(1.0);
    let tcu_hours = dashboard_tcu_hours + MIN_TCUS * unwatched_hours * job_duty;

    let messages = load.messages_per_month();
    // A record is read once per cache lifetime (60 s) by each instance that sees the device:
    // one instance on Kinesis (a device's shard has one consumer), any of five on SQS.
    let registry_read_units = |instances: f64| {
        let ttl = 60.0;
        let reads_per_message = if load.interval_seconds >= ttl {
            1.0
        } else {
            // k messages a lifetime, each to one of the instances at random: each instance
            // that got one reads the record once.
            let k = ttl / load.interval_seconds;
            instances * (1.0 - (1.0 - 1.0 / instances).powf(k)) / k
        };
        messages * reads_per_message * EVENTUALLY_CONSISTENT
    };
    let watch_read_units = match load.heartbeat_seconds {
        None => 0.0,
        Some(heartbeat) => {
            let heartbeat = f64::from(heartbeat);
            let seen_interval = iotdp::devices::cache::DEFAULT_SEEN_INTERVAL.as_secs_f64();
            // The index deadline moves with the hourly write: a device is overdue by the
            // index for the rest of the interval, and alive by the log.
            // (A write when last_seen moved by more than the interval: every 13th 5-minute
            // report, 65 minutes apart.)
            let between_writes =
                ((seen_interval / load.interval_seconds).floor() + 1.0) * load.interval_seconds;
            let overdue = ((between_writes - heartbeat) / between_writes).clamp(0.0, 1.0);
            let index_bytes = load.devices as f64 * overdue * INDEX_ENTRY_BYTES;
            // The log's digests with a deadline at most the lookback past: the last
            // heartbeat + a tenth + lookback of entries.
            let window = heartbeat * 1.1 + HEARD_LOOKBACK_SECONDS;
            let log_bytes = load.devices as f64 * window / load.interval_seconds
                * heard_per_message
                * heard_entry_bytes;
            let runs = super::HOURS_PER_MONTH * 60.0;
            runs * ((index_bytes + log_bytes) / READ_UNIT_BYTES).ceil() * EVENTUALLY_CONSISTENT
        }
    };
    Ok(Reads {
        rollup_queries_per_run: job.queries_per_run,
        rollup_rows_per_series_day: job.rows_per_series_day,
        rollup_write_kb_per_series_day: job.write_kb_per_series_day,
        rollup_stored_bytes_per_series_day: job.stored_bytes_per_series_day,
        rollup_finest: Some(finest),
        chart_queries,
        baseline_chart_queries,
        tcu_hours,
        baseline_tcu_hours: dashboard_tcu_hours,
        registry_read_units: registry_read_units(SQS_INGEST_INSTANCES),
        registry_read_units_kinesis: registry_read_units(1.0),
        watch_read_units,
        lake,
    })
}

/// Series of the whole load (for the rollup rows' scale).
pub fn series_total(load: &Load) -> f64 {
    load.devices as f64 * series_of(load).0
}

struct JobCounts {
    lake: LakeJob,
    queries_per_run: f64,
    rows_per_series_day: f64,
    write_kb_per_series_day: f64,
    stored_bytes_per_series_day: f64,
}

/// A day of [`SAMPLE_UNITS`] units' series at the load's reading interval, the job every
/// `every_ms`.
async fn run_rollup_sample(
    load: &Load,
    every_ms: i64,
    finest: Tier,
) -> Result<JobCounts, ReadsError> {
    let (_, reading_interval) = series_of(load);
    let store = Arc::new(MemoryStore::new(1_000));
    let step_ms = (reading_interval * 1_000.0).max(1_000.0) as i64;
    let end_ms = SAMPLE_START_MS + DAY_MS;
    let mut readings = Vec::new();
    let series_count = SAMPLE_UNITS * load.places.unit();
    for series in 0..series_count {
        let (unit, n) = (series / load.places.unit(), series % load.places.unit());
        let place = LocationPath::parse(&load.places.path(unit, n))?;
        let mut at = SAMPLE_START_MS + (series % 60) as i64 * 1_000;
        while at < end_ms {
            let reading = Reading {
                device_id: format!("device-{series:06}"),
                time_ms: at,
                seq: None,
                metrics: (0..load.metrics)
                    .map(|m| Metric {
                        name: format!("metric_{m}"),
                        value: MetricValue::Number(20.0 + (at / 1000 % 97) as f64 * 0.1 + m as f64),
                    })
                    .collect(),
                version: at,
                dimensions: None,
            }
            .with_place("sensor", place.clone());
            readings.push(reading);
            at += step_ms;
        }
    }
    for chunk in readings.chunks(1_000) {
        store.write(chunk).await?;
    }
    let counting = Arc::new(CountingRollups {
        inner: store,
        queries: AtomicU64::default(),
        rows: AtomicU64::default(),
        write_kb: AtomicU64::default(),
        stored_bytes: AtomicU64::default(),
        lake: Mutex::default(),
    });
    let settings = RollupSettings {
        finest: finest.into(),
        ..RollupSettings::default()
    };
    let job = RollupJob::new(
        counting.clone(),
        Arc::new(MemoryRollupState::default()),
        settings,
    );
    // Steady state from the first run: every run computes the windows that closed since the
    // last.
    let grace_ms = settings.grace.as_millis() as i64;
    let mut runs = 0u64;
    let mut now = SAMPLE_START_MS + every_ms + grace_ms;
    while now <= end_ms + grace_ms + every_ms {
        job.run(now).await?;
        counting.end_run();
        runs += 1;
        now += every_ms;
    }
    let series = series_count as f64;
    let lake = counting.lake_counts(runs as f64, series)?;
    Ok(JobCounts {
        lake,
        queries_per_run: counting.queries.load(Relaxed) as f64 / runs as f64,
        rows_per_series_day: counting.rows.load(Relaxed) as f64 / series,
        write_kb_per_series_day: counting.write_kb.load(Relaxed) as f64 / series,
        stored_bytes_per_series_day: counting.stored_bytes.load(Relaxed) as f64 / series,
    })
}

/// When the priced chart is drawn, and the planner's segments of its last 24 hours with the job
/// caught up (one window and its grace behind): the coarsest tiers the job has covered, raw
/// readings for the rest.
fn chart_plan(finest: Tier) -> (i64, Vec<Segment>) {
    let now_ms = SAMPLE_START_MS + 37 * DAY_MS + 13 * 3_600_000 + 17 * 60_000 + 23_000;
    let range = TimeRange {
        from_ms: now_ms - DAY_MS,
        to_ms: now_ms,
    };
    let coverage = Coverage {
        since_ms: SAMPLE_START_MS,
        watermark_ms: (now_ms - 180_000).div_euclid(60_000) * 60_000,
    };
    (
        now_ms,
        cover_down_to(range, Some(coverage), Tier::Day, finest),
    )
}

/// Queries one chart of the last 24 hours sends: one per segment.
fn chart_queries(finest: Tier) -> (f64, f64) {
    (chart_plan(finest).1.len() as f64, 1.0)
}

/// A 24-hour chart's partitions on the lake, from the same planner's segments.
fn chart_lake_partitions(finest: Tier, lake: &mut LakeJob) {
    let (now_ms, segments) = chart_plan(finest);
    let open_hour = iotdp::adapters::lake::partition(now_ms);
    for segment in segments {
        match segment.source {
            Source::Raw => {
                for hour in hours_of(segment.range) {
                    if hour == open_hour {
                        lake.chart_raw_open_hours += 1.0;
                    } else {
                        lake.chart_raw_closed_hours += 1.0;
                    }
                }
            }
            Source::Tier(tier) => {
                let open = rollup_partition(tier, now_ms);
                let i = tier_index(tier);
                for partition in partitions_of(tier, segment.range) {
                    if partition == open {
                        lake.chart_rollup_open[i] += 1.0;
                    } else {
                        lake.chart_rollup_closed[i] += 1.0;
                    }
                }
            }
        }
    }
}

fn tier_index(tier: Tier) -> usize {
    Tier::ALL.iter().position(|t| *t == tier).unwrap_or(0)
}

/// The raw hour partitions a range touches.
fn hours_of(range: TimeRange) -> BTreeSet<String> {
    let hour = 3_600_000;
    (range.from_ms.div_euclid(hour)..=(range.to_ms - 1).div_euclid(hour))
        .map(|h| iotdp::adapters::lake::partition(h * hour))
        .collect()
}

/// The rollup partitions of `tier` a range touches.
fn partitions_of(tier: Tier, range: TimeRange) -> BTreeSet<String> {
    (range.from_ms.div_euclid(DAY_MS)..=(range.to_ms - 1).div_euclid(DAY_MS))
        .map(|d| rollup_partition(tier, (d * DAY_MS).max(range.from_ms)))
        .collect()
}

/// The lake partition a rollup row of `tier` lands in (`rollups/1h/date=2026-12-08`), as the
/// lake's writer names it.
pub fn rollup_partition(tier: Tier, window_start_ms: i64) -> String {
    let partition = Table::Rollups(tier).partition_of(window_start_ms);
    format!("{}/{}", partition.table.prefix(), partition.name())
}

/// What the job did on the lake's terms, run by run.
#[derive(Default)]
struct LakeTally {
    raw_hours_read: f64,
    rollup_partitions_read: [f64; 3],
    rollup_partitions_written: [f64; 3],
    this_run: BTreeSet<(usize, String)>,
    rows: Vec<RollupRow>,
}

/// The memory store, counting the job's queries and sizing the rows it writes as the
/// Timestream adapter's records (100 to a request, each rounded up to the KB), and as the
/// lake would hold them.
struct CountingRollups {
    inner: Arc<MemoryStore>,
    queries: AtomicU64,
    rows: AtomicU64,
    write_kb: AtomicU64,
    stored_bytes: AtomicU64,
    lake: Mutex<LakeTally>,
}

impl CountingRollups {
    fn tally(&self) -> std::sync::MutexGuard<'_, LakeTally> {
        self.lake
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A run's (tier, partition) writes are one object each.
    fn end_run(&self) {
        let mut tally = self.tally();
        for (i, _) in std::mem::take(&mut tally.this_run) {
            tally.rollup_partitions_written[i] += 1.0;
        }
    }

    /// The tallies per run and per series, and each tier's rows encoded as compacted
    /// partitions by the lake's writer.
    fn lake_counts(&self, runs: f64, series: f64) -> Result<LakeJob, ReadsError> {
        let tally = self.tally();
        let mut job = LakeJob {
            raw_hours_read_per_run: tally.raw_hours_read / runs,
            ..LakeJob::default()
        };
        let empty = iotdp::adapters::lake::format::encode_rollups(&[])
            .map_err(|e| ReadsError::Lake(e.to_string()))?
            .len() as f64;
        for (i, tier) in Tier::ALL.into_iter().enumerate() {
            job.rollup_partitions_read_per_run[i] = tally.rollup_partitions_read[i] / runs;
            job.rollup_partitions_written_per_run[i] = tally.rollup_partitions_written[i] / runs;
            let mut partitions: BTreeMap<String, Vec<RollupRow>> = BTreeMap::new();
            for row in tally.rows.iter().filter(|r| r.tier == tier) {
                partitions
                    .entry(rollup_partition(tier, row.window_start_ms))
                    .or_default()
                    .push(row.clone());
            }
            let rows = tally.rows.iter().filter(|r| r.tier == tier).count() as f64;
            job.rollup_rows_per_series_day[i] = rows / series;
            let mut bytes = 0.0;
            for rows in partitions.values() {
                let file = iotdp::adapters::lake::format::encode_rollups(rows)
                    .map_err(|e| ReadsError::Lake(e.to_string()))?;
                bytes += file.len() as f64 - empty;
            }
            if rows > 0.0 {
                job.rollup_bytes_per_row[i] = bytes / rows;
            }
        }
        Ok(job)
    }
}

impl RollupStore for CountingRollups {
    async fn raw_readings(
        &self,
        range: TimeRange,
        within: &LocationPath,
    ) -> Result<Vec<Reading>, QueryError> {
        self.queries.fetch_add(1, Relaxed);
        self.tally().raw_hours_read += hours_of(range).len() as f64;
        self.inner.raw_readings(range, within).await
    }

    async fn rollups(
        &self,
        tier: Tier,
        range: TimeRange,
        selection: RowSelection<'_>,
    ) -> Result<Vec<RollupRow>, QueryError> {
        self.queries.fetch_add(1, Relaxed);
        self.tally().rollup_partitions_read[tier_index(tier)] +=
            partitions_of(tier, range).len() as f64;
        self.inner.rollups(tier, range, selection).await
    }

    async fn write_rollups(&self, tier: Tier, rows: &[RollupRow]) -> Result<(), RollupError> {
        for chunk in rows.chunks(100) {
            let records = iotdp::adapters::timestream::rollups::rollup_records(chunk)
                .map_err(|e| RollupError::Store(e.to_string()))?;
            let bytes: usize = records
                .iter()
                .map(crate::write_size::record_bytes)
                .sum::<usize>()
                + 8 * records.len();
            self.write_kb
                .fetch_add(bytes.div_ceil(1024) as u64, Relaxed);
            let stored: usize = records
                .iter()
                .map(|r| crate::write_size::record_stored_bytes(r, None))
                .sum();
            self.stored_bytes.fetch_add(stored as u64, Relaxed);
        }
        self.rows.fetch_add(rows.len() as u64, Relaxed);
        {
            let mut tally = self.tally();
            for row in rows {
                let partition = rollup_partition(tier, row.window_start_ms);
                tally.this_run.insert((tier_index(tier), partition));
            }
            tally.rows.extend_from_slice(rows);
        }
        self.inner.write_rollups(tier, rows).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(interval_seconds: f64, readings_per_message: usize) -> Load {
        Load {
            name: "x".into(),
            devices: 1_000,
            interval_seconds,
            metrics: 2,
            readings_per_message,
            heartbeat_seconds: Some(900),
            rules: 0,
            places: crate::Places::OwnSite,
        }
    }

    /// The real job writes, per series and metric, a row per minute with readings, per hour
    /// and per day, for the device and its place (its own site): what the count must show.
    #[tokio::test]
    async fn the_rollup_job_writes_a_row_per_window_series_and_metric() {
        // Every 5 minutes: 288 minutes, 24 hours and a day with data, 2 metrics, 2 series.
        let every_5_minutes = run_rollup_sample(&load(300.0, 1), 300_000, Tier::Minute)
            .await
            .unwrap();
        assert_eq!(
            every_5_minutes.rows_per_series_day,
            (288.0 + 24.0 + 1.0) * 2.0 * 2.0
        );
        // Every 10 s: every minute has data.
        let every_10_s = run_rollup_sample(&load(10.0, 1), 300_000, Tier::Minute)
            .await
            .unwrap();
        assert_eq!(
            every_10_s.rows_per_series_day,
            (1440.0 + 24.0 + 1.0) * 2.0 * 2.0
        );
        // A wall of 50 hourly spots in 2 zones of 5 sections: each spot's 24 hourly minutes,
        // 24 hours and a day, for itself and its spot place; the wall, its zones and
        // sections (13 places) shared by the 50.
        let walls = Load {
            places: crate::Places::Walls {
                spots: 50,
                zones: 2,
                sections: 5,
            },
            ..load(5.0 * 3_600.0, 250)
        };
        let wall = run_rollup_sample(&walls, 300_000, Tier::Minute)
            .await
            .unwrap();
        let per_place = (24.0 + 24.0 + 1.0) * 2.0;
        assert!(
            (wall.rows_per_series_day - per_place * (2.0 + 13.0 / 50.0)).abs() < 1e-9,
            "{}",
            wall.rows_per_series_day
        );
        assert!(every_10_s.write_kb_per_series_day > every_5_minutes.write_kb_per_series_day);
        // RollupFinestTier=1h: the 24 hours and the day only.
        let hourly = run_rollup_sample(&load(300.0, 1), 300_000, Tier::Hour)
            .await
            .unwrap();
        assert_eq!(hourly.rows_per_series_day, (24.0 + 1.0) * 2.0 * 2.0);
        // Caught up, a run reads the five minutes that closed in one read (the span it
        // settled on; the first run doubles up from a second), and an hour's minutes once
        // an hour.
        assert!(
            (1.0..1.2).contains(&every_5_minutes.queries_per_run),
            "{}",
            every_5_minutes.queries_per_run
        );
    }

    /// `auto` keeps minutes for a series reporting more than once a minute only; an override
    /// wins. A gateway's spots report hourly, whatever the batch's interval.
    #[test]
    fn the_finest_tier_follows_the_reporting_interval() {
        let auto = Deployment::default();
        assert_eq!(auto.finest_for(&load(300.0, 1)), Tier::Hour);
        assert_eq!(auto.finest_for(&load(60.0, 1)), Tier::Hour);
        assert_eq!(auto.finest_for(&load(10.0, 1)), Tier::Minute);
        assert_eq!(auto.finest_for(&load(5.0 * 3_600.0, 250)), Tier::Hour);
        let minutes = Deployment {
            rollup_finest: Some(Tier::Minute),
            ..auto
        };
        assert_eq!(minutes.finest_for(&load(300.0, 1)), Tier::Minute);
    }

    #[test]
    fn a_chart_of_a_day_is_answered_from_hours_minutes_and_the_raw_tail() {
        let (iotdp, baseline) = chart_queries(Tier::Minute);
        assert_eq!(baseline, 1.0);
        // Minutes up to the first hour, hours, minutes up to the watermark, the raw tail:
        // and the head before the first whole minute, raw.
        assert_eq!(iotdp, 5.0);
        // Without minutes: raw head, hours, raw tail.
        assert_eq!(chart_queries(Tier::Hour).0, 3.0);
    }

    #[tokio::test]
    async fn a_watched_fleet_costs_the_watch_its_overdue_entries_and_recent_digests() {
        let deployment = Deployment::default();
        let battery = Load {
            devices: 100_000,
            heartbeat_seconds: Some(900),
            ..load(300.0, 1)
        };
        let reads = measure_reads(&battery, &deployment, 12.0 / 13.0, 17.0)
            .await
            .unwrap();
        // 65 minutes between writes, 15 of them before the index deadline: 50/65 overdue.
        let index: f64 = 100_000.0 * 50.0 / 65.0 * 60.0;
        // 26.5 minutes of 5-minute reports, 12 in 13 logged, 17 bytes each.
        let log = 100_000.0 * 1_590.0 / 300.0 * 12.0 / 13.0 * 17.0;
        let per_run = ((index + log) / 4096.0).ceil() * 0.5;
        assert!(
            (reads.watch_read_units - per_run * 43_200.0).abs() < 1.0,
            "{} against {}",
            reads.watch_read_units,
            per_run * 43_200.0
        );
        // A 5-minute reporter's record is read on each message (the cache holds it 60 s).
        assert_eq!(
            reads.registry_read_units,
            battery.messages_per_month() * 0.5
        );
        // A thermostat every 10 s: six messages a cache lifetime; on Kinesis one instance reads
        // once, on SQS each of the five instances that got one of the six does.
        let thermostats = Load {
            heartbeat_seconds: None,
            ..load(10.0, 1)
        };
        let reads = measure_reads(&thermostats, &deployment, 0.0, 0.0)
            .await
            .unwrap();
        let messages = thermostats.messages_per_month();
        assert!((reads.registry_read_units_kinesis - messages / 6.0 * 0.5).abs() < 1.0);
        let sqs = 5.0 * (1.0 - 0.8f64.powi(6)) / 6.0;
        assert!((reads.registry_read_units - messages * sqs * 0.5).abs() < 1.0);
        assert_eq!(reads.watch_read_units, 0.0);
        // Dashboards 176 hours on 4 TCUs; the job's 30 s every 5 minutes in the other 544.
        assert!((reads.tcu_hours - (4.0 * 176.0 + 4.0 * 544.0 * 0.1)).abs() < 1e-6);
        assert_eq!(reads.baseline_tcu_hours, 4.0 * 176.0);
    }
}
