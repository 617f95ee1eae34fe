//! The ingest use case, top to bottom:
//! SQS batch → envelopes → readings (or rejections) → gateway authorization → store writes →
//! quarantine → SQS batch response. Nothing is dropped: every reading ends stored, quarantined
//! with a reason, or with its message reported failed so SQS redelivers it.

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::batch::{PreparedBatch, ReadingOrigin, prepare_batch};
use crate::domain::Reading;
use crate::metrics::IngestMetrics;
use crate::ports::{
    GatewayAuthorizer, GatewayClaim, QuarantineSink, ReadingsObserver, TimeSeriesStore,
};
use crate::quarantine::{count_by_reason, quarantine_key, render_quarantine};
use crate::reason::{ReasonCode, Rejection};
use crate::store_writer::{WriteOutcome, WritePolicy, write_readings};
use crate::validation::TimeWindow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestSettings {
    pub window: TimeWindow,
    pub write: WritePolicy,
}

/// One invocation's identity and time budget.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub deadline: Instant,
    pub started_at: DateTime<Utc>,
}

impl Invocation {
    /// From Lambda's context: `deadline` is epoch milliseconds.
    pub fn from_lambda(context: &lambda_runtime::Context) -> Self {
        let now = Utc::now();
        let remaining_ms = (context.deadline as i64 - now.timestamp_millis()).max(0);
        Self {
            request_id: context.request_id.clone(),
            deadline: Instant::now() + Duration::from_millis(remaining_ms as u64),
            started_at: now,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IngestReport {
    pub response: SqsBatchResponse,
    pub metrics: IngestMetrics,
}

/// The ingest use case over its ports: a time-series store, a quarantine, a gateway
/// authorizer, and an observer of stored readings (alert evaluation).
pub struct IngestService<S, Q, A, O> {
    store: S,
    quarantine: Q,
    authorizer: A,
    observer: O,
    settings: IngestSettings,
}

impl<S, Q, A, O> IngestService<S, Q, A, O>
where
    S: TimeSeriesStore,
    Q: QuarantineSink,
    A: GatewayAuthorizer,
    O: ReadingsObserver,
{
    pub fn new(
        store: S,
        quarantine: Q,
        authorizer: A,
        observer: O,
        settings: IngestSettings,
    ) -> Self {
        Self {
            store,
            quarantine,
            authorizer,
            observer,
            settings,
        }
    }

    pub fn observer(&self) -> &O {
        &self.observer
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub async fn handle(&self, event: &SqsEvent, invocation: &Invocation) -> IngestReport {
        let messages = event.records.iter().map(|m| {
            (
                m.message_id.as_deref().unwrap_or_default(),
                m.body.as_deref().unwrap_or_default(),
            )
        });
        let mut batch = prepare_batch(messages, self.settings.window);
        let mut failures = MessageFailures::new(batch.messages.len());

        self.authorize_gateway_claims(&mut batch, &mut failures)
            .await;
        // Readings of a message that will be redelivered are written on redelivery.
        batch.retain_readings(|_, origin| !failures.has(origin.message));
        batch.sort_by_series();

        let (outcomes, write_stats) = write_readings(
            &self.store,
            &batch.readings,
            &self.settings.write,
            invocation.deadline,
        )
        .await;
        let mut stored = Vec::with_capacity(batch.readings.len());
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let origin = batch.origins[i];
            match outcome {
                WriteOutcome::Stored => stored.push(i),
                WriteOutcome::RejectedByStore(reason) => {
                    batch.reject(origin, Rejection::new(ReasonCode::RejectedByStore, reason))
                }
                WriteOutcome::Failed(why) => failures.fail(origin.message, &why),
            }
        }

        // Alerts see what was stored, in series/time order. A reading whose evaluation could
        // not complete sends its message back: redelivery rewrites it (an idempotent no-op)
        // and evaluates it again.
        let alerts = if stored.len() == batch.readings.len() {
            self.observer.observe(&batch.readings).await
        } else {
            let subset: Vec<Reading> = stored.iter().map(|&i| batch.readings[i].clone()).collect();
            self.observer.observe(&subset).await
        };
        for i in alerts.retry {
            failures.fail(
                batch.origins[stored[i]].message,
                "alert evaluation did not complete",
            );
        }

        let quarantined = self
            .quarantine_rejections(&batch, &mut failures, invocation)
            .await;

        let mut metrics = IngestMetrics {
            messages: batch.messages.len() as u64,
            readings_accepted: batch.readings.len() as u64,
            rejected_by_reason: count_by_reason(
                batch
                    .rejections
                    .iter()
                    .filter(|r| !failures.has(r.origin.message)),
            ),
            records_written: write_stats.records_written,
            write_calls: write_stats.write_calls,
            write_retries: write_stats.retries,
            write_latencies_ms: write_stats.latencies_ms,
            quarantine_lines: quarantined,
            alerts: alerts.stats,
            ..Default::default()
        };
        let response = failures.into_response(&batch);
        metrics.failed_messages = response.batch_item_failures.len() as u64;
        IngestReport { response, metrics }
    }

    /// Readings that name another device than their topic's need the authorizer's yes.
    async fn authorize_gateway_claims(
        &self,
        batch: &mut PreparedBatch,
        failures: &mut MessageFailures,
    ) {
        let claimed: Vec<usize> = (0..batch.readings.len())
            .filter(|&i| batch.needs_authorization[i])
            .collect();
        if claimed.is_empty() {
            return;
        }
        let topic_device = |origin: &ReadingOrigin| {
            batch.messages[origin.message]
                .meta
                .topic
                .as_deref()
                .and_then(|t| crate::envelope::device_id_from_topic(t).ok())
                .unwrap_or_default()
        };
        let claims: Vec<GatewayClaim<'_>> = claimed
            .iter()
            .map(|&i| GatewayClaim {
                gateway: topic_device(&batch.origins[i]),
                device: &batch.readings[i].device_id,
            })
            .collect();
        let allowed = match self.authorizer.authorize(&claims).await {
            Ok(allowed) if allowed.len() == claims.len() => allowed,
            other => {
                let why = match other {
                    Err(e) => e.to_string(),
                    Ok(_) => "gateway authorizer answered the wrong number of claims".into(),
                };
                tracing::warn!(error = %why, "gateway authorization failed; messages will be retried");
                for &i in &claimed {
                    failures.fail(batch.origins[i].message, &why);
                }
                return;
            }
        };
        let denied: Vec<(usize, Rejection)> = claims
            .iter()
            .zip(claimed.iter().zip(allowed))
            .filter(|(_, (_, ok))| !ok)
            .map(|(claim, (&i, _))| {
                let rejection = Rejection::new(
                    ReasonCode::NotAuthorizedForDevice,
                    format!(
                        "'{}' may not report for device '{}': only a device's registered gateway may",
                        claim.gateway, claim.device
                    ),
                );
                (i, rejection)
            })
            .collect();
        drop(claims);
        let denied_set: std::collections::HashSet<usize> = denied.iter().map(|(i, _)| *i).collect();
        for (i, rejection) in denied {
            let origin = batch.origins[i];
            batch.reject(origin, rejection);
        }
        batch.retain_readings(|i, _| !denied_set.contains(&i));
    }

    /// Write every rejection of a message that is not being retried; if that fails, the
    /// messages concerned are retried instead, so a rejection is never lost untraced.
    async fn quarantine_rejections(
        &self,
        batch: &PreparedBatch,
        failures: &mut MessageFailures,
        invocation: &Invocation,
    ) -> u64 {
        let lines: Vec<_> = batch
            .rejections
            .iter()
            .filter(|r| !failures.has(r.origin.message))
            .collect();
        if lines.is_empty() {
            return 0;
        }
        let body = render_quarantine(batch, &lines);
        let key = quarantine_key(&invocation.request_id, invocation.started_at);
        match self.quarantine.put(&key, body).await {
            Ok(()) => lines.len() as u64,
            Err(error) => {
                let why = error.to_string();
                tracing::error!(error = %why, key, "quarantine write failed; messages will be retried");
                for line in lines {
                    failures.fail(line.origin.message, &why);
                }
                0
            }
        }
    }
}

/// Which messages must go back to SQS, and the first reason why (for the logs).
struct MessageFailures(Vec<Option<String>>);

impl MessageFailures {
    fn new(messages: usize) -> Self {
        Self(vec![None; messages])
    }

    fn fail(&mut self, message: usize, why: &str) {
        if self.0[message].is_none() {
            self.0[message] = Some(why.to_owned());
        }
    }

    fn has(&self, message: usize) -> bool {
        self.0[message].is_some()
    }

    fn into_response(self, batch: &PreparedBatch) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for (message, why) in self.0.into_iter().enumerate() {
            if let Some(why) = why {
                let id = batch.messages[message].message_id.clone();
                tracing::warn!(message_id = %id, reason = %why, "message returned to SQS for retry");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
        response
    }
}

/// The Lambda entry point: run the use case, print its EMF metrics, answer SQS.
pub async fn handle_lambda_event<S, Q, A, O>(
    service: &IngestService<S, Q, A, O>,
    event: lambda_runtime::LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error>
where
    S: TimeSeriesStore,
    Q: QuarantineSink,
    A: GatewayAuthorizer,
    O: ReadingsObserver,
{
    let invocation = Invocation::from_lambda(&event.context);
    let report = service.handle(&event.payload, &invocation).await;
    let function = &event.context.env_config.function_name;
    for document in report
        .metrics
        .to_emf(function, Utc::now().timestamp_millis())
    {
        // EMF must reach stdout as its own line; CloudWatch Logs extracts the metrics.
        println!("{document}");
    }
    tracing::info!(
        messages = report.metrics.messages,
        accepted = report.metrics.readings_accepted,
        rejected = report.metrics.readings_rejected(),
        written = report.metrics.records_written,
        failed_messages = report.metrics.failed_messages,
        "batch ingested"
    );
    Ok(report.response)
}
