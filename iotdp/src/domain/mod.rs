//! The ground floor: the vocabulary every feature speaks. What a reading is, where a device
//! sits, the reason codes a rejection carries, and how a topic names its device. Pure: no
//! async, no AWS types, and no import from any other module of the crate.

pub mod expression;
pub mod place;
pub mod reading;
pub mod reason;
pub mod topic;
pub mod whole_number;

pub use place::*;
pub use reading::*;

/// `#[serde(default, deserialize_with = "present")]`: a field that may be left out but is not
/// `null` when present (what openapi.yaml's types say; serde's `Option` would take `null`).
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}
