//! The local platform started, watched and stopped as one.
//!
//! Start-up goes step by step: the backing services (`backing`), the stack's resources
//! (`crate::provision`), each function (`functions`), the read-back path, the alert
//! subscriber (`alerts`) and IoT Core with its rules engine (`rules_engine`), all sharing one
//! [`startup::Startup`]; the functions' schedules are in `schedules`.

mod alerts;
mod backing;
mod error;
mod functions;
mod options;
mod rules_engine;
mod schedules;
mod startup;
mod stats;

use std::net::SocketAddr;
use std::sync::Arc;

use aws_config::SdkConfig;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::broker::{self, Broker, InboundPublish};
use crate::influxd::InfluxProcess;
use crate::moto::MotoProcess;
use crate::provision::{LocalStack, provision, register_stack};
use crate::queues::QueueBackend;
use crate::streams::InProcessStreams;
use crate::template::Template;
use backing::start_backing_services;
use iotdp::wiring::SelectedReader;
use rules_engine::HOT_PATH_BUFFER;
use startup::Startup;

pub use backing::local_sdk_config;
pub use error::LocalError;
pub use options::{Endpoint, LocalInfluxDb, LocalOptions, QueueMode};
pub use stats::PlatformStats;

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

impl LocalPlatform {
    /// Start everything `template.yaml` defines, step by step: backing services, the stack's
    /// resources, the functions, the read-back path, the alert subscriber, then IoT Core.
    pub async fn start(options: LocalOptions) -> Result<Self, LocalError> {
        let text = std::fs::read_to_string(&options.template).map_err(|source| {
            LocalError::TemplateUnreadable {
                path: options.template.clone(),
                source,
            }
        })?;
        let template = Template::parse(&text)?;
        let services = start_backing_services(&options)?;
        let sdk = local_sdk_config(&services.endpoint).await;
        let mut stack = provision(
            &template,
            &options.stack_name,
            &services.parameters,
            &sdk,
            &services.endpoint,
        )
        .await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let stats = Arc::new(PlatformStats::default());
        // IoT Core's two faces come up first, so every function can be given the data plane's
        // address; the MQTT listener starts accepting after the functions run.
        let (inbound, inbound_rx) = mpsc::channel::<InboundPublish>(HOT_PATH_BUFFER);
        let iot = Broker::new(inbound, stats.broker.clone());
        let data_plane_error = |source| LocalError::Listener {
            listener: "IoT Data Plane",
            addr: options.iot_data,
            source,
        };
        let data_plane = broker::bind(options.iot_data)
            .await
            .map_err(data_plane_error)?;
        let iot_data_url = format!(
            "http://{}",
            data_plane.local_addr().map_err(data_plane_error)?
        );
        let mut startup = Startup::new(
            sdk,
            &options,
            &stack,
            stats,
            shutdown_rx,
            iot_data_url.clone(),
        );
        startup.tasks.push(tokio::spawn(broker::serve_data_plane(
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
        stack.not_emulated.append(&mut startup.notes);
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
        let outputs = register_stack(&template, &stack, &startup.sdk, &local_outputs).await?;

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
            Some(process) => Ok(process.restart()?),
            None => Err(LocalError::NoInfluxd),
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

impl Drop for LocalPlatform {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
