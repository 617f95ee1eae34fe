//! The template's functions as the local platform runs them: their binary, environment, SQS
//! triggers, schedules, and the Kinesis event source mappings onto them.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::scalar;
use crate::template::TemplateError;

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
    pub max_record_age: Option<Duration>,
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
    pub schedules: Vec<Duration>,
    /// The function answers an HTTP API (served locally on 127.0.0.1).
    pub http_api: bool,
}

/// `rate(1 minute)`, `rate(5 minutes)`, `rate(1 hour)`… → the interval. `cron(...)` is not
/// run locally.
pub fn parse_rate(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (amount, unit) = inner.trim().split_once(' ')?;
    let amount: u64 = amount.parse().ok().filter(|a| *a > 0)?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(amount * seconds))
}

/// A function and its events; `queues` maps the template's queue ARNs to their URLs.
pub(super) fn function(
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
        match event["Type"].as_str() {
            Some("HttpApi") => http_api = true,
            Some("Schedule") => schedules.push(schedule(id, name, event)?),
            Some("SQS") => triggers.extend(sqs_trigger(id, name, &event["Properties"], queues)?),
            _ => {
                return Err(TemplateError(format!(
                    "{id}: event {name} of type {} is not supported locally",
                    event["Type"]
                )));
            }
        }
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

fn schedule(id: &str, name: &str, event: &Value) -> Result<Duration, TemplateError> {
    let expression = event["Properties"]["Schedule"].as_str().unwrap_or_default();
    parse_rate(expression).ok_or_else(|| {
        TemplateError(format!(
            "{id}: event {name}: schedule '{expression}' is not a rate(...) expression the local platform runs"
        ))
    })
}

/// An SQS event's mapping; `None` when it is disabled (a disabled mapping does not poll: the
/// idle queue under `Transport=kinesis`).
fn sqs_trigger(
    id: &str,
    name: &str,
    p: &Value,
    queues: &HashMap<String, String>,
) -> Result<Option<SqsTrigger>, TemplateError> {
    if scalar(&p["Enabled"]) == "false" {
        return Ok(None);
    }
    let arn = p["Queue"].as_str().unwrap_or_default();
    let queue_url = queues.get(arn).cloned().ok_or_else(|| {
        TemplateError(format!(
            "{id}: event {name} reads {arn}, not a queue of this template"
        ))
    })?;
    let number = |v: &Value, default: u64| scalar(v).parse().unwrap_or(default);
    Ok(Some(SqsTrigger {
        queue_url,
        batch_size: number(&p["BatchSize"], 10) as usize,
        window_seconds: number(&p["MaximumBatchingWindowInSeconds"], 0),
        report_batch_item_failures: p["FunctionResponseTypes"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x == "ReportBatchItemFailures")),
        max_concurrency: number(&p["ScalingConfig"]["MaximumConcurrency"], 2) as usize,
    }))
}

/// A Kinesis data stream: its name, ARN and shards.
pub(super) fn stream_spec(props: &Value, physical: &crate::template::Physical) -> StreamSpec {
    let shards = match props["StreamModeDetails"]["StreamMode"].as_str() {
        Some("PROVISIONED") => scalar(&props["ShardCount"]).parse().unwrap_or(1),
        _ => 4,
    };
    StreamSpec {
        name: physical.reference.clone(),
        arn: physical.attributes["Arn"].clone(),
        shards,
    }
}

/// A Kinesis event source mapping; the function it feeds (by physical name) and its settings.
pub(super) fn stream_mapping(
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
            .map(Duration::from_secs),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rate_schedules_become_intervals() {
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
    fn a_function_gets_its_queues_schedules_and_api_and_skips_disabled_mappings() {
        let queues = HashMap::from([("arn:q".to_owned(), "http://q".to_owned())]);
        let props = json!({
            "Environment": {"Variables": {"BATCH": 1000, "NAME": "x"}},
            "Events": {
                "Queue": {"Type": "SQS", "Properties": {"Queue": "arn:q", "BatchSize": 100,
                    "FunctionResponseTypes": ["ReportBatchItemFailures"]}},
                "Idle": {"Type": "SQS", "Properties": {"Queue": "arn:q", "Enabled": false}},
                "Every": {"Type": "Schedule", "Properties": {"Schedule": "rate(5 minutes)"}},
                "Api": {"Type": "HttpApi"},
            },
        });
        let metadata = json!({"BuildProperties": {"Binary": "ingest"}});
        let f = function("F", &props, &metadata, &queues).unwrap();
        assert_eq!(f.binary, "ingest");
        assert_eq!(f.environment["BATCH"], "1000");
        assert_eq!(
            f.triggers,
            [SqsTrigger {
                queue_url: "http://q".into(),
                batch_size: 100,
                window_seconds: 0,
                report_batch_item_failures: true,
                max_concurrency: 2,
            }]
        );
        assert_eq!(f.schedules, [Duration::from_secs(300)]);
        assert!(f.http_api);

        let elsewhere =
            json!({"Events": {"E": {"Type": "SQS", "Properties": {"Queue": "arn:other"}}}});
        let e = function("F", &elsewhere, &metadata, &queues).unwrap_err();
        assert!(e.0.contains("reads arn:other"), "{e}");
        let cron = json!({"Events": {"E": {"Type": "Schedule", "Properties": {"Schedule": "cron(0 * * * ? *)"}}}});
        assert!(function("F", &cron, &metadata, &queues).is_err());
        let iot = json!({"Events": {"E": {"Type": "IoTRule"}}});
        let e = function("F", &iot, &metadata, &queues).unwrap_err();
        assert!(e.0.contains("not supported locally"), "{e}");
    }
}
