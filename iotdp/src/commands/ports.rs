//! Commands' ports: the device shadow (IoT Data Plane) and the command history (DynamoDB).

use std::future::Future;

use serde_json::{Map, Value};

use super::command::{Command, CommandStatus};
use super::shadow::ShadowDocument;

/// Any failure of a commands dependency, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CommandPortError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowWrite {
    /// Accepted; the shadow is now at this version.
    Written { version: u64 },
    /// The shadow moved past the expected version: read it again.
    Conflict,
}

/// Device shadows (the classic, unnamed shadow of each thing).
pub trait ShadowService: Send + Sync {
    /// The shadow, or `None` when the device has none yet.
    fn get(
        &self,
        device_id: &str,
    ) -> impl Future<Output = Result<Option<ShadowDocument>, CommandPortError>> + Send;

    /// Merge `patch` into `desired` if the shadow is still at `expected_version` (`None`: it
    /// does not exist yet, so no version can be named).
    fn update_desired(
        &self,
        device_id: &str,
        patch: &Map<String, Value>,
        expected_version: Option<u64>,
    ) -> impl Future<Output = Result<ShadowWrite, CommandPortError>> + Send;
}

forward_through_arc!(ShadowService {
    fn get(&self, device_id: &str) -> impl Future<Output = Result<Option<ShadowDocument>, CommandPortError>> + Send;
    fn update_desired(&self, device_id: &str, patch: &Map<String, Value>, expected_version: Option<u64>) -> impl Future<Output = Result<ShadowWrite, CommandPortError>> + Send;
});

#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    Created,
    /// A command with that id was already there (the same idempotency key): this one.
    Exists(Box<Command>),
}

/// The command history, one item per (device, command id).
pub trait CommandStore: Send + Sync {
    /// Store `command` unless its id is taken.
    fn create(
        &self,
        command: &Command,
    ) -> impl Future<Output = Result<Created, CommandPortError>> + Send;

    fn get(
        &self,
        device_id: &str,
        command_id: &str,
    ) -> impl Future<Output = Result<Option<Command>, CommandPortError>> + Send;

    /// Every command of one device that the history still keeps, in any order.
    fn for_device(
        &self,
        device_id: &str,
    ) -> impl Future<Output = Result<Vec<Command>, CommandPortError>> + Send;

    /// Replace the stored command if its status is still `expected`; `false` when it moved on.
    fn replace_if(
        &self,
        command: &Command,
        expected: CommandStatus,
    ) -> impl Future<Output = Result<bool, CommandPortError>> + Send;

    /// Pending commands whose deadline is at or before `now_ms`, at most `limit`.
    fn pending_due(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Command>, CommandPortError>> + Send;
}

forward_through_arc!(CommandStore {
    fn create(&self, command: &Command) -> impl Future<Output = Result<Created, CommandPortError>> + Send;
    fn get(&self, device_id: &str, command_id: &str) -> impl Future<Output = Result<Option<Command>, CommandPortError>> + Send;
    fn for_device(&self, device_id: &str) -> impl Future<Output = Result<Vec<Command>, CommandPortError>> + Send;
    fn replace_if(&self, command: &Command, expected: CommandStatus) -> impl Future<Output = Result<bool, CommandPortError>> + Send;
    fn pending_due(&self, now_ms: i64, limit: usize) -> impl Future<Output = Result<Vec<Command>, CommandPortError>> + Send;
});

/// For an API built without commands: every call says so (a 503 naming what is missing).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoShadows;

/// The history half of [`NoShadows`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCommandHistory;

fn not_configured() -> CommandPortError {
    CommandPortError("commands are not configured here (no shadow service or COMMAND_TABLE)".into())
}

impl ShadowService for NoShadows {
    async fn get(&self, _: &str) -> Result<Option<ShadowDocument>, CommandPortError> {
        Err(not_configured())
    }

    async fn update_desired(
        &self,
        _: &str,
        _: &Map<String, Value>,
        _: Option<u64>,
    ) -> Result<ShadowWrite, CommandPortError> {
        Err(not_configured())
    }
}

impl CommandStore for NoCommandHistory {
    async fn create(&self, _: &Command) -> Result<Created, CommandPortError> {
        Err(not_configured())
    }

    async fn get(&self, _: &str, _: &str) -> Result<Option<Command>, CommandPortError> {
        Err(not_configured())
    }

    async fn for_device(&self, _: &str) -> Result<Vec<Command>, CommandPortError> {
        Err(not_configured())
    }

    async fn replace_if(&self, _: &Command, _: CommandStatus) -> Result<bool, CommandPortError> {
        Err(not_configured())
    }

    async fn pending_due(&self, _: i64, _: usize) -> Result<Vec<Command>, CommandPortError> {
        Err(not_configured())
    }
}
