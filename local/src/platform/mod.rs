//! The local platform started, watched and stopped as one.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_lambda_events::event::sqs::SqsEvent;
use base64::Engine as _;
use serde_json::json;
use tokio::sync::{Mutex, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::api_server;
use crate::broker::{self, Broker, BrokerStats, InboundPublish};
use crate::event_source;
use crate::influxd::InfluxProcess;
use crate::moto::MotoProcess;
use crate::provision::{Function, LOCAL_REGION, LocalStack, RuleAction, provision, register_stack};
use crate::queues::{InProcessQueues, QueueBackend};
use crate::rule_sql::Message;
use crate::streams::{ConsumerStats, InProcessStreams};
use crate::template::Template;
use iotdp::config::FromEnvironment;
use iotdp::config::{
    ApiConfig, CommandsConfig, IngestConfig, LifecycleConfig, RollupJobConfig, SilenceWatchConfig,
};
use iotdp::devices::presence::record_presence_events;
use iotdp::ingest::metrics::IngestMetrics;
use iotdp::ingest::service::Invocation;
use iotdp::wiring::{
    AwsIngestService, AwsSilenceWatch, SelectedReader, device_registry, ingest_service_with,
    query_api, silence_watch, time_series_reader,
};

/// Where AWS calls go.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// Start moto's server from this binary, on this port (0: a free one).
    StartMoto { binary: PathBuf, port: u16 },
    /// Use an endpoint that is already running (moto, LocalStack).
    Existing(String),
}

/// Which queues carry the hot path (rule actions → functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMode {
    /// moto's SQS: exactly the deployed calls, but moto's SQS caps the pipeline near 100 msg/s.
    Moto,
    /// In-process queues with SQS semantics (visibility timeout, redrive): the default.
    InProcess,
}

#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub queues: QueueMode,
    pub template: PathBuf,
    pub stack_name: String,
    pub parameters: HashMap<String, String>,
    /// MQTT listener (IoT Core stand-in); port 0 picks a free one.
    pub mqtt: SocketAddr,
    pub endpoint: Endpoint,
    /// The query API's local listener (port 0: a free one).
    pub api: SocketAddr,
    /// The IoT Data Plane stand-in's listener (shadows over HTTP; port 0: a free one).
    pub iot_data: SocketAddr,
    /// Run InfluxDB locally and store readings there (`TimeSeriesStore=influxdb`): the
    /// `influxd` binary and the folder its data goes to. `None`: the template's store as
    /// parameterised (Timestream in moto, which can store but not query).
    pub influxdb: Option<LocalInfluxDb>,
    /// At most this visibility timeout on the in-process queues (the template's 360 s means a
    /// message returned for retry comes back six minutes later): outage tests and demos of
    /// redelivery set a few seconds. `None`: the template's.
    pub visibility_timeout_cap: Option<Duration>,
    /// Where the console signs users in (`CONSOLE_SIGN_IN_URL`, `CONSOLE_CLIENT_ID`): the
    /// local API reads unsigned tokens, so any OAuth 2.0 server with PKCE will do (the browser
    /// tests run one). `None`: the template's (none with `ApiAuth=iam`).
    pub console_sign_in: Option<iotdp::api::console::ConsoleSignIn>,
}

#[derive(Debug, Clone)]
pub struct LocalInfluxDb {
    pub binary: PathBuf,
    pub data_dir: PathBuf,
}

/// Running totals for the live view and the tests.
#[derive(Debug, Default)]
pub struct PlatformStats {
    pub broker: Arc<BrokerStats>,
    pub rule_matches: AtomicU64,
    pub rule_errors: AtomicU64,
    pub queued: AtomicU64,
    pub ingest: Mutex<IngestMetrics>,
    pub invocations: AtomicU64,
    pub alerts_raised: AtomicU64,
    pub alerts_cleared: AtomicU64,
    pub recent_alerts: Mutex<VecDeque<String>>,
    /// Connect/disconnect events recorded in the registry.
    pub presence_events: AtomicU64,
    /// Messages the lifecycle function handled (recorded, ignored or malformed).
    pub presence_messages: AtomicU64,
    pub silence_runs: AtomicU64,
    pub no_data_raised: AtomicU64,
    /// Rollup job runs, the 1-minute windows they computed, the late windows they computed
    /// again, and how far the watermark trails now (ms; -1 before the first run).
    pub rollup_runs: AtomicU64,
    pub rollup_windows: AtomicU64,
    pub rollup_late_windows: AtomicU64,
    pub rollup_rows: AtomicU64,
    pub rollup_lag_ms: std::sync::atomic::AtomicI64,
    pub rollup_failures: AtomicU64,
    /// Commands the shadow reports settled (delivered, or expired on a late report), and the
    /// ones the expiry sweep expired.
    pub commands_settled: AtomicU64,
    pub commands_expired: AtomicU64,
    /// The Kinesis event source's invocations and the batches it skipped (`Transport=kinesis`).
    pub stream: Arc<ConsumerStats>,
}

pub struct LocalPlatform {
    pub endpoint: String,
    pub mqtt_addr: SocketAddr,
    pub stack: LocalStack,
    pub sdk: SdkConfig,
    pub stats: Arc<PlatformStats>,
    /// A queue subscribed to every SNS topic of the stack: alerts as a subscriber gets them.
    pub alerts_queue_url: String,
    /// The queues the hot path runs on.
    pub queues: QueueBackend,
    /// The Kinesis streams the hot path runs on with `Transport=kinesis` (in process).
    pub streams: Arc<InProcessStreams>,
    /// Where the query API answers (`http://<addr>/devices`, …).
    pub api_addr: Option<SocketAddr>,
    /// The ingest function's store, read through the same adapters the query API uses.
    pub reader: SelectedReader,
    /// Which store holds the readings, and where, for the live view.
    pub store_description: String,
    /// The stack's outputs as registered in the endpoint's CloudFormation (`--stack`).
    pub outputs: std::collections::BTreeMap<String, String>,
    /// The IoT Core stand-in: its subscriptions and its shadows.
    pub broker: Arc<Broker>,
    /// Where the stand-in's IoT Data Plane API answers (the functions' `IOT_DATA_ENDPOINT`).
    pub iot_data_url: String,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    moto: Option<MotoProcess>,
    influxd: Option<InfluxProcess>,
}

#[derive(Debug, thiserror::Error)]
#[error("local platform: {0}")]
pub struct LocalError(pub String);

fn fail(e: impl std::fmt::Display) -> LocalError {
    LocalError(e.to_string())
}

/// Messages the broker → rules engine → queue hand-offs buffer before they push back (the
/// broker then stops reading its sockets, as IoT Core throttles). A gateway's 5-hour batch is
/// ~5 KB, so this bounds each hand-off near 50 MB; 100,000 let a short stall of ingest (a
/// rollup run) leave half a gigabyte behind per hand-off (`make soak`).
const HOT_PATH_BUFFER: usize = 10_000;

/// The ingest function's `Timeout` in template.yaml.
const INGEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What the start-up steps share: the SDK, the hot path's queues, the live view's figures,
/// and every task they spawn (stopped together by `shutdown`).
struct Startup {
    sdk: SdkConfig,
    /// How long an ingest invocation may run: the template's 60 s timeout, and never as long
    /// as half a capped visibility timeout (SQS would hand its messages to another poller
    /// while it still runs, and they would be processed twice).
    invocation_timeout: Duration,
    queues: QueueBackend,
    streams: Arc<InProcessStreams>,
    stats: Arc<PlatformStats>,
    shutdown: watch::Receiver<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The IoT Data Plane stand-in every function's `IOT_DATA_ENDPOINT` names.
    iot_data_url: String,
}

/// The ingest function as Lambda invokes it locally, from either event source: each
/// invocation gets a request id and the function's deadline, and its figures go to the live
/// view.
struct IngestRunner {
    service: Arc<AwsIngestService>,
    stats: Arc<PlatformStats>,
    timeout: Duration,
    invocations: AtomicU64,
}

impl IngestRunner {
    fn next_invocation(&self) -> Invocation {
        let number = self.invocations.fetch_add(1, Ordering::Relaxed);
        Invocation {
            request_id: format!("local-{number:08}"),
            deadline: tokio::time::Instant::now() + self.timeout,
            started_at: chrono::Utc::now(),
        }
    }

    async fn finish(
        &self,
        report: iotdp::ingest::service::IngestReport,
    ) -> aws_lambda_events::event::sqs::SqsBatchResponse {
        self.stats.invocations.fetch_add(1, Ordering::Relaxed);
        self.stats.ingest.lock().await.add(&report.metrics);
        report.response
    }
}

/// moto (or the given endpoint) and, when asked for, influxd: what the stack is created in.
struct BackingServices {
    endpoint: String,
    moto: Option<MotoProcess>,
    influxd: Option<InfluxProcess>,
    /// The template's parameters, with the store switched to InfluxDB when influxd runs.
    parameters: HashMap<String, String>,
}

impl LocalPlatform {
    /// Start everything `template.yaml` defines, step by step: backing services, the stack's
    /// resources, the functions, the read-back path, the alert subscriber, then IoT Core.
    pub async fn start(options: LocalOptions) -> Result<Self, LocalError> {
        let text = std::fs::read_to_string(&options.template)
            .map_err(|e| LocalError(format!("{}: {e}", options.template.display())))?;
        let template = Template::parse(&text).map_err(fail)?;
        let services = start_backing_services(&options)?;
        let sdk = local_sdk_config(&services.endpoint).await;
        let stack = provision(
            &template,
            &options.stack_name,
            &services.parameters,
            &sdk,
            &services.endpoint,
        )
        .await
        .map_err(fail)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let stats = Arc::new(PlatformStats::default());
        // IoT Core's two faces come up first, so every function can be given the data plane's
        // address; the MQTT listener starts accepting after the functions run.
        let (inbound, inbound_rx) = mpsc::channel::<InboundPublish>(HOT_PATH_BUFFER);
        let iot = Broker::new(inbound, stats.broker.clone());
        let data_plane = broker::bind(options.iot_data).await.map_err(|e| {
            LocalError(format!(
                "IoT Data Plane listener on {}: {e}",
                options.iot_data
            ))
        })?;
        let iot_data_url = format!("http://{}", data_plane.local_addr().map_err(fail)?);
        let mut startup = Startup {
            queues: match options.queues {
                QueueMode::Moto => QueueBackend::Moto(sqs.clone()),
                QueueMode::InProcess => {
                    let cap = options.visibility_timeout_cap.unwrap_or(Duration::MAX);
                    let specs = stack.queues.iter().cloned().map(|mut spec| {
                        spec.visibility_timeout = spec.visibility_timeout.min(cap);
                        spec
                    });
                    QueueBackend::InProcess(Arc::new(InProcessQueues::new(specs)))
                }
            },
            streams: Arc::new(InProcessStreams::new(stack.streams.iter().cloned())),
            sdk,
            invocation_timeout: options
                .visibility_timeout_cap
                .map_or(INGEST_TIMEOUT, |cap| INGEST_TIMEOUT.min(cap / 2)),
            stats,
            shutdown: shutdown_rx,
            tasks: Vec::new(),
            iot_data_url: iot_data_url.clone(),
        };
        startup
            .tasks
            .push(tokio::spawn(crate::broker::serve_data_plane(
                data_plane,
                iot.clone(),
                startup.shutdown.clone(),
            )));

        let mut api_addr = None;
        for function in &stack.functions {
            if let Some(addr) = startup
                .function(function, &options, services.influxd.as_ref())
                .await?
            {
                api_addr = Some(addr);
            }
        }
        let (reader, store_description) = startup.store_reader(&stack, &services).await?;
        let alerts_queue_url = startup
            .subscribe_alerts(&sqs, &stack, &options.stack_name)
            .await?;
        let mqtt_addr = startup
            .iot_core(&stack, options.mqtt, iot.clone(), inbound_rx)
            .await?;
        // What only the local platform knows: where its API and its IoT Data Plane answer.
        let mut local_outputs = vec![("IotDataEndpoint", iot_data_url.clone())];
        local_outputs.extend(api_addr.map(|addr| ("QueryApiUrl", format!("http://{addr}"))));
        let outputs = register_stack(&template, &stack, &startup.sdk, &local_outputs)
            .await
            .map_err(fail)?;

        Ok(Self {
            endpoint: services.endpoint,
            mqtt_addr,
            stack,
            sdk: startup.sdk,
            stats: startup.stats,
            alerts_queue_url,
            queues: startup.queues,
            streams: startup.streams,
            api_addr,
            reader,
            store_description,
            outputs,
            broker: iot,
            iot_data_url,
            shutdown,
            tasks: startup.tasks,
            moto: services.moto,
            influxd: services.influxd,
        })
    }

    /// The physical name (`Ref`) of a template resource, e.g. the rules table.
    pub fn physical(&self, logical_id: &str) -> Option<&str> {
        self.stack
            .stack
            .physical
            .get(logical_id)
            .map(|p| p.reference.as_str())
    }

    /// Messages waiting in or being processed from the ingest function's queues: the backlog
    /// an outage builds and its retries drain.
    pub async fn ingest_backlog(&self) -> Option<usize> {
        let mut total = 0;
        for function in self.stack.functions.iter().filter(|f| f.binary == "ingest") {
            for trigger in &function.triggers {
                total += self.queues.depth(&trigger.queue_url).await?;
            }
            for trigger in &function.stream_triggers {
                total += self.streams.depth(&trigger.stream_name).await?;
            }
        }
        Some(total)
    }

    /// The local influxd, when the platform runs one: its URL and queries for checks.
    pub fn influxd(&self) -> Option<&InfluxProcess> {
        self.influxd.as_ref()
    }

    /// Stop the local influxd as an outage would (its data stays on disk); `None` if the
    /// platform runs none or it is already stopped.
    pub fn stop_influxd(&mut self) -> Option<()> {
        self.influxd.as_mut()?.stop();
        Some(())
    }

    /// Start the local influxd again on the same ports with the same data, after
    /// [`Self::stop_influxd`].
    pub fn restart_influxd(&mut self) -> Result<(), LocalError> {
        match self.influxd.as_mut() {
            Some(process) => process.restart().map_err(fail),
            None => Err(LocalError("this platform runs no influxd".into())),
        }
    }

    /// Stop everything it started; nothing is left listening.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        if let Some(mut moto) = self.moto.take() {
            moto.stop();
        }
        if let Some(mut influxd) = self.influxd.take() {
            influxd.stop();
        }
    }
}

fn start_backing_services(options: &LocalOptions) -> Result<BackingServices, LocalError> {
    let (moto, endpoint) = match &options.endpoint {
        Endpoint::StartMoto { binary, port } => {
            let moto = MotoProcess::start(binary, *port).map_err(fail)?;
            let endpoint = moto.endpoint.clone();
            (Some(moto), endpoint)
        }
        Endpoint::Existing(url) => (None, url.clone()),
    };
    let mut parameters = options.parameters.clone();
    let influxd = match &options.influxdb {
        Some(local) => {
            let process = InfluxProcess::start(&local.binary, &local.data_dir).map_err(fail)?;
            process.create_database("iotdp").map_err(fail)?;
            parameters.insert("TimeSeriesStore".into(), "influxdb".into());
            parameters.insert("InfluxDbUrl".into(), process.url.clone());
            parameters.insert("InfluxDbDatabase".into(), "iotdp".into());
            Some(process)
        }
        None => None,
    };
    Ok(BackingServices {
        endpoint,
        moto,
        influxd,
        parameters,
    })
}

impl Startup {
    /// Run one of the template's functions the way Lambda would: the same handler code the
    /// deployed binary runs. The query API's address, when the function is the API.
    async fn function(
        &mut self,
        function: &Function,
        options: &LocalOptions,
        influxd: Option<&InfluxProcess>,
    ) -> Result<Option<SocketAddr>, LocalError> {
        // Shadows live in the IoT Core stand-in, not in moto; the console signs in where the
        // options say (a test's authorization server), if anywhere.
        let env = |name: &str| match name {
            "IOT_DATA_ENDPOINT" => Some(self.iot_data_url.clone()),
            "CONSOLE_SIGN_IN_URL" if options.console_sign_in.is_some() => {
                options.console_sign_in.as_ref().map(|s| s.base_url.clone())
            }
            "CONSOLE_CLIENT_ID" if options.console_sign_in.is_some() => options
                .console_sign_in
                .as_ref()
                .map(|s| s.client_id.clone()),
            _ => function.environment.get(name).cloned(),
        };
        match function.binary.as_str() {
            "ingest" => {
                self.ingest(function, &IngestConfig::from_lookup(env).map_err(fail)?)
                    .await?;
            }
            "lifecycle" => {
                self.lifecycle(function, &LifecycleConfig::from_lookup(env).map_err(fail)?);
            }
            "api" => {
                let config = ApiConfig::from_lookup(env).map_err(fail)?;
                return self.api(&config, options.api, influxd).await.map(Some);
            }
            "silence-watch" => {
                self.silence_watch(
                    function,
                    &SilenceWatchConfig::from_lookup(env).map_err(fail)?,
                );
            }
            "rollup" => {
                self.rollup(function, &RollupJobConfig::from_lookup(env).map_err(fail)?)
                    .await?;
            }
            "commands" => {
                self.commands(function, &CommandsConfig::from_lookup(env).map_err(fail)?);
            }
            other => {
                return Err(LocalError(format!(
                    "{} runs binary '{other}', which the local platform cannot run",
                    function.logical_id
                )));
            }
        }
        Ok(None)
    }

    async fn ingest(
        &mut self,
        function: &Function,
        config: &IngestConfig,
    ) -> Result<(), LocalError> {
        let service: Arc<AwsIngestService> = Arc::new(
            ingest_service_with(&self.sdk, config)
                .await
                .map_err(|e| LocalError(e.to_string()))?,
        );
        // One runner for both event sources: the same service, one invocation count.
        let runner = Arc::new(IngestRunner {
            service,
            stats: self.stats.clone(),
            timeout: self.invocation_timeout,
            invocations: AtomicU64::new(0),
        });
        let from_queue = runner.clone();
        let handler = Arc::new(move |event: SqsEvent| {
            let runner = from_queue.clone();
            async move {
                let invocation = runner.next_invocation();
                let report = runner.service.handle(&event, &invocation).await;
                runner.finish(report).await
            }
        });
        spawn_sqs_triggers(
            &mut self.tasks,
            function,
            &self.queues,
            handler,
            &self.shutdown,
        );
        // Kinesis: the records as the binary reads them.
        let from_stream = Arc::new(move |event: serde_json::Value| {
            let runner = runner.clone();
            async move {
                let batch: iotdp::ingest::service::IngestBatch = serde_json::from_value(event)
                    .expect("the local event source builds Lambda's Kinesis event");
                let invocation = runner.next_invocation();
                let report = runner.service.handle_batch(&batch, &invocation).await;
                runner.finish(report).await
            }
        });
        for trigger in &function.stream_triggers {
            let consumers = crate::streams::spawn_consumers(
                &self.streams,
                trigger,
                &self.queues,
                from_stream.clone(),
                self.stats.stream.clone(),
                &self.shutdown,
            )
            .map_err(|e| LocalError(format!("{}: {e}", function.logical_id)))?;
            self.tasks.extend(consumers);
        }
        Ok(())
    }

    fn lifecycle(&mut self, function: &Function, config: &LifecycleConfig) {
        let registry = Arc::new(device_registry(&self.sdk, &config.registry_table));
        let stats = self.stats.clone();
        let handler = Arc::new(move |event: SqsEvent| {
            let registry = registry.clone();
            let stats = stats.clone();
            async move {
                let (response, report) = record_presence_events(registry.as_ref(), &event).await;
                stats
                    .presence_events
                    .fetch_add(report.applied, Ordering::Relaxed);
                stats.presence_messages.fetch_add(
                    report.applied + report.ignored + report.malformed,
                    Ordering::Relaxed,
                );
                response
            }
        });
        spawn_sqs_triggers(
            &mut self.tasks,
            function,
            &self.queues,
            handler,
            &self.shutdown,
        );
    }

    async fn api(
        &mut self,
        config: &ApiConfig,
        bind: SocketAddr,
        influxd: Option<&InfluxProcess>,
    ) -> Result<SocketAddr, LocalError> {
        let api = Arc::new(
            query_api(&self.sdk, config)
                .await
                .map_err(|e| LocalError(e.to_string()))?,
        );
        let listener = api_server::bind(bind)
            .await
            .map_err(|e| LocalError(format!("query API listener on {bind}: {e}")))?;
        let addr = listener.local_addr().map_err(fail)?;
        let source: Arc<str> = match (influxd, &config.store) {
            (Some(process), _) => format!("InfluxDB at {}", process.url).into(),
            (None, iotdp::config::StoreConfig::Timestream { .. }) => {
                "moto's Timestream emulation: canned query results, not your readings".into()
            }
            (None, iotdp::config::StoreConfig::InfluxDb { url, .. }) => {
                format!("InfluxDB at {url}").into()
            }
        };
        self.tasks.push(tokio::spawn(api_server::serve(
            listener,
            api,
            source,
            config.console_sign_in.clone().map(Arc::new),
            self.shutdown.clone(),
        )));
        Ok(addr)
    }

    /// The `commands` function: shadow reports from its queue settle commands; its schedule
    /// expires overdue ones.
    fn commands(&mut self, function: &Function, config: &CommandsConfig) {
        let commands = Arc::new(iotdp::wiring::commands(&self.sdk, config));
        let stats = self.stats.clone();
        let reports = commands.clone();
        let handler = Arc::new(move |event: SqsEvent| {
            let commands = reports.clone();
            let stats = stats.clone();
            async move {
                let (response, outcome) = iotdp::commands::shadow_events::settle_reports(
                    commands.as_ref(),
                    &event,
                    chrono::Utc::now().timestamp_millis(),
                )
                .await;
                stats
                    .commands_settled
                    .fetch_add(outcome.settled as u64, Ordering::Relaxed);
                response
            }
        });
        spawn_sqs_triggers(
            &mut self.tasks,
            function,
            &self.queues,
            handler,
            &self.shutdown,
        );
        for &interval in &function.schedules {
            let (commands, stats) = (commands.clone(), self.stats.clone());
            self.tasks.push(tokio::spawn(on_schedule(
                interval,
                false,
                self.shutdown.clone(),
                move || {
                    let (commands, stats) = (commands.clone(), stats.clone());
                    async move {
                        match commands
                            .expire_due(chrono::Utc::now().timestamp_millis())
                            .await
                        {
                            Ok(expired) => {
                                stats
                                    .commands_expired
                                    .fetch_add(expired as u64, Ordering::Relaxed);
                            }
                            Err(e) => tracing::warn!(error = %e, "command expiry sweep failed"),
                        }
                    }
                },
            )));
        }
    }

    fn silence_watch(&mut self, function: &Function, config: &SilenceWatchConfig) {
        let watch = Arc::new(silence_watch(&self.sdk, config));
        for &interval in &function.schedules {
            self.tasks.push(tokio::spawn(run_on_schedule(
                watch.clone(),
                interval,
                self.stats.clone(),
                self.shutdown.clone(),
            )));
        }
    }

    async fn rollup(
        &mut self,
        function: &Function,
        config: &RollupJobConfig,
    ) -> Result<(), LocalError> {
        let job = Arc::new(
            iotdp::wiring::rollup_job(&self.sdk, config)
                .await
                .map_err(|e| LocalError(e.to_string()))?,
        );
        for &interval in &function.schedules {
            self.tasks.push(tokio::spawn(run_rollups_on_schedule(
                job.clone(),
                interval,
                self.stats.clone(),
                self.shutdown.clone(),
            )));
        }
        Ok(())
    }

    /// What the readings can be read back through, and a description of it for the live view.
    async fn store_reader(
        &self,
        stack: &LocalStack,
        services: &BackingServices,
    ) -> Result<(SelectedReader, String), LocalError> {
        let ingest_config = stack
            .functions
            .iter()
            .find(|f| f.binary == "ingest")
            .map(|f| IngestConfig::from_lookup(|name| f.environment.get(name).cloned()))
            .transpose()
            .map_err(fail)?
            .ok_or_else(|| LocalError("the template has no ingest function".into()))?;
        let reader = time_series_reader(&self.sdk, &ingest_config.store)
            .await
            .map_err(|e| LocalError(e.to_string()))?;
        let description = match &services.influxd {
            Some(process) => format!(
                "InfluxDB (influxd at {}, data in {}): real queries",
                process.url,
                process.data_dir.display()
            ),
            None => format!(
                "{} emulated by moto at {}: stores records, but moto answers queries only with canned results",
                reader.describe(),
                services.endpoint
            ),
        };
        Ok((reader, description))
    }

    /// A queue subscribed to every SNS topic of the stack, watched for the live view: the
    /// alerts a subscriber would get. Its URL.
    async fn subscribe_alerts(
        &mut self,
        sqs: &aws_sdk_sqs::Client,
        stack: &LocalStack,
        stack_name: &str,
    ) -> Result<String, LocalError> {
        let queue_name = format!("{stack_name}-live-view-alerts");
        let queue_url = sqs
            .create_queue()
            .queue_name(&queue_name)
            .send()
            .await
            .map_err(|e| fail(aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .queue_url()
            .unwrap_or_default()
            .to_owned();
        let sns = aws_sdk_sns::Client::new(&self.sdk);
        for topic in &stack.topics {
            sns.subscribe()
                .topic_arn(topic)
                .protocol("sqs")
                .endpoint(format!(
                    "arn:aws:sqs:{LOCAL_REGION}:123456789012:{queue_name}"
                ))
                .send()
                .await
                .map_err(|e| fail(aws_sdk_sns::error::DisplayErrorContext(e)))?;
        }
        self.tasks.push(tokio::spawn(watch_alerts(
            sqs.clone(),
            queue_url.clone(),
            self.stats.clone(),
            self.shutdown.clone(),
        )));
        Ok(queue_url)
    }

    /// IoT Core: the broker, and the rules engine that hands its publishes to the queues.
    async fn iot_core(
        &mut self,
        stack: &LocalStack,
        mqtt: SocketAddr,
        iot: Arc<Broker>,
        inbound_rx: mpsc::Receiver<InboundPublish>,
    ) -> Result<SocketAddr, LocalError> {
        let listener = broker::bind(mqtt)
            .await
            .map_err(|e| LocalError(format!("MQTT listener on {mqtt}: {e}")))?;
        let addr = listener.local_addr().map_err(fail)?;
        self.tasks.push(tokio::spawn(broker::serve(listener, iot)));
        self.tasks.push(tokio::spawn(rules_engine(
            stack.clone(),
            self.queues.clone(),
            self.streams.clone(),
            inbound_rx,
            self.stats.clone(),
        )));
        Ok(addr)
    }
}

impl Drop for LocalPlatform {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Poll a function's SQS triggers with Lambda's event-source semantics.
fn spawn_sqs_triggers<H, F>(
    tasks: &mut Vec<JoinHandle<()>>,
    function: &crate::provision::Function,
    queues: &QueueBackend,
    handler: Arc<H>,
    shutdown: &watch::Receiver<bool>,
) where
    H: Fn(SqsEvent) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = aws_lambda_events::event::sqs::SqsBatchResponse>
        + Send
        + 'static,
{
    for trigger in &function.triggers {
        for _ in 0..trigger.max_concurrency.clamp(1, 4) {
            tasks.push(tokio::spawn(event_source::run(
                queues.clone(),
                trigger.clone(),
                handler.clone(),
                shutdown.clone(),
            )));
        }
    }
}

/// EventBridge's schedule, locally: `run` every `interval` until shutdown, the first run one
/// interval away as EventBridge's is, or at once with `at_once`.
async fn on_schedule<F, Fut>(
    interval: Duration,
    at_once: bool,
    mut shutdown: watch::Receiver<bool>,
    mut run: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(interval);
    if !at_once {
        ticks.tick().await; // the first tick is immediate
    }
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.changed() => return,
        }
        run().await;
    }
}

/// The silence watch on its schedule.
async fn run_on_schedule(
    watch: Arc<AwsSilenceWatch>,
    interval: Duration,
    stats: Arc<PlatformStats>,
    shutdown: watch::Receiver<bool>,
) {
    on_schedule(interval, false, shutdown, || async {
        match watch.run(chrono::Utc::now()).await {
            Ok(report) => {
                stats.silence_runs.fetch_add(1, Ordering::Relaxed);
                stats
                    .no_data_raised
                    .fetch_add(report.raised, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "silence watch run failed"),
        }
    })
    .await;
}

/// EventBridge's schedule for the rollup job. Its first run is at once, so the live view shows
/// the watermark from the start.
async fn run_rollups_on_schedule(
    job: Arc<iotdp::wiring::AwsRollupJob>,
    interval: Duration,
    stats: Arc<PlatformStats>,
    shutdown: watch::Receiver<bool>,
) {
    on_schedule(interval, true, shutdown, || async {
        match job.run(chrono::Utc::now().timestamp_millis()).await {
            Ok(report) => {
                stats.rollup_runs.fetch_add(1, Ordering::Relaxed);
                stats
                    .rollup_windows
                    .fetch_add(report.windows as u64, Ordering::Relaxed);
                stats
                    .rollup_late_windows
                    .fetch_add(report.late_windows as u64, Ordering::Relaxed);
                stats
                    .rollup_rows
                    .fetch_add(report.rows_written as u64, Ordering::Relaxed);
                stats.rollup_lag_ms.store(report.lag_ms, Ordering::Relaxed);
            }
            Err(e) => {
                stats.rollup_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "rollup job run failed");
            }
        }
    })
    .await;
}

/// An SDK configuration for the local endpoint with dummy credentials.
pub async fn local_sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(LOCAL_REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "iotdp-local",
        ))
        .load()
        .await
}

/// Every publish through every rule; outputs to SQS in batches of up to 10 (SendMessageBatch),
/// or to a Kinesis stream record by record (PutRecord, keyed by the action's partition key).
async fn rules_engine(
    stack: LocalStack,
    queues: QueueBackend,
    streams: Arc<InProcessStreams>,
    mut inbound: mpsc::Receiver<InboundPublish>,
    stats: Arc<PlatformStats>,
) {
    let mut senders: HashMap<String, mpsc::Sender<String>> = HashMap::new();
    for rule in &stack.rules {
        for action in rule.actions.iter().chain(&rule.error_action) {
            let RuleAction::Sqs { queue_url } = action else {
                continue;
            };
            senders.entry(queue_url.clone()).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(HOT_PATH_BUFFER);
                tokio::spawn(batch_sender(queues.clone(), queue_url.clone(), rx));
                tx
            });
        }
    }
    while let Some(publish) = inbound.recv().await {
        // Basic Ingest: `$aws/rules/<rule>/<topic>` goes to that rule alone, which sees
        // `<topic>` (IoT Core's topic() leaves the prefix out).
        let basic_ingest = crate::rule_sql::basic_ingest(&publish.topic);
        let message = Message {
            topic: basic_ingest.map_or(publish.topic.as_str(), |(_, topic)| topic),
            payload: &publish.payload,
            client_id: &publish.client_id,
            received_at_ms: publish.received_at_ms,
        };
        for rule in stack
            .rules
            .iter()
            .filter(|r| basic_ingest.is_none_or(|(name, _)| r.rule_name == name))
        {
            let (output, error) = match rule.query.apply(&message) {
                Ok(None) => continue,
                Ok(Some(output)) => (Some(output), None),
                Err(e) => (None, Some(e.to_string())),
            };
            stats.rule_matches.fetch_add(1, Ordering::Relaxed);
            let body = match (output, error) {
                (Some(output), _) => Some(output.to_string()),
                (None, Some(error)) => {
                    stats.rule_errors.fetch_add(1, Ordering::Relaxed);
                    if let Some(RuleAction::Sqs { queue_url }) = &rule.error_action
                        && let Some(sender) = senders.get(queue_url)
                    {
                        // IoT Core's error-action document.
                        let document = json!({
                            "ruleName": rule.name,
                            "topic": publish.topic,
                            "clientId": publish.client_id,
                            "base64OriginalPayload": base64::engine::general_purpose::STANDARD.encode(&publish.payload),
                            "failures": [{"failedAction": "RuleEvaluation", "errorMessage": error}],
                        });
                        let _ = sender.send(document.to_string()).await;
                    }
                    None
                }
                (None, None) => None,
            };
            let Some(body) = body else { continue };
            for action in &rule.actions {
                match action {
                    RuleAction::Sqs { queue_url } => {
                        if let Some(sender) = senders.get(queue_url) {
                            stats.queued.fetch_add(1, Ordering::Relaxed);
                            let _ = sender.send(body.clone()).await;
                        }
                    }
                    RuleAction::Kinesis {
                        stream_name,
                        partition_key,
                    } => {
                        let key = partition_key.apply(&message);
                        match streams
                            .put(stream_name, &key, body.clone().into_bytes())
                            .await
                        {
                            Ok(_) => {
                                stats.queued.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => tracing::error!(error = %e, "rule action PutRecord failed"),
                        }
                    }
                }
            }
        }
    }
}

/// Rule-action output to a queue, in batches (SQS's SendMessageBatch takes 10; the
/// in-process queues take what is waiting, up to 1,000).
async fn batch_sender(queues: QueueBackend, queue_url: String, mut bodies: mpsc::Receiver<String>) {
    let in_flight = Arc::new(Semaphore::new(16));
    let limit = match queues {
        QueueBackend::Moto(_) => 10,
        QueueBackend::InProcess(_) => 1000,
    };
    while let Some(first) = bodies.recv().await {
        let mut batch = vec![first];
        while batch.len() < limit {
            match bodies.try_recv() {
                Ok(body) => batch.push(body),
                Err(_) => break,
            }
        }
        let permit = in_flight.clone().acquire_owned().await;
        let (queues, queue_url) = (queues.clone(), queue_url.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let count = batch.len();
            for attempt in 0..5u64 {
                match queues.send(&queue_url, batch.clone()).await {
                    Ok(()) => return,
                    Err(e) if attempt == 4 => {
                        tracing::error!(error = %e, queue_url, "rule action send failed after 5 attempts; {count} messages not delivered");
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100 << attempt)).await,
                }
            }
        });
    }
}

async fn watch_alerts(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    stats: Arc<PlatformStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        let received = tokio::select! {
            r = sqs.receive_message().queue_url(&queue_url).max_number_of_messages(10).wait_time_seconds(1).send() => r,
            _ = shutdown.changed() => return,
        };
        let Ok(received) = received else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        for m in received.messages() {
            let envelope: serde_json::Value =
                serde_json::from_str(m.body().unwrap_or_default()).unwrap_or_default();
            let body: serde_json::Value =
                serde_json::from_str(envelope["Message"].as_str().unwrap_or_default())
                    .unwrap_or_default();
            match body["kind"].as_str() {
                Some("alarm") => stats.alerts_raised.fetch_add(1, Ordering::Relaxed),
                Some("ok") => stats.alerts_cleared.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
            let mut recent = stats.recent_alerts.lock().await;
            recent.push_front(envelope["Subject"].as_str().unwrap_or_default().to_owned());
            recent.truncate(5);
            if let Some(handle) = m.receipt_handle() {
                let _ = sqs
                    .delete_message()
                    .queue_url(&queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
        }
    }
}
