//! Rollups stay exact under late data: random readings delivered in random order with random
//! lateness (on time, 30 minutes, 5-hour gateway batches, 3 days), a batch delivered twice, the
//! job run at random times in between; afterwards every row of every tier equals the aggregate
//! of the raw readings in its window. On the memory store here; on a real influxd in
//! `tests/tests/integration/rollups_influxdb.rs`.

use std::sync::Arc;
use std::time::Duration;

use iotdp::domain::{LocationPath, MetricValue, Reading};
use iotdp::query::model::TimeRange;
use iotdp::rollup::finest::FinestTier;
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
            finest: finest.into(),
            ..RollupSettings::default()
        };
        let Simulated { clock, ingest, job } = simulated(store.clone(), state.clone(), settings);
        replay(&steps, &clock, &ingest, &job, T0 + 7 * DAY)
            .await
            .map_err(TestCaseError::fail)?;
        let coverage = state.coverage().await.unwrap().unwrap().coverage();
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
    hourly_fleet_answers_equal_the_raw_readings(Tier::Hour.into()).await;
}

/// `RollupFinestTier=auto` over the same fleet: the job measures 5-minute gaps when its
/// coverage starts (the first runs see no readings and keep deciding), records hours, writes
/// no 1-minute rows, and the reader, taking the tier from the state, answers as raw does.
#[tokio::test]
async fn under_auto_devices_reporting_every_5_minutes_get_no_minute_rows() {
    let state = hourly_fleet_answers_equal_the_raw_readings(FinestTier::Auto).await;
    assert_eq!(
        state.coverage().await.unwrap().unwrap().finest,
        Some(Tier::Hour)
    );
}

async fn hourly_fleet_answers_equal_the_raw_readings(finest: FinestTier) -> Arc<MemoryRollupState> {
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
        finest,
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
        RollupReader::new(store.clone(), store.clone(), state.clone()).with_finest(finest),
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
    state
}

/// `devices` (id, type, seconds between readings) reporting for 3 hours from `T0`, the job
/// under `finest` every 5 minutes: the store and the state after.
async fn fleet_under(
    finest: FinestTier,
    devices: &[(&str, &str, i64)],
) -> (Arc<MemoryStore>, Arc<MemoryRollupState>) {
    use iotdp::ingest::ports::TimeSeriesStore;
    let store = Arc::new(MemoryStore::new(10_000));
    let state = Arc::new(MemoryRollupState::default());
    let settings = RollupSettings {
        finest,
        ..RollupSettings::default()
    };
    let Simulated { clock, ingest, job } = simulated(store.clone(), state.clone(), settings);
    let place = LocationPath::parse("site-1/zone-a").unwrap();
    let end = T0 + 3 * 3_600_000;
    let mut readings: Vec<Reading> = devices
        .iter()
        .flat_map(|&(id, device_type, every_s)| {
            let place = place.clone();
            (T0..end).step_by(every_s as usize * 1000).map(move |at| {
                Reading::new(
                    id,
                    at + 3_000,
                    [("t", MetricValue::Number((at % 97) as f64))],
                )
                .with_place(device_type, place.clone())
            })
        })
        .collect();
    readings.sort_by_key(|r| r.time_ms);
    let mut now = T0 + 300_000;
    while now <= end + 300_000 {
        let due: Vec<Reading> = readings
            .iter()
            .filter(|r| r.time_ms < now && r.time_ms >= now - 300_000)
            .cloned()
            .collect();
        clock.set(now);
        ingest.write(&due).await.unwrap();
        job.run(now).await.unwrap();
        now += 300_000;
    }
    (store, state)
}

async fn recorded(state: &MemoryRollupState) -> Option<Tier> {
    state.coverage().await.unwrap().unwrap().finest
}

#[tokio::test]
async fn under_auto_devices_reporting_every_10_seconds_keep_minute_rows() {
    let (store, state) = fleet_under(FinestTier::Auto, &[("t-1", "thermostat", 10)]).await;
    assert_eq!(recorded(&state).await, Some(Tier::Minute));
    assert!(!store.rollup_rows(Tier::Minute).is_empty());
    let (store, state) = fleet_under(FinestTier::Auto, &[("box-1", "battery-box", 300)]).await;
    assert_eq!(recorded(&state).await, Some(Tier::Hour));
    assert!(store.rollup_rows(Tier::Minute).is_empty());
    assert!(!store.rollup_rows(Tier::Hour).is_empty());
}

/// Place rows mix types: one type that needs 1-minute rows keeps them for the stack.
#[tokio::test]
async fn under_auto_a_mixed_fleet_keeps_minute_rows() {
    let fleet = [
        ("box-1", "battery-box", 300),
        ("box-2", "battery-box", 900),
        ("t-1", "thermostat", 10),
    ];
    let (store, state) = fleet_under(FinestTier::Auto, &fleet).await;
    assert_eq!(recorded(&state).await, Some(Tier::Minute));
    let minutes = store.rollup_rows(Tier::Minute);
    assert!(minutes.iter().any(|r| r.key.name() == "box-1"));
    assert!(minutes.iter().any(|r| r.key.name() == "site-1/zone-a"));
}

#[tokio::test]
async fn an_explicit_tier_overrides_auto() {
    let (store, state) = fleet_under(Tier::Minute.into(), &[("box-1", "battery-box", 300)]).await;
    assert_eq!(recorded(&state).await, Some(Tier::Minute));
    assert!(!store.rollup_rows(Tier::Minute).is_empty());
    let (store, state) = fleet_under(Tier::Hour.into(), &[("t-1", "thermostat", 10)]).await;
    assert_eq!(recorded(&state).await, Some(Tier::Hour));
    assert!(store.rollup_rows(Tier::Minute).is_empty());
}

/// A stack whose state predates `auto` records 1 minute and keeps it; `iotdp rollups rebuild`
/// of all the coverage measures again and switches to hours. Back to minutes takes a rebuild
/// of all of it too: a rebuild of part of the coverage keeps hours.
#[tokio::test]
async fn a_rebuild_under_auto_decides_again() {
    let (store, state) = fleet_under(Tier::Minute.into(), &[("box-1", "battery-box", 300)]).await;
    let end = T0 + 4 * 3_600_000;
    let job = RollupJob::new(
        store.clone(),
        state.clone(),
        RollupSettings {
            finest: FinestTier::Auto,
            ..RollupSettings::default()
        },
    );
    job.run(end).await.unwrap();
    assert_eq!(
        recorded(&state).await,
        Some(Tier::Minute),
        "the state decides"
    );
    let everything = TimeRange {
        from_ms: T0,
        to_ms: end,
    };
    let report = job
        .rebuild(everything, &LocationPath::default(), end, |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.finest, Some(Tier::Hour));
    assert_eq!(recorded(&state).await, Some(Tier::Hour));

    // Now thermostats report every 10 s: a rebuild of one site keeps hours.
    use iotdp::ingest::ports::TimeSeriesStore;
    let thermostat: Vec<Reading> = (0..360)
        .map(|i| {
            Reading::new("t-1", T0 + i * 10_000, [("t", MetricValue::Number(1.0))])
                .with_place("thermostat", LocationPath::parse("site-1/zone-a").unwrap())
        })
        .collect();
    store.write(&thermostat).await.unwrap();
    let site = LocationPath::parse("site-1").unwrap();
    job.rebuild(everything, &site, end, |_, _| {})
        .await
        .unwrap();
    assert_eq!(recorded(&state).await, Some(Tier::Hour));
    let report = job
        .rebuild(everything, &LocationPath::default(), end, |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.finest, Some(Tier::Minute));
    assert_eq!(recorded(&state).await, Some(Tier::Minute));
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
