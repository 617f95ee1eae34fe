//! The classic device shadow's rules, as AWS IoT documents them ("Device Shadow service
//! documents"): an update merges `desired` and `reported` key by key, `null` deletes a key,
//! objects merge recursively while arrays and scalars are replaced, every accepted update adds
//! one to the version, an update naming a `version` other than the current one is rejected
//! with 409, and the delta is what `desired` holds that `reported` does not.
//!
//! The local shadow service runs devices' updates through [`ShadowDocument::apply`], and the
//! commands use case reads deltas and delivery through [`satisfies`], so the two agree on what
//! "the device has applied it" means.

use serde_json::{Map, Value, json};

/// Deepest nesting AWS accepts inside `desired` or `reported`.
pub const MAX_STATE_DEPTH: usize = 6;

/// A shadow: both halves of its state, its version and when each half last changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShadowDocument {
    pub desired: Map<String, Value>,
    pub reported: Map<String, Value>,
    /// 0 while the shadow does not exist; the first accepted update makes it 1.
    pub version: u64,
    /// Seconds since the epoch of the last accepted update.
    pub timestamp: i64,
}

/// Why a shadow update was refused: the code and message of `/update/rejected`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ShadowRejection {
    pub code: u16,
    pub message: String,
}

impl ShadowRejection {
    fn bad(message: impl Into<String>) -> Self {
        Self {
            code: 400,
            message: message.into(),
        }
    }
}

/// What one accepted update publishes: `/update/accepted`, `/update/delta` (only when the
/// update touched `desired` or `reported` and a delta remains) and `/update/documents`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    pub accepted: Value,
    pub delta: Option<Value>,
    pub documents: Value,
}

impl ShadowDocument {
    /// `desired` minus what `reported` already holds, recursively; `None` when they agree.
    pub fn delta(&self) -> Option<Map<String, Value>> {
        let delta = delta_of(&self.desired, &self.reported);
        (!delta.is_empty()).then_some(delta)
    }

    /// The shadow as `/get/accepted` and `GetThingShadow` return it.
    pub fn to_json(&self) -> Value {
        let mut state = Map::new();
        if !self.desired.is_empty() {
            state.insert("desired".into(), Value::Object(self.desired.clone()));
        }
        if !self.reported.is_empty() {
            state.insert("reported".into(), Value::Object(self.reported.clone()));
        }
        if let Some(delta) = self.delta() {
            state.insert("delta".into(), Value::Object(delta));
        }
        json!({ "state": state, "version": self.version, "timestamp": self.timestamp })
    }

    /// Apply one update request (the payload a device publishes on `/update`) at `now_s`.
    pub fn apply(&mut self, request: &Value, now_s: i64) -> Result<UpdateOutcome, ShadowRejection> {
        let request = request
            .as_object()
            .ok_or_else(|| ShadowRejection::bad("Payload contains invalid json"))?;
        let state = match request.get("state") {
            Some(Value::Object(state)) => state,
            Some(_) => return Err(ShadowRejection::bad("State node must be an object")),
            None => return Err(ShadowRejection::bad("Missing required node: state")),
        };
        if let Some(key) = state
            .keys()
            .find(|k| !matches!(k.as_str(), "desired" | "reported"))
        {
            return Err(ShadowRejection::bad(format!(
                "State contains an invalid node: '{key}'"
            )));
        }
        match request.get("version") {
            None => {}
            Some(v) => match v.as_u64() {
                Some(v) if v == self.version => {}
                Some(_) => {
                    return Err(ShadowRejection {
                        code: 409,
                        message: "Version conflict".into(),
                    });
                }
                None => return Err(ShadowRejection::bad("Invalid version")),
            },
        }
        for half in ["desired", "reported"] {
            match state.get(half) {
                None | Some(Value::Null | Value::Object(_)) => {}
                Some(_) => {
                    return Err(ShadowRejection::bad(format!(
                        "{half} node must be an object"
                    )));
                }
            }
            if let Some(value) = state.get(half)
                && depth(value) > MAX_STATE_DEPTH
            {
                return Err(ShadowRejection::bad(format!(
                    "JSON contains too many levels of nesting; maximum is {MAX_STATE_DEPTH}"
                )));
            }
        }
        let previous = self.clone();
        for (half, target) in [
            ("desired", &mut self.desired),
            ("reported", &mut self.reported),
        ] {
            match state.get(half) {
                Some(Value::Null) => target.clear(),
                Some(Value::Object(patch)) => merge(target, patch),
                _ => {}
            }
        }
        self.version += 1;
        self.timestamp = now_s;
        let mut accepted_state = Map::new();
        for half in ["desired", "reported"] {
            if let Some(value) = state.get(half) {
                accepted_state.insert(half.into(), value.clone());
            }
        }
        let accepted = json!({
            "state": accepted_state,
            "version": self.version,
            "timestamp": now_s,
        });
        let delta = self
            .delta()
            .map(|delta| json!({ "state": delta, "version": self.version, "timestamp": now_s }));
        let documents = json!({
            "previous": previous.exists().then(|| previous.state_json()),
            "current": self.state_json(),
            "timestamp": now_s,
        });
        Ok(UpdateOutcome {
            accepted,
            delta,
            documents,
        })
    }

    /// `true` once an update was accepted.
    pub fn exists(&self) -> bool {
        self.version > 0
    }

    /// The `{state: {desired, reported}, version}` one side of `/update/documents` carries.
    fn state_json(&self) -> Value {
        json!({
            "state": {
                "desired": Value::Object(self.desired.clone()),
                "reported": Value::Object(self.reported.clone()),
            },
            "version": self.version,
        })
    }
}

/// Merge `patch` into `target`: `null` deletes, objects merge, anything else replaces. An
/// object left empty by deletions is removed, as the shadow service does.
pub fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => {
                let slot = target
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(existing) = slot {
                    merge(existing, inner);
                    if existing.is_empty() {
                        target.remove(key);
                    }
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

/// What `desired` asks that `reported` does not hold.
pub fn delta_of(desired: &Map<String, Value>, reported: &Map<String, Value>) -> Map<String, Value> {
    let mut delta = Map::new();
    for (key, wanted) in desired {
        match (wanted, reported.get(key)) {
            (Value::Object(w), Some(Value::Object(r))) => {
                let inner = delta_of(w, r);
                if !inner.is_empty() {
                    delta.insert(key.clone(), Value::Object(inner));
                }
            }
            (w, Some(r)) if same_value(w, r) => {}
            (w, _) => {
                delta.insert(key.clone(), w.clone());
            }
        }
    }
    delta
}

/// `true` when `reported` shows every change `patch` asks for: each non-null key equal (objects
/// compared key by key), each null key absent. This is "the device applied the command".
pub fn satisfies(reported: &Map<String, Value>, patch: &Map<String, Value>) -> bool {
    patch
        .iter()
        .all(|(key, wanted)| match (wanted, reported.get(key)) {
            (Value::Null, found) => found.is_none(),
            (Value::Object(w), Some(Value::Object(r))) => satisfies(r, w),
            (Value::Object(w), None) => w.values().all(Value::is_null),
            (w, Some(r)) => same_value(w, r),
            (_, None) => false,
        })
}

/// JSON equality that takes `21` and `21.0` as the same setpoint (devices report floats).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Levels of nesting: a scalar is 0, `{"a": 1}` is 1.
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn updates_merge_key_by_key_and_null_deletes() {
        let mut shadow = ShadowDocument::default();
        shadow
            .apply(&json!({"state": {"reported": {"temp": 20.5, "mode": {"fan": "auto", "swing": true}}}}), 10)
            .unwrap();
        shadow
            .apply(
                &json!({"state": {"reported": {"mode": {"swing": null}, "temp": 21}}}),
                11,
            )
            .unwrap();
        assert_eq!(
            Value::Object(shadow.reported.clone()),
            json!({"temp": 21, "mode": {"fan": "auto"}})
        );
        assert_eq!(shadow.version, 2);
        shadow
            .apply(&json!({"state": {"reported": {"mode": {"fan": null}}}}), 12)
            .unwrap();
        assert_eq!(Value::Object(shadow.reported.clone()), json!({"temp": 21}));
    }

    #[test]
    fn the_delta_is_what_desired_holds_and_reported_does_not() {
        let mut shadow = ShadowDocument::default();
        let first = shadow
            .apply(
                &json!({"state": {"desired": {"setpoint": 21, "fan": {"speed": 2}}}}),
                1,
            )
            .unwrap();
        assert_eq!(
            first.delta.unwrap()["state"],
            json!({"setpoint": 21, "fan": {"speed": 2}})
        );
        let reported = shadow
            .apply(
                &json!({"state": {"reported": {"setpoint": 21.0, "fan": {"speed": 1}}}}),
                2,
            )
            .unwrap();
        assert_eq!(
            reported.delta.unwrap()["state"],
            json!({"fan": {"speed": 2}})
        );
        let done = shadow
            .apply(&json!({"state": {"reported": {"fan": {"speed": 2}}}}), 3)
            .unwrap();
        assert_eq!(done.delta, None);
        assert_eq!(done.documents["previous"]["version"], 2);
        assert_eq!(done.documents["current"]["version"], 3);
        assert!(shadow.to_json()["state"].get("delta").is_none());
    }

    #[test]
    fn a_stale_version_is_a_conflict_and_changes_nothing() {
        let mut shadow = ShadowDocument::default();
        shadow
            .apply(&json!({"state": {"desired": {"a": 1}}}), 1)
            .unwrap();
        let before = shadow.clone();
        let refused = shadow
            .apply(&json!({"state": {"desired": {"a": 2}}, "version": 0}), 2)
            .unwrap_err();
        assert_eq!(refused.code, 409);
        assert_eq!(shadow, before);
        shadow
            .apply(&json!({"state": {"desired": {"a": 2}}, "version": 1}), 3)
            .unwrap();
        assert_eq!(shadow.version, 2);
    }

    #[test]
    fn malformed_updates_are_rejected_with_a_reason() {
        let mut shadow = ShadowDocument::default();
        for (request, says) in [
            (json!([1]), "invalid json"),
            (json!({"desired": {}}), "state"),
            (json!({"state": {"wanted": {}}}), "'wanted'"),
            (
                json!({"state": {"desired": 3}}),
                "desired node must be an object",
            ),
            (
                json!({"state": {"reported": {"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}}),
                "nesting",
            ),
        ] {
            let refused = shadow.apply(&request, 1).unwrap_err();
            assert_eq!(refused.code, 400);
            assert!(refused.message.contains(says), "{refused} for {request}");
        }
        assert!(!shadow.exists());
    }

    #[test]
    fn a_command_is_satisfied_only_when_every_change_shows_in_reported() {
        let reported = obj(json!({"setpoint": 21.0, "fan": {"speed": 2}, "eco": true}));
        assert!(satisfies(&reported, &obj(json!({"setpoint": 21}))));
        assert!(satisfies(
            &reported,
            &obj(json!({"fan": {"speed": 2}, "away": null}))
        ));
        assert!(!satisfies(&reported, &obj(json!({"setpoint": 22}))));
        assert!(!satisfies(&reported, &obj(json!({"eco": null}))));
        assert!(!satisfies(&reported, &obj(json!({"load_shedding": true}))));
    }
}
