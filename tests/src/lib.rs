//! Test harness: moto's server on a free 127.0.0.1 port, started per test binary and killed
//! when the guard drops (also when a test panics), so nothing is left listening.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The region every local resource lives in.
pub const REGION: &str = "us-east-1";

pub struct MotoServer {
    child: Child,
    pub endpoint: String,
}

impl MotoServer {
    /// Start `moto_server` from the project's venv (`make tools` installs it), or from
    /// `IOTDP_MOTO_SERVER`.
    pub fn start() -> Self {
        let binary = std::env::var_os("IOTDP_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server")
            });
        assert!(
            binary.exists(),
            "moto_server not found at {}: run `make tools` (or `make test`, which runs it)",
            binary.display()
        );
        let port = free_port();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not listen on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// Point every AWS SDK client in this process at this server, with dummy credentials.
    ///
    /// # Safety
    /// Mutates the process environment: call it before any other thread reads the
    /// environment (each integration-test file runs as its own process for this reason).
    pub unsafe fn export_environment(&self) {
        // SAFETY: upheld by the caller, see above.
        unsafe {
            std::env::set_var("AWS_ENDPOINT_URL", &self.endpoint);
            std::env::set_var("AWS_REGION", REGION);
            std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
            std::env::remove_var("AWS_PROFILE");
        }
    }

    /// moto's view of all its state (`/moto-api/data.json`).
    pub fn state(&self) -> serde_json::Value {
        let body = http_get(&self.endpoint, "/moto-api/data.json");
        serde_json::from_str(&body).expect("moto data.json is JSON")
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

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
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
