//! Hot reload from a directory, including kubelet's `..data` symlink swap.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::super::abi::Target;
use super::super::directory::watch_directory;
use super::super::*;
use super::{engine, input, wat};

fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("policy-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn deny_module(reason: &str) -> Vec<u8> {
    wat::answer_module(&format!(
        r#"{{"ok":{{"decision":"deny","reason":"{reason}"}}}}"#
    ))
}

async fn reason(engine: &PolicyEngine) -> Option<String> {
    match engine
        .eligibility(&input("a", &[]), &Target::pod("p"))
        .await
        .expect("decision")
        .outcome
    {
        EligibilityOutcome::Deny(d) => Some(d.reason),
        EligibilityOutcome::Allow => None,
    }
}

/// Polls until the engine's answer is `want`; returns how long it took.
async fn wait_for(engine: &PolicyEngine, want: Option<&str>) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if reason(engine).await.as_deref() == want {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "engine did not answer {want:?} within 5 s (answers {:?})",
        reason(engine).await
    );
}

/// Writes a ConfigMap-volume-style generation: `..<gen>/policy.wasm`, then
/// atomically points `..data` at it (as kubelet does).
fn kubelet_write(policy_dir: &Path, generation: u32, module: &[u8]) {
    let gen_dir = policy_dir.join(format!("..gen_{generation}"));
    std::fs::create_dir_all(&gen_dir).expect("generation dir");
    std::fs::write(gen_dir.join("policy.wasm"), module).expect("write module");
    let tmp = policy_dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..gen_{generation}"), &tmp).expect("symlink");
    std::fs::rename(&tmp, policy_dir.join("..data")).expect("swap ..data");
    let link = policy_dir.join("policy.wasm");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("..data/policy.wasm", &link).expect("key symlink");
    }
    if generation > 1 {
        let _ = std::fs::remove_dir_all(policy_dir.join(format!("..gen_{}", generation - 1)));
    }
}

#[tokio::test]
async fn directory_changes_apply_within_two_seconds() {
    let root = temp_dir("plain");
    let engine = engine();
    std::fs::create_dir_all(root.join("p")).expect("mkdir");
    std::fs::write(root.join("p/policy.wasm"), deny_module("v1")).expect("write");
    let _watcher = watch_directory(engine.clone(), root.clone())
        .await
        .expect("watch");
    assert_eq!(reason(&engine).await.as_deref(), Some("v1"));

    // Atomic replace, as editors and `cp` + `mv` do.
    std::fs::write(root.join("p/policy.wasm.tmp"), deny_module("v2")).expect("write");
    std::fs::rename(root.join("p/policy.wasm.tmp"), root.join("p/policy.wasm")).expect("mv");
    assert!(wait_for(&engine, Some("v2")).await < Duration::from_secs(2));

    // A broken update keeps v2 and reports the error.
    std::fs::write(root.join("p/order"), "not a number").expect("write");
    let started = Instant::now();
    while engine.status()[0].error.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "error not reported"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(reason(&engine).await.as_deref(), Some("v2"));

    // Removing the policy directory unloads it.
    std::fs::remove_dir_all(root.join("p")).expect("rm");
    assert!(wait_for(&engine, None).await < Duration::from_secs(2));
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn configmap_volume_symlink_swap_is_followed() {
    let root = temp_dir("swap");
    let policy_dir = root.join("team-policy");
    std::fs::create_dir_all(&policy_dir).expect("mkdir");
    kubelet_write(&policy_dir, 1, &deny_module("gen1"));
    let engine = engine();
    let _watcher = watch_directory(engine.clone(), root.clone())
        .await
        .expect("watch");
    assert_eq!(reason(&engine).await.as_deref(), Some("gen1"));

    for generation in 2..=3 {
        let want = format!("gen{generation}");
        kubelet_write(&policy_dir, generation, &deny_module(&want));
        let took = wait_for(&engine, Some(&want)).await;
        assert!(took < Duration::from_secs(2), "{want} took {took:?}");
    }

    // A bad generation (wrong ABI) keeps gen3 running and is reported.
    kubelet_write(&policy_dir, 4, &wat::abi_version_module(7));
    let started = Instant::now();
    while engine.status()[0].error.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "error not reported"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        engine.status()[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("ABI version 7"))
    );
    assert_eq!(reason(&engine).await.as_deref(), Some("gen3"));
    let _ = std::fs::remove_dir_all(&root);
}
