//! oci-rust-sdk's signer and instance-principal provider behind our
//! [`RequestSigner`] trait. Only in builds with the `oci-rust-sdk` cargo
//! feature: the crate is AGPL-3.0, so the default build and the releases do
//! not link it.

use super::auth::{ApiKey, RequestSigner};
use super::error::{OciError, OciResult};
use async_trait::async_trait;
use oci_rust_sdk::auth::{AuthProvider, InstancePrincipalsAuthProvider};
use reqwest::Method;
use reqwest::header::HeaderMap;
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use std::sync::Arc;
use url::Url;

/// An API key signed by oci-rust-sdk's `RequestSigner`.
pub(crate) fn api_key(key: ApiKey) -> OciResult<Arc<dyn RequestSigner>> {
    if key.passphrase.is_some() {
        return Err(OciError::Config(
            "the oci-rust-sdk signer does not take encrypted keys here; use --oci-signer builtin"
                .into(),
        ));
    }
    let provider = Arc::new(FixedKey {
        key_id: key.key_id(),
        pkcs8_pem: to_pkcs8_pem(&key.private_key_pem)?,
    });
    let signer = oci_rust_sdk::auth::RequestSigner::new(provider)
        .map_err(|e| OciError::Config(format!("unusable private key: {e}")))?;
    Ok(Arc::new(Fixed(signer)))
}

/// Instance principals from oci-rust-sdk, and the region the metadata
/// service named.
pub(crate) async fn instance_principals() -> OciResult<(Arc<dyn RequestSigner>, String)> {
    let provider = InstancePrincipalsAuthProvider::new()
        .await
        .map_err(|e| OciError::Config(format!("instance principals: {e}")))?;
    let region = provider.region().to_string();
    Ok((Arc::new(Rotating(Arc::new(provider))), region))
}

/// A fixed API key, in the form oci-rust-sdk's signer accepts.
struct FixedKey {
    key_id: String,
    pkcs8_pem: String,
}

impl AuthProvider for FixedKey {
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

struct Fixed(oci_rust_sdk::auth::RequestSigner);

#[async_trait]
impl RequestSigner for Fixed {
    async fn sign(
        &self,
        method: &Method,
        url: &Url,
        headers: &mut HeaderMap,
        body: Option<&[u8]>,
    ) -> Result<(), String> {
        self.0
            .sign_request(method.as_str(), url, headers, body)
            .map_err(|e| e.to_string())
    }
}

/// Keys that rotate: oci-rust-sdk's provider blocks on its own refresh, so
/// each signature is made on the blocking pool.
struct Rotating(Arc<dyn AuthProvider>);

#[async_trait]
impl RequestSigner for Rotating {
    async fn sign(
        &self,
        method: &Method,
        url: &Url,
        headers: &mut HeaderMap,
        body: Option<&[u8]>,
    ) -> Result<(), String> {
        let provider = self.0.clone();
        let (method, url) = (method.as_str().to_string(), url.clone());
        let body = body.map(<[u8]>::to_vec);
        let mut owned = std::mem::take(headers);
        let signed = tokio::task::spawn_blocking(move || {
            let signer =
                oci_rust_sdk::auth::RequestSigner::new(provider).map_err(|e| e.to_string())?;
            signer
                .sign_request(&method, &url, &mut owned, body.as_deref())
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(owned)
        })
        .await
        .map_err(|e| e.to_string())??;
        *headers = signed;
        Ok(())
    }
}

/// Converts a PKCS#1 RSA key to PKCS#8 (the only form oci-rust-sdk reads) and
/// checks that a PKCS#8 key parses. Errors never quote the key.
fn to_pkcs8_pem(pem: &str) -> OciResult<String> {
    let pem = pem.trim();
    if pem.contains("ENCRYPTED") {
        return Err(OciError::Config(
            "encrypted private keys are not supported by the oci-rust-sdk signer".to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::sign::{SigningKey, sign_request};
    use rsa::pkcs1::EncodeRsaPrivateKey;

    fn key() -> RsaPrivateKey {
        RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key generation")
    }

    #[test]
    fn pkcs1_keys_become_pkcs8() {
        let key = key();
        let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).expect("pkcs1");
        let converted = to_pkcs8_pem(&pkcs1).expect("converts");
        assert!(converted.contains("BEGIN PRIVATE KEY"));
        assert_eq!(
            RsaPrivateKey::from_pkcs8_pem(&converted).expect("parses"),
            key
        );
    }

    /// PKCS#1 v1.5 signatures are deterministic: given the same date and the
    /// same signed headers in the same order, both implementations must produce
    /// the same signature bytes.
    #[tokio::test]
    async fn both_signers_sign_the_same_string_alike() {
        let key = key();
        let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pem").to_string();
        let sdk = api_key(ApiKey {
            tenancy: "t".into(),
            user: "u".into(),
            fingerprint: "f".into(),
            private_key_pem: pem.clone(),
            passphrase: None,
            region: None,
        })
        .expect("sdk signer");
        let url =
            Url::parse("http://127.0.0.1:9/20160918/publicIps/ocid1.publicip.x").expect("url");
        let date = "Tue, 01 Dec 2026 10:00:00 GMT";
        for (method, body) in [
            (Method::GET, None),
            (Method::PUT, Some(br#"{"privateIpId":"p"}"#.as_slice())),
        ] {
            let mut theirs = HeaderMap::new();
            theirs.insert("x-date", date.parse().expect("date"));
            sdk.sign(&method, &url, &mut theirs, body)
                .await
                .expect("sdk signs");
            let authorization = theirs["authorization"].to_str().expect("ascii");
            let signature = authorization
                .split("signature=\"")
                .nth(1)
                .and_then(|s| s.strip_suffix('"'))
                .expect("signature parameter");
            let headers = authorization
                .split("headers=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .expect("headers parameter");
            // Our signer with the same header order (it signs date first
            // itself; here we compare the RSA step and the signing string).
            let ours = SigningKey::from_pem(&pem, None).expect("key");
            let mut mine = HeaderMap::new();
            mine.insert("x-date", date.parse().expect("date"));
            sign_request(
                "t/u/f",
                &ours,
                &method,
                &url,
                &mut mine,
                body,
                chrono::Utc::now(),
            )
            .expect("signs");
            for name in headers.split(' ').filter(|n| *n != "(request-target)") {
                assert_eq!(theirs.get(name), mine.get(name), "header {name}");
            }
            let string = headers
                .split(' ')
                .map(|name| match name {
                    "(request-target)" => format!(
                        "(request-target): {} {}",
                        method.as_str().to_lowercase(),
                        url.path()
                    ),
                    other => format!("{other}: {}", theirs[other].to_str().expect("ascii")),
                })
                .collect::<Vec<_>>()
                .join("\n");
            use base64::Engine as _;
            let expected = base64::engine::general_purpose::STANDARD
                .encode(ours.sign(string.as_bytes()).expect("rsa"));
            assert_eq!(signature, expected, "{method}");
        }
    }
}
