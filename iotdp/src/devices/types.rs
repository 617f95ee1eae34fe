//! Device types: what a type's devices report, and the derived metrics it computes from each
//! reading's own (`power_w = voltage * current`), added at ingest before the reading is
//! stored and its alert rules run, so rules, rollups and the API see them as any metric. Pure.
//!
//! A definition is checked once, when put ([`DerivedMetrics::compile`]): every name it reads is
//! a metric the type reports or a derived metric defined before it, no derived name shadows a
//! reported one, and each expression passes [`Expression::parse`]. Applying it to a reading
//! never fails: a derived metric whose inputs the reading lacks, or whose value is not a finite
//! number in this reading, is left out and counted.

use serde::{Deserialize, Serialize};

use crate::domain::expression::{Expression, ExpressionError};
use crate::domain::{Metric, MetricValue, Reading, is_reserved_metric_name, is_valid_metric_name};

/// A device type's definition as an operator puts it (`iotdp types put FILE.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeDefinition {
    pub device_type: String,
    /// Set by the store: 1 for the first put, one more for each put after.
    #[serde(default, deserialize_with = "crate::domain::whole_number::exact")]
    pub version: u32,
    /// The metrics devices of this type report: what its expressions may read.
    pub metrics: Vec<String>,
    #[serde(default)]
    pub derived: Vec<DerivedMetricSpec>,
}

impl TypeDefinition {
    /// Check every field; the compiled derived metrics.
    pub fn compile(&self) -> Result<DerivedMetrics, DefinitionError> {
        if !crate::domain::is_valid_label(&self.device_type) {
            return Err(DefinitionError::new(
                "device_type".into(),
                "invalid_device_type",
                format!(
                    "'{}' is not a device type name (the registry's label rules)",
                    self.device_type
                ),
            ));
        }
        if let Some((i, bad)) = self
            .metrics
            .iter()
            .enumerate()
            .find(|(_, m)| !is_valid_metric_name(m) || is_reserved_metric_name(m))
        {
            return Err(DefinitionError::new(
                format!("metrics[{i}]"),
                "invalid_metric_name",
                format!("'{bad}' is not a metric name"),
            ));
        }
        let reported: Vec<&str> = self.metrics.iter().map(String::as_str).collect();
        DerivedMetrics::compile(self.version, &self.derived, &reported)
    }
}

/// Most derived metrics one device type defines.
pub const MAX_DERIVED_PER_TYPE: usize = 20;

/// One derived metric as an operator writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedMetricSpec {
    pub name: String,
    pub expression: String,
}

/// Why a definition was refused: the field to fix, and the reason code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DefinitionError {
    /// `derived[2].expression`, …
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl DefinitionError {
    fn new(field: String, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            code,
            message: message.into(),
        }
    }
}

/// A device type's derived metrics, checked and compiled, with the definition's version.
#[derive(Debug, Clone, PartialEq)]
pub struct DerivedMetrics {
    pub version: u32,
    derived: Vec<(String, Expression)>,
}

/// What applying the definitions to readings did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Derivation {
    /// Derived values added to readings.
    pub computed: u64,
    /// Derived values left out: an input missing or not a number, no finite value, or a
    /// metric of that name sent by the device itself (which is kept).
    pub skipped: u64,
}

impl DerivedMetrics {
    /// Check `specs` against the metrics the type reports (`reported`).
    pub fn compile(
        version: u32,
        specs: &[DerivedMetricSpec],
        reported: &[&str],
    ) -> Result<Self, DefinitionError> {
        if specs.len() > MAX_DERIVED_PER_TYPE {
            return Err(DefinitionError::new(
                "derived".into(),
                "too_many_derived_metrics",
                format!(
                    "{} derived metrics; at most {MAX_DERIVED_PER_TYPE}",
                    specs.len()
                ),
            ));
        }
        let mut derived: Vec<(String, Expression)> = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let field = |part: &str| format!("derived[{i}].{part}");
            if !is_valid_metric_name(&spec.name) || is_reserved_metric_name(&spec.name) {
                return Err(DefinitionError::new(
                    field("name"),
                    "invalid_metric_name",
                    format!(
                        "'{}' is not a metric name (a letter, then up to 63 letters, digits, '_', '.' or '-'; not a dimension's name)",
                        spec.name
                    ),
                ));
            }
            if reported.contains(&spec.name.as_str())
                || derived.iter().any(|(n, _)| *n == spec.name)
            {
                return Err(DefinitionError::new(
                    field("name"),
                    "duplicate_metric_name",
                    format!(
                        "'{}' is already a metric of this type: a derived metric needs a name of its own",
                        spec.name
                    ),
                ));
            }
            let known =
                |name: &str| reported.contains(&name) || derived.iter().any(|(n, _)| n == name);
            let expression =
                Expression::parse(&spec.expression, known).map_err(|e: ExpressionError| {
                    DefinitionError::new(field("expression"), e.code(), e.to_string())
                })?;
            derived.push((spec.name.clone(), expression));
        }
        Ok(Self { version, derived })
    }

    /// The derived metrics' names, in definition order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.derived.iter().map(|(n, _)| n.as_str())
    }

    /// Add each derived metric to `reading`, in definition order (a later one may read an
    /// earlier one).
    pub fn apply(&self, reading: &mut Reading, done: &mut Derivation) {
        let mut inputs = [0.0_f64; 16];
        reading.metrics.reserve(self.derived.len());
        'derived: for (name, expression) in &self.derived {
            if reading.metrics.iter().any(|m| m.name == *name) {
                done.skipped += 1;
                continue;
            }
            let slots = expression.inputs();
            let mut many = Vec::new();
            let values: &mut [f64] = if slots.len() <= inputs.len() {
                &mut inputs[..slots.len()]
            } else {
                many.resize(slots.len(), 0.0);
                &mut many
            };
            for (value, input) in values.iter_mut().zip(slots) {
                match reading.metrics.iter().find(|m| m.name == *input) {
                    Some(Metric {
                        value: MetricValue::Number(n),
                        ..
                    }) => *value = *n,
                    _ => {
                        done.skipped += 1;
                        continue 'derived;
                    }
                }
            }
            match expression.evaluate(values) {
                Some(v) => {
                    reading.metrics.push(Metric {
                        name: name.clone(),
                        value: MetricValue::Number(v),
                    });
                    done.computed += 1;
                }
                None => done.skipped += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, expression: &str) -> DerivedMetricSpec {
        DerivedMetricSpec {
            name: name.into(),
            expression: expression.into(),
        }
    }

    const BATTERY: &[&str] = &["voltage", "current", "temperature_c", "soc"];

    #[test]
    fn derived_metrics_are_added_in_order_and_a_later_one_reads_an_earlier() {
        let d = DerivedMetrics::compile(
            3,
            &[
                spec("power_w", "voltage * current"),
                spec("temperature_f", "temperature_c * 9 / 5 + 32"),
                spec("power_kw", "power_w / 1000"),
            ],
            BATTERY,
        )
        .unwrap();
        let mut r = Reading::new(
            "bb-1",
            5,
            [
                ("voltage", MetricValue::Number(12.0)),
                ("current", MetricValue::Number(-2.5)),
                ("temperature_c", MetricValue::Number(25.0)),
            ],
        );
        let mut done = Derivation::default();
        d.apply(&mut r, &mut done);
        let value = |n: &str| {
            r.metrics
                .iter()
                .find(|m| m.name == n)
                .map(|m| m.value.clone())
        };
        assert_eq!(value("power_w"), Some(MetricValue::Number(-30.0)));
        assert_eq!(value("temperature_f"), Some(MetricValue::Number(77.0)));
        assert_eq!(value("power_kw"), Some(MetricValue::Number(-0.03)));
        assert_eq!(
            done,
            Derivation {
                computed: 3,
                skipped: 0
            }
        );
    }

    #[test]
    fn a_reading_without_an_input_or_with_a_zero_divisor_gets_no_value_never_a_wrong_one() {
        let d = DerivedMetrics::compile(
            1,
            &[
                spec("power_w", "voltage * current"),
                spec("per_amp", "voltage / current"),
            ],
            BATTERY,
        )
        .unwrap();
        let mut done = Derivation::default();
        let mut no_current = Reading::new("bb-1", 5, [("voltage", MetricValue::Number(12.0))]);
        d.apply(&mut no_current, &mut done);
        assert_eq!(no_current.metrics.len(), 1);
        let mut zero = Reading::new(
            "bb-1",
            6,
            [
                ("voltage", MetricValue::Number(12.0)),
                ("current", MetricValue::Number(0.0)),
            ],
        );
        d.apply(&mut zero, &mut done);
        assert_eq!(
            zero.metrics.len(),
            3,
            "power 0 kept, volts per amp left out"
        );
        let mut text = Reading::new(
            "bb-1",
            7,
            [
                ("voltage", MetricValue::Text("n/a".into())),
                ("current", MetricValue::Number(1.0)),
            ],
        );
        d.apply(&mut text, &mut done);
        assert_eq!(text.metrics.len(), 2);
        assert_eq!(
            done,
            Derivation {
                computed: 1,
                skipped: 5
            }
        );
    }

    #[test]
    fn a_device_s_own_value_of_a_derived_name_is_kept() {
        let d =
            DerivedMetrics::compile(1, &[spec("power_w", "voltage * current")], BATTERY).unwrap();
        let mut r = Reading::new(
            "bb-1",
            5,
            [
                ("voltage", MetricValue::Number(12.0)),
                ("current", MetricValue::Number(2.0)),
                ("power_w", MetricValue::Number(23.9)),
            ],
        );
        let mut done = Derivation::default();
        d.apply(&mut r, &mut done);
        assert_eq!(r.metrics[2].value, MetricValue::Number(23.9));
        assert_eq!(r.metrics.len(), 3);
        assert_eq!(done.skipped, 1);
    }

    #[test]
    fn bad_definitions_name_the_field_and_the_reason() {
        let cases: Vec<(Vec<DerivedMetricSpec>, &str, &str)> = vec![
            (
                vec![spec("power_w", "voltage * amps")],
                "derived[0].expression",
                "unknown_metric",
            ),
            (
                vec![spec("power_w", "voltage / 0")],
                "derived[0].expression",
                "division_by_zero",
            ),
            (
                vec![spec("voltage", "current * 2")],
                "derived[0].name",
                "duplicate_metric_name",
            ),
            (
                vec![spec("a", "voltage"), spec("a", "current")],
                "derived[1].name",
                "duplicate_metric_name",
            ),
            (
                vec![spec("site", "voltage")],
                "derived[0].name",
                "invalid_metric_name",
            ),
            (
                vec![spec("9lives", "voltage")],
                "derived[0].name",
                "invalid_metric_name",
            ),
            // A derived metric reads only those defined before it.
            (
                vec![spec("b", "a * 2"), spec("a", "voltage")],
                "derived[0].expression",
                "unknown_metric",
            ),
            (
                (0..21).map(|i| spec(&format!("d{i}"), "voltage")).collect(),
                "derived",
                "too_many_derived_metrics",
            ),
        ];
        for (specs, field, code) in cases {
            let e = DerivedMetrics::compile(1, &specs, BATTERY).unwrap_err();
            assert_eq!((e.field.as_str(), e.code), (field, code), "{specs:?}: {e}");
        }
    }
}
