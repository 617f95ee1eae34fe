//! `iotdp`: the operator CLI. Works against real AWS or any endpoint set with
//! `AWS_ENDPOINT_URL` (moto, LocalStack). Table names come from flags or the environment
//! (the stack's outputs `AlertRulesTableName` and `AlertStateTableName`).

mod devices;
mod local;
mod readings;
mod simulate;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use iotdp::adapters::dynamodb::alerts::{DynamoDbAlertStates, DynamoDbRules};
use iotdp::alerting::admin::acknowledge_alert;
use iotdp::alerting::event::AlarmState;
use iotdp::alerting::ports::{AlertKey, RuleSource};
use iotdp::alerting::rule::AlertRule;
use iotdp::wiring::load_sdk_config;

#[derive(Parser)]
#[command(
    name = "iotdp",
    version,
    about = "Operate an iotdp deployment: devices, alert rules and alerts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform on this machine (moto, MQTT on 127.0.0.1:1883, topic rules,
    /// functions), load demo rules, simulate a fleet and show a live view until Ctrl-C
    Local(local::LocalArgs),
    /// Publish a simulated fleet over MQTT (locally, or to AWS IoT Core with --cert)
    Simulate {
        #[command(flatten)]
        fleet: simulate::FleetArgs,
        #[command(flatten)]
        target: simulate::Target,
    },
    /// Devices: provisioning (things, certificates, registry), suspension, decommissioning
    Devices(devices::DevicesArgs),
    /// One device's metric over a time range, raw or aggregated into bins, from the deployed store
    Readings(readings::ReadingsArgs),
    /// Alert rules
    Rules {
        #[arg(
            long,
            env = "IOTDP_RULES_TABLE",
            help = "DynamoDB rules table (stack output AlertRulesTableName)"
        )]
        table: String,
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Alerts: the state of each (device, rule) pair
    Alerts {
        #[arg(
            long,
            env = "IOTDP_ALERT_STATE_TABLE",
            help = "DynamoDB alert state table (stack output AlertStateTableName)"
        )]
        table: String,
        #[command(subcommand)]
        action: AlertsAction,
    },
}

#[derive(Subcommand)]
enum RulesAction {
    /// Validate a rule file and store it (replacing the rule with the same rule_id)
    Put { file: std::path::PathBuf },
    /// List rules
    List,
    /// Delete a rule by id
    Delete { rule_id: String },
}

#[derive(Subcommand)]
enum AlertsAction {
    /// List alert states
    List {
        /// Only this state: OK, PENDING, ALARM or ACKNOWLEDGED
        #[arg(long, value_parser = parse_state)]
        state: Option<AlarmState>,
    },
    /// Acknowledge an alarm: no re-notification until it clears
    Ack { device_id: String, rule_id: String },
}

fn parse_state(text: &str) -> Result<AlarmState, String> {
    AlarmState::parse(text)
        .ok_or_else(|| format!("'{text}' is not a state: use OK, PENDING, ALARM or ACKNOWLEDGED"))
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let command = match cli.command {
        Command::Local(args) => return local::run(args).await,
        Command::Devices(args) => return devices::run(args).await,
        Command::Readings(args) => return readings::run(args).await,
        Command::Simulate { fleet, target } => {
            let stats = Arc::new(simulate::SimulationStats::default());
            let (stop, stopped) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                let _ = stop.send(true);
            });
            simulate::run(fleet, target, stats.clone(), stopped).await?;
            println!(
                "published {} messages ({} errors)",
                stats.published.load(std::sync::atomic::Ordering::Relaxed),
                stats.errors.load(std::sync::atomic::Ordering::Relaxed)
            );
            return Ok(());
        }
        other => other,
    };
    // Validate local input before touching AWS, so a bad file fails fast and offline.
    let rule_file = match &command {
        Command::Rules {
            action: RulesAction::Put { file },
            ..
        } => {
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            Some(AlertRule::from_json(&text).map_err(|e| format!("{}: {e}", file.display()))?)
        }
        _ => None,
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(&load_sdk_config().await);
    match command {
        Command::Local(_)
        | Command::Simulate { .. }
        | Command::Devices(_)
        | Command::Readings(_) => {
            unreachable!("handled above")
        }
        Command::Rules { table, action } => {
            let rules = DynamoDbRules::new(dynamodb, table);
            match action {
                RulesAction::Put { .. } => {
                    let rule = rule_file.ok_or("no rule read")?;
                    rules.put(&rule).await.map_err(|e| e.to_string())?;
                    println!("stored rule {}", rule.rule_id);
                }
                RulesAction::List => {
                    let mut all = rules.load_rules().await.map_err(|e| e.to_string())?;
                    all.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
                    println!(
                        "{:<24} {:<8} {:<9} {:<16} NAME",
                        "RULE_ID", "ENABLED", "SEVERITY", "METRIC"
                    );
                    for r in all {
                        println!(
                            "{:<24} {:<8} {:<9} {:<16} {}",
                            r.rule_id,
                            r.enabled,
                            r.severity.as_str(),
                            r.metric,
                            r.name
                        );
                    }
                }
                RulesAction::Delete { rule_id } => {
                    if rules.delete(&rule_id).await.map_err(|e| e.to_string())? {
                        println!("deleted rule {rule_id}");
                    } else {
                        return Err(format!("no rule with rule_id '{rule_id}'"));
                    }
                }
            }
        }
        Command::Alerts { table, action } => {
            let states = DynamoDbAlertStates::new(dynamodb, table);
            match action {
                AlertsAction::List { state } => {
                    let all = states.list(state).await.map_err(|e| e.to_string())?;
                    println!(
                        "{:<32} {:<24} {:<13} {:<14} SINCE",
                        "DEVICE_ID", "RULE_ID", "STATE", "LAST_VALUE"
                    );
                    for (key, s) in all {
                        let since = s
                            .alarm_since_ms
                            .or(s.last_change_ms)
                            .and_then(chrono_ms)
                            .unwrap_or_default();
                        let value = s.last_measured.map(|v| v.to_string()).unwrap_or_default();
                        println!(
                            "{:<32} {:<24} {:<13} {:<14} {since}",
                            key.device_id,
                            key.rule_id,
                            s.state.as_str(),
                            value
                        );
                    }
                }
                AlertsAction::Ack { device_id, rule_id } => {
                    let key = AlertKey { device_id, rule_id };
                    acknowledge_alert(&states, &key)
                        .await
                        .map_err(|e| e.to_string())?;
                    println!("acknowledged {} / {}", key.device_id, key.rule_id);
                }
            }
        }
    }
    Ok(())
}

fn chrono_ms(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}
