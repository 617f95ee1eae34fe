//! iotdp on one machine, for `make local`, the CLI and the tests — never linked into a Lambda.
//! The AWS services the functions talk to, stood in for on 127.0.0.1, and the platform that
//! starts them with the functions. The in-memory adapters live in `iotdp-memory`, the
//! simulated fleet in `iotdp-simulator` and the cost model in `iotdp-cost`.
//!
//! From the bottom up (`local/tests/architecture.rs` holds the layers):
//! - [`template`]: the SAM template read as data, intrinsics resolved (no second resource list);
//! - [`rule_sql`]: the IoT SQL subset the topic rules use, parsed and executed for real;
//! - [`iot_policy`]: IoT Core's policy evaluation, to prove what the device policy allows;
//! - [`moto`]: moto's server on a free 127.0.0.1 port;
//! - [`http_server`]: the local servers' one HTTP/1.1 accept loop;
//! - [`shadow_client`]: a device's side of its shadow (delta, get, report), for the simulated
//!   fleet and the tests;
//! - [`shadows`]: the Device Shadow service, over MQTT's shadow topics and the IoT Data Plane's
//!   HTTP API alike; it answers with what to publish and leaves publishing to the broker;
//! - [`provision`]: the template's resources created in moto;
//! - [`influxd`]: a local InfluxDB server for the InfluxDB store;
//! - [`api_server`]: the query API on 127.0.0.1, same handler code as the `api` Lambda;
//! - [`broker`]: an MQTT 3.1.1 broker on 127.0.0.1 (QoS 0/1), knowing each publisher's client
//!   id, holding the shadows and publishing their answers;
//! - [`queues`]: in-process queues with SQS's semantics, and the SQS calls both kinds share;
//! - [`event_source`]: Lambda's SQS event source (batch size, window, partial batch failures);
//! - [`streams`]: Kinesis streams in process, and Lambda's Kinesis event source over them
//!   (per-shard order, checkpoints at the first failed record, bisection, on-failure queue);
//! - [`platform`]: all of it started, watched and stopped together.

pub mod api_server;
pub mod broker;
pub mod event_source;
pub mod http_server;
pub mod influxd;
pub mod iot_policy;
pub mod moto;
pub mod platform;
pub mod provision;
pub mod queues;
pub mod rule_sql;
pub mod shadow_client;
pub mod shadows;
pub mod streams;
pub mod template;
