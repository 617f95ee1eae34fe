//! The `iotdp` command's tests: the real binary run against the local platform and moto.
//!
//! One test binary for all of them: each binary links the whole AWS stack (about 60 MB
//! and seconds of linking apiece), so one per file cost minutes and gigabytes on a 2-core CI.
//! Select a group with `cargo nextest run --workspace -E 'test(/^MODULE::/)'`.

mod cli;
mod devices;
mod lake_import;
mod local;
mod readings;
mod rollups_command;
mod stack;
mod stream;
mod types;
