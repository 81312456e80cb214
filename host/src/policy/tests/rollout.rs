//! Rolling policies out safely: audit mode, pinned digests, signatures,
//! per-policy metrics, and modules compiled once (per batch, and across
//! restarts through the artifact cache).

use std::process::Command;

use prometheus_client::registry::Registry;

use super::super::abi::Target;
use super::super::*;
use super::{engine, input, load, loaded, source, wat};

fn deny(reason: &str) -> Vec<u8> {
    wat::answer_module(&format!(
        r#"{{"ok":{{"decision":"deny","reason":"{reason}"}}}}"#
    ))
}

fn allow() -> Vec<u8> {
    wat::answer_module(r#"{"ok":{"decision":"allow"}}"#)
}

/// The engine's metrics as Prometheus text.
fn exposition(engine: &PolicyEngine) -> String {
    let mut registry = Registry::default();
    engine.metrics().register(&mut registry);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).expect("encode");
    out
}

fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The eligibility of a pod: the deny reason, or `None` when allowed.
async fn deny_reason(engine: &PolicyEngine) -> Option<String> {
    match engine
        .eligibility(&input("shop", &[]), &Target::pod("web"))
        .await
        .expect("decision")
        .outcome
    {
        EligibilityOutcome::Deny(d) => Some(d.reason),
        EligibilityOutcome::Allow => None,
    }
}

fn refusals(engine: &PolicyEngine, policy: &str, reason: &str) -> Option<f64> {
    let text = exposition(engine);
    sample(
        &text,
        &format!(r#"policy_load_refusals_total{{policy="{policy}",reason="{reason}"}}"#),
    )
}

#[tokio::test]
async fn an_audited_policy_is_recorded_and_never_applied() {
    let engine = engine();
    let reports = load(
        &engine,
        vec![
            source(
                "audited-deny",
                deny("not yet"),
                &[("mode", "audit"), ("order", "1")],
            ),
            source("enforced-allow", allow(), &[("order", "2")]),
            source(
                "audited-trap",
                wat::hostile_module("unreachable"),
                &[("mode", "audit"), ("order", "3")],
            ),
        ],
    )
    .await;
    assert!(loaded(&reports), "{reports:?}");
    let decision = engine
        .eligibility(&input("shop", &[]), &Target::pod("web"))
        .await
        .expect("decision");
    assert_eq!(decision.outcome, EligibilityOutcome::Allow);
    let summary: Vec<(&str, VerdictOutcome, bool)> = decision
        .verdicts
        .iter()
        .map(|v| (v.policy.as_str(), v.outcome, v.audit))
        .collect();
    assert_eq!(
        summary,
        [
            ("enforced-allow", VerdictOutcome::Allow, false),
            ("audited-deny", VerdictOutcome::Deny, true),
            // Failure mode deny would have denied; in audit it only says so.
            ("audited-trap", VerdictOutcome::FailedClosed, true),
        ]
    );
    assert_eq!(decision.verdicts[1].message, "not yet");

    let text = exposition(&engine);
    let labels = r#"{policy="audited-deny",decision="eligibility",mode="audit"}"#;
    assert_eq!(
        sample(&text, &format!("policy_evaluations_total{labels}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("policy_denials_total{labels}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"policy_failures_total{policy="audited-trap",decision="eligibility",mode="audit",reason="trap"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"policy_evaluation_duration_seconds_count{policy="enforced-allow"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn audited_policies_still_run_after_an_enforced_deny() {
    let engine = engine();
    let reports = load(
        &engine,
        vec![
            source("enforced-deny", deny("no"), &[("order", "1")]),
            source("audited", allow(), &[("mode", "audit"), ("order", "2")]),
            source("enforced-later", allow(), &[("order", "3")]),
        ],
    )
    .await;
    assert!(loaded(&reports), "{reports:?}");
    let decision = engine
        .eligibility(&input("shop", &[]), &Target::pod("web"))
        .await
        .expect("decision");
    assert!(
        matches!(decision.outcome, EligibilityOutcome::Deny(ref d) if d.policy == "enforced-deny")
    );
    let names: Vec<&str> = decision
        .verdicts
        .iter()
        .map(|v| v.policy.as_str())
        .collect();
    assert_eq!(names, ["enforced-deny", "audited"]);
}

#[tokio::test]
async fn a_pinned_digest_refuses_another_module_and_keeps_the_good_one() {
    let engine = engine();
    let good = deny("pinned");
    let digest = module::sha256_hex(&good);
    let pinned = |module: Vec<u8>| {
        source(
            "pinned",
            module,
            &[("sha256", &format!("{digest}  policy.wasm"))],
        )
    };
    assert!(loaded(&load(&engine, vec![pinned(good.clone())]).await));

    let reports = load(&engine, vec![pinned(deny("swapped"))]).await;
    assert!(
        matches!(
            &reports[0].result,
            LoadResult::Failed { error: LoadError::DigestMismatch { expected, .. }, kept_version: Some(_) }
                if *expected == digest
        ),
        "{reports:?}"
    );
    assert_eq!(
        deny_reason(&engine).await.as_deref(),
        Some("pinned"),
        "the last good version stays"
    );
    assert_eq!(refusals(&engine, "pinned", "digest"), Some(1.0));
}

/// Keys and signatures made by the `openssl` command line, as the docs tell
/// platform teams to make them.
struct Openssl {
    dir: tempfile::TempDir,
}

impl Openssl {
    fn new() -> Self {
        Openssl {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn run(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A new key pair named `name`; returns the public key PEM.
    fn key(&self, name: &str) -> String {
        self.run(&[
            "genpkey",
            "-algorithm",
            "ed25519",
            "-out",
            &format!("{name}.pem"),
        ]);
        self.run(&[
            "pkey",
            "-in",
            &format!("{name}.pem"),
            "-pubout",
            "-out",
            &format!("{name}.pub"),
        ]);
        std::fs::read_to_string(self.dir.path().join(format!("{name}.pub"))).expect("public key")
    }

    /// The raw signature of `module` with key `name`.
    fn sign(&self, name: &str, module: &[u8]) -> Vec<u8> {
        std::fs::write(self.dir.path().join("policy.wasm"), module).expect("write");
        self.run(&[
            "pkeyutl",
            "-sign",
            "-rawin",
            "-inkey",
            &format!("{name}.pem"),
            "-in",
            "policy.wasm",
            "-out",
            "policy.wasm.sig",
        ]);
        std::fs::read(self.dir.path().join("policy.wasm.sig")).expect("signature")
    }
}

fn signed(name: &str, module: Vec<u8>, signature: Option<Vec<u8>>) -> PolicySource {
    let mut src = source(name, module, &[]);
    if let Some(signature) = signature {
        src.files.insert("policy.wasm.sig".into(), signature);
    }
    src
}

#[tokio::test]
async fn signatures_made_with_openssl_are_checked_with_the_trusted_keys() {
    let openssl = Openssl::new();
    let platform = openssl.key("platform");
    let _ = openssl.key("intruder");
    let engine = PolicyEngine::with_options(EngineOptions {
        trust: Trust::from_pem(&platform, true).expect("keys"),
        ..EngineOptions::default()
    })
    .expect("engine");

    let module = deny("signed");
    let good = openssl.sign("platform", &module);
    assert!(loaded(
        &load(
            &engine,
            vec![signed("p", module.clone(), Some(good.clone()))]
        )
        .await
    ));

    // A gzipped module carries the same signature (it covers the wasm).
    let gz = {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&module).expect("gzip");
        enc.finish().expect("gzip")
    };
    assert!(loaded(
        &load(&engine, vec![signed("p", gz, Some(good.clone()))]).await
    ));

    let cases = [
        ("another module", signed("p", deny("swapped"), Some(good))),
        (
            "another key",
            signed("p", module.clone(), Some(openssl.sign("intruder", &module))),
        ),
        ("no signature", signed("p", deny("unsigned"), None)),
    ];
    for (what, src) in cases {
        let reports = load(&engine, vec![src]).await;
        assert!(
            matches!(
                &reports[0].result,
                LoadResult::Failed {
                    error: LoadError::Signature(_),
                    kept_version: Some(_)
                }
            ),
            "{what}: {reports:?}"
        );
    }
    assert_eq!(
        deny_reason(&engine).await.as_deref(),
        Some("signed"),
        "the last good version stays"
    );
    assert_eq!(refusals(&engine, "p", "signature"), Some(3.0));
}

#[tokio::test]
async fn policies_sharing_a_module_compile_it_once() {
    let engine = engine();
    let module = deny("shared");
    let reports = load(
        &engine,
        (0..3)
            .map(|i| {
                source(
                    &format!("p{i}"),
                    module.clone(),
                    &[("order", &i.to_string())],
                )
            })
            .collect(),
    )
    .await;
    assert!(loaded(&reports), "{reports:?}");
    assert_eq!(engine.metrics().modules_prepared(), (1, 0));
    // Each loaded policy's series start at zero, before any evaluation.
    let text = exposition(&engine);
    for policy in ["p0", "p1", "p2"] {
        let series = format!(
            r#"policy_denials_total{{policy="{policy}",decision="selectPool",mode="enforce"}}"#
        );
        assert_eq!(sample(&text, &series), Some(0.0), "{series} in {text}");
    }
}

#[tokio::test]
async fn a_restarted_engine_takes_compiled_modules_from_its_artifact_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let with_cache = || {
        PolicyEngine::with_options(EngineOptions {
            artifact_dir: Some(dir.path().join("artifacts")),
            ..EngineOptions::default()
        })
        .expect("engine")
    };
    let module = deny("cached");
    let first = with_cache();
    assert!(loaded(
        &load(&first, vec![source("p", module.clone(), &[])]).await
    ));
    assert_eq!(first.metrics().modules_prepared(), (1, 0));

    let second = with_cache();
    assert!(loaded(&load(&second, vec![source("p", module, &[])]).await));
    assert_eq!(second.metrics().modules_prepared(), (0, 1));
    assert_eq!(deny_reason(&second).await.as_deref(), Some("cached"));
    // A module the cache has not seen is compiled.
    assert!(loaded(
        &load(&second, vec![source("p", deny("new"), &[])]).await
    ));
    assert_eq!(second.metrics().modules_prepared(), (1, 1));
}
