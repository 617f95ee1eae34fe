//! Why the local platform did not start, or could not do what it was asked. Every message
//! starts with `local platform:`, then names the part that failed.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::influxd::InfluxdError;
use crate::moto::MotoError;
use crate::provision::ProvisionError;
use crate::streams::NoSuchStream;
use crate::template::TemplateError;
use iotdp::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The template file cannot be read: check `--template`.
    #[error("local platform: {}: {source}", path.display())]
    TemplateUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("local platform: {0}")]
    Template(#[from] TemplateError),
    #[error("local platform: {0}")]
    Moto(#[from] MotoError),
    #[error("local platform: {0}")]
    Influxd(#[from] InfluxdError),
    #[error("local platform: {0}")]
    Provision(#[from] ProvisionError),
    /// A listener's address is taken or cannot be bound: choose another with its option.
    #[error("local platform: {listener} listener on {addr}: {source}")]
    Listener {
        listener: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// A function's environment, as the template sets it, does not configure it.
    #[error("local platform: {0}")]
    Config(#[from] ConfigError),
    /// A function's clients or store could not be built from its configuration.
    #[error("local platform: {0}")]
    Wiring(#[source] aws_sdk_timestreamwrite::error::BoxError),
    /// The template names a binary the platform has no handler for: add one to
    /// `platform::functions`.
    #[error(
        "local platform: {function} runs binary '{binary}', which the local platform cannot run"
    )]
    UnknownBinary { function: String, binary: String },
    /// A Kinesis event source mapping names a stream the stack does not have.
    #[error("local platform: {function}: {source}")]
    StreamTrigger {
        function: String,
        source: NoSuchStream,
    },
    /// The read-back path needs the ingest function's store configuration.
    #[error("local platform: the template has no ingest function")]
    NoIngestFunction,
    /// The endpoint refused the live view's alert queue or its subscription to a topic; the
    /// SDK's message, with its cause.
    #[error("local platform: {message}")]
    AlertSubscription { message: String },
    /// influxd was asked for, but the platform was started without `influxdb`.
    #[error("local platform: this platform runs no influxd")]
    NoInfluxd,
}
