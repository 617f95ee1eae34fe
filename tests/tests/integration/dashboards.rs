//! The Grafana dashboards in `infra/dashboards/` query what the ingest path writes: every
//! identifier in every Timestream query is a dimension or measure the Timestream adapter
//! produces for the simulated fleet (the three reference customers), and the alerts dashboard
//! reads only fields the query API returns.

use std::collections::BTreeSet;
use std::sync::Arc;

use iotdp::adapters::timestream::build_write_request;
use iotdp::devices::record::KnownDevice;
use iotdp::ingest::batch::prepare_batch;
use iotdp::ingest::validation::TimeWindow;
use iotdp_simulator::{Fleet, FleetConfig};
use serde_json::Value;

const NOW: i64 = 1_764_000_000_000;

/// Dimension and measure names of the records the ingest path builds for the simulated fleet.
fn ingest_schema() -> BTreeSet<String> {
    let mut fleet = Fleet::new(FleetConfig {
        devices: 20,
        seed: 3,
        faulty_rate: 0.0,
    });
    let known: std::collections::HashMap<String, Arc<KnownDevice>> = fleet
        .registry_records(NOW)
        .into_iter()
        .map(|r| (r.device_id.clone(), Arc::new(KnownDevice::from(r))))
        .collect();
    let bodies: Vec<(String, String)> = fleet.rule_envelopes(400, NOW);
    let mut batch = prepare_batch(
        bodies.iter().map(|(id, b)| (id.as_str(), b.as_str())),
        TimeWindow::with_retention_days(73_000),
    );
    for reading in &mut batch.readings {
        reading.dimensions = known.get(&reading.device_id).map(|k| k.dimensions.clone());
    }
    let mut schema: BTreeSet<String> = ["time", "measure_name"].map(String::from).into();
    for chunk in batch.readings.chunks(100) {
        let request = build_write_request(chunk).unwrap();
        for record in std::iter::once(&request.common).chain(&request.records) {
            schema.extend(record.dimensions().iter().map(|d| d.name().to_owned()));
            schema.extend(record.measure_values().iter().map(|m| m.name().to_owned()));
        }
    }
    assert!(schema.contains("zone") && schema.contains("moisture") && schema.contains("voltage"));
    schema
}

/// Dimension and measure names of the rollup records the rollup job writes.
fn rollup_schema() -> BTreeSet<String> {
    use iotdp::rollup::aggregate::Aggregates;
    use iotdp::rollup::model::{RollupRow, SeriesKey};
    let row = RollupRow {
        tier: iotdp::rollup::tier::Tier::Hour,
        key: SeriesKey::Device("ac-1".into()),
        metric: "temperature".into(),
        window_start_ms: NOW,
        aggregates: Aggregates::of(NOW, 21.0),
        computed_at_ms: NOW,
    };
    let mut schema: BTreeSet<String> = ["time", "measure_name"].map(String::from).into();
    for record in iotdp::adapters::timestream::rollups::rollup_records(&[row]).unwrap() {
        schema.extend(record.dimensions().iter().map(|d| d.name().to_owned()));
        schema.extend(record.measure_values().iter().map(|m| m.name().to_owned()));
    }
    schema
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/dashboards");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&text).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every `rawQuery` in a dashboard (panels and template variables).
fn timestream_queries(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(q)) = map.get("rawQuery") {
                    out.push(q.clone());
                }
                map.values().for_each(|x| walk(x, out));
            }
            Value::Array(items) => items.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(dashboard, &mut out);
    out
}

/// The double-quoted identifiers of a query.
fn identifiers(query: &str) -> Vec<String> {
    query
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_dashboard_query_uses_the_schema_the_ingest_path_writes() {
    let schema = ingest_schema();
    let rollups = rollup_schema();
    let all = dashboards();
    let mut from_rollups = 0;
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "alerts.json",
            "device.json",
            "fleet-overview.json",
            "hierarchy.json"
        ]
    );
    let mut checked = 0;
    for (name, dashboard) in &all {
        for query in timestream_queries(dashboard) {
            // Long-range panels read a rollup table, in its own schema.
            let rollup_table = ["telemetry_1m", "telemetry_1h", "telemetry_1d"]
                .into_iter()
                .find(|t| query.contains(&format!("\"$__database\".\"{t}\"")));
            let schema = if rollup_table.is_some() {
                from_rollups += 1;
                assert!(query.contains("measure_name = 'rollup'"), "{name}: {query}");
                &rollups
            } else {
                assert!(
                    query.contains("\"$__database\".\"$__table\""),
                    "{name}: {query}"
                );
                assert!(
                    query.contains("measure_name = 'telemetry'"),
                    "{name}: {query}"
                );
                &schema
            };
            assert!(
                query.contains("$__timeFilter"),
                "{name}: unbounded scan: {query}"
            );
            for id in identifiers(&query) {
                if id == "$__database"
                    || id == "$__table"
                    || id == "$metric"
                    || rollup_table == Some(id.as_str())
                {
                    continue;
                }
                assert!(
                    schema.contains(&id),
                    "{name}: '{id}' is not written by the ingest path: {query}"
                );
            }
            checked += 1;
        }
        // A metric picked from a variable must be one the ingest path writes too.
        for variable in dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if variable["name"] == "metric" {
                for metric in variable["query"].as_str().unwrap().split(',') {
                    assert!(schema.contains(metric), "{name}: metric option '{metric}'");
                }
            }
        }
    }
    assert!(checked >= 12, "{checked} queries checked");
    assert!(
        from_rollups >= 2,
        "{from_rollups} long-range panels read rollups"
    );
}

#[test]
fn the_alerts_dashboard_reads_only_what_the_query_api_returns() {
    let (_, alerts) = dashboards()
        .into_iter()
        .find(|(n, _)| n == "alerts.json")
        .unwrap();
    let fields = [
        "device_id",
        "rule_id",
        "severity",
        "state",
        "since",
        "last_value",
    ];
    for panel in alerts["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let url = target["url"].as_str().unwrap();
            assert!(url.starts_with("/alerts?"), "{url}");
            assert!(iotdp::api::routes::route_for("GET", "/alerts").is_some());
            for column in target["columns"].as_array().unwrap() {
                let selector = column["selector"].as_str().unwrap();
                assert!(fields.contains(&selector), "column '{selector}'");
            }
        }
    }
}
