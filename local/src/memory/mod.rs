//! In-memory adapters: for tests of the use cases, and for trying the pipeline without AWS.
//! One file per feature's ports; [`reader`] answers the read port over [`MemoryStore`].

mod alerting;
mod commands;
mod ingest;
mod reader;
mod registry;
mod rollup;

pub use alerting::*;
pub use commands::*;
pub use ingest::*;
pub use registry::*;
pub use rollup::*;
