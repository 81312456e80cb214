//! Instance principals: the instance's own identity, from the metadata
//! service, exchanged at the federation endpoint for a session token.
//!
//! Each renewal reads the leaf certificate, its key and the intermediate
//! again (OCI rotates them), sends the leaf, the intermediate and a fresh
//! session public key to `<auth endpoint>/v1/x509` signed with the leaf's
//! key under `keyId="<tenancy>/fed-x509/<SHA-1 fingerprint>"`, and gets back
//! `{"token": "<JWT>"}`. As OCI's SDKs do, the tenancy is read from the
//! leaf's subject (`opc-tenant:<ocid>`) and must not change between renewals.

use super::metadata::InstanceMetadata;
use super::session::{SessionKey, TokenIssuer, with_causes};
use super::sign::{SigningKey, sign_request_without_host};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::Method;
use reqwest::header::HeaderMap;
use std::time::Duration;
use url::Url;

/// The federation endpoint answers quickly or not at all.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The identity material as IMDS serves it.
struct Identity {
    leaf_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    key: SigningKey,
    tenancy: String,
}

/// Issues session tokens for the instance's identity.
pub(crate) struct FederationIssuer {
    metadata: InstanceMetadata,
    http: reqwest::Client,
    /// `<federation endpoint>/v1/x509`.
    url: Url,
    /// The tenancy of the first certificate; a later one must match.
    tenancy: String,
}

impl FederationIssuer {
    /// Reads the identity once (to learn the tenancy and fail early with a
    /// clear message off OCI) and returns the issuer.
    pub(crate) async fn new(
        metadata: InstanceMetadata,
        federation_endpoint: &str,
    ) -> Result<Self, String> {
        let url = Url::parse(&format!(
            "{}/v1/x509",
            federation_endpoint.trim_end_matches('/')
        ))
        .map_err(|e| format!("federation endpoint {federation_endpoint:?}: {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the federation client: {e}"))?;
        let identity = read_identity(&metadata).await?;
        Ok(Self {
            metadata,
            http,
            url,
            tenancy: identity.tenancy,
        })
    }

    /// The tenancy OCID the instance belongs to.
    pub(crate) fn tenancy(&self) -> &str {
        &self.tenancy
    }
}

#[async_trait]
impl TokenIssuer for FederationIssuer {
    async fn issue(&self, session: &SessionKey) -> Result<String, String> {
        let identity = read_identity(&self.metadata).await?;
        if identity.tenancy != self.tenancy {
            return Err(format!(
                "the instance certificate now names tenancy {} instead of {}; refusing it",
                identity.tenancy, self.tenancy
            ));
        }
        let body = serde_json::json!({
            "certificate": BASE64.encode(&identity.leaf_der),
            "publicKey": session.public_key_base64(),
            "intermediateCertificates": [BASE64.encode(&identity.intermediate_der)],
            "purpose": "DEFAULT",
        });
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let key_id = format!(
            "{}/fed-x509/{}",
            identity.tenancy,
            fingerprint(&identity.leaf_der)
        );
        let mut headers = HeaderMap::new();
        sign_request_without_host(
            &key_id,
            &identity.key,
            &Method::POST,
            &self.url,
            &mut headers,
            Some(&body),
            chrono::Utc::now(),
        )
        .map_err(|e| format!("cannot sign the federation request: {e}"))?;
        let response = self
            .http
            .post(self.url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "the federation endpoint {} does not answer: {}",
                    self.url,
                    with_causes(&e)
                )
            })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if status.is_server_error() {
            return Err(format!(
                "the federation endpoint {} is unavailable ({status}): {}",
                self.url,
                short(&text)
            ));
        }
        if !status.is_success() {
            return Err(format!(
                "the federation endpoint {} refused the instance certificate ({status}): {}; \
                 is the instance in a dynamic group with a policy?",
                self.url,
                short(&text)
            ));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            token: String,
        }
        let answer: Answer = serde_json::from_str(&text)
            .map_err(|e| format!("the federation endpoint's answer has no token: {e}"))?;
        Ok(answer.token)
    }
}

async fn read_identity(metadata: &InstanceMetadata) -> Result<Identity, String> {
    let leaf_pem = metadata.get("identity/cert.pem").await?;
    let key_pem = metadata.get("identity/key.pem").await?;
    let intermediate_pem = metadata.get("identity/intermediate.pem").await?;
    let leaf_der = certificate_der(&leaf_pem, "identity/cert.pem")?;
    let intermediate_der = certificate_der(&intermediate_pem, "identity/intermediate.pem")?;
    let tenancy = tenancy_of(&leaf_der)?;
    let key = SigningKey::from_pem(&key_pem, None).map_err(|e| format!("identity/key.pem: {e}"))?;
    Ok(Identity {
        leaf_der,
        intermediate_der,
        key,
        tenancy,
    })
}

fn certificate_der(pem: &str, what: &str) -> Result<Vec<u8>, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| format!("{what} is not a PEM certificate: {e}"))?;
    if pem.label != "CERTIFICATE" {
        return Err(format!("{what} holds a {}, not a certificate", pem.label));
    }
    Ok(pem.contents)
}

/// The tenancy OCID from the subject's `opc-tenant:` (instance certificates)
/// or `opc-identity:` attribute.
fn tenancy_of(der: &[u8]) -> Result<String, String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("cannot parse the instance certificate: {e}"))?;
    certificate
        .subject()
        .iter_attributes()
        .filter_map(|attribute| attribute.as_str().ok())
        .find_map(|value| {
            value
                .strip_prefix("opc-tenant:")
                .or_else(|| value.strip_prefix("opc-identity:"))
        })
        .map(str::to_string)
        .ok_or_else(|| {
            "the instance certificate's subject names no tenancy (opc-tenant:)".to_string()
        })
}

/// SHA-1 of the certificate, lowercase hex pairs joined by colons (the form
/// the federation endpoint expects in the keyId).
fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn short(text: &str) -> &str {
    let end = text
        .char_indices()
        .nth(300)
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_colon_separated_lowercase_sha1() {
        // SHA-1("abc") = a9993e36...
        let fp = fingerprint(b"abc");
        assert!(fp.starts_with("a9:99:3e:36:47:06:81:6a"), "{fp}");
        assert_eq!(fp.split(':').count(), 20);
    }

    #[test]
    fn certificate_pem_must_be_a_certificate() {
        let key = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert!(
            certificate_der(key, "x")
                .unwrap_err()
                .contains("not a certificate")
        );
        assert!(
            certificate_der("junk", "x")
                .unwrap_err()
                .contains("not a PEM")
        );
    }
}
