//! `/devices/{id}/commands` and `/devices/{id}/shadow`: commands through the device's shadow,
//! their history and status, and the shadow itself (desired, reported, delta, version).

use serde_json::{Value, json};

use super::QueryApi;
use super::access::Access;
use super::params::{Params, rfc3339};
use super::problem::{Problem, ProblemCode, commands_problem};
use crate::commands::command::{
    Command, CommandRequest, CommandRequestError, CommandSource, CommandStatus,
};
use crate::commands::ports::{CommandStore, ShadowService};
use crate::commands::service::CommandError;
use crate::commands::shadow::ShadowDocument;
use crate::devices::ports::DeviceRegistry;
use crate::devices::record::DeviceStatus;

impl<R, T, A, U, S, K> QueryApi<R, T, A, U, S, K>
where
    R: DeviceRegistry,
    S: ShadowService,
    K: CommandStore,
{
    /// `POST /devices/{id}/commands`: `{"desired": {...}, "expires_in": 300,
    /// "idempotency_key": "..."}` → the command, `pending` until the device reports it applied.
    pub(super) async fn issue_command(
        &self,
        device_id: &str,
        body: &[u8],
        issued_by: &str,
        now_ms: i64,
        access: &Access,
    ) -> Result<Value, Problem> {
        let device = self.visible(device_id, access).await?;
        let request = CommandRequest::parse(body).map_err(|e| Problem {
            status: match e {
                CommandRequestError::Malformed(_) => 400,
                CommandRequestError::TooLarge(_) => 422,
            },
            code: ProblemCode::InvalidCommand,
            detail: e.to_string(),
        })?;
        if device.status != DeviceStatus::Active {
            return Err(Problem {
                status: 409,
                code: ProblemCode::DeviceNotActive,
                detail: format!(
                    "device '{device_id}' is {}: it takes no commands; POST /devices/{device_id}/resume first",
                    device.status.as_str()
                ),
            });
        }
        match self
            .commands
            .issue(device_id, &request, issued_by, CommandSource::Api, now_ms)
            .await
        {
            Ok(command) => Ok(json!({ "command": command_json(&command) })),
            Err(e @ CommandError::KeyReused(_)) => Err(Problem {
                status: 409,
                code: ProblemCode::IdempotencyKeyReused,
                detail: e.to_string(),
            }),
            Err(e) => Err(commands_problem(e)),
        }
    }

    /// `GET /devices/{id}/commands?status=&limit=&cursor=`: newest first.
    pub(super) async fn list_commands(
        &self,
        device_id: &str,
        params: &Params,
        access: &Access,
    ) -> Result<Value, Problem> {
        self.visible(device_id, access).await?;
        let limit = params.limit()?;
        let status = params
            .value("status")?
            .map(|s| {
                CommandStatus::parse(s).ok_or_else(|| {
                    Problem::invalid(format!(
                        "status '{s}' must be pending, delivered, expired, superseded or failed"
                    ))
                })
            })
            .transpose()?;
        let history = self
            .commands
            .history(device_id)
            .await
            .map_err(commands_problem)?;
        // An empty cursor is the first page, as on the other lists.
        let start = match params.get("cursor").filter(|c| !c.is_empty()) {
            None => 0,
            Some(cursor) => {
                history
                    .iter()
                    .position(|c| c.command_id == cursor)
                    .ok_or_else(|| {
                        Problem::unprocessable(
                            ProblemCode::InvalidParameter,
                            format!("cursor '{cursor}' is not a command of {device_id}: use the 'next' a page returned"),
                        )
                    })?
                    + 1
            }
        };
        let mut page: Vec<&Command> = history[start..]
            .iter()
            .filter(|c| status.is_none_or(|s| c.status == s))
            .take(limit + 1)
            .collect();
        let next = (page.len() > limit).then(|| {
            page.truncate(limit);
            page.last().map(|c| c.command_id.clone())
        });
        Ok(json!({
            "commands": page.into_iter().map(command_json).collect::<Vec<_>>(),
            "next": next.flatten(),
        }))
    }

    pub(super) async fn get_command(
        &self,
        device_id: &str,
        command_id: &str,
        access: &Access,
    ) -> Result<Value, Problem> {
        self.visible(device_id, access).await?;
        match self
            .commands
            .get(device_id, command_id)
            .await
            .map_err(commands_problem)?
        {
            Some(command) => Ok(json!({ "command": command_json(&command) })),
            None => Err(Problem::not_found(
                ProblemCode::UnknownCommand,
                format!(
                    "device '{device_id}' has no command '{command_id}': see GET /devices/{device_id}/commands"
                ),
            )),
        }
    }

    /// `GET /devices/{id}/shadow`: what was asked, what the device reports, what it has yet
    /// to apply, and the version (0 before the first update).
    pub(super) async fn get_shadow(
        &self,
        device_id: &str,
        access: &Access,
    ) -> Result<Value, Problem> {
        self.visible(device_id, access).await?;
        let shadow = self
            .commands
            .shadow(device_id)
            .await
            .map_err(commands_problem)?
            .unwrap_or_default();
        Ok(shadow_json(device_id, &shadow))
    }
}

/// A shadow as the API, the CLI and the console show it.
pub fn shadow_json(device_id: &str, shadow: &ShadowDocument) -> Value {
    json!({
        "device_id": device_id,
        "desired": shadow.desired,
        "reported": shadow.reported,
        "delta": shadow.delta().unwrap_or_default(),
        "version": shadow.version,
        "updated": (shadow.timestamp > 0).then(|| rfc3339(shadow.timestamp * 1_000)),
    })
}

/// A command as the API, the CLI and the console show it.
pub fn command_json(command: &Command) -> Value {
    json!({
        "device_id": command.device_id,
        "command_id": command.command_id,
        "desired": Value::Object(command.desired.clone()),
        "status": command.status.as_str(),
        "source": command.source.as_str(),
        "issued_by": command.issued_by,
        "issued_at": rfc3339(command.issued_at_ms),
        "expires_at": rfc3339(command.expires_at_ms),
        "shadow_version": command.shadow_version,
        "settled_at": command.settled_at_ms.map(rfc3339),
        "detail": command.detail,
    })
}
