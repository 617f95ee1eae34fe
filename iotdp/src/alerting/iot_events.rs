//! Moving from AWS IoT Events (end of support 2026-05-20): an alarm model, as
//! `aws iotevents describe-alarm-model` prints it, turned into the equivalent iotdp rule, with
//! a report of what was mapped and what has no equivalent. Pure: JSON in, rule and report out.
//!
//! Mapped: the simple rule (input property, comparison operator, literal threshold), the
//! severity, `disabledOnInitialization`, the key attribute (iotdp keys every alarm by the
//! device the topic names). Reported, not mapped: notification and event actions (iotdp
//! notifies on the stack's SNS topic, which subscribers filter by `rule_id`) and thresholds
//! that are expressions rather than numbers. The acknowledge flow becomes a latched rule.

use serde::Deserialize;
use serde_json::Value;

use crate::alerting::rule::{AlertRule, Condition, MAX_RULE_ID_LEN, Scope, Severity};

/// The parts of `DescribeAlarmModel`'s response the import reads (unknown fields are kept in
/// the report, not refused: the response carries ARNs, times, status and tags too).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmModel {
    alarm_model_name: String,
    #[serde(default)]
    alarm_model_description: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    severity: Option<u64>,
    alarm_rule: AlarmRule,
    #[serde(default)]
    alarm_notification: Option<Value>,
    #[serde(default)]
    alarm_event_actions: Option<AlarmEventActions>,
    #[serde(default)]
    alarm_capabilities: Option<AlarmCapabilities>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmRule {
    simple_rule: Option<SimpleRule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SimpleRule {
    input_property: String,
    comparison_operator: String,
    threshold: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmEventActions {
    #[serde(default)]
    alarm_actions: Vec<serde_json::Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmCapabilities {
    #[serde(default)]
    initialization_configuration: Option<InitializationConfiguration>,
    #[serde(default)]
    acknowledge_flow: Option<AcknowledgeFlow>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitializationConfiguration {
    disabled_on_initialization: bool,
}

#[derive(Debug, Deserialize)]
struct AcknowledgeFlow {
    enabled: bool,
}

/// The rule, and one line per part of the model: how it was mapped, or why it was not.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub rule: AlertRule,
    pub mapped: Vec<String>,
    pub not_mapped: Vec<String>,
}

/// A model that cannot become a rule, naming the part to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("alarm model {model}: {problem}")]
pub struct ImportError {
    pub model: String,
    pub problem: String,
}

/// IoT Events severities are bare integers (its console shows 0 to 3 as the usual range).
/// Decision, documented in docs/alerting.md: 0–1 critical, 2 warning, 3 and above info.
pub fn severity_for(level: u64) -> Severity {
    match level {
        0 | 1 => Severity::Critical,
        2 => Severity::Warning,
        _ => Severity::Info,
    }
}

/// `describe-alarm-model`'s JSON → the equivalent iotdp rule and the report.
pub fn import_alarm_model(text: &str) -> Result<Imported, ImportError> {
    let model: AlarmModel = serde_json::from_str(text).map_err(|e| ImportError {
        model: "(unreadable)".into(),
        problem: format!("not the JSON `aws iotevents describe-alarm-model` prints: {e}"),
    })?;
    let name = model.alarm_model_name.clone();
    let fail = |problem: String| ImportError {
        model: name.clone(),
        problem,
    };
    let Some(simple) = &model.alarm_rule.simple_rule else {
        return Err(fail(
            "alarmRule has no simpleRule: only simple rules can be imported".into(),
        ));
    };
    let mut mapped = Vec::new();
    let (metric, condition) = simple_rule_of(simple, &mut mapped).map_err(fail)?;
    let severity = severity_of(model.severity, &mut mapped);
    mapped.push(match &model.key {
        Some(key) => format!("key {key} → one alarm per device (the device the MQTT topic names)"),
        None => "no key → one alarm per device (the device the MQTT topic names)".into(),
    });
    let (enabled, latched) =
        capabilities_of(model.alarm_capabilities.unwrap_or_default(), &mut mapped);
    mapped.push("snooze, disable, enable and reset → `iotdp alerts snooze|disable|enable|reset` / POST /alerts/{device}/{rule}/…".into());
    let not_mapped = actions_not_mapped(
        model.alarm_event_actions.unwrap_or_default(),
        model.alarm_notification.is_some(),
        &name,
    );
    let rule = AlertRule {
        rule_id: rule_id_of(&name),
        name: model
            .alarm_model_description
            .filter(|d| {
                d.bytes()
                    .any(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            })
            .unwrap_or_else(|| name.clone()),
        enabled,
        scope: Scope::All,
        metric,
        condition,
        clear: None,
        debounce: None,
        severity,
        levels: Vec::new(),
        renotify_after: None,
        latched,
        flapping: None,
        actions: Default::default(),
    };
    rule.validate().map_err(|e| fail(e.to_string()))?;
    Ok(Imported {
        rule,
        mapped,
        not_mapped,
    })
}

/// The simple rule's input property and comparison → the rule's metric and condition, each
/// mapping told in `mapped`; the problem when one cannot be mapped.
fn simple_rule_of(
    simple: &SimpleRule,
    mapped: &mut Vec<String>,
) -> Result<(String, Condition), String> {
    let metric = metric_of(&simple.input_property).ok_or_else(|| {
        format!(
            "inputProperty '{}' is not $input.<input>.<attribute>",
            simple.input_property
        )
    })?;
    mapped.push(format!(
        "inputProperty {} → metric '{metric}' (devices send it under \"metrics\")",
        simple.input_property
    ));
    let threshold: f64 = simple.threshold.trim().parse().ok().filter(|t: &f64| t.is_finite()).ok_or_else(|| {
        format!(
            "threshold '{}' is an expression, not a number: iotdp thresholds are numbers; compute it on the device or write one rule per value",
            simple.threshold
        )
    })?;
    // iotdp's `above` and `below` are strict; the next float over keeps ≥ and ≤ exact.
    let condition = match simple.comparison_operator.as_str() {
        "GREATER" => Condition::Above(threshold),
        "GREATER_OR_EQUAL" => Condition::Above(threshold.next_down()),
        "LESS" => Condition::Below(threshold),
        "LESS_OR_EQUAL" => Condition::Below(threshold.next_up()),
        "EQUAL" => Condition::Inside([threshold, threshold]),
        "NOT_EQUAL" => Condition::Outside([threshold, threshold]),
        other => {
            return Err(format!(
                "comparisonOperator '{other}' is not one of GREATER, GREATER_OR_EQUAL, LESS, LESS_OR_EQUAL, EQUAL, NOT_EQUAL"
            ));
        }
    };
    mapped.push(format!(
        "{} {} → condition {}",
        simple.comparison_operator,
        simple.threshold,
        serde_json::to_string(&condition).unwrap_or_default()
    ));
    Ok((metric, condition))
}

/// IoT Events' numeric severity → the rule's (see [`severity_for`]); none is a warning.
fn severity_of(level: Option<u64>, mapped: &mut Vec<String>) -> Severity {
    match level {
        Some(level) => {
            let severity = severity_for(level);
            mapped.push(format!("severity {level} → {}", severity.as_str()));
            severity
        }
        None => {
            mapped.push("no severity → warning".into());
            Severity::Warning
        }
    }
}

/// The model's capabilities → (enabled, latched).
fn capabilities_of(capabilities: AlarmCapabilities, mapped: &mut Vec<String>) -> (bool, bool) {
    let enabled = !capabilities
        .initialization_configuration
        .is_some_and(|c| c.disabled_on_initialization);
    if !enabled {
        mapped.push(
            "disabledOnInitialization → enabled: false (enable with `iotdp rules put`)".into(),
        );
    }
    let latched = match capabilities.acknowledge_flow {
        Some(AcknowledgeFlow { enabled: true }) => {
            mapped.push("acknowledgeFlow → latched: true (an alarm whose condition clears unacknowledged stays LATCHED until `iotdp alerts ack` / POST /alerts/{device}/{rule}/ack)".into());
            true
        }
        _ => {
            mapped.push("no acknowledge flow → the alarm returns to OK when the condition clears (acknowledging stays possible)".into());
            false
        }
    };
    (enabled, latched)
}

/// What the model's actions and notification become: iotdp publishes to its AlertTopic, so
/// each names the subscription to make instead.
fn actions_not_mapped(actions: AlarmEventActions, notifies: bool, name: &str) -> Vec<String> {
    let mut not_mapped = Vec::new();
    for action in actions.alarm_actions {
        for (kind, target) in action {
            match kind.as_str() {
                "sns" => not_mapped.push(format!(
                    "sns action to {}: iotdp publishes every alert to the stack's AlertTopic; subscribe that target's subscribers there with the filter policy {{\"rule_id\": [\"{}\"]}}",
                    target["targetArn"].as_str().unwrap_or("?"),
                    rule_id_of(name)
                )),
                other => not_mapped.push(format!(
                    "{other} action: no equivalent (subscribe a function to AlertTopic to do it)"
                )),
            }
        }
    }
    if notifies {
        not_mapped.push("alarmNotification (email, SMS or Lambda): subscribe the recipients to AlertTopic (email/SMS subscriptions) with a filter on rule_id".into());
    }
    not_mapped
}

/// `$input.BatteryInput.voltage` → `voltage`; `$input.In.sensor.temp` → `sensor.temp`.
fn metric_of(input_property: &str) -> Option<String> {
    let rest = input_property.trim().strip_prefix("$input.")?;
    let (_, attribute) = rest.split_once('.')?;
    crate::domain::is_valid_metric_name(attribute).then(|| attribute.to_owned())
}

/// Alarm model names are `[A-Za-z0-9_-]{1,128}`; rule ids take 64 of them.
fn rule_id_of(model_name: &str) -> String {
    let id: String = model_name.chars().take(MAX_RULE_ID_LEN).collect();
    if id == crate::alerting::rule::NO_DATA_RULE_ID {
        format!("{id}-imported")
    } else {
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::state_machine::{AlertState, apply_reading};

    /// An alarm model in the exact shape `DescribeAlarmModel` answers with.
    fn model(operator: &str, threshold: &str, acknowledge: Option<bool>) -> String {
        let capabilities = match acknowledge {
            Some(enabled) => format!(
                r#","alarmCapabilities":{{"initializationConfiguration":{{"disabledOnInitialization":false}},"acknowledgeFlow":{{"enabled":{enabled}}}}}"#
            ),
            None => String::new(),
        };
        format!(
            r#"{{"creationTime":1700000000.0,"alarmModelArn":"arn:aws:iotevents:us-east-1:123456789012:alarmModel/batteryLow",
            "alarmModelVersion":"1","lastUpdateTime":1700000000.0,"status":"ACTIVE","alarmModelName":"batteryLow",
            "alarmModelDescription":"Battery voltage low","roleArn":"arn:aws:iam::123456789012:role/events",
            "key":"deviceId","severity":1,
            "alarmRule":{{"simpleRule":{{"inputProperty":"$input.BatteryInput.voltage","comparisonOperator":"{operator}","threshold":"{threshold}"}}}},
            "alarmEventActions":{{"alarmActions":[{{"sns":{{"targetArn":"arn:aws:sns:us-east-1:123456789012:ops"}}}}]}}{capabilities}}}"#
        )
    }

    /// Whether the imported rule alarms at `value`, from a fresh state.
    fn alarms_at(rule: &AlertRule, value: f64) -> bool {
        let mut state = AlertState::default();
        apply_reading(rule, &mut state, 1, value);
        state.state == crate::alerting::event::AlarmState::Alarm
    }

    #[test]
    fn every_comparison_operator_fires_exactly_where_iot_events_would() {
        type Comparison = fn(f64, f64) -> bool;
        let cases: [(&str, Comparison); 6] = [
            ("GREATER", |v, t| v > t),
            ("GREATER_OR_EQUAL", |v, t| v >= t),
            ("LESS", |v, t| v < t),
            ("LESS_OR_EQUAL", |v, t| v <= t),
            ("EQUAL", |v, t| v == t),
            ("NOT_EQUAL", |v, t| v != t),
        ];
        for (operator, iot_events) in cases {
            let imported = import_alarm_model(&model(operator, "11.8", Some(true))).unwrap();
            for value in [11.7, 11.8f64.next_down(), 11.8, 11.8f64.next_up(), 11.9] {
                assert_eq!(
                    alarms_at(&imported.rule, value),
                    iot_events(value, 11.8),
                    "{operator} at {value}"
                );
            }
            // The rule survives the same validation and JSON round trip as any rule file.
            let text = serde_json::to_string(&imported.rule).unwrap();
            assert_eq!(AlertRule::from_json(&text).unwrap(), imported.rule);
        }
    }

    #[test]
    fn the_model_maps_to_a_rule_and_the_report_says_what_did_not() {
        let imported = import_alarm_model(&model("LESS", "11.8", Some(true))).unwrap();
        let rule = &imported.rule;
        assert_eq!(rule.rule_id, "batteryLow");
        assert_eq!(rule.name, "Battery voltage low");
        assert_eq!(rule.metric, "voltage");
        assert_eq!(rule.severity, Severity::Critical);
        assert!(rule.enabled);
        assert_eq!(rule.scope, Scope::All);
        assert!(imported.mapped.iter().any(|m| m.contains("key deviceId")));
        assert!(rule.latched, "the acknowledge flow maps to a latched rule");
        assert!(imported.mapped.iter().any(|m| m.contains("LATCHED")));
        assert!(
            imported
                .not_mapped
                .iter()
                .any(|m| m.contains("arn:aws:sns:us-east-1:123456789012:ops")
                    && m.contains(r#"{"rule_id": ["batteryLow"]}"#)),
            "{:?}",
            imported.not_mapped
        );
        let without = import_alarm_model(&model("LESS", "11.8", None)).unwrap();
        assert!(!without.rule.latched);
        assert!(
            !import_alarm_model(&model("LESS", "11.8", Some(false)))
                .unwrap()
                .rule
                .latched
        );
        let disabled = model("LESS", "11.8", Some(false)).replace(
            r#""disabledOnInitialization":false"#,
            r#""disabledOnInitialization":true"#,
        );
        assert!(!import_alarm_model(&disabled).unwrap().rule.enabled);
    }

    #[test]
    fn a_model_it_cannot_map_is_refused_naming_the_part() {
        let expression =
            import_alarm_model(&model("GREATER", "$input.BatteryInput.limit", None)).unwrap_err();
        assert!(expression.problem.contains("expression"), "{expression}");
        let operator = import_alarm_model(&model("BETWEEN", "1", None)).unwrap_err();
        assert!(
            operator.problem.contains("comparisonOperator 'BETWEEN'"),
            "{operator}"
        );
        let property = import_alarm_model(
            &model("LESS", "1", None).replace("$input.BatteryInput.voltage", "voltage"),
        )
        .unwrap_err();
        assert!(property.problem.contains("inputProperty"), "{property}");
        let not_json = import_alarm_model("alarm").unwrap_err();
        assert!(
            not_json.problem.contains("describe-alarm-model"),
            "{not_json}"
        );
        for (level, severity) in [
            (0, Severity::Critical),
            (1, Severity::Critical),
            (2, Severity::Warning),
            (3, Severity::Info),
            (9, Severity::Info),
        ] {
            assert_eq!(severity_for(level), severity);
        }
    }
}
