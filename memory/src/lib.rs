//! In-memory adapters: for tests of the use cases, and for trying the pipeline without AWS.
//! One file per feature's ports; [`reader`] answers the read port over [`MemoryStore`], the
//! reference the stores' readers are held to; [`rollup_check`] replays late-data scenarios
//! through the rollup job and computes each tier's expected rows the plain way.

mod alerting;
mod commands;
mod ingest;
mod reader;
mod registry;
mod rollup;
pub mod rollup_check;

pub use alerting::*;
pub use commands::*;
pub use ingest::*;
pub use registry::*;
pub use rollup::*;

/// The query API over the in-memory adapters, commands included: what the API's tests and the
/// isolation suite run against.
pub type MemoryQueryApi = iotdp::api::QueryApi<
    std::sync::Arc<MemoryRegistry>,
    std::sync::Arc<MemoryStore>,
    std::sync::Arc<MemoryAlertStates>,
    std::sync::Arc<MemoryRules>,
    std::sync::Arc<MemoryShadows>,
    std::sync::Arc<MemoryCommands>,
>;
