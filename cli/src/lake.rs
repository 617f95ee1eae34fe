//! `iotdp lake import`: history from Timestream or InfluxDB copied into the lake, hour by
//! hour. Idempotent: an hour's readings, sorted, are cut into the same objects every run, and
//! an object's key comes from what it holds, so a second run (or one resumed after a failure)
//! names no object twice; the lake's reads and compaction keep one version of each reading.

use clap::{Args, Subcommand, ValueEnum};
use iotdp::adapters::lake::LakeStore;
use iotdp::config::StoreConfig;
use iotdp::domain::LocationPath;
use iotdp::ingest::ports::{StoreError, TimeSeriesStore};
use iotdp::query::model::{QueryError, TimeRange};
use iotdp::rollup::finest::FinestTier;
use iotdp::rollup::ports::RollupStore;
use serde_json::json;

use crate::deployment::{Deployment, DeploymentError};
use crate::output::{OutputError, OutputFormat, print_result};
use crate::readings::{FlagError, ReadingsError, StoreArgs, instant, rollup_config};

const HOUR_MS: i64 = 3_600_000;

#[derive(Args)]
pub struct LakeArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    action: LakeAction,
}

#[derive(Subcommand)]
enum LakeAction {
    /// Copy readings from the store a stack used before into the lake (idempotent; run
    /// `iotdp rollups rebuild` over the same range afterwards)
    Import(ImportArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Source {
    Influxdb,
    Timestream,
}

#[derive(Args)]
struct ImportArgs {
    /// The store to copy from (its flags as for `readings`: --influxdb-url, --timestream-database...)
    #[arg(long, value_enum)]
    source: Source,
    /// Start: RFC 3339 or relative to now (-365d); widened to the hour
    #[arg(long, allow_hyphen_values = true)]
    from: String,
    /// End: RFC 3339, relative, or "now"
    #[arg(long, default_value = "now", allow_hyphen_values = true)]
    to: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("--from {from} must be before --to {to}")]
    EmptyRange { from: String, to: String },
    #[error(
        "the lake is written through --lake-bucket (or IOTDP_LAKE_BUCKET, or the stack's LakeBucketName output)"
    )]
    NoLake,
    #[error(transparent)]
    Store(#[from] ReadingsError),
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    #[error("the source store could not be reached: {0}")]
    Source(Box<dyn std::error::Error + Send + Sync>),
    #[error(
        "reading the source's hour from {hour}: {error} (run again: hours already copied are not copied twice)"
    )]
    Read { hour: String, error: QueryError },
    #[error(
        "writing the lake's hour from {hour}: {error} (run again: hours already copied are not copied twice)"
    )]
    Write { hour: String, error: StoreError },
    #[error(transparent)]
    Output(#[from] OutputError),
}

pub async fn run(
    args: LakeArgs,
    deployment: &Deployment,
    output: OutputFormat,
) -> Result<(), LakeError> {
    match args.action {
        LakeAction::Import(import) => self::import(args.store, import, deployment, output).await,
    }
}

async fn import(
    store: StoreArgs,
    args: ImportArgs,
    deployment: &Deployment,
    output: OutputFormat,
) -> Result<(), LakeError> {
    let now = chrono::Utc::now().timestamp_millis();
    let from = instant("--from", &args.from, now)?.div_euclid(HOUR_MS) * HOUR_MS;
    let to = instant("--to", &args.to, now)?;
    if from >= to {
        return Err(LakeError::EmptyRange {
            from: args.from,
            to: args.to,
        });
    }
    let source_name = match args.source {
        Source::Influxdb => "influxdb",
        Source::Timestream => "timestream",
    };
    let sdk = deployment.sdk();
    let StoreConfig::Lake { bucket } = store.naming("lake").config(deployment).await? else {
        return Err(LakeError::NoLake);
    };
    let lake = LakeStore::new(iotdp::wiring::s3_client(sdk), bucket);
    let source_config = store.naming(source_name).config(deployment).await?;
    // The rollup port's raw reads, which every store answers; no rollup state is touched.
    let source = iotdp::wiring::rollup_store(
        sdk,
        &source_config,
        &rollup_config(String::new(), FinestTier::Auto),
    )
    .await
    .map_err(LakeError::Source)?;

    let hours = ((to - from) + HOUR_MS - 1) / HOUR_MS;
    let bar = crate::progress::bar(hours as u64, "hours copied");
    let (mut readings_copied, mut objects) = (0usize, 0usize);
    for start in (from..to).step_by(HOUR_MS as usize) {
        let range = TimeRange {
            from_ms: start,
            to_ms: (start + HOUR_MS).min(to),
        };
        let hour = iotdp::api::params::rfc3339(start);
        let mut readings = source
            .raw_readings(range, &LocationPath::default())
            .await
            .map_err(|error| LakeError::Read {
                hour: hour.clone(),
                error,
            })?;
        readings.sort_by(|a, b| (&a.device_id, a.time_ms).cmp(&(&b.device_id, b.time_ms)));
        for chunk in readings.chunks(lake.max_batch_len()) {
            lake.write(chunk).await.map_err(|error| LakeError::Write {
                hour: hour.clone(),
                error,
            })?;
            objects += 1;
        }
        readings_copied += readings.len();
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(print_result(
        output,
        &json!({
            "source": source_name,
            "from": iotdp::api::params::rfc3339(from),
            "to": iotdp::api::params::rfc3339(to),
            "hours": hours,
            "readings": readings_copied,
            "objects": objects,
        }),
        format!(
            "copied {readings_copied} readings of {hours} hours from {source_name} into the lake ({objects} objects); \
             run `iotdp rollups rebuild --from {} --to {}` so long-range reads see them",
            iotdp::api::params::rfc3339(from),
            iotdp::api::params::rfc3339(to)
        ),
    )?)
}
