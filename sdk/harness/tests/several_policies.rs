//! Several policies in one crate (tests/two-policies): each feature builds a
//! module that exports its policy, and only that one. Also the harness's
//! own build of a crate outside the operator's workspace.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use k8s_oci_operator_policy_harness::{
    DecisionKind, EligibilityOutcome, HarnessError, LoadError, PolicyModule, PoolOutcome, WasmBuild,
};
use k8s_oci_operator_policy_sdk::{
    EligibilityRequest, Namespace, ReservedIp, SelectPoolRequest, Target,
};
use serde_json::json;

const POOL: &str = "ocid1.publicippool.oc1..fixed";

/// A copy of the fixture crate under the test's temporary directory, with
/// its SDK path made absolute and the operator's lock file (same versions,
/// no network).
fn fixture() -> &'static Path {
    static COPY: OnceLock<PathBuf> = OnceLock::new();
    COPY.get_or_init(|| {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let from = here.join("tests/two-policies");
        let to = Path::new(env!("CARGO_TARGET_TMPDIR")).join("two-policies");
        std::fs::create_dir_all(to.join("src")).expect("fixture directory");
        let sdk = here.join("..").canonicalize().expect("sdk directory");
        let manifest = std::fs::read_to_string(from.join("Cargo.toml"))
            .expect("fixture manifest")
            .replace(
                r#"path = "../../..""#,
                &format!("path = {:?}", sdk.display().to_string()),
            );
        write_if_changed(&to.join("Cargo.toml"), manifest.as_bytes());
        let lib = std::fs::read(from.join("src/lib.rs")).expect("fixture source");
        write_if_changed(&to.join("src/lib.rs"), &lib);
        if !to.join("Cargo.lock").exists() {
            std::fs::copy(here.join("../../Cargo.lock"), to.join("Cargo.lock")).expect("lock file");
        }
        to
    })
}

/// Unchanged files keep their times, so cargo does not rebuild.
fn write_if_changed(path: &Path, content: &[u8]) {
    if std::fs::read(path).ok().as_deref() != Some(content) {
        std::fs::write(path, content).expect("write fixture file");
    }
}

fn build(features: &[&str]) -> Result<PathBuf, HarnessError> {
    let target = concat!(env!("CARGO_TARGET_TMPDIR"), "/policy-wasm");
    WasmBuild::new(fixture(), target)
        .features(features.iter().copied())
        .run()
}

fn pool_request() -> SelectPoolRequest {
    SelectPoolRequest {
        settings: json!({"pool": POOL}),
        reserved_ip: ReservedIp::new("web", "shop"),
        namespace: Namespace::new("shop"),
        allowed_pools: None,
    }
}

fn eligibility_request(target: Target) -> EligibilityRequest {
    EligibilityRequest {
        settings: json!({"pool": POOL}),
        reserved_ip: ReservedIp::new("web", "shop"),
        namespace: Namespace::new("shop"),
        target,
    }
}

/// One test, so the three builds of the same crate run one after another
/// (cargo would serialise them on its lock anyway, and each build
/// overwrites the same .wasm path).
#[test]
fn each_feature_exports_its_own_policy() {
    let fixed =
        PolicyModule::from_file(build(&["fixed-pool"]).expect("build fixed-pool")).expect("module");
    assert_eq!(
        fixed.select_pool(&pool_request()).expect("decision"),
        PoolOutcome::Use(POOL.into())
    );
    assert!(matches!(
        fixed.eligibility(&eligibility_request(Target::pod("web-0"))),
        Err(HarnessError::NotAnswered(DecisionKind::Eligibility))
    ));

    let labelled = PolicyModule::from_file(build(&["labelled-pods"]).expect("build labelled-pods"))
        .expect("module");
    assert_eq!(
        labelled
            .eligibility(&eligibility_request(
                Target::pod("web-0").with_pod_label("public-ip", "yes")
            ))
            .expect("decision"),
        EligibilityOutcome::Allow
    );
    assert!(matches!(
        labelled.eligibility(&eligibility_request(Target::pod("web-0"))),
        Ok(EligibilityOutcome::Deny(_))
    ));
    assert!(matches!(
        labelled.select_pool(&pool_request()),
        Err(HarnessError::NotAnswered(DecisionKind::SelectPool))
    ));

    // No feature: a module without the ABI's exports, which the operator
    // refuses rather than loading a policy that does nothing.
    let none =
        PolicyModule::from_file(build(&[]).expect("build without a policy")).expect("module");
    assert!(matches!(
        none.validate_settings(&json!({})),
        Err(HarnessError::Refused(LoadError::MissingExport { .. }))
    ));
}
