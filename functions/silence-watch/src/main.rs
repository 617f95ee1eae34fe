//! `silence-watch` Lambda (EventBridge schedule): wiring only. Raises and clears `no_data`
//! alerts for devices silent longer than their heartbeat.

use iotdp::config::FromEnvironment;
use iotdp::config::SilenceWatchConfig;
use iotdp::lambda::silence_watch::handle_scheduled_run;
use iotdp::wiring::{load_sdk_config, silence_watch};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = SilenceWatchConfig::from_env()?;
    let watch = silence_watch(&load_sdk_config().await, &config);
    lambda_runtime::run(service_fn(|event| handle_scheduled_run(&watch, event))).await
}
