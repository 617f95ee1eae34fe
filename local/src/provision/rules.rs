//! Topic rules as the local rules engine runs them: the rule's SQL parsed, its actions
//! checked against what the engine can do (SQS and Kinesis, as template.yaml uses).

use serde_json::Value;

use crate::rule_sql::{RuleQuery, Substitution};
use crate::template::TemplateError;

/// Where a topic rule's output goes.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleAction {
    Sqs {
        queue_url: String,
    },
    /// A Kinesis `PutRecord` to the stream, keyed by the partition key's substitution template.
    Kinesis {
        stream_name: String,
        partition_key: Substitution,
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

pub(super) fn topic_rule(
    id: &str,
    rule_name: &str,
    props: &Value,
) -> Result<TopicRule, TemplateError> {
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
            partition_key: Substitution::parse(partition_key)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
                partition_key: Substitution::parse("${topic(2)}").unwrap(),
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
