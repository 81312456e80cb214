//! Signature verification: what OCI rejects with 401 NotAuthenticated.

use crate::support::*;
use k8s_oci_operator::oci::sign::{SigningKey, sign_request};
use k8s_oci_operator::oci::{
    ApiKey, HttpOciClient, OciCredentials, OciNetwork, SignerImplementation,
};
use oci_emulator::KeySpec;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

const TENANCY: &str = "ocid1.tenancy.oc1..sandbox";
const USER: &str = "ocid1.user.oc1..sandbox";
const FINGERPRINT: &str = "2a:34:c2:f5:f7:23:48:cd:5d:38:f8:ec:75:ba:82:e6";

fn sandbox_key() -> String {
    std::fs::read_to_string(testdata("oci_api_key.pem")).expect("test key")
}

fn fresh_key() -> RsaPrivateKey {
    RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key generation")
}

fn client_with(env: &Env, fingerprint: &str, pem: &str) -> HttpOciClient {
    let credentials =
        OciCredentials::from_api_key(TENANCY, USER, fingerprint, pem, None).expect("credentials");
    client_signing_with(&env.emulator, credentials)
}

fn assert_401(error: k8s_oci_operator::oci::OciError) {
    assert_eq!(error.status(), Some(401), "{error}");
    assert_eq!(error.code(), Some("NotAuthenticated"));
    assert!(error.is_not_authenticated());
}

#[tokio::test]
async fn wrong_or_unknown_keys_are_rejected() {
    let env = start().await;
    let other = fresh_key()
        .to_pkcs8_pem(LineEnding::LF)
        .expect("pem")
        .to_string();
    // Right keyId, wrong private key.
    let error = client_with(&env, FINGERPRINT, &other)
        .get_public_ip(SPECIFIC_IP_ID)
        .await
        .expect_err("wrong key");
    assert_401(error);
    // Unknown keyId.
    let error = client_with(&env, "00:11", &sandbox_key())
        .get_public_ip(SPECIFIC_IP_ID)
        .await
        .expect_err("unknown key");
    assert_401(error);
    assert_eq!(env.emulator.calls().count("GetPublicIp", "401"), 2);
}

#[tokio::test]
async fn pkcs1_keys_and_runtime_registration_work() {
    let env = start().await;
    let key = fresh_key();
    let public_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("pem");
    let key_id = env
        .emulator
        .register_key(&KeySpec {
            tenancy_id: Some(TENANCY.into()),
            user_id: Some("ocid1.user.oc1..second".into()),
            public_key_pem: Some(public_pem.clone()),
            ..KeySpec::default()
        })
        .expect("register");
    let fingerprint = oci_emulator::fingerprint_of_pem(&public_pem).expect("fingerprint");
    assert_eq!(
        key_id,
        format!("{TENANCY}/ocid1.user.oc1..second/{fingerprint}")
    );
    // A PKCS#1 ("BEGIN RSA PRIVATE KEY") key works through the conversion.
    let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).expect("pkcs1").to_string();
    let credentials = OciCredentials::from_api_key(
        TENANCY,
        "ocid1.user.oc1..second",
        &fingerprint,
        &pkcs1,
        None,
    )
    .expect("credentials");
    let client = client_signing_with(&env.emulator, credentials);
    client
        .get_public_ip(SPECIFIC_IP_ID)
        .await
        .expect("signed with the new key");
}

/// A request signed with the sandbox key by the builtin signer, for tampering.
struct Signed {
    url: url::Url,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn sign_post(env: &Env, body: &[u8], date: Option<String>) -> Signed {
    let key = SigningKey::from_pem(&sandbox_key(), None).expect("key");
    let url = url::Url::parse(&format!(
        "{}/20160918/publicIps/actions/getByIpAddress",
        env.emulator.base_url()
    ))
    .expect("url");
    let mut headers = HeaderMap::new();
    if let Some(date) = date {
        headers.insert("x-date", HeaderValue::from_str(&date).expect("date"));
    }
    sign_request(
        &format!("{TENANCY}/{USER}/{FINGERPRINT}"),
        &key,
        &Method::POST,
        &url,
        &mut headers,
        Some(body),
        chrono::Utc::now(),
    )
    .expect("signs");
    Signed {
        url,
        headers,
        body: body.to_vec(),
    }
}

async fn send(signed: Signed) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(signed.url)
        .headers(signed.headers)
        .body(signed.body)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

const BODY: &[u8] = br#"{"ipAddress":"198.51.100.77"}"#;

#[tokio::test]
async fn untampered_request_passes() {
    let env = start().await;
    let (status, body) = send(sign_post(&env, BODY, None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], SPECIFIC_IP_ID);
}

#[tokio::test]
async fn tampered_body_is_rejected() {
    let env = start().await;
    let mut signed = sign_post(&env, BODY, None);
    signed.body = br#"{"ipAddress":"198.51.100.78"}"#.to_vec();
    let (status, body) = send(signed).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("NotAuthenticated"))
    );
}

#[tokio::test]
async fn missing_signed_header_is_rejected() {
    let env = start().await;
    let mut signed = sign_post(&env, BODY, None);
    signed.headers.remove("x-content-sha256");
    let (status, _) = send(signed).await;
    assert_eq!(status, 401);
    let mut signed = sign_post(&env, BODY, None);
    signed.headers.remove("authorization");
    let (status, _) = send(signed).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn body_headers_must_be_signed() {
    let env = start().await;
    let mut signed = sign_post(&env, BODY, None);
    let authorization = signed.headers["authorization"]
        .to_str()
        .expect("ascii")
        .replace(
            "headers=\"date (request-target) host content-length content-type x-content-sha256\"",
            "headers=\"date (request-target) host\"",
        );
    signed.headers.insert(
        "authorization",
        HeaderValue::from_str(&authorization).expect("header"),
    );
    let (status, body) = send(signed).await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("must be signed"),
        "{body}"
    );
}

#[tokio::test]
async fn stale_date_is_rejected() {
    let env = start().await;
    let stale = (chrono::Utc::now() - chrono::Duration::minutes(6))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let (status, body) = send(sign_post(&env, BODY, Some(stale))).await;
    assert_eq!(status, 401);
    assert!(
        body["message"].as_str().unwrap_or("").contains("more than"),
        "{body}"
    );
    // Four minutes off is within OCI's tolerance.
    let skewed = (chrono::Utc::now() + chrono::Duration::minutes(4))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let (status, _) = send(sign_post(&env, BODY, Some(skewed))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unsigned_requests_are_rejected() {
    let env = start().await;
    let url = format!(
        "{}/20160918/publicIps/{SPECIFIC_IP_ID}",
        env.emulator.base_url()
    );
    let response = reqwest::get(url).await.expect("answer");
    assert_eq!(response.status().as_u16(), 401);
    assert!(response.headers().contains_key("opc-request-id"));
}

/// Both signers (the builtin one and, in builds with the feature,
/// oci-rust-sdk's) are accepted by the emulator's verifier for every kind of
/// call: GET, GET with a query, POST and PUT with bodies.
#[tokio::test]
async fn every_signer_passes_the_verifier() {
    for &implementation in SignerImplementation::available() {
        let env = start().await;
        let key = ApiKey {
            tenancy: TENANCY.into(),
            user: USER.into(),
            fingerprint: FINGERPRINT.into(),
            private_key_pem: sandbox_key(),
            passphrase: None,
            region: None,
        };
        let credentials = OciCredentials::api_key_with(key, implementation).expect("credentials");
        let client = client_signing_with(&env.emulator, credentials).with_page_limit(1);
        let ip = client.get_public_ip(SPECIFIC_IP_ID).await.expect("GET");
        let address = ip.ip_address.clone().expect("an address");
        let by_address = client
            .get_public_ip_by_ip_address(&address)
            .await
            .expect("POST");
        assert_eq!(by_address.id, ip.id);
        let listed = client
            .list_public_ips(&k8s_oci_operator::oci::ListPublicIpsQuery::region(
                COMPARTMENT,
            ))
            .await
            .expect("paged GETs with a query");
        assert!(listed.len() > 1, "{implementation:?}: several pages");
        let renamed = client
            .update_public_ip(
                &ip.id,
                &k8s_oci_operator::oci::UpdatePublicIpDetails {
                    display_name: Some(format!("signed by {implementation:?}")),
                    ..k8s_oci_operator::oci::UpdatePublicIpDetails::default()
                },
                None,
            )
            .await
            .expect("PUT");
        assert_eq!(
            renamed.display_name.as_deref(),
            Some(format!("signed by {implementation:?}").as_str())
        );
        assert_eq!(
            env.emulator.calls().count("GetPublicIp", "401"),
            0,
            "{implementation:?}"
        );
    }
}

/// An encrypted PKCS#8 key with its passphrase, from an OCI config file.
#[tokio::test]
async fn encrypted_keys_with_pass_phrase_work() {
    let env = start().await;
    let key = fresh_key();
    let public_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("pem");
    env.emulator
        .register_key(&KeySpec {
            tenancy_id: Some(TENANCY.into()),
            user_id: Some("ocid1.user.oc1..encrypted".into()),
            public_key_pem: Some(public_pem.clone()),
            ..KeySpec::default()
        })
        .expect("register");
    let fingerprint = oci_emulator::fingerprint_of_pem(&public_pem).expect("fingerprint");
    let dir = std::env::temp_dir().join(format!("encrypted-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let encrypted = key
        .to_pkcs8_encrypted_pem(&mut rand::thread_rng(), "correct horse", LineEnding::LF)
        .expect("encrypts");
    std::fs::write(dir.join("key.pem"), encrypted.as_bytes()).expect("write");
    std::fs::write(
        dir.join("config"),
        format!(
            "[DEFAULT]\ntenancy={TENANCY}\nuser=ocid1.user.oc1..encrypted\n\
             fingerprint={fingerprint}\nkey_file=key.pem\npass_phrase=correct horse\n"
        ),
    )
    .expect("write");
    let credentials =
        OciCredentials::from_config_file(&dir.join("config"), "DEFAULT").expect("decrypts");
    let client = client_signing_with(&env.emulator, credentials);
    client
        .get_public_ip(SPECIFIC_IP_ID)
        .await
        .expect("signed with the decrypted key");
    let _ = std::fs::remove_dir_all(&dir);
}
