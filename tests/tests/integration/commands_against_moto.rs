//! Commands against moto's server, on the resources template.yaml defines: the IoT Data Plane
//! adapter writes `desired` at the version it read and sees a stale version as a conflict;
//! the DynamoDB history creates once per id, replaces only from the expected status, and finds
//! what is due through the sparse index; and the whole use case, wired from the api and
//! commands functions' environments, issues, delivers and expires.

use iotdp::commands::command::{Command, CommandRequest, CommandSource, CommandStatus};
use iotdp::commands::ports::{CommandStore, Created, ShadowService, ShadowWrite};
use iotdp::config::{ApiConfig, CommandsConfig, FromEnvironment};
use iotdp_integration_tests::{MotoServer, function_environment, provision_template};
use serde_json::{Map, Value, json};

fn patch(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

async fn thing(sdk: &aws_config::SdkConfig, name: &str) {
    aws_sdk_iot::Client::new(sdk)
        .create_thing()
        .thing_name(name)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_versions_the_history_table_and_the_use_case_against_moto() {
    let moto = MotoServer::start();
    let (sdk, stack) = provision_template(&moto.endpoint).await;
    thing(&sdk, "ac-1").await;
    thing(&sdk, "ac-2").await;
    let api = ApiConfig::from_lookup(function_environment(&stack, "api")).unwrap();
    let sweeper = CommandsConfig::from_lookup(function_environment(&stack, "commands")).unwrap();
    assert_eq!(
        api.commands.table, sweeper.table,
        "one history for both functions"
    );

    // The shadow: no document yet, then versions that move by one per accepted write.
    let shadows = iotdp::adapters::iot_shadow::IotShadowService::new(
        iotdp::wiring::iot_data_client(&sdk, None),
    );
    assert_eq!(shadows.get("ac-1").await.unwrap(), None);
    assert_eq!(
        shadows
            .update_desired("ac-1", &patch(json!({"setpoint": 21})), None)
            .await
            .unwrap(),
        ShadowWrite::Written { version: 1 }
    );
    assert_eq!(
        shadows
            .update_desired("ac-1", &patch(json!({"fan": "low"})), Some(1))
            .await
            .unwrap(),
        ShadowWrite::Written { version: 2 }
    );
    assert_eq!(
        shadows
            .update_desired("ac-1", &patch(json!({"setpoint": 30})), Some(1))
            .await
            .unwrap(),
        ShadowWrite::Conflict,
        "a write at a version someone moved past"
    );
    let shadow = shadows.get("ac-1").await.unwrap().unwrap();
    assert_eq!(shadow.version, 2);
    assert_eq!(
        Value::Object(shadow.desired.clone()),
        json!({"setpoint": 21, "fan": "low"})
    );
    let unknown = shadows
        .update_desired("no-such-thing", &patch(json!({"a": 1})), None)
        .await
        .unwrap_err();
    assert!(unknown.0.contains("no-such-thing"), "{unknown}");

    // The history table.
    let history = iotdp::adapters::dynamodb::commands::DynamoDbCommands::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        &api.commands.table,
    );
    let now = chrono::Utc::now().timestamp_millis();
    let command = Command {
        device_id: "ac-2".into(),
        command_id: "k1".into(),
        desired: patch(json!({"setpoint": 19, "schedule": {"night": 17}})),
        status: CommandStatus::Pending,
        source: CommandSource::Api,
        issued_by: "ana".into(),
        issued_at_ms: now - 120_000,
        expires_at_ms: now - 60_000,
        shadow_version: Some(3),
        settled_at_ms: None,
        detail: None,
    };
    assert_eq!(history.create(&command).await.unwrap(), Created::Created);
    assert_eq!(
        history.create(&command).await.unwrap(),
        Created::Exists(Box::new(command.clone()))
    );
    let later = Command {
        command_id: "k2".into(),
        expires_at_ms: now + 3_600_000,
        ..command.clone()
    };
    history.create(&later).await.unwrap();
    let due = history.pending_due(now, 10).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|c| c.command_id.as_str())
            .collect::<Vec<_>>(),
        ["k1"]
    );
    let delivered = Command {
        status: CommandStatus::Delivered,
        settled_at_ms: Some(now),
        ..command.clone()
    };
    assert!(
        history
            .replace_if(&delivered, CommandStatus::Pending)
            .await
            .unwrap()
    );
    assert!(
        !history
            .replace_if(&delivered, CommandStatus::Pending)
            .await
            .unwrap(),
        "only from the status it was read in"
    );
    assert!(
        history.pending_due(now, 10).await.unwrap().is_empty(),
        "a settled command leaves the pending index"
    );
    assert_eq!(history.for_device("ac-2").await.unwrap().len(), 2);
    assert_eq!(history.get("ac-2", "k1").await.unwrap().unwrap(), delivered);

    // The use case, wired as the functions wire it: issue, the device reports, the sweep.
    let commands = iotdp::wiring::commands(&sdk, &sweeper);
    let issued = commands
        .issue(
            "ac-1",
            &CommandRequest::new(
                patch(json!({"setpoint": 22})),
                Some(1),
                Some("app-1".into()),
            )
            .unwrap(),
            "ana",
            CommandSource::Api,
            now,
        )
        .await
        .unwrap();
    assert_eq!(issued.shadow_version, Some(3));
    let again = commands
        .issue(
            "ac-1",
            &CommandRequest::new(
                patch(json!({"setpoint": 22})),
                Some(1),
                Some("app-1".into()),
            )
            .unwrap(),
            "ana",
            CommandSource::Api,
            now + 10,
        )
        .await
        .unwrap();
    assert_eq!(again, issued, "the same key is the same command");
    let other = commands
        .issue(
            "ac-1",
            &CommandRequest::new(patch(json!({"fan": "high"})), Some(1), Some("app-2".into()))
                .unwrap(),
            "ana",
            CommandSource::Api,
            now,
        )
        .await
        .unwrap();
    let settled = commands
        .observe_reported("ac-1", &patch(json!({"setpoint": 22})), now + 500)
        .await
        .unwrap();
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0].command_id, "app-1");
    // app-2 was never applied: after its second, the sweep expires it and takes it back.
    assert_eq!(commands.expire_due(now + 2_000).await.unwrap(), 1);
    let expired = commands
        .get("ac-1", &other.command_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(expired.status, CommandStatus::Expired);
    let shadow = shadows.get("ac-1").await.unwrap().unwrap();
    assert_eq!(Value::Object(shadow.desired), json!({"setpoint": 22}));
}
