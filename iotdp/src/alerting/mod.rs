//! Alerting: rules, the per-(device, rule) alarm state machine, notifications and commands.
//!
//! Evaluated inside the ingest path (no extra hop). The pure parts, [`rule`], [`event`],
//! [`state_machine`] and [`notification`], know nothing of AWS; [`evaluator`] drives them
//! over a batch through [`ports`]; [`admin`] is what operators do to an alert (acknowledge);
//! [`iot_events`] turns an AWS IoT Events alarm model into a rule (pure).

pub mod admin;
pub mod evaluator;
pub mod event;
pub mod iot_events;
pub mod notification;
pub mod ports;
pub mod rule;
pub mod state_machine;
