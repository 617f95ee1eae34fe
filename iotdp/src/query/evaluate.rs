//! The read port's answers computed from stored readings, for stores that hold readings rather
//! than run queries (the memory reference and the lake): pure, so every such store answers the
//! same way.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::domain::{DeviceDimensions, LocationPath, MetricValue, Reading};
use crate::query::model::{Aggregate, DeviceValue, GroupValue, Point, QueryError, SeriesQuery};

/// One stored value of one metric, with what filters and groups it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredValue {
    pub device_id: String,
    pub time_ms: i64,
    pub dimensions: Option<Arc<DeviceDimensions>>,
    pub value: MetricValue,
}

/// `metric`'s value in each reading (`seq` is the device's sequence number), in the
/// readings' order.
pub fn values_of<'a>(
    readings: impl IntoIterator<Item = &'a Reading>,
    metric: &str,
) -> Vec<StoredValue> {
    readings
        .into_iter()
        .filter_map(|reading| {
            let value = if metric == "seq" {
                reading.seq.map(|s| MetricValue::Number(s as f64))
            } else {
                reading
                    .metrics
                    .iter()
                    .find(|m| m.name == metric)
                    .map(|m| m.value.clone())
            }?;
            Some(StoredValue {
                device_id: reading.device_id.clone(),
                time_ms: reading.time_ms,
                dimensions: reading.dimensions.clone(),
                value,
            })
        })
        .collect()
}

/// Every metric name in `readings`, sorted, once each.
pub fn metric_names_of<'a>(readings: impl IntoIterator<Item = &'a Reading>) -> Vec<String> {
    let mut names: Vec<String> = readings
        .into_iter()
        .flat_map(|r| r.metrics.iter().map(|m| m.name.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The last value of each of `metrics` among `readings` (in time order), by name.
pub fn latest_of<'a>(
    readings: impl IntoIterator<Item = &'a Reading> + Clone,
    metrics: &[&str],
) -> Vec<(String, Point)> {
    metrics
        .iter()
        .filter_map(|metric| {
            let last = values_of(readings.clone(), metric).pop()?;
            Some((
                (*metric).to_owned(),
                Point {
                    time_ms: last.time_ms,
                    value: last.value,
                },
            ))
        })
        .collect()
}

/// Whether `reading` sits at or below `within` in the hierarchy.
pub fn is_under(reading: &Reading, within: &LocationPath) -> bool {
    reading
        .dimensions
        .as_ref()
        .is_some_and(|d| d.path.starts_with(within))
}

/// Aggregate values in time order, as the stores do; `None` for non-numeric input.
pub fn aggregate_values(aggregate: Aggregate, values: &[MetricValue]) -> Option<MetricValue> {
    if aggregate == Aggregate::Count {
        return Some(MetricValue::Number(values.len() as f64));
    }
    if matches!(aggregate, Aggregate::First | Aggregate::Last) {
        let v = if aggregate == Aggregate::First {
            values.first()
        } else {
            values.last()
        };
        return v.cloned();
    }
    let numbers: Vec<f64> = values
        .iter()
        .map(|v| match v {
            MetricValue::Number(n) => Some(*n),
            _ => None,
        })
        .collect::<Option<_>>()?;
    if numbers.is_empty() {
        return None;
    }
    Some(MetricValue::Number(match aggregate {
        Aggregate::Avg => numbers.iter().sum::<f64>() / numbers.len() as f64,
        Aggregate::Sum => numbers.iter().sum(),
        Aggregate::Min => numbers.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregate::Max => numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregate::Count | Aggregate::First | Aggregate::Last => return None,
    }))
}

/// A device's series from its values in time order (already limited to the query's device
/// and range): raw points, or bins aggregated, then the limit.
pub fn series_points(
    values: Vec<StoredValue>,
    query: &SeriesQuery,
) -> Result<Vec<Point>, QueryError> {
    let mut points: Vec<Point> = match query.bins {
        None => values
            .into_iter()
            .map(|f| Point {
                time_ms: f.time_ms,
                value: f.value,
            })
            .collect(),
        Some((bin, aggregate)) => {
            let bin_ms = crate::query::names::checked_bin(bin)? as i64 * 1000;
            let mut bins: BTreeMap<i64, Vec<MetricValue>> = BTreeMap::new();
            for f in values {
                bins.entry(f.time_ms - f.time_ms.rem_euclid(bin_ms))
                    .or_default()
                    .push(f.value);
            }
            bins.into_iter()
                .filter_map(|(time_ms, values)| {
                    Some(Point {
                        time_ms,
                        value: aggregate_values(aggregate, &values)?,
                    })
                })
                .collect()
        }
    };
    if let Some(limit) = query.limit {
        points.truncate(limit);
    }
    Ok(points)
}

/// Each device's last value, from values in time order.
pub fn latest_per_device(values: Vec<StoredValue>) -> Vec<DeviceValue> {
    let mut latest: BTreeMap<String, DeviceValue> = BTreeMap::new();
    for f in values {
        latest.insert(
            f.device_id.clone(),
            DeviceValue {
                device_id: f.device_id,
                time_ms: f.time_ms,
                value: f.value,
            },
        );
    }
    latest.into_values().collect()
}

/// Values under `within` aggregated per child place (the next level down), in time order.
pub fn drill_down_groups(
    values: Vec<StoredValue>,
    within: &LocationPath,
    aggregate: Aggregate,
) -> Vec<GroupValue> {
    let depth = within.segments().len();
    let mut groups: BTreeMap<String, Vec<MetricValue>> = BTreeMap::new();
    for f in values {
        if let Some(group) = f
            .dimensions
            .as_ref()
            .and_then(|d| d.path.segments().get(depth).cloned())
        {
            groups.entry(group).or_default().push(f.value);
        }
    }
    groups
        .into_iter()
        .filter_map(
            |(group, values)| match aggregate_values(aggregate, &values)? {
                MetricValue::Number(value) => Some(GroupValue { group, value }),
                _ => None,
            },
        )
        .collect()
}

/// The latest write of each device and instant (the highest version; the later one of equal
/// versions), in time order: what the stores keep of duplicates and corrections.
pub fn latest_writes(readings: impl IntoIterator<Item = Reading>) -> Vec<Reading> {
    let mut kept: BTreeMap<(i64, String), Reading> = BTreeMap::new();
    for reading in readings {
        let key = (reading.time_ms, reading.device_id.clone());
        match kept.get(&key) {
            Some(old) if old.version > reading.version => {}
            _ => {
                kept.insert(key, reading);
            }
        }
    }
    kept.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Metric;

    fn reading(device: &str, time_ms: i64, value: f64, version: i64) -> Reading {
        Reading {
            device_id: device.into(),
            time_ms,
            seq: None,
            metrics: vec![Metric {
                name: "t".into(),
                value: MetricValue::Number(value),
            }],
            version,
            dimensions: None,
        }
    }

    #[test]
    fn the_latest_version_of_an_instant_wins_and_duplicates_count_once() {
        let kept = latest_writes([
            reading("a", 2, 1.0, 10),
            reading("a", 1, 5.0, 10),
            reading("a", 2, 3.0, 20),
            reading("a", 2, 9.0, 15),
            reading("a", 1, 5.0, 10),
        ]);
        let values: Vec<(i64, MetricValue)> = values_of(&kept, "t")
            .into_iter()
            .map(|v| (v.time_ms, v.value))
            .collect();
        assert_eq!(
            values,
            vec![(1, MetricValue::Number(5.0)), (2, MetricValue::Number(3.0))]
        );
        assert_eq!(
            aggregate_values(
                Aggregate::Avg,
                &[MetricValue::Number(1.0), MetricValue::Number(3.0)]
            ),
            Some(MetricValue::Number(2.0))
        );
        assert_eq!(
            aggregate_values(Aggregate::Sum, &[MetricValue::Bool(true)]),
            None
        );
    }
}
