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
    /// Volume tiers, where the price falls with the month's quantity (per account): each
    /// tier's `usd` per `per` applies to the quantity up to its `up_to` (the last has none).
    /// Without tiers, `usd` applies to all of it.
    #[serde(default)]
    pub tiers: Vec<PriceTier>,
}

/// One volume tier of a [`Price`].
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct PriceTier {
    /// The month's quantity this tier ends at (none for the last tier).
    pub up_to: Option<f64>,
    pub usd: f64,
}

impl Price {
    /// Dollars for a month's `quantity`, tier by tier.
    pub fn usd_for(&self, quantity: f64) -> f64 {
        if self.tiers.is_empty() {
            return quantity / self.per * self.usd;
        }
        let (mut usd, mut from) = (0.0, 0.0);
        for tier in &self.tiers {
            let to = tier.up_to.unwrap_or(f64::INFINITY).min(quantity);
            if to > from {
                usd += (to - from) / self.per * tier.usd;
                from = to;
            }
        }
        usd
    }
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

    /// Tiers of 1.00, 0.80 and 0.70 USD a million, as IoT Core's messaging: the thermostats'
    /// 12.96 billion messages are 1,000 + 3,200 + 5,572 USD.
    #[test]
    fn a_tiered_price_charges_each_tier_its_own_rate() {
        let price = Price {
            service: "IoT Core".into(),
            usd: 1.0,
            per: 1_000_000.0,
            unit: "messages".into(),
            source: "https://example.com".into(),
            checked: "test".into(),
            tiers: vec![
                PriceTier {
                    up_to: Some(1e9),
                    usd: 1.0,
                },
                PriceTier {
                    up_to: Some(5e9),
                    usd: 0.8,
                },
                PriceTier {
                    up_to: None,
                    usd: 0.7,
                },
            ],
        };
        assert!((price.usd_for(12.96e9) - (1_000.0 + 3_200.0 + 5_572.0)).abs() < 1e-6);
        assert!((price.usd_for(0.5e9) - 500.0).abs() < 1e-9);
        assert_eq!(price.usd_for(0.0), 0.0);
        let flat = Price {
            tiers: vec![],
            ..price
        };
        assert!((flat.usd_for(12.96e9) - 12_960.0).abs() < 1e-6);
    }

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
        // IoT Core's messaging is tiered by the account's month.
        let messaging = table.get("iot_core_messaging").unwrap();
        assert_eq!(messaging.tiers.len(), 3);
        let missing = table.get("no_such_item").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "the price table has no [no_such_item]: add it (see infra/prices.toml)"
        );
    }
}
