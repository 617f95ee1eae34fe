//! Where a device sits in the hierarchy, and the dimensions every reading of it carries.
//! Ground floor: the registry, the stores and the queries all speak these.

/// The hierarchy levels, top down, as green-wall installations are organised. They are also
/// the dimension (tag) names the stores write, so queries drill down by the same names.
pub const HIERARCHY_LEVELS: [&str; 4] = ["site", "zone", "section", "spot"];
/// Longest device type, hierarchy segment, tag key or tag value.
pub const MAX_LABEL_LEN: usize = 64;
/// Where a device sits: up to four levels, `site/zone/section/spot`. Segments use a label
/// alphabet safe as a Timestream dimension value, an InfluxDB tag and a query literal.
/// In JSON it is its text (`"wall-3/zone-a"`), read as strictly as [`Self::parse_exact`].
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct LocationPath(Vec<String>);

impl TryFrom<String> for LocationPath {
    type Error = RecordError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse_exact(&text)
    }
}

impl From<LocationPath> for String {
    fn from(path: LocationPath) -> Self {
        path.to_string()
    }
}

impl LocationPath {
    /// As [`Self::parse`], but refusing what `parse` forgives (surrounding spaces or `/`):
    /// the API's form, where the pattern in openapi.yaml is the rule.
    pub fn parse_exact(text: &str) -> Result<Self, RecordError> {
        if text.trim().trim_matches('/') != text {
            return Err(RecordError::new(
                "path",
                format!(
                    "'{text}' must be site[/zone[/section[/spot]]] with no leading or trailing '/' or spaces"
                ),
            ));
        }
        Self::parse(text)
    }

    pub fn parse(text: &str) -> Result<Self, RecordError> {
        let text = text.trim().trim_matches('/');
        if text.is_empty() {
            return Ok(Self::default());
        }
        let segments: Vec<String> = text.split('/').map(str::to_owned).collect();
        if segments.len() > HIERARCHY_LEVELS.len() {
            return Err(RecordError::new(
                "path",
                format!(
                    "'{text}' has {} levels; at most 4 (site/zone/section/spot)",
                    segments.len()
                ),
            ));
        }
        for (level, segment) in HIERARCHY_LEVELS.iter().zip(&segments) {
            if !is_valid_label(segment) {
                return Err(RecordError::new(
                    "path",
                    format!("{level} '{segment}' must be 1-64 characters of A-Z a-z 0-9 _ . : -"),
                ));
            }
        }
        Ok(Self(segments))
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `(level name, segment)` for each level present, top down.
    pub fn levels(&self) -> impl Iterator<Item = (&'static str, &str)> {
        HIERARCHY_LEVELS
            .iter()
            .copied()
            .zip(self.0.iter().map(String::as_str))
    }

    /// Whether this path is `prefix` or lies below it.
    pub fn starts_with(&self, prefix: &LocationPath) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl std::fmt::Display for LocationPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("/"))
    }
}

/// `[A-Za-z0-9_.:-]{1,64}`.
pub fn is_valid_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_LABEL_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// What the stores write beside each reading of a registered device, shared by every reading
/// of that device (one allocation per device per cache fill, not per reading).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDimensions {
    pub device_type: String,
    pub path: LocationPath,
}

/// A device field that cannot be used, naming the field and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device field '{field}': {problem}")]
pub struct RecordError {
    pub field: &'static str,
    pub problem: String,
}

impl RecordError {
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}
