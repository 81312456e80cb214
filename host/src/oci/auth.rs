//! Credentials for signing OCI requests, behind one trait ([`RequestSigner`])
//! with two implementations:
//!
//! - the project's own ([`super::sign`], Apache-2.0): API keys, the default;
//! - oci-rust-sdk's (AGPL-3.0), with the cargo feature `oci-rust-sdk`
//!   (`--oci-signer oci-rust-sdk`), kept so both can be tested against the
//!   emulator's verifier, for API keys and instance principals.
//!
//! Session-token credentials (instance principals, OKE workload identity)
//! sign through [`SessionSigner`] with a token from the metadata service's
//! federation or the OKE proxymux; a config profile's session token (`oci
//! session authenticate`) through [`SecurityTokenSigner`]. API keys come from
//! a config profile or field by field ([`ApiKeyFields`]).
//!
//! We parse the OCI config file ourselves: a relative `key_file` is resolved
//! against the config file's directory (so a config can travel with its key)
//! and `[DEFAULT]` applies to every profile, as OCI's SDKs do.

use super::api_key_fields::ApiKeyFields;
use super::error::{OciError, OciResult};
use super::instance_principal::FederationIssuer;
use super::metadata::{DEFAULT_METADATA_URL, InstanceMetadata};
use super::region::resolve as resolve_region;
use super::security_token::SecurityTokenSigner;
use super::session::SessionSigner;
use super::sign::{SigningKey, sign_request};
use super::workload_identity::{
    DEFAULT_CA_PATH, DEFAULT_TOKEN_PATH, ProxymuxIssuer, default_proxymux_url,
};
use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::HeaderMap;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use url::Url;

/// The description of a config profile's session token.
const SESSION_PROFILE: &str = "session token (OCI config profile)";

/// Signs one request in place (date, host, body headers, authorization).
/// Errors are plain text and never contain key material.
#[async_trait]
pub(crate) trait RequestSigner: Send + Sync {
    async fn sign(
        &self,
        method: &Method,
        url: &Url,
        headers: &mut HeaderMap,
        body: Option<&[u8]>,
    ) -> Result<(), String>;

    /// OCI answered 401 to a request signed with `signed` (its
    /// `authorization` header, which names the keyId). `true`
    /// when signing again would use other credentials (a renewed session
    /// token), so one retry may succeed; API keys cannot change: `false`.
    fn unauthorized(&self, _signed: &HeaderMap) -> bool {
        false
    }
}

/// Signs with `key` under `key_id` at the current time, the error as text:
/// what every builtin [`RequestSigner`] does once it knows its key and keyId.
pub(crate) fn sign_now(
    key_id: &str,
    key: &SigningKey,
    method: &Method,
    url: &Url,
    headers: &mut HeaderMap,
    body: Option<&[u8]>,
) -> Result<(), String> {
    sign_request(key_id, key, method, url, headers, body, chrono::Utc::now())
        .map_err(|e| e.to_string())
}

/// Which implementation signs API-key requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SignerImplementation {
    /// The project's own signer (Apache-2.0).
    #[default]
    Builtin,
    /// oci-rust-sdk's signer (AGPL-3.0); only in builds with the
    /// `oci-rust-sdk` cargo feature.
    #[cfg(feature = "oci-rust-sdk")]
    OciRustSdk,
}

impl SignerImplementation {
    /// The implementations this build has.
    pub fn available() -> &'static [Self] {
        &[
            Self::Builtin,
            #[cfg(feature = "oci-rust-sdk")]
            Self::OciRustSdk,
        ]
    }
}

/// An API key as OCI's config file or a Secret of separate fields gives it.
/// `Debug` shows the keyId only.
#[derive(Clone)]
pub struct ApiKey {
    pub tenancy: String,
    pub user: String,
    pub fingerprint: String,
    /// PEM: PKCS#8, PKCS#1, or encrypted PKCS#8 with `passphrase`.
    pub private_key_pem: String,
    pub passphrase: Option<String>,
    pub region: Option<String>,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("key_id", &self.key_id())
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// `tenancy/user/fingerprint`, the keyId OCI looks the key up by.
    pub fn key_id(&self) -> String {
        format!("{}/{}/{}", self.tenancy, self.user, self.fingerprint)
    }

    /// Reads `profile` of an OCI config file (`user`, `fingerprint`, `key_file`,
    /// `tenancy`, optional `region` and `pass_phrase`). Values of `[DEFAULT]`
    /// apply to every profile; a relative `key_file` is relative to the config
    /// file's directory.
    pub fn from_config_file(path: &Path, profile: &str) -> OciResult<Self> {
        Self::from_profile(&ConfigProfile::read(path, profile)?)
    }

    fn from_profile(profile: &ConfigProfile) -> OciResult<Self> {
        Ok(Self {
            tenancy: profile.get("tenancy")?,
            user: profile.get("user")?,
            fingerprint: profile.get("fingerprint")?,
            private_key_pem: profile.key_pem()?,
            passphrase: profile.passphrase(),
            region: profile.values.get("region").cloned(),
        })
    }
}

/// One profile of an OCI config file, `[DEFAULT]` values underneath.
struct ConfigProfile {
    path: PathBuf,
    name: String,
    values: BTreeMap<String, String>,
    /// The keys the profile's own section sets (not inherited).
    own: Vec<String>,
}

impl ConfigProfile {
    fn read(path: &Path, profile: &str) -> OciResult<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            OciError::Config(format!("cannot read OCI config {}: {e}", path.display()))
        })?;
        let sections = parse_config_sections(&text);
        let own = sections.get(profile).ok_or_else(|| {
            OciError::Config(format!(
                "profile [{profile}] not found in {}",
                path.display()
            ))
        })?;
        let mut values = sections.get("DEFAULT").cloned().unwrap_or_default();
        values.extend(own.clone());
        Ok(Self {
            path: path.to_path_buf(),
            name: profile.to_string(),
            values,
            own: own.keys().cloned().collect(),
        })
    }

    fn get(&self, name: &str) -> OciResult<String> {
        self.values.get(name).cloned().ok_or_else(|| {
            OciError::Config(format!(
                "'{name}' missing in profile [{}] of {}",
                self.name,
                self.path.display()
            ))
        })
    }

    fn key_pem(&self) -> OciResult<String> {
        let key_file = resolve_key_file(&self.path, &self.get("key_file")?);
        std::fs::read_to_string(&key_file).map_err(|e| {
            OciError::Config(format!("cannot read key_file {}: {e}", key_file.display()))
        })
    }

    fn passphrase(&self) -> Option<String> {
        self.values
            .get("pass_phrase")
            .filter(|p| !p.is_empty())
            .cloned()
    }

    /// The session token file of a session profile (`oci session
    /// authenticate`). `[DEFAULT]`'s does not make a profile that names its
    /// own `user` a session profile: that one is an API key.
    fn security_token_file(&self) -> Option<PathBuf> {
        let file = self.values.get("security_token_file")?;
        let own = |key: &str| self.own.iter().any(|k| k == key);
        if own("user") && !own("security_token_file") {
            return None;
        }
        Some(resolve_key_file(&self.path, file))
    }
}

/// Credentials for [`super::HttpOciClient`]. `Debug` never shows key material.
#[derive(Clone)]
pub struct OciCredentials {
    pub(crate) signer: Arc<dyn RequestSigner>,
    /// The API key's keyId; `None` for session-token credentials.
    key_id: Option<String>,
    /// What signs, for logs: e.g. `api key (builtin signer)`.
    description: &'static str,
    region: Option<String>,
    /// The realm's domain when the credentials know it (instance metadata);
    /// `None`: derive it from the region.
    realm_domain: Option<String>,
    /// The session-token signer, for [`Self::warm_up`].
    session: Option<Arc<SessionSigner>>,
}

/// Where the session-token flows find their services. Each `None` is OCI's
/// own: the overrides exist to test against the emulator and are never
/// needed in production.
#[derive(Debug, Clone, Default)]
pub struct AuthEndpoints {
    /// Instance metadata service v2 (default [`DEFAULT_METADATA_URL`]).
    pub metadata_url: Option<String>,
    /// Federation endpoint of instance principals (default
    /// `https://auth.<region>.<realm domain>`).
    pub federation_url: Option<String>,
    /// OKE proxymux (default `https://$KUBERNETES_SERVICE_HOST:12250/resourcePrincipalSessionTokens`).
    pub proxymux_url: Option<String>,
    /// ServiceAccount token file (default [`DEFAULT_TOKEN_PATH`]).
    pub service_account_token: Option<PathBuf>,
    /// Cluster CA file (default [`DEFAULT_CA_PATH`]).
    pub service_account_ca: Option<PathBuf>,
}

impl AuthEndpoints {
    fn metadata(&self) -> OciResult<InstanceMetadata> {
        InstanceMetadata::new(self.metadata_url.as_deref().unwrap_or(DEFAULT_METADATA_URL))
            .map_err(OciError::Config)
    }
}

impl fmt::Debug for OciCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OciCredentials")
            .field("signer", &self.description)
            .field("key_id", &self.key_id)
            .field("region", &self.region)
            .finish()
    }
}

impl OciCredentials {
    /// An API key signed by the project's own signer.
    pub fn api_key(key: ApiKey) -> OciResult<Self> {
        let signing_key = SigningKey::from_pem(&key.private_key_pem, key.passphrase.as_deref())
            .map_err(|e| OciError::Config(format!("private key of {}: {e}", key.key_id())))?;
        Ok(Self {
            signer: Arc::new(ApiKeySigner {
                key_id: key.key_id(),
                key: signing_key,
            }),
            key_id: Some(key.key_id()),
            description: "api key (builtin signer)",
            region: key.region,
            realm_domain: None,
            session: None,
        })
    }

    /// An API key signed by the chosen implementation.
    pub fn api_key_with(key: ApiKey, implementation: SignerImplementation) -> OciResult<Self> {
        match implementation {
            SignerImplementation::Builtin => Self::api_key(key),
            #[cfg(feature = "oci-rust-sdk")]
            SignerImplementation::OciRustSdk => {
                let key_id = key.key_id();
                let region = key.region.clone();
                Ok(Self {
                    signer: super::sdk_signer::api_key(key)?,
                    key_id: Some(key_id),
                    description: "api key (oci-rust-sdk signer)",
                    region,
                    realm_domain: None,
                    session: None,
                })
            }
        }
    }

    /// An API key held in memory, unencrypted (PKCS#8 or PKCS#1 PEM).
    pub fn from_api_key(
        tenancy: &str,
        user: &str,
        fingerprint: &str,
        private_key_pem: &str,
        region: Option<String>,
    ) -> OciResult<Self> {
        Self::api_key(ApiKey {
            tenancy: tenancy.into(),
            user: user.into(),
            fingerprint: fingerprint.into(),
            private_key_pem: private_key_pem.into(),
            passphrase: None,
            region,
        })
    }

    /// `profile` of an OCI config file (see [`Self::from_config_profile`]),
    /// signed by the builtin signer.
    pub fn from_config_file(path: &Path, profile: &str) -> OciResult<Self> {
        Self::from_config_profile(path, profile, SignerImplementation::Builtin)
    }

    /// `profile` of an OCI config file: an API key (see
    /// [`ApiKey::from_config_file`]) signed by `implementation`; or, when the
    /// profile has `security_token_file` (`oci session authenticate`), its
    /// session token and `key_file`, signed by the builtin signer.
    pub fn from_config_profile(
        path: &Path,
        profile: &str,
        implementation: SignerImplementation,
    ) -> OciResult<Self> {
        let profile = ConfigProfile::read(path, profile)?;
        let Some(token_file) = profile.security_token_file() else {
            return Self::api_key_with(ApiKey::from_profile(&profile)?, implementation);
        };
        let key = SigningKey::from_pem(&profile.key_pem()?, profile.passphrase().as_deref())
            .map_err(|e| {
                OciError::Config(format!(
                    "private key of the session profile [{}]: {e}",
                    profile.name
                ))
            })?;
        let signer =
            SecurityTokenSigner::new(token_file, &profile.name, key).map_err(OciError::Config)?;
        Ok(Self {
            signer: Arc::new(signer),
            key_id: None,
            description: SESSION_PROFILE,
            region: profile.values.get("region").cloned(),
            realm_domain: None,
            session: None,
        })
    }

    /// An API key given field by field (see [`ApiKeyFields`]), signed by
    /// `implementation`.
    pub fn from_api_key_fields(
        fields: &ApiKeyFields,
        implementation: SignerImplementation,
    ) -> OciResult<Self> {
        let key = fields.load().map_err(|e| OciError::Config(e.to_string()))?;
        Self::api_key_with(key, implementation)
    }

    /// Whether these credentials are a config profile's session token.
    pub fn is_session_profile(&self) -> bool {
        self.description == SESSION_PROFILE
    }

    /// The config file named by `OCI_CONFIG_FILE`, else `~/.oci/config`.
    pub fn default_config_path() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("OCI_CONFIG_FILE") {
            return Some(PathBuf::from(path));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".oci").join("config"))
    }

    /// Instance principals, by the project's own provider: the instance's
    /// certificates from the metadata service, exchanged at the federation
    /// endpoint for session tokens (see [`super::instance_principal`]).
    /// `region` overrides the instance's own.
    pub async fn instance_principal(
        endpoints: &AuthEndpoints,
        region: Option<&str>,
    ) -> OciResult<Self> {
        let metadata = endpoints.metadata()?;
        let info = metadata.region_info().await.map_err(OciError::Config)?;
        // The metadata may name the region by key (older instances): the
        // tables turn it into the identifier; its realm domain wins over theirs.
        let home = resolve_region(&info.region_identifier)
            .map_err(|e| OciError::Config(format!("the instance metadata's region: {e}")))?
            .in_realm_domain(Some(&info.realm_domain_component));
        let federation = endpoints
            .federation_url
            .clone()
            .unwrap_or_else(|| home.auth_endpoint());
        let issuer = FederationIssuer::new(metadata, &federation)
            .await
            .map_err(OciError::Config)?;
        tracing::info!(tenancy = issuer.tenancy(), federation = %federation, "instance principals");
        let session = Arc::new(SessionSigner::new(Box::new(issuer)));
        Ok(Self {
            signer: session.clone(),
            key_id: None,
            description: "instance principals",
            region: Some(region.map_or(home.identifier, str::to_string)),
            realm_domain: Some(home.realm_domain),
            session: Some(session),
        })
    }

    /// OKE workload identity: the pod's ServiceAccount token exchanged at the
    /// cluster's proxymux for resource-principal session tokens (see
    /// [`super::workload_identity`]). The region is `region`, else
    /// `OCI_RESOURCE_PRINCIPAL_REGION`, else the node's (instance metadata).
    pub async fn oke_workload_identity(
        endpoints: &AuthEndpoints,
        region: Option<&str>,
    ) -> OciResult<Self> {
        let url = match &endpoints.proxymux_url {
            Some(url) => url.clone(),
            None => default_proxymux_url().map_err(OciError::Config)?,
        };
        let issuer = ProxymuxIssuer::new(
            &url,
            endpoints
                .service_account_token
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_TOKEN_PATH)),
            endpoints
                .service_account_ca
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_CA_PATH)),
        )
        .map_err(OciError::Config)?;
        let from_env = std::env::var("OCI_RESOURCE_PRINCIPAL_REGION")
            .ok()
            .filter(|r| !r.is_empty());
        let (region, realm_domain) = match region.map(str::to_string).or(from_env) {
            Some(region) => (region, None),
            None => {
                let info = endpoints.metadata()?.region_info().await.map_err(|e| {
                    OciError::Config(format!("no region given ({e}); set OCI_REGION"))
                })?;
                (info.region_identifier, Some(info.realm_domain_component))
            }
        };
        let session = Arc::new(SessionSigner::new(Box::new(issuer)));
        Ok(Self {
            signer: session.clone(),
            key_id: None,
            description: "OKE workload identity",
            region: Some(region),
            realm_domain,
            session: Some(session),
        })
    }

    /// Instance principals by oci-rust-sdk's provider (cargo feature
    /// `oci-rust-sdk`, `--oci-signer oci-rust-sdk`).
    #[cfg(feature = "oci-rust-sdk")]
    pub async fn instance_principals_by_oci_rust_sdk() -> OciResult<Self> {
        let (signer, region) = super::sdk_signer::instance_principals().await?;
        Ok(Self {
            signer,
            key_id: None,
            description: "instance principals (oci-rust-sdk)",
            region: Some(region),
            realm_domain: None,
            session: None,
        })
    }

    /// Obtains the first session token now (a no-op for API keys), so a
    /// start-up can report an unusable identity before it reconciles.
    pub async fn warm_up(&self) -> OciResult<()> {
        match &self.session {
            Some(session) => session
                .session()
                .await
                .map(|_| ())
                .map_err(|e| OciError::Config(format!("{}: {e}", self.description))),
            None => Ok(()),
        }
    }

    /// What signs: `api key (builtin signer)`, `instance principals`, ...
    pub fn description(&self) -> &'static str {
        self.description
    }

    /// The realm's domain, when the credentials learned it from the instance.
    pub fn realm_domain(&self) -> Option<&str> {
        self.realm_domain.as_deref()
    }

    /// The region named by the credentials (config file or instance metadata).
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The keyId requests are signed with (`tenancy/user/fingerprint`) for an
    /// API key; `None` for rotating credentials (instance principals), whose
    /// keyId is a session token. Never key material: safe to print.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }
}

/// The builtin signer with a fixed API key.
struct ApiKeySigner {
    key_id: String,
    key: SigningKey,
}

#[async_trait]
impl RequestSigner for ApiKeySigner {
    async fn sign(
        &self,
        method: &Method,
        url: &Url,
        headers: &mut HeaderMap,
        body: Option<&[u8]>,
    ) -> Result<(), String> {
        sign_now(&self.key_id, &self.key, method, url, headers, body)
    }
}

/// The key/value pairs of `profile`, with `[DEFAULT]` values underneath.
/// `None` when the profile does not exist (DEFAULT itself exists if non-empty).
#[cfg(test)]
fn parse_config_profile(text: &str, profile: &str) -> Option<BTreeMap<String, String>> {
    let sections = parse_config_sections(text);
    let own = sections.get(profile)?;
    let mut merged = sections.get("DEFAULT").cloned().unwrap_or_default();
    merged.extend(own.clone());
    Some(merged)
}

/// Every section's key/value pairs, as written (no inheritance).
fn parse_config_sections(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_string();
            sections.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        if let (Some(section), Some((key, value))) = (&current, line.split_once('=')) {
            sections
                .entry(section.clone())
                .or_default()
                .insert(key.trim().to_string(), value.trim().to_string());
        }
    }
    sections
}

/// `~/` is the home directory; a relative path is relative to the config file.
fn resolve_key_file(config_path: &Path, key_file: &str) -> PathBuf {
    if let Some(rest) = key_file.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let path = PathBuf::from(key_file);
    if path.is_absolute() {
        return path;
    }
    config_path
        .parent()
        .map(|dir| dir.join(&path))
        .unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_inherit_default() {
        let text = "[DEFAULT]\nuser=u0\nregion = r0\n# comment\n[OTHER]\nuser = u1\n";
        let other = parse_config_profile(text, "OTHER").expect("profile exists");
        assert_eq!(other.get("user").map(String::as_str), Some("u1"));
        assert_eq!(other.get("region").map(String::as_str), Some("r0"));
        assert!(parse_config_profile(text, "MISSING").is_none());
    }

    /// A config file in a fresh directory with the emulator's test key.
    fn config_dir(name: &str, config: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("auth-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(
            dir.join("key.pem"),
            include_str!("../../../tests/oci-emulator/testdata/oci_api_key.pem"),
        )
        .expect("write");
        std::fs::write(dir.join("config"), config).expect("write");
        dir
    }

    fn session_token(exp: u64) -> String {
        use base64::Engine as _;
        let part = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.c2ln",
            part(serde_json::json!({"alg": "RS256"})),
            part(serde_json::json!({"exp": exp}))
        )
    }

    #[test]
    fn a_profile_with_a_security_token_file_signs_with_the_session() {
        let in_an_hour = chrono::Utc::now().timestamp() as u64 + 3600;
        // As `oci session authenticate` writes it (no user), under a
        // [DEFAULT] that is an API key.
        let dir = config_dir(
            "session",
            "[DEFAULT]\nuser=ocid1.user.oc1..u\nfingerprint=f\ntenancy=ocid1.tenancy.oc1..t\nkey_file=key.pem\n\
             [dev]\nfingerprint=f\nkey_file=key.pem\ntenancy=ocid1.tenancy.oc1..t\nregion=fra\nsecurity_token_file=token\n",
        );
        std::fs::write(dir.join("token"), session_token(in_an_hour)).expect("write");
        let config = dir.join("config");
        let session = OciCredentials::from_config_file(&config, "dev").expect("session profile");
        assert!(session.is_session_profile());
        assert_eq!(session.key_id(), None);
        assert_eq!(session.region(), Some("fra"));
        let api_key = OciCredentials::from_config_file(&config, "DEFAULT").expect("api key");
        assert!(!api_key.is_session_profile());

        // [DEFAULT]'s token does not turn a profile with its own user into a session.
        std::fs::write(
            &config,
            "[DEFAULT]\nsecurity_token_file=token\nkey_file=key.pem\nfingerprint=f\ntenancy=t\n\
             [keyed]\nuser=ocid1.user.oc1..u\n",
        )
        .expect("write");
        let keyed = OciCredentials::from_config_file(&config, "keyed").expect("api key");
        assert_eq!(keyed.key_id(), Some("t/ocid1.user.oc1..u/f"));
        assert!(
            OciCredentials::from_config_file(&config, "DEFAULT")
                .expect("session")
                .is_session_profile()
        );

        // An expired token is a configuration error saying what to run.
        std::fs::write(dir.join("token"), session_token(in_an_hour - 7200)).expect("write");
        let error = OciCredentials::from_config_file(&config, "DEFAULT").expect_err("expired");
        assert!(
            error.to_string().contains("oci session authenticate"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn key_file_is_relative_to_the_config() {
        let resolved = resolve_key_file(Path::new("/etc/oci/config"), "keys/k.pem");
        assert_eq!(resolved, PathBuf::from("/etc/oci/keys/k.pem"));
        let absolute = resolve_key_file(Path::new("/etc/oci/config"), "/k.pem");
        assert_eq!(absolute, PathBuf::from("/k.pem"));
    }
}
