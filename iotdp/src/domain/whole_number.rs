//! Whole numbers as JSON Schema counts them: `3600` and `3600.0` are both the integer 3600
//! (openapi.yaml's `type: integer`), so a client that writes every number as a float is not
//! refused. Anything with a fraction, negative or too large for the field still is.

use serde::Deserializer;
use serde::de::{self, Visitor};

struct Whole<T>(std::marker::PhantomData<T>);

impl<T: TryFrom<u64>> Visitor<'_> for Whole<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a whole number in range")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        u64::try_from(v)
            .map_err(|_| E::custom(format!("{v} is negative")))
            .and_then(|v| self.visit_u64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        // 2^64 is the first float above u64::MAX.
        if v.fract() != 0.0 || !(0.0..18_446_744_073_709_551_616.0).contains(&v) {
            return Err(E::custom(format!("{v} is not a whole number in range")));
        }
        self.visit_u64(v as u64)
    }
}

/// `#[serde(deserialize_with = "whole_number::exact")]`
pub fn exact<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(Whole(std::marker::PhantomData))
}

/// An optional field that is not `null` when present (pair with `#[serde(default)]`).
pub fn present<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<Option<T>, D::Error> {
    exact(d).map(Some)
}

/// The same for an optional field (`null` or absent: `None`; pair with `#[serde(default)]`).
pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<Option<T>, D::Error> {
    struct Maybe<T>(std::marker::PhantomData<T>);
    impl<'de, T: TryFrom<u64>> Visitor<'de> for Maybe<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number in range, or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            exact(d).map(Some)
        }
    }
    d.deserialize_option(Maybe(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Sample {
        #[serde(deserialize_with = "super::exact")]
        count: u32,
        #[serde(default, deserialize_with = "super::optional")]
        every: Option<u64>,
    }

    fn parse(text: &str) -> Result<Sample, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn integral_floats_are_whole_numbers_and_fractions_are_not() {
        assert_eq!(
            parse(r#"{"count":3600.0,"every":60}"#).unwrap(),
            Sample {
                count: 3600,
                every: Some(60)
            }
        );
        assert_eq!(parse(r#"{"count":7,"every":null}"#).unwrap().every, None);
        assert_eq!(parse(r#"{"count":7}"#).unwrap().every, None);
        for refused in [
            r#"{"count":1.5}"#,
            r#"{"count":-1}"#,
            r#"{"count":4294967296}"#,
            r#"{"count":1e300}"#,
            r#"{"count":"7"}"#,
        ] {
            assert!(parse(refused).is_err(), "{refused}");
        }
    }
}
