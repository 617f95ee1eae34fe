//! The names and ranges a query may use, checked once before any store's query language
//! embeds them: every store's reader, and the API, take the same checks from here.

use crate::domain::{HIERARCHY_LEVELS, LocationPath, is_valid_device_id, is_valid_metric_name};
use crate::query::model::{QueryError, TimeRange};

/// Shortest and longest bin the API offers.
pub const MIN_BIN_SECONDS: u64 = 1;
pub const MAX_BIN_SECONDS: u64 = 86_400;

pub fn checked_metric(name: &str) -> Result<&str, QueryError> {
    if is_valid_metric_name(name) || name == "seq" {
        Ok(name)
    } else {
        Err(QueryError::Invalid(format!(
            "metric '{name}' must match ^[A-Za-z][A-Za-z0-9_.-]{{0,63}}$"
        )))
    }
}

pub fn checked_device(id: &str) -> Result<&str, QueryError> {
    if is_valid_device_id(id) {
        Ok(id)
    } else {
        Err(QueryError::Invalid(format!(
            "device id '{id}' must be 1-128 characters of A-Z a-z 0-9 : _ -"
        )))
    }
}

pub fn checked_range(range: TimeRange) -> Result<TimeRange, QueryError> {
    if range.from_ms < range.to_ms {
        Ok(range)
    } else {
        Err(QueryError::Invalid(format!(
            "time range [{}, {}) is empty: 'from' must be before 'to'",
            range.from_ms, range.to_ms
        )))
    }
}

/// Bins are whole seconds from 1 s to 1 day.
pub fn checked_bin(bin: std::time::Duration) -> Result<u64, QueryError> {
    let seconds = bin.as_secs();
    if bin.subsec_nanos() == 0 && (MIN_BIN_SECONDS..=MAX_BIN_SECONDS).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(QueryError::Invalid(format!(
            "bin {bin:?} must be whole seconds from {MIN_BIN_SECONDS} s to 1 day"
        )))
    }
}

/// The hierarchy level one below `within`, for a drill-down.
pub fn child_level(within: &LocationPath) -> Result<&'static str, QueryError> {
    HIERARCHY_LEVELS
        .get(within.segments().len())
        .copied()
        .ok_or_else(|| {
            QueryError::Invalid(format!(
                "'{within}' is a spot already: there is no level below it to drill into"
            ))
        })
}
