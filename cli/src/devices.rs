//! `iotdp devices …`: provisioning and lifecycle of devices (IoT things, certificates, the
//! registry), and commands through their shadows.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use iotdp::adapters::dynamodb::registry::DynamoDbRegistry;
use iotdp::adapters::iot_things::IotThings;
use iotdp::commands::command::CommandRequestError;
use iotdp::commands::service::CommandError;
use iotdp::devices::ports::{DeviceRegistry, RegistryError};
use iotdp::devices::provisioning::{
    ProvisioningError, ProvisioningTarget, create_device, decommission_device, import_devices,
    parse_import, set_device_status,
};
use iotdp::devices::record::{DeviceRecord, DeviceStatus, parse_tags};
use iotdp::domain::{LocationPath, RecordError};
use serde_json::{Value, json};

use crate::deployment::{
    COMMAND_TABLE, DEVICE_POLICY, Deployment, DeploymentError, IOT_DATA_ENDPOINT, REGISTRY_TABLE,
};
use crate::files::{FileError, read_text};
use crate::output::{Column, OutputError, OutputFormat, print_list, print_result};

mod commands;

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
    Create(NewDevice),
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

#[derive(Args)]
struct NewDevice {
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
    #[error("command {command_id} to {device_id} is {status}{}", .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
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
            create(&registry, &iot, record, &policy, &new.out, output).await
        }
        DevicesAction::Import { file, out } => {
            let records = parse_import(&file.display().to_string(), &read_text(&file)?, now_ms())?;
            let (registry, iot, policy) = names.provisioning().await?;
            import(&registry, &iot, records, &policy, &out, output).await
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
            set_status(&registry, &device_id, DeviceStatus::Suspended, output).await
        }
        DevicesAction::Resume { device_id } => {
            let registry = names.registry().await?;
            set_status(&registry, &device_id, DeviceStatus::Active, output).await
        }
        DevicesAction::Decommission { device_id } => {
            let (registry, iot, policy) = names.provisioning().await?;
            decommission(&registry, &iot, &device_id, &policy, output).await
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

impl NewDevice {
    /// The registry record the flags describe, validated.
    fn record(&self) -> Result<DeviceRecord, DevicesError> {
        let mut record = DeviceRecord::new(&self.device_id, &self.device_type, now_ms());
        record.path = LocationPath::parse(&self.path)?;
        record.gateway_id.clone_from(&self.gateway);
        record.heartbeat_seconds = self.heartbeat;
        record.tags = parse_tags(&self.tags.join(","))?;
        record.validate()?;
        Ok(record)
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
    async fn registry(self) -> Result<DynamoDbRegistry, DevicesError> {
        let table = self
            .deployment
            .require(self.registry_table, &REGISTRY_TABLE)
            .await?;
        Ok(DynamoDbRegistry::new(
            aws_sdk_dynamodb::Client::new(self.deployment.sdk()),
            &table,
        ))
    }

    /// The registry, IoT things and the device policy, for what provisions or retires devices.
    async fn provisioning(mut self) -> Result<(DynamoDbRegistry, IotThings, String), DevicesError> {
        let policy = self
            .deployment
            .require(self.policy.take(), &DEVICE_POLICY)
            .await?;
        let iot = IotThings::new(aws_sdk_iot::Client::new(self.deployment.sdk()));
        Ok((self.registry().await?, iot, policy))
    }

    /// The registry and the command service, for commands and shadows.
    async fn commands(
        mut self,
    ) -> Result<(DynamoDbRegistry, iotdp::wiring::AwsCommands), DevicesError> {
        let deployment = self.deployment;
        let (command_table, iot_data_endpoint) =
            (self.command_table.take(), self.iot_data_endpoint.take());
        let registry = self.registry().await?;
        let config = iotdp::config::CommandsConfig {
            table: deployment.require(command_table, &COMMAND_TABLE).await?,
            iot_data_endpoint: deployment
                .optional(iot_data_endpoint, &IOT_DATA_ENDPOINT)
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

async fn create(
    registry: &DynamoDbRegistry,
    iot: &IotThings,
    record: DeviceRecord,
    policy: &str,
    out: &Path,
    output: OutputFormat,
) -> Result<(), DevicesError> {
    let target = ProvisioningTarget {
        policy_name: policy,
        out_dir: out,
    };
    let created = create_device(registry, iot, record, &target).await?;
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
    Ok(print_result(output, &result, sentence)?)
}

async fn import(
    registry: &DynamoDbRegistry,
    iot: &IotThings,
    records: Vec<DeviceRecord>,
    policy: &str,
    out: &Path,
    output: OutputFormat,
) -> Result<(), DevicesError> {
    let bar = crate::progress::bar(records.len() as u64, "devices");
    let report = import_devices(registry, iot, records, policy, out, || bar.inc(1)).await;
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
    Ok(print_result(output, &result, sentence)?)
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

/// Suspend (its readings quarantined) or resume a device.
async fn set_status(
    registry: &DynamoDbRegistry,
    device_id: &str,
    status: DeviceStatus,
    output: OutputFormat,
) -> Result<(), DevicesError> {
    let device = set_device_status(registry, device_id, status, now_ms()).await?;
    let sentence = match status {
        DeviceStatus::Suspended => {
            format!("suspended {device_id}: its readings are quarantined as device_suspended")
        }
        _ => format!("resumed {device_id}"),
    };
    let shown = json!({ "device": iotdp::api::device_json(&device) });
    Ok(print_result(output, &shown, sentence)?)
}

async fn decommission(
    registry: &DynamoDbRegistry,
    iot: &IotThings,
    device_id: &str,
    policy: &str,
    output: OutputFormat,
) -> Result<(), DevicesError> {
    let retired = decommission_device(registry, iot, device_id, policy, now_ms()).await?;
    Ok(print_result(
        output,
        &json!({ "device_id": device_id, "status": "decommissioned", "certificates_retired": retired }),
        format!(
            "decommissioned {device_id}: {} certificate(s) deactivated and detached, thing deleted; registry row and data kept",
            retired.len()
        ),
    )?)
}
