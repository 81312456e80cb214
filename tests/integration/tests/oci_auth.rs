//! The operator binary authenticating with session tokens, as on OKE: OKE
//! workload identity and instance principals, against the emulator's
//! proxymux, metadata service and federation endpoint (the URLs are the only
//! difference from production). Tokens expire and are revoked while it
//! works; the metadata service is down when it starts; nothing secret
//! reaches its logs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::probes::{answers, free_port, text_of};
use integration_tests::{OperatorProcess, OperatorSandbox, rip_yaml};
use k8s_oci_operator::api::crd::State;

/// What must never be in a log: session tokens (`ST$...`, JWTs start with
/// `eyJ`), private keys, the ServiceAccount token.
fn assert_no_secrets(log: &Path, service_account_token: Option<&str>) -> Result<()> {
    let text = std::fs::read_to_string(log)?;
    ensure!(
        !text.is_empty(),
        "the operator logged nothing: the check proves nothing"
    );
    for secret in ["ST$", "eyJ", "PRIVATE KEY", "BEGIN"] {
        ensure!(!text.contains(secret), "the log holds {secret:?}:\n{text}");
    }
    if let Some(token) = service_account_token {
        ensure!(
            !text.contains(token),
            "the log holds the ServiceAccount token"
        );
    }
    Ok(())
}

fn temp_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oke_workload_identity_end_to_end_through_renewals_and_a_revocation() -> Result<()> {
    let mut sb = OperatorSandbox::start("oke-wi").await?;
    sb.stop_operator();
    // Tokens of 6 s: the operator renews several while it works.
    sb.emulator.set_session_ttl(Duration::from_secs(6));
    let dir = temp_dir("oke-wi")?;
    let sa_token = "projected-service-account-token-of-the-operator";
    std::fs::write(dir.join("token"), sa_token)?;
    std::fs::write(dir.join("ca.crt"), sb.emulator.cluster_ca_pem())?;
    let log = dir.join("operator.log");
    let port = free_port()?;
    let (token_path, ca_path) = (dir.join("token"), dir.join("ca.crt"));
    let proxymux = sb.emulator.proxymux_url();
    let health = format!("127.0.0.1:{port}");
    let mut operator = OperatorProcess::start_logging_to(
        &sb,
        "oke-wi",
        &[
            ("OCI_AUTH", "oke-workload-identity"),
            ("OCI_OKE_PROXYMUX_URL", &proxymux),
            (
                "OCI_KUBERNETES_SERVICE_ACCOUNT_TOKEN_PATH",
                path(&token_path)?,
            ),
            ("OCI_KUBERNETES_SERVICE_ACCOUNT_CERT_PATH", path(&ca_path)?),
            ("OCI_REGION", "us-ashburn-1"),
            ("HEALTH_ADDR", &health),
            (
                "RUST_LOG",
                "debug,hyper=info,kube=info,tower=info,h2=info,rustls=info",
            ),
        ],
        &log,
    )
    .await?;
    answers(port, "/readyz", 200, Duration::from_secs(60)).await?;

    sb.running_pod("web-0", None).await?;
    sb.create(&rip_yaml("web", Some("web-0"))).await?;
    sb.wait_state("web", State::Assigned, true).await?;
    // Past a renewal.
    tokio::time::sleep(Duration::from_secs(4)).await;
    sb.create(&rip_yaml("spare", None)).await?;
    sb.wait_state("spare", State::Allocated, true).await?;
    let renewed = sb.emulator.sessions_issued();
    ensure!(
        renewed >= 2,
        "the token was never renewed ({renewed} issued)"
    );

    // Revoked: the next call gets 401, the operator renews once and goes on.
    ensure!(sb.emulator.revoke_sessions() >= 1, "nothing to revoke");
    let before = sb.emulator.sessions_issued();
    sb.create(&rip_yaml("after-revocation", None)).await?;
    sb.wait_state("after-revocation", State::Allocated, true)
        .await
        .context("the operator did not recover from the revocation")?;
    ensure!(
        sb.emulator.sessions_issued() > before,
        "no new session after the revocation"
    );

    sb.finish().await?;
    operator.stop(Duration::from_secs(20)).await?;
    assert_no_secrets(&log, Some(sa_token))?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_principals_with_the_metadata_service_down_at_start() -> Result<()> {
    let mut sb = OperatorSandbox::start("ip-down").await?;
    sb.stop_operator();
    sb.emulator.set_metadata_available(false);
    let dir = temp_dir("ip-down")?;
    let log = dir.join("operator.log");
    let port = free_port()?;
    let metadata = sb.emulator.metadata_url();
    let federation = sb.emulator.federation_url();
    let health = format!("127.0.0.1:{port}");
    let mut operator = OperatorProcess::start_logging_to(
        &sb,
        "ip-down",
        &[
            ("OCI_AUTH", "instance-principal"),
            ("OCI_METADATA_BASE_URL", &metadata),
            ("OCI_SDK_AUTH_CLIENT_REGION_URL", &federation),
            ("HEALTH_ADDR", &health),
            (
                "RUST_LOG",
                "debug,hyper=info,kube=info,tower=info,h2=info,rustls=info",
            ),
        ],
        &log,
    )
    .await?;
    // Alive and unready, saying why; not a crash loop.
    answers(port, "/healthz", 200, Duration::from_secs(30)).await?;
    answers(port, "/readyz", 503, Duration::from_secs(10)).await?;
    let why = text_of(port, "/readyz").await?;
    ensure!(
        why.contains("OCI credentials") && why.contains("metadata service"),
        "/readyz: {why}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(operator.alive(), "the operator exited instead of waiting");

    sb.emulator.set_metadata_available(true);
    answers(port, "/readyz", 200, Duration::from_secs(45))
        .await
        .context("not ready after the metadata service came back")?;
    sb.running_pod("web-0", None).await?;
    sb.create(&rip_yaml("web", Some("web-0"))).await?;
    sb.wait_state("web", State::Assigned, true).await?;
    ensure!(
        sb.emulator.calls().count("X509Federation", "200") >= 1,
        "no federation call"
    );
    sb.finish().await?;
    operator.stop(Duration::from_secs(20)).await?;
    assert_no_secrets(&log, None)?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

fn path(p: &Path) -> Result<&str> {
    p.to_str().context("temp paths are UTF-8")
}
