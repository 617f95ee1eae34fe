//! Anomaly baselines: the median and robust scale of a device's own recent readings, and how
//! far a reading lies from them.

use serde::{Deserialize, Serialize};

/// Anomaly baselines keep one sample per 64th of `baseline_seconds` (fewer leave the MAD of
/// an ordinary baseline too small by chance now and then)…
pub const ANOMALY_SAMPLES_PER_BASELINE: i64 = 64;
/// …and score nothing before half of them are there (the warm-up), or, for a sensor that
/// reports less often (hourly, into a one-day baseline), before a dozen span half the baseline.
pub const ANOMALY_WARM_UP_SAMPLES: usize = 32;
pub const ANOMALY_SPARSE_WARM_UP_SAMPLES: usize = 12;

/// The centre and scale an anomaly rule scores readings against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub centre: f64,
    pub scale: f64,
}

impl Baseline {
    /// How many robust deviations `value` lies from the centre.
    pub fn score(&self, value: f64) -> f64 {
        (value - self.centre).abs() / self.scale
    }
}

/// How many robust deviations `value` lies from the median of the baseline's samples (see
/// [`baseline_of`]); `None` during the warm-up.
pub fn anomaly_score(
    samples: &[(i64, f64)],
    baseline_seconds: u64,
    time_ms: i64,
    value: f64,
) -> Option<f64> {
    baseline_of(samples, baseline_seconds, time_ms).map(|b| b.score(value))
}

/// The median of the samples within `baseline_seconds` of `time_ms`, and the scale: the larger
/// of 1.4826 · MAD and the standard deviation of the middle three quarters of the samples, and
/// at least 1 % of the median's size so a sensor that repeats one value does not turn its first
/// change into an anomaly. `None` during the warm-up. No allocation: at most 65 samples are
/// sorted on the stack.
pub fn baseline_of(
    samples: &[(i64, f64)],
    baseline_seconds: u64,
    time_ms: i64,
) -> Option<Baseline> {
    const MOST: usize = ANOMALY_SAMPLES_PER_BASELINE as usize + 1;
    let baseline_ms = baseline_seconds as i64 * 1000;
    let mut values = [0.0f64; MOST];
    let mut n = 0;
    let mut earliest = time_ms;
    for (t, v) in samples.iter().rev() {
        if time_ms - t > baseline_ms || n == MOST {
            break;
        }
        values[n] = *v;
        earliest = *t;
        n += 1;
    }
    let spans_half = time_ms - earliest >= baseline_ms / 2;
    if n < ANOMALY_WARM_UP_SAMPLES && !(n >= ANOMALY_SPARSE_WARM_UP_SAMPLES && spans_half) {
        return None;
    }
    let values = &mut values[..n];
    let centre = median(values); // sorts them
    // The standard deviation of the middle three quarters: a second robust scale. The MAD of
    // a few samples is now and then far too small by chance, and would make ordinary readings
    // look anomalous; an eighth trimmed at each end still leaves out a short anomaly.
    let trim = n / 8;
    let middle = &values[trim..n - trim];
    let mean = middle.iter().sum::<f64>() / middle.len() as f64;
    let trimmed_sd =
        (middle.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (middle.len() - 1) as f64).sqrt();
    for v in values.iter_mut() {
        *v = (*v - centre).abs();
    }
    let mad = median(values);
    let scale = (1.4826 * mad)
        .max(trimmed_sd)
        .max(0.01 * centre.abs())
        .max(1e-9);
    Some(Baseline { centre, scale })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::rule;
    use super::super::{AlertState, apply_reading};
    use super::*;
    use crate::alerting::event::EventKind;
    use crate::alerting::rule::{AlertRule, Condition};

    fn anomaly(threshold: f64) -> AlertRule {
        rule(
            Condition::Anomaly(crate::alerting::rule::Anomaly {
                threshold,
                baseline_seconds: 86_400,
            }),
            None,
            None,
        )
    }

    #[test]
    fn an_anomaly_fires_after_the_warm_up_and_clears_when_the_reading_is_ordinary_again() {
        let r = anomaly(4.0);
        let mut state = AlertState::default();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut kinds = Vec::new();
        // Hourly moisture around 0.35 (±0.1); a jump to 0.9 at hour 30 for three hours.
        for hour in 0..48i64 {
            let v = if (30..33).contains(&hour) {
                0.9
            } else {
                0.25 + rng.f64() * 0.2
            };
            let step = apply_reading(&r, &mut state, hour * 3_600_000, v);
            kinds.extend(step.event.map(|e| (hour, e.kind)));
        }
        assert_eq!(kinds, vec![(30, EventKind::Alarm), (33, EventKind::Ok)]);
        // During the warm-up nothing is scored, however odd.
        let mut fresh = AlertState::default();
        assert!(apply_reading(&r, &mut fresh, 0, 0.3).event.is_none());
        assert!(
            apply_reading(&r, &mut fresh, 3_600_000, 50.0)
                .event
                .is_none()
        );
    }

    #[test]
    fn an_anomaly_baseline_stays_bounded_and_is_written_once_per_64th() {
        let r = anomaly(4.0);
        let mut state = AlertState::default();
        let mut writes = 0;
        // A reading a minute for three days.
        for minute in 0..(3 * 1440) {
            writes += apply_reading(
                &r,
                &mut state,
                minute * 60_000,
                0.3 + (minute % 7) as f64 * 0.01,
            )
            .changed as u32;
        }
        assert!(
            state.samples.len() <= ANOMALY_SAMPLES_PER_BASELINE as usize + 1,
            "{}",
            state.samples.len()
        );
        // Readings a minute apart: a sample every 23 minutes, at most one per 22.5.
        assert!(
            (180..=3 * 64).contains(&writes),
            "{writes} writes in three days: one per 64th of a one-day baseline"
        );
    }
}
