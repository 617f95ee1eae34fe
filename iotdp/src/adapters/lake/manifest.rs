//! An hour's manifest: the objects a reader reads for that hour. Pure.

use serde::{Deserialize, Serialize};

/// The objects of one hour, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub objects: Vec<ManifestEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub key: String,
    /// Rows (metric values) in the object.
    pub rows: usize,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Add an object; `false` when it is already named (a retried write).
    pub fn add(&mut self, entry: ManifestEntry) -> bool {
        if self.objects.iter().any(|o| o.key == entry.key) {
            return false;
        }
        self.objects.push(entry);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_is_named_once() {
        let mut m = Manifest::default();
        let e = ManifestEntry {
            key: "raw/x.parquet".into(),
            rows: 3,
        };
        assert!(m.add(e.clone()));
        assert!(!m.add(e));
        let back = Manifest::parse(&m.to_bytes()).unwrap();
        assert_eq!(back, m);
        assert!(Manifest::parse(b"{").is_err());
    }
}
