//! InfluxQL for the read port. Pure: every query is built here from validated names and
//! quoted literals, so no input can change a query's shape.

use crate::domain::{LocationPath, is_valid_label};
use crate::query::model::{Aggregate, FleetFilter, QueryError, SeriesQuery, TimeRange};
use crate::query::names::{
    checked_bin, checked_device, checked_metric, checked_range, child_level,
};

use super::line_protocol::MEASUREMENT;

/// `"name"`, with `"` and `\` escaped.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `'text'`, with `'` and `\` escaped.
pub fn quote_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn function(aggregate: Aggregate) -> &'static str {
    match aggregate {
        Aggregate::Avg => "MEAN",
        Aggregate::Min => "MIN",
        Aggregate::Max => "MAX",
        Aggregate::Sum => "SUM",
        Aggregate::Count => "COUNT",
        Aggregate::First => "FIRST",
        Aggregate::Last => "LAST",
    }
}

pub(crate) fn time_condition(range: TimeRange) -> String {
    format!("time >= {}ms AND time < {}ms", range.from_ms, range.to_ms)
}

fn path_conditions(within: &LocationPath) -> Vec<String> {
    within
        .levels()
        .map(|(level, segment)| format!("{} = {}", quote_ident(level), quote_string(segment)))
        .collect()
}

/// One `SELECT LAST(m)` per metric, as one multi-statement query (statement i ↔ metric i).
pub fn latest_values_query(device_id: &str, metrics: &[&str]) -> Result<String, QueryError> {
    let device = quote_string(checked_device(device_id)?);
    let statements: Vec<String> = metrics
        .iter()
        .map(|m| {
            Ok(format!(
                "SELECT LAST({}) FROM {} WHERE \"device_id\" = {device}",
                quote_ident(checked_metric(m)?),
                quote_ident(MEASUREMENT)
            ))
        })
        .collect::<Result<_, QueryError>>()?;
    Ok(statements.join("; "))
}

pub fn series_query(query: &SeriesQuery) -> Result<String, QueryError> {
    let metric = quote_ident(checked_metric(&query.metric)?);
    let device = quote_string(checked_device(&query.device_id)?);
    let range = time_condition(checked_range(query.range)?);
    let from = quote_ident(MEASUREMENT);
    let limit = query
        .limit
        .map(|n| format!(" LIMIT {n}"))
        .unwrap_or_default();
    Ok(match query.bins {
        None => format!(
            "SELECT {metric} FROM {from} WHERE \"device_id\" = {device} AND {range} ORDER BY time{limit}"
        ),
        Some((bin, aggregate)) => format!(
            "SELECT {}({metric}) FROM {from} WHERE \"device_id\" = {device} AND {range} GROUP BY time({}s) fill(none) ORDER BY time{limit}",
            function(aggregate),
            checked_bin(bin)?
        ),
    })
}

pub fn latest_by_device_query(metric: &str, filter: &FleetFilter) -> Result<String, QueryError> {
    let mut conditions = path_conditions(&filter.within);
    if let Some(kind) = &filter.device_type {
        if !is_valid_label(kind) {
            return Err(QueryError::Invalid(format!(
                "device type '{kind}' must be 1-64 characters of A-Z a-z 0-9 _ . : -"
            )));
        }
        conditions.push(format!("\"device_type\" = {}", quote_string(kind)));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    Ok(format!(
        "SELECT LAST({}) FROM {}{filter} GROUP BY \"device_id\"",
        quote_ident(checked_metric(metric)?),
        quote_ident(MEASUREMENT)
    ))
}

pub fn drill_down_query(
    metric: &str,
    within: &LocationPath,
    range: TimeRange,
    aggregate: Aggregate,
) -> Result<String, QueryError> {
    let level = child_level(within)?;
    let mut conditions = path_conditions(within);
    conditions.push(time_condition(checked_range(range)?));
    Ok(format!(
        "SELECT {}({}) FROM {} WHERE {} GROUP BY {}",
        function(aggregate),
        quote_ident(checked_metric(metric)?),
        quote_ident(MEASUREMENT),
        conditions.join(" AND "),
        quote_ident(level)
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const RANGE: TimeRange = TimeRange {
        from_ms: 1_764_000_000_000,
        to_ms: 1_764_086_400_000,
    };

    #[test]
    fn a_binned_series_query_reads_as_influxql() {
        let q = SeriesQuery {
            device_id: "ac-1".into(),
            metric: "temperature".into(),
            range: RANGE,
            bins: Some((Duration::from_secs(60), Aggregate::Avg)),
            limit: None,
        };
        assert_eq!(
            series_query(&q).unwrap(),
            "SELECT MEAN(\"temperature\") FROM \"telemetry\" WHERE \"device_id\" = 'ac-1' AND time >= 1764000000000ms AND time < 1764086400000ms GROUP BY time(60s) fill(none) ORDER BY time"
        );
    }

    #[test]
    fn a_drill_down_groups_by_the_level_below() {
        let within = LocationPath::parse("wall-1").unwrap();
        assert_eq!(
            drill_down_query("moisture", &within, RANGE, Aggregate::Min).unwrap(),
            "SELECT MIN(\"moisture\") FROM \"telemetry\" WHERE \"site\" = 'wall-1' AND time >= 1764000000000ms AND time < 1764086400000ms GROUP BY \"zone\""
        );
        let spot = LocationPath::parse("a/b/c/d").unwrap();
        assert!(drill_down_query("moisture", &spot, RANGE, Aggregate::Min).is_err());
    }

    #[test]
    fn hostile_input_is_refused_before_any_query_exists() {
        let hostile = [
            "x') OR 1=1 --",
            "t\" FROM x; DROP DATABASE iotdp",
            "a b",
            "",
            "temperature; DROP",
        ];
        for h in hostile {
            assert!(latest_values_query(h, &["t"]).is_err(), "{h}");
            assert!(latest_values_query("ac-1", &[h]).is_err(), "{h}");
            let q = SeriesQuery {
                device_id: "ac-1".into(),
                metric: h.into(),
                range: RANGE,
                bins: None,
                limit: None,
            };
            assert!(series_query(&q).is_err(), "{h}");
            let filter = FleetFilter {
                device_type: Some(h.into()),
                within: LocationPath::default(),
            };
            assert!(latest_by_device_query("t", &filter).is_err(), "{h}");
        }
        // Quoting holds even for text that reached a literal some other way.
        assert_eq!(quote_string(r"it's \ here"), r"'it\'s \\ here'");
        assert_eq!(quote_ident(r#"we"ird\"#), r#""we\"ird\\""#);
    }

    #[test]
    fn bins_are_whole_seconds_from_one_second_to_one_day() {
        assert_eq!(checked_bin(Duration::from_secs(1)), Ok(1));
        assert_eq!(checked_bin(Duration::from_secs(86_400)), Ok(86_400));
        assert!(checked_bin(Duration::from_millis(1500)).is_err());
        assert!(checked_bin(Duration::from_secs(86_401)).is_err());
        assert!(checked_bin(Duration::ZERO).is_err());
        assert!(
            checked_range(TimeRange {
                from_ms: 5,
                to_ms: 5
            })
            .is_err()
        );
    }
}
