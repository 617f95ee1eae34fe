//! Presence: IoT Core's lifecycle events (`$aws/events/presence/connected/<client id>`,
//! `…/disconnected/…`), delivered by a topic rule through SQS, recorded in the registry.
//!
//! Devices connect with their thing name as client id (the device policy enforces it), so the
//! client id names the registry row. Events can arrive out of order; the registry keeps the
//! newest by the event's own timestamp.

use serde::Deserialize;

use crate::devices::ports::{DeviceRegistry, PresenceChange};
use crate::domain::is_valid_device_id;

/// The fields of a lifecycle event the registry needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LifecycleEvent<'a> {
    client_id: &'a str,
    timestamp: i64,
    event_type: &'a str,
}

/// A lifecycle event → (device id, change), or why it cannot be used.
pub fn parse_lifecycle_event(body: &str) -> Result<(String, PresenceChange), String> {
    let event: LifecycleEvent<'_> = serde_json::from_str(body)
        .map_err(|e| format!("not a lifecycle event (clientId, timestamp, eventType): {e}"))?;
    let connected = match event.event_type {
        "connected" => true,
        "disconnected" => false,
        other => return Err(format!("eventType '{other}' is not connected/disconnected")),
    };
    if !is_valid_device_id(event.client_id) {
        return Err(format!(
            "clientId '{}' is not a thing name, so no device to record",
            event.client_id
        ));
    }
    Ok((
        event.client_id.to_owned(),
        PresenceChange {
            connected,
            at_ms: event.timestamp,
        },
    ))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PresenceReport {
    pub applied: u64,
    /// Older than what is recorded, or a client id that is not a registered device.
    pub ignored: u64,
    /// Not a lifecycle event: logged and dropped (a retry cannot fix it).
    pub malformed: u64,
    /// Registry write failed: the message goes back to SQS.
    pub failed: u64,
}

/// The `lifecycle` function's use case over `(message id, body)` pairs: every message
/// applied, ignored with a reason, or returned to SQS (its id among the first result).
pub async fn record_presence_events<'a, R: DeviceRegistry>(
    registry: &R,
    messages: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (Vec<String>, PresenceReport) {
    let mut report = PresenceReport::default();
    let mut failed_items = Vec::new();
    for (message_id, body) in messages {
        let (device, change) = match parse_lifecycle_event(body) {
            Ok(parsed) => parsed,
            Err(why) => {
                report.malformed += 1;
                tracing::warn!(reason = %why, "lifecycle event dropped");
                continue;
            }
        };
        match registry.record_presence(&device, change).await {
            Ok(true) => report.applied += 1,
            Ok(false) => report.ignored += 1,
            Err(e) => {
                report.failed += 1;
                tracing::error!(error = %e, device, "presence write failed; message will be retried");
                failed_items.push(message_id.to_owned());
            }
        }
    }
    (failed_items, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_and_disconnect_events_parse() {
        let (id, change) = parse_lifecycle_event(
            r#"{"clientId":"ac-7","timestamp":1700000000000,"eventType":"connected","sessionIdentifier":"x","principalIdentifier":"p","versionNumber":0}"#,
        )
        .unwrap();
        assert_eq!(id, "ac-7");
        assert!(change.connected);
        assert_eq!(change.at_ms, 1_700_000_000_000);
        let (_, change) = parse_lifecycle_event(
            r#"{"clientId":"ac-7","timestamp":5,"eventType":"disconnected","clientInitiatedDisconnect":true,"disconnectReason":"CLIENT_INITIATED_DISCONNECT"}"#,
        )
        .unwrap();
        assert!(!change.connected);
    }

    #[test]
    fn unusable_events_say_why() {
        for (body, why) in [
            ("nope", "not a lifecycle event"),
            (
                r#"{"clientId":"a","timestamp":1,"eventType":"subscribed"}"#,
                "subscribed",
            ),
            (
                r#"{"clientId":"a/b","timestamp":1,"eventType":"connected"}"#,
                "not a thing name",
            ),
        ] {
            let e = parse_lifecycle_event(body).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}
