//! A partition's manifest: the objects a reader reads for it. Pure.

use serde::{Deserialize, Serialize};

/// The objects of one partition: compacted ones first, then those written since.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub objects: Vec<ManifestEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub key: String,
    /// Rows in the object.
    pub rows: usize,
    /// Written by the compaction: one version of each row, sorted. Absent in manifests written
    /// before compaction existed, which read as written as they came.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compacted: bool,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn names(&self, key: &str) -> bool {
        self.objects.iter().any(|o| o.key == key)
    }

    /// Add an object; `false` when it is already named (a retried write).
    pub fn add(&mut self, entry: ManifestEntry) -> bool {
        if self.names(&entry.key) {
            return false;
        }
        self.objects.push(entry);
        true
    }

    /// Objects not yet compacted.
    pub fn uncompacted(&self) -> usize {
        self.objects.iter().filter(|o| !o.compacted).count()
    }

    /// Whether a compaction would change anything: objects written since the last one, or
    /// more than one compacted object.
    pub fn needs_compaction(&self) -> bool {
        self.uncompacted() > 0 || self.objects.len() > 1
    }

    /// This manifest with `sources` replaced by `compacted`, the objects added since kept
    /// after it; `None` when a source is no longer named (another compaction replaced it).
    pub fn replaced(&self, sources: &[ManifestEntry], compacted: ManifestEntry) -> Option<Self> {
        if !sources.iter().all(|s| self.names(&s.key)) {
            return None;
        }
        let later = self
            .objects
            .iter()
            .filter(|o| !sources.iter().any(|s| s.key == o.key) && o.key != compacted.key)
            .cloned();
        let objects = std::iter::once(compacted.clone()).chain(later).collect();
        Some(Self { objects })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, compacted: bool) -> ManifestEntry {
        ManifestEntry {
            key: key.into(),
            rows: 3,
            compacted,
        }
    }

    #[test]
    fn an_object_is_named_once() {
        let mut m = Manifest::default();
        assert!(m.add(entry("incoming/x.parquet", false)));
        assert!(!m.add(entry("incoming/x.parquet", false)));
        let back = Manifest::parse(&m.to_bytes()).unwrap();
        assert_eq!(back, m);
        assert!(Manifest::parse(b"{").is_err());
        let before_compaction = br#"{"objects":[{"key":"raw/a.parquet","rows":2}]}"#;
        assert_eq!(Manifest::parse(before_compaction).unwrap().uncompacted(), 1);
    }

    #[test]
    fn a_compaction_replaces_its_sources_and_keeps_what_came_after() {
        let mut m = Manifest::default();
        m.add(entry("a", false));
        m.add(entry("b", false));
        let sources = m.objects.clone();
        m.add(entry("late", false));
        let next = m.replaced(&sources, entry("c", true)).unwrap();
        let keys: Vec<_> = next.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["c", "late"]);
        assert_eq!(next.uncompacted(), 1);
        assert!(next.needs_compaction());
        // Another compaction replaced `a` and `b` first: this one must not swap.
        assert_eq!(next.replaced(&sources, entry("c2", true)), None);
        let done = next
            .replaced(&next.objects.clone(), entry("d", true))
            .unwrap();
        assert!(!done.needs_compaction());
    }
}
