//! Alerting: rules, the per-(device, rule) alarm state machine, notifications and commands.
//!
//! Evaluated inside the ingest path (no extra hop). The pure parts, [`rule`],
//! [`state_machine`] and [`notification`], know nothing of AWS; [`evaluator`] drives them
//! over a batch through the alerting ports.

pub mod admin;
pub mod evaluator;
pub mod notification;
pub mod rule;
pub mod state_machine;
