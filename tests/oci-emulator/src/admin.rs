//! The admin API under `/_emulator/`: unsigned, answered only to loopback
//! peers. It seeds the world, sets faults and timing, registers keys, and
//! shows state and call counts.

use crate::error::ApiError;
use crate::faults::FaultConfig;
use crate::lifecycle::Timing;
use crate::seed::Seed;
use crate::server::{HttpResponse, Shared, json_response};
use crate::signature::KeySpec;
use http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Instant;

pub const PREFIX: &str = "/_emulator";

pub fn handle(shared: &Shared, peer: SocketAddr, parts: &Parts, body: &[u8]) -> HttpResponse {
    if !peer.ip().is_loopback() {
        return error(&ApiError::forbidden(
            "The admin API only answers loopback clients",
        ));
    }
    let path = parts.uri.path().trim_end_matches('/');
    let route = path.strip_prefix(PREFIX).unwrap_or(path);
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
        _ => Err(ApiError::no_route(parts.method.as_str(), parts.uri.path())),
    };
    match result {
        Ok(value) => json_response(200, Some(&value), &[]),
        Err(e) => error(&e),
    }
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
