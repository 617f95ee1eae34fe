//! What the `commands` function receives: batches from the shadow-documents queue (the topic
//! rule on `$aws/things/+/shadow/update/documents` puts `{device_id, reported}` on it, so
//! delivery is learnt from the device's own report, never by polling) and EventBridge's
//! schedule, which expires what waited past its deadline.

use serde_json::{Map, Value};

use super::ports::{CommandStore, ShadowService};
use super::service::Commands;

/// What the topic rule sends per shadow update.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowReport {
    pub device_id: String,
    pub reported: Map<String, Value>,
}

/// Parse one queue message; the reason when it is unusable.
pub fn parse_report(body: &str) -> Result<ShadowReport, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let device_id = value["device_id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or("no device_id (the rule's topic(3))")?
        .to_owned();
    let reported = match value.get("reported") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return Err("'reported' is not an object".into()),
    };
    Ok(ShadowReport {
        device_id,
        reported,
    })
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportOutcome {
    pub settled: usize,
    pub malformed: usize,
    pub failed: usize,
}

/// Settle the commands of every device in the batch. A failure returns its message for retry;
/// a malformed message is logged and dropped (retrying it cannot help).
pub async fn settle_reports<'a, S: ShadowService, K: CommandStore>(
    commands: &Commands<S, K>,
    messages: impl IntoIterator<Item = (&'a str, &'a str)>,
    now_ms: i64,
) -> (Vec<String>, ReportOutcome) {
    let mut failed_items = Vec::new();
    let mut outcome = ReportOutcome::default();
    for (message_id, body) in messages {
        let report = match parse_report(body) {
            Ok(report) => report,
            Err(why) => {
                outcome.malformed += 1;
                tracing::warn!(reason = %why, "shadow report dropped");
                continue;
            }
        };
        match commands
            .observe_reported(&report.device_id, &report.reported, now_ms)
            .await
        {
            Ok(settled) => {
                for command in &settled {
                    tracing::info!(
                        device_id = %command.device_id,
                        command_id = %command.command_id,
                        status = command.status.as_str(),
                        "command settled"
                    );
                }
                outcome.settled += settled.len();
            }
            Err(e) => {
                outcome.failed += 1;
                tracing::error!(error = %e, device = %report.device_id, "settling commands failed; the report will be retried");
                failed_items.push(message_id.to_owned());
            }
        }
    }
    (failed_items, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse_and_unusable_ones_say_why() {
        let report = parse_report(r#"{"device_id":"ac-1","reported":{"setpoint":21}}"#).unwrap();
        assert_eq!(report.device_id, "ac-1");
        assert_eq!(report.reported["setpoint"], 21);
        assert!(
            parse_report(r#"{"device_id":"ac-1"}"#)
                .unwrap()
                .reported
                .is_empty()
        );
        for (body, why) in [
            ("{", "not JSON"),
            (r#"{"reported":{}}"#, "device_id"),
            (r#"{"device_id":"a","reported":3}"#, "not an object"),
        ] {
            assert!(parse_report(body).unwrap_err().contains(why), "{body}");
        }
    }
}
