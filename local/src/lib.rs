//! iotdp on one machine, for `make local`, the CLI and the tests — never linked into a Lambda.
//!
//! - [`memory`]: in-memory adapters for every port, with a fault injector, and a reference
//!   reader the stores' readers are held to;
//! - [`simulator`]: the seeded simulated fleet of the three reference customers;
//! - [`iot_policy`]: IoT Core's policy evaluation, to prove what the device policy allows;
//! - [`template`]: the SAM template read as data, intrinsics resolved (no second resource list);
//! - [`rollup_check`]: late-data scenarios replayed through the rollup job, and the rows each
//!   tier should hold, computed the plain way;
//! - [`rule_sql`]: the IoT SQL subset the topic rules use, parsed and executed for real;
//! - [`moto`]: moto's server on a free 127.0.0.1 port;
//! - [`provision`]: the template's resources created in moto;
//! - [`broker`]: an MQTT 3.1.1 broker on 127.0.0.1 (QoS 0/1), knowing each publisher's client id;
//! - [`shadow_client`]: a device's side of its shadow (delta, get, report), for the simulated
//!   fleet and the tests;
//! - [`shadows`]: the Device Shadow service, over MQTT's shadow topics and the IoT Data Plane's
//!   HTTP API alike;
//! - [`queues`]: in-process queues with SQS's semantics, and the SQS calls both kinds share;
//! - [`event_source`]: Lambda's SQS event source (batch size, window, partial batch failures);
//! - [`streams`]: Kinesis streams in process, and Lambda's Kinesis event source over them
//!   (per-shard order, checkpoints at the first failed record, bisection, on-failure queue);
//! - [`influxd`]: a local InfluxDB server for the InfluxDB store;
//! - [`api_server`]: the query API on 127.0.0.1, same handler code as the `api` Lambda;
//! - [`platform`]: all of it started, watched and stopped together.

pub mod api_server;
pub mod broker;
pub mod cost;
pub mod event_source;
pub mod influxd;
pub mod iot_policy;
pub mod memory;
pub mod moto;
pub mod platform;
pub mod provision;
pub mod queues;
pub mod rollup_check;
pub mod rule_sql;
pub mod shadow_client;
pub mod shadows;
pub mod simulator;
pub mod streams;
pub mod template;
