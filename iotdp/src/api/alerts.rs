//! `/alerts`: alert states filtered by state, severity and device, paginated; acknowledge.

use serde_json::{Value, json};

use super::QueryApi;
use super::access::Access;
use super::params::{Params, parse_instant, rfc3339};
use super::problem::{Problem, ProblemCode, alerting_problem};
use crate::alerting::admin::{AlertActionError, act_on_alert};
use crate::alerting::event::AlarmState;
use crate::alerting::ports::{AlertKey, AlertStateListing, AlertStateStore, RuleSource};
use crate::alerting::rule::{NO_DATA_RULE_ID, Scope, Severity};
use crate::alerting::state_machine::AlertState;
use crate::alerting::state_machine::OperatorAction;
use crate::devices::ports::DeviceRegistry;

impl<R, T, A, U, S, K> QueryApi<R, T, A, U, S, K>
where
    R: DeviceRegistry,
    A: AlertStateStore + AlertStateListing,
    U: RuleSource,
{
    pub(super) async fn list_alerts(
        &self,
        params: &Params,
        access: &Access,
    ) -> Result<Value, Problem> {
        let limit = params.limit()?;
        let state = params
            .value("state")?
            .map(|s| {
                // Exactly as openapi.yaml's enum spells them (the CLI forgives case).
                AlarmState::parse(s)
                    .filter(|state| state.as_str() == s)
                    .ok_or_else(|| {
                        Problem::invalid(format!(
                            "state '{s}' must be OK, PENDING, ALARM, ACKNOWLEDGED, LATCHED or DISABLED"
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
        let scoped = self.scoped_devices(access).await?;
        let all = self.states.list(state).await.map_err(alerting_problem)?;
        let mut page: Vec<Value> = all
            .iter()
            .filter(|(k, _)| format!("{}/{}", k.device_id, k.rule_id).as_str() > cursor)
            .filter(|(k, _)| device.is_none_or(|d| k.device_id == d))
            .filter(|(k, _)| scoped.as_ref().is_none_or(|s| s.contains_key(&k.device_id)))
            .filter(|(k, state)| {
                severity.is_none_or(|s| {
                    state
                        .level
                        .map(Severity::as_str)
                        .or(severities.get(&k.rule_id).copied())
                        == Some(s)
                })
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

    /// `POST /alerts/{device}/{rule}/{action}`: acknowledge, snooze, disable, enable, reset.
    /// The body (optional but for snooze) may carry `version`: act only if the state is still
    /// at that version, the one the caller read.
    pub(super) async fn act(
        &self,
        device: &str,
        rule: &str,
        action: &str,
        body: &[u8],
        now_ms: i64,
        access: &Access,
    ) -> Result<Value, Problem> {
        // A caller who sees the fleet may act on an unregistered device's alerts (the accept
        // policy); a scoped caller only on their registered devices'.
        if !access.fleet {
            self.visible(device, access).await?;
        }
        let body = ActionBody::parse(body)?;
        let action = match action {
            "ack" => OperatorAction::Acknowledge,
            "disable" => OperatorAction::Disable,
            "enable" => OperatorAction::Enable,
            "reset" => OperatorAction::Reset,
            _ => OperatorAction::Snooze {
                until_ms: body.snooze_until(now_ms)?,
            },
        };
        let key = AlertKey {
            device_id: device.to_owned(),
            rule_id: rule.to_owned(),
        };
        // Snoozing or disabling a pair never evaluated is allowed, for a real device and rule.
        let create_missing = matches!(
            action,
            OperatorAction::Snooze { .. } | OperatorAction::Disable
        );
        // One read of the rules answers both whether the rule exists and its severity.
        let found = self.existing_rule(rule).await?;
        if create_missing {
            self.registered(device).await?;
            // A scoped caller names only rules they see or fleet-wide ones (whose alerts on
            // their devices they see anyway): another tenant's rule is not found.
            let scoped = self.scoped_devices(access).await?;
            if rule != NO_DATA_RULE_ID
                && !found.as_ref().is_some_and(|r| {
                    matches!(r.scope, Scope::All | Scope::DeviceType(_))
                        || super::rules::sees_rule(access, scoped.as_ref(), r)
                })
            {
                return Err(Problem::not_found(
                    ProblemCode::UnknownRule,
                    format!("no rule '{rule}': see GET /rules"),
                ));
            }
        }
        // The rule's entry severity (`no_data` has no rule item: its severity is configured).
        let severity = found.map(|r| r.severity.as_str().to_owned());
        match act_on_alert(&self.states, &key, action, body.version, create_missing).await {
            Ok(state) => {
                tracing::info!(
                    audit = "alert_action",
                    action = action.name(),
                    device_id = device,
                    rule_id = rule,
                    state = state.state.as_str(),
                    version = state.version,
                    "operator action"
                );
                Ok(alert_json(&key, &state, severity.as_deref()))
            }
            Err(e @ AlertActionError::NotFound(_)) => {
                Err(Problem::not_found(ProblemCode::UnknownAlert, e.to_string()))
            }
            Err(e @ AlertActionError::WrongState { .. }) => Err(Problem {
                status: 409,
                code: if action == OperatorAction::Acknowledge {
                    ProblemCode::NotInAlarm
                } else {
                    ProblemCode::WrongAlertState
                },
                detail: e.to_string(),
            }),
            Err(e @ AlertActionError::VersionMismatch { .. }) => Err(Problem {
                status: 409,
                code: ProblemCode::StaleVersion,
                detail: e.to_string(),
            }),
            Err(e) => Err(alerting_problem(e)),
        }
    }
}

/// The body of an operator action: `{"version": 7}`, and for a snooze `{"until": "…"}` (an
/// instant as `from`/`to` take it) or `{"for_seconds": 3600}`.
/// A field may be left out but, when present, not be `null` (openapi.yaml's types say so).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    #[serde(default, deserialize_with = "crate::domain::whole_number::present")]
    version: Option<u64>,
    #[serde(default, deserialize_with = "crate::domain::present")]
    until: Option<String>,
    #[serde(default, deserialize_with = "crate::domain::whole_number::present")]
    for_seconds: Option<u64>,
}

/// Longest snooze: 30 days (a longer silence is a disable).
const MAX_SNOOZE_SECONDS: i64 = 30 * 86_400;

impl ActionBody {
    fn parse(body: &[u8]) -> Result<Self, Problem> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_json::from_slice(body).map_err(|e| {
            Problem::invalid(format!(
                "the body must be a JSON object with version (and for a snooze until or for_seconds): {e}"
            ))
        })
    }

    fn snooze_until(&self, now_ms: i64) -> Result<i64, Problem> {
        let until = match (&self.until, self.for_seconds) {
            (Some(text), None) => parse_instant(text, now_ms).ok_or_else(|| {
                Problem::invalid(format!(
                    "until '{text}' must be RFC 3339, epoch ms or relative to now (+2h is written 2h)"
                ))
            })?,
            (None, Some(seconds)) => {
                now_ms.saturating_add(seconds.min(u64::MAX / 2000) as i64 * 1000)
            }
            _ => {
                return Err(Problem::invalid(
                    "a snooze needs exactly one of until and for_seconds",
                ));
            }
        };
        if until <= now_ms || until - now_ms > MAX_SNOOZE_SECONDS * 1000 {
            return Err(Problem::unprocessable(
                ProblemCode::InvalidParameter,
                "a snooze must end in the future and within 30 days (disable the pair for longer)",
            ));
        }
        Ok(until)
    }
}

/// An alert state as the API (and the CLI's `--output json`) represents it.
/// `severity` is the rule's; a raised alarm of a rule with levels shows its current level.
pub fn alert_json(key: &AlertKey, state: &AlertState, severity: Option<&str>) -> Value {
    json!({
        "device_id": key.device_id,
        "rule_id": key.rule_id,
        "severity": state.level.map(Severity::as_str).or(severity),
        "state": state.state.as_str(),
        "since": state.alarm_since_ms.or(state.last_change_ms).map(rfc3339),
        "last_value": state.last_measured,
        "version": state.version,
        "snoozed_until": state.snoozed_until_ms.map(rfc3339),
        "suppressed": state.suppressed,
        "flapping": state.flapping,
    })
}
