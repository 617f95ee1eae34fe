//! `ingest-bench`: the end-to-end benchmark of the real `ingest` bootstrap (see
//! `iotdp_integration_tests::ingest_bench`). `make bench` runs it on the release build:
//!
//! ```sh
//! cargo build --release -p ingest
//! target/debug/ingest-bench [--bootstrap target/release/ingest] [--invocations 30] [--messages 1000] [--devices 500] [--only timestream-on]
//! ```
//!
//! It prints the table docs/performance.md shows, and fails if anything written differs from
//! the reference.

use std::path::PathBuf;

use iotdp_integration_tests::ingest_bench::{self, Options, Scenario, Store};

fn main() -> std::process::ExitCode {
    let mut options = Options {
        bootstrap: ingest_bench::default_bootstrap(),
        warm_invocations: 30,
        messages_per_event: 1000,
        devices: 500,
        rules_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/local/rules")),
    };
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match flag.as_str() {
            "--bootstrap" => options.bootstrap = PathBuf::from(value()),
            "--invocations" => options.warm_invocations = value().parse().unwrap_or(30),
            "--messages" => options.messages_per_event = value().parse().unwrap_or(1000),
            "--devices" => options.devices = value().parse().unwrap_or(500),
            "--only" => only = Some(value()),
            other => {
                eprintln!(
                    "unknown argument {other}: use --bootstrap PATH, --invocations N, --messages N, --devices N, --only timestream-on|timestream-off|influxdb-on|influxdb-off|lake-on|lake-off|lake-on-derived"
                );
                return std::process::ExitCode::from(2);
            }
        }
    }
    let scenarios = [
        ("timestream-on", Store::Timestream, true, false),
        ("timestream-off", Store::Timestream, false, false),
        ("influxdb-on", Store::InfluxDb, true, false),
        ("influxdb-off", Store::InfluxDb, false, false),
        ("lake-on", Store::Lake, true, false),
        ("lake-off", Store::Lake, false, false),
        ("lake-on-derived", Store::Lake, true, true),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut measured = Vec::new();
    for (name, store, on, derived) in scenarios {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let scenario = Scenario {
            store,
            registry_and_alerting: on,
            derived,
        };
        match runtime.block_on(ingest_bench::run(&options, scenario)) {
            Ok(m) => {
                eprintln!(
                    "{}: first invocation's calls {:?}",
                    scenario.label(),
                    m.first_calls
                );
                measured.push(m);
            }
            Err(e) => {
                eprintln!("{}: {e}", scenario.label());
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    print!("{}", ingest_bench::table(&measured));
    let cpu_of = |store: Store| {
        measured
            .iter()
            .find(|m| {
                m.scenario.store == store && m.scenario.registry_and_alerting && !m.scenario.derived
            })
            .map(|m| m.cpu_us_per_reading)
    };
    if let (Some(lake), Some(timestream)) = (cpu_of(Store::Lake), cpu_of(Store::Timestream)) {
        println!(
            "\nThe lake vs Timestream, registry and alerting on: {:.2}x the readings per CPU second",
            timestream / lake
        );
    }
    if let (Some(lake), Some(influxdb)) = (cpu_of(Store::Lake), cpu_of(Store::InfluxDb)) {
        println!(
            "The lake vs InfluxDB, registry and alerting on: {:.2}x the readings per CPU second",
            influxdb / lake
        );
    }
    let derived = measured
        .iter()
        .find(|m| m.scenario.derived)
        .map(|m| m.cpu_us_per_reading);
    if let (Some(lake), Some(derived)) = (cpu_of(Store::Lake), derived) {
        println!(
            "The lake with 5 derived metrics a type vs without: {:+.1} % CPU per reading (goal: at most +10 %)",
            (derived / lake - 1.0) * 100.0
        );
    }
    if let [on, off, ..] = measured.as_slice() {
        println!(
            "\nTimestream, registry and alerting on vs off: {:.2}x the CPU per reading",
            on.cpu_us_per_reading / off.cpu_us_per_reading
        );
    }
    std::process::ExitCode::SUCCESS
}
