//! The local platform behind `make local`: everything `template.yaml` defines, on one machine,
//! against moto's server, with an MQTT broker standing in for IoT Core.
//!
//! - [`template`]: the SAM template read as data, intrinsics resolved (no second resource list);
//! - [`rule_sql`]: the IoT SQL subset the topic rules use, parsed and executed for real;
//! - [`api_server`]: the query API on 127.0.0.1, same handler code as the `api` Lambda;
//! - [`broker`]: an MQTT 3.1.1 broker on 127.0.0.1 (QoS 0/1), knowing each publisher's client id;
//! - [`iot_policy`]: IoT Core's policy evaluation, to prove what the device policy allows;
//! - [`provision`]: the template's resources created in moto;
//! - [`influxd`]: a local InfluxDB server for the InfluxDB store;
//! - [`event_source`]: Lambda's SQS event source (batch size, window, partial batch failures);
//! - [`platform`]: all of it started, watched and stopped together.

pub mod api_server;
pub mod broker;
pub mod event_source;
pub mod influxd;
pub mod iot_policy;
pub mod moto;
pub mod platform;
pub mod provision;
pub mod queues;
pub mod rule_sql;
pub mod template;
