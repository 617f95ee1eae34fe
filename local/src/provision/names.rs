//! The names and attributes every resource will have (its `Ref` and `!GetAtt` values), computed
//! before anything is created, so properties referring to each other resolve in any order.

use std::collections::HashMap;

use crate::template::{Physical, Resource, Stack, Template, TemplateError};

pub(super) fn physical_ids(
    template: &Template,
    stack: &Stack,
    endpoint: &str,
) -> Result<HashMap<String, Physical>, TemplateError> {
    // Names may depend on parameters (and pseudo parameters) only, as in CloudFormation.
    let bare = Stack {
        physical: HashMap::new(),
        ..stack.clone()
    };
    let mut physical: HashMap<String, Physical> = template
        .resources
        .iter()
        .map(|r| {
            let name = |key: &str| name_property(template, &bare, r, key);
            (r.logical_id.clone(), physical_id(r, name, stack, endpoint))
        })
        .collect();
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
        let table = timestream_table_id(template, &with_databases, r)?;
        physical.insert(r.logical_id.clone(), table);
    }
    Ok(physical)
}

/// The name a resource's `key` property gives it (a dotted path for a nested one, as
/// `DatabaseInput.Name`), or CloudFormation's `<stack>-<logical id>`. Only that property is
/// resolved: the others may refer to resources not named yet.
fn name_property(template: &Template, bare: &Stack, r: &Resource, key: &str) -> String {
    key.split('.')
        .try_fold(&r.properties, |value, step| value.get(step))
        .and_then(|raw| template.resolve(raw, bare).ok().flatten())
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| default_name(bare, r))
}

fn default_name(stack: &Stack, r: &Resource) -> String {
    format!("{}-{}", stack.name, r.logical_id)
}

/// One resource's physical id by its type; `name(key)` reads its name property.
fn physical_id(
    r: &Resource,
    name: impl Fn(&str) -> String,
    stack: &Stack,
    endpoint: &str,
) -> Physical {
    let (region, account) = (&stack.region, &stack.account_id);
    let arn =
        |service: &str, resource: &str| format!("arn:aws:{service}:{region}:{account}:{resource}");
    match r.kind.as_str() {
        "AWS::SQS::Queue" => {
            let name = name("QueueName");
            let url = format!("{endpoint}/{account}/{name}");
            with_attributes(
                &url,
                &[
                    ("Arn", arn("sqs", &name)),
                    ("QueueName", name),
                    ("QueueUrl", url.clone()),
                ],
            )
        }
        "AWS::S3::Bucket" => {
            let name = name("BucketName").to_ascii_lowercase();
            with_attributes(&name, &[("Arn", format!("arn:aws:s3:::{name}"))])
        }
        "AWS::Timestream::Database" => {
            let name = name("DatabaseName");
            with_attributes(
                &name,
                &[("Arn", arn("timestream", &format!("database/{name}")))],
            )
        }
        "AWS::DynamoDB::Table" => {
            let name = name("TableName");
            with_attributes(&name, &[("Arn", arn("dynamodb", &format!("table/{name}")))])
        }
        "AWS::SNS::Topic" => {
            let name = name("TopicName");
            let topic_arn = arn("sns", &name);
            with_attributes(
                &topic_arn,
                &[("TopicArn", topic_arn.clone()), ("TopicName", name)],
            )
        }
        "AWS::IAM::Role" => {
            let name = name("RoleName");
            with_attributes(
                &name,
                &[("Arn", format!("arn:aws:iam::{account}:role/{name}"))],
            )
        }
        "AWS::Logs::LogGroup" => {
            let name = format!("/iotdp/{}/{}", stack.name, r.logical_id);
            with_attributes(&name, &[("Arn", arn("logs", &format!("log-group:{name}")))])
        }
        "AWS::Kinesis::Stream" => {
            let name = name("Name");
            with_attributes(&name, &[("Arn", arn("kinesis", &format!("stream/{name}")))])
        }
        // CloudFormation names a rule `[A-Za-z0-9_]+` when the template does not.
        "AWS::IoT::TopicRule" => with_attributes(&name("RuleName").replace(['-', '.'], "_"), &[]),
        // Glue keeps names in lower case; a table's `Ref` is its name alone.
        "AWS::Glue::Database" => {
            with_attributes(&name("DatabaseInput.Name").to_ascii_lowercase(), &[])
        }
        "AWS::Glue::Table" => with_attributes(&name("TableInput.Name").to_ascii_lowercase(), &[]),
        "AWS::Athena::WorkGroup" => with_attributes(&name("Name"), &[]),
        "AWS::Serverless::Function" => {
            let name = name("FunctionName");
            with_attributes(
                &name,
                &[("Arn", arn("lambda", &format!("function:{name}")))],
            )
        }
        _ => with_attributes(&default_name(stack, r), &[]),
    }
}

fn with_attributes(reference: &str, attributes: &[(&str, String)]) -> Physical {
    Physical {
        reference: reference.to_owned(),
        attributes: attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    }
}

/// A Timestream table: `<database>|<table>`, its database resolved through `stack`.
fn timestream_table_id(
    template: &Template,
    stack: &Stack,
    r: &Resource,
) -> Result<Physical, TemplateError> {
    let props = template.properties(r, stack)?;
    let database = props["DatabaseName"].as_str().unwrap_or_default();
    let table = props["TableName"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| default_name(stack, r));
    let (region, account) = (&stack.region, &stack.account_id);
    Ok(with_attributes(
        &format!("{database}|{table}"),
        &[
            ("Name", table.clone()),
            (
                "Arn",
                format!("arn:aws:timestream:{region}:{account}:database/{database}/table/{table}"),
            ),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = r#"
Parameters:
  Prefix: {Type: String, Default: iot}
Resources:
  Ingest:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !Sub "${Prefix}-ingest"}
  Unnamed:
    Type: AWS::SQS::Queue
  Quarantine:
    Type: AWS::S3::Bucket
    Properties: {BucketName: Quarantine-Bucket}
  Db:
    Type: AWS::Timestream::Database
    Properties: {DatabaseName: telemetry-db}
  Table:
    Type: AWS::Timestream::Table
    Properties: {DatabaseName: !Ref Db, TableName: readings}
  Rule:
    Type: AWS::IoT::TopicRule
  Alerts:
    Type: AWS::SNS::Topic
    Properties: {TopicName: alerts}
  Lake:
    Type: AWS::Glue::Database
    Properties:
      DatabaseInput: {Name: !Join ["_", !Split ["-", !Sub "${AWS::StackName}_Lake"]]}
  Readings:
    Type: AWS::Glue::Table
    Properties:
      DatabaseName: !Ref Lake
      TableInput: {Name: readings, StorageDescriptor: {Location: !Sub "s3://${Quarantine}/"}}
  Analysts:
    Type: AWS::Athena::WorkGroup
    Properties: {Name: !Sub "${AWS::StackName}-lake"}
"#;

    fn ids() -> HashMap<String, Physical> {
        let template = Template::parse(T).unwrap();
        let stack = Stack {
            name: "iotdp-local".into(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            parameters: template.parameter_values(&HashMap::new()).unwrap(),
            physical: HashMap::new(),
        };
        physical_ids(&template, &stack, "http://127.0.0.1:5000").unwrap()
    }

    #[test]
    fn queues_are_named_by_their_property_or_after_the_stack_with_the_endpoints_url() {
        let ids = ids();
        let ingest = &ids["Ingest"];
        assert_eq!(
            ingest.reference,
            "http://127.0.0.1:5000/123456789012/iot-ingest"
        );
        assert_eq!(ingest.attributes["QueueName"], "iot-ingest");
        assert_eq!(
            ingest.attributes["Arn"],
            "arn:aws:sqs:us-east-1:123456789012:iot-ingest"
        );
        assert_eq!(
            ids["Unnamed"].attributes["QueueName"],
            "iotdp-local-Unnamed"
        );
    }

    #[test]
    fn other_kinds_get_cloudformations_names_and_arns() {
        let ids = ids();
        // Bucket names are lower case; rule names have no hyphens.
        assert_eq!(ids["Quarantine"].reference, "quarantine-bucket");
        assert_eq!(ids["Rule"].reference, "iotdp_local_Rule");
        assert!(ids["Rule"].attributes.is_empty());
        assert_eq!(
            ids["Alerts"].reference,
            "arn:aws:sns:us-east-1:123456789012:alerts"
        );
        assert_eq!(ids["Alerts"].attributes["TopicName"], "alerts");
        // A table is named after the database it refers to.
        assert_eq!(ids["Table"].reference, "telemetry-db|readings");
        assert_eq!(
            ids["Table"].attributes["Arn"],
            "arn:aws:timestream:us-east-1:123456789012:database/telemetry-db/table/readings"
        );
        // Glue and Athena: their nested or top-level name, whatever else the properties
        // refer to.
        assert_eq!(ids["Lake"].reference, "iotdp_local_lake");
        assert_eq!(ids["Readings"].reference, "readings");
        assert_eq!(ids["Analysts"].reference, "iotdp-local-lake");
    }
}
