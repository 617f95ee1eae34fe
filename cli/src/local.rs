//! `iotdp local` (`make local`): the platform on this machine, demo rules, a simulated fleet
//! and a live view until Ctrl-C; then everything it started is stopped.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Args;
use iotdp::adapters::dynamodb::alerts::DynamoDbRules;
use iotdp::alerting::rule::AlertRule;
use iotdp::devices::ports::DeviceRegistry;
use iotdp_local::platform::{Endpoint, LocalInfluxDb, LocalOptions, LocalPlatform, QueueMode};
use iotdp_simulator::{DeviceKind, Fleet, FleetConfig};
use tokio::sync::watch;

use crate::simulate::{self, FleetArgs, SimulationStats, Target};

/// The local platform's stack name, registered in moto's CloudFormation with the template's
/// outputs, so `iotdp --stack iotdp-local …` works as against a deployed stack.
const STACK: &str = "iotdp-local";
const REGION: &str = iotdp_local::provision::LOCAL_REGION;

#[derive(Args, Debug)]
pub struct LocalArgs {
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// MQTT listener, the IoT Core stand-in
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt: std::net::SocketAddr,
    /// The query API's listener (the `api` function, served locally without auth)
    #[arg(long, default_value = "127.0.0.1:8080")]
    api: std::net::SocketAddr,
    /// The IoT Data Plane stand-in's listener (device shadows over HTTP; port 0: a free one)
    #[arg(long, default_value = "127.0.0.1:0")]
    iot_data: std::net::SocketAddr,
    /// moto's server binary (started on a free 127.0.0.1 port)
    #[arg(
        long,
        env = "IOTDP_MOTO_SERVER",
        default_value = ".venv/bin/moto_server"
    )]
    moto_server: PathBuf,
    /// Use this running endpoint instead of starting moto (e.g. LocalStack: http://127.0.0.1:4566)
    #[arg(long)]
    aws_endpoint: Option<String>,
    /// Alert rules to load (every *.json file)
    #[arg(long, default_value = "infra/local/rules")]
    rules: PathBuf,
    /// Template parameter overrides, KEY=VALUE (as sam deploy --parameter-overrides)
    #[arg(long = "parameter", value_parser = parse_pair)]
    parameters: Vec<(String, String)>,
    /// Queues for the hot path: in-process (SQS semantics, fast) or moto (moto's SQS caps it
    /// near 100 messages/s)
    #[arg(long, value_enum, default_value = "in-process")]
    queues: Queues,
    /// Run without the simulated fleet (publish yourself, e.g. with mosquitto_pub)
    #[arg(long)]
    no_simulator: bool,
    /// At most this visibility timeout (seconds) on the in-process queues, so a message
    /// returned for retry comes back this soon instead of after the template's 360 s
    #[arg(long)]
    visibility_timeout: Option<u64>,
    /// Where the local influxd keeps its data (kept between runs)
    #[arg(long, default_value = ".local/influxdb")]
    influxdb_data: PathBuf,
    /// At the end, write the run's conservation figures here as JSON (published, received,
    /// queued, processed, stored, quarantined, backlog)
    #[arg(long)]
    report: Option<PathBuf>,
    /// Time-series store: influxdb (a local influxd: real queries), timestream (moto: stores
    /// but cannot query), or auto (influxdb when influxd is installed)
    #[arg(long, value_enum, default_value = "auto")]
    store: StoreChoice,
    /// influxd binary (`make tools` installs it)
    #[arg(
        long,
        env = "IOTDP_INFLUXD",
        default_value = ".tools/influxdb/usr/bin/influxd"
    )]
    influxd: PathBuf,
    /// Have the console sign users in at this OAuth 2.0 server (its `/oauth2/authorize`,
    /// `/oauth2/token`, `/logout`, code flow with PKCE), as a deployed console does at the user
    /// pool's hosted UI; the local API reads the token's claims unverified (docs/access.md)
    #[arg(long, requires = "console_client_id")]
    console_sign_in_url: Option<String>,
    /// The client id the console signs in as (with --console-sign-in-url)
    #[arg(long, requires = "console_sign_in_url")]
    console_client_id: Option<String>,
    #[command(flatten)]
    fleet: FleetArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum StoreChoice {
    Auto,
    Influxdb,
    Timestream,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Queues {
    InProcess,
    Moto,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("'{text}' is not KEY=VALUE"))
}

pub async fn run(args: LocalArgs) -> Result<(), String> {
    let mut parameters: HashMap<String, String> = args.parameters.iter().cloned().collect();
    // Locally, a one-second batching window keeps the view lively (AWS default: 5 s).
    parameters
        .entry("IngestBatchingWindowSeconds".into())
        .or_insert_with(|| "1".into());
    let endpoint = match &args.aws_endpoint {
        Some(url) => Endpoint::Existing(url.clone()),
        None => Endpoint::StartMoto {
            binary: args.moto_server.clone(),
            port: 0,
        },
    };
    let use_influxdb = match args.store {
        StoreChoice::Influxdb => true,
        StoreChoice::Timestream => false,
        StoreChoice::Auto => {
            args.influxd.exists()
                && parameters
                    .get("TimeSeriesStore")
                    .is_none_or(|s| s != "timestream")
        }
    };
    let influxdb = use_influxdb.then(|| LocalInfluxDb {
        binary: args.influxd.clone(),
        // Kept between runs, like the deployed store (by default under the ignored .local/).
        data_dir: args.influxdb_data.clone(),
    });
    let platform = LocalPlatform::start(LocalOptions {
        influxdb,
        queues: match args.queues {
            Queues::InProcess => QueueMode::InProcess,
            Queues::Moto => QueueMode::Moto,
        },
        template: args.template.clone(),
        stack_name: STACK.into(),
        parameters,
        mqtt: args.mqtt,
        api: args.api,
        iot_data: args.iot_data,
        endpoint,
        visibility_timeout_cap: args.visibility_timeout.map(Duration::from_secs),
        console_sign_in: args
            .console_sign_in_url
            .clone()
            .zip(args.console_client_id.clone())
            .map(|(base_url, client_id)| iotdp::api::console::ConsoleSignIn {
                base_url,
                client_id,
            }),
    })
    .await
    .map_err(|e| e.to_string())?;

    let result = demo_and_view(&platform, &args).await;
    let mqtt = platform.mqtt_addr;
    platform.stop().await;
    say(&format!(
        "\nstopped: moto, the MQTT listener on {mqtt} and every worker"
    ));
    result
}

async fn demo_and_view(platform: &LocalPlatform, args: &LocalArgs) -> Result<(), String> {
    let sdk = &platform.sdk;
    let table = platform
        .physical("AlertRulesTable")
        .ok_or("the template has no AlertRulesTable")?;
    let rules = DynamoDbRules::new(aws_sdk_dynamodb::Client::new(sdk), table);
    let mut loaded = Vec::new();
    for entry in
        std::fs::read_dir(&args.rules).map_err(|e| format!("{}: {e}", args.rules.display()))?
    {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let rule =
                AlertRule::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            rules.put(&rule).await.map_err(|e| e.to_string())?;
            loaded.push(rule.rule_id);
        }
    }
    // Things for the devices that receive commands, as a deployment registers them.
    let fleet = Fleet::new(FleetConfig {
        devices: args.fleet.devices.max(1),
        seed: args.fleet.seed,
        faulty_rate: 0.0,
    });
    let iot = aws_sdk_iot::Client::new(sdk);
    // The simulated fleet registered as an operator would import it (types, hierarchy,
    // gateways, heartbeats): readings of devices outside the registry are quarantined.
    let registry = iotdp::wiring::device_registry(
        sdk,
        platform
            .physical("DeviceRegistryTable")
            .ok_or("the template has no DeviceRegistryTable")?,
    );
    let mut registered = 0;
    if !args.no_simulator {
        for record in fleet.registry_records(chrono::Utc::now().timestamp_millis()) {
            if registry.create(&record).await.map_err(|e| e.to_string())? {
                registered += 1;
            }
        }
    }
    if !args.no_simulator {
        for device in fleet
            .devices
            .iter()
            .filter(|d| d.kind == DeviceKind::BatteryBox)
        {
            iot.create_thing()
                .thing_name(&device.id)
                .send()
                .await
                .map_err(|e| format!("creating thing {}: {e}", device.id))?;
        }
    }

    println!("iotdp local platform");
    println!(
        "  AWS endpoint      {} (moto's server: the aws CLI and iotdp use it through AWS_ENDPOINT_URL)",
        platform.endpoint
    );
    println!(
        "  CLI               export AWS_ENDPOINT_URL={} AWS_REGION={REGION} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local\n                    iotdp --stack {STACK} devices list   (or target/debug/iotdp; every command finds its names in the stack's outputs)",
        platform.endpoint
    );
    println!(
        "  MQTT (IoT Core)   {}   topic rule: {}",
        platform.mqtt_addr,
        platform
            .stack
            .rules
            .iter()
            .map(|r| r.query.topic_filter.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  time-series store {}", platform.store_description);
    if let Some(api) = platform.api_addr {
        if !matches!(platform.reader, iotdp::wiring::SelectedReader::InfluxDb(_)) {
            println!(
                "  note              readings from the query API come from moto's canned Timestream query results, not your data: use the InfluxDB store (make tools) for real answers"
            );
        }
        println!(
            "  console           http://{api}/   (fleet, places, devices, alerts, rules; served with the API)"
        );
        println!(
            "  query API         http://{api}   try: curl 'http://{api}/devices?limit=5'  or  curl 'http://{api}/readings/voltage/latest?type=battery-box'"
        );
        if let Some(thermostat) = fleet
            .devices
            .iter()
            .find(|d| d.kind == DeviceKind::Thermostat)
            .filter(|_| !args.no_simulator)
        {
            let id = &thermostat.id;
            println!(
                "  command           iotdp --stack {STACK} devices command {id} '{{\"setpoint\":19.5}}' --wait   (the simulated thermostat applies it; then: iotdp --stack {STACK} devices shadow {id})"
            );
        }
    }
    println!("  rules loaded      {}", loaded.join(", "));
    println!(
        "  devices           {registered} registered (the simulated fleet and its green-wall spots); unknown devices are quarantined as unknown_device"
    );
    for note in &platform.stack.not_emulated {
        println!("  not emulated      {note}");
    }
    println!(
        "  try                mosquitto_pub -h 127.0.0.1 -p {} -t dt/battery-0001/telemetry -m '{{\"metrics\":{{\"temperature\":21.5}}}}'",
        platform.mqtt_addr.port()
    );
    if let Some(rule) = platform
        .stack
        .rules
        .iter()
        .find(|r| r.name == "TelemetryRule")
    {
        println!(
            "  or Basic Ingest    mosquitto_pub -h 127.0.0.1 -p {} -t '{}' -m '{{\"metrics\":{{\"temperature\":21.5}}}}'   (no messaging charge on AWS; what the simulated fleet uses)",
            platform.mqtt_addr.port(),
            iotdp::domain::topic::basic_ingest_topic(&rule.rule_name, "battery-0001")
        );
    }
    if args.no_simulator {
        println!(
            "  note              no devices are registered: add yours with `iotdp --stack {STACK} devices create …`, or start with --parameter UnknownDevicePolicy=accept"
        );
    }
    println!("Ctrl-C stops everything.\n");

    let (stop_tx, stop_rx) = watch::channel(false);
    let sim_stats = Arc::new(SimulationStats::default());
    let simulator = (!args.no_simulator).then(|| {
        let target = Target {
            endpoint: "127.0.0.1".into(),
            port: Some(platform.mqtt_addr.port()),
            cert: None,
            key: None,
            ca: None,
            // The simulated fleet publishes through Basic Ingest, as the docs recommend.
            basic_ingest_rule: platform
                .stack
                .rules
                .iter()
                .find(|r| r.name == "TelemetryRule")
                .map(|r| r.rule_name.clone()),
            broker_topics: false,
        };
        tokio::spawn(simulate::run(
            args.fleet.clone(),
            target,
            sim_stats.clone(),
            stop_rx.clone(),
        ))
    });
    let deadline = (args.fleet.duration > 0)
        .then(|| tokio::time::Instant::now() + Duration::from_secs(args.fleet.duration + 10));
    let mut view = LiveView::new(platform, sim_stats.clone());
    // What the view queries back: the first battery box's voltage, the first green wall's zones.
    view.sample_battery = fleet
        .devices
        .iter()
        .find(|d| d.kind == DeviceKind::BatteryBox)
        .map(|d| d.id.clone())
        .filter(|_| !args.no_simulator);
    view.sample_site = fleet
        .registry_records(0)
        .into_iter()
        .find(|r| r.device_type == "green-wall-gateway")
        .map(|r| r.path)
        .filter(|_| !args.no_simulator);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                view.render().await;
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    break;
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    if let Some(simulator) = simulator {
        let _ = simulator.await;
    }
    // Let the last batches drain before the summary: at most 3 s after Ctrl-C, so everything
    // has stopped within 5 s; a second Ctrl-C skips the wait. A run with a duration waits up
    // to a minute, so its figures are final.
    let drain = if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(3)
    };
    let drain_until = tokio::time::Instant::now() + drain;
    let second_ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(second_ctrl_c);
    while tokio::time::Instant::now() < drain_until {
        let queued = platform.stats.queued.load(Ordering::Relaxed);
        let processed = platform.stats.ingest.lock().await.messages
            + platform.stats.presence_messages.load(Ordering::Relaxed);
        if processed >= queued && platform.ingest_backlog().await.unwrap_or_default() == 0 {
            break;
        }
        tokio::select! {
            _ = &mut second_ctrl_c => break,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    view.render().await;
    let ingest = platform.stats.ingest.lock().await.clone();
    say(&format!(
        "\nsummary: {} published, {} publishes received, {} messages queued by the topic rules, {} processed by ingest \
         and {} presence events by the lifecycle function ({} readings stored, {} rejected and quarantined, {} messages returned for retry)",
        sim_stats.published.load(Ordering::Relaxed),
        platform.stats.broker.publishes.load(Ordering::Relaxed),
        platform.stats.queued.load(Ordering::Relaxed),
        ingest.messages,
        platform.stats.presence_messages.load(Ordering::Relaxed),
        ingest.records_written,
        ingest.readings_rejected(),
        ingest.failed_messages,
    ));
    if let Some(path) = &args.report {
        let report = run_report(platform, &sim_stats, &ingest).await;
        std::fs::write(path, format!("{report:#}\n"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// The run's figures, for `--report`: each step of the pipeline's count, what became of the
/// readings, and what was left waiting.
async fn run_report(
    platform: &LocalPlatform,
    sim_stats: &SimulationStats,
    ingest: &iotdp::ingest::metrics::IngestMetrics,
) -> serde_json::Value {
    let dead_letters = match platform.physical("IngestDeadLetterQueue") {
        Some(url) => platform.queues.depth(url).await,
        None => None,
    };
    serde_json::json!({
        "published": sim_stats.published.load(Ordering::Relaxed),
        "publish_errors": sim_stats.errors.load(Ordering::Relaxed),
        "received_by_broker": platform.stats.broker.publishes.load(Ordering::Relaxed),
        "queued_by_rules": platform.stats.queued.load(Ordering::Relaxed),
        "rule_errors": platform.stats.rule_errors.load(Ordering::Relaxed),
        "processed_by_ingest": ingest.messages,
        "processed_by_lifecycle": platform.stats.presence_messages.load(Ordering::Relaxed),
        "returned_for_retry": ingest.failed_messages,
        "readings_accepted": ingest.readings_accepted,
        "records_written": ingest.records_written,
        "readings_rejected": ingest.readings_rejected(),
        "rejected_by_reason": ingest.rejected_by_reason.iter().map(|(r, n)| (r.as_str().to_owned(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
        "quarantine_lines": ingest.quarantine_lines,
        "ingest_backlog": platform.ingest_backlog().await,
        "dead_letters": dead_letters,
        "influxdb_url": platform.influxd().map(|p| p.url.clone()),
    })
}

/// A line on stdout that may be gone (`make local | tee log`: Ctrl-C stops `tee` too), so the
/// last lines never panic on a closed pipe.
fn say(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// The live terminal view: one screen, redrawn every second (one line per second when stdout is
/// not a terminal).
struct LiveView<'a> {
    platform: &'a LocalPlatform,
    simulation: Arc<SimulationStats>,
    sample_battery: Option<String>,
    sample_site: Option<iotdp::domain::LocationPath>,
    /// The last answers read back from the store, refreshed every few seconds.
    queried: Vec<String>,
    renders: u64,
    started: tokio::time::Instant,
    last: (u64, u64, u64),
    dead_letter_url: Option<String>,
}

impl<'a> LiveView<'a> {
    fn new(platform: &'a LocalPlatform, simulation: Arc<SimulationStats>) -> Self {
        let dead_letter_url = platform
            .physical("IngestDeadLetterQueue")
            .map(str::to_owned);
        Self {
            platform,
            simulation,
            sample_battery: None,
            sample_site: None,
            queried: Vec::new(),
            renders: 0,
            started: tokio::time::Instant::now(),
            last: (0, 0, 0),
            dead_letter_url,
        }
    }

    /// Read the store back through the query port: what the query API will serve.
    async fn query_store(&mut self) {
        use iotdp::query::model::{Aggregate, SeriesQuery, TimeRange};
        use iotdp::query::ports::TimeSeriesReader;
        let reader = &self.platform.reader;
        let now = chrono::Utc::now().timestamp_millis();
        let mut answers = Vec::new();
        let budget = Duration::from_millis(500);
        if let Some(battery) = &self.sample_battery {
            let query = SeriesQuery {
                device_id: battery.clone(),
                metric: "voltage".into(),
                range: TimeRange {
                    from_ms: now - 5 * 60_000,
                    to_ms: now,
                },
                bins: Some((Duration::from_secs(60), Aggregate::Avg)),
                limit: None,
            };
            let text = match tokio::time::timeout(budget, reader.series(&query)).await {
                Ok(Ok(points)) => points
                    .iter()
                    .map(|p| match &p.value {
                        iotdp::domain::MetricValue::Number(v) => format!("{v:.3}"),
                        other => format!("{other:?}"),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                Ok(Err(e)) => format!("query failed: {e}"),
                Err(_) => "query timed out".into(),
            };
            answers.push(format!("{battery} voltage, 1-min avg, last 5 min: {text}"));
        }
        if let Some(site) = &self.sample_site {
            let range = TimeRange {
                from_ms: now - 6 * 3_600_000,
                to_ms: now,
            };
            let text = match tokio::time::timeout(
                budget,
                reader.drill_down("moisture", site, range, Aggregate::Avg),
            )
            .await
            {
                Ok(Ok(groups)) => groups
                    .iter()
                    .map(|g| format!("{} {:.3}", g.group, g.value))
                    .collect::<Vec<_>>()
                    .join(", "),
                Ok(Err(e)) => format!("query failed: {e}"),
                Err(_) => "query timed out".into(),
            };
            answers.push(format!("{site} moisture by zone, 6 h avg: {text}"));
        }
        self.queried = answers;
    }

    async fn render(&mut self) {
        // Real queries only where the store can answer them (moto's Timestream cannot).
        if self.renders.is_multiple_of(5)
            && matches!(
                self.platform.reader,
                iotdp::wiring::SelectedReader::InfluxDb(_)
            )
        {
            self.query_store().await;
        }
        self.renders += 1;
        let s = &self.platform.stats;
        let ingest = s.ingest.lock().await.clone();
        let publishes = s.broker.publishes.load(Ordering::Relaxed);
        let (p0, a0, w0) = self.last;
        self.last = (publishes, ingest.readings_accepted, ingest.records_written);
        // The view must keep drawing when the endpoint is saturated: its own call gets 300 ms.
        let dlq = match &self.dead_letter_url {
            Some(url) => {
                tokio::time::timeout(Duration::from_millis(300), self.platform.queues.depth(url))
                    .await
                    .ok()
                    .flatten()
                    .map_or_else(|| "?".to_owned(), |d| d.to_string())
            }
            None => "-".into(),
        };
        let backlog =
            tokio::time::timeout(Duration::from_millis(300), self.platform.ingest_backlog())
                .await
                .ok()
                .flatten()
                .map_or_else(|| "?".to_owned(), |d| d.to_string());
        let rejected: Vec<String> = ingest
            .rejected_by_reason
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        let recent = s
            .recent_alerts
            .lock()
            .await
            .iter()
            .cloned()
            .collect::<Vec<_>>();
        let lines = [
            format!(
                "iotdp local  up {:>5} s   store: {}   Ctrl-C to stop",
                self.started.elapsed().as_secs(),
                self.platform.store_description
            ),
            format!(
                "devices connected   {:>8}   (simulated: {} published, {} errors)   presence events {}",
                s.broker.connected.load(Ordering::Relaxed),
                self.simulation.published.load(Ordering::Relaxed),
                self.simulation.errors.load(Ordering::Relaxed),
                s.presence_events.load(Ordering::Relaxed)
            ),
            format!(
                "MQTT publishes/s    {:>8}   total {}",
                publishes - p0,
                publishes
            ),
            format!(
                "readings accepted/s {:>8}   total {}",
                ingest.readings_accepted - a0,
                ingest.readings_accepted
            ),
            format!(
                "records written/s   {:>8}   total {}   write calls {}  retries {}",
                ingest.records_written - w0,
                ingest.records_written,
                ingest.write_calls,
                ingest.write_retries
            ),
            format!(
                "rejected            {:>8}   {}",
                ingest.readings_rejected(),
                rejected.join(", ")
            ),
            format!(
                "messages retried    {:>8}   ingest backlog {backlog}   dead-letter queue depth {dlq}   rule errors {}",
                ingest.failed_messages,
                s.rule_errors.load(Ordering::Relaxed)
            ),
            format!(
                "alerts raised       {:>8}   cleared {}   (as received by an SQS subscriber of the SNS topic)",
                s.alerts_raised.load(Ordering::Relaxed),
                s.alerts_cleared.load(Ordering::Relaxed)
            ),
            format!(
                "commands            {:>8} by rules ({} failed)   shadow updates {}   applied by devices {}   delivered {}   expired {}",
                ingest.alerts.commands_sent,
                ingest.alerts.command_failures,
                self.platform.broker.shadows.updates(),
                self.simulation.commands_applied.load(Ordering::Relaxed),
                s.commands_settled.load(Ordering::Relaxed),
                s.commands_expired.load(Ordering::Relaxed)
            ),
            format!(
                "registry            {:>8} reads  {} last_seen writes   silence watch runs {}  no_data raised {}",
                ingest.registry_reads,
                ingest.registry_writes,
                s.silence_runs.load(Ordering::Relaxed),
                s.no_data_raised.load(Ordering::Relaxed)
            ),
            format!(
                "rollups             {:>8} runs  watermark {}   windows {}  late windows recomputed {}  rows {}  failed runs {}",
                s.rollup_runs.load(Ordering::Relaxed),
                if s.rollup_runs.load(Ordering::Relaxed) == 0 {
                    "not yet computed".to_owned()
                } else {
                    format!(
                        "{} s behind",
                        s.rollup_lag_ms.load(Ordering::Relaxed) / 1000
                    )
                },
                s.rollup_windows.load(Ordering::Relaxed),
                s.rollup_late_windows.load(Ordering::Relaxed),
                s.rollup_rows.load(Ordering::Relaxed),
                s.rollup_failures.load(Ordering::Relaxed)
            ),
            format!(
                "recent alerts       {}",
                recent.first().cloned().unwrap_or_default()
            ),
        ];
        let mut out = std::io::stdout().lock();
        if out.is_terminal() {
            let _ = writeln!(out, "\x1b[2J\x1b[H{}", lines.join("\n"));
            for answer in &self.queried {
                let _ = writeln!(out, "read back           {answer}");
            }
            for alert in recent.iter().skip(1) {
                let _ = writeln!(out, "                    {alert}");
            }
        } else {
            let _ = writeln!(out, "{}", lines[1..10].join(" | "));
            if self.renders % 5 == 1 {
                for answer in &self.queried {
                    let _ = writeln!(out, "read back: {answer}");
                }
            }
        }
        let _ = out.flush();
    }
}
