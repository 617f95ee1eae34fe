//! DynamoDB adapters: the device registry ([`registry`]) and alert rules and states
//! ([`alerts`]), sharing one paginated Scan ([`scan`]).

pub mod alerts;
pub mod registry;
pub mod scan;
