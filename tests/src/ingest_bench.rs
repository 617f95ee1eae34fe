//! The end-to-end benchmark of the real `ingest` bootstrap: the release binary run as Lambda
//! runs it (one process, the Lambda Runtime API, SQS events of 1,000 messages of the reference
//! mix), every AWS client pointed at [`FakeAws`], configured as template.yaml configures the
//! function. It reports, per scenario, the process's CPU per reading (user + system, from the
//! OS), wall time per invocation, the first (cold) invocation, init (process start to its first
//! `/next`), peak RSS and the calls made by kind. It also checks what was written against
//! the in-memory reference of the same service: every accepted reading written exactly once
//! per delivery, every rejected one quarantined with its reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use iotdp::config::{FromEnvironment, IngestConfig};
use iotdp::devices::cache::CachedRegistry;
use iotdp::devices::record::DeviceRecord;
use iotdp::ingest::service::{IngestService, IngestSettings, Invocation};
use iotdp_memory::{MemoryQuarantine, MemoryRegistry, MemoryStore};
use iotdp_simulator::{Fleet, FleetConfig};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};

use crate::fake_aws::{FakeAws, Received, serve};

/// The store the function writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Timestream,
    InfluxDb,
    Lake,
}

#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub store: Store,
    /// The device registry (admission, `last_seen`) and alerting, as the template turns them on.
    pub registry_and_alerting: bool,
    /// Each of the fleet's device types defines 5 derived metrics ([`DERIVED`]), read from the
    /// types table (with the registry on).
    pub derived: bool,
}

/// 5 derived metrics for each of the simulated fleet's device types (docs/devices.md).
pub const DERIVED: &[&str] = &[
    r#"{"device_type":"battery-box","metrics":["voltage","current","soc","temperature_c"],"derived":[
        {"name":"power_w","expression":"voltage * current"},
        {"name":"temperature_f","expression":"temperature_c * 9 / 5 + 32"},
        {"name":"power_kw","expression":"power_w / 1000"},
        {"name":"soc_pct","expression":"soc * 100"},
        {"name":"headroom_wh","expression":"(1 - soc) * voltage * 100"}]}"#,
    r#"{"device_type":"thermostat","metrics":["temperature","setpoint"],"derived":[
        {"name":"temperature_f","expression":"temperature * 9 / 5 + 32"},
        {"name":"setpoint_f","expression":"setpoint * 9 / 5 + 32"},
        {"name":"error_c","expression":"temperature - setpoint"},
        {"name":"abs_error_c","expression":"abs(temperature - setpoint)"},
        {"name":"demand_c","expression":"max(setpoint - temperature, 0)"}]}"#,
    r#"{"device_type":"plant-sensor","metrics":["moisture","lux"],"derived":[
        {"name":"moisture_pct","expression":"moisture * 100"},
        {"name":"klux","expression":"lux / 1000"},
        {"name":"dryness","expression":"1 - moisture"},
        {"name":"ppfd","expression":"lux * 0.0185"},
        {"name":"stress","expression":"dryness * klux"}]}"#,
];

impl Scenario {
    pub fn label(&self) -> String {
        format!(
            "{}, registry and alerting {}",
            match self.store {
                Store::Timestream => "Timestream",
                Store::InfluxDb => "InfluxDB",
                Store::Lake => "the lake",
            },
            if self.registry_and_alerting && self.derived {
                "on, 5 derived metrics a type"
            } else if self.registry_and_alerting {
                "on"
            } else {
                "off"
            }
        )
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub bootstrap: PathBuf,
    /// Invocations after the first (cold) one.
    pub warm_invocations: usize,
    pub messages_per_event: usize,
    pub devices: usize,
    /// Where the demo rules are (`infra/local/rules`).
    pub rules_dir: PathBuf,
}

/// What one scenario measured.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub scenario: Scenario,
    pub readings_per_invocation: f64,
    /// The size of an event as Lambda hands it over (at most 6 MB on AWS).
    pub event_bytes: usize,
    /// CPU of the warm invocations, per reading.
    pub cpu_us_per_reading: f64,
    pub init_ms: f64,
    pub init_cpu_ms: f64,
    pub first_invocation_ms: f64,
    /// Median wall time of the warm invocations.
    pub warm_invocation_ms: f64,
    pub peak_rss_mib: f64,
    /// Calls per warm invocation, by kind.
    pub calls_per_invocation: BTreeMap<String, f64>,
    /// Calls of the first invocation, by kind.
    pub first_calls: BTreeMap<String, u64>,
}

impl Measurement {
    pub fn readings_per_cpu_second(&self) -> f64 {
        1e6 / self.cpu_us_per_reading
    }
}

/// Tables as the harness names them, with their keys as template.yaml defines them.
const REGISTRY_TABLE: &str = "registry";
const RULES_TABLE: &str = "rules";
const STATE_TABLE: &str = "states";
const COMMAND_TABLE: &str = "commands";
const HEARD_LOG_TABLE: &str = "heard";
const TYPES_TABLE: &str = "types";
const TABLE_KEYS: &[(&str, &[&str])] = &[
    (TYPES_TABLE, &["device_type"]),
    (HEARD_LOG_TABLE, &["pk", "sk"]),
    (REGISTRY_TABLE, &["device_id"]),
    (RULES_TABLE, &["rule_id"]),
    (STATE_TABLE, &["device_id", "rule_id"]),
    (COMMAND_TABLE, &["device_id", "command_id"]),
];
/// Batches arrive this far apart (the fleet's received times), the last one now.
const BATCH_SPACING_MS: i64 = 10_000;

/// The function's environment: the template's variables with its parameter defaults, pointed
/// at the fake endpoint.
fn function_environment(scenario: Scenario, endpoint: &str) -> Vec<(String, String)> {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
            .expect("template.yaml");
    let template = iotdp_local::template::Template::parse(&template).expect("template parses");
    let default = |name: &str| -> String {
        match &template.parameters[name] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    };
    let mut env: Vec<(String, String)> = vec![
        ("QUARANTINE_BUCKET".into(), "quarantine".into()),
        (
            "MAGNETIC_RETENTION_DAYS".into(),
            default("MagneticStoreRetentionDays"),
        ),
        ("WRITE_CONCURRENCY".into(), default("WriteConcurrency")),
    ];
    match scenario.store {
        Store::Timestream => env.extend([
            ("TIME_SERIES_STORE".into(), "timestream".into()),
            ("TIMESTREAM_DATABASE".into(), "iotdp".into()),
            ("TIMESTREAM_TABLE".into(), "telemetry".into()),
        ]),
        Store::InfluxDb => env.extend([
            ("TIME_SERIES_STORE".into(), "influxdb".into()),
            ("INFLUXDB_URL".into(), endpoint.to_owned()),
            ("INFLUXDB_DATABASE".into(), "iotdp".into()),
        ]),
        Store::Lake => env.extend([
            ("TIME_SERIES_STORE".into(), "lake".into()),
            (
                "LAKE_BUCKET".into(),
                crate::fake_aws::LAKE_BUCKET.to_owned(),
            ),
        ]),
    }
    if scenario.registry_and_alerting {
        env.extend([
            ("ALERT_RULES_TABLE".into(), RULES_TABLE.into()),
            ("ALERT_STATE_TABLE".into(), STATE_TABLE.into()),
            ("COMMAND_TABLE".into(), COMMAND_TABLE.into()),
            (
                "ALERT_TOPIC_ARN".into(),
                "arn:aws:sns:us-east-1:123456789012:alerts".into(),
            ),
            (
                "ALERT_RULES_CACHE_SECONDS".into(),
                default("AlertRulesCacheSeconds"),
            ),
            ("DEVICE_REGISTRY_TABLE".into(), REGISTRY_TABLE.into()),
            ("HEARD_LOG_TABLE".into(), HEARD_LOG_TABLE.into()),
            ("DEVICE_TYPES_TABLE".into(), TYPES_TABLE.into()),
            (
                "UNKNOWN_DEVICE_POLICY".into(),
                default("UnknownDevicePolicy"),
            ),
            (
                "REGISTRY_CACHE_SECONDS".into(),
                default("RegistryCacheSeconds"),
            ),
            (
                "LAST_SEEN_INTERVAL_SECONDS".into(),
                default("LastSeenIntervalSeconds"),
            ),
        ]);
    }
    env
}

/// The events: `count` batches of the simulated fleet's publishes as the topic rule queues
/// them, `BATCH_SPACING_MS` apart, the last received now.
fn events(options: &Options, count: usize, now_ms: i64) -> Vec<SqsEvent> {
    let mut fleet = Fleet::new(FleetConfig {
        devices: options.devices,
        seed: 7,
        faulty_rate: 0.3,
    });
    (0..count)
        .map(|k| {
            let received = now_ms - (count - 1 - k) as i64 * BATCH_SPACING_MS;
            let mut event = SqsEvent::default();
            for (id, body) in fleet.rule_envelopes(options.messages_per_event as i64, received) {
                let mut message = SqsMessage::default();
                message.message_id = Some(format!("{k}-{id}"));
                message.receipt_handle = Some(format!("handle-{k}-{id}"));
                message.body = Some(body);
                message.event_source = Some("aws:sqs".into());
                message.event_source_arn =
                    Some("arn:aws:sqs:us-east-1:123456789012:iotdp-ingest".into());
                message.aws_region = Some("us-east-1".into());
                message
                    .attributes
                    .insert("ApproximateReceiveCount".into(), "1".into());
                event.records.push(message);
            }
            event
        })
        .collect()
}

/// The fleet's registry rows, each last seen 0–120 s before the first batch.
fn registry_records(options: &Options, first_batch_ms: i64) -> Vec<DeviceRecord> {
    let fleet = Fleet::new(FleetConfig {
        devices: options.devices,
        seed: 7,
        faulty_rate: 0.3,
    });
    let mut rng = fastrand::Rng::with_seed(11);
    fleet
        .registry_records(first_batch_ms - 86_400_000)
        .into_iter()
        .map(|mut r| {
            r.last_seen_ms = Some(first_batch_ms - rng.i64(0..=120_000));
            r
        })
        .collect()
}

/// What the service writes and quarantines for `event`, computed in process on the in-memory
/// adapters: the benchmark's reference.
async fn reference(
    config: &IngestConfig,
    records: &[DeviceRecord],
    event: &SqsEvent,
) -> (Vec<(String, i64)>, Vec<String>) {
    let settings = IngestSettings {
        window: config.time_window(),
        write: config.write,
        unknown_devices: config.unknown_devices,
    };
    let invocation = Invocation {
        request_id: "reference".into(),
        deadline: tokio::time::Instant::now() + Duration::from_secs(60),
        started_at: chrono::Utc::now(),
    };
    let store = Arc::new(MemoryStore::new(100));
    let quarantine = Arc::new(MemoryQuarantine::default());
    // No registry is `None`, as in the deployed wiring (`DeviceLookup for Option<T>`).
    let devices = config.registry.as_ref().map(|registry| {
        CachedRegistry::new(MemoryRegistry::with(records.to_vec()), registry.cache)
    });
    let service = IngestService::new(
        store.clone(),
        quarantine.clone(),
        devices,
        iotdp::alerting::ports::NoAlerts,
        settings,
    );
    let report = iotdp::lambda::ingest::handle_sqs_event(&service, event, &invocation).await;
    assert!(
        report.failed_items.is_empty(),
        "the reference retried messages"
    );
    let mut written: Vec<(String, i64)> = store
        .written()
        .into_iter()
        .map(|r| (r.device_id, r.time_ms))
        .collect();
    written.sort();
    let mut reasons: Vec<String> = quarantine
        .objects()
        .iter()
        .flat_map(|(_, body)| {
            String::from_utf8_lossy(body)
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["reason"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    reasons.sort();
    (written, reasons)
}

/// The Lambda Runtime API, serving one event at a time when the harness hands it one.
struct RuntimeApi {
    address: String,
    events: mpsc::Sender<(String, Bytes)>,
    first_next: Arc<Mutex<Option<Instant>>>,
    responses: Mutex<mpsc::Receiver<(String, Bytes, Instant)>>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().unwrap().to_string();
        let (events_tx, events_rx) = mpsc::channel::<(String, Bytes)>(1);
        let (responses_tx, responses_rx) = mpsc::channel(16);
        let events_rx = Arc::new(Mutex::new(events_rx));
        let first_next = Arc::new(Mutex::new(None));
        let server = {
            let first_next = first_next.clone();
            serve(listener, move |request| {
                let (events_rx, responses_tx, first_next) =
                    (events_rx.clone(), responses_tx.clone(), first_next.clone());
                async move { runtime_answer(request, &events_rx, &responses_tx, &first_next).await }
            })
        };
        Self {
            address,
            events: events_tx,
            first_next,
            responses: Mutex::new(responses_rx),
            server,
        }
    }

    /// Hand the function one event; its response and when it arrived.
    async fn invoke(&self, request_id: &str, event: Bytes) -> (Bytes, Instant, Instant) {
        let sent = Instant::now();
        self.events
            .send((request_id.to_owned(), event))
            .await
            .expect("the runtime API runs");
        let (id, body, at) = tokio::time::timeout(Duration::from_secs(120), async {
            self.responses.lock().await.recv().await
        })
        .await
        .expect("the function answered within 120 s")
        .expect("the runtime API runs");
        assert_eq!(id, request_id, "a response for another invocation");
        (body, sent, at)
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn runtime_answer(
    request: Request<Incoming>,
    events: &Mutex<mpsc::Receiver<(String, Bytes)>>,
    responses: &mpsc::Sender<(String, Bytes, Instant)>,
    first_next: &Mutex<Option<Instant>>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    if path.ends_with("/runtime/invocation/next") {
        first_next.lock().await.get_or_insert_with(Instant::now);
        let Some((id, event)) = events.lock().await.recv().await else {
            return Response::new(Full::new(Bytes::new()));
        };
        let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
        return Response::builder()
            .header("lambda-runtime-aws-request-id", id)
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:iotdp-ingest",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000",
            )
            .body(Full::new(event))
            .expect("a valid response");
    }
    let body = request
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    if let Some(id) = path
        .strip_prefix("/2018-06-01/runtime/invocation/")
        .and_then(|rest| {
            rest.strip_suffix("/response")
                .or_else(|| rest.strip_suffix("/error"))
        })
    {
        let _ = responses.send((id.to_owned(), body, Instant::now())).await;
    } else {
        eprintln!("runtime API: {path}: {}", String::from_utf8_lossy(&body));
    }
    Response::builder()
        .status(202)
        .body(Full::new(Bytes::new()))
        .expect("a valid response")
}

/// User + system CPU of a process so far, from `/proc/<pid>/stat` (all its threads).
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // Fields after the command name (which may contain spaces) start at ") ".
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn check(
    what: &str,
    received: &Received,
    expected: &(Vec<(String, i64)>, Vec<String>),
) -> Result<(), String> {
    if !received.malformed.is_empty() {
        return Err(format!(
            "{what}: calls the endpoint could not serve: {:?}",
            received.malformed
        ));
    }
    let mut written = received.written.clone();
    written.sort();
    if written != expected.0 {
        let duplicates = written.windows(2).filter(|w| w[0] == w[1]).count();
        return Err(format!(
            "{what}: {} records written, the reference writes {} ({duplicates} written twice)",
            written.len(),
            expected.0.len()
        ));
    }
    let mut reasons = received.quarantined.clone();
    reasons.sort();
    if reasons != expected.1 {
        return Err(format!(
            "{what}: quarantined {} lines, the reference {} ({:?} vs {:?})",
            reasons.len(),
            expected.1.len(),
            reasons.iter().take(5).collect::<Vec<_>>(),
            expected.1.iter().take(5).collect::<Vec<_>>()
        ));
    }
    Ok(())
}

/// Run one scenario: a fresh process, one cold invocation, then the warm ones, each checked.
pub async fn run(options: &Options, scenario: Scenario) -> Result<Measurement, String> {
    let fake = FakeAws::start(TABLE_KEYS).await;
    let runtime = RuntimeApi::start().await;
    let now = chrono::Utc::now().timestamp_millis();
    let invocations = options.warm_invocations + 1;
    let first_batch = now - (invocations as i64 - 1) * BATCH_SPACING_MS;
    let records = registry_records(options, first_batch);
    let environment = function_environment(scenario, &fake.endpoint);
    let config = IngestConfig::from_lookup(|name| {
        environment
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
    .map_err(|e| e.to_string())?;

    // The registry and the rules, written through the real adapters.
    let sdk = iotdp_local::platform::local_sdk_config(&fake.endpoint).await;
    if scenario.registry_and_alerting {
        let registry = iotdp::wiring::device_registry(&sdk, REGISTRY_TABLE);
        for record in &records {
            iotdp::devices::ports::DeviceRegistry::create(&registry, record)
                .await
                .map_err(|e| e.to_string())?;
        }
        if scenario.derived {
            let types = iotdp::adapters::dynamodb::types::DynamoDbDeviceTypes::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                TYPES_TABLE,
            );
            for text in DERIVED {
                let definition: iotdp::devices::types::TypeDefinition =
                    serde_json::from_str(text).map_err(|e| e.to_string())?;
                definition.compile().map_err(|e| e.to_string())?;
                iotdp::devices::ports::DeviceTypes::put_type(&types, &definition)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        let rules = iotdp::adapters::dynamodb::alerts::DynamoDbRules::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            RULES_TABLE,
        );
        let mut files: Vec<PathBuf> = std::fs::read_dir(&options.rules_dir)
            .map_err(|e| format!("{}: {e}", options.rules_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
            let rule =
                iotdp::alerting::rule::AlertRule::from_json(&text).map_err(|e| e.to_string())?;
            iotdp::alerting::ports::RuleStore::put(&rules, &rule)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let events = events(options, invocations, now);
    let mut expected = Vec::with_capacity(events.len());
    for event in &events {
        expected.push(reference(&config, &records, event).await);
    }
    let bodies: Vec<Bytes> = events
        .iter()
        .map(|e| Bytes::from(serde_json::to_vec(e).expect("events serialise")))
        .collect();
    drop(events);
    let event_bytes = bodies.iter().map(Bytes::len).max().unwrap_or(0);
    fake.take();

    let started = Instant::now();
    let mut child = tokio::process::Command::new(&options.bootstrap)
        .envs(environment)
        .env("AWS_LAMBDA_RUNTIME_API", &runtime.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "iotdp-ingest")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/iotdp-ingest")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_SESSION_TOKEN", "bench")
        .env("AWS_ENDPOINT_URL", &fake.endpoint)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", options.bootstrap.display()))?;
    let pid = child.id().expect("the bootstrap runs");
    let init = loop {
        if let Some(at) = *runtime.first_next.lock().await {
            break at - started;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = err.read_to_string(&mut stderr).await;
            }
            return Err(format!(
                "the bootstrap exited during init ({status}): {stderr}"
            ));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    let init_cpu = process_cpu(pid);

    let mut walls = Vec::with_capacity(invocations);
    let mut calls: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_calls = BTreeMap::new();
    let mut cpu_after_first = Duration::ZERO;
    let mut readings_warm = 0usize;
    for (i, body) in bodies.into_iter().enumerate() {
        let request_id = format!("{i:08}-0000-4000-8000-000000000000");
        let (response, sent, answered) = runtime.invoke(&request_id, body).await;
        let response: serde_json::Value = serde_json::from_slice(&response)
            .map_err(|e| format!("invocation {i}: the response is not JSON: {e}"))?;
        if response["batchItemFailures"]
            .as_array()
            .is_none_or(|f| !f.is_empty())
        {
            return Err(format!("invocation {i}: {response}"));
        }
        // The last call may still be in flight on the endpoint's side: the function answered
        // after its calls returned, so everything has been received.
        let received = fake.take();
        check(&format!("invocation {i}"), &received, &expected[i])?;
        walls.push((answered - sent).as_secs_f64() * 1000.0);
        if i == 0 {
            cpu_after_first = process_cpu(pid);
            first_calls = received.calls;
        } else {
            readings_warm += expected[i].0.len() + expected[i].1.len();
            for (kind, n) in received.calls {
                *calls.entry(kind).or_insert(0) += n;
            }
        }
    }
    let cpu_warm = process_cpu(pid) - cpu_after_first;
    let rss = peak_rss_mib(pid);
    let _ = child.kill().await;

    let warm = options.warm_invocations.max(1) as f64;
    let mut warm_walls = walls[1..].to_vec();
    warm_walls.sort_by(f64::total_cmp);
    Ok(Measurement {
        scenario,
        readings_per_invocation: readings_warm as f64 / warm,
        event_bytes,
        cpu_us_per_reading: cpu_warm.as_secs_f64() * 1e6 / readings_warm.max(1) as f64,
        init_ms: init.as_secs_f64() * 1000.0,
        init_cpu_ms: init_cpu.as_secs_f64() * 1000.0,
        first_invocation_ms: walls[0],
        warm_invocation_ms: warm_walls.get(warm_walls.len() / 2).copied().unwrap_or(0.0),
        peak_rss_mib: rss,
        calls_per_invocation: calls
            .into_iter()
            .map(|(k, n)| (k, n as f64 / warm))
            .collect(),
        first_calls,
    })
}

/// The table docs/performance.md shows.
pub fn table(measurements: &[Measurement]) -> String {
    let mut out = String::from(
        "| scenario | readings/invocation (event MB) | CPU µs/reading | readings/s of CPU | warm invocation ms (median) | first invocation ms | init ms (CPU ms) | peak RSS MiB | calls per warm invocation |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for m in measurements {
        let calls = m
            .calls_per_invocation
            .iter()
            .map(|(k, n)| format!("{k} {n:.1}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "| {} | {:.0} ({:.1}) | {:.2} | {:.0} | {:.1} | {:.1} | {:.1} ({:.0}) | {:.1} | {calls} |\n",
            m.scenario.label(),
            m.readings_per_invocation,
            m.event_bytes as f64 / 1e6,
            m.cpu_us_per_reading,
            m.readings_per_cpu_second(),
            m.warm_invocation_ms,
            m.first_invocation_ms,
            m.init_ms,
            m.init_cpu_ms,
            m.peak_rss_mib,
        ));
    }
    out
}

/// The default bootstrap: `target/release/ingest` beside this crate's target directory.
pub fn default_bootstrap() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/ingest")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_written_twice_or_a_reason_lost_fails_the_check() {
        let expected = (
            vec![("ac-1".to_owned(), 1), ("ac-2".to_owned(), 2)],
            vec!["malformed_json".to_owned()],
        );
        let mut received = Received {
            written: vec![("ac-2".into(), 2), ("ac-1".into(), 1)],
            quarantined: vec!["malformed_json".into()],
            ..Default::default()
        };
        assert_eq!(check("ok", &received, &expected), Ok(()));
        received.written.push(("ac-1".into(), 1));
        let twice = check("twice", &received, &expected).unwrap_err();
        assert!(twice.contains("1 written twice"), "{twice}");
        received.written.truncate(1);
        assert!(check("lost", &received, &expected).is_err());
        received.written = expected.0.clone();
        received.quarantined.clear();
        assert!(
            check("no reason", &received, &expected)
                .unwrap_err()
                .contains("quarantined 0")
        );
        received.quarantined = expected.1.clone();
        received.malformed.push("SNS.Subscribe".into());
        assert!(check("unserved", &received, &expected).is_err());
    }
}
