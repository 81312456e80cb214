//! The admin API over HTTP, and the standalone binary.

use crate::support::*;
use k8s_oci_operator::oci::{CreatePublicIpDetails, OciNetwork};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

async fn admin_get(base: &str, path: &str) -> Value {
    let response = reqwest::get(format!("{base}/_emulator{path}"))
        .await
        .expect("admin answer");
    assert_eq!(response.status().as_u16(), 200, "{path}");
    response.json().await.expect("json")
}

async fn admin_send(method: reqwest::Method, base: &str, path: &str, body: String) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{base}/_emulator{path}"))
        .body(body)
        .send()
        .await
        .expect("admin answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn state_has_every_collection_in_oci_form() {
    let env = start().await;
    let state = admin_get(&env.emulator.base_url(), "/state").await;
    for key in [
        "publicIps",
        "privateIps",
        "vnics",
        "subnets",
        "publicIpPools",
        "instances",
        "vnicAttachments",
        "vcns",
    ] {
        assert!(state[key].is_array(), "{key}");
    }
    assert_eq!(state["instances"].as_array().map(Vec::len), Some(4));
    assert_eq!(state["subnets"].as_array().map(Vec::len), Some(3));
    // 3 nodes x (node IP + pod VNIC IP + 256 pod IPs) + 4 more pod IPs on
    // node0 (10.0.68.0/30) + 1 private instance.
    assert_eq!(state["privateIps"].as_array().map(Vec::len), Some(779));
    let specific = state["publicIps"]
        .as_array()
        .and_then(|ips| ips.iter().find(|ip| ip["ipAddress"] == "198.51.100.77"))
        .expect("specific address");
    assert_eq!(specific["lifecycleState"], "AVAILABLE");
    assert_eq!(specific["lifetime"], "RESERVED");
    assert!(
        specific.get("etag").is_none(),
        "bookkeeping stays out of the JSON"
    );
}

#[tokio::test]
async fn calls_are_counted_and_reset() {
    let env = start().await;
    let base = env.emulator.base_url();
    env.client.get_public_ip(SPECIFIC_IP_ID).await.expect("get");
    let _ = env.client.get_public_ip("ocid1.publicip.oc1..nope").await;
    let calls = admin_get(&base, "/calls").await;
    assert_eq!(calls, json!({"GetPublicIp": {"200": 1, "404": 1}}));
    let (status, _) = admin_send(reqwest::Method::DELETE, &base, "/calls", String::new()).await;
    assert_eq!(status, 200);
    assert_eq!(admin_get(&base, "/calls").await, json!({}));
}

#[tokio::test]
async fn faults_timing_keys_and_seed_through_http() {
    let env = start().await;
    let base = env.emulator.base_url();

    let (status, _) = admin_send(
        reqwest::Method::PUT,
        &base,
        "/faults",
        json!({"operations": {"GetSubnet": {"error503Probability": 1.0}}}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let error = env.client.get_subnet(PODS_SUBNET).await.expect_err("503");
    assert_eq!(error.status(), Some(503));
    assert_eq!(
        admin_get(&base, "/faults").await["operations"]["GetSubnet"]["error503Probability"],
        1.0
    );

    let (status, timing) = admin_send(
        reqwest::Method::PUT,
        &base,
        "/timing",
        "provisioningMs: 7\n".to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(timing["provisioningMs"], 7);

    let public_pem = std::fs::read_to_string(testdata("oci_api_key_public.pem")).expect("pem");
    let (status, key) = admin_send(
        reqwest::Method::POST,
        &base,
        "/keys",
        json!({"keyId": "t/u/f", "publicKeyPem": public_pem}).to_string(),
    )
    .await;
    assert_eq!((status, key["keyId"].as_str()), (200, Some("t/u/f")));
    let (status, _) = admin_send(reqwest::Method::POST, &base, "/keys", "{}".to_string()).await;
    assert_eq!(status, 400);

    // Replace the world with a tiny one (YAML body).
    let seed =
        "compartments: [ocid1.compartment.oc1..sandbox]\noraclePublicRanges: [192.0.2.0/30]\n";
    let (status, _) = admin_send(reqwest::Method::POST, &base, "/seed", seed.to_string()).await;
    assert_eq!(status, 200);
    let state = admin_get(&base, "/state").await;
    assert_eq!(state["publicIps"], json!([]));
    let details = CreatePublicIpDetails::reserved(COMPARTMENT);
    let a = env.client.create_public_ip(&details, "a").await.expect("a");
    let b = env.client.create_public_ip(&details, "b").await.expect("b");
    assert_eq!(
        (a.ip_address.as_deref(), b.ip_address.as_deref()),
        (Some("192.0.2.1"), Some("192.0.2.2"))
    );
    let (status, error) = admin_send(
        reqwest::Method::POST,
        &base,
        "/seed",
        "nonsense: [".to_string(),
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("CannotParseRequest"))
    );
}

#[tokio::test]
async fn binary_serves_the_sandbox_seed() {
    let seed = oci_emulator::crate_dir().join("seeds").join("sandbox.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_oci-emulator"))
        .args(["--listen", "127.0.0.1:0", "--seed"])
        .arg(&seed)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("join")
    .expect("a line");
    let base = line
        .trim()
        .strip_prefix("oci-emulator listening on ")
        .expect("listening line")
        .to_string();
    let credentials =
        k8s_oci_operator::oci::OciCredentials::from_config_file(&testdata("oci-config"), "DEFAULT")
            .expect("config");
    let client = k8s_oci_operator::oci::HttpOciClient::new(
        credentials,
        &base,
        std::time::Duration::from_secs(5),
    )
    .expect("client");
    let ip = client.get_public_ip_by_ip_address("198.51.100.77").await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ip.expect("served").id, SPECIFIC_IP_ID);
}
