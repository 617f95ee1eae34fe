//! `read-bench`: the query reads the console makes, on the lake (moto's S3) and on InfluxDB
//! (a real influxd), the same readings in both, each answered through the rollup reader the
//! `api` function runs (rollups stitched to the raw tail), after `iotdp rollups rebuild`'s
//! job covered the year. Prints each read's median of 5 (absolute, and the lake's ratio to
//! InfluxDB in the same run); each answer is checked equal on both stores.
//!
//! ```sh
//! cargo build -p iotdp-integration-tests --bin read-bench && target/debug/read-bench
//! ```
//!
//! A debug build of the client, against moto (Python, one request at a time) and a local
//! influxd: the ratios say how the lake's reads compare, not what S3 would answer in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iotdp::adapters::influxdb::{InfluxDbSettings, InfluxDbStore};
use iotdp::adapters::lake::LakeStore;
use iotdp::domain::{LocationPath, MetricValue, Reading};
use iotdp::ingest::ports::TimeSeriesStore;
use iotdp::query::model::{Aggregate, SeriesQuery, TimeRange};
use iotdp::query::ports::TimeSeriesReader;
use iotdp::rollup::job::{RollupJob, RollupSettings};
use iotdp::rollup::ports::RollupStore;
use iotdp::rollup::reads::RollupReader;
use iotdp_integration_tests::{InfluxServer, MotoServer};
use iotdp_memory::MemoryRollupState;

const DAY: i64 = 86_400_000;
const DEVICES: usize = 10;

/// A year of a site's 10 battery boxes every 6 hours, and their last day every 5 minutes.
fn readings(now: i64) -> Vec<Reading> {
    let start = now - 365 * DAY;
    let mut times: Vec<i64> = (start..now - DAY).step_by(6 * 3_600_000).collect();
    times.extend((now - DAY..now).step_by(300_000));
    let mut out = Vec::new();
    for (k, t) in times.iter().enumerate() {
        for d in 0..DEVICES {
            let path = LocationPath::parse(&format!("site-1/zone-{}", d % 2)).unwrap();
            out.push(
                Reading::new(
                    &format!("bb-{d}"),
                    *t + d as i64 * 1_000,
                    [(
                        "voltage",
                        MetricValue::Number(12.0 + ((k * 7 + d) % 13) as f64 / 10.0),
                    )],
                )
                .with_place("battery-box", path),
            );
        }
    }
    out
}

async fn load<S>(store: Arc<S>, readings: &[Reading], now: i64) -> Arc<MemoryRollupState>
where
    S: TimeSeriesStore + RollupStore + 'static,
{
    for chunk in readings.chunks(5_000) {
        store.write(chunk).await.expect("written");
    }
    let state = Arc::new(MemoryRollupState::default());
    let job = RollupJob::new(store.clone(), state.clone(), RollupSettings::default());
    job.run(now).await.expect("the first run");
    job.rebuild(
        TimeRange {
            from_ms: now - 366 * DAY,
            to_ms: now,
        },
        &LocationPath::default(),
        now,
        |_, _| {},
    )
    .await
    .expect("rebuilt");
    state
}

async fn median_of_5<F, Fut, T>(read: F) -> (Duration, T)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let started = Instant::now();
        last = Some(read().await);
        times.push(started.elapsed());
    }
    times.sort();
    (times[2], last.expect("five reads"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let now = chrono::Utc::now().timestamp_millis() / 60_000 * 60_000;
    let readings = readings(now);
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    let s3 = iotdp::wiring::s3_client(&sdk);
    s3.create_bucket()
        .bucket("bench")
        .send()
        .await
        .expect("bucket");
    let lake = Arc::new(LakeStore::new(s3, "bench"));
    let influx = InfluxServer::start();
    let influxdb = Arc::new(
        InfluxDbStore::new(&InfluxDbSettings {
            ..influx.settings()
        })
        .expect("influxdb"),
    );
    let started = Instant::now();
    let lake_state = load(lake.clone(), &readings, now).await;
    lake.compact_marked(now).await.expect("compacted");
    eprintln!(
        "the lake loaded, covered and compacted in {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let influx_state = load(influxdb.clone(), &readings, now).await;
    eprintln!("InfluxDB loaded and covered in {:?}", started.elapsed());
    let on_lake = RollupReader::new(lake.clone(), lake.clone(), lake_state);
    let on_influx = RollupReader::new(influxdb.clone(), influxdb.clone(), influx_state);

    let series = |range_days: i64, bin: u64| SeriesQuery {
        device_id: "bb-3".into(),
        metric: "voltage".into(),
        range: TimeRange {
            from_ms: now - range_days * DAY,
            to_ms: now,
        },
        bins: Some((Duration::from_secs(bin), Aggregate::Avg)),
        limit: None,
    };
    println!(
        "| read ({} readings, {DEVICES} devices) | the lake (moto's S3) | InfluxDB | lake ÷ InfluxDB |",
        readings.len()
    );
    println!("|---|---|---|---|");
    for (name, query) in [
        ("a device's 24 h in 5-minute bins", series(1, 300)),
        ("a device's year in 1-day bins", series(365, 86_400)),
    ] {
        let (lake_time, a) = median_of_5(|| on_lake.series(&query)).await;
        let (influx_time, b) = median_of_5(|| on_influx.series(&query)).await;
        let (a, b) = (a.expect("lake"), b.expect("influxdb"));
        assert_eq!(a.len(), b.len(), "{name}: points differ");
        row(name, lake_time, influx_time);
    }
    let site = LocationPath::parse("site-1").unwrap();
    let week = TimeRange {
        from_ms: now - 7 * DAY,
        to_ms: now,
    };
    let (lake_time, a) =
        median_of_5(|| on_lake.drill_down("voltage", &site, week, Aggregate::Avg)).await;
    let (influx_time, b) =
        median_of_5(|| on_influx.drill_down("voltage", &site, week, Aggregate::Avg)).await;
    assert_eq!(a.expect("lake").len(), b.expect("influxdb").len());
    row(
        "a site's drill-down to its zones, 7 days",
        lake_time,
        influx_time,
    );
}

fn row(name: &str, lake: Duration, influx: Duration) {
    println!(
        "| {name} | {:.1} ms | {:.1} ms | {:.1}× |",
        lake.as_secs_f64() * 1e3,
        influx.as_secs_f64() * 1e3,
        lake.as_secs_f64() / influx.as_secs_f64()
    );
}
