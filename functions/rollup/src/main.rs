//! `rollup` Lambda (EventBridge schedule): wiring only. Computes the 1-minute windows closed
//! since the last run and the windows late readings marked, then the hours and days they touch.

use iotdp::config::FromEnvironment;
use iotdp::config::RollupJobConfig;
use iotdp::lambda::rollup::handle_scheduled_run;
use iotdp::wiring::{load_sdk_config, rollup_job};
use lambda_runtime::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = RollupJobConfig::from_env()?;
    let job = rollup_job(&load_sdk_config().await, &config).await?;
    lambda_runtime::run(service_fn(|event| handle_scheduled_run(&job, event))).await
}
