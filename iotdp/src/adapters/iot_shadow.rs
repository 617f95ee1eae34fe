//! IoT Data Plane adapter for [`DeviceCommander`]: `UpdateThingShadow` with a `desired` patch.

use aws_sdk_iotdataplane::Client;
use aws_sdk_iotdataplane::error::DisplayErrorContext;
use aws_sdk_iotdataplane::primitives::Blob;

use crate::alerting::ports::{AlertPortError, DeviceCommander};

pub struct IotShadowCommander {
    client: Client,
}

impl IotShadowCommander {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl DeviceCommander for IotShadowCommander {
    async fn update_desired(
        &self,
        device_id: &str,
        desired: &serde_json::Value,
    ) -> Result<(), AlertPortError> {
        let document = serde_json::json!({ "state": { "desired": desired } });
        self.client
            .update_thing_shadow()
            .thing_name(device_id)
            .payload(Blob::new(document.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                AlertPortError(format!(
                    "UpdateThingShadow for {device_id}: {}",
                    DisplayErrorContext(e)
                ))
            })
    }
}
