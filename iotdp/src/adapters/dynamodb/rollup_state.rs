//! DynamoDB for the rollup job's state ([`RollupStateStore`]) and the ingest path's late marks
//! ([`LateWindowMarker`]), in one small table keyed by `id`:
//! - `coverage`: `since_ms`, `watermark_ms`, `finest` (`1m`, `1h`, or `undecided` while
//!   `auto` has measured nothing; absent in state written before it, which reads as `1m`),
//!   replaced only if unchanged since read;
//! - `late#<window start>`: `window_start_ms`, `token` (a fresh token each time the window is
//!   marked; the job deletes a mark only if its token is still the one it read).
//!
//! At steady state the table holds one item plus one per late window not yet recomputed, so a
//! run's Scan costs O(late windows), not O(devices).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};

use super::scan::{Item, scan_all};
use crate::rollup::model::{JobState, LateMark};
use crate::rollup::ports::{LateWindowMarker, RollupError, RollupStateStore};
use crate::rollup::tier::Tier;

/// BatchWriteItem takes at most 25 requests per call.
const MAX_WRITES_PER_BATCH: usize = 25;
const COVERAGE_ID: &str = "coverage";
const MARK_PREFIX: &str = "late#";
/// `finest` while `auto` has decided nothing.
const UNDECIDED: &str = "undecided";

fn finest_name(finest: Option<Tier>) -> &'static str {
    finest.map_or(UNDECIDED, Tier::name)
}

/// The recorded finest tier: absent (written before the field) is 1 minute, as the job kept.
fn finest_of(item: &Item) -> Option<Tier> {
    match item.get("finest").and_then(|v| v.as_s().ok()) {
        None => Some(Tier::Minute),
        Some(name) => Tier::parse(name),
    }
}

fn state_error(what: &str, e: impl std::error::Error) -> RollupError {
    RollupError::State(format!("{what}: {}", DisplayErrorContext(e)))
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

pub struct DynamoDbRollupState {
    client: Client,
    table: String,
}

impl DynamoDbRollupState {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

impl RollupStateStore for DynamoDbRollupState {
    async fn coverage(&self) -> Result<Option<JobState>, RollupError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(COVERAGE_ID.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| state_error(&format!("GetItem from {}", self.table), e))?;
        Ok(out.item.and_then(|item| {
            Some(JobState {
                since_ms: number(&item, "since_ms")?,
                watermark_ms: number(&item, "watermark_ms")?,
                finest: finest_of(&item),
            })
        }))
    }

    async fn save_coverage(
        &self,
        previous: Option<JobState>,
        next: JobState,
    ) -> Result<(), RollupError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", AttributeValue::S(COVERAGE_ID.into()))
            .item("since_ms", n(next.since_ms))
            .item("watermark_ms", n(next.watermark_ms))
            .item("finest", AttributeValue::S(finest_name(next.finest).into()));
        request = match previous {
            None => request.condition_expression("attribute_not_exists(id)"),
            Some(previous) => {
                // State without `finest` read as 1 minute, so it matches 1 minute.
                let finest = if previous.finest == Some(Tier::Minute) {
                    "(finest = :finest OR attribute_not_exists(finest))"
                } else {
                    "finest = :finest"
                };
                request
                    .condition_expression(format!(
                        "since_ms = :since AND watermark_ms = :watermark AND {finest}"
                    ))
                    .expression_attribute_values(":since", n(previous.since_ms))
                    .expression_attribute_values(":watermark", n(previous.watermark_ms))
                    .expression_attribute_values(
                        ":finest",
                        AttributeValue::S(finest_name(previous.finest).into()),
                    )
            }
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(RollupError::Conflict(format!(
                    "coverage in {} is no longer {previous:?}",
                    self.table
                )))
            }
            Err(e) => Err(state_error(&format!("PutItem into {}", self.table), e)),
        }
    }

    async fn late_marks(&self) -> Result<Vec<LateMark>, RollupError> {
        let items = scan_all(
            self.client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression("begins_with(id, :late)")
                .expression_attribute_values(":late", AttributeValue::S(MARK_PREFIX.into())),
        )
        .await
        .map_err(|e| state_error(&format!("Scan of {}", self.table), e))?;
        let mut marks: Vec<LateMark> = items
            .iter()
            .filter_map(|item| {
                Some(LateMark {
                    window_start_ms: number(item, "window_start_ms")?,
                    token: item.get("token")?.as_s().ok()?.clone(),
                })
            })
            .collect();
        marks.sort_by_key(|m| m.window_start_ms);
        Ok(marks)
    }

    async fn clear_marks(&self, marks: &[LateMark]) -> Result<(), RollupError> {
        for mark in marks {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key(
                    "id",
                    AttributeValue::S(format!("{MARK_PREFIX}{}", mark.window_start_ms)),
                )
                .condition_expression("#token = :token")
                .expression_attribute_names("#token", "token")
                .expression_attribute_values(":token", AttributeValue::S(mark.token.clone()))
                .send()
                .await;
            match result {
                Ok(_) => {}
                // Marked again while this run worked: the next run recomputes it.
                Err(SdkError::ServiceError(e))
                    if e.err().is_conditional_check_failed_exception() => {}
                Err(e) => return Err(state_error(&format!("DeleteItem from {}", self.table), e)),
            }
        }
        Ok(())
    }
}

impl LateWindowMarker for DynamoDbRollupState {
    async fn mark(&self, window_starts: &[i64]) -> Result<(), RollupError> {
        for chunk in window_starts.chunks(MAX_WRITES_PER_BATCH) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|&window| {
                    let put = PutRequest::builder()
                        .item("id", AttributeValue::S(format!("{MARK_PREFIX}{window}")))
                        .item("window_start_ms", n(window))
                        .item(
                            "token",
                            AttributeValue::S(format!("{:016x}", fastrand::u64(..))),
                        )
                        .build()
                        .map_err(|e| RollupError::State(format!("late mark: {e}")))?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<_, RollupError>>()?;
            // Unprocessed items (throttling) are sent again a few times before giving up,
            // which fails the write so the readings are retried.
            for attempt in 0..5 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| state_error(&format!("BatchWriteItem into {}", self.table), e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt == 4 {
                    return Err(RollupError::State(format!(
                        "{} late marks left unprocessed by {}",
                        requests.len(),
                        self.table
                    )));
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_written_before_the_finest_field_reads_as_one_minute() {
        let mut item = Item::new();
        item.insert("since_ms".into(), n(0));
        assert_eq!(finest_of(&item), Some(Tier::Minute));
        for finest in [Some(Tier::Minute), Some(Tier::Hour), None] {
            item.insert(
                "finest".into(),
                AttributeValue::S(finest_name(finest).into()),
            );
            assert_eq!(finest_of(&item), finest);
        }
    }
}
