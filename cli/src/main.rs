//! `iotdp`: the operator CLI. Works against real AWS or any endpoint set with
//! `AWS_ENDPOINT_URL` (moto, LocalStack). Every deployment name (tables, policy, store) comes
//! from its flag, its environment variable, or the outputs of the stack named by `--stack`.

mod alerts;
mod cost;
mod deployment;
mod devices;
mod files;
mod lake;
mod local;
mod output;
mod progress;
mod readings;
mod rollups;
mod rules;
mod simulate;
mod stream;
mod types;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::deployment::{Deployment, DeploymentError};
use crate::files::FileError;
use crate::output::OutputFormat;

/// The environment every AWS command reads, besides each flag's own variable.
const ENVIRONMENT: &str = "\
Environment:
  IOTDP_STACK        the stack whose outputs supply every name (as --stack)
  IOTDP_OUTPUT       table or json (as --output)
  AWS_REGION, AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
                     region and credentials, as the AWS CLI reads them
  AWS_ENDPOINT_URL   another endpoint for every AWS call (moto, LocalStack, `make local`)

A name is taken from its flag, else its environment variable (shown in each command's
--help), else the stack output named there.";

#[derive(Parser)]
#[command(
    name = "iotdp",
    version,
    about = "Operate an iotdp deployment: devices, readings, alert rules and alerts",
    after_help = ENVIRONMENT
)]
struct Cli {
    /// The deployed stack (CloudFormation) whose outputs supply every table, policy and store
    /// name; flags and their environment variables still win
    #[arg(long, global = true, env = "IOTDP_STACK")]
    stack: Option<String>,
    /// table for people; json for programs (JSON Lines for lists, the API's field names)
    #[arg(long, global = true, env = "IOTDP_OUTPUT", value_enum, default_value_t)]
    output: OutputFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform on this machine (moto, MQTT on 127.0.0.1:1883, topic rules,
    /// functions), load demo rules, simulate a fleet and show a live view until Ctrl-C
    Local(local::LocalArgs),
    /// Publish a simulated fleet over MQTT (locally, or to AWS IoT Core with --cert)
    Simulate {
        #[command(flatten)]
        fleet: simulate::FleetArgs,
        #[command(flatten)]
        target: simulate::Target,
    },
    /// The monthly bill of the reference loads (or --devices/--interval yours): iotdp, with
    /// Basic Ingest, and the baseline (IoT Core's Timestream action and IoT Events)
    Cost(cost::CostArgs),
    /// Devices: provisioning (things, certificates, registry), suspension, decommissioning
    Devices(devices::DevicesArgs),
    /// One device's metric over a time range, raw or aggregated into bins, from the deployed store
    Readings(readings::ReadingsArgs),
    /// Rollups: the job's coverage, and rebuilding a range from raw readings
    Rollups(rollups::RollupsArgs),
    /// The lake: importing history from Timestream or InfluxDB
    Lake(lake::LakeArgs),
    /// The Kinesis transport: replay the batches ingest gave up on (named in the failure queue)
    Stream(stream::StreamArgs),
    /// Device types: their metrics and derived metrics (power_w = voltage * current)
    Types(types::TypesArgs),
    /// Alert rules
    Rules(rules::RulesArgs),
    /// Alerts: the state of each (device, rule) pair
    Alerts(alerts::AlertsArgs),
    /// Print a shell completion script: iotdp completions bash > /etc/bash_completion.d/iotdp
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What a command ended with when it could not finish, printed after `error: `: each command
/// family's own error, whose message says what to fix.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Local(#[from] local::LocalRunError),
    #[error(transparent)]
    Cost(#[from] cost::CostError),
    #[error(transparent)]
    Devices(#[from] devices::DevicesError),
    #[error(transparent)]
    Readings(#[from] readings::ReadingsError),
    #[error(transparent)]
    Rollups(#[from] rollups::RollupsError),
    #[error(transparent)]
    Lake(#[from] lake::LakeError),
    #[error(transparent)]
    Stream(#[from] stream::StreamError),
    #[error(transparent)]
    Types(#[from] types::TypesError),
    #[error(transparent)]
    Rules(#[from] rules::RulesError),
    #[error(transparent)]
    Alerts(#[from] alerts::AlertsError),
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let output = cli.output;
    match cli.command {
        Command::Local(args) => Ok(local::run(args).await?),
        Command::Cost(args) => Ok(cost::run(args, output).await?),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "iotdp", &mut std::io::stdout());
            Ok(())
        }
        Command::Simulate { fleet, mut target } => {
            // Basic Ingest by default when the stack names its telemetry rule.
            if target.basic_ingest_rule.is_none() && cli.stack.is_some() {
                target.basic_ingest_rule = Deployment::load(cli.stack)
                    .await
                    .optional(None, &deployment::TELEMETRY_RULE)
                    .await?;
            }
            Ok(simulate::run_with_progress(fleet, target).await?)
        }
        Command::Devices(args) => {
            Ok(devices::run(args, &Deployment::load(cli.stack).await, output).await?)
        }
        Command::Readings(args) => {
            Ok(readings::run(args, &Deployment::load(cli.stack).await, output).await?)
        }
        Command::Rollups(args) => {
            Ok(rollups::run(args, &Deployment::load(cli.stack).await, output).await?)
        }
        Command::Lake(args) => {
            Ok(lake::run(args, &Deployment::load(cli.stack).await, output).await?)
        }
        Command::Stream(args) => {
            Ok(stream::run(args, &Deployment::load(cli.stack).await, output).await?)
        }
        Command::Types(args) => Ok(types::run(args, cli.stack, output).await?),
        Command::Rules(args) => Ok(rules::run(args, cli.stack, output).await?),
        Command::Alerts(args) => {
            Ok(alerts::run(args, &Deployment::load(cli.stack).await, output).await?)
        }
    }
}
