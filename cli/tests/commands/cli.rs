//! The `iotdp` binary as an operator runs it, against moto's server.

use std::process::{Command, Output};

use iotdp::adapters::dynamodb::alerts::DynamoDbAlertStates;
use iotdp::alerting::event::AlarmState;
use iotdp::alerting::ports::{AlertKey, AlertStateStore};
use iotdp::alerting::state_machine::AlertState;
use iotdp_integration_tests::{MotoServer, REGION, create_alert_tables};

/// The CLI with the tables these tests create named, against moto when given.
pub(crate) fn iotdp(moto: Option<&MotoServer>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_iotdp"));
    command
        .args(args)
        .env("IOTDP_RULES_TABLE", "rules")
        .env("IOTDP_ALERT_STATE_TABLE", "states")
        .env("IOTDP_TYPES_TABLE", "types")
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing");
    if let Some(moto) = moto {
        command.env("AWS_ENDPOINT_URL", &moto.endpoint);
    }
    command.output().expect("run iotdp")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn an_invalid_rule_file_is_refused_naming_the_field_without_touching_aws() {
    let dir = std::env::temp_dir().join(format!("iotdp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.json");
    std::fs::write(
        &file,
        r#"{"rule_id":"hot","name":"Too hot","scope":"all","metric":"temperature","condition":{"above":"warm"},"severity":"warning"}"#,
    )
    .unwrap();
    let out = iotdp(None, &["rules", "put", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("condition.above"), "{stderr}");
    assert!(stderr.contains("bad.json"), "{stderr}");
}

/// `iotdp cost` prices the three reference loads without touching AWS, and a load of one's own;
/// Basic Ingest never costs more, and a bad price table is named.
#[test]
fn the_cost_model_prices_the_reference_loads_and_yours() {
    let repository = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let prices = format!("{repository}/infra/prices.toml");
    let out = iotdp(None, &["cost", "--prices", &prices, "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let loads: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(loads.len(), 3);
    for load in &loads {
        let (broker, basic, baseline) = (
            load["iotdp_usd"].as_f64().unwrap(),
            load["iotdp_basic_ingest_usd"].as_f64().unwrap(),
            load["baseline_usd"].as_f64().unwrap(),
        );
        assert!(basic <= broker && broker > 0.0 && baseline > 0.0, "{load}");
        assert!(load["iotdp_by_service"]["IoT Core"].as_f64().unwrap() > 0.0);
    }
    // The thermostats' 5,000 messages/s: 12.96 billion a month.
    assert_eq!(loads[1]["messages_per_month"], 12_960_000_000.0);
    // The Timestream baseline takes Basic Ingest and leaves IoT Events out: no messaging, no
    // IoT Events line; the green walls' gateway arrays are priced as the team's own Lambda,
    // and say why.
    for load in &loads {
        let timestream = &load["baselines"]["timestream"];
        let items: Vec<&str> = timestream["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["item"].as_str().unwrap())
            .collect();
        assert!(!items.contains(&"iot_core_messaging"), "{items:?}");
        assert!(
            !items.contains(&"iot_events_message_evaluations"),
            "{items:?}"
        );
        assert!(
            load["baselines"]["firehose_parquet_athena"]["usd"]
                .as_f64()
                .unwrap()
                > 0.0
        );
        assert!(load["baselines"]["timestream_influxdb"].is_null());
    }
    assert_eq!(
        loads[0]["baselines"]["timestream"]["built_as"],
        "timestream_rule_action"
    );
    assert_eq!(
        loads[2]["baselines"]["timestream"]["built_as"],
        "own_lambda"
    );
    assert!(
        loads[2]["baselines"]["timestream"]["timestream_rule_action_unfit"]
            .as_str()
            .unwrap()
            .contains("unnest")
    );
    // docs/cost.md's table is this output (regenerated with scripts/cost-table).
    let docs = std::fs::read_to_string(format!("{repository}/docs/cost.md")).unwrap();
    let thousands = |usd: f64| {
        let digits = format!("{usd:.0}");
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    for (load, name) in loads
        .iter()
        .zip(["battery boxes", "thermostats", "green walls"])
    {
        let row = docs
            .lines()
            .find(|l| l.starts_with(&format!("| {name} | ")) && l.matches('|').count() == 10)
            .unwrap_or_else(|| panic!("no row for {name} in docs/cost.md"));
        let mut expected: Vec<String> = load["setups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| thousands(s["usd"].as_f64().unwrap()))
            .collect();
        expected.push(thousands(
            load["baselines"]["timestream"]["usd"].as_f64().unwrap(),
        ));
        expected.push(thousands(
            load["baselines"]["firehose_parquet_athena"]["usd"]
                .as_f64()
                .unwrap(),
        ));
        let cells: Vec<&str> = row
            .split('|')
            .map(|c| c.trim().trim_end_matches(" (own Lambda)"))
            .filter(|c| !c.is_empty())
            .skip(1)
            .collect();
        assert_eq!(
            cells, expected,
            "docs/cost.md's {name} row is stale: run scripts/cost-table"
        );
    }
    // The lake (Parquet on S3) is priced for every load, on every set-up, with its own lines
    // beside what every store shares, and the 50 % goal is reported against the cheapest
    // baseline that can be built; docs/cost.md's lake table is this output too.
    for (load, name) in loads
        .iter()
        .zip(["battery boxes", "thermostats", "green walls"])
    {
        let lake = &load["lake"];
        assert_eq!(lake["setups"].as_array().unwrap().len(), 6, "{name}");
        let items: Vec<&str> = lake["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["item"].as_str().unwrap())
            .collect();
        for item in [
            "iot_core_connectivity_minutes",
            "dynamodb_write_request_units",
            "lake_s3_put_ingest",
            "lake_s3_get_compaction",
            "lake_raw_standard_gb_months",
            "lake_raw_glacier_ir_gb_months",
            "lake_rollups_standard_gb_months",
            "lake_athena_tb_scanned",
            "lake_compaction_gb_seconds",
        ] {
            assert!(items.contains(&item), "{name}: {item} in {items:?}");
        }
        assert!(
            !lake["by_service"]
                .as_object()
                .unwrap()
                .contains_key("Timestream")
        );
        assert!(lake["raw_bytes_per_row"].as_f64().unwrap() > 0.5, "{name}");
        let goal = &lake["goal"];
        let ratio = goal["ratio"].as_f64().unwrap();
        assert_eq!(goal["met"].as_bool().unwrap(), ratio <= 0.5, "{name}");
        let cheapest = [
            load["baselines"]["timestream"]["usd"].as_f64().unwrap(),
            load["baselines"]["firehose_parquet_athena"]["usd"]
                .as_f64()
                .unwrap(),
        ]
        .into_iter()
        .fold(f64::INFINITY, f64::min);
        assert!((goal["competent_baseline_usd"].as_f64().unwrap() - cheapest).abs() < 1e-9);
        let row = docs
            .lines()
            .find(|l| l.starts_with(&format!("| {name} | lake ")))
            .unwrap_or_else(|| panic!("no lake row for {name} in docs/cost.md"));
        let lake_usd = lake["usd"].as_f64().unwrap();
        assert!(
            row.contains(&format!(": {} |", thousands(lake_usd)))
                && row.contains(&format!("{:.0} %", 100.0 * ratio)),
            "docs/cost.md's lake row for {name} is stale: run scripts/cost-table\n{row}"
        );
    }
    // The finest rollup tier follows the reporting interval: hours for the battery boxes'
    // 5 minutes, minutes for the thermostats' 10 s.
    assert_eq!(loads[0]["reads"]["rollup_finest"], "1h");
    assert_eq!(loads[1]["reads"]["rollup_finest"], "1m");
    // Dashboards watched 176 hours hold Timestream's 4 query TCUs; the rollup job holds them
    // 30 s every 5 minutes in the other 544. The baseline watches the same dashboards.
    assert_eq!(
        loads[0]["reads"]["tcu_hours"],
        4.0 * 176.0 + 4.0 * 544.0 * 0.1
    );
    assert_eq!(loads[0]["reads"]["baseline_tcu_hours"], 4.0 * 176.0);
    let items: Vec<&str> = loads[0]["setups"][0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["item"].as_str().unwrap())
        .collect();
    for item in [
        "timestream_writes_rollups",
        "timestream_query_tcu_hours",
        "dynamodb_read_request_units",
        "dynamodb_write_request_units",
    ] {
        assert!(items.contains(&item), "{item} in {items:?}");
    }
    let mine = iotdp(
        None,
        &[
            "cost",
            "--prices",
            &prices,
            "--devices",
            "10",
            "--interval",
            "60",
            "--dashboard-hours",
            "0",
            "--influxdb-hourly",
            "0.5",
            "--output",
            "json",
        ],
    );
    let mine: serde_json::Value = serde_json::from_str(text(&mine.stdout).trim()).unwrap();
    assert_eq!(mine["messages_per_month"], 432_000.0);
    // Nobody watching: the job's share alone, and none for the baseline.
    assert_eq!(mine["reads"]["tcu_hours"], 4.0 * 720.0 * 0.1);
    assert_eq!(mine["reads"]["baseline_tcu_hours"], 0.0);
    // Given its hourly price, the InfluxDB baseline is its instance all month and the rest.
    let influxdb = mine["baselines"]["timestream_influxdb"]["usd"]
        .as_f64()
        .unwrap();
    assert!(influxdb > 720.0 * 0.5, "{influxdb}");
    let dir = std::env::temp_dir().join(format!("iotdp-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("prices.toml");
    std::fs::write(&broken, "[sqs_requests]\nusd = 0.4\n").unwrap();
    let refused = iotdp(None, &["cost", "--prices", broken.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("price table"),
        "{}",
        text(&refused.stderr)
    );
}

/// `rules import-iot-events` on the documented example model: a dry run prints the rule on
/// stdout and the report on stderr without touching AWS; without it the rule is stored.
#[tokio::test]
async fn an_iot_events_alarm_model_becomes_a_stored_rule() {
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/examples/iot-events-alarm-model.json"
    );
    let dry = iotdp(
        None,
        &[
            "--output",
            "json",
            "rules",
            "import-iot-events",
            model,
            "--dry-run",
        ],
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(printed["rule"]["rule_id"], "batteryVoltageLow");
    assert_eq!(printed["rule"]["metric"], "voltage");
    assert_eq!(printed["rule"]["severity"], "critical");
    let report = text(&dry.stderr);
    assert!(
        report.contains("mapped      LESS_OR_EQUAL 11.8"),
        "{report}"
    );
    assert!(
        report.contains("not mapped  sns action to arn:aws:sns:us-east-1:123456789012:battery-ops"),
        "{report}"
    );
    assert!(report.contains("not mapped  alarmNotification"), "{report}");
    assert!(report.contains("LATCHED"), "{report}");

    let moto = MotoServer::start();
    let sdk = iotdp_local::platform::local_sdk_config(&moto.endpoint).await;
    create_alert_tables(&aws_sdk_dynamodb::Client::new(&sdk), "rules", "states").await;
    let stored = iotdp(Some(&moto), &["rules", "import-iot-events", model]);
    assert!(stored.status.success(), "{}", text(&stored.stderr));
    let list = text(&iotdp(Some(&moto), &["rules", "list"]).stdout);
    assert!(
        list.contains("batteryVoltageLow") && list.contains("voltage"),
        "{list}"
    );

    let broken = std::env::temp_dir().join(format!("iotdp-iot-events-{}.json", std::process::id()));
    std::fs::write(
        &broken,
        std::fs::read_to_string(model)
            .unwrap()
            .replace(r#""11.8""#, r#""$input.BatteryTelemetry.limit""#),
    )
    .unwrap();
    let refused = iotdp(
        None,
        &[
            "rules",
            "import-iot-events",
            broken.to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("is an expression, not a number"),
        "{}",
        text(&refused.stderr)
    );
}

#[tokio::test]
async fn rules_and_alerts_round_trip_through_the_cli() {
    let moto = MotoServer::start();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new(REGION))
        .test_credentials()
        .load()
        .await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    create_alert_tables(&dynamodb, "rules", "states").await;

    let dir = std::env::temp_dir().join(format!("iotdp-cli-moto-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hot.json");
    std::fs::write(
        &file,
        r#"{"rule_id":"too-hot","name":"Room too hot","scope":"all","metric":"temperature","condition":{"above":28},"clear":26,"severity":"warning"}"#,
    )
    .unwrap();
    let put = iotdp(Some(&moto), &["rules", "put", file.to_str().unwrap()]);
    assert!(put.status.success(), "{}", text(&put.stderr));
    let list = text(&iotdp(Some(&moto), &["rules", "list"]).stdout);
    assert!(
        list.contains("too-hot") && list.contains("Room too hot"),
        "{list}"
    );

    // An alarm as the evaluator leaves it, then acknowledged by the operator.
    let states = DynamoDbAlertStates::new(dynamodb.clone(), "states");
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
    // One device's states come from a key query (the API's device page uses it).
    let mine = iotdp::alerting::ports::AlertStateListing::for_device(&states, "ac-1")
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert!(
        iotdp::alerting::ports::AlertStateListing::for_device(&states, "ac-2")
            .await
            .unwrap()
            .is_empty()
    );
    let alarms = text(&iotdp(Some(&moto), &["alerts", "list", "--state", "alarm"]).stdout);
    assert!(
        alarms.contains("ac-1") && alarms.contains("ALARM") && alarms.contains("29.5"),
        "{alarms}"
    );
    let ack = iotdp(Some(&moto), &["alerts", "ack", "ac-1", "too-hot"]);
    assert!(ack.status.success(), "{}", text(&ack.stderr));
    assert_eq!(
        states.get_many(std::slice::from_ref(&key)).await.unwrap()[0]
            .as_ref()
            .unwrap()
            .state,
        AlarmState::Acknowledged
    );
    let again = iotdp(Some(&moto), &["alerts", "ack", "ac-1", "too-hot"]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("is ACKNOWLEDGED: acknowledge applies to ALARM or LATCHED"),
        "{}",
        text(&again.stderr)
    );
    assert!(
        text(&iotdp(Some(&moto), &["alerts", "list", "--state", "ALARM"]).stdout)
            .lines()
            .count()
            == 1
    );
    // The rest of the lifecycle, each through the same use case as the API.
    let state_of = || async {
        states.get_many(std::slice::from_ref(&key)).await.unwrap()[0]
            .clone()
            .unwrap()
    };
    let stale = iotdp(
        Some(&moto),
        &["alerts", "disable", "ac-1", "too-hot", "--if-version", "1"],
    );
    assert!(!stale.status.success());
    assert!(
        text(&stale.stderr).contains("is at version 2, not 1"),
        "{}",
        text(&stale.stderr)
    );
    for (args, expected) in [
        (
            vec!["alerts", "snooze", "ac-1", "too-hot", "--for", "2h"],
            AlarmState::Acknowledged,
        ),
        (
            vec!["alerts", "disable", "ac-1", "too-hot", "--if-version", "3"],
            AlarmState::Disabled,
        ),
        (vec!["alerts", "enable", "ac-1", "too-hot"], AlarmState::Ok),
        (vec!["alerts", "reset", "ac-1", "too-hot"], AlarmState::Ok),
    ] {
        let out = iotdp(Some(&moto), &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(state_of().await.state, expected, "{args:?}");
    }
    let refused = iotdp(Some(&moto), &["alerts", "enable", "ac-1", "too-hot"]);
    assert!(
        text(&refused.stderr).contains("enable applies to DISABLED"),
        "{}",
        text(&refused.stderr)
    );
    let past = iotdp(
        Some(&moto),
        &[
            "alerts",
            "snooze",
            "ac-1",
            "too-hot",
            "--until",
            "2020-01-01T00:00:00Z",
        ],
    );
    assert!(
        text(&past.stderr).contains("must end in the future"),
        "{}",
        text(&past.stderr)
    );

    let delete = iotdp(Some(&moto), &["rules", "delete", "too-hot"]);
    assert!(delete.status.success());
    let missing = iotdp(Some(&moto), &["rules", "delete", "too-hot"]);
    assert!(text(&missing.stderr).contains("no rule with rule_id 'too-hot'"));
}
