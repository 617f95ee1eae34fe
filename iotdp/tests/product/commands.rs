//! Commands through shadows, on in-memory adapters that keep the shadow's rules: issued at the
//! shadow's version, delivered when the device reports it, idempotent by key, superseded by a
//! newer command on the same key, expired and taken back out of `desired`, failed and retried;
//! and through the API: the history, one command, the shadow, and the problems a caller gets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use iotdp::api::access::Caller;
use iotdp::api::{ApiRequest, QueryApi};
use iotdp::commands::command::{CommandRequest, CommandSource, CommandStatus};
use iotdp::commands::ports::{CommandPortError, ShadowService, ShadowWrite};
use iotdp::commands::service::{CommandError, Commands};
use iotdp::commands::shadow::ShadowDocument;
use iotdp::devices::record::DeviceRecord;
use iotdp_memory::{
    MemoryAlertStates, MemoryCommands, MemoryQueryApi, MemoryRegistry, MemoryRules, MemoryShadows,
    MemoryStore,
};
use serde_json::{Map, Value, json};

const T0: i64 = 1_764_000_000_000;

fn patch(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

fn request(desired: Value, expires_in: Option<u64>, key: Option<&str>) -> CommandRequest {
    CommandRequest::new(patch(desired), expires_in, key.map(str::to_owned)).unwrap()
}

type MemoryCommandsService = Commands<Arc<MemoryShadows>, Arc<MemoryCommands>>;

fn commands() -> (MemoryCommandsService, Arc<MemoryShadows>) {
    let shadows = Arc::new(MemoryShadows::default());
    (
        Commands::new(shadows.clone(), Arc::new(MemoryCommands::default())),
        shadows,
    )
}

async fn status_of(commands: &MemoryCommandsService, device: &str, id: &str) -> CommandStatus {
    commands.get(device, id).await.unwrap().unwrap().status
}

#[tokio::test]
async fn a_command_is_pending_until_the_device_reports_it_applied() {
    let (commands, shadows) = commands();
    shadows.report("ac-1", json!({"setpoint": 20})).unwrap();
    let command = commands
        .issue(
            "ac-1",
            &request(json!({"setpoint": 21}), None, None),
            "ana",
            CommandSource::Api,
            T0,
        )
        .await
        .unwrap();
    assert_eq!(command.status, CommandStatus::Pending);
    // Written at the version it read (1, the device's report), so the shadow is now at 2.
    assert_eq!(command.shadow_version, Some(2));
    assert!(command.command_id.starts_with("cmd-"));
    assert_eq!(command.expires_at_ms, T0 + 86_400_000);
    let shadow = commands.shadow("ac-1").await.unwrap().unwrap();
    assert_eq!(shadow.delta(), Some(patch(json!({"setpoint": 21}))));

    // A report that does not show it yet settles nothing; the one that does delivers it.
    let settled = commands
        .observe_reported("ac-1", &patch(json!({"setpoint": 20.5})), T0 + 1_000)
        .await
        .unwrap();
    assert!(settled.is_empty());
    let settled = commands
        .observe_reported("ac-1", &patch(json!({"setpoint": 21.0})), T0 + 2_000)
        .await
        .unwrap();
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0].status, CommandStatus::Delivered);
    assert_eq!(settled[0].settled_at_ms, Some(T0 + 2_000));
    // Delivered is final: a later report changes nothing.
    assert!(
        commands
            .observe_reported("ac-1", &patch(json!({"setpoint": 19})), T0 + 3_000)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_device_already_in_the_asked_state_has_it_delivered_at_once() {
    let (commands, shadows) = commands();
    shadows.report("ac-1", json!({"mode": "eco"})).unwrap();
    let command = commands
        .issue(
            "ac-1",
            &request(json!({"mode": "eco"}), None, None),
            "ana",
            CommandSource::Api,
            T0,
        )
        .await
        .unwrap();
    assert_eq!(command.status, CommandStatus::Delivered);
}

#[tokio::test]
async fn the_same_idempotency_key_is_one_command_and_another_patch_under_it_is_refused() {
    let (commands, _) = commands();
    let first = commands
        .issue(
            "ac-1",
            &request(json!({"setpoint": 21}), None, Some("app-1")),
            "ana",
            CommandSource::Api,
            T0,
        )
        .await
        .unwrap();
    let again = commands
        .issue(
            "ac-1",
            &request(json!({"setpoint": 21}), None, Some("app-1")),
            "ana",
            CommandSource::Api,
            T0 + 5_000,
        )
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(commands.history("ac-1").await.unwrap().len(), 1);
    // One shadow write, not two.
    assert_eq!(commands.shadow("ac-1").await.unwrap().unwrap().version, 1);
    let reused = commands
        .issue(
            "ac-1",
            &request(json!({"setpoint": 25}), None, Some("app-1")),
            "ana",
            CommandSource::Api,
            T0 + 6_000,
        )
        .await
        .unwrap_err();
    assert!(matches!(reused, CommandError::KeyReused(_)), "{reused}");
    // The same key on another device is another command.
    commands
        .issue(
            "ac-2",
            &request(json!({"setpoint": 25}), None, Some("app-1")),
            "ana",
            CommandSource::Api,
            T0,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_newer_command_on_the_same_key_supersedes_the_pending_one() {
    let (commands, _) = commands();
    for (key, desired, at) in [
        ("a", json!({"setpoint": 21}), T0),
        ("b", json!({"fan": "high"}), T0 + 1),
        ("c", json!({"setpoint": 23}), T0 + 2),
    ] {
        commands
            .issue(
                "ac-1",
                &request(desired, None, Some(key)),
                "ana",
                CommandSource::Api,
                at,
            )
            .await
            .unwrap();
    }
    assert_eq!(
        status_of(&commands, "ac-1", "a").await,
        CommandStatus::Superseded
    );
    assert_eq!(
        commands
            .get("ac-1", "a")
            .await
            .unwrap()
            .unwrap()
            .detail
            .as_deref(),
        Some("superseded by c")
    );
    assert_eq!(
        status_of(&commands, "ac-1", "b").await,
        CommandStatus::Pending
    );
    // Newest first.
    let ids: Vec<String> = commands
        .history("ac-1")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.command_id)
        .collect();
    assert_eq!(ids, ["c", "b", "a"]);
}

#[tokio::test]
async fn an_expired_command_is_taken_back_out_of_desired_and_never_applies() {
    let (commands, shadows) = commands();
    commands
        .issue(
            "ac-1",
            &request(json!({"setpoint": 18, "eco": true}), Some(60), Some("old")),
            "ana",
            CommandSource::Api,
            T0,
        )
        .await
        .unwrap();
    // Someone changed eco since: that newer value stays.
    commands
        .issue(
            "ac-1",
            &request(json!({"eco": false}), None, Some("newer")),
            "ana",
            CommandSource::Api,
            T0 + 1_000,
        )
        .await
        .unwrap();
    assert_eq!(
        status_of(&commands, "ac-1", "old").await,
        CommandStatus::Superseded,
        "the newer command touched one of its keys"
    );
    commands
        .issue(
            "ac-2",
            &request(json!({"setpoint": 18}), Some(60), Some("old")),
            "ana",
            CommandSource::Api,
            T0,
        )
        .await
        .unwrap();
    // Not yet due.
    assert_eq!(commands.expire_due(T0 + 59_999).await.unwrap(), 0);
    assert_eq!(commands.expire_due(T0 + 60_000).await.unwrap(), 1);
    assert_eq!(
        status_of(&commands, "ac-2", "old").await,
        CommandStatus::Expired
    );
    let shadow = commands.shadow("ac-2").await.unwrap().unwrap();
    assert!(shadow.desired.is_empty(), "{:?}", shadow.desired);
    assert_eq!(
        shadow.delta(),
        None,
        "a device that comes back has nothing to apply"
    );
    // A device that reports the old value later does not revive it.
    shadows.report("ac-2", json!({"setpoint": 18})).unwrap();
    assert!(
        commands
            .observe_reported("ac-2", &patch(json!({"setpoint": 18})), T0 + 90_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        status_of(&commands, "ac-2", "old").await,
        CommandStatus::Expired
    );
}

#[tokio::test]
async fn a_report_after_the_deadline_that_shows_the_command_applied_is_delivered() {
    let (commands, _) = commands();
    commands
        .issue(
            "ac-1",
            &request(json!({"setpoint": 18}), Some(60), Some("k")),
            "ana",
            CommandSource::Api,
            T0,
        )
        .await
        .unwrap();
    let settled = commands
        .observe_reported("ac-1", &patch(json!({"setpoint": 18})), T0 + 120_000)
        .await
        .unwrap();
    assert_eq!(settled[0].status, CommandStatus::Delivered);
}

/// A shadow service that fails its first `failures` updates, then conflicts once, then
/// behaves.
struct Flaky {
    inner: MemoryShadows,
    failures: AtomicUsize,
    conflicts: AtomicUsize,
}

impl ShadowService for Flaky {
    async fn get(&self, device_id: &str) -> Result<Option<ShadowDocument>, CommandPortError> {
        self.inner.get(device_id).await
    }

    async fn update_desired(
        &self,
        device_id: &str,
        patch: &Map<String, Value>,
        expected_version: Option<u64>,
    ) -> Result<ShadowWrite, CommandPortError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(CommandPortError("IoT Data Plane unreachable".into()));
        }
        if self
            .conflicts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Ok(ShadowWrite::Conflict);
        }
        self.inner
            .update_desired(device_id, patch, expected_version)
            .await
    }
}

#[tokio::test]
async fn a_failed_shadow_write_is_recorded_and_the_same_key_retries_it() {
    let history = Arc::new(MemoryCommands::default());
    let commands = Commands::new(
        Flaky {
            inner: MemoryShadows::default(),
            failures: AtomicUsize::new(1),
            conflicts: AtomicUsize::new(1),
        },
        history.clone(),
    );
    let asked = request(json!({"setpoint": 21}), None, Some("app-7"));
    let failed = commands
        .issue("ac-1", &asked, "ana", CommandSource::Api, T0)
        .await
        .unwrap_err();
    assert!(
        failed.to_string().contains("same idempotency key"),
        "{failed}"
    );
    let recorded = commands.get("ac-1", "app-7").await.unwrap().unwrap();
    assert_eq!(recorded.status, CommandStatus::Failed);
    assert!(recorded.detail.unwrap().contains("unreachable"));
    // The retry meets a conflicting writer once, re-reads, and lands.
    let retried = commands
        .issue("ac-1", &asked, "ana", CommandSource::Api, T0 + 1_000)
        .await
        .unwrap();
    assert_eq!(retried.status, CommandStatus::Pending);
    assert_eq!(retried.issued_at_ms, T0 + 1_000);
    assert_eq!(history.all().len(), 1);
}

type Api = MemoryQueryApi;

fn api() -> (Api, Arc<MemoryShadows>) {
    let mut suspended = DeviceRecord::new("ac-9", "thermostat", T0);
    suspended.status = iotdp::devices::record::DeviceStatus::Suspended;
    let registry = Arc::new(MemoryRegistry::with([
        DeviceRecord::new("ac-1", "thermostat", T0),
        suspended,
    ]));
    let (commands, shadows) = commands();
    let api = QueryApi::new(
        registry,
        Arc::new(MemoryStore::new(10)),
        Arc::new(MemoryAlertStates::default()),
        Arc::new(MemoryRules::new(vec![])),
    )
    .with_commands(commands);
    (api, shadows)
}

async fn call(api: &Api, method: &str, path: &str, body: &str) -> (u16, Value) {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let response = api
        .handle(
            &ApiRequest {
                method: method.into(),
                path: path.into(),
                query: query.into(),
                body: body.as_bytes().to_vec(),
            },
            &Caller::admin("ops@example"),
            T0,
        )
        .await;
    (response.status, response.body)
}

#[tokio::test]
async fn the_api_issues_lists_and_shows_commands_and_the_shadow() {
    let (api, shadows) = api();
    shadows.report("ac-1", json!({"setpoint": 20})).unwrap();
    let (status, body) = call(
        &api,
        "POST",
        "/devices/ac-1/commands",
        r#"{"desired":{"setpoint":21},"expires_in":300,"idempotency_key":"app-1"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let command = &body["command"];
    assert_eq!(command["command_id"], "app-1");
    assert_eq!(command["status"], "pending");
    assert_eq!(command["issued_by"], "ops@example");
    assert_eq!(command["source"], "api");
    assert_eq!(command["expires_at"], "2025-11-24T16:05:00.000Z");
    assert_eq!(command["shadow_version"], 2);

    let (status, shadow) = call(&api, "GET", "/devices/ac-1/shadow", "").await;
    assert_eq!(status, 200);
    assert_eq!(shadow["desired"], json!({"setpoint": 21}));
    assert_eq!(shadow["reported"], json!({"setpoint": 20}));
    assert_eq!(shadow["delta"], json!({"setpoint": 21}));
    assert_eq!(shadow["version"], 2);

    for key in ["app-2", "app-3"] {
        let body = format!(r#"{{"desired":{{"mode":"{key}"}},"idempotency_key":"{key}"}}"#);
        assert_eq!(
            call(&api, "POST", "/devices/ac-1/commands", &body).await.0,
            200
        );
    }
    // Pages through the cursor, newest first; filtered by status.
    let (_, first) = call(&api, "GET", "/devices/ac-1/commands?limit=2", "").await;
    let ids = |page: &Value| -> Vec<String> {
        page["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["command_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&first).len(), 2);
    let next = first["next"].as_str().unwrap();
    let (_, second) = call(
        &api,
        "GET",
        &format!("/devices/ac-1/commands?limit=2&cursor={next}"),
        "",
    )
    .await;
    assert_eq!(second["next"], Value::Null);
    let mut all = ids(&first);
    all.extend(ids(&second));
    all.sort();
    assert_eq!(all, ["app-1", "app-2", "app-3"]);
    let (_, superseded) = call(&api, "GET", "/devices/ac-1/commands?status=superseded", "").await;
    assert_eq!(ids(&superseded), ["app-2"], "app-3 set mode after app-2");

    let (status, one) = call(&api, "GET", "/devices/ac-1/commands/app-1", "").await;
    assert_eq!(
        (status, &one["command"]["desired"]),
        (200, &json!({"setpoint": 21}))
    );
}

#[tokio::test]
async fn the_api_says_what_is_wrong_with_a_command() {
    let (api, _) = api();
    for (path, body, status, code) in [
        (
            "/devices/ac-1/commands",
            r#"{"desired":{}}"#,
            400,
            "invalid_command",
        ),
        (
            "/devices/ac-1/commands",
            r#"{"desired":{"a":1},"expires_in":0}"#,
            400,
            "invalid_command",
        ),
        (
            "/devices/ac-1/commands",
            r#"{"desired":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}"#,
            422,
            "invalid_command",
        ),
        (
            "/devices/ghost/commands",
            r#"{"desired":{"a":1}}"#,
            404,
            "unknown_device",
        ),
        (
            "/devices/ac-9/commands",
            r#"{"desired":{"a":1}}"#,
            409,
            "device_not_active",
        ),
    ] {
        let (got, answer) = call(&api, "POST", path, body).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{body}: {answer}"
        );
    }
    call(
        &api,
        "POST",
        "/devices/ac-1/commands",
        r#"{"desired":{"a":1},"idempotency_key":"k"}"#,
    )
    .await;
    let (status, reused) = call(
        &api,
        "POST",
        "/devices/ac-1/commands",
        r#"{"desired":{"a":2},"idempotency_key":"k"}"#,
    )
    .await;
    assert_eq!(
        (status, reused["code"].as_str()),
        (409, Some("idempotency_key_reused"))
    );
    let (status, missing) = call(&api, "GET", "/devices/ac-1/commands/nope", "").await;
    assert_eq!(
        (status, missing["code"].as_str()),
        (404, Some("unknown_command"))
    );
    let (status, cursor) = call(&api, "GET", "/devices/ac-1/commands?cursor=nope", "").await;
    assert_eq!(
        (status, cursor["code"].as_str()),
        (422, Some("invalid_parameter"))
    );
    // A device with no shadow yet: empty halves, version 0.
    let (_, shadow) = call(&api, "GET", "/devices/ac-9/shadow", "").await;
    assert_eq!(shadow["version"], 0);
    assert_eq!(shadow["desired"], json!({}));
}

/// Without commands configured, the routes say so (503) rather than pretend.
#[tokio::test]
async fn an_api_without_commands_says_they_are_not_configured() {
    let api = QueryApi::new(
        Arc::new(MemoryRegistry::with([DeviceRecord::new(
            "ac-1",
            "thermostat",
            T0,
        )])),
        Arc::new(MemoryStore::new(10)),
        Arc::new(MemoryAlertStates::default()),
        Arc::new(MemoryRules::new(vec![])),
    );
    let response = api
        .handle(
            &ApiRequest {
                method: "POST".into(),
                path: "/devices/ac-1/commands".into(),
                query: String::new(),
                body: br#"{"desired":{"a":1}}"#.to_vec(),
            },
            &Caller::admin("ops"),
            T0,
        )
        .await;
    assert_eq!(response.status, 503);
    assert_eq!(response.body["code"], "commands_unavailable");
    assert!(
        response.body["detail"]
            .as_str()
            .unwrap()
            .contains("COMMAND_TABLE")
    );
}
