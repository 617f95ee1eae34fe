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
use iotdp_memory::rollup_check::Step;
use iotdp_memory::rollup_check::{
    Simulated, T0, differences, expected_rows, replay, scenarios, simulated,
};
use iotdp_memory::{MemoryRollupState, MemoryStore};
use proptest::prelude::*;

const DAY: i64 = 86_400_000;

/// Devices of the year test, split over two zones of one site.
const YEAR_DEVICES: usize = 4;

/// `max_readings_per_read`: small ones make the job read windows in pieces (down to a second)
/// and merge them, which must change nothing. `finest`: the finest tier kept; finer ones
/// stay empty.
fn check(
    steps: Vec<Step>,
    max_readings_per_read: usize,
    finest: Tier,
) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Arc::new(MemoryStore::new(7));
        let state = Arc::new(MemoryRollupState::default());
        let settings = RollupSettings {
            max_readings_per_read,
            finest,
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
            if tier < finest {
                prop_assert!(
                    store.rollup_rows(tier).is_empty(),
                    "tier {} kept",
                    tier.name()
                );
                continue;
            }
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
        finest in prop_oneof![Just(Tier::Minute), Just(Tier::Hour)],
    ) {
        check(steps, max_readings_per_read, finest)?;
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

/// A year of one reading a minute from 4 devices, two per zone: the API's 1-year 1-day-bin read
/// and 1-year drill-down give the same answers from rollups as from raw readings, reading at
/// least 100× fewer rows from the store. (Four devices, not more: the raw side of the
/// comparison reads every reading in a debug build, and this test was `make test`'s longest.)
#[tokio::test]
async fn a_year_of_readings_is_answered_from_rollups_with_a_hundredth_of_the_rows() {
    use iotdp::api::QueryApi;
    use iotdp::api::access::Caller;
    use iotdp::devices::record::DeviceRecord;
    use iotdp::rollup::reads::RollupReader;
    use iotdp_memory::{MemoryAlertStates, MemoryRegistry, MemoryRules};

    let start = T0;
    let end = start + 365 * DAY;
    let now = end + 3_600_000;
    let place = |i: usize| format!("farm-1/zone-{}", i % 2);
    let registry = Arc::new(MemoryRegistry::with((0..YEAR_DEVICES).map(|i| {
        let mut record = DeviceRecord::new(&format!("dev-{i}"), "battery-box", start);
        record.path = LocationPath::parse(&place(i)).unwrap();
        record
    })));
    let store = Arc::new(MemoryStore::new(100_000));
    use iotdp::ingest::ports::TimeSeriesStore;
    for device in 0..YEAR_DEVICES {
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
    let to = now;
    for (path, query) in [
        (
            "/devices/dev-1/readings/voltage".to_owned(),
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
        let request = get(path, &query);
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
        assert_same_answers(&from_raw.body, &from_rollups.body, 2, &request);
    }
}

/// A job that keeps hours as its finest tier (`RollupFinestTier=1h`): two days of a reading
/// every 5 minutes from 4 devices, with a 5-hour-late batch; the API's answers through the
/// rollups, whose edges below an hour are read raw, equal the answers from raw readings, for
/// device series and drill-downs, in minute, 5-minute, hour and day bins.
#[tokio::test]
async fn with_hours_the_finest_tier_answers_equal_the_raw_readings() {
    use iotdp::api::QueryApi;
    use iotdp::api::access::Caller;
    use iotdp::devices::record::DeviceRecord;
    use iotdp::ingest::ports::TimeSeriesStore;
    use iotdp::rollup::reads::RollupReader;
    use iotdp_memory::{MemoryAlertStates, MemoryRegistry, MemoryRules};

    let start = T0;
    let now = start + 2 * DAY + 37 * 60_000 + 11_000;
    let place = |i: usize| format!("site-1/zone-{}", i % 2);
    let registry = Arc::new(MemoryRegistry::with((0..4).map(|i| {
        let mut record = DeviceRecord::new(&format!("box-{i}"), "battery-box", start);
        record.path = LocationPath::parse(&place(i)).unwrap();
        record
    })));
    let store = Arc::new(MemoryStore::new(10_000));
    let state = Arc::new(MemoryRollupState::default());
    let settings = RollupSettings {
        finest: Tier::Hour,
        ..RollupSettings::default()
    };
    let Simulated { clock, ingest, job } = simulated(store.clone(), state.clone(), settings);
    let reading = |device: usize, at: i64| {
        let value = ((at / 60_000 * 7 + device as i64 * 13) % 200) as f64 / 4.0;
        Reading::new(
            &format!("box-{device}"),
            at,
            [("voltage", MetricValue::Number(value))],
        )
        .with_place("battery-box", LocationPath::parse(&place(device)).unwrap())
    };
    // Every 5 minutes, the job every 5 minutes; box-3's readings arrive in a batch 5 hours
    // late.
    clock.set(start);
    job.run(start).await.unwrap();
    let mut held = Vec::new();
    let mut at = start + 17_000;
    while at < now {
        clock.set(at);
        let on_time: Vec<Reading> = (0..3).map(|d| reading(d, at)).collect();
        ingest.write(&on_time).await.unwrap();
        held.push(reading(3, at));
        if held.len() == 60 {
            ingest.write(&held).await.unwrap();
            held.clear();
        }
        job.run(at).await.unwrap();
        at += 300_000;
    }
    ingest.write(&held).await.unwrap();
    clock.set(now);
    job.run(now).await.unwrap();
    assert!(
        store.rollup_rows(Tier::Minute).is_empty(),
        "no 1-minute rows"
    );
    assert!(!store.rollup_rows(Tier::Hour).is_empty());

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
        RollupReader::new(store.clone(), store.clone(), state.clone()).with_finest(Tier::Hour),
        states,
        rules,
    );
    let mut answered_from_hours = 0;
    for (from, bin) in [
        (now - DAY, "5m"),
        (now - 2 * DAY + 600_000, "1h"),
        (start, "1d"),
        (now - 3 * 3_600_000, "1m"),
    ] {
        for (path, query) in [
            (
                "/devices/box-3/readings/voltage".to_owned(),
                format!(
                    "from={}&to={}&bin={bin}&agg=avg&limit=10000",
                    iso(from),
                    iso(now)
                ),
            ),
            (
                "/readings/voltage/drill-down".to_owned(),
                format!("path=site-1&from={}&to={}&agg=max", iso(from), iso(now)),
            ),
        ] {
            let request = get(path, &query);
            let from_raw = raw_api.handle(&request, &Caller::admin("test"), now).await;
            let from_rollups = rollup_api
                .handle(&request, &Caller::admin("test"), now)
                .await;
            assert_eq!(from_raw.status, 200, "{}", from_raw.body);
            assert_eq!(from_rollups.status, 200, "{}", from_rollups.body);
            let tiers = from_rollups.body["tiers"].to_string();
            assert!(!tiers.contains("1m"), "{tiers}");
            if tiers.contains("1h") {
                answered_from_hours += 1;
            }
            assert_same_answers(&from_raw.body, &from_rollups.body, 1, &request);
        }
    }
    assert!(answered_from_hours >= 4, "{answered_from_hours}");
}

/// An instant as the API's query strings take it.
fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

fn get(path: String, query: &str) -> iotdp::api::ApiRequest {
    iotdp::api::ApiRequest {
        method: "GET".into(),
        path,
        query: query.replace('+', "%2B"),
        body: vec![],
    }
}

/// The same bins or groups with the same values (at least `at_least` of them), from raw
/// readings and through the rollups.
fn assert_same_answers(
    from_raw: &serde_json::Value,
    from_rollups: &serde_json::Value,
    at_least: usize,
    request: &iotdp::api::ApiRequest,
) {
    let values = |body: &serde_json::Value| -> Vec<(String, f64)> {
        body["points"]
            .as_array()
            .or(body["groups"].as_array())
            .unwrap()
            .iter()
            .map(|p| {
                let label = p.get("time").or(p.get("name")).unwrap().to_string();
                (label, p["value"].as_f64().unwrap())
            })
            .collect()
    };
    let (a, b) = (values(from_raw), values(from_rollups));
    assert!(
        a.len() >= at_least && a.len() == b.len(),
        "{request:?}: {a:?} vs {b:?}"
    );
    for ((ta, va), (tb, vb)) in a.iter().zip(&b) {
        assert_eq!(ta, tb);
        assert!((va - vb).abs() < 1e-9, "{request:?} {ta}: {va} vs {vb}");
    }
}
