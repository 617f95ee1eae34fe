//! A 10,000-message batch must fit a 128 MB Lambda: peak heap ≤ 64 MiB through the whole
//! use case (decode, validate, sort, build every Timestream request, quarantine).

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use iotdp::adapters::timestream::{MAX_RECORDS_PER_WRITE, build_write_request};
use iotdp::alerting::ports::NoAlerts;
use iotdp::devices::admission::UnknownDevicePolicy;
use iotdp::devices::ports::NoRegistry;
use iotdp::domain::Reading;
use iotdp::ingest::envelope::encode_envelope;
use iotdp::ingest::ports::{StoreError, TimeSeriesStore, WriteReport};
use iotdp::ingest::service::{IngestService, IngestSettings, Invocation};
use iotdp::ingest::store_writer::WritePolicy;
use iotdp::ingest::validation::TimeWindow;
use iotdp_memory::MemoryQuarantine;

// DHAT's allocator counts every byte (the same heap figure a 128 MB Lambda lives within).
#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

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
    let _profiler = dhat::Profiler::builder().testing().build();
    let baseline = dhat::HeapStats::get().curr_bytes;

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
    let report = runtime.block_on(iotdp::lambda::ingest::handle_sqs_event(
        &service,
        &event,
        &invocation,
    ));
    assert_eq!(report.metrics.records_written, 9_000);
    assert_eq!(report.metrics.quarantine_lines, 1_000);

    let peak_mib = (dhat::HeapStats::get().max_bytes - baseline) as f64 / (1024.0 * 1024.0);
    println!("peak heap for a 10,000-message batch: {peak_mib:.1} MiB");
    assert!(
        peak_mib <= 64.0,
        "peak heap {peak_mib:.1} MiB exceeds 64 MiB"
    );
}
