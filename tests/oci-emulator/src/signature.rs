//! OCI request signature verification (draft-cavage HTTP signatures,
//! rsa-sha256), as OCI's API gateway checks it:
//!
//! - `Authorization: Signature version="1",headers="...",keyId="...",algorithm="rsa-sha256",signature="..."`
//! - signed headers must include `(request-target)`, `host` and `date` or `x-date`;
//!   POST/PUT/PATCH also `content-length`, `content-type`, `x-content-sha256`;
//! - `x-content-sha256` must be the base64 SHA-256 of the body and
//!   `content-length` its length;
//! - the date must be within the allowed clock skew (5 minutes).
//!
//! Keys: API keys (`<tenancy>/<user>/<fingerprint>`) from the [`KeyStore`],
//! session tokens (`ST$<token>`) from the [`SessionStore`], and for X.509
//! federation `<tenancy>/fed-x509/<certificate fingerprint>` (see
//! [`FederationKeyId`]), whose requests OCI's SDKs sign without `host`.

use crate::sessions::SessionStore;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use md5::Md5;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Prefix of a keyId that is a session token.
pub const SESSION_KEY_PREFIX: &str = "ST$";

/// Why a key could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key {0}: give publicKeyPem or publicKeyFile")]
    NoKey(String),
    #[error("cannot read public key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid RSA public key PEM: {0}")]
    Pem(String),
    #[error("keyId needs either keyId or tenancyId and userId")]
    NoKeyId,
    #[error("key {key_id}: deny names {operation:?}, which is not an emulated operation")]
    UnknownOperation { key_id: String, operation: String },
}

/// A key to register: the public key PEM (`BEGIN PUBLIC KEY` or
/// `BEGIN RSA PUBLIC KEY`) inline or in a file, and either a full `keyId` or
/// `tenancyId` + `userId` (the fingerprint is then computed, as OCI does).
///
/// `deny` lists operations (e.g. `ListPrivateIps`) this key may not call:
/// once the signature is verified, such a call is answered as OCI answers a
/// caller whose IAM policy lacks the permission, 404
/// `NotAuthorizedOrNotFound`, and changes nothing. The emulator has no IAM
/// otherwise: without `deny` a key may do everything.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeySpec {
    pub key_id: Option<String>,
    pub tenancy_id: Option<String>,
    pub user_id: Option<String>,
    pub public_key_pem: Option<String>,
    pub public_key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

impl KeySpec {
    /// Makes a relative `publicKeyFile` relative to `dir`.
    pub fn resolve_relative_to(&mut self, dir: &Path) {
        if let Some(file) = &self.public_key_file
            && Path::new(file).is_relative()
        {
            self.public_key_file = Some(dir.join(file).display().to_string());
        }
    }
}

/// Registered public keys by keyId, and the operations each may not call.
#[derive(Debug, Clone, Default)]
pub struct KeyStore {
    keys: HashMap<String, RsaPublicKey>,
    denied: HashMap<String, BTreeSet<String>>,
}

impl KeyStore {
    /// Registers a key (again: replaces its public key and refusals);
    /// returns its keyId.
    pub fn register(&mut self, spec: &KeySpec) -> Result<String, KeyError> {
        let pem = match (&spec.public_key_pem, &spec.public_key_file) {
            (Some(pem), _) => pem.clone(),
            (None, Some(file)) => {
                std::fs::read_to_string(file).map_err(|source| KeyError::Read {
                    path: file.clone(),
                    source,
                })?
            }
            (None, None) => {
                return Err(KeyError::NoKey(
                    spec.key_id.clone().unwrap_or_else(|| "(no keyId)".into()),
                ));
            }
        };
        let key = parse_public_key(&pem)?;
        let key_id = match (&spec.key_id, &spec.tenancy_id, &spec.user_id) {
            (Some(key_id), _, _) => key_id.clone(),
            (None, Some(tenancy), Some(user)) => format!("{tenancy}/{user}/{}", fingerprint(&key)?),
            _ => return Err(KeyError::NoKeyId),
        };
        // A misspelt operation would silently refuse nothing: reject it.
        if let Some(unknown) = spec
            .deny
            .iter()
            .find(|op| !crate::routes::OPERATIONS.contains(&op.as_str()))
        {
            return Err(KeyError::UnknownOperation {
                key_id,
                operation: unknown.clone(),
            });
        }
        self.keys.insert(key_id.clone(), key);
        self.denied
            .insert(key_id.clone(), spec.deny.iter().cloned().collect());
        Ok(key_id)
    }

    /// Whether `key_id` may not call `operation` (its `deny` list).
    pub fn denies(&self, key_id: &str, operation: &str) -> bool {
        self.denied
            .get(key_id)
            .is_some_and(|ops| ops.contains(operation))
    }

    pub fn key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.keys.keys().cloned().collect();
        ids.sort();
        ids
    }

    fn get(&self, key_id: &str) -> Option<&RsaPublicKey> {
        self.keys.get(key_id)
    }
}

/// Where [`verify`] finds the public key of a keyId; `Err` is the 401's reason.
pub trait KeyLookup {
    fn public_key(&self, key_id: &str) -> Result<&RsaPublicKey, String>;
}

impl KeyLookup for KeyStore {
    fn public_key(&self, key_id: &str) -> Result<&RsaPublicKey, String> {
        self.get(key_id)
            .ok_or_else(|| format!("unknown keyId {key_id}"))
    }
}

/// The keys of Core Services calls: session tokens (`ST$...`) as of `now`,
/// API keys otherwise.
pub struct ApiKeys<'a> {
    pub keys: &'a KeyStore,
    pub sessions: &'a SessionStore,
    pub now: SystemTime,
}

impl KeyLookup for ApiKeys<'_> {
    fn public_key(&self, key_id: &str) -> Result<&RsaPublicKey, String> {
        match key_id.strip_prefix(SESSION_KEY_PREFIX) {
            Some(token) => self
                .sessions
                .public_key(token, self.now)
                .map_err(|e| e.to_string()),
            None => self.keys.public_key(key_id),
        }
    }
}

/// The keyId of an X.509 federation request,
/// `<tenancy ocid>/fed-x509/<SHA-1 fingerprint of the leaf certificate>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationKeyId {
    pub tenancy_id: String,
    /// Lowercase, colon-separated hex of 20 bytes.
    pub fingerprint: String,
}

/// Why a keyId is no federation keyId.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FederationKeyIdError {
    #[error("keyId is not <tenancy>/fed-x509/<fingerprint>")]
    Shape,
    #[error("keyId fingerprint is not 20 colon-separated lowercase hex bytes")]
    Fingerprint,
}

impl FederationKeyId {
    pub fn parse(key_id: &str) -> Result<Self, FederationKeyIdError> {
        let mut parts = key_id.split('/');
        let (Some(tenancy_id), Some("fed-x509"), Some(fingerprint), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(FederationKeyIdError::Shape);
        };
        if tenancy_id.is_empty() {
            return Err(FederationKeyIdError::Shape);
        }
        let bytes: Vec<&str> = fingerprint.split(':').collect();
        let well_formed = bytes.len() == 20
            && bytes.iter().all(|b| {
                b.len() == 2
                    && b.bytes()
                        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            });
        if !well_formed {
            return Err(FederationKeyIdError::Fingerprint);
        }
        Ok(Self {
            tenancy_id: tenancy_id.to_string(),
            fingerprint: fingerprint.to_string(),
        })
    }
}

impl std::fmt::Display for FederationKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/fed-x509/{}", self.tenancy_id, self.fingerprint)
    }
}

/// Which headers must be signed besides the date and the body headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRules {
    /// Core Services calls sign `host`; OCI's SDKs leave it out of X.509
    /// federation requests, so that endpoint accepts both.
    pub require_host: bool,
}

impl HeaderRules {
    /// Core Services calls.
    pub const API: Self = Self { require_host: true };
    /// X.509 federation.
    pub const FEDERATION: Self = Self {
        require_host: false,
    };
}

/// Parses a public key PEM, SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`) or
/// PKCS#1 (`BEGIN RSA PUBLIC KEY`).
pub fn parse_public_key(pem: &str) -> Result<RsaPublicKey, KeyError> {
    let pem = pem.trim();
    if pem.contains("BEGIN RSA PUBLIC KEY") {
        RsaPublicKey::from_pkcs1_pem(pem).map_err(|e| KeyError::Pem(e.to_string()))
    } else {
        RsaPublicKey::from_public_key_pem(pem).map_err(|e| KeyError::Pem(e.to_string()))
    }
}

/// OCI's API key fingerprint: MD5 of the DER SubjectPublicKeyInfo, as
/// colon-separated lowercase hex.
pub fn fingerprint(key: &RsaPublicKey) -> Result<String, KeyError> {
    let der = key
        .to_public_key_der()
        .map_err(|e| KeyError::Pem(e.to_string()))?;
    Ok(colon_hex(&Md5::digest(der.as_bytes())))
}

/// `ab:cd:...`: how OCI writes fingerprints.
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Fingerprint of a public key PEM.
pub fn fingerprint_of_pem(pem: &str) -> Result<String, KeyError> {
    fingerprint(&parse_public_key(pem)?)
}

/// The parts of a request the signature covers.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Path and query exactly as received.
    pub path_and_query: &'a str,
    /// Header values by lowercase name (first value of each).
    pub headers: &'a BTreeMap<String, String>,
    pub body: &'a [u8],
}

/// Checks the signature of a Core Services call; `Ok(keyId)` or a short
/// reason for the 401.
pub fn verify(
    request: &SignedRequest<'_>,
    keys: &impl KeyLookup,
    now: DateTime<Utc>,
    max_skew: Duration,
) -> Result<String, String> {
    verify_with(request, keys, now, max_skew, HeaderRules::API)
}

/// [`verify`] with other header rules.
pub fn verify_with(
    request: &SignedRequest<'_>,
    keys: &impl KeyLookup,
    now: DateTime<Utc>,
    max_skew: Duration,
    rules: HeaderRules,
) -> Result<String, String> {
    let authorization = request
        .headers
        .get("authorization")
        .ok_or("missing Authorization header")?;
    let params = parse_authorization(authorization)?;
    let param = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("Authorization has no {name}"))
    };
    if params.get("version").is_some_and(|v| v != "1") {
        return Err("unsupported signature version".into());
    }
    if param("algorithm")? != "rsa-sha256" {
        return Err("algorithm must be rsa-sha256".into());
    }
    let key_id = param("keyId")?;
    let signed: Vec<&str> = param("headers")?.split_whitespace().collect();
    let signature = BASE64
        .decode(param("signature")?)
        .map_err(|_| "signature is not base64".to_string())?;

    require(&signed, "(request-target)")?;
    if rules.require_host {
        require(&signed, "host")?;
    }
    let date_header = if signed.contains(&"x-date") {
        "x-date"
    } else if signed.contains(&"date") {
        "date"
    } else {
        return Err("date or x-date must be signed".into());
    };
    let method = request.method.to_ascii_lowercase();
    if matches!(method.as_str(), "post" | "put" | "patch") {
        for name in ["content-length", "content-type", "x-content-sha256"] {
            require(&signed, name)?;
        }
        check_body(request)?;
    }
    check_date(request.headers.get(date_header), now, max_skew)?;

    let mut lines = Vec::with_capacity(signed.len());
    for name in &signed {
        let value = if *name == "(request-target)" {
            format!("{method} {}", request.path_and_query)
        } else {
            request
                .headers
                .get(*name)
                .cloned()
                .ok_or_else(|| format!("signed header {name} is missing"))?
        };
        lines.push(format!("{name}: {value}"));
    }
    let signing_string = lines.join("\n");

    let key = keys.public_key(key_id)?;
    let digest = Sha256::digest(signing_string.as_bytes());
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
        .map_err(|_| "signature does not match".to_string())?;
    Ok(key_id.to_string())
}

fn require(signed: &[&str], name: &str) -> Result<(), String> {
    if signed.contains(&name) {
        Ok(())
    } else {
        Err(format!("{name} must be signed"))
    }
}

fn check_body(request: &SignedRequest<'_>) -> Result<(), String> {
    let expected = BASE64.encode(Sha256::digest(request.body));
    match request.headers.get("x-content-sha256") {
        Some(given) if *given == expected => {}
        Some(_) => return Err("x-content-sha256 does not match the body".into()),
        None => return Err("missing x-content-sha256".into()),
    }
    match request.headers.get("content-length") {
        Some(length) if length.trim() == request.body.len().to_string() => Ok(()),
        _ => Err("content-length does not match the body".into()),
    }
}

fn check_date(
    value: Option<&String>,
    now: DateTime<Utc>,
    max_skew: Duration,
) -> Result<(), String> {
    let value = value.ok_or("signed date header is missing")?;
    let date = DateTime::parse_from_rfc2822(value)
        .map_err(|_| format!("cannot parse date {value:?}"))?
        .with_timezone(&Utc);
    let skew = (now - date).abs().to_std().unwrap_or(Duration::MAX);
    if skew > max_skew {
        return Err(format!("date {value} is more than {max_skew:?} from now"));
    }
    Ok(())
}

/// `Signature k1="v1",k2="v2"` -> {k1: v1, k2: v2}.
fn parse_authorization(value: &str) -> Result<HashMap<String, String>, String> {
    let rest = value
        .trim()
        .strip_prefix("Signature ")
        .ok_or("Authorization is not a Signature")?;
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or("malformed Authorization parameter")?;
        let after = after
            .strip_prefix('"')
            .ok_or("Authorization values must be quoted")?;
        let end = after.find('"').ok_or("unterminated Authorization value")?;
        params.insert(name.trim().to_string(), after[..end].to_string());
        rest = after[end + 1..].trim_start_matches([',', ' ']);
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::RsaPrivateKey;
    use rsa::pkcs8::LineEnding;

    struct Fixture {
        private: RsaPrivateKey,
        keys: KeyStore,
    }

    fn fixture() -> Fixture {
        let mut rng = rand::thread_rng();
        let private = RsaPrivateKey::new(&mut rng, 1024).expect("key");
        let pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("pem");
        let mut keys = KeyStore::default();
        keys.register(&KeySpec {
            key_id: Some("t/u/f".into()),
            public_key_pem: Some(pem),
            ..KeySpec::default()
        })
        .expect("registers");
        Fixture { private, keys }
    }

    fn sign(
        private: &RsaPrivateKey,
        headers: &mut BTreeMap<String, String>,
        names: &[&str],
        target: &str,
    ) {
        let lines: Vec<String> = names
            .iter()
            .map(|n| {
                let v = if *n == "(request-target)" {
                    target.to_string()
                } else {
                    headers[*n].clone()
                };
                format!("{n}: {v}")
            })
            .collect();
        let digest = Sha256::digest(lines.join("\n").as_bytes());
        let signature = private
            .sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
            .expect("signs");
        headers.insert(
            "authorization".into(),
            format!(
                r#"Signature version="1",headers="{}",keyId="t/u/f",algorithm="rsa-sha256",signature="{}""#,
                names.join(" "),
                BASE64.encode(signature)
            ),
        );
    }

    fn post_headers(body: &[u8], now: DateTime<Utc>) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("host".to_string(), "127.0.0.1:1".to_string()),
            (
                "x-date".to_string(),
                now.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            ),
            ("content-type".to_string(), "application/json".to_string()),
            ("content-length".to_string(), body.len().to_string()),
            (
                "x-content-sha256".to_string(),
                BASE64.encode(Sha256::digest(body)),
            ),
        ])
    }

    const POST_SIGNED: [&str; 6] = [
        "(request-target)",
        "host",
        "x-date",
        "content-type",
        "content-length",
        "x-content-sha256",
    ];

    #[test]
    fn accepts_a_good_post_and_rejects_tampering() {
        let f = fixture();
        let now = Utc::now();
        let body = br#"{"a":1}"#;
        let mut headers = post_headers(body, now);
        sign(
            &f.private,
            &mut headers,
            &POST_SIGNED,
            "post /20160918/publicIps",
        );
        let request = SignedRequest {
            method: "POST",
            path_and_query: "/20160918/publicIps",
            headers: &headers,
            body,
        };
        let skew = Duration::from_secs(300);
        assert_eq!(
            verify(&request, &f.keys, now, skew),
            Ok("t/u/f".to_string())
        );

        let tampered = SignedRequest {
            body: br#"{"a":2}"#,
            ..request
        };
        assert!(
            verify(&tampered, &f.keys, now, skew)
                .unwrap_err()
                .contains("x-content-sha256")
        );

        let other_path = SignedRequest {
            path_and_query: "/20160918/publicIps?x=1",
            body,
            ..tampered
        };
        assert!(
            verify(&other_path, &f.keys, now, skew)
                .unwrap_err()
                .contains("does not match")
        );

        let late = now + chrono::Duration::minutes(6);
        let stale = SignedRequest {
            path_and_query: "/20160918/publicIps",
            ..other_path
        };
        assert!(
            verify(&stale, &f.keys, late, skew)
                .unwrap_err()
                .contains("more than")
        );
    }

    #[test]
    fn post_must_sign_body_headers() {
        let f = fixture();
        let now = Utc::now();
        let body = b"{}";
        let mut headers = post_headers(body, now);
        sign(
            &f.private,
            &mut headers,
            &["(request-target)", "host", "x-date"],
            "post /p",
        );
        let request = SignedRequest {
            method: "POST",
            path_and_query: "/p",
            headers: &headers,
            body,
        };
        let error = verify(&request, &f.keys, now, Duration::from_secs(300)).unwrap_err();
        assert!(error.contains("content-length must be signed"), "{error}");
    }

    #[test]
    fn unknown_key_and_garbage_are_rejected() {
        let f = fixture();
        let now = Utc::now();
        let mut headers = post_headers(b"", now);
        sign(
            &f.private,
            &mut headers,
            &["(request-target)", "host", "x-date"],
            "get /p",
        );
        let auth = headers["authorization"].replace("t/u/f", "t/u/other");
        headers.insert("authorization".into(), auth);
        let request = SignedRequest {
            method: "GET",
            path_and_query: "/p",
            headers: &headers,
            body: b"",
        };
        let error = verify(&request, &f.keys, now, Duration::from_secs(300)).unwrap_err();
        assert!(error.contains("unknown keyId"), "{error}");
        assert!(parse_authorization("Basic abc").is_err());
        assert!(parse_authorization(r#"Signature keyId=unquoted"#).is_err());
    }

    #[test]
    fn federation_may_leave_host_unsigned_the_api_may_not() {
        let f = fixture();
        let now = Utc::now();
        let body = br#"{"certificate":"x"}"#;
        let mut headers = post_headers(body, now);
        headers.remove("host");
        let names = [
            "x-date",
            "(request-target)",
            "content-length",
            "content-type",
            "x-content-sha256",
        ];
        sign(&f.private, &mut headers, &names, "post /v1/x509");
        let request = SignedRequest {
            method: "POST",
            path_and_query: "/v1/x509",
            headers: &headers,
            body,
        };
        let skew = Duration::from_secs(300);
        let error = verify(&request, &f.keys, now, skew).unwrap_err();
        assert!(error.contains("host must be signed"), "{error}");
        assert_eq!(
            verify_with(&request, &f.keys, now, skew, HeaderRules::FEDERATION),
            Ok("t/u/f".to_string())
        );
    }

    #[test]
    fn session_keys_come_from_the_session_store() {
        use crate::sessions::{Principal, PrincipalType, SessionStore};
        let f = fixture();
        let now = Utc::now();
        let mut sessions = SessionStore::new(Duration::from_secs(60));
        let token = sessions.issue(
            Principal {
                kind: PrincipalType::Resource,
                subject: "s".into(),
                tenancy_id: "t".into(),
            },
            f.private.to_public_key(),
            SystemTime::now(),
        );
        let key_id = format!("ST${token}");
        let mut headers = post_headers(b"", now);
        sign(
            &f.private,
            &mut headers,
            &["(request-target)", "host", "x-date"],
            "get /p",
        );
        let auth = headers["authorization"].replace("t/u/f", &key_id);
        headers.insert("authorization".into(), auth);
        let request = SignedRequest {
            method: "GET",
            path_and_query: "/p",
            headers: &headers,
            body: b"",
        };
        let skew = Duration::from_secs(300);
        let check = |sessions: &SessionStore, at: SystemTime| {
            let keys = ApiKeys {
                keys: &f.keys,
                sessions,
                now: at,
            };
            verify(&request, &keys, now, skew)
        };
        assert_eq!(check(&sessions, SystemTime::now()), Ok(key_id.clone()));
        let later = SystemTime::now() + Duration::from_secs(61);
        assert_eq!(
            check(&sessions, later),
            Err("session token expired".to_string())
        );
        sessions.revoke_all();
        assert_eq!(
            check(&sessions, SystemTime::now()),
            Err("session token revoked".to_string())
        );
        let empty = SessionStore::new(Duration::from_secs(60));
        assert_eq!(
            check(&empty, SystemTime::now()),
            Err("unknown session token".to_string())
        );
        // API keys still resolve through the same lookup.
        let keys = ApiKeys {
            keys: &f.keys,
            sessions: &empty,
            now: SystemTime::now(),
        };
        assert!(keys.public_key("t/u/f").is_ok());
    }

    #[test]
    fn federation_key_ids_parse() {
        let fingerprint = "a9:99:3e:36:47:06:81:6a:ba:3e:25:71:78:50:c2:6c:9c:d0:d8:9d";
        let key_id = format!("ocid1.tenancy.oc1..t/fed-x509/{fingerprint}");
        let parsed = FederationKeyId::parse(&key_id).expect("parses");
        assert_eq!(parsed.tenancy_id, "ocid1.tenancy.oc1..t");
        assert_eq!(parsed.fingerprint, fingerprint);
        assert_eq!(parsed.to_string(), key_id);
        for shape in [
            "ocid1.tenancy.oc1..t/user/a9:99",
            "/fed-x509/a9",
            "t/fed-x509",
            "t/fed-x509/a9/extra",
        ] {
            assert_eq!(
                FederationKeyId::parse(shape),
                Err(FederationKeyIdError::Shape),
                "{shape}"
            );
        }
        for fingerprint in [
            "a9:99",
            "A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D",
            "a9993e364706816aba3e25717850c26c9cd0d89d",
            "zz:99:3e:36:47:06:81:6a:ba:3e:25:71:78:50:c2:6c:9c:d0:d8:9d",
        ] {
            assert_eq!(
                FederationKeyId::parse(&format!("t/fed-x509/{fingerprint}")),
                Err(FederationKeyIdError::Fingerprint),
                "{fingerprint}"
            );
        }
    }

    #[test]
    fn fingerprint_is_colon_separated_md5() {
        let f = fixture();
        let fp = fingerprint(&f.private.to_public_key()).expect("fingerprint");
        assert_eq!(fp.len(), 47);
        assert_eq!(fp.matches(':').count(), 15);
    }
}
