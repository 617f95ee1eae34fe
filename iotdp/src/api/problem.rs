//! RFC 9457 problem documents: a stable `code` for programs, a `detail` that says what to fix.

use serde_json::json;

use super::ApiResponse;
use crate::query::model::QueryError;

/// An RFC 9457 problem: a stable `code`, and a `detail` that says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub code: &'static str,
    pub detail: String,
}

impl Problem {
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: "invalid_parameter",
            detail: detail.into(),
        }
    }

    pub(crate) fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
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
            _ => "Service unavailable",
        };
        ApiResponse {
            status: self.status,
            body: json!({
                "type": format!("https://github.com/iotdp/iotdp/blob/main/README.md#problem-{}", self.code),
                "title": title,
                "status": self.status,
                "code": self.code,
                "detail": self.detail,
            }),
            problem: true,
        }
    }
}

impl From<QueryError> for Problem {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Invalid(detail) => Problem::invalid(detail),
            QueryError::Store(detail) => Problem {
                status: 503,
                code: "store_unavailable",
                detail: format!("{detail}: retry later"),
            },
        }
    }
}

pub(crate) fn alerting_problem(e: impl std::fmt::Display) -> Problem {
    Problem {
        status: 503,
        code: "alerting_unavailable",
        detail: format!("{e}: retry later"),
    }
}

pub(crate) fn registry_problem(e: impl std::fmt::Display) -> Problem {
    Problem {
        status: 503,
        code: "registry_unavailable",
        detail: format!("{e}: retry later"),
    }
}
