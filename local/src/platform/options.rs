//! What the local platform is started with.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where AWS calls go.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// Start moto's server from this binary, on this port (0: a free one).
    StartMoto { binary: PathBuf, port: u16 },
    /// Use an endpoint that is already running (moto, LocalStack).
    Existing(String),
}

/// Which queues carry the hot path (rule actions → functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMode {
    /// moto's SQS: exactly the deployed calls, but moto's SQS caps the pipeline near 100 msg/s.
    Moto,
    /// In-process queues with SQS semantics (visibility timeout, redrive): the default.
    InProcess,
}

#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub queues: QueueMode,
    pub template: PathBuf,
    pub stack_name: String,
    pub parameters: HashMap<String, String>,
    /// MQTT listener (IoT Core stand-in); port 0 picks a free one.
    pub mqtt: SocketAddr,
    pub endpoint: Endpoint,
    /// The query API's local listener (port 0: a free one).
    pub api: SocketAddr,
    /// The IoT Data Plane stand-in's listener (shadows over HTTP; port 0: a free one).
    pub iot_data: SocketAddr,
    /// Run InfluxDB locally and store readings there (`TimeSeriesStore=influxdb`): the
    /// `influxd` binary and the folder its data goes to. `None`: the template's store as
    /// parameterised (Timestream in moto, which can store but not query).
    pub influxdb: Option<LocalInfluxDb>,
    /// At most this visibility timeout on the in-process queues (the template's 360 s means a
    /// message returned for retry comes back six minutes later): outage tests and demos of
    /// redelivery set a few seconds. `None`: the template's.
    pub visibility_timeout_cap: Option<Duration>,
    /// Where the console signs users in (`CONSOLE_SIGN_IN_URL`, `CONSOLE_CLIENT_ID`): the
    /// local API reads unsigned tokens, so any OAuth 2.0 server with PKCE will do (the browser
    /// tests run one). `None`: the template's (none with `ApiAuth=iam`).
    pub console_sign_in: Option<iotdp::api::console::ConsoleSignIn>,
}

#[derive(Debug, Clone)]
pub struct LocalInfluxDb {
    pub binary: PathBuf,
    pub data_dir: PathBuf,
}

/// The ingest function's `Timeout` in template.yaml.
const INGEST_TIMEOUT: Duration = Duration::from_secs(60);

impl LocalOptions {
    /// How long an ingest invocation may run: the template's 60 s timeout, and never as long
    /// as half a capped visibility timeout (SQS would hand its messages to another poller
    /// while it still runs, and they would be processed twice).
    pub(super) fn invocation_timeout(&self) -> Duration {
        self.visibility_timeout_cap
            .map_or(INGEST_TIMEOUT, |cap| INGEST_TIMEOUT.min(cap / 2))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Options that start nothing: an existing endpoint, every listener on a free port.
    pub(in crate::platform) fn options() -> LocalOptions {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        LocalOptions {
            queues: QueueMode::InProcess,
            template: PathBuf::from("template.yaml"),
            stack_name: "iotdp-test".into(),
            parameters: HashMap::from([("Transport".to_owned(), "sqs".to_owned())]),
            mqtt: any,
            endpoint: Endpoint::Existing("http://127.0.0.1:9".into()),
            api: any,
            iot_data: any,
            influxdb: None,
            visibility_timeout_cap: None,
            console_sign_in: None,
        }
    }

    #[test]
    fn an_invocation_runs_for_the_templates_timeout_or_half_a_capped_visibility_timeout() {
        let mut options = options();
        assert_eq!(options.invocation_timeout(), Duration::from_secs(60));
        options.visibility_timeout_cap = Some(Duration::from_secs(10));
        assert_eq!(options.invocation_timeout(), Duration::from_secs(5));
        // A cap above twice the timeout leaves the template's.
        options.visibility_timeout_cap = Some(Duration::from_secs(600));
        assert_eq!(options.invocation_timeout(), Duration::from_secs(60));
    }
}
