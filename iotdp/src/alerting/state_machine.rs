//! The alarm state machine for one (device, rule) pair. Pure: readings in, state and events out.
//!
//! ```text
//!   OK ──fires──▶ PENDING ──debounce met──▶ ALARM ──ack──▶ ACKNOWLEDGED
//!    ▲  (or straight to ALARM without debounce)  │                  │
//!    └──────────────── clears ◀──────────────────┴──────────────────┘
//!   PENDING ──stops firing──▶ OK (silently: it never alarmed)
//! ```
//!
//! Boundaries: `above T` fires when value > T and clears when value ≤ clear (default T);
//! `below T` fires when value < T and clears when value ≥ clear; `outside [l, h]` fires outside
//! and clears inside the clear range (inclusive); `inside [l, h]` fires inside (inclusive) and
//! clears outside the clear range; a rate rule fires when the slope is steeper than `per_hour`
//! and clears when it is no steeper than the clear rate.

use serde::{Deserialize, Serialize};

use crate::alerting::event::{AlarmEvent, AlarmState, EventKind, Prediction};
use crate::alerting::notification::AlertNotification;
use crate::alerting::rule::{AlertRule, Clear, Condition, Debounce, Forecast};

/// Forecasts keep one sample per 32nd of the window (a state write at most that often)…
pub const FORECAST_SAMPLES_PER_WINDOW: i64 = 32;
/// …and fire only on a line fitted to at least this many points (the window half full)…
pub const MIN_FORECAST_POINTS: u32 = 16;
/// …that explains at least this share of the variance. A noisy stable series has an R² near 0
/// (16 points of noise reach 0.8 by chance with p < 10⁻⁵) and never fires; any fit, however
/// poor, can clear (a flat recovered series must).
pub const MIN_FORECAST_R_SQUARED: f64 = 0.8;
/// Anomaly baselines keep one sample per 64th of `baseline_seconds` (fewer leave the MAD of
/// an ordinary baseline too small by chance now and then)…
pub const ANOMALY_SAMPLES_PER_BASELINE: i64 = 64;
/// …and score nothing before half of them are there (the warm-up), or, for a sensor that
/// reports less often (hourly, into a one-day baseline), before a dozen span half the baseline.
pub const ANOMALY_WARM_UP_SAMPLES: usize = 32;
pub const ANOMALY_SPARSE_WARM_UP_SAMPLES: usize = 12;

/// Everything remembered for one (device, rule) pair between invocations.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertState {
    pub state: AlarmState,
    /// Optimistic concurrency: every write is conditional on the version that was read.
    pub version: u64,
    /// Event time of the last reading that changed this state; older readings do not move it.
    pub last_change_ms: Option<i64>,
    pub pending_count: u32,
    pub pending_since_ms: Option<i64>,
    pub alarm_since_ms: Option<i64>,
    pub last_notified_ms: Option<i64>,
    /// The value (or rate) measured by the last state-changing reading.
    pub last_measured: Option<f64>,
    /// Rate-of-change samples, oldest first: at most one per eighth of the window, so a steady
    /// stream of readings costs a state write only every window/8, not per reading.
    #[serde(default)]
    pub samples: Vec<(i64, f64)>,
    /// Notifications decided but not yet confirmed published (delivered on the next chance).
    #[serde(default)]
    pub owed: Vec<AlertNotification>,
    /// Wall-clock time the owed notifications were decided: a lease, so a concurrent
    /// invocation does not publish what the deciding one is publishing right now.
    pub owed_since_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Step {
    /// The state must be written back.
    pub changed: bool,
    pub event: Option<AlarmEvent>,
}

/// Apply one reading of the rule's metric at event time `time_ms`.
pub fn apply_reading(rule: &AlertRule, state: &mut AlertState, time_ms: i64, value: f64) -> Step {
    if !rule.enabled || state.last_change_ms.is_some_and(|last| time_ms <= last) {
        return Step::default();
    }
    let mut changed = false;
    let mut confident = true;
    let mut prediction = None;
    let measured = match rule.condition {
        Condition::RateOfChange(rate) => {
            changed |= record_sample(state, rate.window_seconds, 8, time_ms, value);
            match fit_line(&state.samples, rate.window_seconds, time_ms, value) {
                Some(fit) => fit.slope_per_hour,
                // Not enough history yet: nothing can fire or clear.
                None => return finish(state, changed, None, time_ms, value),
            }
        }
        Condition::Forecast(forecast) => {
            changed |= record_sample(
                state,
                forecast.window_seconds,
                FORECAST_SAMPLES_PER_WINDOW,
                time_ms,
                value,
            );
            let Some(fit) = fit_line(&state.samples, forecast.window_seconds, time_ms, value)
            else {
                return finish(state, changed, None, time_ms, value);
            };
            confident =
                fit.points >= MIN_FORECAST_POINTS && fit.r_squared >= MIN_FORECAST_R_SQUARED;
            prediction = Some(predict(&forecast, &fit, time_ms));
            fit.level_now + fit.slope_per_hour * forecast.within_seconds as f64 / 3600.0
        }
        Condition::Anomaly(anomaly) => {
            // Scored against the baseline before this reading joins it.
            let score = anomaly_score(&state.samples, anomaly.baseline_seconds, time_ms, value);
            changed |= record_sample(
                state,
                anomaly.baseline_seconds,
                ANOMALY_SAMPLES_PER_BASELINE,
                time_ms,
                value,
            );
            match score {
                Some(score) => score,
                None => return finish(state, changed, None, time_ms, value),
            }
        }
        _ => value,
    };
    let fires = confident && fires(rule, measured);
    let old = state.state;
    let mut event = None;
    let kind_for = |new| {
        if new == AlarmState::Alarm {
            EventKind::Alarm
        } else {
            EventKind::Ok
        }
    };
    let mut go = |state: &mut AlertState, new: AlarmState| {
        if old != new && (new == AlarmState::Alarm || (old.alarmed() && new == AlarmState::Ok)) {
            event = Some(AlarmEvent {
                kind: kind_for(new),
                old_state: old,
                new_state: new,
                time_ms,
                measured,
                prediction,
            });
        }
        state.state = new;
    };
    match old {
        AlarmState::Ok if fires => {
            state.pending_count = 1;
            state.pending_since_ms = Some(time_ms);
            let next = if debounce_met(rule, state, time_ms) {
                AlarmState::Alarm
            } else {
                AlarmState::Pending
            };
            go(state, next);
            changed = true;
        }
        AlarmState::Ok => {}
        AlarmState::Pending if fires => {
            state.pending_count = state.pending_count.saturating_add(1);
            if debounce_met(rule, state, time_ms) {
                go(state, AlarmState::Alarm);
                changed = true;
            } else {
                // A count debounce must remember the count; a time debounce needs no write.
                changed |= matches!(rule.debounce, Some(Debounce::Readings(_)));
            }
        }
        AlarmState::Pending => {
            go(state, AlarmState::Ok);
            changed = true;
        }
        AlarmState::Alarm | AlarmState::Acknowledged if clears(rule, measured) => {
            go(state, AlarmState::Ok);
            changed = true;
        }
        AlarmState::Alarm => {
            let due = rule.renotify_after.is_some_and(|after| {
                let since = state
                    .last_notified_ms
                    .or(state.alarm_since_ms)
                    .unwrap_or(time_ms);
                time_ms - since >= after as i64 * 1000
            });
            if due {
                event = Some(AlarmEvent {
                    kind: EventKind::Renotify,
                    old_state: AlarmState::Alarm,
                    new_state: AlarmState::Alarm,
                    time_ms,
                    measured,
                    prediction,
                });
                changed = true;
            }
        }
        AlarmState::Acknowledged => {}
    }
    if state.state != AlarmState::Pending {
        state.pending_count = 0;
        state.pending_since_ms = None;
    }
    if let Some(e) = event {
        if e.kind == EventKind::Alarm {
            state.alarm_since_ms = Some(time_ms);
        }
        if e.kind == EventKind::Ok {
            state.alarm_since_ms = None;
        }
        state.last_notified_ms = Some(time_ms);
    }
    finish(state, changed, event, time_ms, measured)
}

fn finish(
    state: &mut AlertState,
    changed: bool,
    event: Option<AlarmEvent>,
    time_ms: i64,
    measured: f64,
) -> Step {
    if changed {
        state.last_change_ms = Some(time_ms);
        state.last_measured = Some(measured);
    }
    Step { changed, event }
}

/// An operator's acknowledgement: only an ALARM can be acknowledged.
pub fn acknowledge(state: &mut AlertState) -> Result<(), AlarmState> {
    if state.state == AlarmState::Alarm {
        state.state = AlarmState::Acknowledged;
        Ok(())
    } else {
        Err(state.state)
    }
}

fn debounce_met(rule: &AlertRule, state: &AlertState, time_ms: i64) -> bool {
    match rule.debounce {
        None => true,
        Some(Debounce::Readings(n)) => state.pending_count >= n,
        Some(Debounce::Seconds(s)) => state
            .pending_since_ms
            .is_some_and(|since| time_ms - since >= s as i64 * 1000),
    }
}

pub fn fires(rule: &AlertRule, m: f64) -> bool {
    match rule.condition {
        Condition::Above(t) => m > t,
        Condition::Below(t) => m < t,
        Condition::Outside([l, h]) => m < l || m > h,
        Condition::Inside([l, h]) => (l..=h).contains(&m),
        Condition::RateOfChange(r) if r.per_hour < 0.0 => m < r.per_hour,
        Condition::RateOfChange(r) => m > r.per_hour,
        Condition::Forecast(f) => match f.threshold() {
            (t, true) => m < t,
            (t, false) => m > t,
        },
        Condition::Anomaly(a) => m > a.threshold,
    }
}

pub fn clears(rule: &AlertRule, m: f64) -> bool {
    let value = |default: f64| match rule.clear {
        Some(Clear::Value(c)) => c,
        _ => default,
    };
    let range = |default: [f64; 2]| match rule.clear {
        Some(Clear::Range(r)) => r,
        _ => default,
    };
    match rule.condition {
        Condition::Above(t) => m <= value(t),
        Condition::Below(t) => m >= value(t),
        Condition::Outside(r) => {
            let [l, h] = range(r);
            (l..=h).contains(&m)
        }
        Condition::Inside(r) => {
            let [l, h] = range(r);
            m < l || m > h
        }
        Condition::RateOfChange(r) if r.per_hour < 0.0 => m >= value(r.per_hour),
        Condition::RateOfChange(r) => m <= value(r.per_hour),
        Condition::Forecast(f) => match f.threshold() {
            (t, true) => m >= value(t),
            (t, false) => m <= value(t),
        },
        Condition::Anomaly(a) => m <= value(a.threshold),
    }
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

/// A least-squares line through a window's samples, times in hours relative to the reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub slope_per_hour: f64,
    /// The line's value at the reading's time.
    pub level_now: f64,
    pub r_squared: f64,
    pub points: u32,
}

/// When the fitted line reaches the forecast's threshold, and how well it fits.
fn predict(forecast: &Forecast, fit: &Fit, time_ms: i64) -> Prediction {
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

/// How many robust deviations `value` lies from the median of the baseline's samples:
/// |value − median| / scale, the scale the larger of 1.4826 · MAD and the standard deviation
/// of the middle three quarters of the samples, and at least 1 % of the median's size so a
/// sensor that repeats one value does not turn its first change into an anomaly. `None`
/// during the warm-up. No allocation: at most 65 samples are sorted on the stack.
pub fn anomaly_score(
    samples: &[(i64, f64)],
    baseline_seconds: u64,
    time_ms: i64,
    value: f64,
) -> Option<f64> {
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
    Some((value - centre).abs() / scale)
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

/// The least-squares line over the stored samples and the current reading. `None` until
/// there are three points spanning at least half the window. No allocation: it runs for every
/// reading of every rate and forecast rule.
fn fit_line(samples: &[(i64, f64)], window_seconds: u64, time_ms: i64, value: f64) -> Option<Fit> {
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
    use super::*;
    use crate::alerting::rule::{RateOfChange, Scope, Severity};
    use proptest::prelude::*;

    fn rule(condition: Condition, clear: Option<Clear>, debounce: Option<Debounce>) -> AlertRule {
        AlertRule {
            rule_id: "r".into(),
            name: "r".into(),
            enabled: true,
            scope: Scope::All,
            metric: "t".into(),
            condition,
            clear,
            debounce,
            severity: Severity::Warning,
            renotify_after: None,
            actions: Default::default(),
        }
    }

    /// Feed values one minute apart; return the state after each and the event kinds.
    fn run(rule: &AlertRule, values: &[f64]) -> (Vec<AlarmState>, Vec<EventKind>) {
        let mut state = AlertState::default();
        let mut states = Vec::new();
        let mut events = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let step = apply_reading(rule, &mut state, 1_000_000 + i as i64 * 60_000, *v);
            states.push(state.state);
            events.extend(step.event.map(|e| e.kind));
        }
        (states, events)
    }

    use AlarmState::{Alarm as A, Ok as O, Pending as P};

    #[test]
    fn hysteresis_keeps_the_alarm_until_the_clear_threshold() {
        let r = rule(Condition::Above(80.0), Some(Clear::Value(75.0)), None);
        let (states, events) = run(&r, &[70.0, 81.0, 78.0, 76.0, 75.0, 79.0, 80.5]);
        assert_eq!(states, vec![O, A, A, A, O, O, A]);
        assert_eq!(
            events,
            vec![EventKind::Alarm, EventKind::Ok, EventKind::Alarm]
        );
    }

    #[test]
    fn debounce_by_count_needs_consecutive_readings() {
        let r = rule(Condition::Below(10.0), None, Some(Debounce::Readings(3)));
        let (states, events) = run(&r, &[9.0, 9.0, 11.0, 9.0, 9.0, 9.0, 9.0]);
        assert_eq!(states, vec![P, P, O, P, P, A, A]);
        assert_eq!(events, vec![EventKind::Alarm]);
    }

    #[test]
    fn debounce_by_time_needs_the_condition_to_hold_long_enough() {
        let r = rule(
            Condition::Outside([18.0, 26.0]),
            None,
            Some(Debounce::Seconds(150)),
        );
        // One minute apart: pending at 0 s, 60 s, 120 s, fires at 180 s.
        let (states, events) = run(&r, &[27.0, 27.0, 27.0, 27.0, 20.0]);
        assert_eq!(states, vec![P, P, P, A, O]);
        assert_eq!(events, vec![EventKind::Alarm, EventKind::Ok]);
    }

    #[test]
    fn a_time_debounce_costs_no_write_while_pending() {
        let r = rule(Condition::Above(1.0), None, Some(Debounce::Seconds(600)));
        let mut state = AlertState::default();
        assert!(apply_reading(&r, &mut state, 0, 2.0).changed);
        assert!(!apply_reading(&r, &mut state, 60_000, 2.0).changed);
    }

    #[test]
    fn steady_state_writes_nothing() {
        let r = rule(Condition::Above(80.0), None, None);
        let mut state = AlertState::default();
        for i in 0..100 {
            assert!(!apply_reading(&r, &mut state, i * 1000, 20.0).changed);
        }
        apply_reading(&r, &mut state, 100_000, 90.0);
        for i in 101..200 {
            assert!(!apply_reading(&r, &mut state, i * 1000, 90.0).changed);
        }
    }

    #[test]
    fn older_readings_do_not_move_the_state() {
        let r = rule(Condition::Above(80.0), None, None);
        let mut state = AlertState::default();
        apply_reading(&r, &mut state, 10_000, 90.0);
        let step = apply_reading(&r, &mut state, 5_000, 10.0);
        assert_eq!(step, Step::default());
        assert_eq!(state.state, A);
    }

    #[test]
    fn acknowledged_alarms_are_not_renotified_but_still_clear() {
        let mut r = rule(Condition::Above(80.0), None, None);
        r.renotify_after = Some(120);
        let mut state = AlertState::default();
        let mut kinds = Vec::new();
        let mut feed = |state: &mut AlertState, minute: i64, v: f64| {
            kinds.extend(
                apply_reading(&r, state, minute * 60_000, v)
                    .event
                    .map(|e| e.kind),
            );
        };
        feed(&mut state, 0, 90.0);
        feed(&mut state, 1, 90.0);
        feed(&mut state, 2, 90.0); // 120 s since the alarm: renotify
        feed(&mut state, 3, 90.0);
        feed(&mut state, 4, 90.0); // 120 s since the renotify: renotify
        acknowledge(&mut state).unwrap();
        feed(&mut state, 10, 90.0); // acknowledged: silent
        feed(&mut state, 11, 50.0); // clears: back to OK is notified
        assert_eq!(
            kinds,
            vec![
                EventKind::Alarm,
                EventKind::Renotify,
                EventKind::Renotify,
                EventKind::Ok
            ]
        );
        assert_eq!(acknowledge(&mut state), Err(O));
    }

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

    fn any_rule() -> impl Strategy<Value = AlertRule> {
        let condition = prop_oneof![
            (0.0..100.0f64).prop_map(Condition::Above),
            (0.0..100.0f64).prop_map(Condition::Below),
            (0.0..50.0f64, 50.0..100.0f64).prop_map(|(l, h)| Condition::Outside([l, h])),
            (0.0..50.0f64, 50.0..100.0f64).prop_map(|(l, h)| Condition::Inside([l, h])),
            (0.0..100.0f64, any::<bool>(), 600..7200u64, 600..7200u64).prop_map(
                |(t, falling, within, window)| Condition::Forecast(Forecast {
                    below: falling.then_some(t),
                    above: (!falling).then_some(t),
                    within_seconds: within,
                    window_seconds: window,
                })
            ),
            (1.0..6.0f64, 3600..7200u64).prop_map(|(threshold, baseline)| Condition::Anomaly(
                crate::alerting::rule::Anomaly {
                    threshold,
                    baseline_seconds: baseline
                }
            )),
        ];
        let debounce = prop_oneof![
            Just(None),
            (1..4u32).prop_map(|n| Some(Debounce::Readings(n))),
            (0..300u64).prop_map(|s| Some(Debounce::Seconds(s))),
        ];
        (
            condition,
            debounce,
            0.0..20.0f64,
            proptest::option::of(60..600u64),
        )
            .prop_map(|(condition, debounce, margin, renotify)| {
                let clear = match condition {
                    Condition::Above(t) => Some(Clear::Value(t - margin)),
                    Condition::Below(t) => Some(Clear::Value(t + margin)),
                    Condition::Outside([l, h]) => {
                        Some(Clear::Range([l + margin.min((h - l) / 2.0), h]))
                    }
                    Condition::Inside([l, h]) => Some(Clear::Range([l - margin, h + margin])),
                    Condition::Forecast(f) => match f.threshold() {
                        (t, true) => Some(Clear::Value(t + margin)),
                        (t, false) => Some(Clear::Value(t - margin)),
                    },
                    Condition::Anomaly(a) => {
                        Some(Clear::Value(a.threshold * (1.0 - margin / 40.0)))
                    }
                    Condition::RateOfChange(_) => None,
                };
                let mut r = rule(condition, clear, debounce);
                r.renotify_after = renotify;
                r
            })
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

    proptest! {
        /// For any rule and any sequence of readings, the notifications are exactly the
        /// transitions into and out of ALARM, alternating, and never anything else.
        #[test]
        fn notifications_equal_transitions_into_and_out_of_alarm(
            rule in any_rule(),
            readings in proptest::collection::vec((0.0..100.0f64, 1..120_000i64, any::<bool>()), 1..200),
        ) {
            let mut state = AlertState::default();
            let mut t = 0;
            let mut alarm_kinds = Vec::new();
            for (value, gap, ack) in readings {
                t += gap;
                let before = state.state;
                let step = apply_reading(&rule, &mut state, t, value);
                let after = state.state;
                let entered = before != AlarmState::Alarm && after == AlarmState::Alarm;
                let left = before.alarmed() && after == AlarmState::Ok;
                let kind = step.event.map(|e| e.kind);
                prop_assert_eq!(kind == Some(EventKind::Alarm), entered);
                prop_assert_eq!(kind == Some(EventKind::Ok), left);
                if kind == Some(EventKind::Renotify) {
                    prop_assert_eq!((before, after), (AlarmState::Alarm, AlarmState::Alarm));
                }
                if step.event.is_some() {
                    prop_assert!(step.changed, "an event is always written");
                }
                if matches!(kind, Some(EventKind::Alarm | EventKind::Ok)) {
                    alarm_kinds.push(kind.unwrap());
                }
                if ack {
                    let _ = acknowledge(&mut state);
                }
            }
            for pair in alarm_kinds.windows(2) {
                prop_assert_ne!(pair[0], pair[1], "ALARM and OK alternate");
            }
        }

        /// Without debounce, the state follows the hysteresis model exactly.
        #[test]
        fn thresholds_follow_the_hysteresis_model(
            threshold in 20.0..80.0f64,
            margin in 0.0..15.0f64,
            values in proptest::collection::vec(0.0..100.0f64, 1..100),
        ) {
            let r = rule(Condition::Above(threshold), Some(Clear::Value(threshold - margin)), None);
            let mut state = AlertState::default();
            let mut model_alarmed = false;
            for (i, v) in values.iter().enumerate() {
                apply_reading(&r, &mut state, i as i64 * 1000, *v);
                model_alarmed = if model_alarmed { *v > threshold - margin } else { *v > threshold };
                prop_assert_eq!(state.state == AlarmState::Alarm, model_alarmed);
            }
        }
    }
}
