//! What the start-up steps share, and the steps around the functions: the read-back path, the
//! alert subscriber and IoT Core.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::alerts::watch_alerts;
use super::backing::BackingServices;
use super::rules_engine::rules_engine;
use super::{LocalError, LocalOptions, PlatformStats, QueueMode};
use crate::broker::{self, Broker, InboundPublish};
use crate::event_source;
use crate::provision::{Function, LOCAL_ACCOUNT, LOCAL_REGION, LocalStack, QueueSpec};
use crate::queues::{InProcessQueues, QueueBackend};
use crate::streams::InProcessStreams;
use iotdp::config::{FromEnvironment, IngestConfig, StoreConfig};
use iotdp::wiring::{SelectedReader, time_series_reader};

/// What the start-up steps share: the SDK, the hot path's queues, the live view's figures,
/// and every task they spawn (stopped together by `shutdown`).
pub(super) struct Startup {
    pub(super) sdk: SdkConfig,
    /// How long an ingest invocation may run ([`LocalOptions::invocation_timeout`]).
    pub(super) invocation_timeout: Duration,
    pub(super) queues: QueueBackend,
    pub(super) streams: Arc<InProcessStreams>,
    pub(super) stats: Arc<PlatformStats>,
    pub(super) shutdown: watch::Receiver<bool>,
    pub(super) tasks: Vec<JoinHandle<()>>,
    /// The IoT Data Plane stand-in every function's `IOT_DATA_ENDPOINT` names.
    pub(super) iot_data_url: String,
    /// What a function runs without locally, and why (listed with the resources not emulated).
    pub(super) notes: Vec<String>,
}

impl Startup {
    pub(super) fn new(
        sdk: SdkConfig,
        options: &LocalOptions,
        stack: &LocalStack,
        stats: Arc<PlatformStats>,
        shutdown: watch::Receiver<bool>,
        iot_data_url: String,
    ) -> Self {
        Self {
            queues: queue_backend(
                options.queues,
                &aws_sdk_sqs::Client::new(&sdk),
                &stack.queues,
                options.visibility_timeout_cap,
            ),
            streams: Arc::new(InProcessStreams::new(stack.streams.iter().cloned())),
            invocation_timeout: options.invocation_timeout(),
            sdk,
            stats,
            shutdown,
            tasks: Vec::new(),
            iot_data_url,
            notes: Vec::new(),
        }
    }

    /// What the readings can be read back through, and a description of it for the live view.
    pub(super) async fn store_reader(
        &self,
        stack: &LocalStack,
        services: &BackingServices,
    ) -> Result<(SelectedReader, String), LocalError> {
        let ingest_config = stack
            .functions
            .iter()
            .find(|f| f.binary == "ingest")
            .map(|f| IngestConfig::from_lookup(|name| f.environment.get(name).cloned()))
            .transpose()?
            .ok_or(LocalError::NoIngestFunction)?;
        let reader = time_series_reader(&self.sdk, &ingest_config.store)
            .await
            .map_err(LocalError::Wiring)?;
        let description = match &services.influxd {
            Some(process) => format!(
                "InfluxDB (influxd at {}, data in {}): real queries",
                process.url,
                process.data_dir.display()
            ),
            None => match &ingest_config.store {
                StoreConfig::Lake { bucket } => format!(
                    "{} in moto's S3 at {}, bucket {bucket}: real queries",
                    reader.describe(),
                    services.endpoint
                ),
                _ => format!(
                    "{} emulated by moto at {}: stores records, but moto answers queries only with canned results",
                    reader.describe(),
                    services.endpoint
                ),
            },
        };
        Ok((reader, description))
    }

    /// A queue subscribed to every SNS topic of the stack, watched for the live view: the
    /// alerts a subscriber would get. Its URL.
    pub(super) async fn subscribe_alerts(
        &mut self,
        sqs: &aws_sdk_sqs::Client,
        stack: &LocalStack,
        stack_name: &str,
    ) -> Result<String, LocalError> {
        let refused = |e: &dyn std::fmt::Display| LocalError::AlertSubscription {
            message: e.to_string(),
        };
        let queue_name = format!("{stack_name}-live-view-alerts");
        let queue_url = sqs
            .create_queue()
            .queue_name(&queue_name)
            .send()
            .await
            .map_err(|e| refused(&aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .queue_url()
            .unwrap_or_default()
            .to_owned();
        let sns = aws_sdk_sns::Client::new(&self.sdk);
        for topic in &stack.topics {
            sns.subscribe()
                .topic_arn(topic)
                .protocol("sqs")
                .endpoint(format!(
                    "arn:aws:sqs:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{queue_name}"
                ))
                .send()
                .await
                .map_err(|e| refused(&aws_sdk_sns::error::DisplayErrorContext(e)))?;
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
    pub(super) async fn iot_core(
        &mut self,
        stack: &LocalStack,
        mqtt: SocketAddr,
        iot: Arc<Broker>,
        inbound_rx: mpsc::Receiver<InboundPublish>,
    ) -> Result<SocketAddr, LocalError> {
        let listener_error = |source| LocalError::Listener {
            listener: "MQTT",
            addr: mqtt,
            source,
        };
        let listener = broker::bind(mqtt).await.map_err(listener_error)?;
        let addr = listener.local_addr().map_err(listener_error)?;
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

    /// Poll a function's SQS triggers with Lambda's event-source semantics: as many pollers
    /// as its `MaximumConcurrency`, from one up to four.
    pub(super) fn spawn_sqs_triggers<H, F>(&mut self, function: &Function, handler: Arc<H>)
    where
        H: Fn(SqsEvent) -> F + Send + Sync + 'static,
        F: std::future::Future<Output = SqsBatchResponse> + Send + 'static,
    {
        for trigger in &function.triggers {
            for _ in 0..trigger.max_concurrency.clamp(1, 4) {
                self.tasks.push(tokio::spawn(event_source::run(
                    self.queues.clone(),
                    trigger.clone(),
                    handler.clone(),
                    self.shutdown.clone(),
                )));
            }
        }
    }
}

/// The queues the hot path runs on: moto's SQS, or the stack's queues in process with their
/// visibility timeouts at most `visibility_timeout_cap`.
fn queue_backend(
    mode: QueueMode,
    sqs: &aws_sdk_sqs::Client,
    queues: &[QueueSpec],
    visibility_timeout_cap: Option<Duration>,
) -> QueueBackend {
    match mode {
        QueueMode::Moto => QueueBackend::Moto(sqs.clone()),
        QueueMode::InProcess => {
            let cap = visibility_timeout_cap.unwrap_or(Duration::MAX);
            let specs = queues.iter().cloned().map(|mut spec| {
                spec.visibility_timeout = spec.visibility_timeout.min(cap);
                spec
            });
            QueueBackend::InProcess(Arc::new(InProcessQueues::new(specs)))
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::platform::backing::local_sdk_config;
    use crate::platform::options::tests::options;
    use crate::provision::SqsTrigger;

    pub(in crate::platform) const QUEUE: &str = "http://127.0.0.1:9/123456789012/ingest";

    /// A stack with one queue (the template's 360 s visibility timeout) and no resources else.
    pub(in crate::platform) fn stack() -> LocalStack {
        LocalStack {
            stack: crate::template::Stack {
                name: "iotdp-test".into(),
                region: LOCAL_REGION.into(),
                account_id: LOCAL_ACCOUNT.into(),
                parameters: Default::default(),
                physical: Default::default(),
            },
            rules: vec![],
            functions: vec![],
            topics: vec![],
            queues: vec![QueueSpec {
                url: QUEUE.into(),
                visibility_timeout: Duration::from_secs(360),
                redrive: None,
            }],
            streams: vec![],
            policies: vec![],
            not_emulated: vec![],
        }
    }

    /// Start-up state over an endpoint nothing listens on: nothing in it calls AWS until a
    /// function runs.
    pub(in crate::platform) async fn startup(options: &LocalOptions) -> Startup {
        let sdk = local_sdk_config("http://127.0.0.1:9").await;
        let (_, shutdown) = watch::channel(false);
        Startup::new(
            sdk,
            options,
            &stack(),
            Arc::default(),
            shutdown,
            "http://127.0.0.1:9".into(),
        )
    }

    pub(in crate::platform) fn function(binary: &str, concurrency: &[usize]) -> Function {
        Function {
            logical_id: format!("{binary}Function"),
            binary: binary.into(),
            environment: Default::default(),
            triggers: concurrency
                .iter()
                .map(|&max_concurrency| SqsTrigger {
                    queue_url: QUEUE.into(),
                    batch_size: 10,
                    window_seconds: 0,
                    report_batch_item_failures: true,
                    max_concurrency,
                })
                .collect(),
            stream_triggers: vec![],
            schedules: vec![],
            http_api: false,
        }
    }

    async fn received_again_after(queues: &QueueBackend, wait: Duration) -> bool {
        queues.send(QUEUE, vec!["m".into()]).await.unwrap();
        let first = queues.receive(QUEUE, 10, Duration::ZERO).await.unwrap();
        assert_eq!(first.len(), 1);
        tokio::time::sleep(wait).await;
        !queues
            .receive(QUEUE, 10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    }

    #[tokio::test(start_paused = true)]
    async fn the_visibility_timeout_cap_brings_an_unfinished_message_back_sooner() {
        let sqs = aws_sdk_sqs::Client::new(&local_sdk_config("http://127.0.0.1:9").await);
        let capped = queue_backend(
            QueueMode::InProcess,
            &sqs,
            &stack().queues,
            Some(Duration::from_secs(5)),
        );
        assert!(received_again_after(&capped, Duration::from_secs(6)).await);
        let template_timeout = queue_backend(QueueMode::InProcess, &sqs, &stack().queues, None);
        assert!(!received_again_after(&template_timeout, Duration::from_secs(6)).await);
        assert!(matches!(
            queue_backend(QueueMode::Moto, &sqs, &stack().queues, None),
            QueueBackend::Moto(_)
        ));
    }

    #[tokio::test]
    async fn each_trigger_gets_one_to_four_pollers() {
        let mut startup = startup(&options()).await;
        let handler = Arc::new(|_: SqsEvent| async { SqsBatchResponse::default() });
        startup.spawn_sqs_triggers(&function("lifecycle", &[10, 0, 2]), handler);
        assert_eq!(startup.tasks.len(), 4 + 1 + 2);
        for task in &startup.tasks {
            task.abort();
        }
    }

    #[tokio::test]
    async fn the_read_back_path_needs_an_ingest_function() {
        let startup = startup(&options()).await;
        let services = BackingServices {
            endpoint: "http://127.0.0.1:9".into(),
            moto: None,
            influxd: None,
            parameters: Default::default(),
        };
        let Err(e) = startup.store_reader(&stack(), &services).await else {
            panic!("a reader without an ingest function");
        };
        assert!(matches!(e, LocalError::NoIngestFunction), "{e:?}");
        assert_eq!(
            e.to_string(),
            "local platform: the template has no ingest function"
        );
    }
}
