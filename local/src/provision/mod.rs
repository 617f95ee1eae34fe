//! Create in moto every resource `template.yaml` defines, with the names and settings the
//! template gives them. Resource types with no local meaning (IAM, alarms, bucket policies,
//! e-mail subscriptions) are listed as not emulated; an unknown type is an error.
//!
//! The steps: every resource's name first (`names`), then each resource created in an
//! order moto accepts (`resources`), the functions and rules read as the local platform runs
//! them (`functions`, `rules`), the Kinesis mappings attached to their functions last.

mod functions;
mod names;
mod resources;
mod rules;

use std::collections::{BTreeMap, HashMap};

use aws_config::SdkConfig;
use serde_json::Value;

use crate::template::{Physical, Resource, Stack, Template, TemplateError};
pub use functions::{Function, SqsTrigger, StreamSpec, StreamTrigger, parse_rate};
pub use resources::{DynamoDbTableError, QueueSpec, create_dynamodb_table};
pub use rules::{RuleAction, TopicRule};

pub const LOCAL_ACCOUNT: &str = "123456789012";
pub const LOCAL_REGION: &str = "us-east-1";

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

/// Create the stack's resources in the local endpoint.
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
    stack.physical = names::physical_ids(template, &stack, endpoint)?;
    let mut provisioner = Provisioner::new(template, stack, sdk);
    for r in creation_order(template, &provisioner.local.stack)? {
        provisioner.create(template, r).await?;
    }
    provisioner.attach_stream_mappings()
}

/// The stack being created: what is created so far, and the lookups its resources need.
struct Provisioner {
    clients: resources::Clients,
    local: LocalStack,
    /// Queue ARN → URL, for triggers, redrive policies and on-failure destinations.
    queue_by_arn: HashMap<String, String>,
    /// Stream ARN → name, for event source mappings.
    stream_by_arn: HashMap<String, String>,
    /// Kinesis mappings name their function; they are attached once every function is read.
    mappings: Vec<(String, StreamTrigger)>,
}

impl Provisioner {
    fn new(template: &Template, stack: Stack, sdk: &SdkConfig) -> Self {
        let queue_by_arn = stack
            .physical
            .values()
            .filter_map(|p| {
                Some((
                    p.attributes.get("Arn")?.clone(),
                    p.attributes.get("QueueUrl")?.clone(),
                ))
            })
            .collect();
        let stream_by_arn = template
            .resources
            .iter()
            .filter(|r| r.kind == "AWS::Kinesis::Stream")
            .filter_map(|r| {
                let p = stack.physical.get(&r.logical_id)?;
                Some((p.attributes.get("Arn")?.clone(), p.reference.clone()))
            })
            .collect();
        Self {
            clients: resources::Clients::new(sdk),
            local: LocalStack {
                stack,
                rules: vec![],
                functions: vec![],
                topics: vec![],
                queues: vec![],
                streams: vec![],
                policies: vec![],
                not_emulated: vec![],
            },
            queue_by_arn,
            stream_by_arn,
            mappings: Vec::new(),
        }
    }

    /// One resource, by its type: created in the endpoint, or read for the local platform.
    async fn create(&mut self, template: &Template, r: &Resource) -> Result<(), ProvisionError> {
        let props = template.properties(r, &self.local.stack)?;
        let physical: &Physical = &self.local.stack.physical[&r.logical_id].clone();
        let (id, clients, local) = (r.logical_id.as_str(), &self.clients, &mut self.local);
        match r.kind.as_str() {
            "AWS::SQS::Queue" => {
                let spec = clients
                    .create_queue(id, &props, physical, &self.queue_by_arn)
                    .await?;
                local.queues.push(spec);
            }
            "AWS::S3::Bucket" => clients.create_bucket(id, physical).await?,
            "AWS::Timestream::Database" => clients.create_timestream_database(id, physical).await?,
            "AWS::Timestream::Table" => {
                clients
                    .create_timestream_table(id, &props, physical)
                    .await?;
            }
            "AWS::DynamoDB::Table" => clients.create_dynamodb_table(id, &props, physical).await?,
            "AWS::SNS::Topic" => {
                clients.create_topic(id, physical).await?;
                local.topics.push(physical.reference.clone());
            }
            "AWS::SNS::Subscription" => match props["Protocol"].as_str() {
                Some("sqs") => clients.subscribe_queue(id, &props).await?,
                other => local.not_emulated.push(format!(
                    "{id} ({} subscription: nothing is delivered locally)",
                    other.unwrap_or("?")
                )),
            },
            "AWS::IoT::TopicRule" => {
                let rule = rules::topic_rule(id, &physical.reference, &props)?;
                local.rules.push(rule);
            }
            "AWS::IoT::Policy" => {
                clients.create_iot_policy(id, &props, physical).await?;
                local.policies.push(physical.reference.clone());
            }
            "AWS::Serverless::Function" => {
                let function = functions::function(id, &props, &r.metadata, &self.queue_by_arn)?;
                local.functions.push(function);
            }
            // The lake's catalogue: nothing the functions call, so an endpoint without Glue
            // or Athena (LocalStack's free edition) leaves it out instead of stopping.
            "AWS::Glue::Database" | "AWS::Glue::Table" | "AWS::Athena::WorkGroup" => {
                let created = match r.kind.as_str() {
                    "AWS::Glue::Database" => clients.create_glue_database(&props).await,
                    "AWS::Glue::Table" => clients.create_glue_table(&props).await,
                    _ => clients.create_athena_workgroup(&props).await,
                };
                if let Err(why) = created {
                    local
                        .not_emulated
                        .push(format!("{id} (the endpoint refused it: {why})"));
                }
            }
            "AWS::Kinesis::Stream" => local.streams.push(functions::stream_spec(&props, physical)),
            "AWS::Lambda::EventSourceMapping" => self.mappings.push(functions::stream_mapping(
                id,
                &props,
                &self.stream_by_arn,
                &self.queue_by_arn,
            )?),
            kind => match not_emulated(kind) {
                Some(why) => local.not_emulated.push(format!("{id} ({why})")),
                None => {
                    return Err(ProvisionError::Template(TemplateError(format!(
                        "{id}: resource type {kind} is not supported by the local platform"
                    ))));
                }
            },
        }
        Ok(())
    }

    /// The Kinesis mappings onto the functions they name (by physical name): the stack done.
    fn attach_stream_mappings(mut self) -> Result<LocalStack, ProvisionError> {
        for (function_name, trigger) in self.mappings {
            let physical = &self.local.stack.physical;
            let function = self
                .local
                .functions
                .iter_mut()
                .find(|f| physical[&f.logical_id].reference == function_name)
                .ok_or_else(|| {
                    TemplateError(format!(
                        "an event source mapping names function {function_name}, not one of this template"
                    ))
                })?;
            function.stream_triggers.push(trigger);
        }
        Ok(self.local)
    }
}

/// The resources the stack creates, in an order moto accepts: queues without a redrive policy
/// (dead-letter queues) before the queues that name them, Timestream and Glue databases before
/// their tables.
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
        (
            r.kind == "AWS::Timestream::Table" || r.kind == "AWS::Glue::Table",
            has_redrive,
        )
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

/// A property as the SDK's string attributes take it (`30`, not `"30"`).
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
