//! Rollups stay exact under late data: random readings delivered in random order with random
//! lateness (on time, 30 minutes, 5-hour gateway batches, 3 days), a batch delivered twice, the
//! job run at random times in between; afterwards every row of every tier equals the aggregate
//! of the raw readings in its window. On the memory store here; on a real influxd in
//! `tests/tests/rollups_influxdb.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use iotdp::domain::{LocationPath, MetricValue, Reading};
use iotdp::rollup::job::{RollupJob, RollupSettings};
use iotdp::rollup::late::LateMarkingStore;
use iotdp::rollup::ports::RollupStateStore;
use iotdp::rollup::tier::Tier;
use iotdp_local::memory::{MemoryRollupState, MemoryStore};
use iotdp_local::rollup_check::{Delivery, SimClock, Step, differences, expected_rows, replay};
use proptest::prelude::*;

const DAY: i64 = 86_400_000;
const T0: i64 = 20_400 * DAY;
const GATEWAY_BATCH: i64 = 5 * 3_600_000;

const PLACES: [Option<&str>; 3] = [Some("wall-1/zone-a/s1/p1"), Some("wall-1/zone-b/s1/p2"), None];
const METRICS: [&str; 2] = ["moisture", "pump_on"];

/// (device, metric, offset in seconds, value, lateness class, jitter in ms)
type Raw = (usize, usize, i64, i32, u8, i64);

fn scenario(raw: &[Raw], job_runs: &[i64], redeliver: usize) -> Vec<Step> {
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
        let mut reading = Reading::new(&format!("dev-{device}"), time_ms, [(METRICS[metric], value)]);
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
            (arrival_ms, Step::Deliver(Delivery { arrival_ms, readings }))
        })
        .collect();
    if let Some((at, Step::Deliver(again))) = steps.get(redeliver % steps.len().max(1)).cloned() {
        let later = at + 7_200_000;
        steps.push((later, Step::Deliver(Delivery { arrival_ms: later, ..again })));
    }
    steps.push((T0 + 180_000, Step::RunJob(T0 + 180_000)));
    for &run in job_runs {
        steps.push((T0 + run, Step::RunJob(T0 + run)));
    }
    steps.sort_by_key(|(t, _)| *t);
    steps.into_iter().map(|(_, s)| s).collect()
}

fn check(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let store = Arc::new(MemoryStore::new(7));
        let state = Arc::new(MemoryRollupState::default());
        let clock = SimClock::default();
        let settings = RollupSettings::default();
        let reading_clock = clock.clone();
        let ingest = LateMarkingStore::new(store.clone(), state.clone(), settings.grace)
            .with_clock(move || reading_clock.now());
        let job = RollupJob::new(store.clone(), state.clone(), settings);
        replay(&steps, &clock, &ingest, &job, T0 + 7 * DAY).await.map_err(TestCaseError::fail)?;
        let coverage = state.coverage().await.unwrap().unwrap();
        prop_assert_eq!(coverage.since_ms, T0);
        prop_assert!(coverage.watermark_ms >= T0 + 7 * DAY - settings.grace.as_millis() as i64 - 60_000);
        let written = store.written();
        for tier in Tier::ALL {
            let expected = expected_rows(&written, tier, coverage);
            let problems = differences(&store.rollup_rows(tier), &expected);
            prop_assert!(problems.is_empty(), "tier {}: {:#?}", tier.name(), problems);
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_tier_equals_the_raw_readings_whatever_the_arrival_order(
        raw in proptest::collection::vec(
            (0..3usize, 0..2usize, 0..(3 * 86_400i64), -400..400i32, 0..4u8, 0..100_000i64),
            1..160,
        ),
        job_runs in proptest::collection::vec(180_000..(6 * DAY), 0..24),
        redeliver in 0..1000usize,
    ) {
        check(scenario(&raw, &job_runs, redeliver))?;
    }
}

/// Readings 5 hours and 3 days late land in windows computed long before: the job computes
/// those windows again, and the hour and day around them, and nothing else.
#[tokio::test]
async fn late_readings_recompute_only_their_windows() {
    let store = Arc::new(MemoryStore::new(100));
    let state = Arc::new(MemoryRollupState::default());
    let settings = RollupSettings {
        grace: Duration::from_secs(120),
        ..RollupSettings::default()
    };
    let clock = SimClock::default();
    let reading_clock = clock.clone();
    let ingest = LateMarkingStore::new(store.clone(), state.clone(), settings.grace)
        .with_clock(move || reading_clock.now());
    let job = RollupJob::new(store.clone(), state.clone(), settings);
    use iotdp::ingest::ports::TimeSeriesStore;
    let reading = |t: i64, v: f64| {
        Reading::new("gw-7", t, [("moisture", MetricValue::Number(v))])
            .with_place("gateway", LocationPath::parse("wall-1/zone-a").unwrap())
    };
    clock.set(T0 + 2 * DAY);
    let first = job.run(T0 + 2 * DAY).await.unwrap();
    assert_eq!(first.windows, 1438, "the first run covers the day so far");
    ingest.write(&[reading(T0 + 2 * DAY - 3_600_000, 40.0)]).await.unwrap();
    // 5 hours late: a gateway batch.
    ingest.write(&[reading(T0 + 2 * DAY - 5 * 3_600_000, 30.0)]).await.unwrap();
    assert_eq!(state.marked().len(), 2);
    let second = job.run(T0 + 2 * DAY + 60_000).await.unwrap();
    // The hour 5 hours back is closed and computed again; the last hour is still open.
    assert_eq!((second.windows, second.late_windows, second.hours), (1, 2, 1));
    assert!(state.marked().is_empty());
    let third = job.run(T0 + 2 * DAY + 180_000).await.unwrap();
    assert_eq!((third.windows, third.late_windows, third.hours, third.days), (2, 0, 1, 1));
    let hours = store.rollup_rows(Tier::Hour);
    let zone: Vec<_> = hours
        .iter()
        .filter(|r| r.key.name() == "wall-1/zone-a")
        .map(|r| (r.window_start_ms, r.aggregates.count, r.aggregates.sum))
        .collect();
    assert_eq!(
        zone,
        [(T0 + 2 * DAY - 5 * 3_600_000, 1, 30.0), (T0 + 2 * DAY - 3_600_000, 1, 40.0)]
    );
}
