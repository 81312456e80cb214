//! Hostile and broken modules: each costs at most one decision its answer,
//! never the engine, the next decision, or another namespace's decision.

use std::time::{Duration, Instant};

use super::super::abi::Target;
use super::super::*;
use super::{engine, input, load, loaded, source, wat};

const ALLOW: &str = r#"{"ok":{"decision":"allow"}}"#;

/// Runs `module` as the only policy for namespaces labelled `hostile=yes`
/// (fail closed), beside a healthy policy for everyone; checks the hostile
/// decision fails with `expected` in its reason, and that decisions before
/// and after it, there and elsewhere, are unharmed.
async fn check_contained(module: Vec<u8>, expected: &str) {
    let engine = engine();
    let reports = load(
        &engine,
        vec![
            source(
                "hostile",
                module,
                &[("namespaceSelector", "matchLabels: {hostile: 'yes'}")],
            ),
            source("healthy", wat::answer_module(ALLOW), &[]),
        ],
    )
    .await;
    assert!(loaded(&reports), "{reports:?}");
    let target = Target::pod("p");
    let calm = input("calm", &[]);
    let hostile = input("bad", &[("hostile", "yes")]);

    let before = engine.eligibility(&calm, &target).await.expect("decision");
    assert_eq!(before.outcome, EligibilityOutcome::Allow);
    for _ in 0..3 {
        let denied = engine
            .eligibility(&hostile, &target)
            .await
            .expect("decision");
        match &denied.outcome {
            EligibilityOutcome::Deny(d) => {
                assert_eq!(d.policy, "hostile");
                assert!(
                    d.reason.contains(expected),
                    "{} should contain {expected}",
                    d.reason
                );
            }
            other => panic!("expected a denial, got {other:?}"),
        }
    }
    let after = engine.eligibility(&calm, &target).await.expect("decision");
    assert_eq!(after.outcome, EligibilityOutcome::Allow);
    assert_eq!(after.verdicts.len(), 1);
}

#[tokio::test]
async fn trap_is_contained() {
    check_contained(wat::hostile_module("unreachable"), "unreachable").await;
}

#[tokio::test]
async fn infinite_loop_hits_the_deadline() {
    let started = Instant::now();
    check_contained(
        wat::hostile_module("(loop $l (br $l)) unreachable"),
        "deadline",
    )
    .await;
    // Three timed-out decisions of 100 ms each, plus slack for a busy machine.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn deadline_fires_close_to_the_timeout() {
    let engine = PolicyEngine::new(Limits {
        timeout: Duration::from_millis(30),
        ..Limits::default()
    })
    .expect("engine");
    let looping = wat::hostile_module("(loop $l (br $l)) unreachable");
    assert!(loaded(
        &load(&engine, vec![source("loop", looping, &[])]).await
    ));
    let started = Instant::now();
    let decision = engine
        .eligibility(&input("a", &[]), &Target::pod("p"))
        .await
        .expect("decision");
    let elapsed = started.elapsed();
    assert!(
        matches!(decision.outcome, EligibilityOutcome::Deny(ref d) if d.reason.contains("deadline of 30 ms"))
    );
    assert!(
        elapsed >= Duration::from_millis(30) && elapsed < Duration::from_millis(500),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn growing_memory_forever_hits_the_cap() {
    let body = "(loop $l (drop (memory.grow (i32.const 16))) (br $l)) unreachable";
    check_contained(wat::hostile_module(body), "memory cap").await;
}

#[tokio::test]
async fn out_of_bounds_output_is_refused() {
    let body = format!("(i64.const {})", (0xffff_0000u64 << 32) | 16);
    check_contained(wat::hostile_module(&body), "out-of-bounds").await;
    // A length running past the end of memory.
    let body = format!("(i64.const {})", (60_000u64 << 32) | 6_000);
    check_contained(wat::hostile_module(&body), "out-of-bounds").await;
}

#[tokio::test]
async fn out_of_bounds_input_buffer_is_refused() {
    // An alloc that returns an address past the end of memory.
    let text = r#"(module
      (memory (export "memory") 1)
      (func (export "policy_abi_version") (result i32) (i32.const 1))
      (func (export "policy_decisions") (result i32) (i32.const 8))
      (func (export "policy_alloc") (param i32) (result i32) (i32.const -16))
      (func (export "policy_evaluate") (param i32 i32 i32) (result i64) (i64.const 0)))"#;
    check_contained(::wat::parse_str(text).expect("wat"), "out-of-bounds").await;
}

#[tokio::test]
async fn oversized_output_is_refused() {
    let body = format!(
        "(drop (memory.grow (i32.const 100))) (i64.const {})",
        1u64 << 22
    );
    check_contained(wat::hostile_module(&body), "over the limit").await;
}

#[tokio::test]
async fn malformed_output_is_refused() {
    let answer = "{\"ok\": not json";
    let body = format!("(i64.const {})", (256u64 << 32) | answer.len() as u64);
    check_contained(wat::module(1, "1", "", answer, &body), "malformed output").await;
    check_contained(
        wat::answer_module(r#"{"ok":{"decision":"maybe"}}"#),
        "malformed output",
    )
    .await;
    check_contained(wat::answer_module(r#"{"error":"I give up"}"#), "I give up").await;
}

#[tokio::test]
async fn modules_that_cannot_be_policies_are_refused_at_load() {
    let engine = engine();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "wrong-abi",
            wat::abi_version_module(2),
            "speaks policy ABI version 2, this operator speaks version 1",
        ),
        (
            "wasi",
            wat::module(
                1,
                "1",
                r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
                "",
                "(i64.const 0)",
            ),
            "imports `wasi_snapshot_preview1::fd_write`",
        ),
        (
            "huge-memory",
            wat::module(1, "1000", "", "", "(i64.const 0)"),
            "over the cap",
        ),
        (
            "garbage",
            b"\0asm\x01\0\0\0garbage".to_vec(),
            "invalid WebAssembly",
        ),
        (
            "not-wasm",
            b"#!/bin/sh\nrm -rf /".to_vec(),
            "not a WebAssembly module",
        ),
        (
            "no-exports",
            ::wat::parse_str(r#"(module (memory (export "memory") 1))"#).expect("wat"),
            "does not export `policy_abi_version`",
        ),
        (
            "start-loops",
            ::wat::parse_str(
                r#"(module (memory (export "memory") 1) (func $s (loop $l (br $l))) (start $s))"#,
            )
            .expect("wat"),
            "deadline",
        ),
    ];
    for (name, module, expected) in cases {
        let reports = load(&engine, vec![source(name, module, &[])]).await;
        match &reports[0].result {
            LoadResult::Failed {
                error,
                kept_version: None,
            } => {
                assert!(
                    error.to_string().contains(expected),
                    "{name}: {error} should contain {expected}"
                )
            }
            other => panic!("{name}: expected a refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn oversized_input_fails_the_decision() {
    let engine = PolicyEngine::new(Limits {
        max_input_bytes: 200,
        ..Limits::default()
    })
    .expect("engine");
    assert!(loaded(
        &load(&engine, vec![source("p", wat::answer_module(ALLOW), &[])]).await
    ));
    let mut req = input("a", &[]);
    req.reserved_ip
        .spec
        .tags
        .insert("big".into(), "x".repeat(300));
    let decision = engine
        .eligibility(&req, &Target::pod("p"))
        .await
        .expect("decision");
    assert!(
        matches!(decision.outcome, EligibilityOutcome::Deny(ref d) if d.reason.contains("input is"))
    );
}

#[tokio::test]
async fn many_hostile_decisions_in_parallel_leave_the_engine_healthy() {
    let engine = engine();
    let reports = load(
        &engine,
        vec![
            source(
                "trap",
                wat::hostile_module("unreachable"),
                &[("namespaceSelector", "matchLabels: {bad: trap}")],
            ),
            source(
                "oom",
                wat::hostile_module(
                    "(loop $l (drop (memory.grow (i32.const 16))) (br $l)) unreachable",
                ),
                &[("namespaceSelector", "matchLabels: {bad: oom}")],
            ),
        ],
    )
    .await;
    assert!(loaded(&reports), "{reports:?}");
    let mut tasks = Vec::new();
    for i in 0..40 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let label = ["trap", "oom", "none"][i % 3];
            let decision = engine
                .eligibility(
                    &input(&format!("ns{i}"), &[("bad", label)]),
                    &Target::pod("p"),
                )
                .await
                .expect("decision");
            (label, decision.outcome)
        }));
    }
    for task in tasks {
        let (label, outcome) = task.await.expect("task");
        match label {
            "none" => assert_eq!(outcome, EligibilityOutcome::Allow),
            _ => assert!(matches!(outcome, EligibilityOutcome::Deny(_))),
        }
    }
}
