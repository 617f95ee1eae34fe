//! `/rules`: list, put (the same validation as the CLI) and delete alert rules.

use serde_json::{Value, json};

use super::QueryApi;
use super::problem::{Problem, ProblemCode, alerting_problem};
use crate::alerting::ports::RuleStore;
use crate::alerting::rule::AlertRule;

impl<R, T, A, U> QueryApi<R, T, A, U>
where
    U: RuleStore,
{
    pub(super) async fn list_rules(&self) -> Result<Value, Problem> {
        let mut rules = self.rules.load_rules().await.map_err(alerting_problem)?;
        rules.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
        Ok(json!({ "rules": rules }))
    }

    pub(super) async fn put_rule(&self, id: &str, body: &[u8]) -> Result<Value, Problem> {
        let text = std::str::from_utf8(body)
            .map_err(|_| Problem::invalid("the rule must be UTF-8 JSON"))?;
        let rule = AlertRule::from_json(text).map_err(|e| Problem {
            // What openapi.yaml's Rule schema cannot say: a clear level against its threshold,
            // a range's ends against each other, a level against the one below it, flapping's
            // low against its high.
            status: if e.field == "clear"
                || e.field.starts_with("condition.outside")
                || e.field.starts_with("condition.inside")
                || e.field.starts_with("levels.")
                || e.field == "flapping.low"
            {
                422
            } else {
                400
            },
            code: ProblemCode::InvalidRule,
            detail: e.to_string(),
        })?;
        if rule.rule_id != id {
            return Err(Problem::unprocessable(
                ProblemCode::InvalidRule,
                format!(
                    "the body's rule_id '{}' differs from the path's '{id}'",
                    rule.rule_id
                ),
            ));
        }
        self.rules.put(&rule).await.map_err(alerting_problem)?;
        Ok(json!({ "rule": rule }))
    }

    pub(super) async fn delete_rule(&self, id: &str) -> Result<Value, Problem> {
        if self.rules.delete(id).await.map_err(alerting_problem)? {
            Ok(json!({ "deleted": id }))
        } else {
            Err(Problem::not_found(
                ProblemCode::UnknownRule,
                format!("no rule with rule_id '{id}'"),
            ))
        }
    }
}
