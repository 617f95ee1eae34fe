//! AWS SDK clients, built once per Lambda instance.
//!
//! Every client honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` (aws-config reads
//! them), which is how the same binaries run against moto or LocalStack.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_timestreamwrite::config::retry::RetryConfig;

use std::sync::Arc;

use crate::adapters::dynamodb::alerts::{DynamoDbAlertStates, DynamoDbRules};
use crate::adapters::dynamodb::commands::DynamoDbCommands;
use crate::adapters::dynamodb::registry::DynamoDbRegistry;
use crate::adapters::dynamodb::rollup_state::DynamoDbRollupState;
use crate::adapters::dynamodb::types::DynamoDbDeviceTypes;
use crate::adapters::influxdb::{InfluxDbSettings, InfluxDbStore};
use crate::adapters::iot_shadow::IotShadowService;
use crate::adapters::lake::LakeStore;
use crate::adapters::s3_quarantine::S3Quarantine;
use crate::adapters::sns_notifier::SnsNotifier;
use crate::adapters::timestream::TimestreamStore;
use crate::adapters::timestream::rollups::{RollupTables, TimestreamRollups};
use crate::alerting::evaluator::{AlertEvaluator, AlertSettings};
use crate::commands::service::Commands;
use crate::config::{
    AlertingConfig, IngestConfig, RollupConfig, RollupJobConfig, SilenceWatchConfig, StoreConfig,
};
use crate::devices::cache::CachedRegistry;
use crate::devices::silence::SilenceWatch;
use crate::ingest::service::{IngestService, IngestSettings};
use crate::rollup::job::{RollupJob, RollupSettings};
use crate::rollup::late::LateMarkingStore;
use crate::rollup::reads::RollupReader;

/// The store dispatch lives beside the adapters; the composition root only picks the variant.
pub use crate::stores::{SelectedReader, SelectedRollupStore, SelectedStore};

/// The service-specific override variable for Timestream writes.
pub const TIMESTREAM_WRITE_ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL_TIMESTREAM_WRITE";

pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointMode {
    /// Real AWS: Timestream requires endpoint discovery (DescribeEndpoints) before any call.
    Discovery,
    /// An endpoint was set explicitly (moto, LocalStack): use it as given. Discovery would
    /// answer with real AWS hostnames and send local traffic there.
    Override,
}

/// Which mode applies, given the SDK config and an environment lookup.
pub fn timestream_endpoint_mode(
    sdk: &SdkConfig,
    env: impl Fn(&str) -> Option<String>,
) -> EndpointMode {
    let service_override = env(TIMESTREAM_WRITE_ENDPOINT_ENV).is_some_and(|v| !v.is_empty());
    if sdk.endpoint_url().is_some() || service_override {
        EndpointMode::Override
    } else {
        EndpointMode::Discovery
    }
}

/// A Timestream write client. SDK-level retries are off: the store writer retries with its
/// own full-jitter backoff against the invocation deadline, and two retry layers would
/// multiply attempts.
pub async fn timestream_write_client(
    sdk: &SdkConfig,
) -> Result<aws_sdk_timestreamwrite::Client, aws_sdk_timestreamwrite::error::BoxError> {
    let config = aws_sdk_timestreamwrite::config::Builder::from(sdk)
        .retry_config(RetryConfig::disabled())
        // Bodies are in memory and answers are a few bytes; the writer's own deadline bounds
        // a stuck call. The protection's per-call timers and body wrappers buy nothing here.
        .stalled_stream_protection(
            aws_sdk_timestreamwrite::config::StalledStreamProtectionConfig::disabled(),
        )
        .build();
    let client = aws_sdk_timestreamwrite::Client::from_conf(config);
    match timestream_endpoint_mode(sdk, |name| std::env::var(name).ok()) {
        EndpointMode::Override => Ok(client),
        EndpointMode::Discovery => {
            let (client, reloader) = client.with_endpoint_discovery_enabled().await?;
            // Refreshes the discovered endpoint in the background for the client's lifetime.
            tokio::spawn(reloader.reload_task());
            Ok(client)
        }
    }
}

/// An S3 client. Path-style addressing when an endpoint is overridden: local endpoints serve
/// `http://127.0.0.1:port/bucket/key`, not bucket subdomains.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let mut config = aws_sdk_s3::config::Builder::from(sdk);
    if sdk.endpoint_url().is_some() || std::env::var("AWS_ENDPOINT_URL_S3").is_ok() {
        config = config.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(config.build())
}

/// The device registry as one Lambda instance caches it, shared by admission and alerting.
pub type AwsRegistryCache = Arc<CachedRegistry<DynamoDbRegistry, Option<DynamoDbDeviceTypes>>>;

/// Alert evaluation wired to AWS: DynamoDB rules and states, SNS, and rule actions sent as
/// commands. Device types come from the readings themselves (admission puts the registry's
/// type on each).
pub type AwsAlertEvaluator =
    AlertEvaluator<DynamoDbRules, DynamoDbAlertStates, SnsNotifier, AwsCommands>;

/// Commands wired to AWS: shadows through the IoT Data Plane, the history in DynamoDB.
pub type AwsCommands = Commands<IotShadowService, DynamoDbCommands>;

/// The IoT Data Plane client, at the configured endpoint when there is one.
pub fn iot_data_client(sdk: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_iotdataplane::Client {
    let mut config = aws_sdk_iotdataplane::config::Builder::from(sdk);
    if let Some(url) = endpoint {
        config = config.endpoint_url(url);
    }
    aws_sdk_iotdataplane::Client::from_conf(config.build())
}

pub fn commands(sdk: &SdkConfig, config: &crate::config::CommandsConfig) -> AwsCommands {
    Commands::new(
        IotShadowService::new(iot_data_client(sdk, config.iot_data_endpoint.as_deref())),
        DynamoDbCommands::new(aws_sdk_dynamodb::Client::new(sdk), &config.table),
    )
}

/// The store `config` names, its clients built (the InfluxDB token read from Secrets Manager).
pub async fn time_series_store(
    sdk: &SdkConfig,
    config: &StoreConfig,
) -> Result<SelectedStore, aws_sdk_timestreamwrite::error::BoxError> {
    Ok(match config {
        StoreConfig::Timestream { database, table } => SelectedStore::Timestream(
            TimestreamStore::new(timestream_write_client(sdk).await?, database, table),
        ),
        StoreConfig::InfluxDb {
            url,
            database,
            token_secret_arn,
        } => SelectedStore::InfluxDb(
            influxdb_store(sdk, url, database, token_secret_arn.as_deref()).await?,
        ),
        StoreConfig::Lake { bucket } => SelectedStore::Lake(lake_store(sdk, bucket)),
    })
}

async fn influxdb_store(
    sdk: &SdkConfig,
    url: &str,
    database: &str,
    token_secret_arn: Option<&str>,
) -> Result<InfluxDbStore, aws_sdk_timestreamwrite::error::BoxError> {
    let token = match token_secret_arn {
        Some(arn) => Some(read_token_secret(sdk, arn).await?),
        None => None,
    };
    Ok(InfluxDbStore::new(&InfluxDbSettings {
        url: url.to_owned(),
        database: database.to_owned(),
        token,
    })?)
}

/// The lake on `bucket`. S3's path-style addressing when an endpoint is overridden (moto).
fn lake_store(sdk: &SdkConfig, bucket: &str) -> LakeStore {
    LakeStore::new(s3_client(sdk), bucket)
}

/// The reader for the store `config` names. Timestream's query endpoint, like its write
/// endpoint, is found by endpoint discovery against real AWS.
pub async fn time_series_reader(
    sdk: &SdkConfig,
    config: &StoreConfig,
) -> Result<SelectedReader, aws_sdk_timestreamwrite::error::BoxError> {
    Ok(match config {
        StoreConfig::Timestream { database, table } => {
            SelectedReader::Timestream(crate::adapters::timestream::query::TimestreamReader::new(
                timestream_query_client(sdk).await?,
                database,
                table,
            ))
        }
        StoreConfig::InfluxDb {
            url,
            database,
            token_secret_arn,
        } => SelectedReader::InfluxDb(
            influxdb_store(sdk, url, database, token_secret_arn.as_deref()).await?,
        ),
        StoreConfig::Lake { bucket } => SelectedReader::Lake(lake_store(sdk, bucket)),
    })
}

/// A Timestream query client (endpoint discovery against real AWS, as for writes).
pub async fn timestream_query_client(
    sdk: &SdkConfig,
) -> Result<aws_sdk_timestreamquery::Client, aws_sdk_timestreamwrite::error::BoxError> {
    let client = aws_sdk_timestreamquery::Client::new(sdk);
    Ok(
        match timestream_endpoint_mode(sdk, |name| std::env::var(name).ok()) {
            EndpointMode::Override => client,
            EndpointMode::Discovery => {
                let (client, reloader) = client.with_endpoint_discovery_enabled().await?;
                tokio::spawn(reloader.reload_task());
                client
            }
        },
    )
}

pub async fn rollup_store(
    sdk: &SdkConfig,
    store: &StoreConfig,
    rollup: &RollupConfig,
) -> Result<SelectedRollupStore, aws_sdk_timestreamwrite::error::BoxError> {
    Ok(match store {
        StoreConfig::Timestream { database, table } => {
            SelectedRollupStore::Timestream(TimestreamRollups::new(
                timestream_query_client(sdk).await?,
                timestream_write_client(sdk).await?,
                RollupTables {
                    database: database.clone(),
                    raw: table.clone(),
                    tiers: rollup.tables.clone(),
                },
            ))
        }
        StoreConfig::InfluxDb {
            url,
            database,
            token_secret_arn,
        } => SelectedRollupStore::InfluxDb(
            influxdb_store(sdk, url, database, token_secret_arn.as_deref()).await?,
        ),
        StoreConfig::Lake { bucket } => SelectedRollupStore::Lake(lake_store(sdk, bucket)),
    })
}

pub fn rollup_state(sdk: &SdkConfig, rollup: &RollupConfig) -> DynamoDbRollupState {
    DynamoDbRollupState::new(aws_sdk_dynamodb::Client::new(sdk), &rollup.state_table)
}

/// The rollup job wired to AWS: the selected store and the DynamoDB state table.
pub type AwsRollupJob = RollupJob<SelectedRollupStore, DynamoDbRollupState>;

pub async fn rollup_job(
    sdk: &SdkConfig,
    config: &RollupJobConfig,
) -> Result<AwsRollupJob, aws_sdk_timestreamwrite::error::BoxError> {
    Ok(RollupJob::new(
        rollup_store(sdk, &config.store, &config.rollup).await?,
        rollup_state(sdk, &config.rollup),
        RollupSettings {
            grace: config.rollup.grace,
            max_windows_per_run: config.max_windows_per_run,
            finest: config.rollup.finest,
            ..RollupSettings::default()
        },
    ))
}

/// The InfluxDB API token from Secrets Manager: the secret string itself, or its JSON
/// `token` field. Read once per instance, at start-up.
pub async fn read_token_secret(
    sdk: &SdkConfig,
    arn: &str,
) -> Result<String, aws_sdk_timestreamwrite::error::BoxError> {
    let secret = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            format!(
                "reading the InfluxDB token from secret {arn}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
        })?;
    let text = secret
        .secret_string()
        .ok_or_else(|| format!("secret {arn} has no string value (store the token as text)"))?;
    token_from_secret(text).ok_or_else(|| {
        format!("secret {arn} holds neither a token nor JSON with a non-empty 'token' field").into()
    })
}

/// A plain token, or the `token` field of a JSON secret.
pub fn token_from_secret(text: &str) -> Option<String> {
    let text = text.trim();
    if text.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        return value["token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
    }
    (!text.is_empty()).then(|| text.to_owned())
}

/// The ingest use case wired to AWS: the selected time-series store, S3 quarantine, the
/// registry and alerting when configured.
pub type AwsIngestService = IngestService<
    AwsIngestStore,
    S3Quarantine,
    Option<AwsRegistryCache>,
    Option<AwsAlertEvaluator>,
>;

/// The selected store, marking late windows for the rollup job when rollups are on.
pub type AwsIngestStore = LateMarkingStore<SelectedStore, Option<DynamoDbRollupState>>;

/// The silence watch wired to AWS: the DynamoDB registry, alert states and SNS.
pub type AwsSilenceWatch = SilenceWatch<DynamoDbRegistry, DynamoDbAlertStates, SnsNotifier>;

pub async fn ingest_service(
    config: &IngestConfig,
) -> Result<AwsIngestService, aws_sdk_timestreamwrite::error::BoxError> {
    ingest_service_with(&load_sdk_config().await, config).await
}

/// The same, with an SDK configuration given (the local platform points it at its endpoint).
pub async fn ingest_service_with(
    sdk: &SdkConfig,
    config: &IngestConfig,
) -> Result<AwsIngestService, aws_sdk_timestreamwrite::error::BoxError> {
    let sdk = sdk.clone();
    let store = LateMarkingStore::new(
        time_series_store(&sdk, &config.store).await?,
        config.rollup.as_ref().map(|r| rollup_state(&sdk, r)),
        config
            .rollup
            .as_ref()
            .map_or(RollupSettings::default().grace, |r| r.grace),
    );
    let quarantine = S3Quarantine::new(s3_client(&sdk), &config.quarantine_bucket);
    let registry = config.registry.as_ref().map(|registry| {
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        Arc::new(
            CachedRegistry::new(
                DynamoDbRegistry::new(client.clone(), &registry.table)
                    .with_heard_log(&registry.heard_log_table),
                registry.cache,
            )
            .with_types(
                registry
                    .device_types_table
                    .as_ref()
                    .map(|table| DynamoDbDeviceTypes::new(client, table)),
            ),
        )
    });
    let alerts = config
        .alerting
        .as_ref()
        .map(|alerting| alert_evaluator(&sdk, alerting));
    Ok(IngestService::new(
        store,
        quarantine,
        registry,
        alerts,
        IngestSettings {
            window: config.time_window(),
            write: config.write,
            unknown_devices: config.unknown_devices,
        },
    ))
}

/// The query API wired to AWS as its HTTP front ends serve it: the DynamoDB registry, the
/// selected store's reader, alerts and commands, read by callers of the configured sign-in.
pub type AwsQueryApi = crate::api::http_adapter::HttpApi<
    crate::api::QueryApi<
        DynamoDbRegistry,
        AwsReader,
        DynamoDbAlertStates,
        DynamoDbRules,
        IotShadowService,
        DynamoDbCommands,
    >,
>;

/// The selected store's reader, answering long ranges from rollups when they are on.
pub type AwsReader =
    RollupReader<SelectedReader, Option<SelectedRollupStore>, Option<DynamoDbRollupState>>;

pub async fn reader(
    sdk: &SdkConfig,
    store: &StoreConfig,
    rollup: Option<&RollupConfig>,
) -> Result<AwsReader, aws_sdk_timestreamwrite::error::BoxError> {
    let rollups = match rollup {
        Some(r) => Some(rollup_store(sdk, store, r).await?),
        None => None,
    };
    let finest = rollup.map_or(crate::rollup::finest::FinestTier::Auto, |r| r.finest);
    Ok(RollupReader::new(
        time_series_reader(sdk, store).await?,
        rollups,
        rollup.map(|r| rollup_state(sdk, r)),
    )
    .with_finest(finest))
}

pub async fn query_api(
    sdk: &SdkConfig,
    config: &crate::config::ApiConfig,
) -> Result<AwsQueryApi, aws_sdk_timestreamwrite::error::BoxError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let registry = device_registry(sdk, &config.registry_table);
    let registry = match &config.device_types_table {
        Some(table) => registry.with_device_types(table),
        None => registry,
    };
    let api = crate::api::QueryApi::new(
        registry,
        reader(sdk, &config.store, config.rollup.as_ref()).await?,
        DynamoDbAlertStates::new(dynamodb.clone(), &config.state_table),
        DynamoDbRules::new(dynamodb, &config.rules_table),
    )
    .with_commands(commands(sdk, &config.commands));
    Ok(crate::api::http_adapter::HttpApi {
        api,
        auth: config.auth,
    })
}

/// The device registry alone (the `lifecycle` function records presence in it).
pub fn device_registry(sdk: &SdkConfig, table: &str) -> DynamoDbRegistry {
    DynamoDbRegistry::new(aws_sdk_dynamodb::Client::new(sdk), table)
}

pub fn silence_watch(sdk: &SdkConfig, config: &SilenceWatchConfig) -> AwsSilenceWatch {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    SilenceWatch::new(
        DynamoDbRegistry::new(dynamodb.clone(), &config.registry_table)
            .with_heard_log(&config.heard_log_table),
        DynamoDbAlertStates::new(dynamodb, &config.state_table),
        SnsNotifier::new(aws_sdk_sns::Client::new(sdk), &config.topic_arn),
        config.severity,
    )
}

pub fn alert_evaluator(sdk: &SdkConfig, config: &AlertingConfig) -> AwsAlertEvaluator {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    AlertEvaluator::new(
        DynamoDbRules::new(dynamodb.clone(), &config.rules_table),
        DynamoDbAlertStates::new(dynamodb, &config.state_table),
        SnsNotifier::new(aws_sdk_sns::Client::new(sdk), &config.topic_arn),
        commands(sdk, &config.commands),
        AlertSettings {
            rules_ttl: config.rules_ttl,
            ..AlertSettings::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdk(endpoint: Option<&str>) -> SdkConfig {
        let mut builder = SdkConfig::builder().behavior_version(BehaviorVersion::latest());
        if let Some(url) = endpoint {
            builder = builder.endpoint_url(url);
        }
        builder.build()
    }

    #[test]
    fn the_token_secret_is_a_string_or_json_with_a_token() {
        assert_eq!(token_from_secret(" abc== \n"), Some("abc==".into()));
        assert_eq!(
            token_from_secret(r#"{"token":"t0k","username":"admin"}"#),
            Some("t0k".into())
        );
        assert_eq!(
            token_from_secret(r#"{"username":"admin","password":"x"}"#),
            None
        );
        assert_eq!(token_from_secret(""), None);
    }

    #[test]
    fn real_aws_uses_endpoint_discovery() {
        assert_eq!(
            timestream_endpoint_mode(&sdk(None), |_| None),
            EndpointMode::Discovery
        );
    }

    #[test]
    fn a_global_endpoint_override_skips_discovery() {
        assert_eq!(
            timestream_endpoint_mode(&sdk(Some("http://127.0.0.1:5000")), |_| None),
            EndpointMode::Override
        );
    }

    #[test]
    fn a_service_specific_override_skips_discovery() {
        let env = |name: &str| {
            (name == TIMESTREAM_WRITE_ENDPOINT_ENV).then(|| "http://127.0.0.1:5000".to_owned())
        };
        assert_eq!(
            timestream_endpoint_mode(&sdk(None), env),
            EndpointMode::Override
        );
    }

    #[tokio::test]
    async fn an_overridden_client_sends_straight_to_the_endpoint() {
        // A one-shot HTTP server that records the first request it gets.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let n = socket.read(&mut buf).await.unwrap();
            let body = b"{\"RecordsIngested\":{\"Total\":0}}";
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            socket.write_all(head.as_bytes()).await.unwrap();
            socket.write_all(body).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).to_string()
        });
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(
                aws_sdk_timestreamwrite::config::SharedCredentialsProvider::new(
                    aws_sdk_timestreamwrite::config::Credentials::for_tests(),
                ),
            )
            .build();
        let client = timestream_write_client(&sdk).await.unwrap();
        client
            .write_records()
            .database_name("db")
            .table_name("t")
            .send()
            .await
            .unwrap();
        let request = server.await.unwrap().to_ascii_lowercase();
        assert!(
            request.contains("x-amz-target: timestream_20181101.writerecords"),
            "{request}"
        );
        assert!(!request.contains("describeendpoints"));
    }
}
