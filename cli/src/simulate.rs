//! `iotdp simulate`: the simulated fleet published over MQTT, one client per device (each
//! device connects as itself, as IoT policies require), locally or to AWS IoT Core over TLS.
//! Thermostats and battery boxes follow their shadow: they ask for it on connecting, apply
//! each delta they can, and report back.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use iotdp_local::shadow_client::{DeviceEvent, report, run_device};
use iotdp_simulator::{Fleet, FleetConfig, SimDevice};
use rumqttc::{AsyncClient, MqttOptions, QoS, TlsConfiguration, Transport};
use tokio::sync::{mpsc, watch};

use crate::files::{FileError, read_bytes};

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

fn transport(target: &Target) -> Result<Option<Transport>, FileError> {
    let (Some(cert), Some(key), Some(ca)) = (&target.cert, &target.key, &target.ca) else {
        return Ok(None);
    };
    Ok(Some(Transport::Tls(TlsConfiguration::Simple {
        ca: read_bytes(ca)?,
        alpn: None,
        client_auth: Some((read_bytes(cert)?, read_bytes(key)?)),
    })))
}

/// `iotdp simulate`: publish until Ctrl-C (or the duration), with a running count on stderr.
pub async fn run_with_progress(fleet: FleetArgs, target: Target) -> Result<(), FileError> {
    let stats = Arc::new(SimulationStats::default());
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(true);
    });
    let counter = crate::progress::counter("messages published");
    let shown = stats.clone();
    let ticker = {
        let counter = counter.clone();
        tokio::spawn(async move {
            loop {
                counter.set_position(shown.published.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let result = run(fleet, target, stats.clone(), stopped).await;
    ticker.abort();
    counter.finish_and_clear();
    result?;
    println!(
        "published {} messages ({} errors)",
        stats.published.load(Ordering::Relaxed),
        stats.errors.load(Ordering::Relaxed)
    );
    Ok(())
}

/// What a device's connection task reports to: the counts, whether the run is ending, and
/// where the shadow's asks go (the loop that owns the fleet applies them).
#[derive(Clone)]
struct DeviceLinks {
    stats: Arc<SimulationStats>,
    /// Set when the run ends: the disconnects that follow are not errors.
    finishing: Arc<AtomicBool>,
    asked: mpsc::Sender<(usize, serde_json::Value)>,
}

impl DeviceLinks {
    /// Connect one device as itself and drive its connection in a task of its own.
    fn connect(&self, index: usize, device: &SimDevice, options: MqttOptions) -> AsyncClient {
        let (client, eventloop) = AsyncClient::new(options, 10_000);
        let links = self.clone();
        let follows = Fleet::obeys(device.kind);
        let id = device.id.clone();
        let driven = client.clone();
        tokio::spawn(async move {
            let counted = links.stats.clone();
            let asked = links.asked.clone();
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
            if !links.finishing.load(Ordering::Relaxed) {
                tracing::warn!(error = %ended, "MQTT connection lost");
                links.stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        });
        client
    }
}

/// Publish the fleet's messages at `args.rate` until the duration ends or `stop` turns true.
pub async fn run(
    args: FleetArgs,
    target: Target,
    stats: Arc<SimulationStats>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), FileError> {
    let tls = transport(&target)?;
    let port = target
        .port
        .unwrap_or(if tls.is_some() { 8883 } else { 1883 });
    let mut fleet = Fleet::new(FleetConfig {
        devices: args.devices.max(1),
        seed: args.seed,
        faulty_rate: args.faulty_rate,
    });
    let (asked, mut asks) = mpsc::channel(10_000);
    let links = DeviceLinks {
        stats: stats.clone(),
        finishing: Arc::new(AtomicBool::new(false)),
        asked,
    };
    let mut clients = Vec::with_capacity(fleet.devices.len());
    for (index, device) in fleet.devices.iter().enumerate() {
        let mut options = MqttOptions::new(&device.id, &target.endpoint, port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(256 * 1024, 256 * 1024);
        if let Some(tls) = &tls {
            options.set_transport(tls.clone());
        }
        clients.push(links.connect(index, device, options));
    }
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut budget = 0.0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
            Some((index, desired)) = asks.recv() => {
                apply_ask(&mut fleet, &clients, index, &desired, &stats).await;
                continue;
            }
        }
        if args.duration > 0 && started.elapsed() >= Duration::from_secs(args.duration) {
            break;
        }
        budget += args.rate / 100.0;
        while budget >= 1.0 {
            budget -= 1.0;
            if !publish_next(&mut fleet, &clients, &target, &stats).await {
                break;
            }
        }
    }
    links.finishing.store(true, Ordering::Relaxed);
    for client in &clients {
        let _ = client.disconnect().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

/// A device applies what its shadow asks, if it can, and reports its new state.
async fn apply_ask(
    fleet: &mut Fleet,
    clients: &[AsyncClient],
    index: usize,
    desired: &serde_json::Value,
    stats: &SimulationStats,
) {
    if let Some(reported) = fleet.apply_desired(index, desired) {
        let id = fleet.devices[index].id.clone();
        if report(&clients[index], &id, &reported).await.is_ok() {
            stats.commands_applied.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Publish the fleet's next message; false when it has none to send now.
async fn publish_next(
    fleet: &mut Fleet,
    clients: &[AsyncClient],
    target: &Target,
    stats: &SimulationStats,
) -> bool {
    let Some((device, topic, payload)) = fleet.next_message(chrono::Utc::now().timestamp_millis())
    else {
        return false;
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
    true
}
