//! `lifecycle` Lambda: wiring only. IoT Core's connect/disconnect events arrive through SQS
//! and are recorded in the device registry.

use iotdp::config::FromEnvironment;
use iotdp::config::LifecycleConfig;
use iotdp::lambda::lifecycle::handle_lifecycle_event;
use iotdp::wiring::{device_registry, load_sdk_config};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = LifecycleConfig::from_env()?;
    let registry = device_registry(&load_sdk_config().await, &config.registry_table);
    lambda_runtime::run(service_fn(|event| handle_lifecycle_event(&registry, event))).await
}
