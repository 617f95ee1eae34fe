//! DynamoDB adapter for the command history ([`CommandStore`]).
//!
//! Key (`device_id`, `command_id`); the patch as JSON in `desired`, everything else as plain
//! attributes so the table reads in the console. While a command is pending it carries
//! `pending = "pending"`, the hash key of the sparse index `pending-by-deadline` (range
//! `expires_at`), so the expiry sweep reads only what is due, never the whole history.
//! `expires_ttl` lets DynamoDB's TTL drop commands [`HISTORY_DAYS`] after they were issued.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::scan::query_all;
use crate::commands::command::{Command, CommandSource, CommandStatus};
use crate::commands::ports::{CommandPortError, CommandStore, Created};

/// How long the history keeps a command.
pub const HISTORY_DAYS: i64 = 90;
/// The sparse index of pending commands by deadline.
pub const PENDING_INDEX: &str = "pending-by-deadline";
const PENDING: &str = "pending";

fn port_error(what: &str, e: impl std::error::Error) -> CommandPortError {
    CommandPortError(format!("{what}: {}", DisplayErrorContext(e)))
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub struct DynamoDbCommands {
    client: Client,
    table: String,
}

impl DynamoDbCommands {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn item(command: &Command) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([
            ("device_id".to_owned(), s(&command.device_id)),
            ("command_id".to_owned(), s(&command.command_id)),
            (
                "desired".to_owned(),
                s(&serde_json::Value::Object(command.desired.clone()).to_string()),
            ),
            ("status".to_owned(), s(command.status.as_str())),
            ("source".to_owned(), s(command.source.as_str())),
            ("issued_by".to_owned(), s(&command.issued_by)),
            ("issued_at".to_owned(), n(command.issued_at_ms)),
            ("expires_at".to_owned(), n(command.expires_at_ms)),
            (
                "expires_ttl".to_owned(),
                n(command.issued_at_ms / 1_000 + HISTORY_DAYS * 86_400),
            ),
        ]);
        if command.status == CommandStatus::Pending {
            item.insert("pending".into(), s(PENDING));
        }
        if let Some(version) = command.shadow_version {
            item.insert("shadow_version".into(), n(version));
        }
        if let Some(at) = command.settled_at_ms {
            item.insert("settled_at".into(), n(at));
        }
        if let Some(detail) = &command.detail {
            item.insert("detail".into(), s(detail));
        }
        item
    }

    fn decode(item: &HashMap<String, AttributeValue>) -> Option<Command> {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let number = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let desired = serde_json::from_str::<serde_json::Value>(&text("desired")?).ok()?;
        Some(Command {
            device_id: text("device_id")?,
            command_id: text("command_id")?,
            desired: desired.as_object()?.clone(),
            status: CommandStatus::parse(&text("status")?)?,
            source: CommandSource::parse(&text("source")?)?,
            issued_by: text("issued_by").unwrap_or_default(),
            issued_at_ms: number("issued_at")?,
            expires_at_ms: number("expires_at")?,
            shadow_version: number("shadow_version").map(|v| v as u64),
            settled_at_ms: number("settled_at"),
            detail: text("detail"),
        })
    }

    fn decode_all(items: &[HashMap<String, AttributeValue>]) -> Vec<Command> {
        items
            .iter()
            .filter_map(|item| {
                let decoded = Self::decode(item);
                if decoded.is_none() {
                    tracing::warn!(?item, "command item that does not decode: skipped");
                }
                decoded
            })
            .collect()
    }
}

impl CommandStore for DynamoDbCommands {
    async fn create(&self, command: &Command) -> Result<Created, CommandPortError> {
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(command)))
            .condition_expression("attribute_not_exists(command_id)")
            .send()
            .await;
        match written {
            Ok(_) => Ok(Created::Created),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                let existing = self
                    .get(&command.device_id, &command.command_id)
                    .await?
                    .ok_or_else(|| {
                        CommandPortError(format!(
                            "command {} of {} exists but cannot be read back from {}",
                            command.command_id, command.device_id, self.table
                        ))
                    })?;
                Ok(Created::Exists(Box::new(existing)))
            }
            Err(e) => Err(port_error(
                &format!("PutItem into command table {}", self.table),
                e,
            )),
        }
    }

    async fn get(
        &self,
        device_id: &str,
        command_id: &str,
    ) -> Result<Option<Command>, CommandPortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("device_id", s(device_id))
            .key("command_id", s(command_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error(&format!("GetItem from command table {}", self.table), e))?;
        Ok(out.item().and_then(Self::decode))
    }

    async fn for_device(&self, device_id: &str) -> Result<Vec<Command>, CommandPortError> {
        let items = query_all(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("device_id = :d")
                .expression_attribute_values(":d", s(device_id))
                .consistent_read(true),
        )
        .await
        .map_err(|e| port_error(&format!("Query of command table {}", self.table), e))?;
        Ok(Self::decode_all(&items))
    }

    async fn replace_if(
        &self,
        command: &Command,
        expected: CommandStatus,
    ) -> Result<bool, CommandPortError> {
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(command)))
            .condition_expression("#status = :expected")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":expected", s(expected.as_str()))
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(false)
            }
            Err(e) => Err(port_error(
                &format!("PutItem into command table {}", self.table),
                e,
            )),
        }
    }

    async fn pending_due(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Command>, CommandPortError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(PENDING_INDEX)
            .key_condition_expression("pending = :p AND expires_at <= :now")
            .expression_attribute_values(":p", s(PENDING))
            .expression_attribute_values(":now", n(now_ms))
            .limit(limit.clamp(1, 1_000) as i32)
            .send()
            .await
            .map_err(|e| {
                port_error(
                    &format!("Query of {PENDING_INDEX} on command table {}", self.table),
                    e,
                )
            })?;
        Ok(Self::decode_all(out.items()))
    }
}
