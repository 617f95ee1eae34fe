//! Query-string parameters, each parsed once with a message that says what to fix.

use std::collections::HashMap;
use std::time::Duration;

use crate::api::{DEFAULT_PAGE, MAX_PAGE, Problem};
use crate::domain::LocationPath;
use crate::query::model::{Aggregate, TimeRange};

/// Default range for readings: the last 24 hours.
pub const DEFAULT_RANGE_MS: i64 = 86_400_000;

pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(query: &str) -> Result<Self, Problem> {
        let mut map = HashMap::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if map.insert(key.to_string(), value.to_string()).is_some() {
                return Err(Problem::invalid(format!(
                    "parameter '{key}' is given twice"
                )));
            }
        }
        Ok(Self(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn limit(&self) -> Result<usize, Problem> {
        match self.get("limit") {
            None => Ok(DEFAULT_PAGE),
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| Problem::invalid(format!("limit '{text}' must be 1 to {MAX_PAGE}"))),
        }
    }

    pub fn path(&self, name: &str) -> Result<LocationPath, Problem> {
        LocationPath::parse(self.get(name).unwrap_or_default())
            .map_err(|e| Problem::invalid(format!("{name}: {e}")))
    }

    /// `from` and `to` (RFC 3339 or epoch ms); `to` defaults to now, `from` to 24 h before.
    pub fn range(&self, now_ms: i64) -> Result<TimeRange, Problem> {
        let to = self
            .get("to")
            .map(|t| instant("to", t))
            .transpose()?
            .unwrap_or(now_ms);
        let from = self
            .get("from")
            .map(|t| instant("from", t))
            .transpose()?
            .unwrap_or(to - DEFAULT_RANGE_MS);
        if from >= to {
            return Err(Problem::invalid(format!(
                "from ({}) must be before to ({})",
                rfc3339(from),
                rfc3339(to)
            )));
        }
        Ok(TimeRange {
            from_ms: from,
            to_ms: to,
        })
    }

    pub fn aggregate(&self) -> Result<Aggregate, Problem> {
        let text = self.get("agg").unwrap_or("avg");
        Aggregate::parse(text).ok_or_else(|| {
            Problem::invalid(format!(
                "agg '{text}' must be one of avg, min, max, sum, count, first, last"
            ))
        })
    }

    /// `bin` (`60`, `60s`, `5m`, `1h`, `1d`; 1 s to 1 day) with `agg`; `None` for raw readings.
    pub fn bins(&self) -> Result<Option<(Duration, Aggregate)>, Problem> {
        let Some(text) = self.get("bin") else {
            if self.get("agg").is_some() {
                return Err(Problem::invalid("agg needs a bin (e.g. bin=1m)"));
            }
            return Ok(None);
        };
        let bin = parse_bin(text)?;
        Ok(Some((bin, self.aggregate()?)))
    }
}

fn instant(name: &str, text: &str) -> Result<i64, Problem> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            Problem::invalid(format!(
                "{name} '{text}' must be RFC 3339 (2026-11-24T12:00:00Z) or epoch milliseconds"
            ))
        })
}

/// `90`, `90s`, `5m`, `1h`, `7d` → a duration (a bare number is seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (amount, unit) = text.split_at(split);
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    amount
        .parse::<u64>()
        .ok()
        .map(|a| Duration::from_secs(a * seconds))
}

/// A bin: a duration from 1 s to 1 day.
pub fn parse_bin(text: &str) -> Result<Duration, Problem> {
    parse_duration(text)
        .filter(|d| (1..=86_400).contains(&d.as_secs()))
        .ok_or_else(|| {
            Problem::invalid(format!(
                "bin '{text}' must be 1s to 1d, e.g. 60, 60s, 5m, 1h, 1d"
            ))
        })
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}
