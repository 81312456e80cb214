//! The policy ABI as the host sees it: the types (shared with the SDK, one
//! source of truth), the JSON Schemas generated from them (checked in under
//! `sdk/schema/`), and how a request document is assembled.
//!
//! The types live in the `k8s-oci-operator-policy-sdk` crate so a Rust policy
//! serialises exactly what the host deserialises; the host enables the SDK's
//! `schema` feature to derive the schemas.

pub use k8s_oci_operator_policy_sdk::abi::*;

/// The schema files under `sdk/schema/`: (file name, schema JSON).
pub fn schemas() -> Vec<(&'static str, String)> {
    fn render<T: schemars::JsonSchema>() -> String {
        let schema = schemars::schema_for!(T);
        // Pretty JSON of a schema cannot fail; fall back to empty for safety.
        serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
    }
    vec![
        (
            "validate-settings.request.json",
            render::<ValidateSettingsRequest>(),
        ),
        (
            "validate-settings.output.json",
            render::<Output<SettingsResponse>>(),
        ),
        ("tag-defaults.request.json", render::<TagDefaultsRequest>()),
        (
            "tag-defaults.output.json",
            render::<Output<TagDefaultsResponse>>(),
        ),
        ("select-pool.request.json", render::<SelectPoolRequest>()),
        ("select-pool.output.json", render::<Output<PoolResponse>>()),
        ("eligibility.request.json", render::<EligibilityRequest>()),
        (
            "eligibility.output.json",
            render::<Output<EligibilityResponse>>(),
        ),
    ]
}

/// Builds a request document from a policy's settings (compact JSON) and the
/// rest of the request (a serialised JSON object), without re-serialising
/// either: `{"settings":<settings>,<fields of body>}`.
pub(crate) fn request_document(settings: &str, body: &[u8]) -> Vec<u8> {
    let mut doc = Vec::with_capacity(settings.len() + body.len() + 16);
    doc.extend_from_slice(b"{\"settings\":");
    doc.extend_from_slice(settings.as_bytes());
    // `body` is a serialised struct: `{}` or `{"k":...}`.
    match body.get(1..) {
        Some(rest) if rest != b"}" && !rest.is_empty() => {
            doc.push(b',');
            doc.extend_from_slice(rest);
        }
        _ => doc.push(b'}'),
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_document_splices_settings_into_the_body() {
        let doc = request_document(r#"{"a":1}"#, br#"{"b":2}"#);
        assert_eq!(doc, br#"{"settings":{"a":1},"b":2}"#);
        let doc = request_document("null", b"{}");
        assert_eq!(doc, br#"{"settings":null}"#);
    }

    /// Set UPDATE_SCHEMAS=1 to rewrite the files instead of comparing.
    #[test]
    fn checked_in_schemas_are_up_to_date() {
        let dir = crate::checkout_dir().join("../sdk/schema");
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        for (name, schema) in schemas() {
            let path = dir.join(name);
            if update {
                std::fs::create_dir_all(&dir).expect("create sdk/schema");
                std::fs::write(&path, &schema).expect("write schema");
                continue;
            }
            let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                checked_in == schema,
                "{} is stale: run `UPDATE_SCHEMAS=1 cargo test -p k8s-oci-operator policy::abi` and commit the result",
                path.display()
            );
        }
    }
}
