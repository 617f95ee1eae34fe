//! Trends and forecasts: the least-squares line through a window of samples (a rate rule's
//! slope), and when that line reaches a forecast's threshold.

use crate::alerting::event::Prediction;
use crate::alerting::rule::Forecast;

/// Forecasts keep one sample per 32nd of the window (a state write at most that often)…
pub const FORECAST_SAMPLES_PER_WINDOW: i64 = 32;
/// …and fire only on a line fitted to at least this many points (the window half full)…
pub const MIN_FORECAST_POINTS: u32 = 16;
/// …that explains at least this share of the variance. A noisy stable series has an R² near 0:
/// 16 points of noise reach 0.9 by chance with p ≈ 2·10⁻⁸ per fit (0.8: p ≈ 3·10⁻⁶, which a
/// fleet's thousands of fits a minute, and the property test's, do reach); any fit, however
/// poor, can clear (a flat recovered series must).
pub const MIN_FORECAST_R_SQUARED: f64 = 0.9;

/// A least-squares line through a window's samples, times in hours relative to the reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub slope_per_hour: f64,
    /// The line's value at the reading's time.
    pub level_now: f64,
    pub r_squared: f64,
    pub points: u32,
}

impl Fit {
    /// Good enough to fire a forecast on (any fit may clear one).
    pub(super) fn trusted(&self) -> bool {
        self.points >= MIN_FORECAST_POINTS && self.r_squared >= MIN_FORECAST_R_SQUARED
    }

    /// The line's value `seconds` after the reading.
    pub(super) fn level_in(&self, seconds: u64) -> f64 {
        self.level_now + self.slope_per_hour * seconds as f64 / 3600.0
    }
}

/// When the fitted line reaches the forecast's threshold, and how well it fits.
pub(super) fn predict(forecast: &Forecast, fit: &Fit, time_ms: i64) -> Prediction {
    let (threshold, falling) = forecast.threshold();
    let reached = if falling {
        fit.level_now <= threshold
    } else {
        fit.level_now >= threshold
    };
    let towards = if falling {
        fit.slope_per_hour < 0.0
    } else {
        fit.slope_per_hour > 0.0
    };
    let crossing_ms = if reached {
        Some(time_ms)
    } else if towards {
        let hours = (threshold - fit.level_now) / fit.slope_per_hour;
        // Beyond any time a notification can name: no crossing worth reporting.
        (hours < 1e9).then(|| time_ms + (hours * 3_600_000.0) as i64)
    } else {
        None
    };
    Prediction {
        crossing_ms,
        r_squared: fit.r_squared,
        slope_per_hour: fit.slope_per_hour,
        points: fit.points,
    }
}

/// The least-squares line over the stored samples and the current reading. `None` until
/// there are three points spanning at least half the window. No allocation: it runs for every
/// reading of every rate and forecast rule.
pub(super) fn fit_line(
    samples: &[(i64, f64)],
    window_seconds: u64,
    time_ms: i64,
    value: f64,
) -> Option<Fit> {
    let window_ms = window_seconds as i64 * 1000;
    let current = (samples.last() != Some(&(time_ms, value))).then_some((time_ms, value));
    let points = {
        samples
            .iter()
            .copied()
            .filter(move |(t, _)| time_ms - t <= window_ms)
            .chain(current)
            .map(move |(t, v)| ((t - time_ms) as f64 / 3_600_000.0, v))
    };
    // One pass over the sums: times are hours relative to this reading, so small and exact
    // enough for the textbook formula.
    let (mut n, mut st, mut sv, mut stt, mut stv, mut svv, mut earliest) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0f64);
    for (t, v) in points {
        n += 1.0;
        st += t;
        sv += v;
        stt += t * t;
        stv += t * v;
        svv += v * v;
        earliest = earliest.min(t);
    }
    if n < 3.0 || -earliest * 3600.0 < window_seconds as f64 / 2.0 {
        return None;
    }
    let covariance = stv - st * sv / n;
    let variance = stt - st * st / n;
    let value_variance = svv - sv * sv / n;
    if variance <= 0.0 {
        return None;
    }
    let slope = covariance / variance;
    let r_squared = if value_variance > 0.0 {
        (covariance * covariance / (variance * value_variance)).clamp(0.0, 1.0)
    } else {
        0.0
    };
    Some(Fit {
        slope_per_hour: slope,
        level_now: sv / n - slope * st / n,
        r_squared,
        points: n as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::rule;
    use super::super::{AlertState, apply_reading};
    use super::*;
    use crate::alerting::event::AlarmState::Ok as O;
    use crate::alerting::event::{AlarmEvent, EventKind};
    use crate::alerting::rule::{AlertRule, Condition, RateOfChange};
    use proptest::prelude::*;

    #[test]
    fn a_falling_battery_fires_a_rate_of_change_rule_before_it_is_flat_out() {
        // Voltage drops 0.1 V/h; the rule fires at faster than 0.05 V/h over 6 hours.
        let r = rule(
            Condition::RateOfChange(RateOfChange {
                per_hour: -0.05,
                window_seconds: 6 * 3600,
            }),
            None,
            None,
        );
        let mut state = AlertState::default();
        let mut fired_at = None;
        let mut writes = 0;
        for minute in 0..(12 * 60) {
            let t = minute * 60_000;
            let step = apply_reading(&r, &mut state, t, 13.0 - 0.1 * minute as f64 / 60.0);
            writes += step.changed as u32;
            if step.event.map(|e| e.kind) == Some(EventKind::Alarm) {
                fired_at.get_or_insert(minute);
            }
        }
        let fired_at = fired_at.expect("the fade is detected");
        assert!(
            (180..=240).contains(&fired_at),
            "fired after {fired_at} minutes"
        );
        // About one write per 45-minute sample slot (16 in 12 hours), not one per reading.
        assert!(writes <= 18, "{writes} writes for 720 readings");
        assert!(state.samples.len() <= 9);
    }

    #[test]
    fn a_stable_battery_never_fires() {
        let r = rule(
            Condition::RateOfChange(RateOfChange {
                per_hour: -0.05,
                window_seconds: 6 * 3600,
            }),
            None,
            None,
        );
        let mut state = AlertState::default();
        for minute in 0..(24 * 60) {
            let noise = if minute % 2 == 0 { 0.02 } else { -0.02 };
            apply_reading(&r, &mut state, minute * 60_000, 12.8 + noise);
        }
        assert_eq!(state.state, O);
    }

    fn forecast(below: f64, within_hours: u64, window_hours: u64) -> AlertRule {
        rule(
            Condition::Forecast(Forecast {
                below: Some(below),
                above: None,
                within_seconds: within_hours * 3600,
                window_seconds: window_hours * 3600,
            }),
            None,
            None,
        )
    }

    /// Readings every `minutes` of `level(hour)`; the hour each rule first alarmed.
    fn first_alarm(
        rule: &AlertRule,
        minutes: i64,
        hours: i64,
        level: impl Fn(f64) -> f64,
    ) -> Option<(f64, AlarmEvent)> {
        let mut state = AlertState::default();
        (0..hours * 60 / minutes).find_map(|i| {
            let hour = (i * minutes) as f64 / 60.0;
            let step = apply_reading(rule, &mut state, i * minutes * 60_000, level(hour));
            step.event
                .filter(|e| e.kind == EventKind::Alarm)
                .map(|e| (hour, e))
        })
    }

    #[test]
    fn a_fading_battery_is_forecast_hours_before_it_crosses() {
        // 13.0 V falling 0.02 V/h with ±5 mV of noise: it reaches 11.8 V at hour 60.
        let noise = |hour: f64| (hour * 7919.0).sin() * 0.005;
        let level = |hour: f64| 13.0 - 0.02 * hour + noise(hour);
        let predicted = forecast(11.8, 48, 6);
        let below = rule(Condition::Below(11.8), None, None);
        let (warned_at, event) =
            first_alarm(&predicted, 10, 100, level).expect("the forecast fires");
        let (crossed_at, _) = first_alarm(&below, 10, 100, level).expect("the threshold fires");
        println!("forecast at {warned_at} h, threshold at {crossed_at} h");
        assert!(
            crossed_at - warned_at >= 40.0,
            "warned at {warned_at} h, crossed at {crossed_at} h"
        );
        let prediction = event.prediction.expect("a forecast carries its fit");
        assert!(prediction.r_squared >= MIN_FORECAST_R_SQUARED);
        assert!(prediction.points >= MIN_FORECAST_POINTS);
        let crossing_hour = prediction.crossing_ms.unwrap() as f64 / 3_600_000.0;
        assert!(
            (crossing_hour - 60.0).abs() < 4.0,
            "predicted crossing at {crossing_hour} h"
        );
        assert!(
            event.measured < 11.8,
            "the level predicted at the horizon: {}",
            event.measured
        );
    }

    #[test]
    fn a_forecast_clears_when_the_trend_turns_and_a_flat_series_clears_it_too() {
        let r = forecast(11.8, 48, 6);
        let mut state = AlertState::default();
        let mut kinds = Vec::new();
        for i in 0..(120 * 6) {
            let hour = i as f64 / 6.0;
            // Falling for 30 hours, then replaced: flat at 13.2 V with noise.
            let v = if hour < 30.0 {
                13.0 - 0.02 * hour
            } else {
                13.2 + (hour * 31.0).sin() * 0.003
            };
            kinds.extend(
                apply_reading(&r, &mut state, i * 600_000, v)
                    .event
                    .map(|e| e.kind),
            );
        }
        assert_eq!(kinds, vec![EventKind::Alarm, EventKind::Ok]);
    }

    proptest! {
        /// A noisy series with no trend never forecasts a crossing, however close its mean
        /// is to the threshold (as long as it is not already across it).
        #[test]
        fn a_noisy_stable_series_never_fires_a_forecast(
            mean in 12.0..13.0f64,
            noise in 0.0..0.3f64,
            seed in any::<u64>(),
        ) {
            let r = forecast(mean - noise - 0.05, 48, 6);
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut state = AlertState::default();
            for i in 0..(72 * 6) {
                let v = mean + (rng.f64() - 0.5) * 2.0 * noise;
                let step = apply_reading(&r, &mut state, i * 600_000, v);
                prop_assert!(step.event.is_none(), "fired at reading {i}: {:?}", step.event);
            }
        }
    }
}
