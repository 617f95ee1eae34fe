//! Bytes sent per reading by each store adapter, measured on the wire: the reference batch
//! (1,000 messages, 3,700 readings) written through the real adapters to a local HTTP listener
//! that records every request body. Run with `--nocapture` for the figures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iotdp::adapters::influxdb::{InfluxDbSettings, InfluxDbStore};
use iotdp::adapters::timestream::TimestreamStore;
use iotdp::ingest::batch::prepare_batch;
use iotdp::ingest::store_writer::{WriteOutcome, WritePolicy, write_readings};
use iotdp::ingest::validation::TimeWindow;
use iotdp_simulator::reference_sqs_batch;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::time::Instant;

const RECEIVED: i64 = 1_764_000_000_000;

/// An HTTP/1.1 listener that answers every request as the store would on success and keeps
/// each request body's size.
async fn recording_server() -> (String, Arc<Mutex<Vec<usize>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let recorded = bodies.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let bodies = recorded.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(socket);
                loop {
                    let mut line = String::new();
                    let (mut length, mut first) = (0usize, String::new());
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if first.is_empty() {
                            first = line.clone();
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).await.unwrap();
                    bodies.lock().unwrap().push(length);
                    let response = if first.contains("/write") {
                        "HTTP/1.1 204 No Content\r\n\r\n".to_owned()
                    } else {
                        let json = r#"{"RecordsIngested":{"Total":100,"MemoryStore":100,"MagneticStore":0}}"#;
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{json}",
                            json.len()
                        )
                    };
                    reader
                        .get_mut()
                        .write_all(response.as_bytes())
                        .await
                        .unwrap();
                }
            });
        }
    });
    (url, bodies)
}

#[tokio::test]
async fn bytes_per_reading_for_each_store() {
    let (bodies, _) = reference_sqs_batch(RECEIVED);
    measure("reference batch (repetitive values)", bodies).await;
    // The simulated fleet's values are noisy, as real sensors are: gzip has less to find.
    let mut fleet = iotdp_simulator::Fleet::new(iotdp_simulator::FleetConfig {
        devices: 50,
        seed: 7,
        faulty_rate: 0.0,
    });
    let bodies = fleet.rule_envelopes(1000, RECEIVED);
    measure("simulated fleet (noisy values)", bodies).await;
}

async fn measure(what: &str, bodies: Vec<(String, String)>) {
    let mut batch = prepare_batch(
        bodies.iter().map(|(id, b)| (id.as_str(), b.as_str())),
        TimeWindow::with_retention_days(73_000),
    );
    batch.sort_by_series();
    let readings = &batch.readings;
    let deadline = Instant::now() + Duration::from_secs(30);

    let (url, timestream_bodies) = recording_server().await;
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .endpoint_url(&url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(
            aws_sdk_timestreamwrite::config::SharedCredentialsProvider::new(
                aws_sdk_timestreamwrite::config::Credentials::for_tests(),
            ),
        )
        .build();
    let timestream = TimestreamStore::new(
        iotdp::wiring::timestream_write_client(&sdk).await.unwrap(),
        "iotdp",
        "telemetry",
    );
    let (outcomes, _) =
        write_readings(&timestream, readings, &WritePolicy::default(), deadline).await;
    assert!(outcomes.iter().all(|o| *o == WriteOutcome::Stored));

    let (url, influx_bodies) = recording_server().await;
    let influx = InfluxDbStore::new(&InfluxDbSettings {
        url,
        database: "iotdp".into(),
        token: Some("t".into()),
    })
    .unwrap();
    let (outcomes, _) = write_readings(&influx, readings, &WritePolicy::default(), deadline).await;
    assert!(outcomes.iter().all(|o| *o == WriteOutcome::Stored));

    let mut raw = Vec::new();
    iotdp::adapters::influxdb::line_protocol::encode_lines(readings, &mut raw);

    let n = readings.len() as f64;
    let timestream: Vec<usize> = timestream_bodies.lock().unwrap().clone();
    let influx: Vec<usize> = influx_bodies.lock().unwrap().clone();
    let per = |sizes: &[usize]| sizes.iter().sum::<usize>() as f64 / n;
    println!(
        "{what}, {} readings: Timestream {} WriteRecords requests, {:.1} bytes/reading (JSON); \
         InfluxDB {} /write request(s), {:.1} bytes/reading gzip ({:.1} uncompressed line protocol)",
        readings.len(),
        timestream.len(),
        per(&timestream),
        influx.len(),
        per(&influx),
        raw.len() as f64 / n
    );
    assert_eq!(timestream.len(), readings.len().div_ceil(100));
    assert_eq!(influx.len(), readings.len().div_ceil(5000));
    // Line protocol is far more compact than WriteRecords JSON, and gzip shrinks it again.
    assert!(per(&influx) < raw.len() as f64 / n);
    assert!((raw.len() as f64 / n) < per(&timestream));
}
