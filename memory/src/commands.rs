//! In-memory shadows and command history, with the same rules as the deployed ones: shadow
//! updates through [`ShadowDocument::apply`] (versions, merge, 409), history writes
//! conditional on the stored status.

use std::collections::BTreeMap;
use std::sync::Mutex;

use iotdp::commands::command::{Command, CommandStatus};
use iotdp::commands::ports::{CommandPortError, CommandStore, Created, ShadowService, ShadowWrite};
use iotdp::commands::shadow::ShadowDocument;
use serde_json::{Map, Value, json};

fn poisoned() -> CommandPortError {
    CommandPortError("lock poisoned".into())
}

#[derive(Debug, Default)]
pub struct MemoryShadows(Mutex<BTreeMap<String, ShadowDocument>>);

impl MemoryShadows {
    /// What a device does: report `reported` into its shadow.
    pub fn report(&self, device_id: &str, reported: Value) -> Result<(), String> {
        let mut shadows = self.0.lock().map_err(|_| "lock poisoned".to_owned())?;
        shadows
            .entry(device_id.to_owned())
            .or_default()
            .apply(&json!({ "state": { "reported": reported } }), 0)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl ShadowService for MemoryShadows {
    async fn get(&self, device_id: &str) -> Result<Option<ShadowDocument>, CommandPortError> {
        Ok(self
            .0
            .lock()
            .map_err(|_| poisoned())?
            .get(device_id)
            .filter(|s| s.exists())
            .cloned())
    }

    async fn update_desired(
        &self,
        device_id: &str,
        patch: &Map<String, Value>,
        expected_version: Option<u64>,
    ) -> Result<ShadowWrite, CommandPortError> {
        let mut shadows = self.0.lock().map_err(|_| poisoned())?;
        let shadow = shadows.entry(device_id.to_owned()).or_default();
        let mut request = json!({ "state": { "desired": patch } });
        if let Some(version) = expected_version {
            request["version"] = json!(version);
        }
        match shadow.apply(&request, 0) {
            Ok(_) => Ok(ShadowWrite::Written {
                version: shadow.version,
            }),
            Err(e) if e.code == 409 => Ok(ShadowWrite::Conflict),
            Err(e) => Err(CommandPortError(e.to_string())),
        }
    }
}

/// The command history, keyed (device, command id).
#[derive(Debug, Default)]
pub struct MemoryCommands(Mutex<BTreeMap<(String, String), Command>>);

impl MemoryCommands {
    pub fn all(&self) -> Vec<Command> {
        self.0
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}

impl CommandStore for MemoryCommands {
    async fn create(&self, command: &Command) -> Result<Created, CommandPortError> {
        let mut all = self.0.lock().map_err(|_| poisoned())?;
        let key = (command.device_id.clone(), command.command_id.clone());
        if let Some(existing) = all.get(&key) {
            return Ok(Created::Exists(Box::new(existing.clone())));
        }
        all.insert(key, command.clone());
        Ok(Created::Created)
    }

    async fn get(
        &self,
        device_id: &str,
        command_id: &str,
    ) -> Result<Option<Command>, CommandPortError> {
        Ok(self
            .0
            .lock()
            .map_err(|_| poisoned())?
            .get(&(device_id.to_owned(), command_id.to_owned()))
            .cloned())
    }

    async fn for_device(&self, device_id: &str) -> Result<Vec<Command>, CommandPortError> {
        Ok(self
            .0
            .lock()
            .map_err(|_| poisoned())?
            .values()
            .filter(|c| c.device_id == device_id)
            .cloned()
            .collect())
    }

    async fn replace_if(
        &self,
        command: &Command,
        expected: CommandStatus,
    ) -> Result<bool, CommandPortError> {
        let mut all = self.0.lock().map_err(|_| poisoned())?;
        match all.get_mut(&(command.device_id.clone(), command.command_id.clone())) {
            Some(stored) if stored.status == expected => {
                *stored = command.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn pending_due(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Command>, CommandPortError> {
        let mut due: Vec<Command> = self
            .0
            .lock()
            .map_err(|_| poisoned())?
            .values()
            .filter(|c| c.status == CommandStatus::Pending && c.expires_at_ms <= now_ms)
            .cloned()
            .collect();
        due.sort_by_key(|c| c.expires_at_ms);
        due.truncate(limit);
        Ok(due)
    }
}
