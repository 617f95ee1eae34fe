//! The lake's CPU: an ingest batch's readings encoded as one object (what each ingest
//! invocation adds to its hour: in the row format ingest writes, and as Parquet, the choice), and a compaction's merge of an hour (decode every object,
//! keep one version of each reading, encode sorted): rows per second of one core.
//!
//! Before criterion's runs it compacts one hour of 100,000 devices reporting every 5 minutes
//! (1.2 million readings, 3 metrics each: 3.6 million rows, arriving as 120 ingest objects)
//! once, and prints the time and the process's peak resident memory (`VmHWM`), the figure a
//! compaction function's memory setting must cover.
//!
//! `cargo bench -p iotdp --bench lake`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iotdp::adapters::lake::appended;
use iotdp::adapters::lake::compaction::merge;
use iotdp::adapters::lake::format::encode;
use iotdp::adapters::lake::layout::Table;
use iotdp::domain::{LocationPath, MetricValue, Reading};
use std::hint::black_box;
use std::time::Instant;

const HOUR: i64 = 1_796_691_600_000; // 2026-12-08T01:00:00Z

/// `devices` battery boxes, every 5 minutes for an hour, in ingest objects of `per_object`
/// readings (arrival order: time, then device), each built only when encoded, so the input
/// never sits in memory as readings.
fn hour_of(devices: usize, per_object: usize) -> impl Iterator<Item = Vec<Reading>> {
    let total = devices * 12;
    (0..total.div_ceil(per_object)).map(move |chunk| {
        (chunk * per_object..((chunk + 1) * per_object).min(total))
            .map(|i| {
                let (slot, d) = ((i / devices) as i64, i % devices);
                let path = LocationPath::parse(&format!("site-{}", d / 100)).unwrap();
                let wobble = ((d as i64 * 31 + slot * 7) % 1000) as f64 / 1000.0;
                Reading::new(
                    &format!("bb-{d:06}"),
                    HOUR + slot * 300_000 + (d as i64 % 300) * 1000,
                    [
                        ("voltage", MetricValue::Number(12.0 + wobble)),
                        ("current", MetricValue::Number(-3.0 + 6.0 * wobble)),
                        ("soc", MetricValue::Number(40.0 + 50.0 * wobble)),
                    ],
                )
                .with_place("battery-box", path)
            })
            .collect()
    })
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn a_large_hour_once() {
    let before = peak_rss_mib();
    let objects: Vec<Vec<u8>> = hour_of(100_000, 10_000)
        .map(|o| appended::encode(&o).unwrap())
        .collect();
    let stored: usize = objects.iter().map(Vec::len).sum();
    let at_rest = peak_rss_mib();
    let started = Instant::now();
    let (compacted, rows) = merge(Table::Raw, objects).unwrap();
    let took = started.elapsed();
    println!(
        "compaction of an hour of 100,000 devices every 5 minutes: {rows} rows from {} MB in 120 objects \
         into {} MB in {:.1} s ({:.0} rows/s of one core); peak RSS {:.0} MiB (before the hour: {before:.0} MiB, \
         with its objects in memory: {at_rest:.0} MiB)",
        stored / 1_000_000,
        compacted.len() / 1_000_000,
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64(),
        peak_rss_mib(),
    );
}

fn lake(c: &mut Criterion) {
    a_large_hour_once();
    let batch = hour_of(1_000, 12_000).next().unwrap();
    let rows = (batch.len() * 3) as u64;
    let mut group = c.benchmark_group("lake");
    group.throughput(Throughput::Elements(rows));
    group.bench_function(
        "append an ingest object in the row format (12,000 readings, 36,000 rows)",
        |b| {
            b.iter(|| appended::encode(black_box(&batch)).unwrap());
        },
    );
    group.bench_function(
        "encode the same as Parquet (12,000 readings, 36,000 rows)",
        |b| {
            b.iter(|| encode(black_box(&batch)).unwrap());
        },
    );
    let objects: Vec<Vec<u8>> = hour_of(1_000, 1_000)
        .map(|o| appended::encode(&o).unwrap())
        .collect();
    group.bench_function("compact an hour (12 objects, 36,000 rows)", |b| {
        b.iter(|| merge(Table::Raw, black_box(objects.clone())).unwrap());
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = lake
}
criterion_main!(benches);
