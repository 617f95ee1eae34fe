//! Configuration, read from the environment once at start-up and validated there, so a
//! misconfigured function fails its first init with a message naming the variable, rather
//! than failing every batch later.

use std::time::Duration;

use crate::alerting::rule::Severity;
use crate::devices::admission::UnknownDevicePolicy;
use crate::devices::cache::RegistryCacheSettings;
use crate::ingest::store_writer::WritePolicy;
use crate::ingest::validation::TimeWindow;
use crate::retry::RetryPolicy;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} is not set: {purpose}")]
    Missing {
        name: &'static str,
        purpose: &'static str,
    },
    #[error("environment variable {name}='{value}' is invalid: expected {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Configuration read from environment variables. Each type writes only
/// [`from_lookup`](Self::from_lookup); [`from_env`](Self::from_env) is the same over the
/// process environment.
pub trait FromEnvironment: Sized {
    /// From any lookup (tests pass a map instead of touching the process env).
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError>;

    fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    Timestream {
        database: String,
        table: String,
    },
    /// InfluxDB's v1-compatible API (1.x, 2.x such as Timestream for InfluxDB, 3.x).
    InfluxDb {
        url: String,
        database: String,
        /// Secrets Manager secret holding the API token (a plain string, or JSON with a
        /// `token` field). Unset: no authentication (a local server).
        token_secret_arn: Option<String>,
    },
    /// Parquet objects in the stack's lake bucket (`LAKE_BUCKET`), read through hour manifests.
    Lake {
        bucket: String,
    },
}

/// Alerting is on when `ALERT_RULES_TABLE` is set; the other three are then required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertingConfig {
    pub rules_table: String,
    pub state_table: String,
    pub topic_arn: String,
    pub rules_ttl: Duration,
    /// Rule actions are commands: recorded here and sent through the shadow.
    pub commands: CommandsConfig,
}

/// Where commands are recorded and which IoT Data Plane endpoint their shadows are written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandsConfig {
    pub table: String,
    /// `IOT_DATA_ENDPOINT`: the account's `iot:Data-ATS` endpoint (`aws iot describe-endpoint`)
    /// as a URL; unset, the SDK's regional default. The local platform points it at its
    /// IoT Core stand-in.
    pub iot_data_endpoint: Option<String>,
}

impl FromEnvironment for CommandsConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        commands_config(&Env(&lookup))
    }
}

fn commands_config(env: &Env<'_>) -> Result<CommandsConfig, ConfigError> {
    Ok(CommandsConfig {
        table: env.required(
            "COMMAND_TABLE",
            "the DynamoDB table of device commands (their history and status)",
        )?,
        iot_data_endpoint: env.optional("IOT_DATA_ENDPOINT"),
    })
}

/// The device registry is on when `DEVICE_REGISTRY_TABLE` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    pub table: String,
    /// The heard log ingest appends watched devices' silence deadlines to.
    pub heard_log_table: String,
    /// The device types' definitions (derived metrics); none are computed without it.
    pub device_types_table: Option<String>,
    pub cache: RegistryCacheSettings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestConfig {
    pub store: StoreConfig,
    pub alerting: Option<AlertingConfig>,
    pub registry: Option<RegistryConfig>,
    /// `reject` by default with a registry; without one every device is unknown, so `accept`.
    pub unknown_devices: UnknownDevicePolicy,
    pub quarantine_bucket: String,
    /// The table's magnetic-store retention: readings older than this are `timestamp_too_old`.
    pub magnetic_retention_days: u32,
    pub write: WritePolicy,
    /// Late readings mark their windows for the rollup job when set.
    pub rollup: Option<RollupConfig>,
}

impl FromEnvironment for IngestConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let store = store_config(&env)?;
        let defaults = WritePolicy::default();
        let write = WritePolicy {
            concurrency: env.number("WRITE_CONCURRENCY", defaults.concurrency, 1..=64)?,
            retry: RetryPolicy {
                base_delay: Duration::from_millis(env.number(
                    "WRITE_RETRY_BASE_MS",
                    defaults.retry.base_delay.as_millis() as u64,
                    1..=10_000,
                )?),
                max_delay: Duration::from_millis(env.number(
                    "WRITE_RETRY_MAX_MS",
                    defaults.retry.max_delay.as_millis() as u64,
                    1..=60_000,
                )?),
                max_attempts: env.number(
                    "WRITE_MAX_ATTEMPTS",
                    defaults.retry.max_attempts,
                    1..=50,
                )?,
            },
            deadline_margin: defaults.deadline_margin,
        };
        let alerting = match env.optional("ALERT_RULES_TABLE") {
            None => None,
            Some(rules_table) => Some(AlertingConfig {
                rules_table,
                state_table: env.required("ALERT_STATE_TABLE", "the DynamoDB table of alert states (alerting is on because ALERT_RULES_TABLE is set)")?,
                topic_arn: env.required("ALERT_TOPIC_ARN", "the SNS topic alert notifications go to (alerting is on because ALERT_RULES_TABLE is set)")?,
                rules_ttl: Duration::from_secs(env.number("ALERT_RULES_CACHE_SECONDS", 60, 0..=3600)?),
                commands: commands_config(&env)?,
            }),
        };
        let registry = registry_config(&env)?;
        let unknown_devices = match env.optional("UNKNOWN_DEVICE_POLICY") {
            None if registry.is_some() => UnknownDevicePolicy::Reject,
            None => UnknownDevicePolicy::Accept,
            Some(text) => {
                let policy =
                    UnknownDevicePolicy::parse(&text).ok_or_else(|| ConfigError::Invalid {
                        name: "UNKNOWN_DEVICE_POLICY",
                        value: text.clone(),
                        expected: "'reject' or 'accept'",
                    })?;
                if registry.is_none() && policy == UnknownDevicePolicy::Reject {
                    return Err(ConfigError::Missing {
                        name: "DEVICE_REGISTRY_TABLE",
                        purpose: "UNKNOWN_DEVICE_POLICY=reject needs the registry that says which devices are known",
                    });
                }
                policy
            }
        };
        Ok(Self {
            store,
            alerting,
            registry,
            unknown_devices,
            quarantine_bucket: env.required(
                "QUARANTINE_BUCKET",
                "the S3 bucket that receives rejected readings",
            )?,
            magnetic_retention_days: env.number("MAGNETIC_RETENTION_DAYS", 73_000, 1..=73_000)?,
            write,
            rollup: rollup_config(&env)?,
        })
    }
}

impl IngestConfig {
    pub fn time_window(&self) -> TimeWindow {
        TimeWindow::with_retention_days(self.magnetic_retention_days)
    }
}

/// `TIME_SERIES_STORE` and the variables of the store it names.
fn store_config(env: &Env<'_>) -> Result<StoreConfig, ConfigError> {
    Ok(match env.optional("TIME_SERIES_STORE").as_deref() {
        None | Some("timestream") => StoreConfig::Timestream {
            database: env.required("TIMESTREAM_DATABASE", "the Timestream database to write to")?,
            table: env.required("TIMESTREAM_TABLE", "the Timestream table to write to")?,
        },
        Some("influxdb") => StoreConfig::InfluxDb {
            url: env.required(
                "INFLUXDB_URL",
                "the InfluxDB endpoint, e.g. https://<id>.timestream-influxdb.<region>.on.aws:8086",
            )?,
            database: env.required(
                "INFLUXDB_DATABASE",
                "the InfluxDB database (or the bucket's v1 DBRP name) to write to",
            )?,
            token_secret_arn: env.optional("INFLUXDB_TOKEN_SECRET_ARN"),
        },
        Some("lake") => StoreConfig::Lake {
            bucket: env.required(
                "LAKE_BUCKET",
                "the S3 bucket the lake's Parquet objects go to",
            )?,
        },
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: "TIME_SERIES_STORE",
                value: other.to_owned(),
                expected: "'timestream', 'influxdb' or 'lake'",
            });
        }
    })
}

/// Rollups are on when `ROLLUP_STATE_TABLE` is set: the ingest path marks late windows in
/// it, the `rollup` function keeps its watermark there, the API reads coverage from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupConfig {
    pub state_table: String,
    /// How long after its end a 1-minute window is computed.
    pub grace: Duration,
    /// Timestream: the 1m, 1h and 1d tables (InfluxDB uses measurements of the same names).
    pub tables: [String; 3],
    /// The finest tier the job keeps (`ROLLUP_FINEST_TIER`: `auto`, the default, measured
    /// from the reporting intervals and recorded in the job's state; or `1m` or `1h`); the
    /// reader reads raw below it.
    pub finest: crate::rollup::finest::FinestTier,
}

fn rollup_config(env: &Env<'_>) -> Result<Option<RollupConfig>, ConfigError> {
    let Some(state_table) = env.optional("ROLLUP_STATE_TABLE") else {
        return Ok(None);
    };
    let table = |name: &str, default: &str| env.optional(name).unwrap_or_else(|| default.into());
    Ok(Some(RollupConfig {
        state_table,
        grace: Duration::from_secs(env.number("ROLLUP_GRACE_SECONDS", 120, 0..=86_400)?),
        tables: [
            table("ROLLUP_TABLE_1M", "telemetry_1m"),
            table("ROLLUP_TABLE_1H", "telemetry_1h"),
            table("ROLLUP_TABLE_1D", "telemetry_1d"),
        ],
        finest: match env.optional("ROLLUP_FINEST_TIER").as_deref() {
            None => crate::rollup::finest::FinestTier::Auto,
            Some(named) => crate::rollup::finest::FinestTier::parse(named).ok_or_else(|| {
                ConfigError::Invalid {
                    name: "ROLLUP_FINEST_TIER",
                    value: named.to_owned(),
                    expected: "'auto', '1m' or '1h'",
                }
            })?,
        },
    }))
}

/// The `rollup` function: the store it reads and writes, and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupJobConfig {
    pub store: StoreConfig,
    pub rollup: RollupConfig,
    /// Most new 1-minute windows one run computes (a job behind catches up over several runs).
    pub max_windows_per_run: usize,
}

impl FromEnvironment for RollupJobConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        Ok(Self {
            store: store_config(&env)?,
            rollup: rollup_config(&env)?.ok_or(ConfigError::Missing {
                name: "ROLLUP_STATE_TABLE",
                purpose: "the DynamoDB table holding the rollup job's watermark and late windows",
            })?,
            max_windows_per_run: env.number("ROLLUP_MAX_WINDOWS_PER_RUN", 1440, 1..=100_000)?,
        })
    }
}

/// The `api` function: the registry and the store it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    pub registry_table: String,
    /// The device types' definitions (`/types`); the routes answer 503 without it.
    pub device_types_table: Option<String>,
    pub rules_table: String,
    pub state_table: String,
    pub store: StoreConfig,
    /// Binned reads and drill-downs answer from rollups when set.
    pub rollup: Option<RollupConfig>,
    pub commands: CommandsConfig,
    /// How callers sign in (`API_AUTH`, template.yaml's `ApiAuth`): which claims give their
    /// role and scope. Unset: `iam`, which reads no claim, so a missing setting refuses JWT
    /// callers rather than trusting them.
    pub auth: crate::api::access::ApiAuth,
    /// How the console signs users in, with `ApiAuth=cognito`.
    pub console_sign_in: Option<crate::api::console::ConsoleSignIn>,
}

impl FromEnvironment for ApiConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        Ok(Self {
            registry_table: env.required(
                "DEVICE_REGISTRY_TABLE",
                "the DynamoDB device registry the API reads and updates",
            )?,
            device_types_table: env.optional("DEVICE_TYPES_TABLE"),
            rules_table: env.required("ALERT_RULES_TABLE", "the DynamoDB table of alert rules")?,
            state_table: env.required("ALERT_STATE_TABLE", "the DynamoDB table of alert states")?,
            store: store_config(&env)?,
            rollup: rollup_config(&env)?,
            commands: commands_config(&env)?,
            auth: match env.optional("API_AUTH") {
                None => crate::api::access::ApiAuth::Iam,
                Some(text) => {
                    crate::api::access::ApiAuth::parse(&text).ok_or(ConfigError::Invalid {
                        name: "API_AUTH",
                        value: text,
                        expected: "iam, cognito or jwt, as template.yaml's ApiAuth",
                    })?
                }
            },
            console_sign_in: console_sign_in(&env)?,
        })
    }
}

/// Both of the console's sign-in variables, or neither.
fn console_sign_in(
    env: &Env<'_>,
) -> Result<Option<crate::api::console::ConsoleSignIn>, ConfigError> {
    match (
        env.optional("CONSOLE_SIGN_IN_URL"),
        env.optional("CONSOLE_CLIENT_ID"),
    ) {
        (None, None) => Ok(None),
        (Some(base_url), Some(client_id)) => {
            if !base_url.starts_with("https://") && !base_url.starts_with("http://127.0.0.1") {
                return Err(ConfigError::Invalid {
                    name: "CONSOLE_SIGN_IN_URL",
                    value: base_url,
                    expected: "the hosted UI's https:// address",
                });
            }
            Ok(Some(crate::api::console::ConsoleSignIn {
                base_url,
                client_id,
            }))
        }
        (Some(_), None) => Err(ConfigError::Missing {
            name: "CONSOLE_CLIENT_ID",
            purpose: "the user pool app client the console signs in as (CONSOLE_SIGN_IN_URL is set)",
        }),
        (None, Some(_)) => Err(ConfigError::Missing {
            name: "CONSOLE_SIGN_IN_URL",
            purpose: "the user pool's hosted UI the console signs in at (CONSOLE_CLIENT_ID is set)",
        }),
    }
}

fn registry_config(env: &Env<'_>) -> Result<Option<RegistryConfig>, ConfigError> {
    let Some(table) = env.optional("DEVICE_REGISTRY_TABLE") else {
        return Ok(None);
    };
    Ok(Some(RegistryConfig {
        table,
        heard_log_table: env.required(
            "HEARD_LOG_TABLE",
            "the DynamoDB table watched devices' silence deadlines are logged to (the registry is on)",
        )?,
        device_types_table: env.optional("DEVICE_TYPES_TABLE"),
        cache: RegistryCacheSettings {
            ttl: Duration::from_secs(env.number("REGISTRY_CACHE_SECONDS", 60, 0..=3600)?),
            seen_interval: Duration::from_secs(env.number(
                "LAST_SEEN_INTERVAL_SECONDS",
                crate::devices::cache::DEFAULT_SEEN_INTERVAL.as_secs(),
                0..=86_400,
            )?),
        },
    }))
}

/// The `lifecycle` function: presence events into the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleConfig {
    pub registry_table: String,
}

impl FromEnvironment for LifecycleConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        Ok(Self {
            registry_table: env.required(
                "DEVICE_REGISTRY_TABLE",
                "the DynamoDB device registry presence is recorded in",
            )?,
        })
    }
}

/// The `silence_watch` function: `no_data` alerts for devices quiet past their heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceWatchConfig {
    pub registry_table: String,
    pub heard_log_table: String,
    pub state_table: String,
    pub topic_arn: String,
    pub severity: Severity,
}

impl FromEnvironment for SilenceWatchConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let severity = match env.optional("NO_DATA_SEVERITY").as_deref() {
            None | Some("warning") => Severity::Warning,
            Some("info") => Severity::Info,
            Some("critical") => Severity::Critical,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "NO_DATA_SEVERITY",
                    value: other.to_owned(),
                    expected: "'info', 'warning' or 'critical'",
                });
            }
        };
        Ok(Self {
            registry_table: env.required(
                "DEVICE_REGISTRY_TABLE",
                "the DynamoDB device registry with the silence-watch index",
            )?,
            heard_log_table: env.required(
                "HEARD_LOG_TABLE",
                "the DynamoDB table ingest logs watched devices' silence deadlines to",
            )?,
            state_table: env.required(
                "ALERT_STATE_TABLE",
                "the DynamoDB table of alert states (no_data is one of them)",
            )?,
            topic_arn: env.required(
                "ALERT_TOPIC_ARN",
                "the SNS topic no_data notifications go to",
            )?,
            severity,
        })
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn optional(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn required(&self, name: &'static str, purpose: &'static str) -> Result<String, ConfigError> {
        self.optional(name)
            .ok_or(ConfigError::Missing { name, purpose })
    }

    fn number<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd,
    {
        let Some(text) = self.optional(name) else {
            return Ok(default);
        };
        text.trim()
            .parse()
            .ok()
            .filter(|v| range.contains(v))
            .ok_or(ConfigError::Invalid {
                name,
                value: text,
                expected: "a whole number in the documented range (see README, Configuration)",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const MINIMAL: &[(&str, &str)] = &[
        ("TIMESTREAM_DATABASE", "iotdp"),
        ("TIMESTREAM_TABLE", "telemetry"),
        ("QUARANTINE_BUCKET", "quarantine"),
    ];

    #[test]
    fn minimal_config_takes_the_defaults() {
        let config = IngestConfig::from_lookup(lookup(MINIMAL)).unwrap();
        assert_eq!(config.magnetic_retention_days, 73_000);
        assert_eq!(config.write, WritePolicy::default());
        assert_eq!(
            config.store,
            StoreConfig::Timestream {
                database: "iotdp".into(),
                table: "telemetry".into()
            }
        );
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = IngestConfig::from_lookup(lookup(&MINIMAL[..2])).unwrap_err();
        assert!(err.to_string().contains("QUARANTINE_BUCKET"), "{err}");
        let err = IngestConfig::from_lookup(lookup(&MINIMAL[1..])).unwrap_err();
        assert!(err.to_string().contains("TIMESTREAM_DATABASE"), "{err}");
    }

    #[test]
    fn an_invalid_number_is_named_with_its_value() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("WRITE_CONCURRENCY", "0"));
        let err = IngestConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(err.to_string().contains("WRITE_CONCURRENCY='0'"), "{err}");
    }

    #[test]
    fn alerting_is_off_unless_its_rules_table_is_named_and_then_needs_the_rest() {
        assert_eq!(
            IngestConfig::from_lookup(lookup(MINIMAL)).unwrap().alerting,
            None
        );
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("ALERT_RULES_TABLE", "rules"));
        let err = IngestConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(err.to_string().contains("ALERT_STATE_TABLE"), "{err}");
        pairs.push(("ALERT_STATE_TABLE", "states"));
        pairs.push((
            "ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:alerts",
        ));
        // Rule actions are commands, so alerting needs the command history too.
        let err = IngestConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(err.to_string().contains("COMMAND_TABLE"), "{err}");
        pairs.push(("COMMAND_TABLE", "commands"));
        let alerting = IngestConfig::from_lookup(lookup(&pairs))
            .unwrap()
            .alerting
            .unwrap();
        assert_eq!(alerting.rules_ttl, Duration::from_secs(60));
        assert_eq!(alerting.state_table, "states");
        assert_eq!(alerting.commands.table, "commands");
        assert_eq!(alerting.commands.iot_data_endpoint, None);
    }

    #[test]
    fn the_registry_turns_unknown_devices_away_by_default() {
        let config = IngestConfig::from_lookup(lookup(MINIMAL)).unwrap();
        assert_eq!(config.registry, None);
        assert_eq!(config.unknown_devices, UnknownDevicePolicy::Accept);
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("DEVICE_REGISTRY_TABLE", "devices"));
        // A watched device's silence deadline goes to the heard log between registry writes.
        let err = IngestConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(err.to_string().contains("HEARD_LOG_TABLE"), "{err}");
        pairs.push(("HEARD_LOG_TABLE", "heard"));
        let config = IngestConfig::from_lookup(lookup(&pairs)).unwrap();
        assert_eq!(config.unknown_devices, UnknownDevicePolicy::Reject);
        assert_eq!(
            config.registry.unwrap().cache,
            RegistryCacheSettings::default()
        );
        pairs.push(("UNKNOWN_DEVICE_POLICY", "accept"));
        let config = IngestConfig::from_lookup(lookup(&pairs)).unwrap();
        assert_eq!(config.unknown_devices, UnknownDevicePolicy::Accept);
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("UNKNOWN_DEVICE_POLICY", "reject"));
        let err = IngestConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(err.to_string().contains("DEVICE_REGISTRY_TABLE"), "{err}");
        pairs.pop();
        pairs.push(("UNKNOWN_DEVICE_POLICY", "maybe"));
        let err = IngestConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(
            err.to_string().contains("UNKNOWN_DEVICE_POLICY='maybe'"),
            "{err}"
        );
    }

    #[test]
    fn the_finest_rollup_tier_is_auto_unless_set_to_a_minute_or_an_hour() {
        use crate::rollup::finest::FinestTier;
        use crate::rollup::tier::Tier;
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("ROLLUP_STATE_TABLE", "rollups"));
        let finest = |pairs: &[(&'static str, &'static str)]| {
            IngestConfig::from_lookup(lookup(pairs)).map(|c| c.rollup.unwrap().finest)
        };
        assert_eq!(finest(&pairs).unwrap(), FinestTier::Auto);
        for (named, setting) in [
            ("auto", FinestTier::Auto),
            ("1m", FinestTier::Fixed(Tier::Minute)),
            ("1h", FinestTier::Fixed(Tier::Hour)),
        ] {
            pairs.push(("ROLLUP_FINEST_TIER", named));
            assert_eq!(finest(&pairs).unwrap(), setting);
            pairs.pop();
        }
        pairs.push(("ROLLUP_FINEST_TIER", "1d"));
        let err = finest(&pairs).unwrap_err();
        assert!(err.to_string().contains("ROLLUP_FINEST_TIER='1d'"), "{err}");
    }

    #[test]
    fn the_api_reads_the_sign_in_mode_iam_unless_set() {
        use crate::api::access::ApiAuth;
        let mut pairs = MINIMAL.to_vec();
        pairs.extend([
            ("DEVICE_REGISTRY_TABLE", "devices"),
            ("ALERT_RULES_TABLE", "rules"),
            ("ALERT_STATE_TABLE", "states"),
            ("COMMAND_TABLE", "commands"),
        ]);
        let auth = |pairs: &[(&'static str, &'static str)]| {
            ApiConfig::from_lookup(lookup(pairs)).map(|c| c.auth)
        };
        assert_eq!(auth(&pairs).unwrap(), ApiAuth::Iam);
        for mode in ApiAuth::ALL {
            pairs.push(("API_AUTH", mode.as_str()));
            assert_eq!(auth(&pairs).unwrap(), mode);
            pairs.pop();
        }
        pairs.push(("API_AUTH", "oidc"));
        let err = auth(&pairs).unwrap_err();
        assert!(err.to_string().contains("API_AUTH='oidc'"), "{err}");
        assert!(err.to_string().contains("ApiAuth"), "{err}");
    }

    #[test]
    fn the_silence_watch_needs_registry_states_and_topic() {
        let err =
            SilenceWatchConfig::from_lookup(lookup(&[("DEVICE_REGISTRY_TABLE", "d")])).unwrap_err();
        assert!(err.to_string().contains("HEARD_LOG_TABLE"), "{err}");
        let err = SilenceWatchConfig::from_lookup(lookup(&[
            ("DEVICE_REGISTRY_TABLE", "d"),
            ("HEARD_LOG_TABLE", "h"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("ALERT_STATE_TABLE"), "{err}");
        let config = SilenceWatchConfig::from_lookup(lookup(&[
            ("DEVICE_REGISTRY_TABLE", "d"),
            ("HEARD_LOG_TABLE", "h"),
            ("ALERT_STATE_TABLE", "s"),
            ("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t"),
            ("NO_DATA_SEVERITY", "critical"),
        ]))
        .unwrap();
        assert_eq!(config.severity, Severity::Critical);
    }

    #[test]
    fn the_influxdb_store_needs_its_url_and_database_and_takes_the_token_from_a_secret() {
        let pairs = [
            ("TIME_SERIES_STORE", "influxdb"),
            ("QUARANTINE_BUCKET", "quarantine"),
            ("INFLUXDB_URL", "https://influx.example:8086"),
        ];
        let err = IngestConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(err.to_string().contains("INFLUXDB_DATABASE"), "{err}");
        let mut pairs = pairs.to_vec();
        pairs.push(("INFLUXDB_DATABASE", "iotdp"));
        pairs.push((
            "INFLUXDB_TOKEN_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:influx",
        ));
        let config = IngestConfig::from_lookup(lookup(&pairs)).unwrap();
        assert_eq!(
            config.store,
            StoreConfig::InfluxDb {
                url: "https://influx.example:8086".into(),
                database: "iotdp".into(),
                token_secret_arn: Some(
                    "arn:aws:secretsmanager:us-east-1:123456789012:secret:influx".into()
                ),
            }
        );
    }

    #[test]
    fn an_unknown_store_is_refused() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("TIME_SERIES_STORE", "cassandra"));
        let err = IngestConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(err.to_string().contains("TIME_SERIES_STORE"), "{err}");
    }
}

/// A deployed stack's outputs by name (`AlertRulesTableName` → the table). The operator CLI
/// reads them once per run, so nobody copies names out of the console by hand.
pub type StackOutputs = std::collections::BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum StackLookupError {
    #[error(
        "stack '{0}' does not exist in this account and region: check --stack (or IOTDP_STACK) and AWS_REGION or AWS_PROFILE"
    )]
    NotFound(String),
    #[error("reading the outputs of stack '{stack}': {message}")]
    Unavailable { stack: String, message: String },
}

/// Where a stack's outputs come from (CloudFormation `DescribeStacks`).
pub trait StackOutputSource {
    fn outputs(
        &self,
        stack: &str,
    ) -> impl Future<Output = Result<StackOutputs, StackLookupError>> + Send;
}
