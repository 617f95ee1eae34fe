//! SNS adapter for [`Notifier`]: JSON body, short subject, filterable message attributes.

use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;

use crate::alerting::notification::AlertNotification;
use crate::alerting::ports::{AlertPortError, Notifier};

pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

impl Notifier for SnsNotifier {
    async fn publish(&self, notification: &AlertNotification) -> Result<(), AlertPortError> {
        let body =
            serde_json::to_string(notification).map_err(|e| AlertPortError(e.to_string()))?;
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(notification.subject())
            .message(body);
        for (name, value) in notification.attributes() {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| AlertPortError(e.to_string()))?;
            request = request.message_attributes(name, attribute);
        }
        request.send().await.map(|_| ()).map_err(|e| {
            AlertPortError(format!(
                "SNS Publish to {}: {}",
                self.topic_arn,
                DisplayErrorContext(e)
            ))
        })
    }
}
