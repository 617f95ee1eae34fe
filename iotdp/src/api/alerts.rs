//! `/alerts`: alert states filtered by state, severity and device, paginated; acknowledge.

use serde_json::{Value, json};

use super::QueryApi;
use super::params::{Params, rfc3339};
use super::problem::{Problem, ProblemCode, alerting_problem};
use crate::alerting::admin::{AckError, acknowledge_alert};
use crate::alerting::event::AlarmState;
use crate::alerting::ports::{AlertKey, AlertStateListing, AlertStateStore, RuleSource};
use crate::alerting::state_machine::AlertState;

impl<R, T, A, U> QueryApi<R, T, A, U>
where
    A: AlertStateStore + AlertStateListing,
    U: RuleSource,
{
    pub(super) async fn list_alerts(&self, params: &Params) -> Result<Value, Problem> {
        let limit = params.limit()?;
        let state = params
            .value("state")?
            .map(|s| {
                // Exactly as openapi.yaml's enum spells them (the CLI forgives case).
                AlarmState::parse(s)
                    .filter(|state| state.as_str() == s)
                    .ok_or_else(|| {
                        Problem::invalid(format!(
                            "state '{s}' must be OK, PENDING, ALARM or ACKNOWLEDGED"
                        ))
                    })
            })
            .transpose()?;
        let severity = params.value("severity")?;
        if let Some(s) = severity
            && !["info", "warning", "critical"].contains(&s)
        {
            return Err(Problem::invalid(format!(
                "severity '{s}' must be info, warning or critical"
            )));
        }
        let device = params.get("device");
        let cursor = params.get("cursor").unwrap_or_default();
        let severities: std::collections::HashMap<String, &'static str> = self
            .rules
            .load_rules()
            .await
            .map_err(alerting_problem)?
            .into_iter()
            .map(|r| (r.rule_id, r.severity.as_str()))
            .collect();
        let all = self.states.list(state).await.map_err(alerting_problem)?;
        let mut page: Vec<Value> = all
            .iter()
            .filter(|(k, _)| format!("{}/{}", k.device_id, k.rule_id).as_str() > cursor)
            .filter(|(k, _)| device.is_none_or(|d| k.device_id == d))
            .filter(|(k, _)| {
                severity.is_none_or(|s| severities.get(&k.rule_id).copied() == Some(s))
            })
            .take(limit + 1)
            .map(|(k, s)| alert_json(k, s, severities.get(&k.rule_id).copied()))
            .collect();
        let next = (page.len() > limit).then(|| {
            page.truncate(limit);
            page.last().map(|a| {
                format!(
                    "{}/{}",
                    a["device_id"].as_str().unwrap_or_default(),
                    a["rule_id"].as_str().unwrap_or_default()
                )
            })
        });
        Ok(json!({ "alerts": page, "next": next.flatten() }))
    }

    pub(super) async fn acknowledge(&self, device: &str, rule: &str) -> Result<Value, Problem> {
        let key = AlertKey {
            device_id: device.to_owned(),
            rule_id: rule.to_owned(),
        };
        match acknowledge_alert(&self.states, &key).await {
            Ok(()) => Ok(json!({ "device_id": device, "rule_id": rule, "state": "ACKNOWLEDGED" })),
            Err(e @ AckError::NotFound(_)) => {
                Err(Problem::not_found(ProblemCode::UnknownAlert, e.to_string()))
            }
            Err(e @ AckError::NotInAlarm(..)) => Err(Problem {
                status: 409,
                code: ProblemCode::NotInAlarm,
                detail: e.to_string(),
            }),
            Err(e) => Err(alerting_problem(e)),
        }
    }
}

/// An alert state as the API (and the CLI's `--output json`) represents it.
pub fn alert_json(key: &AlertKey, state: &AlertState, severity: Option<&str>) -> Value {
    json!({
        "device_id": key.device_id,
        "rule_id": key.rule_id,
        "severity": severity,
        "state": state.state.as_str(),
        "since": state.alarm_since_ms.or(state.last_change_ms).map(rfc3339),
        "last_value": state.last_measured,
    })
}
