//! The read port over rollups: binned series and drill-downs read the coarsest tier that fits,
//! stitch what the job has not covered yet from raw readings (so answers stay complete and
//! current), and say which sources answered. Everything else goes to the raw reader.

use std::collections::BTreeMap;

use crate::domain::LocationPath;
use crate::query::model::{
    Aggregate, Answered, DeviceValue, FleetFilter, GroupValue, Point, QueryError, SeriesQuery,
    TimeRange,
};
use crate::query::names::{
    checked_bin, checked_device, checked_metric, checked_range, child_level,
};
use crate::query::ports::TimeSeriesReader;
use crate::rollup::aggregate::{Aggregates, numeric};
use crate::rollup::finest::FinestTier;
use crate::rollup::model::{JobState, RowSelection, SeriesKey};
use crate::rollup::ports::{RollupStateStore, RollupStore};
use crate::rollup::tier::{Segment, Source, Tier, cover_down_to};

pub struct RollupReader<R, S, T> {
    raw: R,
    store: S,
    state: T,
    /// The finest tier the job keeps (`RollupFinestTier`): finer parts are read raw. With
    /// `auto` (the default), the tier the job's state records, so job and reader agree.
    finest: FinestTier,
}

impl<R, S, T> RollupReader<R, S, T>
where
    R: TimeSeriesReader,
    S: RollupStore,
    T: RollupStateStore,
{
    pub fn new(raw: R, store: S, state: T) -> Self {
        Self {
            raw,
            store,
            state,
            finest: FinestTier::Auto,
        }
    }

    /// Reading a job set to `finest` (`auto`: the tier its state records; a tier: that one).
    pub fn with_finest(mut self, finest: impl Into<FinestTier>) -> Self {
        self.finest = finest.into();
        self
    }

    /// The reader of raw readings underneath.
    pub fn raw(&self) -> &R {
        &self.raw
    }

    /// What the job has covered; a state that cannot be read means raw answers, not a failure.
    async fn job_state(&self) -> Option<JobState> {
        match self.state.coverage().await {
            Ok(coverage) => coverage,
            Err(e) => {
                tracing::warn!(error = %e, "rollup state unreadable: answering from raw readings");
                None
            }
        }
    }

    /// The segments of `range` up to `coarsest`, when any of them is a rollup tier.
    async fn plan(&self, range: TimeRange, coarsest: Tier) -> Option<Vec<Segment>> {
        let state = self.job_state().await;
        let finest = self.finest.kept(state.and_then(|s| s.finest));
        let coverage = state.map(|s| s.coverage());
        let segments = cover_down_to(range, coverage, coarsest, finest);
        segments
            .iter()
            .any(|s| s.source != Source::Raw)
            .then_some(segments)
    }

    async fn binned(
        &self,
        query: &SeriesQuery,
        bin_ms: i64,
        aggregate: Aggregate,
        segments: &[Segment],
    ) -> Result<Option<Answered<Vec<Point>>>, QueryError> {
        let mut bins: BTreeMap<i64, Aggregates> = BTreeMap::new();
        let mut merge = |time_ms: i64, aggregates: &Aggregates| {
            bins.entry(time_ms.div_euclid(bin_ms) * bin_ms)
                .and_modify(|a| a.merge(aggregates))
                .or_insert(*aggregates);
        };
        let mut rollup_rows = 0;
        for segment in segments {
            match segment.source {
                Source::Tier(tier) => {
                    let selection = RowSelection::Device {
                        device_id: &query.device_id,
                        metric: &query.metric,
                    };
                    let rows = self.store.rollups(tier, segment.range, selection).await?;
                    rollup_rows += rows.len();
                    for row in &rows {
                        merge(row.window_start_ms, &row.aggregates);
                    }
                }
                Source::Raw => {
                    let raw = SeriesQuery {
                        range: segment.range,
                        bins: None,
                        limit: None,
                        ..query.clone()
                    };
                    for point in self.raw.series(&raw).await? {
                        // Text has no rollups: the raw reader bins it.
                        let Some(value) = numeric(&point.value) else {
                            return Ok(None);
                        };
                        merge(point.time_ms, &Aggregates::of(point.time_ms, value));
                    }
                }
            }
        }
        if rollup_rows == 0 {
            // A text metric, or nothing in the covered part: raw readings answer it all.
            return Ok(None);
        }
        let mut points: Vec<Point> = bins
            .into_iter()
            .map(|(time_ms, a)| Point {
                time_ms,
                value: crate::domain::MetricValue::Number(a.value(aggregate)),
            })
            .collect();
        if let Some(limit) = query.limit {
            points.truncate(limit);
        }
        let sources: Vec<Source> = segments.iter().map(|s| s.source).collect();
        Ok(Some(Answered {
            value: points,
            sources: Source::names(&sources),
        }))
    }

    async fn drill_down_from(
        &self,
        metric: &str,
        within: &LocationPath,
        aggregate: Aggregate,
        segments: &[Segment],
    ) -> Result<Option<Answered<Vec<GroupValue>>>, QueryError> {
        let depth = within.segments().len();
        let mut groups: BTreeMap<String, Aggregates> = BTreeMap::new();
        let mut merge = |group: &str, aggregates: &Aggregates| {
            if let Some(a) = groups.get_mut(group) {
                a.merge(aggregates);
            } else {
                groups.insert(group.to_owned(), *aggregates);
            }
        };
        let mut rollup_rows = 0;
        for segment in segments {
            match segment.source {
                Source::Tier(tier) => {
                    let selection = RowSelection::Children { within, metric };
                    let rows = self.store.rollups(tier, segment.range, selection).await?;
                    rollup_rows += rows.len();
                    for row in &rows {
                        if let SeriesKey::Group(path) = &row.key
                            && let Some(label) = path.segments().get(depth)
                        {
                            merge(label, &row.aggregates);
                        }
                    }
                }
                Source::Raw => {
                    for reading in self.store.raw_readings(segment.range, within).await? {
                        let Some(label) = reading
                            .dimensions
                            .as_ref()
                            .and_then(|d| d.path.segments().get(depth).cloned())
                        else {
                            continue;
                        };
                        let value = reading
                            .metrics
                            .iter()
                            .find(|m| m.name == metric)
                            .and_then(|m| numeric(&m.value));
                        if let Some(value) = value {
                            merge(&label, &Aggregates::of(reading.time_ms, value));
                        }
                    }
                }
            }
        }
        if rollup_rows == 0 {
            return Ok(None);
        }
        let sources: Vec<Source> = segments.iter().map(|s| s.source).collect();
        Ok(Some(Answered {
            value: groups
                .into_iter()
                .map(|(group, a)| GroupValue {
                    group,
                    value: a.value(aggregate),
                })
                .collect(),
            sources: Source::names(&sources),
        }))
    }
}

impl<R, S, T> TimeSeriesReader for RollupReader<R, S, T>
where
    R: TimeSeriesReader,
    S: RollupStore,
    T: RollupStateStore,
{
    async fn metric_names(&self) -> Result<Vec<String>, QueryError> {
        self.raw.metric_names().await
    }

    async fn latest_values(
        &self,
        device_id: &str,
        metrics: &[&str],
    ) -> Result<Vec<(String, Point)>, QueryError> {
        self.raw.latest_values(device_id, metrics).await
    }

    async fn latest_values_after(
        &self,
        device_id: &str,
        metrics: &[&str],
        known: &crate::query::model::KnownLatest,
    ) -> Result<Vec<(String, Point)>, QueryError> {
        self.raw
            .latest_values_after(device_id, metrics, known)
            .await
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Vec<Point>, QueryError> {
        Ok(self.series_answered(query).await?.value)
    }

    async fn latest_by_device(
        &self,
        metric: &str,
        filter: &FleetFilter,
    ) -> Result<Vec<DeviceValue>, QueryError> {
        self.raw.latest_by_device(metric, filter).await
    }

    async fn drill_down(
        &self,
        metric: &str,
        within: &LocationPath,
        range: TimeRange,
        aggregate: Aggregate,
    ) -> Result<Vec<GroupValue>, QueryError> {
        Ok(self
            .drill_down_answered(metric, within, range, aggregate)
            .await?
            .value)
    }

    async fn series_answered(
        &self,
        query: &SeriesQuery,
    ) -> Result<Answered<Vec<Point>>, QueryError> {
        if let Some((bin, aggregate)) = query.bins {
            checked_device(&query.device_id)?;
            checked_metric(&query.metric)?;
            checked_range(query.range)?;
            let bin_ms = checked_bin(bin)? as i64 * 1000;
            if let Some(tier) = Tier::for_bin(bin_ms)
                && let Some(segments) = self.plan(query.range, tier).await
                && let Some(answer) = self.binned(query, bin_ms, aggregate, &segments).await?
            {
                return Ok(answer);
            }
        }
        Ok(Answered::raw(self.raw.series(query).await?))
    }

    async fn drill_down_answered(
        &self,
        metric: &str,
        within: &LocationPath,
        range: TimeRange,
        aggregate: Aggregate,
    ) -> Result<Answered<Vec<GroupValue>>, QueryError> {
        checked_metric(metric)?;
        child_level(within)?;
        checked_range(range)?;
        if let Some(segments) = self.plan(range, Tier::Day).await
            && let Some(answer) = self
                .drill_down_from(metric, within, aggregate, &segments)
                .await?
        {
            return Ok(answer);
        }
        Ok(Answered::raw(
            self.raw
                .drill_down(metric, within, range, aggregate)
                .await?,
        ))
    }
}
