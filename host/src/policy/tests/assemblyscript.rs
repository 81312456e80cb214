//! The AssemblyScript example policy (`policies/assemblyscript-eligibility`)
//! through the real engine: a policy in a second language passes the
//! loader's checks and decides like the Rust example it mirrors.

use std::path::PathBuf;
use std::sync::OnceLock;

use super::*;

const BUILD: &str = "policies/assemblyscript-eligibility/build.sh";

/// The built module (`.wasm.gz` or `.wasm`). Built once per test run by the
/// policy's own build script, as `real_policy` builds the Rust examples;
/// `make test` ran the script already, so this finds it up to date. Without
/// Node.js and npm the script, and so the test, fails and says so.
fn module(extension: &str) -> Vec<u8> {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    let dir = OUT.get_or_init(|| run_build_script(BUILD, " (it needs Node.js >= 20 and npm)"));
    let path = dir.join(format!("assemblyscript-eligibility.{extension}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{} (built by {BUILD}): {e}", path.display()))
}

/// An engine given the module with `settings`, and what the load reported.
async fn engine_with(settings: &str) -> (PolicyEngine, Vec<LoadReport>) {
    let engine = engine();
    let reports = load(
        &engine,
        vec![source(
            "as-pods",
            module("wasm.gz"),
            &[("settings", settings)],
        )],
    )
    .await;
    (engine, reports)
}

async fn loaded_engine(settings: &str) -> PolicyEngine {
    let (engine, reports) = engine_with(settings).await;
    assert!(loaded(&reports), "{reports:?}");
    engine
}

fn denial(outcome: &EligibilityOutcome) -> &Denial {
    match outcome {
        EligibilityOutcome::Deny(d) => d,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[tokio::test]
async fn only_pods_with_the_label_are_eligible() {
    // YAML settings: the host hands the policy JSON either way.
    let engine = loaded_engine("podLabel: public-ip\n").await;
    let req = input("shop", &[]);

    let allowed = engine
        .eligibility(
            &req,
            &Target::pod("web-0").with_pod_label("public-ip", "yes"),
        )
        .await
        .expect("decision");
    assert_eq!(allowed.outcome, EligibilityOutcome::Allow);
    assert_eq!(allowed.verdicts.len(), 1);
    assert_eq!(allowed.verdicts[0].policy, "as-pods");
    assert_eq!(allowed.verdicts[0].outcome, VerdictOutcome::Allow);

    let denied = engine
        .eligibility(&req, &Target::pod("web-1").with_pod_label("other", "yes"))
        .await
        .expect("decision");
    let d = denial(&denied.outcome);
    assert_eq!(d.policy, "as-pods");
    assert_eq!(d.reason, "pod web-1 has no label public-ip");

    let private_ip = Target::PrivateIp {
        address: Some("10.0.3.4".into()),
        id: None,
        subnet_id: None,
        pod_namespace: None,
        node_ip: false,
    };
    let denied = engine
        .eligibility(&req, &private_ip)
        .await
        .expect("decision");
    assert!(
        denial(&denied.outcome)
            .reason
            .starts_with("private IP 10.0.3.4 is not a pod"),
        "{:?}",
        denied.outcome
    );
}

#[tokio::test]
async fn a_required_label_value_must_match() {
    let engine = loaded_engine(r#"{"podLabel":"public-ip","podLabelValue":"true"}"#).await;
    let req = input("shop", &[]);
    let allowed = engine
        .eligibility(
            &req,
            &Target::pod("web-0").with_pod_label("public-ip", "true"),
        )
        .await
        .expect("decision");
    assert_eq!(allowed.outcome, EligibilityOutcome::Allow);
    let denied = engine
        .eligibility(
            &req,
            &Target::pod("web-0").with_pod_label("public-ip", "false"),
        )
        .await
        .expect("decision");
    assert_eq!(
        denial(&denied.outcome).reason,
        "pod web-0 has public-ip=false, not true"
    );
}

/// The policy declares settings validation and eligibility only, so the host
/// asks it nothing else: tags and pools are decided as if it were absent.
#[tokio::test]
async fn decisions_it_does_not_declare_are_not_asked() {
    let engine = loaded_engine(r#"{"podLabel":"public-ip"}"#).await;
    let req = input("shop", &[]);
    let tags = engine.tag_defaults(&req).await.expect("decision");
    assert!(tags.verdicts.is_empty(), "{:?}", tags.verdicts);
    let pool = engine
        .select_pool(&req, &AllowedPools::Any)
        .await
        .expect("decision");
    assert_eq!(pool.outcome, PoolOutcome::Keep);
    assert!(pool.verdicts.is_empty(), "{:?}", pool.verdicts);
}

#[tokio::test]
async fn settings_it_rejects_refuse_the_load() {
    for (settings, message) in [
        (r#"{"podLabel":""}"#, "podLabel must not be empty"),
        (r#"{}"#, "podLabel is required"),
        (
            r#"{"podLable":"public-ip"}"#,
            r#"unknown field "podLable", expected podLabel or podLabelValue"#,
        ),
        (
            r#"{"podLabel":"public-ip","podLabelValue":3}"#,
            "podLabelValue must be a string",
        ),
    ] {
        let (_, reports) = engine_with(settings).await;
        match &reports[0].result {
            LoadResult::Failed {
                error: LoadError::Settings(got),
                ..
            } => assert_eq!(got, message, "settings {settings}"),
            other => panic!("settings {settings}: expected a refusal, got {other:?}"),
        }
    }
}

/// Should a host ask a decision the module does not declare, the answer is
/// the ABI's error envelope. The engine never asks (previous test), so this
/// calls the module directly with wasmtime, the way the engine does.
#[test]
fn undeclared_decisions_are_answered_with_an_error() {
    let engine = wasmtime::Engine::default();
    let compiled = wasmtime::Module::new(&engine, module("wasm")).expect("compile");
    assert_eq!(compiled.imports().count(), 0, "the ABI allows no imports");
    let request = br#"{"settings":{"podLabel":"public-ip"}}"#;
    let len = i32::try_from(request.len()).expect("small request");
    for kind in [1, 2, 9] {
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &compiled, &[]).expect("instantiate");
        let decisions = instance
            .get_typed_func::<(), i32>(&mut store, "policy_decisions")
            .and_then(|f| f.call(&mut store, ()))
            .expect("policy_decisions");
        assert_eq!(decisions, 0b1001, "settings validation and eligibility");
        let ptr = instance
            .get_typed_func::<i32, i32>(&mut store, "policy_alloc")
            .and_then(|f| f.call(&mut store, len))
            .expect("policy_alloc");
        let memory = instance.get_memory(&mut store, "memory").expect("memory");
        memory
            .write(&mut store, ptr as u32 as usize, request)
            .expect("write the request");
        let packed = instance
            .get_typed_func::<(i32, i32, i32), i64>(&mut store, "policy_evaluate")
            .and_then(|f| f.call(&mut store, (kind, ptr, len)))
            .expect("policy_evaluate") as u64;
        let start = (packed >> 32) as usize;
        let end = start + (packed & 0xffff_ffff) as usize;
        let output = memory
            .data(&store)
            .get(start..end)
            .expect("output inside memory");
        let output: serde_json::Value = serde_json::from_slice(output).expect("JSON output");
        assert_eq!(
            output,
            serde_json::json!({"error": format!("this policy does not answer decision {kind}")})
        );
    }
}
