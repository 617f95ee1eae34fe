//! How fast compaction decodes and re-encodes lake rows: a sample hour of each reference
//! load through the real reader and writer (`format::decode`, then `format::encode`), timed.
//! `lake::COMPACTION_SECONDS_PER_ROW` is the slowest load's figure from this:
//!
//!     cargo run -p iotdp-cost --example compaction_speed
//!
//! (The dev profile is unoptimised: a release build is faster, so the figure is a bound.)

use std::time::Instant;

use iotdp::adapters::lake::format::{decode, encode};
use iotdp_cost::{Load, lake::sample_hour};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for load in Load::references() {
        let hour = sample_hour(&load)?;
        let rows: usize = hour.iter().map(|r| r.metrics.len()).sum();
        let file = encode(&hour)?;
        let rounds = 3;
        let started = Instant::now();
        for _ in 0..rounds {
            let readings = decode(file.clone())?;
            encode(&readings)?;
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{}: {rows} rows, {} bytes; {:.0} rows/s decoded and encoded",
            load.name.split(':').next().unwrap_or_default(),
            file.len(),
            (rows * rounds) as f64 / seconds
        );
    }
    Ok(())
}
