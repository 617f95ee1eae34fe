//! The heard log: when each watched device's silence is next due, written in bulk.
//!
//! Why: keeping a per-device deadline exact costs one registry write per device per message
//! once messages come less often than a tenth of the heartbeat (the battery boxes: 5-minute
//! reports, a 15-minute heartbeat). Instead, each ingest batch appends one digest of the
//! deadlines it moved (about 20 bytes a device, so a thousand devices cost 20 write units
//! where per-device writes cost a thousand), and the silence watch reads the digests of the
//! last few minutes before it believes the registry's coarser deadline. The registry's own
//! `last_seen` is then written once per `LastSeenIntervalSeconds` per device.
//!
//! A digest is plain text: `<device id> <seconds after base>` per line, where `base` is the
//! earliest deadline in it, whole seconds rounded up (a deadline is never moved earlier).
//! Device ids hold no spaces or line breaks ([`crate::domain::is_valid_device_id`]).

use crate::devices::record::last_seen_resolution_ms;

/// One watched device heard from: its silence may be raised from `raise_at_ms` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeardEntry {
    pub device_id: String,
    pub raise_at_ms: i64,
}

impl HeardEntry {
    /// A device heard at `heard_ms` with heartbeat `heartbeat_seconds`: silent once the
    /// heartbeat has passed, plus the tenth of it the heard time may be stale by.
    pub fn new(device_id: &str, heard_ms: i64, heartbeat_seconds: u32) -> Self {
        Self {
            device_id: device_id.to_owned(),
            raise_at_ms: raise_at(heard_ms, heartbeat_seconds),
        }
    }
}

/// When a device heard at `heard_ms` counts as silent: the heartbeat, plus the resolution
/// `last_seen` and the heard log are kept at (so an entry skipped as too close to the previous
/// one never makes the watch raise early).
pub fn raise_at(heard_ms: i64, heartbeat_seconds: u32) -> i64 {
    heard_ms + i64::from(heartbeat_seconds) * 1000 + last_seen_resolution_ms(heartbeat_seconds)
}

/// The device heard at the latest, given when its silence is due.
pub fn heard_from_raise_at(raise_at_ms: i64, heartbeat_seconds: u32) -> i64 {
    raise_at_ms - (raise_at(0, heartbeat_seconds))
}

/// Most entries one digest holds: about 20 bytes each keeps a digest far under DynamoDB's
/// 400 KB item limit.
pub const MAX_ENTRIES_PER_DIGEST: usize = 10_000;

/// One digest, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The earliest deadline, whole seconds.
    pub base_s: i64,
    /// The latest deadline, milliseconds: digests are found by it.
    pub latest_ms: i64,
    pub body: String,
}

/// Entries into digests of at most [`MAX_ENTRIES_PER_DIGEST`], in order.
pub fn encode(entries: &[HeardEntry]) -> Vec<Digest> {
    entries
        .chunks(MAX_ENTRIES_PER_DIGEST)
        .map(|chunk| {
            let seconds = |e: &HeardEntry| (e.raise_at_ms + 999).div_euclid(1000);
            let base_s = chunk.iter().map(seconds).min().unwrap_or_default();
            let mut body = String::with_capacity(chunk.len() * 20);
            for entry in chunk {
                use std::fmt::Write;
                let _ = writeln!(body, "{} {}", entry.device_id, seconds(entry) - base_s);
            }
            Digest {
                base_s,
                latest_ms: chunk
                    .iter()
                    .map(|e| e.raise_at_ms)
                    .max()
                    .unwrap_or_default(),
                body,
            }
        })
        .collect()
}

/// A digest read back; a line that does not parse names itself.
pub fn decode(base_s: i64, body: &str) -> Result<Vec<HeardEntry>, String> {
    body.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (id, offset) = line
                .split_once(' ')
                .ok_or_else(|| format!("heard log line {line:?} has no offset"))?;
            let offset: i64 = offset
                .parse()
                .map_err(|_| format!("heard log line {line:?}: offset is not a number"))?;
            Ok(HeardEntry {
                device_id: id.to_owned(),
                raise_at_ms: (base_s + offset) * 1000,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_trip_never_earlier_and_less_than_a_second_later() {
        let entries = vec![
            HeardEntry::new("battery-000001", 1_700_000_000_123, 900),
            HeardEntry::new("battery-000002", 1_700_000_004_000, 900),
        ];
        let digests = encode(&entries);
        assert_eq!(digests.len(), 1);
        let back = decode(digests[0].base_s, &digests[0].body).unwrap();
        for (sent, read) in entries.iter().zip(&back) {
            assert_eq!(sent.device_id, read.device_id);
            assert!(read.raise_at_ms >= sent.raise_at_ms);
            assert!(read.raise_at_ms - sent.raise_at_ms < 1000);
        }
        assert_eq!(digests[0].latest_ms, entries[1].raise_at_ms);
        // 15 minutes plus a tenth of them after being heard.
        assert_eq!(entries[0].raise_at_ms, 1_700_000_000_123 + 990_000);
        assert_eq!(
            heard_from_raise_at(entries[0].raise_at_ms, 900),
            1_700_000_000_123
        );
    }

    #[test]
    fn a_device_costs_about_twenty_bytes() {
        let entries: Vec<_> = (0..1000)
            .map(|i| HeardEntry::new(&format!("battery-{i:06}"), 1_700_000_000_000 + i, 900))
            .collect();
        let digests = encode(&entries);
        assert!(
            digests[0].body.len() < 1000 * 20,
            "{}",
            digests[0].body.len()
        );
        let many: Vec<_> = (0..MAX_ENTRIES_PER_DIGEST + 1)
            .map(|i| HeardEntry::new(&format!("d-{i}"), 0, 60))
            .collect();
        assert_eq!(encode(&many).len(), 2);
    }

    #[test]
    fn a_damaged_line_is_named() {
        let e = decode(0, "battery-1 12\nbattery-2\n").unwrap_err();
        assert!(e.contains("battery-2"), "{e}");
        assert!(
            decode(0, "battery-1 x")
                .unwrap_err()
                .contains("not a number")
        );
    }
}
