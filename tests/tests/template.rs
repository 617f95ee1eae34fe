//! template.yaml keeps its promises: the rule SQL is the documented one, no IAM action is a
//! wildcard, storage is encrypted.

use std::path::PathBuf;

fn repo_file(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn the_topic_rule_sql_is_the_one_in_infra() {
    let template = repo_file("template.yaml");
    let sql_lines: Vec<_> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Sql: "))
        .map(|s| s.trim_matches('"'))
        .collect();
    assert_eq!(sql_lines, vec![repo_file("infra/ingest-rule.sql").trim()]);
}

#[test]
fn no_iam_action_is_a_wildcard() {
    let template = repo_file("template.yaml");
    let mut in_action_list = false;
    for line in template.lines() {
        let trimmed = line.trim();
        if let Some(value) = trimmed.strip_prefix("Action:") {
            in_action_list = value.trim().is_empty();
            assert!(!value.contains('*'), "wildcard action: {trimmed}");
        } else if in_action_list && trimmed.starts_with("- ") {
            assert!(!trimmed.contains('*'), "wildcard action: {trimmed}");
        } else {
            in_action_list = false;
        }
    }
}

#[test]
fn queues_and_the_quarantine_bucket_are_encrypted() {
    let template = repo_file("template.yaml");
    let queues = template.matches("Type: AWS::SQS::Queue").count();
    assert_eq!(queues, 3);
    assert_eq!(
        template.matches("SqsManagedSseEnabled: true").count(),
        queues
    );
    assert!(template.contains("SSEAlgorithm: AES256"));
    assert!(template.contains("RestrictPublicBuckets: true"));
    let tables = template.matches("Type: AWS::DynamoDB::Table").count();
    assert_eq!(template.matches("SSEEnabled: true").count(), tables);
    assert!(template.contains("KmsMasterKeyId: alias/aws/sns"));
}
