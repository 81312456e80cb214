//! `k8s-oci-operator policy eval` evaluates a real SDK-built module offline
//! with the operator's engine, and refuses a broken one with a clear message.

use anyhow::Result;
use integration_tests::{built_policies, operator_binary};
use serde_json::json;

/// `policy eval <args>`, which must succeed; its decisions.
fn eval(bin: &std::path::Path, args: &[&std::ffi::OsStr]) -> Result<serde_json::Value> {
    let out = std::process::Command::new(bin)
        .args(["policy", "eval"])
        .args(args)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[tokio::test]
async fn policy_eval_prints_decisions_and_refuses_broken_modules() -> Result<()> {
    let bin = operator_binary().await?;
    let policies = built_policies()?;
    let dir = std::env::temp_dir().join(format!("policy-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let input = dir.join("input.json");
    std::fs::write(
        &input,
        serde_json::to_vec(&json!({
            "reservedIP": {
                "apiVersion": "oci.k8s.logmein.com/v1alpha1", "kind": "ReservedIP",
                "metadata": {"name": "r", "namespace": "shop"},
                "spec": {"tags": {"owner": "me"}, "assignment": {"podName": "web"}}
            },
            "namespaceLabels": {"team": "payments"},
            "target": {"kind": "pod", "name": "web", "labels": {}}
        }))?,
    )?;
    let settings = dir.join("settings.json");
    std::fs::write(&settings, r#"{"podLabel": "public-ip"}"#)?;

    let decisions = eval(
        &bin,
        &[
            "--module".as_ref(),
            policies.join("pod-label-eligibility.wasm.gz").as_os_str(),
            "--input".as_ref(),
            input.as_os_str(),
            "--settings".as_ref(),
            settings.as_os_str(),
        ],
    )?;
    let denied = &decisions["eligibility"]["outcome"]["denied"];
    assert_eq!(denied["policy"], "pod-label-eligibility", "{decisions}");
    assert!(
        denied["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("public-ip"),
        "{decisions}"
    );

    let broken = dir.join("broken.wasm");
    std::fs::write(&broken, b"\0asm\x02\0\0\0garbage")?;
    let out = std::process::Command::new(&bin)
        .args(["policy", "eval", "--module"])
        .arg(&broken)
        .arg("--input")
        .arg(&input)
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// A policy repository's CI: ConfigMap manifests as they would be applied,
/// a table of cases, `policy test` without a cluster. Selectors, order,
/// settings and audit mode apply as in the operator; a wrong expectation
/// fails the run and says what differed.
#[tokio::test]
async fn policy_test_runs_a_table_of_cases_against_configmap_manifests() -> Result<()> {
    use base64::Engine as _;
    let bin = operator_binary().await?;
    let policies = built_policies()?;
    let dir = tempfile::tempdir()?;
    let b64 = |name: &str| -> Result<String> {
        Ok(base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(policies.join(format!("{name}.wasm.gz")))?))
    };
    let label = "oci.k8s.logmein.com/policy";
    let manifests = format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: team-pool, labels: {{{label}: "true"}}}}
data:
  order: "1"
  namespaceSelector: "matchExpressions: [{{key: team, operator: Exists}}]"
  settings: '{{"teamLabel": "team", "pools": {{"payments": "ocid1.publicippool.oc1..payments"}}}}'
binaryData: {{policy.wasm.gz: {pool}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: tags, labels: {{{label}: "true"}}}}
data:
  settings: '{{"enforced": {{"managed-by": "platform"}}}}'
binaryData: {{policy.wasm.gz: {tags}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: labelled-pods, labels: {{{label}: "true"}}}}
data:
  mode: audit
  settings: '{{"podLabel": "public-ip"}}'
binaryData: {{policy.wasm.gz: {pods}}}
"#,
        pool = b64("team-pool")?,
        tags = b64("tag-defaults")?,
        pods = b64("pod-label-eligibility")?,
    );
    std::fs::create_dir(dir.path().join("configmaps"))?;
    std::fs::write(dir.path().join("configmaps/policies.yaml"), manifests)?;
    let rip = r#"{apiVersion: oci.k8s.logmein.com/v1alpha1, kind: ReservedIP, metadata: {name: web}, spec: {tags: {owner: me}, assignment: {podName: web}}}"#;
    let cases = |pool_expected: &str| {
        format!(
            r#"policies: [configmaps]
cases:
- name: payments draws from its pool, tags enforced, the audit sees the unlabelled pod
  input:
    reservedIP: {rip}
    namespace: {{name: shop, labels: {{team: payments}}}}
    pod: {{metadata: {{name: web, labels: {{}}}}}}
  expect:
    pool: {pool_expected}
    tags: {{owner: me, managed-by: platform}}
    eligibility: allow
    auditDenials: [labelled-pods]
- name: a team without a pool is denied
  input:
    reservedIP: {rip}
    namespace: {{name: other, labels: {{team: search}}}}
  expect: {{pool: deny, deniedBy: team-pool, reasonContains: search}}
- name: namespaces without a team are not selected
  input:
    reservedIP: {rip}
    namespaceLabels: {{}}
  expect: {{pool: keep}}
"#
        )
    };
    let file = dir.path().join("cases.yaml");
    std::fs::write(&file, cases("ocid1.publicippool.oc1..payments"))?;
    let out = std::process::Command::new(&bin)
        .args(["policy", "test"])
        .arg(&file)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("3 cases: 3 passed, 0 failed"), "{stdout}");

    // A wrong expectation fails the run, naming the case and the difference.
    std::fs::write(&file, cases("keep"))?;
    let out = std::process::Command::new(&bin)
        .args(["policy", "test"])
        .arg(&file)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  payments draws from its pool")
            && stdout.contains("pool: expected keep, got ocid1.publicippool.oc1..payments")
            && stdout.contains("3 cases: 2 passed, 1 failed"),
        "{stdout}"
    );

    // `policy eval` reads the same manifests and prints who decided what.
    let input = dir.path().join("input.yaml");
    std::fs::write(
        &input,
        format!("reservedIP: {rip}\nnamespace: {{name: shop, labels: {{team: payments}}}}\n"),
    )?;
    let decisions = eval(
        &bin,
        &[
            "--policies".as_ref(),
            dir.path().join("configmaps").as_os_str(),
            "--input".as_ref(),
            input.as_os_str(),
        ],
    )?;
    assert_eq!(
        decisions["pool"]["outcome"]["use"], "ocid1.publicippool.oc1..payments",
        "{decisions}"
    );
    assert_eq!(
        decisions["pool"]["verdicts"][0]["policy"], "team-pool",
        "{decisions}"
    );
    assert_eq!(
        decisions["policies"].as_array().map(Vec::len),
        Some(3),
        "{decisions}"
    );
    Ok(())
}
