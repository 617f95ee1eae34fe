//! IoT Core's rules engine, locally: every publish through every topic rule, each match to
//! the rule's actions (SQS or Kinesis), each failed evaluation to its error action.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

use super::PlatformStats;
use crate::broker::InboundPublish;
use crate::provision::{LocalStack, RuleAction, TopicRule};
use crate::queues::QueueBackend;
use crate::rule_sql::{Message, basic_ingest};
use crate::streams::InProcessStreams;

/// Messages the broker → rules engine → queue hand-offs buffer before they push back (the
/// broker then stops reading its sockets, as IoT Core throttles). A gateway's 5-hour batch is
/// ~5 KB, so this bounds each hand-off near 50 MB; 100,000 let a short stall of ingest (a
/// rollup run) leave half a gigabyte behind per hand-off (`make soak`).
pub(super) const HOT_PATH_BUFFER: usize = 10_000;

/// Every publish through every rule until the broker closes `inbound`; outputs to SQS in
/// batches of up to 10 (SendMessageBatch), or to a Kinesis stream record by record
/// (PutRecord, keyed by the action's partition key).
pub(super) async fn rules_engine(
    stack: LocalStack,
    queues: QueueBackend,
    streams: Arc<InProcessStreams>,
    mut inbound: mpsc::Receiver<InboundPublish>,
    stats: Arc<PlatformStats>,
) {
    let engine = RulesEngine {
        senders: queue_senders(&stack.rules, &queues),
        rules: stack.rules,
        streams,
        stats,
    };
    while let Some(publish) = inbound.recv().await {
        engine.route(&publish).await;
    }
}

struct RulesEngine {
    rules: Vec<TopicRule>,
    /// One batching sender per queue any action or error action names.
    senders: HashMap<String, mpsc::Sender<String>>,
    streams: Arc<InProcessStreams>,
    stats: Arc<PlatformStats>,
}

/// A [`batch_sender`] for every queue the rules send to.
fn queue_senders(
    rules: &[TopicRule],
    queues: &QueueBackend,
) -> HashMap<String, mpsc::Sender<String>> {
    let mut senders = HashMap::new();
    for rule in rules {
        for action in rule.actions.iter().chain(&rule.error_action) {
            let RuleAction::Sqs { queue_url } = action else {
                continue;
            };
            senders.entry(queue_url.clone()).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(HOT_PATH_BUFFER);
                tokio::spawn(batch_sender(queues.clone(), queue_url.clone(), rx));
                tx
            });
        }
    }
    senders
}

impl RulesEngine {
    async fn route(&self, publish: &InboundPublish) {
        // Basic Ingest: `$aws/rules/<rule>/<topic>` goes to that rule alone, which sees
        // `<topic>` (IoT Core's topic() leaves the prefix out).
        let basic_ingest = basic_ingest(&publish.topic);
        let message = Message {
            topic: basic_ingest.map_or(publish.topic.as_str(), |(_, topic)| topic),
            payload: &publish.payload,
            client_id: &publish.client_id,
            received_at_ms: publish.received_at_ms,
        };
        for rule in self
            .rules
            .iter()
            .filter(|r| basic_ingest.is_none_or(|(name, _)| r.rule_name == name))
        {
            match rule.query.apply(&message) {
                Ok(None) => {}
                Ok(Some(output)) => {
                    self.stats.rule_matches.fetch_add(1, Ordering::Relaxed);
                    self.act(rule, &message, output.to_string()).await;
                }
                Err(e) => {
                    self.stats.rule_matches.fetch_add(1, Ordering::Relaxed);
                    self.stats.rule_errors.fetch_add(1, Ordering::Relaxed);
                    self.error_action(rule, publish, &e.to_string()).await;
                }
            }
        }
    }

    /// A rule's output to each of its actions.
    async fn act(&self, rule: &TopicRule, message: &Message<'_>, body: String) {
        for action in &rule.actions {
            match action {
                RuleAction::Sqs { queue_url } => {
                    if let Some(sender) = self.senders.get(queue_url) {
                        self.stats.queued.fetch_add(1, Ordering::Relaxed);
                        let _ = sender.send(body.clone()).await;
                    }
                }
                RuleAction::Kinesis {
                    stream_name,
                    partition_key,
                } => {
                    let key = partition_key.apply(message);
                    match self
                        .streams
                        .put(stream_name, &key, body.clone().into_bytes())
                        .await
                    {
                        Ok(_) => {
                            self.stats.queued.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => tracing::error!(error = %e, "rule action PutRecord failed"),
                    }
                }
            }
        }
    }

    /// IoT Core's error-action document to the rule's error queue, if it has one.
    async fn error_action(&self, rule: &TopicRule, publish: &InboundPublish, error: &str) {
        if let Some(RuleAction::Sqs { queue_url }) = &rule.error_action
            && let Some(sender) = self.senders.get(queue_url)
        {
            let document = json!({
                "ruleName": rule.name,
                "topic": publish.topic,
                "clientId": publish.client_id,
                "base64OriginalPayload": base64::engine::general_purpose::STANDARD.encode(&publish.payload),
                "failures": [{"failedAction": "RuleEvaluation", "errorMessage": error}],
            });
            let _ = sender.send(document.to_string()).await;
        }
    }
}

/// Rule-action output to a queue, in batches (SQS's SendMessageBatch takes 10; the
/// in-process queues take what is waiting, up to 1,000).
async fn batch_sender(queues: QueueBackend, queue_url: String, mut bodies: mpsc::Receiver<String>) {
    let in_flight = Arc::new(Semaphore::new(16));
    let limit = match queues {
        QueueBackend::Moto(_) => 10,
        QueueBackend::InProcess(_) => 1000,
    };
    while let Some(first) = bodies.recv().await {
        let mut batch = vec![first];
        while batch.len() < limit {
            match bodies.try_recv() {
                Ok(body) => batch.push(body),
                Err(_) => break,
            }
        }
        let permit = in_flight.clone().acquire_owned().await;
        let (queues, queue_url) = (queues.clone(), queue_url.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let count = batch.len();
            for attempt in 0..5u64 {
                match queues.send(&queue_url, batch.clone()).await {
                    Ok(()) => return,
                    Err(e) if attempt == 4 => {
                        tracing::error!(error = %e, queue_url, "rule action send failed after 5 attempts; {count} messages not delivered");
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100 << attempt)).await,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::{QueueSpec, StreamSpec};
    use crate::queues::InProcessQueues;
    use crate::rule_sql::{RuleQuery, Substitution};
    use serde_json::Value;

    const TELEMETRY: &str = "http://local/q/telemetry";
    const ERRORS: &str = "http://local/q/errors";
    const EVENTS: &str = "http://local/q/events";

    fn sqs(queue_url: &str) -> RuleAction {
        RuleAction::Sqs {
            queue_url: queue_url.into(),
        }
    }

    fn rule(
        name: &str,
        sql: &str,
        actions: Vec<RuleAction>,
        error: Option<RuleAction>,
    ) -> TopicRule {
        TopicRule {
            name: name.into(),
            rule_name: format!("{name}Rule"),
            query: RuleQuery::parse(sql).unwrap(),
            actions,
            error_action: error,
        }
    }

    /// Telemetry to a queue (errors to another) and to a stream keyed by device; events to a
    /// third queue.
    fn stack() -> LocalStack {
        LocalStack {
            stack: crate::template::Stack {
                name: "iotdp-test".into(),
                region: "us-east-1".into(),
                account_id: "123456789012".into(),
                parameters: HashMap::new(),
                physical: HashMap::new(),
            },
            rules: vec![
                rule(
                    "Telemetry",
                    "SELECT *, topic(2) AS device FROM 'dt/+/telemetry'",
                    vec![sqs(TELEMETRY)],
                    Some(sqs(ERRORS)),
                ),
                rule(
                    "Stream",
                    "SELECT * FROM 'dt/+/telemetry'",
                    vec![RuleAction::Kinesis {
                        stream_name: "readings".into(),
                        partition_key: Substitution::parse("${topic(2)}").unwrap(),
                    }],
                    None,
                ),
                rule(
                    "Events",
                    "SELECT * FROM 'events/#'",
                    vec![sqs(EVENTS)],
                    None,
                ),
            ],
            functions: vec![],
            topics: vec![],
            queues: vec![],
            streams: vec![],
            policies: vec![],
            not_emulated: vec![],
        }
    }

    fn publish(topic: &str, payload: &str) -> InboundPublish {
        InboundPublish {
            topic: topic.into(),
            payload: bytes::Bytes::from(payload.to_owned()),
            client_id: "thermostat-1".into(),
            received_at_ms: 1_764_000_000_000,
        }
    }

    struct Routed {
        queues: Arc<InProcessQueues>,
        streams: Arc<InProcessStreams>,
        stats: Arc<PlatformStats>,
    }

    /// `publishes` through the rules engine on in-process queues, until it has seen them all.
    async fn route(publishes: Vec<InboundPublish>) -> Routed {
        let queues = Arc::new(InProcessQueues::new([TELEMETRY, ERRORS, EVENTS].map(
            |url| QueueSpec {
                url: url.into(),
                visibility_timeout: Duration::from_secs(30),
                redrive: None,
            },
        )));
        let streams = Arc::new(InProcessStreams::new([StreamSpec {
            name: "readings".into(),
            arn: "arn:aws:kinesis:us-east-1:123456789012:stream/readings".into(),
            shards: 2,
        }]));
        let stats = Arc::new(PlatformStats::default());
        // Room for every publish: they are all handed over before the engine runs.
        let (inbound, inbound_rx) = mpsc::channel(publishes.len().max(1));
        for p in publishes {
            inbound.send(p).await.unwrap();
        }
        drop(inbound);
        rules_engine(
            stack(),
            QueueBackend::InProcess(queues.clone()),
            streams.clone(),
            inbound_rx,
            stats.clone(),
        )
        .await;
        Routed {
            queues,
            streams,
            stats,
        }
    }

    impl Routed {
        /// The bodies `url` receives, waiting until `count` arrived (the batch senders run on
        /// their own tasks).
        async fn bodies(&self, url: &str, count: usize) -> Vec<Value> {
            let mut out = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while out.len() < count && tokio::time::Instant::now() < deadline {
                for m in self
                    .queues
                    .receive(url, 10, Duration::from_millis(100))
                    .await
                    .unwrap()
                {
                    out.push(serde_json::from_str(&m.body).unwrap());
                }
            }
            out
        }

        fn figure(&self, f: impl Fn(&PlatformStats) -> &std::sync::atomic::AtomicU64) -> u64 {
            f(&self.stats).load(Ordering::Relaxed)
        }
    }

    #[tokio::test]
    async fn a_publish_goes_to_every_matching_rules_actions_and_no_other() {
        let routed = route(vec![publish("dt/thermostat-1/telemetry", r#"{"t":21.5}"#)]).await;
        assert_eq!(
            routed.bodies(TELEMETRY, 1).await,
            [json!({"t": 21.5, "device": "thermostat-1"})]
        );
        assert_eq!(routed.streams.depth("readings").await, Some(1));
        assert_eq!(
            routed.figure(|s| &s.rule_matches),
            2,
            "telemetry and stream"
        );
        assert_eq!(routed.figure(|s| &s.queued), 2);
        assert_eq!(routed.figure(|s| &s.rule_errors), 0);
        assert_eq!(routed.queues.depth(EVENTS).await, Some(0));
    }

    #[tokio::test]
    async fn a_basic_ingest_publish_goes_to_its_rule_alone_which_sees_the_topic_without_the_prefix()
    {
        let routed = route(vec![publish(
            "$aws/rules/TelemetryRule/dt/thermostat-2/telemetry",
            r#"{"t":19}"#,
        )])
        .await;
        assert_eq!(
            routed.bodies(TELEMETRY, 1).await,
            [json!({"t": 19, "device": "thermostat-2"})]
        );
        assert_eq!(routed.figure(|s| &s.rule_matches), 1);
        assert_eq!(
            routed.streams.depth("readings").await,
            Some(0),
            "the stream rule matches the same topic, but was not named"
        );
    }

    #[tokio::test]
    async fn a_failed_evaluation_sends_iot_cores_error_document_to_the_error_action() {
        let routed = route(vec![publish("dt/thermostat-3/telemetry", "not json")]).await;
        let errors = routed.bodies(ERRORS, 1).await;
        assert_eq!(errors.len(), 1, "{errors:?}");
        let document = &errors[0];
        assert_eq!(document["ruleName"], "Telemetry");
        assert_eq!(document["topic"], "dt/thermostat-3/telemetry");
        assert_eq!(document["clientId"], "thermostat-1");
        assert_eq!(document["base64OriginalPayload"], "bm90IGpzb24=");
        assert_eq!(document["failures"][0]["failedAction"], "RuleEvaluation");
        assert!(
            document["failures"][0]["errorMessage"]
                .as_str()
                .is_some_and(|m| m.contains("JSON")),
            "{document}"
        );
        // Both telemetry rules failed; only one has an error action. Nothing was queued.
        assert_eq!(routed.figure(|s| &s.rule_errors), 2);
        assert_eq!(routed.figure(|s| &s.queued), 0);
        assert_eq!(routed.queues.depth(TELEMETRY).await, Some(0));
        assert_eq!(routed.streams.depth("readings").await, Some(0));
    }

    #[tokio::test]
    async fn every_publish_of_a_burst_reaches_the_queue_once() {
        let publishes = (0..50)
            .map(|n| publish("events/presence", &format!(r#"{{"n":{n}}}"#)))
            .collect();
        let routed = route(publishes).await;
        // Batches are sent concurrently, so they may land in any order, as in SQS.
        let mut seen: Vec<i64> = routed
            .bodies(EVENTS, 50)
            .await
            .iter()
            .filter_map(|b| b["n"].as_i64())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        assert_eq!(routed.queues.depth(EVENTS).await, Some(50), "all in flight");
    }
}
