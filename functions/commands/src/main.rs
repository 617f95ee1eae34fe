//! `commands` Lambda: wiring only. The shadow-documents queue tells it what devices report,
//! which settles their pending commands; EventBridge's schedule expires the overdue ones.

use iotdp::config::{CommandsConfig, FromEnvironment};
use iotdp::lambda::commands::handle_commands_event;
use iotdp::wiring::{commands, load_sdk_config};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = CommandsConfig::from_env()?;
    let commands = commands(&load_sdk_config().await, &config);
    lambda_runtime::run(service_fn(|event| handle_commands_event(&commands, event))).await
}
