//! `soak` (`make soak`): the local platform at the smart-AC reference load for ten minutes,
//! then its conservation report. It runs the real `iotdp local` binary (the platform and the
//! simulated fleet in one process, as `make local` does) with its store on a real influxd:
//!
//! ```sh
//! cargo build --release -p iotdp-cli
//! target/debug/soak --iotdp target/release/iotdp [--seconds 600] [--devices 60] [--rate 3600]
//! ```
//!
//! While it runs it samples iotdp's RSS every 10 s and reads the query API the way a
//! dashboard does (a device page, and a 24-hour read in 5-minute bins) to measure their p99
//! under load. Afterwards it counts the points in influxd and checks that published =
//! received = queued = processed and stored + quarantined = accepted + rejected; it exits
//! non-zero if any count differs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iotdp_local::influxd::InfluxProcess;
use iotdp_local::moto::free_port;

struct Options {
    iotdp: PathBuf,
    seconds: u64,
    devices: usize,
    rate: f64,
    out: PathBuf,
}

fn main() -> std::process::ExitCode {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut options = Options {
        iotdp: root.join("target/release/iotdp"),
        seconds: 600,
        devices: 60,
        rate: 3600.0,
        out: root.join("target/soak"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match flag.as_str() {
            "--iotdp" => options.iotdp = PathBuf::from(value()),
            "--seconds" => options.seconds = value().parse().unwrap_or(600),
            "--devices" => options.devices = value().parse().unwrap_or(60),
            "--rate" => options.rate = value().parse().unwrap_or(3600.0),
            "--out" => options.out = PathBuf::from(value()),
            other => {
                eprintln!(
                    "unknown argument {other}: use --iotdp PATH, --seconds N, --devices N, --rate MESSAGES_PER_S, --out DIR"
                );
                return std::process::ExitCode::from(2);
            }
        }
    }
    match soak(&options, &root) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn soak(options: &Options, root: &std::path::Path) -> Result<bool, String> {
    let _ = std::fs::remove_dir_all(&options.out);
    std::fs::create_dir_all(&options.out).map_err(|e| e.to_string())?;
    let influx_dir = options.out.join("influxdb");
    let report_path = options.out.join("report.json");
    let api: SocketAddr = ([127, 0, 0, 1], free_port().map_err(|e| e.to_string())?).into();
    let mqtt: SocketAddr = ([127, 0, 0, 1], free_port().map_err(|e| e.to_string())?).into();
    let log =
        std::fs::File::create(options.out.join("iotdp-local.log")).map_err(|e| e.to_string())?;
    let mut child = Command::new(&options.iotdp)
        .current_dir(root)
        .args(["local", "--store", "influxdb", "--faulty-rate", "0.05"])
        .args(["--devices", &options.devices.to_string()])
        .args(["--rate", &options.rate.to_string()])
        .args(["--duration", &options.seconds.to_string()])
        .args(["--api", &api.to_string(), "--mqtt", &mqtt.to_string()])
        .arg("--influxdb-data")
        .arg(&influx_dir)
        .arg("--report")
        .arg(&report_path)
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "{}: {e} (cargo build --release -p iotdp-cli)",
                options.iotdp.display()
            )
        })?;
    let pid = child.id();
    println!(
        "soak: {} s of {} devices at {} messages/s through iotdp local (pid {pid}), API at {api}",
        options.seconds, options.devices, options.rate
    );
    let started = Instant::now();
    let mut rss: Vec<(f64, f64)> = Vec::new();
    let mut next_sample = Duration::ZERO;
    let (mut device_page, mut binned) = (Vec::new(), Vec::new());
    let device = "ac-0000"; // the simulated fleet's first thermostat
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        let elapsed = started.elapsed();
        if elapsed >= next_sample {
            if let Some(kib) = vm_rss_kib(pid) {
                rss.push((elapsed.as_secs_f64(), kib as f64 / 1024.0));
            }
            next_sample += Duration::from_secs(10);
        }
        // The dashboard's reads, once a second each, from 30 s in (the fleet is connected).
        if elapsed > Duration::from_secs(30) && elapsed < Duration::from_secs(options.seconds) {
            if let Some(ms) = timed_get(api, &format!("/devices/{device}?metrics=temperature")) {
                device_page.push(ms);
            }
            if let Some(ms) = timed_get(
                api,
                &format!("/devices/{device}/readings/temperature?from=-24h&bin=5m&agg=avg"),
            ) {
                binned.push(ms);
            }
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&report_path)
            .map_err(|e| format!("{}: {e}", report_path.display()))?,
    )
    .map_err(|e| e.to_string())?;
    // iotdp stopped its influxd; start one on the same data to count what it holds.
    let influxd = InfluxProcess::start(
        &root.join(iotdp_local::influxd::INFLUXD_RELATIVE_PATH),
        &influx_dir,
    )
    .map_err(|e| e.to_string())?;
    let stored = points(&influxd)?;
    let figure = |name: &str| report[name].as_u64().unwrap_or(0);
    // The rules queue telemetry for ingest and IoT Core's presence events for the lifecycle
    // function; the conservation is per path.
    let presence = figure("processed_by_lifecycle");
    let (published, received, queued, processed) = (
        figure("published"),
        figure("received_by_broker"),
        figure("queued_by_rules") - presence,
        figure("processed_by_ingest"),
    );
    let (accepted, written, rejected) = (
        figure("readings_accepted"),
        figure("records_written"),
        figure("readings_rejected"),
    );
    let seconds = options.seconds as f64;
    let slope = slope_mib_per_hour(&rss, 60.0);
    // Growth is what matters, not the high-water mark the first rollup runs set: the slope
    // over the run's second half.
    let half = seconds / 2.0;
    let late_slope = slope_mib_per_hour(&rss, half);
    let late = rss.iter().filter(|s| s.0 >= half).map(|s| s.1);
    let (late_min, late_max) = late.fold((f64::MAX, 0.0f64), |(lo, hi), m| (lo.min(m), hi.max(m)));
    // The rollup job runs in the same process every minute and holds a minute of the fleet's
    // raw readings while it computes; the lowest sample of each minute is what stays.
    let floor: Vec<(f64, f64)> = rss
        .chunk_by(|a, b| (a.0 / 60.0).floor() == (b.0 / 60.0).floor())
        .filter_map(|minute| minute.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1)))
        .collect();
    let floor_slope = slope_mib_per_hour(&floor, 60.0);
    let late_floor_slope = slope_mib_per_hour(&floor, half);
    let late_floor = floor.iter().filter(|s| s.0 >= half).map(|s| s.1);
    let (late_floor_min, late_floor_max) =
        late_floor.fold((f64::MAX, 0.0f64), |(lo, hi), m| (lo.min(m), hi.max(m)));
    let peak = rss.iter().map(|s| s.1).fold(0.0, f64::max);
    let mut lines = vec![
        format!(
            "published / received by the broker / queued by the telemetry rule / processed by ingest: {published} / {received} / {queued} / {processed} (and {presence} presence events through the lifecycle function)"
        ),
        format!(
            "readings accepted {accepted} ({:.0}/s), records written {written}, stored in influxd {stored}",
            accepted as f64 / seconds
        ),
        format!(
            "rejected and quarantined with a reason {rejected}: {}",
            report["rejected_by_reason"]
        ),
        format!(
            "returned for retry {}, ingest backlog at the end {}, dead letters {}",
            report["returned_for_retry"], report["ingest_backlog"], report["dead_letters"]
        ),
        format!(
            "iotdp RSS: {} samples, {:.1} MiB at 10 s, {:.1} MiB at the end, peak {peak:.1} MiB; slope of all samples {slope:.0} MiB/hour, of each minute's lowest {floor_slope:.1} MiB/hour (least squares, from the first minute on); second half {late_min:.1}–{late_max:.1} MiB, slope {late_slope:.1} MiB/hour, each minute's lowest {late_floor_min:.1}–{late_floor_max:.1} MiB, slope {late_floor_slope:.1} MiB/hour",
            rss.len(),
            rss.get(1).map_or(0.0, |s| s.1),
            rss.last().map_or(0.0, |s| s.1)
        ),
        format!(
            "query API under load, device page: {}",
            percentiles(&mut device_page)
        ),
        format!(
            "query API under load, 24 h in 5-minute bins: {}",
            percentiles(&mut binned)
        ),
    ];
    let conserved = published == received
        && received == queued
        && queued == processed
        && accepted == written
        && stored == written
        && report["ingest_backlog"].as_u64() == Some(0)
        && report["dead_letters"].as_u64() == Some(0);
    lines.push(if conserved {
        "conservation: every message processed, every accepted reading written, nothing left waiting".into()
    } else {
        "conservation: FAILED (a count above differs)".into()
    });
    let samples: Vec<String> = rss.iter().map(|(t, m)| format!("{t:.0} {m:.1}")).collect();
    std::fs::write(options.out.join("rss.txt"), samples.join("\n") + "\n")
        .map_err(|e| e.to_string())?;
    let text = lines.join("\n");
    println!("{text}");
    std::fs::write(options.out.join("summary.txt"), format!("{text}\n"))
        .map_err(|e| e.to_string())?;
    Ok(conserved)
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Least-squares slope of RSS over time, in MiB per hour, of the samples from `from_seconds`
/// on (start-up allocations are not growth).
fn slope_mib_per_hour(samples: &[(f64, f64)], from_seconds: f64) -> f64 {
    let points: Vec<_> = samples.iter().filter(|(t, _)| *t >= from_seconds).collect();
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mean_t, mean_m) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let covariance: f64 = points.iter().map(|p| (p.0 - mean_t) * (p.1 - mean_m)).sum();
    let variance: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    if variance == 0.0 {
        0.0
    } else {
        covariance / variance * 3600.0
    }
}

/// A GET's time in ms if it answered 200.
fn timed_get(addr: SocketAddr, path: &str) -> Option<f64> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response
        .starts_with("HTTP/1.1 200")
        .then(|| started.elapsed().as_secs_f64() * 1000.0)
}

fn percentiles(samples: &mut [f64]) -> String {
    if samples.is_empty() {
        return "no answers".into();
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "{} reads, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        samples.len(),
        at(0.5),
        at(0.99),
        samples[samples.len() - 1]
    )
}

/// Points in `telemetry`. InfluxQL counts fields, not points; every reading of one device type
/// carries that type's main field (a thermostat's temperature, a battery box's voltage, a
/// spot's moisture), so per device type the largest field count is its number of points.
fn points(influxd: &InfluxProcess) -> Result<u64, String> {
    let answer = influxd
        .query(
            "iotdp",
            "SELECT count(*) FROM telemetry GROUP BY device_type",
        )
        .map_err(|e| e.to_string())?;
    Ok(answer["results"][0]["series"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|series| {
            let row = series["values"][0].as_array()?;
            row.iter()
                .skip(1)
                .filter_map(serde_json::Value::as_u64)
                .max()
        })
        .sum())
}
