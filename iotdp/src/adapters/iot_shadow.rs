//! IoT Data Plane adapter for [`ShadowService`]: `GetThingShadow`, and `UpdateThingShadow`
//! with a `desired` patch and the version it was read at (409 when someone wrote in between).

use aws_sdk_iotdataplane::Client;
use aws_sdk_iotdataplane::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_iotdataplane::primitives::Blob;
use serde_json::{Map, Value, json};

use crate::commands::ports::{CommandPortError, ShadowService, ShadowWrite};
use crate::commands::shadow::ShadowDocument;

pub struct IotShadowService {
    client: Client,
}

impl IotShadowService {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn object(value: Option<&Value>) -> Map<String, Value> {
    value
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// A `GetThingShadow` payload as a [`ShadowDocument`].
pub fn parse_shadow(payload: &[u8]) -> Result<ShadowDocument, String> {
    let document: Value = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let state = document.get("state");
    Ok(ShadowDocument {
        desired: object(state.and_then(|s| s.get("desired"))),
        reported: object(state.and_then(|s| s.get("reported"))),
        version: document["version"]
            .as_u64()
            .ok_or("the shadow has no version")?,
        timestamp: document["timestamp"].as_i64().unwrap_or_default(),
    })
}

impl ShadowService for IotShadowService {
    async fn get(&self, device_id: &str) -> Result<Option<ShadowDocument>, CommandPortError> {
        match self
            .client
            .get_thing_shadow()
            .thing_name(device_id)
            .send()
            .await
        {
            Ok(out) => {
                let payload = out.payload.map(Blob::into_inner).unwrap_or_default();
                parse_shadow(&payload)
                    .map(Some)
                    .map_err(|e| CommandPortError(format!("GetThingShadow for {device_id}: {e}")))
            }
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(CommandPortError(format!(
                "GetThingShadow for {device_id}: {}",
                DisplayErrorContext(e)
            ))),
        }
    }

    async fn update_desired(
        &self,
        device_id: &str,
        patch: &Map<String, Value>,
        expected_version: Option<u64>,
    ) -> Result<ShadowWrite, CommandPortError> {
        let mut document = json!({ "state": { "desired": patch } });
        if let Some(version) = expected_version {
            document["version"] = json!(version);
        }
        match self
            .client
            .update_thing_shadow()
            .thing_name(device_id)
            .payload(Blob::new(document.to_string()))
            .send()
            .await
        {
            Ok(out) => {
                let payload = out.payload.map(Blob::into_inner).unwrap_or_default();
                let version = serde_json::from_slice::<Value>(&payload)
                    .ok()
                    .and_then(|v| v["version"].as_u64())
                    .ok_or_else(|| {
                        CommandPortError(format!(
                            "UpdateThingShadow for {device_id} answered without a version"
                        ))
                    })?;
                Ok(ShadowWrite::Written { version })
            }
            Err(e) if e.code() == Some("ConflictException") => Ok(ShadowWrite::Conflict),
            Err(e) => Err(CommandPortError(format!(
                "UpdateThingShadow for {device_id}: {}",
                DisplayErrorContext(e)
            ))),
        }
    }
}
