//! `iotdp stream replay` against moto's Kinesis and SQS: the batch a failure-queue message
//! names is read back from its shard and put on the stream again, in order, with its partition
//! keys, and only then is the message deleted.

use std::process::Command;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;
use iotdp_integration_tests::{MotoServer, REGION};

#[tokio::test]
async fn a_skipped_batch_is_put_back_on_the_stream_in_order() {
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    kinesis
        .create_stream()
        .stream_name("ingest")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let mut put = Vec::new();
    for i in 0..5 {
        let answer = kinesis
            .put_record()
            .stream_name("ingest")
            .partition_key(format!("ac-{i}"))
            .data(Blob::new(format!("r{i}")))
            .send()
            .await
            .unwrap();
        put.push((
            answer.shard_id().to_owned(),
            answer.sequence_number().to_owned(),
        ));
    }
    let queue = sqs
        .create_queue()
        .queue_name("failures")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    // What Lambda sends the on-failure destination for r1..r3.
    let document = serde_json::json!({
        "requestContext": {"condition": "RecordAgeExceeded", "approximateInvokeCount": 40},
        "version": "1.0",
        "KinesisBatchInfo": {
            "shardId": put[1].0, "startSequenceNumber": put[1].1, "endSequenceNumber": put[3].1,
            "batchSize": 3, "streamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/ingest"
        }
    });
    sqs.send_message()
        .queue_url(&queue)
        .message_body(document.to_string())
        .send()
        .await
        .unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_iotdp"))
        .args([
            "stream",
            "replay",
            "--stream",
            "ingest",
            "--failure-queue",
            &queue,
            "--output",
            "json",
        ])
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("IOTDP_STACK")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(line["records"], 3);

    // The shard now holds the five, then r1, r2, r3 again with their keys.
    let iterator = kinesis
        .get_shard_iterator()
        .stream_name("ingest")
        .shard_id(&put[0].0)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let records = kinesis
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .unwrap();
    let seen: Vec<(String, String)> = records
        .records()
        .iter()
        .map(|r| {
            (
                r.partition_key().unwrap_or_default().to_owned(),
                String::from_utf8(r.data().as_ref().to_vec()).unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [0, 1, 2, 3, 4, 1, 2, 3]
        .iter()
        .map(|i| (format!("ac-{i}"), format!("r{i}")))
        .collect();
    assert_eq!(seen, expected);
    // The message is gone once its batch is back.
    let left = sqs
        .receive_message()
        .queue_url(&queue)
        .wait_time_seconds(0)
        .send()
        .await
        .unwrap();
    assert!(left.messages().is_empty());
}
