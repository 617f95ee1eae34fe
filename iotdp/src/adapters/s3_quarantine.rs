//! S3 adapter for [`QuarantineSink`]: one JSON Lines object per invocation.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;

use crate::ingest::ports::{QuarantineError, QuarantineSink};

pub struct S3Quarantine {
    client: Client,
    bucket: String,
}

impl S3Quarantine {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

impl QuarantineSink for S3Quarantine {
    async fn put(&self, key: &str, jsonl: Vec<u8>) -> Result<(), QuarantineError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/x-ndjson")
            .body(ByteStream::from(jsonl))
            // Over TLS, with the SDK's CRC32 checksum, hashing a multi-megabyte body for the
            // signature buys nothing but CPU (S3 takes UNSIGNED-PAYLOAD; nothing else does).
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                QuarantineError(format!(
                    "PutObject s3://{}/{key}: {}",
                    self.bucket,
                    DisplayErrorContext(&e)
                ))
            })
    }
}
