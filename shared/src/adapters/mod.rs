//! Adapters: one per outside service, each implementing a port from [`crate::ports`].

pub mod aws;
pub mod dynamodb_alerts;
pub mod iot_shadow;
pub mod memory;
pub mod s3_quarantine;
pub mod sns_notifier;
pub mod timestream;
