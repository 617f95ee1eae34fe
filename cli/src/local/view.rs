//! The live terminal view: one screen, redrawn every second (one line per second when stdout
//! is not a terminal).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use iotdp::ingest::metrics::IngestMetrics;
use iotdp::query::model::{Aggregate, SeriesQuery, TimeRange};
use iotdp::query::ports::TimeSeriesReader;
use iotdp_local::platform::{LocalPlatform, PlatformStats};
use iotdp_simulator::{DeviceKind, Fleet};

use crate::simulate::SimulationStats;

/// How long the store has to answer the view's read-back queries.
const QUERY_BUDGET: Duration = Duration::from_millis(500);
/// The view must keep drawing when the endpoint is saturated: its own calls get this long.
const DEPTH_BUDGET: Duration = Duration::from_millis(300);

pub(super) struct LiveView<'a> {
    platform: &'a LocalPlatform,
    simulation: Arc<SimulationStats>,
    /// What the view queries back: the first battery box's voltage, the first green wall's
    /// zones.
    sample_battery: Option<String>,
    sample_site: Option<iotdp::domain::LocationPath>,
    /// The last answers read back from the store, refreshed every few seconds.
    queried: Vec<String>,
    renders: u64,
    started: tokio::time::Instant,
    /// Publishes, readings accepted and records written at the last render, for the rates.
    last: (u64, u64, u64),
    dead_letter_url: Option<String>,
}

/// The counts a render shows beyond the platform's own: per-second rates and queue depths.
struct Readout {
    publishes: u64,
    publishes_per_s: u64,
    accepted_per_s: u64,
    written_per_s: u64,
    backlog: String,
    dead_letters: String,
}

impl<'a> LiveView<'a> {
    pub(super) fn new(platform: &'a LocalPlatform, simulation: Arc<SimulationStats>) -> Self {
        let dead_letter_url = platform
            .physical("IngestDeadLetterQueue")
            .map(str::to_owned);
        Self {
            platform,
            simulation,
            sample_battery: None,
            sample_site: None,
            queried: Vec::new(),
            renders: 0,
            started: tokio::time::Instant::now(),
            last: (0, 0, 0),
            dead_letter_url,
        }
    }

    /// Read back the simulated fleet's first battery box and first green wall.
    pub(super) fn sample(&mut self, fleet: &Fleet) {
        self.sample_battery = fleet
            .devices
            .iter()
            .find(|d| d.kind == DeviceKind::BatteryBox)
            .map(|d| d.id.clone());
        self.sample_site = fleet
            .registry_records(0)
            .into_iter()
            .find(|r| r.device_type == "green-wall-gateway")
            .map(|r| r.path);
    }

    /// Read the store back through the query port: what the query API will serve.
    async fn query_store(&mut self) {
        let now = chrono::Utc::now().timestamp_millis();
        let mut answers = Vec::new();
        if let Some(battery) = &self.sample_battery {
            let text = self.battery_voltage(battery, now).await;
            answers.push(format!("{battery} voltage, 1-min avg, last 5 min: {text}"));
        }
        if let Some(site) = &self.sample_site {
            let text = self.site_moisture(site, now).await;
            answers.push(format!("{site} moisture by zone, 6 h avg: {text}"));
        }
        self.queried = answers;
    }

    async fn battery_voltage(&self, battery: &str, now: i64) -> String {
        let query = SeriesQuery {
            device_id: battery.to_owned(),
            metric: "voltage".into(),
            range: TimeRange {
                from_ms: now - 5 * 60_000,
                to_ms: now,
            },
            bins: Some((Duration::from_secs(60), Aggregate::Avg)),
            limit: None,
        };
        match tokio::time::timeout(QUERY_BUDGET, self.platform.reader.series(&query)).await {
            Ok(Ok(points)) => points
                .iter()
                .map(|p| match &p.value {
                    iotdp::domain::MetricValue::Number(v) => format!("{v:.3}"),
                    other => format!("{other:?}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
            Ok(Err(e)) => format!("query failed: {e}"),
            Err(_) => "query timed out".into(),
        }
    }

    async fn site_moisture(&self, site: &iotdp::domain::LocationPath, now: i64) -> String {
        let range = TimeRange {
            from_ms: now - 6 * 3_600_000,
            to_ms: now,
        };
        let answer = self
            .platform
            .reader
            .drill_down("moisture", site, range, Aggregate::Avg);
        match tokio::time::timeout(QUERY_BUDGET, answer).await {
            Ok(Ok(groups)) => groups
                .iter()
                .map(|g| format!("{} {:.3}", g.group, g.value))
                .collect::<Vec<_>>()
                .join(", "),
            Ok(Err(e)) => format!("query failed: {e}"),
            Err(_) => "query timed out".into(),
        }
    }

    pub(super) async fn render(&mut self) {
        // Real queries only where the store can answer them (moto's Timestream cannot).
        if self.renders.is_multiple_of(5)
            && !matches!(
                self.platform.reader,
                iotdp::wiring::SelectedReader::Timestream(_)
            )
        {
            self.query_store().await;
        }
        self.renders += 1;
        let stats = &self.platform.stats;
        let ingest = stats.ingest.lock().await.clone();
        let readout = self.readout(&ingest).await;
        let recent = stats
            .recent_alerts
            .lock()
            .await
            .iter()
            .cloned()
            .collect::<Vec<_>>();
        let mut lines = self.traffic_lines(stats, &ingest, &readout);
        lines.extend(self.pipeline_lines(stats, &ingest, &readout));
        lines.push(format!(
            "recent alerts       {}",
            recent.first().cloned().unwrap_or_default()
        ));
        self.draw(&lines, &recent);
    }

    /// The rates since the last render, and the queue depths (`?` when they take too long).
    async fn readout(&mut self, ingest: &IngestMetrics) -> Readout {
        let publishes = self.platform.stats.broker.publishes.load(Ordering::Relaxed);
        let (p0, a0, w0) = self.last;
        self.last = (publishes, ingest.readings_accepted, ingest.records_written);
        let depth = |depth: Option<Option<usize>>| {
            depth
                .flatten()
                .map_or_else(|| "?".to_owned(), |d| d.to_string())
        };
        let dead_letters = match &self.dead_letter_url {
            Some(url) => depth(
                tokio::time::timeout(DEPTH_BUDGET, self.platform.queues.depth(url))
                    .await
                    .ok(),
            ),
            None => "-".into(),
        };
        let backlog = depth(
            tokio::time::timeout(DEPTH_BUDGET, self.platform.ingest_backlog())
                .await
                .ok(),
        );
        Readout {
            publishes,
            publishes_per_s: publishes - p0,
            accepted_per_s: ingest.readings_accepted - a0,
            written_per_s: ingest.records_written - w0,
            backlog,
            dead_letters,
        }
    }

    /// The header, then what came in: connections, publishes, readings, records, rejections.
    fn traffic_lines(
        &self,
        s: &PlatformStats,
        ingest: &IngestMetrics,
        readout: &Readout,
    ) -> Vec<String> {
        let rejected: Vec<String> = ingest
            .rejected_by_reason
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        vec![
            format!(
                "iotdp local  up {:>5} s   store: {}   Ctrl-C to stop",
                self.started.elapsed().as_secs(),
                self.platform.store_description
            ),
            format!(
                "devices connected   {:>8}   (simulated: {} published, {} errors)   presence events {}",
                s.broker.connected.load(Ordering::Relaxed),
                self.simulation.published.load(Ordering::Relaxed),
                self.simulation.errors.load(Ordering::Relaxed),
                s.presence_events.load(Ordering::Relaxed)
            ),
            format!(
                "MQTT publishes/s    {:>8}   total {}",
                readout.publishes_per_s, readout.publishes
            ),
            format!(
                "readings accepted/s {:>8}   total {}",
                readout.accepted_per_s, ingest.readings_accepted
            ),
            format!(
                "records written/s   {:>8}   total {}   write calls {}  retries {}",
                readout.written_per_s,
                ingest.records_written,
                ingest.write_calls,
                ingest.write_retries
            ),
            format!(
                "rejected            {:>8}   {}",
                ingest.readings_rejected(),
                rejected.join(", ")
            ),
        ]
    }

    /// What the pipeline did with it: retries, alerts, commands, the registry, rollups.
    fn pipeline_lines(
        &self,
        s: &PlatformStats,
        ingest: &IngestMetrics,
        readout: &Readout,
    ) -> Vec<String> {
        let backlog = &readout.backlog;
        let dlq = &readout.dead_letters;
        vec![
            format!(
                "messages retried    {:>8}   ingest backlog {backlog}   dead-letter queue depth {dlq}   rule errors {}",
                ingest.failed_messages,
                s.rule_errors.load(Ordering::Relaxed)
            ),
            format!(
                "alerts raised       {:>8}   cleared {}   (as received by an SQS subscriber of the SNS topic)",
                s.alerts_raised.load(Ordering::Relaxed),
                s.alerts_cleared.load(Ordering::Relaxed)
            ),
            format!(
                "commands            {:>8} by rules ({} failed)   shadow updates {}   applied by devices {}   delivered {}   expired {}",
                ingest.alerts.commands_sent,
                ingest.alerts.command_failures,
                self.platform.broker.shadows.updates(),
                self.simulation.commands_applied.load(Ordering::Relaxed),
                s.commands_settled.load(Ordering::Relaxed),
                s.commands_expired.load(Ordering::Relaxed)
            ),
            format!(
                "registry            {:>8} reads  {} last_seen writes   silence watch runs {}  no_data raised {}",
                ingest.registry_reads,
                ingest.registry_writes,
                s.silence_runs.load(Ordering::Relaxed),
                s.no_data_raised.load(Ordering::Relaxed)
            ),
            format!(
                "rollups             {:>8} runs  watermark {}   windows {}  late windows recomputed {}  rows {}  failed runs {}",
                s.rollup_runs.load(Ordering::Relaxed),
                rollup_watermark(s),
                s.rollup_windows.load(Ordering::Relaxed),
                s.rollup_late_windows.load(Ordering::Relaxed),
                s.rollup_rows.load(Ordering::Relaxed),
                s.rollup_failures.load(Ordering::Relaxed)
            ),
        ]
    }

    /// A terminal gets the whole screen redrawn; a log gets one line of counts (and the
    /// read-back answers every fifth).
    fn draw(&self, lines: &[String], recent: &[String]) {
        let mut out = std::io::stdout().lock();
        if out.is_terminal() {
            let _ = writeln!(out, "\x1b[2J\x1b[H{}", lines.join("\n"));
            for answer in &self.queried {
                let _ = writeln!(out, "read back           {answer}");
            }
            for alert in recent.iter().skip(1) {
                let _ = writeln!(out, "                    {alert}");
            }
        } else {
            let _ = writeln!(out, "{}", lines[1..10].join(" | "));
            if self.renders % 5 == 1 {
                for answer in &self.queried {
                    let _ = writeln!(out, "read back: {answer}");
                }
            }
        }
        let _ = out.flush();
    }
}

/// How far the rollups trail now, once the job has run.
fn rollup_watermark(s: &PlatformStats) -> String {
    if s.rollup_runs.load(Ordering::Relaxed) == 0 {
        "not yet computed".to_owned()
    } else {
        format!(
            "{} s behind",
            s.rollup_lag_ms.load(Ordering::Relaxed) / 1000
        )
    }
}
