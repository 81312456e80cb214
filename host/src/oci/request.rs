//! The pieces of one HTTP request to OCI and of its answer: URLs, query
//! parameters, headers, and OCI's errors turned into [`OciError`]s.

use super::error::{OciError, OciResult};
use super::model::*;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::time::Instant;
use url::Url;

/// OCI Core Services API version prefix.
const API_VERSION: &str = "20160918";

/// One request to make.
pub(super) struct Call<'a> {
    pub(super) operation: &'static str,
    pub(super) method: Method,
    pub(super) path: &'a str,
    pub(super) query: Vec<(&'static str, String)>,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: Option<Vec<u8>>,
}

impl<'a> Call<'a> {
    pub(super) fn new(operation: &'static str, method: Method, path: &'a str) -> Self {
        Self {
            operation,
            method,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub(super) fn query(mut self, query: Vec<(&'static str, String)>) -> Self {
        self.query = query;
        self
    }

    pub(super) fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    pub(super) fn json<T: serde::Serialize + ?Sized>(mut self, body: &T) -> OciResult<Self> {
        let bytes = serde_json::to_vec(body).map_err(|e| OciError::Decode {
            operation: self.operation,
            status: 0,
            message: format!("cannot encode request body: {e}"),
            request_id: None,
        })?;
        self.body = Some(bytes);
        Ok(self)
    }
}

/// A successful answer.
pub(super) struct Answer {
    pub(super) operation: &'static str,
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) request_id: Option<String>,
    pub(super) body: Vec<u8>,
}

impl Answer {
    pub(super) fn json<T: DeserializeOwned>(&self) -> OciResult<T> {
        serde_json::from_slice(&self.body).map_err(|e| OciError::Decode {
            operation: self.operation,
            status: self.status.as_u16(),
            message: e.to_string(),
            request_id: self.request_id.clone(),
        })
    }
}

/// `{"items": [...]}`, the collection shape of some OCI lists (pools).
#[derive(Deserialize)]
pub(super) struct Items<T> {
    pub(super) items: Vec<T>,
}

/// OCI's error body.
#[derive(Deserialize)]
pub(super) struct ErrorBody {
    pub(super) code: Option<String>,
    pub(super) message: Option<String>,
}

/// `<endpoint>/20160918`; rejects endpoints that are not http(s) URLs.
pub(super) fn api_base(endpoint: &str) -> OciResult<Url> {
    let mut url = Url::parse(endpoint.trim_end_matches('/'))
        .map_err(|e| OciError::Config(format!("invalid OCI endpoint {endpoint:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(OciError::Config(format!(
            "OCI endpoint must be an http(s) URL, got {endpoint:?}"
        )));
    }
    let path = format!("{}/{API_VERSION}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    Ok(url)
}

/// `base` + `path` (already percent-encoded) + query pairs.
pub(super) fn build_url(base: &Url, path: &str, query: &[(&'static str, String)]) -> Url {
    let mut url = base.clone();
    url.set_path(&format!("{}{}", base.path(), path));
    if !query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in query {
            pairs.append_pair(name, value);
        }
    }
    url
}

/// Percent-encodes an OCID (or any id) for use as one path segment.
pub(super) fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub(super) fn public_ip_query(query: &ListPublicIpsQuery) -> Vec<(&'static str, String)> {
    let mut pairs = vec![
        ("scope", query.scope.clone()),
        ("compartmentId", query.compartment_id.clone()),
    ];
    if let Some(ad) = &query.availability_domain {
        pairs.push(("availabilityDomain", ad.clone()));
    }
    if let Some(lifetime) = query.lifetime {
        let value = match lifetime {
            Lifetime::Ephemeral => "EPHEMERAL",
            Lifetime::Reserved => "RESERVED",
            Lifetime::Unknown => "UNKNOWN",
        };
        pairs.push(("lifetime", value.to_string()));
    }
    if let Some(pool) = &query.public_ip_pool_id {
        pairs.push(("publicIpPoolId", pool.clone()));
    }
    pairs
}

pub(super) fn private_ip_query(filter: &PrivateIpFilter) -> Vec<(&'static str, String)> {
    match filter {
        PrivateIpFilter::AddressInSubnet {
            subnet_id,
            ip_address,
        } => vec![
            ("ipAddress", ip_address.clone()),
            ("subnetId", subnet_id.clone()),
        ],
        PrivateIpFilter::Vnic { vnic_id } => vec![("vnicId", vnic_id.clone())],
    }
}

pub(super) fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(super) fn transport(
    operation: &'static str,
    started: Instant,
    error: &reqwest::Error,
) -> OciError {
    tracing::debug!(
        operation,
        timeout = error.is_timeout(),
        duration_ms = started.elapsed().as_millis() as u64,
        "OCI call failed without an answer"
    );
    // reqwest's Display omits the cause ("error sending request"); include the
    // chain so "connection closed before message completed" is visible.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    OciError::Transport {
        operation,
        timeout: error.is_timeout(),
        elapsed: started.elapsed(),
        message,
    }
}

pub(super) fn service_error(
    operation: &'static str,
    status: StatusCode,
    request_id: Option<String>,
    body: &[u8],
) -> OciError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let code = parsed
        .as_ref()
        .and_then(|b| b.code.clone())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Unknown").to_string());
    let message = parsed
        .and_then(|b| b.message)
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(512).collect());
    OciError::Service {
        operation,
        status: status.as_u16(),
        code,
        message,
        request_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::region_endpoint;

    #[test]
    pub(super) fn base_url_appends_api_version() {
        let base = api_base("http://127.0.0.1:8080/").expect("valid");
        assert_eq!(base.as_str(), "http://127.0.0.1:8080/20160918");
        let endpoint = region_endpoint("eu-frankfurt-1", None).expect("known region");
        let base = api_base(&endpoint).expect("valid");
        assert_eq!(
            base.as_str(),
            "https://iaas.eu-frankfurt-1.oraclecloud.com/20160918"
        );
        assert!(api_base("ftp://x").is_err());
        assert!(api_base("not a url").is_err());
    }

    #[test]
    pub(super) fn urls_carry_path_and_query() {
        let base = api_base("http://h:1").expect("valid");
        let mut query = public_ip_query(&ListPublicIpsQuery::region("ocid1.compartment.oc1..c"));
        query.push(("page", "a b&c".to_string()));
        let url = build_url(&base, &format!("/publicIps/{}", segment("id/x")), &query);
        assert_eq!(
            url.as_str(),
            "http://h:1/20160918/publicIps/id%2Fx?scope=REGION&compartmentId=ocid1.compartment.oc1..c&page=a+b%26c"
        );
    }

    #[test]
    pub(super) fn private_ip_filters() {
        let by_address = private_ip_query(&PrivateIpFilter::AddressInSubnet {
            subnet_id: "s".into(),
            ip_address: "10.0.0.1".into(),
        });
        assert_eq!(
            by_address,
            vec![("ipAddress", "10.0.0.1".into()), ("subnetId", "s".into())]
        );
        let by_vnic = private_ip_query(&PrivateIpFilter::Vnic {
            vnic_id: "v".into(),
        });
        assert_eq!(by_vnic, vec![("vnicId", "v".into())]);
    }

    #[test]
    pub(super) fn error_bodies_become_service_errors() {
        let err = service_error(
            "DeletePublicIp",
            StatusCode::CONFLICT,
            Some("rid".into()),
            br#"{"code":"IncorrectState","message":"busy"}"#,
        );
        assert_eq!(err.code(), Some("IncorrectState"));
        assert!(err.is_retryable());
        assert_eq!(err.request_id(), Some("rid"));
        let err = service_error("GetVnic", StatusCode::BAD_GATEWAY, None, b"<html>");
        assert_eq!(err.code(), Some("Bad Gateway"));
        assert_eq!(err.status(), Some(502));
        assert!(err.is_retryable());
    }
}
