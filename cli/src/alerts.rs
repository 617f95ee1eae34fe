//! `iotdp alerts …`: the state of each (device, rule) pair, and the operator's actions on it,
//! through the same use case the API calls.

use std::collections::HashMap;

use clap::{Args, Subcommand};
use iotdp::adapters::dynamodb::alerts::{DynamoDbAlertStates, DynamoDbRules};
use iotdp::alerting::admin::{AlertActionError, act_on_alert};
use iotdp::alerting::event::AlarmState;
use iotdp::alerting::ports::{AlertKey, AlertPortError, RuleSource};
use iotdp::alerting::state_machine::OperatorAction;
use iotdp::api::params::{parse_duration, parse_instant};

use crate::deployment::{ALERT_STATE_TABLE, Deployment, DeploymentError, RULES_TABLE};
use crate::output::{Column, OutputError, OutputFormat, print_list, print_result};

/// The longest snooze; longer than that, disabling the pair says what is meant.
const SNOOZE_MAX_MS: i64 = 30 * 86_400_000;

#[derive(Args)]
pub struct AlertsArgs {
    /// DynamoDB alert state table [stack output: AlertStateTableName]
    #[arg(long, env = "IOTDP_ALERT_STATE_TABLE")]
    table: Option<String>,
    /// The rules table, for each alert's severity [stack output: AlertRulesTableName]
    #[arg(long, env = "IOTDP_RULES_TABLE")]
    rules_table: Option<String>,
    #[command(subcommand)]
    action: AlertsAction,
}

#[derive(Subcommand)]
enum AlertsAction {
    /// List alert states
    List {
        /// Only this state: OK, PENDING, ALARM, ACKNOWLEDGED, LATCHED or DISABLED
        #[arg(long, value_parser = parse_state)]
        state: Option<AlarmState>,
    },
    /// Acknowledge an alarm: no re-notification until it clears (a LATCHED alarm: back to OK)
    Ack(Pair),
    /// Hold back a pair's notifications until a time, or for a while (an alarm still raised
    /// then is notified again)
    Snooze {
        device_id: String,
        rule_id: String,
        /// When the snooze ends: RFC 3339 or epoch ms
        #[arg(long, conflicts_with = "for_", required_unless_present = "for_")]
        until: Option<String>,
        /// How long it lasts: 90s, 30m, 2h, 1d (at most 30 days)
        #[arg(long = "for")]
        for_: Option<String>,
        #[command(flatten)]
        version: IfVersion,
    },
    /// Stop evaluating a rule for one device (state DISABLED) until enabled
    Disable(Pair),
    /// Evaluate a disabled pair again, from OK
    Enable(Pair),
    /// Back to OK, forgetting the alarm (a condition that still holds raises it again)
    Reset(Pair),
}

/// The (device, rule) pair an action applies to, and the version it was decided on.
#[derive(Args)]
struct Pair {
    device_id: String,
    rule_id: String,
    #[command(flatten)]
    version: IfVersion,
}

#[derive(Args)]
struct IfVersion {
    /// Act only if the alert state is still at this version (the one `alerts list -o json` showed)
    #[arg(long = "if-version")]
    version: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("'{0}' is not a state: use OK, PENDING, ALARM, ACKNOWLEDGED, LATCHED or DISABLED")]
    NotAState(String),
    #[error("--until '{0}' must be RFC 3339 or epoch ms")]
    Until(String),
    #[error("--for '{0}' must be a duration such as 90s, 30m, 2h or 1d")]
    For(String),
    #[error("give --until or --for")]
    NoSnoozeEnd,
    #[error("a snooze must end in the future and within 30 days (disable the pair for longer)")]
    SnoozeOutOfRange,
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    #[error(transparent)]
    Store(#[from] AlertPortError),
    #[error(transparent)]
    Action(#[from] AlertActionError),
    #[error(transparent)]
    Output(#[from] OutputError),
}

fn parse_state(text: &str) -> Result<AlarmState, AlertsError> {
    AlarmState::parse(text).ok_or_else(|| AlertsError::NotAState(text.to_owned()))
}

/// The alert states, and the rules for their severity when the rules table is known.
struct AlertTables {
    states: DynamoDbAlertStates,
    rules: Option<DynamoDbRules>,
}

pub async fn run(
    args: AlertsArgs,
    deployment: &Deployment,
    output: OutputFormat,
) -> Result<(), AlertsError> {
    let table = deployment.require(args.table, &ALERT_STATE_TABLE).await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(deployment.sdk());
    let rules = deployment
        .optional(args.rules_table, &RULES_TABLE)
        .await?
        .map(|t| DynamoDbRules::new(dynamodb.clone(), t));
    let tables = AlertTables {
        states: DynamoDbAlertStates::new(dynamodb, table),
        rules,
    };
    match args.action {
        AlertsAction::List { state } => tables.list(state, output).await,
        AlertsAction::Ack(pair) => tables.act(pair, OperatorAction::Acknowledge, output).await,
        AlertsAction::Snooze {
            device_id,
            rule_id,
            until,
            for_,
            version,
        } => {
            let until_ms = snooze_end(until, for_, chrono::Utc::now().timestamp_millis())?;
            let pair = Pair {
                device_id,
                rule_id,
                version,
            };
            let action = OperatorAction::Snooze { until_ms };
            tables.act(pair, action, output).await
        }
        AlertsAction::Disable(pair) => tables.act(pair, OperatorAction::Disable, output).await,
        AlertsAction::Enable(pair) => tables.act(pair, OperatorAction::Enable, output).await,
        AlertsAction::Reset(pair) => tables.act(pair, OperatorAction::Reset, output).await,
    }
}

/// When a snooze given by `--until` or `--for` ends.
fn snooze_end(
    until: Option<String>,
    for_: Option<String>,
    now_ms: i64,
) -> Result<i64, AlertsError> {
    let until_ms = match (until, for_) {
        (Some(text), _) => parse_instant(&text, now_ms).ok_or(AlertsError::Until(text))?,
        (None, Some(text)) => {
            let length = parse_duration(&text).ok_or(AlertsError::For(text))?;
            now_ms + length.as_millis() as i64
        }
        (None, None) => return Err(AlertsError::NoSnoozeEnd),
    };
    if until_ms <= now_ms || until_ms - now_ms > SNOOZE_MAX_MS {
        return Err(AlertsError::SnoozeOutOfRange);
    }
    Ok(until_ms)
}

impl AlertTables {
    async fn list(
        &self,
        state: Option<AlarmState>,
        output: OutputFormat,
    ) -> Result<(), AlertsError> {
        let severities: HashMap<String, &'static str> = match &self.rules {
            Some(rules) => rules
                .load_rules()
                .await?
                .into_iter()
                .map(|r| (r.rule_id, r.severity.as_str()))
                .collect(),
            None => HashMap::default(),
        };
        let all = self.states.list(state).await?;
        let items: Vec<serde_json::Value> = all
            .iter()
            .map(|(key, s)| iotdp::api::alert_json(key, s, severities.get(&key.rule_id).copied()))
            .collect();
        Ok(print_list(
            output,
            &items,
            &[
                Column::new("DEVICE_ID", "device_id", 32),
                Column::new("RULE_ID", "rule_id", 24),
                Column::new("STATE", "state", 13),
                Column::new("SEVERITY", "severity", 9),
                Column::new("LAST_VALUE", "last_value", 14),
                Column::new("SINCE", "since", 0),
            ],
        )?)
    }

    /// One operator action. Snoozing or disabling a pair never evaluated is allowed for a
    /// rule that exists.
    async fn act(
        &self,
        pair: Pair,
        action: OperatorAction,
        output: OutputFormat,
    ) -> Result<(), AlertsError> {
        let key = AlertKey {
            device_id: pair.device_id,
            rule_id: pair.rule_id,
        };
        let create_missing = matches!(
            action,
            OperatorAction::Snooze { .. } | OperatorAction::Disable
        ) && self.rule_exists(&key.rule_id).await?;
        let state = act_on_alert(
            &self.states,
            &key,
            action,
            pair.version.version,
            create_missing,
        )
        .await?;
        let sentence = format!(
            "{} {} / {}: {} (version {})",
            action.name(),
            key.device_id,
            key.rule_id,
            state.state.as_str(),
            state.version
        );
        Ok(print_result(
            output,
            &iotdp::api::alert_json(&key, &state, None),
            sentence,
        )?)
    }

    /// Whether the rule is known: the no-data rule always is; others only with the rules table.
    async fn rule_exists(&self, rule_id: &str) -> Result<bool, AlertsError> {
        if rule_id == iotdp::alerting::rule::NO_DATA_RULE_ID {
            return Ok(true);
        }
        Ok(match &self.rules {
            Some(rules) => rules
                .load_rules()
                .await?
                .iter()
                .any(|r| r.rule_id == rule_id),
            None => false,
        })
    }
}
