//! `/devices/{id}/readings/{metric}` (raw or binned, paginated), `/readings/{metric}/latest`
//! across a fleet, and `/readings/{metric}/drill-down` one level below a place.

use serde_json::{Value, json};

use super::QueryApi;
use super::access::Access;
use super::params::{Params, rfc3339};
use super::problem::{Problem, ProblemCode};
use crate::devices::ports::DeviceRegistry;
use crate::domain::MetricValue;
use crate::query::model::{FleetFilter, Point, SeriesQuery, TimeRange};
use crate::query::names::checked_metric;
use crate::query::ports::TimeSeriesReader;

impl<R, T, A, U, S, K> QueryApi<R, T, A, U, S, K>
where
    R: DeviceRegistry,
    T: TimeSeriesReader,
{
    pub(super) async fn device_readings(
        &self,
        id: &str,
        metric: &str,
        params: &Params,
        now_ms: i64,
        access: &Access,
    ) -> Result<Value, Problem> {
        self.visible(id, access).await?;
        checked_metric(metric)?;
        let mut range = params.range(now_ms)?;
        let limit = params.limit()?;
        if let Some(cursor) = params.get("cursor") {
            let resume: i64 = cursor.parse().map_err(|_| {
                Problem::unprocessable(
                    ProblemCode::InvalidParameter,
                    format!("cursor '{cursor}' is not one this API handed out"),
                )
            })?;
            if resume < range.from_ms || resume >= range.to_ms {
                return Err(Problem::unprocessable(
                    ProblemCode::InvalidParameter,
                    format!("cursor '{cursor}' lies outside the requested range"),
                ));
            }
            range.from_ms = resume;
        }
        let bins = params.bins()?;
        let query = SeriesQuery {
            device_id: id.to_owned(),
            metric: metric.to_owned(),
            range,
            bins,
            limit: Some(limit + 1),
        };
        let answered = self.reader.series_answered(&query).await?;
        let mut points = answered.value;
        let next = (points.len() > limit).then(|| {
            let next = points[limit].time_ms;
            points.truncate(limit);
            next.to_string()
        });
        Ok(json!({
            "device_id": id,
            "metric": metric,
            "from": rfc3339(range.from_ms),
            "to": rfc3339(range.to_ms),
            "bin_seconds": bins.map(|(b, _)| b.as_secs()),
            "agg": bins.map(|(_, a)| a.as_str()),
            "points": points.iter().map(point_json).collect::<Vec<_>>(),
            "next": next,
            "tiers": answered.sources,
        }))
    }

    pub(super) async fn latest_by_device(
        &self,
        metric: &str,
        params: &Params,
        access: &Access,
    ) -> Result<Value, Problem> {
        checked_metric(metric)?;
        let scoped = self.scoped_devices(access).await?;
        let filter = FleetFilter {
            device_type: params.device_type()?.map(str::to_owned),
            within: params.path("path")?,
        };
        let mut devices = self.reader.latest_by_device(metric, &filter).await?;
        if let Some(scoped) = &scoped {
            devices.retain(|d| scoped.contains_key(&d.device_id));
        }
        Ok(json!({
            "metric": metric,
            "devices": devices.iter().map(|d| json!({
                "device_id": d.device_id,
                "time": rfc3339(d.time_ms),
                "value": value_json(&d.value),
            })).collect::<Vec<_>>(),
        }))
    }

    pub(super) async fn drill_down(
        &self,
        metric: &str,
        params: &Params,
        now_ms: i64,
        access: &Access,
    ) -> Result<Value, Problem> {
        let within = params.path("path")?;
        // Every group below an in-scope place is in scope; a place above or beside the
        // caller's would aggregate other tenants' devices, so it is not found for them.
        if !access.sees_place(&within) {
            return Err(Problem::not_found(
                ProblemCode::UnknownPlace,
                format!(
                    "no place '{within}' in your scope ({}): drill down from one of its places",
                    access.describe()
                ),
            ));
        }
        let level = crate::query::names::child_level(&within)?;
        let range: TimeRange = params.range(now_ms)?;
        let aggregate = params.aggregate()?;
        let answered = self
            .reader
            .drill_down_answered(metric, &within, range, aggregate)
            .await?;
        let groups = answered.value;
        Ok(json!({
            "metric": metric,
            "path": within.to_string(),
            "level": level,
            "agg": aggregate.as_str(),
            "from": rfc3339(range.from_ms),
            "to": rfc3339(range.to_ms),
            "groups": groups.iter().map(|g| json!({"name": g.group, "value": g.value})).collect::<Vec<_>>(),
            "tiers": answered.sources,
        }))
    }
}

pub(super) fn value_json(value: &MetricValue) -> Value {
    match value {
        MetricValue::Number(v) => json!(v),
        MetricValue::Bool(b) => json!(b),
        MetricValue::Text(s) => json!(s),
    }
}

/// A point as the API (and the CLI's `--output json`) represents it.
pub fn point_json(point: &Point) -> Value {
    json!({ "time": rfc3339(point.time_ms), "value": value_json(&point.value) })
}
