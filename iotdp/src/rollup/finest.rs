//! The finest tier the job keeps: the `RollupFinestTier` setting (`auto`, or `1m` / `1h` as an
//! override) and, with `auto`, the decision from the readings themselves. Pure.
//!
//! A device that reports less often than once a minute has at most one reading in each
//! 1-minute window, so its 1-minute rows repeat its readings: hours, computed from raw when
//! they close, and raw reads below an hour answer the same. With `auto` the job measures the
//! reporting interval of each device type (the median gap between consecutive readings of one
//! device) and keeps 1-minute rows when any type reports more often than once a minute. Place
//! rows mix types, so the decision is one for the stack, not one per type.

use std::collections::{BTreeMap, HashMap};

use crate::domain::Reading;
use crate::rollup::tier::Tier;

/// A gap shorter than this puts two readings of one device in (about) one 1-minute window.
const MINUTE_MS: i64 = 60_000;

/// `RollupFinestTier`: derive the finest tier from the readings, or keep the one named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FinestTier {
    /// Measured once, when the job starts its coverage (or `iotdp rollups rebuild` starts it
    /// again), and kept in the job's state, where the reader reads it.
    #[default]
    Auto,
    /// The override: this tier whatever the readings.
    Fixed(Tier),
}

impl FinestTier {
    /// `auto`, `1m` or `1h` (the template's AllowedValues).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(FinestTier::Auto),
            "1m" => Some(FinestTier::Fixed(Tier::Minute)),
            "1h" => Some(FinestTier::Fixed(Tier::Hour)),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FinestTier::Auto => "auto",
            FinestTier::Fixed(tier) => tier.name(),
        }
    }

    /// The tier kept, given what the job's state recorded (`None`: nothing measured yet, which
    /// keeps no 1-minute rows until a measurement asks for them).
    pub fn kept(self, recorded: Option<Tier>) -> Tier {
        match self {
            FinestTier::Fixed(tier) => tier,
            FinestTier::Auto => recorded.unwrap_or(Tier::Hour),
        }
    }
}

impl From<Tier> for FinestTier {
    fn from(tier: Tier) -> Self {
        FinestTier::Fixed(tier)
    }
}

/// The reporting intervals of one device type, as gaps between consecutive readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TypeGaps {
    /// Gaps measured.
    pub gaps: u64,
    /// Of them, shorter than a minute.
    pub under_a_minute: u64,
}

impl TypeGaps {
    /// Whether the median gap is under a minute: the type's devices report more often than
    /// once a minute, so their 1-minute rows aggregate several readings.
    pub fn needs_minutes(&self) -> bool {
        self.under_a_minute * 2 > self.gaps
    }
}

/// The reporting interval of each device type, measured from readings fed in time order, span
/// by span (a span's readings in any order). Holds one instant per device and two counters
/// per type, so a fleet of any density is measured in bounded memory.
#[derive(Debug, Clone, Default)]
pub struct IntervalSample {
    last: HashMap<String, i64>,
    types: BTreeMap<String, TypeGaps>,
}

/// The type readings of unregistered devices (no dimensions) are counted under.
pub const UNREGISTERED: &str = "(unregistered)";

impl IntervalSample {
    /// Readings of a span later than every span added before.
    pub fn add(&mut self, readings: &[Reading]) {
        let mut sorted: Vec<&Reading> = readings.iter().collect();
        sorted.sort_by(|a, b| (&a.device_id, a.time_ms).cmp(&(&b.device_id, b.time_ms)));
        for reading in sorted {
            let device_type = reading
                .dimensions
                .as_ref()
                .map_or(UNREGISTERED, |d| d.device_type.as_str());
            let previous = self.last.insert(reading.device_id.clone(), reading.time_ms);
            let gaps = self.types.entry(device_type.to_owned()).or_default();
            if let Some(previous) = previous
                && reading.time_ms > previous
            {
                gaps.gaps += 1;
                if reading.time_ms - previous < MINUTE_MS {
                    gaps.under_a_minute += 1;
                }
            }
        }
    }

    /// Each device type seen, with its gaps (none for a type whose devices were seen once).
    pub fn types(&self) -> &BTreeMap<String, TypeGaps> {
        &self.types
    }

    /// The finest tier the readings need: 1-minute rows when any type measured reports more
    /// often than once a minute, hours otherwise; `None` while no gap has been measured (no
    /// readings, or one per device).
    pub fn decision(&self) -> Option<Tier> {
        let measured: Vec<&TypeGaps> = self.types.values().filter(|g| g.gaps > 0).collect();
        if measured.is_empty() {
            return None;
        }
        Some(if measured.iter().any(|g| g.needs_minutes()) {
            Tier::Minute
        } else {
            Tier::Hour
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LocationPath, MetricValue};

    fn every(device: &str, device_type: &str, step_ms: i64, count: i64) -> Vec<Reading> {
        let place = LocationPath::parse("site-1").unwrap();
        (0..count)
            .map(|i| {
                Reading::new(device, i * step_ms, [("t", MetricValue::Number(1.0))])
                    .with_place(device_type, place.clone())
            })
            .collect()
    }

    #[test]
    fn the_setting_parses_auto_and_the_two_overrides() {
        assert_eq!(FinestTier::parse("auto"), Some(FinestTier::Auto));
        assert_eq!(FinestTier::parse("1h"), Some(FinestTier::Fixed(Tier::Hour)));
        assert_eq!(FinestTier::parse("1d"), None);
        assert_eq!(FinestTier::Auto.kept(None), Tier::Hour);
        assert_eq!(FinestTier::Auto.kept(Some(Tier::Hour)), Tier::Hour);
        assert_eq!(
            FinestTier::Fixed(Tier::Minute).kept(Some(Tier::Hour)),
            Tier::Minute
        );
        for setting in ["auto", "1m", "1h"] {
            assert_eq!(FinestTier::parse(setting).unwrap().name(), setting);
        }
    }

    #[test]
    fn devices_reporting_less_than_once_a_minute_need_only_hours() {
        let mut sample = IntervalSample::default();
        sample.add(&every("box-1", "battery_box", 300_000, 12));
        sample.add(&every("box-2", "battery_box", 60_000, 60));
        assert_eq!(sample.decision(), Some(Tier::Hour));
        assert_eq!(sample.types()["battery_box"].gaps, 11 + 59);
    }

    #[test]
    fn one_type_reporting_every_few_seconds_keeps_minutes_for_the_stack() {
        let mut sample = IntervalSample::default();
        sample.add(&every("box-1", "battery_box", 300_000, 12));
        assert_eq!(sample.decision(), Some(Tier::Hour));
        sample.add(&every("t-1", "thermostat", 10_000, 30));
        assert!(sample.types()["thermostat"].needs_minutes());
        assert_eq!(sample.decision(), Some(Tier::Minute));
    }

    #[test]
    fn gaps_carry_across_spans_and_a_span_may_come_in_any_order() {
        let mut sample = IntervalSample::default();
        let mut readings = every("t-1", "thermostat", 10_000, 12);
        readings.reverse();
        let (late, early) = readings.split_at(6);
        sample.add(early);
        sample.add(late);
        assert_eq!(
            sample.types()["thermostat"],
            TypeGaps {
                gaps: 11,
                under_a_minute: 11
            }
        );
    }

    #[test]
    fn nothing_is_decided_before_a_gap_is_measured() {
        let mut sample = IntervalSample::default();
        assert_eq!(sample.decision(), None);
        sample.add(&every("box-1", "battery_box", 300_000, 1));
        sample.add(&[Reading::new("stray", 5, [("t", MetricValue::Number(1.0))])]);
        assert_eq!(sample.decision(), None);
        assert!(sample.types().contains_key(UNREGISTERED));
    }
}
