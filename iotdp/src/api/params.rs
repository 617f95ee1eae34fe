//! Query-string parameters, each parsed once with a message that says what to fix.

use std::collections::HashMap;
use std::time::Duration;

use crate::api::{DEFAULT_PAGE, MAX_PAGE, Problem, ProblemCode};
use crate::domain::LocationPath;
use crate::query::model::{Aggregate, TimeRange};

/// 2262-01-01T00:00:00Z: the last whole year of int64 nanoseconds since the epoch.
pub const LATEST_STORABLE_MS: i64 = 9_214_646_400_000;

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

    /// A free-text parameter: empty is the same as absent (`type=` means any type).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A parameter with a format or a set of values (`severity`, `from`, `limit`…): empty is
    /// refused, as openapi.yaml says, rather than read as absent.
    pub fn value(&self, name: &str) -> Result<Option<&str>, Problem> {
        match self.0.get(name).map(String::as_str) {
            Some("") => Err(Problem::invalid(format!(
                "parameter '{name}' is empty: give a value or leave it out"
            ))),
            other => Ok(other),
        }
    }

    pub fn limit(&self) -> Result<usize, Problem> {
        match self.value("limit")? {
            None => Ok(DEFAULT_PAGE),
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| Problem::invalid(format!("limit '{text}' must be 1 to {MAX_PAGE}"))),
        }
    }

    /// A device type filter (`type`): empty or absent for every type.
    pub fn device_type(&self) -> Result<Option<&str>, Problem> {
        match self.get("type") {
            Some(kind) if !crate::domain::is_valid_label(kind) => Err(Problem::invalid(format!(
                "type: device type '{kind}' must be 1-64 characters of A-Z a-z 0-9 _ . : -"
            ))),
            other => Ok(other),
        }
    }

    /// A place (`site[/zone[/section[/spot]]]`, empty for the whole fleet), written exactly:
    /// no leading or trailing `/` or spaces.
    pub fn path(&self, name: &str) -> Result<LocationPath, Problem> {
        LocationPath::parse_exact(self.get(name).unwrap_or_default())
            .map_err(|e| Problem::invalid(format!("{name}: {e}")))
    }

    /// `from` and `to` (see [`parse_instant`]); `to` defaults to now, `from` to 24 h before it.
    pub fn range(&self, now_ms: i64) -> Result<TimeRange, Problem> {
        let to = self
            .value("to")?
            .map(|t| instant("to", t, now_ms))
            .transpose()?
            .unwrap_or(now_ms);
        let from = self
            .value("from")?
            .map(|t| instant("from", t, now_ms))
            .transpose()?
            .unwrap_or(to - DEFAULT_RANGE_MS);
        // What the stores can hold (InfluxDB and Timestream keep int64 nanoseconds): a range
        // reaching past either end is answered for the part inside, and says so in from/to.
        let (from, to) = (from.max(0), to.min(LATEST_STORABLE_MS));
        if from >= to {
            return Err(Problem::unprocessable(
                ProblemCode::InvalidParameter,
                format!(
                    "from ({}) must be before to ({})",
                    rfc3339(from),
                    rfc3339(to)
                ),
            ));
        }
        Ok(TimeRange {
            from_ms: from,
            to_ms: to,
        })
    }

    pub fn aggregate(&self) -> Result<Aggregate, Problem> {
        let text = self.value("agg")?.unwrap_or("avg");
        Aggregate::parse(text).ok_or_else(|| {
            Problem::invalid(format!(
                "agg '{text}' must be one of avg, min, max, sum, count, first, last"
            ))
        })
    }

    /// `bin` (`60`, `60s`, `5m`, `1h`, `1d`; 1 s to 1 day) with `agg`; `None` for raw readings.
    pub fn bins(&self) -> Result<Option<(Duration, Aggregate)>, Problem> {
        let Some(text) = self.value("bin")? else {
            if self.value("agg")?.is_some() {
                return Err(Problem::unprocessable(
                    ProblemCode::InvalidParameter,
                    "agg needs a bin (e.g. bin=1m): without one the answer is raw readings",
                ));
            }
            return Ok(None);
        };
        let bin = parse_bin(text)?;
        Ok(Some((bin, self.aggregate()?)))
    }
}

/// What every time parameter accepts, in the words of the error that refuses one.
pub const INSTANT_FORMS: &str = "RFC 3339 (2026-11-24T12:00:00Z), epoch milliseconds, 'now' or relative to now (-15m, -6h, -7d)";

/// The one parser of instants, shared by the API's `from`/`to` and the CLI's `--from`/`--to`:
/// `now`, a relative time (`-90s`, `-15m`, `-6h`, `-7d`), RFC 3339 or epoch milliseconds.
pub fn parse_instant(text: &str, now_ms: i64) -> Option<i64> {
    if text == "now" {
        return Some(now_ms);
    }
    if let Some(relative) = text.strip_prefix('-') {
        // A bare number after the minus is seconds, as in `bin`: `-90` is 90 s ago. At most
        // about 270 years back (10 digits of seconds, 8 of minutes, 6 of hours, 5 of days),
        // so every answer's time is a four-digit-year RFC 3339 instant.
        let digits = relative.bytes().take_while(u8::is_ascii_digit).count();
        let most = match &relative[digits..] {
            "" | "s" => 10,
            "m" => 8,
            "h" => 6,
            "d" => 5,
            _ => return None,
        };
        if digits > most {
            return None;
        }
        let ago = parse_duration(relative)?;
        return i64::try_from(ago.as_millis()).ok().map(|ago| now_ms - ago);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // Epoch milliseconds: at most 14 digits (the year 5138).
        return (text.len() <= 14).then(|| text.parse().ok()).flatten();
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn instant(name: &str, text: &str, now_ms: i64) -> Result<i64, Problem> {
    parse_instant(text, now_ms)
        .ok_or_else(|| Problem::invalid(format!("{name} '{text}' must be {INSTANT_FORMS}")))
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
        .and_then(|a| a.checked_mul(seconds))
        .map(Duration::from_secs)
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000_000;

    #[test]
    fn instants_parse_as_operators_write_them() {
        assert_eq!(parse_instant("now", NOW), Some(NOW));
        assert_eq!(parse_instant("-10m", NOW), Some(NOW - 600_000));
        assert_eq!(parse_instant("-6h", NOW), Some(NOW - 6 * 3_600_000));
        assert_eq!(parse_instant("-7d", NOW), Some(NOW - 7 * 86_400_000));
        assert_eq!(parse_instant("-90", NOW), Some(NOW - 90_000));
        assert_eq!(parse_instant("2025-11-24T16:00:00Z", NOW), Some(NOW));
        assert_eq!(parse_instant("1764000000000", NOW), Some(NOW));
        for refused in [
            "yesterday",
            "-5 minutes",
            "-m",
            "-",
            "",
            "+10m",
            "-10y",
            "now-1h",
        ] {
            assert_eq!(parse_instant(refused, NOW), None, "{refused:?}");
        }
    }

    #[test]
    fn a_range_past_what_the_stores_hold_is_answered_for_the_part_inside() {
        let range = Params::parse("from=-99999d&to=3559-04-24T07:21:40Z")
            .unwrap()
            .range(NOW)
            .unwrap();
        assert_eq!((range.from_ms, range.to_ms), (0, LATEST_STORABLE_MS));
        assert_eq!(rfc3339(LATEST_STORABLE_MS), "2262-01-01T00:00:00.000Z");
        let beyond = Params::parse("from=2300-01-01T00:00:00Z&to=2400-01-01T00:00:00Z")
            .unwrap()
            .range(NOW)
            .unwrap_err();
        assert_eq!(beyond.status, 422);
    }

    #[test]
    fn a_range_takes_relative_times_and_names_the_bad_parameter() {
        let range = Params::parse("from=-10m&to=now")
            .unwrap()
            .range(NOW)
            .unwrap();
        assert_eq!((range.from_ms, range.to_ms), (NOW - 600_000, NOW));
        let defaulted = Params::parse("from=-1h").unwrap().range(NOW).unwrap();
        assert_eq!(defaulted.to_ms, NOW);
        let bad = Params::parse("to=soon").unwrap().range(NOW).unwrap_err();
        assert!(
            bad.detail.starts_with("to 'soon' must be RFC 3339"),
            "{}",
            bad.detail
        );
        assert!(bad.detail.contains("-15m"), "{}", bad.detail);
        let reversed = Params::parse("from=now&to=-1h")
            .unwrap()
            .range(NOW)
            .unwrap_err();
        assert!(
            reversed.detail.contains("must be before"),
            "{}",
            reversed.detail
        );
    }
}
