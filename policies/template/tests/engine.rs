//! The built module in the operator's own engine: the sandbox, the limits
//! and the checks of the cluster, on the `.wasm` that ships.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use k8s_oci_operator_policy_harness::{HarnessError, LoadError, PolicyModule, wasm_build};
use k8s_oci_operator_policy_sdk::{Namespace, ReservedIp, TagDefaultsRequest};
use serde_json::json;

/// Built once per test run (`cargo build --release --target
/// wasm32-unknown-unknown`, with this crate's release profile).
fn module() -> PolicyModule {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    let wasm = WASM.get_or_init(|| wasm_build!().run().expect("build the module"));
    PolicyModule::from_file(wasm).expect("read the module")
}

#[test]
fn the_module_adds_the_team_under_the_users_tags() {
    let tags = module()
        .tag_defaults(&TagDefaultsRequest {
            settings: json!({"namespaceLabel": "example.com/team", "tag": "team"}),
            reserved_ip: ReservedIp::new("web", "shop").with_tag("owner", "me"),
            namespace: Namespace::new("shop").with_label("example.com/team", "payments"),
        })
        .expect("a decision");
    let expected: BTreeMap<String, String> = [("owner", "me"), ("team", "payments")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(tags, expected);
}

#[test]
fn the_operator_refuses_to_load_it_with_bad_settings() {
    let refused = module().validate_settings(&json!({"namespaceLabel": "", "tag": "team"}));
    assert!(
        matches!(&refused, Err(HarnessError::Refused(LoadError::Settings(_)))),
        "{refused:?}"
    );
}
