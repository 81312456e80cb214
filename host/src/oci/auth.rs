//! Credentials for signing OCI requests, behind one trait ([`RequestSigner`])
//! with two implementations:
//!
//! - the project's own ([`super::sign`], Apache-2.0): API keys, the default;
//! - oci-rust-sdk's (AGPL-3.0), with the cargo feature `oci-rust-sdk`
//!   (`--oci-signer oci-rust-sdk`), kept so both can be tested against the
//!   emulator's verifier; it also provides instance principals until our own
//!   provider exists.
//!
//! We parse the OCI config file ourselves: a relative `key_file` is resolved
//! against the config file's directory (so a config can travel with its key)
//! and `[DEFAULT]` applies to every profile, as OCI's SDKs do.

use super::error::{OciError, OciResult};
use super::sign::{SigningKey, sign_request};
use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::HeaderMap;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use url::Url;

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
        let text = std::fs::read_to_string(path).map_err(|e| {
            OciError::Config(format!("cannot read OCI config {}: {e}", path.display()))
        })?;
        let values = parse_config_profile(&text, profile).ok_or_else(|| {
            OciError::Config(format!(
                "profile [{profile}] not found in {}",
                path.display()
            ))
        })?;
        let get = |name: &str| {
            values.get(name).cloned().ok_or_else(|| {
                OciError::Config(format!(
                    "'{name}' missing in profile [{profile}] of {}",
                    path.display()
                ))
            })
        };
        let key_file = resolve_key_file(path, &get("key_file")?);
        let pem = std::fs::read_to_string(&key_file).map_err(|e| {
            OciError::Config(format!("cannot read key_file {}: {e}", key_file.display()))
        })?;
        Ok(Self {
            tenancy: get("tenancy")?,
            user: get("user")?,
            fingerprint: get("fingerprint")?,
            private_key_pem: pem,
            passphrase: values.get("pass_phrase").filter(|p| !p.is_empty()).cloned(),
            region: values.get("region").cloned(),
        })
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

    /// `profile` of an OCI config file (see [`ApiKey::from_config_file`]),
    /// signed by the builtin signer.
    pub fn from_config_file(path: &Path, profile: &str) -> OciResult<Self> {
        Self::api_key(ApiKey::from_config_file(path, profile)?)
    }

    /// The config file named by `OCI_CONFIG_FILE`, else `~/.oci/config`.
    pub fn default_config_path() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("OCI_CONFIG_FILE") {
            return Some(PathBuf::from(path));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".oci").join("config"))
    }

    /// Instance principals: certificates from the instance metadata service,
    /// exchanged for a session token. Provided by oci-rust-sdk for now, so
    /// only in builds with the `oci-rust-sdk` feature.
    pub async fn instance_principals() -> OciResult<Self> {
        #[cfg(feature = "oci-rust-sdk")]
        {
            let (signer, region) = super::sdk_signer::instance_principals().await?;
            Ok(Self {
                signer,
                key_id: None,
                description: "instance principals (oci-rust-sdk)",
                region: Some(region),
            })
        }
        #[cfg(not(feature = "oci-rust-sdk"))]
        Err(OciError::Config(
            "instance principals are not in this build (built without the oci-rust-sdk \
             feature); use an API key (--auth config-file)"
                .into(),
        ))
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
        sign_request(
            &self.key_id,
            &self.key,
            method,
            url,
            headers,
            body,
            chrono::Utc::now(),
        )
        .map_err(|e| e.to_string())
    }
}

/// The key/value pairs of `profile`, with `[DEFAULT]` values underneath.
/// `None` when the profile does not exist (DEFAULT itself exists if non-empty).
fn parse_config_profile(text: &str, profile: &str) -> Option<BTreeMap<String, String>> {
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
    let own = sections.get(profile)?;
    let mut merged = sections.get("DEFAULT").cloned().unwrap_or_default();
    merged.extend(own.clone());
    Some(merged)
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

    #[test]
    fn key_file_is_relative_to_the_config() {
        let resolved = resolve_key_file(Path::new("/etc/oci/config"), "keys/k.pem");
        assert_eq!(resolved, PathBuf::from("/etc/oci/keys/k.pem"));
        let absolute = resolve_key_file(Path::new("/etc/oci/config"), "/k.pem");
        assert_eq!(absolute, PathBuf::from("/k.pem"));
    }
}
