//! Integration tests against real outside components: moto's server, influxd, MQTT, the local platform.
//!
//! One test binary for all of them: each binary links the whole AWS stack (about 60 MB
//! and seconds of linking apiece), so one per file cost minutes and gigabytes on a 2-core CI.
//! Select a group with `cargo nextest run --workspace -E 'test(/^MODULE::/)'`.

mod alerting_against_moto;
mod api_contract;
mod commands_against_moto;
mod commands_e2e;
mod dashboards;
mod devices_against_moto;
mod fuzz;
mod influxdb_store;
mod ingest_against_moto;
mod ingest_influxdb;
mod lake_against_moto;
mod local_platform_e2e;
mod local_shadow_service;
mod openapi;
mod outage;
mod rollups_against_moto;
mod rollups_influxdb;
mod store_contract;
mod template;
