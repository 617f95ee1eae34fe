//! `/rules`: list, put (the same validation as the CLI) and delete alert rules.

use serde_json::{Value, json};

use super::QueryApi;
use super::access::Access;
use super::problem::{Problem, ProblemCode, alerting_problem};
use crate::alerting::ports::{RuleSource, RuleStore};
use crate::alerting::rule::AlertRule;
use crate::devices::ports::DeviceRegistry;

impl<R, T, A, U, S, K> QueryApi<R, T, A, U, S, K>
where
    R: DeviceRegistry,
    U: RuleStore,
{
    pub(super) async fn list_rules(&self, access: &Access) -> Result<Value, Problem> {
        let mut rules = self.rules.load_rules().await.map_err(alerting_problem)?;
        let scoped = self.scoped_devices(access).await?;
        rules.retain(|r| sees_rule(access, scoped.as_ref(), r));
        rules.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
        Ok(json!({ "rules": rules }))
    }

    pub(super) async fn put_rule(
        &self,
        id: &str,
        body: &[u8],
        access: &Access,
    ) -> Result<Value, Problem> {
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
        let scoped = self.scoped_devices(access).await?;
        if !sees_rule(access, scoped.as_ref(), &rule) {
            return Err(Problem {
                status: 403,
                code: ProblemCode::OutsideScope,
                detail: format!(
                    "rule '{id}' would watch devices outside your scope ({}): scope it to a place or device of yours",
                    access.describe()
                ),
            });
        }
        // Another tenant's rule of that id is not replaced, nor revealed.
        if let Some(existing) = self.existing_rule(id).await?
            && !sees_rule(access, scoped.as_ref(), &existing)
        {
            return Err(unknown_rule(id));
        }
        self.rules.put(&rule).await.map_err(alerting_problem)?;
        Ok(json!({ "rule": rule }))
    }

    pub(super) async fn delete_rule(&self, id: &str, access: &Access) -> Result<Value, Problem> {
        let scoped = self.scoped_devices(access).await?;
        match self.existing_rule(id).await? {
            Some(rule) if sees_rule(access, scoped.as_ref(), &rule) => {}
            _ => return Err(unknown_rule(id)),
        }
        if self.rules.delete(id).await.map_err(alerting_problem)? {
            Ok(json!({ "deleted": id }))
        } else {
            Err(unknown_rule(id))
        }
    }
}

impl<R, T, A, U: RuleSource, S, K> QueryApi<R, T, A, U, S, K> {
    /// The rule `id`, if the fleet has one (whoever's it is: callers check scope).
    pub(super) async fn existing_rule(&self, id: &str) -> Result<Option<AlertRule>, Problem> {
        Ok(self
            .rules
            .load_rules()
            .await
            .map_err(alerting_problem)?
            .into_iter()
            .find(|r| r.rule_id == id))
    }
}

fn unknown_rule(id: &str) -> Problem {
    Problem::not_found(
        ProblemCode::UnknownRule,
        format!("no rule with rule_id '{id}'"),
    )
}

/// Whether the caller may see `rule`: `scoped` holds where their devices are (`None`: the
/// fleet), so a rule on one device is theirs when that device is.
pub(super) fn sees_rule(
    access: &Access,
    scoped: Option<&std::collections::HashMap<String, crate::domain::LocationPath>>,
    rule: &AlertRule,
) -> bool {
    let device_path = match &rule.scope {
        crate::alerting::rule::Scope::DeviceId(id) => scoped.and_then(|s| s.get(id)),
        _ => None,
    };
    access.sees_rule(&rule.scope, device_path)
}
