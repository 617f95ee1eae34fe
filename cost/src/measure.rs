//! What one message of a load costs in metered units, measured through the real code: the
//! ingest path's decoding, validation and Timestream request building, and the registry
//! cache's writes.

use iotdp::adapters::timestream::{MAX_RECORDS_PER_WRITE, build_write_request};
use iotdp::devices::cache::DEFAULT_SEEN_INTERVAL;
use iotdp::domain::LocationPath;
use iotdp::ingest::batch::prepare_batch;
use iotdp::ingest::envelope::encode_envelope;
use iotdp::ingest::validation::TimeWindow;

use crate::load::{Load, sample_payload};
use crate::{MESSAGES_PER_INVOCATION, reads, write_size};

/// Messages of one device driven through the registry cache to count its writes.
const SEEN_SAMPLE: usize = 3_600;

/// Why a load could not be measured through the real code.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// The load's sample messages fail the ingest path's validation: its shape (metrics per
    /// reading, readings per message) is outside what ingest accepts.
    #[error("the sample of '{load}' was rejected: {rejection}")]
    SampleRejected { load: String, rejection: String },
    /// The Timestream request builder refused the sample's readings.
    #[error("{0}")]
    WriteRequest(#[from] aws_sdk_timestreamwrite::error::BuildError),
    /// The memory registry the cache is counted against failed a lookup.
    #[error("{0}")]
    Registry(#[from] iotdp::devices::ports::RegistryError),
    #[error(transparent)]
    Reads(#[from] reads::ReadsError),
}

/// What one message of a load costs in metered units, measured through the real code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerMessage {
    /// Payload and topic, as IoT Core meters a publish.
    pub iot_bytes: usize,
    /// The rule's envelope: an SQS message body or a Kinesis record.
    pub envelope_bytes: usize,
    pub readings: usize,
    /// The payload alone: what a rule hands an action (a Firehose record).
    pub payload_bytes: usize,
    /// Timestream 1 KB write units, iotdp's multi-measure requests.
    pub timestream_kb: f64,
    /// What iotdp's records hold in Timestream's storage (each measure a record).
    pub stored_bytes: f64,
    /// Timestream 1 KB write units of the rule's Timestream action: one request a message, a
    /// single-measure record per attribute, the device id its dimension.
    pub baseline_timestream_kb: f64,
    /// What the action's records hold in storage.
    pub baseline_stored_bytes: f64,
    /// Why the rule's Timestream action cannot store this load's messages, if it cannot.
    pub timestream_action_unfit: Option<&'static str>,
    /// DynamoDB write units per message for `last_seen` and the silence deadline: the
    /// registry's per-device writes plus the message's share of the heard log's digests.
    pub registry_writes: f64,
    /// The same at the former `LastSeenIntervalSeconds` of 60 and without the heard log (every
    /// watched device's deadline a registry write), for the before-and-after.
    pub registry_writes_before: f64,
    /// The load's reads a month: the rollup job, dashboards, DynamoDB reads.
    pub reads: reads::Reads,
    /// The deployment priced.
    pub deployment: reads::Deployment,
}

/// Measure `load` through the ingest path's own decoding, validation and request building,
/// over `samples` messages.
/// `samples` should be a batch's worth (the ingest function gets up to 1,000 messages), so
/// the requests are as full as they are deployed.
pub async fn measure(load: &Load, samples: usize) -> Result<PerMessage, MeasureError> {
    measure_with(load, samples, &reads::Deployment::default()).await
}

/// [`measure`] for `deployment`.
pub async fn measure_with(
    load: &Load,
    samples: usize,
    deployment: &reads::Deployment,
) -> Result<PerMessage, MeasureError> {
    let now_ms = 1_764_000_000_000;
    let bodies: Vec<(String, String, usize, usize)> = (0..samples)
        .map(|n| {
            let device = format!("device-{n:06}");
            let topic = iotdp::domain::topic::telemetry_topic(&device);
            let payload = sample_payload(load, n, now_ms);
            let iot = payload.len() + topic.len();
            let envelope = encode_envelope(payload.as_bytes(), &topic, now_ms, Some(&device));
            (format!("m{n}"), envelope, iot, payload.len())
        })
        .collect();
    let batch = prepare_batch(
        bodies
            .iter()
            .map(|(id, body, _, _)| (id.as_str(), body.as_str())),
        TimeWindow::with_retention_days(73_000),
    );
    if let Some(rejection) = batch.rejections.first() {
        return Err(MeasureError::SampleRejected {
            load: load.name.clone(),
            rejection: format!("{rejection:?}"),
        });
    }
    // Admission puts the registry's type and place on every reading: they are dimensions.
    let readings: Vec<_> = batch
        .readings
        .into_iter()
        .map(|r| {
            r.with_place(
                "sensor",
                LocationPath::parse("site-01/zone-a/section-1").unwrap(),
            )
        })
        .collect();
    // The store writer sends the batch sorted by device, in requests of up to 100 records.
    let mut sorted = readings.clone();
    sorted.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    let (mut kb, mut stored) = (0.0, 0.0);
    for request in sorted.chunks(MAX_RECORDS_PER_WRITE) {
        let built = build_write_request(request)?;
        kb += write_size::write_units(write_size::request_bytes(&built));
        stored += write_size::stored_bytes(&built) as f64;
    }
    // The rule's action: one request a message, a single-measure record per attribute.
    let action = readings_by_message(&batch_sizes(load, samples), &readings)
        .map(timestream_action_request)
        .collect::<Result<Vec<_>, _>>()?;
    let baseline_kb: f64 = action
        .iter()
        .map(|r| write_size::write_units(write_size::request_bytes(r)))
        .sum();
    let baseline_stored: f64 = action
        .iter()
        .map(|r| write_size::stored_bytes(r) as f64)
        .sum();
    let n = samples as f64;
    let after = registry_writes_per_message(load, DEFAULT_SEEN_INTERVAL).await?;
    let before = registry_writes_per_message(load, std::time::Duration::from_secs(60)).await?;
    let registry_writes = after.write_units();
    let registry_writes_before = before.write_units();
    let reads =
        reads::measure_reads(load, deployment, after.heard, after.heard_entry_bytes).await?;
    Ok(PerMessage {
        iot_bytes: (bodies.iter().map(|b| b.2).sum::<usize>() as f64 / n).ceil() as usize,
        envelope_bytes: (bodies.iter().map(|b| b.1.len()).sum::<usize>() as f64 / n).ceil()
            as usize,
        readings: readings.len() / samples,
        payload_bytes: (bodies.iter().map(|b| b.3).sum::<usize>() as f64 / n).ceil() as usize,
        timestream_kb: kb / n,
        stored_bytes: stored / n,
        baseline_timestream_kb: baseline_kb / n,
        baseline_stored_bytes: baseline_stored / n,
        timestream_action_unfit: timestream_action_unfit(load),
        registry_writes,
        registry_writes_before,
        reads,
        deployment: *deployment,
    })
}

/// The most values the rule's Timestream action writes from one message.
/// Source (read 2026-12-07): <https://docs.aws.amazon.com/iot/latest/developerguide/timestream-rule-action.html>
/// ("The maximum number of values that a Timestream rule action can write into an Amazon
/// Timestream table is 100"; "Objects and array values are converted to JSON strings").
pub const TIMESTREAM_ACTION_MAX_VALUES: usize = 100;

/// Why the rule's Timestream action cannot store `load`'s messages as readings, if it cannot.
pub fn timestream_action_unfit(load: &Load) -> Option<&'static str> {
    if load.readings_per_message > 1 {
        Some(
            "the rule's Timestream action cannot unnest a gateway's array of readings (it stores an array as one JSON string)",
        )
    } else if load.metrics > TIMESTREAM_ACTION_MAX_VALUES {
        Some("the rule's Timestream action writes at most 100 values a message")
    } else {
        None
    }
}

/// How many readings each sample message carries.
fn batch_sizes(load: &Load, samples: usize) -> Vec<usize> {
    vec![load.readings_per_message; samples]
}

/// The readings, a message at a time (admission keeps their order).
fn readings_by_message<'a>(
    sizes: &'a [usize],
    readings: &'a [iotdp::domain::Reading],
) -> impl Iterator<Item = &'a [iotdp::domain::Reading]> + 'a {
    let mut at = 0;
    sizes.iter().map(move |&size| {
        let part = &readings[at.min(readings.len())..(at + size).min(readings.len())];
        at += size;
        part
    })
}

/// The rule's Timestream action's request for one message: a single-measure record per
/// attribute, the device id (from the topic) its one dimension, the message's timestamp.
/// A gateway message's readings would not be unnested (see [`timestream_action_unfit`]): they
/// are sized here as if they were, which is generous to the action.
fn timestream_action_request(
    message: &[iotdp::domain::Reading],
) -> Result<iotdp::adapters::timestream::TimestreamWriteRequest, MeasureError> {
    use aws_sdk_timestreamwrite::types::{Dimension, MeasureValueType, Record};
    let mut records = Vec::new();
    for reading in message {
        let device = Dimension::builder()
            .name("device_id")
            .value(&reading.device_id)
            .build()?;
        for metric in &reading.metrics {
            records.push(
                Record::builder()
                    .dimensions(device.clone())
                    .measure_name(&metric.name)
                    .measure_value(match &metric.value {
                        iotdp::domain::MetricValue::Number(v) => v.to_string(),
                        other => format!("{other:?}"),
                    })
                    .measure_value_type(MeasureValueType::Double)
                    .time(reading.time_ms.to_string())
                    .build(),
            );
        }
    }
    Ok(iotdp::adapters::timestream::TimestreamWriteRequest {
        common: Record::builder().build(),
        records,
    })
}

/// What keeping `last_seen` and the silence deadline costs per message of a device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegistryCost {
    /// Per-device registry writes (one write unit each: a record is under 1 KB).
    pub writes: f64,
    /// Deadlines appended to the heard log.
    pub heard: f64,
    /// Bytes of one logged deadline in a digest, as the adapter encodes it.
    pub heard_entry_bytes: f64,
}

/// A digest's item beyond its entries: the attribute names and the key, base and expiry
/// values (`pk`, `sk`, `base`, `heard`, `expires_at`), as DynamoDB sizes an item.
const DIGEST_ITEM_OVERHEAD_BYTES: f64 = 80.0;

impl RegistryCost {
    /// Write units per message: the registry's writes, and the message's share of its
    /// invocation's digest (one digest per invocation of distinct devices, metered by the KB).
    pub fn write_units(&self) -> f64 {
        let entries = MESSAGES_PER_INVOCATION * self.heard;
        let digest_units = if entries > 0.0 {
            ((DIGEST_ITEM_OVERHEAD_BYTES + entries * self.heard_entry_bytes) / 1024.0).ceil()
        } else {
            0.0
        };
        self.writes + digest_units / MESSAGES_PER_INVOCATION
    }
}

/// One device's messages, `interval_seconds` apart, through the ingest function's registry
/// cache with `LastSeenIntervalSeconds` at `seen_interval`: the registry writes and heard-log
/// entries it makes per message, counted by the memory registry.
pub async fn registry_writes_per_message(
    load: &Load,
    seen_interval: std::time::Duration,
) -> Result<RegistryCost, MeasureError> {
    use iotdp::devices::cache::{CachedRegistry, RegistryCacheSettings};
    use iotdp::devices::ports::DeviceLookup;
    use std::sync::atomic::Ordering::Relaxed;
    let start = 1_764_000_000_000;
    // Named as the fleet's devices are, so a logged deadline has its real size.
    let id = "device-000001";
    let mut record = iotdp::devices::record::DeviceRecord::new(id, "sensor", start);
    record.heartbeat_seconds = load.heartbeat_seconds;
    let registry = std::sync::Arc::new(iotdp_memory::MemoryRegistry::with([record]));
    let cache = CachedRegistry::new(
        registry.clone(),
        RegistryCacheSettings {
            ttl: std::time::Duration::from_secs(3_600),
            seen_interval,
        },
    );
    cache.lookup(&[id]).await?;
    let (writes, logged) = (
        registry.seen_writes.load(Relaxed),
        registry.heard_entries.load(Relaxed),
    );
    for n in 1..=SEEN_SAMPLE {
        let at = start + (n as f64 * load.interval_seconds * 1_000.0) as i64;
        cache
            .record_seen(&[iotdp::devices::ports::Seen::heard(id, at)])
            .await;
    }
    let heard = registry.heard_entries.load(Relaxed) - logged;
    Ok(RegistryCost {
        writes: (registry.seen_writes.load(Relaxed) - writes) as f64 / SEEN_SAMPLE as f64,
        heard: heard as f64 / SEEN_SAMPLE as f64,
        heard_entry_bytes: digest_entry_bytes(load),
    })
}

/// A logged deadline's bytes in an invocation's digest, as the adapter encodes it: the
/// fleet's device ids, heard over a minute (a batch's receive times, with some backlog).
fn digest_entry_bytes(load: &Load) -> f64 {
    use iotdp::devices::heard::{HeardEntry, encode};
    let heartbeat = load.heartbeat_seconds.unwrap_or(900);
    let entries: Vec<HeardEntry> = (0..MESSAGES_PER_INVOCATION as i64)
        .map(|n| HeardEntry::new(&format!("device-{n:06}"), n * 60, heartbeat))
        .collect();
    let body: usize = encode(&entries).iter().map(|d| d.body.len()).sum();
    body as f64 / entries.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Places;

    /// The registry cache writes a device's `last_seen` when it moved by more than the
    /// interval (an hour), and logs a watched device's deadline in between whenever it moved by
    /// more than a tenth of the heartbeat: what the count must show.
    #[tokio::test]
    async fn registry_writes_are_the_ones_the_cache_makes() {
        let load = |interval_seconds: f64, heartbeat_seconds: Option<u32>| Load {
            name: "x".into(),
            devices: 1,
            interval_seconds,
            metrics: 1,
            readings_per_message: 1,
            heartbeat_seconds,
            rules: 0,
            places: Places::OwnSite,
        };
        let minute = std::time::Duration::from_secs(60);
        let cost =
            |l, interval| async move { registry_writes_per_message(&l, interval).await.unwrap() };
        // Every 10 s, no heartbeat: moved by more than an hour at the 361st message (it was
        // the 7th at the former one minute). Nothing is logged for an unwatched device.
        let unwatched = cost(load(10.0, None), DEFAULT_SEEN_INTERVAL).await;
        assert!(
            (unwatched.writes - 1.0 / 361.0).abs() < 0.001,
            "{unwatched:?}"
        );
        assert_eq!(unwatched.heard, 0.0);
        let former = cost(load(10.0, None), minute).await;
        assert!((former.writes - 1.0 / 7.0).abs() < 0.01, "{former:?}");
        // A device reporting every minute, the "$100 a day at 100,000 devices": from
        // every second message to one in 61.
        let per_minute = cost(load(60.0, None), DEFAULT_SEEN_INTERVAL).await;
        assert!(
            (per_minute.writes - 1.0 / 61.0).abs() < 0.002,
            "{per_minute:?}"
        );
        // The battery boxes: every 5 minutes with a 15-minute heartbeat. A registry write every
        // 13th message; the other 12 go to the heard log (a tenth of the heartbeat is 90 s).
        // At the former one minute with no log, every message was a registry write.
        let battery = cost(load(300.0, Some(900)), DEFAULT_SEEN_INTERVAL).await;
        assert!((battery.writes - 1.0 / 13.0).abs() < 0.002, "{battery:?}");
        assert!((battery.heard - 12.0 / 13.0).abs() < 0.002, "{battery:?}");
        // "device-000123 42" and a line break, mostly.
        assert!(
            (16.0..=17.0).contains(&battery.heard_entry_bytes),
            "{battery:?}"
        );
        assert_eq!(cost(load(300.0, Some(900)), minute).await.writes, 1.0);
        // Its write units: 1/13 + a 1,000-entry digest's ceil((80 + 923 × 16.9) / 1024) = 16
        // units shared by 1,000 messages; under a tenth of the former one a message.
        let units = battery.write_units();
        assert!((units - (1.0 / 13.0 + 0.016)).abs() < 0.002, "{units}");
        assert!(units <= 0.1, "{units}");
        // Every 10 s with a 1-hour heartbeat: logged when it moved by more than a tenth
        // (360 s: every 37th message, 9 times), written hourly (every 361st).
        let hourly = cost(load(10.0, Some(3_600)), DEFAULT_SEEN_INTERVAL).await;
        assert!((hourly.writes - 1.0 / 361.0).abs() < 0.001, "{hourly:?}");
        assert!((hourly.heard - 9.0 / 361.0).abs() < 0.001, "{hourly:?}");
    }

    #[tokio::test]
    async fn the_reference_loads_go_through_the_real_ingest_code() {
        for load in Load::references() {
            let per = measure(&load, 20).await.unwrap();
            assert_eq!(per.readings, load.readings_per_message, "{}", load.name);
            assert!(per.timestream_kb > 0.0, "{}", load.name);
            // A small message is one write unit for the rule's action, not one a measure.
            if load.readings_per_message == 1 {
                assert_eq!(per.baseline_timestream_kb, 1.0, "{}", load.name);
                assert!(per.timestream_action_unfit.is_none(), "{}", load.name);
            } else {
                assert!(per.timestream_action_unfit.is_some(), "{}", load.name);
            }
            // Storage holds tens of bytes a measure: the timestamp, the dimensions, the
            // measure's name and value.
            let values = (load.readings_per_message * load.metrics) as f64;
            assert!(
                (20.0..80.0).contains(&(per.baseline_stored_bytes / values)),
                "{}: {per:?}",
                load.name
            );
            assert!(
                (20.0..200.0).contains(&(per.stored_bytes / values)),
                "{}: {per:?}",
                load.name
            );
        }
    }
}
