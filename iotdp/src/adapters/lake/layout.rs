//! Where the lake keeps what: its tables, their partitions, and each partition's keys. Pure.
//!
//! - `incoming/<table>/<partition>/<hash>.rows|.parquet`: objects as written (an ingest batch
//!   in the row format of [`super::appended`], a rollup run as Parquet), possibly holding
//!   versions a later object replaces;
//! - `<table>/<partition>/<hash>.parquet`: compacted objects, one version of each row, sorted;
//!   the Glue tables read only these;
//! - `manifests/<table>/<partition>.json`: which objects a reader reads;
//! - `marks/<table>/<partition>`: an empty object naming a partition to (re)compact.

use chrono::{Datelike, TimeZone, Utc};

use crate::rollup::tier::Tier;

/// One of the lake's tables: raw readings, or the rollup rows of one tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Raw,
    Rollups(Tier),
}

/// A table's partition, by the time it starts (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub table: Table,
    pub start_ms: i64,
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

impl Table {
    /// Every table, for the compaction's listing.
    pub const ALL: [Table; 4] = [
        Table::Raw,
        Table::Rollups(Tier::Minute),
        Table::Rollups(Tier::Hour),
        Table::Rollups(Tier::Day),
    ];

    /// `raw`, `rollups/1m`, `rollups/1h`, `rollups/1d`.
    pub fn prefix(self) -> String {
        match self {
            Table::Raw => "raw".into(),
            Table::Rollups(tier) => format!("rollups/{}", tier.name()),
        }
    }

    /// The partition holding `time_ms`: an hour of raw readings, a day of 1-minute and
    /// 1-hour rows (a day of a device's 1-minute rows is 1,440 rows), a month of 1-day rows
    /// (so a year in 1-day bins reads twelve partitions, not 365).
    pub fn partition_of(self, time_ms: i64) -> Partition {
        let start_ms = match self {
            Table::Raw => time_ms.div_euclid(HOUR_MS) * HOUR_MS,
            Table::Rollups(Tier::Minute | Tier::Hour) => time_ms.div_euclid(DAY_MS) * DAY_MS,
            Table::Rollups(Tier::Day) => month_start(time_ms),
        };
        Partition {
            table: self,
            start_ms,
        }
    }

    /// The partitions overlapping `[from_ms, to_ms)`, in time order.
    pub fn partitions(self, from_ms: i64, to_ms: i64) -> Vec<Partition> {
        let mut out = Vec::new();
        if from_ms >= to_ms {
            return out;
        }
        let mut at = self.partition_of(from_ms);
        while at.start_ms < to_ms {
            out.push(at);
            at = self.partition_of(at.end_ms());
        }
        out
    }
}

fn month_start(time_ms: i64) -> i64 {
    let at = Utc
        .timestamp_millis_opt(time_ms)
        .single()
        .unwrap_or_default();
    Utc.with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0)
        .single()
        .map_or(0, |t| t.timestamp_millis())
}

fn utc(time_ms: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_millis_opt(time_ms)
        .single()
        .unwrap_or_default()
}

impl Partition {
    /// When the next partition starts.
    pub fn end_ms(&self) -> i64 {
        match self.table {
            Table::Raw => self.start_ms + HOUR_MS,
            Table::Rollups(Tier::Minute | Tier::Hour) => self.start_ms + DAY_MS,
            Table::Rollups(Tier::Day) => {
                let at = utc(self.start_ms);
                let (year, month) = if at.month() == 12 {
                    (at.year() + 1, 1)
                } else {
                    (at.year(), at.month() + 1)
                };
                Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
                    .single()
                    .map_or(self.start_ms + 31 * DAY_MS, |t| t.timestamp_millis())
            }
        }
    }

    /// `date=2026-12-08/hour=01`, `date=2026-12-08`, `month=2026-12`: Hive-style, so Athena's
    /// partition projection finds them.
    pub fn name(&self) -> String {
        let at = utc(self.start_ms);
        match self.table {
            Table::Raw => at.format("date=%Y-%m-%d/hour=%H").to_string(),
            Table::Rollups(Tier::Minute | Tier::Hour) => at.format("date=%Y-%m-%d").to_string(),
            Table::Rollups(Tier::Day) => at.format("month=%Y-%m").to_string(),
        }
    }

    pub fn manifest_key(&self) -> String {
        format!("manifests/{}/{}.json", self.table.prefix(), self.name())
    }

    pub fn mark_key(&self) -> String {
        format!("{MARKS_PREFIX}{}/{}", self.table.prefix(), self.name())
    }

    /// An object written as it came, named by `hash` of what it holds (a retry writes the same
    /// key again): raw readings in ingest's row format (`.rows`, [`super::appended`]), rollup
    /// rows as Parquet.
    pub fn incoming_key(&self, hash: u64) -> String {
        let extension = match self.table {
            Table::Raw => "rows",
            Table::Rollups(_) => "parquet",
        };
        format!(
            "incoming/{}/{}/{hash:016x}.{extension}",
            self.table.prefix(),
            self.name()
        )
    }

    /// A compacted object, named by `hash` of the objects it replaces.
    pub fn compacted_key(&self, hash: u64) -> String {
        format!(
            "{}/{}/{hash:016x}.parquet",
            self.table.prefix(),
            self.name()
        )
    }

    /// The partition a mark's key names; `None` for a key the lake did not write.
    pub fn from_mark_key(key: &str) -> Option<Partition> {
        let rest = key.strip_prefix(MARKS_PREFIX)?;
        let table = Table::ALL
            .into_iter()
            .find(|t| rest.starts_with(&format!("{}/", t.prefix())))?;
        let name = &rest[table.prefix().len() + 1..];
        let start_ms = parse_partition_name(table, name)?;
        let partition = table.partition_of(start_ms);
        (partition.start_ms == start_ms && partition.name() == name).then_some(partition)
    }
}

/// Where the marks are listed from.
pub const MARKS_PREFIX: &str = "marks/";

fn parse_partition_name(table: Table, name: &str) -> Option<i64> {
    let text = match table {
        Table::Raw => {
            let (date, hour) = name.strip_prefix("date=")?.split_once("/hour=")?;
            format!("{date}T{hour}:00:00Z")
        }
        Table::Rollups(Tier::Minute | Tier::Hour) => {
            format!("{}T00:00:00Z", name.strip_prefix("date=")?)
        }
        Table::Rollups(Tier::Day) => format!("{}-01T00:00:00Z", name.strip_prefix("month=")?),
    };
    chrono::DateTime::parse_from_rfc3339(&text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// FNV-1a, 64 bits: a stable name from content (std's hasher may change between releases,
/// and a retried batch must find the same key).
#[derive(Debug, Clone, Copy)]
pub struct KeyHash(u64);

impl Default for KeyHash {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl KeyHash {
    pub fn mix(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEC_8_0130: i64 = 1_796_693_400_000; // 2026-12-08T01:30:00Z

    #[test]
    fn partitions_are_hours_days_and_months_named_as_athena_projects_them() {
        let raw = Table::Raw.partition_of(DEC_8_0130);
        assert_eq!(raw.name(), "date=2026-12-08/hour=01");
        assert_eq!(raw.end_ms() - raw.start_ms, HOUR_MS);
        assert_eq!(
            raw.manifest_key(),
            "manifests/raw/date=2026-12-08/hour=01.json"
        );
        assert_eq!(
            raw.incoming_key(0xab),
            "incoming/raw/date=2026-12-08/hour=01/00000000000000ab.rows"
        );
        assert_eq!(
            raw.compacted_key(1),
            "raw/date=2026-12-08/hour=01/0000000000000001.parquet"
        );
        let hourly = Table::Rollups(Tier::Hour).partition_of(DEC_8_0130);
        assert_eq!(hourly.name(), "date=2026-12-08");
        assert_eq!(hourly.mark_key(), "marks/rollups/1h/date=2026-12-08");
        let daily = Table::Rollups(Tier::Day).partition_of(DEC_8_0130);
        assert_eq!(daily.name(), "month=2026-12");
        assert_eq!(
            Table::Rollups(Tier::Day)
                .partition_of(daily.end_ms())
                .name(),
            "month=2027-01"
        );
        assert_eq!(daily.end_ms() - daily.start_ms, 31 * DAY_MS);
    }

    #[test]
    fn a_mark_names_its_partition_and_nothing_else_parses() {
        for table in Table::ALL {
            let p = table.partition_of(DEC_8_0130);
            assert_eq!(Partition::from_mark_key(&p.mark_key()), Some(p));
        }
        for key in [
            "marks/raw/date=2026-12-08",
            "marks/raw/date=2026-12-08/hour=25",
            "marks/rollups/5m/date=2026-12-08",
            "marks/rollups/1d/month=2026-12-01",
            "raw/date=2026-12-08/hour=01",
        ] {
            assert_eq!(Partition::from_mark_key(key), None, "{key}");
        }
    }

    #[test]
    fn a_range_covers_the_partitions_it_touches() {
        let year: Vec<_> = Table::Rollups(Tier::Day)
            .partitions(1_767_225_600_000, 1_798_761_600_000) // 2026
            .iter()
            .map(Partition::name)
            .collect();
        assert_eq!(year.len(), 12);
        assert_eq!(year[0], "month=2026-01");
        assert_eq!(Table::Raw.partitions(DEC_8_0130, DEC_8_0130 + 1).len(), 1);
        assert_eq!(
            Table::Raw
                .partitions(DEC_8_0130, DEC_8_0130 + HOUR_MS)
                .len(),
            2
        );
        assert!(Table::Raw.partitions(5, 5).is_empty());
    }
}
