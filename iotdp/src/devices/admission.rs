//! Who may report what: the registry's verdict on one reading. Pure.
//!
//! The publisher is the device of the topic (identity comes only from the topic); the reading
//! names the device it is for, which differs for a gateway's batch items.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::DeviceDimensions;

use crate::devices::record::{DeviceStatus, KnownDevice};
use crate::domain::reason::{ReasonCode, Rejection};

/// What happens to readings of devices the registry does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownDevicePolicy {
    /// Quarantine them as `unknown_device` (the default: only provisioned devices report).
    #[default]
    Reject,
    /// Store them without registry dimensions (first-run setups). A gateway still may not
    /// report for an unknown device: nothing says it is that device's gateway.
    Accept,
}

impl UnknownDevicePolicy {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "reject" => Some(Self::Reject),
            "accept" => Some(Self::Accept),
            _ => None,
        }
    }
}

/// Admit a reading for `device` published by `publisher`: the dimensions to store it with
/// (`None` for an accepted unknown device), or why it is refused.
pub fn admit(
    device: &str,
    publisher: &str,
    known: &HashMap<String, Arc<KnownDevice>>,
    policy: UnknownDevicePolicy,
) -> Result<Option<Arc<DeviceDimensions>>, Rejection> {
    let publisher_record = known.get(publisher);
    match publisher_record {
        Some(p) => refuse_inactive(p, publisher, device != publisher)?,
        None if policy == UnknownDevicePolicy::Reject => {
            return Err(Rejection::new(
                ReasonCode::UnknownDevice,
                format!(
                    "device '{publisher}' is not registered: register it with `iotdp devices create {publisher} --type <type>`"
                ),
            ));
        }
        None => {}
    }
    if device == publisher {
        return Ok(publisher_record.map(|p| p.dimensions.clone()));
    }
    let Some(target) = known.get(device) else {
        return Err(match policy {
            UnknownDevicePolicy::Reject => Rejection::new(
                ReasonCode::UnknownDevice,
                format!(
                    "device '{device}' (reported by gateway '{publisher}') is not registered: register it with `--gateway {publisher}`"
                ),
            ),
            UnknownDevicePolicy::Accept => not_its_gateway(publisher, device),
        });
    };
    refuse_inactive(target, device, false)?;
    if target.record.gateway_id.as_deref() != Some(publisher) {
        return Err(not_its_gateway(publisher, device));
    }
    Ok(Some(target.dimensions.clone()))
}

fn not_its_gateway(publisher: &str, device: &str) -> Rejection {
    Rejection::new(
        ReasonCode::NotAuthorizedForDevice,
        format!(
            "'{publisher}' may not report for device '{device}': only the gateway registered as its gateway_id may"
        ),
    )
}

fn refuse_inactive(known: &KnownDevice, id: &str, as_gateway: bool) -> Result<(), Rejection> {
    let role = if as_gateway { "gateway" } else { "device" };
    match known.record.status {
        DeviceStatus::Active => Ok(()),
        DeviceStatus::Suspended => Err(Rejection::new(
            ReasonCode::DeviceSuspended,
            format!("{role} '{id}' is suspended: `iotdp devices resume {id}` lets it report again"),
        )),
        DeviceStatus::Decommissioned => Err(Rejection::new(
            ReasonCode::DeviceDecommissioned,
            format!("{role} '{id}' is decommissioned: its data is kept but it may not report"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::record::DeviceRecord;
    use crate::domain::LocationPath;

    fn registry(records: Vec<DeviceRecord>) -> HashMap<String, Arc<KnownDevice>> {
        records
            .into_iter()
            .map(|r| (r.device_id.clone(), Arc::new(KnownDevice::from(r))))
            .collect()
    }

    fn device(id: &str, status: DeviceStatus, gateway: Option<&str>) -> DeviceRecord {
        let mut r = DeviceRecord::new(id, "plant-sensor", 0);
        r.status = status;
        r.gateway_id = gateway.map(str::to_owned);
        r.path = LocationPath::parse("wall-1/zone-a/s1/spot-1").unwrap();
        r
    }

    use DeviceStatus::*;
    use UnknownDevicePolicy::*;

    #[test]
    fn an_active_device_reporting_for_itself_gets_its_dimensions() {
        let known = registry(vec![device("s1", Active, None)]);
        let dims = admit("s1", "s1", &known, Reject).unwrap().unwrap();
        assert_eq!(dims.device_type, "plant-sensor");
        assert_eq!(dims.path.to_string(), "wall-1/zone-a/s1/spot-1");
    }

    #[test]
    fn unknown_suspended_and_decommissioned_devices_get_their_own_codes() {
        let known = registry(vec![
            device("susp", Suspended, None),
            device("gone", Decommissioned, None),
        ]);
        let code = |d: &str, p| admit(d, d, &known, p).unwrap_err().reason;
        assert_eq!(code("nobody", Reject), ReasonCode::UnknownDevice);
        assert_eq!(code("susp", Reject), ReasonCode::DeviceSuspended);
        assert_eq!(code("gone", Accept), ReasonCode::DeviceDecommissioned);
        assert_eq!(admit("nobody", "nobody", &known, Accept), Ok(None));
    }

    #[test]
    fn a_gateway_reports_only_for_devices_registered_to_it() {
        let known = registry(vec![
            device("gw-1", Active, None),
            device("gw-2", Active, None),
            device("spot-1", Active, Some("gw-1")),
            device("spot-9", Suspended, Some("gw-1")),
        ]);
        assert!(admit("spot-1", "gw-1", &known, Reject).unwrap().is_some());
        let denied = admit("spot-1", "gw-2", &known, Reject).unwrap_err();
        assert_eq!(denied.reason, ReasonCode::NotAuthorizedForDevice);
        assert!(denied.detail.contains("gw-2") && denied.detail.contains("spot-1"));
        assert_eq!(
            admit("spot-9", "gw-1", &known, Reject).unwrap_err().reason,
            ReasonCode::DeviceSuspended
        );
        assert_eq!(
            admit("ghost", "gw-1", &known, Reject).unwrap_err().reason,
            ReasonCode::UnknownDevice
        );
        assert_eq!(
            admit("ghost", "gw-1", &known, Accept).unwrap_err().reason,
            ReasonCode::NotAuthorizedForDevice
        );
    }

    #[test]
    fn an_inactive_gateway_reports_for_nobody() {
        let known = registry(vec![
            device("gw-1", Suspended, None),
            device("spot-1", Active, Some("gw-1")),
        ]);
        let e = admit("spot-1", "gw-1", &known, Reject).unwrap_err();
        assert_eq!(e.reason, ReasonCode::DeviceSuspended);
        assert!(e.detail.contains("gateway 'gw-1'"), "{}", e.detail);
    }
}
