//! The admin API under `/_emulator/`: unsigned, answered only to loopback
//! peers. It seeds the world, sets faults and timing, registers keys, steers
//! the auth services (switches, session lifetime, revocation), and shows
//! state and call counts.

use crate::error::ApiError;
use crate::faults::FaultConfig;
use crate::lifecycle::Timing;
use crate::seed::Seed;
use crate::server::{HttpResponse, Shared, json_response, text_response};
use crate::sessions::PrincipalType;
use crate::signature::KeySpec;
use http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub const PREFIX: &str = "/_emulator";

pub fn handle(shared: &Shared, peer: SocketAddr, parts: &Parts, body: &[u8]) -> HttpResponse {
    if !peer.ip().is_loopback() {
        return error(&ApiError::forbidden(
            "The admin API only answers loopback clients",
        ));
    }
    let path = parts.uri.path().trim_end_matches('/');
    let route = path.strip_prefix(PREFIX).unwrap_or(path);
    // The one answer that is not JSON: a PEM file to hand to clients.
    if (parts.method.as_str(), route) == ("GET", "/identity/cluster-ca.pem") {
        return text_response(
            200,
            "application/x-pem-file",
            shared.identity().cluster_ca_pem(),
        );
    }
    let result = match (parts.method.as_str(), route) {
        ("GET", "/health") => Ok(json!({"status": "ok"})),
        ("GET", "/state") => {
            let mut world = shared.world();
            world.tick(Instant::now());
            Ok(world.state_json())
        }
        ("POST", "/seed") => parse::<Seed>(body).and_then(|seed| {
            shared
                .apply_seed(&seed)
                .map(|()| json!({"status": "seeded"}))
                .map_err(|e| ApiError::invalid(e.to_string()))
        }),
        ("GET", "/faults") => to_json(shared.faults().config()),
        ("PUT", "/faults") => parse::<FaultConfig>(body).and_then(|faults| {
            shared.faults().set_config(faults.clone());
            to_json(&faults)
        }),
        ("GET", "/timing") => to_json(shared.world().timing),
        ("PUT", "/timing") => parse::<Timing>(body).and_then(|timing| {
            shared.world().timing = timing;
            to_json(timing)
        }),
        ("GET", "/keys") => Ok(json!({"keyIds": shared.keys().key_ids()})),
        ("POST", "/keys") => parse::<KeySpec>(body).and_then(|spec| {
            shared
                .register_key(&spec)
                .map(|key_id| json!({"keyId": key_id}))
                .map_err(|e| ApiError::invalid(e.to_string()))
        }),
        ("GET", "/calls") => to_json(&*shared.calls()),
        ("DELETE", "/calls") | ("POST", "/calls/reset") => {
            shared.calls().clear();
            Ok(json!({"status": "reset"}))
        }
        ("GET", "/identity") => Ok(identity_status(shared)),
        ("PUT", "/identity") => parse::<IdentityUpdate>(body).map(|update| {
            update.apply(shared);
            identity_status(shared)
        }),
        ("POST", "/sessions/revoke") => {
            let revoked = shared.sessions().revoke_all();
            Ok(json!({"revoked": revoked}))
        }
        _ => Err(ApiError::no_route(parts.method.as_str(), parts.uri.path())),
    };
    match result {
        Ok(value) => json_response(200, Some(&value), &[]),
        Err(e) => error(&e),
    }
}

/// `PUT /_emulator/identity`: each field given changes that setting.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IdentityUpdate {
    session_ttl_seconds: Option<u64>,
    metadata_available: Option<bool>,
    federation_available: Option<bool>,
    proxymux_available: Option<bool>,
}

impl IdentityUpdate {
    fn apply(&self, shared: &Shared) {
        if let Some(seconds) = self.session_ttl_seconds {
            shared.sessions().set_ttl(Duration::from_secs(seconds));
        }
        if let Some(available) = self.metadata_available {
            shared.set_metadata_available(available);
        }
        if let Some(available) = self.federation_available {
            shared.set_federation_available(available);
        }
        if let Some(available) = self.proxymux_available {
            shared.set_proxymux_available(available);
        }
    }
}

/// `GET /_emulator/identity`: where the auth services are and how they stand.
fn identity_status(shared: &Shared) -> Value {
    let config = shared.identity_config();
    let urls = shared.urls();
    let sessions = shared.sessions();
    json!({
        "metadataUrl": urls.map(|u| u.metadata.clone()),
        "federationUrl": urls.map(|u| u.federation.clone()),
        "proxymuxUrl": urls.map(|u| u.proxymux.clone()),
        "tenancyId": config.tenancy_id,
        "instanceId": config.instance_id,
        "region": config.region,
        "sessionTtlSeconds": sessions.ttl().as_secs(),
        "metadataAvailable": shared.metadata_available(),
        "federationAvailable": shared.federation_available(),
        "proxymuxAvailable": shared.proxymux_available(),
        "sessionsIssued": {
            "total": sessions.issued(),
            "instance": sessions.issued_for(PrincipalType::Instance),
            "resource": sessions.issued_for(PrincipalType::Resource),
        },
    })
}

/// Admin bodies may be YAML or JSON (YAML parses both).
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::cannot_parse("Body is not UTF-8"))?;
    serde_yaml::from_str(text).map_err(|e| ApiError::cannot_parse(e.to_string()))
}

fn to_json(value: impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(value)
        .map_err(|e| ApiError::new(500, "InternalServerError", e.to_string()))
}

fn error(error: &ApiError) -> HttpResponse {
    let body = serde_json::to_value(error).unwrap_or(Value::Null);
    json_response(error.status, Some(&body), &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::EmulatorConfig;

    fn parts(method: &str, path: &str) -> Parts {
        let (parts, ()) = http::Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .expect("request")
            .into_parts();
        parts
    }

    #[test]
    fn only_loopback_peers_are_served() {
        let shared = Shared::new(&EmulatorConfig::default()).expect("shared");
        let remote: SocketAddr = "192.0.2.10:5555".parse().expect("addr");
        let response = handle(&shared, remote, &parts("GET", "/_emulator/state"), b"");
        assert_eq!(response.status().as_u16(), 403);
        let local: SocketAddr = "127.0.0.1:5555".parse().expect("addr");
        let response = handle(&shared, local, &parts("GET", "/_emulator/state"), b"");
        assert_eq!(response.status().as_u16(), 200);
        let response = handle(&shared, local, &parts("GET", "/_emulator/nope"), b"");
        assert_eq!(response.status().as_u16(), 404);
    }
}
