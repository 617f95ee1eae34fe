//! The rollup job's state in DynamoDB (moto's server, the table as template.yaml creates it):
//! the watermark moves only from the value read, a window marked again while a run works keeps
//! its mark, and a job over that state recomputes exactly the windows late readings marked.

use std::sync::Arc;

use iotdp::config::{ApiConfig, FromEnvironment, IngestConfig, RollupJobConfig};
use iotdp::domain::{LocationPath, MetricValue, Reading};
use iotdp::ingest::ports::TimeSeriesStore;
use iotdp::rollup::job::RollupSettings;
use iotdp::rollup::model::JobState;
use iotdp::rollup::ports::{LateWindowMarker, RollupError, RollupStateStore};
use iotdp::rollup::tier::Tier;
use iotdp_integration_tests::{MotoServer, function_environment, provision_template};
use iotdp_memory::MemoryStore;
use iotdp_memory::rollup_check::{Simulated, differences, expected_rows, simulated};

const DAY: i64 = 86_400_000;
const T0: i64 = 20_400 * DAY;

#[tokio::test]
async fn the_state_table_keeps_coverage_conditional_and_marks_by_token() {
    let moto = MotoServer::start();
    let (sdk, stack) = provision_template(&moto.endpoint).await;
    let config = RollupJobConfig::from_lookup(function_environment(&stack, "rollup")).unwrap();
    let ingest = IngestConfig::from_lookup(function_environment(&stack, "ingest")).unwrap();
    let api = ApiConfig::from_lookup(function_environment(&stack, "api")).unwrap();
    // The three functions share one table.
    assert_eq!(ingest.rollup.as_ref(), Some(&config.rollup));
    assert_eq!(
        api.rollup.as_ref().unwrap().state_table,
        config.rollup.state_table
    );
    let state = iotdp::wiring::rollup_state(&sdk, &config.rollup);

    assert_eq!(state.coverage().await.unwrap(), None);
    let first = JobState {
        since_ms: T0,
        watermark_ms: T0 + 60_000,
        finest: None,
    };
    let second = JobState {
        since_ms: T0,
        watermark_ms: T0 + 120_000,
        finest: None,
    };
    state.save_coverage(None, first).await.unwrap();
    assert!(matches!(
        state.save_coverage(None, second).await,
        Err(RollupError::Conflict(_))
    ));
    assert!(matches!(
        state.save_coverage(Some(second), first).await,
        Err(RollupError::Conflict(_))
    ));
    state.save_coverage(Some(first), second).await.unwrap();
    assert_eq!(state.coverage().await.unwrap(), Some(second));
    // The finest tier is part of what a save is conditional on: a run that read `undecided`
    // does not overwrite a rebuild's decision.
    let hours = JobState {
        finest: Some(Tier::Hour),
        ..second
    };
    state.save_coverage(Some(second), hours).await.unwrap();
    assert!(matches!(
        state.save_coverage(Some(second), second).await,
        Err(RollupError::Conflict(_))
    ));
    assert_eq!(state.coverage().await.unwrap(), Some(hours));

    let windows: Vec<i64> = (0..30).map(|i| T0 + i * 60_000).collect();
    state.mark(&windows).await.unwrap();
    let read = state.late_marks().await.unwrap();
    assert_eq!(
        read.iter().map(|m| m.window_start_ms).collect::<Vec<_>>(),
        windows
    );
    // Marked again while a run works on it: that mark survives the run's clear.
    state.mark(&[T0]).await.unwrap();
    state.clear_marks(&read).await.unwrap();
    let left = state.late_marks().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].window_start_ms, T0);
    state.clear_marks(&left).await.unwrap();
    assert!(state.late_marks().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_job_over_the_dynamodb_state_recomputes_what_late_readings_marked() {
    let moto = MotoServer::start();
    let (sdk, stack) = provision_template(&moto.endpoint).await;
    let config = RollupJobConfig::from_lookup(function_environment(&stack, "rollup")).unwrap();
    let state = Arc::new(iotdp::wiring::rollup_state(&sdk, &config.rollup));
    let store = Arc::new(MemoryStore::new(100));
    let settings = RollupSettings {
        grace: config.rollup.grace,
        ..RollupSettings::default()
    };
    let Simulated { clock, ingest, job } = simulated(store.clone(), state.clone(), settings);
    let reading = |t: i64, v: f64| {
        Reading::new("gw-1", t, [("moisture", MetricValue::Number(v))])
            .with_place("gateway", LocationPath::parse("wall-1/zone-a").unwrap())
    };
    clock.set(T0 + 6 * 3_600_000);
    ingest
        .write(&[reading(T0 + 3_600_000, 10.0)])
        .await
        .unwrap();
    job.run(clock.now()).await.unwrap();
    // A gateway batch 5 hours late, into windows the job has computed.
    clock.set(T0 + 6 * 3_600_000 + 30_000);
    let late: Vec<Reading> = (0..5)
        .map(|h| reading(T0 + h * 3_600_000 + 1_000, 20.0 + h as f64))
        .collect();
    ingest.write(&late).await.unwrap();
    assert_eq!(state.late_marks().await.unwrap().len(), 5);
    let report = job.run(clock.now()).await.unwrap();
    assert_eq!(report.late_windows, 5);
    assert!(state.late_marks().await.unwrap().is_empty());
    let coverage = state.coverage().await.unwrap().unwrap().coverage();
    for tier in Tier::ALL {
        let problems = differences(
            &store.rollup_rows(tier),
            &expected_rows(&store.written(), tier, coverage),
        );
        assert!(problems.is_empty(), "{}: {problems:#?}", tier.name());
    }
}
