//! `iotdp rollups`: where the rollup job stands (`status`), and `rebuild`, which recomputes a
//! range of every tier from raw readings (after an import, a corrected batch, a changed tier).

use clap::{Args, Subcommand};
use iotdp::api::params::rfc3339;
use iotdp::devices::ports::RegistryError;
use iotdp::domain::{LocationPath, RecordError};
use iotdp::query::model::TimeRange;
use iotdp::rollup::job::{RollupJob, RollupSettings};
use iotdp::rollup::ports::{RollupError, RollupStateStore};
use iotdp::wiring::AwsRollupJob;
use serde_json::json;

use crate::deployment::{Deployment, DeploymentError, REGISTRY_TABLE, ROLLUP_STATE_TABLE};
use crate::output::{OutputError, OutputFormat, print_result};
use crate::readings::{FlagError, ReadingsError, StoreArgs, instant, rollup_config};

#[derive(Args)]
pub struct RollupsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The rollup job's state table [stack output: RollupStateTableName]
    #[arg(long, env = "IOTDP_ROLLUP_STATE_TABLE")]
    state_table: Option<String>,
    #[command(subcommand)]
    action: RollupsAction,
}

#[derive(Subcommand)]
enum RollupsAction {
    /// What the job has covered, how far it lags, and the late windows waiting
    Status,
    /// Recompute every tier from raw readings over a range (widened to whole days);
    /// idempotent, and safe while the scheduled job runs
    Rebuild(RebuildArgs),
}

#[derive(Args)]
struct RebuildArgs {
    /// Start: RFC 3339 or relative to now (-30d)
    #[arg(long, allow_hyphen_values = true)]
    from: String,
    /// End: RFC 3339, relative, or "now"
    #[arg(long, default_value = "now", allow_hyphen_values = true)]
    to: String,
    /// Only the site this device is placed at (its device and place rows)
    #[arg(long, conflicts_with = "within")]
    device: Option<String>,
    /// Only readings at or below this place (a site: wall-1)
    #[arg(long)]
    within: Option<String>,
    /// The device registry, to find --device's place [stack output: DeviceRegistryTableName]
    #[arg(long, env = "IOTDP_REGISTRY_TABLE")]
    registry_table: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RollupsError {
    #[error("--from {from} must be before --to {to}")]
    EmptyRange { from: String, to: String },
    #[error("--within: {0}")]
    Within(RecordError),
    #[error("device '{id}' is not in the registry {table}")]
    NotInRegistry { id: String, table: String },
    /// The store flags, shared with `readings`.
    #[error(transparent)]
    Store(#[from] ReadingsError),
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    /// The rollup tables could not be reached or configured.
    #[error(transparent)]
    RollupStore(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Rollup(#[from] RollupError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Output(#[from] OutputError),
}

pub async fn run(
    args: RollupsArgs,
    deployment: &Deployment,
    output: OutputFormat,
) -> Result<(), RollupsError> {
    let job = open_job(args.store, args.state_table, deployment).await?;
    let now = chrono::Utc::now().timestamp_millis();
    match args.action {
        RollupsAction::Status => status(&job, now, output).await,
        RollupsAction::Rebuild(rebuild_args) => {
            rebuild(&job, rebuild_args, deployment, now, output).await
        }
    }
}

async fn open_job(
    store: StoreArgs,
    state_table: Option<String>,
    deployment: &Deployment,
) -> Result<AwsRollupJob, RollupsError> {
    let finest = store.rollup_finest(deployment).await?;
    let store = store.config(deployment).await?;
    let rollup = rollup_config(
        deployment.require(state_table, &ROLLUP_STATE_TABLE).await?,
        finest,
    );
    let sdk = deployment.sdk();
    Ok(RollupJob::new(
        iotdp::wiring::rollup_store(sdk, &store, &rollup)
            .await
            .map_err(RollupsError::RollupStore)?,
        iotdp::wiring::rollup_state(sdk, &rollup),
        RollupSettings {
            grace: rollup.grace,
            finest: rollup.finest,
            ..RollupSettings::default()
        },
    ))
}

async fn status(job: &AwsRollupJob, now: i64, output: OutputFormat) -> Result<(), RollupsError> {
    let coverage = job.state().coverage().await?;
    let marks = job.state().late_marks().await?;
    let Some(c) = coverage else {
        return Ok(print_result(
            output,
            &json!({"covered": false, "late_windows": marks.len()}),
            "the rollup job has not run yet: every read comes from raw readings",
        )?);
    };
    let lag = (now - c.watermark_ms) / 1000;
    let finest = finest_named(c.finest);
    Ok(print_result(
        output,
        &json!({
            "covered": true,
            "since": rfc3339(c.since_ms),
            "watermark": rfc3339(c.watermark_ms),
            "lag_seconds": lag,
            "late_windows": marks.len(),
            "finest": finest,
            "setting": job.settings().finest.name(),
        }),
        format!(
            "rollups cover {} to {} ({lag} s behind now), finest tier {finest} ({}); {} late window(s) waiting",
            rfc3339(c.since_ms),
            rfc3339(c.watermark_ms),
            job.settings().finest.name(),
            marks.len()
        ),
    )?)
}

/// The finest tier a state records: `1m`, `1h`, or `undecided` (auto has measured nothing yet,
/// and keeps no 1-minute rows meanwhile).
fn finest_named(finest: Option<iotdp::rollup::tier::Tier>) -> &'static str {
    finest.map_or("undecided", |t| t.name())
}

async fn rebuild(
    job: &AwsRollupJob,
    args: RebuildArgs,
    deployment: &Deployment,
    now: i64,
    output: OutputFormat,
) -> Result<(), RollupsError> {
    let range = TimeRange {
        from_ms: instant("--from", &args.from, now)?,
        to_ms: instant("--to", &args.to, now)?,
    };
    if range.from_ms >= range.to_ms {
        let (from, to) = (args.from, args.to);
        return Err(RollupsError::EmptyRange { from, to });
    }
    let within = match (args.device, args.within) {
        (Some(id), _) => {
            let table = deployment
                .require(args.registry_table, &REGISTRY_TABLE)
                .await?;
            device_site(deployment, &table, &id).await?
        }
        (None, Some(path)) => LocationPath::parse(&path).map_err(RollupsError::Within)?,
        (None, None) => LocationPath::default(),
    };
    let bar = crate::progress::bar(0, "days");
    let report = job
        .rebuild(range, &within, now, |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .await?;
    bar.finish_and_clear();
    let place = if within.is_empty() {
        "the fleet".to_owned()
    } else {
        within.to_string()
    };
    Ok(print_result(
        output,
        &json!({
            "within": within.to_string(),
            "windows": report.windows,
            "raw_readings": report.raw_readings,
            "rows_written": report.rows_written,
            "watermark": rfc3339(report.watermark_ms),
            "finest": finest_named(report.finest),
        }),
        format!(
            "rebuilt {} minute window(s) of {place}: {} raw reading(s) read, {} rollup row(s) written; finest tier {}",
            report.windows,
            report.raw_readings,
            report.rows_written,
            finest_named(report.finest)
        ),
    )?)
}

/// The site a device is placed at (the place its rows and its places' rows come from).
async fn device_site(
    deployment: &Deployment,
    table: &str,
    id: &str,
) -> Result<LocationPath, RollupsError> {
    use iotdp::devices::ports::DeviceRegistry;
    let registry = iotdp::wiring::device_registry(deployment.sdk(), table);
    let record =
        registry
            .get_many(&[id])
            .await?
            .pop()
            .ok_or_else(|| RollupsError::NotInRegistry {
                id: id.to_owned(),
                table: table.to_owned(),
            })?;
    let site = record.path.segments().first().cloned().unwrap_or_default();
    Ok(LocationPath::parse(&site)?)
}
