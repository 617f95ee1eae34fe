//! `/devices`: the registry, filtered and paginated; one device with its latest values and
//! open alerts; registration, definition changes, suspend and resume.

use serde_json::{Value, json};

use super::QueryApi;
use super::access::Access;
use super::params::{Params, rfc3339};
use super::problem::{Problem, ProblemCode, alerting_problem, registry_problem};
use super::readings::point_json;
use crate::alerting::ports::AlertStateListing;
use crate::devices::ports::DeviceRegistry;
use crate::devices::provisioning::{ProvisioningError, set_device_status};
use crate::devices::record::{DeviceRecord, DeviceStatus};
use crate::query::model::{KnownLatest, Point};
use crate::query::names::checked_metric;
use crate::query::ports::TimeSeriesReader;

impl<R, T, A, U, S, K> QueryApi<R, T, A, U, S, K>
where
    R: DeviceRegistry,
    T: TimeSeriesReader,
    A: AlertStateListing,
{
    pub(super) async fn list_devices(
        &self,
        params: &Params,
        access: &Access,
    ) -> Result<Value, Problem> {
        let limit = params.limit()?;
        let status = params
            .value("status")?
            .map(|s| {
                DeviceStatus::parse(s).ok_or_else(|| {
                    Problem::invalid(format!(
                        "status '{s}' must be active, suspended or decommissioned"
                    ))
                })
            })
            .transpose()?;
        let within = params.path("path")?;
        let kind = params.device_type()?;
        let cursor = params.get("cursor").unwrap_or_default();
        let mut devices = self.registry.list().await.map_err(registry_problem)?;
        devices.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        let mut page: Vec<&DeviceRecord> = devices
            .iter()
            .filter(|d| d.device_id.as_str() > cursor)
            .filter(|d| access.sees_device(&d.device_id, &d.path))
            .filter(|d| kind.is_none_or(|k| d.device_type == k))
            .filter(|d| status.is_none_or(|s| d.status == s))
            .filter(|d| d.path.starts_with(&within))
            .take(limit + 1)
            .collect();
        let next = (page.len() > limit).then(|| {
            page.truncate(limit);
            page.last().map(|d| d.device_id.clone())
        });
        Ok(json!({
            "devices": page.into_iter().map(device_json).collect::<Vec<_>>(),
            "next": next.flatten(),
        }))
    }

    pub(super) async fn get_device(
        &self,
        id: &str,
        params: &Params,
        access: &Access,
    ) -> Result<Value, Problem> {
        let device = self.visible(id, access).await?;
        // Named metrics, or every metric the store holds.
        let known;
        let metrics: Vec<&str> = match params.value("metrics")? {
            Some(m) => m.split(',').collect(),
            None => {
                known = self.reader.metric_names().await?;
                known.iter().map(String::as_str).collect()
            }
        };
        for metric in &metrics {
            checked_metric(metric)?;
        }
        let known = KnownLatest {
            values: device
                .latest
                .iter()
                .map(|(metric, v)| {
                    (
                        metric.clone(),
                        Point {
                            time_ms: v.time_ms,
                            value: v.value.clone(),
                        },
                    )
                })
                .collect(),
            tail_until_ms: device.latest_tail_until_ms,
        };
        let latest = self
            .reader
            .latest_values_after(id, &metrics, &known)
            .await?;
        let latest: serde_json::Map<String, Value> = latest
            .into_iter()
            .map(|(metric, point)| (metric, point_json(&point)))
            .collect();
        let open_alerts: Vec<Value> = self
            .states
            .for_device(id)
            .await
            .map_err(alerting_problem)?
            .into_iter()
            .filter(|(_, s)| s.state.alarmed())
            .map(|(k, s)| {
                json!({
                    "rule_id": k.rule_id,
                    "state": s.state.as_str(),
                    "since": s.alarm_since_ms.or(s.last_change_ms).map(rfc3339),
                    "last_value": s.last_measured,
                })
            })
            .collect();
        Ok(json!({ "device": device_json(&device), "latest": latest, "open_alerts": open_alerts }))
    }

    pub(super) async fn set_status(
        &self,
        id: &str,
        status: DeviceStatus,
        now_ms: i64,
        access: &Access,
    ) -> Result<Value, Problem> {
        self.visible(id, access).await?;
        match set_device_status(&self.registry, id, status, now_ms).await {
            Ok(device) => Ok(json!({ "device": device_json(&device) })),
            Err(ProvisioningError::NotRegistered(_)) => Err(Problem::not_found(
                ProblemCode::UnknownDevice,
                format!("device '{id}' is not registered"),
            )),
            Err(ProvisioningError::Decommissioned(_)) => Err(Problem {
                status: 409,
                code: ProblemCode::DeviceDecommissioned,
                detail: format!("device '{id}' is decommissioned: its id stays retired"),
            }),
            Err(e) => Err(registry_problem(e)),
        }
    }
}

/// Registering and redefining devices, and checking one is registered, need only the registry.
impl<R, T, A, U, S, K> QueryApi<R, T, A, U, S, K>
where
    R: DeviceRegistry,
{
    /// A device definition from a request body (the fields an operator manages).
    pub(super) fn definition(body: &[u8], now_ms: i64) -> Result<DeviceRecord, Problem> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Definition {
            device_id: String,
            device_type: String,
            #[serde(default)]
            path: String,
            #[serde(default)]
            gateway_id: Option<String>,
            #[serde(default, deserialize_with = "crate::domain::whole_number::optional")]
            heartbeat_seconds: Option<u32>,
            #[serde(default)]
            tags: std::collections::BTreeMap<String, String>,
        }
        let d: Definition = serde_json::from_slice(body).map_err(|e| Problem {
            status: 400,
            code: ProblemCode::InvalidDevice,
            detail: format!("the body must be a device definition (device_id, device_type, path, gateway_id, heartbeat_seconds, tags): {e}"),
        })?;
        let mut record = DeviceRecord::new(&d.device_id, &d.device_type, now_ms);
        record.path = crate::domain::LocationPath::parse_exact(&d.path).map_err(|e| Problem {
            status: 400,
            code: ProblemCode::InvalidDevice,
            detail: e.to_string(),
        })?;
        if d.gateway_id.as_deref() == Some(d.device_id.as_str()) {
            return Err(Problem::unprocessable(
                ProblemCode::InvalidDevice,
                "device field 'gateway_id': a device is its own gateway already; leave gateway_id out",
            ));
        }
        record.gateway_id = d.gateway_id;
        record.heartbeat_seconds = d.heartbeat_seconds;
        record.tags = d.tags;
        record.validate().map_err(|e| Problem {
            status: 400,
            code: ProblemCode::InvalidDevice,
            detail: e.to_string(),
        })?;
        Ok(record)
    }

    /// Registers a device (certificates stay with `iotdp devices create`, which writes the
    /// private key to the operator's disk rather than into an HTTP response).
    pub(super) async fn create_device(
        &self,
        body: &[u8],
        now_ms: i64,
        access: &Access,
    ) -> Result<Value, Problem> {
        let record = Self::definition(body, now_ms)?;
        in_scope(&record, access)?;
        if self
            .registry
            .create(&record)
            .await
            .map_err(registry_problem)?
        {
            Ok(json!({ "device": device_json(&record) }))
        } else {
            Err(Problem {
                status: 409,
                code: ProblemCode::DeviceExists,
                detail: format!(
                    "device '{}' is already registered: PUT /devices/{} changes its definition",
                    record.device_id, record.device_id
                ),
            })
        }
    }

    pub(super) async fn update_device(
        &self,
        id: &str,
        body: &[u8],
        now_ms: i64,
        access: &Access,
    ) -> Result<Value, Problem> {
        let record = Self::definition(body, now_ms)?;
        if record.device_id != id {
            return Err(Problem::unprocessable(
                ProblemCode::InvalidDevice,
                format!(
                    "the body's device_id '{}' differs from the path's '{id}'",
                    record.device_id
                ),
            ));
        }
        let current = self.visible(id, access).await?;
        in_scope(&record, access)?;
        if current.status == DeviceStatus::Decommissioned {
            return Err(Problem {
                status: 409,
                code: ProblemCode::DeviceDecommissioned,
                detail: format!("device '{id}' is decommissioned: its id stays retired"),
            });
        }
        self.registry
            .update_definition(&record)
            .await
            .map_err(registry_problem)?;
        let updated = self.registered(id).await?;
        Ok(json!({ "device": device_json(&updated) }))
    }

    /// The device's record, if it is registered and in the caller's scope: a device outside
    /// it is answered exactly as one never registered, so ids do not leak across tenants.
    pub(super) async fn visible(&self, id: &str, access: &Access) -> Result<DeviceRecord, Problem> {
        let record = self.registered(id).await?;
        if access.sees_device(&record.device_id, &record.path) {
            Ok(record)
        } else {
            Err(not_registered(id))
        }
    }

    /// Where each device the caller may see is, or `None` for a caller who sees the fleet
    /// (then nothing needs filtering and the registry is not read).
    pub(super) async fn scoped_devices(
        &self,
        access: &Access,
    ) -> Result<Option<std::collections::HashMap<String, crate::domain::LocationPath>>, Problem>
    {
        if access.fleet {
            return Ok(None);
        }
        let devices = self.registry.list().await.map_err(registry_problem)?;
        Ok(Some(
            devices
                .into_iter()
                .filter(|d| access.sees_device(&d.device_id, &d.path))
                .map(|d| (d.device_id, d.path))
                .collect(),
        ))
    }

    pub(super) async fn registered(&self, id: &str) -> Result<DeviceRecord, Problem> {
        crate::query::names::checked_device(id)?;
        self.registry
            .get_many(&[id])
            .await
            .map_err(registry_problem)?
            .pop()
            .ok_or_else(|| not_registered(id))
    }
}

fn not_registered(id: &str) -> Problem {
    Problem::not_found(
        ProblemCode::UnknownDevice,
        format!("device '{id}' is not registered"),
    )
}

/// A device a scoped admin registers or redefines must land inside their scope.
fn in_scope(record: &DeviceRecord, access: &Access) -> Result<(), Problem> {
    if access.sees_device(&record.device_id, &record.path) {
        Ok(())
    } else {
        Err(Problem {
            status: 403,
            code: ProblemCode::OutsideScope,
            detail: format!(
                "device '{}' at '{}' would be outside your scope ({}): give a path inside it",
                record.device_id,
                record.path,
                access.describe()
            ),
        })
    }
}

pub fn device_json(d: &DeviceRecord) -> Value {
    let time = |ms: Option<i64>| ms.map(rfc3339);
    json!({
        "device_id": d.device_id,
        "device_type": d.device_type,
        "status": d.status.as_str(),
        "gateway_id": d.gateway_id,
        "path": d.path.to_string(),
        "tags": d.tags,
        "heartbeat_seconds": d.heartbeat_seconds,
        "created_at": rfc3339(d.created_at_ms),
        "last_seen": time(d.last_seen_ms),
        "connected": d.connected,
        "last_connected": time(d.last_connected_ms),
        "last_disconnected": time(d.last_disconnected_ms),
    })
}
