//! The auth services over raw HTTP: instance metadata v2, X.509 federation,
//! the proxymux over TLS, session tokens signing Core Services calls, and the
//! switches that take each service down.

use crate::support::*;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
use k8s_oci_operator::oci::sign::{SigningKey, sign_request};
use oci_emulator::{EmulatorConfig, IdentityConfig, PrincipalType, Timing};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use rsa::RsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use url::Url;

const METADATA_PATHS: [&str; 6] = [
    "identity/cert.pem",
    "identity/key.pem",
    "identity/intermediate.pem",
    "instance/region",
    "instance/regionInfo",
    "instance/id",
];

/// One session key for the whole test binary: RSA generation is slow in a
/// debug build and nothing here needs distinct keys.
fn session_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key generation"))
}

fn session_signing_key() -> SigningKey {
    let der = session_key().to_pkcs8_der().expect("pkcs8");
    SigningKey::from_pkcs8_der(der.as_bytes()).expect("signing key")
}

fn session_public_pem() -> String {
    session_key()
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("pem")
}

fn session_public_der_base64() -> String {
    let der = session_key()
        .to_public_key()
        .to_public_key_der()
        .expect("der");
    BASE64.encode(der.as_bytes())
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    let (_, der) = rsa::pkcs8::der::pem::decode_vec(pem.trim().as_bytes()).expect("PEM");
    der
}

/// SHA-1 of the DER as OCI writes fingerprints, computed here independently
/// of the emulator.
fn sha1_fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn metadata_get(env: &Env, path: &str, authorization: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("{}/{path}", env.emulator.metadata_url()));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("metadata answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// What an instance reads from the metadata service before federating.
struct InstanceIdentity {
    cert_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    key: SigningKey,
}

async fn instance_identity(env: &Env) -> InstanceIdentity {
    let read = |path: &'static str| metadata_get(env, path, Some("Bearer Oracle"));
    let (_, cert) = read("identity/cert.pem").await;
    let (_, intermediate) = read("identity/intermediate.pem").await;
    let (_, key) = read("identity/key.pem").await;
    InstanceIdentity {
        cert_der: pem_to_der(&cert),
        intermediate_der: pem_to_der(&intermediate),
        key: SigningKey::from_pem(&key, None).expect("key.pem is a private key"),
    }
}

fn federation_body(certificate: &[u8], intermediate: &[u8]) -> Vec<u8> {
    json!({
        "certificate": BASE64.encode(certificate),
        "publicKey": session_public_der_base64(),
        "intermediateCertificates": [BASE64.encode(intermediate)],
        "purpose": "DEFAULT",
    })
    .to_string()
    .into_bytes()
}

fn federation_url(env: &Env) -> Url {
    Url::parse(&format!("{}/v1/x509", env.emulator.federation_url())).expect("url")
}

fn federation_key_id(env: &Env, certificate: &[u8]) -> String {
    format!(
        "{}/fed-x509/{}",
        env.emulator.tenancy_id(),
        sha1_fingerprint(certificate)
    )
}

/// Signs like the operator's API-key signer (host included).
fn sign_with_host(url: &Url, key_id: &str, key: &SigningKey, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    sign_request(
        key_id,
        key,
        &Method::POST,
        url,
        &mut headers,
        Some(body),
        chrono::Utc::now(),
    )
    .expect("signs");
    headers
}

/// Signs as OCI's SDKs sign federation requests: `host` left out.
fn sign_without_host(url: &Url, key_id: &str, key: &SigningKey, body: &[u8]) -> HeaderMap {
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let digest = BASE64.encode(Sha256::digest(body));
    let lines = [
        format!("date: {date}"),
        format!("(request-target): post {}", url.path()),
        format!("content-length: {}", body.len()),
        "content-type: application/json".to_string(),
        format!("x-content-sha256: {digest}"),
    ];
    let signature = BASE64.encode(key.sign(lines.join("\n").as_bytes()).expect("signs"));
    let authorization = format!(
        r#"Signature version="1",keyId="{key_id}",algorithm="rsa-sha256",headers="date (request-target) content-length content-type x-content-sha256",signature="{signature}""#
    );
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("date", date),
        ("content-type", "application/json".to_string()),
        ("x-content-sha256", digest),
        ("authorization", authorization),
    ] {
        headers.insert(name, HeaderValue::from_str(&value).expect("header"));
    }
    headers
}

async fn post(url: Url, headers: HeaderMap, body: Vec<u8>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// A correctly signed federation request; the session token on success.
async fn federate(env: &Env) -> (u16, Value) {
    let identity = instance_identity(env).await;
    let url = federation_url(env);
    let body = federation_body(&identity.cert_der, &identity.intermediate_der);
    let key_id = federation_key_id(env, &identity.cert_der);
    let headers = sign_without_host(&url, &key_id, &identity.key, &body);
    post(url, headers, body).await
}

async fn federated_token(env: &Env) -> String {
    let (status, answer) = federate(env).await;
    assert_eq!(status, 200, "{answer}");
    answer["token"].as_str().expect("token").to_string()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("three parts");
    serde_json::from_slice(&BASE64URL.decode(payload).expect("base64url")).expect("json")
}

/// GetPublicIp of the sandbox's specific IP, signed with the session key
/// under `keyId="ST$<token>"`.
async fn get_public_ip_with_token(env: &Env, token: &str) -> (u16, Value) {
    let url = Url::parse(&format!(
        "{}/20160918/publicIps/{SPECIFIC_IP_ID}",
        env.emulator.base_url()
    ))
    .expect("url");
    let mut headers = HeaderMap::new();
    sign_request(
        &format!("ST${token}"),
        &session_signing_key(),
        &Method::GET,
        &url,
        &mut headers,
        None,
        chrono::Utc::now(),
    )
    .expect("signs");
    let response = reqwest::Client::new()
        .get(url)
        .headers(headers)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

fn assert_refused(answer: (u16, Value), reason: &str) {
    let (status, body) = answer;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "NotAuthenticated", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(reason), "{message:?} lacks {reason:?}");
}

/// A client of the proxymux that trusts only `ca_pem`.
fn proxymux_client(ca_pem: &str) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

async fn proxymux_post(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    body: String,
) -> (u16, String) {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("proxymux answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn pod_key_body() -> String {
    json!({ "podKey": session_public_pem() }).to_string()
}

/// The proxymux's answer, as clients read it: a JSON string of base64 of
/// `{"token": "ST$<token>"}`; the token without its prefix.
fn proxymux_token(answer: &str) -> String {
    let encoded: String = serde_json::from_str(answer).expect("a JSON string");
    let document: Value =
        serde_json::from_slice(&BASE64.decode(encoded).expect("base64")).expect("json");
    let token = document["token"].as_str().expect("token");
    token.strip_prefix("ST$").expect("ST$ prefix").to_string()
}

#[tokio::test]
async fn metadata_serves_the_instance_identity_only_with_bearer_oracle() {
    let env = start().await;
    assert!(env.emulator.metadata_url().ends_with("/opc/v2"));
    for path in METADATA_PATHS {
        let (status, _) = metadata_get(&env, path, None).await;
        assert_eq!(status, 401, "{path} without Authorization");
    }
    let (status, body) = metadata_get(&env, "instance/id", Some("Bearer Other")).await;
    assert_eq!(status, 401);
    assert!(body.contains("Bearer Oracle"), "{body}");

    let read = |path: &'static str| metadata_get(&env, path, Some("Bearer Oracle"));
    let (status, cert) = read("identity/cert.pem").await;
    assert_eq!(status, 200);
    let cert_der = pem_to_der(&cert);
    let tenancy = format!("opc-tenant:{}", env.emulator.tenancy_id());
    assert!(
        contains(&cert_der, tenancy.as_bytes()),
        "subject names the tenancy"
    );
    assert!(contains(
        &cert_der,
        b"opc-instance:ocid1.instance.oc1.iad.emulator"
    ));
    let (_, key) = read("identity/key.pem").await;
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    assert!(SigningKey::from_pem(&key, None).is_ok());
    let (_, intermediate) = read("identity/intermediate.pem").await;
    assert_ne!(pem_to_der(&intermediate), cert_der);
    assert_eq!(read("instance/region").await, (200, "us-ashburn-1".into()));
    assert_eq!(
        read("instance/id").await,
        (200, "ocid1.instance.oc1.iad.emulator".into())
    );
    let (status, info) = read("instance/regionInfo").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&info).expect("json"),
        json!({
            "realmKey": "oc1",
            "realmDomainComponent": "oraclecloud.com",
            "regionKey": "IAD",
            "regionIdentifier": "us-ashburn-1",
        })
    );
    assert_eq!(read("instance/nothing").await.0, 404);

    let calls = env.emulator.calls();
    assert_eq!(calls.count("InstanceMetadata", "401"), 7);
    assert_eq!(calls.count("InstanceMetadata", "200"), 6);
    assert_eq!(calls.count("InstanceMetadata", "404"), 1);
}

#[tokio::test]
async fn federation_token_signs_core_services_calls() {
    let env = start().await;
    let identity = instance_identity(&env).await;
    let url = federation_url(&env);
    let body = federation_body(&identity.cert_der, &identity.intermediate_der);
    let key_id = federation_key_id(&env, &identity.cert_der);
    // The operator's own signer signs host too; that is accepted as well.
    let headers = sign_with_host(&url, &key_id, &identity.key, &body);
    let (status, answer) = post(url, headers, body).await;
    assert_eq!(status, 200, "{answer}");
    let token = answer["token"].as_str().expect("token").to_string();

    let claims = claims(&token);
    assert_eq!(claims["ptype"], "instance");
    assert_eq!(claims["tenant"], env.emulator.tenancy_id());
    assert_eq!(claims["sub"], "ocid1.instance.oc1.iad.emulator");
    let lifetime = claims["exp"].as_u64().zip(claims["iat"].as_u64());
    assert_eq!(lifetime.map(|(exp, iat)| exp - iat), Some(20 * 60));

    let (status, ip) = get_public_ip_with_token(&env, &token).await;
    assert_eq!((status, ip["id"].as_str()), (200, Some(SPECIFIC_IP_ID)));
    assert_eq!(env.emulator.sessions_issued(), 1);
    assert_eq!(env.emulator.sessions_issued_for(PrincipalType::Instance), 1);
    assert_eq!(env.emulator.sessions_issued_for(PrincipalType::Resource), 0);
    assert_eq!(env.emulator.calls().count("X509Federation", "200"), 1);
    assert_eq!(env.emulator.calls().count("GetPublicIp", "200"), 1);
}

#[tokio::test]
async fn federation_signed_as_the_sdks_sign_it_without_host() {
    let env = start().await;
    let token = federated_token(&env).await;
    let (status, _) = get_public_ip_with_token(&env, &token).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn federation_refuses_wrong_key_ids_foreign_certificates_and_tampering() {
    let env = start().await;
    let identity = instance_identity(&env).await;
    let url = federation_url(&env);
    let body = federation_body(&identity.cert_der, &identity.intermediate_der);
    let key_id = federation_key_id(&env, &identity.cert_der);

    // The fingerprint of another certificate.
    let wrong = federation_key_id(&env, &identity.intermediate_der);
    let headers = sign_without_host(&url, &wrong, &identity.key, &body);
    assert_refused(
        post(url.clone(), headers, body.clone()).await,
        "fingerprint",
    );

    // Another tenancy.
    let other_tenancy = format!(
        "ocid1.tenancy.oc1..other/fed-x509/{}",
        sha1_fingerprint(&identity.cert_der)
    );
    let headers = sign_without_host(&url, &other_tenancy, &identity.key, &body);
    assert_refused(post(url.clone(), headers, body.clone()).await, "tenancy");

    // Not the fed-x509 form at all.
    let api_style = format!("{}/ocid1.user.oc1..u/aa:bb", env.emulator.tenancy_id());
    let headers = sign_without_host(&url, &api_style, &identity.key, &body);
    assert_refused(post(url.clone(), headers, body.clone()).await, "fed-x509");

    // A certificate this emulator did not issue, keyId and signature right.
    let foreign = rcgen::generate_simple_self_signed(vec!["foreign".to_string()])
        .expect("certificate")
        .cert
        .der()
        .to_vec();
    let foreign_body = federation_body(&foreign, &identity.intermediate_der);
    let headers = sign_without_host(&url, &key_id, &identity.key, &foreign_body);
    assert_refused(
        post(url.clone(), headers, foreign_body).await,
        "not the instance certificate",
    );

    // An intermediate this emulator did not issue.
    let wrong_chain = federation_body(&identity.cert_der, &foreign);
    let headers = sign_without_host(&url, &key_id, &identity.key, &wrong_chain);
    assert_refused(
        post(url.clone(), headers, wrong_chain).await,
        "intermediateCertificates[0]",
    );

    // Signed by another key (the session key) under the right keyId.
    let headers = sign_without_host(&url, &key_id, &session_signing_key(), &body);
    assert_refused(
        post(url.clone(), headers, body.clone()).await,
        "signature does not match",
    );

    // The body changed after signing.
    let headers = sign_without_host(&url, &key_id, &identity.key, &body);
    let tampered = String::from_utf8(body.clone())
        .expect("utf-8")
        .replace("DEFAULT", "TAMPERED")
        .into_bytes();
    assert_refused(
        post(url.clone(), headers, tampered).await,
        "x-content-sha256",
    );

    // Unsigned.
    assert_refused(
        post(url.clone(), HeaderMap::new(), body.clone()).await,
        "Authorization",
    );

    assert_eq!(env.emulator.sessions_issued(), 0);
    assert_eq!(env.emulator.calls().count("X509Federation", "401"), 8);
    // The same request, untampered and well signed, passes.
    let headers = sign_without_host(&url, &key_id, &identity.key, &body);
    assert_eq!(post(url, headers, body).await.0, 200);
}

#[tokio::test]
async fn expired_revoked_and_unknown_session_tokens_are_refused() {
    let env = start().await;
    env.emulator.set_session_ttl(Duration::from_secs(1));
    let short = federated_token(&env).await;
    let claims = claims(&short);
    let lifetime = claims["exp"].as_u64().zip(claims["iat"].as_u64());
    assert_eq!(lifetime.map(|(exp, iat)| exp - iat), Some(1));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_refused(
        get_public_ip_with_token(&env, &short).await,
        "session token expired",
    );

    env.emulator.set_session_ttl(Duration::from_secs(600));
    let token = federated_token(&env).await;
    assert_eq!(get_public_ip_with_token(&env, &token).await.0, 200);
    assert_eq!(env.emulator.revoke_sessions(), 2);
    assert_refused(
        get_public_ip_with_token(&env, &token).await,
        "session token revoked",
    );
    // Tokens issued after the revocation work.
    let fresh = federated_token(&env).await;
    assert_eq!(get_public_ip_with_token(&env, &fresh).await.0, 200);

    assert_refused(
        get_public_ip_with_token(&env, "a.b.c").await,
        "unknown session token",
    );
    assert_eq!(env.emulator.calls().count("GetPublicIp", "401"), 3);
    assert_eq!(env.emulator.sessions_issued(), 3);
}

#[tokio::test]
async fn proxymux_issues_resource_principal_tokens_over_verified_tls() {
    let env = start().await;
    let url = env.emulator.proxymux_url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert!(url.ends_with("/resourcePrincipalSessionTokens"), "{url}");
    let client = proxymux_client(env.emulator.cluster_ca_pem());
    let (status, answer) = proxymux_post(&client, &url, Some("any-sa-token"), pod_key_body()).await;
    assert_eq!(status, 200, "{answer}");
    let token = proxymux_token(&answer);
    let claims = claims(&token);
    assert_eq!(claims["ptype"], "resource");
    assert_eq!(claims["res_tenant"], env.emulator.tenancy_id());

    let (status, ip) = get_public_ip_with_token(&env, &token).await;
    assert_eq!((status, ip["id"].as_str()), (200, Some(SPECIFIC_IP_ID)));
    assert_eq!(env.emulator.sessions_issued_for(PrincipalType::Resource), 1);
    assert_eq!(
        env.emulator
            .calls()
            .count("ResourcePrincipalSessionToken", "200"),
        1
    );

    // A client that does not trust the cluster CA cannot connect: the
    // certificate really is verified.
    let untrusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .expect("client");
    let error = untrusting
        .post(&url)
        .bearer_auth("any-sa-token")
        .body(pod_key_body())
        .send()
        .await
        .expect_err("unknown CA");
    assert!(error.is_connect() || error.is_request(), "{error}");
    // And plain HTTP gets no answer from the TLS listener.
    let plain = url.replacen("https://", "http://", 1);
    assert!(reqwest::Client::new().post(plain).send().await.is_err());
}

#[tokio::test]
async fn proxymux_refuses_unaccepted_bearer_tokens_and_bad_keys() {
    let mut config = EmulatorConfig::with_seed(sandbox_seed()).timing(Timing::fast());
    config.identity = IdentityConfig {
        service_account_tokens: vec!["good-token".into()],
        ..IdentityConfig::default()
    };
    let env = start_with(config).await;
    let url = env.emulator.proxymux_url();
    let client = proxymux_client(env.emulator.cluster_ca_pem());

    let (status, body) = proxymux_post(&client, &url, None, pod_key_body()).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = proxymux_post(&client, &url, Some("bad-token"), pod_key_body()).await;
    assert_eq!(status, 401, "{body}");
    let bad_key = json!({"podKey": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"});
    let (status, body) =
        proxymux_post(&client, &url, Some("good-token"), bad_key.to_string()).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = proxymux_post(&client, &url, Some("good-token"), "{}".into()).await;
    assert_eq!(status, 400);
    assert_eq!(env.emulator.sessions_issued(), 0);

    let (status, answer) = proxymux_post(&client, &url, Some("good-token"), pod_key_body()).await;
    assert_eq!(status, 200, "{answer}");
    assert!(!proxymux_token(&answer).is_empty());
    let calls = env.emulator.calls();
    assert_eq!(calls.count("ResourcePrincipalSessionToken", "401"), 2);
    assert_eq!(calls.count("ResourcePrincipalSessionToken", "400"), 2);
    assert_eq!(calls.count("ResourcePrincipalSessionToken", "200"), 1);
}

#[tokio::test]
async fn switches_make_each_service_unavailable() {
    let env = start().await;
    let client = proxymux_client(env.emulator.cluster_ca_pem());
    let proxymux = env.emulator.proxymux_url();

    env.emulator.set_metadata_available(false);
    assert_eq!(
        metadata_get(&env, "identity/cert.pem", Some("Bearer Oracle"))
            .await
            .0,
        503
    );
    env.emulator.set_metadata_available(true);
    // Federation reads the identity first, so it comes back before its switch.
    let identity = instance_identity(&env).await;

    env.emulator.set_federation_available(false);
    let url = federation_url(&env);
    let body = federation_body(&identity.cert_der, &identity.intermediate_der);
    let key_id = federation_key_id(&env, &identity.cert_der);
    let headers = sign_without_host(&url, &key_id, &identity.key, &body);
    let (status, answer) = post(url, headers, body).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (503, Some("ServiceUnavailable"))
    );
    env.emulator.set_federation_available(true);
    assert_eq!(federate(&env).await.0, 200);

    env.emulator.set_proxymux_available(false);
    let (status, _) = proxymux_post(&client, &proxymux, Some("t"), pod_key_body()).await;
    assert_eq!(status, 503);
    env.emulator.set_proxymux_available(true);
    let (status, _) = proxymux_post(&client, &proxymux, Some("t"), pod_key_body()).await;
    assert_eq!(status, 200);

    let calls = env.emulator.calls();
    assert_eq!(calls.count("InstanceMetadata", "503"), 1);
    assert_eq!(calls.count("X509Federation", "503"), 1);
    assert_eq!(calls.count("ResourcePrincipalSessionToken", "503"), 1);
    assert_eq!(env.emulator.sessions_issued(), 2);
}

async fn admin(method: Method, env: &Env, path: &str, body: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .request(
            method,
            format!("{}/_emulator{path}", env.emulator.base_url()),
        )
        .body(body.to_string())
        .send()
        .await
        .expect("admin answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).expect("json")
}

#[tokio::test]
async fn admin_api_steers_the_auth_services() {
    let env = start().await;
    let (status, text) = admin(Method::GET, &env, "/identity", "").await;
    assert_eq!(status, 200);
    let status_doc = json_of(&text);
    assert_eq!(status_doc["metadataUrl"], env.emulator.metadata_url());
    assert_eq!(status_doc["federationUrl"], env.emulator.federation_url());
    assert_eq!(status_doc["proxymuxUrl"], env.emulator.proxymux_url());
    assert_eq!(status_doc["tenancyId"], env.emulator.tenancy_id());
    assert_eq!(status_doc["sessionTtlSeconds"], 1200);
    assert_eq!(status_doc["sessionsIssued"]["total"], 0);
    assert_eq!(status_doc["metadataAvailable"], true);

    let (status, text) = admin(
        Method::PUT,
        &env,
        "/identity",
        r#"{"metadataAvailable": false, "proxymuxAvailable": false, "sessionTtlSeconds": 5}"#,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let updated = json_of(&text);
    assert_eq!(
        (
            &updated["metadataAvailable"],
            &updated["federationAvailable"],
            &updated["proxymuxAvailable"],
            &updated["sessionTtlSeconds"]
        ),
        (&json!(false), &json!(true), &json!(false), &json!(5))
    );
    let read = metadata_get(&env, "instance/id", Some("Bearer Oracle")).await;
    assert_eq!(read.0, 503);
    // YAML works as for the other admin bodies.
    let (status, _) = admin(
        Method::PUT,
        &env,
        "/identity",
        "metadataAvailable: true\nproxymuxAvailable: true\n",
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = admin(Method::PUT, &env, "/identity", r#"{"nonsense": 1}"#).await;
    assert_eq!(status, 400);

    let (status, ca) = admin(Method::GET, &env, "/identity/cluster-ca.pem", "").await;
    assert_eq!((status, ca.as_str()), (200, env.emulator.cluster_ca_pem()));

    let client = proxymux_client(&ca);
    let (status, answer) = proxymux_post(
        &client,
        &env.emulator.proxymux_url(),
        Some("t"),
        pod_key_body(),
    )
    .await;
    assert_eq!(status, 200);
    let token = proxymux_token(&answer);
    let lifetime = claims(&token)["exp"]
        .as_u64()
        .zip(claims(&token)["iat"].as_u64());
    assert_eq!(lifetime.map(|(exp, iat)| exp - iat), Some(5));
    let issued = json_of(&admin(Method::GET, &env, "/identity", "").await.1);
    assert_eq!(
        issued["sessionsIssued"],
        json!({"total": 1, "instance": 0, "resource": 1})
    );

    let (status, text) = admin(Method::POST, &env, "/sessions/revoke", "").await;
    assert_eq!((status, json_of(&text)), (200, json!({"revoked": 1})));
    assert_refused(
        get_public_ip_with_token(&env, &token).await,
        "session token revoked",
    );
}

/// Stops the standalone emulator however the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_writes_the_cluster_ca_and_prints_the_proxymux_url() {
    let ca_path = std::env::temp_dir().join(format!(
        "oci-emulator-cluster-ca-{}.pem",
        uuid::Uuid::new_v4()
    ));
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_oci-emulator"))
            .args(["--listen", "127.0.0.1:0", "--service-account-token", "sa"])
            .arg("--cluster-ca-out")
            .arg(&ca_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let lines = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut lines = Vec::new();
        for _ in 0..2 {
            let mut line = String::new();
            reader.read_line(&mut line).map(|_| lines.push(line))?;
        }
        std::io::Result::Ok(lines)
    })
    .await
    .expect("join")
    .expect("two lines");
    let ca = std::fs::read_to_string(&ca_path);
    let _ = std::fs::remove_file(&ca_path);
    assert!(
        lines[0].starts_with("oci-emulator listening on http://127.0.0.1:"),
        "{lines:?}"
    );
    let url = lines[1]
        .trim()
        .strip_prefix("oci-emulator proxymux on ")
        .expect("proxymux line")
        .to_string();
    let client = proxymux_client(&ca.expect("CA file written"));
    let refused = proxymux_post(&client, &url, Some("other"), pod_key_body()).await;
    let accepted = proxymux_post(&client, &url, Some("sa"), pod_key_body()).await;
    assert_eq!((refused.0, accepted.0), (401, 200));
    drop(child);
}
