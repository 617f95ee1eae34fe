//! `iotdp cost`: the monthly bill of the reference loads (or of yours), for iotdp with and
//! without Basic Ingest and for the baseline, from the real ingest code's counts and the price
//! table (`infra/prices.toml`, or `--prices FILE` for another region's).

use std::path::PathBuf;

use clap::Args;
use iotdp_local::cost::{Load, Options, PriceTable, baseline_bill, iotdp_bill, measure};
use serde_json::json;

use crate::output::OutputFormat;

#[derive(Args, Debug)]
pub struct CostArgs {
    /// The price table (one entry per metered item, with its source and the date it was checked)
    #[arg(long, default_value = "infra/prices.toml")]
    prices: PathBuf,
    /// Your load instead of the reference ones: how many devices
    #[arg(long, requires = "interval")]
    devices: Option<u64>,
    /// Seconds between a device's messages
    #[arg(long)]
    interval: Option<f64>,
    /// Metrics per reading
    #[arg(long, default_value_t = 4)]
    metrics: usize,
    /// Readings per message (a gateway batch)
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Heartbeat in seconds (no_data after it)
    #[arg(long)]
    heartbeat: Option<u32>,
    /// Alert rules per reading (the baseline prices an IoT Events detector per rule)
    #[arg(long, default_value_t = 2)]
    rules: u32,
}

pub async fn run(args: CostArgs, output: OutputFormat) -> Result<(), String> {
    use std::fmt::Write as _;
    // Written at the end in one go, so a closed pipe (`| head`) is not a panic.
    let mut out = String::new();
    let table = std::fs::read_to_string(&args.prices)
        .map_err(|e| format!("{}: {e}", args.prices.display()))?;
    let prices = PriceTable::parse(&table)?;
    let loads = match (args.devices, args.interval) {
        (Some(devices), Some(interval)) if devices > 0 && interval > 0.0 => vec![Load {
            name: format!(
                "{devices} devices every {interval} s, {} metrics, {} per message",
                args.metrics, args.batch
            ),
            devices,
            interval_seconds: interval,
            metrics: args.metrics.clamp(1, 100),
            readings_per_message: args.batch.clamp(1, 500),
            heartbeat_seconds: args.heartbeat,
            rules: args.rules,
        }],
        (Some(_), _) => return Err("--devices and --interval must both be above 0".into()),
        _ => Load::references(),
    };
    let unverified = prices
        .0
        .values()
        .filter(|p| p.checked == "unverified")
        .count();
    for load in &loads {
        let per = measure(load, 1_000).await?;
        let broker = iotdp_bill(
            load,
            &per,
            Options {
                basic_ingest: false,
            },
            &prices,
        )?;
        let basic = iotdp_bill(load, &per, Options { basic_ingest: true }, &prices)?;
        let baseline = baseline_bill(load, &per, &prices)?;
        match output {
            OutputFormat::Json => {
                let _ = writeln!(
                    out,
                    "{}",
                    json!({
                        "load": load.name,
                        "messages_per_month": load.messages_per_month(),
                        "readings_per_month": load.readings_per_month(),
                        "iotdp_usd": broker.total(),
                        "iotdp_basic_ingest_usd": basic.total(),
                        "baseline_usd": baseline.total(),
                        "iotdp_by_service": broker.by_service(),
                        "iotdp_basic_ingest_by_service": basic.by_service(),
                        "baseline_by_service": baseline.by_service(),
                    })
                );
            }
            OutputFormat::Table => {
                let _ = writeln!(
                    out,
                    "{}\n  {:.3e} messages, {:.3e} readings a month; {} B a publish, {:.2} Timestream KB a message (baseline {:.2})",
                    load.name,
                    load.messages_per_month(),
                    load.readings_per_month(),
                    per.iot_bytes,
                    per.timestream_kb,
                    per.baseline_timestream_kb
                );
                let _ = writeln!(
                    out,
                    "  {:<12} {:>14} {:>20} {:>14}",
                    "service", "iotdp", "iotdp Basic Ingest", "baseline"
                );
                let mut services: Vec<String> = broker
                    .by_service()
                    .keys()
                    .chain(baseline.by_service().keys())
                    .cloned()
                    .collect();
                services.sort();
                services.dedup();
                for service in services {
                    let cell = |bill: &iotdp_local::cost::Bill| {
                        bill.by_service()
                            .get(&service)
                            .map_or("-".to_owned(), |usd| format!("${usd:.0}"))
                    };
                    let _ = writeln!(
                        out,
                        "  {:<12} {:>14} {:>20} {:>14}",
                        service,
                        cell(&broker),
                        cell(&basic),
                        cell(&baseline)
                    );
                }
                let _ = writeln!(
                    out,
                    "  {:<12} {:>14} {:>20} {:>14}   iotdp / baseline: {:.0} % ({:.0} % with Basic Ingest)\n",
                    "total",
                    format!("${:.0}", broker.total()),
                    format!("${:.0}", basic.total()),
                    format!("${:.0}", baseline.total()),
                    100.0 * broker.total() / baseline.total(),
                    100.0 * basic.total() / baseline.total()
                );
            }
        }
    }
    if unverified > 0 && output == OutputFormat::Table {
        let _ = writeln!(
            out,
            "{unverified} of the {} prices in {} are marked unverified: check them on the pages named there before relying on these totals.",
            prices.0.len(),
            args.prices.display()
        );
    }
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(())
}
