//! Adapters: one per outside service, each implementing a port from [`crate::ports`].

pub mod aws;
pub mod dynamodb_alerts;
pub mod dynamodb_registry;
pub mod influxdb;
pub mod influxql;
pub mod iot_shadow;
#[cfg(feature = "admin")]
pub mod iot_things;
pub mod line_protocol;
pub mod memory;
pub mod s3_quarantine;
pub mod sns_notifier;
pub mod timestream;
pub mod timestream_query;
