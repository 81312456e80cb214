//! A security-token (session) profile of the OCI config file, as `oci
//! session authenticate` writes it, against the emulator: requests signed
//! with `keyId="ST$<token>"` and the profile's key are accepted, a token the
//! CLI refreshed is picked up from the file, and an expired one is refused
//! before it is sent, saying what to run.

use crate::support::{COMPARTMENT, client_signing_with, start};
use k8s_oci_operator::oci::{HttpOciClient, ListPublicIpsQuery, OciCredentials, OciNetwork};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use std::path::PathBuf;
use std::time::Duration;

/// A session profile's directory: the session key, the token file and a
/// config whose `[dev]` profile names both (no `user`, as the CLI writes it).
struct Profile {
    dir: PathBuf,
    public_key_pem: String,
}

impl Profile {
    fn new(tenancy: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("session-profile-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("session key");
        let private = key.to_pkcs8_pem(LineEnding::LF).expect("pem");
        std::fs::write(dir.join("oci_api_key.pem"), private.as_bytes()).expect("key");
        let public_key_pem = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("public pem");
        let fingerprint = oci_emulator::fingerprint_of_pem(&public_key_pem).expect("fingerprint");
        std::fs::write(
            dir.join("config"),
            format!(
                "[dev]\nfingerprint={fingerprint}\nkey_file=oci_api_key.pem\ntenancy={tenancy}\n\
                 region=us-ashburn-1\nsecurity_token_file=token\n"
            ),
        )
        .expect("config");
        Self {
            dir,
            public_key_pem,
        }
    }

    /// What `oci session authenticate` / `oci session refresh` do: a token
    /// for the session key, written to the profile's token file.
    fn write_token(&self, emulator: &oci_emulator::EmulatorHandle, ttl: Duration) {
        let token = emulator
            .issue_session_token(&self.public_key_pem, ttl)
            .expect("the emulator issues a token for the session key");
        std::fs::write(self.dir.join("token"), token).expect("token");
    }

    fn client(&self, emulator: &oci_emulator::EmulatorHandle) -> HttpOciClient {
        let credentials = OciCredentials::from_config_file(&self.dir.join("config"), "dev")
            .expect("session profile credentials");
        assert!(credentials.is_session_profile());
        assert_eq!(credentials.region(), Some("us-ashburn-1"));
        client_signing_with(emulator, credentials)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn list(client: &HttpOciClient) -> Result<usize, k8s_oci_operator::oci::OciError> {
    client
        .list_public_ips(&ListPublicIpsQuery::region(COMPARTMENT))
        .await
        .map(|ips| ips.len())
}

#[tokio::test]
async fn a_session_profile_signs_with_its_token_and_follows_the_cli_refresh() {
    let env = start().await;
    let profile = Profile::new(env.emulator.tenancy_id());
    profile.write_token(&env.emulator, Duration::from_secs(600));
    let client = profile.client(&env.emulator);
    list(&client).await.expect("signed with the session token");

    // The CLI refreshed the session: the old token no longer works, the
    // file holds the new one, and the next request uses it.
    assert_eq!(env.emulator.revoke_sessions(), 1);
    profile.write_token(&env.emulator, Duration::from_secs(600));
    list(&client)
        .await
        .expect("signed with the refreshed token");
    env.emulator.shutdown().await;
}

#[tokio::test]
async fn a_revoked_token_fails_once_and_is_not_retried_with_itself() {
    let env = start().await;
    let profile = Profile::new(env.emulator.tenancy_id());
    profile.write_token(&env.emulator, Duration::from_secs(600));
    let client = profile.client(&env.emulator);
    list(&client).await.expect("valid token");
    env.emulator.reset_calls();
    env.emulator.revoke_sessions();
    let error = list(&client).await.expect_err("revoked");
    assert_eq!(error.status(), Some(401), "{error}");
    // The file still holds the refused token: one request, no retry.
    assert_eq!(env.emulator.calls().total("ListPublicIps"), 1);
    env.emulator.shutdown().await;
}

#[tokio::test]
async fn an_expired_token_is_refused_before_it_is_sent_saying_what_to_run() {
    let env = start().await;
    let profile = Profile::new(env.emulator.tenancy_id());
    profile.write_token(&env.emulator, Duration::from_secs(600));
    let client = profile.client(&env.emulator);
    list(&client).await.expect("valid token");

    // A token that expires in a second: the session's end.
    profile.write_token(&env.emulator, Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    env.emulator.reset_calls();
    let error = list(&client).await.expect_err("expired").to_string();
    assert!(error.contains("expired at"), "{error}");
    assert!(
        error.contains("oci session authenticate --profile-name dev"),
        "{error}"
    );
    assert_eq!(
        env.emulator.calls().total("ListPublicIps"),
        0,
        "an expired token is not sent"
    );

    // Loading the profile now fails the same way: a clear error at start.
    let error = OciCredentials::from_config_file(&profile.dir.join("config"), "dev")
        .expect_err("expired at start")
        .to_string();
    assert!(error.contains("expired at"), "{error}");
    env.emulator.shutdown().await;
}
