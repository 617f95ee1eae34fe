//! `iotdp local` (`make local`): the platform on this machine, demo rules, a simulated fleet
//! and a live view until Ctrl-C; then everything it started is stopped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use iotdp::alerting::ports::AlertPortError;
use iotdp::devices::ports::RegistryError;
use iotdp_local::platform::{Endpoint, LocalInfluxDb, LocalOptions, LocalPlatform, QueueMode};

use crate::files::FileError;
use crate::rules::RulesError;
use crate::simulate::FleetArgs;

mod banner;
mod demo;
mod view;

/// The local platform's stack name, registered in moto's CloudFormation with the template's
/// outputs, so `iotdp --stack iotdp-local …` works as against a deployed stack.
const STACK: &str = "iotdp-local";
const REGION: &str = iotdp_local::provision::LOCAL_REGION;

#[derive(Args, Debug)]
pub struct LocalArgs {
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// MQTT listener, the IoT Core stand-in
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt: std::net::SocketAddr,
    /// The query API's listener (the `api` function, served locally without auth)
    #[arg(long, default_value = "127.0.0.1:8080")]
    api: std::net::SocketAddr,
    /// The IoT Data Plane stand-in's listener (device shadows over HTTP; port 0: a free one)
    #[arg(long, default_value = "127.0.0.1:0")]
    iot_data: std::net::SocketAddr,
    /// moto's server binary (started on a free 127.0.0.1 port)
    #[arg(
        long,
        env = "IOTDP_MOTO_SERVER",
        default_value = ".venv/bin/moto_server"
    )]
    moto_server: PathBuf,
    /// Use this running endpoint instead of starting moto (e.g. LocalStack: http://127.0.0.1:4566)
    #[arg(long)]
    aws_endpoint: Option<String>,
    /// Alert rules to load (every *.json file)
    #[arg(long, default_value = "infra/local/rules")]
    rules: PathBuf,
    /// Template parameter overrides, KEY=VALUE (as sam deploy --parameter-overrides)
    #[arg(long = "parameter", value_parser = parse_pair)]
    parameters: Vec<(String, String)>,
    /// Queues for the hot path: in-process (SQS semantics, fast) or moto (moto's SQS caps it
    /// near 100 messages/s)
    #[arg(long, value_enum, default_value = "in-process")]
    queues: Queues,
    /// Run without the simulated fleet (publish yourself, e.g. with mosquitto_pub)
    #[arg(long)]
    no_simulator: bool,
    /// At most this visibility timeout (seconds) on the in-process queues, so a message
    /// returned for retry comes back this soon instead of after the template's 360 s
    #[arg(long)]
    visibility_timeout: Option<u64>,
    /// Where the local influxd keeps its data (kept between runs)
    #[arg(long, default_value = ".local/influxdb")]
    influxdb_data: PathBuf,
    /// At the end, write the run's conservation figures here as JSON (published, received,
    /// queued, processed, stored, quarantined, backlog)
    #[arg(long)]
    report: Option<PathBuf>,
    /// Time-series store: lake (Parquet in moto's S3, read back by the real reader: real
    /// queries; the default, as deployed), influxdb (a local influxd: real queries), or
    /// timestream (moto: stores but cannot query). Without it, the template's TimeSeriesStore
    /// (a --parameter, or its default, lake)
    #[arg(long, value_enum)]
    store: Option<StoreChoice>,
    /// influxd binary (`make tools` installs it)
    #[arg(
        long,
        env = "IOTDP_INFLUXD",
        default_value = ".tools/influxdb/usr/bin/influxd"
    )]
    influxd: PathBuf,
    /// Have the console sign users in at this OAuth 2.0 server (its `/oauth2/authorize`,
    /// `/oauth2/token`, `/logout`, code flow with PKCE), as a deployed console does at the user
    /// pool's hosted UI; the local API reads the token's claims unverified (docs/access.md)
    #[arg(long, requires = "console_client_id")]
    console_sign_in_url: Option<String>,
    /// The client id the console signs in as (with --console-sign-in-url)
    #[arg(long, requires = "console_sign_in_url")]
    console_client_id: Option<String>,
    #[command(flatten)]
    fleet: FleetArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum StoreChoice {
    Lake,
    Influxdb,
    Timestream,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Queues {
    InProcess,
    Moto,
}

/// What keeps the local platform from starting or its demo from loading.
#[derive(Debug, thiserror::Error)]
pub enum LocalRunError {
    #[error("'{0}' is not KEY=VALUE")]
    NotKeyValue(String),
    #[error(transparent)]
    Platform(#[from] iotdp_local::platform::LocalError),
    /// A resource the demo needs, by its logical id in the template.
    #[error("the template has no {0}")]
    NoResource(&'static str),
    #[error(transparent)]
    ListingRules(std::io::Error),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error(transparent)]
    AlertStore(#[from] AlertPortError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Boxed: the SDK's error is large, the other causes small.
    #[error("creating thing {device_id}: {source}")]
    CreatingThing {
        device_id: String,
        source: Box<
            aws_sdk_iot::error::SdkError<aws_sdk_iot::operation::create_thing::CreateThingError>,
        >,
    },
}

fn parse_pair(text: &str) -> Result<(String, String), LocalRunError> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| LocalRunError::NotKeyValue(text.to_owned()))
}

pub async fn run(args: LocalArgs) -> Result<(), LocalRunError> {
    let platform = LocalPlatform::start(options(&args)).await?;
    let result = demo::demo_and_view(&platform, &args).await;
    let mqtt = platform.mqtt_addr;
    platform.stop().await;
    say(&format!(
        "\nstopped: moto, the MQTT listener on {mqtt} and every worker"
    ));
    result
}

/// The platform the flags ask for.
fn options(args: &LocalArgs) -> LocalOptions {
    let mut parameters: HashMap<String, String> = args.parameters.iter().cloned().collect();
    // Locally, a one-second batching window keeps the view lively (AWS default: 5 s).
    parameters
        .entry("IngestBatchingWindowSeconds".into())
        .or_insert_with(|| "1".into());
    let endpoint = match &args.aws_endpoint {
        Some(url) => Endpoint::Existing(url.clone()),
        None => Endpoint::StartMoto {
            binary: args.moto_server.clone(),
            port: 0,
        },
    };
    // A store named by --store wins over a --parameter; influxdb also starts the local influxd.
    let use_influxdb = match args.store {
        Some(StoreChoice::Influxdb) => true,
        Some(StoreChoice::Lake) => {
            parameters.insert("TimeSeriesStore".into(), "lake".into());
            false
        }
        Some(StoreChoice::Timestream) => {
            parameters.insert("TimeSeriesStore".into(), "timestream".into());
            false
        }
        None => parameters
            .get("TimeSeriesStore")
            .is_some_and(|s| s == "influxdb"),
    };
    let influxdb = use_influxdb.then(|| LocalInfluxDb {
        binary: args.influxd.clone(),
        // Kept between runs, like the deployed store (by default under the ignored .local/).
        data_dir: args.influxdb_data.clone(),
    });
    LocalOptions {
        influxdb,
        queues: match args.queues {
            Queues::InProcess => QueueMode::InProcess,
            Queues::Moto => QueueMode::Moto,
        },
        template: args.template.clone(),
        stack_name: STACK.into(),
        parameters,
        mqtt: args.mqtt,
        api: args.api,
        iot_data: args.iot_data,
        endpoint,
        visibility_timeout_cap: args.visibility_timeout.map(Duration::from_secs),
        console_sign_in: args
            .console_sign_in_url
            .clone()
            .zip(args.console_client_id.clone())
            .map(|(base_url, client_id)| iotdp::api::console::ConsoleSignIn {
                base_url,
                client_id,
            }),
    }
}

/// A line on stdout that may be gone (`make local | tee log`: Ctrl-C stops `tee` too), so the
/// last lines never panic on a closed pipe.
fn say(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}
