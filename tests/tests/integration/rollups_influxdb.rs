//! Rollups on a real influxd: the late-data property (every row of every tier equals the raw
//! readings' aggregate, whatever the arrival order), and the store contract extended to
//! rollups (InfluxDB and the reference memory store compute the same rows and give the same
//! stitched answers).

use std::sync::Arc;
use std::time::Duration;

use iotdp::adapters::influxdb::InfluxDbSettings;
use iotdp::adapters::influxdb::InfluxDbStore;
use iotdp::domain::{LocationPath, MetricValue, Reading};
use iotdp::ingest::ports::TimeSeriesStore;
use iotdp::query::model::{Aggregate, SeriesQuery, TimeRange};
use iotdp::query::ports::TimeSeriesReader;
use iotdp::rollup::job::RollupSettings;
use iotdp::rollup::model::RowSelection;
use iotdp::rollup::ports::{RollupStateStore, RollupStore};
use iotdp::rollup::reads::RollupReader;
use iotdp::rollup::tier::Tier;
use iotdp_integration_tests::InfluxServer;
use iotdp_memory::rollup_check::{
    Simulated, Step, differences, expected_rows, replay, scenarios, simulated,
};
use iotdp_memory::{MemoryRollupState, MemoryStore};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const DAY: i64 = 86_400_000;

fn database(influx: &InfluxServer, name: &str) -> InfluxDbStore {
    influx.process.create_database(name).unwrap();
    InfluxDbStore::new(&InfluxDbSettings {
        database: name.into(),
        ..influx.settings()
    })
    .unwrap()
}

#[test]
fn every_tier_on_influxdb_equals_the_raw_readings_whatever_the_arrival_order() {
    let influx = InfluxServer::start();
    every_tier_equals_the_raw_readings(8, |n| {
        let store = database(&influx, &format!("case{n}"));
        async move { store }
    });
}

/// The late-data property on the store `store_for(case)` gives each case: whatever the
/// arrival order, every row of every tier equals the raw readings' aggregate.
pub(crate) fn every_tier_equals_the_raw_readings<S, F, Fut>(cases: u32, store_for: F)
where
    S: TimeSeriesStore + RollupStore + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&scenarios(60), |steps: Vec<Step>| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            runtime.block_on(async {
                let store = Arc::new(store_for(n).await);
                let state = Arc::new(MemoryRollupState::default());
                let settings = RollupSettings::default();
                let Simulated { clock, ingest, job } =
                    simulated(store.clone(), state.clone(), settings);
                let end = iotdp_memory::rollup_check::T0 + 7 * DAY;
                replay(&steps, &clock, &ingest, &job, end)
                    .await
                    .map_err(TestCaseError::fail)?;
                let coverage = state.coverage().await.unwrap().unwrap().coverage();
                let everything = TimeRange {
                    from_ms: 0,
                    to_ms: end,
                };
                let raw = store
                    .raw_readings(everything, &LocationPath::default())
                    .await
                    .unwrap();
                let delivered: usize = steps
                    .iter()
                    .map(|s| match s {
                        Step::Deliver(d) => d.readings.len(),
                        Step::RunJob(_) => 0,
                    })
                    .sum();
                prop_assert!(!raw.is_empty() && raw.len() <= delivered);
                for tier in Tier::ALL {
                    let rows = store
                        .rollups(tier, everything, RowSelection::All)
                        .await
                        .unwrap();
                    let problems = differences(&rows, &expected_rows(&raw, tier, coverage));
                    prop_assert!(problems.is_empty(), "tier {}: {:#?}", tier.name(), problems);
                }
                Ok(())
            })
        })
        .unwrap();
}

/// Two days of a small green wall, some readings 5 hours late, on both stores.
fn wall_readings() -> Vec<(i64, Reading)> {
    let start = 20_400 * DAY;
    let mut out = Vec::new();
    for minute in 0..(2 * 24 * 60) {
        for spot in 0..4 {
            let time_ms = start + minute * 60_000 + spot * 1000;
            let path = format!("wall-1/zone-{}/s1/p{spot}", spot % 2);
            let reading = Reading::new(
                &format!("spot-{spot}"),
                time_ms,
                [
                    (
                        "moisture",
                        MetricValue::Number(30.0 + ((minute * 7 + spot) % 13) as f64 / 2.0),
                    ),
                    ("pump_on", MetricValue::Bool(minute % 5 == 0)),
                ],
            )
            .with_place("spot-sensor", LocationPath::parse(&path).unwrap());
            let arrival = if spot == 3 {
                time_ms + 5 * 3_600_000
            } else {
                time_ms + 2_000
            };
            out.push((arrival, reading));
        }
    }
    out.sort_by_key(|(arrival, _)| *arrival);
    out
}

#[tokio::test]
async fn both_stores_compute_the_same_rollups_and_answer_the_same() {
    let influx = InfluxServer::start();
    same_rollups_and_answers_as_the_reference(Arc::new(database(&influx, "contract")), 600_000)
        .await;
}

/// The store contract extended to rollups: `store` and the reference
/// compute the same rows of every tier from the same late-arriving readings, and answer the
/// same stitched series and drill-down. Readings arrive, and the job runs, every
/// `cadence_ms` of simulated time.
pub(crate) async fn same_rollups_and_answers_as_the_reference<S>(store: Arc<S>, cadence_ms: i64)
where
    S: TimeSeriesStore + RollupStore + TimeSeriesReader + 'static,
{
    let memory_store = Arc::new(MemoryStore::new(5000));
    let readings = wall_readings();
    let end = 20_402 * DAY + 600_000;

    async fn load<S>(
        store: Arc<S>,
        readings: &[(i64, Reading)],
        end: i64,
        cadence_ms: i64,
    ) -> Arc<MemoryRollupState>
    where
        S: TimeSeriesStore + RollupStore + 'static,
    {
        let state = Arc::new(MemoryRollupState::default());
        let settings = RollupSettings {
            grace: Duration::from_secs(120),
            ..RollupSettings::default()
        };
        let Simulated { clock, ingest, job } = simulated(store.clone(), state.clone(), settings);
        let mut steps: Vec<Step> = readings
            .chunk_by(|a, b| a.0 / cadence_ms == b.0 / cadence_ms)
            .map(|batch| {
                Step::Deliver(iotdp_memory::rollup_check::Delivery {
                    arrival_ms: batch[0].0,
                    readings: batch.iter().map(|(_, r)| r.clone()).collect(),
                })
            })
            .collect();
        // The job runs every `cadence_ms` of simulated time, from the first day on.
        for at in (20_400 * DAY + 180_000..end).step_by(cadence_ms as usize) {
            steps.push(Step::RunJob(at));
        }
        let time = |s: &Step| match s {
            Step::Deliver(d) => d.arrival_ms,
            Step::RunJob(t) => *t,
        };
        steps.sort_by_key(time);
        replay(&steps, &clock, &ingest, &job, end).await.unwrap();
        state
    }

    let store_state = load(store.clone(), &readings, end, cadence_ms).await;
    let memory_state = load(memory_store.clone(), &readings, end, cadence_ms).await;
    let coverage = memory_state.coverage().await.unwrap();
    assert_eq!(store_state.coverage().await.unwrap(), coverage);
    let everything = TimeRange {
        from_ms: 0,
        to_ms: end,
    };
    for tier in Tier::ALL {
        let strip = |rows: Vec<iotdp::rollup::model::RollupRow>| -> Vec<_> {
            rows.into_iter()
                .map(|r| {
                    (
                        r.key,
                        r.metric,
                        r.window_start_ms,
                        r.aggregates.count,
                        r.aggregates.min,
                        r.aggregates.max,
                        r.aggregates.first,
                        r.aggregates.last,
                        (r.aggregates.sum * 1e6).round(),
                    )
                })
                .collect()
        };
        let mut from_store = strip(
            store
                .rollups(tier, everything, RowSelection::All)
                .await
                .unwrap(),
        );
        let mut from_memory = strip(
            memory_store
                .rollups(tier, everything, RowSelection::All)
                .await
                .unwrap(),
        );
        from_store.sort_by(|a, b| a.partial_cmp(b).unwrap());
        from_memory.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert!(!from_memory.is_empty());
        assert_eq!(from_store, from_memory, "tier {}", tier.name());
    }

    // The stitched answers: a day-binned series and a drill-down over the two days and a bit.
    let store_reader = RollupReader::new(store.clone(), store.clone(), store_state);
    let memory_reader = RollupReader::new(memory_store.clone(), memory_store.clone(), memory_state);
    let range = TimeRange {
        from_ms: 20_400 * DAY + 90_000,
        to_ms: end,
    };
    for bin in [60, 3_600, 86_400] {
        let query = SeriesQuery {
            device_id: "spot-3".into(),
            metric: "moisture".into(),
            range,
            bins: Some((Duration::from_secs(bin), Aggregate::Avg)),
            limit: None,
        };
        let a = store_reader.series_answered(&query).await.unwrap();
        let b = memory_reader.series_answered(&query).await.unwrap();
        assert_eq!(a.sources, b.sources);
        assert!(
            a.sources.contains(&"raw") && a.sources.len() >= 2,
            "{:?}",
            a.sources
        );
        assert_eq!(a.value.len(), b.value.len());
        for (x, y) in a.value.iter().zip(&b.value) {
            assert_eq!(x.time_ms, y.time_ms);
            let (MetricValue::Number(x), MetricValue::Number(y)) = (&x.value, &y.value) else {
                panic!("numbers expected");
            };
            assert!((x - y).abs() < 1e-9, "{x} vs {y}");
        }
    }
    let within = LocationPath::parse("wall-1").unwrap();
    let a = store_reader
        .drill_down_answered("moisture", &within, range, Aggregate::Max)
        .await
        .unwrap();
    let b = memory_reader
        .drill_down_answered("moisture", &within, range, Aggregate::Max)
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.sources, ["1d", "1h", "1m", "raw"]);
    assert_eq!(a.value.len(), 2);
}
