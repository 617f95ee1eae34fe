//! iotdp: the IoT data platform's product crate — everything a deployed Lambda function runs,
//! and nothing else (the in-memory adapters, the simulator, the cost model and the local
//! platform are crates of their own).
//!
//! Organised by feature over a small ground floor; `ARCHITECTURE.md` is the map and
//! `tests/architecture.rs` holds every `use crate::…` to its layering rules:
//! - [`domain`]: the vocabulary (readings, device ids, places, dimensions, reason codes, topics);
//! - [`retry`]: backoff with jitter, shared by every adapter that retries;
//! - [`alerting`]: rules, the alarm state machine, notifications, the evaluator, their ports;
//! - [`devices`]: the registry record, admission, the registry cache, presence, the silence
//!   watch (`no_data`), provisioning, their ports;
//! - [`commands`]: device commands through shadows (merge and delta rules, the command
//!   lifecycle, the shadow and history ports, the use case);
//! - [`ingest`]: the envelope, validation, a batch, the store writer, quarantine, metrics and
//!   the use case that answers a batch of messages, with its ports;
//! - [`query`]: the read model, validated query names, the reader port;
//! - [`rollup`]: tiers of aggregates kept exact under late data, the job, and reads from them;
//! - [`api`]: the query API (router, problem documents, one file per resource);
//! - [`config`]: environment configuration, validated at start-up;
//! - [`lambda`]: Lambda's event and response shapes, read into and written from the plain
//!   types the use cases take; each function's entry point;
//! - [`adapters`]: one folder or file per outside service, each implementing feature ports;
//! - [`stores`]: the time-series store chosen at deploy time, dispatched to its adapter;
//! - [`wiring`]: the composition root the Lambda binaries (and the local platform) call.

#[macro_use]
mod macros;

pub mod adapters;
pub mod alerting;
pub mod api;
pub mod commands;
pub mod config;
pub mod devices;
pub mod domain;
pub mod ingest;
pub mod lambda;
pub mod query;
pub mod retry;
pub mod rollup;
pub mod stores;
pub mod wiring;
