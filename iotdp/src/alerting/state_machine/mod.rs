//! The alarm state machine for one (device, rule) pair. Pure: readings in, state and events out.
//!
//! ```text
//!   OK ──fires──▶ PENDING ──debounce met──▶ ALARM ──ack──▶ ACKNOWLEDGED
//!    ▲  (or straight to ALARM without debounce)  │                  │
//!    └──────────────── clears ◀──────────────────┴──────────────────┘
//!   PENDING ──stops firing──▶ OK (silently: it never alarmed)
//!   ALARM ──clears, rule latched──▶ LATCHED ──ack──▶ OK   (fires again: ALARM)
//!   any ──disable──▶ DISABLED ──enable──▶ OK;   any but DISABLED ──reset──▶ OK
//! ```
//!
//! Notifications are the differences between what subscribers were last told (`told`: OK, or
//! raised at a level) and the state: raised (`alarm`), cleared (`ok`), a level up or down
//! (`escalated`, `deescalated`). A snooze, a suppression (the device's gateway is down) or
//! flapping quiets them; what is still different when the quiet ends is told then. Flapping
//! replaces the transitions by one `flapping` and one `settled` notification.
//!
//! Boundaries: `above T` fires when value > T and clears when value ≤ clear (default T);
//! `below T` fires when value < T and clears when value ≥ clear; `outside [l, h]` fires outside
//! and clears inside the clear range (inclusive); `inside [l, h]` fires inside (inclusive) and
//! clears outside the clear range; a rate rule fires when the slope is steeper than `per_hour`
//! and clears when it is no steeper than the clear rate.

use serde::{Deserialize, Serialize};

use crate::alerting::event::{AlarmEvent, AlarmState, EventKind, Prediction};
use crate::alerting::notification::AlertNotification;
use crate::alerting::rule::{
    AlertRule, Clear, Condition, Debounce, Forecast, Severity, condition_fires,
};

/// Forecasts keep one sample per 32nd of the window (a state write at most that often)…
pub const FORECAST_SAMPLES_PER_WINDOW: i64 = 32;
/// …and fire only on a line fitted to at least this many points (the window half full)…
pub const MIN_FORECAST_POINTS: u32 = 16;
/// …that explains at least this share of the variance. A noisy stable series has an R² near 0:
/// 16 points of noise reach 0.9 by chance with p ≈ 2·10⁻⁸ per fit (0.8: p ≈ 3·10⁻⁶, which a
/// fleet's thousands of fits a minute, and the property test's, do reach); any fit, however
/// poor, can clear (a flat recovered series must).
pub const MIN_FORECAST_R_SQUARED: f64 = 0.9;
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
    /// The level the alarm is raised at (`None` while not raised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Severity>,
    /// What subscribers were last told. Notifications are the differences between this and
    /// the state, announced whenever nothing quiets them (a snooze, a suppression, flapping).
    /// Absent in states written before it existed: then they were told the state itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub told: Option<Told>,
    /// No notifications for this pair before this event time (an operator's snooze).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snoozed_until_ms: Option<i64>,
    /// The alarm is raised but held back by a suppression (its gateway is silent or
    /// suspended): recorded and listed, notified only if it outlasts the suppression.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suppressed: bool,
    /// Event times of the last state changes, oldest first (flapping rules only, at most
    /// `flapping.high`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<i64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub flapping: bool,
    /// An anomaly rule's baseline (median and scale of its samples), recomputed only when a
    /// sample joins: scoring a reading is then a subtraction and a division, not two sorts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
}

/// The centre and scale an anomaly rule scores readings against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub centre: f64,
    pub scale: f64,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// What subscribers believe about a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Told {
    Ok,
    Alarm(Severity),
}

impl Told {
    /// How the state presents itself to subscribers: raised at its level, or not raised.
    pub fn of(state: AlarmState, level: Option<Severity>, rule: &AlertRule) -> Self {
        if state.alarmed() {
            Told::Alarm(level.unwrap_or(rule.severity))
        } else {
            Told::Ok
        }
    }
}

/// The shadow patch a step asks for: the rule's `on_alarm` or `on_ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    OnAlarm,
    OnOk,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Step {
    /// The state must be written back.
    pub changed: bool,
    pub event: Option<AlarmEvent>,
    /// A command for the device. It follows the state itself, not what was told: a snooze
    /// quiets people, not the devices' protection. Held back only while the pair flaps.
    pub action: Option<ActionKind>,
}

/// Apply one reading of the rule's metric at event time `time_ms`.
pub fn apply_reading(rule: &AlertRule, state: &mut AlertState, time_ms: i64, value: f64) -> Step {
    evaluate(rule, state, time_ms, value, false)
}

/// Apply one reading whose transitions are recorded but not notified (the device's gateway
/// is silent or suspended); the next reading without suppression announces what remains.
pub fn apply_suppressed_reading(
    rule: &AlertRule,
    state: &mut AlertState,
    time_ms: i64,
    value: f64,
) -> Step {
    evaluate(rule, state, time_ms, value, true)
}

fn evaluate(
    rule: &AlertRule,
    state: &mut AlertState,
    time_ms: i64,
    value: f64,
    suppressed: bool,
) -> Step {
    if !rule.enabled
        || state.state == AlarmState::Disabled
        || state.last_change_ms.is_some_and(|last| time_ms <= last)
    {
        return Step::default();
    }
    let mut changed = false;
    let mut confident = true;
    let mut prediction = None;
    // `None`: not enough history yet, so nothing can fire or clear (what was told may still
    // have to catch up with the state).
    let measured = match rule.condition {
        Condition::RateOfChange(rate) => {
            changed |= record_sample(state, rate.window_seconds, 8, time_ms, value);
            fit_line(&state.samples, rate.window_seconds, time_ms, value)
                .map(|fit| fit.slope_per_hour)
        }
        Condition::Forecast(forecast) => {
            changed |= record_sample(
                state,
                forecast.window_seconds,
                FORECAST_SAMPLES_PER_WINDOW,
                time_ms,
                value,
            );
            fit_line(&state.samples, forecast.window_seconds, time_ms, value).map(|fit| {
                confident =
                    fit.points >= MIN_FORECAST_POINTS && fit.r_squared >= MIN_FORECAST_R_SQUARED;
                prediction = Some(predict(&forecast, &fit, time_ms));
                fit.level_now + fit.slope_per_hour * forecast.within_seconds as f64 / 3600.0
            })
        }
        Condition::Anomaly(anomaly) => {
            // Scored against the baseline before this reading joins it. States written before
            // the baseline was kept compute it once here.
            if state.baseline.is_none() && !state.samples.is_empty() {
                state.baseline = baseline_of(&state.samples, anomaly.baseline_seconds, time_ms);
            }
            let score = state.baseline.map(|b| (value - b.centre).abs() / b.scale);
            if record_sample(
                state,
                anomaly.baseline_seconds,
                ANOMALY_SAMPLES_PER_BASELINE,
                time_ms,
                value,
            ) {
                state.baseline = baseline_of(&state.samples, anomaly.baseline_seconds, time_ms);
                changed = true;
            }
            score
        }
        _ => Some(value),
    };
    let fires = confident && measured.is_some_and(|m| fires(rule, m));
    let clears_now = |m: Option<f64>| m.is_some_and(|m| clears(rule, m));
    let old = state.state;
    let before = Told::of(old, state.level, rule);

    // 1. The transition itself.
    let mut new = old;
    match old {
        _ if measured.is_none() => {}
        AlarmState::Ok if fires => {
            state.pending_count = 1;
            state.pending_since_ms = Some(time_ms);
            new = if debounce_met(rule, state, time_ms) {
                AlarmState::Alarm
            } else {
                AlarmState::Pending
            };
            changed = true;
        }
        AlarmState::Pending if fires => {
            state.pending_count = state.pending_count.saturating_add(1);
            if debounce_met(rule, state, time_ms) {
                new = AlarmState::Alarm;
                changed = true;
            } else {
                // A count debounce must remember the count; a time debounce needs no write.
                changed |= matches!(rule.debounce, Some(Debounce::Readings(_)));
            }
        }
        AlarmState::Pending => {
            new = AlarmState::Ok;
            changed = true;
        }
        AlarmState::Alarm if clears_now(measured) => {
            new = if rule.latched {
                AlarmState::Latched
            } else {
                AlarmState::Ok
            };
            changed = true;
        }
        AlarmState::Acknowledged if clears_now(measured) => {
            new = AlarmState::Ok;
            changed = true;
        }
        AlarmState::Latched if fires => {
            new = AlarmState::Alarm;
            changed = true;
        }
        AlarmState::Ok
        | AlarmState::Alarm
        | AlarmState::Acknowledged
        | AlarmState::Latched
        | AlarmState::Disabled => {}
    }

    // 2. The level, while raised with the condition holding (a latched alarm keeps its own).
    if matches!(new, AlarmState::Alarm | AlarmState::Acknowledged) {
        let level = measured.map_or(state.level.unwrap_or(rule.severity), |m| rule.level_for(m));
        if state.level != Some(level) {
            // An acknowledged alarm that escalates needs attention again.
            if new == AlarmState::Acknowledged && state.level.is_some_and(|l| level > l) {
                new = AlarmState::Alarm;
            }
            state.level = Some(level);
            changed = true;
        }
    } else if new == AlarmState::Latched {
        if state.level.is_none() {
            state.level = Some(rule.severity);
            changed = true;
        }
    } else if state.level.take().is_some() {
        changed = true;
    }
    if new != AlarmState::Pending {
        state.pending_count = 0;
        state.pending_since_ms = None;
    }
    if new.alarmed() && !old.alarmed() {
        state.alarm_since_ms = Some(time_ms);
    } else if !new.alarmed() && old.alarmed() {
        state.alarm_since_ms = None;
    }
    state.state = new;
    let actual = Told::of(new, state.level, rule);
    let mut action = match (before, actual) {
        (Told::Ok, Told::Alarm(_)) => Some(ActionKind::OnAlarm),
        (Told::Alarm(_), Told::Ok) => Some(ActionKind::OnOk),
        _ => None,
    };

    // 3. What subscribers are to be told.
    let stored_told = state.told;
    let mut told = stored_told.unwrap_or(before);
    let told_before = told;
    let mut kind = None;
    // A snooze or a suppression quiets everything, flapping notifications included (the
    // flapping itself is still tracked, and commands still follow the state).
    let snoozed = state.snoozed_until_ms.is_some_and(|until| time_ms < until);
    let held = suppressed || snoozed;
    if let Some(flapping) = rule.flapping {
        if actual != before {
            state.changes.push(time_ms);
            let excess = state.changes.len().saturating_sub(flapping.high as usize);
            state.changes.drain(..excess);
        }
        let window_ms = flapping.window_seconds as i64 * 1000;
        let recent = state
            .changes
            .iter()
            .filter(|&&t| time_ms - t < window_ms)
            .count();
        if !state.flapping && recent >= flapping.high as usize {
            state.flapping = true;
            changed = true;
            if !held {
                kind = Some(EventKind::Flapping);
            }
        } else if state.flapping && recent <= flapping.low as usize {
            state.flapping = false;
            changed = true;
            if !held {
                kind = Some(EventKind::Settled);
                told = actual;
            }
            // The device gets the command for the state the pair settled in.
            action = Some(if new.alarmed() {
                ActionKind::OnAlarm
            } else {
                ActionKind::OnOk
            });
        }
        if state.flapping {
            action = None;
        }
    }
    let quiet = held || state.flapping;
    if kind.is_none() && !quiet && told != actual {
        kind = Some(match (told, actual) {
            (Told::Ok, Told::Alarm(_)) => EventKind::Alarm,
            (Told::Alarm(_), Told::Ok) => EventKind::Ok,
            (Told::Alarm(was), Told::Alarm(now)) if now > was => EventKind::Escalated,
            _ => EventKind::Deescalated,
        });
        told = actual;
    }
    if kind.is_none() && !quiet && matches!(new, AlarmState::Alarm | AlarmState::Latched) {
        let renotify_due = rule.renotify_after.is_some_and(|after| {
            let since = state
                .last_notified_ms
                .or(state.alarm_since_ms)
                .unwrap_or(time_ms);
            time_ms - since >= after as i64 * 1000
        });
        // A snooze that ran out on an unacknowledged alarm: remind once.
        let snooze_over = state.snoozed_until_ms.is_some();
        if renotify_due || snooze_over {
            kind = Some(EventKind::Renotify);
        }
    }
    if state.snoozed_until_ms.is_some() && !snoozed {
        state.snoozed_until_ms = None;
        changed = true;
    }
    let held_back = suppressed && told != actual;
    if state.suppressed != held_back {
        state.suppressed = held_back;
        changed = true;
    }
    if stored_told != Some(told) && (stored_told.is_some() || changed || told != before) {
        state.told = Some(told);
        changed = true;
    }
    let event = kind.map(|kind| {
        let severity = match (kind, told_before, actual) {
            (EventKind::Ok, Told::Alarm(severity), _) => severity,
            (_, _, Told::Alarm(severity)) => severity,
            _ => rule.severity,
        };
        state.last_notified_ms = Some(time_ms);
        changed = true;
        AlarmEvent {
            kind,
            old_state: old,
            new_state: new,
            severity,
            time_ms,
            measured: measured.unwrap_or(value),
            prediction,
        }
    });
    finish(
        state,
        changed,
        event,
        action,
        time_ms,
        measured.unwrap_or(value),
    )
}

fn finish(
    state: &mut AlertState,
    changed: bool,
    event: Option<AlarmEvent>,
    action: Option<ActionKind>,
    time_ms: i64,
    measured: f64,
) -> Step {
    if changed {
        state.last_change_ms = Some(time_ms);
        state.last_measured = Some(measured);
    }
    Step {
        changed,
        event,
        action,
    }
}

/// What an operator does to one (device, rule) pair (the CLI and the API call these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorAction {
    /// ALARM → ACKNOWLEDGED (no re-notification until it clears); LATCHED → OK.
    Acknowledge,
    /// No notifications before this event time (a time in the past ends a snooze).
    Snooze { until_ms: i64 },
    /// Stop evaluating this pair until enabled (any state → DISABLED).
    Disable,
    /// DISABLED → OK; evaluation resumes with the next reading.
    Enable,
    /// Back to OK from any state but DISABLED, forgetting the alarm; a condition that still
    /// holds raises it again with the next reading.
    Reset,
}

impl OperatorAction {
    pub fn name(self) -> &'static str {
        match self {
            OperatorAction::Acknowledge => "acknowledge",
            OperatorAction::Snooze { .. } => "snooze",
            OperatorAction::Disable => "disable",
            OperatorAction::Enable => "enable",
            OperatorAction::Reset => "reset",
        }
    }

    /// The states the action applies to, as an error message says it.
    pub fn applies_to(self) -> &'static str {
        match self {
            OperatorAction::Acknowledge => "ALARM or LATCHED",
            OperatorAction::Enable => "DISABLED",
            OperatorAction::Disable => "any state but DISABLED",
            OperatorAction::Snooze { .. } | OperatorAction::Reset => "any state but DISABLED",
        }
    }
}

/// Apply an operator's action. Operators' actions are not notified: whoever acted knows, and
/// the API's audit log records it; what subscribers were told is set to the result, so no
/// notification is later sent on account of the action. `Err` carries the state that does not
/// allow it.
pub fn operate(state: &mut AlertState, action: OperatorAction) -> Result<(), AlarmState> {
    let forget_alarm = |state: &mut AlertState, to: AlarmState| {
        state.state = to;
        state.level = None;
        state.told = Some(Told::Ok);
        state.pending_count = 0;
        state.pending_since_ms = None;
        state.alarm_since_ms = None;
        state.suppressed = false;
        state.flapping = false;
        state.changes.clear();
    };
    match (action, state.state) {
        (OperatorAction::Acknowledge, AlarmState::Alarm) => {
            state.state = AlarmState::Acknowledged;
        }
        (OperatorAction::Acknowledge, AlarmState::Latched) => forget_alarm(state, AlarmState::Ok),
        (OperatorAction::Enable, AlarmState::Disabled) => state.state = AlarmState::Ok,
        (OperatorAction::Acknowledge | OperatorAction::Enable, current)
        | (
            OperatorAction::Disable | OperatorAction::Reset | OperatorAction::Snooze { .. },
            current @ AlarmState::Disabled,
        ) => return Err(current),
        (OperatorAction::Disable, _) => {
            forget_alarm(state, AlarmState::Disabled);
            state.snoozed_until_ms = None;
        }
        (OperatorAction::Reset, _) => {
            forget_alarm(state, AlarmState::Ok);
            state.last_notified_ms = None;
        }
        (OperatorAction::Snooze { until_ms }, _) => {
            state.snoozed_until_ms = Some(until_ms);
        }
    }
    Ok(())
}

/// An operator's acknowledgement: only an ALARM (or a LATCHED alarm) can be acknowledged.
pub fn acknowledge(state: &mut AlertState) -> Result<(), AlarmState> {
    operate(state, OperatorAction::Acknowledge)
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

/// The entry condition fires: the alarm is to be raised.
pub fn fires(rule: &AlertRule, m: f64) -> bool {
    condition_fires(&rule.condition, m)
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

/// How many robust deviations `value` lies from the median of the baseline's samples (see
/// [`baseline_of`]); `None` during the warm-up.
pub fn anomaly_score(
    samples: &[(i64, f64)],
    baseline_seconds: u64,
    time_ms: i64,
    value: f64,
) -> Option<f64> {
    baseline_of(samples, baseline_seconds, time_ms).map(|b| (value - b.centre).abs() / b.scale)
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
    use crate::alerting::rule::{MAX_FLAPPING_CHANGES, RateOfChange, Scope, Severity};
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
            levels: Vec::new(),
            renotify_after: None,
            latched: false,
            flapping: None,
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

    fn levels_rule() -> AlertRule {
        AlertRule::from_json(
            r#"{"rule_id":"hot","name":"Room too hot","scope":"all","metric":"t",
                "levels":{"warning":{"above":26},"critical":{"above":30}}}"#,
        )
        .unwrap()
    }

    /// Feed values a minute apart from `start_minute`; the (kind, severity) of each event.
    fn feed(
        rule: &AlertRule,
        state: &mut AlertState,
        start_minute: i64,
        values: &[f64],
    ) -> Vec<(EventKind, Severity)> {
        values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                apply_reading(rule, state, (start_minute + i as i64) * 60_000, *v)
                    .event
                    .map(|e| (e.kind, e.severity))
            })
            .collect()
    }

    #[test]
    fn one_rule_escalates_and_deescalates_through_its_levels() {
        let r = levels_rule();
        let mut state = AlertState::default();
        let kinds = feed(&r, &mut state, 0, &[25.0, 27.0, 31.0, 32.0, 28.0, 25.0]);
        assert_eq!(
            kinds,
            vec![
                (EventKind::Alarm, Severity::Warning),
                (EventKind::Escalated, Severity::Critical),
                (EventKind::Deescalated, Severity::Warning),
                (EventKind::Ok, Severity::Warning),
            ]
        );
        // Straight to critical: one alarm, at the critical level.
        let mut state = AlertState::default();
        assert_eq!(
            feed(&r, &mut state, 0, &[35.0, 20.0]),
            vec![
                (EventKind::Alarm, Severity::Critical),
                (EventKind::Ok, Severity::Critical)
            ]
        );
    }

    #[test]
    fn an_acknowledged_warning_that_escalates_is_an_alarm_again() {
        let r = levels_rule();
        let mut state = AlertState::default();
        feed(&r, &mut state, 0, &[27.0]);
        acknowledge(&mut state).unwrap();
        assert_eq!(
            feed(&r, &mut state, 1, &[28.0, 31.0]),
            vec![(EventKind::Escalated, Severity::Critical)]
        );
        assert_eq!(state.state, A);
    }

    #[test]
    fn levels_must_be_stricter_and_of_the_same_kind() {
        let rule = |levels: &str| {
            AlertRule::from_json(&format!(
                r#"{{"rule_id":"r","name":"n","scope":"all","metric":"t","levels":{levels}}}"#
            ))
        };
        assert!(rule(r#"{"warning":{"outside":[18,26]},"critical":{"outside":[15,30]}}"#).is_ok());
        for (levels, field) in [
            (
                r#"{"warning":{"above":30},"critical":{"above":26}}"#,
                "levels.critical",
            ),
            (
                r#"{"warning":{"above":26},"critical":{"below":10}}"#,
                "levels.critical",
            ),
            (
                r#"{"info":{"below":20},"warning":{"below":20}}"#,
                "levels.warning",
            ),
            (
                r#"{"warning":{"outside":[18,26]},"critical":{"outside":[19,30]}}"#,
                "levels.critical",
            ),
            (r#"{}"#, "levels"),
        ] {
            assert_eq!(rule(levels).unwrap_err().field, field, "{levels}");
        }
        let both = r#"{"rule_id":"r","name":"n","scope":"all","metric":"t","condition":{"above":1},"severity":"info","levels":{"warning":{"above":2}}}"#;
        assert_eq!(AlertRule::from_json(both).unwrap_err().field, "levels");
        // The JSON form survives a round trip.
        let r = levels_rule();
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            text.contains(r#""levels":{"warning":{"above":26.0},"critical":{"above":30.0}}"#),
            "{text}"
        );
        assert_eq!(AlertRule::from_json(&text).unwrap(), r);
    }

    #[test]
    fn a_latched_alarm_stays_raised_until_acknowledged() {
        let mut r = rule(Condition::Above(80.0), None, None);
        r.latched = true;
        let mut state = AlertState::default();
        assert_eq!(
            feed(&r, &mut state, 0, &[90.0, 50.0, 40.0]),
            vec![(EventKind::Alarm, Severity::Warning)]
        );
        assert_eq!(state.state, AlarmState::Latched);
        // Firing again while latched is the same alarm: no second notification.
        assert!(feed(&r, &mut state, 3, &[95.0, 50.0]).is_empty());
        assert_eq!(state.state, AlarmState::Latched);
        acknowledge(&mut state).unwrap();
        assert_eq!(state.state, O);
        assert!(
            feed(&r, &mut state, 5, &[50.0]).is_empty(),
            "the acknowledger closed it"
        );
        // Acknowledged before it clears: back to OK when it clears, notified.
        assert_eq!(
            feed(&r, &mut state, 6, &[90.0]),
            vec![(EventKind::Alarm, Severity::Warning)]
        );
        acknowledge(&mut state).unwrap();
        assert_eq!(
            feed(&r, &mut state, 7, &[50.0]),
            vec![(EventKind::Ok, Severity::Warning)]
        );
    }

    #[test]
    fn a_flapping_pair_sends_one_flapping_and_one_settled_notification() {
        let mut r = rule(Condition::Above(80.0), None, None);
        r.actions.on_alarm = Some(serde_json::json!({"fan": true}));
        r.flapping = Some(crate::alerting::rule::Flapping {
            low: 1,
            high: 4,
            window_seconds: 600,
        });
        let mut state = AlertState::default();
        let mut kinds = Vec::new();
        let mut actions = Vec::new();
        // Alternating every minute for 20 minutes, then steadily in alarm for 20.
        for minute in 0..40i64 {
            let v = if minute < 20 && minute % 2 == 1 {
                70.0
            } else {
                90.0
            };
            let step = apply_reading(&r, &mut state, minute * 60_000, v);
            kinds.extend(step.event.map(|e| (minute, e.kind, e.new_state)));
            actions.extend(step.action.map(|a| (minute, a)));
        }
        assert_eq!(
            kinds,
            vec![
                (0, EventKind::Alarm, A),
                (1, EventKind::Ok, O),
                (2, EventKind::Alarm, A),
                (3, EventKind::Flapping, O),
                // The last change was at minute 20; at 29 only it is in the last 10 minutes.
                (29, EventKind::Settled, A),
            ]
        );
        assert_eq!(
            actions,
            vec![
                (0, ActionKind::OnAlarm),
                (1, ActionKind::OnOk),
                (2, ActionKind::OnAlarm),
                (29, ActionKind::OnAlarm)
            ],
            "commands are held back while flapping and sent for the state it settled in"
        );
        assert!(state.changes.len() <= 4);
    }

    #[test]
    fn a_snooze_holds_notifications_back_and_what_remains_is_told_when_it_ends() {
        let r = rule(Condition::Above(80.0), None, None);
        let mut state = AlertState::default();
        operate(
            &mut state,
            OperatorAction::Snooze {
                until_ms: 10 * 60_000,
            },
        )
        .unwrap();
        // Raised and cleared within the snooze: nobody hears of it.
        assert!(feed(&r, &mut state, 0, &[90.0, 50.0]).is_empty());
        // Raised during the snooze and still raised after it: told when it ends.
        assert!(feed(&r, &mut state, 2, &[90.0, 91.0]).is_empty());
        assert_eq!(
            feed(&r, &mut state, 10, &[92.0, 93.0]),
            vec![(EventKind::Alarm, Severity::Warning)]
        );
        assert_eq!(state.snoozed_until_ms, None);
        // Told before the snooze, still raised after it: reminded once.
        operate(
            &mut state,
            OperatorAction::Snooze {
                until_ms: 20 * 60_000,
            },
        )
        .unwrap();
        assert!(feed(&r, &mut state, 12, &[95.0]).is_empty());
        assert_eq!(
            feed(&r, &mut state, 20, &[95.0, 96.0]),
            vec![(EventKind::Renotify, Severity::Warning)]
        );
    }

    #[test]
    fn a_suppressed_alarm_is_told_only_if_it_outlasts_the_suppression() {
        let r = rule(Condition::Above(0.0), None, None);
        let mut state = AlertState::default();
        let step = apply_suppressed_reading(&r, &mut state, 1_000, 600.0);
        assert!(step.event.is_none() && step.changed);
        assert!(state.suppressed && state.state == A);
        // Still silent, still suppressed: no write.
        assert!(!apply_suppressed_reading(&r, &mut state, 2_000, 700.0).changed);
        // The suppression lifted and the device is still silent: told now.
        let step = apply_reading(&r, &mut state, 3_000, 800.0);
        assert_eq!(step.event.map(|e| e.kind), Some(EventKind::Alarm));
        assert!(!state.suppressed);
        // Another one that clears while suppressed is never told at all.
        let mut other = AlertState::default();
        apply_suppressed_reading(&r, &mut other, 1_000, 600.0);
        assert!(apply_reading(&r, &mut other, 2_000, 0.0).event.is_none());
        assert_eq!(other.state, O);
    }

    #[test]
    fn a_disabled_pair_is_not_evaluated_until_enabled_and_reset_forgets_the_alarm() {
        let r = rule(Condition::Above(80.0), None, None);
        let mut state = AlertState::default();
        feed(&r, &mut state, 0, &[90.0]);
        operate(&mut state, OperatorAction::Disable).unwrap();
        assert_eq!(state.state, AlarmState::Disabled);
        assert!(!apply_reading(&r, &mut state, 60_000, 95.0).changed);
        assert_eq!(
            operate(&mut state, OperatorAction::Reset),
            Err(AlarmState::Disabled)
        );
        assert_eq!(
            operate(&mut state, OperatorAction::Snooze { until_ms: 1 }),
            Err(AlarmState::Disabled)
        );
        operate(&mut state, OperatorAction::Enable).unwrap();
        assert_eq!(operate(&mut state, OperatorAction::Enable), Err(O));
        // Enabled while the condition holds: a new alarm, told.
        assert_eq!(
            feed(&r, &mut state, 2, &[95.0]),
            vec![(EventKind::Alarm, Severity::Warning)]
        );
        operate(&mut state, OperatorAction::Reset).unwrap();
        assert_eq!(state.state, O);
        assert_eq!(
            feed(&r, &mut state, 3, &[96.0]),
            vec![(EventKind::Alarm, Severity::Warning)],
            "a condition that still holds raises it again"
        );
    }

    #[test]
    fn states_written_before_told_existed_are_taken_as_told() {
        let r = rule(Condition::Above(80.0), None, None);
        let mut state = AlertState::default();
        feed(&r, &mut state, 0, &[90.0]);
        let mut legacy: serde_json::Value = serde_json::to_value(&state).unwrap();
        legacy.as_object_mut().unwrap().remove("told");
        legacy.as_object_mut().unwrap().remove("level");
        let mut legacy: AlertState = serde_json::from_value(legacy).unwrap();
        assert!(
            feed(&r, &mut legacy, 1, &[91.0]).is_empty(),
            "no second alarm"
        );
        assert_eq!(
            feed(&r, &mut legacy, 2, &[50.0]),
            vec![(EventKind::Ok, Severity::Warning)]
        );
    }

    /// Any rule of the v2 vocabulary: levels, latched, flapping on top of [`any_rule`].
    fn any_v2_rule() -> impl Strategy<Value = AlertRule> {
        (
            any_rule(),
            any::<bool>(),
            proptest::option::of((0..3u32, 1..5u32, 120..1800u64)),
            proptest::option::of(1.0..30.0f64),
        )
            .prop_map(|(mut r, latched, flapping, step)| {
                r.latched = latched;
                r.flapping = flapping.map(|(low, extra, window)| crate::alerting::rule::Flapping {
                    low,
                    high: low + extra,
                    window_seconds: window,
                });
                if let (Some(step), Condition::Above(t)) = (step, r.condition) {
                    r.severity = Severity::Info;
                    r.levels = vec![
                        (Severity::Warning, Condition::Above(t + step)),
                        (Severity::Critical, Condition::Above(t + 2.0 * step)),
                    ];
                }
                r
            })
    }

    #[derive(Debug, Clone)]
    enum Input {
        Reading {
            value: f64,
            gap_ms: i64,
            suppressed: bool,
        },
        Operator(OperatorAction),
    }

    fn any_input() -> impl Strategy<Value = Input> {
        prop_oneof![
            6 => (0.0..100.0f64, 1..120_000i64, proptest::bool::weighted(0.15)).prop_map(
                |(value, gap_ms, suppressed)| Input::Reading { value, gap_ms, suppressed }
            ),
            1 => prop_oneof![
                Just(OperatorAction::Acknowledge),
                Just(OperatorAction::Disable),
                Just(OperatorAction::Enable),
                Just(OperatorAction::Reset),
                (0..600_000i64).prop_map(|ahead| OperatorAction::Snooze { until_ms: ahead }),
            ]
            .prop_map(Input::Operator),
        ]
    }

    proptest! {
        /// For any rule (each condition, levels, latched, flapping), any readings, suppressed
        /// or not, and any interleaving of acknowledge, snooze, disable, enable and reset:
        /// every notification is a documented transition of what subscribers were told (never
        /// a repeat), every event is written, and whenever nothing quiets the pair (snooze,
        /// suppression, flapping) subscribers have been told exactly the state.
        #[test]
        fn notifications_are_exactly_the_documented_transitions(
            rule in any_v2_rule(),
            inputs in proptest::collection::vec(any_input(), 1..200),
        ) {
            let mut state = AlertState::default();
            let mut told = Told::Ok;
            let mut t = 0i64;
            let mut last_event_ms = i64::MIN;
            for input in inputs {
                match input {
                    Input::Operator(action) => {
                        let action = match action {
                            OperatorAction::Snooze { until_ms } => OperatorAction::Snooze { until_ms: t + until_ms },
                            other => other,
                        };
                        let before = state.clone();
                        match operate(&mut state, action) {
                            Ok(()) => {
                                let closes = match action {
                                    OperatorAction::Snooze { .. } => false,
                                    OperatorAction::Acknowledge => before.state == AlarmState::Latched,
                                    _ => true,
                                };
                                if closes {
                                    told = Told::Ok;
                                }
                            }
                            Err(current) => prop_assert_eq!(&state, &before, "{:?} refused in {:?} changes nothing", action, current),
                        }
                    }
                    Input::Reading { value, gap_ms, suppressed } => {
                        t += gap_ms;
                        let step = if suppressed {
                            apply_suppressed_reading(&rule, &mut state, t, value)
                        } else {
                            apply_reading(&rule, &mut state, t, value)
                        };
                        let actual = Told::of(state.state, state.level, &rule);
                        if let Some(e) = step.event {
                            prop_assert!(step.changed, "an event is always written");
                            prop_assert!(e.time_ms > last_event_ms, "one event per reading time: alert ids never repeat");
                            last_event_ms = e.time_ms;
                            match e.kind {
                                EventKind::Alarm => {
                                    prop_assert_eq!(told, Told::Ok);
                                    prop_assert_eq!(actual, Told::Alarm(e.severity));
                                    told = actual;
                                }
                                EventKind::Ok => {
                                    prop_assert_eq!(told, Told::Alarm(e.severity));
                                    prop_assert_eq!(actual, Told::Ok);
                                    told = actual;
                                }
                                EventKind::Escalated | EventKind::Deescalated => {
                                    let Told::Alarm(was) = told else {
                                        return Err(TestCaseError::fail(format!("{:?} while told OK", e.kind)));
                                    };
                                    prop_assert_eq!(e.kind == EventKind::Escalated, e.severity > was);
                                    prop_assert_ne!(e.severity, was);
                                    prop_assert_eq!(actual, Told::Alarm(e.severity));
                                    told = actual;
                                }
                                EventKind::Renotify => {
                                    prop_assert_eq!(told, actual);
                                    prop_assert!(matches!(state.state, AlarmState::Alarm | AlarmState::Latched));
                                }
                                EventKind::Flapping => prop_assert!(state.flapping),
                                EventKind::Settled => {
                                    prop_assert!(!state.flapping);
                                    told = actual;
                                }
                            }
                        }
                        let snoozed = state.snoozed_until_ms.is_some_and(|until| t < until);
                        if !suppressed && !snoozed && !state.flapping && state.state != AlarmState::Disabled && rule.enabled {
                            prop_assert_eq!(told, actual, "nothing quiets the pair: subscribers know the state");
                        }
                        prop_assert!(state.changes.len() <= MAX_FLAPPING_CHANGES as usize);
                        prop_assert!(state.samples.len() <= ANOMALY_SAMPLES_PER_BASELINE as usize + 1);
                    }
                }
            }
        }
    }
}
