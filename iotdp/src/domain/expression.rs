//! Arithmetic over one reading's metrics: what a derived metric (`power_w = voltage * current`)
//! is computed from. Pure.
//!
//! An expression is parsed and checked once, when its definition is put, and compiled to a
//! postfix program over input slots: evaluating it for a reading is a few dozen nanoseconds
//! and allocates nothing, which is what keeps derived metrics cheap at ingest. The language
//! is bounded by construction: numbers, metric names, `+ - * /`, parentheses and `min`, `max`,
//! `abs`; no loops, no calls of anything else, at most [`MAX_EXPRESSION_LEN`] bytes and
//! [`MAX_DEPTH`] levels of nesting. A metric whose name holds a `-` (which would read as a
//! minus) is written in double quotes: `"inlet-temp" - 2`.

use std::fmt;

use crate::domain::is_valid_metric_name;

/// Longest expression, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 256;
/// Deepest nesting of parentheses, calls and unary minus.
pub const MAX_DEPTH: usize = 16;

/// Why an expression was refused, with the code a problem document carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpressionError {
    TooLong {
        len: usize,
    },
    TooDeep,
    /// Not an expression: what was expected at which byte.
    Syntax {
        at: usize,
        expected: &'static str,
    },
    /// A name the device type does not report.
    UnknownMetric(String),
    /// A divisor that is zero whatever the readings (`x / 0`, `x / (2 - 2)`).
    DivisionByZero,
}

impl ExpressionError {
    /// The reason code of the problem document.
    pub fn code(&self) -> &'static str {
        match self {
            ExpressionError::TooLong { .. } => "expression_too_long",
            ExpressionError::TooDeep => "expression_too_deep",
            ExpressionError::Syntax { .. } => "expression_syntax",
            ExpressionError::UnknownMetric(_) => "unknown_metric",
            ExpressionError::DivisionByZero => "division_by_zero",
        }
    }
}

impl fmt::Display for ExpressionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpressionError::TooLong { len } => write!(
                f,
                "the expression is {len} bytes; at most {MAX_EXPRESSION_LEN}"
            ),
            ExpressionError::TooDeep => write!(
                f,
                "the expression nests deeper than {MAX_DEPTH} levels: split it into derived metrics"
            ),
            ExpressionError::Syntax { at, expected } => {
                write!(f, "at byte {at}: expected {expected}")
            }
            ExpressionError::UnknownMetric(name) => write!(
                f,
                "'{name}' is not a metric of this device type (or a derived metric defined before this one)"
            ),
            ExpressionError::DivisionByZero => {
                write!(f, "a divisor is zero whatever the readings")
            }
        }
    }
}

impl std::error::Error for ExpressionError {}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Const(f64),
    Input(u16),
    Add,
    Sub,
    Mul,
    Div,
    Neg,
    Min,
    Max,
    Abs,
}

impl Op {
    /// A binary operator applied to its operands (evaluation and constant folding share it).
    fn combine(self, a: f64, b: f64) -> f64 {
        match self {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
            Op::Div => a / b,
            Op::Min => a.min(b),
            _ => a.max(b),
        }
    }
}

/// A checked, compiled expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    source: String,
    /// The metric names it reads, in slot order: [`Expression::evaluate`] takes their values
    /// in this order.
    inputs: Vec<String>,
    program: Vec<Op>,
}

impl Expression {
    /// Parse and check `source`; every name must be one `known` accepts.
    pub fn parse(source: &str, known: impl Fn(&str) -> bool) -> Result<Self, ExpressionError> {
        if source.len() > MAX_EXPRESSION_LEN {
            return Err(ExpressionError::TooLong { len: source.len() });
        }
        let mut parser = Parser {
            text: source.as_bytes(),
            at: 0,
            depth: 0,
            inputs: Vec::new(),
            program: Vec::new(),
            known: &known,
        };
        parser.expression()?;
        parser.skip_spaces();
        if parser.at != parser.text.len() {
            return Err(ExpressionError::Syntax {
                at: parser.at,
                expected: "an operator or the end",
            });
        }
        let expression = Self {
            source: source.to_owned(),
            inputs: parser.inputs,
            program: parser.program,
        };
        expression.check_constant_divisors()?;
        Ok(expression)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The metrics it reads, in the order [`Expression::evaluate`] takes their values.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// The value for `inputs` (one per [`Expression::inputs`]); `None` when it is not a finite
    /// number (a divisor that is zero in this reading), which is then not stored.
    pub fn evaluate(&self, inputs: &[f64]) -> Option<f64> {
        let mut stack = [0.0_f64; MAX_EXPRESSION_LEN];
        let mut top = 0;
        for op in &self.program {
            match *op {
                Op::Const(v) => {
                    stack[top] = v;
                    top += 1;
                }
                Op::Input(slot) => {
                    stack[top] = *inputs.get(slot as usize)?;
                    top += 1;
                }
                Op::Neg => stack[top - 1] = -stack[top - 1],
                Op::Abs => stack[top - 1] = stack[top - 1].abs(),
                binary => {
                    top -= 1;
                    let (a, b) = (stack[top - 1], stack[top]);
                    stack[top - 1] = binary.combine(a, b);
                }
            }
        }
        let value = stack[0];
        value.is_finite().then_some(value)
    }

    /// Refuse a divisor that does not depend on any reading and is zero.
    fn check_constant_divisors(&self) -> Result<(), ExpressionError> {
        // Each stack entry: its constant value, or `None` when it depends on an input.
        let mut stack: Vec<Option<f64>> = Vec::with_capacity(self.program.len());
        for op in &self.program {
            let value = match *op {
                Op::Const(v) => Some(v),
                Op::Input(_) => None,
                Op::Neg | Op::Abs => {
                    let a = stack.pop().flatten();
                    a.map(|a| if *op == Op::Neg { -a } else { a.abs() })
                }
                binary => {
                    let (b, a) = (stack.pop().flatten(), stack.pop().flatten());
                    if binary == Op::Div && b == Some(0.0) {
                        return Err(ExpressionError::DivisionByZero);
                    }
                    match (a, b) {
                        (Some(a), Some(b)) => Some(binary.combine(a, b)),
                        _ => None,
                    }
                }
            };
            stack.push(value);
        }
        Ok(())
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

struct Parser<'a, K> {
    text: &'a [u8],
    at: usize,
    depth: usize,
    inputs: Vec<String>,
    program: Vec<Op>,
    known: &'a K,
}

impl<K: Fn(&str) -> bool> Parser<'_, K> {
    fn skip_spaces(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_spaces();
        self.text.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), ExpressionError> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(ExpressionError::Syntax {
                at: self.at,
                expected,
            })
        }
    }

    fn nested(&mut self) -> Result<(), ExpressionError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExpressionError::TooDeep);
        }
        Ok(())
    }

    /// term (('+' | '-') term)*
    fn expression(&mut self) -> Result<(), ExpressionError> {
        self.term()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.at += 1;
            self.term()?;
            self.program
                .push(if op == b'+' { Op::Add } else { Op::Sub });
        }
        Ok(())
    }

    /// factor (('*' | '/') factor)*
    fn term(&mut self) -> Result<(), ExpressionError> {
        self.factor()?;
        while let Some(op @ (b'*' | b'/')) = self.peek() {
            self.at += 1;
            self.factor()?;
            self.program
                .push(if op == b'*' { Op::Mul } else { Op::Div });
        }
        Ok(())
    }

    /// '-' factor | number | name | '"' name '"' | function '(' … ')' | '(' expression ')'
    fn factor(&mut self) -> Result<(), ExpressionError> {
        let start = self.at;
        match self.peek() {
            Some(b'-') => {
                self.at += 1;
                self.nested()?;
                self.factor()?;
                self.depth -= 1;
                self.program.push(Op::Neg);
            }
            Some(b'(') => {
                self.at += 1;
                self.nested()?;
                self.expression()?;
                self.expect(b')', "')'")?;
                self.depth -= 1;
            }
            Some(b'0'..=b'9' | b'.') => self.number()?,
            Some(b'"') => {
                self.at += 1;
                let begin = self.at;
                while self.text.get(self.at).is_some_and(|b| *b != b'"') {
                    self.at += 1;
                }
                let name = std::str::from_utf8(&self.text[begin..self.at]).unwrap_or("");
                let name = name.to_owned();
                self.expect(b'"', "a closing '\"'")?;
                self.input(name, begin)?;
            }
            Some(b) if b.is_ascii_alphabetic() => {
                let begin = self.at;
                while self
                    .text
                    .get(self.at)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'))
                {
                    self.at += 1;
                }
                let word = std::str::from_utf8(&self.text[begin..self.at])
                    .unwrap_or("")
                    .to_owned();
                let function = match word.as_str() {
                    "min" => Some((Op::Min, 2)),
                    "max" => Some((Op::Max, 2)),
                    "abs" => Some((Op::Abs, 1)),
                    _ => None,
                };
                match function {
                    Some((op, arity)) if self.peek() == Some(b'(') => {
                        self.at += 1;
                        self.nested()?;
                        for i in 0..arity {
                            if i > 0 {
                                self.expect(b',', "',' and the next argument")?;
                            }
                            self.expression()?;
                        }
                        self.expect(b')', "')' after the arguments")?;
                        self.depth -= 1;
                        self.program.push(op);
                    }
                    _ => self.input(word, begin)?,
                }
            }
            _ => {
                return Err(ExpressionError::Syntax {
                    at: start.max(self.at),
                    expected: "a number, a metric name, '-' or '('",
                });
            }
        }
        Ok(())
    }

    fn number(&mut self) -> Result<(), ExpressionError> {
        let begin = self.at;
        while self
            .text
            .get(self.at)
            .is_some_and(|b| b.is_ascii_digit() || *b == b'.')
        {
            self.at += 1;
        }
        // An exponent: 1e-3, 2.5E6.
        if self
            .text
            .get(self.at)
            .is_some_and(|b| matches!(b, b'e' | b'E'))
        {
            self.at += 1;
            if self
                .text
                .get(self.at)
                .is_some_and(|b| matches!(b, b'+' | b'-'))
            {
                self.at += 1;
            }
            while self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
                self.at += 1;
            }
        }
        let text = std::str::from_utf8(&self.text[begin..self.at]).unwrap_or("");
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => {
                self.program.push(Op::Const(v));
                Ok(())
            }
            _ => Err(ExpressionError::Syntax {
                at: begin,
                expected: "a number",
            }),
        }
    }

    fn input(&mut self, name: String, at: usize) -> Result<(), ExpressionError> {
        if !is_valid_metric_name(&name) {
            return Err(ExpressionError::Syntax {
                at,
                expected: "a metric name (a letter, then letters, digits, '_', '.' or '-')",
            });
        }
        if !(self.known)(&name) {
            return Err(ExpressionError::UnknownMetric(name));
        }
        let slot = match self.inputs.iter().position(|i| *i == name) {
            Some(slot) => slot,
            None => {
                self.inputs.push(name);
                self.inputs.len() - 1
            }
        };
        self.program.push(Op::Input(slot as u16));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any(_: &str) -> bool {
        true
    }

    fn eval(source: &str, values: &[(&str, f64)]) -> Option<f64> {
        let e = Expression::parse(source, any).unwrap();
        let inputs: Vec<f64> = e
            .inputs()
            .iter()
            .map(|i| values.iter().find(|(n, _)| n == i).unwrap().1)
            .collect();
        e.evaluate(&inputs)
    }

    #[test]
    fn the_issue_s_examples_compute_what_they_say() {
        assert_eq!(
            eval("voltage * current", &[("voltage", 12.5), ("current", -2.0)]),
            Some(-25.0)
        );
        assert_eq!(
            eval("temperature_c * 9 / 5 + 32", &[("temperature_c", 100.0)]),
            Some(212.0)
        );
        assert_eq!(eval("-(a - 3) * 2", &[("a", 5.0)]), Some(-4.0));
        assert_eq!(eval("a - -3", &[("a", 1.0)]), Some(4.0));
        assert_eq!(
            eval("max(a, 0) + min(a, 0) + abs(a)", &[("a", -2.0)]),
            Some(0.0)
        );
        assert_eq!(
            eval("\"inlet-temp\" - 2", &[("inlet-temp", 20.0)]),
            Some(18.0)
        );
        assert_eq!(eval("1.5e3 / 3 + .5", &[]), Some(500.5));
        assert_eq!(eval("a + a * a", &[("a", 3.0)]), Some(12.0));
        assert_eq!(
            Expression::parse("a + a * b", any).unwrap().inputs(),
            ["a", "b"]
        );
    }

    #[test]
    fn a_divisor_of_zero_is_refused_when_put_and_not_stored_when_read() {
        for source in [
            "x / 0",
            "x / (2 - 2)",
            "x / -0.0",
            "x / (0 * 5)",
            "x / min(0, 0)",
        ] {
            assert_eq!(
                Expression::parse(source, any).unwrap_err(),
                ExpressionError::DivisionByZero,
                "{source}"
            );
        }
        // Zero only in this reading: no value (never infinity or NaN in the store).
        assert_eq!(eval("x / y", &[("x", 1.0), ("y", 0.0)]), None);
        assert_eq!(eval("x / (y - y)", &[("x", 1.0), ("y", 3.0)]), None);
    }

    #[test]
    fn bad_expressions_are_refused_with_a_reason_code_and_where() {
        let known = |n: &str| n == "voltage" || n == "current";
        let cases: &[(&str, &str)] = &[
            ("voltage *", "expression_syntax"),
            ("voltage current", "expression_syntax"),
            ("(voltage", "expression_syntax"),
            ("voltage + power", "unknown_metric"),
            ("min(voltage)", "expression_syntax"),
            ("voltage ^ 2", "expression_syntax"),
            ("\"voltage", "expression_syntax"),
            ("1e999 * voltage", "expression_syntax"),
            ("", "expression_syntax"),
            ("device_id; drop", "unknown_metric"),
        ];
        for (source, code) in cases {
            let e = Expression::parse(source, known).unwrap_err();
            assert_eq!(e.code(), *code, "{source}: {e}");
        }
        let long = format!("voltage{}", " + voltage".repeat(40));
        assert_eq!(
            Expression::parse(&long, known).unwrap_err().code(),
            "expression_too_long"
        );
        let deep = format!("{}voltage{}", "(".repeat(17), ")".repeat(17));
        assert_eq!(
            Expression::parse(&deep, known).unwrap_err().code(),
            "expression_too_deep"
        );
        let e = Expression::parse("voltage + * 2", known).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at byte 10: expected a number, a metric name, '-' or '('"
        );
    }

    /// A tree of the language, to print and to evaluate directly.
    #[derive(Debug, Clone)]
    enum Tree {
        Const(f64),
        Var(usize),
        Neg(Box<Tree>),
        Abs(Box<Tree>),
        Bin(char, Box<Tree>, Box<Tree>),
    }

    const VARS: [&str; 3] = ["a", "b.c", "d-e"];

    impl Tree {
        fn print(&self) -> String {
            match self {
                Tree::Const(v) => format!("{v:?}"),
                Tree::Var(i) if VARS[*i].contains('-') => format!("\"{}\"", VARS[*i]),
                Tree::Var(i) => VARS[*i].to_owned(),
                Tree::Neg(t) => format!("-({})", t.print()),
                Tree::Abs(t) => format!("abs({})", t.print()),
                Tree::Bin('m', a, b) => format!("min({}, {})", a.print(), b.print()),
                Tree::Bin('M', a, b) => format!("max({}, {})", a.print(), b.print()),
                Tree::Bin(op, a, b) => format!("({} {op} {})", a.print(), b.print()),
            }
        }

        fn eval(&self, vars: &[f64; 3]) -> f64 {
            match self {
                Tree::Const(v) => *v,
                Tree::Var(i) => vars[*i],
                Tree::Neg(t) => -t.eval(vars),
                Tree::Abs(t) => t.eval(vars).abs(),
                Tree::Bin(op, a, b) => {
                    let (a, b) = (a.eval(vars), b.eval(vars));
                    match op {
                        '+' => a + b,
                        '-' => a - b,
                        '*' => a * b,
                        '/' => a / b,
                        'm' => a.min(b),
                        _ => a.max(b),
                    }
                }
            }
        }
    }

    fn tree() -> impl Strategy<Value = Tree> {
        let leaf = prop_oneof![
            (1u32..1000).prop_map(|v| Tree::Const(f64::from(v) / 8.0)),
            (0usize..3).prop_map(Tree::Var),
        ];
        leaf.prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|t| Tree::Neg(Box::new(t))),
                inner.clone().prop_map(|t| Tree::Abs(Box::new(t))),
                (
                    prop::sample::select(vec!['+', '-', '*', '/', 'm', 'M']),
                    inner.clone(),
                    inner
                )
                    .prop_map(|(op, a, b)| Tree::Bin(op, Box::new(a), Box::new(b))),
            ]
        })
    }

    proptest! {
        /// The compiled program computes what the expression says, to the bit, for any
        /// expression of the language and any readings.
        #[test]
        fn the_program_equals_the_expression_evaluated_directly(
            t in tree(),
            vars in prop::array::uniform3(-1e6f64..1e6),
        ) {
            let source = t.print();
            let e = match Expression::parse(&source, any) {
                Ok(e) => e,
                // Too long for the language's bound, or a constant zero divisor: refused,
                // never mis-evaluated.
                Err(ExpressionError::TooLong { .. } | ExpressionError::DivisionByZero | ExpressionError::TooDeep) => return Ok(()),
                Err(other) => return Err(TestCaseError::fail(format!("{source}: {other}"))),
            };
            let inputs: Vec<f64> = e
                .inputs()
                .iter()
                .map(|i| vars[VARS.iter().position(|v| v == i).unwrap()])
                .collect();
            let want = t.eval(&vars);
            let got = e.evaluate(&inputs);
            if want.is_finite() {
                prop_assert_eq!(got, Some(want), "{}", source);
            } else {
                prop_assert_eq!(got, None, "{}", source);
            }
        }
    }
}
