//! A command: a desired-state patch for one device, who asked for it, and where it stands.
//!
//! `pending → delivered` when the device's reported state shows every change the patch asks
//! for; `pending → expired` when its deadline passes first (its keys are then taken back out of
//! `desired`, so a device that reconnects later never applies it); `pending → superseded`
//! when a newer command changes one of its keys before the device applied it. A command whose
//! shadow write failed is `failed`, and issuing it again with the same idempotency key retries.

use serde_json::{Map, Value};

use super::shadow::{MAX_STATE_DEPTH, depth, satisfies};

/// Longest a command may wait for its device: 7 days, what a client can reasonably still mean.
pub const MAX_EXPIRES_IN_SECONDS: u64 = 7 * 86_400;
/// When the caller names no deadline: 1 day.
pub const DEFAULT_EXPIRES_IN_SECONDS: u64 = 86_400;
/// The largest patch, in bytes of JSON (the shadow's whole state is limited to 8 KiB).
pub const MAX_PATCH_BYTES: usize = 4 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandStatus {
    Pending,
    Delivered,
    Expired,
    Superseded,
    Failed,
}

impl CommandStatus {
    pub const ALL: [CommandStatus; 5] = [
        Self::Pending,
        Self::Delivered,
        Self::Expired,
        Self::Superseded,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Expired => "expired",
            Self::Superseded => "superseded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// `true` once nothing will change the command any more.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending)
    }
}

/// Who caused the command: a caller of the API, or an alert rule's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandSource {
    Api,
    Rule,
}

impl CommandSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Rule => "rule",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "api" => Some(Self::Api),
            "rule" => Some(Self::Rule),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub device_id: String,
    /// The idempotency key when the caller gave one (so a retry names the same command),
    /// otherwise generated.
    pub command_id: String,
    pub desired: Map<String, Value>,
    pub status: CommandStatus,
    pub source: CommandSource,
    /// The caller's identity, or `rule:<rule id>`.
    pub issued_by: String,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
    /// The shadow version the desired patch was written at.
    pub shadow_version: Option<u64>,
    /// When it became delivered, expired, superseded or failed.
    pub settled_at_ms: Option<i64>,
    /// Why, for `failed` and `superseded` (the superseding command's id).
    pub detail: Option<String>,
}

impl Command {
    /// The status `reported` (the device's reported state) and `now_ms` give a pending command.
    pub fn settle(&self, reported: &Map<String, Value>, now_ms: i64) -> Option<CommandStatus> {
        if self.status != CommandStatus::Pending {
            return None;
        }
        if satisfies(reported, &self.desired) {
            Some(CommandStatus::Delivered)
        } else if now_ms >= self.expires_at_ms {
            Some(CommandStatus::Expired)
        } else {
            None
        }
    }

    /// `true` when `newer` changes a key this pending command set, so this one can never be
    /// delivered as issued.
    pub fn superseded_by(&self, newer: &Map<String, Value>) -> bool {
        self.status == CommandStatus::Pending && self.desired.keys().any(|k| newer.contains_key(k))
    }

    /// The patch that takes an expired command back out of `desired`: `null` for each of its
    /// keys whose desired value is still the one it set (a newer value stays).
    pub fn withdrawal(&self, desired: &Map<String, Value>) -> Option<Map<String, Value>> {
        let patch: Map<String, Value> = self
            .desired
            .iter()
            .filter(|(key, value)| desired.get(*key) == Some(value))
            .map(|(key, _)| (key.clone(), Value::Null))
            .collect();
        (!patch.is_empty()).then_some(patch)
    }
}

/// Why a command request was refused: it does not have the documented shape (400), or it
/// has it but no shadow could hold it (422: too deep, too large).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandRequestError {
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    TooLarge(String),
}

/// `POST /devices/{id}/commands`, validated: `{"desired": {...}, "expires_in": 300,
/// "idempotency_key": "app-42"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRequest {
    pub desired: Map<String, Value>,
    pub expires_in_seconds: u64,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    desired: Value,
    #[serde(default, deserialize_with = "crate::domain::whole_number::present")]
    expires_in: Option<u64>,
    #[serde(default, deserialize_with = "crate::domain::present")]
    idempotency_key: Option<String>,
}

impl CommandRequest {
    /// Parse and validate a request body; the error says what to change.
    pub fn parse(body: &[u8]) -> Result<Self, CommandRequestError> {
        let body: RequestBody = serde_json::from_slice(body).map_err(|e| {
            CommandRequestError::Malformed(format!(
                "the body must be {{\"desired\": {{...}}, \"expires_in\": seconds, \"idempotency_key\": \"...\"}}: {e}"
            ))
        })?;
        let desired = match body.desired {
            Value::Object(map) if !map.is_empty() => map,
            _ => {
                return Err(CommandRequestError::Malformed(
                    "'desired' must be a non-empty JSON object: the shadow's desired-state patch"
                        .into(),
                ));
            }
        };
        Self::new(desired, body.expires_in, body.idempotency_key)
    }

    /// A request from its parts, validated as [`Self::parse`] does.
    pub fn new(
        desired: Map<String, Value>,
        expires_in_seconds: Option<u64>,
        idempotency_key: Option<String>,
    ) -> Result<Self, CommandRequestError> {
        let patch = Value::Object(desired);
        if depth(&patch) > MAX_STATE_DEPTH {
            return Err(CommandRequestError::TooLarge(format!(
                "'desired' nests deeper than {MAX_STATE_DEPTH} levels, the shadow's limit"
            )));
        }
        let size = patch.to_string().len();
        if size > MAX_PATCH_BYTES {
            return Err(CommandRequestError::TooLarge(format!(
                "'desired' is {size} bytes of JSON; at most {MAX_PATCH_BYTES} fit a shadow"
            )));
        }
        let Value::Object(desired) = patch else {
            unreachable!("built from a map above")
        };
        let expires_in_seconds = expires_in_seconds.unwrap_or(DEFAULT_EXPIRES_IN_SECONDS);
        if !(1..=MAX_EXPIRES_IN_SECONDS).contains(&expires_in_seconds) {
            return Err(CommandRequestError::Malformed(format!(
                "'expires_in' is {expires_in_seconds}: it must be 1 to {MAX_EXPIRES_IN_SECONDS} seconds"
            )));
        }
        if let Some(key) = &idempotency_key
            && !valid_key(key)
        {
            return Err(CommandRequestError::Malformed(format!(
                "'idempotency_key' '{key}' must be 1 to 64 letters, digits, '-', '_' or '.', not starting with 'cmd-'"
            )));
        }
        Ok(Self {
            desired,
            expires_in_seconds,
            idempotency_key,
        })
    }
}

/// Idempotency keys become command ids, so they keep to characters that need no escaping and
/// stay clear of the `cmd-` prefix of generated ids.
pub fn valid_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && !key.starts_with("cmd-")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn command(desired: Value) -> Command {
        Command {
            device_id: "ac-1".into(),
            command_id: "c1".into(),
            desired: desired.as_object().cloned().unwrap(),
            status: CommandStatus::Pending,
            source: CommandSource::Api,
            issued_by: "app".into(),
            issued_at_ms: 0,
            expires_at_ms: 1_000,
            shadow_version: Some(1),
            settled_at_ms: None,
            detail: None,
        }
    }

    fn obj(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_command_is_delivered_when_reported_matches_and_expires_otherwise() {
        let c = command(json!({"setpoint": 21}));
        assert_eq!(c.settle(&obj(json!({"setpoint": 20})), 10), None);
        assert_eq!(
            c.settle(&obj(json!({"setpoint": 21.0})), 10),
            Some(CommandStatus::Delivered)
        );
        assert_eq!(
            c.settle(&obj(json!({"setpoint": 20})), 1_000),
            Some(CommandStatus::Expired)
        );
        // Applied in time but only learnt of late: still delivered.
        assert_eq!(
            c.settle(&obj(json!({"setpoint": 21})), 5_000),
            Some(CommandStatus::Delivered)
        );
    }

    #[test]
    fn a_newer_command_on_the_same_key_supersedes() {
        let c = command(json!({"setpoint": 21, "fan": 2}));
        assert!(c.superseded_by(&obj(json!({"setpoint": 23}))));
        assert!(!c.superseded_by(&obj(json!({"mode": "eco"}))));
    }

    #[test]
    fn withdrawal_clears_only_values_the_command_still_holds() {
        let c = command(json!({"setpoint": 21, "fan": 2}));
        assert_eq!(
            c.withdrawal(&obj(json!({"setpoint": 21, "fan": 3}))),
            Some(obj(json!({"setpoint": null})))
        );
        assert_eq!(c.withdrawal(&obj(json!({"fan": 3}))), None);
    }

    #[test]
    fn requests_are_validated_with_what_to_change() {
        let ok = CommandRequest::parse(
            br#"{"desired":{"setpoint":21},"expires_in":60.0,"idempotency_key":"app-1"}"#,
        )
        .unwrap();
        assert_eq!(ok.expires_in_seconds, 60);
        assert_eq!(ok.idempotency_key.as_deref(), Some("app-1"));
        for (body, says) in [
            (r#"{"desired":{}}"#, "non-empty"),
            (r#"{"desired":[1]}"#, "non-empty"),
            (r#"{"desired":{"a":1},"expires_in":0}"#, "expires_in"),
            (r#"{"desired":{"a":1},"expires_in":null}"#, "body must be"),
            (
                r#"{"desired":{"a":1},"idempotency_key":"a b"}"#,
                "idempotency_key",
            ),
            (r#"{"desired":{"a":1},"colour":1}"#, "colour"),
            (
                r#"{"desired":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}"#,
                "deeper",
            ),
        ] {
            let error = CommandRequest::parse(body.as_bytes()).unwrap_err();
            let too_large = matches!(error, CommandRequestError::TooLarge(_));
            assert_eq!(too_large, says == "deeper", "{body}: {error:?}");
            assert!(error.to_string().contains(says), "{body}: {error}");
        }
    }
}
