//! The emulated auth services over HTTP:
//!
//! - instance metadata service v2 (`GET /opc/v2/...`, `Authorization: Bearer
//!   Oracle`) and X.509 federation (`POST /v1/x509`) on the main listener;
//! - OKE's proxymux (`POST /resourcePrincipalSessionTokens`, a ServiceAccount
//!   bearer token) on its own TLS listener.
//!
//! Both token flows issue into the one [`SessionStore`](crate::sessions::SessionStore),
//! whose tokens then sign Core Services calls as `keyId="ST$<token>"`.
//! Each service can be switched off; it then answers 503.

use crate::api::{error_response, header_map, new_request_id};
use crate::error::ApiError;
use crate::identity::certificate_fingerprint;
use crate::server::{HttpResponse, Shared, json_response, text_response};
use crate::sessions::{self, Principal, PrincipalType};
use crate::signature::{
    self, FederationKeyId, HeaderRules, KeyLookup, SESSION_KEY_PREFIX, SignedRequest,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::request::Parts;
use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::time::SystemTime;

/// The metadata service's base path (clients append `identity/cert.pem`, ...).
pub const METADATA_PREFIX: &str = "/opc/v2";
/// The federation endpoint's path (clients append it to the auth endpoint).
pub const FEDERATION_PATH: &str = "/v1/x509";
/// The proxymux's only path.
pub const PROXYMUX_PATH: &str = "/resourcePrincipalSessionTokens";

/// Operation names in the call log.
pub const INSTANCE_METADATA: &str = "InstanceMetadata";
pub const X509_FEDERATION: &str = "X509Federation";
pub const RESOURCE_PRINCIPAL_SESSION_TOKEN: &str = "ResourcePrincipalSessionToken";

/// What the metadata service v2 requires of every request.
const METADATA_AUTHORIZATION: &str = "Bearer Oracle";

/// The auth services' URLs, given the listeners' addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUrls {
    /// `http://127.0.0.1:<port>/opc/v2`
    pub metadata: String,
    /// `http://127.0.0.1:<port>` (clients append `/v1/x509`)
    pub federation: String,
    /// `https://127.0.0.1:<port>/resourcePrincipalSessionTokens`
    pub proxymux: String,
}

impl AuthUrls {
    pub fn new(api: SocketAddr, proxymux: SocketAddr) -> Self {
        Self {
            metadata: format!("http://{api}{METADATA_PREFIX}"),
            federation: format!("http://{api}"),
            proxymux: format!("https://{proxymux}{PROXYMUX_PATH}"),
        }
    }
}

/// Whether the main listener's `path` belongs to the auth services.
pub fn serves(path: &str) -> bool {
    path == FEDERATION_PATH
        || path == METADATA_PREFIX
        || path.starts_with(&format!("{METADATA_PREFIX}/"))
}

/// A request on the main listener for which [`serves`] is true.
pub fn handle(shared: &Shared, parts: &Parts, body: &[u8]) -> HttpResponse {
    let request_id = new_request_id();
    let (operation, result) = if parts.uri.path() == FEDERATION_PATH {
        (X509_FEDERATION, federation(shared, parts, body))
    } else {
        (INSTANCE_METADATA, metadata(shared, parts))
    };
    respond(shared, operation, result, &request_id)
}

/// A request on the proxymux's listener.
pub fn handle_proxymux(shared: &Shared, parts: &Parts, body: &[u8]) -> HttpResponse {
    let request_id = new_request_id();
    if parts.method != http::Method::POST || parts.uri.path() != PROXYMUX_PATH {
        shared.record("Unknown", "404");
        let error = ApiError::no_route(parts.method.as_str(), parts.uri.path());
        return error_response(&error, &request_id);
    }
    let result = proxymux(shared, parts, body);
    respond(
        shared,
        RESOURCE_PRINCIPAL_SESSION_TOKEN,
        result,
        &request_id,
    )
}

fn respond(
    shared: &Shared,
    operation: &str,
    result: Result<HttpResponse, ApiError>,
    request_id: &str,
) -> HttpResponse {
    let response = match result {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(operation, %error, "auth service refused");
            error_response(&error, request_id)
        }
    };
    shared.record(operation, response.status().as_str());
    response
}

fn unavailable(service: &str) -> ApiError {
    ApiError::new(
        503,
        "ServiceUnavailable",
        format!("The {service} is unavailable (switched off in the emulator)"),
    )
}

/// `GET /opc/v2/{identity/cert.pem, identity/key.pem,
/// identity/intermediate.pem, instance/region, instance/regionInfo,
/// instance/id}`.
fn metadata(shared: &Shared, parts: &Parts) -> Result<HttpResponse, ApiError> {
    if !shared.metadata_available() {
        return Err(unavailable("instance metadata service"));
    }
    let authorization = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if authorization.map(str::trim) != Some(METADATA_AUTHORIZATION) {
        return Err(ApiError::new(
            401,
            "NotAuthenticated",
            "The instance metadata service v2 needs the header Authorization: Bearer Oracle",
        ));
    }
    let not_found = || ApiError::no_route(parts.method.as_str(), parts.uri.path());
    if parts.method != http::Method::GET {
        return Err(not_found());
    }
    let identity = shared.identity();
    let config = shared.identity_config();
    let pem = "application/x-pem-file";
    let text = "text/plain";
    let response = match parts.uri.path().strip_prefix(METADATA_PREFIX) {
        Some("/identity/cert.pem") => text_response(200, pem, identity.leaf_pem()),
        Some("/identity/key.pem") => text_response(200, pem, identity.leaf_key_pem()),
        Some("/identity/intermediate.pem") => text_response(200, pem, identity.intermediate_pem()),
        Some("/instance/region") => text_response(200, text, &config.region),
        Some("/instance/id") => text_response(200, text, &config.instance_id),
        Some("/instance/regionInfo") => json_response(
            200,
            Some(&json!({
                "realmKey": config.realm_key,
                "realmDomainComponent": config.realm_domain,
                "regionKey": config.region_key,
                "regionIdentifier": config.region,
            })),
            &[],
        ),
        _ => return Err(not_found()),
    };
    Ok(response)
}

/// The body of `POST /v1/x509`. Unknown fields are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FederationRequest {
    /// The leaf certificate, base64 DER.
    certificate: String,
    /// The session public key, base64 DER SubjectPublicKeyInfo.
    public_key: String,
    #[serde(default)]
    intermediate_certificates: Vec<String>,
}

/// The leaf's key, under the one keyId that names it.
struct LeafKey<'a> {
    tenancy_id: &'a str,
    fingerprint: &'a str,
    key: &'a RsaPublicKey,
}

impl KeyLookup for LeafKey<'_> {
    fn public_key(&self, key_id: &str) -> Result<&RsaPublicKey, String> {
        let given = FederationKeyId::parse(key_id).map_err(|e| e.to_string())?;
        if given.tenancy_id != self.tenancy_id {
            return Err(format!(
                "keyId names tenancy {}, the instance certificate's is {}",
                given.tenancy_id, self.tenancy_id
            ));
        }
        if given.fingerprint != self.fingerprint {
            return Err(
                "keyId fingerprint is not that of the instance certificate this emulator issued"
                    .into(),
            );
        }
        Ok(self.key)
    }
}

/// `POST /v1/x509`: a session for the instance principal, requested with a
/// signature by the leaf certificate's key.
fn federation(shared: &Shared, parts: &Parts, body: &[u8]) -> Result<HttpResponse, ApiError> {
    if !shared.federation_available() {
        return Err(unavailable("X.509 federation service"));
    }
    if parts.method != http::Method::POST {
        return Err(ApiError::no_route(parts.method.as_str(), parts.uri.path()));
    }
    let identity = shared.identity();
    let config = shared.identity_config();
    // The signature first: it also proves the body is the one that was signed.
    if shared.verify_signatures {
        let headers = header_map(parts);
        let signed = SignedRequest {
            method: parts.method.as_str(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or(FEDERATION_PATH),
            headers: &headers,
            body,
        };
        let leaf = LeafKey {
            tenancy_id: &config.tenancy_id,
            fingerprint: identity.leaf_fingerprint(),
            key: identity.leaf_public_key(),
        };
        signature::verify_with(
            &signed,
            &leaf,
            chrono::Utc::now(),
            shared.max_clock_skew,
            HeaderRules::FEDERATION,
        )
        .map_err(ApiError::not_authenticated)?;
    }
    let request: FederationRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::cannot_parse(format!("Invalid X509FederationRequest: {e}")))?;
    let certificate = decode_der("certificate", &request.certificate)?;
    if certificate != identity.leaf_der() {
        return Err(ApiError::not_authenticated(format!(
            "the certificate (fingerprint {}) is not the instance certificate this emulator issued",
            certificate_fingerprint(&certificate)
        )));
    }
    for (index, intermediate) in request.intermediate_certificates.iter().enumerate() {
        let der = decode_der("intermediateCertificates", intermediate)?;
        if der != identity.intermediate_der() {
            return Err(ApiError::not_authenticated(format!(
                "intermediateCertificates[{index}] is not the intermediate this emulator issued"
            )));
        }
    }
    let public_key =
        RsaPublicKey::from_public_key_der(&decode_der("publicKey", &request.public_key)?)
            .map_err(|e| ApiError::invalid(format!("publicKey is not an RSA public key: {e}")))?;
    let principal = Principal {
        kind: PrincipalType::Instance,
        subject: config.instance_id.clone(),
        tenancy_id: config.tenancy_id.clone(),
    };
    let token = shared
        .sessions()
        .issue(principal, public_key, SystemTime::now());
    Ok(json_response(
        200,
        Some(&json!({ "token": token })),
        &[("opc-request-id", new_request_id())],
    ))
}

/// Base64 DER as OCI's SDKs send it (no PEM armour, no line breaks).
fn decode_der(field: &str, value: &str) -> Result<Vec<u8>, ApiError> {
    match BASE64.decode(value) {
        Ok(der) if !der.is_empty() => Ok(der),
        _ => Err(ApiError::invalid(format!(
            "{field} must be base64 DER without PEM header or line breaks"
        ))),
    }
}

/// The body of `POST /resourcePrincipalSessionTokens`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProxymuxRequest {
    /// The session public key, PEM.
    pod_key: String,
}

/// `POST /resourcePrincipalSessionTokens`: a session for the workload whose
/// ServiceAccount token is the bearer token.
fn proxymux(shared: &Shared, parts: &Parts, body: &[u8]) -> Result<HttpResponse, ApiError> {
    if !shared.proxymux_available() {
        return Err(unavailable("proxymux"));
    }
    let config = shared.identity_config();
    let bearer = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::not_authenticated("Authorization: Bearer <service account token> is missing")
        })?;
    let accepted = &config.service_account_tokens;
    if !accepted.is_empty() && !accepted.iter().any(|t| t == bearer) {
        return Err(ApiError::not_authenticated(
            "the service account token is not one this emulator accepts",
        ));
    }
    let request: ProxymuxRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::cannot_parse(format!("Invalid request body: {e}")))?;
    let public_key = signature::parse_public_key(&request.pod_key)
        .map_err(|e| ApiError::invalid(format!("podKey is not an RSA public key PEM: {e}")))?;
    let principal = Principal {
        kind: PrincipalType::Resource,
        subject: service_account_subject(bearer),
        tenancy_id: config.tenancy_id.clone(),
    };
    let token = shared
        .sessions()
        .issue(principal, public_key, SystemTime::now());
    // OKE's answer: a JSON string holding base64 of {"token": "ST$<token>"}.
    let document = json!({ "token": format!("{SESSION_KEY_PREFIX}{token}") }).to_string();
    let body = serde_json::Value::String(BASE64.encode(document));
    Ok(json_response(
        200,
        Some(&body),
        &[("opc-request-id", new_request_id())],
    ))
}

/// The `sub` of a ServiceAccount token that is a JWT
/// (`system:serviceaccount:<namespace>:<name>`); opaque tokens name no one.
fn service_account_subject(bearer: &str) -> String {
    sessions::claims(bearer)
        .ok()
        .and_then(|claims| claims.get("sub")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "serviceaccount".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;

    #[test]
    fn urls_and_paths() {
        let urls = AuthUrls::new(
            "127.0.0.1:8080".parse().expect("addr"),
            "127.0.0.1:12250".parse().expect("addr"),
        );
        assert_eq!(urls.metadata, "http://127.0.0.1:8080/opc/v2");
        assert_eq!(urls.federation, "http://127.0.0.1:8080");
        assert_eq!(
            urls.proxymux,
            "https://127.0.0.1:12250/resourcePrincipalSessionTokens"
        );
        assert!(serves("/opc/v2/identity/cert.pem"));
        assert!(serves("/v1/x509"));
        assert!(!serves("/opc/v2x"));
        assert!(!serves("/v1/x509/more"));
        assert!(!serves("/20160918/publicIps"));
    }

    #[test]
    fn service_account_subject_from_a_jwt_or_not() {
        let claims = BASE64URL.encode(r#"{"sub":"system:serviceaccount:ns:sa"}"#);
        assert_eq!(
            service_account_subject(&format!("h.{claims}.s")),
            "system:serviceaccount:ns:sa"
        );
        assert_eq!(service_account_subject("opaque"), "serviceaccount");
    }
}
