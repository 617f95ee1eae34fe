//! `iotdp --stack NAME`: every command finds its tables, policy and store from the stack's
//! outputs alone (a stack registered in moto's CloudFormation as the local platform registers
//! it), prints JSON with the API's field names, and a missing output's error names it.

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::Duration;

use iotdp::adapters::dynamodb::alerts::DynamoDbAlertStates;
use iotdp::adapters::influxdb::InfluxDbStore;
use iotdp::alerting::event::AlarmState;
use iotdp::alerting::ports::{AlertKey, AlertStateStore};
use iotdp::alerting::state_machine::AlertState;
use iotdp::domain::{MetricValue, Reading};
use iotdp::ingest::store_writer::{WritePolicy, write_readings};
use iotdp_integration_tests::{InfluxServer, MotoServer, REGION, provision_template_with};
use serde_json::Value;

/// Every variable through which a name could reach the CLI other than the stack.
const NAME_VARIABLES: &[&str] = &[
    "IOTDP_STACK",
    "IOTDP_RULES_TABLE",
    "IOTDP_ALERT_STATE_TABLE",
    "IOTDP_REGISTRY_TABLE",
    "IOTDP_DEVICE_POLICY",
    "IOTDP_TIME_SERIES_STORE",
    "IOTDP_LAKE_BUCKET",
    "IOTDP_TIMESTREAM_DATABASE",
    "IOTDP_TIMESTREAM_TABLE",
    "IOTDP_INFLUXDB_URL",
    "IOTDP_INFLUXDB_DATABASE",
    "IOTDP_INFLUXDB_TOKEN_SECRET_ARN",
    "IOTDP_ROLLUP_STATE_TABLE",
    "IOTDP_COMMAND_TABLE",
    "IOTDP_IOT_DATA_ENDPOINT",
    "IOTDP_OUTPUT",
];

fn iotdp(endpoint: &str, args: &[&str]) -> Output {
    iotdp_with(endpoint, args, &[])
}

/// The CLI with only the AWS variables (and `extra`) set: no name reaches it but the stack.
fn iotdp_with(endpoint: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_iotdp"));
    for name in NAME_VARIABLES {
        command.env_remove(name);
    }
    command
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .envs(extra.iter().copied())
        .output()
        .expect("run iotdp")
}

fn ok(endpoint: &str, args: &[&str]) -> String {
    let out = iotdp(endpoint, args);
    assert!(
        out.status.success(),
        "iotdp {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// JSON Lines: every line one object.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn keys(object: &Value) -> BTreeSet<String> {
    object.as_object().unwrap().keys().cloned().collect()
}

fn openapi() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml"))
        .expect("openapi.yaml");
    serde_yaml_ng::from_str(&text).expect("openapi.yaml parses")
}

/// The property names the API documents for a schema.
fn documented(schema: &Value) -> BTreeSet<String> {
    keys(&schema["properties"])
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("iotdp-stack-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn every_command_runs_with_the_stack_name_alone() {
    let moto = MotoServer::start();
    let influx = InfluxServer::start();
    let parameters = [
        ("TimeSeriesStore", "influxdb"),
        ("InfluxDbUrl", influx.process.url.as_str()),
        ("InfluxDbDatabase", influx.database.as_str()),
    ];
    let (sdk, stack) = provision_template_with(&moto.endpoint, "iotdp-ops", &parameters).await;
    let at = |args: &[&str]| -> String {
        let mut all = vec!["--stack", "iotdp-ops"];
        all.extend_from_slice(args);
        ok(&moto.endpoint, &all)
    };
    let spec = openapi();
    let dir = scratch("ops");

    // Rules: stored and listed as the API lists them.
    let rule = dir.join("hot.json");
    std::fs::write(
        &rule,
        r#"{"rule_id":"too-hot","name":"Room too hot","scope":"all","metric":"temperature","condition":{"above":28},"severity":"warning"}"#,
    )
    .unwrap();
    at(&["rules", "put", rule.to_str().unwrap()]);
    let rules = json_lines(&at(&["rules", "list", "--output", "json"]));
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["rule_id"], "too-hot");
    assert_eq!(rules[0]["condition"]["above"], 28.0);

    // Devices: created (thing, certificate, registry row), imported, listed, shown.
    let out = dir.join("certs");
    let created: Value = serde_json::from_str(&at(&[
        "devices",
        "create",
        "ac-1",
        "--type",
        "thermostat",
        "--path",
        "home-1/kitchen",
        "--out",
        out.to_str().unwrap(),
        "--output",
        "json",
    ]))
    .unwrap();
    assert_eq!(created["device"]["device_id"], "ac-1");
    assert!(out.join("ac-1").exists() || created["files"].as_str().is_some());
    let csv = dir.join("fleet.csv");
    std::fs::write(
        &csv,
        "device_id,device_type,path,gateway_id,heartbeat_seconds,tags\nac-2,thermostat,home-2,,600,\nac-3,thermostat,home-3,,,\n",
    )
    .unwrap();
    let imported: Value = serde_json::from_str(&at(&[
        "devices",
        "import",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--output",
        "json",
    ]))
    .unwrap();
    assert_eq!(imported["created"], serde_json::json!(["ac-2", "ac-3"]));
    let devices = json_lines(&at(&["devices", "list", "--output", "json"]));
    let ids: Vec<&str> = devices
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    for device in &devices {
        assert_eq!(
            keys(device),
            documented(&spec["components"]["schemas"]["Device"]),
            "devices list --output json uses the API's Device fields"
        );
    }
    let shown: Value =
        serde_json::from_str(&at(&["devices", "show", "ac-2", "--output", "json"])).unwrap();
    assert_eq!(shown["heartbeat_seconds"], 600);
    let suspended: Value =
        serde_json::from_str(&at(&["devices", "suspend", "ac-3", "--output", "json"])).unwrap();
    assert_eq!(suspended["device"]["status"], "suspended");
    at(&["devices", "resume", "ac-3"]);
    let table = at(&["devices", "list", "--type", "thermostat"]);
    assert!(table.starts_with("DEVICE_ID"), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");

    // Commands: through the device's shadow (moto's here), recorded in the stack's history.
    let issued: Value = serde_json::from_str(&at(&[
        "devices",
        "command",
        "ac-2",
        r#"{"setpoint":21}"#,
        "--key",
        "cli-1",
        "--output",
        "json",
    ]))
    .unwrap();
    assert_eq!(issued["command"]["status"], "pending");
    assert_eq!(issued["command"]["command_id"], "cli-1");
    assert_eq!(
        keys(&issued["command"]),
        documented(&spec["components"]["schemas"]["Command"]),
        "devices command --output json uses the API's Command fields"
    );
    let shadow: Value =
        serde_json::from_str(&at(&["devices", "shadow", "ac-2", "--output", "json"])).unwrap();
    assert_eq!(shadow["desired"], serde_json::json!({"setpoint": 21}));
    assert_eq!(shadow["delta"], serde_json::json!({"setpoint": 21}));
    assert_eq!(
        keys(&shadow),
        documented(&spec["components"]["schemas"]["Shadow"])
    );
    // Nobody applies it here: --wait gives up, says so, and fails.
    let waited = iotdp(
        &moto.endpoint,
        &[
            "--stack",
            "iotdp-ops",
            "devices",
            "command",
            "ac-2",
            r#"{"fan":"low"}"#,
            "--wait",
            "1",
        ],
    );
    assert!(!waited.status.success());
    assert!(
        String::from_utf8_lossy(&waited.stderr).contains("still pending after 1 s"),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );
    let history = json_lines(&at(&["devices", "commands", "ac-2", "--output", "json"]));
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["command_id"], "cli-1", "newest first");
    let refused = iotdp(
        &moto.endpoint,
        &["--stack", "iotdp-ops", "devices", "command", "ac-2", "[1]"],
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("JSON object"));

    // Alerts: listed with the rule's severity (from the rules table the stack names), acked.
    let states = DynamoDbAlertStates::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        stack.stack.physical["AlertStateTable"].reference.clone(),
    );
    let key = AlertKey {
        device_id: "ac-1".into(),
        rule_id: "too-hot".into(),
    };
    let alarm = AlertState {
        state: AlarmState::Alarm,
        version: 1,
        last_measured: Some(29.5),
        ..Default::default()
    };
    states.put_if_version(&key, &alarm, 0).await.unwrap();
    let alerts = json_lines(&at(&["alerts", "list", "--output", "json"]));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["severity"], "warning");
    assert_eq!(alerts[0]["last_value"], 29.5);
    assert_eq!(
        spec["paths"]["/alerts"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            ["properties"]["alerts"]["items"]["$ref"],
        "#/components/schemas/Alert"
    );
    let alert_schema = &spec["components"]["schemas"]["Alert"];
    assert_eq!(keys(&alerts[0]), documented(alert_schema));
    at(&["alerts", "ack", "ac-1", "too-hot"]);
    let acknowledged = json_lines(&at(&[
        "alerts",
        "list",
        "--state",
        "ACKNOWLEDGED",
        "--output",
        "json",
    ]));
    assert_eq!(acknowledged.len(), 1);

    // Readings: from the store the stack names (InfluxDB here), with relative times.
    let store = InfluxDbStore::new(&influx.settings()).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let readings: Vec<Reading> = [(-300_i64, 21.0), (-240, 21.5), (-180, 22.0)]
        .iter()
        .map(|(s, t)| {
            Reading::new(
                "ac-1",
                now + s * 1000,
                [("temperature", MetricValue::Number(*t))],
            )
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    write_readings(&store, &readings, &WritePolicy::default(), deadline).await;
    let points = json_lines(&at(&[
        "readings",
        "ac-1",
        "temperature",
        "--from",
        "-10m",
        "--output",
        "json",
    ]));
    let values: Vec<f64> = points
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [21.0, 21.5, 22.0]);
    assert_eq!(
        keys(&points[0]),
        documented(&spec["components"]["schemas"]["Point"])
    );

    // Decommissioning needs the policy too: from the stack as well.
    let retired: Value = serde_json::from_str(&at(&[
        "devices",
        "decommission",
        "ac-1",
        "--output",
        "json",
    ]))
    .unwrap();
    assert_eq!(retired["status"], "decommissioned");
    assert_eq!(retired["certificates_retired"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_missing_output_or_stack_is_named_and_flags_still_win() {
    let moto = MotoServer::start();
    let (sdk, stack) = provision_template_with(&moto.endpoint, "iotdp-full", &[]).await;
    // A stack that publishes only the rules table.
    aws_sdk_cloudformation::Client::new(&sdk)
        .create_stack()
        .stack_name("iotdp-partial")
        .template_body(
            r#"{"Resources":{"Marker":{"Type":"AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs":{"AlertRulesTableName":{"Value":"rules-of-another-stack"}}}"#,
        )
        .send()
        .await
        .unwrap();

    let missing = iotdp(
        &moto.endpoint,
        &["--stack", "iotdp-partial", "devices", "list"],
    );
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("stack 'iotdp-partial' has no output DeviceRegistryTableName")
            && stderr.contains("--registry-table"),
        "{stderr}"
    );

    let unknown = iotdp(
        &moto.endpoint,
        &["--stack", "no-such-stack", "rules", "list"],
    );
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("stack 'no-such-stack' does not exist"),
        "{stderr}"
    );

    let neither = iotdp(&moto.endpoint, &["rules", "list"]);
    let stderr = String::from_utf8_lossy(&neither.stderr);
    assert!(
        stderr.contains("--table (or IOTDP_RULES_TABLE) is required, or --stack NAME")
            && stderr.contains("AlertRulesTableName"),
        "{stderr}"
    );

    // An explicit flag wins over the stack's output.
    let registry = stack.stack.physical["DeviceRegistryTable"]
        .reference
        .clone();
    let listed = ok(
        &moto.endpoint,
        &[
            "--stack",
            "iotdp-partial",
            "devices",
            "--registry-table",
            &registry,
            "list",
        ],
    );
    assert!(listed.starts_with("DEVICE_ID"), "{listed}");
    // And IOTDP_STACK is the same as --stack.
    let via_env = iotdp_with(
        &moto.endpoint,
        &["rules", "list", "--output", "json"],
        &[("IOTDP_STACK", "iotdp-full")],
    );
    assert!(
        via_env.status.success(),
        "{}",
        String::from_utf8_lossy(&via_env.stderr)
    );
}

#[test]
fn help_names_every_variable_and_completions_are_generated() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_iotdp"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = run(&["--help"]);
    for variable in [
        "IOTDP_STACK",
        "IOTDP_OUTPUT",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_PROFILE",
    ] {
        assert!(
            top.contains(variable),
            "iotdp --help lacks {variable}:\n{top}"
        );
    }
    for (command, variable, output) in [
        ("devices", "IOTDP_REGISTRY_TABLE", "DeviceRegistryTableName"),
        ("devices", "IOTDP_DEVICE_POLICY", "DevicePolicyName"),
        ("rules", "IOTDP_RULES_TABLE", "AlertRulesTableName"),
        ("alerts", "IOTDP_ALERT_STATE_TABLE", "AlertStateTableName"),
        ("readings", "IOTDP_INFLUXDB_URL", "InfluxDbUrl"),
        ("readings", "IOTDP_LAKE_BUCKET", "LakeBucketName"),
        (
            "readings",
            "IOTDP_TIMESTREAM_DATABASE",
            "TimestreamDatabaseName",
        ),
    ] {
        let help = run(&[command, "--help"]);
        assert!(
            help.contains(variable) && help.contains(output),
            "iotdp {command} --help lacks {variable} or {output}:\n{help}"
        );
    }
    let bash = run(&["completions", "bash"]);
    assert!(
        bash.contains("complete") && bash.contains("decommission"),
        "{bash}"
    );
    for shell in ["zsh", "fish"] {
        assert!(run(&["completions", shell]).contains("devices"));
    }
}
