//! Commands to devices through their shadows: the shadow's merge and delta rules, the command
//! lifecycle (`pending → delivered | expired | superseded`, or `failed`), its ports (the shadow
//! service and the command history) and the use case the API, alert actions and the shadow
//! documents' queue drive.

pub mod command;
pub mod ports;
pub mod service;
pub mod shadow;
pub mod shadow_events;
