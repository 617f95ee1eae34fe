//! Adapters: one per outside service family, each implementing ports of the features. No
//! adapter imports another family's adapter; shared query names come from [`crate::query`].

#[cfg(feature = "admin")]
pub mod cloudformation;
pub mod dynamodb;
pub mod influxdb;
pub mod iot_shadow;
#[cfg(feature = "admin")]
pub mod iot_things;
pub mod lake;
pub mod s3_quarantine;
pub mod sns_notifier;
pub mod timestream;
