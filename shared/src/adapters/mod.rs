//! Adapters: one per outside service, each implementing a port from [`crate::ports`].

pub mod aws;
pub mod memory;
pub mod s3_quarantine;
pub mod timestream;
