//! Rollups stay exact under late data: random readings delivered in random order with random
//! lateness (on time, 30 minutes, 5-hour gateway batches, 3 days), a batch delivered twice, the
//! job run at random times in between; afterwards every row of every tier equals the aggregate
//! of the raw readings in its window. On the memory store here; on a real influxd in
//! `tests/tests/rollups_influxdb.rs`.

use std::sync::Arc;
use std::time::Duration;

use iotdp::domain::{LocationPath, MetricValue, Reading};
use iotdp::rollup::job::{RollupJob, RollupSettings};
use iotdp::rollup::ports::RollupStateStore;
use iotdp::rollup::tier::Tier;
use iotdp_local::memory::{MemoryRollupState, MemoryStore};
use iotdp_local::rollup_check::Step;
use iotdp_local::rollup_check::{
    Simulated, T0, differences, expected_rows, replay, scenarios, simulated,
};
use proptest::prelude::*;

const DAY: i64 = 86_400_000;

/// `max_readings_per_read`: small ones make the job read windows in pieces (down to a second)
/// and merge them, which must change nothing.
fn check(steps: Vec<Step>, max_readings_per_read: usize) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Arc::new(MemoryStore::new(7));
        let state = Arc::new(MemoryRollupState::default());
        let settings = RollupSettings {
            max_readings_per_read,
            ..RollupSettings::default()
        };
        let Simulated { clock, ingest, job } = simulated(store.clone(), state.clone(), settings);
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
    fn every_tier_equals_the_raw_readings_whatever_the_arrival_order(
        steps in scenarios(160),
        max_readings_per_read in prop_oneof![Just(200_000usize), 1..40usize],
    ) {
        check(steps, max_readings_per_read)?;
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
    let Simulated { clock, ingest, job } = simulated(store.clone(), state.clone(), settings);
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

/// A year of one reading a minute from 10 devices: the API's 1-year 1-day-bin read and 1-year
/// drill-down give the same answers from rollups as from raw readings, reading at least 100×
/// fewer rows from the store.
#[tokio::test]
async fn a_year_of_readings_is_answered_from_rollups_with_a_hundredth_of_the_rows() {
    use iotdp::api::access::Caller;
    use iotdp::api::{ApiRequest, QueryApi};
    use iotdp::devices::record::DeviceRecord;
    use iotdp::rollup::reads::RollupReader;
    use iotdp_local::memory::{MemoryAlertStates, MemoryRegistry, MemoryRules};

    let start = T0;
    let end = start + 365 * DAY;
    let now = end + 3_600_000;
    let place = |i: usize| format!("farm-1/zone-{}", i % 2);
    let registry = Arc::new(MemoryRegistry::with((0..10).map(|i| {
        let mut record = DeviceRecord::new(&format!("dev-{i}"), "battery-box", start);
        record.path = LocationPath::parse(&place(i)).unwrap();
        record
    })));
    let store = Arc::new(MemoryStore::new(100_000));
    use iotdp::ingest::ports::TimeSeriesStore;
    for device in 0..10 {
        let path = LocationPath::parse(&place(device)).unwrap();
        let id = format!("dev-{device}");
        let readings: Vec<Reading> = (0..(end + 1_800_000 - start) / 60_000)
            .map(|minute| {
                let value = ((minute * 7 + device as i64 * 13) % 200) as f64 / 4.0;
                Reading::new(
                    &id,
                    start + minute * 60_000,
                    [("voltage", MetricValue::Number(value))],
                )
                .with_place("battery-box", path.clone())
            })
            .collect();
        store.write(&readings).await.unwrap();
    }
    let state = Arc::new(MemoryRollupState::default());
    let job = RollupJob::new(store.clone(), state.clone(), RollupSettings::default());
    let year = iotdp::query::model::TimeRange {
        from_ms: start,
        to_ms: end,
    };
    job.rebuild(year, &LocationPath::default(), now, |_, _| {})
        .await
        .unwrap();
    job.run(now).await.unwrap();

    let rules = Arc::new(MemoryRules::new(vec![]));
    let states = Arc::new(MemoryAlertStates::default());
    let raw_api = QueryApi::new(
        registry.clone(),
        store.clone(),
        states.clone(),
        rules.clone(),
    );
    let rollup_api = QueryApi::new(
        registry,
        RollupReader::new(store.clone(), store.clone(), state.clone()),
        states,
        rules,
    );
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339()
    };
    let to = now;
    for (path, query) in [
        (
            "/devices/dev-3/readings/voltage".to_owned(),
            format!(
                "from={}&to={}&bin=1d&agg=avg&limit=10000",
                iso(start),
                iso(to)
            ),
        ),
        (
            "/readings/voltage/drill-down".to_owned(),
            format!("path=farm-1&from={}&to={}&agg=max", iso(start), iso(to)),
        ),
    ] {
        let request = ApiRequest {
            method: "GET".into(),
            path,
            query: query.replace('+', "%2B"),
            body: vec![],
        };
        let before = store.rows_read();
        let from_raw = raw_api.handle(&request, &Caller::admin("test"), now).await;
        let raw_rows = store.rows_read() - before;
        let before = store.rows_read();
        let from_rollups = rollup_api
            .handle(&request, &Caller::admin("test"), now)
            .await;
        let rollup_rows = store.rows_read() - before;
        assert_eq!(from_raw.status, 200, "{}", from_raw.body);
        assert_eq!(from_rollups.status, 200, "{}", from_rollups.body);
        eprintln!(
            "{}: {raw_rows} rows from raw, {rollup_rows} through rollups",
            request.path
        );
        assert!(
            raw_rows >= 100 * rollup_rows,
            "{}: {raw_rows} rows from raw, {rollup_rows} through rollups",
            request.path
        );
        let tiers = from_rollups.body["tiers"].as_array().unwrap();
        assert_eq!(tiers[0], "1d", "{tiers:?}");
        assert_eq!(
            tiers.last().unwrap(),
            "raw",
            "the tail past the watermark is raw"
        );
        let values = |body: &serde_json::Value| -> Vec<(String, f64)> {
            let items = body["points"]
                .as_array()
                .or(body["groups"].as_array())
                .unwrap();
            items
                .iter()
                .map(|p| {
                    let label = p.get("time").or(p.get("name")).unwrap().to_string();
                    (label, p["value"].as_f64().unwrap())
                })
                .collect()
        };
        let (a, b) = (values(&from_raw.body), values(&from_rollups.body));
        assert!(
            a.len() >= 2 && a.len() == b.len(),
            "{} vs {}",
            a.len(),
            b.len()
        );
        for ((ta, va), (tb, vb)) in a.iter().zip(&b) {
            assert_eq!(ta, tb);
            assert!((va - vb).abs() < 1e-9, "{ta}: {va} vs {vb}");
        }
    }
}
