//! Operator actions on alerts: acknowledge, snooze, disable, enable, reset (the CLI and the
//! HTTP API call these). Each is a read, the pure [`operate`], and a write conditional on the
//! version read, so an action never overwrites a transition made meanwhile.

use crate::alerting::event::AlarmState;

use crate::alerting::ports::{AlertKey, AlertPortError, AlertStateStore, ConditionalWrite};
use crate::alerting::state_machine::{AlertState, OperatorAction, operate};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertActionError {
    #[error("no alert state for device '{}' and rule '{}': nothing has been evaluated for that pair", .0.device_id, .0.rule_id)]
    NotFound(AlertKey),
    #[error("device '{}' / rule '{}' is {}: {} applies to {}", .key.device_id, .key.rule_id, .state.as_str(), .action.name(), .action.applies_to())]
    WrongState {
        key: AlertKey,
        state: AlarmState,
        action: OperatorAction,
    },
    #[error("device '{}' / rule '{}' is at version {current}, not {expected}: read it again and decide again", .key.device_id, .key.rule_id)]
    VersionMismatch {
        key: AlertKey,
        expected: u64,
        current: u64,
    },
    #[error("the alert state kept changing while applying the action; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] AlertPortError),
}

/// Apply `action` to the pair `key`. With `expected_version`, only if the state is still at
/// that version (what the caller read and decided on); without, re-read and retry a few times
/// if a reading changes the state meanwhile. `create_missing`: a pair never evaluated starts
/// from OK (snoozing or disabling a pair before its first reading); the caller has checked the
/// device and rule exist. Returns the state written.
pub async fn act_on_alert<S: AlertStateStore>(
    states: &S,
    key: &AlertKey,
    action: OperatorAction,
    expected_version: Option<u64>,
    create_missing: bool,
) -> Result<AlertState, AlertActionError> {
    for _ in 0..3 {
        let mut state = match states
            .get_many(std::slice::from_ref(key))
            .await?
            .pop()
            .flatten()
        {
            Some(state) => state,
            None if create_missing => AlertState::default(),
            None => return Err(AlertActionError::NotFound(key.clone())),
        };
        let read = state.version;
        if let Some(expected) = expected_version
            && expected != read
        {
            return Err(AlertActionError::VersionMismatch {
                key: key.clone(),
                expected,
                current: read,
            });
        }
        operate(&mut state, action).map_err(|current| AlertActionError::WrongState {
            key: key.clone(),
            state: current,
            action,
        })?;
        state.version = read + 1;
        match states.put_if_version(key, &state, read).await? {
            ConditionalWrite::Written => return Ok(state),
            // Re-read: with an expected version, the next round reports the version now stored.
            ConditionalWrite::Conflict => {}
        }
    }
    Err(AlertActionError::Contended)
}

/// ALARM → ACKNOWLEDGED (no re-notification until it clears), LATCHED → OK.
pub async fn acknowledge_alert<S: AlertStateStore>(
    states: &S,
    key: &AlertKey,
) -> Result<AlertState, AlertActionError> {
    act_on_alert(states, key, OperatorAction::Acknowledge, None, false).await
}
