//! Test harness: moto's server on a free 127.0.0.1 port, started per test binary and killed
//! when the guard drops (also when a test panics), so nothing is left listening.

pub mod fake_aws;
pub mod ingest_bench;
pub mod relay;

use iotdp::config::FromEnvironment;
use std::net::TcpStream;
use std::path::PathBuf;

use iotdp_local::moto::MotoProcess;

/// The region every local resource lives in.
pub const REGION: &str = "us-east-1";

/// moto_server from the project's venv (`make tools` installs it), or `IOTDP_MOTO_SERVER`.
pub fn moto_binary() -> PathBuf {
    std::env::var_os("IOTDP_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server")
        })
}

/// influxd from the project's tools folder (`make tools` installs it), or `IOTDP_INFLUXD`.
pub fn influxd_binary() -> PathBuf {
    std::env::var_os("IOTDP_INFLUXD")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(iotdp_local::influxd::INFLUXD_RELATIVE_PATH)
        })
}

/// influxd on free 127.0.0.1 ports with database `iotdp`, its data in a fresh folder under
/// `target/` (ignored), removed when the guard drops.
pub struct InfluxServer {
    pub process: iotdp_local::influxd::InfluxProcess,
    pub database: String,
}

impl InfluxServer {
    pub fn start() -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = fresh_influxd_dir(&n.to_string());
        let process = iotdp_local::influxd::InfluxProcess::start(&influxd_binary(), &dir)
            .unwrap_or_else(|e| panic!("{e}"));
        process.create_database("iotdp").expect("create database");
        Self {
            process,
            database: "iotdp".into(),
        }
    }

    pub fn settings(&self) -> iotdp::adapters::influxdb::InfluxDbSettings {
        iotdp::adapters::influxdb::InfluxDbSettings {
            url: self.process.url.clone(),
            database: self.database.clone(),
            token: Some("local-token".into()),
        }
    }

    /// An InfluxQL query's first result's series.
    pub fn series(&self, query: &str) -> Vec<serde_json::Value> {
        let answer = self
            .process
            .query(&self.database, query)
            .unwrap_or_else(|e| panic!("{e}"));
        answer["results"][0]["series"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for InfluxServer {
    fn drop(&mut self) {
        self.process.stop();
        let _ = std::fs::remove_dir_all(&self.process.data_dir);
    }
}

pub struct MotoServer {
    _process: MotoProcess,
    pub endpoint: String,
}

impl MotoServer {
    /// Start moto's server on a free 127.0.0.1 port; it stops when this is dropped.
    pub fn start() -> Self {
        let process = MotoProcess::start(&moto_binary(), 0).unwrap_or_else(|e| panic!("{e}"));
        Self {
            endpoint: process.endpoint.clone(),
            _process: process,
        }
    }

    /// An SDK configuration pointed at this server, with dummy credentials (what the Lambda
    /// binaries get from `AWS_ENDPOINT_URL`, without mutating the process environment).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        iotdp_local::platform::local_sdk_config(&self.endpoint).await
    }

    /// moto's view of all its state (`/moto-api/data.json`).
    pub fn state(&self) -> serde_json::Value {
        moto_state(&self.endpoint)
    }

    /// The raw records moto holds for a Timestream table.
    pub fn timestream_records(&self, table: &str) -> Vec<serde_json::Value> {
        self.state()["timestreamwrite"]["TimestreamTable"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["name"] == table)
            .flat_map(|t| t["records"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

/// moto's view of all its state at `endpoint` (`/moto-api/data.json`).
pub fn moto_state(endpoint: &str) -> serde_json::Value {
    serde_json::from_str(&http_get(endpoint, "/moto-api/data.json"))
        .expect("moto data.json is JSON")
}

/// A minimal HTTP/1.0 GET, enough for moto's own API (no HTTP client dependency).
fn http_get(endpoint: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let authority = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(authority).expect("connect to moto");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    body.to_owned()
}

/// The rules and alert-state tables, keyed as template.yaml keys them.
pub async fn create_alert_tables(dynamodb: &aws_sdk_dynamodb::Client, rules: &str, states: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let tables: [(&str, &[(&str, KeyType)]); 2] = [
        (rules, &[("rule_id", KeyType::Hash)]),
        (
            states,
            &[("device_id", KeyType::Hash), ("rule_id", KeyType::Range)],
        ),
    ];
    for (name, keys) in tables {
        let mut request = dynamodb
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest);
        for (attribute, kind) in keys {
            request = request
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(*attribute)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .expect("complete attribute definition"),
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(*attribute)
                        .key_type(kind.clone())
                        .build()
                        .expect("complete key schema element"),
                );
        }
        request.send().await.expect("create table in moto");
    }
}

/// The command history table `name`, exactly as template.yaml's `CommandTable` defines it
/// (keys, the `pending-by-deadline` index).
pub async fn create_command_table(dynamodb: &aws_sdk_dynamodb::Client, name: &str) {
    let text =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
            .expect("read template.yaml");
    let template = iotdp_local::template::Template::parse(&text).expect("template parses");
    let resource = template
        .resource("CommandTable")
        .expect("template.yaml defines CommandTable");
    let stack = iotdp_local::template::Stack {
        name: "iotdp-test".into(),
        region: iotdp_local::provision::LOCAL_REGION.into(),
        account_id: "123456789012".into(),
        parameters: std::collections::HashMap::new(),
        physical: std::collections::HashMap::new(),
    };
    let properties = template
        .properties(resource, &stack)
        .expect("CommandTable's properties resolve");
    iotdp_local::provision::create_dynamodb_table(dynamodb, name, &properties)
        .await
        .expect("create the command table in moto");
}

/// The ingest path's resources in moto: Timestream database `iotdp` with table `telemetry`,
/// and the `quarantine` bucket.
pub async fn create_ingest_resources(sdk: &aws_config::SdkConfig) {
    let timestream = aws_sdk_timestreamwrite::Client::new(sdk);
    timestream
        .create_database()
        .database_name("iotdp")
        .send()
        .await
        .expect("create database");
    timestream
        .create_table()
        .database_name("iotdp")
        .table_name("telemetry")
        .send()
        .await
        .expect("create table");
    iotdp::wiring::s3_client(sdk)
        .create_bucket()
        .bucket("quarantine")
        .send()
        .await
        .expect("create bucket");
}

/// The ingest configuration for [`create_ingest_resources`], as the Lambda reads it.
pub fn ingest_config() -> iotdp::config::IngestConfig {
    iotdp::config::IngestConfig::from_lookup(|name| {
        match name {
            "TIMESTREAM_DATABASE" => Some("iotdp"),
            "TIMESTREAM_TABLE" => Some("telemetry"),
            "QUARANTINE_BUCKET" => Some("quarantine"),
            _ => None,
        }
        .map(str::to_owned)
    })
    .expect("complete ingest configuration")
}

/// Everything a queue subscribed to an SNS topic holds right now, as the SNS envelopes a
/// subscriber receives (deleted once read).
pub async fn drain_sns_envelopes(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive from the subscriber queue");
        if received.messages().is_empty() {
            return out;
        }
        for m in received.messages() {
            out.push(serde_json::from_str(m.body().unwrap_or_default()).expect("an SNS envelope"));
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete from the subscriber queue");
        }
    }
}

/// A new SQS queue `name` subscribed to `topic_arn`, as an operator's inbox: its URL.
pub async fn subscribed_queue(sdk: &aws_config::SdkConfig, topic_arn: &str, name: &str) -> String {
    let url = aws_sdk_sqs::Client::new(sdk)
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create the subscriber queue")
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    aws_sdk_sns::Client::new(sdk)
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:{REGION}:123456789012:{name}"))
        .send()
        .await
        .expect("subscribe the queue to the topic");
    url
}

/// Every resource of template.yaml created in the moto server at `endpoint`, as `sam deploy`
/// would create them (stack name `iotdp-test`, default parameters but the store): the tables
/// with their indexes, the device policy, queues, bucket, topic, and Timestream as the store,
/// whose records moto keeps for the tests to read back exactly as they were sent.
pub async fn provision_template(
    endpoint: &str,
) -> (aws_config::SdkConfig, iotdp_local::provision::LocalStack) {
    provision_template_with(endpoint, "iotdp-test", &[("TimeSeriesStore", "timestream")]).await
}

/// [`provision_template`] with a stack name and parameter overrides; the stack and its outputs
/// are registered in moto's CloudFormation, as the local platform registers them.
pub async fn provision_template_with(
    endpoint: &str,
    stack_name: &str,
    parameters: &[(&str, &str)],
) -> (aws_config::SdkConfig, iotdp_local::provision::LocalStack) {
    let sdk = iotdp_local::platform::local_sdk_config(endpoint).await;
    let text =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
            .expect("read template.yaml");
    let template = iotdp_local::template::Template::parse(&text).expect("template parses");
    let parameters = parameters
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let stack =
        iotdp_local::provision::provision(&template, stack_name, &parameters, &sdk, endpoint)
            .await
            .expect("template provisions in moto");
    iotdp_local::provision::register_stack(&template, &stack, &sdk, &[])
        .await
        .expect("stack registers in moto's CloudFormation");
    (sdk, stack)
}

/// The environment a function of the provisioned stack gets, as a lookup for its config.
pub fn function_environment(
    stack: &iotdp_local::provision::LocalStack,
    binary: &str,
) -> impl Fn(&str) -> Option<String> + use<> {
    let env = stack
        .functions
        .iter()
        .find(|f| f.binary == binary)
        .unwrap_or_else(|| panic!("no function runs binary {binary}"))
        .environment
        .clone();
    move |name: &str| env.get(name).cloned()
}

/// Every quarantine line in `bucket` (under `quarantine/`), in key order: what an operator
/// reading the quarantine would find.
pub async fn quarantine_lines(
    sdk: &aws_config::SdkConfig,
    bucket: &str,
) -> Vec<iotdp::ingest::quarantine::QuarantineLine> {
    let s3 = iotdp::wiring::s3_client(sdk);
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix("quarantine/")
        .send()
        .await
        .expect("list the quarantine bucket");
    let mut lines = Vec::new();
    for key in listed.contents().iter().filter_map(|o| o.key()) {
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("get a quarantine object")
            .body
            .collect()
            .await
            .expect("read a quarantine object")
            .into_bytes();
        for line in std::str::from_utf8(&body)
            .expect("UTF-8 JSON Lines")
            .lines()
        {
            lines.push(serde_json::from_str(line).expect("a quarantine line"));
        }
    }
    lines
}

/// An empty folder for one test's influxd data, under `target/influxd-test/` (ignored), named
/// by the test and this process so parallel runs never share one.
pub fn fresh_influxd_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/influxd-test")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The local platform as the end-to-end tests start it: template.yaml, in-process queues, a
/// one-second batching window, every listener on a free port, moto started for it, and
/// influxd as the store when `influxd_data` names its folder. Tests change what they need
/// with struct update syntax.
pub fn local_options(
    stack_name: &str,
    influxd_data: Option<PathBuf>,
) -> iotdp_local::platform::LocalOptions {
    use iotdp_local::platform::{Endpoint, LocalInfluxDb, LocalOptions, QueueMode};
    LocalOptions {
        queues: QueueMode::InProcess,
        template: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")),
        stack_name: stack_name.into(),
        parameters: std::collections::HashMap::from([(
            "IngestBatchingWindowSeconds".to_owned(),
            "1".to_owned(),
        )]),
        mqtt: "127.0.0.1:0".parse().expect("an address"),
        api: "127.0.0.1:0".parse().expect("an address"),
        iot_data: "127.0.0.1:0".parse().expect("an address"),
        endpoint: Endpoint::StartMoto {
            binary: moto_binary(),
            port: 0,
        },
        influxdb: influxd_data.map(|data_dir| LocalInfluxDb {
            binary: influxd_binary(),
            data_dir,
        }),
        visibility_timeout_cap: None,
        console_sign_in: None,
    }
}

/// One HTTP/1.1 request with `Connection: close` to a local server (the local query API): the
/// status and the body.
pub fn http_call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    try_http_call(addr, method, path, body)
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

/// [`http_call`], with the I/O error instead of a panic (for a server still starting).
pub fn try_http_call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
