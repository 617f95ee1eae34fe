//! `iotdp devices …`: provisioning and lifecycle of devices (IoT things, certificates, the
//! registry), and commands through their shadows.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use iotdp::adapters::dynamodb::registry::DynamoDbRegistry;
use iotdp::adapters::iot_things::IotThings;
use iotdp::commands::command::CommandRequestError;
use iotdp::commands::service::CommandError;
use iotdp::config::CommandsConfig;
use iotdp::devices::ports::{DeviceRegistry, RegistryError};
use iotdp::devices::provisioning::{ProvisioningError, parse_import};
use iotdp::devices::record::{DeviceRecord, DeviceStatus};
use iotdp::domain::{LocationPath, RecordError};
use iotdp::wiring::AwsCommands;
use serde_json::Value;

use crate::deployment::{
    COMMAND_TABLE, DEVICE_POLICY, Deployment, DeploymentError, IOT_DATA_ENDPOINT, REGISTRY_TABLE,
};
use crate::files::{FileError, read_text};
use crate::output::{Column, OutputError, OutputFormat, print_list, print_result};

mod commands;
mod provisioning;

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
    Create(provisioning::NewDevice),
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
    Command(commands::CommandArgs),
    /// The device's commands, newest first
    Commands { device_id: String },
    /// The device's shadow: desired, reported, delta, version
    Shadow { device_id: String },
}

/// What stops a device command, or a device lookup, from going ahead.
#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    #[error("'{0}' is not a status: use active, suspended or decommissioned")]
    NotAStatus(String),
    #[error("device '{0}' is not registered")]
    NotRegistered(String),
    #[error(
        "device '{device_id}' is {status}: it takes no commands; `iotdp devices resume {device_id}` first"
    )]
    NotActive {
        device_id: String,
        status: &'static str,
    },
    #[error("DESIRED must be a JSON object such as '{{\"setpoint\":21}}': {0}")]
    DesiredNotJson(serde_json::Error),
    #[error("DESIRED must be a JSON object such as '{{\"setpoint\":21}}'")]
    DesiredNotObject,
    #[error("the command disappeared from the history")]
    CommandVanished,
    #[error(
        "command {command_id} to {device_id} is still pending after {seconds} s: the device has not reported it applied (is it connected?)"
    )]
    StillPending {
        command_id: String,
        device_id: String,
        seconds: u64,
    },
    #[error("command {command_id} to {device_id} is {status}{}", colon_before(.detail.as_deref()))]
    NotDelivered {
        command_id: String,
        device_id: String,
        status: &'static str,
        detail: Option<String>,
    },
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Provisioning(#[from] ProvisioningError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    CommandRequest(#[from] CommandRequestError),
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A representation that could not be rendered as JSON.
    #[error(transparent)]
    Render(serde_json::Error),
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// `: detail` when there is one.
fn colon_before(detail: Option<&str>) -> String {
    detail.map(|d| format!(": {d}")).unwrap_or_default()
}

fn parse_status(text: &str) -> Result<DeviceStatus, DevicesError> {
    DeviceStatus::parse(text).ok_or_else(|| DevicesError::NotAStatus(text.to_owned()))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub async fn run(
    args: DevicesArgs,
    deployment: &Deployment,
    output: OutputFormat,
) -> Result<(), DevicesError> {
    let names = Names {
        deployment,
        registry_table: args.registry_table,
        policy: args.policy,
        command_table: args.command_table,
        iot_data_endpoint: args.iot_data_endpoint,
    };
    // Local input is validated before any AWS call, so a typo fails fast and offline.
    match args.action {
        DevicesAction::Create(new) => {
            let record = new.record()?;
            let (registry, iot, policy) = names.provisioning().await?;
            provisioning::create(&registry, &iot, record, &policy, &new.out, output).await
        }
        DevicesAction::Import { file, out } => {
            let records = parse_import(&file.display().to_string(), &read_text(&file)?, now_ms())?;
            let (registry, iot, policy) = names.provisioning().await?;
            provisioning::import(&registry, &iot, records, &policy, &out, output).await
        }
        DevicesAction::List {
            device_type,
            status,
            path,
        } => {
            let registry = names.registry().await?;
            list(&registry, device_type, status, path, output).await
        }
        DevicesAction::Show { device_id } => {
            show(&names.registry().await?, &device_id, output).await
        }
        DevicesAction::Suspend { device_id } => {
            let registry = names.registry().await?;
            provisioning::set_status(&registry, &device_id, DeviceStatus::Suspended, output).await
        }
        DevicesAction::Resume { device_id } => {
            let registry = names.registry().await?;
            provisioning::set_status(&registry, &device_id, DeviceStatus::Active, output).await
        }
        DevicesAction::Decommission { device_id } => {
            let (registry, iot, policy) = names.provisioning().await?;
            provisioning::decommission(&registry, &iot, &device_id, &policy, output).await
        }
        DevicesAction::Command(command) => {
            let (registry, commands) = names.commands().await?;
            commands::command(&registry, &commands, command, output).await
        }
        DevicesAction::Commands { device_id } => {
            let (registry, commands) = names.commands().await?;
            commands::history(&registry, &commands, &device_id, output).await
        }
        DevicesAction::Shadow { device_id } => {
            let (registry, commands) = names.commands().await?;
            commands::shadow(&registry, &commands, &device_id, output).await
        }
    }
}

/// The deployment names a devices command looks up, in the order it needs them.
struct Names<'a> {
    deployment: &'a Deployment,
    registry_table: Option<String>,
    policy: Option<String>,
    command_table: Option<String>,
    iot_data_endpoint: Option<String>,
}

impl Names<'_> {
    async fn registry(&self) -> Result<DynamoDbRegistry, DevicesError> {
        let table = self
            .deployment
            .require(self.registry_table.clone(), &REGISTRY_TABLE)
            .await?;
        Ok(DynamoDbRegistry::new(
            aws_sdk_dynamodb::Client::new(self.deployment.sdk()),
            &table,
        ))
    }

    /// The registry, IoT things and the device policy, for what provisions or retires devices.
    async fn provisioning(&self) -> Result<(DynamoDbRegistry, IotThings, String), DevicesError> {
        let policy = self
            .deployment
            .require(self.policy.clone(), &DEVICE_POLICY)
            .await?;
        let iot = IotThings::new(aws_sdk_iot::Client::new(self.deployment.sdk()));
        Ok((self.registry().await?, iot, policy))
    }

    /// The registry and the command service, for commands and shadows.
    async fn commands(&self) -> Result<(DynamoDbRegistry, AwsCommands), DevicesError> {
        let registry = self.registry().await?;
        let deployment = self.deployment;
        let config = CommandsConfig {
            table: deployment
                .require(self.command_table.clone(), &COMMAND_TABLE)
                .await?,
            iot_data_endpoint: deployment
                .optional(self.iot_data_endpoint.clone(), &IOT_DATA_ENDPOINT)
                .await?,
        };
        Ok((registry, iotdp::wiring::commands(deployment.sdk(), &config)))
    }
}

/// The device's registry record.
async fn registered(
    registry: &DynamoDbRegistry,
    device_id: &str,
) -> Result<DeviceRecord, DevicesError> {
    registry
        .get_many(&[device_id])
        .await?
        .pop()
        .ok_or_else(|| DevicesError::NotRegistered(device_id.to_owned()))
}

async fn list(
    registry: &DynamoDbRegistry,
    device_type: Option<String>,
    status: Option<DeviceStatus>,
    path: Option<String>,
    output: OutputFormat,
) -> Result<(), DevicesError> {
    let prefix = LocationPath::parse(path.as_deref().unwrap_or_default())?;
    let devices = registry.list().await?;
    let items: Vec<Value> = devices
        .iter()
        .filter(|d| {
            device_type.as_ref().is_none_or(|t| &d.device_type == t)
                && status.is_none_or(|s| d.status == s)
                && d.path.starts_with(&prefix)
        })
        .map(iotdp::api::device_json)
        .collect();
    Ok(print_list(
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
    )?)
}

async fn show(
    registry: &DynamoDbRegistry,
    device_id: &str,
    output: OutputFormat,
) -> Result<(), DevicesError> {
    let device = registered(registry, device_id).await?;
    // The same representation the query API answers with.
    let shown = iotdp::api::device_json(&device);
    let pretty = serde_json::to_string_pretty(&shown).map_err(DevicesError::Render)?;
    Ok(print_result(output, &shown, pretty)?)
}
