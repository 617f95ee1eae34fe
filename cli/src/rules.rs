//! `iotdp rules …`: alert rules stored in the rules table, from rule files or imported from
//! AWS IoT Events alarm models.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use iotdp::adapters::dynamodb::alerts::DynamoDbRules;
use iotdp::alerting::iot_events::ImportError;
use iotdp::alerting::ports::{AlertPortError, RuleSource};
use iotdp::alerting::rule::{AlertRule, RuleError};
use serde_json::json;

use crate::deployment::{Deployment, DeploymentError, RULES_TABLE};
use crate::files::{FileError, read_text};
use crate::output::{Column, OutputError, OutputFormat, print_list, print_result};

#[derive(Args)]
pub struct RulesArgs {
    /// DynamoDB rules table [stack output: AlertRulesTableName]
    #[arg(long, env = "IOTDP_RULES_TABLE")]
    table: Option<String>,
    #[command(subcommand)]
    action: RulesAction,
}

#[derive(Subcommand)]
enum RulesAction {
    /// Validate a rule file and store it (replacing the rule with the same rule_id)
    Put { file: PathBuf },
    /// List rules
    List,
    /// Delete a rule by id
    Delete { rule_id: String },
    /// Turn an AWS IoT Events alarm model (the JSON `aws iotevents describe-alarm-model`
    /// prints) into the equivalent rule and store it, reporting what has no equivalent
    ImportIotEvents {
        file: PathBuf,
        /// Print the rule and the report; store nothing
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error(transparent)]
    Unreadable(#[from] FileError),
    #[error("{}: {source}", path.display())]
    Invalid { path: PathBuf, source: RuleError },
    #[error("{}: {source}", path.display())]
    NotAnAlarmModel { path: PathBuf, source: ImportError },
    #[error("no rule with rule_id '{0}'")]
    NoSuchRule(String),
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    #[error(transparent)]
    Store(#[from] AlertPortError),
    #[error(transparent)]
    Output(#[from] OutputError),
}

pub async fn run(
    args: RulesArgs,
    stack: Option<String>,
    output: OutputFormat,
) -> Result<(), RulesError> {
    // Local input is validated before AWS is touched, so a bad file fails fast and offline.
    match args.action {
        RulesAction::Put { file } => {
            let rule = read_rule(&file)?;
            store(&open(stack, args.table).await?, rule, output).await
        }
        RulesAction::ImportIotEvents { file, dry_run } => {
            let rule = import_iot_events(&file)?;
            if dry_run {
                let pretty = serde_json::to_string_pretty(&rule).unwrap_or_default();
                return Ok(print_result(output, &json!({ "rule": rule }), pretty)?);
            }
            store(&open(stack, args.table).await?, rule, output).await
        }
        RulesAction::List => list(&open(stack, args.table).await?, output).await,
        RulesAction::Delete { rule_id } => {
            delete(&open(stack, args.table).await?, rule_id, output).await
        }
    }
}

/// A rule file, validated.
pub fn read_rule(file: &Path) -> Result<AlertRule, RulesError> {
    AlertRule::from_json(&read_text(file)?).map_err(|source| RulesError::Invalid {
        path: file.to_owned(),
        source,
    })
}

/// The rule an IoT Events alarm model maps to; the report (mapped, and what has no
/// equivalent) goes to stderr, so stdout stays the rule.
fn import_iot_events(file: &Path) -> Result<AlertRule, RulesError> {
    let imported =
        iotdp::alerting::iot_events::import_alarm_model(&read_text(file)?).map_err(|source| {
            RulesError::NotAnAlarmModel {
                path: file.to_owned(),
                source,
            }
        })?;
    for line in &imported.mapped {
        eprintln!("mapped      {line}");
    }
    for line in &imported.not_mapped {
        eprintln!("not mapped  {line}");
    }
    Ok(imported.rule)
}

async fn open(
    stack: Option<String>,
    table: Option<String>,
) -> Result<DynamoDbRules, DeploymentError> {
    let deployment = Deployment::load(stack).await;
    let table = deployment.require(table, &RULES_TABLE).await?;
    Ok(DynamoDbRules::new(
        aws_sdk_dynamodb::Client::new(deployment.sdk()),
        table,
    ))
}

async fn store(
    rules: &DynamoDbRules,
    rule: AlertRule,
    output: OutputFormat,
) -> Result<(), RulesError> {
    rules.put(&rule).await?;
    let sentence = format!("stored rule {}", rule.rule_id);
    Ok(print_result(output, &json!({ "rule": rule }), sentence)?)
}

async fn list(rules: &DynamoDbRules, output: OutputFormat) -> Result<(), RulesError> {
    let mut all = rules.load_rules().await?;
    all.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
    let items: Vec<serde_json::Value> = all.iter().map(|r| json!(r)).collect();
    Ok(print_list(
        output,
        &items,
        &[
            Column::new("RULE_ID", "rule_id", 24),
            Column::new("ENABLED", "enabled", 8),
            Column::new("SEVERITY", "severity", 9),
            Column::new("METRIC", "metric", 16),
            Column::new("NAME", "name", 0),
        ],
    )?)
}

async fn delete(
    rules: &DynamoDbRules,
    rule_id: String,
    output: OutputFormat,
) -> Result<(), RulesError> {
    if !rules.delete(&rule_id).await? {
        return Err(RulesError::NoSuchRule(rule_id));
    }
    let sentence = format!("deleted rule {rule_id}");
    Ok(print_result(
        output,
        &json!({ "deleted": rule_id }),
        sentence,
    )?)
}
