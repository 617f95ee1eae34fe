//! RFC 9457 problem documents: a stable `code` for programs, a `detail` that says what to fix.

use serde_json::json;

use super::ApiResponse;
use crate::query::model::QueryError;

/// Every problem the API answers with. The `type` of a problem document is its URN
/// (`urn:iotdp:problem:<code>`): stable, and resolvable to its entry in
/// `docs/problems.md`, which ships with the project (a test checks each code has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemCode {
    InvalidParameter,
    InvalidDevice,
    InvalidRule,
    InvalidDeviceType,
    UnknownDeviceType,
    UnknownDevice,
    UnknownRule,
    UnknownAlert,
    NoSuchRoute,
    MethodNotAllowed,
    DeviceExists,
    DeviceDecommissioned,
    NotInAlarm,
    WrongAlertState,
    StaleVersion,
    StoreUnavailable,
    RegistryUnavailable,
    AlertingUnavailable,
    Forbidden,
    OutsideScope,
    UnknownPlace,
    InvalidCommand,
    UnknownCommand,
    IdempotencyKeyReused,
    DeviceNotActive,
    CommandsUnavailable,
}

impl ProblemCode {
    pub const ALL: [Self; 26] = [
        Self::InvalidParameter,
        Self::InvalidDevice,
        Self::InvalidRule,
        Self::InvalidDeviceType,
        Self::UnknownDeviceType,
        Self::UnknownDevice,
        Self::UnknownRule,
        Self::UnknownAlert,
        Self::NoSuchRoute,
        Self::MethodNotAllowed,
        Self::DeviceExists,
        Self::DeviceDecommissioned,
        Self::NotInAlarm,
        Self::WrongAlertState,
        Self::StaleVersion,
        Self::StoreUnavailable,
        Self::RegistryUnavailable,
        Self::AlertingUnavailable,
        Self::Forbidden,
        Self::OutsideScope,
        Self::UnknownPlace,
        Self::InvalidCommand,
        Self::UnknownCommand,
        Self::IdempotencyKeyReused,
        Self::DeviceNotActive,
        Self::CommandsUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidParameter => "invalid_parameter",
            Self::InvalidDevice => "invalid_device",
            Self::InvalidRule => "invalid_rule",
            Self::InvalidDeviceType => "invalid_device_type",
            Self::UnknownDeviceType => "unknown_device_type",
            Self::UnknownDevice => "unknown_device",
            Self::UnknownRule => "unknown_rule",
            Self::UnknownAlert => "unknown_alert",
            Self::NoSuchRoute => "no_such_route",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::DeviceExists => "device_exists",
            Self::DeviceDecommissioned => "device_decommissioned",
            Self::NotInAlarm => "not_in_alarm",
            Self::WrongAlertState => "wrong_alert_state",
            Self::StaleVersion => "stale_version",
            Self::StoreUnavailable => "store_unavailable",
            Self::RegistryUnavailable => "registry_unavailable",
            Self::AlertingUnavailable => "alerting_unavailable",
            Self::Forbidden => "forbidden",
            Self::OutsideScope => "outside_scope",
            Self::UnknownPlace => "unknown_place",
            Self::InvalidCommand => "invalid_command",
            Self::UnknownCommand => "unknown_command",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::DeviceNotActive => "device_not_active",
            Self::CommandsUnavailable => "commands_unavailable",
        }
    }

    /// The problem document's `type`.
    pub fn type_uri(self) -> String {
        format!("urn:iotdp:problem:{}", self.as_str())
    }
}

/// An RFC 9457 problem: a stable `code`, and a `detail` that says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub code: ProblemCode,
    pub detail: String,
}

impl Problem {
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: ProblemCode::InvalidParameter,
            detail: detail.into(),
        }
    }

    /// A request the schema allows but a rule across its fields refuses (from after to, an
    /// id in the body that differs from the path's, a rule's clear level on the wrong side of
    /// its threshold): 422, so 400 always means "does not match openapi.yaml".
    pub fn unprocessable(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            status: 422,
            code,
            detail: detail.into(),
        }
    }

    pub(crate) fn not_found(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            status: 404,
            code,
            detail: detail.into(),
        }
    }

    pub(crate) fn into_response(self) -> ApiResponse {
        let title = match self.status {
            400 => "Bad request",
            404 => "Not found",
            405 => "Method not allowed",
            409 => "Conflict",
            422 => "Unprocessable content",
            _ => "Service unavailable",
        };
        ApiResponse {
            status: self.status,
            body: json!({
                "type": self.code.type_uri(),
                "title": title,
                "status": self.status,
                "code": self.code.as_str(),
                "detail": self.detail,
            }),
            problem: true,
            allow: None,
        }
    }
}

impl From<QueryError> for Problem {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Invalid(detail) => Problem::invalid(detail),
            QueryError::Store(detail) => Problem {
                status: 503,
                code: ProblemCode::StoreUnavailable,
                detail: format!("{detail}: retry later"),
            },
        }
    }
}

pub(crate) fn alerting_problem(e: impl std::fmt::Display) -> Problem {
    Problem {
        status: 503,
        code: ProblemCode::AlertingUnavailable,
        detail: format!("{e}: retry later"),
    }
}

pub(crate) fn commands_problem(e: impl std::fmt::Display) -> Problem {
    Problem {
        status: 503,
        code: ProblemCode::CommandsUnavailable,
        detail: format!("{e}: retry later"),
    }
}

pub(crate) fn registry_problem(e: impl std::fmt::Display) -> Problem {
    Problem {
        status: 503,
        code: ProblemCode::RegistryUnavailable,
        detail: format!("{e}: retry later"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_code_has_its_entry_in_the_documentation() {
        let docs =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/problems.md"))
                .expect("docs/problems.md");
        let sections: Vec<&str> = docs
            .lines()
            .filter_map(|line| line.strip_prefix("## "))
            .collect();
        for code in ProblemCode::ALL {
            assert!(
                sections.contains(&code.as_str()),
                "docs/problems.md has no section '## {}'",
                code.as_str()
            );
        }
        assert_eq!(
            sections.len(),
            ProblemCode::ALL.len(),
            "docs/problems.md documents a code the API does not have: {sections:?}"
        );
    }

    #[test]
    fn a_problem_document_names_its_type_by_urn_and_code() {
        let response = Problem::invalid("limit '0' must be 1 to 10000").into_response();
        assert_eq!(response.status, 400);
        assert_eq!(response.body["type"], "urn:iotdp:problem:invalid_parameter");
        assert_eq!(response.body["code"], "invalid_parameter");
        let mut codes = ProblemCode::ALL.map(ProblemCode::as_str).to_vec();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(
            codes.len(),
            ProblemCode::ALL.len(),
            "a code is listed twice"
        );
    }
}
