//! The alerts a subscriber gets, counted for the live view: a queue subscribed to every SNS
//! topic of the stack, drained as it fills.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

use super::PlatformStats;

/// How many of the latest alert subjects the live view shows.
const RECENT_ALERTS: usize = 5;

pub(super) async fn watch_alerts(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    stats: Arc<PlatformStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        let received = tokio::select! {
            r = sqs.receive_message().queue_url(&queue_url).max_number_of_messages(10).wait_time_seconds(1).send() => r,
            _ = shutdown.changed() => return,
        };
        let Ok(received) = received else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        for m in received.messages() {
            count_alert(&stats, m.body().unwrap_or_default()).await;
            if let Some(handle) = m.receipt_handle() {
                let _ = sqs
                    .delete_message()
                    .queue_url(&queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
        }
    }
}

/// One SNS delivery (its envelope as the queue holds it): an alarm raised or cleared, and its
/// subject first among the recent ones.
async fn count_alert(stats: &PlatformStats, sqs_body: &str) {
    let envelope: serde_json::Value = serde_json::from_str(sqs_body).unwrap_or_default();
    let body: serde_json::Value =
        serde_json::from_str(envelope["Message"].as_str().unwrap_or_default()).unwrap_or_default();
    match body["kind"].as_str() {
        Some("alarm") => stats.alerts_raised.fetch_add(1, Ordering::Relaxed),
        Some("ok") => stats.alerts_cleared.fetch_add(1, Ordering::Relaxed),
        _ => 0,
    };
    let mut recent = stats.recent_alerts.lock().await;
    recent.push_front(envelope["Subject"].as_str().unwrap_or_default().to_owned());
    recent.truncate(RECENT_ALERTS);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn delivery(subject: &str, kind: &str) -> String {
        json!({
            "Type": "Notification",
            "Subject": subject,
            "Message": json!({"kind": kind, "device_id": "d1"}).to_string(),
        })
        .to_string()
    }

    #[tokio::test]
    async fn alarms_and_clears_are_counted_and_the_latest_five_subjects_kept_newest_first() {
        let stats = PlatformStats::default();
        count_alert(&stats, &delivery("hot", "alarm")).await;
        count_alert(&stats, &delivery("cool again", "ok")).await;
        count_alert(&stats, &delivery("acknowledged", "ack")).await;
        assert_eq!(stats.alerts_raised.load(Ordering::Relaxed), 1);
        assert_eq!(stats.alerts_cleared.load(Ordering::Relaxed), 1);
        assert_eq!(
            stats.recent_alerts.lock().await.front().map(String::as_str),
            Some("acknowledged")
        );
        for n in 0..5 {
            count_alert(&stats, &delivery(&format!("alert {n}"), "alarm")).await;
        }
        let recent: Vec<String> = stats.recent_alerts.lock().await.iter().cloned().collect();
        assert_eq!(
            recent,
            ["alert 4", "alert 3", "alert 2", "alert 1", "alert 0"]
        );
        assert_eq!(stats.alerts_raised.load(Ordering::Relaxed), 6);
    }

    #[tokio::test]
    async fn a_body_that_is_not_an_sns_envelope_counts_nothing() {
        let stats = PlatformStats::default();
        count_alert(&stats, "not json").await;
        assert_eq!(stats.alerts_raised.load(Ordering::Relaxed), 0);
        assert_eq!(stats.alerts_cleared.load(Ordering::Relaxed), 0);
        assert_eq!(
            stats.recent_alerts.lock().await.len(),
            1,
            "an empty subject"
        );
    }
}
