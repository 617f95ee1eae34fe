//! `template.yaml` as data: parameters, conditions, resources, and the CloudFormation
//! intrinsics our template uses (`Ref`, `!GetAtt`, `!Sub`, `!If`, `!Not`, `!Equals`, `!And`,
//! `!Or`, `!Join`, `AWS::NoValue` and the pseudo parameters). Anything else is an error naming it, never a
//! silent skip.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};
use serde_yaml_ng::Value as Yaml;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template.yaml: {0}")]
pub struct TemplateError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(message.into()))
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub logical_id: String,
    pub kind: String,
    pub condition: Option<String>,
    /// Unresolved: `Template::properties` resolves them against a stack.
    pub(crate) properties: Value,
    pub metadata: Value,
}

/// The template with intrinsics still unresolved (tags become `{"Fn::X": …}` objects).
#[derive(Debug, Clone)]
pub struct Template {
    pub parameters: BTreeMap<String, Value>,
    conditions: BTreeMap<String, Value>,
    pub resources: Vec<Resource>,
    /// `Outputs`, unresolved: what the deployed stack tells operators and the CLI.
    outputs: BTreeMap<String, Value>,
}

/// What a resource resolves to: its `Ref` value and its `!GetAtt` attributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Physical {
    pub reference: String,
    pub attributes: HashMap<String, String>,
}

/// The values the intrinsics resolve against.
#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub region: String,
    pub account_id: String,
    pub parameters: HashMap<String, String>,
    pub physical: HashMap<String, Physical>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let yaml: Yaml = serde_yaml_ng::from_str(text).map_err(|e| TemplateError(e.to_string()))?;
        let root = to_json(&yaml)?;
        let section = |name: &str| {
            root.get(name)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let parameters = section("Parameters")
            .into_iter()
            .map(|(k, v)| (k, v.get("Default").cloned().unwrap_or(Value::Null)))
            .collect();
        let conditions = section("Conditions").into_iter().collect();
        let resources = section("Resources")
            .into_iter()
            .map(|(logical_id, r)| Resource {
                kind: r["Type"].as_str().unwrap_or_default().to_owned(),
                condition: r
                    .get("Condition")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                properties: r
                    .get("Properties")
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Map::new())),
                metadata: r.get("Metadata").cloned().unwrap_or(Value::Null),
                logical_id,
            })
            .collect();
        let outputs = section("Outputs").into_iter().collect();
        Ok(Self {
            parameters,
            conditions,
            resources,
            outputs,
        })
    }

    pub fn resource(&self, logical_id: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.logical_id == logical_id)
    }

    /// Parameter values: the template's defaults with `overrides` on top (as `--parameter-overrides`).
    pub fn parameter_values(
        &self,
        overrides: &HashMap<String, String>,
    ) -> Result<HashMap<String, String>, TemplateError> {
        let mut values = HashMap::new();
        for (name, default) in &self.parameters {
            let value = match overrides.get(name) {
                Some(v) => v.clone(),
                None => match default {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Null => {
                        return err(format!(
                            "parameter {name} has no default: give it with --parameter {name}=VALUE"
                        ));
                    }
                    other => other.to_string(),
                },
            };
            values.insert(name.clone(), value);
        }
        if let Some(unknown) = overrides.keys().find(|k| !self.parameters.contains_key(*k)) {
            return err(format!("no parameter named {unknown}"));
        }
        Ok(values)
    }

    /// Whether a resource exists in this stack (its `Condition`, if any, holds).
    pub fn is_created(&self, resource: &Resource, stack: &Stack) -> Result<bool, TemplateError> {
        match &resource.condition {
            None => Ok(true),
            Some(name) => self.condition(name, stack),
        }
    }

    fn condition(&self, name: &str, stack: &Stack) -> Result<bool, TemplateError> {
        let expr = self
            .conditions
            .get(name)
            .ok_or_else(|| TemplateError(format!("condition {name} is not defined")))?;
        match self.resolve(expr, stack)? {
            Some(Value::Bool(b)) => Ok(b),
            other => err(format!(
                "condition {name} did not evaluate to a boolean: {other:?}"
            )),
        }
    }

    /// The outputs CloudFormation would publish for this stack: each one whose `Condition`
    /// holds, resolved. Outputs that name a resource not created here are left out, listed
    /// second with why.
    pub fn outputs(
        &self,
        stack: &Stack,
    ) -> Result<(BTreeMap<String, String>, Vec<String>), TemplateError> {
        let mut resolved = BTreeMap::new();
        let mut left_out = Vec::new();
        for (name, output) in &self.outputs {
            if let Some(condition) = output.get("Condition").and_then(Value::as_str)
                && !self.condition(condition, stack)?
            {
                continue;
            }
            match self.resolve(&output["Value"], stack) {
                Ok(Some(Value::String(value))) => {
                    resolved.insert(name.clone(), value);
                }
                Ok(other) => left_out.push(format!("{name}: not a string ({other:?})")),
                Err(why) => left_out.push(format!("{name}: {}", why.0)),
            }
        }
        Ok((resolved, left_out))
    }

    /// A resource's properties with every intrinsic resolved.
    pub fn properties(&self, resource: &Resource, stack: &Stack) -> Result<Value, TemplateError> {
        Ok(self
            .resolve(&resource.properties, stack)?
            .unwrap_or(Value::Null))
    }

    /// Resolve intrinsics; `None` is `AWS::NoValue` (the key disappears).
    pub fn resolve(&self, value: &Value, stack: &Stack) -> Result<Option<Value>, TemplateError> {
        match value {
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.extend(self.resolve(item, stack)?);
                }
                Ok(Some(Value::Array(out)))
            }
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().expect("one entry");
                match key.as_str() {
                    "Ref" => self.reference(arg.as_str().unwrap_or_default(), stack),
                    "Fn::GetAtt" => {
                        let text = match arg {
                            Value::String(s) => s.clone(),
                            Value::Array(parts) => parts
                                .iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join("."),
                            _ => return err(format!("malformed !GetAtt {arg}")),
                        };
                        Ok(Some(Value::String(get_att(&text, stack)?)))
                    }
                    "Fn::Sub" => Ok(Some(Value::String(
                        self.sub(arg.as_str().unwrap_or_default(), stack)?,
                    ))),
                    "Fn::If" => {
                        let parts = arg
                            .as_array()
                            .filter(|p| p.len() == 3)
                            .ok_or_else(|| TemplateError(format!("malformed !If {arg}")))?;
                        let chosen =
                            if self.condition(parts[0].as_str().unwrap_or_default(), stack)? {
                                &parts[1]
                            } else {
                                &parts[2]
                            };
                        self.resolve(chosen, stack)
                    }
                    "Fn::Not" => {
                        let inner = arg
                            .as_array()
                            .and_then(|a| a.first())
                            .ok_or_else(|| TemplateError("malformed !Not".into()))?;
                        match self.resolve(inner, stack)? {
                            Some(Value::Bool(b)) => Ok(Some(Value::Bool(!b))),
                            _ => err("!Not needs a condition"),
                        }
                    }
                    "Fn::Equals" => {
                        let parts = arg
                            .as_array()
                            .filter(|p| p.len() == 2)
                            .ok_or_else(|| TemplateError("malformed !Equals".into()))?;
                        let a = self.resolve(&parts[0], stack)?;
                        let b = self.resolve(&parts[1], stack)?;
                        Ok(Some(Value::Bool(a == b)))
                    }
                    "Fn::And" | "Fn::Or" => {
                        let parts = arg
                            .as_array()
                            .ok_or_else(|| TemplateError(format!("malformed {key} {arg}")))?;
                        let mut values = Vec::with_capacity(parts.len());
                        for part in parts {
                            match self.resolve(part, stack)? {
                                Some(Value::Bool(b)) => values.push(b),
                                _ => return err(format!("{key} needs conditions, found {part}")),
                            }
                        }
                        Ok(Some(Value::Bool(if key == "Fn::And" {
                            values.iter().all(|b| *b)
                        } else {
                            values.iter().any(|b| *b)
                        })))
                    }
                    "Fn::Join" => {
                        let parts = arg
                            .as_array()
                            .filter(|p| p.len() == 2)
                            .ok_or_else(|| TemplateError(format!("malformed !Join {arg}")))?;
                        let delimiter = parts[0].as_str().unwrap_or_default();
                        // A CommaDelimitedList parameter is kept as its text locally.
                        let items: Vec<String> = match self.resolve(&parts[1], stack)? {
                            Some(Value::Array(items)) => items
                                .iter()
                                .map(|v| v.as_str().unwrap_or_default().to_owned())
                                .collect(),
                            Some(Value::String(text)) => {
                                text.split(',').map(str::to_owned).collect()
                            }
                            _ => vec![],
                        };
                        Ok(Some(Value::String(items.join(delimiter))))
                    }
                    "Fn::Split" => {
                        let parts = arg
                            .as_array()
                            .filter(|p| p.len() == 2)
                            .ok_or_else(|| TemplateError(format!("malformed !Split {arg}")))?;
                        let delimiter = parts[0].as_str().unwrap_or_default();
                        match self.resolve(&parts[1], stack)? {
                            Some(Value::String(text)) if !delimiter.is_empty() => {
                                Ok(Some(Value::Array(
                                    text.split(delimiter)
                                        .map(|s| Value::String(s.to_owned()))
                                        .collect(),
                                )))
                            }
                            _ => err(format!("!Split needs a delimiter and a string: {arg}")),
                        }
                    }
                    "Condition" => Ok(Some(Value::Bool(
                        self.condition(arg.as_str().unwrap_or_default(), stack)?,
                    ))),
                    other if other.starts_with("Fn::") => err(format!(
                        "intrinsic {other} is not supported by the local platform"
                    )),
                    _ => self.resolve_object(map, stack),
                }
            }
            Value::Object(map) => self.resolve_object(map, stack),
            other => Ok(Some(other.clone())),
        }
    }

    fn resolve_object(
        &self,
        map: &Map<String, Value>,
        stack: &Stack,
    ) -> Result<Option<Value>, TemplateError> {
        let mut out = Map::new();
        for (k, v) in map {
            if let Some(v) = self.resolve(v, stack)? {
                out.insert(k.clone(), v);
            }
        }
        Ok(Some(Value::Object(out)))
    }

    fn reference(&self, name: &str, stack: &Stack) -> Result<Option<Value>, TemplateError> {
        let text = match name {
            "AWS::NoValue" => return Ok(None),
            "AWS::StackName" => stack.name.clone(),
            "AWS::Region" => stack.region.clone(),
            "AWS::AccountId" => stack.account_id.clone(),
            "AWS::Partition" => "aws".into(),
            "AWS::URLSuffix" => "amazonaws.com".into(),
            _ => match (stack.parameters.get(name), stack.physical.get(name)) {
                (Some(value), _) => value.clone(),
                (None, Some(physical)) => physical.reference.clone(),
                (None, None) => {
                    return err(format!(
                        "Ref {name}: no such parameter or resource (or it is not created locally)"
                    ));
                }
            },
        };
        Ok(Some(Value::String(text)))
    }

    fn sub(&self, text: &str, stack: &Stack) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| TemplateError(format!("unclosed ${{ in !Sub '{text}'")))?;
            let name = &rest[start + 2..start + end];
            // `${!Literal}` is CloudFormation's escape for a literal `${Literal}` (IoT policy
            // variables such as `${!iot:Connection.Thing.ThingName}`).
            let value = if let Some(literal) = name.strip_prefix('!') {
                format!("${{{literal}}}")
            } else if name.contains('.') && !name.starts_with("AWS::") {
                get_att(name, stack)?
            } else {
                match self.reference(name, stack)? {
                    Some(Value::String(s)) => s,
                    _ => return err(format!("!Sub '{text}': {name} has no value")),
                }
            };
            out.push_str(&value);
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn get_att(text: &str, stack: &Stack) -> Result<String, TemplateError> {
    let (resource, attribute) = text
        .split_once('.')
        .ok_or_else(|| TemplateError(format!("!GetAtt {text}: expected Resource.Attribute")))?;
    stack
        .physical
        .get(resource)
        .and_then(|p| p.attributes.get(attribute))
        .cloned()
        .ok_or_else(|| TemplateError(format!("!GetAtt {text}: not available locally")))
}

/// YAML (with CloudFormation short-form tags) → JSON with long-form intrinsics.
fn to_json(yaml: &Yaml) -> Result<Value, TemplateError> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => serde_json::to_value(n).map_err(|e| TemplateError(e.to_string()))?,
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = k
                    .as_str()
                    .ok_or_else(|| TemplateError(format!("non-string key {k:?}")))?;
                out.insert(key.to_owned(), to_json(v)?);
            }
            Value::Object(out)
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let key = if name == "Ref" || name == "Condition" {
                name.to_owned()
            } else {
                format!("Fn::{name}")
            };
            let mut value = to_json(&tagged.value)?;
            if name == "GetAtt"
                && let Value::String(s) = &value
            {
                value = Value::String(s.clone());
            }
            let mut out = Map::new();
            out.insert(key, value);
            Value::Object(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(template: &Template) -> Stack {
        let mut physical = HashMap::new();
        physical.insert(
            "Queue".to_owned(),
            Physical {
                reference: "http://q".into(),
                attributes: HashMap::from([(
                    "Arn".to_owned(),
                    "arn:aws:sqs:us-east-1:1:q".to_owned(),
                )]),
            },
        );
        Stack {
            name: "iotdp-local".into(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            parameters: template.parameter_values(&HashMap::new()).unwrap(),
            physical,
        }
    }

    const T: &str = r#"
Parameters:
  Size: {Type: Number, Default: 5}
  Email: {Type: String, Default: ""}
Conditions:
  HasEmail: !Not [!Equals [!Ref Email, ""]]
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Thing:
    Type: Custom::Thing
    Condition: HasEmail
    Properties:
      Name: !Sub "${AWS::StackName}-x-${Queue.Arn}"
      Url: !Ref Queue
      Arn: !GetAtt Queue.Arn
      Size: !Ref Size
      Maybe: !If [HasEmail, yes, !Ref AWS::NoValue]
      Underscored: !Join ["_", !Split ["-", !Sub "${AWS::StackName}_lake"]]
"#;

    #[test]
    fn intrinsics_resolve_against_the_stack() {
        let template = Template::parse(T).unwrap();
        let stack = stack(&template);
        let thing = template.resource("Thing").unwrap();
        assert!(!template.is_created(thing, &stack).unwrap());
        let props = template.properties(thing, &stack).unwrap();
        assert_eq!(props["Name"], "iotdp-local-x-arn:aws:sqs:us-east-1:1:q");
        assert_eq!(props["Url"], "http://q");
        assert_eq!(props["Arn"], "arn:aws:sqs:us-east-1:1:q");
        assert_eq!(props["Size"], "5");
        assert!(props.get("Maybe").is_none(), "AWS::NoValue removes the key");
        assert_eq!(props["Underscored"], "iotdp_local_lake");
    }

    #[test]
    fn overrides_and_unknown_intrinsics_are_checked() {
        let template = Template::parse(T).unwrap();
        let overrides = HashMap::from([("Nope".to_owned(), "1".to_owned())]);
        assert!(
            template
                .parameter_values(&overrides)
                .unwrap_err()
                .0
                .contains("Nope")
        );
        let mut stack = stack(&template);
        stack
            .parameters
            .insert("Email".into(), "ops@example.com".into());
        assert!(
            template
                .is_created(template.resource("Thing").unwrap(), &stack)
                .unwrap()
        );
        let odd = Template::parse(
            "Resources:\n  X:\n    Type: A\n    Properties:\n      V: !Select [0, [a]]\n",
        )
        .unwrap();
        let e = odd
            .properties(odd.resource("X").unwrap(), &stack)
            .unwrap_err();
        assert!(e.0.contains("Fn::Select"), "{e}");
    }

    #[test]
    fn the_real_template_parses() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
                .unwrap();
        let template = Template::parse(&text).unwrap();
        assert!(template.resource("IngestFunction").is_some());
        assert_eq!(template.parameters["IngestBatchSize"], 1000);
    }
}
