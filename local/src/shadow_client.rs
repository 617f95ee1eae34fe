//! A device's side of its classic shadow over MQTT, as AWS's device SDKs do it: on connecting,
//! subscribe to `update/delta` and `get/accepted` and ask for the document (`get`), so what was
//! asked while the device was offline still reaches it; apply the delta; report what it applied
//! on `update`. The simulated fleet and the end-to-end tests share it.

use rumqttc::{AsyncClient, ClientError, ConnectionError, Event, EventLoop, Incoming, QoS};
use serde_json::{Value, json};

fn prefix(device_id: &str) -> String {
    format!("$aws/things/{device_id}/shadow")
}

/// Subscribe to the shadow's delta and get answers, then ask for the document.
pub async fn follow_shadow(client: &AsyncClient, device_id: &str) -> Result<(), ClientError> {
    let prefix = prefix(device_id);
    client
        .subscribe(format!("{prefix}/update/delta"), QoS::AtLeastOnce)
        .await?;
    client
        .subscribe(format!("{prefix}/get/accepted"), QoS::AtLeastOnce)
        .await?;
    client
        .publish(format!("{prefix}/get"), QoS::AtLeastOnce, false, "{}")
        .await
}

/// What `device_id` is asked to apply, if `topic` is its delta (its `state`) or the answer to
/// its `get` (the document's `state.delta`, absent when there is nothing to apply).
pub fn desired_in(device_id: &str, topic: &str, payload: &[u8]) -> Option<Value> {
    let rest = topic.strip_prefix(&prefix(device_id))?;
    let document: Value = serde_json::from_slice(payload).ok()?;
    let asked = match rest {
        "/update/delta" => document.get("state")?,
        "/get/accepted" => document.get("state")?.get("delta")?,
        _ => return None,
    };
    asked.is_object().then(|| asked.clone())
}

/// Report `reported` (what the device applied) into its shadow.
pub async fn report(
    client: &AsyncClient,
    device_id: &str,
    reported: &Value,
) -> Result<(), ClientError> {
    client
        .publish(
            format!("{}/update", prefix(device_id)),
            QoS::AtLeastOnce,
            false,
            json!({ "state": { "reported": reported } }).to_string(),
        )
        .await
}

/// What a device's connection tells the code that owns the device.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceEvent {
    Connected,
    /// Its shadow asks this of it (a delta's state).
    Asked(Value),
}

/// Run a device's MQTT event loop until the connection ends: with `follows_shadow`, follow the
/// shadow on every (re)connect and hand each delta to `on_event`. Returns why it ended.
pub async fn run_device(
    mut eventloop: EventLoop,
    client: AsyncClient,
    device_id: String,
    follows_shadow: bool,
    mut on_event: impl FnMut(DeviceEvent) + Send,
) -> ConnectionError {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                on_event(DeviceEvent::Connected);
                if follows_shadow {
                    // Requests queue on the client; the event loop must keep polling to send
                    // them, so they are made from a task of their own.
                    let (client, id) = (client.clone(), device_id.clone());
                    tokio::spawn(async move { follow_shadow(&client, &id).await });
                }
            }
            Ok(Event::Incoming(Incoming::Publish(publish))) if follows_shadow => {
                if let Some(desired) = desired_in(&device_id, &publish.topic, &publish.payload) {
                    on_event(DeviceEvent::Asked(desired));
                }
            }
            Ok(_) => {}
            Err(e) => return e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_and_get_answers_carry_what_to_apply() {
        let delta = br#"{"state":{"setpoint":21},"version":4,"timestamp":1}"#;
        assert_eq!(
            desired_in("ac-1", "$aws/things/ac-1/shadow/update/delta", delta),
            Some(json!({"setpoint": 21}))
        );
        let document =
            br#"{"state":{"desired":{"setpoint":21},"delta":{"setpoint":21}},"version":4}"#;
        assert_eq!(
            desired_in("ac-1", "$aws/things/ac-1/shadow/get/accepted", document),
            Some(json!({"setpoint": 21}))
        );
        let in_sync =
            br#"{"state":{"desired":{"setpoint":21},"reported":{"setpoint":21}},"version":5}"#;
        assert_eq!(
            desired_in("ac-1", "$aws/things/ac-1/shadow/get/accepted", in_sync),
            None
        );
        assert_eq!(
            desired_in("ac-2", "$aws/things/ac-1/shadow/update/delta", delta),
            None,
            "another device's delta"
        );
    }
}
