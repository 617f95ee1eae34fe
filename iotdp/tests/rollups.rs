//! Rollups stay exact under late data: random readings delivered in random order with random
//! lateness (on time, 30 minutes, 5-hour gateway batches, 3 days), a batch delivered twice, the
//! job run at random times in between; afterwards every row of every tier equals the aggregate
//! of the raw readings in its window. On the memory store here; on a real influxd in
//! `tests/tests/rollups_influxdb.rs`.

use std::sync::Arc;
use std::time::Duration;

use iotdp::domain::{LocationPath, MetricValue, Reading};
use iotdp::rollup::job::{RollupJob, RollupSettings};
use iotdp::rollup::late::LateMarkingStore;
use iotdp::rollup::ports::RollupStateStore;
use iotdp::rollup::tier::Tier;
use iotdp_local::memory::{MemoryRollupState, MemoryStore};
use iotdp_local::rollup_check::Step;
use iotdp_local::rollup_check::{SimClock, T0, differences, expected_rows, replay, scenarios};
use proptest::prelude::*;

const DAY: i64 = 86_400_000;

fn check(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Arc::new(MemoryStore::new(7));
        let state = Arc::new(MemoryRollupState::default());
        let clock = SimClock::default();
        let settings = RollupSettings::default();
        let reading_clock = clock.clone();
        let ingest = LateMarkingStore::new(store.clone(), state.clone(), settings.grace)
            .with_clock(move || reading_clock.now());
        let job = RollupJob::new(store.clone(), state.clone(), settings);
        replay(&steps, &clock, &ingest, &job, T0 + 7 * DAY)
            .await
            .map_err(TestCaseError::fail)?;
        let coverage = state.coverage().await.unwrap().unwrap();
        prop_assert_eq!(coverage.since_ms, T0);
        prop_assert!(
            coverage.watermark_ms >= T0 + 7 * DAY - settings.grace.as_millis() as i64 - 60_000
        );
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
    fn every_tier_equals_the_raw_readings_whatever_the_arrival_order(steps in scenarios(160)) {
        check(steps)?;
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
    ingest
        .write(&[reading(T0 + 2 * DAY - 3_600_000, 40.0)])
        .await
        .unwrap();
    // 5 hours late: a gateway batch.
    ingest
        .write(&[reading(T0 + 2 * DAY - 5 * 3_600_000, 30.0)])
        .await
        .unwrap();
    assert_eq!(state.marked().len(), 2);
    let second = job.run(T0 + 2 * DAY + 60_000).await.unwrap();
    // The hour 5 hours back is closed and computed again; the last hour is still open.
    assert_eq!(
        (second.windows, second.late_windows, second.hours),
        (1, 2, 1)
    );
    assert!(state.marked().is_empty());
    let third = job.run(T0 + 2 * DAY + 180_000).await.unwrap();
    assert_eq!(
        (third.windows, third.late_windows, third.hours, third.days),
        (2, 0, 1, 1)
    );
    let hours = store.rollup_rows(Tier::Hour);
    let zone: Vec<_> = hours
        .iter()
        .filter(|r| r.key.name() == "wall-1/zone-a")
        .map(|r| (r.window_start_ms, r.aggregates.count, r.aggregates.sum))
        .collect();
    assert_eq!(
        zone,
        [
            (T0 + 2 * DAY - 5 * 3_600_000, 1, 30.0),
            (T0 + 2 * DAY - 3_600_000, 1, 40.0)
        ]
    );
}
