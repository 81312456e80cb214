//! The emulated OCI API over HTTP: authentication, faults, dispatch to the
//! [`World`], and OCI-shaped responses.

use crate::calls::DROPPED;
use crate::error::ApiError;
use crate::faults::Outcome;
use crate::model::{Lifetime, PublicIpPoolSummary, Scope, UpdatePublicIpDetails};
use crate::paging::paginate;
use crate::routes::Route;
use crate::server::{Dropped, HttpResponse, Shared, json_response};
use crate::signature::{self, ApiKeys, SignedRequest};
use crate::world::{PrivateIpFilter, PublicIpFilter, World};
use bytes::Bytes;
use http::request::Parts;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

/// A successful answer before it becomes HTTP.
struct Reply {
    status: u16,
    body: Option<Value>,
    etag: Option<String>,
    next_page: Option<String>,
}

impl Reply {
    fn json(body: impl Serialize) -> Result<Self, ApiError> {
        let body = serde_json::to_value(body)
            .map_err(|e| ApiError::new(500, "InternalServerError", e.to_string()))?;
        Ok(Self {
            status: 200,
            body: Some(body),
            etag: None,
            next_page: None,
        })
    }

    fn with_etag(mut self, etag: &str) -> Self {
        self.etag = Some(etag.to_string());
        self
    }

    /// An etag for resources the emulator never changes through the API
    /// (OCI returns one on GetVnic, GetPrivateIp, GetSubnet, GetPublicIpPool):
    /// a digest of the body, so it changes exactly when what is shown does.
    fn with_content_etag(self) -> Self {
        let bytes = serde_json::to_vec(&self.body).unwrap_or_default();
        let digest = Sha256::digest(&bytes);
        let etag: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.with_etag(&etag)
    }

    fn no_content() -> Self {
        Self {
            status: 204,
            body: None,
            etag: None,
            next_page: None,
        }
    }
}

/// Handles one API request. `Err(Dropped)` tells the server to close the
/// connection without answering.
pub async fn handle(shared: &Shared, parts: &Parts, body: &Bytes) -> Result<HttpResponse, Dropped> {
    let request_id = new_request_id();
    let Some(route) = Route::parse(&parts.method, parts.uri.path()) else {
        let error = ApiError::no_route(parts.method.as_str(), parts.uri.path());
        shared.record("Unknown", "404");
        return Ok(error_response(&error, &request_id));
    };
    let operation = route.operation();
    let headers = header_map(parts);

    if shared.verify_signatures {
        let signed = SignedRequest {
            method: parts.method.as_str(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/"),
            headers: &headers,
            body,
        };
        let verdict = {
            // Lock order: keys, then sessions (nothing takes them the other way).
            let keys = shared.keys();
            let sessions = shared.sessions();
            let lookup = ApiKeys {
                keys: &keys,
                sessions: &sessions,
                now: SystemTime::now(),
            };
            signature::verify(&signed, &lookup, chrono::Utc::now(), shared.max_clock_skew)
                .map(|key_id| keys.denies(&key_id, operation))
        };
        match verdict {
            Err(reason) => {
                tracing::debug!(operation, reason, "rejected signature");
                shared.record(operation, "401");
                return Ok(error_response(
                    &ApiError::not_authenticated(reason),
                    &request_id,
                ));
            }
            // The key's `deny` list: OCI's answer to a caller whose IAM
            // policy lacks the permission (it does not tell "not allowed"
            // from "not there"), after authentication, before anything runs.
            Ok(true) => {
                tracing::debug!(operation, "refused: the key's deny list names it");
                return Ok(failed(
                    shared,
                    operation,
                    ApiError::not_found(format!("{operation} for this principal")),
                    &request_id,
                ));
            }
            Ok(false) => {}
        }
    }

    let decision = shared.faults().decide(operation, Instant::now());
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    let drop_connection = match decision.outcome {
        Outcome::Throttle => {
            return Ok(failed(
                shared,
                operation,
                ApiError::too_many_requests(),
                &request_id,
            ));
        }
        Outcome::Fail500 => {
            return Ok(failed(shared, operation, ApiError::internal(), &request_id));
        }
        Outcome::Fail503 => {
            return Ok(failed(
                shared,
                operation,
                ApiError::unavailable(),
                &request_id,
            ));
        }
        Outcome::Proceed { drop_connection } => drop_connection,
    };

    let query = query_map(parts);
    let result = {
        let mut world = shared.world();
        let now = Instant::now();
        world.tick(now);
        dispatch(&mut world, now, &route, &query, &headers, body)
    };
    if drop_connection {
        tracing::debug!(operation, "dropping the connection after applying the call");
        shared.record(operation, DROPPED);
        return Err(Dropped);
    }
    let response = match result {
        Ok(reply) => {
            shared.record(operation, &reply.status.to_string());
            success_response(reply, &request_id)
        }
        Err(error) => {
            shared.record(operation, &error.status.to_string());
            error_response(&error, &request_id)
        }
    };
    tracing::debug!(
        operation,
        status = response.status().as_u16(),
        request_id,
        "API call"
    );
    Ok(response)
}

fn failed(shared: &Shared, operation: &str, error: ApiError, request_id: &str) -> HttpResponse {
    shared.record(operation, &error.status.to_string());
    error_response(&error, request_id)
}

fn dispatch(
    world: &mut World,
    now: Instant,
    route: &Route,
    query: &BTreeMap<String, String>,
    headers: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let q = |name: &str| query.get(name).map(String::as_str);
    match route {
        Route::CreatePublicIp => {
            let details = json_object(body)?;
            let token = headers.get("opc-retry-token").map(String::as_str);
            let ip = world.create_public_ip(now, &details, token)?;
            Ok(Reply::json(&ip)?.with_etag(&ip.etag))
        }
        Route::GetPublicIp(id) => {
            let ip = world.get_public_ip(id)?;
            if !world.readable(&ip, now) {
                return Err(ApiError::not_found(format!("public IP {id}")));
            }
            Ok(Reply::json(&ip)?.with_etag(&ip.etag))
        }
        Route::GetPublicIpByIpAddress => {
            let address = string_field(&json_object(body)?, "ipAddress")?;
            let ip = world.get_public_ip_by_ip_address(&address)?;
            Ok(Reply::json(&ip)?.with_etag(&ip.etag))
        }
        Route::GetPublicIpByPrivateIpId => {
            let private_ip_id = string_field(&json_object(body)?, "privateIpId")?;
            let ip = world.get_public_ip_by_private_ip_id(&private_ip_id)?;
            Ok(Reply::json(&ip)?.with_etag(&ip.etag))
        }
        Route::UpdatePublicIp(id) => {
            let details: UpdatePublicIpDetails = serde_json::from_value(json_object(body)?)
                .map_err(|e| {
                    ApiError::cannot_parse(format!("Invalid UpdatePublicIpDetails: {e}"))
                })?;
            let if_match = headers.get("if-match").map(String::as_str);
            let ip = world.update_public_ip(now, id, details, if_match)?;
            Ok(Reply::json(&ip)?.with_etag(&ip.etag))
        }
        Route::DeletePublicIp(id) => {
            let if_match = headers.get("if-match").map(String::as_str);
            world.delete_public_ip(now, id, if_match)?;
            Ok(Reply::no_content())
        }
        Route::ListPublicIps => {
            let filter = public_ip_filter(query)?;
            world.check_compartment(&filter.compartment_id)?;
            let ips = world.list_public_ips(&filter);
            let visible = ips.into_iter().filter(|ip| world.readable(ip, now));
            page(visible.collect(), q("limit"), q("page"))
        }
        Route::ListPrivateIps => {
            let filter = private_ip_filter(query)?;
            page(world.list_private_ips(&filter), q("limit"), q("page"))
        }
        Route::GetPrivateIp(id) => Ok(Reply::json(world.get_private_ip(id)?)?.with_content_etag()),
        Route::GetVnic(id) => Ok(Reply::json(world.get_vnic(id)?)?.with_content_etag()),
        Route::ListVnicAttachments => {
            let compartment_id =
                q("compartmentId").ok_or_else(|| ApiError::missing("compartmentId"))?;
            world.check_compartment(compartment_id)?;
            let attachments = world.list_vnic_attachments(
                compartment_id,
                q("availabilityDomain"),
                q("instanceId"),
                q("vnicId"),
            );
            page(attachments, q("limit"), q("page"))
        }
        Route::GetSubnet(id) => Ok(Reply::json(world.get_subnet(id)?)?.with_content_etag()),
        Route::ListPublicIpPools => {
            let compartment_id =
                q("compartmentId").ok_or_else(|| ApiError::missing("compartmentId"))?;
            world.check_compartment(compartment_id)?;
            let mut pools = world.list_public_ip_pools(compartment_id, q("displayName"));
            // No BYOIP ranges here, so no pool is fed by the one asked for.
            if q("byoipRangeId").is_some() {
                pools.clear();
            }
            sort_pools(&mut pools, q("sortBy"), q("sortOrder"))?;
            let (items, next_page) = paginate(pools, q("limit"), q("page"))?;
            let mut reply = Reply::json(serde_json::json!({ "items": items }))?;
            reply.next_page = next_page;
            Ok(reply)
        }
        Route::GetPublicIpPool(id) => {
            Ok(Reply::json(world.get_public_ip_pool(id)?)?.with_content_etag())
        }
    }
}

/// ListPublicIpPools' sortBy and sortOrder: TIMECREATED defaults to
/// descending, DISPLAYNAME to ascending (case-sensitive), as OCI documents.
/// Without either the order stays by OCID.
fn sort_pools(
    pools: &mut [PublicIpPoolSummary],
    sort_by: Option<&str>,
    sort_order: Option<&str>,
) -> Result<(), ApiError> {
    let by_name = match sort_by {
        None if sort_order.is_none() => return Ok(()),
        None | Some("TIMECREATED") => false,
        Some("DISPLAYNAME") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "sortBy must be TIMECREATED or DISPLAYNAME, got {other:?}"
            )));
        }
    };
    let descending = match sort_order {
        None => !by_name,
        Some("ASC") => false,
        Some("DESC") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "sortOrder must be ASC or DESC, got {other:?}"
            )));
        }
    };
    // A stable sort: ties keep the OCID order either way.
    pools.sort_by(|a, b| {
        let order = if by_name {
            a.display_name.cmp(&b.display_name)
        } else {
            a.time_created.cmp(&b.time_created)
        };
        if descending { order.reverse() } else { order }
    });
    Ok(())
}

/// A page of a bare-array list.
fn page<T: Serialize>(
    items: Vec<T>,
    limit: Option<&str>,
    page: Option<&str>,
) -> Result<Reply, ApiError> {
    let (items, next_page) = paginate(items, limit, page)?;
    let mut reply = Reply::json(items)?;
    reply.next_page = next_page;
    Ok(reply)
}

/// ListPublicIps query: scope and compartmentId are required.
pub fn public_ip_filter(query: &BTreeMap<String, String>) -> Result<PublicIpFilter, ApiError> {
    let scope = match query.get("scope").map(String::as_str) {
        None => return Err(ApiError::missing("scope")),
        Some("REGION") => Scope::Region,
        Some("AVAILABILITY_DOMAIN") => Scope::AvailabilityDomain,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "scope must be REGION or AVAILABILITY_DOMAIN, got {other:?}"
            )));
        }
    };
    let compartment_id = query
        .get("compartmentId")
        .cloned()
        .ok_or_else(|| ApiError::missing("compartmentId"))?;
    let availability_domain = query.get("availabilityDomain").cloned();
    if scope == Scope::AvailabilityDomain && availability_domain.is_none() {
        return Err(ApiError::missing("availabilityDomain"));
    }
    let lifetime = lifetime_filter(query)?;
    Ok(PublicIpFilter {
        compartment_id,
        scope,
        availability_domain,
        lifetime,
        public_ip_pool_id: query.get("publicIpPoolId").cloned(),
    })
}

/// ListPrivateIps query: subnetId or vnicId is required; ipAddress needs
/// subnetId; ipState and lifetime narrow either.
pub fn private_ip_filter(query: &BTreeMap<String, String>) -> Result<PrivateIpFilter, ApiError> {
    let ip_state = match query.get("ipState").map(String::as_str) {
        None => None,
        Some(state @ ("ASSIGNED" | "AVAILABLE")) => Some(state.to_string()),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "ipState must be ASSIGNED or AVAILABLE, got {other:?}"
            )));
        }
    };
    let lifetime = lifetime_filter(query)?;
    let filter = PrivateIpFilter {
        subnet_id: query.get("subnetId").cloned(),
        vnic_id: query.get("vnicId").cloned(),
        ip_address: query.get("ipAddress").cloned(),
        ip_state,
        lifetime,
    };
    if query.contains_key("vlanId") {
        return Err(ApiError::invalid("The emulator has no VLANs"));
    }
    if filter.ip_address.is_some() && filter.subnet_id.is_none() {
        return Err(ApiError::missing("subnetId (required with ipAddress)"));
    }
    if filter.subnet_id.is_none() && filter.vnic_id.is_none() {
        return Err(ApiError::missing("subnetId or vnicId"));
    }
    Ok(filter)
}

/// The `lifetime` query parameter of ListPublicIps and ListPrivateIps.
fn lifetime_filter(query: &BTreeMap<String, String>) -> Result<Option<Lifetime>, ApiError> {
    match query.get("lifetime").map(String::as_str) {
        None => Ok(None),
        Some("RESERVED") => Ok(Some(Lifetime::Reserved)),
        Some("EPHEMERAL") => Ok(Some(Lifetime::Ephemeral)),
        Some(other) => Err(ApiError::invalid(format!(
            "lifetime must be EPHEMERAL or RESERVED, got {other:?}"
        ))),
    }
}

fn json_object(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::cannot_parse(format!("Request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::cannot_parse("Request body must be a JSON object"));
    }
    Ok(value)
}

fn string_field(body: &Value, name: &str) -> Result<String, ApiError> {
    match body.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(ApiError::missing(name)),
        Some(_) => Err(ApiError::invalid(format!("{name} must be a string"))),
    }
}

pub(crate) fn header_map(parts: &Parts) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            map.entry(name.as_str().to_string())
                .or_insert_with(|| value.to_string());
        }
    }
    map
}

fn query_map(parts: &Parts) -> BTreeMap<String, String> {
    parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// An opc-request-id in OCI's style (upper-case hex).
pub(crate) fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string().to_uppercase()
}

fn success_response(reply: Reply, request_id: &str) -> HttpResponse {
    let mut extra = vec![("opc-request-id", request_id.to_string())];
    if let Some(etag) = reply.etag {
        extra.push(("etag", etag));
    }
    if let Some(next) = reply.next_page {
        extra.push(("opc-next-page", next));
    }
    json_response(reply.status, reply.body.as_ref(), &extra)
}

pub fn error_response(error: &ApiError, request_id: &str) -> HttpResponse {
    let body = serde_json::to_value(error).unwrap_or(Value::Null);
    json_response(
        error.status,
        Some(&body),
        &[("opc-request-id", request_id.to_string())],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn list_public_ips_needs_scope_and_compartment() {
        assert_eq!(
            public_ip_filter(&query(&[])).unwrap_err().code,
            "MissingParameter"
        );
        let bad = public_ip_filter(&query(&[("scope", "GLOBAL"), ("compartmentId", "c")]));
        assert_eq!(bad.unwrap_err().code, "InvalidParameter");
        let no_ad = public_ip_filter(&query(&[
            ("scope", "AVAILABILITY_DOMAIN"),
            ("compartmentId", "c"),
        ]));
        assert_eq!(no_ad.unwrap_err().code, "MissingParameter");
        let ok = public_ip_filter(&query(&[
            ("scope", "REGION"),
            ("compartmentId", "c"),
            ("lifetime", "RESERVED"),
        ]))
        .expect("valid");
        assert_eq!(ok.lifetime, Some(Lifetime::Reserved));
    }

    #[test]
    fn list_private_ips_filters_by_state_and_lifetime() {
        let filter = private_ip_filter(&query(&[
            ("vnicId", "v"),
            ("ipState", "AVAILABLE"),
            ("lifetime", "RESERVED"),
        ]))
        .expect("valid");
        assert_eq!(filter.ip_state.as_deref(), Some("AVAILABLE"));
        assert_eq!(filter.lifetime, Some(Lifetime::Reserved));
        let bad = private_ip_filter(&query(&[("vnicId", "v"), ("ipState", "GONE")]));
        assert_eq!(bad.unwrap_err().code, "InvalidParameter");
        let bad = private_ip_filter(&query(&[("vnicId", "v"), ("lifetime", "FOREVER")]));
        assert_eq!(bad.unwrap_err().code, "InvalidParameter");
    }

    #[test]
    fn pools_sort_as_oci_documents() {
        let pool = |id: &str, name: &str, created: &str| PublicIpPoolSummary {
            id: id.into(),
            compartment_id: "c".into(),
            display_name: name.into(),
            lifecycle_state: "ACTIVE".into(),
            time_created: created.into(),
        };
        let pools = vec![
            pool("a", "zeta", "2026-01-01T00:00:00.000Z"),
            pool("b", "alpha", "2026-01-02T00:00:00.000Z"),
        ];
        let order = |by: Option<&str>, dir: Option<&str>| {
            let mut sorted = pools.clone();
            sort_pools(&mut sorted, by, dir)
                .map(|()| sorted.iter().map(|p| p.id.clone()).collect::<Vec<_>>())
        };
        assert_eq!(order(None, None).expect("ok"), ["a", "b"]);
        // TIMECREATED defaults to descending, DISPLAYNAME to ascending.
        assert_eq!(order(Some("TIMECREATED"), None).expect("ok"), ["b", "a"]);
        assert_eq!(order(Some("DISPLAYNAME"), None).expect("ok"), ["b", "a"]);
        assert_eq!(
            order(Some("DISPLAYNAME"), Some("DESC")).expect("ok"),
            ["a", "b"]
        );
        assert_eq!(order(None, Some("ASC")).expect("ok"), ["a", "b"]);
        assert_eq!(
            order(Some("SIZE"), None).unwrap_err().code,
            "InvalidParameter"
        );
        assert_eq!(
            order(None, Some("UP")).unwrap_err().code,
            "InvalidParameter"
        );
    }

    #[test]
    fn list_private_ips_needs_a_scope() {
        assert!(private_ip_filter(&query(&[("ipAddress", "10.0.0.1")])).is_err());
        assert!(private_ip_filter(&query(&[])).is_err());
        assert!(private_ip_filter(&query(&[("vnicId", "v")])).is_ok());
        assert!(private_ip_filter(&query(&[("ipAddress", "10.0.0.1"), ("subnetId", "s")])).is_ok());
    }
}
