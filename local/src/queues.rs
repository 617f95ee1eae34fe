//! The queues the local hot path runs on. `Moto` uses moto's SQS; `InProcess` is an SQS
//! stand-in in this process with the semantics Lambda's event source relies on: visibility
//! timeout, receive counts, redrive to the dead-letter queue after `maxReceiveCount`, batch
//! send and delete.
//!
//! Why both: moto's SQS costs grow with queue depth (measured: a 10-message SendMessageBatch
//! takes 25 ms on an empty queue and 613 ms at 3,000 messages; ReceiveMessage 123 ms and
//! 1.9 s), which caps a moto-backed pipeline near 100 messages/s on this machine.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;

use crate::provision::QueueSpec;

/// Why a queue call failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The URL names none of the stack's queues (the in-process queues are the template's).
    #[error("no in-process queue {url}")]
    NoSuchQueue { url: String },
    /// moto's SQS refused or failed the call; the message is the SDK's, with its cause.
    #[error("{message}")]
    Sqs { message: String },
}

impl QueueError {
    fn sqs(e: impl std::error::Error) -> Self {
        QueueError::Sqs {
            message: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
        }
    }
}

/// A received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub receive_count: u32,
}

#[derive(Clone)]
pub enum QueueBackend {
    Moto(aws_sdk_sqs::Client),
    InProcess(Arc<InProcessQueues>),
}

#[derive(Debug, Clone)]
struct Message {
    id: String,
    body: String,
    receive_count: u32,
}

#[derive(Debug)]
struct QueueState {
    visible: VecDeque<Message>,
    in_flight: HashMap<String, (Message, Instant)>,
    visibility_timeout: Duration,
    redrive: Option<(String, u32)>,
}

/// Every in-process queue, by URL.
#[derive(Debug, Default)]
pub struct InProcessQueues {
    queues: HashMap<String, (Mutex<QueueState>, Notify)>,
    next_id: AtomicU64,
}

impl InProcessQueues {
    /// `queues`: (URL, visibility timeout, redrive target URL and max receives).
    pub fn new(queues: impl IntoIterator<Item = QueueSpec>) -> Self {
        let queues = queues
            .into_iter()
            .map(
                |QueueSpec {
                     url,
                     visibility_timeout,
                     redrive,
                 }| {
                    let state = QueueState {
                        visible: VecDeque::new(),
                        in_flight: HashMap::new(),
                        visibility_timeout,
                        redrive,
                    };
                    (url, (Mutex::new(state), Notify::new()))
                },
            )
            .collect();
        Self {
            queues,
            next_id: AtomicU64::new(0),
        }
    }

    fn id(&self) -> String {
        format!(
            "local-{:016x}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    pub async fn send(&self, url: &str, bodies: Vec<String>) -> Result<(), QueueError> {
        let (queue, notify) = self
            .queues
            .get(url)
            .ok_or_else(|| QueueError::NoSuchQueue {
                url: url.to_owned(),
            })?;
        let mut state = queue.lock().await;
        for body in bodies {
            state.visible.push_back(Message {
                id: self.id(),
                body,
                receive_count: 0,
            });
        }
        notify.notify_waiters();
        Ok(())
    }

    pub async fn receive(
        &self,
        url: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let (queue, notify) = self
            .queues
            .get(url)
            .ok_or_else(|| QueueError::NoSuchQueue {
                url: url.to_owned(),
            })?;
        let deadline = Instant::now() + wait;
        loop {
            let notified = notify.notified();
            let mut redriven = Vec::new();
            let out = {
                let mut state = queue.lock().await;
                let now = Instant::now();
                // Messages whose visibility timeout ran out become visible again.
                let expired: Vec<String> = state
                    .in_flight
                    .iter()
                    .filter(|(_, (_, at))| *at <= now)
                    .map(|(k, _)| k.clone())
                    .collect();
                for handle in expired {
                    if let Some((message, _)) = state.in_flight.remove(&handle) {
                        state.visible.push_back(message);
                    }
                }
                let mut out = Vec::new();
                while out.len() < max {
                    let Some(mut message) = state.visible.pop_front() else {
                        break;
                    };
                    if let Some((dlq, max_receives)) = &state.redrive
                        && message.receive_count >= *max_receives
                    {
                        redriven.push((dlq.clone(), message));
                        continue;
                    }
                    message.receive_count += 1;
                    let handle = format!("{}-{}", message.id, message.receive_count);
                    out.push(Received {
                        message_id: message.id.clone(),
                        receipt_handle: handle.clone(),
                        body: message.body.clone(),
                        receive_count: message.receive_count,
                    });
                    let visible_at = now + state.visibility_timeout;
                    state.in_flight.insert(handle, (message, visible_at));
                }
                out
            };
            for (dlq, message) in redriven {
                if let Some((target, notify)) = self.queues.get(&dlq) {
                    target.lock().await.visible.push_back(Message {
                        receive_count: 0,
                        ..message
                    });
                    notify.notify_waiters();
                }
            }
            if !out.is_empty() || Instant::now() >= deadline {
                return Ok(out);
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    pub async fn delete(&self, url: &str, receipt_handles: &[String]) -> Result<(), QueueError> {
        let (queue, _) = self
            .queues
            .get(url)
            .ok_or_else(|| QueueError::NoSuchQueue {
                url: url.to_owned(),
            })?;
        let mut state = queue.lock().await;
        for handle in receipt_handles {
            state.in_flight.remove(handle);
        }
        Ok(())
    }

    /// Visible plus in-flight messages.
    pub async fn depth(&self, url: &str) -> Option<usize> {
        let (queue, _) = self.queues.get(url)?;
        let state = queue.lock().await;
        Some(state.visible.len() + state.in_flight.len())
    }
}

/// SQS's batch calls take at most 10 entries, each with an id unique within its call.
const SQS_BATCH_LIMIT: usize = 10;

/// `items` as the entries of successive SQS batch calls, `entry(id, item)` building each.
fn in_sqs_batches<'a, T>(
    items: &'a [String],
    entry: impl Fn(String, &'a str) -> Option<T> + 'a,
) -> impl Iterator<Item = Vec<T>> + 'a {
    items.chunks(SQS_BATCH_LIMIT).map(move |chunk| {
        chunk
            .iter()
            .enumerate()
            .filter_map(|(i, item)| entry(i.to_string(), item))
            .collect()
    })
}

impl QueueBackend {
    pub async fn send(&self, url: &str, bodies: Vec<String>) -> Result<(), QueueError> {
        match self {
            QueueBackend::InProcess(queues) => queues.send(url, bodies).await,
            QueueBackend::Moto(sqs) => {
                let batches = in_sqs_batches(&bodies, |id, body| {
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(id)
                        .message_body(body)
                        .build()
                        .ok()
                });
                for entries in batches {
                    sqs.send_message_batch()
                        .queue_url(url)
                        .set_entries(Some(entries))
                        .send()
                        .await
                        .map_err(QueueError::sqs)?;
                }
                Ok(())
            }
        }
    }

    pub async fn receive(
        &self,
        url: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        match self {
            QueueBackend::InProcess(queues) => queues.receive(url, max, wait).await,
            QueueBackend::Moto(sqs) => {
                let out = sqs
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(max.min(10) as i32)
                    .wait_time_seconds(wait.as_secs().min(20) as i32)
                    .message_system_attribute_names(
                        aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
                    )
                    .send()
                    .await
                    .map_err(QueueError::sqs)?;
                Ok(out
                    .messages()
                    .iter()
                    .map(|m| Received {
                        message_id: m.message_id().unwrap_or_default().to_owned(),
                        receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
                        body: m.body().unwrap_or_default().to_owned(),
                        receive_count: m
                            .attributes()
                            .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                            .and_then(|c| c.parse().ok())
                            .unwrap_or(1),
                    })
                    .collect())
            }
        }
    }

    pub async fn delete(&self, url: &str, receipt_handles: &[String]) -> Result<(), QueueError> {
        match self {
            QueueBackend::InProcess(queues) => queues.delete(url, receipt_handles).await,
            QueueBackend::Moto(sqs) => {
                let batches = in_sqs_batches(receipt_handles, |id, handle| {
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(id)
                        .receipt_handle(handle)
                        .build()
                        .ok()
                });
                for entries in batches {
                    sqs.delete_message_batch()
                        .queue_url(url)
                        .set_entries(Some(entries))
                        .send()
                        .await
                        .map_err(QueueError::sqs)?;
                }
                Ok(())
            }
        }
    }

    pub async fn depth(&self, url: &str) -> Option<usize> {
        match self {
            QueueBackend::InProcess(queues) => queues.depth(url).await,
            QueueBackend::Moto(sqs) => sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(
                    aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
                )
                .send()
                .await
                .ok()?
                .attributes()?
                .get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)?
                .parse()
                .ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(visibility: Duration) -> InProcessQueues {
        InProcessQueues::new([
            QueueSpec {
                url: "q".into(),
                visibility_timeout: visibility,
                redrive: Some(("dlq".into(), 2)),
            },
            QueueSpec {
                url: "dlq".into(),
                visibility_timeout: Duration::from_secs(30),
                redrive: None,
            },
        ])
    }

    #[tokio::test]
    async fn deleted_messages_are_gone_and_undeleted_ones_come_back_after_the_visibility_timeout() {
        let q = queues(Duration::from_millis(50));
        q.send("q", vec!["a".into(), "b".into()]).await.unwrap();
        let got = q.receive("q", 10, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 2);
        q.delete("q", &[got[0].receipt_handle.clone()])
            .await
            .unwrap();
        assert!(
            q.receive("q", 10, Duration::ZERO).await.unwrap().is_empty(),
            "b is in flight"
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        let again = q.receive("q", 10, Duration::ZERO).await.unwrap();
        assert_eq!(
            (again.len(), again[0].body.as_str(), again[0].receive_count),
            (1, "b", 2)
        );
    }

    #[tokio::test]
    async fn a_message_received_max_receives_times_moves_to_the_dead_letter_queue() {
        let q = queues(Duration::ZERO);
        q.send("q", vec!["poison".into()]).await.unwrap();
        assert_eq!(q.receive("q", 10, Duration::ZERO).await.unwrap().len(), 1);
        assert_eq!(q.receive("q", 10, Duration::ZERO).await.unwrap().len(), 1);
        assert!(
            q.receive("q", 10, Duration::ZERO).await.unwrap().is_empty(),
            "third receive redrives"
        );
        let dead = q.receive("dlq", 10, Duration::ZERO).await.unwrap();
        assert_eq!(dead[0].body, "poison");
    }

    #[tokio::test]
    async fn a_long_poll_wakes_up_when_a_message_arrives() {
        let q = Arc::new(queues(Duration::from_secs(30)));
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.receive("q", 10, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.send("q", vec!["x".into()]).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 1);
    }
}
