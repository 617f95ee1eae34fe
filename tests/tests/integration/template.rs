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
fn the_topic_rules_sql_is_the_one_in_infra() {
    let template = repo_file("template.yaml");
    let sql_lines: Vec<_> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Sql: "))
        .map(|s| s.trim_matches('"'))
        .collect();
    assert_eq!(
        sql_lines,
        vec![
            repo_file("infra/ingest-rule.sql").trim(),
            repo_file("infra/presence-rule.sql").trim(),
            repo_file("infra/shadow-reports-rule.sql").trim()
        ]
    );
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
    assert_eq!(queues, 9);
    assert_eq!(
        template.matches("SqsManagedSseEnabled: true").count(),
        queues
    );
    assert!(template.contains("SSEAlgorithm: AES256"));
    assert!(template.contains("RestrictPublicBuckets: true"));
    let tables = template.matches("Type: AWS::DynamoDB::Table").count();
    assert_eq!(template.matches("SSEEnabled: true").count(), tables);
    assert!(template.contains("KmsMasterKeyId: alias/aws/sns"));
    assert_eq!(template.matches("Type: AWS::Kinesis::Stream").count(), 1);
    let (_, stream) = stack_with_parameters(&[("Transport", "kinesis")], "IngestStream");
    assert_eq!(
        stream["StreamEncryption"],
        serde_json::json!({"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"})
    );
}

/// `Transport=kinesis`: the stream and its failure queue exist only then; the telemetry rule
/// puts each publish on the stream keyed by the device id from the topic; Lambda reads it with
/// partial batch failures, bisection, bounded retries and an on-failure queue; the SQS path's
/// mapping stops polling; and each role gets exactly the stream actions it needs, on the stream.
#[test]
fn the_kinesis_transport_keys_by_device_loses_nothing_and_grants_only_what_it_needs() {
    let (created, rule) = stack_with_parameters(&[], "TelemetryRule");
    assert!(
        !created.iter().any(|k| k == "AWS::Kinesis::Stream"),
        "{created:?}"
    );
    assert_eq!(
        rule["TopicRulePayload"]["Actions"][0]["Sqs"]["QueueUrl"],
        "IngestQueue"
    );
    let (_, sqs_ingest) = stack_with_parameters(&[], "IngestFunction");
    assert_eq!(
        sqs_ingest["Events"]["Telemetry"]["Properties"]["Enabled"],
        true
    );
    assert!(
        !sqs_ingest["Policies"][0].to_string().contains("kinesis:"),
        "no stream permissions without a stream"
    );

    let kinesis = [("Transport", "kinesis")];
    let (created, rule) = stack_with_parameters(&kinesis, "TelemetryRule");
    for kind in ["AWS::Kinesis::Stream", "AWS::Lambda::EventSourceMapping"] {
        assert_eq!(
            created.iter().filter(|k| *k == kind).count(),
            1,
            "{kind}: {created:?}"
        );
    }
    let action = &rule["TopicRulePayload"]["Actions"];
    assert_eq!(action.as_array().unwrap().len(), 1, "{action}");
    assert_eq!(
        action[0]["Kinesis"],
        serde_json::json!({
            "StreamName": "IngestStream",
            "PartitionKey": "${topic(2)}",
            "RoleArn": "TelemetryRuleRole.Arn"
        })
    );
    // The key is the device id under both topic forms: topic() leaves Basic Ingest's prefix out.
    let key = iotdp_local::rule_sql::Substitution::parse("${topic(2)}").unwrap();
    let message = iotdp_local::rule_sql::Message {
        topic: "dt/battery-0042/telemetry",
        payload: b"{}",
        client_id: "battery-0042",
        received_at_ms: 0,
    };
    assert_eq!(key.apply(&message), "battery-0042");

    let (_, mapping) = stack_with_parameters(&kinesis, "IngestStreamEventSource");
    assert_eq!(mapping["FunctionName"], "IngestFunction");
    assert_eq!(mapping["EventSourceArn"], "IngestStream.Arn");
    assert_eq!(
        mapping["FunctionResponseTypes"],
        serde_json::json!(["ReportBatchItemFailures"])
    );
    assert_eq!(mapping["BisectBatchOnFunctionError"], true);
    assert_eq!(mapping["StartingPosition"], "TRIM_HORIZON");
    assert_eq!(
        mapping["DestinationConfig"]["OnFailure"]["Destination"],
        "IngestStreamFailureQueue.Arn"
    );
    // A failing batch is given up only after a day, while the stream keeps it for a week.
    let number = |v: &serde_json::Value| v.to_string().trim_matches('"').parse::<i64>().unwrap();
    let (_, stream) = stack_with_parameters(&kinesis, "IngestStream");
    assert!(
        number(&mapping["MaximumRecordAgeInSeconds"]) * 2
            <= number(&stream["RetentionPeriodHours"]) * 3600,
        "{mapping} {stream}"
    );
    assert_eq!(stream["StreamModeDetails"]["StreamMode"], "ON_DEMAND");
    assert!(stream.get("ShardCount").is_none());
    let (_, provisioned) = stack_with_parameters(
        &[
            ("Transport", "kinesis"),
            ("KinesisStreamMode", "PROVISIONED"),
        ],
        "IngestStream",
    );
    assert_eq!(number(&provisioned["ShardCount"]), 4);

    let (_, ingest) = stack_with_parameters(&kinesis, "IngestFunction");
    assert_eq!(
        ingest["Events"]["Telemetry"]["Properties"]["Enabled"],
        false
    );
    let on_stream: Vec<_> = statements(&ingest)
        .into_iter()
        .filter(|(_, actions, _)| actions.iter().any(|a| a.starts_with("kinesis:")))
        .collect();
    assert_eq!(
        on_stream,
        [(
            "ReadTheIngestStream".to_owned(),
            [
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
                "kinesis:GetRecords",
                "kinesis:GetShardIterator",
                "kinesis:ListShards"
            ]
            .map(str::to_owned)
            .to_vec(),
            vec!["IngestStream.Arn".to_owned()]
        )]
    );
    assert!(statements(&ingest).contains(&(
        "NameFailedBatchesInTheFailureQueue".to_owned(),
        vec!["sqs:SendMessage".to_owned()],
        vec!["IngestStreamFailureQueue.Arn".to_owned()]
    )));
    let (_, role) = stack_with_parameters(&kinesis, "TelemetryRuleRole");
    let role_statements = &role["Policies"][0]["PolicyDocument"]["Statement"];
    assert!(
        role_statements
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({
                "Effect": "Allow",
                "Action": "kinesis:PutRecord",
                "Resource": "IngestStream.Arn"
            })),
        "{role_statements}"
    );
    assert_eq!(
        role_statements.to_string().matches("kinesis:").count(),
        1,
        "{role_statements}"
    );
}

/// The device policy, as `sam deploy` would create it for a stack in us-east-1.
fn device_policy() -> serde_json::Value {
    use iotdp_local::template::{Stack, Template};
    let template = Template::parse(&repo_file("template.yaml")).unwrap();
    let stack = Stack {
        name: "iotdp".into(),
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        parameters: template.parameter_values(&Default::default()).unwrap(),
        physical: [(
            "TelemetryRule".to_owned(),
            iotdp_local::template::Physical {
                reference: "TelemetryRule_x1".into(),
                attributes: Default::default(),
            },
        )]
        .into(),
    };
    let resource = template.resource("DevicePolicy").expect("DevicePolicy");
    template.properties(resource, &stack).unwrap()["PolicyDocument"].clone()
}

#[test]
fn a_device_policy_reaches_only_its_own_client_id_and_topics() {
    use iotdp_local::iot_policy::{Connection, is_allowed};
    let policy = device_policy();
    let arn = |kind: &str, name: &str| format!("arn:aws:iot:us-east-1:123456789012:{kind}/{name}");
    let ac7 = Connection {
        thing_name: Some("ac-7"),
    };
    let allowed = [
        ("iot:Connect", arn("client", "ac-7")),
        ("iot:Publish", arn("topic", "dt/ac-7/telemetry")),
        (
            "iot:Publish",
            arn("topic", "$aws/rules/TelemetryRule_x1/dt/ac-7/telemetry"),
        ),
        (
            "iot:Publish",
            arn("topic", "$aws/things/ac-7/shadow/update"),
        ),
        (
            "iot:Subscribe",
            arn("topicfilter", "$aws/things/ac-7/shadow/update/delta"),
        ),
        ("iot:Subscribe", arn("topicfilter", "cmd/ac-7/reboot")),
        (
            "iot:Receive",
            arn("topic", "$aws/things/ac-7/shadow/update/delta"),
        ),
    ];
    for (action, resource) in &allowed {
        assert!(
            is_allowed(&policy, ac7, action, resource),
            "{action} {resource}"
        );
    }
    // Everything of another device, and anything outside its own topics, is refused.
    let refused = [
        ("iot:Connect", arn("client", "ac-8")),
        ("iot:Publish", arn("topic", "dt/ac-8/telemetry")),
        ("iot:Publish", arn("topic", "dt/ac-77/telemetry")),
        // Basic Ingest: only its own telemetry, only through the telemetry rule.
        (
            "iot:Publish",
            arn("topic", "$aws/rules/TelemetryRule_x1/dt/ac-8/telemetry"),
        ),
        (
            "iot:Publish",
            arn("topic", "$aws/rules/TelemetryRule_x1/dt/ac-7/other"),
        ),
        (
            "iot:Publish",
            arn("topic", "$aws/rules/ShadowReportsRule_x2/dt/ac-7/telemetry"),
        ),
        (
            "iot:Publish",
            arn("topic", "$aws/things/ac-8/shadow/update"),
        ),
        (
            "iot:Publish",
            arn("topic", "$aws/events/presence/connected/ac-7"),
        ),
        ("iot:Subscribe", arn("topicfilter", "dt/+/telemetry")),
        (
            "iot:Subscribe",
            arn("topicfilter", "$aws/things/ac-8/shadow/update/delta"),
        ),
        ("iot:Subscribe", arn("topicfilter", "#")),
        (
            "iot:Receive",
            arn("topic", "$aws/things/ac-8/shadow/update/delta"),
        ),
        ("iot:Receive", arn("topic", "cmd/ac-8/reboot")),
        ("iot:UpdateThingShadow", arn("thing", "ac-7")),
    ];
    for (action, resource) in &refused {
        assert!(
            !is_allowed(&policy, ac7, action, resource),
            "{action} {resource}"
        );
    }
    // A certificate not attached to a thing resolves no thing name: it may not even connect.
    let unattached = Connection { thing_name: None };
    assert!(!is_allowed(
        &policy,
        unattached,
        "iot:Connect",
        &arn("client", "ac-7")
    ));
}

/// Which resources a stack creates, and the ingest function's properties, for a store choice.
fn stack_for(store: &str) -> (Vec<String>, serde_json::Value) {
    stack_with(store, "IngestFunction")
}

/// Which resources a stack creates, and one resource's resolved properties.
fn stack_with(store: &str, logical_id: &str) -> (Vec<String>, serde_json::Value) {
    stack_with_parameters(&[("TimeSeriesStore", store)], logical_id)
}

/// [`stack_with`], the stack given `overrides` of its parameters.
fn stack_with_parameters(
    overrides: &[(&str, &str)],
    logical_id: &str,
) -> (Vec<String>, serde_json::Value) {
    use iotdp_local::template::{Stack, Template};
    let template = Template::parse(&repo_file("template.yaml")).unwrap();
    let mut parameters = std::collections::HashMap::from([
        ("TimeSeriesStore".to_owned(), "timestream".to_owned()),
        (
            "InfluxDbUrl".to_owned(),
            "https://influx.example:8086".to_owned(),
        ),
        (
            "InfluxDbTokenSecretArn".to_owned(),
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:influx".to_owned(),
        ),
    ]);
    for (name, value) in overrides {
        parameters.insert((*name).to_owned(), (*value).to_owned());
    }
    let stack = Stack {
        name: "iotdp".into(),
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        parameters: template.parameter_values(&parameters).unwrap(),
        physical: template
            .resources
            .iter()
            .map(|r| {
                (
                    r.logical_id.clone(),
                    iotdp_local::template::Physical {
                        reference: r.logical_id.clone(),
                        attributes: ["Arn", "Name"]
                            .iter()
                            .map(|a| (a.to_string(), format!("{}.{a}", r.logical_id)))
                            .collect(),
                    },
                )
            })
            .collect(),
    };
    let created = template
        .resources
        .iter()
        .filter(|r| template.is_created(r, &stack).unwrap())
        .map(|r| r.kind.clone())
        .collect();
    let resource = template.resource(logical_id).unwrap();
    let props = template.properties(resource, &stack).unwrap();
    (created, props)
}

#[test]
fn a_stack_creates_only_the_store_it_uses() {
    let (created, props) = stack_for("timestream");
    assert!(created.iter().any(|k| k == "AWS::Timestream::Table"));
    let env = &props["Environment"]["Variables"];
    assert_eq!(env["TIME_SERIES_STORE"], "timestream");
    assert!(env.get("INFLUXDB_URL").is_none());
    assert!(props.get("VpcConfig").is_none());

    let (created, props) = stack_for("influxdb");
    assert!(
        !created.iter().any(|k| k.starts_with("AWS::Timestream::")),
        "{created:?}"
    );
    let env = &props["Environment"]["Variables"];
    assert_eq!(env["TIME_SERIES_STORE"], "influxdb");
    assert_eq!(env["INFLUXDB_URL"], "https://influx.example:8086");
    assert!(env.get("TIMESTREAM_DATABASE").is_none());
    let statements = props["Policies"][0]["Statement"].to_string();
    assert!(!statements.contains("timestream:"), "{statements}");
    assert!(statements.contains("secretsmanager:GetSecretValue"));
}

/// `(sid, actions, resources)` of a function's inline policy, conditions resolved.
fn statements(props: &serde_json::Value) -> Vec<(String, Vec<String>, Vec<String>)> {
    let list = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().unwrap_or_default().to_owned())
                .collect(),
            other => vec![other.as_str().unwrap_or_default().to_owned()],
        }
    };
    props["Policies"][0]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["Sid"].as_str().unwrap_or_default().to_owned(),
                list(&s["Action"]),
                list(&s["Resource"]),
            )
        })
        .collect()
}

#[test]
fn the_rollup_job_is_scheduled_alone_with_only_the_permissions_it_needs() {
    let (_, rollup) = stack_with("timestream", "RollupFunction");
    assert_eq!(
        rollup["ReservedConcurrentExecutions"]
            .to_string()
            .trim_matches('"'),
        "1"
    );
    assert_eq!(rollup["Events"]["OnSchedule"]["Type"], "Schedule");
    // Every five minutes, as the cost model prices it (`local/src/cost/reads.rs`).
    assert_eq!(
        rollup["Events"]["OnSchedule"]["Properties"]["Schedule"],
        "rate(5 minutes)"
    );
    let env = &rollup["Environment"]["Variables"];
    assert_eq!(env["ROLLUP_STATE_TABLE"], "RollupStateTable");
    assert_eq!(env["ROLLUP_TABLE_1D"], "Rollup1dTable.Name");
    assert_eq!(
        env["ROLLUP_GRACE_SECONDS"].to_string().trim_matches('"'),
        "120"
    );
    // The job and the API's reader agree on the finest tier kept: auto (the job's state
    // records it, the reader reads it there) unless set to 1m or 1h.
    assert_eq!(env["ROLLUP_FINEST_TIER"], "auto");
    let (_, api) = stack_with("timestream", "ApiFunction");
    assert_eq!(
        api["Environment"]["Variables"]["ROLLUP_FINEST_TIER"],
        "auto"
    );
    let (_, hourly) = stack_with_parameters(&[("RollupFinestTier", "1h")], "ApiFunction");
    assert_eq!(
        hourly["Environment"]["Variables"]["ROLLUP_FINEST_TIER"],
        "1h"
    );
    let rollup_tables = [
        "Rollup1mTable.Arn",
        "Rollup1hTable.Arn",
        "Rollup1dTable.Arn",
    ];
    for (sid, actions, resources) in statements(&rollup) {
        match sid.as_str() {
            "KeepTheWatermarkAndClearLateMarks" => {
                assert_eq!(
                    actions,
                    [
                        "dynamodb:GetItem",
                        "dynamodb:PutItem",
                        "dynamodb:Scan",
                        "dynamodb:DeleteItem"
                    ]
                );
                assert_eq!(resources, ["RollupStateTable.Arn"]);
            }
            "ReadRawReadingsAndRollups" => {
                assert_eq!(actions, ["timestream:Select"]);
                assert_eq!(resources[0], "TelemetryTable.Arn");
                assert_eq!(resources[1..], rollup_tables);
            }
            // Raw readings are never written by the job.
            "WriteRollups" => {
                assert_eq!(actions, ["timestream:WriteRecords"]);
                assert_eq!(resources, rollup_tables);
            }
            "DiscoverTimestreamEndpoints" => assert_eq!(actions, ["timestream:DescribeEndpoints"]),
            other => panic!("unexpected statement {other}"),
        }
    }
    // The ingest path may only add late marks; the API may only read the coverage.
    let (_, ingest) = stack_with("timestream", "IngestFunction");
    let marks: Vec<_> = statements(&ingest)
        .into_iter()
        .filter(|s| s.2.contains(&"RollupStateTable.Arn".to_owned()))
        .collect();
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0].1, ["dynamodb:BatchWriteItem"]);
    let (_, api) = stack_with("timestream", "ApiFunction");
    let coverage: Vec<_> = statements(&api)
        .into_iter()
        .filter(|s| s.2.contains(&"RollupStateTable.Arn".to_owned()))
        .collect();
    assert_eq!(coverage.len(), 1);
    assert_eq!(coverage[0].1, ["dynamodb:GetItem"]);

    // InfluxDB: measurements in the same database, no Timestream permission at all.
    let (_, rollup) = stack_with("influxdb", "RollupFunction");
    assert_eq!(
        rollup["Environment"]["Variables"]["ROLLUP_TABLE_1M"],
        "telemetry_1m"
    );
    assert!(!rollup["Policies"].to_string().contains("timestream:"));
}

#[test]
fn rollup_tables_are_kept_indefinitely_by_default_each_by_its_own_parameter() {
    let (created, _) = stack_with("timestream", "RollupFunction");
    assert_eq!(
        created
            .iter()
            .filter(|k| *k == "AWS::Timestream::Table")
            .count(),
        4
    );
    for tier in ["1m", "1h", "1d"] {
        let (_, table) = stack_with("timestream", &format!("Rollup{tier}Table"));
        assert_eq!(table["TableName"], format!("telemetry_{tier}"));
        let retention = &table["RetentionProperties"]["MagneticStoreRetentionPeriodInDays"];
        assert_eq!(retention.to_string().trim_matches('"'), "73000", "{tier}");
        assert_eq!(
            table["MagneticStoreWriteProperties"]["EnableMagneticStoreWrites"],
            true
        );
    }
    let template = repo_file("template.yaml");
    for parameter in [
        "Rollup1mRetentionDays:",
        "Rollup1hRetentionDays:",
        "Rollup1dRetentionDays:",
        "RollupGraceSeconds:",
        "RollupSchedule:",
    ] {
        assert!(template.contains(parameter), "{parameter}");
    }
}

#[test]
fn nothing_is_lost_to_an_overwrite_a_failed_schedule_or_an_unbounded_log() {
    let (_, bucket) = stack_with("timestream", "QuarantineBucket");
    assert_eq!(bucket["VersioningConfiguration"]["Status"], "Enabled");
    let rule = &bucket["LifecycleConfiguration"]["Rules"][0];
    assert_eq!(
        rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
            .to_string()
            .trim_matches('"'),
        "90"
    );
    // The scheduled (asynchronously invoked) functions dead-letter what fails.
    for function in ["SilenceWatchFunction", "RollupFunction", "CommandsFunction"] {
        let (_, props) = stack_with("timestream", function);
        assert_eq!(
            props["DeadLetterQueue"]["TargetArn"], "ScheduledFunctionsDeadLetterQueue.Arn",
            "{function}"
        );
        if function == "CommandsFunction" {
            // Its queue's consumers (2) and one sweep at a time.
            assert_eq!(
                props["ReservedConcurrentExecutions"]
                    .to_string()
                    .trim_matches('"'),
                "3"
            );
            continue;
        }
        assert_eq!(
            props["ReservedConcurrentExecutions"]
                .to_string()
                .trim_matches('"'),
            "1",
            "{function}"
        );
    }
    // Every function has a log group with a retention; the API has JSON access logs.
    let template = iotdp_local::template::Template::parse(&repo_file("template.yaml")).unwrap();
    let functions: Vec<&str> = template
        .resources
        .iter()
        .filter(|r| r.kind == "AWS::Serverless::Function")
        .map(|r| r.logical_id.as_str())
        .collect();
    assert_eq!(functions.len(), 6);
    for function in functions {
        let (_, logs) = stack_with("timestream", &format!("{function}Logs"));
        assert_eq!(logs["LogGroupName"], format!("/aws/lambda/{function}"));
        assert_eq!(logs["RetentionInDays"].to_string().trim_matches('"'), "30");
    }
    let (_, api) = stack_with("timestream", "QueryHttpApi");
    let format = api["AccessLogSettings"]["Format"].as_str().unwrap();
    let fields: serde_json::Value =
        serde_json::from_str(format).expect("the access log format is JSON");
    assert!(fields.get("status").is_some() && fields.get("requestId").is_some());
    assert_eq!(
        api["AccessLogSettings"]["DestinationArn"],
        "ApiAccessLogs.Arn"
    );
}

/// checkov (in `make test`) passes only because every finding not fixed is skipped with a
/// reason: each skip names its check and says why in a sentence.
#[test]
fn every_checkov_skip_gives_its_reason() {
    let template = repo_file("template.yaml");
    let lines: Vec<&str> = template.lines().collect();
    let mut skips = 0;
    for (i, line) in lines.iter().enumerate() {
        if let Some(id) = line.trim().strip_prefix("- id: CKV_") {
            skips += 1;
            let comment = lines[i + 1].trim();
            assert!(
                comment.starts_with("comment: ") && comment.len() > 40,
                "CKV_{id}: {comment}"
            );
        }
    }
    assert!(skips >= 20, "{skips}");
}

/// `ApiAuth` picks how API callers sign in: IAM alone by default (no user pool is made), a user
/// pool with one group per role wired to the JWT authorizer, or the caller's own OIDC issuer.
#[test]
fn the_api_signs_callers_in_with_iam_a_user_pool_or_your_own_issuer() {
    let auth = |props: &serde_json::Value| props["Auth"].clone();
    let (created, api) = stack_with_parameters(&[], "QueryHttpApi");
    assert!(
        !created.iter().any(|k| k.starts_with("AWS::Cognito::")),
        "{created:?}"
    );
    assert_eq!(auth(&api)["DefaultAuthorizer"], "AWS_IAM");

    let (created, api) = stack_with_parameters(&[("ApiAuth", "cognito")], "QueryHttpApi");
    assert_eq!(auth(&api)["DefaultAuthorizer"], "OidcAuthorizer");
    let jwt = &auth(&api)["Authorizers"]["OidcAuthorizer"]["JwtConfiguration"];
    assert_eq!(
        jwt["issuer"],
        "https://cognito-idp.us-east-1.amazonaws.com/ApiUserPool"
    );
    assert_eq!(jwt["audience"][0], "ApiUserPoolClient");
    assert_eq!(
        created
            .iter()
            .filter(|k| *k == "AWS::Cognito::UserPoolGroup")
            .count(),
        3
    );
    // The groups are the ones the API reads roles from.
    let groups: Vec<String> = ["ApiViewerGroup", "ApiOperatorGroup", "ApiAdminGroup"]
        .iter()
        .map(|id| {
            let (_, group) = stack_with_parameters(&[("ApiAuth", "cognito")], id);
            group["GroupName"].as_str().unwrap().to_owned()
        })
        .collect();
    let roles: Vec<String> = iotdp::api::access::Role::ALL
        .iter()
        .map(|r| r.group())
        .collect();
    assert_eq!(groups, roles);
    let (_, pool) = stack_with_parameters(&[("ApiAuth", "cognito")], "ApiUserPool");
    assert_eq!(
        pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"], true,
        "users are given their scope by an admin, so nobody signs themselves up"
    );
    let (_, client) = stack_with_parameters(&[("ApiAuth", "cognito")], "ApiUserPoolClient");
    assert_eq!(
        client["GenerateSecret"], false,
        "a browser cannot keep a secret"
    );
    assert_eq!(client["PreventUserExistenceErrors"], "ENABLED");

    let (created, api) = stack_with_parameters(
        &[
            ("ApiAuth", "jwt"),
            ("ApiJwtIssuer", "https://login.example/tenant"),
            ("ApiJwtAudience", "iotdp"),
        ],
        "QueryHttpApi",
    );
    assert!(!created.iter().any(|k| k.starts_with("AWS::Cognito::")));
    let jwt = &auth(&api)["Authorizers"]["OidcAuthorizer"]["JwtConfiguration"];
    assert_eq!(
        (jwt["issuer"].as_str(), jwt["audience"][0].as_str()),
        (Some("https://login.example/tenant"), Some("iotdp"))
    );

    // The API function is told the mode, since it decides which claims it reads.
    for mode in iotdp::api::access::ApiAuth::ALL {
        let (_, function) = stack_with_parameters(&[("ApiAuth", mode.as_str())], "ApiFunction");
        let api_auth = &function["Environment"]["Variables"]["API_AUTH"];
        assert_eq!(api_auth, mode.as_str());
        assert_eq!(
            iotdp::api::access::ApiAuth::parse(api_auth.as_str().unwrap()),
            Some(mode)
        );
    }
}

/// Commands: the history table keeps pending commands in a sparse index and drops old ones by
/// TTL; the shadow reports reach the commands function through a queue with a redrive; each
/// function that touches commands may do exactly what it needs, on the command table only.
#[test]
fn commands_have_their_table_queue_rule_and_only_the_permissions_they_need() {
    let (_, table) = stack_with("timestream", "CommandTable");
    assert_eq!(
        table["GlobalSecondaryIndexes"][0]["IndexName"],
        iotdp::adapters::dynamodb::commands::PENDING_INDEX
    );
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"],
        "expires_ttl"
    );
    let (_, queue) = stack_with("timestream", "ShadowReportsQueue");
    assert_eq!(
        queue["RedrivePolicy"]["deadLetterTargetArn"],
        "ShadowReportsDeadLetterQueue.Arn"
    );
    let (_, rule) = stack_with("timestream", "ShadowReportsRule");
    assert_eq!(
        rule["TopicRulePayload"]["Actions"][0]["Sqs"]["QueueUrl"],
        "ShadowReportsQueue"
    );
    let actions_on = |function: &str, resource_fragment: &str| -> Vec<String> {
        let (_, props) = stack_with("timestream", function);
        let mut actions = Vec::new();
        for statement in props["Policies"][0]["Statement"].as_array().unwrap() {
            if statement["Resource"]
                .to_string()
                .contains(resource_fragment)
            {
                match &statement["Action"] {
                    serde_json::Value::String(a) => actions.push(a.clone()),
                    serde_json::Value::Array(list) => {
                        actions.extend(list.iter().map(|a| a.as_str().unwrap().to_owned()));
                    }
                    other => panic!("{function}: action {other}"),
                }
            }
        }
        actions.sort();
        actions
    };
    assert_eq!(
        actions_on("CommandsFunction", "CommandTable"),
        ["dynamodb:PutItem", "dynamodb:Query", "dynamodb:Query"]
    );
    assert_eq!(
        actions_on("ApiFunction", "CommandTable"),
        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
    );
    for function in ["ApiFunction", "IngestFunction", "CommandsFunction"] {
        assert_eq!(
            actions_on(function, ":thing/"),
            ["iot:GetThingShadow", "iot:UpdateThingShadow"],
            "{function}"
        );
    }
}

/// The console's page and files are served to anyone, GET only, and nothing else is: every API
/// route keeps the stack's authorizer. With a user pool the page learns where to sign in.
#[test]
fn the_console_is_public_and_only_the_console() {
    let (_, api) = stack_with_parameters(&[], "ApiFunction");
    let events = api["Events"].as_object().unwrap();
    let mut public: Vec<(&str, &str)> = events
        .values()
        .filter(|e| e["Properties"]["Auth"]["Authorizer"] == "NONE")
        .map(|e| {
            (
                e["Properties"]["Path"].as_str().unwrap(),
                e["Properties"]["Method"].as_str().unwrap(),
            )
        })
        .collect();
    public.sort_unstable();
    assert_eq!(public, [("/", "GET"), ("/console/{proxy+}", "GET")]);
    assert!(events["Api"]["Properties"].get("Auth").is_none());
    let env = &api["Environment"]["Variables"];
    assert!(env.get("CONSOLE_SIGN_IN_URL").is_none() && env.get("CONSOLE_CLIENT_ID").is_none());

    let cognito = [("ApiAuth", "cognito")];
    let (created, api) = stack_with_parameters(&cognito, "ApiFunction");
    assert!(created.iter().any(|k| k == "AWS::Cognito::UserPoolDomain"));
    let env = &api["Environment"]["Variables"];
    assert_eq!(env["CONSOLE_CLIENT_ID"], "ApiUserPoolClient");
    assert!(
        env["CONSOLE_SIGN_IN_URL"]
            .as_str()
            .unwrap()
            .starts_with("https://ApiUserPoolDomain.auth."),
        "{env}"
    );
    let (_, client) = stack_with_parameters(&cognito, "ApiUserPoolClient");
    assert_eq!(client["AllowedOAuthFlows"], serde_json::json!(["code"]));
    assert_eq!(client["GenerateSecret"], false);
}

/// The heard log: encrypted, expiring on its own, keyed for a range read by deadline. Ingest
/// may only append to it and the silence watch only read it; no other function touches it.
#[test]
fn the_heard_log_is_appended_by_ingest_and_read_by_the_watch_only() {
    let (_, table) = stack_with_parameters(&[], "HeardLogTable");
    assert_eq!(table["SSESpecification"]["SSEEnabled"], true);
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"],
        "expires_at"
    );
    assert_eq!(table["TimeToLiveSpecification"]["Enabled"], true);
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    let keys: Vec<(&str, &str)> = table["KeySchema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap(),
                k["KeyType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys, [("pk", "HASH"), ("sk", "RANGE")]);
    let on_log = |function: &str| -> Vec<(String, Vec<String>, Vec<String>)> {
        let (_, props) = stack_with_parameters(&[], function);
        statements(&props)
            .into_iter()
            .filter(|s| s.2.iter().any(|r| r.starts_with("HeardLogTable")))
            .collect()
    };
    for (function, sid, action) in [
        ("IngestFunction", "AppendToTheHeardLog", "dynamodb:PutItem"),
        ("SilenceWatchFunction", "ReadTheHeardLog", "dynamodb:Query"),
    ] {
        assert_eq!(
            on_log(function),
            [(
                sid.to_owned(),
                vec![action.to_owned()],
                vec!["HeardLogTable.Arn".to_owned()]
            )],
            "{function}"
        );
        let (_, props) = stack_with_parameters(&[], function);
        assert_eq!(
            props["Environment"]["Variables"]["HEARD_LOG_TABLE"], "HeardLogTable",
            "{function}"
        );
    }
    for function in [
        "ApiFunction",
        "LifecycleFunction",
        "RollupFunction",
        "CommandsFunction",
    ] {
        assert!(on_log(function).is_empty(), "{function}");
    }
    // An hour between a device's registry writes by default: the log keeps no_data exact.
    let template = iotdp_local::template::Template::parse(&repo_file("template.yaml")).unwrap();
    assert_eq!(
        template.parameters["LastSeenIntervalSeconds"].to_string(),
        "3600"
    );
}

// ---- The lake (TimeSeriesStore=lake, the default) -------------------------------------------

/// The rollup objects' Parquet schema, as the lake's rollups write it.
const ROLLUP_SCHEMA: &str = iotdp::adapters::lake::format::ROLLUP_SCHEMA;

/// A Parquet message's columns as Glue (Hive) types: `(name, type)` in order.
fn glue_columns_of(schema: &str) -> Vec<(String, String)> {
    schema
        .lines()
        .filter_map(|line| {
            let fields = line.trim().trim_end_matches(';');
            let mut words = fields.split_whitespace();
            let (_repetition, physical, name) = (words.next()?, words.next()?, words.next()?);
            if !matches!(physical, "BYTE_ARRAY" | "INT64" | "DOUBLE" | "BOOLEAN") {
                return None;
            }
            let annotation = words.collect::<Vec<_>>().join(" ");
            let glue = match (physical, annotation.as_str()) {
                ("BYTE_ARRAY", "(STRING)") => "string",
                ("INT64", a) if a.starts_with("(TIMESTAMP(MILLIS") => "timestamp",
                ("INT64", "") => "bigint",
                ("DOUBLE", "") => "double",
                ("BOOLEAN", "") => "boolean",
                other => panic!("no Glue type for {other:?} in {line}"),
            };
            Some((name.to_owned(), glue.to_owned()))
        })
        .collect()
}

fn lake(logical_id: &str) -> serde_json::Value {
    stack_with("lake", logical_id).1
}

#[test]
fn the_lake_is_the_default_store_and_every_store_stays_a_choice() {
    let template = iotdp_local::template::Template::parse(&repo_file("template.yaml")).unwrap();
    assert_eq!(template.parameters["TimeSeriesStore"], "lake");
    let text = repo_file("template.yaml");
    let parameter: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "  TimeSeriesStore:")
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .collect();
    assert!(
        parameter.contains(&"    AllowedValues: [lake, timestream, influxdb]"),
        "{parameter:?}"
    );
    let (created, _) = stack_for("lake");
    for kind in [
        "AWS::S3::Bucket",
        "AWS::Glue::Table",
        "AWS::Athena::WorkGroup",
    ] {
        assert!(created.iter().any(|k| k == kind), "{kind}: {created:?}");
    }
    assert!(
        !created.iter().any(|k| k.starts_with("AWS::Timestream::")),
        "{created:?}"
    );
    for function in ["IngestFunction", "ApiFunction", "RollupFunction"] {
        let env = &lake(function)["Environment"]["Variables"];
        assert_eq!(env["TIME_SERIES_STORE"], "lake", "{function}");
        assert_eq!(env["LAKE_BUCKET"], "LakeBucket", "{function}");
        assert!(env.get("TIMESTREAM_DATABASE").is_none(), "{function}");
        let (_, other) = stack_with("timestream", function);
        assert!(
            other["Environment"]["Variables"]
                .get("LAKE_BUCKET")
                .is_none()
        );
    }
    let (created, _) = stack_for("timestream");
    assert!(!created.iter().any(|k| k.starts_with("AWS::Glue::")));
    assert!(!created.iter().any(|k| k == "AWS::Athena::WorkGroup"));
}

#[test]
fn the_glue_tables_columns_are_the_parquet_schemas() {
    let readings = glue_columns_of(iotdp::adapters::lake::format::SCHEMA);
    assert_eq!(readings.len(), 10, "{readings:?}");
    let rollups = glue_columns_of(ROLLUP_SCHEMA);
    assert_eq!(rollups.len(), 13, "{rollups:?}");
    for (table, expected) in [
        ("LakeReadingsTable", &readings),
        ("LakeRollups1mTable", &rollups),
        ("LakeRollups1hTable", &rollups),
        ("LakeRollups1dTable", &rollups),
    ] {
        let input = &lake(table)["TableInput"];
        let columns: Vec<(String, String)> = input["StorageDescriptor"]["Columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["Name"].as_str().unwrap().to_owned(),
                    c["Type"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(&columns, expected, "{table}");
        let storage = &input["StorageDescriptor"];
        assert_eq!(
            storage["SerdeInfo"]["SerializationLibrary"],
            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        );
        assert_eq!(
            storage["InputFormat"],
            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
        );
        assert_eq!(input["TableType"], "EXTERNAL_TABLE");
    }
}

/// Partition projection: every partition computed from the table's properties (no crawler),
/// under the prefixes the lake writes.
#[test]
fn the_glue_tables_project_their_partitions_onto_the_lakes_layout() {
    // (table, name, location, [(key, type, format or range, interval unit)])
    let daily = |prefix: &str| format!("s3://LakeBucket/{prefix}/date=${{date}}/");
    let cases = [
        (
            "LakeReadingsTable",
            "readings",
            "s3://LakeBucket/raw/".to_owned(),
            "s3://LakeBucket/raw/date=${date}/hour=${hour}/".to_owned(),
            vec!["date", "hour"],
        ),
        (
            "LakeRollups1mTable",
            "rollups_1m",
            "s3://LakeBucket/rollups/1m/".to_owned(),
            daily("rollups/1m"),
            vec!["date"],
        ),
        (
            "LakeRollups1hTable",
            "rollups_1h",
            "s3://LakeBucket/rollups/1h/".to_owned(),
            daily("rollups/1h"),
            vec!["date"],
        ),
        (
            "LakeRollups1dTable",
            "rollups_1d",
            "s3://LakeBucket/rollups/1d/".to_owned(),
            "s3://LakeBucket/rollups/1d/month=${month}/".to_owned(),
            vec!["month"],
        ),
    ];
    for (table, name, location, template, keys) in cases {
        let props = lake(table);
        assert_eq!(props["DatabaseName"], "LakeDatabase");
        let input = &props["TableInput"];
        assert_eq!(input["Name"], name);
        assert_eq!(input["StorageDescriptor"]["Location"], location.as_str());
        let p = &input["Parameters"];
        assert_eq!(p["projection.enabled"], "true", "{table}");
        assert_eq!(p["storage.location.template"], template.as_str(), "{table}");
        let partition_keys: Vec<_> = input["PartitionKeys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                assert_eq!(k["Type"], "string");
                k["Name"].as_str().unwrap()
            })
            .collect();
        assert_eq!(partition_keys, keys, "{table}");
        for key in keys {
            let setting = |s: &str| p[format!("projection.{key}.{s}")].clone();
            match key {
                "date" => {
                    assert_eq!(setting("type"), "date");
                    assert_eq!(setting("format"), "yyyy-MM-dd");
                    assert_eq!(setting("range"), "2020-01-01,NOW");
                    assert_eq!(setting("interval"), "1");
                    assert_eq!(setting("interval.unit"), "DAYS");
                }
                "hour" => {
                    assert_eq!(setting("type"), "integer");
                    assert_eq!(setting("range"), "0,23");
                    assert_eq!(setting("digits"), "2");
                }
                "month" => {
                    assert_eq!(setting("type"), "date");
                    assert_eq!(setting("format"), "yyyy-MM");
                    assert_eq!(setting("range"), "2020-01,NOW");
                    assert_eq!(setting("interval"), "1");
                    assert_eq!(setting("interval.unit"), "MONTHS");
                }
                other => panic!("{other}"),
            }
        }
    }
    let workgroup = lake("LakeWorkGroup")["WorkGroupConfiguration"].clone();
    assert_eq!(workgroup["EnforceWorkGroupConfiguration"], true);
    assert_eq!(workgroup["BytesScannedCutoffPerQuery"], "10737418240");
    assert_eq!(workgroup["EngineVersion"]["SelectedEngineVersion"], "AUTO");
    assert_eq!(
        workgroup["ResultConfiguration"],
        serde_json::json!({
            "OutputLocation": "s3://AthenaResultsBucket/results/",
            "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}
        })
    );
}

/// One statement as expected: its sid, actions and resources.
type Grant = (&'static str, Vec<&'static str>, Vec<String>);

/// Each function gets exactly the S3 actions it needs, on exactly its prefixes; no action is a
/// wildcard.
#[test]
fn the_lakes_grants_are_per_function_and_per_prefix() {
    let under = |prefixes: &[&str]| -> Vec<String> {
        prefixes
            .iter()
            .map(|p| format!("LakeBucket.Arn/{p}/*"))
            .collect()
    };
    let expected: [(&str, Vec<Grant>); 3] = [
        (
            "IngestFunction",
            vec![
                (
                    "WriteToTheLake",
                    vec!["s3:PutObject"],
                    under(&["incoming", "marks", "manifests"]),
                ),
                (
                    "ReadLakeManifests",
                    vec!["s3:GetObject"],
                    under(&["manifests"]),
                ),
                (
                    "TellMissingLakeObjectsFromDenied",
                    vec!["s3:ListBucket"],
                    vec!["LakeBucket.Arn".to_owned()],
                ),
            ],
        ),
        (
            "ApiFunction",
            vec![
                (
                    "ReadTheLake",
                    vec!["s3:GetObject"],
                    under(&["manifests", "raw", "incoming", "rollups"]),
                ),
                (
                    "TellMissingLakeObjectsFromDenied",
                    vec!["s3:ListBucket"],
                    vec!["LakeBucket.Arn".to_owned()],
                ),
            ],
        ),
        (
            "RollupFunction",
            vec![
                (
                    "CompactTheLakeAndWriteRollups",
                    vec!["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    under(&["manifests", "raw", "incoming", "rollups", "marks"]),
                ),
                (
                    "ListCompactionMarks",
                    vec!["s3:ListBucket"],
                    vec!["LakeBucket.Arn".to_owned()],
                ),
            ],
        ),
    ];
    for (function, grants) in expected {
        let statements = statements(&lake(function));
        for (sid, actions, _) in &statements {
            assert!(
                actions.iter().all(|a| !a.contains('*')),
                "{function} {sid}: {actions:?}"
            );
        }
        let on_the_lake: Vec<_> = statements
            .iter()
            .filter(|(_, _, resources)| resources.iter().any(|r| r.starts_with("LakeBucket")))
            .cloned()
            .collect();
        let expected: Vec<(String, Vec<String>, Vec<String>)> = grants
            .into_iter()
            .map(|(sid, actions, resources)| {
                (
                    sid.to_owned(),
                    actions.into_iter().map(str::to_owned).collect(),
                    resources,
                )
            })
            .collect();
        assert_eq!(on_the_lake, expected, "{function}");
        // Nothing of the lake on another store.
        let (_, other) = stack_with("timestream", function);
        assert!(!other["Policies"].to_string().contains("LakeBucket"));
    }
}

/// Only compacted raw hours and rollups ever age out: an hour not yet compacted (incoming/),
/// the manifests readers go by and the compaction marks have no rule, whatever the
/// parameters say.
#[test]
fn the_lakes_lifecycle_never_touches_incoming_manifests_or_marks() {
    let rules_with = |overrides: &[(&str, &str)]| -> Vec<serde_json::Value> {
        let mut parameters = vec![("TimeSeriesStore", "lake")];
        parameters.extend_from_slice(overrides);
        let (_, bucket) = stack_with_parameters(&parameters, "LakeBucket");
        bucket["LifecycleConfiguration"]["Rules"]
            .as_array()
            .unwrap()
            .clone()
    };
    let ids = |rules: &[serde_json::Value]| -> Vec<String> {
        rules
            .iter()
            .map(|r| r["Id"].as_str().unwrap().to_owned())
            .collect()
    };
    // By default: raw hours move to Glacier Instant Retrieval after 90 days, nothing expires.
    let defaults = rules_with(&[]);
    assert_eq!(
        ids(&defaults),
        ["AbortIncompleteMultipartUploads", "RawHoursToColderStorage"]
    );
    assert_eq!(
        defaults[1]["Transitions"],
        serde_json::json!([{"StorageClass": "GLACIER_IR", "TransitionInDays": "90"}])
    );
    let everything = rules_with(&[
        ("LakeRawRetentionDays", "400"),
        ("LakeRollupRetentionDays", "3650"),
        ("LakeRawStorageClass", "STANDARD_IA"),
    ]);
    assert_eq!(
        ids(&everything),
        [
            "AbortIncompleteMultipartUploads",
            "RawHoursToColderStorage",
            "ExpireRawHours",
            "ExpireRollups"
        ]
    );
    assert_eq!(everything[2]["ExpirationInDays"], "400");
    assert_eq!(everything[3]["ExpirationInDays"], "3650");
    assert_eq!(
        ids(&rules_with(&[("LakeRawTransitionDays", "0")])),
        ["AbortIncompleteMultipartUploads"]
    );
    for rule in &everything {
        match rule.get("Prefix").and_then(|p| p.as_str()) {
            Some(prefix) => assert!(
                prefix == "raw/" || prefix == "rollups/",
                "a lifecycle rule on {prefix}"
            ),
            // A rule over the whole bucket may only abort incomplete uploads.
            None => {
                // Sorted: serde_json keeps insertion order when another crate of the workspace
                // turns on `preserve_order`, sorted order otherwise.
                let mut keys: Vec<_> = rule.as_object().unwrap().keys().cloned().collect();
                keys.sort();
                assert_eq!(
                    keys,
                    ["AbortIncompleteMultipartUpload", "Id", "Status"],
                    "{rule}"
                );
            }
        }
        assert!(rule.get("Filter").is_none(), "{rule}");
    }
    let (_, bucket) = stack_with("lake", "LakeBucket");
    assert!(bucket.get("VersioningConfiguration").is_none());
    assert_eq!(
        bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
            ["SSEAlgorithm"],
        "AES256"
    );
    assert_eq!(
        bucket["OwnershipControls"]["Rules"][0]["ObjectOwnership"],
        "BucketOwnerEnforced"
    );
    let (_, results) = stack_with("lake", "AthenaResultsBucket");
    assert_eq!(
        results["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"],
        "7"
    );
}
