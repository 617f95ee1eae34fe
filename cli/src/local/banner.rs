//! What `iotdp local` prints before the live view: where each stand-in listens, how to point
//! the CLI and the console at it, and what to try.

use iotdp_local::platform::LocalPlatform;
use iotdp_local::provision::TopicRule;
use iotdp_simulator::{DeviceKind, Fleet};

use super::{REGION, STACK};

/// The banner; `fleet` is the simulated fleet, if one runs.
pub(super) fn print(
    platform: &LocalPlatform,
    fleet: Option<&Fleet>,
    loaded: &[String],
    registered: usize,
) {
    println!("iotdp local platform");
    print_endpoints(platform);
    if let Some(api) = platform.api_addr {
        print_api(platform, api, fleet);
    }
    println!("  rules loaded      {}", loaded.join(", "));
    println!(
        "  devices           {registered} registered (the simulated fleet and its green-wall spots); unknown devices are quarantined as unknown_device"
    );
    for note in &platform.stack.not_emulated {
        println!("  not emulated      {note}");
    }
    print_tries(platform, fleet.is_none());
    println!("Ctrl-C stops everything.\n");
}

/// The telemetry rule, whose Basic Ingest topic the simulated fleet publishes on.
pub(super) fn telemetry_rule(platform: &LocalPlatform) -> Option<&TopicRule> {
    platform
        .stack
        .rules
        .iter()
        .find(|r| r.name == "TelemetryRule")
}

fn print_endpoints(platform: &LocalPlatform) {
    println!(
        "  AWS endpoint      {} (moto's server: the aws CLI and iotdp use it through AWS_ENDPOINT_URL)",
        platform.endpoint
    );
    println!(
        "  CLI               export AWS_ENDPOINT_URL={} AWS_REGION={REGION} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local\n                    iotdp --stack {STACK} devices list   (or target/debug/iotdp; every command finds its names in the stack's outputs)",
        platform.endpoint
    );
    println!(
        "  MQTT (IoT Core)   {}   topic rule: {}",
        platform.mqtt_addr,
        platform
            .stack
            .rules
            .iter()
            .map(|r| r.query.topic_filter.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  time-series store {}", platform.store_description);
}

fn print_api(platform: &LocalPlatform, api: std::net::SocketAddr, fleet: Option<&Fleet>) {
    if matches!(
        platform.reader,
        iotdp::wiring::SelectedReader::Timestream(_)
    ) {
        println!(
            "  note              readings from the query API come from moto's canned Timestream query results, not your data: use the lake (the default) or the InfluxDB store (make tools) for real answers"
        );
    }
    println!(
        "  console           http://{api}/   (fleet, places, devices, alerts, rules; served with the API)"
    );
    println!(
        "  query API         http://{api}   try: curl 'http://{api}/devices?limit=5'  or  curl 'http://{api}/readings/voltage/latest?type=battery-box'"
    );
    let thermostat =
        fleet.and_then(|f| f.devices.iter().find(|d| d.kind == DeviceKind::Thermostat));
    if let Some(thermostat) = thermostat {
        let id = &thermostat.id;
        println!(
            "  command           iotdp --stack {STACK} devices command {id} '{{\"setpoint\":19.5}}' --wait   (the simulated thermostat applies it; then: iotdp --stack {STACK} devices shadow {id})"
        );
    }
}

fn print_tries(platform: &LocalPlatform, no_simulator: bool) {
    println!(
        "  try                mosquitto_pub -h 127.0.0.1 -p {} -t dt/battery-0001/telemetry -m '{{\"metrics\":{{\"temperature\":21.5}}}}'",
        platform.mqtt_addr.port()
    );
    if let Some(rule) = telemetry_rule(platform) {
        println!(
            "  or Basic Ingest    mosquitto_pub -h 127.0.0.1 -p {} -t '{}' -m '{{\"metrics\":{{\"temperature\":21.5}}}}'   (no messaging charge on AWS; what the simulated fleet uses)",
            platform.mqtt_addr.port(),
            iotdp::domain::topic::basic_ingest_topic(&rule.rule_name, "battery-0001")
        );
    }
    if no_simulator {
        println!(
            "  note              no devices are registered: add yours with `iotdp --stack {STACK} devices create …`, or start with --parameter UnknownDevicePolicy=accept"
        );
    }
}
