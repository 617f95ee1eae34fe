//! The aggregates every rollup row keeps, and how two of them combine. Pure.
//!
//! Everything is mergeable (count, sum, min, max, first and last with their times), so a
//! window's aggregate is the same whether it is computed from raw readings or from the finer
//! windows inside it, and in whatever order those arrive: that is what keeps rollups exact when
//! late readings make a window be computed again.

use crate::domain::MetricValue;
use crate::query::model::Aggregate;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregates {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub first_ms: i64,
    pub first: f64,
    pub last_ms: i64,
    pub last: f64,
}

/// A value rollups aggregate: numbers as they are, booleans as 0 and 1; text is not aggregated.
pub fn numeric(value: &MetricValue) -> Option<f64> {
    match value {
        MetricValue::Number(n) => Some(*n),
        MetricValue::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        MetricValue::Text(_) => None,
    }
}

impl Aggregates {
    pub fn of(time_ms: i64, value: f64) -> Self {
        Self {
            count: 1,
            sum: value,
            min: value,
            max: value,
            first_ms: time_ms,
            first: value,
            last_ms: time_ms,
            last: value,
        }
    }

    pub fn add(&mut self, time_ms: i64, value: f64) {
        self.merge(&Self::of(time_ms, value));
    }

    /// Combine with `other`. First and last are chosen by time, and between readings at the
    /// same instant (two devices of a group) by value, so the result never depends on order.
    pub fn merge(&mut self, other: &Aggregates) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if (other.first_ms, other.first).partial_cmp(&(self.first_ms, self.first))
            == Some(std::cmp::Ordering::Less)
        {
            self.first_ms = other.first_ms;
            self.first = other.first;
        }
        if (other.last_ms, other.last).partial_cmp(&(self.last_ms, self.last))
            == Some(std::cmp::Ordering::Greater)
        {
            self.last_ms = other.last_ms;
            self.last = other.last;
        }
    }

    /// The value the query API's `agg` asks for; `avg` is derived from sum and count.
    pub fn value(&self, aggregate: Aggregate) -> f64 {
        match aggregate {
            Aggregate::Avg => self.sum / self.count as f64,
            Aggregate::Min => self.min,
            Aggregate::Max => self.max,
            Aggregate::Sum => self.sum,
            Aggregate::Count => self.count as f64,
            Aggregate::First => self.first,
            Aggregate::Last => self.last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_in_any_order_gives_the_same_aggregate() {
        let points = [(5, 2.0), (1, 7.0), (9, -1.0), (1, 3.0), (9, 4.0)];
        let mut forward = Aggregates::of(points[0].0, points[0].1);
        for &(t, v) in &points[1..] {
            forward.add(t, v);
        }
        let mut backward = Aggregates::of(points[4].0, points[4].1);
        for &(t, v) in points[..4].iter().rev() {
            backward.add(t, v);
        }
        assert_eq!(forward, backward);
        assert_eq!(forward.count, 5);
        assert_eq!(forward.sum, 15.0);
        assert_eq!((forward.min, forward.max), (-1.0, 7.0));
        assert_eq!((forward.first_ms, forward.first), (1, 3.0));
        assert_eq!((forward.last_ms, forward.last), (9, 4.0));
        assert_eq!(forward.value(Aggregate::Avg), 3.0);
    }

    #[test]
    fn booleans_count_as_zero_and_one_and_text_is_left_out() {
        assert_eq!(numeric(&MetricValue::Bool(true)), Some(1.0));
        assert_eq!(numeric(&MetricValue::Bool(false)), Some(0.0));
        assert_eq!(numeric(&MetricValue::Text("eco".into())), None);
    }
}
