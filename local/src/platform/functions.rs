//! The template's functions run the way Lambda would: the same handler code the deployed
//! binaries run, on the local event sources and schedules.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

use super::schedules::{
    run_command_expiry_on_schedule, run_rollups_on_schedule, run_silence_watch_on_schedule,
};
use super::startup::Startup;
use super::{LocalError, LocalOptions, PlatformStats};
use crate::api_server;
use crate::influxd::InfluxProcess;
use crate::provision::Function;
use iotdp::config::{
    ApiConfig, CommandsConfig, FromEnvironment, IngestConfig, LifecycleConfig, RollupJobConfig,
    SilenceWatchConfig, StoreConfig,
};
use iotdp::devices::presence::record_presence_events;
use iotdp::ingest::service::{IngestReport, Invocation};
use iotdp::lambda::ingest::IngestBatch;
use iotdp::wiring::{AwsIngestService, device_registry, ingest_service_with, query_api};

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

    async fn finish(&self, report: IngestReport) -> SqsBatchResponse {
        self.stats.invocations.fetch_add(1, Ordering::Relaxed);
        self.stats.ingest.lock().await.add(&report.metrics);
        iotdp::lambda::batch_response(&report.failed_items)
    }
}

impl Startup {
    /// Run one of the template's functions: its configuration read from the template's
    /// environment, as its binary reads it. The query API's address, when the function is the
    /// API.
    pub(super) async fn function(
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
                self.ingest(function, &IngestConfig::from_lookup(env)?)
                    .await?;
            }
            "lifecycle" => self.lifecycle(function, &LifecycleConfig::from_lookup(env)?),
            "api" => {
                let config = ApiConfig::from_lookup(env)?;
                return self.api(&config, options.api, influxd).await.map(Some);
            }
            "silence-watch" => {
                self.silence_watch(function, &SilenceWatchConfig::from_lookup(env)?);
            }
            "rollup" => {
                self.rollup(function, &RollupJobConfig::from_lookup(env)?)
                    .await?;
            }
            "commands" => self.commands(function, &CommandsConfig::from_lookup(env)?),
            other => {
                return Err(LocalError::UnknownBinary {
                    function: function.logical_id.clone(),
                    binary: other.to_owned(),
                });
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
                .map_err(LocalError::Wiring)?,
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
                let report =
                    iotdp::lambda::ingest::handle_sqs_event(&runner.service, &event, &invocation)
                        .await;
                runner.finish(report).await
            }
        });
        self.spawn_sqs_triggers(function, handler);
        // Kinesis: the records as the binary reads them.
        let from_stream = Arc::new(move |event: serde_json::Value| {
            let runner = runner.clone();
            async move {
                let batch: IngestBatch = serde_json::from_value(event)
                    .expect("the local event source builds Lambda's Kinesis event");
                let invocation = runner.next_invocation();
                let report =
                    iotdp::lambda::ingest::handle_batch(&runner.service, &batch, &invocation).await;
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
            .map_err(|source| LocalError::StreamTrigger {
                function: function.logical_id.clone(),
                source,
            })?;
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
                let (failed_items, report) =
                    record_presence_events(registry.as_ref(), iotdp::lambda::sqs_messages(&event))
                        .await;
                stats
                    .presence_events
                    .fetch_add(report.applied, Ordering::Relaxed);
                stats.presence_messages.fetch_add(
                    report.applied + report.ignored + report.malformed,
                    Ordering::Relaxed,
                );
                iotdp::lambda::batch_response(&failed_items)
            }
        });
        self.spawn_sqs_triggers(function, handler);
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
                .map_err(LocalError::Wiring)?,
        );
        let listener_error = |source| LocalError::Listener {
            listener: "query API",
            addr: bind,
            source,
        };
        let listener = api_server::bind(bind).await.map_err(listener_error)?;
        let addr = listener.local_addr().map_err(listener_error)?;
        let source: Arc<str> = match (influxd, &config.store) {
            (Some(process), _) => format!("InfluxDB at {}", process.url).into(),
            (None, StoreConfig::Timestream { .. }) => {
                "moto's Timestream emulation: canned query results, not your readings".into()
            }
            (None, StoreConfig::InfluxDb { url, .. }) => format!("InfluxDB at {url}").into(),
            (None, StoreConfig::Lake { bucket }) => {
                format!("the lake in moto's S3, bucket {bucket}").into()
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
                let (failed_items, outcome) = iotdp::commands::shadow_events::settle_reports(
                    commands.as_ref(),
                    iotdp::lambda::sqs_messages(&event),
                    chrono::Utc::now().timestamp_millis(),
                )
                .await;
                stats
                    .commands_settled
                    .fetch_add(outcome.settled as u64, Ordering::Relaxed);
                iotdp::lambda::batch_response(&failed_items)
            }
        });
        self.spawn_sqs_triggers(function, handler);
        for &interval in &function.schedules {
            self.tasks.push(tokio::spawn(run_command_expiry_on_schedule(
                commands.clone(),
                interval,
                self.stats.clone(),
                self.shutdown.clone(),
            )));
        }
    }

    fn silence_watch(&mut self, function: &Function, config: &SilenceWatchConfig) {
        let watch = Arc::new(iotdp::wiring::silence_watch(&self.sdk, config));
        for &interval in &function.schedules {
            self.tasks.push(tokio::spawn(run_silence_watch_on_schedule(
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
                .map_err(LocalError::Wiring)?,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::options::tests::options;
    use crate::platform::startup::tests::{function, startup};

    #[tokio::test]
    async fn a_binary_without_a_local_handler_stops_start_up_by_name() {
        let mut startup = startup(&options()).await;
        let Err(e) = startup
            .function(&function("firmware", &[1]), &options(), None)
            .await
        else {
            panic!("an unknown binary ran");
        };
        assert_eq!(
            e.to_string(),
            "local platform: firmwareFunction runs binary 'firmware', which the local platform cannot run"
        );
        assert!(startup.tasks.is_empty());
    }

    #[tokio::test]
    async fn a_function_runs_with_the_templates_environment_or_says_what_is_missing() {
        let mut startup = startup(&options()).await;
        let mut lifecycle = function("lifecycle", &[3]);
        let Err(e) = startup.function(&lifecycle, &options(), None).await else {
            panic!("the lifecycle function ran without its registry table");
        };
        assert!(matches!(e, LocalError::Config(_)), "{e:?}");
        assert!(e.to_string().contains("DEVICE_REGISTRY_TABLE"), "{e}");

        lifecycle
            .environment
            .insert("DEVICE_REGISTRY_TABLE".into(), "registry".into());
        let api = startup
            .function(&lifecycle, &options(), None)
            .await
            .unwrap();
        assert_eq!(api, None, "only the API function answers on an address");
        assert_eq!(startup.tasks.len(), 3, "a poller per unit of concurrency");
        for task in &startup.tasks {
            task.abort();
        }
    }
}
