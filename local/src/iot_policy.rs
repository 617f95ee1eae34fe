//! IoT Core's policy evaluation for the actions devices use (`iot:Connect`, `iot:Publish`,
//! `iot:Subscribe`, `iot:Receive`), with the thing-name policy variables and the
//! `iot:Connection.Thing.IsAttached` condition. Used to prove what the device policy in
//! `template.yaml` allows, without an AWS account.

use serde_json::Value;

const THING_NAME_VARIABLE: &str = "${iot:Connection.Thing.ThingName}";

/// Who is asking: the client's thing, when its certificate is attached to a thing whose name
/// is the client id (the only way `iot:Connection.Thing.*` variables resolve).
#[derive(Debug, Clone, Copy)]
pub struct Connection<'a> {
    pub thing_name: Option<&'a str>,
}

/// Whether `policy` allows `action` on `resource` for `connection`: an explicit deny wins,
/// otherwise any allow, otherwise denied.
pub fn is_allowed(
    policy: &Value,
    connection: Connection<'_>,
    action: &str,
    resource: &str,
) -> bool {
    let mut allowed = false;
    for statement in one_or_many(&policy["Statement"]) {
        if !one_or_many(&statement["Action"])
            .filter_map(Value::as_str)
            .any(|a| wildcard_match(a, action))
        {
            continue;
        }
        if !conditions_hold(&statement["Condition"], connection) {
            continue;
        }
        let matches = one_or_many(&statement["Resource"])
            .filter_map(Value::as_str)
            .filter_map(|pattern| substitute(pattern, connection))
            .any(|pattern| wildcard_match(&pattern, resource));
        if matches {
            match statement["Effect"].as_str() {
                Some("Deny") => return false,
                Some("Allow") => allowed = true,
                _ => {}
            }
        }
    }
    allowed
}

fn one_or_many(value: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match value {
        Value::Array(items) => Box::new(items.iter()),
        Value::Null => Box::new(std::iter::empty()),
        single => Box::new(std::iter::once(single)),
    }
}

/// Policy variables resolved; `None` when one cannot be (the statement then does not apply).
fn substitute(pattern: &str, connection: Connection<'_>) -> Option<String> {
    if !pattern.contains("${") {
        return Some(pattern.to_owned());
    }
    let resolved = pattern.replace(THING_NAME_VARIABLE, connection.thing_name?);
    (!resolved.contains("${")).then_some(resolved)
}

/// Only the condition the device policy uses is understood; any other makes the statement
/// not apply (never more permissive than IoT Core).
fn conditions_hold(condition: &Value, connection: Connection<'_>) -> bool {
    let Some(operators) = condition.as_object() else {
        return condition.is_null();
    };
    operators.iter().all(|(operator, checks)| {
        operator == "Bool"
            && checks.as_object().is_some_and(|checks| {
                checks.iter().all(|(key, expected)| {
                    key == "iot:Connection.Thing.IsAttached"
                        && expected.as_str()
                            == Some(if connection.thing_name.is_some() {
                                "true"
                            } else {
                                "false"
                            })
                })
            })
    })
}

/// IAM-style matching: `*` any run of characters (including `/`), `?` one character.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_iam() {
        assert!(wildcard_match("topic/dt/a/*", "topic/dt/a/telemetry"));
        assert!(wildcard_match("topic/dt/a/*", "topic/dt/a/x/y"));
        assert!(!wildcard_match("topic/dt/a/*", "topic/dt/ab/telemetry"));
        assert!(wildcard_match("iot:*", "iot:Publish"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
    }

    #[test]
    fn deny_wins_and_unresolved_variables_never_match() {
        let policy = serde_json::json!({"Statement": [
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": "t/${iot:Connection.Thing.ThingName}/*"},
            {"Effect": "Deny", "Action": ["iot:Publish"], "Resource": "t/a/secret"},
        ]});
        let a = Connection {
            thing_name: Some("a"),
        };
        assert!(is_allowed(&policy, a, "iot:Publish", "t/a/x"));
        assert!(!is_allowed(&policy, a, "iot:Publish", "t/a/secret"));
        assert!(!is_allowed(&policy, a, "iot:Publish", "t/b/x"));
        assert!(!is_allowed(
            &policy,
            Connection { thing_name: None },
            "iot:Publish",
            "t//x"
        ));
    }
}
