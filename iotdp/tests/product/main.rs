//! The product crate's tests on in-memory and mocked adapters (no outside tool).
//!
//! One test binary for all of them: each binary links the whole AWS stack (about 60 MB
//! and seconds of linking apiece), so one per file cost minutes and gigabytes on a 2-core CI.
//! Select a group with `cargo nextest run --workspace -E 'test(/^MODULE::/)'`.

mod access;
mod alert_evaluation;
mod architecture;
mod batch;
mod commands;
mod device_management;
mod ingest_mocked_aws;
mod query_api;
mod request_sizes;
mod rollups;
mod validation;
