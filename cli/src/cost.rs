//! `iotdp cost`: the monthly bill of the reference loads (or of yours), for iotdp on each
//! transport (SQS, Kinesis on demand, Kinesis provisioned) with and without Basic Ingest, and
//! for the baselines a competent team would build instead (the rule's Timestream action, or
//! its own Lambda where the action cannot store the load; for new customers Firehose into
//! Parquet on S3 with Athena, and Timestream for InfluxDB when its price is given), from the
//! real ingest code's counts and the price table (`infra/prices.toml`, or `--prices FILE`).

use std::path::PathBuf;

use clap::Args;
use iotdp::rollup::tier::Tier;
use iotdp_cost::{
    Bill, LakeMeasure, LakeOptions, Load, Options, PerMessage, PriceTable, StorageClass, Transport,
    baseline_bill, firehose_bill, influxdb_bill, iotdp_bill, lake_bill, measure_lake, measure_with,
    own_lambda_bill, reads::Deployment, shards_for,
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
    /// Days the lake keeps raw readings in S3 Standard before its lifecycle rule moves them
    #[arg(long, default_value_t = 90.0)]
    lake_raw_transition_days: f64,
    /// The storage class the lake's raw readings move to (STANDARD keeps them there)
    #[arg(long, default_value = "GLACIER_IR", value_parser = ["GLACIER_IR", "STANDARD_IA", "STANDARD"])]
    lake_raw_class: String,
    /// Athena queries analysts run on the lake a month (a third each of the docs' three)
    #[arg(long, default_value_t = 100.0)]
    analyst_queries: f64,
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
    let lake_options = LakeOptions {
        raw_transition_days: args.lake_raw_transition_days.max(0.0),
        raw_class: StorageClass::parse(&args.lake_raw_class).unwrap_or(StorageClass::GlacierIr),
        analyst_queries: args.analyst_queries.max(0.0),
    };
    for load in &loads {
        let per = measure_with(load, 1_000, &deployment)
            .await
            .map_err(|e| CostError::Model(e.to_string()))?;
        let lake = measure_lake(load).map_err(|e| CostError::Model(e.to_string()))?;
        let bills = Bills::price(load, &per, &prices, args.influxdb_hourly)?.with_lake(
            &lake,
            lake_options,
            args.influxdb_hourly,
        )?;
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
    /// iotdp on the lake: each transport with and without Basic Ingest (as `Transport::ALL`,
    /// without then with), and what was measured.
    lake: Vec<(Transport, bool, Bill)>,
    lake_measure: Option<LakeMeasure>,
    lake_options: LakeOptions,
    /// iotdp on InfluxDB (TimeSeriesStore=influxdb) on its cheapest transport, when the
    /// instance's hourly price is given.
    iotdp_influxdb: Option<Bill>,
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
            lake: Vec::new(),
            lake_measure: None,
            lake_options: LakeOptions::default(),
            iotdp_influxdb: None,
            load,
            per,
            prices,
        })
    }

    /// The lake's bills on every set-up, and iotdp on InfluxDB when its price is given: the
    /// same lines but the store's.
    fn with_lake(
        mut self,
        lake: &LakeMeasure,
        options: LakeOptions,
        influxdb_hourly: Option<f64>,
    ) -> Result<Self, CostError> {
        let model = |e: iotdp_cost::PriceError| CostError::Model(e.to_string());
        for transport in Transport::ALL {
            for basic_ingest in [false, true] {
                let bill = lake_bill(
                    self.load,
                    self.per,
                    lake,
                    Options::new(basic_ingest, transport),
                    &options,
                    self.prices,
                )
                .map_err(model)?;
                self.lake.push((transport, basic_ingest, bill));
            }
        }
        if let Some(hourly) = influxdb_hourly {
            let cheapest = self.cheapest_setup();
            let mut bill = iotdp_bill(self.load, self.per, cheapest, self.prices).map_err(model)?;
            bill.lines.retain(|l| l.service != "Timestream");
            bill.lines.push(iotdp_cost::BillLine {
                service: "Timestream for InfluxDB".into(),
                item: "influxdb_instance_hours".into(),
                quantity: 720.0,
                usd: 720.0 * hourly,
                checked: "a parameter (--influxdb-hourly): the price was not found".into(),
            });
            self.iotdp_influxdb = Some(bill);
        }
        self.lake_measure = Some(lake.clone());
        self.lake_options = options;
        Ok(self)
    }

    /// iotdp's cheapest set-up on Timestream.
    fn cheapest_setup(&self) -> Options {
        [
            (&self.broker, Options::new(false, Transport::Sqs)),
            (&self.basic, Options::new(true, Transport::Sqs)),
            (
                &self.on_demand,
                Options::new(true, Transport::KinesisOnDemand),
            ),
            (
                &self.provisioned,
                Options::new(true, Transport::KinesisProvisioned),
            ),
        ]
        .into_iter()
        .min_by(|a, b| a.0.total().total_cmp(&b.0.total()))
        .map_or(Options::new(true, Transport::Sqs), |(_, o)| o)
    }

    /// The lake's cheapest set-up.
    fn lake_cheapest(&self) -> Option<&(Transport, bool, Bill)> {
        self.lake
            .iter()
            .min_by(|a, b| a.2.total().total_cmp(&b.2.total()))
    }

    fn lake_on(&self, transport: Transport, basic_ingest: bool) -> Option<&Bill> {
        self.lake
            .iter()
            .find(|(t, b, _)| *t == transport && *b == basic_ingest)
            .map(|(_, _, bill)| bill)
    }

    /// The baselines that can be built for this load, by name: the Timestream one (the rule's
    /// action, or the team's own Lambda), Firehose + Athena, and InfluxDB when priced. IoT
    /// Events cannot be built any more.
    fn buildable_baselines(&self) -> Vec<(&'static str, f64)> {
        let mut out = vec![
            (
                if self.action_unfit.is_some() {
                    "timestream_own_lambda"
                } else {
                    "timestream_rule_action"
                },
                self.baseline.total(),
            ),
            ("firehose_parquet_athena", self.firehose.total()),
        ];
        if let Some(influxdb) = &self.influxdb {
            out.push(("timestream_influxdb", influxdb.total()));
        }
        out
    }

    /// The competent baseline (the cheapest that can be built), the lake's cheapest set-up
    /// over it, and whether that is at most the goal's 50 %.
    fn lake_goal(&self) -> Option<(&'static str, f64, f64, bool)> {
        let (_, _, lake) = self.lake_cheapest()?;
        let (name, usd) = self
            .buildable_baselines()
            .into_iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))?;
        let ratio = lake.total() / usd;
        Some((name, usd, ratio, ratio <= LAKE_GOAL))
    }
}

/// Issue 34's goal: the lake at most half the competent baseline.
const LAKE_GOAL: f64 = 0.5;

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
            "lake": lake_json(bills),
            "stores": {
                "timestream_cheapest_usd": bills.cheapest(),
                "lake_cheapest_usd": bills.lake_cheapest().map(|l| l.2.total()),
                "influxdb_usd": bills.iotdp_influxdb.as_ref().map(Bill::total),
            },
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

/// The lake's bills, what was measured and counted for them, and the goal's check.
fn lake_json(bills: &Bills) -> serde_json::Value {
    let (Some(measure), Some((transport, basic_ingest, cheapest))) =
        (&bills.lake_measure, bills.lake_cheapest())
    else {
        return serde_json::Value::Null;
    };
    let month = iotdp_cost::lake::lake_month(bills.load, bills.per, measure, &bills.lake_options);
    let goal = bills.lake_goal();
    json!({
        "usd": cheapest.total(),
        "cheapest_setup": {"transport": transport.name(), "basic_ingest": basic_ingest},
        "by_service": cheapest.by_service(),
        "lines": lines(cheapest),
        "setups": bills.lake.iter().map(|(t, b, bill)| json!({
            "transport": t.name(),
            "basic_ingest": b,
            "usd": bill.total(),
            "lines": lines(bill),
        })).collect::<Vec<_>>(),
        "raw_class": bills.lake_options.raw_class.name(),
        "raw_transition_days": bills.lake_options.raw_transition_days,
        "analyst_queries": bills.lake_options.analyst_queries,
        "raw_bytes_per_row": measure.raw_bytes_per_row,
        "raw_key_bytes_per_row": measure.raw_key_bytes_per_row,
        "file_bytes": measure.file_bytes,
        "sample_rows": measure.sample_rows,
        "hour_offsets": measure.hour_offsets,
        "messages_per_invocation": month.messages_per_invocation,
        "invocations": month.invocations,
        "raw_gib_per_month": month.raw_gib_per_month,
        "rollup_gib_per_month": month.rollup_gib_per_month,
        "raw_partition": partition_json(&month.raw),
        "rollup_partitions": Tier::ALL.iter().enumerate().map(|(i, t)| json!({
            "tier": t.name(),
            "per_month": month.rollup_partitions[i],
            "counts": partition_json(&month.rollups[i]),
        })).collect::<Vec<_>>(),
        "requests": {
            "ingest_puts": month.ingest_puts,
            "ingest_gets": month.ingest_gets,
            "compaction_lists": month.compaction_lists,
            "compaction_puts": month.compaction_puts,
            "compaction_gets": month.compaction_gets,
            "rollup_puts": month.rollup_puts,
            "rollup_gets": month.rollup_gets,
            "rollup_job_gets": month.job_gets,
            "dashboard_gets": month.dashboard_gets,
            "athena_gets": month.athena_gets,
        },
        "athena_tb": month.athena_tb,
        "compaction_gb_seconds": month.compaction_gb_seconds,
        "goal": goal.map(|(name, usd, ratio, met)| json!({
            "at_most": LAKE_GOAL,
            "competent_baseline": name,
            "competent_baseline_usd": usd,
            "ratio": ratio,
            "met": met,
            "ratios": bills.buildable_baselines().into_iter()
                .map(|(n, u)| (n, cheapest.total() / u))
                .collect::<std::collections::BTreeMap<_, _>>(),
        })),
    })
}

fn partition_json(p: &iotdp_cost::lake::PartitionCounts) -> serde_json::Value {
    json!({
        "objects": p.objects,
        "marks": p.marks,
        "compactions": p.compactions,
        "compaction_object_gets": p.compaction_object_gets,
        "rows_compacted": p.rows_compacted,
        "open_objects": p.open_objects,
        "closed_objects": p.closed_objects,
    })
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
    let lake_columns = [
        ("Lake SQS + BI", bills.lake_on(Transport::Sqs, true)),
        (
            "Lake Kin prov + BI",
            bills.lake_on(Transport::KinesisProvisioned, true),
        ),
    ];
    for (name, bill) in lake_columns {
        if let Some(bill) = bill {
            columns.insert(4, (name, bill));
        }
    }
    columns.swap(4, 5);
    if let Some(influxdb) = &bills.iotdp_influxdb {
        columns.insert(6, ("iotdp on InfluxDB", influxdb));
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
    lake_lines(out, bills);
}

/// The lake: what was measured, its largest lines, and the goal per load.
fn lake_lines(out: &mut String, bills: &Bills) {
    use std::fmt::Write as _;
    let (Some(measure), Some((transport, basic, cheapest))) =
        (&bills.lake_measure, bills.lake_cheapest())
    else {
        return;
    };
    let mut top: Vec<_> = cheapest.lines.iter().collect();
    top.sort_by(|a, b| b.usd.total_cmp(&a.usd));
    let top: Vec<String> = top
        .iter()
        .take(4)
        .map(|l| format!("{} ${:.0}", l.item, l.usd))
        .collect();
    let _ = writeln!(
        out,
        "  Lake: {:.2} B a row compacted ({} rows measured), raw to {} after {:.0} days, {:.0} analyst queries; cheapest {}{}: ${:.0}, largest lines {}",
        measure.raw_bytes_per_row,
        measure.sample_rows,
        bills.lake_options.raw_class.name(),
        bills.lake_options.raw_transition_days,
        bills.lake_options.analyst_queries,
        transport.name(),
        if *basic { " + BI" } else { "" },
        cheapest.total(),
        top.join(", ")
    );
    if let Some((name, usd, ratio, met)) = bills.lake_goal() {
        let _ = writeln!(
            out,
            "  Lake / competent baseline ({name}, ${usd:.0}): {:.0} % — the goal of at most 50 % is {}\n",
            100.0 * ratio,
            if met { "met" } else { "NOT met" }
        );
    }
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
