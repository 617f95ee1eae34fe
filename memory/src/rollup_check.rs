//! Holding rollups to the raw readings: a late-data scenario replayed through the real ingest
//! store wrapper and job, and the rows every tier should hold, computed the plain way (a loop
//! per window, none of the job's code). The memory and InfluxDB property tests share it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use iotdp::domain::{LocationPath, MetricValue, Reading};
use iotdp::ingest::ports::TimeSeriesStore;
use iotdp::rollup::job::{RollupJob, RollupSettings};
use iotdp::rollup::late::LateMarkingStore;
use iotdp::rollup::model::{RollupRow, SeriesKey};
use iotdp::rollup::ports::{RollupStateStore, RollupStore};
use iotdp::rollup::tier::{Coverage, Tier};
use proptest::prelude::*;

/// A batch a device or gateway sends, and when it reaches the ingest path.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub arrival_ms: i64,
    pub readings: Vec<Reading>,
}

/// What happens, in time order.
#[derive(Debug, Clone)]
pub enum Step {
    Deliver(Delivery),
    RunJob(i64),
}

/// A simulated clock the late-marking store reads.
#[derive(Debug, Clone, Default)]
pub struct SimClock(Arc<AtomicI64>);

impl SimClock {
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The ingest path's late marking and the rollup job over one store and state, judging lateness
/// by a simulated clock: what every late-data scenario runs on.
pub struct Simulated<S, T> {
    pub clock: SimClock,
    pub ingest: LateMarkingStore<S, T>,
    pub job: RollupJob<S, T>,
}

pub fn simulated<S: RollupStore + Clone, T: RollupStateStore + Clone>(
    store: S,
    state: T,
    settings: RollupSettings,
) -> Simulated<S, T> {
    let clock = SimClock::default();
    let reading_clock = clock.clone();
    Simulated {
        ingest: LateMarkingStore::new(store.clone(), state.clone(), settings.grace)
            .with_clock(move || reading_clock.now()),
        job: RollupJob::new(store, state, settings),
        clock,
    }
}

/// Replay `steps` (sorted by time): deliveries through `store` (a `LateMarkingStore` reading
/// `clock`), job runs at their times; then run the job until it has caught up at `end_ms`.
pub async fn replay<W, S, T>(
    steps: &[Step],
    clock: &SimClock,
    store: &W,
    job: &RollupJob<S, T>,
    end_ms: i64,
) -> Result<(), String>
where
    W: TimeSeriesStore,
    S: RollupStore,
    T: RollupStateStore,
{
    for step in steps {
        match step {
            Step::Deliver(delivery) => {
                clock.set(delivery.arrival_ms);
                for chunk in delivery.readings.chunks(store.max_batch_len().max(1)) {
                    store.write(chunk).await.map_err(|e| e.to_string())?;
                }
            }
            Step::RunJob(at) => {
                clock.set(*at);
                job.run(*at).await.map_err(|e| e.to_string())?;
            }
        }
    }
    clock.set(end_ms);
    loop {
        let report = job.run(end_ms).await.map_err(|e| e.to_string())?;
        if report.windows == 0 {
            return Ok(());
        }
    }
}

/// A day boundary the scenarios start at.
pub const T0: i64 = 20_400 * DAY;
const DAY: i64 = 86_400_000;
const GATEWAY_BATCH: i64 = 5 * 3_600_000;

const PLACES: [Option<&str>; 3] = [
    Some("wall-1/zone-a/s1/p1"),
    Some("wall-1/zone-b/s1/p2"),
    None,
];
const METRICS: [&str; 2] = ["moisture", "pump_on"];

/// (device, metric, offset in seconds, value, lateness class, jitter in ms)
pub type Raw = (usize, usize, i64, i32, u8, i64);

/// The steps of one scenario: readings with their lateness, a batch delivered twice (two
/// hours after the first time), the job at the given offsets from `T0`.
pub fn scenario(raw: &[Raw], job_runs: &[i64], redeliver: usize) -> Vec<Step> {
    let mut seen = std::collections::BTreeSet::new();
    let mut batches: BTreeMap<i64, Vec<Reading>> = BTreeMap::new();
    for &(device, metric, offset_s, value, lateness, jitter) in raw {
        let time_ms = T0 + offset_s * 1000 + jitter % 1000;
        if !seen.insert((device, time_ms)) {
            continue;
        }
        let value = if METRICS[metric] == "pump_on" {
            MetricValue::Bool(value % 2 == 0)
        } else {
            MetricValue::Number(f64::from(value) / 4.0)
        };
        let mut reading = Reading::new(
            &format!("dev-{device}"),
            time_ms,
            [(METRICS[metric], value)],
        );
        if let Some(path) = PLACES[device] {
            reading = reading.with_place("spot-sensor", LocationPath::parse(path).unwrap());
        }
        let arrival = match lateness % 4 {
            0 => time_ms + jitter.rem_euclid(60_000),
            1 => time_ms + 30 * 60_000,
            2 => (time_ms.div_euclid(GATEWAY_BATCH) + 1) * GATEWAY_BATCH + jitter.rem_euclid(5_000),
            _ => time_ms + 3 * DAY,
        };
        batches.entry(arrival).or_default().push(reading);
    }
    let mut steps: Vec<(i64, Step)> = batches
        .into_iter()
        .map(|(arrival_ms, readings)| {
            (
                arrival_ms,
                Step::Deliver(Delivery {
                    arrival_ms,
                    readings,
                }),
            )
        })
        .collect();
    if let Some((at, Step::Deliver(again))) = steps.get(redeliver % steps.len().max(1)).cloned() {
        let later = at + 7_200_000;
        steps.push((
            later,
            Step::Deliver(Delivery {
                arrival_ms: later,
                ..again
            }),
        ));
    }
    steps.push((T0 + 180_000, Step::RunJob(T0 + 180_000)));
    for &run in job_runs {
        steps.push((T0 + run, Step::RunJob(T0 + run)));
    }
    steps.sort_by_key(|(t, _)| *t);
    steps.into_iter().map(|(_, s)| s).collect()
}

/// Random scenarios of up to `readings` readings over three days, 0-24 extra job runs.
pub fn scenarios(readings: usize) -> impl Strategy<Value = Vec<Step>> {
    (
        proptest::collection::vec(
            (
                0..3usize,
                0..2usize,
                0..(3 * 86_400i64),
                -400..400i32,
                0..4u8,
                0..100_000i64,
            ),
            1..readings,
        ),
        proptest::collection::vec(180_000..(6 * DAY), 0..24),
        0..1000usize,
    )
        .prop_map(|(raw, job_runs, redeliver)| scenario(&raw, &job_runs, redeliver))
}

fn numeric(value: &MetricValue) -> Option<f64> {
    match value {
        MetricValue::Number(n) => Some(*n),
        MetricValue::Bool(b) => Some(f64::from(u8::from(*b))),
        MetricValue::Text(_) => None,
    }
}

/// `(key, metric, window start)` → (count, sum, min, max, (first time, first), (last time, last)).
pub type Expected =
    BTreeMap<(SeriesKey, String, i64), (u64, f64, f64, f64, (i64, f64), (i64, f64))>;

/// The rows `tier` should hold for `readings` (the latest write of each device and instant),
/// for windows inside `coverage`.
pub fn expected_rows(readings: &[Reading], tier: Tier, coverage: Coverage) -> Expected {
    let mut latest: BTreeMap<(String, i64), &Reading> = BTreeMap::new();
    for r in readings {
        latest.insert((r.device_id.clone(), r.time_ms), r);
    }
    let mut out: Expected = BTreeMap::new();
    for r in latest.values() {
        let window = r.time_ms.div_euclid(tier.millis()) * tier.millis();
        if window < coverage.since_ms || window + tier.millis() > coverage.watermark_ms {
            continue;
        }
        let mut keys = vec![SeriesKey::Device(r.device_id.clone())];
        if let Some(d) = &r.dimensions {
            for depth in 1..=d.path.segments().len() {
                let prefix = d.path.segments()[..depth].join("/");
                keys.push(SeriesKey::Group(
                    LocationPath::parse(&prefix).unwrap_or_default(),
                ));
            }
        }
        for m in &r.metrics {
            let Some(v) = numeric(&m.value) else { continue };
            for key in &keys {
                let e = out.entry((key.clone(), m.name.clone(), window)).or_insert((
                    0,
                    0.0,
                    v,
                    v,
                    (r.time_ms, v),
                    (r.time_ms, v),
                ));
                e.0 += 1;
                e.1 += v;
                e.2 = e.2.min(v);
                e.3 = e.3.max(v);
                if (r.time_ms, v) < e.4 {
                    e.4 = (r.time_ms, v);
                }
                if (r.time_ms, v) > e.5 {
                    e.5 = (r.time_ms, v);
                }
            }
        }
    }
    out
}

/// Differences between the rows a tier holds and the expected ones (sums compared to 1e-9
/// relative: the order floating-point additions happen in differs; everything else exactly).
pub fn differences(actual: &[RollupRow], expected: &Expected) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = 0;
    for row in actual {
        let key = (row.key.clone(), row.metric.clone(), row.window_start_ms);
        let Some(e) = expected.get(&key) else {
            // A window outside the compared coverage is not judged.
            continue;
        };
        seen += 1;
        let a = &row.aggregates;
        let close = (a.sum - e.1).abs() <= 1e-9 * e.1.abs().max(1.0);
        if a.count != e.0
            || !close
            || a.min != e.2
            || a.max != e.3
            || (a.first_ms, a.first) != e.4
            || (a.last_ms, a.last) != e.5
        {
            problems.push(format!("{key:?}: got {a:?}, want {e:?}"));
        }
    }
    if seen != expected.len() {
        let held: std::collections::BTreeSet<_> = actual
            .iter()
            .map(|r| (r.key.clone(), r.metric.clone(), r.window_start_ms))
            .collect();
        for key in expected.keys().filter(|k| !held.contains(k)).take(5) {
            problems.push(format!("{key:?}: missing"));
        }
        problems.push(format!("{} of {} expected rows held", seen, expected.len()));
    }
    problems
}
