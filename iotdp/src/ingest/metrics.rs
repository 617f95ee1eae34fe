//! Per-invocation figures, printed as CloudWatch Embedded Metric Format lines: CloudWatch
//! turns them into metrics with no PutMetricData calls (no extra latency, no extra IAM).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::alerting::ports::AlertStats;
use crate::domain::reason::ReasonCode;

pub const METRICS_NAMESPACE: &str = "iotdp";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestMetrics {
    pub messages: u64,
    pub failed_messages: u64,
    pub readings_accepted: u64,
    pub rejected_by_reason: BTreeMap<ReasonCode, u64>,
    pub records_written: u64,
    pub write_calls: u64,
    pub write_retries: u64,
    pub write_latencies_ms: Vec<f64>,
    pub quarantine_lines: u64,
    pub alerts: AlertStats,
    /// Device-registry read calls (BatchGetItem of up to 100 devices; cache misses only).
    pub registry_reads: u64,
    /// `last_seen` writes (at most one per device per interval).
    pub registry_writes: u64,
    /// Silence deadlines appended to the heard log (one digest write per batch).
    pub heard_log_entries: u64,
    pub registry_write_failures: u64,
    /// Derived metric values added to readings (their types' definitions).
    pub derived_values: u64,
    /// Derived values left out: an input missing or not a number, or no finite value.
    pub derived_skipped: u64,
}

impl IngestMetrics {
    /// Add another invocation's figures to these (running totals).
    pub fn add(&mut self, other: &IngestMetrics) {
        self.messages += other.messages;
        self.failed_messages += other.failed_messages;
        self.readings_accepted += other.readings_accepted;
        self.records_written += other.records_written;
        self.write_calls += other.write_calls;
        self.write_retries += other.write_retries;
        self.quarantine_lines += other.quarantine_lines;
        self.registry_reads += other.registry_reads;
        self.registry_writes += other.registry_writes;
        self.heard_log_entries += other.heard_log_entries;
        self.registry_write_failures += other.registry_write_failures;
        self.derived_values += other.derived_values;
        self.derived_skipped += other.derived_skipped;
        self.write_latencies_ms.clear(); // per-invocation samples; totals do not keep them
        for (reason, count) in &other.rejected_by_reason {
            *self.rejected_by_reason.entry(*reason).or_default() += count;
        }
        self.alerts.merge(&other.alerts);
    }

    pub fn readings_rejected(&self) -> u64 {
        self.rejected_by_reason.values().sum()
    }

    /// EMF documents: one with the totals, one per rejection reason (dimension `Reason`).
    pub fn to_emf(&self, function: &str, timestamp_ms: i64) -> Vec<String> {
        let counts = [
            ("Messages", self.messages),
            ("FailedMessages", self.failed_messages),
            ("ReadingsAccepted", self.readings_accepted),
            ("ReadingsRejected", self.readings_rejected()),
            ("RecordsWritten", self.records_written),
            ("WriteCalls", self.write_calls),
            ("WriteRetries", self.write_retries),
            ("QuarantineLines", self.quarantine_lines),
            ("RegistryReads", self.registry_reads),
            ("RegistryWrites", self.registry_writes),
            ("HeardLogEntries", self.heard_log_entries),
            ("RegistryWriteFailures", self.registry_write_failures),
            ("DerivedValues", self.derived_values),
            ("DerivedSkipped", self.derived_skipped),
            ("AlertStateWrites", self.alerts.state_writes),
            ("AlertStateConflicts", self.alerts.conflicts),
            (
                "NotificationsPublished",
                self.alerts.notifications_published,
            ),
            ("NotificationFailures", self.alerts.notification_failures),
            ("CommandsSent", self.alerts.commands_sent),
            ("CommandFailures", self.alerts.command_failures),
        ];
        let mut fields = Map::new();
        let mut definitions = Vec::new();
        for (name, value) in counts {
            fields.insert(name.into(), json!(value));
            definitions.push(json!({"Name": name, "Unit": "Count"}));
        }
        if !self.write_latencies_ms.is_empty() {
            // EMF takes up to 100 values per metric in one document.
            let sample: Vec<f64> = self.write_latencies_ms.iter().take(100).copied().collect();
            fields.insert("WriteLatency".into(), json!(sample));
            definitions.push(json!({"Name": "WriteLatency", "Unit": "Milliseconds"}));
        }
        let mut documents = vec![emf_document(
            function,
            timestamp_ms,
            &[],
            definitions,
            fields,
        )];
        for (reason, count) in &self.rejected_by_reason {
            let mut fields = Map::new();
            fields.insert("Reason".into(), json!(reason.as_str()));
            fields.insert("ReadingsRejected".into(), json!(count));
            documents.push(emf_document(
                function,
                timestamp_ms,
                &["Reason"],
                vec![json!({"Name": "ReadingsRejected", "Unit": "Count"})],
                fields,
            ));
        }
        documents
    }
}

fn emf_document(
    function: &str,
    timestamp_ms: i64,
    extra_dimensions: &[&str],
    definitions: Vec<Value>,
    mut fields: Map<String, Value>,
) -> String {
    let mut dimensions = vec!["Function"];
    dimensions.extend_from_slice(extra_dimensions);
    fields.insert("Function".into(), json!(function));
    fields.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(fields).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_lines_declare_every_metric_they_carry() {
        let mut metrics = IngestMetrics {
            messages: 3,
            readings_accepted: 5,
            records_written: 5,
            write_calls: 1,
            write_latencies_ms: vec![12.5],
            ..Default::default()
        };
        metrics
            .rejected_by_reason
            .insert(ReasonCode::InvalidValue, 2);
        let docs = metrics.to_emf("ingest", 1_764_000_000_000);
        assert_eq!(docs.len(), 2);
        let totals: Value = serde_json::from_str(&docs[0]).unwrap();
        assert_eq!(totals["ReadingsAccepted"], 5);
        assert_eq!(totals["ReadingsRejected"], 2);
        assert_eq!(totals["WriteLatency"][0], 12.5);
        let declared = totals["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        for definition in declared {
            let name = definition["Name"].as_str().unwrap();
            assert!(totals.get(name).is_some(), "{name} declared but missing");
        }
        let by_reason: Value = serde_json::from_str(&docs[1]).unwrap();
        assert_eq!(by_reason["Reason"], "invalid_value");
        assert_eq!(by_reason["ReadingsRejected"], 2);
        assert_eq!(
            by_reason["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            json!(["Function", "Reason"])
        );
    }
}
