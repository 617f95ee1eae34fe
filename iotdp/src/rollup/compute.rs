//! Raw readings into 1-minute rows, and each tier's rows into the next. Pure: the job and the
//! backfill run the same arithmetic over whatever the store hands back, so both stores give
//! the same rows for the same readings.

use std::collections::HashMap;

use crate::domain::{LocationPath, Reading};
use crate::rollup::aggregate::{Aggregates, numeric};
use crate::rollup::model::{RollupRow, SeriesKey};
use crate::rollup::tier::Tier;

/// A series key borrowed from the readings (no allocation per reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum KeyRef<'a> {
    Device(&'a str),
    Group(&'a [String]),
}

/// Rows of `tier` (normally [`Tier::Minute`]) for every device, and for every site, zone,
/// section and spot the devices sit in, for each numeric metric of `readings`.
pub fn rows_from_readings(readings: &[Reading], tier: Tier, computed_at_ms: i64) -> Vec<RollupRow> {
    let mut windows: HashMap<(KeyRef<'_>, &str, i64), Aggregates> = HashMap::new();
    for reading in readings {
        let window = tier.window_start(reading.time_ms);
        let path = reading
            .dimensions
            .as_ref()
            .map(|d| d.path.segments())
            .unwrap_or_default();
        for metric in &reading.metrics {
            let Some(value) = numeric(&metric.value) else {
                continue;
            };
            let keys = std::iter::once(KeyRef::Device(&reading.device_id))
                .chain((1..=path.len()).map(|depth| KeyRef::Group(&path[..depth])));
            for key in keys {
                windows
                    .entry((key, metric.name.as_str(), window))
                    .and_modify(|a| a.add(reading.time_ms, value))
                    .or_insert_with(|| Aggregates::of(reading.time_ms, value));
            }
        }
    }
    // One key per series, cloned into its rows (not built again for every window).
    let mut keys: HashMap<KeyRef<'_>, SeriesKey> = HashMap::new();
    let mut rows: Vec<RollupRow> = windows
        .into_iter()
        .map(|((key, metric, window), aggregates)| RollupRow {
            tier,
            key: keys
                .entry(key)
                .or_insert_with(|| match key {
                    KeyRef::Device(id) => SeriesKey::Device(id.to_owned()),
                    KeyRef::Group(segments) => SeriesKey::Group(group_path(segments)),
                })
                .clone(),
            metric: metric.to_owned(),
            window_start_ms: window,
            aggregates,
            computed_at_ms,
        })
        .collect();
    sort_rows(&mut rows);
    rows
}

fn group_path(segments: &[String]) -> LocationPath {
    // Segments came from a valid path, so the prefix is one too.
    LocationPath::parse(&segments.join("/")).unwrap_or_default()
}

/// `rows` of one tier merged into windows of the coarser `into`.
pub fn roll_up(rows: &[RollupRow], into: Tier, computed_at_ms: i64) -> Vec<RollupRow> {
    let mut windows: HashMap<(&SeriesKey, &str, i64), Aggregates> = HashMap::new();
    for row in rows {
        windows
            .entry((
                &row.key,
                row.metric.as_str(),
                into.window_start(row.window_start_ms),
            ))
            .and_modify(|a| a.merge(&row.aggregates))
            .or_insert(row.aggregates);
    }
    let mut out: Vec<RollupRow> = windows
        .into_iter()
        .map(|((key, metric, window), aggregates)| RollupRow {
            tier: into,
            key: key.clone(),
            metric: metric.to_owned(),
            window_start_ms: window,
            aggregates,
            computed_at_ms,
        })
        .collect();
    sort_rows(&mut out);
    out
}

/// Time, then series, then metric: the order the stores are written in and tests compare.
pub fn sort_rows(rows: &mut [RollupRow]) {
    rows.sort_by(|a, b| {
        (a.window_start_ms, &a.key, &a.metric).cmp(&(b.window_start_ms, &b.key, &b.metric))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MetricValue;

    fn at(device: &str, path: &str, time_ms: i64, value: MetricValue) -> Reading {
        Reading::new(device, time_ms, [("moisture", value)])
            .with_place("spot-sensor", LocationPath::parse(path).unwrap())
    }

    #[test]
    fn a_minute_of_two_devices_gives_device_and_group_rows() {
        let readings = [
            at("a", "wall/z1", 60_000, MetricValue::Number(10.0)),
            at("a", "wall/z1", 90_000, MetricValue::Number(20.0)),
            at("b", "wall/z2", 61_000, MetricValue::Bool(true)),
            at("b", "wall/z2", 62_000, MetricValue::Text("wet".into())),
        ];
        let rows = rows_from_readings(&readings, Tier::Minute, 7);
        let names: Vec<(String, u64, f64)> = rows
            .iter()
            .map(|r| (r.key.name(), r.aggregates.count, r.aggregates.sum))
            .collect();
        assert_eq!(
            names,
            [
                ("a".into(), 2, 30.0),
                ("b".into(), 1, 1.0),
                ("wall".into(), 3, 31.0),
                ("wall/z1".into(), 2, 30.0),
                ("wall/z2".into(), 1, 1.0),
            ]
        );
        assert!(
            rows.iter()
                .all(|r| r.window_start_ms == 60_000 && r.computed_at_ms == 7)
        );
    }

    #[test]
    fn rolling_up_equals_computing_the_coarse_window_from_raw() {
        let readings: Vec<Reading> = (0..500)
            .map(|i| {
                let device = if i % 3 == 0 { "a" } else { "b" };
                at(
                    device,
                    "wall/z1/s1",
                    i * 7_321,
                    MetricValue::Number((i % 17) as f64),
                )
            })
            .collect();
        let minutes = rows_from_readings(&readings, Tier::Minute, 1);
        let hours = roll_up(&minutes, Tier::Hour, 1);
        assert_eq!(hours, rows_from_readings(&readings, Tier::Hour, 1));
        let days = roll_up(&hours, Tier::Day, 1);
        assert_eq!(days, rows_from_readings(&readings, Tier::Day, 1));
    }
}
