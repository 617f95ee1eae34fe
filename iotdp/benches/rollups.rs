//! The rollup job's own work per 1,000 one-minute windows of a green wall (10 spot sensors in
//! two zones, 2 metrics, one reading a minute): raw readings into 1-minute device and place
//! rows, those rolled up into hours, and the rows encoded for each store's write.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iotdp::adapters::influxdb::rollups::encode_rollup_lines;
use iotdp::adapters::timestream::rollups::rollup_records;
use iotdp::domain::{LocationPath, MetricValue, Reading};
use iotdp::rollup::compute::{roll_up, rows_from_readings};
use iotdp::rollup::tier::Tier;
use std::hint::black_box;

const T0: i64 = 1_764_028_800_000;
const WINDOWS: i64 = 1_000;

fn readings() -> Vec<Reading> {
    let mut out = Vec::new();
    for minute in 0..WINDOWS {
        for spot in 0..10 {
            let path =
                LocationPath::parse(&format!("wall-1/zone-{}/s1/spot-{spot}", spot % 2)).unwrap();
            out.push(
                Reading::new(
                    &format!("spot-{spot}"),
                    T0 + minute * 60_000 + spot * 100,
                    [
                        ("moisture", MetricValue::Number(30.0 + (minute % 17) as f64)),
                        ("pump_on", MetricValue::Bool(minute % 5 == 0)),
                    ],
                )
                .with_place("spot-sensor", path),
            );
        }
    }
    out
}

fn rollups(c: &mut Criterion) {
    let readings = readings();
    let minutes = rows_from_readings(&readings, Tier::Minute, T0);
    let mut group = c.benchmark_group("rollup_1000_windows");
    group.throughput(Throughput::Elements(WINDOWS as u64));
    group.bench_function("raw_to_1m_rows", |b| {
        b.iter(|| black_box(rows_from_readings(black_box(&readings), Tier::Minute, T0)));
    });
    group.bench_function("1m_to_1h_rows", |b| {
        b.iter(|| black_box(roll_up(black_box(&minutes), Tier::Hour, T0)));
    });
    group.bench_function("influxdb_line_protocol", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(minutes.len() * 200);
            encode_rollup_lines(Tier::Minute, black_box(&minutes), &mut out);
            black_box(out)
        });
    });
    group.bench_function("timestream_records", |b| {
        b.iter(|| black_box(rollup_records(black_box(&minutes)).unwrap()));
    });
    group.finish();
    eprintln!(
        "per 1,000 windows: {} readings, {} one-minute rows (10 devices, 2 metrics, site/zone/section/spot)",
        readings.len(),
        minutes.len()
    );
}

criterion_group!(benches, rollups);
criterion_main!(benches);
