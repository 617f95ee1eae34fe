//! InfluxDB line protocol for readings. Pure.
//!
//! `telemetry,device_id=…,device_type=…,section=…,site=…,spot=…,zone=… m1=21.5,m2=true,m3="eco",seq=42i 1764000000000`
//!
//! One line per reading: measurement `telemetry`, the same dimensions the Timestream adapter
//! writes as tags (sorted by key, as InfluxDB prefers), the metrics as fields, millisecond
//! timestamps. Numbers are always floats (as in Timestream, so `20` then `20.5` never
//! conflict), `seq` an integer.

use std::ops::Range;

use crate::domain::{MetricValue, Reading};

/// The measurement every reading is written to (Timestream's measure name).
pub const MEASUREMENT: &str = "telemetry";

/// Append `text` escaped for a measurement name: commas and spaces.
pub fn push_measurement(out: &mut Vec<u8>, text: &str) {
    push_escaped(out, text, b",  ");
}

/// Append `text` escaped for a tag key, tag value or field key: commas, equals signs, spaces.
/// Backslashes are written as they are: InfluxDB 1.x reads `\\` as two characters where 2.x
/// reads one, so a tag ending in a backslash (or one before `,`, `=` or a space) has no
/// portable spelling. Device ids, types, hierarchy labels and metric names cannot contain a
/// backslash, so only hand-built readings could meet that case.
pub fn push_key(out: &mut Vec<u8>, text: &str) {
    push_escaped(out, text, b",= ");
}

fn push_escaped(out: &mut Vec<u8>, text: &str, special: &[u8]) {
    for &b in text.as_bytes() {
        match b {
            // A line break cannot appear in a key or tag: it would end the line.
            b'\n' => out.extend_from_slice(b"\\n"),
            b if special.contains(&b) => {
                out.push(b'\\');
                out.push(b);
            }
            b => out.push(b),
        }
    }
}

/// Append a string field value: quoted, with quotes and backslashes escaped.
pub fn push_string_field(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for &b in text.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// The InfluxDB field type a metric value is written as (what type-conflict errors name).
pub fn field_type(value: &MetricValue) -> &'static str {
    match value {
        MetricValue::Number(_) => "float",
        MetricValue::Bool(_) => "boolean",
        MetricValue::Text(_) => "string",
    }
}

/// One line per reading, appended to `out` (each ending in `\n`); the byte range of each line.
pub fn encode_lines(readings: &[Reading], out: &mut Vec<u8>) -> Vec<Range<usize>> {
    let mut ranges = Vec::with_capacity(readings.len());
    let mut number = ryu::Buffer::new();
    let mut integer = itoa::Buffer::new();
    for reading in readings {
        let start = out.len();
        push_measurement(out, MEASUREMENT);
        // Tags in key order: device_id, device_type, then section, site, spot, zone.
        let mut tags: [(&str, &str); 6] = [("", ""); 6];
        let mut count = 0;
        tags[count] = ("device_id", reading.device_id.as_str());
        count += 1;
        if let Some(d) = &reading.dimensions {
            tags[count] = ("device_type", d.device_type.as_str());
            count += 1;
            for level in d.path.levels() {
                tags[count] = level;
                count += 1;
            }
        }
        tags[..count].sort_unstable_by_key(|(key, _)| *key);
        for (key, value) in &tags[..count] {
            out.push(b',');
            push_key(out, key);
            out.push(b'=');
            push_key(out, value);
        }
        out.push(b' ');
        let mut first = true;
        for metric in &reading.metrics {
            if !first {
                out.push(b',');
            }
            first = false;
            push_key(out, &metric.name);
            out.push(b'=');
            match &metric.value {
                MetricValue::Number(v) => {
                    out.extend_from_slice(number.format_finite(*v).as_bytes());
                }
                MetricValue::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
                MetricValue::Text(s) => push_string_field(out, s),
            }
        }
        if let Some(seq) = reading.seq {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(b"seq=");
            match i64::try_from(seq) {
                Ok(seq) => {
                    out.extend_from_slice(integer.format(seq).as_bytes());
                    out.push(b'i');
                }
                // Beyond InfluxDB's signed 64-bit integers: the nearest float, so nothing is lost
                // silently (a type conflict with earlier integer seqs is reported by the store).
                Err(_) => out.extend_from_slice(number.format_finite(seq as f64).as_bytes()),
            }
        }
        out.push(b' ');
        out.extend_from_slice(integer.format(reading.time_ms).as_bytes());
        out.push(b'\n');
        ranges.push(start..out.len());
    }
    ranges
}

#[cfg(test)]
mod tests {

    use super::*;

    use crate::domain::LocationPath;

    fn line(reading: &Reading) -> String {
        let mut out = Vec::new();
        encode_lines(std::slice::from_ref(reading), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn reading(metrics: Vec<(&str, MetricValue)>) -> Reading {
        Reading::new("spot-3", 1_764_000_000_123, metrics)
            .with_seq(42)
            .with_place(
                "plant-sensor",
                LocationPath::parse("wall-1/zone-a/s1/spot-3").unwrap(),
            )
    }

    #[test]
    fn a_reading_is_one_line_with_sorted_tags_typed_fields_and_ms_time() {
        let r = reading(vec![
            ("moisture", MetricValue::Number(20.0)),
            ("lux", MetricValue::Number(1.5e-7)),
            ("pump_on", MetricValue::Bool(true)),
            ("mode", MetricValue::Text("eco".into())),
        ]);
        assert_eq!(
            line(&r),
            "telemetry,device_id=spot-3,device_type=plant-sensor,section=s1,site=wall-1,spot=spot-3,zone=zone-a \
             moisture=20.0,lux=1.5e-7,pump_on=true,mode=\"eco\",seq=42i 1764000000123\n"
        );
    }

    #[test]
    fn an_unregistered_device_has_only_its_id_as_tag() {
        let mut r = reading(vec![("t", MetricValue::Number(1.0))]);
        r.dimensions = None;
        r.seq = None;
        assert_eq!(line(&r), "telemetry,device_id=spot-3 t=1.0 1764000000123\n");
    }

    #[test]
    fn special_characters_are_escaped_in_every_position() {
        let mut out = Vec::new();
        push_key(&mut out, "a b,c=d\\e");
        assert_eq!(out, b"a\\ b\\,c\\=d\\e");
        let mut out = Vec::new();
        push_string_field(&mut out, r#"say "hi", \o/ = ok"#);
        assert_eq!(out, br#""say \"hi\", \\o/ = ok""#);
        let mut out = Vec::new();
        push_measurement(&mut out, "tele metry,x=y");
        assert_eq!(out, b"tele\\ metry\\,x=y");
    }

    #[test]
    fn line_ranges_cover_each_reading() {
        let r = reading(vec![("t", MetricValue::Number(1.0))]);
        let mut out = Vec::new();
        let ranges = encode_lines(&[r.clone(), r], &mut out);
        assert_eq!(ranges.len(), 2);
        assert_eq!(ranges[0].end, ranges[1].start);
        assert_eq!(ranges[1].end, out.len());
        assert!(out[ranges[0].clone()].ends_with(b"\n"));
    }
}
