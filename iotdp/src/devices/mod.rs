//! Device management: the registry record, who may report what (admission), the per-instance
//! registry cache the ingest path reads through, presence from IoT Core's lifecycle events,
//! the silence watch that raises `no_data` (and the heard log that keeps it exact at a
//! fraction of the writes), and provisioning (things, certificates, policies);
//! [`ports`] holds the registry and IoT control-plane interfaces they use.

pub mod admission;
pub mod cache;
pub mod heard;
pub mod ports;
pub mod presence;
pub mod provisioning;
pub mod record;
pub mod silence;
pub mod types;
