//! What a reading measures for its rule: the value itself, a rate, a predicted level or an
//! anomaly score. Rate, forecast and anomaly rules keep a window of samples in the state.

use super::anomaly::{ANOMALY_SAMPLES_PER_BASELINE, baseline_of};
use super::state::AlertState;
use super::trend::{FORECAST_SAMPLES_PER_WINDOW, fit_line, predict};
use crate::alerting::event::Prediction;
use crate::alerting::rule::{AlertRule, Anomaly, Condition, Forecast, RateOfChange};

/// A rate rule keeps one sample per eighth of its window.
const RATE_SAMPLES_PER_WINDOW: i64 = 8;

/// One reading's measure, before the state moves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Measurement {
    /// `None`: not enough history yet, so nothing can fire or clear (what was told may still
    /// have to catch up with the state).
    pub measured: Option<f64>,
    /// The measure may fire the rule: false for a forecast whose line fits too poorly.
    pub trusted: bool,
    /// A forecast rule's fit behind the measure.
    pub prediction: Option<Prediction>,
    /// The samples (or the baseline) changed: the state must be written.
    pub changed: bool,
}

impl Measurement {
    fn of(measured: Option<f64>, changed: bool) -> Self {
        Self {
            measured,
            trusted: true,
            prediction: None,
            changed,
        }
    }
}

pub(super) fn measure(
    rule: &AlertRule,
    state: &mut AlertState,
    time_ms: i64,
    value: f64,
) -> Measurement {
    match rule.condition {
        Condition::RateOfChange(rate) => measure_rate(&rate, state, time_ms, value),
        Condition::Forecast(forecast) => measure_forecast(&forecast, state, time_ms, value),
        Condition::Anomaly(anomaly) => measure_anomaly(&anomaly, state, time_ms, value),
        _ => Measurement::of(Some(value), false),
    }
}

/// The slope per hour of the line through the window.
fn measure_rate(
    rate: &RateOfChange,
    state: &mut AlertState,
    time_ms: i64,
    value: f64,
) -> Measurement {
    let changed = record_sample(
        state,
        rate.window_seconds,
        RATE_SAMPLES_PER_WINDOW,
        time_ms,
        value,
    );
    let slope =
        fit_line(&state.samples, rate.window_seconds, time_ms, value).map(|fit| fit.slope_per_hour);
    Measurement::of(slope, changed)
}

/// The level the line through the window predicts at the forecast's horizon.
fn measure_forecast(
    forecast: &Forecast,
    state: &mut AlertState,
    time_ms: i64,
    value: f64,
) -> Measurement {
    let changed = record_sample(
        state,
        forecast.window_seconds,
        FORECAST_SAMPLES_PER_WINDOW,
        time_ms,
        value,
    );
    match fit_line(&state.samples, forecast.window_seconds, time_ms, value) {
        Some(fit) => Measurement {
            measured: Some(fit.level_in(forecast.within_seconds)),
            trusted: fit.trusted(),
            prediction: Some(predict(forecast, &fit, time_ms)),
            changed,
        },
        None => Measurement::of(None, changed),
    }
}

/// The reading's score against the baseline before the reading joins it. States written
/// before the baseline was kept compute it once here.
fn measure_anomaly(
    anomaly: &Anomaly,
    state: &mut AlertState,
    time_ms: i64,
    value: f64,
) -> Measurement {
    if state.baseline.is_none() && !state.samples.is_empty() {
        state.baseline = baseline_of(&state.samples, anomaly.baseline_seconds, time_ms);
    }
    let score = state.baseline.map(|b| b.score(value));
    let joined = record_sample(
        state,
        anomaly.baseline_seconds,
        ANOMALY_SAMPLES_PER_BASELINE,
        time_ms,
        value,
    );
    if joined {
        state.baseline = baseline_of(&state.samples, anomaly.baseline_seconds, time_ms);
    }
    Measurement::of(score, joined)
}

/// Keep at most one sample per window/`per_window`; samples that left the window are dropped
/// only when a new one is stored, so in between nothing needs writing.
fn record_sample(
    state: &mut AlertState,
    window_seconds: u64,
    per_window: i64,
    time_ms: i64,
    value: f64,
) -> bool {
    let window_ms = window_seconds as i64 * 1000;
    let due = state
        .samples
        .last()
        .is_none_or(|(t, _)| time_ms - t >= window_ms / per_window);
    if due {
        state.samples.retain(|(t, _)| time_ms - t <= window_ms);
        state.samples.push((time_ms, value));
    }
    due
}
