//! DynamoDB adapters: the device registry ([`registry`]), alert rules and states
//! ([`alerts`]), device type definitions ([`types`]), the command history ([`commands`]) and the rollup job's state and late marks ([`rollup_state`]), sharing one
//! paginated Scan and Query ([`scan`]).

pub mod alerts;
pub mod commands;
pub mod registry;
pub mod rollup_state;
pub mod scan;
pub mod types;
