//! Reason codes: the one vocabulary for "why was this reading not stored".
//!
//! The snake_case strings are a public contract (README, quarantine lines, metrics):
//! never rename a variant's serialised form.

use serde::Serialize;

/// Why a reading (or a whole message) was rejected. Exactly one per rejected reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    MalformedJson,
    NotAnObject,
    PayloadTooLarge,
    InvalidDeviceId,
    MissingMetrics,
    EmptyMetrics,
    TooManyMetrics,
    InvalidMetricName,
    InvalidValue,
    InvalidTimestamp,
    TimestampInFuture,
    TimestampTooOld,
    TooManyReadings,
    UnknownDevice,
    DeviceSuspended,
    DeviceDecommissioned,
    NotAuthorizedForDevice,
    RejectedByStore,
}

impl ReasonCode {
    /// Every code, in documentation order (used by tests and metrics).
    pub const ALL: [ReasonCode; 18] = [
        ReasonCode::MalformedJson,
        ReasonCode::NotAnObject,
        ReasonCode::PayloadTooLarge,
        ReasonCode::InvalidDeviceId,
        ReasonCode::MissingMetrics,
        ReasonCode::EmptyMetrics,
        ReasonCode::TooManyMetrics,
        ReasonCode::InvalidMetricName,
        ReasonCode::InvalidValue,
        ReasonCode::InvalidTimestamp,
        ReasonCode::TimestampInFuture,
        ReasonCode::TimestampTooOld,
        ReasonCode::TooManyReadings,
        ReasonCode::UnknownDevice,
        ReasonCode::DeviceSuspended,
        ReasonCode::DeviceDecommissioned,
        ReasonCode::NotAuthorizedForDevice,
        ReasonCode::RejectedByStore,
    ];

    /// The documented snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::MalformedJson => "malformed_json",
            ReasonCode::NotAnObject => "not_an_object",
            ReasonCode::PayloadTooLarge => "payload_too_large",
            ReasonCode::InvalidDeviceId => "invalid_device_id",
            ReasonCode::MissingMetrics => "missing_metrics",
            ReasonCode::EmptyMetrics => "empty_metrics",
            ReasonCode::TooManyMetrics => "too_many_metrics",
            ReasonCode::InvalidMetricName => "invalid_metric_name",
            ReasonCode::InvalidValue => "invalid_value",
            ReasonCode::InvalidTimestamp => "invalid_timestamp",
            ReasonCode::TimestampInFuture => "timestamp_in_future",
            ReasonCode::TimestampTooOld => "timestamp_too_old",
            ReasonCode::TooManyReadings => "too_many_readings",
            ReasonCode::UnknownDevice => "unknown_device",
            ReasonCode::DeviceSuspended => "device_suspended",
            ReasonCode::DeviceDecommissioned => "device_decommissioned",
            ReasonCode::NotAuthorizedForDevice => "not_authorized_for_device",
            ReasonCode::RejectedByStore => "rejected_by_store",
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejection: the code plus a human-readable detail that says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: ReasonCode,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: ReasonCode, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialised_codes_match_the_documented_strings() {
        for code in ReasonCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
