//! `iotdp simulate`: the simulated fleet published over MQTT, one client per device (each
//! device connects as itself, as IoT policies require), locally or to AWS IoT Core over TLS.
//! Thermostats and battery boxes follow their shadow: they ask for it on connecting, apply
//! each delta they can, and report back.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use iotdp_local::shadow_client::{DeviceEvent, report, run_device};
use iotdp_simulator::{Fleet, FleetConfig};
use rumqttc::{AsyncClient, MqttOptions, QoS, TlsConfiguration, Transport};
use tokio::sync::{mpsc, watch};

#[derive(Args, Debug, Clone)]
pub struct FleetArgs {
    /// Simulated devices (thermostats, battery boxes, green-wall gateways, faulty devices)
    #[arg(long, default_value_t = 20)]
    pub devices: usize,
    /// Messages per second, all devices together
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Seconds to run; 0 runs until Ctrl-C
    #[arg(long, default_value_t = 0)]
    pub duration: u64,
    /// Seed: the same seed sends the same messages
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fraction of a faulty device's messages that are malformed
    #[arg(long, default_value_t = 0.3)]
    pub faulty_rate: f64,
}

#[derive(Args, Debug, Clone)]
pub struct Target {
    /// MQTT host: 127.0.0.1 for `make local`, or your AWS IoT data endpoint
    #[arg(long, default_value = "127.0.0.1")]
    pub endpoint: String,
    /// MQTT port (default 1883, or 8883 with --cert)
    #[arg(long)]
    pub port: Option<u16>,
    /// Device certificate (PEM) for AWS IoT Core; its policy must allow the simulated client ids
    #[arg(long, requires_all = ["key", "ca"])]
    pub cert: Option<PathBuf>,
    /// Device private key (PEM)
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Amazon root CA (PEM)
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Publish through the telemetry rule's Basic Ingest topic
    /// ($aws/rules/<rule>/dt/<id>/telemetry: no messaging charge) [stack output: TelemetryRuleName]
    #[arg(long, env = "IOTDP_BASIC_INGEST_RULE")]
    pub basic_ingest_rule: Option<String>,
    /// Publish on dt/<id>/telemetry through the message broker even when the rule is known
    #[arg(long)]
    pub broker_topics: bool,
}

#[derive(Debug, Default)]
pub struct SimulationStats {
    pub published: AtomicU64,
    pub connected: AtomicU64,
    pub errors: AtomicU64,
    /// Shadow deltas devices applied and reported back.
    pub commands_applied: AtomicU64,
}

fn transport(target: &Target) -> Result<Option<Transport>, String> {
    let (Some(cert), Some(key), Some(ca)) = (&target.cert, &target.key, &target.ca) else {
        return Ok(None);
    };
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    Ok(Some(Transport::Tls(TlsConfiguration::Simple {
        ca: read(ca)?,
        alpn: None,
        client_auth: Some((read(cert)?, read(key)?)),
    })))
}

/// Publish the fleet's messages at `args.rate` until the duration ends or `stop` turns true.
pub async fn run(
    args: FleetArgs,
    target: Target,
    stats: Arc<SimulationStats>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let tls = transport(&target)?;
    let port = target
        .port
        .unwrap_or(if tls.is_some() { 8883 } else { 1883 });
    let mut fleet = Fleet::new(FleetConfig {
        devices: args.devices.max(1),
        seed: args.seed,
        faulty_rate: args.faulty_rate,
    });
    let mut clients = Vec::with_capacity(fleet.devices.len());
    // Set when the run ends: the disconnects that follow are not errors.
    let finishing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // What devices' shadows ask of them, applied by the loop that owns the fleet.
    let (asked, mut asks) = mpsc::channel::<(usize, serde_json::Value)>(10_000);
    for (index, device) in fleet.devices.iter().enumerate() {
        let mut options = MqttOptions::new(&device.id, &target.endpoint, port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(256 * 1024, 256 * 1024);
        if let Some(tls) = &tls {
            options.set_transport(tls.clone());
        }
        let (client, eventloop) = AsyncClient::new(options, 10_000);
        let stats = stats.clone();
        let finishing = finishing.clone();
        let asked = asked.clone();
        let follows = Fleet::obeys(device.kind);
        let id = device.id.clone();
        let driven = client.clone();
        tokio::spawn(async move {
            let counted = stats.clone();
            let ended = run_device(eventloop, driven, id, follows, move |event| match event {
                DeviceEvent::Connected => {
                    counted.connected.fetch_add(1, Ordering::Relaxed);
                }
                DeviceEvent::Asked(desired) => {
                    let _ = asked.try_send((index, desired));
                }
            })
            .await;
            // The end of a run closes every connection: not an error.
            if !finishing.load(Ordering::Relaxed) {
                tracing::warn!(error = %ended, "MQTT connection lost");
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        });
        clients.push(client);
    }
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut budget = 0.0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
            Some((index, desired)) = asks.recv() => {
                if let Some(reported) = fleet.apply_desired(index, &desired) {
                    let id = fleet.devices[index].id.clone();
                    if report(&clients[index], &id, &reported).await.is_ok() {
                        stats.commands_applied.fetch_add(1, Ordering::Relaxed);
                    }
                }
                continue;
            }
        }
        if args.duration > 0 && started.elapsed() >= Duration::from_secs(args.duration) {
            break;
        }
        budget += args.rate / 100.0;
        while budget >= 1.0 {
            budget -= 1.0;
            let Some((device, topic, payload)) =
                fleet.next_message(chrono::Utc::now().timestamp_millis())
            else {
                break;
            };
            let topic = match (&target.basic_ingest_rule, target.broker_topics) {
                (Some(rule), false) => {
                    iotdp::domain::topic::basic_ingest_topic(rule, &fleet.devices[device].id)
                }
                _ => topic,
            };
            if clients[device]
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .is_ok()
            {
                stats.published.fetch_add(1, Ordering::Relaxed);
            } else {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    finishing.store(true, Ordering::Relaxed);
    for client in &clients {
        let _ = client.disconnect().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}
