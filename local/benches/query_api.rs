//! The query API's handler time, the store excluded: a device page and a 24-hour, 1-minute-bin
//! readings query (1,440 points) answered by a reader that returns prepared points at once, so
//! what is measured is routing, validation, the registry lookup and JSON rendering. Also the
//! cold-start init: building the SDK configuration and every client the `api` function builds.
//!
//! `cargo bench -p iotdp-local --bench query_api` prints p50/p99 over 5,000 calls of each
//! before criterion's own runs. The list rows compare a page of a 10,000-device registry for a
//! caller who sees the fleet and for one scoped to one of its ten sites.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use iotdp::api::access::{Access, Caller, Role};
use iotdp::api::{ApiRequest, QueryApi};
use iotdp::config::FromEnvironment;
use iotdp::devices::record::DeviceRecord;
use iotdp::domain::LocationPath;
use iotdp::domain::MetricValue;
use iotdp::query::model::{
    Aggregate, DeviceValue, FleetFilter, GroupValue, Point, QueryError, SeriesQuery, TimeRange,
};
use iotdp::query::ports::TimeSeriesReader;
use iotdp_memory::{MemoryAlertStates, MemoryRegistry, MemoryRules};

const NOW: i64 = 1_764_000_000_000;

/// Answers with prepared points: the store's own latency is not the handler's.
struct PreparedReader {
    day_of_minutes: Vec<Point>,
}

impl TimeSeriesReader for PreparedReader {
    async fn metric_names(&self) -> Result<Vec<String>, QueryError> {
        Ok(vec!["temperature".into()])
    }

    async fn latest_values(
        &self,
        _: &str,
        metrics: &[&str],
    ) -> Result<Vec<(String, Point)>, QueryError> {
        Ok(metrics
            .iter()
            .map(|m| (m.to_string(), self.day_of_minutes[0].clone()))
            .collect())
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Vec<Point>, QueryError> {
        let limit = query.limit.unwrap_or(usize::MAX);
        Ok(self.day_of_minutes.iter().take(limit).cloned().collect())
    }

    async fn latest_by_device(
        &self,
        _: &str,
        _: &FleetFilter,
    ) -> Result<Vec<DeviceValue>, QueryError> {
        Ok(vec![])
    }

    async fn drill_down(
        &self,
        _: &str,
        _: &LocationPath,
        _: TimeRange,
        _: Aggregate,
    ) -> Result<Vec<GroupValue>, QueryError> {
        Ok(vec![])
    }
}

type Api = QueryApi<Arc<MemoryRegistry>, PreparedReader, Arc<MemoryAlertStates>, Arc<MemoryRules>>;

fn api() -> Api {
    let mut ac = DeviceRecord::new("ac-1", "thermostat", NOW);
    ac.path = LocationPath::parse("home-7/living").unwrap();
    let fleet = (0..10_000).map(|i| {
        let mut d = DeviceRecord::new(&format!("spot-{i:05}"), "spot", NOW);
        d.path = LocationPath::parse(&format!("site-{}/zone-{}", i % 10, i % 7)).unwrap();
        d
    });
    let registry = Arc::new(MemoryRegistry::with(std::iter::once(ac).chain(fleet)));
    let day_of_minutes = (0..1440)
        .map(|i| Point {
            time_ms: NOW - 86_400_000 + i * 60_000,
            value: MetricValue::Number(20.0 + (i % 50) as f64 / 10.0),
        })
        .collect();
    QueryApi::new(
        registry,
        PreparedReader { day_of_minutes },
        Arc::new(MemoryAlertStates::default()),
        Arc::new(MemoryRules::default()),
    )
}

fn admin() -> Caller {
    Caller::admin("bench")
}

fn request(path: &str, query: &str) -> ApiRequest {
    ApiRequest {
        method: "GET".into(),
        path: path.into(),
        query: query.into(),
        body: vec![],
    }
}

fn percentiles(
    runtime: &tokio::runtime::Runtime,
    api: &Api,
    request: &ApiRequest,
) -> (Duration, Duration) {
    let mut samples: Vec<Duration> = (0..5000)
        .map(|_| {
            let started = Instant::now();
            let response = runtime.block_on(api.handle(request, &admin(), NOW));
            let elapsed = started.elapsed();
            assert_eq!(response.status, 200, "{}", response.body);
            black_box(response.body.to_string());
            elapsed
        })
        .collect();
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

fn query_api(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let api = api();
    let device_page = request("/devices/ac-1", "metrics=temperature,setpoint,mode");
    let day_in_minutes = request(
        "/devices/ac-1/readings/temperature",
        "from=2025-11-23T16:00:00Z&to=2025-11-24T16:00:00Z&bin=1m&agg=avg&limit=2000",
    );
    for (what, r) in [
        ("device page", &device_page),
        ("24 h in 1-min bins (1,440 points)", &day_in_minutes),
    ] {
        let (p50, p99) = percentiles(&runtime, &api, r);
        println!(
            "query API handler, {what}: p50 {p50:?}, p99 {p99:?} (5,000 calls, store excluded)"
        );
    }

    let mut group = c.benchmark_group("query_api");
    group.bench_function("device_page", |b| {
        b.iter(|| {
            runtime
                .block_on(api.handle(&device_page, &admin(), NOW))
                .body
                .to_string()
        });
    });
    let page = request("/devices", "limit=100");
    let site_viewer = Caller {
        identity: "viewer".into(),
        role: Some(Role::Viewer),
        access: Access {
            places: vec![LocationPath::parse("site-3").unwrap()],
            ..Access::default()
        },
    };
    for (name, caller) in [
        ("devices_page_of_100_fleet", admin()),
        ("devices_page_of_100_one_site", site_viewer),
    ] {
        let answered = runtime.block_on(api.handle(&page, &caller, NOW));
        assert_eq!(answered.body["devices"].as_array().map(Vec::len), Some(100));
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime
                    .block_on(api.handle(&page, &caller, NOW))
                    .body
                    .to_string()
            });
        });
    }
    group.bench_function("day_in_one_minute_bins", |b| {
        b.iter(|| {
            runtime
                .block_on(api.handle(&day_in_minutes, &admin(), NOW))
                .body
                .to_string()
        });
    });
    // Cold-start init as the `api` function does it: configuration, SDK config, clients.
    group.bench_function("cold_start_init", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let sdk = iotdp_local::platform::local_sdk_config("http://127.0.0.1:9").await;
                let config = iotdp::config::ApiConfig::from_lookup(|name| {
                    match name {
                        "DEVICE_REGISTRY_TABLE" => Some("devices"),
                        "ALERT_RULES_TABLE" => Some("rules"),
                        "ALERT_STATE_TABLE" => Some("states"),
                        "TIMESTREAM_DATABASE" => Some("iotdp"),
                        "TIMESTREAM_TABLE" => Some("telemetry"),
                        _ => None,
                    }
                    .map(str::to_owned)
                })
                .unwrap();
                black_box(iotdp::wiring::query_api(&sdk, &config).await.unwrap())
            })
        });
    });
    group.finish();
}

criterion_group!(benches, query_api);
criterion_main!(benches);
