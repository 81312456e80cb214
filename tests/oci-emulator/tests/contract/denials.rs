//! Per-key refusals (`deny` in a key's spec): a refused operation is
//! answered as OCI answers a caller without the IAM permission (404
//! NotAuthorizedOrNotFound, with an opc-request-id), after the signature
//! check, and changes nothing; other operations still work.

use crate::support::*;
use k8s_oci_operator::oci::{
    HttpOciClient, OciCredentials, OciNetwork, PrivateIpFilter, UpdatePublicIpDetails,
};
use oci_emulator::{EmulatorConfig, KeySpec};
use rsa::RsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use std::time::Duration;

const TENANCY: &str = "ocid1.tenancy.oc1..sandbox";
const USER: &str = "ocid1.user.oc1..restricted";

/// A fresh key registered through `EmulatorConfig::keys` with `deny`, and
/// a client signing with it.
async fn restricted(deny: &[&str]) -> (Env, HttpOciClient, String) {
    let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key generation");
    let public_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("pem");
    let spec = KeySpec {
        tenancy_id: Some(TENANCY.into()),
        user_id: Some(USER.into()),
        public_key_pem: Some(public_pem.clone()),
        deny: deny.iter().map(|d| d.to_string()).collect(),
        ..KeySpec::default()
    };
    let mut config = EmulatorConfig::with_seed(sandbox_seed());
    config.keys.push(spec);
    let env = start_with(config).await;
    let fingerprint = oci_emulator::fingerprint_of_pem(&public_pem).expect("fingerprint");
    let private_pem = key.to_pkcs8_pem(LineEnding::LF).expect("pem").to_string();
    let credentials = OciCredentials::from_api_key(TENANCY, USER, &fingerprint, &private_pem, None)
        .expect("credentials");
    let client = HttpOciClient::new(
        credentials,
        &env.emulator.base_url(),
        Duration::from_secs(5),
    )
    .expect("client");
    (env, client, fingerprint)
}

#[tokio::test]
async fn denied_operations_answer_404_not_authorized_and_change_nothing() {
    let (env, client, _) = restricted(&["ListPrivateIps", "UpdatePublicIp"]).await;
    let filter = PrivateIpFilter::AddressInSubnet {
        subnet_id: PODS_SUBNET.into(),
        ip_address: "10.0.65.3".into(),
    };
    let error = client
        .list_private_ips(&filter)
        .await
        .expect_err("ListPrivateIps is denied");
    assert_eq!(error.status(), Some(404), "{error}");
    assert_eq!(error.code(), Some("NotAuthorizedOrNotFound"));
    assert!(error.request_id().is_some(), "opc-request-id on a refusal");

    let before = state_public_ip(&env.emulator, SPECIFIC_IP_ID).expect("seeded IP");
    let error = client
        .update_public_ip(
            SPECIFIC_IP_ID,
            &UpdatePublicIpDetails {
                display_name: Some("renamed".into()),
                ..UpdatePublicIpDetails::default()
            },
            None,
        )
        .await
        .expect_err("UpdatePublicIp is denied");
    assert_eq!(error.status(), Some(404), "{error}");
    assert_eq!(
        state_public_ip(&env.emulator, SPECIFIC_IP_ID),
        Some(before),
        "a refused call changes nothing"
    );

    // What the key may do still works, and the sandbox key is unrestricted.
    client
        .get_subnet(PODS_SUBNET)
        .await
        .expect("GetSubnet allowed");
    client
        .get_public_ip(SPECIFIC_IP_ID)
        .await
        .expect("GetPublicIp allowed");
    client_for(&env.emulator)
        .list_private_ips(&filter)
        .await
        .expect("another key is not restricted");
    assert_eq!(env.emulator.calls().count("ListPrivateIps", "404"), 1);
    assert_eq!(env.emulator.calls().count("UpdatePublicIp", "404"), 1);
}

#[tokio::test]
async fn signature_is_checked_before_refusals() {
    let (env, _, fingerprint) = restricted(&["GetPublicIp"]).await;
    // The restricted keyId, signed with a key that is not its own: 401, not 404.
    let other = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
        .expect("key generation")
        .to_pkcs8_pem(LineEnding::LF)
        .expect("pem")
        .to_string();
    let credentials = OciCredentials::from_api_key(TENANCY, USER, &fingerprint, &other, None)
        .expect("credentials");
    let client = HttpOciClient::new(
        credentials,
        &env.emulator.base_url(),
        Duration::from_secs(5),
    )
    .expect("client");
    let error = client
        .get_public_ip(SPECIFIC_IP_ID)
        .await
        .expect_err("bad signature");
    assert_eq!(error.status(), Some(401), "{error}");
    assert_eq!(env.emulator.calls().count("GetPublicIp", "404"), 0);
}

#[test]
fn unknown_operations_in_deny_are_rejected() {
    let mut keys = oci_emulator::signature::KeyStore::default();
    let pem = std::fs::read_to_string(testdata("oci_api_key_public.pem")).expect("test key");
    let error = keys
        .register(&KeySpec {
            key_id: Some("t/u/f".into()),
            public_key_pem: Some(pem),
            deny: vec!["ListPrivateIP".into()],
            ..KeySpec::default()
        })
        .expect_err("misspelt operation");
    assert!(error.to_string().contains("ListPrivateIP"), "{error}");
}

#[test]
fn seeds_carry_deny_lists() {
    let seed = oci_emulator::Seed::parse(
        "keys:\n  - keyId: t/u/f\n    publicKeyPem: x\n    deny: [ListPrivateIps, UpdatePublicIp]\n",
    )
    .expect("seed parses");
    assert_eq!(seed.keys[0].deny, ["ListPrivateIps", "UpdatePublicIp"]);
}
