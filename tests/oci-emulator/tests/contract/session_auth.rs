//! The operator's own session-token credentials (instance principals, OKE
//! workload identity) against the emulated metadata service, federation
//! endpoint and proxymux: the same code that runs on OKE, other URLs.

use crate::support::{COMPARTMENT, client_signing_with, sandbox_seed};
use k8s_oci_operator::oci::{
    AuthEndpoints, HttpOciClient, ListPublicIpsQuery, OciCredentials, OciNetwork,
};
use oci_emulator::{Emulator, EmulatorConfig, EmulatorHandle, IdentityConfig, Timing};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

async fn emulator(identity: IdentityConfig) -> EmulatorHandle {
    let mut config = EmulatorConfig::with_seed(sandbox_seed()).timing(Timing::fast());
    config.identity = identity;
    Emulator::start(config).await.expect("emulator starts")
}

fn instance_endpoints(emulator: &EmulatorHandle) -> AuthEndpoints {
    AuthEndpoints {
        metadata_url: Some(emulator.metadata_url()),
        federation_url: Some(emulator.federation_url()),
        ..AuthEndpoints::default()
    }
}

/// A directory with a ServiceAccount token and the emulator's cluster CA, as
/// kubelet mounts them.
fn service_account_dir(emulator: &EmulatorHandle, token: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sa-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("token"), token).expect("token");
    std::fs::write(dir.join("ca.crt"), emulator.cluster_ca_pem()).expect("ca");
    dir
}

fn workload_endpoints(emulator: &EmulatorHandle, dir: &std::path::Path) -> AuthEndpoints {
    AuthEndpoints {
        proxymux_url: Some(emulator.proxymux_url()),
        service_account_token: Some(dir.join("token")),
        service_account_ca: Some(dir.join("ca.crt")),
        ..AuthEndpoints::default()
    }
}

/// The two session-token modes, built the way the operator builds them.
#[derive(Debug, Clone, Copy)]
enum Mode {
    InstancePrincipal,
    WorkloadIdentity,
}

const MODES: [Mode; 2] = [Mode::InstancePrincipal, Mode::WorkloadIdentity];

async fn credentials(emulator: &EmulatorHandle, mode: Mode) -> (OciCredentials, Option<PathBuf>) {
    match mode {
        Mode::InstancePrincipal => (
            OciCredentials::instance_principal(&instance_endpoints(emulator), None)
                .await
                .expect("instance principal credentials"),
            None,
        ),
        Mode::WorkloadIdentity => {
            let dir = service_account_dir(emulator, "service-account-jwt");
            let credentials = OciCredentials::oke_workload_identity(
                &workload_endpoints(emulator, &dir),
                Some("us-ashburn-1"),
            )
            .await
            .expect("workload identity credentials");
            (credentials, Some(dir))
        }
    }
}

async fn list(client: &HttpOciClient) -> Result<usize, String> {
    client
        .list_public_ips(&ListPublicIpsQuery::region(COMPARTMENT))
        .await
        .map(|ips| ips.len())
        .map_err(|e| e.to_string())
}

fn refused(emulator: &EmulatorHandle, operation: &str) -> u64 {
    emulator.calls().count(operation, "401")
}

#[tokio::test]
async fn instance_principals_sign_core_calls() {
    let emulator = emulator(IdentityConfig::default()).await;
    let credentials = OciCredentials::instance_principal(&instance_endpoints(&emulator), None)
        .await
        .expect("instance principal credentials");
    // Region and realm come from the instance's metadata.
    assert_eq!(credentials.region(), Some("us-ashburn-1"));
    assert_eq!(credentials.realm_domain(), Some("oraclecloud.com"));
    assert_eq!(credentials.key_id(), None, "a session token is no API key");
    let client = client_signing_with(&emulator, credentials);
    list(&client).await.expect("signed with the session token");
    list(&client).await.expect("the same token again");
    assert_eq!(emulator.sessions_issued(), 1);
    assert_eq!(emulator.calls().count("X509Federation", "200"), 1);
    assert_eq!(refused(&emulator, "ListPublicIps"), 0);
}

#[tokio::test]
async fn oke_workload_identity_signs_core_calls() {
    let emulator = emulator(IdentityConfig::default()).await;
    let dir = service_account_dir(&emulator, "service-account-jwt");
    let credentials = OciCredentials::oke_workload_identity(
        &workload_endpoints(&emulator, &dir),
        Some("eu-frankfurt-1"),
    )
    .await
    .expect("workload identity credentials");
    assert_eq!(credentials.region(), Some("eu-frankfurt-1"));
    let client = client_signing_with(&emulator, credentials);
    list(&client)
        .await
        .expect("signed with the resource principal token");
    assert_eq!(emulator.sessions_issued(), 1);
    assert_eq!(
        emulator
            .calls()
            .count("ResourcePrincipalSessionToken", "200"),
        1
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn tokens_expiring_mid_burst_are_renewed_without_a_refused_call() {
    for mode in MODES {
        let emulator = emulator(IdentityConfig {
            session_ttl: Duration::from_secs(4),
            ..IdentityConfig::default()
        })
        .await;
        let (credentials, dir) = credentials(&emulator, mode).await;
        let client = Arc::new(client_signing_with(&emulator, credentials));
        // 10 s of calls, five at a time, across two or more token lifetimes.
        let started = std::time::Instant::now();
        let mut failures = Vec::new();
        let mut calls = 0;
        while started.elapsed() < Duration::from_secs(10) {
            let round: Vec<_> = (0..5)
                .map(|_| {
                    let client = client.clone();
                    tokio::spawn(async move { list(&client).await })
                })
                .collect();
            for call in round {
                calls += 1;
                if let Err(e) = call.await.expect("task") {
                    failures.push(e);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            failures.is_empty(),
            "{mode:?}: {} of {calls} calls failed: {failures:?}",
            failures.len()
        );
        assert!(
            emulator.sessions_issued() >= 3,
            "{mode:?}: tokens of 4 s over 10 s: renewed at half-life, got {} sessions",
            emulator.sessions_issued()
        );
        assert_eq!(
            refused(&emulator, "ListPublicIps"),
            0,
            "{mode:?}: renewal came before expiry: OCI never saw an expired token"
        );
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[tokio::test]
async fn a_revoked_token_is_recovered_by_one_renewal() {
    for mode in MODES {
        let emulator = emulator(IdentityConfig::default()).await;
        let (credentials, dir) = credentials(&emulator, mode).await;
        let client = client_signing_with(&emulator, credentials);
        list(&client).await.expect("first call");
        assert_eq!(emulator.revoke_sessions(), 1);
        list(&client)
            .await
            .expect("the call after the revocation succeeds on its retry");
        assert_eq!(
            refused(&emulator, "ListPublicIps"),
            1,
            "{mode:?}: one 401, then renewed"
        );
        assert_eq!(emulator.sessions_issued(), 2, "{mode:?}");
        list(&client).await.expect("and the new token stays");
        assert_eq!(emulator.sessions_issued(), 2, "{mode:?}");
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[tokio::test]
async fn a_refused_renewal_keeps_a_valid_token_and_a_dead_one_fails_clearly() {
    for mode in MODES {
        let emulator = emulator(IdentityConfig {
            // Renewed from about 5 s, usable to about 9 s (exp is whole seconds).
            session_ttl: Duration::from_secs(10),
            ..IdentityConfig::default()
        })
        .await;
        let (credentials, dir) = credentials(&emulator, mode).await;
        let client = client_signing_with(&emulator, credentials);
        list(&client).await.expect("first call");
        // The issuer goes away past half-life: the current token still works.
        emulator.set_federation_available(false);
        emulator.set_proxymux_available(false);
        tokio::time::sleep(Duration::from_secs(6)).await;
        list(&client)
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: the valid token is kept: {e}"));
        // Past the token's life: a clear error, not a 401 from OCI.
        tokio::time::sleep(Duration::from_millis(4_500)).await;
        let error = list(&client).await.expect_err("no valid token");
        assert!(
            error.contains("could not sign") && error.contains("503"),
            "{mode:?}: {error}"
        );
        assert_eq!(refused(&emulator, "ListPublicIps"), 0, "{mode:?}");
        // Back: the next request renews.
        emulator.set_federation_available(true);
        emulator.set_proxymux_available(true);
        tokio::time::sleep(Duration::from_secs(2)).await;
        list(&client)
            .await
            .expect("renewed once the issuer is back");
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[tokio::test]
async fn a_metadata_service_down_at_start_is_a_clear_error_then_recovers() {
    let emulator = emulator(IdentityConfig::default()).await;
    emulator.set_metadata_available(false);
    let error = OciCredentials::instance_principal(&instance_endpoints(&emulator), None)
        .await
        .expect_err("no metadata service");
    let text = error.to_string();
    assert!(text.contains("metadata service"), "{text}");
    emulator.set_metadata_available(true);
    let credentials = OciCredentials::instance_principal(&instance_endpoints(&emulator), None)
        .await
        .expect("metadata back");
    credentials.warm_up().await.expect("token issued");
}

#[tokio::test]
async fn a_refused_service_account_token_says_so_without_the_token() {
    let emulator = emulator(IdentityConfig {
        service_account_tokens: vec!["the-accepted-token".into()],
        ..IdentityConfig::default()
    })
    .await;
    let dir = service_account_dir(&emulator, "a-stolen-token");
    let credentials = OciCredentials::oke_workload_identity(
        &workload_endpoints(&emulator, &dir),
        Some("us-ashburn-1"),
    )
    .await
    .expect("nothing is exchanged before the first request");
    let error = credentials
        .warm_up()
        .await
        .expect_err("token refused")
        .to_string();
    assert!(
        error.contains("401") && error.contains("ServiceAccount token was refused"),
        "{error}"
    );
    assert!(!error.contains("a-stolen-token"), "{error}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_proxymux_is_trusted_only_with_the_cluster_ca() {
    let emulator = emulator(IdentityConfig::default()).await;
    let dir = service_account_dir(&emulator, "service-account-jwt");
    // Another CA in ca.crt: the TLS handshake must fail.
    let other = emulator_ca_of_another_emulator().await;
    std::fs::write(dir.join("ca.crt"), other).expect("ca");
    let credentials = OciCredentials::oke_workload_identity(
        &workload_endpoints(&emulator, &dir),
        Some("us-ashburn-1"),
    )
    .await
    .expect("credentials");
    let error = credentials
        .warm_up()
        .await
        .expect_err("untrusted certificate")
        .to_string();
    assert!(error.contains("does not answer"), "{error}");
    assert_eq!(emulator.sessions_issued(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

async fn emulator_ca_of_another_emulator() -> String {
    let other = emulator(IdentityConfig::default()).await;
    other.cluster_ca_pem().to_string()
}

#[tokio::test]
async fn credentials_never_show_key_material() {
    let emulator = emulator(IdentityConfig::default()).await;
    let credentials = OciCredentials::instance_principal(&instance_endpoints(&emulator), None)
        .await
        .expect("credentials");
    credentials.warm_up().await.expect("token");
    let shown = format!("{credentials:?}");
    assert!(
        !shown.contains("ST$") && !shown.contains("BEGIN") && !shown.contains("eyJ"),
        "{shown}"
    );
}
