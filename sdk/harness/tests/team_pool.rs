//! The harness on an example policy (policies/team-pool, built by
//! policies/build.sh as it ships): the engine's answers, and the same
//! refusal natively (SDK `testing`) and in the engine.

use std::path::PathBuf;
use std::sync::OnceLock;

use k8s_oci_operator_policy_harness::{
    DecisionKind, HarnessError, LoadError, PolicyModule, PoolOutcome,
};
use k8s_oci_operator_policy_sdk::{Namespace, ReservedIp, SelectPoolRequest, testing};
use policy_team_pool::TeamPool;
use serde_json::json;

const POOL: &str = "ocid1.publicippool.oc1..payments";

/// The module, built once per run with the script the examples ship with.
fn team_pool() -> PolicyModule {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies/build.sh");
        let output = std::process::Command::new(script)
            .arg("team-pool")
            .output()
            .expect("run policies/build.sh");
        assert!(
            output.status.success(),
            "policies/build.sh failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
    });
    PolicyModule::from_file(dir.join("team-pool.wasm")).expect("read the module")
}

fn request(pool: &str, ns: Namespace) -> SelectPoolRequest {
    SelectPoolRequest {
        settings: json!({"teamLabel": "team", "pools": {"payments": pool}}),
        reserved_ip: ReservedIp::new("web", "shop"),
        namespace: ns,
        allowed_pools: None,
    }
}

#[test]
fn the_engine_chooses_and_denies_as_the_policy_says() {
    let policy = team_pool();
    let team = Namespace::new("shop").with_label("team", "payments");
    assert_eq!(
        policy
            .select_pool(&request(POOL, team.clone()))
            .expect("decision"),
        PoolOutcome::Use(POOL.into())
    );
    match policy.select_pool(&request(POOL, Namespace::new("shop"))) {
        Ok(PoolOutcome::Deny(denial)) => {
            assert_eq!(denial.policy, "team-pool");
            assert!(denial.reason.contains("has no team label"), "{denial:?}");
        }
        other => panic!("expected a deny, got {other:?}"),
    }
    // The operator's allowed pools reach the policy, which denies.
    let mut not_enabled = request(POOL, team);
    not_enabled.allowed_pools = Some(vec!["ocid1.publicippool.oc1..other".into()]);
    assert!(matches!(
        policy.select_pool(&not_enabled),
        Ok(PoolOutcome::Deny(_))
    ));
}

#[test]
fn an_answer_the_operator_refuses_fails_natively_and_in_the_engine_alike() {
    // The policy's own settings check lets this through (right prefix); the
    // operator's pool OCID rule does not (a space).
    let req = request(
        "ocid1.publicippool.oc1..has space",
        Namespace::new("shop").with_label("team", "payments"),
    );
    let native = testing::select_pool::<TeamPool>(&req).expect_err("refused natively");
    match team_pool().select_pool(&req) {
        Err(HarnessError::Failed(message)) => {
            assert_eq!(message, format!("policy team-pool failed: {native}"));
        }
        other => panic!("expected the engine to refuse the answer, got {other:?}"),
    }
}

#[test]
fn settings_the_policy_rejects_refuse_the_load() {
    let policy = team_pool();
    let refused = policy.validate_settings(&json!({"teamLabel": "team", "pools": {"a": "nope"}}));
    assert!(
        matches!(&refused, Err(HarnessError::Refused(LoadError::Settings(m))) if m.contains("nope")),
        "{refused:?}"
    );
    // A refused load is not remembered as loaded: asking again refuses again.
    let req = SelectPoolRequest {
        settings: json!({"teamLabel": "team", "pools": {"a": "nope"}}),
        ..request(POOL, Namespace::new("shop"))
    };
    assert!(matches!(
        policy.select_pool(&req),
        Err(HarnessError::Refused(_))
    ));
}

#[test]
fn a_decision_the_module_does_not_answer_is_not_an_allow() {
    let req = k8s_oci_operator_policy_sdk::EligibilityRequest {
        settings: json!({"teamLabel": "team", "pools": {}}),
        reserved_ip: ReservedIp::new("web", "shop"),
        namespace: Namespace::new("shop"),
        target: k8s_oci_operator_policy_sdk::Target::pod("web-0"),
    };
    assert!(matches!(
        team_pool().eligibility(&req),
        Err(HarnessError::NotAnswered(DecisionKind::Eligibility))
    ));
}
