//! The commands use case: issue a command through the device's shadow and record it, learn
//! from the shadow's documents when the device applied it, and expire what waited too long.

use serde_json::{Map, Value};

use super::command::{Command, CommandRequest, CommandSource, CommandStatus};
use super::ports::{CommandPortError, CommandStore, Created, ShadowService, ShadowWrite};
use super::shadow::ShadowDocument;
use crate::alerting::ports::{AlertKey, AlertPortError, DeviceCommander};

/// How often a shadow write is retried when another writer moved the version in between.
const MAX_VERSION_RETRIES: usize = 5;
/// Expired commands taken back per sweep (the next sweep takes the rest).
const SWEEP_LIMIT: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error(
        "idempotency key '{0}' was already used for a different command on this device: choose a new key, or send the same desired patch to get the first command back"
    )]
    KeyReused(String),
    #[error("{0}")]
    Unavailable(String),
}

impl From<CommandPortError> for CommandError {
    fn from(e: CommandPortError) -> Self {
        Self::Unavailable(e.0)
    }
}

/// Commands over a shadow service and a history store.
pub struct Commands<S, K> {
    shadows: S,
    history: K,
}

impl<S: ShadowService, K: CommandStore> Commands<S, K> {
    pub fn new(shadows: S, history: K) -> Self {
        Self { shadows, history }
    }

    /// Issue `request` to `device_id`. The same idempotency key with the same patch returns the
    /// first command (retrying its shadow write if that had failed); with another patch it is
    /// [`CommandError::KeyReused`].
    pub async fn issue(
        &self,
        device_id: &str,
        request: &CommandRequest,
        issued_by: &str,
        source: CommandSource,
        now_ms: i64,
    ) -> Result<Command, CommandError> {
        let command_id = request
            .idempotency_key
            .clone()
            .unwrap_or_else(|| format!("cmd-{now_ms:011x}-{:08x}", fastrand::u32(..)));
        let command = Command {
            device_id: device_id.to_owned(),
            command_id,
            desired: request.desired.clone(),
            status: CommandStatus::Pending,
            source,
            issued_by: issued_by.to_owned(),
            issued_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(request.expires_in_seconds as i64 * 1_000),
            shadow_version: None,
            settled_at_ms: None,
            detail: None,
        };
        let (command, expected) = match self.history.create(&command).await? {
            Created::Created => (command, CommandStatus::Pending),
            Created::Exists(existing) if existing.desired != command.desired => {
                return Err(CommandError::KeyReused(existing.command_id));
            }
            Created::Exists(existing) if existing.status == CommandStatus::Failed => {
                // A retry of a command whose shadow write failed: try again, from now.
                let retried = Command {
                    status: CommandStatus::Pending,
                    settled_at_ms: None,
                    detail: None,
                    issued_at_ms: now_ms,
                    expires_at_ms: command.expires_at_ms,
                    ..*existing
                };
                (retried, CommandStatus::Failed)
            }
            Created::Exists(existing) => return Ok(*existing),
        };
        self.deliver(command, expected, now_ms).await
    }

    /// Write the command's patch into the shadow and record the outcome.
    async fn deliver(
        &self,
        mut command: Command,
        expected: CommandStatus,
        now_ms: i64,
    ) -> Result<Command, CommandError> {
        let written = self
            .write_desired(&command.device_id, &command.desired)
            .await;
        let (version, shadow) = match written {
            Ok(found) => found,
            Err(e) => {
                command.status = CommandStatus::Failed;
                command.settled_at_ms = Some(now_ms);
                command.detail = Some(format!("the shadow update failed: {e}"));
                self.history.replace_if(&command, expected).await?;
                return Err(CommandError::Unavailable(format!(
                    "command {} to {} was recorded as failed: {e}; send it again with the same idempotency key to retry",
                    command.command_id, command.device_id
                )));
            }
        };
        command.shadow_version = Some(version);
        // A device already in the asked-for state has nothing to apply.
        if let Some(shadow) = &shadow
            && command.settle(&shadow.reported, now_ms) == Some(CommandStatus::Delivered)
        {
            command.status = CommandStatus::Delivered;
            command.settled_at_ms = Some(now_ms);
        }
        self.history.replace_if(&command, expected).await?;
        self.supersede_older(&command, now_ms).await?;
        tracing::info!(
            audit = "command",
            device_id = %command.device_id,
            command_id = %command.command_id,
            source = command.source.as_str(),
            issued_by = %command.issued_by,
            shadow_version = version,
            status = command.status.as_str(),
            "command issued"
        );
        Ok(command)
    }

    /// Merge `patch` into the shadow's desired state at the version just read, re-reading on
    /// a conflict. Returns the new version and the shadow as it was before the write.
    async fn write_desired(
        &self,
        device_id: &str,
        patch: &Map<String, Value>,
    ) -> Result<(u64, Option<ShadowDocument>), CommandPortError> {
        for _ in 0..MAX_VERSION_RETRIES {
            let shadow = self.shadows.get(device_id).await?;
            let expected = shadow.as_ref().map(|s| s.version);
            match self
                .shadows
                .update_desired(device_id, patch, expected)
                .await?
            {
                ShadowWrite::Written { version } => return Ok((version, shadow)),
                ShadowWrite::Conflict => continue,
            }
        }
        Err(CommandPortError(format!(
            "the shadow of {device_id} kept changing under {MAX_VERSION_RETRIES} attempts to update it"
        )))
    }

    async fn supersede_older(&self, newer: &Command, now_ms: i64) -> Result<(), CommandError> {
        for older in self.history.for_device(&newer.device_id).await? {
            if older.command_id != newer.command_id
                && older.issued_at_ms <= newer.issued_at_ms
                && older.superseded_by(&newer.desired)
            {
                let superseded = Command {
                    status: CommandStatus::Superseded,
                    settled_at_ms: Some(now_ms),
                    detail: Some(format!("superseded by {}", newer.command_id)),
                    ..older
                };
                self.history
                    .replace_if(&superseded, CommandStatus::Pending)
                    .await?;
            }
        }
        Ok(())
    }

    /// The device's shadow changed (its `update/documents`): settle its pending commands
    /// against what it now reports. Returns the commands that changed status.
    pub async fn observe_reported(
        &self,
        device_id: &str,
        reported: &Map<String, Value>,
        now_ms: i64,
    ) -> Result<Vec<Command>, CommandError> {
        let mut settled = Vec::new();
        for command in self.history.for_device(device_id).await? {
            match command.settle(reported, now_ms) {
                Some(CommandStatus::Delivered) => {
                    let delivered = Command {
                        status: CommandStatus::Delivered,
                        settled_at_ms: Some(now_ms),
                        ..command
                    };
                    if self
                        .history
                        .replace_if(&delivered, CommandStatus::Pending)
                        .await?
                    {
                        settled.push(delivered);
                    }
                }
                Some(_) => settled.extend(self.expire(command, now_ms).await?),
                None => {}
            }
        }
        Ok(settled)
    }

    /// Expire every pending command past its deadline (the scheduled sweep). Returns how many.
    pub async fn expire_due(&self, now_ms: i64) -> Result<usize, CommandError> {
        let mut expired = 0;
        for command in self.history.pending_due(now_ms, SWEEP_LIMIT).await? {
            let shadow = self.shadows.get(&command.device_id).await?;
            let reported = shadow.map(|s| s.reported).unwrap_or_default();
            match command.settle(&reported, now_ms) {
                Some(CommandStatus::Delivered) => {
                    self.observe_reported(&command.device_id, &reported, now_ms)
                        .await?;
                }
                Some(_) => expired += usize::from(self.expire(command, now_ms).await?.is_some()),
                None => {}
            }
        }
        Ok(expired)
    }

    /// Take an expired command's keys back out of `desired`, then record it expired, so a
    /// device that comes back later gets no delta for it.
    async fn expire(&self, command: Command, now_ms: i64) -> Result<Option<Command>, CommandError> {
        for _ in 0..MAX_VERSION_RETRIES {
            let Some(shadow) = self.shadows.get(&command.device_id).await? else {
                break;
            };
            let Some(withdrawal) = command.withdrawal(&shadow.desired) else {
                break;
            };
            match self
                .shadows
                .update_desired(&command.device_id, &withdrawal, Some(shadow.version))
                .await?
            {
                ShadowWrite::Written { .. } => break,
                ShadowWrite::Conflict => continue,
            }
        }
        let expired = Command {
            status: CommandStatus::Expired,
            settled_at_ms: Some(now_ms),
            ..command
        };
        Ok(self
            .history
            .replace_if(&expired, CommandStatus::Pending)
            .await?
            .then_some(expired))
    }

    pub async fn shadow(&self, device_id: &str) -> Result<Option<ShadowDocument>, CommandError> {
        Ok(self.shadows.get(device_id).await?)
    }

    pub async fn get(
        &self,
        device_id: &str,
        command_id: &str,
    ) -> Result<Option<Command>, CommandError> {
        Ok(self.history.get(device_id, command_id).await?)
    }

    /// A device's commands, newest first.
    pub async fn history(&self, device_id: &str) -> Result<Vec<Command>, CommandError> {
        let mut commands = self.history.for_device(device_id).await?;
        commands
            .sort_by(|a, b| (b.issued_at_ms, &b.command_id).cmp(&(a.issued_at_ms, &a.command_id)));
        Ok(commands)
    }
}

/// Alert rules' `on_alarm`/`on_ok` patches go through the same path as the API's commands, so
/// they are versioned, tracked to delivery and listed in the same history.
impl<S: ShadowService, K: CommandStore> DeviceCommander for Commands<S, K> {
    async fn update_desired(
        &self,
        key: &AlertKey,
        transition_version: u64,
        desired: &Value,
    ) -> Result<(), AlertPortError> {
        let patch = desired.as_object().cloned().unwrap_or_default();
        // One command per state transition: a redelivered batch names the same command.
        let idempotency_key = format!("rule-{}-{transition_version}", key.rule_id);
        let request = CommandRequest::new(
            patch,
            None,
            super::command::valid_key(&idempotency_key).then_some(idempotency_key),
        )
        .map_err(|e| AlertPortError(e.to_string()))?;
        self.issue(
            &key.device_id,
            &request,
            &format!("rule:{}", key.rule_id),
            CommandSource::Rule,
            chrono::Utc::now().timestamp_millis(),
        )
        .await
        .map(|_| ())
        .map_err(|e| AlertPortError(e.to_string()))
    }
}
