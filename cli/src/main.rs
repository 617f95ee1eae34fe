//! `iotdp`: the operator CLI. Works against real AWS or any endpoint set with
//! `AWS_ENDPOINT_URL` (moto, LocalStack). Every deployment name (tables, policy, store) comes
//! from its flag, its environment variable, or the outputs of the stack named by `--stack`.

mod cost;
mod deployment;
mod devices;
mod local;
mod output;
mod progress;
mod readings;
mod rollups;
mod simulate;
mod stream;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use clap::{CommandFactory, Parser, Subcommand};
use iotdp::adapters::dynamodb::alerts::{DynamoDbAlertStates, DynamoDbRules};
use iotdp::alerting::admin::act_on_alert;
use iotdp::alerting::event::AlarmState;
use iotdp::alerting::ports::{AlertKey, RuleSource};
use iotdp::alerting::rule::AlertRule;
use iotdp::alerting::state_machine::OperatorAction;
use iotdp::api::params::{parse_duration, parse_instant};
use serde_json::json;

use crate::deployment::{ALERT_STATE_TABLE, Deployment, RULES_TABLE};
use crate::output::{Column, OutputFormat, print_list, print_result};

/// The environment every AWS command reads, besides each flag's own variable.
const ENVIRONMENT: &str = "\
Environment:
  IOTDP_STACK        the stack whose outputs supply every name (as --stack)
  IOTDP_OUTPUT       table or json (as --output)
  AWS_REGION, AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
                     region and credentials, as the AWS CLI reads them
  AWS_ENDPOINT_URL   another endpoint for every AWS call (moto, LocalStack, `make local`)

A name is taken from its flag, else its environment variable (shown in each command's
--help), else the stack output named there.";

#[derive(Parser)]
#[command(
    name = "iotdp",
    version,
    about = "Operate an iotdp deployment: devices, readings, alert rules and alerts",
    after_help = ENVIRONMENT
)]
struct Cli {
    /// The deployed stack (CloudFormation) whose outputs supply every table, policy and store
    /// name; flags and their environment variables still win
    #[arg(long, global = true, env = "IOTDP_STACK")]
    stack: Option<String>,
    /// table for people; json for programs (JSON Lines for lists, the API's field names)
    #[arg(long, global = true, env = "IOTDP_OUTPUT", value_enum, default_value_t)]
    output: OutputFormat,
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
    /// The monthly bill of the reference loads (or --devices/--interval yours): iotdp, with
    /// Basic Ingest, and the baseline (IoT Core's Timestream action and IoT Events)
    Cost(cost::CostArgs),
    /// Devices: provisioning (things, certificates, registry), suspension, decommissioning
    Devices(devices::DevicesArgs),
    /// One device's metric over a time range, raw or aggregated into bins, from the deployed store
    Readings(readings::ReadingsArgs),
    /// Rollups: the job's coverage, and rebuilding a range from raw readings
    Rollups(rollups::RollupsArgs),
    /// The Kinesis transport: replay the batches ingest gave up on (named in the failure queue)
    Stream(stream::StreamArgs),
    /// Alert rules
    Rules {
        /// DynamoDB rules table [stack output: AlertRulesTableName]
        #[arg(long, env = "IOTDP_RULES_TABLE")]
        table: Option<String>,
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Alerts: the state of each (device, rule) pair
    Alerts {
        /// DynamoDB alert state table [stack output: AlertStateTableName]
        #[arg(long, env = "IOTDP_ALERT_STATE_TABLE")]
        table: Option<String>,
        /// The rules table, for each alert's severity [stack output: AlertRulesTableName]
        #[arg(long, env = "IOTDP_RULES_TABLE")]
        rules_table: Option<String>,
        #[command(subcommand)]
        action: AlertsAction,
    },
    /// Print a shell completion script: iotdp completions bash > /etc/bash_completion.d/iotdp
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
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
    /// Turn an AWS IoT Events alarm model (the JSON `aws iotevents describe-alarm-model`
    /// prints) into the equivalent rule and store it, reporting what has no equivalent
    ImportIotEvents {
        file: std::path::PathBuf,
        /// Print the rule and the report; store nothing
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum AlertsAction {
    /// List alert states
    List {
        /// Only this state: OK, PENDING, ALARM, ACKNOWLEDGED, LATCHED or DISABLED
        #[arg(long, value_parser = parse_state)]
        state: Option<AlarmState>,
    },
    /// Acknowledge an alarm: no re-notification until it clears (a LATCHED alarm: back to OK)
    Ack {
        device_id: String,
        rule_id: String,
        #[command(flatten)]
        version: IfVersion,
    },
    /// Hold back a pair's notifications until a time, or for a while (an alarm still raised
    /// then is notified again)
    Snooze {
        device_id: String,
        rule_id: String,
        /// When the snooze ends: RFC 3339 or epoch ms
        #[arg(long, conflicts_with = "for_", required_unless_present = "for_")]
        until: Option<String>,
        /// How long it lasts: 90s, 30m, 2h, 1d (at most 30 days)
        #[arg(long = "for")]
        for_: Option<String>,
        #[command(flatten)]
        version: IfVersion,
    },
    /// Stop evaluating a rule for one device (state DISABLED) until enabled
    Disable {
        device_id: String,
        rule_id: String,
        #[command(flatten)]
        version: IfVersion,
    },
    /// Evaluate a disabled pair again, from OK
    Enable {
        device_id: String,
        rule_id: String,
        #[command(flatten)]
        version: IfVersion,
    },
    /// Back to OK, forgetting the alarm (a condition that still holds raises it again)
    Reset {
        device_id: String,
        rule_id: String,
        #[command(flatten)]
        version: IfVersion,
    },
}

#[derive(clap::Args)]
struct IfVersion {
    /// Act only if the alert state is still at this version (the one `alerts list -o json` showed)
    #[arg(long = "if-version")]
    version: Option<u64>,
}

fn parse_state(text: &str) -> Result<AlarmState, String> {
    AlarmState::parse(text).ok_or_else(|| {
        format!(
            "'{text}' is not a state: use OK, PENDING, ALARM, ACKNOWLEDGED, LATCHED or DISABLED"
        )
    })
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
    let output = cli.output;
    match cli.command {
        Command::Local(args) => local::run(args).await,
        Command::Cost(args) => cost::run(args, output).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "iotdp", &mut std::io::stdout());
            Ok(())
        }
        Command::Simulate { fleet, mut target } => {
            // Basic Ingest by default when the stack names its telemetry rule.
            if target.basic_ingest_rule.is_none() && cli.stack.is_some() {
                target.basic_ingest_rule = Deployment::load(cli.stack)
                    .await
                    .optional(None, &deployment::TELEMETRY_RULE)
                    .await?;
            }
            simulate_fleet(fleet, target).await
        }
        Command::Devices(args) => {
            devices::run(args, &Deployment::load(cli.stack).await, output).await
        }
        Command::Readings(args) => {
            readings::run(args, &Deployment::load(cli.stack).await, output).await
        }
        Command::Rollups(args) => {
            rollups::run(args, &Deployment::load(cli.stack).await, output).await
        }
        Command::Stream(args) => {
            stream::run(args, &Deployment::load(cli.stack).await, output).await
        }
        Command::Rules { table, action } => {
            // Validate local input before touching AWS, so a bad file fails fast and offline.
            let rule_file = match &action {
                RulesAction::Put { file } => Some(read_rule(file)?),
                RulesAction::ImportIotEvents { file, dry_run } => {
                    let rule = import_iot_events(file)?;
                    if *dry_run {
                        return print_result(
                            output,
                            &json!({ "rule": rule }),
                            serde_json::to_string_pretty(&rule).unwrap_or_default(),
                        );
                    }
                    Some(rule)
                }
                _ => None,
            };
            let deployment = Deployment::load(cli.stack).await;
            let table = deployment.require(table, &RULES_TABLE).await?;
            let rules = DynamoDbRules::new(aws_sdk_dynamodb::Client::new(deployment.sdk()), table);
            rules_command(&rules, action, rule_file, output).await
        }
        Command::Alerts {
            table,
            rules_table,
            action,
        } => {
            let deployment = Deployment::load(cli.stack).await;
            let table = deployment.require(table, &ALERT_STATE_TABLE).await?;
            let dynamodb = aws_sdk_dynamodb::Client::new(deployment.sdk());
            let rules = deployment
                .optional(rules_table, &RULES_TABLE)
                .await?
                .map(|t| DynamoDbRules::new(dynamodb.clone(), t));
            let states = DynamoDbAlertStates::new(dynamodb, table);
            alerts_command(&states, rules.as_ref(), action, output).await
        }
    }
}

/// The rule an IoT Events alarm model maps to; the report (mapped, and what has no
/// equivalent) goes to stderr, so stdout stays the rule.
fn import_iot_events(file: &std::path::Path) -> Result<AlertRule, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let imported = iotdp::alerting::iot_events::import_alarm_model(&text)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    for line in &imported.mapped {
        eprintln!("mapped      {line}");
    }
    for line in &imported.not_mapped {
        eprintln!("not mapped  {line}");
    }
    Ok(imported.rule)
}

fn read_rule(file: &std::path::Path) -> Result<AlertRule, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    AlertRule::from_json(&text).map_err(|e| format!("{}: {e}", file.display()))
}

async fn simulate_fleet(
    fleet: simulate::FleetArgs,
    target: simulate::Target,
) -> Result<(), String> {
    let stats = Arc::new(simulate::SimulationStats::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(true);
    });
    let counter = progress::counter("messages published");
    let shown = stats.clone();
    let ticker = {
        let counter = counter.clone();
        tokio::spawn(async move {
            loop {
                counter.set_position(shown.published.load(Ordering::Relaxed));
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        })
    };
    let result = simulate::run(fleet, target, stats.clone(), stopped).await;
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

async fn rules_command(
    rules: &DynamoDbRules,
    action: RulesAction,
    rule_file: Option<AlertRule>,
    output: OutputFormat,
) -> Result<(), String> {
    match action {
        RulesAction::Put { .. } | RulesAction::ImportIotEvents { .. } => {
            let rule = rule_file.ok_or("no rule read")?;
            rules.put(&rule).await.map_err(|e| e.to_string())?;
            let sentence = format!("stored rule {}", rule.rule_id);
            print_result(output, &json!({ "rule": rule }), sentence)
        }
        RulesAction::List => {
            let mut all = rules.load_rules().await.map_err(|e| e.to_string())?;
            all.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
            let items: Vec<serde_json::Value> = all.iter().map(|r| json!(r)).collect();
            print_list(
                output,
                &items,
                &[
                    Column::new("RULE_ID", "rule_id", 24),
                    Column::new("ENABLED", "enabled", 8),
                    Column::new("SEVERITY", "severity", 9),
                    Column::new("METRIC", "metric", 16),
                    Column::new("NAME", "name", 0),
                ],
            )
        }
        RulesAction::Delete { rule_id } => {
            if rules.delete(&rule_id).await.map_err(|e| e.to_string())? {
                print_result(
                    output,
                    &json!({ "deleted": rule_id }),
                    format!("deleted rule {rule_id}"),
                )
            } else {
                Err(format!("no rule with rule_id '{rule_id}'"))
            }
        }
    }
}

async fn alerts_command(
    states: &DynamoDbAlertStates,
    rules: Option<&DynamoDbRules>,
    action: AlertsAction,
    output: OutputFormat,
) -> Result<(), String> {
    match action {
        AlertsAction::List { state } => {
            let severities: std::collections::HashMap<String, &'static str> = match rules {
                Some(rules) => rules
                    .load_rules()
                    .await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|r| (r.rule_id, r.severity.as_str()))
                    .collect(),
                None => Default::default(),
            };
            let all = states.list(state).await.map_err(|e| e.to_string())?;
            let items: Vec<serde_json::Value> = all
                .iter()
                .map(|(key, s)| {
                    iotdp::api::alert_json(key, s, severities.get(&key.rule_id).copied())
                })
                .collect();
            print_list(
                output,
                &items,
                &[
                    Column::new("DEVICE_ID", "device_id", 32),
                    Column::new("RULE_ID", "rule_id", 24),
                    Column::new("STATE", "state", 13),
                    Column::new("SEVERITY", "severity", 9),
                    Column::new("LAST_VALUE", "last_value", 14),
                    Column::new("SINCE", "since", 0),
                ],
            )
        }
        AlertsAction::Ack {
            device_id,
            rule_id,
            version,
        } => {
            let key = AlertKey { device_id, rule_id };
            operator_action(
                states,
                rules,
                key,
                OperatorAction::Acknowledge,
                version,
                output,
            )
            .await
        }
        AlertsAction::Snooze {
            device_id,
            rule_id,
            until,
            for_,
            version,
        } => {
            let now_ms = chrono::Utc::now().timestamp_millis();
            let until_ms = match (until, for_) {
                (Some(text), _) => parse_instant(&text, now_ms)
                    .ok_or_else(|| format!("--until '{text}' must be RFC 3339 or epoch ms"))?,
                (None, Some(text)) => {
                    let length = parse_duration(&text).ok_or_else(|| {
                        format!("--for '{text}' must be a duration such as 90s, 30m, 2h or 1d")
                    })?;
                    now_ms + length.as_millis() as i64
                }
                (None, None) => return Err("give --until or --for".into()),
            };
            if until_ms <= now_ms || until_ms - now_ms > 30 * 86_400_000 {
                return Err(
                    "a snooze must end in the future and within 30 days (disable the pair for longer)"
                        .into(),
                );
            }
            let key = AlertKey { device_id, rule_id };
            operator_action(
                states,
                rules,
                key,
                OperatorAction::Snooze { until_ms },
                version,
                output,
            )
            .await
        }
        AlertsAction::Disable {
            device_id,
            rule_id,
            version,
        } => {
            let key = AlertKey { device_id, rule_id };
            operator_action(states, rules, key, OperatorAction::Disable, version, output).await
        }
        AlertsAction::Enable {
            device_id,
            rule_id,
            version,
        } => {
            let key = AlertKey { device_id, rule_id };
            operator_action(states, rules, key, OperatorAction::Enable, version, output).await
        }
        AlertsAction::Reset {
            device_id,
            rule_id,
            version,
        } => {
            let key = AlertKey { device_id, rule_id };
            operator_action(states, rules, key, OperatorAction::Reset, version, output).await
        }
    }
}

/// One operator action through the same use case the API calls. Snoozing or disabling a pair
/// never evaluated is allowed for a rule that exists.
async fn operator_action(
    states: &DynamoDbAlertStates,
    rules: Option<&DynamoDbRules>,
    key: AlertKey,
    action: OperatorAction,
    version: IfVersion,
    output: OutputFormat,
) -> Result<(), String> {
    let create_missing = matches!(
        action,
        OperatorAction::Snooze { .. } | OperatorAction::Disable
    ) && match rules {
        _ if key.rule_id == iotdp::alerting::rule::NO_DATA_RULE_ID => true,
        Some(rules) => rules
            .load_rules()
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .any(|r| r.rule_id == key.rule_id),
        None => false,
    };
    let state = act_on_alert(states, &key, action, version.version, create_missing)
        .await
        .map_err(|e| e.to_string())?;
    print_result(
        output,
        &iotdp::api::alert_json(&key, &state, None),
        format!(
            "{} {} / {}: {} (version {})",
            action.name(),
            key.device_id,
            key.rule_id,
            state.state.as_str(),
            state.version
        ),
    )
}
