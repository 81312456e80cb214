//! OCI request signing, the project's own implementation (Apache-2.0).
//!
//! OCI authenticates every API call with an HTTP signature (draft-cavage,
//! `rsa-sha256`), documented in OCI's "Request Signatures" page and
//! implemented alike by its official SDKs:
//!
//! - signed headers: `date`, `(request-target)`, `host`; for POST, PUT and
//!   PATCH also `content-length`, `content-type` and `x-content-sha256` (the
//!   base64 SHA-256 of the body);
//! - the signing string is `name: value` lines joined by `\n`, in the order
//!   listed in the `headers` parameter;
//! - `Authorization: Signature version="1",keyId="…",algorithm="rsa-sha256",headers="…",signature="…"`.
//!
//! The algorithm is small, so it is written here rather than taken from
//! oci-rust-sdk, whose licence (AGPL-3.0) we keep out of the default build.
//! The RSA private-key operation is ring's (constant-time, and already linked
//! for TLS): the `rsa` crate's private-key operations carry RUSTSEC-2023-0071.

use super::legacy_pem::{self, LegacyPemError, is_legacy_encrypted};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use sha2::{Digest, Sha256};
use std::fmt;
use url::Url;

/// Why a private key cannot be used. Messages never quote key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a PEM private key: {0}")]
    Pem(String),
    #[error("cannot read the encrypted private key (legacy OpenSSL format): {0}")]
    Legacy(#[from] LegacyPemError),
    #[error("the private key is encrypted: give its passphrase (pass_phrase in the OCI config)")]
    PassphraseNeeded,
    #[error("cannot decrypt the private key: wrong passphrase or unsupported cipher ({0})")]
    Decrypt(String),
    #[error("a passphrase was given but the private key is not encrypted")]
    NotEncrypted,
    #[error(
        "unsupported PEM type {0:?}: expected PRIVATE KEY, RSA PRIVATE KEY or ENCRYPTED PRIVATE KEY"
    )]
    Label(String),
    #[error("not a usable RSA private key ({0}); OCI API keys are RSA, 2048 bits or more")]
    Rejected(String),
}

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the URL has no host")]
    NoHost,
    #[error("header {0} has characters HTTP does not allow")]
    HeaderValue(&'static str),
    #[error("RSA signing failed")]
    Rsa,
}

/// An RSA private key that signs OCI requests. `Debug` shows only its size.
pub struct SigningKey {
    pair: RsaKeyPair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey(RSA {} bits)",
            self.pair.public().modulus_len() * 8
        )
    }
}

impl SigningKey {
    /// Reads a PEM private key as OCI users have them: PKCS#8
    /// (`BEGIN PRIVATE KEY`, what the OCI console generates), PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`, what `openssl genrsa` writes) or encrypted
    /// PKCS#8 (`BEGIN ENCRYPTED PRIVATE KEY`) or legacy encrypted PKCS#1
    /// (`Proc-Type: 4,ENCRYPTED`, what `openssl genrsa -aes128` wrote before
    /// OpenSSL 3) with `passphrase`.
    pub fn from_pem(pem: &str, passphrase: Option<&str>) -> Result<Self, KeyError> {
        let passphrase = passphrase.filter(|p| !p.is_empty());
        if is_legacy_encrypted(pem) {
            let passphrase = passphrase.ok_or(KeyError::PassphraseNeeded)?;
            let der = legacy_pem::decrypt(pem, passphrase)?;
            // Padding that happens to be valid under a wrong passphrase
            // leaves garbage that is no RSA key.
            let pair = RsaKeyPair::from_der(&der)
                .map_err(|_| KeyError::Legacy(LegacyPemError::Decrypt))?;
            return Ok(Self { pair });
        }
        let (label, der) = pkcs8::der::pem::decode_vec(pem.trim().as_bytes())
            .map_err(|e| KeyError::Pem(e.to_string()))?;
        let pair = match label {
            "ENCRYPTED PRIVATE KEY" => {
                let passphrase = passphrase.ok_or(KeyError::PassphraseNeeded)?;
                let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
                    .map_err(|e| KeyError::Pem(e.to_string()))?;
                let document = encrypted
                    .decrypt(passphrase)
                    .map_err(|e| KeyError::Decrypt(e.to_string()))?;
                RsaKeyPair::from_pkcs8(document.as_bytes())
            }
            _ if passphrase.is_some() => return Err(KeyError::NotEncrypted),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            other => return Err(KeyError::Label(other.to_string())),
        }
        .map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(Self { pair })
    }

    /// A key from PKCS#8 DER (session keys made in memory).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(Self { pair })
    }

    /// The public half as DER `RSAPublicKey` (PKCS#1).
    pub fn public_key_pkcs1_der(&self) -> &[u8] {
        self.pair.public().as_ref()
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| SignError::Rsa)?;
        Ok(signature)
    }
}

/// The headers a request of `method` must sign, in signing order.
fn signed_header_names(method: &Method) -> &'static [&'static str] {
    if has_signed_body(method) {
        &[
            "date",
            "(request-target)",
            "host",
            "content-length",
            "content-type",
            "x-content-sha256",
        ]
    } else {
        &["date", "(request-target)", "host"]
    }
}

fn has_signed_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

/// The `date` header value OCI expects (RFC 7231 IMF-fixdate).
pub fn http_date(now: DateTime<Utc>) -> String {
    now.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Signs a request in place: sets `date` (unless `date`/`x-date` is there),
/// `host`, the body headers for POST/PUT/PATCH, and `authorization`.
pub fn sign_request(
    key_id: &str,
    key: &SigningKey,
    method: &Method,
    url: &Url,
    headers: &mut HeaderMap,
    body: Option<&[u8]>,
    now: DateTime<Utc>,
) -> Result<(), SignError> {
    sign_with(key_id, key, method, url, headers, body, now, true)
}

/// [`sign_request`] without `host` among the signed headers: how OCI's SDKs
/// sign requests to the federation endpoint (instance principals).
pub fn sign_request_without_host(
    key_id: &str,
    key: &SigningKey,
    method: &Method,
    url: &Url,
    headers: &mut HeaderMap,
    body: Option<&[u8]>,
    now: DateTime<Utc>,
) -> Result<(), SignError> {
    sign_with(key_id, key, method, url, headers, body, now, false)
}

#[allow(clippy::too_many_arguments)]
fn sign_with(
    key_id: &str,
    key: &SigningKey,
    method: &Method,
    url: &Url,
    headers: &mut HeaderMap,
    body: Option<&[u8]>,
    now: DateTime<Utc>,
    sign_host: bool,
) -> Result<(), SignError> {
    let date_name = if headers.contains_key("x-date") {
        "x-date"
    } else {
        if !headers.contains_key("date") {
            set(headers, "date", &http_date(now))?;
        }
        "date"
    };
    let host = url.host_str().ok_or(SignError::NoHost)?;
    let host = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    set(headers, "host", &host)?;
    if has_signed_body(method) {
        let body = body.unwrap_or_default();
        if !headers.contains_key("content-type") {
            set(headers, "content-type", "application/json")?;
        }
        set(headers, "content-length", &body.len().to_string())?;
        set(
            headers,
            "x-content-sha256",
            &BASE64.encode(Sha256::digest(body)),
        )?;
    }

    let names: Vec<&str> = signed_header_names(method)
        .iter()
        .filter(|name| sign_host || **name != "host")
        .map(|name| if *name == "date" { date_name } else { name })
        .collect();
    let signing_string = signing_string(&names, method, url, headers);
    let signature = BASE64.encode(key.sign(signing_string.as_bytes())?);
    let authorization = format!(
        "Signature version=\"1\",keyId=\"{key_id}\",algorithm=\"rsa-sha256\",headers=\"{}\",signature=\"{signature}\"",
        names.join(" ")
    );
    set(headers, "authorization", &authorization)
}

/// The text that is signed: one `name: value` line per signed header.
fn signing_string(names: &[&str], method: &Method, url: &Url, headers: &HeaderMap) -> String {
    names
        .iter()
        .map(|name| {
            let value = if *name == "(request-target)" {
                let mut target = format!("{} {}", method.as_str().to_lowercase(), url.path());
                if let Some(query) = url.query() {
                    target.push('?');
                    target.push_str(query);
                }
                target
            } else {
                headers
                    .get(*name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            format!("{name}: {value}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) -> Result<(), SignError> {
    let value = HeaderValue::from_str(value).map_err(|_| SignError::HeaderValue(name))?;
    headers.insert(HeaderName::from_static(name), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use rsa::RsaPrivateKey;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};

    fn rsa_key(bits: usize) -> RsaPrivateKey {
        RsaPrivateKey::new(&mut rand::thread_rng(), bits).expect("key generation")
    }

    fn fixed_time() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T10:20:30Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    /// Splits an Authorization header into its parameters.
    fn parameters(authorization: &str) -> std::collections::BTreeMap<String, String> {
        authorization
            .strip_prefix("Signature ")
            .expect("Signature scheme")
            .split(',')
            .filter_map(|part| part.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect()
    }

    #[test]
    fn get_requests_sign_date_target_and_host() {
        let key = SigningKey::from_pem(
            &rsa_key(2048).to_pkcs8_pem(LineEnding::LF).expect("pem"),
            None,
        )
        .expect("key");
        let url =
            Url::parse("http://127.0.0.1:8080/20160918/publicIps?compartmentId=c%2F1&limit=5")
                .expect("url");
        let mut headers = HeaderMap::new();
        sign_request(
            "t/u/f",
            &key,
            &Method::GET,
            &url,
            &mut headers,
            None,
            fixed_time(),
        )
        .expect("signs");
        assert_eq!(headers["date"], "Tue, 01 Dec 2026 10:20:30 GMT");
        assert_eq!(headers["host"], "127.0.0.1:8080");
        assert!(!headers.contains_key("x-content-sha256"));
        let params = parameters(headers["authorization"].to_str().expect("ascii"));
        assert_eq!(params["version"], "1");
        assert_eq!(params["keyId"], "t/u/f");
        assert_eq!(params["algorithm"], "rsa-sha256");
        assert_eq!(params["headers"], "date (request-target) host");
        let expected = "date: Tue, 01 Dec 2026 10:20:30 GMT\n\
                        (request-target): get /20160918/publicIps?compartmentId=c%2F1&limit=5\n\
                        host: 127.0.0.1:8080";
        let signature = BASE64.decode(&params["signature"]).expect("base64");
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key_pkcs1_der())
            .verify(expected.as_bytes(), &signature)
            .expect("the signature covers exactly the documented signing string");
    }

    #[test]
    fn bodies_are_signed_by_length_type_and_digest() {
        let key = SigningKey::from_pem(
            &rsa_key(2048).to_pkcs1_pem(LineEnding::LF).expect("pem"),
            None,
        )
        .expect("PKCS#1 key");
        let url = Url::parse("https://iaas.eu-frankfurt-1.oraclecloud.com/20160918/publicIps")
            .expect("url");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-date",
            HeaderValue::from_static("Tue, 01 Dec 2026 10:00:00 GMT"),
        );
        let body = br#"{"lifetime":"RESERVED"}"#;
        sign_request(
            "k",
            &key,
            &Method::POST,
            &url,
            &mut headers,
            Some(body),
            fixed_time(),
        )
        .expect("signs");
        assert!(
            !headers.contains_key("date"),
            "x-date is kept, no date added"
        );
        assert_eq!(headers["host"], "iaas.eu-frankfurt-1.oraclecloud.com");
        assert_eq!(headers["content-length"], "23");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(
            headers["x-content-sha256"],
            BASE64.encode(Sha256::digest(body)).as_str()
        );
        let params = parameters(headers["authorization"].to_str().expect("ascii"));
        assert_eq!(
            params["headers"],
            "x-date (request-target) host content-length content-type x-content-sha256"
        );
        let expected = format!(
            "x-date: Tue, 01 Dec 2026 10:00:00 GMT\n(request-target): post /20160918/publicIps\n\
             host: iaas.eu-frankfurt-1.oraclecloud.com\ncontent-length: 23\n\
             content-type: application/json\nx-content-sha256: {}",
            BASE64.encode(Sha256::digest(body))
        );
        let signature = BASE64.decode(&params["signature"]).expect("base64");
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key_pkcs1_der())
            .verify(expected.as_bytes(), &signature)
            .expect("verifies");
    }

    #[test]
    fn empty_put_bodies_are_still_signed() {
        let key = SigningKey::from_pem(
            &rsa_key(2048).to_pkcs8_pem(LineEnding::LF).expect("pem"),
            None,
        )
        .expect("key");
        let url = Url::parse("http://localhost/x").expect("url");
        let mut headers = HeaderMap::new();
        sign_request(
            "k",
            &key,
            &Method::PUT,
            &url,
            &mut headers,
            None,
            fixed_time(),
        )
        .expect("signs");
        assert_eq!(headers["content-length"], "0");
        assert_eq!(
            headers["x-content-sha256"],
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(headers["host"], "localhost");
    }

    #[test]
    fn encrypted_pkcs8_keys_need_the_right_passphrase() {
        let key = rsa_key(2048);
        let encrypted = key
            .to_pkcs8_encrypted_pem(&mut rand::thread_rng(), "s3cret", LineEnding::LF)
            .expect("encrypts");
        assert_eq!(
            SigningKey::from_pem(&encrypted, None).expect_err("no passphrase"),
            KeyError::PassphraseNeeded
        );
        assert!(matches!(
            SigningKey::from_pem(&encrypted, Some("wrong")),
            Err(KeyError::Decrypt(_))
        ));
        let signing = SigningKey::from_pem(&encrypted, Some("s3cret")).expect("decrypts");
        let plain = SigningKey::from_pem(&key.to_pkcs8_pem(LineEnding::LF).expect("pem"), None)
            .expect("plain");
        assert_eq!(
            signing.public_key_pkcs1_der(),
            plain.public_key_pkcs1_der(),
            "the same key either way"
        );
        assert_eq!(
            SigningKey::from_pem(&key.to_pkcs8_pem(LineEnding::LF).expect("pem"), Some("x"))
                .expect_err("passphrase for a plain key"),
            KeyError::NotEncrypted
        );
    }

    /// Keys as `openssl genrsa -aes128` wrote them before OpenSSL 3 (and with
    /// `-traditional` since), made by the real openssl binary.
    #[test]
    fn legacy_encrypted_keys_from_openssl_open_with_their_passphrase() {
        for cipher in ["-aes128", "-aes256"] {
            let output = std::process::Command::new("openssl")
                .args([
                    "genrsa",
                    cipher,
                    "-traditional",
                    "-passout",
                    "pass:legacy",
                    "2048",
                ])
                .output()
                .expect("openssl runs");
            assert!(output.status.success(), "openssl genrsa {cipher}");
            let pem = String::from_utf8(output.stdout).expect("PEM text");
            assert!(
                pem.contains("Proc-Type: 4,ENCRYPTED"),
                "{cipher}: legacy format"
            );
            let key = SigningKey::from_pem(&pem, Some("legacy")).expect("decrypts");
            let signature = key.sign(b"message").expect("signs");
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key_pkcs1_der())
                .verify(b"message", &signature)
                .expect("a working key");
            assert!(matches!(
                SigningKey::from_pem(&pem, Some("wrong")),
                Err(KeyError::Legacy(LegacyPemError::Decrypt))
            ));
        }
    }

    #[test]
    fn unusable_keys_say_why_without_quoting_them() {
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                      DEK-Info: AES-128-CBC,00\n\nc2VjcmV0\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(
            SigningKey::from_pem(legacy, None).expect_err("legacy without passphrase"),
            KeyError::PassphraseNeeded
        );
        assert!(matches!(
            SigningKey::from_pem(legacy, Some("p")),
            Err(KeyError::Legacy(LegacyPemError::Malformed(_)))
        ));
        let garbage = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n";
        let error = SigningKey::from_pem(garbage, None).expect_err("garbage");
        assert!(!error.to_string().contains("c2VjcmV0"), "{error}");
        let small = rsa_key(1024).to_pkcs8_pem(LineEnding::LF).expect("pem");
        let error = SigningKey::from_pem(&small, None).expect_err("1024-bit key");
        assert!(error.to_string().contains("2048 bits"), "{error}");
        let public = "-----BEGIN PUBLIC KEY-----\nc2VjcmV0\n-----END PUBLIC KEY-----\n";
        assert!(matches!(
            SigningKey::from_pem(public, None),
            Err(KeyError::Label(_))
        ));
        assert!(
            format!(
                "{:?}",
                SigningKey::from_pem(
                    &rsa_key(2048).to_pkcs8_pem(LineEnding::LF).expect("pem"),
                    None
                )
                .expect("key")
            )
            .contains("2048 bits")
        );
    }
}
