//! OKE workload identity: the pod's ServiceAccount token, exchanged at the
//! cluster's proxymux for a resource-principal session token.
//!
//! On enhanced OKE clusters every pod can reach the proxymux at
//! `https://$KUBERNETES_SERVICE_HOST:12250/resourcePrincipalSessionTokens`.
//! It takes `{"podKey": "<session public key, PEM>"}` with the ServiceAccount
//! token as bearer, verifies the token with the API server, and answers with
//! base64 of `{"token": "ST$<JWT>"}` (sometimes itself a JSON string). Its TLS
//! certificate is verified against the cluster CA the ServiceAccount mounts,
//! never skipped. The ServiceAccount token is read again at each renewal:
//! kubelet rotates projected tokens.

use super::session::{SessionKey, TokenIssuer, with_causes};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where kubelet mounts the ServiceAccount token and the cluster CA.
pub const DEFAULT_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
pub const DEFAULT_CA_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// The proxymux's port on the API server's service address.
const PROXYMUX_PORT: u16 = 12250;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The proxymux URL from `KUBERNETES_SERVICE_HOST`, which kubelet sets in
/// every pod.
pub fn default_proxymux_url() -> Result<String, String> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| {
        "KUBERNETES_SERVICE_HOST is not set: OKE workload identity works only in a pod".to_string()
    })?;
    Ok(proxymux_url(&host))
}

fn proxymux_url(host: &str) -> String {
    // An IPv6 service address needs brackets in a URL.
    if host.contains(':') && !host.starts_with('[') {
        format!("https://[{host}]:{PROXYMUX_PORT}/resourcePrincipalSessionTokens")
    } else {
        format!("https://{host}:{PROXYMUX_PORT}/resourcePrincipalSessionTokens")
    }
}

/// Issues session tokens for the pod's ServiceAccount.
pub(crate) struct ProxymuxIssuer {
    http: reqwest::Client,
    url: String,
    token_path: PathBuf,
}

impl ProxymuxIssuer {
    /// A client of the proxymux at `url` trusting only the CA in `ca_path`.
    pub(crate) fn new(url: &str, token_path: &Path, ca_path: &Path) -> Result<Self, String> {
        let ca = std::fs::read(ca_path).map_err(|e| {
            format!(
                "cannot read the cluster CA {}: {e} (is the ServiceAccount token mounted?)",
                ca_path.display()
            )
        })?;
        let ca = reqwest::Certificate::from_pem(&ca).map_err(|e| {
            format!(
                "the cluster CA {} is not a PEM certificate: {e}",
                ca_path.display()
            )
        })?;
        let http = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the proxymux client: {e}"))?;
        // Read once now so a missing token is reported at start.
        read_token(token_path)?;
        Ok(Self {
            http,
            url: url.to_string(),
            token_path: token_path.to_path_buf(),
        })
    }
}

#[async_trait]
impl TokenIssuer for ProxymuxIssuer {
    async fn issue(&self, session: &SessionKey) -> Result<String, String> {
        let token = read_token(&self.token_path)?;
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(token)
            .json(&serde_json::json!({ "podKey": session.public_key_pem() }))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "the OKE proxymux does not answer at {}: {} (workload identity needs an \
                     enhanced OKE cluster)",
                    self.url,
                    with_causes(&e)
                )
            })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            let hint = if status.as_u16() == 401 || status.as_u16() == 403 {
                " (the ServiceAccount token was refused)"
            } else {
                ""
            };
            return Err(format!(
                "the OKE proxymux answered {status}{hint}: {}",
                text.chars().take(300).collect::<String>()
            ));
        }
        token_from_answer(&text)
    }
}

fn read_token(path: &Path) -> Result<String, String> {
    let token = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the ServiceAccount token {}: {e}",
            path.display()
        )
    })?;
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(format!(
            "the ServiceAccount token {} is empty",
            path.display()
        ));
    }
    Ok(token)
}

/// The JWT from the proxymux's answer: base64 of `{"token": "ST$<JWT>"}`,
/// possibly wrapped in a JSON string.
fn token_from_answer(text: &str) -> Result<String, String> {
    let text = text.trim();
    let encoded = if text.starts_with('"') {
        serde_json::from_str::<String>(text)
            .map_err(|e| format!("the proxymux answer is a broken JSON string: {e}"))?
    } else {
        text.to_string()
    };
    let decoded = BASE64
        .decode(encoded.trim())
        .map_err(|_| "the proxymux answer is not base64".to_string())?;
    #[derive(serde::Deserialize)]
    struct Answer {
        token: String,
    }
    let answer: Answer = serde_json::from_slice(&decoded)
        .map_err(|_| "the proxymux answer has no token".to_string())?;
    // The token carries a 3-character prefix (`ST$`); the keyId adds it back.
    answer
        .token
        .get(3..)
        .filter(|jwt| !jwt.is_empty())
        .map(str::to_string)
        .ok_or_else(|| "the proxymux's token is empty".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_in_both_forms_give_the_jwt() {
        let inner = BASE64.encode(r#"{"token":"ST$aaa.bbb.ccc"}"#);
        assert_eq!(token_from_answer(&inner).unwrap(), "aaa.bbb.ccc");
        assert_eq!(
            token_from_answer(&format!("\"{inner}\"\n")).unwrap(),
            "aaa.bbb.ccc"
        );
        assert!(token_from_answer("%%%").unwrap_err().contains("base64"));
        let no_token = BASE64.encode(r#"{"other":1}"#);
        assert!(
            token_from_answer(&no_token)
                .unwrap_err()
                .contains("no token")
        );
        let empty = BASE64.encode(r#"{"token":"ST$"}"#);
        assert!(token_from_answer(&empty).unwrap_err().contains("empty"));
    }

    #[test]
    fn proxymux_url_is_on_port_12250_of_the_service_host() {
        assert_eq!(
            proxymux_url("10.96.0.1"),
            "https://10.96.0.1:12250/resourcePrincipalSessionTokens"
        );
        assert_eq!(
            proxymux_url("fd00::1"),
            "https://[fd00::1]:12250/resourcePrincipalSessionTokens"
        );
    }
}
