//! Where each deployment name comes from: its flag, then its environment variable (clap reads
//! both), then the stack's output when `--stack` (or `IOTDP_STACK`) names one. The outputs are
//! read once per run, and only when a name is not given otherwise.

use aws_config::SdkConfig;
use iotdp::adapters::cloudformation::CloudFormationStacks;
use iotdp::config::{StackLookupError, StackOutputSource, StackOutputs};
use tokio::sync::OnceCell;

/// One deployment name: how an operator passes it, and the stack output that holds it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub flag: &'static str,
    pub env: &'static str,
    pub output: &'static str,
}

impl Setting {
    const fn new(flag: &'static str, env: &'static str, output: &'static str) -> Self {
        Self { flag, env, output }
    }
}

pub const TYPES_TABLE: Setting =
    Setting::new("--types-table", "IOTDP_TYPES_TABLE", "DeviceTypesTableName");
pub const RULES_TABLE: Setting =
    Setting::new("--table", "IOTDP_RULES_TABLE", "AlertRulesTableName");
pub const ALERT_STATE_TABLE: Setting =
    Setting::new("--table", "IOTDP_ALERT_STATE_TABLE", "AlertStateTableName");
pub const REGISTRY_TABLE: Setting = Setting::new(
    "--registry-table",
    "IOTDP_REGISTRY_TABLE",
    "DeviceRegistryTableName",
);
pub const ROLLUP_STATE_TABLE: Setting = Setting::new(
    "--rollup-state-table",
    "IOTDP_ROLLUP_STATE_TABLE",
    "RollupStateTableName",
);
pub const ROLLUP_FINEST_TIER: Setting = Setting::new(
    "--rollup-finest-tier",
    "IOTDP_ROLLUP_FINEST_TIER",
    "RollupFinestTier",
);
pub const INGEST_STREAM: Setting =
    Setting::new("--stream", "IOTDP_INGEST_STREAM", "IngestStreamName");
pub const INGEST_STREAM_FAILURE_QUEUE: Setting = Setting::new(
    "--failure-queue",
    "IOTDP_INGEST_STREAM_FAILURE_QUEUE",
    "IngestStreamFailureQueueUrl",
);
pub const TELEMETRY_RULE: Setting = Setting::new(
    "--basic-ingest-rule",
    "IOTDP_BASIC_INGEST_RULE",
    "TelemetryRuleName",
);
pub const COMMAND_TABLE: Setting =
    Setting::new("--command-table", "IOTDP_COMMAND_TABLE", "CommandTableName");
/// The account's IoT Data Plane endpoint (`aws iot describe-endpoint --endpoint-type
/// iot:Data-ATS`, as a URL); without it the SDK's regional default. `make local`'s stack has it.
pub const IOT_DATA_ENDPOINT: Setting = Setting::new(
    "--iot-data-endpoint",
    "IOTDP_IOT_DATA_ENDPOINT",
    "IotDataEndpoint",
);
pub const DEVICE_POLICY: Setting =
    Setting::new("--policy", "IOTDP_DEVICE_POLICY", "DevicePolicyName");
pub const STORE: Setting =
    Setting::new("--store", "IOTDP_TIME_SERIES_STORE", "TimeSeriesStoreInUse");
pub const LAKE_BUCKET: Setting =
    Setting::new("--lake-bucket", "IOTDP_LAKE_BUCKET", "LakeBucketName");
pub const TIMESTREAM_DATABASE: Setting = Setting::new(
    "--timestream-database",
    "IOTDP_TIMESTREAM_DATABASE",
    "TimestreamDatabaseName",
);
pub const TIMESTREAM_TABLE: Setting = Setting::new(
    "--timestream-table",
    "IOTDP_TIMESTREAM_TABLE",
    "TimestreamTableName",
);
pub const INFLUXDB_URL: Setting =
    Setting::new("--influxdb-url", "IOTDP_INFLUXDB_URL", "InfluxDbUrl");
pub const INFLUXDB_DATABASE: Setting = Setting::new(
    "--influxdb-database",
    "IOTDP_INFLUXDB_DATABASE",
    "InfluxDbDatabaseName",
);
pub const INFLUXDB_TOKEN_SECRET: Setting = Setting::new(
    "--influxdb-token-secret-arn",
    "IOTDP_INFLUXDB_TOKEN_SECRET_ARN",
    "InfluxDbTokenSecretArn",
);

/// A name the command needs that no flag, variable or stack output supplied.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    #[error(transparent)]
    Stack(#[from] StackLookupError),
    #[error(
        "stack '{stack}' has no output {} (needed for {}): pass {} or set {}, or deploy a stack that has it",
        .setting.output, .setting.flag, .setting.flag, .setting.env
    )]
    NoOutput { stack: String, setting: Setting },
    #[error(
        "{} (or {}) is required, or --stack NAME (or IOTDP_STACK) to read it from the stack output {}",
        .setting.flag, .setting.env, .setting.output
    )]
    NotGiven { setting: Setting },
}

/// The deployment a command works on: the SDK configuration (region and credentials from the
/// usual AWS configuration) and, lazily, the named stack's outputs.
pub struct Deployment {
    stack: Option<String>,
    sdk: SdkConfig,
    outputs: OnceCell<StackOutputs>,
}

impl Deployment {
    pub async fn load(stack: Option<String>) -> Self {
        Self {
            stack,
            sdk: iotdp::wiring::load_sdk_config().await,
            outputs: OnceCell::new(),
        }
    }

    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    /// The stack's outputs, read on first use; `None` without `--stack`.
    async fn stack_outputs(&self) -> Result<Option<(&str, &StackOutputs)>, StackLookupError> {
        let Some(stack) = self.stack.as_deref() else {
            return Ok(None);
        };
        let outputs = self
            .outputs
            .get_or_try_init(|| async {
                CloudFormationStacks::new(aws_sdk_cloudformation::Client::new(&self.sdk))
                    .outputs(stack)
                    .await
            })
            .await?;
        Ok(Some((stack, outputs)))
    }

    /// A name the command cannot run without: the given value, else the stack's output, else
    /// an error that says every way to supply it.
    pub async fn require(
        &self,
        given: Option<String>,
        setting: &Setting,
    ) -> Result<String, DeploymentError> {
        if let Some(value) = self.optional(given, setting).await? {
            return Ok(value);
        }
        let setting = *setting;
        Err(match self.stack.clone() {
            Some(stack) => DeploymentError::NoOutput { stack, setting },
            None => DeploymentError::NotGiven { setting },
        })
    }

    /// A name the command can do without (an output the stack has only in some
    /// configurations, like the InfluxDB token's secret).
    pub async fn optional(
        &self,
        given: Option<String>,
        setting: &Setting,
    ) -> Result<Option<String>, DeploymentError> {
        if given.is_some() {
            return Ok(given);
        }
        Ok(self
            .stack_outputs()
            .await?
            .and_then(|(_, outputs)| outputs.get(setting.output).cloned()))
    }
}
