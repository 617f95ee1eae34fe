//! The `ingest` binary as Lambda runs it: the Lambda Runtime API, SQS events of the simulated
//! fleet, every AWS call answered by the benchmark's fake endpoint. What it writes must be what
//! the in-memory reference writes, once per delivery, with every rejection quarantined with
//! its reason (the harness fails otherwise). The same harness is `make bench`'s end-to-end
//! benchmark on the release build.

use std::path::PathBuf;

use iotdp_integration_tests::ingest_bench::{Options, Scenario, Store, run};

fn options() -> Options {
    Options {
        bootstrap: PathBuf::from(env!("CARGO_BIN_EXE_ingest")),
        warm_invocations: 2,
        messages_per_event: 200,
        devices: 60,
        rules_dir: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infra/local/rules"
        )),
    }
}

#[tokio::test]
async fn every_store_writes_each_reading_once_and_quarantines_the_rest() {
    for store in [Store::Timestream, Store::InfluxDb] {
        for registry_and_alerting in [true, false] {
            let scenario = Scenario {
                store,
                registry_and_alerting,
                // With the registry on, each type also derives 5 metrics: still each reading
                // written once.
                derived: registry_and_alerting,
            };
            let measured = run(&options(), scenario)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", scenario.label()));
            assert!(measured.readings_per_invocation > 0.0, "{measured:?}");
            let store_calls = measured
                .calls_per_invocation
                .keys()
                .filter(|k| k.starts_with("Timestream.") || k.starts_with("InfluxDB."))
                .count();
            assert_eq!(store_calls, 1, "{measured:?}");
            if registry_and_alerting {
                assert!(
                    measured.first_calls.contains_key("DynamoDB.BatchGetItem"),
                    "the registry was read: {measured:?}"
                );
            } else {
                assert!(
                    !measured
                        .first_calls
                        .keys()
                        .any(|k| k.starts_with("DynamoDB.")),
                    "no registry, no DynamoDB: {measured:?}"
                );
            }
        }
    }
}
