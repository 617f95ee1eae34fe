//! `ingest` Lambda: wiring only. Configuration is validated before the runtime starts, so a
//! missing variable fails the init with its name instead of failing every batch.

// The handler's future nests registry, store and alerting futures deeper than rustc's default
// query depth of 128.
#![recursion_limit = "256"]

use iotdp::config::FromEnvironment;
use iotdp::config::IngestConfig;
use iotdp::lambda::ingest::handle_lambda_event;
use iotdp::wiring::ingest_service;
use lambda_runtime::{Error, service_fn};

/// One thread: Lambda gives a function at most a few vCPUs and runs one invocation at a time,
/// and the handler's work is concurrent I/O. A multi-threaded scheduler spent more CPU waking
/// and parking its workers than it saved.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = IngestConfig::from_env()?;
    let service = ingest_service(&config).await?;
    lambda_runtime::run(service_fn(|event| handle_lambda_event(&service, event))).await
}
