//! The price table (`infra/prices.toml`): one entry per metered item, with its source.

use std::collections::BTreeMap;

/// Why a bill could not be priced.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    /// The table is not TOML of `[item]` sections with `service`, `usd`, `per`, `unit`,
    /// `source` and `checked`.
    #[error("the price table: {0}")]
    Unreadable(#[from] toml::de::Error),
    /// A line of the bill meters an item the table does not price.
    #[error("the price table has no [{key}]: add it (see infra/prices.toml)")]
    Missing { key: String },
}

/// One priced item of `infra/prices.toml`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Price {
    pub service: String,
    pub usd: f64,
    pub per: f64,
    pub unit: String,
    pub source: String,
    pub checked: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable(pub BTreeMap<String, Price>);

impl PriceTable {
    pub fn parse(text: &str) -> Result<Self, PriceError> {
        Ok(Self(toml::from_str::<BTreeMap<String, Price>>(text)?))
    }

    pub(crate) fn get(&self, key: &str) -> Result<&Price, PriceError> {
        self.0.get(key).ok_or_else(|| PriceError::Missing {
            key: key.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_price_table_parses_and_names_its_sources() {
        let table = PriceTable::parse(include_str!("../../infra/prices.toml")).unwrap();
        assert!(table.0.len() >= 10);
        for (key, price) in &table.0 {
            assert!(price.source.starts_with("https://"), "{key}");
            assert!(price.usd > 0.0 && price.per > 0.0, "{key}");
        }
        let unreadable = PriceTable::parse("[x]\nusd = 1").unwrap_err();
        assert!(
            matches!(unreadable, PriceError::Unreadable(_)),
            "{unreadable:?}"
        );
        assert!(unreadable.to_string().contains("price table"));
        let missing = table.get("no_such_item").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "the price table has no [no_such_item]: add it (see infra/prices.toml)"
        );
    }
}
