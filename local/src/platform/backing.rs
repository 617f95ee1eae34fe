//! What the stack is created in: moto (or an endpoint already running) and, when asked for,
//! a local influxd.

use std::collections::HashMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};

use super::{Endpoint, LocalError, LocalOptions};
use crate::influxd::InfluxProcess;
use crate::moto::MotoProcess;
use crate::provision::LOCAL_REGION;

/// moto (or the given endpoint) and, when asked for, influxd.
pub(super) struct BackingServices {
    pub(super) endpoint: String,
    pub(super) moto: Option<MotoProcess>,
    pub(super) influxd: Option<InfluxProcess>,
    /// The template's parameters, with the store switched to InfluxDB when influxd runs.
    pub(super) parameters: HashMap<String, String>,
}

pub(super) fn start_backing_services(
    options: &LocalOptions,
) -> Result<BackingServices, LocalError> {
    let (moto, endpoint) = match &options.endpoint {
        Endpoint::StartMoto { binary, port } => {
            let moto = MotoProcess::start(binary, *port)?;
            let endpoint = moto.endpoint.clone();
            (Some(moto), endpoint)
        }
        Endpoint::Existing(url) => (None, url.clone()),
    };
    let mut parameters = options.parameters.clone();
    let influxd = match &options.influxdb {
        Some(local) => {
            let process = InfluxProcess::start(&local.binary, &local.data_dir)?;
            process.create_database("iotdp")?;
            parameters.insert("TimeSeriesStore".into(), "influxdb".into());
            parameters.insert("InfluxDbUrl".into(), process.url.clone());
            parameters.insert("InfluxDbDatabase".into(), "iotdp".into());
            Some(process)
        }
        None => None,
    };
    Ok(BackingServices {
        endpoint,
        moto,
        influxd,
        parameters,
    })
}

/// An SDK configuration for the local endpoint with dummy credentials.
pub async fn local_sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(LOCAL_REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "iotdp-local",
        ))
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::options::LocalInfluxDb;
    use crate::platform::options::tests::options;
    use aws_sdk_sqs::config::ProvideCredentials as _;

    #[tokio::test]
    async fn the_sdk_goes_to_the_local_endpoint_in_the_local_region_with_dummy_credentials() {
        let sdk = local_sdk_config("http://127.0.0.1:4566").await;
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:4566"));
        assert_eq!(
            sdk.region().map(ToString::to_string).as_deref(),
            Some(LOCAL_REGION)
        );
        let credentials = sdk
            .credentials_provider()
            .expect("a credentials provider")
            .provide_credentials()
            .await
            .unwrap();
        assert_eq!(credentials.access_key_id(), "local");
        assert_eq!(credentials.secret_access_key(), "local");
    }

    #[test]
    fn an_existing_endpoint_is_used_as_it_is_and_starts_nothing() {
        let services = start_backing_services(&options()).unwrap();
        assert_eq!(services.endpoint, "http://127.0.0.1:9");
        assert!(services.moto.is_none() && services.influxd.is_none());
        assert_eq!(services.parameters, options().parameters);
    }

    #[test]
    fn a_missing_moto_or_influxd_says_to_install_it() {
        let missing = std::path::PathBuf::from("/nonexistent/moto_server");
        let mut with_moto = options();
        with_moto.endpoint = Endpoint::StartMoto {
            binary: missing.clone(),
            port: 0,
        };
        let Err(e) = start_backing_services(&with_moto) else {
            panic!("moto started from a missing binary");
        };
        assert!(matches!(e, LocalError::Moto(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "local platform: moto_server not found at /nonexistent/moto_server: run `make tools`"
        );
        let mut with_influxd = options();
        with_influxd.influxdb = Some(LocalInfluxDb {
            binary: "/nonexistent/influxd".into(),
            data_dir: std::env::temp_dir(),
        });
        let Err(e) = start_backing_services(&with_influxd) else {
            panic!("influxd started from a missing binary");
        };
        assert!(matches!(e, LocalError::Influxd(_)), "{e:?}");
        assert!(e.to_string().ends_with("run `make tools`"), "{e}");
    }
}
