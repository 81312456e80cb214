//! Security-token (session) profiles of the OCI config file, for local
//! development: `oci session authenticate` writes a profile with
//! `security_token_file` (a user session token, which `oci session refresh`
//! rewrites) and `key_file` (the session's private key). Requests are signed
//! with `keyId="ST$<token>"` and that key.
//!
//! The token file is read again for every request, and the token parsed
//! only when the text changed: the CLI refreshes it behind our back, and a
//! file of a few kilobytes costs nothing next to a request. A token past its
//! `exp` is refused here with what to run, rather than sent for OCI's 401.

use super::auth::{RequestSigner, sign_now};
use super::session::{TOKEN_KEY_ID_PREFIX, signed_key_id, token_expiry};
use super::sign::SigningKey;
use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::HeaderMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use url::Url;

/// A token as read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    /// The file's text, trimmed: the token itself.
    text: String,
    /// Its `exp` claim, seconds since 1970.
    expires_at: u64,
}

/// Signs with the session token of a config profile (see the module docs).
pub(crate) struct SecurityTokenSigner {
    token_file: PathBuf,
    /// The profile's name, for what to run when the token expired.
    profile: String,
    key: SigningKey,
    last: RwLock<Option<Arc<Token>>>,
}

impl SecurityTokenSigner {
    /// Reads the token once now, so that a missing, malformed or expired
    /// token is a configuration error at start.
    pub(crate) fn new(token_file: PathBuf, profile: &str, key: SigningKey) -> Result<Self, String> {
        let signer = Self {
            token_file,
            profile: profile.to_string(),
            key,
            last: RwLock::new(None),
        };
        let text =
            std::fs::read_to_string(&signer.token_file).map_err(|e| signer.unreadable(&e))?;
        signer.usable(&text, SystemTime::now())?;
        Ok(signer)
    }

    fn unreadable(&self, error: &std::io::Error) -> String {
        format!(
            "cannot read security_token_file {} of profile [{}]: {error}",
            self.token_file.display(),
            self.profile
        )
    }

    /// The token of `text` if it is valid at `now`; parsed only when the
    /// text differs from the last one.
    fn usable(&self, text: &str, now: SystemTime) -> Result<Arc<Token>, String> {
        let text = text.trim();
        let last = self.last.read().unwrap_or_else(|p| p.into_inner()).clone();
        let token = match last {
            Some(token) if token.text == text => token,
            _ => {
                let expires_at = token_expiry(text).map_err(|e| {
                    format!(
                        "security_token_file {} of profile [{}]: {e}: run `oci session authenticate` again",
                        self.token_file.display(),
                        self.profile
                    )
                })?;
                let token = Arc::new(Token {
                    text: text.to_string(),
                    expires_at,
                });
                *self.last.write().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
                tracing::info!(
                    file = %self.token_file.display(),
                    expires = %rfc3339(expires_at),
                    "read the OCI session token"
                );
                token
            }
        };
        let now_s = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if now_s >= token.expires_at {
            return Err(expired(
                &self.token_file,
                &self.profile,
                token.expires_at,
                now_s,
            ));
        }
        Ok(token)
    }

    async fn current(&self) -> Result<Arc<Token>, String> {
        let text = tokio::fs::read_to_string(&self.token_file)
            .await
            .map_err(|e| self.unreadable(&e))?;
        self.usable(&text, SystemTime::now())
    }
}

/// What to say of a token that expired at `expires_at` (seconds), at `now`.
fn expired(file: &Path, profile: &str, expires_at: u64, now: u64) -> String {
    let minutes = (now - expires_at.min(now)) / 60;
    format!(
        "the session token of profile [{profile}] ({}) expired at {} ({minutes} min ago): run `oci session authenticate --profile-name {profile}` (`oci session refresh --profile {profile}` renews a token only while it is valid)",
        file.display(),
        rfc3339(expires_at)
    )
}

fn rfc3339(unix_seconds: u64) -> String {
    i64::try_from(unix_seconds)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(|| unix_seconds.to_string(), |t| t.to_rfc3339())
}

#[async_trait]
impl RequestSigner for SecurityTokenSigner {
    async fn sign(
        &self,
        method: &Method,
        url: &Url,
        headers: &mut HeaderMap,
        body: Option<&[u8]>,
    ) -> Result<(), String> {
        let token = self.current().await?;
        let key_id = format!("{TOKEN_KEY_ID_PREFIX}{}", token.text);
        sign_now(&key_id, &self.key, method, url, headers, body)
    }

    /// A refused token may have been refreshed since it was read: retry
    /// once if the file now holds another.
    fn unauthorized(&self, signed: &HeaderMap) -> bool {
        let Some(refused) = signed_key_id(signed) else {
            return false;
        };
        match std::fs::read_to_string(&self.token_file) {
            Ok(text) => format!("{TOKEN_KEY_ID_PREFIX}{}", text.trim()) != refused,
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;

    const KEY: &str = include_str!("../../../tests/oci-emulator/testdata/oci_api_key.pem");

    fn jwt(exp: u64, subject: &str) -> String {
        let part = |v: serde_json::Value| BASE64URL.encode(v.to_string());
        format!(
            "{}.{}.c2ln",
            part(serde_json::json!({"alg": "RS256"})),
            part(serde_json::json!({"exp": exp, "sub": subject}))
        )
    }

    fn unix_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("security-token-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            Self(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn signer(file: &Path) -> Result<SecurityTokenSigner, String> {
        SecurityTokenSigner::new(
            file.to_path_buf(),
            "dev",
            SigningKey::from_pem(KEY, None).expect("key"),
        )
    }

    async fn signed_key_id_of(signer: &SecurityTokenSigner) -> Result<String, String> {
        let url = Url::parse("https://iaas.eu-frankfurt-1.oraclecloud.com/20160918/publicIps")
            .expect("url");
        let mut headers = HeaderMap::new();
        signer.sign(&Method::GET, &url, &mut headers, None).await?;
        signed_key_id(&headers).ok_or_else(|| "no keyId".to_string())
    }

    #[tokio::test]
    async fn signs_with_the_token_and_follows_the_file() {
        let dir = Dir::new("follows");
        let file = dir.0.join("token");
        let first = jwt(unix_now() + 3600, "a");
        std::fs::write(&file, format!("{first}\n")).expect("write");
        let signer = signer(&file).expect("valid token");
        assert_eq!(signed_key_id_of(&signer).await, Ok(format!("ST${first}")));

        // `oci session refresh` rewrote it.
        let second = jwt(unix_now() + 7200, "b");
        std::fs::write(&file, &second).expect("write");
        assert_eq!(signed_key_id_of(&signer).await, Ok(format!("ST${second}")));
    }

    #[tokio::test]
    async fn an_expired_token_says_so_and_what_to_run() {
        let dir = Dir::new("expired");
        let file = dir.0.join("token");
        std::fs::write(&file, jwt(unix_now() - 600, "a")).expect("write");
        let error = signer(&file).err().expect("refused at start");
        assert!(error.contains("expired at"), "{error}");
        assert!(error.contains("10 min ago"), "{error}");
        assert!(
            error.contains("oci session authenticate --profile-name dev"),
            "{error}"
        );

        // Valid at start, expired later: refused before OCI sees it.
        std::fs::write(&file, jwt(unix_now() + 3600, "a")).expect("write");
        let signer = signer(&file).expect("valid");
        std::fs::write(&file, jwt(unix_now() - 1, "a")).expect("write");
        let error = signed_key_id_of(&signer).await.expect_err("expired");
        assert!(error.contains("expired at"), "{error}");
    }

    #[test]
    fn expiry_message_counts_minutes_and_names_the_file() {
        let text = expired(
            Path::new("/home/u/.oci/sessions/dev/token"),
            "dev",
            1_700_000_000,
            1_700_000_000 + 125 * 60,
        );
        assert!(
            text.starts_with("the session token of profile [dev] (/home/u/.oci/sessions/dev/token) expired at 2023-11-14T22:13:20+00:00 (125 min ago)"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_or_malformed_token_file_is_named() {
        let dir = Dir::new("malformed");
        let missing = signer(&dir.0.join("nowhere")).err().expect("missing");
        assert!(
            missing.starts_with("cannot read security_token_file"),
            "{missing}"
        );
        assert!(missing.contains("[dev]"), "{missing}");
        let file = dir.0.join("token");
        std::fs::write(&file, "not a token").expect("write");
        let malformed = signer(&file).err().expect("malformed");
        assert!(malformed.contains("not a JWT"), "{malformed}");
    }

    #[tokio::test]
    async fn a_401_is_retried_only_when_the_file_holds_another_token() {
        let dir = Dir::new("refused");
        let file = dir.0.join("token");
        std::fs::write(&file, jwt(unix_now() + 3600, "a")).expect("write");
        let signer = signer(&file).expect("valid");
        let url = Url::parse("https://iaas.eu-frankfurt-1.oraclecloud.com/20160918/vnics/x")
            .expect("url");
        let mut headers = HeaderMap::new();
        signer
            .sign(&Method::GET, &url, &mut headers, None)
            .await
            .expect("signs");
        assert!(
            !signer.unauthorized(&headers),
            "the same token again would fail again"
        );
        std::fs::write(&file, jwt(unix_now() + 3600, "b")).expect("write");
        assert!(signer.unauthorized(&headers));
    }
}
