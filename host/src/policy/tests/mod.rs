//! End-to-end tests of the engine (no cluster): real SDK-built policies,
//! composition, selectors, failure modes, hostile modules, reloads.

mod assemblyscript;
mod composition;
mod hostile;
mod reload;
mod rollout;
mod wat;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use super::abi::{Namespace, ReservedIp, Target};
use super::*;

pub(super) fn engine() -> PolicyEngine {
    PolicyEngine::new(Limits {
        timeout: Duration::from_millis(100),
        ..Limits::default()
    })
    .expect("engine")
}

pub(super) fn source(name: &str, module: Vec<u8>, keys: &[(&str, &str)]) -> PolicySource {
    let mut files: BTreeMap<String, Vec<u8>> = keys
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    let key = if module.starts_with(&[0x1f, 0x8b]) {
        "policy.wasm.gz"
    } else {
        "policy.wasm"
    };
    files.insert(key.into(), module);
    PolicySource {
        name: name.into(),
        files,
    }
}

pub(super) fn input(namespace: &str, labels: &[(&str, &str)]) -> ReservedIpInput {
    let mut ns = Namespace::new(namespace);
    for (k, v) in labels {
        ns = ns.with_label(*k, *v);
    }
    ReservedIpInput {
        reserved_ip: ReservedIp::new("web", namespace).with_tag("owner", "user"),
        namespace: ns,
    }
}

pub(super) async fn load(engine: &PolicyEngine, sources: Vec<PolicySource>) -> Vec<LoadReport> {
    engine.sync("test", sources).await
}

pub(super) fn loaded(reports: &[LoadReport]) -> bool {
    reports
        .iter()
        .all(|r| matches!(r.result, LoadResult::Loaded { .. }))
}

/// An SDK-built example policy (`policies/<name>`), gzipped; built once per
/// test run with `policies/build.sh`.
pub(super) fn real_policy(name: &str) -> Vec<u8> {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    let dir = OUT.get_or_init(|| run_build_script("policies/build.sh", ""));
    std::fs::read(dir.join(format!("{name}.wasm.gz"))).expect("built policy")
}

/// Runs a policy build script (`script`, from the repository's root) and
/// returns the output directory it prints on its last line; `needs` says
/// what the script requires, for the failure message.
pub(super) fn run_build_script(script: &str, needs: &str) -> PathBuf {
    let path = crate::checkout_dir().join("..").join(script);
    let output = std::process::Command::new(&path)
        .output()
        .unwrap_or_else(|e| panic!("run {script} ({}): {e}", path.display()));
    assert!(
        output.status.success(),
        "{script} failed{needs}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
}

const POOL_A: &str = "ocid1.publicippool.oc1..payments";

#[tokio::test]
async fn real_policies_answer_every_decision() {
    let engine = engine();
    let reports = load(
        &engine,
        vec![
            source(
                "tags",
                real_policy("tag-defaults"),
                &[(
                    "settings",
                    "fromNamespaceLabels: {cost-center: example.com/cost-center}\nenforced: {managed-by: platform}\n",
                )],
            ),
            source(
                "pools",
                real_policy("team-pool"),
                &[("settings", &format!(r#"{{"teamLabel":"team","pools":{{"payments":"{POOL_A}"}}}}"#))],
            ),
            source(
                "pods",
                real_policy("pod-label-eligibility"),
                &[("settings", r#"{"podLabel":"public-ip"}"#)],
            ),
        ],
    )
    .await;
    assert!(loaded(&reports), "{reports:?}");

    let mut req = input(
        "shop",
        &[("team", "payments"), ("example.com/cost-center", "cc-7")],
    );
    req.reserved_ip
        .spec
        .tags
        .insert("managed-by".into(), "me".into());
    let tags = engine.tag_defaults(&req).await.expect("decision");
    let expected: BTreeMap<String, String> = [
        ("cost-center", "cc-7"),
        ("managed-by", "platform"),
        ("owner", "user"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(tags.outcome, TagOutcome::Tags(expected));
    assert_eq!(tags.verdicts.len(), 1);
    assert_eq!(tags.verdicts[0].policy, "tags");

    let pool = engine
        .select_pool(&req, &AllowedPools::Only(vec![POOL_A.into()]))
        .await
        .expect("decision");
    assert_eq!(pool.outcome, PoolOutcome::Use(POOL_A.into()));
    assert_eq!(pool.verdicts[0].outcome, VerdictOutcome::Choose);

    let no_team = input("other", &[]);
    let pool = engine
        .select_pool(&no_team, &AllowedPools::Any)
        .await
        .expect("decision");
    assert!(
        matches!(pool.outcome, PoolOutcome::Deny(ref d) if d.policy == "pools" && d.reason.contains("team"))
    );

    let allowed = engine
        .eligibility(
            &req,
            &Target::pod("web-0").with_pod_label("public-ip", "yes"),
        )
        .await
        .expect("decision");
    assert_eq!(allowed.outcome, EligibilityOutcome::Allow);
    let denied = engine
        .eligibility(&req, &Target::pod("web-1"))
        .await
        .expect("decision");
    assert!(
        matches!(denied.outcome, EligibilityOutcome::Deny(ref d) if d.policy == "pods" && d.reason.contains("web-1"))
    );
}

/// The examples use the SDK's bump allocator: a large request (about 200 KB
/// of namespace labels, under the 256 KiB input cap) makes the heap grow over
/// many pages within one decision, and repeated decisions each start afresh.
#[tokio::test]
async fn a_large_request_grows_the_heap_of_a_bump_allocated_policy() {
    let engine = engine();
    let reports = load(
        &engine,
        vec![source(
            "tags",
            real_policy("tag-defaults"),
            &[("settings", "fromNamespaceLabels: {cost-center: cc}\n")],
        )],
    )
    .await;
    assert!(loaded(&reports), "{reports:?}");
    let labels: Vec<(String, String)> = (0..4000)
        .map(|i| {
            (
                format!("example.com/label-{i:05}"),
                format!("value-{i:020}"),
            )
        })
        .collect();
    let mut refs: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    refs.push(("cc", "cc-9"));
    let req = input("big", &refs);
    for _ in 0..3 {
        let tags = engine.tag_defaults(&req).await.expect("decision");
        assert!(
            matches!(tags.outcome, TagOutcome::Tags(ref t) if t.get("cost-center").map(String::as_str) == Some("cc-9")),
            "{:?}",
            tags.outcome
        );
        assert!(
            tags.verdicts
                .iter()
                .all(|v| v.outcome == VerdictOutcome::Tags),
            "{:?}",
            tags.verdicts
        );
    }
}

/// A loaded, updated or removed policy is announced (the controller then
/// decides every ReservedIP again); a refused update changes nothing and is not.
#[tokio::test]
async fn policy_changes_are_announced_refusals_are_not() {
    use futures::StreamExt;
    let engine = engine();
    let mut changes = Box::pin(engine.changes());
    let pools = format!(r#"{{"teamLabel":"team","pools":{{"payments":"{POOL_A}"}}}}"#);
    let good = || source("pools", real_policy("team-pool"), &[("settings", &pools)]);
    assert!(loaded(&load(&engine, vec![good()]).await));
    tokio::time::timeout(Duration::from_secs(5), changes.next())
        .await
        .expect("a load is announced")
        .expect("stream open");
    let refused = load(&engine, vec![source("pools", b"not wasm".to_vec(), &[])]).await;
    assert!(!loaded(&refused));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), changes.next())
            .await
            .is_err(),
        "a refused update is no change"
    );
    load(&engine, Vec::new()).await;
    tokio::time::timeout(Duration::from_secs(5), changes.next())
        .await
        .expect("a removal is announced")
        .expect("stream open");
}

#[tokio::test]
async fn no_policies_keep_everything() {
    let engine = engine();
    let req = input("shop", &[]);
    let tags = engine.tag_defaults(&req).await.expect("decision");
    assert!(matches!(tags.outcome, TagOutcome::Tags(ref t) if t["owner"] == "user"));
    assert_eq!(
        engine
            .select_pool(&req, &AllowedPools::Any)
            .await
            .expect("decision")
            .outcome,
        PoolOutcome::Keep
    );
    assert_eq!(
        engine
            .eligibility(&req, &Target::pod("p"))
            .await
            .expect("decision")
            .outcome,
        EligibilityOutcome::Allow
    );
}

#[tokio::test]
async fn settings_rejected_by_the_policy_refuse_the_load() {
    let engine = engine();
    let reports = load(
        &engine,
        vec![source(
            "pools",
            real_policy("team-pool"),
            &[("settings", r#"{"teamLabel":""}"#)],
        )],
    )
    .await;
    assert!(
        matches!(
            &reports[0].result,
            LoadResult::Failed {
                error: LoadError::Settings(_),
                ..
            } | LoadResult::Failed {
                error: LoadError::Start(_),
                ..
            }
        ),
        "{reports:?}"
    );
}
