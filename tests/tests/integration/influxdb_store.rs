//! The InfluxDB store against a real `influxd` (started per test on free ports): writes land,
//! escaping round-trips every character class, partial writes quarantine exactly the bad
//! reading while the rest is written.

use std::sync::Arc;
use std::time::Duration;

use iotdp::adapters::influxdb::InfluxDbStore;
use iotdp::domain::{DeviceDimensions, LocationPath};
use iotdp::domain::{MetricValue, Reading};
use iotdp::ingest::store_writer::{WriteOutcome, WritePolicy, write_readings};
use iotdp_integration_tests::InfluxServer;
use tokio::time::Instant;

const T0: i64 = 1_764_000_000_000;

fn reading(device: &str, time_ms: i64, metrics: Vec<(&str, MetricValue)>) -> Reading {
    Reading::new(device, time_ms, metrics).with_version(T0)
}

async fn write(store: &InfluxDbStore, readings: &[Reading]) -> Vec<WriteOutcome> {
    let deadline = Instant::now() + Duration::from_secs(30);
    write_readings(store, readings, &WritePolicy::default(), deadline)
        .await
        .0
}

fn count(influx: &InfluxServer, query: &str) -> i64 {
    influx.series(query)[0]["values"][0][1].as_i64().unwrap()
}

#[tokio::test]
async fn a_large_batch_lands_in_5000_line_requests() {
    let influx = InfluxServer::start();
    let store = InfluxDbStore::new(&influx.settings()).unwrap();
    let readings: Vec<Reading> = (0..12_000)
        .map(|i| {
            let mut r = reading(
                &format!("ac-{}", i % 10),
                T0 + i as i64,
                vec![
                    (
                        "temperature",
                        MetricValue::Number(20.0 + (i % 7) as f64 / 10.0),
                    ),
                    ("fan_on", MetricValue::Bool(i % 2 == 0)),
                    ("mode", MetricValue::Text("eco".into())),
                ],
            );
            r.seq = Some(i as u64);
            r
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (outcomes, stats) =
        write_readings(&store, &readings, &WritePolicy::default(), deadline).await;
    assert!(outcomes.iter().all(|o| *o == WriteOutcome::Stored));
    assert_eq!(stats.write_calls, 3);
    assert_eq!(
        count(&influx, "SELECT COUNT(temperature) FROM telemetry"),
        12_000
    );
    let last = influx.series("SELECT LAST(seq) FROM telemetry WHERE device_id = 'ac-9'");
    assert_eq!(last[0]["values"][0][1], 11_999);
}

#[tokio::test]
async fn tags_and_fields_round_trip_every_character_class() {
    let influx = InfluxServer::start();
    let store = InfluxDbStore::new(&influx.settings()).unwrap();
    // The domain never lets these into tags (ids and labels are restricted), but the encoder
    // must be right for any text it can spell: spaces, commas, equals signs, quotes,
    // backslashes, unicode. (A tag ending in a backslash has no portable spelling; string
    // fields take anything.)
    let hostile = [
        ("plain", "plain"),
        ("with space", "with space"),
        ("with,comma", "with,comma"),
        ("with=equals", "with=equals"),
        ("with\"quote", "with\"quote"),
        ("with'single", "with'single"),
        ("back\\slash", "back\\slash"),
        ("ünïcødé-雪", "ünïcødé-雪"),
        ("all of ,= \"' at once", "all of ,= \"'\\ at \\\" once\\"),
        ("tag-for-trailing", "trailing\\"),
    ];
    let readings: Vec<Reading> = hostile
        .iter()
        .enumerate()
        .map(|(i, (tag, field))| {
            let mut r = reading(
                tag,
                T0 + i as i64,
                vec![
                    ("label", MetricValue::Text((*field).to_owned())),
                    ("index", MetricValue::Number(i as f64)),
                ],
            );
            r.dimensions = Some(Arc::new(DeviceDimensions {
                device_type: (*tag).to_owned(),
                path: LocationPath::default(),
            }));
            r
        })
        .collect();
    let outcomes = write(&store, &readings).await;
    assert!(
        outcomes.iter().all(|o| *o == WriteOutcome::Stored),
        "{outcomes:?}"
    );
    let series = influx
        .series("SELECT \"index\", label, device_id, device_type FROM telemetry ORDER BY time");
    let rows = series[0]["values"].as_array().unwrap();
    assert_eq!(rows.len(), hostile.len());
    for (row, (tag, field)) in rows.iter().zip(hostile) {
        assert_eq!(row[2], field, "string field");
        assert_eq!(row[3], tag, "device_id tag");
        assert_eq!(row[4], tag, "device_type tag");
    }
}

#[tokio::test]
async fn hierarchy_dimensions_are_tags() {
    let influx = InfluxServer::start();
    let store = InfluxDbStore::new(&influx.settings()).unwrap();
    let mut r = reading("spot-3", T0, vec![("moisture", MetricValue::Number(0.31))]);
    r.dimensions = Some(Arc::new(DeviceDimensions {
        device_type: "plant-sensor".into(),
        path: LocationPath::parse("wall-1/zone-a/s1/spot-3").unwrap(),
    }));
    assert_eq!(write(&store, &[r]).await, [WriteOutcome::Stored]);
    let keys = influx.series("SHOW TAG KEYS FROM telemetry");
    let keys: Vec<&str> = keys[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[0].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "device_id",
            "device_type",
            "section",
            "site",
            "spot",
            "zone"
        ]
    );
    assert_eq!(
        count(
            &influx,
            "SELECT COUNT(moisture) FROM telemetry WHERE site = 'wall-1' AND zone = 'zone-a'"
        ),
        1
    );
}

#[tokio::test]
async fn a_type_conflict_quarantines_exactly_the_bad_reading_and_writes_the_rest() {
    let influx = InfluxServer::start();
    let store = InfluxDbStore::new(&influx.settings()).unwrap();
    // `mode` is a string field from now on.
    let first = reading("ac-1", T0, vec![("mode", MetricValue::Text("eco".into()))]);
    assert_eq!(write(&store, &[first]).await, [WriteOutcome::Stored]);
    let mut batch: Vec<Reading> = (1..=100)
        .map(|i| {
            reading(
                "ac-1",
                T0 + i,
                vec![("mode", MetricValue::Text("eco".into()))],
            )
        })
        .collect();
    batch[41].metrics[0].value = MetricValue::Number(3.0);
    let outcomes = write(&store, &batch).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        match outcome {
            WriteOutcome::RejectedByStore(reason) => {
                assert_eq!(i, 41);
                assert!(
                    reason.contains("field type conflict") && reason.contains("mode"),
                    "{reason}"
                );
            }
            other => assert_eq!(*other, WriteOutcome::Stored, "reading {i}"),
        }
    }
    assert!(matches!(outcomes[41], WriteOutcome::RejectedByStore(_)));
    assert_eq!(count(&influx, "SELECT COUNT(mode) FROM telemetry"), 100);
}

#[tokio::test]
async fn a_conflict_within_one_request_is_found_by_splitting() {
    let influx = InfluxServer::start();
    let store = InfluxDbStore::new(&influx.settings()).unwrap();
    // A fresh field whose first and later values disagree within one request: InfluxDB only
    // says "field type conflict", so the writer splits until the odd one is alone.
    let mut batch: Vec<Reading> = (0..64)
        .map(|i| reading("bat-1", T0 + i, vec![("state", MetricValue::Number(1.0))]))
        .collect();
    batch[37].metrics[0].value = MetricValue::Text("charging".into());
    let outcomes = write(&store, &batch).await;
    let rejected: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, WriteOutcome::RejectedByStore(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(rejected, [37]);
    assert!(
        outcomes
            .iter()
            .all(|o| !matches!(o, WriteOutcome::Failed(_)))
    );
    assert_eq!(count(&influx, "SELECT COUNT(state) FROM telemetry"), 63);
}

#[tokio::test]
async fn an_unreachable_server_is_retried_then_reported_failed() {
    let influx = InfluxServer::start();
    // The stopped server's address: nothing listens there any more.
    let settings = influx.settings();
    drop(influx);
    let store = InfluxDbStore::new(&settings).unwrap();
    let policy = WritePolicy {
        retry: iotdp::retry::RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_attempts: 3,
        },
        ..WritePolicy::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = reading("ac-1", T0, vec![("t", MetricValue::Number(1.0))]);
    let (outcomes, stats) = write_readings(&store, &[r], &policy, deadline).await;
    assert!(
        matches!(&outcomes[0], WriteOutcome::Failed(why) if why.contains("InfluxDB")),
        "{outcomes:?}"
    );
    assert_eq!(stats.retries, 2);
}

// ---- The read port ------------------------------------------------------------------------

use iotdp::adapters::influxdb::InfluxDbStore as Reader;
use iotdp::query::model::{Aggregate, FleetFilter, Point, SeriesQuery, TimeRange};
use iotdp::query::ports::TimeSeriesReader;

fn placed(
    device: &str,
    kind: &str,
    path: &str,
    time_ms: i64,
    metrics: Vec<(&str, MetricValue)>,
) -> Reading {
    let mut r = reading(device, time_ms, metrics);
    r.dimensions = Some(Arc::new(DeviceDimensions {
        device_type: kind.into(),
        path: LocationPath::parse(path).unwrap(),
    }));
    r
}

/// A thermostat's temperature at 0, 30, 60, 90 and 150 s; a green wall's spots in two zones.
fn known_readings() -> Vec<Reading> {
    let mut readings = Vec::new();
    for (offset_s, t) in [(0, 20.0), (30, 22.0), (60, 24.0), (90, 26.0), (150, 30.0)] {
        readings.push(placed(
            "ac-1",
            "thermostat",
            "home-7",
            T0 + offset_s * 1000,
            vec![
                ("temperature", MetricValue::Number(t)),
                (
                    "mode",
                    MetricValue::Text(if t < 25.0 { "eco" } else { "cool" }.into()),
                ),
            ],
        ));
    }
    // Each spot a second apart: first/last across devices that share an instant are ambiguous
    // in every store.
    for (i, (spot, zone, moisture)) in [
        ("spot-1", "zone-a", 0.2),
        ("spot-2", "zone-a", 0.4),
        ("spot-3", "zone-b", 0.6),
    ]
    .into_iter()
    .enumerate()
    {
        for minute in 0..3 {
            readings.push(placed(
                spot,
                "plant-sensor",
                &format!("wall-1/{zone}/s1/{spot}"),
                T0 + minute * 60_000 + i as i64 * 1000,
                vec![(
                    "moisture",
                    MetricValue::Number(moisture + minute as f64 / 100.0),
                )],
            ));
        }
    }
    readings.push(placed(
        "other-wall",
        "plant-sensor",
        "wall-2/zone-a/s1/spot-1",
        T0,
        vec![("moisture", MetricValue::Number(0.9))],
    ));
    readings
}

async fn known_data(store: &Reader) {
    let readings = known_readings();
    let outcomes = write(store, &readings).await;
    assert!(outcomes.iter().all(|o| *o == WriteOutcome::Stored));
}

const RANGE: TimeRange = TimeRange {
    from_ms: T0,
    to_ms: T0 + 180_000,
};

fn numbers(points: &[Point]) -> Vec<(i64, f64)> {
    points
        .iter()
        .map(|p| match p.value {
            MetricValue::Number(v) => ((p.time_ms - T0) / 1000, (v * 1000.0).round() / 1000.0),
            ref other => panic!("not a number: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn ranges_come_back_raw_and_in_bins_with_every_aggregate() {
    let influx = InfluxServer::start();
    let store = InfluxDbStore::new(&influx.settings()).unwrap();
    known_data(&store).await;
    let query = |bins| SeriesQuery {
        device_id: "ac-1".into(),
        metric: "temperature".into(),
        range: RANGE,
        bins,
        limit: None,
    };
    assert_eq!(
        numbers(&store.series(&query(None)).await.unwrap()),
        [(0, 20.0), (30, 22.0), (60, 24.0), (90, 26.0), (150, 30.0)]
    );
    let minute = Duration::from_secs(60);
    let expected = [
        (Aggregate::Avg, [21.0, 25.0, 30.0]),
        (Aggregate::Min, [20.0, 24.0, 30.0]),
        (Aggregate::Max, [22.0, 26.0, 30.0]),
        (Aggregate::Sum, [42.0, 50.0, 30.0]),
        (Aggregate::Count, [2.0, 2.0, 1.0]),
        (Aggregate::First, [20.0, 24.0, 30.0]),
        (Aggregate::Last, [22.0, 26.0, 30.0]),
    ];
    for (aggregate, values) in expected {
        let points = store
            .series(&query(Some((minute, aggregate))))
            .await
            .unwrap();
        assert_eq!(
            numbers(&points),
            [(0, values[0]), (60, values[1]), (120, values[2])],
            "{aggregate:?}"
        );
    }
    // Pages: at most `limit` points, earliest first; the next page starts after the last.
    let mut page = query(None);
    page.limit = Some(2);
    assert_eq!(
        numbers(&store.series(&page).await.unwrap()),
        [(0, 20.0), (30, 22.0)]
    );
    page.range.from_ms = T0 + 30_001;
    assert_eq!(
        numbers(&store.series(&page).await.unwrap()),
        [(60, 24.0), (90, 26.0)]
    );
    let mut bins = query(Some((minute, Aggregate::Max)));
    bins.limit = Some(1);
    assert_eq!(numbers(&store.series(&bins).await.unwrap()), [(0, 22.0)]);
    // A range with no data is empty, not an error.
    let mut empty = query(Some((minute, Aggregate::Avg)));
    empty.range = TimeRange {
        from_ms: T0 - 600_000,
        to_ms: T0 - 300_000,
    };
    assert!(store.series(&empty).await.unwrap().is_empty());
}

#[tokio::test]
async fn latest_values_per_metric_and_per_device() {
    let influx = InfluxServer::start();
    let store = InfluxDbStore::new(&influx.settings()).unwrap();
    known_data(&store).await;
    assert_eq!(
        store.metric_names().await.unwrap(),
        ["mode", "moisture", "temperature"]
    );
    let latest = store
        .latest_values("ac-1", &["temperature", "mode", "humidity"])
        .await
        .unwrap();
    assert_eq!(
        latest,
        [
            (
                "temperature".to_owned(),
                Point {
                    time_ms: T0 + 150_000,
                    value: MetricValue::Number(30.0)
                }
            ),
            (
                "mode".to_owned(),
                Point {
                    time_ms: T0 + 150_000,
                    value: MetricValue::Text("cool".into())
                }
            ),
        ]
    );
    let wall = FleetFilter {
        device_type: Some("plant-sensor".into()),
        within: LocationPath::parse("wall-1").unwrap(),
    };
    let by_device: Vec<(String, f64)> = store
        .latest_by_device("moisture", &wall)
        .await
        .unwrap()
        .into_iter()
        .map(|d| match d.value {
            MetricValue::Number(v) => (d.device_id, (v * 100.0).round() / 100.0),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        by_device,
        [
            ("spot-1".into(), 0.22),
            ("spot-2".into(), 0.42),
            ("spot-3".into(), 0.62)
        ]
    );
}

#[tokio::test]
async fn a_site_drills_down_into_its_zones() {
    let influx = InfluxServer::start();
    let store = InfluxDbStore::new(&influx.settings()).unwrap();
    known_data(&store).await;
    let wall = LocationPath::parse("wall-1").unwrap();
    let zones: Vec<(String, f64)> = store
        .drill_down("moisture", &wall, RANGE, Aggregate::Avg)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.group, (g.value * 1000.0).round() / 1000.0))
        .collect();
    assert_eq!(zones, [("zone-a".into(), 0.31), ("zone-b".into(), 0.61)]);
    let zone = LocationPath::parse("wall-1/zone-a/s1").unwrap();
    let spots: Vec<String> = store
        .drill_down("moisture", &zone, RANGE, Aggregate::Max)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.group)
        .collect();
    assert_eq!(spots, ["spot-1", "spot-2"]);
}

/// The in-memory reference reader and InfluxDB give the same answers on the same data, for
/// every query shape and aggregate.
#[tokio::test]
async fn influxdb_answers_as_the_reference_reader_does() {
    use iotdp_memory::MemoryStore;
    let influx = InfluxServer::start();
    let store = InfluxDbStore::new(&influx.settings()).unwrap();
    let reference = MemoryStore::new(5000);
    known_data(&store).await;
    known_data_into(&reference).await;
    for aggregate in Aggregate::ALL {
        for bins in [
            None,
            Some((Duration::from_secs(60), aggregate)),
            Some((Duration::from_secs(1), aggregate)),
        ] {
            let q = SeriesQuery {
                device_id: "ac-1".into(),
                metric: "temperature".into(),
                range: RANGE,
                bins,
                limit: None,
            };
            assert_eq!(
                store.series(&q).await.unwrap(),
                reference.series(&q).await.unwrap(),
                "{q:?}"
            );
        }
        for within in ["wall-1", "wall-1/zone-a", "wall-1/zone-a/s1"] {
            let within = LocationPath::parse(within).unwrap();
            let round = |groups: Vec<iotdp::query::model::GroupValue>| -> Vec<(String, i64)> {
                groups
                    .into_iter()
                    .map(|g| (g.group, (g.value * 1e6).round() as i64))
                    .collect()
            };
            assert_eq!(
                round(
                    store
                        .drill_down("moisture", &within, RANGE, aggregate)
                        .await
                        .unwrap()
                ),
                round(
                    reference
                        .drill_down("moisture", &within, RANGE, aggregate)
                        .await
                        .unwrap()
                ),
                "{within} {aggregate:?}"
            );
        }
    }
    // Values to 1e-9: InfluxDB 1.6 may return the last bit of a float differently.
    let devices = |values: Vec<iotdp::query::model::DeviceValue>| -> Vec<(String, i64, i64)> {
        values
            .into_iter()
            .map(|d| match d.value {
                MetricValue::Number(v) => (d.device_id, d.time_ms, (v * 1e9).round() as i64),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let filter = FleetFilter::default();
    assert_eq!(
        devices(store.latest_by_device("moisture", &filter).await.unwrap()),
        devices(
            reference
                .latest_by_device("moisture", &filter)
                .await
                .unwrap()
        )
    );
    assert_eq!(
        store
            .latest_values("ac-1", &["temperature", "mode"])
            .await
            .unwrap(),
        reference
            .latest_values("ac-1", &["temperature", "mode"])
            .await
            .unwrap()
    );
}

/// The same readings `known_data` writes to InfluxDB.
async fn known_data_into(store: &iotdp_memory::MemoryStore) {
    let deadline = Instant::now() + Duration::from_secs(30);
    write_readings(store, &known_readings(), &WritePolicy::default(), deadline).await;
}

/// The read contract on the lake's data: the same readings (duplicates, a correction, 5-hour
/// late copies) written to a real influxd answer every read route as the memory reference
/// does, as the lake's do (`lake_against_moto::the_lake_answers_every_read_as_the_reference_does`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxdb_answers_every_read_as_the_reference_does_on_the_lakes_data() {
    use super::lake_against_moto::{
        answers_every_read_as_the_reference_does, readings, stored_in_batches,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let readings = readings(now);
    let influx = InfluxServer::start();
    let store = InfluxDbStore::new(&influx.settings()).unwrap();
    let reference = iotdp_memory::MemoryStore::new(1_000);
    stored_in_batches(&store, &readings).await;
    stored_in_batches(&reference, &readings).await;
    answers_every_read_as_the_reference_does(&store, &reference, &readings, now).await;
}
