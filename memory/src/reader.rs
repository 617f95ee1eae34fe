//! The memory store read back: the reference implementation of the read port every store's
//! reader is held to.

use super::ingest::MemoryStore;
use iotdp::domain::LocationPath;
use iotdp::domain::MetricValue;
use iotdp::domain::Reading;
use iotdp::query::model::{
    Aggregate, DeviceValue, FleetFilter, GroupValue, Point, QueryError, SeriesQuery, TimeRange,
};
use iotdp::query::ports::TimeSeriesReader;

/// One stored value of one metric: what the reference reader aggregates.
pub(crate) struct Found {
    device_id: String,
    time_ms: i64,
    dimensions: Option<std::sync::Arc<iotdp::domain::DeviceDimensions>>,
    value: MetricValue,
}

impl MemoryStore {
    /// `metric`'s value in each stored reading matching `keep`, in time order: the latest write
    /// of each device and instant, as the real stores keep it.
    fn values(&self, metric: &str, keep: impl Fn(&Reading) -> bool) -> Vec<Found> {
        let Ok(by_time) = self.by_time.lock() else {
            return vec![];
        };
        let out: Vec<Found> = self.with_written(|written| {
            by_time
                .values()
                .map(|&i| &written[i])
                .filter(|r| keep(r))
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
                    Some(Found {
                        device_id: reading.device_id.clone(),
                        time_ms: reading.time_ms,
                        dimensions: reading.dimensions.clone(),
                        value,
                    })
                })
                .collect()
        });
        self.count_read(out.len());
        out
    }
}

fn in_range(range: TimeRange) -> impl Fn(&Reading) -> bool {
    move |r| r.time_ms >= range.from_ms && r.time_ms < range.to_ms
}

fn under(within: &LocationPath) -> impl Fn(&Reading) -> bool + '_ {
    move |r| {
        r.dimensions
            .as_ref()
            .is_some_and(|d| d.path.starts_with(within))
    }
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
    let value = match aggregate {
        Aggregate::Avg => numbers.iter().sum::<f64>() / numbers.len() as f64,
        Aggregate::Sum => numbers.iter().sum(),
        Aggregate::Min => numbers.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregate::Max => numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregate::Count | Aggregate::First | Aggregate::Last => unreachable!("handled above"),
    };
    Some(MetricValue::Number(value))
}

/// The memory store answers the read port itself: a reference implementation the API tests
/// run on, and that the real stores are compared with.
impl TimeSeriesReader for MemoryStore {
    async fn metric_names(&self) -> Result<Vec<String>, QueryError> {
        let mut names: Vec<String> = self
            .written()
            .iter()
            .flat_map(|r| r.metrics.iter().map(|m| m.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn latest_values(
        &self,
        device_id: &str,
        metrics: &[&str],
    ) -> Result<Vec<(String, Point)>, QueryError> {
        Ok(metrics
            .iter()
            .filter_map(|metric| {
                let found = self.values(metric, |r| r.device_id == device_id).pop()?;
                Some((
                    metric.to_string(),
                    Point {
                        time_ms: found.time_ms,
                        value: found.value,
                    },
                ))
            })
            .collect())
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Vec<Point>, QueryError> {
        iotdp::query::names::checked_range(query.range)?;
        let range = in_range(query.range);
        let values = self.values(&query.metric, |r| {
            r.device_id == query.device_id && range(r)
        });
        let mut points: Vec<Point> = match query.bins {
            None => values
                .into_iter()
                .map(|f| Point {
                    time_ms: f.time_ms,
                    value: f.value,
                })
                .collect(),
            Some((bin, aggregate)) => {
                let bin_ms = iotdp::query::names::checked_bin(bin)? as i64 * 1000;
                let mut bins: std::collections::BTreeMap<i64, Vec<MetricValue>> =
                    Default::default();
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

    async fn latest_by_device(
        &self,
        metric: &str,
        filter: &FleetFilter,
    ) -> Result<Vec<DeviceValue>, QueryError> {
        let mut latest: std::collections::BTreeMap<String, DeviceValue> = Default::default();
        let within = under(&filter.within);
        for f in self.values(metric, |r| {
            (filter.within.is_empty() || within(r))
                && filter
                    .device_type
                    .as_ref()
                    .is_none_or(|t| r.dimensions.as_ref().is_some_and(|d| &d.device_type == t))
        }) {
            latest.insert(
                f.device_id.clone(),
                DeviceValue {
                    device_id: f.device_id,
                    time_ms: f.time_ms,
                    value: f.value,
                },
            );
        }
        Ok(latest.into_values().collect())
    }

    async fn drill_down(
        &self,
        metric: &str,
        within: &LocationPath,
        range: TimeRange,
        aggregate: Aggregate,
    ) -> Result<Vec<GroupValue>, QueryError> {
        iotdp::query::names::child_level(within)?;
        let depth = within.segments().len();
        iotdp::query::names::checked_range(range)?;
        let (inside, during) = (under(within), in_range(range));
        let mut groups: std::collections::BTreeMap<String, Vec<MetricValue>> = Default::default();
        for f in self.values(metric, |r| inside(r) && during(r)) {
            let value = f.value;
            if let Some(group) = f
                .dimensions
                .as_ref()
                .and_then(|d| d.path.segments().get(depth).cloned())
            {
                groups.entry(group).or_default().push(value);
            }
        }
        Ok(groups
            .into_iter()
            .filter_map(
                |(group, values)| match aggregate_values(aggregate, &values)? {
                    MetricValue::Number(value) => Some(GroupValue { group, value }),
                    _ => None,
                },
            )
            .collect())
    }
}
