//! Provisioning: a device gets an IoT thing, a certificate with the device policy attached, a
//! registry row, and a folder with everything it needs to connect. Fleets come from CSV,
//! idempotently: a device already registered with the same definition is left alone.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::devices::record::{DeviceRecord, DeviceStatus, parse_tags};

use crate::devices::ports::{
    DeviceRegistry, IotError, IssuedCertificate, RegistryError, ThingProvisioner,
};
use crate::domain::{LocationPath, RecordError};

/// Amazon's root CA for IoT Core's ATS endpoints (public; from Amazon Trust Services).
pub const AMAZON_ROOT_CA1_PEM: &str = include_str!("../../../infra/AmazonRootCA1.pem");
pub const CERTIFICATE_FILE: &str = "certificate.pem.crt";
pub const PRIVATE_KEY_FILE: &str = "private.pem.key";
pub const ROOT_CA_FILE: &str = "AmazonRootCA1.pem";
pub const CONNECTION_FILE: &str = "device.json";

#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    #[error(transparent)]
    Invalid(#[from] RecordError),
    #[error(
        "device '{0}' is already registered: use `iotdp devices show {0}`, or import to update it"
    )]
    AlreadyRegistered(String),
    #[error("device '{0}' is not registered: `iotdp devices list` shows the registered devices")]
    NotRegistered(String),
    #[error(
        "device '{0}' is decommissioned: its id stays retired, register the replacement under a new id"
    )]
    Decommissioned(String),
    #[error(transparent)]
    Iot(#[from] IotError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("writing {path}: {problem}")]
    Files { path: PathBuf, problem: String },
    #[error("{file} line {line}: {problem}")]
    Csv {
        file: String,
        line: u64,
        problem: String,
    },
}

/// Where the device policy and the certificate files go.
#[derive(Debug, Clone)]
pub struct ProvisioningTarget<'a> {
    pub policy_name: &'a str,
    pub out_dir: &'a Path,
}

/// What a new device got.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedDevice {
    pub record: DeviceRecord,
    pub certificate_arn: String,
    pub endpoint: String,
    pub files: PathBuf,
}

/// Register one device end to end. IoT resources and the credential files come first, the
/// registry row last: a registered device always has its credentials written.
pub async fn create_device<R, I>(
    registry: &R,
    iot: &I,
    record: DeviceRecord,
    target: &ProvisioningTarget<'_>,
) -> Result<CreatedDevice, ProvisioningError>
where
    R: DeviceRegistry,
    I: ThingProvisioner,
{
    record.validate()?;
    if !registry.get_many(&[&record.device_id]).await?.is_empty() {
        return Err(ProvisioningError::AlreadyRegistered(record.device_id));
    }
    iot.create_thing(&record.device_id, &record.device_type)
        .await?;
    let certificate = iot.issue_certificate().await?;
    iot.attach_certificate(
        &record.device_id,
        &certificate.certificate_arn,
        target.policy_name,
    )
    .await?;
    let endpoint = iot.data_endpoint().await?;
    write_device_files(target.out_dir, &record.device_id, &certificate, &endpoint)?;
    if !registry.create(&record).await? {
        return Err(ProvisioningError::AlreadyRegistered(record.device_id));
    }
    Ok(CreatedDevice {
        record,
        certificate_arn: certificate.certificate_arn,
        endpoint,
        files: target.out_dir.to_path_buf(),
    })
}

/// Certificate, private key (0600), root CA and connection details, in `dir`.
pub fn write_device_files(
    dir: &Path,
    device_id: &str,
    certificate: &IssuedCertificate,
    endpoint: &str,
) -> Result<(), ProvisioningError> {
    let fail = |path: &Path, e: std::io::Error| ProvisioningError::Files {
        path: path.to_path_buf(),
        problem: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let connection = serde_json::json!({
        "thing_name": device_id,
        "client_id": device_id,
        "endpoint": endpoint,
        "port": 8883,
        "certificate_id": certificate.certificate_id,
        "certificate_arn": certificate.certificate_arn,
        "telemetry_topic": crate::domain::topic::telemetry_topic(device_id),
        "shadow_topic_prefix": format!("$aws/things/{device_id}/shadow"),
        "files": {
            "certificate": CERTIFICATE_FILE,
            "private_key": PRIVATE_KEY_FILE,
            "root_ca": ROOT_CA_FILE,
        },
        "simulate": format!(
            "iotdp simulate --endpoint {endpoint} --cert {CERTIFICATE_FILE} --key {PRIVATE_KEY_FILE} --ca {ROOT_CA_FILE} --client-id {device_id}"
        ),
    });
    let files: [(&str, &[u8], u32); 4] = [
        (
            CERTIFICATE_FILE,
            certificate.certificate_pem.as_bytes(),
            0o644,
        ),
        (
            PRIVATE_KEY_FILE,
            certificate.private_key_pem.as_bytes(),
            0o600,
        ),
        (ROOT_CA_FILE, AMAZON_ROOT_CA1_PEM.as_bytes(), 0o644),
        (
            CONNECTION_FILE,
            &serde_json::to_vec_pretty(&connection).unwrap_or_default(),
            0o644,
        ),
    ];
    for (name, content, mode) in files {
        let path = dir.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Created with the mode, so the key is never readable by others, not even briefly.
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&path).map_err(|e| fail(&path, e))?;
        file.write_all(content).map_err(|e| fail(&path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // An existing file keeps its old mode on open: set it explicitly.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| fail(&path, e))?;
        }
    }
    Ok(())
}

/// One CSV row of a fleet import. Header:
/// `device_id,device_type,path,gateway_id,heartbeat_seconds,tags` (tags as `k=v;k=v`).
#[derive(Debug, Deserialize)]
struct ImportRow {
    device_id: String,
    device_type: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    gateway_id: String,
    #[serde(default)]
    heartbeat_seconds: String,
    #[serde(default)]
    tags: String,
}

/// Every row of an import file as a validated record, or the first bad line named.
pub fn parse_import(
    file: &str,
    text: &str,
    now_ms: i64,
) -> Result<Vec<DeviceRecord>, ProvisioningError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut records = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for row in reader.deserialize::<ImportRow>() {
        let row = row.map_err(|e| ProvisioningError::Csv {
            file: file.to_owned(),
            line: e.position().map_or(0, csv::Position::line),
            problem: e.to_string(),
        })?;
        let line = seen.len() as u64 + 2; // header is line 1
        let bad = |problem: String| ProvisioningError::Csv {
            file: file.to_owned(),
            line,
            problem,
        };
        let mut record = DeviceRecord::new(&row.device_id, &row.device_type, now_ms);
        record.path = LocationPath::parse(&row.path).map_err(|e| bad(e.to_string()))?;
        record.gateway_id = Some(row.gateway_id).filter(|g| !g.is_empty());
        record.heartbeat_seconds = match row.heartbeat_seconds.as_str() {
            "" => None,
            h => Some(h.parse().map_err(|_| {
                bad(format!(
                    "heartbeat_seconds '{h}' is not a whole number of seconds"
                ))
            })?),
        };
        record.tags = parse_tags(&row.tags).map_err(|e| bad(e.to_string()))?;
        record.validate().map_err(|e| bad(e.to_string()))?;
        if !seen.insert(record.device_id.clone()) {
            return Err(bad(format!("device '{}' appears twice", record.device_id)));
        }
        records.push(record);
    }
    Ok(records)
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
}

/// Bring the registry in line with `records`: create the missing (certificates into
/// `out_dir/<device id>/`), update the changed definitions, leave the rest untouched.
/// `row_done` is called after each record, for a progress bar.
pub async fn import_devices<R, I>(
    registry: &R,
    iot: &I,
    records: Vec<DeviceRecord>,
    policy_name: &str,
    out_dir: &Path,
    mut row_done: impl FnMut(),
) -> Result<ImportReport, ProvisioningError>
where
    R: DeviceRegistry,
    I: ThingProvisioner,
{
    let ids: Vec<&str> = records.iter().map(|r| r.device_id.as_str()).collect();
    let mut existing = std::collections::HashMap::new();
    for chunk in ids.chunks(100) {
        for r in registry.get_many(chunk).await? {
            existing.insert(r.device_id.clone(), r);
        }
    }
    let mut report = ImportReport::default();
    for record in records {
        match existing.get(&record.device_id) {
            Some(current) if current.status == DeviceStatus::Decommissioned => {
                return Err(ProvisioningError::Decommissioned(record.device_id));
            }
            Some(current) if current.same_definition(&record) => {
                report.unchanged.push(record.device_id);
            }
            Some(_) => {
                if !registry.update_definition(&record).await? {
                    return Err(ProvisioningError::NotRegistered(record.device_id));
                }
                report.updated.push(record.device_id);
            }
            None => {
                let dir = out_dir.join(&record.device_id);
                let target = ProvisioningTarget {
                    policy_name,
                    out_dir: &dir,
                };
                let created = create_device(registry, iot, record, &target).await?;
                report.created.push(created.record.device_id);
            }
        }
        row_done();
    }
    Ok(report)
}

/// Suspend or resume: the registry status only (a suspended device stays connected, and its
/// readings are quarantined as `device_suspended` where an operator can inspect them).
pub async fn set_device_status<R: DeviceRegistry>(
    registry: &R,
    device_id: &str,
    status: DeviceStatus,
    now_ms: i64,
) -> Result<DeviceRecord, ProvisioningError> {
    let current = registry
        .get_many(&[device_id])
        .await?
        .pop()
        .ok_or_else(|| ProvisioningError::NotRegistered(device_id.to_owned()))?;
    if current.status == DeviceStatus::Decommissioned {
        return Err(ProvisioningError::Decommissioned(device_id.to_owned()));
    }
    registry
        .set_status(device_id, status, now_ms)
        .await?
        .ok_or_else(|| ProvisioningError::NotRegistered(device_id.to_owned()))
}

/// Decommission: the registry row says so first (ingest refuses the device from then on),
/// then its certificates are deactivated and detached and the thing is deleted. The registry
/// row and the device's data are kept.
pub async fn decommission_device<R, I>(
    registry: &R,
    iot: &I,
    device_id: &str,
    policy_name: &str,
    now_ms: i64,
) -> Result<Vec<String>, ProvisioningError>
where
    R: DeviceRegistry,
    I: ThingProvisioner,
{
    registry
        .set_status(device_id, DeviceStatus::Decommissioned, now_ms)
        .await?
        .ok_or_else(|| ProvisioningError::NotRegistered(device_id.to_owned()))?;
    Ok(iot.retire_thing(device_id, policy_name).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_rows_become_validated_records() {
        let text = "device_id,device_type,path,gateway_id,heartbeat_seconds,tags\n\
                    # green wall 1\n\
                    gw-1,gateway,wall-1,,3600,\n\
                    spot-1,plant-sensor,wall-1/zone-a/s1/spot-1,gw-1,21600,plant=fern;owner=ops\n";
        let records = parse_import("fleet.csv", text, 7).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].gateway_id.as_deref(), Some("gw-1"));
        assert_eq!(records[1].heartbeat_seconds, Some(21_600));
        assert_eq!(records[1].tags["plant"], "fern");
        assert_eq!(records[1].path.segments().len(), 4);
    }

    #[test]
    fn a_bad_row_is_named_by_file_and_line() {
        let text = "device_id,device_type,path,gateway_id,heartbeat_seconds,tags\n\
                    ok-1,sensor,,,,\n\
                    bad 2,sensor,,,,\n";
        let e = parse_import("fleet.csv", text, 0).unwrap_err().to_string();
        assert!(
            e.contains("fleet.csv line 3") && e.contains("device_id"),
            "{e}"
        );
        let dup = "device_id,device_type\na,t\na,t\n";
        let e = parse_import("f.csv", dup, 0).unwrap_err().to_string();
        assert!(e.contains("appears twice"), "{e}");
    }

    #[test]
    fn the_private_key_file_is_owner_only() {
        let dir = std::env::temp_dir().join(format!("iotdp-files-{}", std::process::id()));
        let cert = IssuedCertificate {
            certificate_arn: "arn:aws:iot:us-east-1:123456789012:cert/abc".into(),
            certificate_id: "abc".into(),
            certificate_pem: "-----BEGIN CERTIFICATE-----\n".into(),
            private_key_pem: "-----BEGIN RSA PRIVATE KEY-----\n".into(),
        };
        write_device_files(&dir, "ac-1", &cert, "x-ats.iot.us-east-1.amazonaws.com").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode =
                |f: &str| std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(PRIVATE_KEY_FILE), 0o600);
            assert_eq!(mode(CERTIFICATE_FILE), 0o644);
        }
        let connection: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(CONNECTION_FILE)).unwrap()).unwrap();
        assert_eq!(connection["telemetry_topic"], "dt/ac-1/telemetry");
        assert!(
            std::fs::read_to_string(dir.join(ROOT_CA_FILE))
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
