//! `devices create`, `import`, `suspend`, `resume` and `decommission`: the provisioning use
//! cases the platform runs, with the operator's own AWS credentials.

use std::path::{Path, PathBuf};

use clap::Args;
use iotdp::adapters::dynamodb::registry::DynamoDbRegistry;
use iotdp::adapters::iot_things::IotThings;
use iotdp::devices::provisioning::{
    ProvisioningTarget, create_device, decommission_device, import_devices, set_device_status,
};
use iotdp::devices::record::{DeviceRecord, DeviceStatus, parse_tags};
use iotdp::domain::LocationPath;
use serde_json::json;

use super::{DevicesError, now_ms};
use crate::output::{OutputFormat, print_result};

#[derive(Args)]
pub(super) struct NewDevice {
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
    pub(super) out: PathBuf,
}

impl NewDevice {
    /// The registry record the flags describe, validated.
    pub(super) fn record(&self) -> Result<DeviceRecord, DevicesError> {
        let mut record = DeviceRecord::new(&self.device_id, &self.device_type, now_ms());
        record.path = LocationPath::parse(&self.path)?;
        record.gateway_id.clone_from(&self.gateway);
        record.heartbeat_seconds = self.heartbeat;
        record.tags = parse_tags(&self.tags.join(","))?;
        record.validate()?;
        Ok(record)
    }
}

pub(super) async fn create(
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

pub(super) async fn import(
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

/// Suspend (its readings quarantined) or resume a device.
pub(super) async fn set_status(
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

pub(super) async fn decommission(
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
