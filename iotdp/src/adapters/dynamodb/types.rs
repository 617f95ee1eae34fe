//! Device type definitions in DynamoDB (`DeviceTypesTable`): key `device_type`, the
//! definition as its JSON document (`definition`, what `iotdp types put` reads from a file)
//! and its `version`, which only a conditional put moves on, so two operators' puts of one
//! type never both claim a version.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::registry::{conditional, n, registry_error, s};
use super::scan::{Item, scan_all};
use crate::devices::ports::{DeviceTypes, RegistryError};
use crate::devices::types::TypeDefinition;

/// BatchGetItem's most keys per call.
const MAX_KEYS_PER_BATCH_GET: usize = 100;

#[derive(Clone)]
pub struct DynamoDbDeviceTypes {
    client: Client,
    table: String,
}

impl DynamoDbDeviceTypes {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn definition_of(&self, item: &Item) -> Result<TypeDefinition, RegistryError> {
        let name = item
            .get("device_type")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let text = item
            .get("definition")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| {
                RegistryError(format!(
                    "device type '{name}' in {} has no definition: put it again",
                    self.table
                ))
            })?;
        serde_json::from_str(text).map_err(|e| {
            RegistryError(format!(
                "device type '{name}' in {} is not a definition ({e}): put it again",
                self.table
            ))
        })
    }
}

impl DeviceTypes for DynamoDbDeviceTypes {
    async fn get_types(&self, names: &[&str]) -> Result<Vec<TypeDefinition>, RegistryError> {
        let mut out = Vec::new();
        for chunk in names.chunks(MAX_KEYS_PER_BATCH_GET) {
            let keys = chunk
                .iter()
                .map(|name| HashMap::from([("device_type".to_owned(), s(name))]))
                .collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .build()
                    .map_err(|e| RegistryError(e.to_string()))?,
            );
            // Keys DynamoDB leaves unprocessed (throttling) are asked for again.
            for _ in 0..5 {
                let Some(keys) = request.take() else { break };
                let answer = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(|e| registry_error("BatchGetItem", &self.table, e))?;
                for item in answer
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    out.push(self.definition_of(item)?);
                }
                request = answer
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
            }
            if request.is_some() {
                return Err(RegistryError(format!(
                    "BatchGetItem on table {}: keys still unprocessed after 5 rounds (throttled)",
                    self.table
                )));
            }
        }
        Ok(out)
    }

    async fn list_types(&self) -> Result<Vec<TypeDefinition>, RegistryError> {
        let items = scan_all(self.client.scan().table_name(&self.table))
            .await
            .map_err(|e| registry_error("Scan", &self.table, e))?;
        let mut out = items
            .iter()
            .map(|item| self.definition_of(item))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| a.device_type.cmp(&b.device_type));
        Ok(out)
    }

    async fn put_type(&self, definition: &TypeDefinition) -> Result<Option<u32>, RegistryError> {
        let current = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("device_type", s(&definition.device_type))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| registry_error("GetItem", &self.table, e))?
            .item
            .and_then(|item| item.get("version")?.as_n().ok()?.parse::<u32>().ok());
        let version = current.unwrap_or(0) + 1;
        let stored = TypeDefinition {
            version,
            ..definition.clone()
        };
        let body = serde_json::to_string(&stored).map_err(|e| RegistryError(e.to_string()))?;
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("device_type", s(&definition.device_type))
            .item("version", n(version))
            .item("definition", AttributeValue::S(body));
        let request = match current {
            None => request.condition_expression("attribute_not_exists(device_type)"),
            Some(v) => request
                .condition_expression("version = :read")
                .expression_attribute_values(":read", n(v)),
        };
        let written = conditional(request.send().await, "PutItem", &self.table)?;
        Ok(written.then_some(version))
    }
}
