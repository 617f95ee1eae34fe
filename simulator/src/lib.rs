//! A simulated fleet, after the three reference customers plus a faulty device. Pure and
//! seeded: the same seed gives the same messages. Publishing is the caller's business.
//!
//! - battery boxes: voltage sags slowly; every fourth box fades fast enough for the demo
//!   rate-of-change rule to fire within minutes;
//! - thermostats: temperature drifts; a thermostat reports only when it moved ≥ 0.1°;
//! - green-wall gateways: hourly readings of 12 spots (registered devices, each with the
//!   gateway as its `gateway_id`, in a site/zone/section/spot hierarchy) sent in 5-hour
//!   batches (late data);
//! - faulty devices: malformed payloads at the configured rate.
//!
//! Thermostats and battery boxes obey their shadow ([`Fleet::apply_desired`]): a thermostat
//! takes a `setpoint` (5 to 35 °C) and a `mode`, a battery box `load_shedding`, and each reports
//! back what it applied; what a device cannot apply it leaves in the delta.

/// How many readings a gateway batch holds: 5 hourly readings.
pub const GATEWAY_HOURS: usize = 5;
/// Spots per green-wall gateway.
pub const GATEWAY_SPOTS: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    BatteryBox,
    Thermostat,
    GreenWallGateway,
    Faulty,
}

#[derive(Debug, Clone)]
pub struct SimDevice {
    pub id: String,
    pub kind: DeviceKind,
    value: f64,
    reported: f64,
    fade_per_minute: f64,
    sent: u64,
    /// The last event time sent: each device's times strictly increase, as a real device's do
    /// (two messages in one millisecond would be one point in the store).
    last_ts: i64,
    /// What the device's shadow asked of it and it applied (thermostats: setpoint and mode;
    /// battery boxes: load shedding).
    pub setpoint: f64,
    pub mode: &'static str,
    pub load_shedding: bool,
}

/// The modes a simulated thermostat knows.
pub const THERMOSTAT_MODES: [&str; 4] = ["eco", "comfort", "auto", "off"];

#[derive(Debug, Clone, Copy)]
pub struct FleetConfig {
    pub devices: usize,
    pub seed: u64,
    /// Fraction of a faulty device's messages that are malformed.
    pub faulty_rate: f64,
}

pub struct Fleet {
    pub devices: Vec<SimDevice>,
    rng: fastrand::Rng,
    faulty_rate: f64,
    next: usize,
    started_ms: Option<i64>,
}

impl Fleet {
    /// A mix of 40 % thermostats, 30 % battery boxes, 10 % gateways, 20 % faulty (at least one
    /// of each kind from four devices up).
    pub fn new(config: FleetConfig) -> Self {
        let mut rng = fastrand::Rng::with_seed(config.seed);
        let kinds = [
            DeviceKind::Thermostat,
            DeviceKind::BatteryBox,
            DeviceKind::GreenWallGateway,
            DeviceKind::Faulty,
            DeviceKind::Thermostat,
            DeviceKind::BatteryBox,
            DeviceKind::Thermostat,
            DeviceKind::BatteryBox,
            DeviceKind::Thermostat,
            DeviceKind::Faulty,
        ];
        let devices = (0..config.devices)
            .map(|i| {
                let kind = kinds[i % kinds.len()];
                let (prefix, value) = match kind {
                    DeviceKind::BatteryBox => ("battery", 13.2 + rng.f64() * 0.2),
                    DeviceKind::Thermostat => ("ac", 20.0 + rng.f64() * 4.0),
                    DeviceKind::GreenWallGateway => ("wall-gw", 0.0),
                    DeviceKind::Faulty => ("faulty", 0.0),
                };
                let fade_per_minute = if kind == DeviceKind::BatteryBox && i % 4 == 1 {
                    0.05
                } else {
                    0.0005
                };
                SimDevice {
                    id: format!("{prefix}-{i:04}"),
                    kind,
                    value,
                    reported: f64::NAN,
                    fade_per_minute,
                    sent: 0,
                    last_ts: i64::MIN,
                    setpoint: 21.5,
                    mode: "eco",
                    load_shedding: false,
                }
            })
            .collect();
        Self {
            devices,
            rng,
            faulty_rate: config.faulty_rate,
            next: 0,
            started_ms: None,
        }
    }

    /// `count` of the fleet's next publishes as the SQS bodies the topic rule would queue
    /// (message id, envelope), one a millisecond from `received_at_ms` on.
    pub fn rule_envelopes(&mut self, count: i64, received_at_ms: i64) -> Vec<(String, String)> {
        (0..count)
            .filter_map(|i| {
                let received = received_at_ms + i;
                let (_, topic, payload) = self.next_message(received)?;
                let device = iotdp::domain::topic::device_id_from_topic(&topic).ok()?;
                let body = iotdp::ingest::envelope::encode_envelope(
                    payload.as_bytes(),
                    &topic,
                    received,
                    Some(device),
                );
                Some((format!("m{i}"), body))
            })
            .collect()
    }

    /// The next message at wall-clock `now_ms`: `(device index, topic, payload)`.
    pub fn next_message(&mut self, now_ms: i64) -> Option<(usize, String, String)> {
        let started = *self.started_ms.get_or_insert(now_ms);
        let minutes = (now_ms - started) as f64 / 60_000.0;
        // Thermostats that did not move enough stay silent; look at up to every device once.
        for _ in 0..self.devices.len() {
            let index = self.next;
            self.next = (self.next + 1) % self.devices.len();
            let rng = &mut self.rng;
            let device = &mut self.devices[index];
            let now_ms = now_ms.max(device.last_ts.saturating_add(1));
            let topic = iotdp::domain::topic::telemetry_topic(&device.id);
            let payload = match device.kind {
                DeviceKind::Thermostat => {
                    device.value += (rng.f64() - 0.5) * 0.3;
                    if (device.value - device.reported).abs() < 0.1 {
                        continue;
                    }
                    device.reported = device.value;
                    format!(
                        r#"{{"ts":{now_ms},"seq":{},"metrics":{{"temperature":{:.2},"setpoint":{},"mode":"{}","fan_on":{}}}}}"#,
                        device.sent,
                        device.value,
                        device.setpoint,
                        device.mode,
                        device.value > device.setpoint + 1.5
                    )
                }
                DeviceKind::BatteryBox => {
                    let voltage =
                        device.value - device.fade_per_minute * minutes + (rng.f64() - 0.5) * 0.01;
                    let soc = ((voltage - 11.5) / 1.8).clamp(0.0, 1.0);
                    // Shedding load draws a tenth of the current.
                    let draw = if device.load_shedding { 0.1 } else { 1.0 };
                    format!(
                        r#"{{"ts":{now_ms},"seq":{},"metrics":{{"voltage":{voltage:.3},"current":{:.2},"soc":{soc:.3},"temperature_c":{:.1},"charging":false,"load_shedding":{}}}}}"#,
                        device.sent,
                        (-1.0 - rng.f64()) * draw,
                        25.0 + rng.f64() * 5.0,
                        device.load_shedding
                    )
                }
                DeviceKind::GreenWallGateway => {
                    let mut items = Vec::with_capacity(GATEWAY_HOURS * GATEWAY_SPOTS);
                    for hours_ago in (0..GATEWAY_HOURS).rev() {
                        for spot in 0..GATEWAY_SPOTS {
                            let ts = now_ms - hours_ago as i64 * 3_600_000;
                            let minute = (ts - started).rem_euclid(3_600_000) / 60_000;
                            let normal = 0.25 + rng.f64() * 0.2;
                            let moisture =
                                if is_anomalous(index, spot) && ANOMALY_MINUTES.contains(&minute) {
                                    0.9
                                } else {
                                    normal
                                };
                            items.push(format!(
                                r#"{{"device_id":"{}","ts":{ts},"metrics":{{"moisture":{moisture:.3},"lux":{}}}}}"#,
                                spot_id(&device.id, spot),
                                800 + rng.u32(0..800)
                            ));
                        }
                    }
                    format!(r#"{{"readings":[{}]}}"#, items.join(","))
                }
                DeviceKind::Faulty if rng.f64() < self.faulty_rate => match rng.u8(0..4) {
                    0 => "}{ not json".to_owned(),
                    1 => r#"{"metrics":{}}"#.to_owned(),
                    2 => format!(r#"{{"ts":{},"metrics":{{"t":1}}}}"#, now_ms / 1000),
                    _ => r#"{"metrics":{"9lives":1,"t":"x"}}"#.to_owned(),
                },
                DeviceKind::Faulty => format!(
                    r#"{{"ts":{now_ms},"metrics":{{"t":{:.1}}}}}"#,
                    rng.f64() * 10.0
                ),
            };
            device.sent += 1;
            device.last_ts = now_ms;
            return Some((index, topic, payload));
        }
        None
    }
}

impl Fleet {
    /// `true` for the devices that follow their shadow.
    pub fn obeys(kind: DeviceKind) -> bool {
        matches!(kind, DeviceKind::Thermostat | DeviceKind::BatteryBox)
    }

    /// Device `index` applies what it can of `desired` (a shadow delta's `state`) and returns
    /// the `reported` patch to send back, or `None` when it applied nothing.
    pub fn apply_desired(
        &mut self,
        index: usize,
        desired: &serde_json::Value,
    ) -> Option<serde_json::Value> {
        let device = self.devices.get_mut(index)?;
        let mut reported = serde_json::Map::new();
        match device.kind {
            DeviceKind::Thermostat => {
                if let Some(setpoint) = desired["setpoint"].as_f64()
                    && (5.0..=35.0).contains(&setpoint)
                {
                    device.setpoint = setpoint;
                    reported.insert("setpoint".into(), desired["setpoint"].clone());
                }
                if let Some(mode) = desired["mode"]
                    .as_str()
                    .and_then(|m| THERMOSTAT_MODES.into_iter().find(|known| *known == m))
                {
                    device.mode = mode;
                    reported.insert("mode".into(), mode.into());
                }
            }
            DeviceKind::BatteryBox => {
                if let Some(shed) = desired["load_shedding"].as_bool() {
                    device.load_shedding = shed;
                    reported.insert("load_shedding".into(), shed.into());
                }
            }
            DeviceKind::GreenWallGateway | DeviceKind::Faulty => {}
        }
        (!reported.is_empty()).then_some(serde_json::Value::Object(reported))
    }
}

/// The reference batch the benchmarks and request-size figures use: 1,000 SQS bodies (IoT
/// rule envelopes received at `received`), 700 single readings (thermostats, battery boxes)
/// and 300 gateway batches of 10 (green wall). Returns `(message id, body)` pairs and the
/// number of readings (3,700).
pub fn reference_sqs_batch(received: i64) -> (Vec<(String, String)>, u64) {
    let mut bodies = Vec::with_capacity(1000);
    let mut readings = 0;
    for i in 0..1000u64 {
        let (device, payload) = if i % 10 < 7 {
            readings += 1;
            if i % 2 == 0 {
                (
                    format!("ac-{}", i % 50),
                    format!(
                        r#"{{"ts":{},"seq":{i},"metrics":{{"temperature":{:.1},"setpoint":21.0,"mode":"eco"}}}}"#,
                        received - 1000,
                        20.0 + (i % 30) as f64 / 10.0
                    ),
                )
            } else {
                (
                    format!("battery-{}", i % 40),
                    format!(
                        r#"{{"ts":"2025-11-24T15:59:58.000Z","metrics":{{"voltage":{:.2},"current":-1.5,"soc":0.82,"temperature_c":31.5,"charging":false}}}}"#,
                        12.0 + (i % 100) as f64 / 100.0
                    ),
                )
            }
        } else {
            readings += 10;
            let items: Vec<String> = (0..10)
                .map(|s| {
                    format!(
                        r#"{{"ts":{},"metrics":{{"moisture":0.{s}3,"lux":1200,"temperature":18.5}}}}"#,
                        received - 3_600_000 * (s % 5 + 1)
                    )
                })
                .collect();
            (
                format!("wall-gw-{}", i % 5),
                format!(r#"{{"readings":[{}]}}"#, items.join(",")),
            )
        };
        let topic = iotdp::domain::topic::telemetry_topic(&device);
        bodies.push((
            format!("msg-{i}"),
            iotdp::ingest::envelope::encode_envelope(
                payload.as_bytes(),
                &topic,
                received,
                Some(&device),
            ),
        ));
    }
    (bodies, readings)
}

/// The id of a gateway's spot sensor: `<gateway>-sNN`.
/// Every hour, in these minutes since the fleet started (event time), the moisture of each
/// anomalous spot jumps to 0.9: the injected anomaly the `moisture-anomaly` rule must find.
pub const ANOMALY_MINUTES: std::ops::Range<i64> = 35..40;

/// Spot 0 of every other green-wall gateway (device 2, 22, 42…) is anomalous.
fn is_anomalous(gateway_index: usize, spot: usize) -> bool {
    spot == 0 && gateway_index % 20 == 2
}

pub fn spot_id(gateway: &str, spot: usize) -> String {
    format!("{gateway}-s{spot:02}")
}

impl Fleet {
    /// The spots whose moisture jumps during [`ANOMALY_MINUTES`] of every hour.
    pub fn anomalous_spots(&self) -> Vec<String> {
        self.devices
            .iter()
            .enumerate()
            .filter(|(_, d)| d.kind == DeviceKind::GreenWallGateway)
            .flat_map(|(i, d)| {
                (0..GATEWAY_SPOTS)
                    .filter(move |&spot| is_anomalous(i, spot))
                    .map(|spot| spot_id(&d.id, spot))
            })
            .collect()
    }

    /// What an operator would import for this fleet: every device (and every green-wall spot)
    /// with its type, place in the hierarchy, gateway and heartbeat.
    pub fn registry_records(&self, now_ms: i64) -> Vec<iotdp::devices::record::DeviceRecord> {
        use iotdp::devices::record::DeviceRecord;
        use iotdp::domain::LocationPath;
        let mut records = Vec::new();
        let mut add = |id: &str, kind: &str, path: String, gateway: Option<&str>, heartbeat| {
            let mut r = DeviceRecord::new(id, kind, now_ms);
            r.path = LocationPath::parse(&path).unwrap_or_default();
            r.gateway_id = gateway.map(str::to_owned);
            r.heartbeat_seconds = heartbeat;
            records.push(r);
        };
        for (i, device) in self.devices.iter().enumerate() {
            let id = device.id.as_str();
            match device.kind {
                // Battery boxes report every few seconds: silent for 5 minutes is news.
                DeviceKind::BatteryBox => add(
                    id,
                    "battery-box",
                    format!("farm-{}", i % 3),
                    None,
                    Some(300),
                ),
                // Thermostats report only on change: an hour of silence can be normal.
                DeviceKind::Thermostat => {
                    add(id, "thermostat", format!("home-{i}"), None, Some(3600));
                }
                DeviceKind::GreenWallGateway => {
                    let site = format!("wall-{i}");
                    add(id, "green-wall-gateway", site.clone(), None, Some(6 * 3600));
                    for spot in 0..GATEWAY_SPOTS {
                        let path = format!(
                            "{site}/zone-{}/section-{}/spot-{spot:02}",
                            if spot < GATEWAY_SPOTS / 2 { 'a' } else { 'b' },
                            spot % 3
                        );
                        add(
                            &spot_id(id, spot),
                            "plant-sensor",
                            path,
                            Some(id),
                            Some(6 * 3600),
                        );
                    }
                }
                DeviceKind::Faulty => add(id, "sensor", format!("lab-{i}"), None, None),
            }
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iotdp::alerting::event::EventKind;
    use iotdp::alerting::rule::AlertRule;
    use iotdp::alerting::state_machine::{AlertState, apply_reading};
    use std::collections::HashMap;

    /// Run the fleet's messages through the alert state machine of `rules` for `minutes` of
    /// simulated time, `per_minute` messages a minute: every ALARM as (device, rule, event time).
    fn alarms(
        fleet: &mut Fleet,
        rules: &[AlertRule],
        minutes: i64,
        per_minute: i64,
    ) -> Vec<(String, String, i64)> {
        const T0: i64 = 1_764_000_000_000;
        let mut states: HashMap<(String, String), AlertState> = HashMap::new();
        let mut raised = Vec::new();
        for step in 0..minutes * per_minute {
            let now = T0 + step * 60_000 / per_minute;
            let Some((_, topic, payload)) = fleet.next_message(now) else {
                continue;
            };
            let device = iotdp::domain::topic::device_id_from_topic(&topic)
                .unwrap()
                .to_owned();
            let out = validate_payload(
                payload.as_bytes(),
                &device,
                now,
                TimeWindow::with_retention_days(73_000),
            );
            let mut readings: Vec<_> = out.readings.into_iter().map(|r| r.reading).collect();
            readings.sort_by_key(|r| r.time_ms);
            for reading in &readings {
                for rule in rules {
                    let Some(value) = reading
                        .metrics
                        .iter()
                        .find(|m| m.name == rule.metric)
                        .and_then(|m| iotdp::rollup::aggregate::numeric(&m.value))
                    else {
                        continue;
                    };
                    let state = states
                        .entry((reading.device_id.clone(), rule.rule_id.clone()))
                        .or_default();
                    let step = apply_reading(rule, state, reading.time_ms, value);
                    if step.event.is_some_and(|e| e.kind == EventKind::Alarm) {
                        raised.push((
                            reading.device_id.clone(),
                            rule.rule_id.clone(),
                            reading.time_ms - T0,
                        ));
                    }
                }
            }
        }
        raised
    }

    /// An hour of a 40-device fleet (four green walls, 48 spots, two of them anomalous) at ten
    /// messages a second, for three seeds: the moisture-anomaly demo rule finds each injected
    /// jump, in its minutes, and raises nothing on the 46 normal spots.
    #[test]
    fn the_anomaly_rule_finds_every_injected_jump_and_nothing_else() {
        let rule = AlertRule::from_json(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../infra/local/rules/moisture-anomaly.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let (mut injected, mut detected, mut false_alarms) = (0, 0, 0);
        for seed in [3, 11, 19] {
            let mut fleet = Fleet::new(FleetConfig {
                devices: 40,
                seed,
                faulty_rate: 0.0,
            });
            let anomalous = fleet.anomalous_spots();
            assert_eq!(anomalous.len(), 2);
            let raised = alarms(&mut fleet, std::slice::from_ref(&rule), 60, 600);
            let (found, wrong): (Vec<_>, Vec<_>) = raised.iter().partition(|(device, _, t)| {
                anomalous.contains(device)
                    && ANOMALY_MINUTES.contains(&(t.rem_euclid(3_600_000) / 60_000))
            });
            let mut found_spots: Vec<_> = found.iter().map(|(d, _, _)| d.clone()).collect();
            found_spots.sort();
            found_spots.dedup();
            assert_eq!(
                found_spots.len(),
                anomalous.len(),
                "seed {seed}: every injected anomaly found: {found:?}"
            );
            assert!(wrong.is_empty(), "seed {seed}: false alarms: {wrong:?}");
            (injected, detected, false_alarms) = (
                injected + anomalous.len(),
                detected + found_spots.len(),
                false_alarms + wrong.len(),
            );
        }
        println!(
            "anomalies injected {injected}, found {detected}, false alarms {false_alarms} (138 normal spot-hours)"
        );
    }

    /// 60 hours of a 10-device fleet, one message a device a minute: the slowly fading battery
    /// box (0.03 V/h) is forecast to run low a day before `battery-low` fires.
    #[test]
    fn the_battery_forecast_warns_a_day_before_battery_low() {
        let mut fleet = Fleet::new(FleetConfig {
            devices: 10,
            seed: 5,
            faulty_rate: 0.0,
        });
        let rule = |name: &str| {
            AlertRule::from_json(
                &std::fs::read_to_string(format!(
                    "{}/../infra/local/rules/{name}.json",
                    env!("CARGO_MANIFEST_DIR")
                ))
                .unwrap(),
            )
            .unwrap()
        };
        let raised = alarms(
            &mut fleet,
            &[rule("battery-low"), rule("battery-forecast")],
            60 * 60,
            10,
        );
        let first = |device: &str, rule: &str| {
            raised
                .iter()
                .find(|(d, r, _)| d == device && r == rule)
                .map(|(_, _, t)| *t as f64 / 3_600_000.0)
        };
        let slow = fleet
            .devices
            .iter()
            .filter(|d| d.kind == DeviceKind::BatteryBox && d.fade_per_minute < 0.01)
            .map(|d| d.id.clone())
            .collect::<Vec<_>>();
        assert!(!slow.is_empty());
        for device in &slow {
            let (Some(forecast), Some(low)) = (
                first(device, "battery-forecast"),
                first(device, "battery-low"),
            ) else {
                panic!(
                    "{device}: {:?}",
                    raised
                        .iter()
                        .filter(|(d, _, _)| d == device)
                        .collect::<Vec<_>>()
                );
            };
            println!(
                "{device}: forecast at {forecast:.1} h, battery-low at {low:.1} h: {:.1} hours of warning",
                low - forecast
            );
            assert!(
                low - forecast >= 20.0,
                "{device}: only {:.1} h of warning",
                low - forecast
            );
        }
    }
    use iotdp::ingest::validation::{TimeWindow, validate_payload};

    #[test]
    fn the_same_seed_gives_the_same_messages() {
        let config = FleetConfig {
            devices: 10,
            seed: 7,
            faulty_rate: 0.5,
        };
        let (mut a, mut b) = (Fleet::new(config), Fleet::new(config));
        for i in 0..200 {
            assert_eq!(
                a.next_message(1_764_000_000_000 + i),
                b.next_message(1_764_000_000_000 + i)
            );
        }
    }

    #[test]
    fn healthy_devices_send_valid_readings_and_faulty_ones_get_rejected() {
        let mut fleet = Fleet::new(FleetConfig {
            devices: 10,
            seed: 1,
            faulty_rate: 1.0,
        });
        let now = 1_764_000_000_000;
        let (mut good, mut bad) = (0, 0);
        for _ in 0..500 {
            let (index, topic, payload) = fleet.next_message(now).unwrap();
            let device = iotdp::domain::topic::device_id_from_topic(&topic)
                .unwrap()
                .to_owned();
            let out = validate_payload(
                payload.as_bytes(),
                &device,
                now,
                TimeWindow::with_retention_days(73_000),
            );
            match fleet.devices[index].kind {
                DeviceKind::Faulty => {
                    assert!(out.readings.is_empty(), "{payload}");
                    bad += 1;
                }
                kind => {
                    assert!(
                        out.rejections.is_empty(),
                        "{kind:?}: {payload} {:?}",
                        out.rejections
                    );
                    good += out.readings.len();
                }
            }
        }
        assert!(good > 0 && bad > 0);
    }

    #[test]
    fn every_reading_of_the_fleet_is_admitted_by_its_registry_records() {
        use iotdp::devices::admission::{UnknownDevicePolicy, admit};
        use std::sync::Arc;
        let mut fleet = Fleet::new(FleetConfig {
            devices: 10,
            seed: 5,
            faulty_rate: 0.0,
        });
        let now = 1_764_000_000_000;
        let known: std::collections::HashMap<_, _> = fleet
            .registry_records(now)
            .into_iter()
            .map(|r| (r.device_id.clone(), Arc::new(r.into())))
            .collect();
        assert_eq!(
            known.len(),
            10 + GATEWAY_SPOTS,
            "one gateway with its spots"
        );
        let mut spots_seen = 0;
        for _ in 0..200 {
            let (_, topic, payload) = fleet.next_message(now).unwrap();
            let publisher = iotdp::domain::topic::device_id_from_topic(&topic).unwrap();
            let out = validate_payload(
                payload.as_bytes(),
                publisher,
                now,
                TimeWindow::with_retention_days(73_000),
            );
            for valid in out.readings {
                let device = &valid.reading.device_id;
                spots_seen += usize::from(device != publisher);
                let dims = admit(device, publisher, &known, UnknownDevicePolicy::Reject)
                    .unwrap_or_else(|r| panic!("{device} via {publisher}: {}", r.detail))
                    .unwrap();
                if device != publisher {
                    assert_eq!(dims.device_type, "plant-sensor");
                    assert_eq!(dims.path.segments().len(), 4);
                }
            }
        }
        assert!(spots_seen > 0);
    }

    #[test]
    fn thermostats_and_battery_boxes_apply_what_they_can_and_report_it() {
        let mut fleet = Fleet::new(FleetConfig {
            devices: 10,
            seed: 3,
            faulty_rate: 0.0,
        });
        let thermostat = fleet
            .devices
            .iter()
            .position(|d| d.kind == DeviceKind::Thermostat)
            .unwrap();
        let battery = fleet
            .devices
            .iter()
            .position(|d| d.kind == DeviceKind::BatteryBox)
            .unwrap();
        let gateway = fleet
            .devices
            .iter()
            .position(|d| d.kind == DeviceKind::GreenWallGateway)
            .unwrap();
        let reported = fleet
            .apply_desired(
                thermostat,
                &serde_json::json!({"setpoint": 19.5, "mode": "comfort", "colour": "red"}),
            )
            .unwrap();
        assert_eq!(
            reported,
            serde_json::json!({"setpoint": 19.5, "mode": "comfort"})
        );
        assert_eq!(
            fleet.apply_desired(thermostat, &serde_json::json!({"setpoint": 90})),
            None,
            "out of range: left in the delta"
        );
        assert_eq!(
            fleet.apply_desired(battery, &serde_json::json!({"load_shedding": true})),
            Some(serde_json::json!({"load_shedding": true}))
        );
        assert_eq!(
            fleet.apply_desired(gateway, &serde_json::json!({"setpoint": 20})),
            None
        );
        // What they applied shows in what they send.
        let mut seen = (false, false);
        for i in 0..400 {
            let Some((index, _, payload)) = fleet.next_message(1_000 + i * 1_000) else {
                continue;
            };
            if index == thermostat {
                assert!(
                    payload.contains(r#""setpoint":19.5,"mode":"comfort""#),
                    "{payload}"
                );
                seen.0 = true;
            }
            if index == battery {
                assert!(payload.contains(r#""load_shedding":true"#), "{payload}");
                seen.1 = true;
            }
        }
        assert_eq!(seen, (true, true));
    }

    #[test]
    fn thermostats_report_only_moves_of_a_tenth_of_a_degree() {
        let mut fleet = Fleet::new(FleetConfig {
            devices: 1,
            seed: 3,
            faulty_rate: 0.0,
        });
        let mut last: Option<f64> = None;
        for i in 0..500 {
            if let Some((_, _, payload)) = fleet.next_message(1_764_000_000_000 + i) {
                let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
                let t = v["metrics"]["temperature"].as_f64().unwrap();
                if let Some(previous) = last {
                    assert!((t - previous).abs() >= 0.095, "{previous} -> {t}");
                }
                last = Some(t);
            }
        }
    }
}
