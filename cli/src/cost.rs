//! `iotdp cost`: the monthly bill of the reference loads (or of yours), for iotdp on each
//! transport (SQS, Kinesis on demand, Kinesis provisioned) with and without Basic Ingest, and
//! for the baselines a competent team would build instead (the rule's Timestream action, or
//! its own Lambda where the action cannot store the load; for new customers Firehose into
//! Parquet on S3 with Athena, and Timestream for InfluxDB when its price is given), from the
//! real ingest code's counts and the price table (`infra/prices.toml`, or `--prices FILE`).

use std::path::PathBuf;

use clap::Args;
use iotdp_cost::{
    Bill, Load, Options, PerMessage, PriceTable, Transport, baseline_bill, firehose_bill,
    influxdb_bill, iotdp_bill, measure_with, own_lambda_bill, reads::Deployment, shards_for,
};
use serde_json::json;

use crate::files::{FileError, read_text};
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
    /// Hours a month someone watches a dashboard (Timestream holds its minimum query TCUs then)
    #[arg(long, default_value_t = 176.0)]
    dashboard_hours: f64,
    /// Minutes between rollup runs (the template's RollupSchedule)
    #[arg(long, default_value_t = 5.0)]
    rollup_every: f64,
    /// Hours in Timestream's memory store (MemoryStoreRetentionHours; the baseline's too)
    #[arg(long, default_value_t = 24.0)]
    memory_store_hours: f64,
    /// The finest rollup tier kept (RollupFinestTier): auto follows the reporting interval
    /// (minutes only for series reporting more than once a minute), or 1m, or 1h
    #[arg(long, default_value = "auto", value_parser = ["auto", "1m", "1h"])]
    rollup_finest: String,
    /// USD an hour of Timestream for InfluxDB's smallest fitting instance, to price that
    /// baseline (its price could not be read; without it that baseline is not priced)
    #[arg(long)]
    influxdb_hourly: Option<f64>,
}

/// What the cost model refused.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    #[error("--devices and --interval must both be above 0")]
    EmptyLoad,
    /// The cost crate says what is wrong (the price table, a load) in its own sentence.
    #[error("{0}")]
    Model(String),
    #[error(transparent)]
    Prices(#[from] FileError),
}

pub async fn run(args: CostArgs, output: OutputFormat) -> Result<(), CostError> {
    // Written at the end in one go, so a closed pipe (`| head`) is not a panic.
    let mut out = String::new();
    let prices = PriceTable::parse(&read_text(&args.prices)?)
        .map_err(|e| CostError::Model(e.to_string()))?;
    let loads = loads(&args)?;
    let deployment = Deployment {
        dashboard_hours: args.dashboard_hours,
        rollup_every_minutes: args.rollup_every,
        rollup_finest: iotdp::rollup::tier::Tier::parse(&args.rollup_finest),
        memory_store_hours: args.memory_store_hours,
    };
    for load in &loads {
        let per = measure_with(load, 1_000, &deployment)
            .await
            .map_err(|e| CostError::Model(e.to_string()))?;
        let bills = Bills::price(load, &per, &prices, args.influxdb_hourly)?;
        match output {
            OutputFormat::Json => json_line(&mut out, &bills)?,
            OutputFormat::Table => table(&mut out, &bills),
        }
    }
    if output == OutputFormat::Table {
        unverified_note(&mut out, &prices, &args.prices);
    }
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(())
}

/// The reference loads, or the one `--devices` and `--interval` describe.
fn loads(args: &CostArgs) -> Result<Vec<Load>, CostError> {
    Ok(match (args.devices, args.interval) {
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
            // Each device its own site: as many place rows as devices, the most there can be.
            places: iotdp_cost::Places::OwnSite,
        }],
        (Some(_), _) => return Err(CostError::EmptyLoad),
        _ => Load::references(),
    })
}

/// One load's bills: iotdp on each transport, before the registry's write savings, and the
/// baseline.
struct Bills<'a> {
    load: &'a Load,
    per: &'a PerMessage,
    prices: &'a PriceTable,
    broker: Bill,
    basic: Bill,
    on_demand: Bill,
    provisioned: Bill,
    before: Bill,
    /// The rule's Timestream action with Basic Ingest (or, where it cannot store the load,
    /// the team's own Lambda), without IoT Events.
    baseline: Bill,
    /// Why the rule's Timestream action cannot store the load, if it cannot.
    action_unfit: Option<&'static str>,
    /// The rule's Timestream action with IoT Events, before its end of support.
    with_iot_events: Bill,
    /// New customers: Firehose into Parquet on S3, Athena.
    firehose: Bill,
    /// New customers: Timestream for InfluxDB, when its hourly price is given.
    influxdb: Option<Bill>,
}

impl<'a> Bills<'a> {
    fn price(
        load: &'a Load,
        per: &'a PerMessage,
        prices: &'a PriceTable,
        influxdb_hourly: Option<f64>,
    ) -> Result<Self, CostError> {
        let model = |e: iotdp_cost::PriceError| CostError::Model(e.to_string());
        let bill = |basic_ingest, transport| iotdp(load, per, prices, basic_ingest, transport);
        Ok(Self {
            broker: bill(false, Transport::Sqs)?,
            basic: bill(true, Transport::Sqs)?,
            on_demand: bill(true, Transport::KinesisOnDemand)?,
            provisioned: bill(true, Transport::KinesisProvisioned)?,
            before: iotdp_bill(
                load,
                per,
                Options {
                    registry_before: true,
                    ..Options::new(false, Transport::Sqs)
                },
                prices,
            )
            .map_err(|e| CostError::Model(e.to_string()))?,
            baseline: match per.timestream_action_unfit {
                None => baseline_bill(load, per, prices, false),
                Some(_) => own_lambda_bill(load, per, prices),
            }
            .map_err(model)?,
            action_unfit: per.timestream_action_unfit,
            with_iot_events: baseline_bill(load, per, prices, true).map_err(model)?,
            firehose: firehose_bill(load, per, prices).map_err(model)?,
            influxdb: influxdb_hourly
                .map(|hourly| influxdb_bill(load, per, prices, hourly))
                .transpose()
                .map_err(model)?,
            load,
            per,
            prices,
        })
    }
}

impl Bills<'_> {
    /// iotdp's cheapest set-up.
    fn cheapest(&self) -> f64 {
        [
            &self.broker,
            &self.basic,
            &self.on_demand,
            &self.provisioned,
        ]
        .iter()
        .map(|b| b.total())
        .fold(f64::INFINITY, f64::min)
    }
}

fn iotdp(
    load: &Load,
    per: &PerMessage,
    prices: &PriceTable,
    basic_ingest: bool,
    transport: Transport,
) -> Result<Bill, CostError> {
    iotdp_bill(load, per, Options::new(basic_ingest, transport), prices)
        .map_err(|e| CostError::Model(e.to_string()))
}

/// What the registry's writes cost in a bill.
fn registry(bill: &Bill) -> f64 {
    bill.item("dynamodb_write_request_units")
}

/// The load's bills as one JSON line, every transport with and without Basic Ingest.
fn json_line(out: &mut String, bills: &Bills) -> Result<(), CostError> {
    use std::fmt::Write as _;
    let (load, per) = (bills.load, bills.per);
    let mut setups = Vec::new();
    for transport in Transport::ALL {
        for basic_ingest in [false, true] {
            let priced = iotdp(load, per, bills.prices, basic_ingest, transport)?;
            setups.push(json!({
                "transport": transport.name(),
                "basic_ingest": basic_ingest,
                "usd": priced.total(),
                "by_service": priced.by_service(),
                "lines": lines(&priced),
            }));
        }
    }
    let _ = writeln!(
        out,
        "{}",
        json!({
            "load": load.name,
            "messages_per_month": load.messages_per_month(),
            "readings_per_month": load.readings_per_month(),
            "iotdp_usd": bills.broker.total(),
            "iotdp_basic_ingest_usd": bills.basic.total(),
            "baseline_usd": bills.baseline.total(),
            "baselines": {
                "timestream": {
                    "built_as": if bills.action_unfit.is_some() { "own_lambda" } else { "timestream_rule_action" },
                    "timestream_rule_action_unfit": bills.action_unfit,
                    "usd": bills.baseline.total(),
                    "lines": lines(&bills.baseline),
                },
                "timestream_rule_action_with_iot_events": {
                    "buildable": false,
                    "why": "AWS IoT Events reached its end of support on 2026-05-20",
                    "usd": bills.with_iot_events.total(),
                },
                "firehose_parquet_athena": {
                    "usd": bills.firehose.total(),
                    "by_service": bills.firehose.by_service(),
                    "lines": lines(&bills.firehose),
                },
                "timestream_influxdb": bills.influxdb.as_ref().map(|b| json!({
                    "usd": b.total(),
                    "lines": lines(b),
                })),
            },
            "iotdp_cheapest_usd": bills.cheapest(),
            "iotdp_by_service": bills.broker.by_service(),
            "iotdp_basic_ingest_by_service": bills.basic.by_service(),
            "baseline_by_service": bills.baseline.by_service(),
            "setups": setups,
            "kinesis_provisioned_shards": shards_for(load, per),
            "registry_writes_per_message": per.registry_writes,
            "registry_usd": registry(&bills.broker),
            "registry_writes_per_message_before": per.registry_writes_before,
            "registry_usd_before": registry(&bills.before),
            "baseline_lines": lines(&bills.baseline),
            "reads": {
                "tcu_hours": per.reads.tcu_hours,
                "baseline_tcu_hours": per.reads.baseline_tcu_hours,
                "rollup_queries_per_run": per.reads.rollup_queries_per_run,
                "rollup_rows_per_series_day": per.reads.rollup_rows_per_series_day,
                "rollup_write_kb_per_series_day": per.reads.rollup_write_kb_per_series_day,
                "rollup_stored_bytes_per_series_day": per.reads.rollup_stored_bytes_per_series_day,
                "rollup_finest": per.reads.rollup_finest.map(iotdp::rollup::tier::Tier::name),
                "queries_per_24h_chart": per.reads.chart_queries,
                "baseline_queries_per_24h_chart": per.reads.baseline_chart_queries,
                "registry_read_units": per.reads.registry_read_units,
                "registry_read_units_kinesis": per.reads.registry_read_units_kinesis,
                "silence_watch_read_units": per.reads.watch_read_units,
            },
        })
    );
    Ok(())
}

/// The load's bills for people: a line about the load, a column per setup, a row per
/// service, and how iotdp compares with each baseline.
fn table(out: &mut String, bills: &Bills) {
    use std::fmt::Write as _;
    let (load, per) = (bills.load, bills.per);
    let _ = writeln!(
        out,
        "{}\n  {:.3e} messages, {:.3e} readings a month; {} B a publish; Timestream: {:.2} write KB and {:.0} B held a message (the rule's action: {:.2} KB, {:.0} B); rollups finest {}; {} provisioned shards",
        load.name,
        load.messages_per_month(),
        load.readings_per_month(),
        per.iot_bytes,
        per.timestream_kb,
        per.stored_bytes,
        per.baseline_timestream_kb,
        per.baseline_stored_bytes,
        per.reads.rollup_finest.map_or("?", |t| t.name()),
        shards_for(load, per)
    );
    let timestream_baseline = if bills.action_unfit.is_some() {
        "own Lambda"
    } else {
        "TS rule action"
    };
    let mut columns = vec![
        ("SQS", &bills.broker),
        ("SQS + BI", &bills.basic),
        ("Kinesis OD + BI", &bills.on_demand),
        ("Kinesis prov + BI", &bills.provisioned),
        (timestream_baseline, &bills.baseline),
        ("Firehose+Athena", &bills.firehose),
    ];
    if let Some(influxdb) = &bills.influxdb {
        columns.push(("InfluxDB", influxdb));
    }
    service_rows(out, &columns);
    if let Some(why) = bills.action_unfit {
        let _ = writeln!(
            out,
            "\n  The Timestream baseline cannot be built as the rule's Timestream action: {why}. Priced as the team's own Lambda behind the rule instead."
        );
    }
    let cheapest = bills.cheapest();
    let ratio = |baseline: &Bill| {
        format!(
            "{:.0} % on SQS, {:.0} % at its cheapest",
            100.0 * bills.broker.total() / baseline.total(),
            100.0 * cheapest / baseline.total()
        )
    };
    let _ = writeln!(
        out,
        "\n  iotdp / {timestream_baseline} (${:.0}): {}; iotdp / Firehose+Athena (${:.0}): {}",
        bills.baseline.total(),
        ratio(&bills.baseline),
        bills.firehose.total(),
        ratio(&bills.firehose),
    );
    match &bills.influxdb {
        Some(influxdb) => {
            let _ = writeln!(
                out,
                "  iotdp / InfluxDB (${:.0}): {}",
                influxdb.total(),
                ratio(influxdb)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  Timestream for InfluxDB: not priced (its instance price could not be read; pass --influxdb-hourly USD)"
            );
        }
    }
    let _ = writeln!(
        out,
        "  The rule's action with IoT Events would be ${:.0}, but AWS IoT Events reached its end of support on 2026-05-20. Registry writes ${:.0} (${:.0} before the heard log and the hourly last_seen); query TCU-hours {:.0} (baseline {:.0})\n",
        bills.with_iot_events.total(),
        registry(&bills.broker),
        registry(&bills.before),
        per.reads.tcu_hours,
        per.reads.baseline_tcu_hours
    );
}

/// The header, a row per service (dollars, or - where a setup has none) and the totals.
fn service_rows(out: &mut String, columns: &[(&str, &Bill)]) {
    use std::fmt::Write as _;
    let _ = write!(out, "  {:<12}", "service");
    for (name, _) in columns {
        let _ = write!(out, " {name:>18}");
    }
    let _ = writeln!(out);
    let mut services: Vec<String> = columns
        .iter()
        .flat_map(|(_, bill)| bill.by_service().into_keys())
        .collect();
    services.sort();
    services.dedup();
    for service in services {
        let _ = write!(out, "  {service:<12}");
        for (_, bill) in columns {
            let cell = bill
                .by_service()
                .get(&service)
                .map_or("-".to_owned(), |usd| format!("${usd:.0}"));
            let _ = write!(out, " {cell:>18}");
        }
        let _ = writeln!(out);
    }
    let _ = write!(out, "  {:<12}", "total");
    for (_, bill) in columns {
        let _ = write!(out, " {:>18}", format!("${:.0}", bill.total()));
    }
}

/// A warning for prices nobody has checked yet.
fn unverified_note(out: &mut String, prices: &PriceTable, file: &std::path::Path) {
    use std::fmt::Write as _;
    let unverified = prices
        .0
        .values()
        .filter(|p| p.checked == "unverified")
        .count();
    if unverified > 0 {
        let _ = writeln!(
            out,
            "{unverified} of the {} prices in {} are marked unverified: check them on the pages named there before relying on these totals.",
            prices.0.len(),
            file.display()
        );
    }
}

/// A bill's lines: item, quantity, dollars and whether the price was checked.
fn lines(bill: &Bill) -> Vec<serde_json::Value> {
    bill.lines
        .iter()
        .map(|l| {
            json!({
                "service": l.service,
                "item": l.item,
                "quantity": l.quantity,
                "usd": l.usd,
                "checked": l.checked,
            })
        })
        .collect()
}
