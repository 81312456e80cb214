//! `k8s-oci-operator policy eval` evaluates a real SDK-built module offline
//! with the operator's engine, and refuses a broken one with a clear message.

use anyhow::Result;
use integration_tests::{built_policies, operator_binary};
use serde_json::json;

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

    let out = std::process::Command::new(&bin)
        .args(["policy", "eval", "--module"])
        .arg(policies.join("pod-label-eligibility.wasm.gz"))
        .arg("--input")
        .arg(&input)
        .arg("--settings")
        .arg(&settings)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decisions: serde_json::Value = serde_json::from_slice(&out.stdout)?;
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
