//! `iotdp readings <device> <metric>`: one device's metric over a time range, raw or in bins,
//! read through the same read port as the query API, from whichever store is deployed.

use clap::Args;
use iotdp::api::params::{INSTANT_FORMS, parse_bin, parse_instant};
use iotdp::config::{RollupConfig, StoreConfig};
use iotdp::query::model::{Aggregate, QueryError, SeriesQuery, TimeRange};
use iotdp::query::ports::TimeSeriesReader;
use iotdp::rollup::finest::FinestTier;
use serde_json::Value;

use crate::deployment::{
    Deployment, DeploymentError, INFLUXDB_DATABASE, INFLUXDB_TOKEN_SECRET, INFLUXDB_URL,
    LAKE_BUCKET, ROLLUP_FINEST_TIER, ROLLUP_STATE_TABLE, STORE, TIMESTREAM_DATABASE,
    TIMESTREAM_TABLE,
};
use crate::output::{Column, OutputError, OutputFormat, print_list};

/// A readings or rollups flag whose value the store cannot be asked with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("{flag} '{text}' must be {}", INSTANT_FORMS)]
    Instant { flag: &'static str, text: String },
    /// The API's own wording of what a bin may be.
    #[error("{0}")]
    Bin(String),
    #[error("'{0}' is not an aggregate: use avg, min, max, sum, count, first or last")]
    Aggregate(String),
    #[error("--rollup-finest-tier '{0}': use auto, 1m or 1h")]
    FinestTier(String),
    #[error("--store '{0}': use lake, timestream or influxdb")]
    Store(String),
}

/// Why `readings` (or the store flags `rollups` shares) could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ReadingsError {
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    /// The store could not be reached or configured.
    #[error(transparent)]
    Store(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Which store is deployed and where: flags, variables, or the stack's outputs.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// The deployed store: lake, timestream or influxdb [stack output: TimeSeriesStoreInUse;
    /// default: lake, the template's default]
    #[arg(long, env = "IOTDP_TIME_SERIES_STORE")]
    store: Option<String>,
    /// The lake's S3 bucket [stack output: LakeBucketName]
    #[arg(long, env = "IOTDP_LAKE_BUCKET")]
    lake_bucket: Option<String>,
    /// [stack output: TimestreamDatabaseName]
    #[arg(long, env = "IOTDP_TIMESTREAM_DATABASE")]
    timestream_database: Option<String>,
    /// [stack output: TimestreamTableName; default: telemetry]
    #[arg(long, env = "IOTDP_TIMESTREAM_TABLE")]
    timestream_table: Option<String>,
    /// [stack output: InfluxDbUrl]
    #[arg(long, env = "IOTDP_INFLUXDB_URL")]
    influxdb_url: Option<String>,
    /// [stack output: InfluxDbDatabaseName; default: iotdp]
    #[arg(long, env = "IOTDP_INFLUXDB_DATABASE")]
    influxdb_database: Option<String>,
    /// Secrets Manager secret with the InfluxDB token, never the token itself [stack output:
    /// InfluxDbTokenSecretArn]
    #[arg(long, env = "IOTDP_INFLUXDB_TOKEN_SECRET_ARN")]
    influxdb_token_secret_arn: Option<String>,
    /// The finest rollup tier the job keeps: auto (the one its state records), 1m or 1h
    /// [stack output: RollupFinestTier; default: auto]
    #[arg(long, env = "IOTDP_ROLLUP_FINEST_TIER")]
    rollup_finest_tier: Option<String>,
}

impl StoreArgs {
    /// The same flags, naming `store` instead of the deployed one (`lake import` reads one
    /// store and writes the lake).
    pub fn naming(&self, store: &str) -> Self {
        Self {
            store: Some(store.to_owned()),
            ..self.clone()
        }
    }

    /// The finest rollup tier the deployed job keeps.
    pub async fn rollup_finest(
        &self,
        deployment: &Deployment,
    ) -> Result<FinestTier, ReadingsError> {
        let named = deployment
            .optional(self.rollup_finest_tier.clone(), &ROLLUP_FINEST_TIER)
            .await?;
        let named = named.as_deref().unwrap_or("auto");
        FinestTier::parse(named).ok_or_else(|| FlagError::FinestTier(named.to_owned()).into())
    }

    pub async fn config(self, deployment: &Deployment) -> Result<StoreConfig, ReadingsError> {
        let store = deployment.optional(self.store, &STORE).await?;
        Ok(match store.as_deref().unwrap_or("lake") {
            "lake" => StoreConfig::Lake {
                bucket: deployment.require(self.lake_bucket, &LAKE_BUCKET).await?,
            },
            "timestream" => StoreConfig::Timestream {
                database: deployment
                    .require(self.timestream_database, &TIMESTREAM_DATABASE)
                    .await?,
                table: deployment
                    .optional(self.timestream_table, &TIMESTREAM_TABLE)
                    .await?
                    .unwrap_or_else(|| "telemetry".to_owned()),
            },
            "influxdb" => StoreConfig::InfluxDb {
                url: deployment.require(self.influxdb_url, &INFLUXDB_URL).await?,
                database: deployment
                    .optional(self.influxdb_database, &INFLUXDB_DATABASE)
                    .await?
                    .unwrap_or_else(|| "iotdp".to_owned()),
                token_secret_arn: deployment
                    .optional(self.influxdb_token_secret_arn, &INFLUXDB_TOKEN_SECRET)
                    .await?,
            },
            other => return Err(FlagError::Store(other.to_owned()).into()),
        })
    }
}

/// The rollup settings the deployed functions use, around the state table.
pub fn rollup_config(state_table: String, finest: FinestTier) -> RollupConfig {
    RollupConfig {
        state_table,
        grace: std::time::Duration::from_secs(120),
        tables: [
            "telemetry_1m".into(),
            "telemetry_1h".into(),
            "telemetry_1d".into(),
        ],
        finest,
    }
}

#[derive(Args)]
pub struct ReadingsArgs {
    device_id: String,
    metric: String,
    /// Start: RFC 3339 (2026-11-24T12:00:00Z) or relative to now (-15m, -6h, -7d)
    #[arg(long, default_value = "-1h", allow_hyphen_values = true)]
    from: String,
    /// End (exclusive): RFC 3339, relative, or "now"
    #[arg(long, default_value = "now", allow_hyphen_values = true)]
    to: String,
    /// Bin size: 1s to 1d (e.g. 60s, 5m, 1h); without it, raw readings
    #[arg(long)]
    bin: Option<String>,
    /// Aggregate per bin: avg, min, max, sum, count, first, last
    #[arg(long, default_value = "avg")]
    agg: String,
    #[command(flatten)]
    store: StoreArgs,
    /// The rollup job's state table: long ranges in whole-minute bins are then read from
    /// rollups [stack output: RollupStateTableName]
    #[arg(long, env = "IOTDP_ROLLUP_STATE_TABLE")]
    rollup_state_table: Option<String>,
}

/// An instant as the query API takes it (the same parser), or an error naming the flag.
pub fn instant(flag: &'static str, text: &str, now_ms: i64) -> Result<i64, FlagError> {
    parse_instant(text, now_ms).ok_or_else(|| FlagError::Instant {
        flag,
        text: text.to_owned(),
    })
}

pub async fn run(
    args: ReadingsArgs,
    deployment: &Deployment,
    output: OutputFormat,
) -> Result<(), ReadingsError> {
    let now = chrono::Utc::now().timestamp_millis();
    let range = TimeRange {
        from_ms: instant("--from", &args.from, now)?,
        to_ms: instant("--to", &args.to, now)?,
    };
    let bins = match &args.bin {
        None => None,
        Some(bin) => Some(bins(bin, &args.agg)?),
    };
    let finest = args.store.rollup_finest(deployment).await?;
    let store = args.store.config(deployment).await?;
    let rollup = deployment
        .optional(args.rollup_state_table, &ROLLUP_STATE_TABLE)
        .await?
        .map(|table| rollup_config(table, finest));
    let query = SeriesQuery {
        device_id: args.device_id,
        metric: args.metric,
        range,
        bins,
        limit: None,
    };
    let reader = iotdp::wiring::reader(deployment.sdk(), &store, rollup.as_ref())
        .await
        .map_err(ReadingsError::Store)?;
    let answered = reader.series_answered(&query).await?;
    let points = answered.value;
    let items: Vec<Value> = points.iter().map(iotdp::api::point_json).collect();
    print_list(
        output,
        &items,
        &[
            Column::new("TIME", "time", 25),
            Column::new("VALUE", "value", 0),
        ],
    )?;
    eprintln!(
        "{} point(s) from {} ({})",
        points.len(),
        reader.raw().describe(),
        answered.sources.join(", ")
    );
    Ok(())
}

/// `--bin` and `--agg`, as the query API parses them.
fn bins(bin: &str, agg: &str) -> Result<(std::time::Duration, Aggregate), FlagError> {
    Ok((
        parse_bin(bin).map_err(|problem| FlagError::Bin(problem.detail))?,
        Aggregate::parse(agg).ok_or_else(|| FlagError::Aggregate(agg.to_owned()))?,
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn flags_take_the_apis_instants_and_name_themselves_when_wrong() {
        let now = 1_764_000_000_000;
        assert_eq!(instant("--from", "-6h", now), Ok(now - 6 * 3_600_000));
        assert_eq!(instant("--to", "now", now), Ok(now));
        let refused = instant("--from", "yesterday", now).unwrap_err().to_string();
        assert!(
            refused.starts_with("--from 'yesterday' must be RFC 3339"),
            "{refused}"
        );
        assert_eq!(parse_bin("90s").unwrap(), Duration::from_secs(90));
        assert!(parse_bin("2 minutes").is_err());
    }
}
