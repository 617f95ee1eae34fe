//! What `iotdp local` runs on the platform: the demo rules, the simulated fleet registered as
//! an operator would register it, the live view until Ctrl-C (or the duration), and the
//! run's summary.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use iotdp::adapters::dynamodb::alerts::DynamoDbRules;
use iotdp::devices::ports::DeviceRegistry;
use iotdp_local::platform::LocalPlatform;
use iotdp_simulator::{DeviceKind, Fleet, FleetConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::view::LiveView;
use super::{LocalArgs, LocalRunError, banner, say};
use crate::files::{FileError, list_dir, write_file};
use crate::simulate::{self, FleetArgs, SimulationStats, Target};

pub(super) async fn demo_and_view(
    platform: &LocalPlatform,
    args: &LocalArgs,
) -> Result<(), LocalRunError> {
    let loaded = load_rules(platform, &args.rules).await?;
    let fleet = Fleet::new(FleetConfig {
        devices: args.fleet.devices.max(1),
        seed: args.fleet.seed,
        faulty_rate: 0.0,
    });
    let simulated = (!args.no_simulator).then_some(&fleet);
    let registered = register(platform, simulated).await?;
    banner::print(platform, simulated, &loaded, registered);

    let (stop_tx, stop_rx) = watch::channel(false);
    let sim_stats = Arc::new(SimulationStats::default());
    let simulator = simulated
        .map(|_| start_simulator(platform, &args.fleet, sim_stats.clone(), stop_rx.clone()));
    let deadline = (args.fleet.duration > 0)
        .then(|| Instant::now() + Duration::from_secs(args.fleet.duration + 10));
    let mut view = LiveView::new(platform, sim_stats.clone());
    if let Some(fleet) = simulated {
        view.sample(fleet);
    }
    show_until_stopped(&mut view, deadline).await;
    let _ = stop_tx.send(true);
    if let Some(simulator) = simulator {
        let _ = simulator.await;
    }
    drain(platform, deadline).await;
    view.render().await;
    summarise(platform, &sim_stats, args.report.as_deref()).await?;
    Ok(())
}

/// Store every rule file (`*.json`) in `dir`; their ids.
async fn load_rules(platform: &LocalPlatform, dir: &Path) -> Result<Vec<String>, LocalRunError> {
    let table = platform
        .physical("AlertRulesTable")
        .ok_or(LocalRunError::NoResource("AlertRulesTable"))?;
    let rules = DynamoDbRules::new(aws_sdk_dynamodb::Client::new(&platform.sdk), table);
    let mut loaded = Vec::new();
    for entry in list_dir(dir)? {
        let path = entry.map_err(LocalRunError::ListingRules)?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let rule = crate::rules::read_rule(&path)?;
            rules.put(&rule).await?;
            loaded.push(rule.rule_id);
        }
    }
    Ok(loaded)
}

/// The simulated fleet registered as an operator would import it (types, hierarchy,
/// gateways, heartbeats), since readings of devices outside the registry are quarantined;
/// and things for the devices that receive commands, as a deployment registers them. How
/// many registry rows were new.
async fn register(platform: &LocalPlatform, fleet: Option<&Fleet>) -> Result<usize, LocalRunError> {
    let registry = iotdp::wiring::device_registry(
        &platform.sdk,
        platform
            .physical("DeviceRegistryTable")
            .ok_or(LocalRunError::NoResource("DeviceRegistryTable"))?,
    );
    let Some(fleet) = fleet else {
        return Ok(0);
    };
    let mut registered = 0;
    for record in fleet.registry_records(chrono::Utc::now().timestamp_millis()) {
        if registry.create(&record).await? {
            registered += 1;
        }
    }
    let iot = aws_sdk_iot::Client::new(&platform.sdk);
    for device in fleet
        .devices
        .iter()
        .filter(|d| d.kind == DeviceKind::BatteryBox)
    {
        iot.create_thing()
            .thing_name(&device.id)
            .send()
            .await
            .map_err(|source| LocalRunError::CreatingThing {
                device_id: device.id.clone(),
                source: Box::new(source),
            })?;
    }
    Ok(registered)
}

/// The simulated fleet, publishing through Basic Ingest as the docs recommend.
fn start_simulator(
    platform: &LocalPlatform,
    fleet: &FleetArgs,
    stats: Arc<SimulationStats>,
    stop: watch::Receiver<bool>,
) -> JoinHandle<Result<(), FileError>> {
    let target = Target {
        endpoint: "127.0.0.1".into(),
        port: Some(platform.mqtt_addr.port()),
        cert: None,
        key: None,
        ca: None,
        basic_ingest_rule: banner::telemetry_rule(platform).map(|r| r.rule_name.clone()),
        broker_topics: false,
    };
    tokio::spawn(simulate::run(fleet.clone(), target, stats, stop))
}

/// Redraw the view every second until Ctrl-C or the deadline.
async fn show_until_stopped(view: &mut LiveView<'_>, deadline: Option<Instant>) {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                view.render().await;
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
            }
        }
    }
}

/// Let the last batches drain before the summary: at most 3 s after Ctrl-C, so everything
/// has stopped within 5 s; a second Ctrl-C skips the wait. A run with a duration waits up
/// to a minute, so its figures are final.
async fn drain(platform: &LocalPlatform, deadline: Option<Instant>) {
    let drain = if deadline.is_some_and(|d| Instant::now() >= d) {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(3)
    };
    let drain_until = Instant::now() + drain;
    let second_ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(second_ctrl_c);
    while Instant::now() < drain_until {
        let queued = platform.stats.queued.load(Ordering::Relaxed);
        let processed = platform.stats.ingest.lock().await.messages
            + platform.stats.presence_messages.load(Ordering::Relaxed);
        if processed >= queued && platform.ingest_backlog().await.unwrap_or_default() == 0 {
            break;
        }
        tokio::select! {
            _ = &mut second_ctrl_c => break,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// The summary line, and with `--report` the run's figures as JSON.
async fn summarise(
    platform: &LocalPlatform,
    sim_stats: &SimulationStats,
    report: Option<&Path>,
) -> Result<(), FileError> {
    let ingest = platform.stats.ingest.lock().await.clone();
    say(&format!(
        "\nsummary: {} published, {} publishes received, {} messages queued by the topic rules, {} processed by ingest \
         and {} presence events by the lifecycle function ({} readings stored, {} rejected and quarantined, {} messages returned for retry)",
        sim_stats.published.load(Ordering::Relaxed),
        platform.stats.broker.publishes.load(Ordering::Relaxed),
        platform.stats.queued.load(Ordering::Relaxed),
        ingest.messages,
        platform.stats.presence_messages.load(Ordering::Relaxed),
        ingest.records_written,
        ingest.readings_rejected(),
        ingest.failed_messages,
    ));
    if let Some(path) = report {
        let report = run_report(platform, sim_stats, &ingest).await;
        write_file(path, format!("{report:#}\n"))?;
    }
    Ok(())
}

/// The run's figures, for `--report`: each step of the pipeline's count, what became of the
/// readings, and what was left waiting.
async fn run_report(
    platform: &LocalPlatform,
    sim_stats: &SimulationStats,
    ingest: &iotdp::ingest::metrics::IngestMetrics,
) -> serde_json::Value {
    let dead_letters = match platform.physical("IngestDeadLetterQueue") {
        Some(url) => platform.queues.depth(url).await,
        None => None,
    };
    serde_json::json!({
        "published": sim_stats.published.load(Ordering::Relaxed),
        "publish_errors": sim_stats.errors.load(Ordering::Relaxed),
        "received_by_broker": platform.stats.broker.publishes.load(Ordering::Relaxed),
        "queued_by_rules": platform.stats.queued.load(Ordering::Relaxed),
        "rule_errors": platform.stats.rule_errors.load(Ordering::Relaxed),
        "processed_by_ingest": ingest.messages,
        "processed_by_lifecycle": platform.stats.presence_messages.load(Ordering::Relaxed),
        "returned_for_retry": ingest.failed_messages,
        "readings_accepted": ingest.readings_accepted,
        "records_written": ingest.records_written,
        "readings_rejected": ingest.readings_rejected(),
        "rejected_by_reason": ingest.rejected_by_reason.iter().map(|(r, n)| (r.as_str().to_owned(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
        "quarantine_lines": ingest.quarantine_lines,
        "ingest_backlog": platform.ingest_backlog().await,
        "dead_letters": dead_letters,
        "influxdb_url": platform.influxd().map(|p| p.url.clone()),
    })
}
