//! Create in moto every resource `template.yaml` defines, with the names and settings the
//! template gives them. Resource types with no local meaning (IAM, alarms, bucket policies,
//! e-mail subscriptions) are listed as not emulated; an unknown type is an error.

use std::collections::{BTreeMap, HashMap};

use aws_config::SdkConfig;
use serde_json::Value;

use crate::rule_sql::RuleQuery;
use crate::template::{Physical, Resource, Stack, Template, TemplateError};

pub const LOCAL_ACCOUNT: &str = "123456789012";
pub const LOCAL_REGION: &str = "us-east-1";

/// Where a topic rule's output goes.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleAction {
    Sqs {
        queue_url: String,
    },
    /// A Kinesis `PutRecord` to the stream, keyed by the partition key's substitution template.
    Kinesis {
        stream_name: String,
        partition_key: crate::rule_sql::Substitution,
    },
}

#[derive(Debug, Clone)]
pub struct TopicRule {
    /// The template's logical id.
    pub name: String,
    /// The rule's name in IoT Core, what Basic Ingest topics name
    /// (`$aws/rules/<rule_name>/…`).
    pub rule_name: String,
    pub query: RuleQuery,
    pub actions: Vec<RuleAction>,
    pub error_action: Option<RuleAction>,
}

/// An SQS event source mapping of a function.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsTrigger {
    pub queue_url: String,
    pub batch_size: usize,
    pub window_seconds: u64,
    pub report_batch_item_failures: bool,
    pub max_concurrency: usize,
}

/// A Kinesis event source mapping (`AWS::Lambda::EventSourceMapping` on a stream).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamTrigger {
    pub stream_name: String,
    pub batch_size: usize,
    pub window_seconds: u64,
    pub report_batch_item_failures: bool,
    pub bisect_on_error: bool,
    /// `MaximumRetryAttempts`; `None` is -1 (until the record is too old).
    pub max_retries: Option<u32>,
    /// `MaximumRecordAgeInSeconds`; `None` is -1 (until the stream drops it).
    pub max_record_age: Option<std::time::Duration>,
    /// `DestinationConfig.OnFailure`: the queue that is told which records were skipped.
    pub on_failure_queue_url: Option<String>,
}

/// A Kinesis data stream as the template defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSpec {
    pub name: String,
    pub arn: String,
    /// Provisioned: `ShardCount`; on-demand: 4, what a new on-demand stream starts with.
    pub shards: usize,
}

#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    /// The binary the function runs (`BuildProperties.Binary`): picks the local handler.
    pub binary: String,
    pub environment: HashMap<String, String>,
    pub triggers: Vec<SqsTrigger>,
    /// Kinesis event source mappings onto this function.
    pub stream_triggers: Vec<StreamTrigger>,
    /// EventBridge schedules (`rate(...)` expressions), as intervals.
    pub schedules: Vec<std::time::Duration>,
    /// The function answers an HTTP API (served locally on 127.0.0.1).
    pub http_api: bool,
}

/// `rate(1 minute)`, `rate(5 minutes)`, `rate(1 hour)`… → the interval. `cron(...)` is not
/// run locally.
pub fn parse_rate(expression: &str) -> Option<std::time::Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (amount, unit) = inner.trim().split_once(' ')?;
    let amount: u64 = amount.parse().ok().filter(|a| *a > 0)?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(amount * seconds))
}

/// A queue as the template defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    pub url: String,
    pub visibility_timeout: std::time::Duration,
    /// Dead-letter queue URL and `maxReceiveCount`.
    pub redrive: Option<(String, u32)>,
}

/// The stack as created locally.
#[derive(Debug, Clone)]
pub struct LocalStack {
    pub stack: Stack,
    pub rules: Vec<TopicRule>,
    pub functions: Vec<Function>,
    pub topics: Vec<String>,
    pub queues: Vec<QueueSpec>,
    /// Kinesis streams (run in process: see `crate::streams`).
    pub streams: Vec<StreamSpec>,
    /// IoT policies created (the device policy), by name.
    pub policies: Vec<String>,
    /// Resources present in the template but not emulated, with why.
    pub not_emulated: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("creating {resource} in the local endpoint: {message}")]
    Create { resource: String, message: String },
}

fn create_error(resource: &str, e: impl std::error::Error) -> ProvisionError {
    ProvisionError::Create {
        resource: resource.to_owned(),
        message: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
    }
}

/// Names and attributes every resource will have, computed before anything is created, so
/// properties referring to each other resolve in any order.
fn physical_ids(
    template: &Template,
    stack: &Stack,
    endpoint: &str,
) -> Result<HashMap<String, Physical>, TemplateError> {
    let mut physical = HashMap::new();
    let (region, account) = (&stack.region, &stack.account_id);
    // Names may depend on parameters (and pseudo parameters) only, as in CloudFormation.
    let named = |r: &crate::template::Resource, key: &str| -> Result<String, TemplateError> {
        let bare = Stack {
            physical: HashMap::new(),
            ..stack.clone()
        };
        let props = template.properties(r, &bare).unwrap_or(Value::Null);
        Ok(props
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}-{}", stack.name, r.logical_id)))
    };
    for r in &template.resources {
        let attrs = |pairs: &[(&str, String)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        };
        let p = match r.kind.as_str() {
            "AWS::SQS::Queue" => {
                let name = named(r, "QueueName")?;
                let arn = format!("arn:aws:sqs:{region}:{account}:{name}");
                let url = format!("{endpoint}/{account}/{name}");
                Physical {
                    reference: url.clone(),
                    attributes: attrs(&[("Arn", arn), ("QueueName", name), ("QueueUrl", url)]),
                }
            }
            "AWS::S3::Bucket" => {
                let name = named(r, "BucketName")?.to_ascii_lowercase();
                Physical {
                    reference: name.clone(),
                    attributes: attrs(&[("Arn", format!("arn:aws:s3:::{name}"))]),
                }
            }
            "AWS::Timestream::Database" => {
                let name = named(r, "DatabaseName")?;
                Physical {
                    reference: name.clone(),
                    attributes: attrs(&[(
                        "Arn",
                        format!("arn:aws:timestream:{region}:{account}:database/{name}"),
                    )]),
                }
            }
            "AWS::DynamoDB::Table" => {
                let name = named(r, "TableName")?;
                Physical {
                    reference: name.clone(),
                    attributes: attrs(&[(
                        "Arn",
                        format!("arn:aws:dynamodb:{region}:{account}:table/{name}"),
                    )]),
                }
            }
            "AWS::SNS::Topic" => {
                let name = named(r, "TopicName")?;
                let arn = format!("arn:aws:sns:{region}:{account}:{name}");
                Physical {
                    reference: arn.clone(),
                    attributes: attrs(&[("TopicArn", arn), ("TopicName", name)]),
                }
            }
            "AWS::IAM::Role" => {
                let name = named(r, "RoleName")?;
                Physical {
                    reference: name.clone(),
                    attributes: attrs(&[("Arn", format!("arn:aws:iam::{account}:role/{name}"))]),
                }
            }
            "AWS::Logs::LogGroup" => {
                let name = format!("/iotdp/{}/{}", stack.name, r.logical_id);
                Physical {
                    reference: name.clone(),
                    attributes: attrs(&[(
                        "Arn",
                        format!("arn:aws:logs:{region}:{account}:log-group:{name}"),
                    )]),
                }
            }
            "AWS::Kinesis::Stream" => {
                let name = named(r, "Name")?;
                Physical {
                    reference: name.clone(),
                    attributes: attrs(&[(
                        "Arn",
                        format!("arn:aws:kinesis:{region}:{account}:stream/{name}"),
                    )]),
                }
            }
            "AWS::IoT::TopicRule" => Physical {
                // CloudFormation names a rule `[A-Za-z0-9_]+` when the template does not.
                reference: named(r, "RuleName")?.replace(['-', '.'], "_"),
                attributes: HashMap::new(),
            },
            "AWS::Serverless::Function" => {
                let name = named(r, "FunctionName")?;
                Physical {
                    reference: name.clone(),
                    attributes: attrs(&[(
                        "Arn",
                        format!("arn:aws:lambda:{region}:{account}:function:{name}"),
                    )]),
                }
            }
            _ => Physical {
                reference: format!("{}-{}", stack.name, r.logical_id),
                attributes: HashMap::new(),
            },
        };
        physical.insert(r.logical_id.clone(), p);
    }
    // Tables are named after their database, which needs the database's name first.
    for r in template
        .resources
        .iter()
        .filter(|r| r.kind == "AWS::Timestream::Table")
    {
        let with_databases = Stack {
            physical: physical.clone(),
            ..stack.clone()
        };
        let props = template.properties(r, &with_databases)?;
        let database = props["DatabaseName"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let table = props["TableName"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}-{}", stack.name, r.logical_id));
        physical.insert(
            r.logical_id.clone(),
            Physical {
                reference: format!("{database}|{table}"),
                attributes: [
                    ("Name".to_owned(), table.clone()),
                    ("Arn".to_owned(), format!("arn:aws:timestream:{region}:{account}:database/{database}/table/{table}")),
                ]
                .into(),
            },
        );
    }
    Ok(physical)
}

/// Create the stack's resources in the local endpoint.
/// The resources the stack creates, in an order moto accepts: queues without a redrive policy
/// (dead-letter queues) before the queues that name them, Timestream databases before tables.
fn creation_order<'t>(
    template: &'t Template,
    stack: &Stack,
) -> Result<Vec<&'t Resource>, ProvisionError> {
    let mut created = Vec::new();
    for r in &template.resources {
        if template.is_created(r, stack)? {
            created.push(r);
        }
    }
    created.sort_by_key(|r| {
        let has_redrive = template
            .properties(r, stack)
            .map(|p| p.get("RedrivePolicy").is_some())
            .unwrap_or(false);
        (r.kind == "AWS::Timestream::Table", has_redrive)
    });
    Ok(created)
}

/// Why a resource type has no local counterpart, for the start-up listing.
fn not_emulated(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "AWS::IAM::Role" => "IAM is not enforced by the local endpoint",
        "AWS::S3::BucketPolicy" => "bucket policies are not enforced locally",
        "AWS::Serverless::HttpApi" => {
            "API Gateway: the local platform serves the API function on 127.0.0.1 without auth"
        }
        "AWS::CloudWatch::Alarm" => "alarms: the live view shows the queues instead",
        "AWS::Logs::LogGroup" => "log groups: the local platform logs to its terminal",
        _ => return None,
    })
}

/// Register the stack in the local endpoint's CloudFormation under its own name, with the
/// outputs the template declares (resolved against what was created here; `overrides` for
/// the ones only the running platform knows, like the query API's address). Then
/// `iotdp --stack <name>` finds every name locally exactly as it does on AWS. The outputs as
/// registered are returned.
pub async fn register_stack(
    template: &Template,
    local: &LocalStack,
    sdk: &SdkConfig,
    overrides: &[(&str, String)],
) -> Result<BTreeMap<String, String>, ProvisionError> {
    let (mut outputs, _left_out) = template.outputs(&local.stack)?;
    for (name, value) in overrides {
        outputs.insert((*name).to_owned(), value.clone());
    }
    let body = serde_json::json!({
        "Description": "iotdp, provisioned locally: the outputs of template.yaml",
        // A stack needs a resource; this one is nothing (CloudFormation's no-op type).
        "Resources": {"LocalPlatform": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": outputs
            .iter()
            .map(|(name, value)| (name.clone(), serde_json::json!({ "Value": value })))
            .collect::<serde_json::Map<_, _>>(),
    });
    aws_sdk_cloudformation::Client::new(sdk)
        .create_stack()
        .stack_name(&local.stack.name)
        .template_body(body.to_string())
        .send()
        .await
        .map_err(|e| create_error("the CloudFormation stack", e))?;
    Ok(outputs)
}

pub async fn provision(
    template: &Template,
    stack_name: &str,
    parameters: &HashMap<String, String>,
    sdk: &SdkConfig,
    endpoint: &str,
) -> Result<LocalStack, ProvisionError> {
    let mut stack = Stack {
        name: stack_name.to_owned(),
        region: LOCAL_REGION.to_owned(),
        account_id: LOCAL_ACCOUNT.to_owned(),
        parameters: template.parameter_values(parameters)?,
        physical: HashMap::new(),
    };
    stack.physical = physical_ids(template, &stack, endpoint)?;
    let queue_by_arn: HashMap<String, String> = stack
        .physical
        .values()
        .filter_map(|p| {
            Some((
                p.attributes.get("Arn")?.clone(),
                p.attributes.get("QueueUrl")?.clone(),
            ))
        })
        .collect();

    let sqs = aws_sdk_sqs::Client::new(sdk);
    let s3 = iotdp::wiring::s3_client(sdk);
    let timestream = aws_sdk_timestreamwrite::Client::new(sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let sns = aws_sdk_sns::Client::new(sdk);
    let iot = aws_sdk_iot::Client::new(sdk);

    let stream_by_arn: HashMap<String, String> = template
        .resources
        .iter()
        .filter(|r| r.kind == "AWS::Kinesis::Stream")
        .filter_map(|r| {
            let p = stack.physical.get(&r.logical_id)?;
            Some((p.attributes.get("Arn")?.clone(), p.reference.clone()))
        })
        .collect();
    // Mappings name their function; they are attached once every function is read.
    let mut mappings: Vec<(String, StreamTrigger)> = Vec::new();
    let mut local = LocalStack {
        stack: stack.clone(),
        rules: vec![],
        functions: vec![],
        topics: vec![],
        queues: vec![],
        streams: vec![],
        policies: vec![],
        not_emulated: vec![],
    };
    for r in creation_order(template, &stack)? {
        let props = template.properties(r, &stack)?;
        let physical = &stack.physical[&r.logical_id];
        let id = &r.logical_id;
        match r.kind.as_str() {
            "AWS::SQS::Queue" => local
                .queues
                .push(create_queue(&sqs, id, &props, physical, &queue_by_arn).await?),
            "AWS::S3::Bucket" => {
                s3.create_bucket()
                    .bucket(&physical.reference)
                    .send()
                    .await
                    .map_err(|e| create_error(id, e))?;
            }
            "AWS::Timestream::Database" => {
                timestream
                    .create_database()
                    .database_name(&physical.reference)
                    .send()
                    .await
                    .map_err(|e| create_error(id, e))?;
            }
            "AWS::Timestream::Table" => {
                create_timestream_table(&timestream, id, &props, physical).await?;
            }
            "AWS::DynamoDB::Table" => create_dynamodb_table(&dynamodb, &physical.reference, &props)
                .await
                .map_err(|e| ProvisionError::Create {
                    resource: id.clone(),
                    message: e,
                })?,
            "AWS::SNS::Topic" => {
                let name = &physical.attributes["TopicName"];
                sns.create_topic()
                    .name(name)
                    .send()
                    .await
                    .map_err(|e| create_error(id, e))?;
                local.topics.push(physical.reference.clone());
            }
            "AWS::SNS::Subscription" => match props["Protocol"].as_str() {
                Some("sqs") => {
                    sns.subscribe()
                        .topic_arn(props["TopicArn"].as_str().unwrap_or_default())
                        .protocol("sqs")
                        .endpoint(props["Endpoint"].as_str().unwrap_or_default())
                        .send()
                        .await
                        .map_err(|e| create_error(id, e))?;
                }
                other => local.not_emulated.push(format!(
                    "{id} ({} subscription: nothing is delivered locally)",
                    other.unwrap_or("?")
                )),
            },
            "AWS::IoT::TopicRule" => {
                local
                    .rules
                    .push(topic_rule(id, &physical.reference, &props)?);
            }
            "AWS::IoT::Policy" => {
                iot.create_policy()
                    .policy_name(&physical.reference)
                    .policy_document(props["PolicyDocument"].to_string())
                    .send()
                    .await
                    .map_err(|e| create_error(id, e))?;
                local.policies.push(physical.reference.clone());
            }
            "AWS::Serverless::Function" => {
                local
                    .functions
                    .push(function(id, &props, &r.metadata, &queue_by_arn)?);
            }
            "AWS::Kinesis::Stream" => {
                let shards = match props["StreamModeDetails"]["StreamMode"].as_str() {
                    Some("PROVISIONED") => scalar(&props["ShardCount"]).parse().unwrap_or(1),
                    _ => 4,
                };
                local.streams.push(StreamSpec {
                    name: physical.reference.clone(),
                    arn: physical.attributes["Arn"].clone(),
                    shards,
                });
            }
            "AWS::Lambda::EventSourceMapping" => {
                mappings.push(stream_mapping(id, &props, &stream_by_arn, &queue_by_arn)?);
            }
            kind if not_emulated(kind).is_some() => local
                .not_emulated
                .push(format!("{id} ({})", not_emulated(kind).unwrap_or_default())),
            other => {
                return Err(ProvisionError::Template(TemplateError(format!(
                    "{id}: resource type {other} is not supported by the local platform"
                ))));
            }
        }
    }
    for (function_name, trigger) in mappings {
        let function = local
            .functions
            .iter_mut()
            .find(|f| stack.physical[&f.logical_id].reference == function_name)
            .ok_or_else(|| {
                TemplateError(format!(
                    "an event source mapping names function {function_name}, not one of this template"
                ))
            })?;
        function.stream_triggers.push(trigger);
    }
    Ok(local)
}

/// A Kinesis event source mapping; the function it feeds (by physical name) and its settings.
fn stream_mapping(
    id: &str,
    props: &Value,
    stream_by_arn: &HashMap<String, String>,
    queue_by_arn: &HashMap<String, String>,
) -> Result<(String, StreamTrigger), TemplateError> {
    let arn = props["EventSourceArn"].as_str().unwrap_or_default();
    let stream_name = stream_by_arn.get(arn).cloned().ok_or_else(|| {
        TemplateError(format!(
            "{id}: event source {arn} is not a Kinesis stream of this template (the local platform runs mappings onto its streams only)"
        ))
    })?;
    let number = |v: &Value, default: i64| scalar(v).parse::<i64>().unwrap_or(default);
    let on_failure = props["DestinationConfig"]["OnFailure"]["Destination"]
        .as_str()
        .map(|destination| {
            queue_by_arn.get(destination).cloned().ok_or_else(|| {
                TemplateError(format!(
                    "{id}: on-failure destination {destination} is not a queue of this template"
                ))
            })
        })
        .transpose()?;
    let trigger = StreamTrigger {
        stream_name,
        batch_size: number(&props["BatchSize"], 100).max(1) as usize,
        window_seconds: number(&props["MaximumBatchingWindowInSeconds"], 0).max(0) as u64,
        report_batch_item_failures: props["FunctionResponseTypes"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x == "ReportBatchItemFailures")),
        bisect_on_error: scalar(&props["BisectBatchOnFunctionError"]) == "true",
        max_retries: u32::try_from(number(&props["MaximumRetryAttempts"], -1)).ok(),
        max_record_age: u64::try_from(number(&props["MaximumRecordAgeInSeconds"], -1))
            .ok()
            .map(std::time::Duration::from_secs),
        on_failure_queue_url: on_failure,
    };
    Ok((
        props["FunctionName"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        trigger,
    ))
}

/// A queue as the template defines it (retention, visibility, redrive), and its spec for the
/// in-process queues.
async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    id: &str,
    props: &Value,
    physical: &Physical,
    queue_by_arn: &HashMap<String, String>,
) -> Result<QueueSpec, ProvisionError> {
    let mut request = sqs
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
    let spec = QueueSpec {
        url: physical.reference.clone(),
        visibility_timeout: std::time::Duration::from_secs(visibility),
        redrive,
    };
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
    Ok(spec)
}

async fn create_timestream_table(
    timestream: &aws_sdk_timestreamwrite::Client,
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
    timestream
        .create_table()
        .database_name(database)
        .table_name(table)
        .retention_properties(retention)
        .send()
        .await
        .map_err(|e| create_error(id, e))?;
    Ok(())
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A DynamoDB table as template properties define it (keys, indexes; billing on demand).
pub async fn create_dynamodb_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    props: &Value,
) -> Result<(), String> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
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
            .build()
            .map_err(|e| e.to_string())?;
        request = request.attribute_definitions(definition);
    }
    for k in props["KeySchema"].as_array().into_iter().flatten() {
        let element = KeySchemaElement::builder()
            .attribute_name(k["AttributeName"].as_str().unwrap_or_default())
            .key_type(KeyType::from(k["KeyType"].as_str().unwrap_or("HASH")))
            .build()
            .map_err(|e| e.to_string())?;
        request = request.key_schema(element);
    }
    for index in props["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        use aws_sdk_dynamodb::types::{GlobalSecondaryIndex, Projection, ProjectionType};
        let mut keys = Vec::new();
        for k in index["KeySchema"].as_array().into_iter().flatten() {
            keys.push(
                KeySchemaElement::builder()
                    .attribute_name(k["AttributeName"].as_str().unwrap_or_default())
                    .key_type(KeyType::from(k["KeyType"].as_str().unwrap_or("HASH")))
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
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
                .set_key_schema(Some(keys))
                .projection(projection)
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    request
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
}

fn rule_action(id: &str, action: &Value) -> Result<RuleAction, TemplateError> {
    if let Some(sqs) = action.get("Sqs") {
        if sqs.get("UseBase64").and_then(Value::as_bool) == Some(true) {
            return Err(TemplateError(format!(
                "{id}: Sqs action with UseBase64: true is not supported locally"
            )));
        }
        return Ok(RuleAction::Sqs {
            queue_url: sqs["QueueUrl"].as_str().unwrap_or_default().to_owned(),
        });
    }
    if let Some(kinesis) = action.get("Kinesis") {
        let partition_key = kinesis["PartitionKey"].as_str().ok_or_else(|| {
            TemplateError(format!(
                "{id}: a Kinesis action needs a PartitionKey locally (IoT Core's random key would lose per-device order)"
            ))
        })?;
        return Ok(RuleAction::Kinesis {
            stream_name: kinesis["StreamName"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            partition_key: crate::rule_sql::Substitution::parse(partition_key)
                .map_err(|e| TemplateError(format!("{id}: {e}")))?,
        });
    }
    let kind = action
        .as_object()
        .and_then(|o| o.keys().next().cloned())
        .unwrap_or_default();
    Err(TemplateError(format!(
        "{id}: rule action {kind} is not run by the local platform (supported: Sqs and Kinesis, as template.yaml uses)"
    )))
}

fn topic_rule(id: &str, rule_name: &str, props: &Value) -> Result<TopicRule, TemplateError> {
    let payload = &props["TopicRulePayload"];
    if payload["AwsIotSqlVersion"].as_str().unwrap_or("2016-03-23") != "2016-03-23" {
        return Err(TemplateError(format!(
            "{id}: only AwsIotSqlVersion 2016-03-23 is supported locally"
        )));
    }
    let query = RuleQuery::parse(payload["Sql"].as_str().unwrap_or_default())
        .map_err(|e| TemplateError(format!("{id}: {e}")))?;
    let actions = payload["Actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| rule_action(id, a))
        .collect::<Result<_, _>>()?;
    let error_action = payload
        .get("ErrorAction")
        .map(|a| rule_action(id, a))
        .transpose()?;
    Ok(TopicRule {
        name: id.to_owned(),
        rule_name: rule_name.to_owned(),
        query,
        actions,
        error_action,
    })
}

fn function(
    id: &str,
    props: &Value,
    metadata: &Value,
    queues: &HashMap<String, String>,
) -> Result<Function, TemplateError> {
    let binary = metadata["BuildProperties"]["Binary"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let environment = props["Environment"]["Variables"]
        .as_object()
        .map(|vars| vars.iter().map(|(k, v)| (k.clone(), scalar(v))).collect())
        .unwrap_or_default();
    let mut triggers = Vec::new();
    let mut schedules = Vec::new();
    let mut http_api = false;
    for (name, event) in props["Events"].as_object().into_iter().flatten() {
        if event["Type"] == "HttpApi" {
            http_api = true;
            continue;
        }
        if event["Type"] == "Schedule" {
            let expression = event["Properties"]["Schedule"].as_str().unwrap_or_default();
            schedules.push(parse_rate(expression).ok_or_else(|| {
                TemplateError(format!(
                    "{id}: event {name}: schedule '{expression}' is not a rate(...) expression the local platform runs"
                ))
            })?);
            continue;
        }
        if event["Type"] != "SQS" {
            return Err(TemplateError(format!(
                "{id}: event {name} of type {} is not supported locally",
                event["Type"]
            )));
        }
        let p = &event["Properties"];
        if scalar(&p["Enabled"]) == "false" {
            continue; // a disabled mapping does not poll (the idle queue under Transport=kinesis)
        }
        let arn = p["Queue"].as_str().unwrap_or_default();
        let queue_url = queues.get(arn).cloned().ok_or_else(|| {
            TemplateError(format!(
                "{id}: event {name} reads {arn}, not a queue of this template"
            ))
        })?;
        let number = |v: &Value, default: u64| scalar(v).parse().unwrap_or(default);
        triggers.push(SqsTrigger {
            queue_url,
            batch_size: number(&p["BatchSize"], 10) as usize,
            window_seconds: number(&p["MaximumBatchingWindowInSeconds"], 0),
            report_batch_item_failures: p["FunctionResponseTypes"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x == "ReportBatchItemFailures")),
            max_concurrency: number(&p["ScalingConfig"]["MaximumConcurrency"], 2) as usize,
        });
    }
    Ok(Function {
        logical_id: id.to_owned(),
        binary,
        environment,
        triggers,
        stream_triggers: Vec::new(),
        schedules,
        http_api,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rate_schedules_become_intervals() {
        use std::time::Duration;
        assert_eq!(parse_rate("rate(1 minute)"), Some(Duration::from_secs(60)));
        assert_eq!(
            parse_rate("rate(5 minutes)"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(parse_rate("rate(2 hours)"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_rate("cron(0 * * * ? *)"), None);
        assert_eq!(parse_rate("rate(0 minutes)"), None);
    }

    #[test]
    fn rule_actions_other_than_sqs_and_kinesis_stop_start_up_by_name() {
        let sqs = rule_action(
            "R",
            &json!({"Sqs": {"QueueUrl": "http://q", "RoleArn": "r"}}),
        )
        .unwrap();
        assert_eq!(
            sqs,
            RuleAction::Sqs {
                queue_url: "http://q".into()
            }
        );
        let kinesis = rule_action(
            "R",
            &json!({"Kinesis": {"StreamName": "s", "PartitionKey": "${topic(2)}", "RoleArn": "r"}}),
        )
        .unwrap();
        assert_eq!(
            kinesis,
            RuleAction::Kinesis {
                stream_name: "s".into(),
                partition_key: crate::rule_sql::Substitution::parse("${topic(2)}").unwrap(),
            }
        );
        for (action, name) in [
            (json!({"Lambda": {"FunctionArn": "arn"}}), "Lambda"),
            // Without a partition key IoT Core picks a random one: no per-device order.
            (json!({"Kinesis": {"StreamName": "s"}}), "PartitionKey"),
            (
                json!({"Kinesis": {"StreamName": "s", "PartitionKey": "${newuuid()}"}}),
                "newuuid",
            ),
            (
                json!({"Sqs": {"QueueUrl": "q", "UseBase64": true}}),
                "UseBase64",
            ),
        ] {
            let e = rule_action("TelemetryRule", &action).unwrap_err();
            assert!(e.0.contains(name) && e.0.contains("TelemetryRule"), "{e}");
        }
    }
}
