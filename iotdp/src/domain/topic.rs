//! Device identity comes from the topic, never from the payload: IoT policies lock each
//! device to its own `dt/<device_id>/telemetry` (and its Basic Ingest form,
//! `$aws/rules/<rule>/dt/<device_id>/telemetry`), so a payload can never claim to be someone else.

use crate::domain::is_valid_device_id;
use crate::domain::reason::{ReasonCode, Rejection};

/// The telemetry topic a device publishes on (and its IoT policy allows).
pub fn telemetry_topic(device_id: &str) -> String {
    format!("{PREFIX}{device_id}{SUFFIX}")
}

/// The same topic through the telemetry rule's Basic Ingest (no messaging charge: the message
/// goes to the rule without the broker).
pub fn basic_ingest_topic(rule_name: &str, device_id: &str) -> String {
    format!("{BASIC_INGEST}{rule_name}/{}", telemetry_topic(device_id))
}

/// What stands before and after the device id in a telemetry topic.
const PREFIX: &str = "dt/";
const SUFFIX: &str = "/telemetry";
/// Basic Ingest topics start `$aws/rules/<rule name>/`.
const BASIC_INGEST: &str = "$aws/rules/";

/// `dt/<device_id>/telemetry` → `device_id`. The topic is the device's identity: IoT policies
/// lock each device to its own topic, so the payload can never claim to be someone else.
///
/// Under Basic Ingest IoT Core's `topic()` leaves out the `$aws/rules/<rule>` prefix, so the
/// rule's envelope carries the plain form; a topic that still has it is read the same way.
pub fn device_id_from_topic(topic: &str) -> Result<&str, Rejection> {
    device_id_span(topic).map(|span| &topic[span])
}

/// Where the device id stands in the topic, for callers that keep the topic and want the id
/// later without parsing it again.
pub fn device_id_span(topic: &str) -> Result<std::ops::Range<usize>, Rejection> {
    let skip = basic_ingest_prefix_len(topic);
    let device = topic[skip..]
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix(SUFFIX))
        .ok_or_else(|| {
            Rejection::new(
                ReasonCode::InvalidDeviceId,
                format!("topic '{topic}' is not of the form dt/<device_id>/telemetry"),
            )
        })?;
    if is_valid_device_id(device) {
        let start = skip + PREFIX.len();
        Ok(start..start + device.len())
    } else {
        Err(Rejection::new(
            ReasonCode::InvalidDeviceId,
            format!("device id '{device}' in the topic must be 1-128 characters of [A-Za-z0-9:_-]"),
        ))
    }
}

/// How long `topic`'s `$aws/rules/<rule name>/` prefix is (0 without one).
fn basic_ingest_prefix_len(topic: &str) -> usize {
    topic
        .strip_prefix(BASIC_INGEST)
        .and_then(|rest| rest.find('/').filter(|&end| end > 0))
        .map_or(0, |end| BASIC_INGEST.len() + end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_comes_from_the_topic() {
        assert_eq!(device_id_from_topic("dt/ac-7/telemetry").unwrap(), "ac-7");
        for bad in [
            "dt/ac 7/telemetry",
            "dt//telemetry",
            "xx/a/telemetry",
            "dt/a/b/telemetry",
        ] {
            assert_eq!(
                device_id_from_topic(bad).unwrap_err().reason,
                ReasonCode::InvalidDeviceId,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_basic_ingest_topic_names_the_same_device() {
        let topic = basic_ingest_topic("iotdp_telemetry", "ac-7");
        assert_eq!(topic, "$aws/rules/iotdp_telemetry/dt/ac-7/telemetry");
        assert_eq!(device_id_from_topic(&topic).unwrap(), "ac-7");
        for bad in [
            "$aws/rules//dt/ac-7/telemetry",
            "$aws/rules/r/dt/ac 7/telemetry",
            "$aws/rules/r/xx/ac-7/telemetry",
            "$aws/rules/dt/ac-7/telemetry",
        ] {
            assert!(device_id_from_topic(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_device_topic_names_the_device() {
        let topic = telemetry_topic("battery-0001");
        assert_eq!(device_id_from_topic(&topic).unwrap(), "battery-0001");
    }
}
