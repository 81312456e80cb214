//! Credentials for signing OCI requests, handed to oci-rust-sdk's `RequestSigner`.
//!
//! Three sources: an OCI config file (API key), key material in memory, and
//! instance principals. We parse the config file ourselves instead of using
//! oci-rust-sdk's `ConfigFileAuthProvider` because that one resolves a relative
//! `key_file` against the working directory (we resolve it against the config
//! file's directory, so a config can travel with its key), does not apply the
//! `[DEFAULT]` profile to other profiles, and hands PKCS#1 keys to a signer that
//! only reads PKCS#8.

use super::error::{OciError, OciResult};
use oci_rust_sdk::auth::{AuthProvider, InstancePrincipalsAuthProvider};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where signing keys come from.
#[derive(Clone)]
pub(crate) enum SigningSource {
    /// A fixed API key: keyId `tenancy/user/fingerprint` and a PKCS#8 PEM.
    ApiKey(Arc<ApiKey>),
    /// Keys that rotate (instance principals): ask the provider on every request.
    Rotating(Arc<dyn AuthProvider>),
}

/// Credentials for [`super::HttpOciClient`]. `Debug` never shows key material.
#[derive(Clone)]
pub struct OciCredentials {
    pub(crate) source: SigningSource,
    region: Option<String>,
}

impl fmt::Debug for OciCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.source {
            SigningSource::ApiKey(key) => format!("ApiKey({})", key.key_id),
            SigningSource::Rotating(_) => "InstancePrincipals".to_string(),
        };
        f.debug_struct("OciCredentials")
            .field("source", &kind)
            .field("region", &self.region)
            .finish()
    }
}

impl OciCredentials {
    /// An API key held in memory. `private_key_pem` may be PKCS#8
    /// (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`); encrypted keys
    /// are not supported.
    pub fn from_api_key(
        tenancy: &str,
        user: &str,
        fingerprint: &str,
        private_key_pem: &str,
        region: Option<String>,
    ) -> OciResult<Self> {
        let key = ApiKey {
            key_id: format!("{tenancy}/{user}/{fingerprint}"),
            pkcs8_pem: to_pkcs8_pem(private_key_pem)?,
        };
        Ok(Self {
            source: SigningSource::ApiKey(Arc::new(key)),
            region,
        })
    }

    /// Reads `profile` of an OCI config file (`user`, `fingerprint`, `key_file`,
    /// `tenancy`, optional `region`). Values of `[DEFAULT]` apply to every
    /// profile; a relative `key_file` is relative to the config file's directory.
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
        if values.get("pass_phrase").is_some_and(|p| !p.is_empty()) {
            return Err(OciError::Config(
                "encrypted private keys (pass_phrase) are not supported; \
                 decrypt the key with `openssl pkey`"
                    .to_string(),
            ));
        }
        let key_file = resolve_key_file(path, &get("key_file")?);
        let pem = std::fs::read_to_string(&key_file).map_err(|e| {
            OciError::Config(format!("cannot read key_file {}: {e}", key_file.display()))
        })?;
        Self::from_api_key(
            &get("tenancy")?,
            &get("user")?,
            &get("fingerprint")?,
            &pem,
            values.get("region").cloned(),
        )
    }

    /// The config file named by `OCI_CONFIG_FILE`, else `~/.oci/config`.
    pub fn default_config_path() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("OCI_CONFIG_FILE") {
            return Some(PathBuf::from(path));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".oci").join("config"))
    }

    /// Instance principals: certificates from the instance metadata service,
    /// exchanged for a session token that oci-rust-sdk refreshes itself.
    pub async fn instance_principals() -> OciResult<Self> {
        let provider = InstancePrincipalsAuthProvider::new()
            .await
            .map_err(|e| OciError::Config(format!("instance principals: {e}")))?;
        let region = provider.region().to_string();
        Ok(Self {
            source: SigningSource::Rotating(Arc::new(provider)),
            region: Some(region),
        })
    }

    /// The region named by the credentials (config file or instance metadata).
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The keyId requests are signed with (`tenancy/user/fingerprint`) for an
    /// API key; `None` for rotating credentials (instance principals), whose
    /// keyId is a session token. Never key material: safe to print.
    pub fn key_id(&self) -> Option<&str> {
        match &self.source {
            SigningSource::ApiKey(key) => Some(&key.key_id),
            SigningSource::Rotating(_) => None,
        }
    }
}

/// A fixed API key, in the form oci-rust-sdk's signer accepts.
pub(crate) struct ApiKey {
    key_id: String,
    pkcs8_pem: String,
}

impl AuthProvider for ApiKey {
    fn get_key_id(&self) -> String {
        self.key_id.clone()
    }

    fn get_private_key(&self) -> &str {
        &self.pkcs8_pem
    }

    fn get_passphrase(&self) -> Option<&str> {
        None
    }
}

/// Converts a PKCS#1 RSA key to PKCS#8 (the only form oci-rust-sdk reads) and
/// checks that a PKCS#8 key parses. Errors never quote the key.
pub(crate) fn to_pkcs8_pem(pem: &str) -> OciResult<String> {
    let pem = pem.trim();
    if pem.contains("ENCRYPTED") {
        return Err(OciError::Config(
            "encrypted private keys are not supported; decrypt the key with `openssl pkey`"
                .to_string(),
        ));
    }
    let key = if pem.contains("BEGIN RSA PRIVATE KEY") {
        RsaPrivateKey::from_pkcs1_pem(pem)
            .map_err(|e| OciError::Config(format!("invalid PKCS#1 RSA private key: {e}")))?
    } else {
        RsaPrivateKey::from_pkcs8_pem(pem)
            .map_err(|e| OciError::Config(format!("invalid PKCS#8 private key: {e}")))?
    };
    let encoded = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| OciError::Config(format!("cannot encode private key: {e}")))?;
    Ok(encoded.to_string())
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
    use rsa::pkcs1::EncodeRsaPrivateKey;

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

    #[test]
    fn pkcs1_keys_become_pkcs8() {
        let mut rng = rand::thread_rng();
        let key = RsaPrivateKey::new(&mut rng, 1024).expect("key generation");
        let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).expect("pkcs1");
        let converted = to_pkcs8_pem(&pkcs1).expect("converts");
        assert!(converted.contains("BEGIN PRIVATE KEY"));
        assert_eq!(
            RsaPrivateKey::from_pkcs8_pem(&converted).expect("parses"),
            key
        );
    }

    #[test]
    fn bad_keys_are_config_errors_without_key_text() {
        let err = to_pkcs8_pem("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----")
            .expect_err("garbage");
        assert!(!err.to_string().contains("c2VjcmV0"));
    }
}
