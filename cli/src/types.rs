//! `iotdp types …`: device types and their derived metrics, stored in the types table that
//! ingest reads; `put --dry-run --device ID` shows what a definition would add to a device's
//! recent readings, from the deployed store, and stores nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use iotdp::adapters::dynamodb::types::DynamoDbDeviceTypes;
use iotdp::devices::ports::{DeviceTypes, RegistryError};
use iotdp::devices::types::{DefinitionError, Derivation, TypeDefinition};
use iotdp::domain::{Metric, Reading};
use iotdp::query::model::{QueryError, SeriesQuery, TimeRange};
use iotdp::query::ports::TimeSeriesReader;
use serde_json::{Value, json};

use crate::deployment::{Deployment, DeploymentError, TYPES_TABLE};
use crate::files::{FileError, read_text};
use crate::output::{Column, OutputError, OutputFormat, print_list, print_result};
use crate::readings::{FlagError, ReadingsError, StoreArgs, instant};

#[derive(Args)]
pub struct TypesArgs {
    /// DynamoDB device types table [stack output: DeviceTypesTableName]
    #[arg(long, env = "IOTDP_TYPES_TABLE")]
    types_table: Option<String>,
    #[command(subcommand)]
    action: TypesAction,
}

#[derive(Subcommand)]
enum TypesAction {
    /// Check a type file (its metrics and derived metrics) and store it as the type's next
    /// version; ingest computes its derived metrics within a minute
    Put {
        file: PathBuf,
        /// Compute the derived metrics on one device's recent readings and print them; store
        /// nothing
        #[arg(long, requires = "device")]
        dry_run: bool,
        /// The device whose readings the dry run uses
        #[arg(long)]
        device: Option<String>,
        /// How far back the dry run reads: RFC 3339 or relative (-1h, -7d)
        #[arg(long, default_value = "-1h", allow_hyphen_values = true)]
        from: String,
        #[command(flatten)]
        store: Box<StoreArgs>,
    },
    /// List the device types
    List,
    /// One device type's definition
    Show { device_type: String },
}

#[derive(Debug, thiserror::Error)]
pub enum TypesError {
    #[error(transparent)]
    Unreadable(#[from] FileError),
    #[error("{}: not a device type definition: {source}", path.display())]
    NotADefinition {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: {source} ({})", path.display(), source.code)]
    Invalid {
        path: PathBuf,
        source: DefinitionError,
    },
    #[error("no device type '{0}': put it with iotdp types put FILE")]
    NoSuchType(String),
    #[error(
        "device type '{0}' was changed by another put while this one was stored: show it and put again"
    )]
    Conflict(String),
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    #[error(transparent)]
    Store(#[from] RegistryError),
    #[error(transparent)]
    Readings(#[from] ReadingsError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error(transparent)]
    Output(#[from] OutputError),
}

pub async fn run(
    args: TypesArgs,
    stack: Option<String>,
    output: OutputFormat,
) -> Result<(), TypesError> {
    match args.action {
        TypesAction::Put {
            file,
            dry_run,
            device,
            from,
            store,
        } => {
            // Checked before AWS is touched: a bad file fails fast and offline.
            let definition = read_definition(&file)?;
            let deployment = Deployment::load(stack).await;
            match (dry_run, device) {
                (true, Some(device)) => {
                    dry_run_on(&deployment, &definition, &device, &from, *store, output).await
                }
                _ => {
                    put(
                        &open(&deployment, args.types_table).await?,
                        definition,
                        output,
                    )
                    .await
                }
            }
        }
        TypesAction::List => {
            let deployment = Deployment::load(stack).await;
            list(&open(&deployment, args.types_table).await?, output).await
        }
        TypesAction::Show { device_type } => {
            let deployment = Deployment::load(stack).await;
            let types = open(&deployment, args.types_table).await?;
            let found = types.get_types(&[device_type.as_str()]).await?;
            let definition = found
                .into_iter()
                .next()
                .ok_or(TypesError::NoSuchType(device_type))?;
            let pretty = serde_json::to_string_pretty(&definition).unwrap_or_default();
            Ok(print_result(output, &json!(definition), pretty)?)
        }
    }
}

/// A type file, parsed and checked as ingest will compile it.
pub fn read_definition(file: &Path) -> Result<TypeDefinition, TypesError> {
    let definition: TypeDefinition =
        serde_json::from_str(&read_text(file)?).map_err(|source| TypesError::NotADefinition {
            path: file.to_owned(),
            source,
        })?;
    definition.compile().map_err(|source| TypesError::Invalid {
        path: file.to_owned(),
        source,
    })?;
    Ok(definition)
}

async fn open(
    deployment: &Deployment,
    table: Option<String>,
) -> Result<DynamoDbDeviceTypes, DeploymentError> {
    let table = deployment.require(table, &TYPES_TABLE).await?;
    Ok(DynamoDbDeviceTypes::new(
        aws_sdk_dynamodb::Client::new(deployment.sdk()),
        table,
    ))
}

async fn put(
    types: &DynamoDbDeviceTypes,
    definition: TypeDefinition,
    output: OutputFormat,
) -> Result<(), TypesError> {
    let version = types
        .put_type(&definition)
        .await?
        .ok_or_else(|| TypesError::Conflict(definition.device_type.clone()))?;
    let stored = TypeDefinition {
        version,
        ..definition
    };
    let sentence = format!(
        "stored device type {} version {version} ({} derived metrics)",
        stored.device_type,
        stored.derived.len()
    );
    Ok(print_result(output, &json!({ "type": stored }), sentence)?)
}

async fn list(types: &DynamoDbDeviceTypes, output: OutputFormat) -> Result<(), TypesError> {
    let items: Vec<Value> = types
        .list_types()
        .await?
        .iter()
        .map(|t| {
            json!({
                "device_type": t.device_type,
                "version": t.version,
                "metrics": t.metrics.join(","),
                "derived": t.derived.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(","),
            })
        })
        .collect();
    Ok(print_list(
        output,
        &items,
        &[
            Column::new("DEVICE_TYPE", "device_type", 20),
            Column::new("VERSION", "version", 8),
            Column::new("METRICS", "metrics", 32),
            Column::new("DERIVED", "derived", 0),
        ],
    )?)
}

/// The device's readings since `from` as the store holds them (one per instant, the type's
/// metrics), each with the definition's derived metrics added.
async fn dry_run_on(
    deployment: &Deployment,
    definition: &TypeDefinition,
    device: &str,
    from: &str,
    store: StoreArgs,
    output: OutputFormat,
) -> Result<(), TypesError> {
    let derived = definition.compile().map_err(|source| TypesError::Invalid {
        path: PathBuf::from(&definition.device_type),
        source,
    })?;
    let now = chrono::Utc::now().timestamp_millis();
    let range = TimeRange {
        from_ms: instant("--from", from, now)?,
        to_ms: now + 60_000,
    };
    let config = store.config(deployment).await?;
    let reader = iotdp::wiring::reader(deployment.sdk(), &config, None)
        .await
        .map_err(ReadingsError::Store)?;
    let mut by_time: BTreeMap<i64, Vec<Metric>> = BTreeMap::new();
    for metric in &definition.metrics {
        let query = SeriesQuery {
            device_id: device.to_owned(),
            metric: metric.clone(),
            range,
            bins: None,
            limit: None,
        };
        for point in reader.series(&query).await? {
            by_time.entry(point.time_ms).or_default().push(Metric {
                name: metric.clone(),
                value: point.value,
            });
        }
    }
    let mut done = Derivation::default();
    let items: Vec<Value> = by_time
        .into_iter()
        .map(|(time_ms, metrics)| {
            let mut reading = Reading {
                device_id: device.to_owned(),
                time_ms,
                seq: None,
                metrics,
                version: 0,
                dimensions: None,
            };
            derived.apply(&mut reading, &mut done);
            let values: serde_json::Map<String, Value> = reading
                .metrics
                .iter()
                .map(|m| {
                    let point = iotdp::query::model::Point {
                        time_ms,
                        value: m.value.clone(),
                    };
                    (
                        m.name.clone(),
                        iotdp::api::point_json(&point)["value"].clone(),
                    )
                })
                .collect();
            json!({
                "time": iotdp::api::params::rfc3339(time_ms),
                "metrics": Value::Object(values),
            })
        })
        .collect();
    print_list(
        output,
        &items,
        &[
            Column::new("TIME", "time", 25),
            Column::new("METRICS", "metrics", 0),
        ],
    )?;
    eprintln!(
        "dry run of {} version {} on {device}: {} reading(s), {} derived value(s), {} left out (an input missing, not a number, or no finite value); nothing stored",
        definition.device_type,
        definition.version + 1,
        items.len(),
        done.computed,
        done.skipped
    );
    Ok(())
}
