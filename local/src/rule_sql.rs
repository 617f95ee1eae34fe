//! The IoT SQL (2016-03-23) subset our topic rules use, parsed once at start-up and executed per
//! publish: `SELECT` with `*`, `expr AS name`, payload fields, `encode(*, 'base64')`, `topic()`,
//! `topic(n)`, `timestamp()`, `clientid()`; `FROM` a topic filter with `+` and `#`; `WHERE`
//! with comparisons, `AND`, `OR`, `NOT` and parentheses. Anything else is a start-up error
//! naming it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule SQL: {0}")]
pub struct SqlError(pub String);

/// One publish, as the rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub client_id: &'a str,
    pub received_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Literal(Value),
    Field(Vec<String>),
    Topic(Option<usize>),
    Timestamp,
    ClientId,
    EncodeBase64,
    Compare(Box<Expr>, Op, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    All,
    Named(Expr, String),
}

/// A parsed rule query.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleQuery {
    select: Vec<Item>,
    pub topic_filter: String,
    condition: Option<Expr>,
}

impl RuleQuery {
    pub fn parse(sql: &str) -> Result<Self, SqlError> {
        let tokens = tokenize(sql)?;
        let mut parser = Parser { tokens, pos: 0 };
        parser.keyword("SELECT")?;
        let mut select = vec![parser.item()?];
        while parser.eat_symbol(",") {
            select.push(parser.item()?);
        }
        parser.keyword("FROM")?;
        let topic_filter = match parser.next() {
            Some(Token::Str(s)) => s,
            other => {
                return Err(SqlError(format!(
                    "FROM needs a quoted topic filter, found {other:?}"
                )));
            }
        };
        validate_filter(&topic_filter)?;
        let condition = if parser.eat_keyword("WHERE") {
            Some(parser.expr()?)
        } else {
            None
        };
        if let Some(extra) = parser.next() {
            return Err(SqlError(format!(
                "unsupported construct after the query: {extra:?}"
            )));
        }
        Ok(Self {
            select,
            topic_filter,
            condition,
        })
    }

    /// The rule's output for `message`: `Ok(None)` when the topic or `WHERE` does not match;
    /// `Err` when evaluation fails (the rule's error action then gets it).
    pub fn apply(&self, message: &Message<'_>) -> Result<Option<Value>, SqlError> {
        if !topic_matches(&self.topic_filter, message.topic) {
            return Ok(None);
        }
        let mut payload = Payload {
            bytes: message.payload,
            json: None,
        };
        if let Some(condition) = &self.condition
            && eval(condition, message, &mut payload)? != Some(Value::Bool(true))
        {
            return Ok(None);
        }
        let mut out = Map::new();
        for item in &self.select {
            match item {
                Item::All => match payload.json()? {
                    Value::Object(fields) => out.extend(fields.clone()),
                    _ => return Err(SqlError("SELECT * needs a JSON object payload".into())),
                },
                Item::Named(expr, name) => {
                    if let Some(value) = eval(expr, message, &mut payload)? {
                        out.insert(name.clone(), value);
                    }
                }
            }
        }
        Ok(Some(Value::Object(out)))
    }
}

/// A rule action's substitution template (`"${topic(2)}"`, a Kinesis partition key), checked
/// once at start-up: only `${topic()}`, `${topic(n)}` and `${clientid()}` are run locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitution {
    parts: Vec<SubstitutionPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SubstitutionPart {
    Text(String),
    Topic(Option<usize>),
    ClientId,
}

impl Substitution {
    pub fn parse(template: &str) -> Result<Self, SqlError> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(SubstitutionPart::Text(rest[..start].to_owned()));
            }
            let end = rest[start..].find('}').ok_or_else(|| {
                SqlError(format!("substitution template '{template}': unclosed ${{"))
            })?;
            let expression = rest[start + 2..start + end].trim();
            parts.push(match expression {
                "topic()" => SubstitutionPart::Topic(None),
                "clientid()" => SubstitutionPart::ClientId,
                _ => {
                    let level = expression
                        .strip_prefix("topic(")
                        .and_then(|e| e.strip_suffix(')'))
                        .and_then(|n| n.trim().parse::<usize>().ok())
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| {
                            SqlError(format!(
                                "substitution template '{template}': ${{{expression}}} is not run locally (supported: topic(), topic(n), clientid())"
                            ))
                        })?;
                    SubstitutionPart::Topic(Some(level))
                }
            });
            rest = &rest[start + end + 1..];
        }
        if !rest.is_empty() {
            parts.push(SubstitutionPart::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The template filled in for one publish; a topic level it lacks is empty, as in IoT SQL.
    pub fn apply(&self, message: &Message<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                SubstitutionPart::Text(text) => out.push_str(text),
                SubstitutionPart::Topic(None) => out.push_str(message.topic),
                SubstitutionPart::Topic(Some(n)) => {
                    out.push_str(message.topic.split('/').nth(n - 1).unwrap_or_default());
                }
                SubstitutionPart::ClientId => out.push_str(message.client_id),
            }
        }
        out
    }
}

/// MQTT topic filter matching: `+` one level, `#` the rest.
/// A Basic Ingest topic's rule name and the topic the rule sees: `$aws/rules/r/dt/a/telemetry`
/// → `("r", "dt/a/telemetry")`; `None` for any other topic.
pub fn basic_ingest(topic: &str) -> Option<(&str, &str)> {
    let (rule, rest) = topic.strip_prefix("$aws/rules/")?.split_once('/')?;
    (!rule.is_empty() && !rest.is_empty()).then_some((rule, rest))
}

pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut levels = topic.split('/');
    for part in filter.split('/') {
        match (part, levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (p, Some(level)) if p == level => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

fn validate_filter(filter: &str) -> Result<(), SqlError> {
    let parts: Vec<_> = filter.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if (part.contains('#') && (*part != "#" || i + 1 != parts.len()))
            || (part.contains('+') && *part != "+")
        {
            return Err(SqlError(format!("invalid topic filter '{filter}'")));
        }
    }
    Ok(())
}

struct Payload<'a> {
    bytes: &'a [u8],
    json: Option<Value>,
}

impl Payload<'_> {
    fn json(&mut self) -> Result<&Value, SqlError> {
        if self.json.is_none() {
            let parsed = serde_json::from_slice(self.bytes).map_err(|e| {
                SqlError(format!(
                    "payload is not JSON ({e}) but the rule reads its fields"
                ))
            })?;
            self.json = Some(parsed);
        }
        Ok(self.json.as_ref().expect("just parsed"))
    }
}

/// `None` is IoT SQL's *undefined*: the field is left out of the output.
fn eval(
    expr: &Expr,
    m: &Message<'_>,
    payload: &mut Payload<'_>,
) -> Result<Option<Value>, SqlError> {
    Ok(match expr {
        Expr::Literal(v) => Some(v.clone()),
        Expr::Field(path) => {
            // A field of a non-JSON payload is undefined, as in IoT Core.
            let Ok(mut value) = payload.json() else {
                return Ok(None);
            };
            for key in path {
                match value.get(key) {
                    Some(v) => value = v,
                    None => return Ok(None),
                }
            }
            Some(value.clone())
        }
        Expr::Topic(None) => Some(Value::String(m.topic.to_owned())),
        Expr::Topic(Some(n)) => m
            .topic
            .split('/')
            .nth(n - 1)
            .map(|s| Value::String(s.to_owned())),
        Expr::Timestamp => Some(Value::from(m.received_at_ms)),
        Expr::ClientId => Some(Value::String(m.client_id.to_owned())),
        Expr::EncodeBase64 => Some(Value::String(BASE64.encode(m.payload))),
        Expr::Not(inner) => match eval(inner, m, payload)? {
            Some(Value::Bool(b)) => Some(Value::Bool(!b)),
            _ => None,
        },
        Expr::And(a, b) => {
            let truthy = |v: Option<Value>| v == Some(Value::Bool(true));
            Some(Value::Bool(
                truthy(eval(a, m, payload)?) && truthy(eval(b, m, payload)?),
            ))
        }
        Expr::Or(a, b) => {
            let truthy = |v: Option<Value>| v == Some(Value::Bool(true));
            Some(Value::Bool(
                truthy(eval(a, m, payload)?) || truthy(eval(b, m, payload)?),
            ))
        }
        Expr::Compare(a, op, b) => {
            let (Some(a), Some(b)) = (eval(a, m, payload)?, eval(b, m, payload)?) else {
                return Ok(Some(Value::Bool(false)));
            };
            let ordering = match (&a, &b) {
                (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()),
                (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
                (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
                _ => None,
            };
            let result = match (op, ordering) {
                (_, None) => *op == Op::Ne,
                (Op::Eq, Some(o)) => o.is_eq(),
                (Op::Ne, Some(o)) => o.is_ne(),
                (Op::Lt, Some(o)) => o.is_lt(),
                (Op::Le, Some(o)) => o.is_le(),
                (Op::Gt, Some(o)) => o.is_gt(),
                (Op::Ge, Some(o)) => o.is_ge(),
            };
            Some(Value::Bool(result))
        }
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Num(f64),
    Sym(&'static str),
}

fn tokenize(sql: &str) -> Result<Vec<Token>, SqlError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&c| c == '\'')
                .ok_or_else(|| SqlError("unterminated string".into()))?;
            tokens.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            tokens.push(Token::Num(
                text.parse()
                    .map_err(|_| SqlError(format!("bad number {text}")))?,
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let symbol = ["<=", ">=", "<>", "!="].into_iter().find(|s| *s == two);
            let symbol = symbol.or_else(|| {
                ["*", ",", "(", ")", "=", "<", ">", "."]
                    .into_iter()
                    .find(|s| s.starts_with(c))
            });
            match symbol {
                Some(s) => {
                    tokens.push(Token::Sym(s));
                    i += s.len();
                }
                None => {
                    return Err(SqlError(format!(
                        "unsupported character '{c}' at position {i}"
                    )));
                }
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn eat_symbol(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Token::Sym(x)) if *x == s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_keyword(&mut self, k: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(k)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn keyword(&mut self, k: &str) -> Result<(), SqlError> {
        if self.eat_keyword(k) {
            Ok(())
        } else {
            Err(SqlError(format!("expected {k}, found {:?}", self.peek())))
        }
    }

    fn expect(&mut self, s: &str) -> Result<(), SqlError> {
        if self.eat_symbol(s) {
            Ok(())
        } else {
            Err(SqlError(format!("expected '{s}', found {:?}", self.peek())))
        }
    }

    fn item(&mut self) -> Result<Item, SqlError> {
        if self.eat_symbol("*") {
            return Ok(Item::All);
        }
        let expr = self.expr()?;
        if self.eat_keyword("AS") {
            match self.next() {
                Some(Token::Word(name)) => Ok(Item::Named(expr, name)),
                other => Err(SqlError(format!("AS needs a name, found {other:?}"))),
            }
        } else if let Expr::Field(path) = &expr {
            let name = path.last().cloned().unwrap_or_default();
            Ok(Item::Named(expr, name))
        } else {
            Err(SqlError(format!("{expr:?} needs a name: add AS <name>")))
        }
    }

    fn expr(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.and_expr()?;
        while self.eat_keyword("OR") {
            left = Expr::Or(Box::new(left), Box::new(self.and_expr()?));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.not_expr()?;
        while self.eat_keyword("AND") {
            left = Expr::And(Box::new(left), Box::new(self.not_expr()?));
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, SqlError> {
        if self.eat_keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.not_expr()?)));
        }
        let left = self.primary()?;
        let op = match self.peek() {
            Some(Token::Sym("=")) => Op::Eq,
            Some(Token::Sym("<>" | "!=")) => Op::Ne,
            Some(Token::Sym("<")) => Op::Lt,
            Some(Token::Sym("<=")) => Op::Le,
            Some(Token::Sym(">")) => Op::Gt,
            Some(Token::Sym(">=")) => Op::Ge,
            _ => return Ok(left),
        };
        self.pos += 1;
        Ok(Expr::Compare(Box::new(left), op, Box::new(self.primary()?)))
    }

    fn primary(&mut self) -> Result<Expr, SqlError> {
        match self.next() {
            Some(Token::Num(n)) => Ok(Expr::Literal(
                serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
            )),
            Some(Token::Str(s)) => Ok(Expr::Literal(Value::String(s))),
            Some(Token::Sym("(")) => {
                let e = self.expr()?;
                self.expect(")")?;
                Ok(e)
            }
            Some(Token::Word(w)) if self.eat_symbol("(") => self.function(&w),
            Some(Token::Word(w))
                if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") =>
            {
                Ok(Expr::Literal(Value::Bool(w.eq_ignore_ascii_case("true"))))
            }
            Some(Token::Word(w)) => {
                let mut path = vec![w];
                while self.eat_symbol(".") {
                    match self.next() {
                        Some(Token::Word(part)) => path.push(part),
                        other => {
                            return Err(SqlError(format!(
                                "expected a field name after '.', found {other:?}"
                            )));
                        }
                    }
                }
                Ok(Expr::Field(path))
            }
            other => Err(SqlError(format!("unsupported construct {other:?}"))),
        }
    }

    fn function(&mut self, name: &str) -> Result<Expr, SqlError> {
        let expr = match name.to_ascii_lowercase().as_str() {
            "topic" => match self.peek() {
                Some(Token::Num(n)) if *n >= 1.0 && n.fract() == 0.0 => {
                    let n = *n as usize;
                    self.pos += 1;
                    Expr::Topic(Some(n))
                }
                _ => Expr::Topic(None),
            },
            "timestamp" => Expr::Timestamp,
            "clientid" => Expr::ClientId,
            "encode" => {
                self.expect("*")?;
                self.expect(",")?;
                match self.next() {
                    Some(Token::Str(enc)) if enc == "base64" => Expr::EncodeBase64,
                    other => {
                        return Err(SqlError(format!(
                            "encode(*, …) supports only 'base64', found {other:?}"
                        )));
                    }
                }
            }
            other => {
                return Err(SqlError(format!(
                    "function {other}() is not supported by the local rules engine"
                )));
            }
        };
        self.expect(")")?;
        Ok(expr)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn substitution_templates_fill_in_topic_levels_and_the_client() {
        let message = Message {
            topic: "dt/ac-7/telemetry",
            payload: b"{}",
            client_id: "ac-7",
            received_at_ms: 1,
        };
        let key = Substitution::parse("${topic(2)}").unwrap();
        assert_eq!(key.apply(&message), "ac-7");
        let mixed = Substitution::parse("k-${clientid()}/${topic()}/${topic(9)}!").unwrap();
        assert_eq!(mixed.apply(&message), "k-ac-7/dt/ac-7/telemetry/!");
        assert!(
            Substitution::parse("${newuuid()}")
                .unwrap_err()
                .0
                .contains("newuuid()")
        );
        assert!(Substitution::parse("${topic(0)}").is_err());
        assert!(Substitution::parse("${topic(2)").is_err());
    }
    use super::*;

    fn message<'a>(topic: &'a str, payload: &'a [u8]) -> Message<'a> {
        Message {
            topic,
            payload,
            client_id: "dev-1",
            received_at_ms: 1_764_000_000_000,
        }
    }

    #[test]
    fn the_ingest_rule_produces_the_envelope() {
        let sql = include_str!("../../infra/ingest-rule.sql");
        let query = RuleQuery::parse(sql).unwrap();
        let out = query
            .apply(&message("dt/dev-1/telemetry", b"}{ not json"))
            .unwrap()
            .unwrap();
        assert_eq!(out["payload"], BASE64.encode(b"}{ not json"));
        assert_eq!(out["topic"], "dt/dev-1/telemetry");
        assert_eq!(out["received_at"], 1_764_000_000_000i64);
        assert_eq!(out["client_id"], "dev-1");
        assert_eq!(
            query.apply(&message("dt/dev-1/other", b"{}")).unwrap(),
            None
        );
        assert_eq!(
            query.apply(&message("dt/a/b/telemetry", b"{}")).unwrap(),
            None
        );
    }

    #[test]
    fn select_star_fields_topic_parts_and_where() {
        let query = RuleQuery::parse(
            "SELECT *, topic(2) AS device, temperature AS t FROM 'dt/#' WHERE temperature > 30 AND NOT (mode = 'off')",
        )
        .unwrap();
        let hot = query
            .apply(&message(
                "dt/ac-1/telemetry",
                br#"{"temperature":31.5,"mode":"eco"}"#,
            ))
            .unwrap()
            .unwrap();
        assert_eq!(hot["device"], "ac-1");
        assert_eq!(hot["t"], 31.5);
        assert_eq!(hot["mode"], "eco");
        assert_eq!(
            query
                .apply(&message("dt/ac-1/telemetry", br#"{"temperature":20}"#))
                .unwrap(),
            None
        );
        assert_eq!(
            query
                .apply(&message(
                    "dt/ac-1/telemetry",
                    br#"{"temperature":35,"mode":"off"}"#
                ))
                .unwrap(),
            None
        );
        assert!(
            query
                .apply(&message("dt/ac-1/telemetry", b"garbage"))
                .unwrap()
                .is_none(),
            "WHERE on a non-JSON payload is false"
        );
    }

    #[test]
    fn unsupported_constructs_fail_at_parse_time() {
        for (sql, hint) in [
            ("SELECT upper(x) AS y FROM 'a'", "upper"),
            ("SELECT encode(*, 'hex') AS p FROM 'a'", "base64"),
            ("SELECT topic() FROM 'a'", "AS"),
            ("SELECT * FROM 'a/#/b'", "topic filter"),
            ("SELECT * FROM 'a' ORDER BY x", "after the query"),
            ("SELECT a FROM 'x' WHERE a LIKE 'b'", "after the query"),
        ] {
            let e = RuleQuery::parse(sql).unwrap_err();
            assert!(e.0.contains(hint), "{sql}: {e}");
        }
    }

    #[test]
    fn basic_ingest_topics_name_their_rule() {
        assert_eq!(
            basic_ingest("$aws/rules/iotdp_TelemetryRule/dt/ac-1/telemetry"),
            Some(("iotdp_TelemetryRule", "dt/ac-1/telemetry"))
        );
        for other in [
            "dt/ac-1/telemetry",
            "$aws/rules/",
            "$aws/rules//dt/a",
            "$aws/rules/r/",
            "$aws/things/a/shadow/update",
        ] {
            assert_eq!(basic_ingest(other), None, "{other}");
        }
    }

    #[test]
    fn topic_filters_follow_mqtt() {
        assert!(topic_matches("dt/+/telemetry", "dt/a/telemetry"));
        assert!(!topic_matches("dt/+/telemetry", "dt/a/b/telemetry"));
        assert!(topic_matches("dt/#", "dt/a/b"));
        assert!(topic_matches("#", "x"));
        assert!(!topic_matches("dt/a", "dt/a/b"));
        assert!(!topic_matches("dt/a/b", "dt/a"));
    }
}
