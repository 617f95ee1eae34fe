//! DynamoDB adapters for alert rules ([`RuleSource`]) and alert states ([`AlertStateStore`]).
//!
//! Rules table: key `rule_id`; the rule as JSON in `rule`, `enabled` beside it.
//! State table: key (`device_id`, `rule_id`); `state` and `version` as top-level attributes
//! (for filters and the conditional write), the whole state as JSON in `data`.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::scan::{query_all, scan_all};
use crate::alerting::event::AlarmState;
use crate::alerting::ports::{
    AlertKey, AlertPortError, AlertStateStore, ConditionalWrite, RuleSource,
};
use crate::alerting::rule::AlertRule;
use crate::alerting::state_machine::AlertState;

/// BatchGetItem takes at most 100 keys per call.
pub const MAX_KEYS_PER_BATCH_GET: usize = 100;

fn port_error(what: &str, e: impl std::error::Error) -> AlertPortError {
    AlertPortError(format!("{what}: {}", DisplayErrorContext(e)))
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

pub struct DynamoDbRules {
    client: Client,
    table: String,
}

impl DynamoDbRules {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Validate and store a rule (replacing one with the same id).
    pub async fn put(&self, rule: &AlertRule) -> Result<(), AlertPortError> {
        rule.validate().map_err(|e| AlertPortError(e.to_string()))?;
        let json = serde_json::to_string(rule).map_err(|e| AlertPortError(e.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("rule_id", s(&rule.rule_id))
            .item("enabled", AttributeValue::Bool(rule.enabled))
            .item("rule", s(&json))
            .send()
            .await
            .map_err(|e| port_error(&format!("PutItem into rules table {}", self.table), e))?;
        Ok(())
    }

    /// Delete a rule; `false` if there was none with that id.
    pub async fn delete(&self, rule_id: &str) -> Result<bool, AlertPortError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("rule_id", s(rule_id))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| port_error(&format!("DeleteItem from rules table {}", self.table), e))?;
        Ok(out.attributes().is_some())
    }
}

impl RuleSource for DynamoDbRules {
    async fn load_rules(&self) -> Result<Vec<AlertRule>, AlertPortError> {
        let items = scan_all(self.client.scan().table_name(&self.table))
            .await
            .map_err(|e| port_error(&format!("Scan of rules table {}", self.table), e))?;
        let mut rules = Vec::new();
        for item in &items {
            let Some(AttributeValue::S(json)) = item.get("rule") else {
                continue;
            };
            // A broken rule is skipped loudly: it must not stop every other rule.
            match AlertRule::from_json(json) {
                Ok(rule) => rules.push(rule),
                Err(e) => {
                    tracing::error!(error = %e, "skipping invalid rule in the rules table");
                }
            }
        }
        Ok(rules)
    }
}

pub struct DynamoDbAlertStates {
    client: Client,
    table: String,
}

impl DynamoDbAlertStates {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn key(key: &AlertKey) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("device_id".to_owned(), s(&key.device_id)),
            ("rule_id".to_owned(), s(&key.rule_id)),
        ])
    }

    fn decode(item: &HashMap<String, AttributeValue>) -> Option<(AlertKey, AlertState)> {
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        let key = AlertKey {
            device_id: text("device_id")?,
            rule_id: text("rule_id")?,
        };
        let state = serde_json::from_str(&text("data")?).ok()?;
        Some((key, state))
    }

    /// Every state, optionally only those in `state` (a Scan: an operator's tool, not a hot path).
    pub async fn list(
        &self,
        only: Option<AlarmState>,
    ) -> Result<Vec<(AlertKey, AlertState)>, AlertPortError> {
        let mut request = self.client.scan().table_name(&self.table);
        if let Some(state) = only {
            request = request
                .filter_expression("#s = :s")
                .expression_attribute_names("#s", "state")
                .expression_attribute_values(":s", s(state.as_str()));
        }
        let items = scan_all(request)
            .await
            .map_err(|e| port_error(&format!("Scan of alert state table {}", self.table), e))?;
        let mut out: Vec<_> = items.iter().filter_map(Self::decode).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

impl AlertStateStore for DynamoDbAlertStates {
    async fn get_many(&self, keys: &[AlertKey]) -> Result<Vec<Option<AlertState>>, AlertPortError> {
        // BatchGetItem answers in any order: each item is put back at its key's place.
        let place: HashMap<&AlertKey, usize> =
            keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
        let mut found: Vec<Option<AlertState>> = vec![None; keys.len()];
        for chunk in keys.chunks(MAX_KEYS_PER_BATCH_GET) {
            let mut pending = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(Self::key).collect()))
                .consistent_read(true)
                .build()
                .map_err(|e| AlertPortError(e.to_string()))?;
            // UnprocessedKeys (throttling) are asked again with a short, growing pause.
            for attempt in 0..8u32 {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, pending.clone())
                    .send()
                    .await
                    .map_err(|e| port_error(&format!("BatchGetItem on {}", self.table), e))?;
                if let Some(items) = out.responses().and_then(|r| r.get(&self.table)) {
                    for (key, state) in items.iter().filter_map(Self::decode) {
                        if let Some(&at) = place.get(&key) {
                            found[at] = Some(state);
                        }
                    }
                }
                match out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    Some(rest) if !rest.keys().is_empty() => {
                        pending = rest.clone();
                        tokio::time::sleep(Duration::from_millis(20 << attempt.min(5))).await;
                    }
                    _ => break,
                }
                if attempt == 7 {
                    return Err(AlertPortError(format!(
                        "BatchGetItem on {} left keys unprocessed after 8 attempts",
                        self.table
                    )));
                }
            }
        }
        Ok(found)
    }

    async fn put_if_version(
        &self,
        key: &AlertKey,
        state: &AlertState,
        expected_version: u64,
    ) -> Result<ConditionalWrite, AlertPortError> {
        let data = serde_json::to_string(state).map_err(|e| AlertPortError(e.to_string()))?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::key(key)))
            .item("state", s(state.state.as_str()))
            .item("version", AttributeValue::N(state.version.to_string()))
            .item("data", s(&data));
        request = if expected_version == 0 {
            request.condition_expression("attribute_not_exists(device_id)")
        } else {
            request
                .condition_expression("version = :expected")
                .expression_attribute_values(
                    ":expected",
                    AttributeValue::N(expected_version.to_string()),
                )
        };
        match request.send().await {
            Ok(_) => Ok(ConditionalWrite::Written),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(ConditionalWrite::Conflict)
            }
            Err(e) => Err(port_error(
                &format!("PutItem into alert state table {}", self.table),
                e,
            )),
        }
    }
}

impl crate::alerting::ports::RuleStore for DynamoDbRules {
    async fn put(&self, rule: &AlertRule) -> Result<(), AlertPortError> {
        DynamoDbRules::put(self, rule).await
    }

    async fn delete(&self, rule_id: &str) -> Result<bool, AlertPortError> {
        DynamoDbRules::delete(self, rule_id).await
    }
}

impl crate::alerting::ports::AlertStateListing for DynamoDbAlertStates {
    async fn list(
        &self,
        only: Option<AlarmState>,
    ) -> Result<Vec<(AlertKey, AlertState)>, AlertPortError> {
        DynamoDbAlertStates::list(self, only).await
    }

    async fn for_device(
        &self,
        device_id: &str,
    ) -> Result<Vec<(AlertKey, AlertState)>, AlertPortError> {
        let items = query_all(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("device_id = :d")
                .expression_attribute_values(":d", s(device_id)),
        )
        .await
        .map_err(|e| port_error(&format!("Query of alert state table {}", self.table), e))?;
        Ok(items.iter().filter_map(Self::decode).collect())
    }
}
