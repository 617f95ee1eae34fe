//! Each resource kind created in the local endpoint, with the settings its template
//! properties give it.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::Value;

use super::{ProvisionError, create_error, scalar};
use crate::template::Physical;

/// A queue as the template defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    pub url: String,
    pub visibility_timeout: Duration,
    /// Dead-letter queue URL and `maxReceiveCount`.
    pub redrive: Option<(String, u32)>,
}

/// Why a DynamoDB table could not be created from its template properties.
#[derive(Debug, thiserror::Error)]
pub enum DynamoDbTableError {
    /// An attribute definition, key or index in the properties is incomplete: fix the
    /// template's `AttributeDefinitions`, `KeySchema` or `GlobalSecondaryIndexes`.
    #[error("{0}")]
    Definition(#[from] aws_sdk_dynamodb::error::BuildError),
    /// The endpoint refused the table; the SDK's message, with its cause.
    #[error("{message}")]
    Create { message: String },
}

/// The endpoint's clients, one per service the template's resources live in.
pub(super) struct Clients {
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    timestream: aws_sdk_timestreamwrite::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    sns: aws_sdk_sns::Client,
    iot: aws_sdk_iot::Client,
    catalog: JsonApi,
}

impl Clients {
    pub(super) fn new(sdk: &SdkConfig) -> Self {
        Self {
            sqs: aws_sdk_sqs::Client::new(sdk),
            s3: iotdp::wiring::s3_client(sdk),
            timestream: aws_sdk_timestreamwrite::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            iot: aws_sdk_iot::Client::new(sdk),
            catalog: JsonApi {
                http: iotdp::adapters::influxdb::http_client_builder()
                    .build()
                    .expect("an HTTP client with the SDK's TLS provider"),
                endpoint: sdk.endpoint_url().map(str::to_owned),
                region: sdk
                    .region()
                    .map_or_else(|| "us-east-1".into(), ToString::to_string),
            },
        }
    }

    /// A queue as the template defines it (retention, visibility, redrive), and its spec for
    /// the in-process queues.
    pub(super) async fn create_queue(
        &self,
        id: &str,
        props: &Value,
        physical: &Physical,
        queue_by_arn: &HashMap<String, String>,
    ) -> Result<QueueSpec, ProvisionError> {
        let mut request = self
            .sqs
            .create_queue()
            .queue_name(&physical.attributes["QueueName"]);
        for (key, attribute) in [
            (
                "VisibilityTimeout",
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            ),
            (
                "MessageRetentionPeriod",
                aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod,
            ),
        ] {
            if let Some(v) = props.get(key) {
                request = request.attributes(attribute, scalar(v));
            }
        }
        if let Some(redrive) = props.get("RedrivePolicy") {
            let policy = serde_json::json!({
                "deadLetterTargetArn": redrive["deadLetterTargetArn"],
                "maxReceiveCount": scalar(&redrive["maxReceiveCount"]).parse::<u32>().unwrap_or(5),
            });
            request = request.attributes(
                aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
                policy.to_string(),
            );
        }
        let url = request
            .send()
            .await
            .map_err(|e| create_error(id, e))?
            .queue_url()
            .unwrap_or_default()
            .to_owned();
        if url != physical.reference {
            return Err(ProvisionError::Create {
                resource: id.to_owned(),
                message: format!(
                    "queue URL {url} differs from the expected {}",
                    physical.reference
                ),
            });
        }
        Ok(queue_spec(props, physical, queue_by_arn))
    }

    pub(super) async fn create_bucket(
        &self,
        id: &str,
        physical: &Physical,
    ) -> Result<(), ProvisionError> {
        self.s3
            .create_bucket()
            .bucket(&physical.reference)
            .send()
            .await
            .map_err(|e| create_error(id, e))?;
        Ok(())
    }

    pub(super) async fn create_timestream_database(
        &self,
        id: &str,
        physical: &Physical,
    ) -> Result<(), ProvisionError> {
        self.timestream
            .create_database()
            .database_name(&physical.reference)
            .send()
            .await
            .map_err(|e| create_error(id, e))?;
        Ok(())
    }

    pub(super) async fn create_timestream_table(
        &self,
        id: &str,
        props: &Value,
        physical: &Physical,
    ) -> Result<(), ProvisionError> {
        let (database, table) = physical.reference.split_once('|').unwrap_or_default();
        let retention = &props["RetentionProperties"];
        let retention = aws_sdk_timestreamwrite::types::RetentionProperties::builder()
            .memory_store_retention_period_in_hours(
                scalar(&retention["MemoryStoreRetentionPeriodInHours"])
                    .parse()
                    .unwrap_or(24),
            )
            .magnetic_store_retention_period_in_days(
                scalar(&retention["MagneticStoreRetentionPeriodInDays"])
                    .parse()
                    .unwrap_or(73_000),
            )
            .build()
            .map_err(|e| create_error(id, e))?;
        self.timestream
            .create_table()
            .database_name(database)
            .table_name(table)
            .retention_properties(retention)
            .send()
            .await
            .map_err(|e| create_error(id, e))?;
        Ok(())
    }

    pub(super) async fn create_dynamodb_table(
        &self,
        id: &str,
        props: &Value,
        physical: &Physical,
    ) -> Result<(), ProvisionError> {
        create_dynamodb_table(&self.dynamodb, &physical.reference, props)
            .await
            .map_err(|e| ProvisionError::Create {
                resource: id.to_owned(),
                message: e.to_string(),
            })
    }

    pub(super) async fn create_topic(
        &self,
        id: &str,
        physical: &Physical,
    ) -> Result<(), ProvisionError> {
        self.sns
            .create_topic()
            .name(&physical.attributes["TopicName"])
            .send()
            .await
            .map_err(|e| create_error(id, e))?;
        Ok(())
    }

    /// An SQS subscription to a topic.
    pub(super) async fn subscribe_queue(
        &self,
        id: &str,
        props: &Value,
    ) -> Result<(), ProvisionError> {
        self.sns
            .subscribe()
            .topic_arn(props["TopicArn"].as_str().unwrap_or_default())
            .protocol("sqs")
            .endpoint(props["Endpoint"].as_str().unwrap_or_default())
            .send()
            .await
            .map_err(|e| create_error(id, e))?;
        Ok(())
    }

    pub(super) async fn create_iot_policy(
        &self,
        id: &str,
        props: &Value,
        physical: &Physical,
    ) -> Result<(), ProvisionError> {
        self.iot
            .create_policy()
            .policy_name(&physical.reference)
            .policy_document(props["PolicyDocument"].to_string())
            .send()
            .await
            .map_err(|e| create_error(id, e))?;
        Ok(())
    }
}

impl Clients {
    /// The lake's Glue database (`CatalogId`, `DatabaseInput` as the API takes them).
    pub(super) async fn create_glue_database(&self, props: &Value) -> Result<(), String> {
        let body = serde_json::json!({
            "CatalogId": props["CatalogId"],
            "DatabaseInput": props["DatabaseInput"],
        });
        self.catalog
            .call("glue", "AWSGlue.CreateDatabase", &body)
            .await
    }

    /// A Glue table: columns, partition keys and the projection's parameters as given.
    pub(super) async fn create_glue_table(&self, props: &Value) -> Result<(), String> {
        let body = serde_json::json!({
            "CatalogId": props["CatalogId"],
            "DatabaseName": props["DatabaseName"],
            "TableInput": props["TableInput"],
        });
        self.catalog
            .call("glue", "AWSGlue.CreateTable", &body)
            .await
    }

    /// An Athena workgroup with the template's configuration (the cutoff a number, as the API
    /// takes it).
    pub(super) async fn create_athena_workgroup(&self, props: &Value) -> Result<(), String> {
        let mut configuration = props["WorkGroupConfiguration"].clone();
        if let Some(cutoff) = configuration.get_mut("BytesScannedCutoffPerQuery") {
            let bytes: u64 = scalar(cutoff)
                .parse()
                .map_err(|_| format!("BytesScannedCutoffPerQuery {cutoff} is not a number"))?;
            *cutoff = bytes.into();
        }
        let body = serde_json::json!({
            "Name": props["Name"],
            "Description": props.get("Description"),
            "Configuration": configuration,
        });
        self.catalog
            .call("athena", "AmazonAthena.CreateWorkGroup", &body)
            .await
    }
}

/// Glue's and Athena's control planes as the endpoint serves them: JSON 1.1 requests named by
/// their target (their SDKs would be two large crates for three calls). The endpoint routes
/// by the credential scope's service and checks no signature.
struct JsonApi {
    http: reqwest::Client,
    endpoint: Option<String>,
    region: String,
}

impl JsonApi {
    async fn call(&self, service: &str, target: &str, body: &Value) -> Result<(), String> {
        let endpoint = self
            .endpoint
            .as_deref()
            .ok_or("no local endpoint is configured")?;
        let response = self
            .http
            .post(endpoint)
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("X-Amz-Target", target)
            .header(
                "Authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=local/20200101/{}/{service}/aws4_request, SignedHeaders=host, Signature=0",
                    self.region
                ),
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("{target}: {e}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(format!("{target}: HTTP {status}: {text}"))
    }
}

/// The in-process queues' view of a queue: its URL, visibility timeout and redrive.
fn queue_spec(
    props: &Value,
    physical: &Physical,
    queue_by_arn: &HashMap<String, String>,
) -> QueueSpec {
    let visibility = props
        .get("VisibilityTimeout")
        .map(scalar)
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let redrive = props.get("RedrivePolicy").and_then(|r| {
        let dlq = queue_by_arn
            .get(r["deadLetterTargetArn"].as_str()?)?
            .clone();
        Some((dlq, scalar(&r["maxReceiveCount"]).parse().ok()?))
    });
    QueueSpec {
        url: physical.reference.clone(),
        visibility_timeout: Duration::from_secs(visibility),
        redrive,
    }
}

/// A DynamoDB table as template properties define it (keys, indexes; billing on demand).
pub async fn create_dynamodb_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    props: &Value,
) -> Result<(), DynamoDbTableError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    let key_schema = |keys: &Value| -> Result<Vec<KeySchemaElement>, DynamoDbTableError> {
        let mut elements = Vec::new();
        for k in keys.as_array().into_iter().flatten() {
            elements.push(
                KeySchemaElement::builder()
                    .attribute_name(k["AttributeName"].as_str().unwrap_or_default())
                    .key_type(KeyType::from(k["KeyType"].as_str().unwrap_or("HASH")))
                    .build()?,
            );
        }
        Ok(elements)
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for a in props["AttributeDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let definition = AttributeDefinition::builder()
            .attribute_name(a["AttributeName"].as_str().unwrap_or_default())
            .attribute_type(ScalarAttributeType::from(
                a["AttributeType"].as_str().unwrap_or("S"),
            ))
            .build()?;
        request = request.attribute_definitions(definition);
    }
    for element in key_schema(&props["KeySchema"])? {
        request = request.key_schema(element);
    }
    for index in props["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let projection = &index["Projection"];
        let projection = Projection::builder()
            .projection_type(ProjectionType::from(
                projection["ProjectionType"].as_str().unwrap_or("ALL"),
            ))
            .set_non_key_attributes(projection["NonKeyAttributes"].as_array().map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            }))
            .build();
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index["IndexName"].as_str().unwrap_or_default())
                .set_key_schema(Some(key_schema(&index["KeySchema"])?))
                .projection(projection)
                .build()?,
        );
    }
    request
        .send()
        .await
        .map(|_| ())
        .map_err(|e| DynamoDbTableError::Create {
            message: aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
        })
}
