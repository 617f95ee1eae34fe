//! `command-rate` (`make command-rate`): how many commands per second the local platform
//! carries end to end. It runs the real `iotdp local` binary (platform and simulated fleet in
//! one process, as `make local` does) and, for every simulated thermostat at once, sends a
//! command through the query API and waits until the API says `delivered` (the thermostat got
//! the delta over MQTT, applied it and reported; the shadow's documents went through the topic
//! rule, the queue and the commands function), then sends the next:
//!
//! ```sh
//! cargo build --release -p iotdp-cli
//! target/debug/command-rate --iotdp target/release/iotdp [--devices 40] [--rounds 25]
//! ```
//!
//! It prints the rate (delivered commands per second, one outstanding per thermostat) and the
//! issue-to-delivered latency percentiles, and exits non-zero if any command did not arrive.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iotdp_integration_tests::{http_call, try_http_call};
use iotdp_local::moto::free_port;

fn main() -> std::process::ExitCode {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut iotdp = root.join("target/release/iotdp");
    let (mut devices, mut rounds) = (40usize, 25usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match flag.as_str() {
            "--iotdp" => iotdp = PathBuf::from(value()),
            "--devices" => devices = value().parse().unwrap_or(40),
            "--rounds" => rounds = value().parse().unwrap_or(25),
            other => {
                eprintln!("unknown argument {other}: use --iotdp PATH, --devices N, --rounds N");
                return std::process::ExitCode::from(2);
            }
        }
    }
    match run(&root, &iotdp, devices, rounds) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("command-rate: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn get(api: SocketAddr, path: &str) -> Option<serde_json::Value> {
    let (status, body) = try_http_call(api, "GET", path, "").ok()?;
    (status == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

fn run(
    root: &std::path::Path,
    iotdp: &std::path::Path,
    devices: usize,
    rounds: usize,
) -> Result<bool, String> {
    let api: SocketAddr = ([127, 0, 0, 1], free_port().map_err(|e| e.to_string())?).into();
    let mqtt: SocketAddr = ([127, 0, 0, 1], free_port().map_err(|e| e.to_string())?).into();
    let out = root.join("target/command-rate");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let log = std::fs::File::create(out.join("iotdp-local.log")).map_err(|e| e.to_string())?;
    let mut child = Command::new(iotdp)
        .current_dir(root)
        .args(["local", "--faulty-rate", "0", "--rate", "20"])
        .args(["--devices", &devices.to_string()])
        .args(["--api", &api.to_string(), "--mqtt", &mqtt.to_string()])
        .arg("--influxdb-data")
        .arg(out.join("influxdb"))
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "{}: {e} (cargo build --release -p iotdp-cli)",
                iotdp.display()
            )
        })?;
    let result = measure(api, rounds);
    // Ctrl-C, as an operator stops it: the platform stops moto and influxd with itself.
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    result
}

fn measure(api: SocketAddr, rounds: usize) -> Result<bool, String> {
    let started = Instant::now();
    let thermostats: Vec<String> = loop {
        if let Some(page) = get(api, "/devices?type=thermostat") {
            let connected: Vec<String> = page["devices"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["connected"] == true)
                .filter_map(|d| d["device_id"].as_str().map(str::to_owned))
                .collect();
            let all = page["devices"].as_array().map_or(0, Vec::len);
            if all > 0 && connected.len() == all {
                break connected;
            }
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err("the simulated thermostats did not all connect within 120 s".into());
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    println!(
        "command-rate: {} thermostats, {rounds} commands each, one outstanding per thermostat",
        thermostats.len()
    );
    let clock = Instant::now();
    let workers: Vec<_> = thermostats
        .into_iter()
        .map(|device| {
            std::thread::spawn(move || -> Result<Vec<f64>, String> {
                let mut latencies = Vec::with_capacity(rounds);
                for round in 0..rounds {
                    let setpoint = 10.0 + (round % 100) as f64 * 0.1 + 0.05;
                    let key = format!("rate-{round}");
                    let body = format!(
                        r#"{{"desired":{{"setpoint":{setpoint:.2}}},"expires_in":120,"idempotency_key":"{key}"}}"#
                    );
                    let (status, answer) =
                        http_call(api, "POST", &format!("/devices/{device}/commands"), &body);
                    if status != 200 {
                        return Err(format!("{device}: POST answered {status}: {answer}"));
                    }
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        let command = get(api, &format!("/devices/{device}/commands/{key}"))
                            .ok_or_else(|| format!("{device}: GET {key} failed"))?;
                        match command["command"]["status"].as_str() {
                            Some("delivered") => {
                                let at = |field: &str| {
                                    chrono::DateTime::parse_from_rfc3339(
                                        command["command"][field].as_str().unwrap_or_default(),
                                    )
                                    .map(|t| t.timestamp_millis())
                                    .unwrap_or_default()
                                };
                                latencies.push((at("settled_at") - at("issued_at")) as f64);
                                break;
                            }
                            Some("pending") if Instant::now() < deadline => {
                                std::thread::sleep(Duration::from_millis(100));
                            }
                            other => {
                                return Err(format!("{device}: command {key} is {other:?}"));
                            }
                        }
                    }
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    for worker in workers {
        match worker.join().map_err(|_| "a worker panicked".to_owned())? {
            Ok(mut l) => latencies.append(&mut l),
            Err(e) => failures.push(e),
        }
    }
    let elapsed = clock.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "delivered {} commands in {elapsed:.1} s: {:.1} commands/s; issue → delivered p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        at(0.5),
        at(0.9),
        at(0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    for failure in &failures {
        eprintln!("not delivered: {failure}");
    }
    Ok(failures.is_empty())
}
