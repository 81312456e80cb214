//! Shared test setup: an emulator with the sandbox seed and a client signed
//! with the sandbox's test key.

use k8s_oci_operator::oci::{HttpOciClient, OciCredentials, OciNetwork, PublicIp, PublicIpState};
use oci_emulator::{Emulator, EmulatorConfig, EmulatorHandle, Seed, Timing, crate_dir};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const COMPARTMENT: &str = "ocid1.compartment.oc1..sandbox";
pub const POOL: &str = "ocid1.publicippool.oc1.sandbox.pool1";
pub const SPECIFIC_IP_ID: &str = "ocid1.publicip.oc1.sandbox.specific";
pub const NODE0_PRIMARY_IP: &str = "ocid1.privateip.oc1.sandbox.node0-primary";
pub const PRIVATE_SUBNET_IP: &str = "ocid1.privateip.oc1.sandbox.private0-primary";
pub const PODS_SUBNET: &str = "ocid1.subnet.oc1.sandbox.pods";

/// The id the sandbox seed gives the pod private IP 10.0.(65+node).host
/// (node i's pod CIDR is 10.0.(65+i).0/24).
pub fn pod_ip(node: u8, host: u8) -> String {
    format!("ocid1.privateip.oc1.us-sandbox-1.10-0-{}-{host}", 65 + node)
}

pub fn testdata(file: &str) -> PathBuf {
    crate_dir().join("testdata").join(file)
}

pub struct Env {
    pub emulator: EmulatorHandle,
    pub client: HttpOciClient,
}

/// Sandbox seed, fast lifecycle (50 ms per transition).
pub async fn start() -> Env {
    start_with(EmulatorConfig::with_seed(sandbox_seed()).timing(Timing::fast())).await
}

pub async fn start_with(config: EmulatorConfig) -> Env {
    let emulator = Emulator::start(config).await.expect("emulator starts");
    let client = client_for(&emulator);
    Env { emulator, client }
}

pub fn sandbox_seed() -> Seed {
    Seed::sandbox().expect("sandbox seed loads")
}

/// A client signing with the sandbox key, configured from testdata/oci-config.
pub fn client_for(emulator: &EmulatorHandle) -> HttpOciClient {
    let credentials =
        OciCredentials::from_config_file(&testdata("oci-config"), "DEFAULT").expect("config");
    client_signing_with(emulator, credentials)
}

/// A client of `emulator` signing with `credentials`.
pub fn client_signing_with(
    emulator: &EmulatorHandle,
    credentials: OciCredentials,
) -> HttpOciClient {
    HttpOciClient::new(credentials, &emulator.base_url(), Duration::from_secs(5)).expect("client")
}

/// Polls GetPublicIp until the IP reaches `state` (5 s at most).
pub async fn wait_for(client: &HttpOciClient, id: &str, state: PublicIpState) -> PublicIp {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ip = client.get_public_ip(id).await.expect("get public IP");
        if ip.lifecycle_state == state {
            return ip;
        }
        assert!(
            Instant::now() < deadline,
            "{id} stayed {:?}, expected {state:?}",
            ip.lifecycle_state
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The public IP with `id` in `GET /_emulator/state`, if present.
pub fn state_public_ip(emulator: &EmulatorHandle, id: &str) -> Option<serde_json::Value> {
    emulator.state()["publicIps"]
        .as_array()
        .and_then(|ips| ips.iter().find(|ip| ip["id"] == id).cloned())
}

/// Number of public IPs in the emulator's state.
pub fn public_ip_count(emulator: &EmulatorHandle) -> usize {
    emulator.state()["publicIps"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0)
}
