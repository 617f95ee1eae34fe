//! The semantic checks serde cannot express, one function per part of a rule (and per kind
//! of condition), each naming the field to fix.

use super::{
    Actions, AlertRule, Anomaly, Clear, Condition, Debounce, Flapping, Forecast,
    MAX_FLAPPING_CHANGES, MAX_FORECAST_SECONDS, MAX_RULE_ID_LEN, NO_DATA_RULE_ID, RateOfChange,
    RuleError, Scope, rule_error,
};
use crate::domain::is_valid_metric_name;

impl AlertRule {
    /// The semantic checks serde cannot express.
    pub fn validate(&self) -> Result<(), RuleError> {
        validate_rule_id(&self.rule_id)?;
        validate_name(&self.name)?;
        if !is_valid_metric_name(&self.metric) {
            return Err(rule_error(
                "metric",
                "must be a metric name (^[A-Za-z][A-Za-z0-9_.-]{0,63}$)",
            ));
        }
        validate_scope(&self.scope)?;
        validate_condition(self.condition, self.clear)?;
        self.validate_levels()?;
        if let Some(flapping) = self.flapping {
            validate_flapping(flapping)?;
        }
        validate_debounce(self.debounce)?;
        if self.renotify_after == Some(0) {
            return Err(rule_error(
                "renotify_after",
                "must be at least 1 second (or omitted)",
            ));
        }
        validate_actions(&self.actions)
    }

    /// Each level above the lowest is the same kind of condition with a stricter threshold.
    fn validate_levels(&self) -> Result<(), RuleError> {
        let mut lower = (self.severity, &self.condition);
        for (severity, condition) in &self.levels {
            let field = format!("levels.{}", severity.as_str());
            range_or_finite(&field, condition)?;
            if !stricter(lower.1, condition) {
                return Err(rule_error(
                    &field,
                    format!(
                        "must be the same kind of condition as the {} level, with a stricter threshold (it may only fire where {} fires)",
                        lower.0.as_str(),
                        lower.0.as_str()
                    ),
                ));
            }
            lower = (*severity, condition);
        }
        Ok(())
    }
}

fn validate_rule_id(rule_id: &str) -> Result<(), RuleError> {
    let id_ok = !rule_id.is_empty()
        && rule_id.len() <= MAX_RULE_ID_LEN
        && rule_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !id_ok {
        return Err(rule_error(
            "rule_id",
            "must be 1-64 characters of [A-Za-z0-9._-]",
        ));
    }
    if rule_id == NO_DATA_RULE_ID {
        return Err(rule_error(
            "rule_id",
            "'no_data' is the built-in silence alert (set a device's heartbeat_seconds instead): choose another id",
        ));
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), RuleError> {
    // Spaces, tabs and line breaks only: the same test as openapi.yaml's pattern.
    if name
        .bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Err(rule_error("name", "must not be empty or blank"));
    }
    Ok(())
}

fn validate_scope(scope: &Scope) -> Result<(), RuleError> {
    if let Scope::DeviceId(id) | Scope::DeviceType(id) = scope
        && id.is_empty()
    {
        return Err(rule_error("scope", "must name a device id or device type"));
    }
    if matches!(scope, Scope::Path(place) if place.is_empty()) {
        return Err(rule_error(
            "scope.path",
            "must name a place (site[/zone[/section[/spot]]]); the whole fleet is \"all\"",
        ));
    }
    Ok(())
}

/// The entry condition's own numbers, and a clear (hysteresis) on its OK side.
fn validate_condition(condition: Condition, clear: Option<Clear>) -> Result<(), RuleError> {
    match condition {
        Condition::Above(threshold) => validate_above(threshold, clear),
        Condition::Below(threshold) => validate_below(threshold, clear),
        Condition::Outside([low, high]) => validate_outside(low, high, clear),
        Condition::Inside([low, high]) => validate_inside(low, high, clear),
        Condition::Forecast(forecast) => validate_forecast(&forecast, clear),
        Condition::Anomaly(anomaly) => validate_anomaly(&anomaly, clear),
        Condition::RateOfChange(rate) => validate_rate_of_change(&rate, clear),
    }
}

fn validate_above(t: f64, clear: Option<Clear>) -> Result<(), RuleError> {
    finite("condition.above", t)?;
    match clear {
        None => Ok(()),
        Some(Clear::Value(c)) if c <= t => Ok(()),
        Some(_) => Err(rule_error(
            "clear",
            format!("must be a number at or below the 'above' threshold {t}"),
        )),
    }
}

fn validate_below(t: f64, clear: Option<Clear>) -> Result<(), RuleError> {
    finite("condition.below", t)?;
    match clear {
        None => Ok(()),
        Some(Clear::Value(c)) if c >= t => Ok(()),
        Some(_) => Err(rule_error(
            "clear",
            format!("must be a number at or above the 'below' threshold {t}"),
        )),
    }
}

fn validate_outside(low: f64, high: f64, clear: Option<Clear>) -> Result<(), RuleError> {
    range_ok("condition.outside", low, high)?;
    match clear {
        None => Ok(()),
        Some(Clear::Range([cl, ch])) if cl >= low && ch <= high && cl <= ch => Ok(()),
        Some(_) => Err(rule_error(
            "clear",
            format!("must be a range [low, high] inside [{low}, {high}]"),
        )),
    }
}

fn validate_inside(low: f64, high: f64, clear: Option<Clear>) -> Result<(), RuleError> {
    range_ok("condition.inside", low, high)?;
    match clear {
        None => Ok(()),
        Some(Clear::Range([cl, ch])) if cl <= low && ch >= high => Ok(()),
        Some(_) => Err(rule_error(
            "clear",
            format!("must be a range [low, high] containing [{low}, {high}]"),
        )),
    }
}

fn validate_forecast(f: &Forecast, clear: Option<Clear>) -> Result<(), RuleError> {
    let (threshold, falling) = match (f.below, f.above) {
        (Some(t), None) => (t, true),
        (None, Some(t)) => (t, false),
        _ => {
            return Err(rule_error(
                "condition.forecast",
                "must have exactly one of below and above",
            ));
        }
    };
    finite("condition.forecast", threshold)?;
    for (field, seconds) in [
        ("condition.forecast.within_seconds", f.within_seconds),
        ("condition.forecast.window_seconds", f.window_seconds),
    ] {
        if !(60..=MAX_FORECAST_SECONDS).contains(&seconds) {
            return Err(rule_error(
                field,
                "must be between 60 and 2592000 (30 days)",
            ));
        }
    }
    match clear {
        None => Ok(()),
        Some(Clear::Value(c)) if (falling && c >= threshold) || (!falling && c <= threshold) => {
            Ok(())
        }
        Some(_) => Err(rule_error(
            "clear",
            format!("must be a predicted level on the OK side of the threshold {threshold}"),
        )),
    }
}

fn validate_anomaly(a: &Anomaly, clear: Option<Clear>) -> Result<(), RuleError> {
    if !(a.threshold.is_finite() && a.threshold > 0.0) {
        return Err(rule_error(
            "condition.anomaly.threshold",
            "must be a positive number of robust deviations (4 is a good start)",
        ));
    }
    if !(3600..=MAX_FORECAST_SECONDS).contains(&a.baseline_seconds) {
        return Err(rule_error(
            "condition.anomaly.baseline_seconds",
            "must be between 3600 and 2592000 (30 days)",
        ));
    }
    match clear {
        None => Ok(()),
        Some(Clear::Value(c)) if c > 0.0 && c <= a.threshold => Ok(()),
        Some(_) => Err(rule_error(
            "clear",
            format!(
                "must be a score above 0 and at most the threshold {}",
                a.threshold
            ),
        )),
    }
}

fn validate_rate_of_change(rate: &RateOfChange, clear: Option<Clear>) -> Result<(), RuleError> {
    finite("condition.rate_of_change.per_hour", rate.per_hour)?;
    if rate.per_hour == 0.0 {
        return Err(rule_error(
            "condition.rate_of_change.per_hour",
            "must be non-zero: negative for falling, positive for rising",
        ));
    }
    if !(60..=7 * 86_400).contains(&rate.window_seconds) {
        return Err(rule_error(
            "condition.rate_of_change.window_seconds",
            "must be between 60 and 604800 (7 days)",
        ));
    }
    match clear {
        None => Ok(()),
        Some(Clear::Value(c))
            if c.is_finite()
                && c.signum() == rate.per_hour.signum()
                && c.abs() <= rate.per_hour.abs() =>
        {
            Ok(())
        }
        Some(_) => Err(rule_error(
            "clear",
            format!(
                "must be a rate per hour of the same sign as, and no steeper than, {}",
                rate.per_hour
            ),
        )),
    }
}

fn validate_flapping(f: Flapping) -> Result<(), RuleError> {
    if !(1..=MAX_FLAPPING_CHANGES).contains(&f.high) {
        return Err(rule_error(
            "flapping.high",
            "must be between 1 and 20 state changes",
        ));
    }
    if f.low >= f.high {
        return Err(rule_error("flapping.low", "must be below flapping.high"));
    }
    if !(60..=7 * 86_400).contains(&f.window_seconds) {
        return Err(rule_error(
            "flapping.window_seconds",
            "must be between 60 and 604800 (7 days)",
        ));
    }
    Ok(())
}

fn validate_debounce(debounce: Option<Debounce>) -> Result<(), RuleError> {
    match debounce {
        Some(Debounce::Readings(0)) => Err(rule_error("for.readings", "must be at least 1")),
        Some(Debounce::Seconds(s)) if s > 7 * 86_400 => {
            Err(rule_error("for.seconds", "must be at most 604800 (7 days)"))
        }
        _ => Ok(()),
    }
}

fn validate_actions(actions: &Actions) -> Result<(), RuleError> {
    for (field, patch) in [
        ("actions.on_alarm", &actions.on_alarm),
        ("actions.on_ok", &actions.on_ok),
    ] {
        if let Some(patch) = patch
            && !patch.is_object()
        {
            return Err(rule_error(
                field,
                "must be a JSON object: the shadow 'desired' patch",
            ));
        }
    }
    Ok(())
}

fn finite(field: &str, v: f64) -> Result<(), RuleError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(rule_error(field, "must be a finite number"))
    }
}

/// A level's own numbers must be usable (finite, ranges ordered); its kind is checked after.
fn range_or_finite(field: &str, condition: &Condition) -> Result<(), RuleError> {
    match *condition {
        Condition::Outside([l, h]) | Condition::Inside([l, h]) => range_ok(field, l, h),
        Condition::RateOfChange(r) => finite(field, r.per_hour),
        Condition::Forecast(f) => finite(field, f.threshold().0),
        Condition::Anomaly(a) => finite(field, a.threshold),
        Condition::Above(t) | Condition::Below(t) => finite(field, t),
    }
}

fn range_ok(field: &str, low: f64, high: f64) -> Result<(), RuleError> {
    if low.is_finite() && high.is_finite() && low <= high {
        Ok(())
    } else {
        Err(rule_error(
            field,
            "must be [low, high] with finite low <= high",
        ))
    }
}

/// Whether `higher` fires only where `lower` fires, on the same measure: the shape a level
/// above another must have (a stricter threshold of the same kind).
fn stricter(lower: &Condition, higher: &Condition) -> bool {
    use Condition as C;
    match (*lower, *higher) {
        (C::Above(l), C::Above(h)) => h > l,
        (C::Below(l), C::Below(h)) => h < l,
        (C::Outside([ll, lh]), C::Outside([hl, hh])) => {
            hl <= ll && hh >= lh && (hl, hh) != (ll, lh)
        }
        (C::Inside([ll, lh]), C::Inside([hl, hh])) => hl >= ll && hh <= lh && (hl, hh) != (ll, lh),
        (C::RateOfChange(l), C::RateOfChange(h)) => {
            l.window_seconds == h.window_seconds
                && l.per_hour.signum() == h.per_hour.signum()
                && h.per_hour.abs() > l.per_hour.abs()
        }
        (C::Forecast(l), C::Forecast(h)) => {
            let ((lt, lf), (ht, hf)) = (l.threshold(), h.threshold());
            l.window_seconds == h.window_seconds
                && l.within_seconds == h.within_seconds
                && lf == hf
                && if lf { ht < lt } else { ht > lt }
        }
        (C::Anomaly(l), C::Anomaly(h)) => {
            l.baseline_seconds == h.baseline_seconds && h.threshold > l.threshold
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_must_point_the_right_way() {
        let above = |clear: &str| {
            format!(
                r#"{{"rule_id":"r","name":"n","scope":"all","metric":"t","condition":{{"above":80}},"clear":{clear},"severity":"warning"}}"#
            )
        };
        assert!(AlertRule::from_json(&above("75")).is_ok());
        assert_eq!(
            AlertRule::from_json(&above("85")).unwrap_err().field,
            "clear"
        );
        let outside = |clear: &str| {
            format!(
                r#"{{"rule_id":"r","name":"n","scope":{{"device_id":"ac-1"}},"metric":"t","condition":{{"outside":[18,26]}},"clear":{clear},"severity":"info"}}"#
            )
        };
        assert!(AlertRule::from_json(&outside("[19,25]")).is_ok());
        assert_eq!(
            AlertRule::from_json(&outside("[17,25]")).unwrap_err().field,
            "clear"
        );
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
        let r = AlertRule::from_json(
            r#"{"rule_id":"hot","name":"Room too hot","scope":"all","metric":"t",
                "levels":{"warning":{"above":26},"critical":{"above":30}}}"#,
        )
        .unwrap();
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            text.contains(r#""levels":{"warning":{"above":26.0},"critical":{"above":30.0}}"#),
            "{text}"
        );
        assert_eq!(AlertRule::from_json(&text).unwrap(), r);
    }
}
