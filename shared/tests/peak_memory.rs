//! A 10,000-message batch must fit a 128 MB Lambda: peak heap ≤ 64 MiB through the whole
//! use case (decode, validate, sort, build every Timestream request, quarantine).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use iotdp::adapters::memory::MemoryQuarantine;
use iotdp::adapters::timestream::{MAX_RECORDS_PER_WRITE, build_write_request};
use iotdp::devices::admission::UnknownDevicePolicy;
use iotdp::domain::Reading;
use iotdp::envelope::encode_envelope;
use iotdp::ingest::{IngestService, IngestSettings, Invocation};
use iotdp::ports::{NoAlerts, NoRegistry, StoreError, TimeSeriesStore, WriteReport};
use iotdp::store_writer::WritePolicy;
use iotdp::validation::TimeWindow;

struct PeakTracking;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates to the system allocator; only counts bytes.
unsafe impl GlobalAlloc for PeakTracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakTracking = PeakTracking;

/// Builds the real Timestream requests, then drops them instead of sending.
struct BuildOnlyStore;

impl TimeSeriesStore for BuildOnlyStore {
    fn max_batch_len(&self) -> usize {
        MAX_RECORDS_PER_WRITE
    }
    async fn write(&self, readings: &[Reading]) -> Result<WriteReport, StoreError> {
        let request =
            build_write_request(readings).map_err(|e| StoreError::Failed(e.to_string()))?;
        std::hint::black_box(request);
        Ok(WriteReport::default())
    }
}

#[test]
fn a_10000_message_batch_peaks_under_64_mib() {
    const RECEIVED: i64 = 1_764_000_000_000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let baseline = CURRENT.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);

    let mut event = SqsEvent::default();
    for i in 0..10_000 {
        let payload = if i % 10 == 9 {
            r#"{"metrics":{"temperature":"#.to_owned() // broken: quarantined
        } else {
            format!(
                r#"{{"seq":{i},"metrics":{{"temperature":21.5,"humidity":0.41,"mode":"eco","on":true}}}}"#
            )
        };
        let mut message = SqsMessage::default();
        message.message_id = Some(format!("{i:08}-0000-4000-8000-000000000000"));
        message.body = Some(encode_envelope(
            payload.as_bytes(),
            &format!("dt/device-{}/telemetry", i % 500),
            RECEIVED,
            Some("client"),
        ));
        event.records.push(message);
    }
    let service = IngestService::new(
        BuildOnlyStore,
        MemoryQuarantine::default(),
        NoRegistry,
        NoAlerts,
        IngestSettings {
            window: TimeWindow::with_retention_days(73_000),
            write: WritePolicy::default(),
            unknown_devices: UnknownDevicePolicy::Accept,
        },
    );
    let invocation = Invocation {
        request_id: "peak".into(),
        deadline: tokio::time::Instant::now() + Duration::from_secs(60),
        started_at: chrono::Utc::now(),
    };
    let report = runtime.block_on(service.handle(&event, &invocation));
    assert_eq!(report.metrics.records_written, 9_000);
    assert_eq!(report.metrics.quarantine_lines, 1_000);

    let peak_mib = (PEAK.load(Ordering::Relaxed) - baseline) as f64 / (1024.0 * 1024.0);
    println!("peak heap for a 10,000-message batch: {peak_mib:.1} MiB");
    assert!(
        peak_mib <= 64.0,
        "peak heap {peak_mib:.1} MiB exceeds 64 MiB"
    );
}
