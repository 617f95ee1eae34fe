//! `iotdp devices …`: provisioning and lifecycle of devices (IoT things, certificates, the
//! registry), and commands through their shadows.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use iotdp::adapters::dynamodb::registry::DynamoDbRegistry;
use iotdp::adapters::iot_things::IotThings;
use iotdp::devices::ports::DeviceRegistry;
use iotdp::devices::provisioning::{
    ProvisioningTarget, create_device, decommission_device, import_devices, parse_import,
    set_device_status,
};
use iotdp::devices::record::{DeviceRecord, DeviceStatus, parse_tags};
use iotdp::domain::LocationPath;
use serde_json::{Value, json};

use crate::deployment::{
    COMMAND_TABLE, DEVICE_POLICY, Deployment, IOT_DATA_ENDPOINT, REGISTRY_TABLE,
};
use crate::output::{Column, OutputFormat, print_list, print_result};

#[derive(Args)]
pub struct DevicesArgs {
    /// DynamoDB device registry [stack output: DeviceRegistryTableName]
    #[arg(long, env = "IOTDP_REGISTRY_TABLE")]
    registry_table: Option<String>,
    /// IoT policy attached to device certificates [stack output: DevicePolicyName]
    #[arg(long, env = "IOTDP_DEVICE_POLICY")]
    policy: Option<String>,
    /// DynamoDB command history [stack output: CommandTableName]
    #[arg(long, env = "IOTDP_COMMAND_TABLE")]
    command_table: Option<String>,
    /// IoT Data Plane endpoint URL (aws iot describe-endpoint --endpoint-type iot:Data-ATS);
    /// default: the SDK's regional one [stack output: IotDataEndpoint]
    #[arg(long, env = "IOTDP_IOT_DATA_ENDPOINT")]
    iot_data_endpoint: Option<String>,
    #[command(subcommand)]
    action: DevicesAction,
}

#[derive(Subcommand)]
enum DevicesAction {
    /// Create the IoT thing, a certificate with the device policy, the registry row, and the
    /// files the device needs to connect (in --out)
    Create {
        device_id: String,
        #[arg(long = "type")]
        device_type: String,
        /// Location: site/zone/section/spot (up to four levels)
        #[arg(long, default_value = "")]
        path: String,
        /// The gateway allowed to report for this device
        #[arg(long)]
        gateway: Option<String>,
        /// Longest expected silence in seconds; past it a no_data alert is raised
        #[arg(long)]
        heartbeat: Option<u32>,
        /// Free-form tags, key=value (repeatable or comma-separated)
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Folder for certificate, private key (0600), root CA and device.json
        #[arg(long)]
        out: PathBuf,
    },
    /// Register a fleet from CSV (device_id,device_type,path,gateway_id,heartbeat_seconds,tags);
    /// idempotent: re-running it changes nothing
    Import {
        file: PathBuf,
        /// Credentials of new devices go to <out>/<device_id>/
        #[arg(long)]
        out: PathBuf,
    },
    /// List devices
    List {
        #[arg(long = "type")]
        device_type: Option<String>,
        #[arg(long, value_parser = parse_status)]
        status: Option<DeviceStatus>,
        /// Only devices at or below this site/zone/section/spot prefix
        #[arg(long)]
        path: Option<String>,
    },
    /// Show one device's registry record
    Show { device_id: String },
    /// Quarantine the device's readings as device_suspended until resumed
    Suspend { device_id: String },
    /// Let a suspended device report again
    Resume { device_id: String },
    /// Deactivate and detach its certificates, delete the thing; keep its registry row and data
    Decommission { device_id: String },
    /// Send a command: merge DESIRED (a JSON object) into the device's shadow and record it;
    /// it is delivered when the device reports it applied
    Command {
        device_id: String,
        /// The desired-state patch, e.g. '{"setpoint":21}' (null deletes a key)
        desired: String,
        /// Seconds the device has to apply it (1 to 604800)
        #[arg(long, default_value_t = iotdp::commands::command::DEFAULT_EXPIRES_IN_SECONDS)]
        expires_in: u64,
        /// Idempotency key: the same key again returns the first command instead of a second
        #[arg(long)]
        key: Option<String>,
        /// Wait up to this many seconds for the command to settle (exit 1 unless delivered)
        #[arg(long, num_args = 0..=1, default_missing_value = "60")]
        wait: Option<u64>,
    },
    /// The device's commands, newest first
    Commands { device_id: String },
    /// The device's shadow: desired, reported, delta, version
    Shadow { device_id: String },
}

fn parse_status(text: &str) -> Result<DeviceStatus, String> {
    DeviceStatus::parse(text)
        .ok_or_else(|| format!("'{text}' is not a status: use active, suspended or decommissioned"))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub async fn run(
    args: DevicesArgs,
    deployment: &Deployment,
    output: OutputFormat,
) -> Result<(), String> {
    // Local input is validated before any AWS call, so a typo fails fast and offline.
    let new_record = match &args.action {
        DevicesAction::Create {
            device_id,
            device_type,
            path,
            gateway,
            heartbeat,
            tags,
            ..
        } => {
            let mut record = DeviceRecord::new(device_id, device_type, now_ms());
            record.path = LocationPath::parse(path).map_err(|e| e.to_string())?;
            record.gateway_id = gateway.clone();
            record.heartbeat_seconds = *heartbeat;
            record.tags = parse_tags(&tags.join(",")).map_err(|e| e.to_string())?;
            record.validate().map_err(|e| e.to_string())?;
            Some(record)
        }
        _ => None,
    };
    let imported = match &args.action {
        DevicesAction::Import { file, .. } => {
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            Some(
                parse_import(&file.display().to_string(), &text, now_ms())
                    .map_err(|e| e.to_string())?,
            )
        }
        _ => None,
    };
    let needs_policy = matches!(
        args.action,
        DevicesAction::Create { .. }
            | DevicesAction::Import { .. }
            | DevicesAction::Decommission { .. }
    );
    let policy = if needs_policy {
        deployment.require(args.policy, &DEVICE_POLICY).await?
    } else {
        String::new()
    };
    let table = deployment
        .require(args.registry_table, &REGISTRY_TABLE)
        .await?;
    let sdk = deployment.sdk();
    let registry = DynamoDbRegistry::new(aws_sdk_dynamodb::Client::new(sdk), &table);
    if matches!(
        args.action,
        DevicesAction::Command { .. }
            | DevicesAction::Commands { .. }
            | DevicesAction::Shadow { .. }
    ) {
        let config = iotdp::config::CommandsConfig {
            table: deployment
                .require(args.command_table, &COMMAND_TABLE)
                .await?,
            iot_data_endpoint: deployment
                .optional(args.iot_data_endpoint, &IOT_DATA_ENDPOINT)
                .await?,
        };
        let commands = iotdp::wiring::commands(sdk, &config);
        return command_action(args.action, &registry, &commands, output).await;
    }
    let iot = IotThings::new(aws_sdk_iot::Client::new(sdk));
    match args.action {
        DevicesAction::Create { out, .. } => {
            let record = new_record.ok_or("no device read")?;
            let target = ProvisioningTarget {
                policy_name: &policy,
                out_dir: &out,
            };
            let created = create_device(&registry, &iot, record, &target)
                .await
                .map_err(|e| e.to_string())?;
            let sentence = format!(
                "created {} ({}) certificate {}\nendpoint {}\nfiles in {}",
                created.record.device_id,
                created.record.device_type,
                created.certificate_arn,
                created.endpoint,
                created.files.display()
            );
            let result = json!({
                "device": iotdp::api::device_json(&created.record),
                "certificate_arn": created.certificate_arn,
                "endpoint": created.endpoint,
                "files": created.files.display().to_string(),
            });
            print_result(output, &result, sentence)?;
        }
        DevicesAction::Import { out, .. } => {
            let records = imported.ok_or("no file read")?;
            let bar = crate::progress::bar(records.len() as u64, "devices");
            let report = import_devices(&registry, &iot, records, &policy, &out, || bar.inc(1))
                .await
                .map_err(|e| e.to_string());
            bar.finish_and_clear();
            let report = report?;
            let mut sentence = format!(
                "created {}, updated {}, unchanged {}",
                report.created.len(),
                report.updated.len(),
                report.unchanged.len()
            );
            for id in &report.created {
                sentence.push_str(&format!(
                    "\ncreated {id} (files in {})",
                    out.join(id).display()
                ));
            }
            for id in &report.updated {
                sentence.push_str(&format!("\nupdated {id}"));
            }
            let result = json!({
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
            });
            print_result(output, &result, sentence)?;
        }
        DevicesAction::List {
            device_type,
            status,
            path,
        } => {
            let prefix = LocationPath::parse(path.as_deref().unwrap_or_default())
                .map_err(|e| e.to_string())?;
            let devices = registry.list().await.map_err(|e| e.to_string())?;
            let items: Vec<Value> = devices
                .iter()
                .filter(|d| {
                    device_type.as_ref().is_none_or(|t| &d.device_type == t)
                        && status.is_none_or(|s| d.status == s)
                        && d.path.starts_with(&prefix)
                })
                .map(iotdp::api::device_json)
                .collect();
            print_list(
                output,
                &items,
                &[
                    Column::new("DEVICE_ID", "device_id", 28),
                    Column::new("TYPE", "device_type", 16),
                    Column::new("STATUS", "status", 15),
                    Column::new("CONNECTED", "connected", 10),
                    Column::new("PATH", "path", 28),
                    Column::new("GATEWAY", "gateway_id", 20),
                    Column::new("LAST_SEEN", "last_seen", 0),
                ],
            )?;
        }
        DevicesAction::Show { device_id } => {
            let device = registry
                .get_many(&[&device_id])
                .await
                .map_err(|e| e.to_string())?
                .pop()
                .ok_or_else(|| format!("device '{device_id}' is not registered"))?;
            // The same representation the query API answers with.
            let shown = iotdp::api::device_json(&device);
            let pretty = serde_json::to_string_pretty(&shown).map_err(|e| e.to_string())?;
            print_result(output, &shown, pretty)?;
        }
        DevicesAction::Suspend { device_id } => {
            let device =
                set_device_status(&registry, &device_id, DeviceStatus::Suspended, now_ms())
                    .await
                    .map_err(|e| e.to_string())?;
            print_result(
                output,
                &json!({ "device": iotdp::api::device_json(&device) }),
                format!("suspended {device_id}: its readings are quarantined as device_suspended"),
            )?;
        }
        DevicesAction::Resume { device_id } => {
            let device = set_device_status(&registry, &device_id, DeviceStatus::Active, now_ms())
                .await
                .map_err(|e| e.to_string())?;
            print_result(
                output,
                &json!({ "device": iotdp::api::device_json(&device) }),
                format!("resumed {device_id}"),
            )?;
        }
        DevicesAction::Decommission { device_id } => {
            let retired = decommission_device(&registry, &iot, &device_id, &policy, now_ms())
                .await
                .map_err(|e| e.to_string())?;
            print_result(
                output,
                &json!({ "device_id": device_id, "status": "decommissioned", "certificates_retired": retired }),
                format!(
                    "decommissioned {device_id}: {} certificate(s) deactivated and detached, thing deleted; registry row and data kept",
                    retired.len()
                ),
            )?;
        }
        DevicesAction::Command { .. }
        | DevicesAction::Commands { .. }
        | DevicesAction::Shadow { .. } => unreachable!("command actions return above"),
    }
    Ok(())
}

/// `devices command`, `devices commands` and `devices shadow`: the use case the API runs,
/// called with the operator's own AWS credentials.
async fn command_action(
    action: DevicesAction,
    registry: &DynamoDbRegistry,
    commands: &iotdp::wiring::AwsCommands,
    output: OutputFormat,
) -> Result<(), String> {
    use iotdp::commands::command::{CommandRequest, CommandSource, CommandStatus};
    let device_id = match &action {
        DevicesAction::Command { device_id, .. }
        | DevicesAction::Commands { device_id }
        | DevicesAction::Shadow { device_id } => device_id.clone(),
        _ => unreachable!("only command actions come here"),
    };
    let device = registry
        .get_many(&[&device_id])
        .await
        .map_err(|e| e.to_string())?
        .pop()
        .ok_or_else(|| format!("device '{device_id}' is not registered"))?;
    match action {
        DevicesAction::Command {
            desired,
            expires_in,
            key,
            wait,
            ..
        } => {
            if device.status != DeviceStatus::Active {
                return Err(format!(
                    "device '{device_id}' is {}: it takes no commands; `iotdp devices resume {device_id}` first",
                    device.status.as_str()
                ));
            }
            let desired: Value = serde_json::from_str(&desired).map_err(|e| {
                format!("DESIRED must be a JSON object such as '{{\"setpoint\":21}}': {e}")
            })?;
            let Value::Object(desired) = desired else {
                return Err("DESIRED must be a JSON object such as '{\"setpoint\":21}'".into());
            };
            let request =
                CommandRequest::new(desired, Some(expires_in), key).map_err(|e| e.to_string())?;
            let issued_by = format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "operator".into())
            );
            let mut command = commands
                .issue(
                    &device_id,
                    &request,
                    &issued_by,
                    CommandSource::Api,
                    now_ms(),
                )
                .await
                .map_err(|e| e.to_string())?;
            if let Some(seconds) = wait {
                let started = std::time::Instant::now();
                let deadline = started + std::time::Duration::from_secs(seconds);
                while command.status == CommandStatus::Pending
                    && std::time::Instant::now() < deadline
                {
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    command = commands
                        .get(&device_id, &command.command_id)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or("the command disappeared from the history")?;
                }
                let shown = json!({ "command": iotdp::api::command_json(&command) });
                if command.status != CommandStatus::Delivered {
                    let _ = print_result(
                        output,
                        &shown,
                        serde_json::to_string_pretty(&shown).unwrap_or_default(),
                    );
                    return Err(match command.status {
                        CommandStatus::Pending => format!(
                            "command {} to {device_id} is still pending after {seconds} s: the device has not reported it applied (is it connected?)",
                            command.command_id
                        ),
                        other => format!(
                            "command {} to {device_id} is {}{}",
                            command.command_id,
                            other.as_str(),
                            command
                                .detail
                                .as_deref()
                                .map(|d| format!(": {d}"))
                                .unwrap_or_default()
                        ),
                    });
                }
                let sentence = format!(
                    "command {} delivered to {device_id} after {:.1} s",
                    command.command_id,
                    started.elapsed().as_secs_f64()
                );
                return print_result(output, &shown, sentence);
            }
            let shown = json!({ "command": iotdp::api::command_json(&command) });
            let sentence = format!(
                "command {} to {device_id}: {} (shadow version {})",
                command.command_id,
                command.status.as_str(),
                command.shadow_version.map_or("?".into(), |v| v.to_string())
            );
            print_result(output, &shown, sentence)
        }
        DevicesAction::Commands { .. } => {
            let history = commands
                .history(&device_id)
                .await
                .map_err(|e| e.to_string())?;
            let items: Vec<Value> = history.iter().map(iotdp::api::command_json).collect();
            print_list(
                output,
                &items,
                &[
                    Column::new("COMMAND_ID", "command_id", 28),
                    Column::new("STATUS", "status", 11),
                    Column::new("SOURCE", "source", 7),
                    Column::new("ISSUED_BY", "issued_by", 20),
                    Column::new("ISSUED_AT", "issued_at", 25),
                    Column::new("DESIRED", "desired", 0),
                ],
            )
        }
        DevicesAction::Shadow { .. } => {
            let shadow = commands
                .shadow(&device_id)
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            let shown = iotdp::api::shadow_json(&device_id, &shadow);
            let pretty = serde_json::to_string_pretty(&shown).map_err(|e| e.to_string())?;
            print_result(output, &shown, pretty)
        }
        _ => unreachable!("only command actions come here"),
    }
}
