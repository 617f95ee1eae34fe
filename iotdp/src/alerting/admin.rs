//! Operator actions on alerts (the CLI and, later, the HTTP API call these).

use crate::alerting::event::AlarmState;

use crate::alerting::ports::{AlertKey, AlertPortError, AlertStateStore, ConditionalWrite};
use crate::alerting::state_machine::acknowledge;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("no alert state for device '{}' and rule '{}': nothing has been evaluated for that pair", .0.device_id, .0.rule_id)]
    NotFound(AlertKey),
    #[error("device '{}' / rule '{}' is {}, not ALARM: only an alarm can be acknowledged", .0.device_id, .0.rule_id, .1.as_str())]
    NotInAlarm(AlertKey, AlarmState),
    #[error("the alert state kept changing while acknowledging; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] AlertPortError),
}

/// ALARM → ACKNOWLEDGED (no re-notification until it clears), conditionally on the version
/// read so an acknowledgement never overwrites a transition made meanwhile.
pub async fn acknowledge_alert<S: AlertStateStore>(
    states: &S,
    key: &AlertKey,
) -> Result<(), AckError> {
    for _ in 0..3 {
        let mut state = states
            .get_many(std::slice::from_ref(key))
            .await?
            .pop()
            .map(|(_, s)| s)
            .ok_or_else(|| AckError::NotFound(key.clone()))?;
        let expected = state.version;
        acknowledge(&mut state).map_err(|current| AckError::NotInAlarm(key.clone(), current))?;
        state.version += 1;
        if states.put_if_version(key, &state, expected).await? == ConditionalWrite::Written {
            return Ok(());
        }
    }
    Err(AckError::Contended)
}
