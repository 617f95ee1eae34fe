//! `iotdp devices …` as an operator runs it, against moto's server provisioned from
//! template.yaml (registry table, device policy).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use aws_sdk_iot::types::CertificateStatus;
use iotdp::devices::ports::DeviceRegistry;
use iotdp::devices::record::DeviceStatus;
use iotdp::wiring::device_registry;
use iotdp_integration_tests::{MotoServer, REGION, provision_template};

/// The `iotdp devices` binary against a moto server provisioned from template.yaml (the
/// server stops when this is dropped).
struct Cli {
    moto: MotoServer,
    sdk: aws_config::SdkConfig,
    table: String,
    policy: String,
}

impl Cli {
    async fn start() -> Self {
        let moto = MotoServer::start();
        let (sdk, stack) = provision_template(&moto.endpoint).await;
        Self {
            table: stack.stack.physical["DeviceRegistryTable"]
                .reference
                .clone(),
            policy: stack.policies[0].clone(),
            moto,
            sdk,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_iotdp"))
            .arg("devices")
            .args(args)
            .env("IOTDP_REGISTRY_TABLE", &self.table)
            .env("IOTDP_DEVICE_POLICY", &self.policy)
            .env("AWS_ENDPOINT_URL", &self.moto.endpoint)
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .output()
            .expect("run iotdp")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "iotdp devices {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

async fn certificate_status(iot: &aws_sdk_iot::Client, certificate_id: &str) -> CertificateStatus {
    iot.describe_certificate()
        .certificate_id(certificate_id)
        .send()
        .await
        .unwrap()
        .certificate_description()
        .unwrap()
        .status()
        .unwrap()
        .clone()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("iotdp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_provisioned_suspended_resumed_and_decommissioned() {
    let cli = Cli::start().await;
    let sdk = cli.sdk.clone();
    let iot = aws_sdk_iot::Client::new(&sdk);
    let registry = device_registry(&sdk, &cli.table);
    let out = scratch("create");

    let created = cli.ok(&[
        "create",
        "battery-7",
        "--type",
        "battery-box",
        "--path",
        "farm-3/shed-1",
        "--heartbeat",
        "3600",
        "--tag",
        "owner=ops",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(created.contains("created battery-7"), "{created}");

    // The thing, its active certificate with the device policy, and the registry row.
    iot.describe_thing()
        .thing_name("battery-7")
        .send()
        .await
        .unwrap();
    let principals = iot
        .list_thing_principals()
        .thing_name("battery-7")
        .send()
        .await
        .unwrap()
        .principals()
        .to_vec();
    assert_eq!(principals.len(), 1);
    let certificate_id = principals[0].rsplit('/').next().unwrap().to_owned();
    let certificate = iot
        .describe_certificate()
        .certificate_id(&certificate_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        certificate.certificate_description().unwrap().status(),
        Some(&CertificateStatus::Active)
    );
    let policies = iot
        .list_attached_policies()
        .target(&principals[0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        policies.policies()[0].policy_name(),
        Some(cli.policy.as_str())
    );
    let row = registry
        .get_many(&["battery-7"])
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(row.device_type, "battery-box");
    assert_eq!(row.path.to_string(), "farm-3/shed-1");
    assert_eq!(row.heartbeat_seconds, Some(3600));
    assert_eq!(row.tags["owner"], "ops");

    // Everything the device needs to connect, the key readable by its owner only.
    assert_eq!(mode(&out.join("private.pem.key")), 0o600);
    let pem = std::fs::read_to_string(out.join("certificate.pem.crt")).unwrap();
    assert_eq!(
        pem,
        certificate
            .certificate_description()
            .unwrap()
            .certificate_pem()
            .unwrap()
    );
    assert!(
        std::fs::read_to_string(out.join("AmazonRootCA1.pem"))
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let connection: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("device.json")).unwrap()).unwrap();
    assert_eq!(connection["client_id"], "battery-7");
    assert_eq!(connection["telemetry_topic"], "dt/battery-7/telemetry");
    assert!(connection["endpoint"].as_str().unwrap().contains("iot"));

    // A second create of the same id is refused and changes nothing.
    let again = cli.run(&[
        "create",
        "battery-7",
        "--type",
        "battery-box",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already registered"));

    cli.ok(&["suspend", "battery-7"]);
    assert!(
        cli.ok(&["list", "--status", "suspended"])
            .contains("battery-7")
    );
    assert!(
        !cli.ok(&["list", "--status", "active"])
            .contains("battery-7")
    );
    cli.ok(&["resume", "battery-7"]);
    let shown: serde_json::Value = serde_json::from_str(&cli.ok(&["show", "battery-7"])).unwrap();
    assert_eq!(shown["status"], "active");

    let retired = cli.ok(&["decommission", "battery-7"]);
    assert!(retired.contains("1 certificate(s)"), "{retired}");
    assert!(
        iot.describe_thing()
            .thing_name("battery-7")
            .send()
            .await
            .is_err(),
        "thing deleted"
    );
    assert_eq!(
        certificate_status(&iot, &certificate_id).await,
        CertificateStatus::Inactive
    );
    let row = registry
        .get_many(&["battery-7"])
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(row.status, DeviceStatus::Decommissioned, "the row is kept");
    let resume = cli.run(&["resume", "battery-7"]);
    assert!(
        !resume.status.success(),
        "a decommissioned id stays retired"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_a_fleet_twice_changes_nothing_the_second_time() {
    let cli = Cli::start().await;
    let sdk = cli.sdk.clone();
    let iot = aws_sdk_iot::Client::new(&sdk);
    let out = scratch("import");
    std::fs::create_dir_all(&out).unwrap();
    let csv = out.join("fleet.csv");
    std::fs::write(
        &csv,
        "device_id,device_type,path,gateway_id,heartbeat_seconds,tags\n\
         wall-gw-1,gateway,wall-1,,3600,\n\
         spot-1,plant-sensor,wall-1/zone-a/s1/spot-1,wall-gw-1,21600,plant=fern\n\
         spot-2,plant-sensor,wall-1/zone-a/s1/spot-2,wall-gw-1,21600,plant=moss\n",
    )
    .unwrap();
    let certificates = || async {
        iot.list_certificates()
            .send()
            .await
            .unwrap()
            .certificates()
            .len()
    };

    let first = cli.ok(&[
        "import",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        first.contains("created 3, updated 0, unchanged 0"),
        "{first}"
    );
    assert_eq!(certificates().await, 3);
    assert_eq!(mode(&out.join("spot-2").join("private.pem.key")), 0o600);

    let second = cli.ok(&[
        "import",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        second.contains("created 0, updated 0, unchanged 3"),
        "{second}"
    );
    assert_eq!(certificates().await, 3, "no new certificates");

    // A changed definition is updated in place, still without new certificates.
    std::fs::write(
        &csv,
        std::fs::read_to_string(&csv)
            .unwrap()
            .replace("plant=moss", "plant=ivy"),
    )
    .unwrap();
    let third = cli.ok(&[
        "import",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        third.contains("created 0, updated 1, unchanged 2"),
        "{third}"
    );
    assert_eq!(certificates().await, 3);
    let registry = device_registry(&sdk, &cli.table);
    let spot = registry.get_many(&["spot-2"]).await.unwrap().pop().unwrap();
    assert_eq!(spot.tags["plant"], "ivy");
    assert_eq!(spot.gateway_id.as_deref(), Some("wall-gw-1"));

    // Drill-down listing by hierarchy prefix.
    let listed = cli.ok(&["list", "--path", "wall-1/zone-a"]);
    let ids: Vec<&str> = listed
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ids, ["spot-1", "spot-2"], "{listed}");

    // A bad row is named by file and line, before anything is created.
    std::fs::write(&csv, "device_id,device_type\nok-1,sensor\nbad id,sensor\n").unwrap();
    let bad = cli.run(&[
        "import",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("line 3"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(registry.get_many(&["ok-1"]).await.unwrap().is_empty());
    std::fs::remove_dir_all(&out).unwrap();
}
