//! iotdp: the IoT data platform's core.
//!
//! Read top to bottom, the modules are the data path:
//! - [`domain`]: what a reading is (no AWS types);
//! - [`reason`]: the reason codes every rejection carries;
//! - [`envelope`]: the IoT rule envelope on the ingest queue, device identity from the topic;
//! - [`validation`]: payload → readings or rejections (pure);
//! - [`batch`]: a whole SQS batch decoded and validated (pure);
//! - [`ports`]: the time-series store, quarantine, device registry and alerting interfaces;
//! - [`devices`]: the registry record, admission (who may report what), the registry cache,
//!   presence, the silence watch (`no_data`) and provisioning;
//! - [`store_writer`]: chunking, bounded concurrency, retry with jitter, bisection;
//! - [`quarantine`]: the JSON Lines quarantine format;
//! - [`ingest`]: the use case that ties them together and answers SQS;
//! - [`alerting`]: rules, the alarm state machine, notifications, commands back to devices;
//! - [`metrics`]: CloudWatch Embedded Metric Format lines;
//! - [`api`]: the query API's use cases (devices, readings), independent of the HTTP front end;
//! - [`config`]: environment configuration, validated at start-up;
//! - [`adapters`]: Timestream, S3, DynamoDB, SNS, IoT shadows and AWS client construction,
//!   plus in-memory stand-ins;
//! - [`simulator`]: the seeded simulated fleet;
//! - `local` (feature `local`): the platform on one machine, for `make local` and the tests.

pub mod adapters;
pub mod alerting;
pub mod api;
pub mod batch;
pub mod config;
pub mod devices;
pub mod domain;
pub mod envelope;
pub mod ingest;
#[cfg(feature = "local")]
pub mod local;
pub mod metrics;
pub mod ports;
pub mod quarantine;
pub mod reason;
pub mod retry;
pub mod simulator;
pub mod store_writer;
pub mod validation;
