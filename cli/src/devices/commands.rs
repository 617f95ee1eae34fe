//! `devices command`, `devices commands` and `devices shadow`: the use case the API runs,
//! called with the operator's own AWS credentials.

use std::time::{Duration, Instant};

use clap::Args;
use iotdp::adapters::dynamodb::registry::DynamoDbRegistry;
use iotdp::commands::command::{Command, CommandRequest, CommandSource, CommandStatus};
use iotdp::devices::record::DeviceStatus;
use iotdp::wiring::AwsCommands;
use serde_json::{Value, json};

use super::{DevicesError, now_ms, registered};
use crate::output::{Column, OutputFormat, print_list, print_result};

#[derive(Args)]
pub(super) struct CommandArgs {
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
}

/// Send a command to an active device, and with `--wait` follow it until it settles.
pub(super) async fn command(
    registry: &DynamoDbRegistry,
    commands: &AwsCommands,
    args: CommandArgs,
    output: OutputFormat,
) -> Result<(), DevicesError> {
    let device_id = args.device_id;
    let device = registered(registry, &device_id).await?;
    if device.status != DeviceStatus::Active {
        return Err(DevicesError::NotActive {
            device_id,
            status: device.status.as_str(),
        });
    }
    let request = CommandRequest::new(
        desired_patch(&args.desired)?,
        Some(args.expires_in),
        args.key,
    )?;
    let issued_by = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "operator".into())
    );
    let command = commands
        .issue(
            &device_id,
            &request,
            &issued_by,
            CommandSource::Api,
            now_ms(),
        )
        .await?;
    if let Some(seconds) = args.wait {
        return wait_for_delivery(commands, &device_id, command, seconds, output).await;
    }
    let shown = json!({ "command": iotdp::api::command_json(&command) });
    let sentence = format!(
        "command {} to {device_id}: {} (shadow version {})",
        command.command_id,
        command.status.as_str(),
        command.shadow_version.map_or("?".into(), |v| v.to_string())
    );
    Ok(print_result(output, &shown, sentence)?)
}

/// DESIRED, which must be a JSON object.
fn desired_patch(desired: &str) -> Result<serde_json::Map<String, Value>, DevicesError> {
    match serde_json::from_str(desired).map_err(DevicesError::DesiredNotJson)? {
        Value::Object(patch) => Ok(patch),
        _ => Err(DevicesError::DesiredNotObject),
    }
}

/// Follow the command until it settles or `seconds` pass; anything but delivered is shown,
/// then an error.
async fn wait_for_delivery(
    commands: &AwsCommands,
    device_id: &str,
    mut command: Command,
    seconds: u64,
    output: OutputFormat,
) -> Result<(), DevicesError> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    while command.status == CommandStatus::Pending && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        command = commands
            .get(device_id, &command.command_id)
            .await?
            .ok_or(DevicesError::CommandVanished)?;
    }
    let shown = json!({ "command": iotdp::api::command_json(&command) });
    if command.status != CommandStatus::Delivered {
        let _ = print_result(
            output,
            &shown,
            serde_json::to_string_pretty(&shown).unwrap_or_default(),
        );
        return Err(not_delivered(command, device_id, seconds));
    }
    let sentence = format!(
        "command {} delivered to {device_id} after {:.1} s",
        command.command_id,
        started.elapsed().as_secs_f64()
    );
    Ok(print_result(output, &shown, sentence)?)
}

fn not_delivered(command: Command, device_id: &str, seconds: u64) -> DevicesError {
    let device_id = device_id.to_owned();
    match command.status {
        CommandStatus::Pending => DevicesError::StillPending {
            command_id: command.command_id,
            device_id,
            seconds,
        },
        other => DevicesError::NotDelivered {
            command_id: command.command_id,
            device_id,
            status: other.as_str(),
            detail: command.detail,
        },
    }
}

/// The device's commands, newest first.
pub(super) async fn history(
    registry: &DynamoDbRegistry,
    commands: &AwsCommands,
    device_id: &str,
    output: OutputFormat,
) -> Result<(), DevicesError> {
    registered(registry, device_id).await?;
    let history = commands.history(device_id).await?;
    let items: Vec<Value> = history.iter().map(iotdp::api::command_json).collect();
    Ok(print_list(
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
    )?)
}

/// The device's shadow: desired, reported, delta, version.
pub(super) async fn shadow(
    registry: &DynamoDbRegistry,
    commands: &AwsCommands,
    device_id: &str,
    output: OutputFormat,
) -> Result<(), DevicesError> {
    registered(registry, device_id).await?;
    let shadow = commands.shadow(device_id).await?.unwrap_or_default();
    let shown = iotdp::api::shadow_json(device_id, &shadow);
    let pretty = serde_json::to_string_pretty(&shown).map_err(DevicesError::Render)?;
    Ok(print_result(output, &shown, pretty)?)
}
