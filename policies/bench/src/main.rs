//! Per-decision latency of the policy engine with five SDK-built policies
//! loaded (a fresh instance per policy per decision, JSON included).
//!
//! Run: `policies/build.sh && cargo run --release -p policy-bench [-- <policy dir> <iterations>]`
//! (`<policy dir>` defaults to `$CARGO_TARGET_DIR/policies` or `target/policies`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_oci_operator::policy::abi::{Namespace, ReservedIp, Target};
use k8s_oci_operator::policy::{
    AllowedPools, EngineOptions, Limits, LoadReport, LoadResult, PolicyEngine, PolicySource,
    ReservedIpInput,
};

const POOL: &str = "ocid1.publicippool.oc1..payments";

fn source(
    dir: &Path,
    name: &str,
    module: &str,
    order: &str,
    settings: &str,
) -> Result<PolicySource> {
    let wasm = std::fs::read(dir.join(format!("{module}.wasm.gz"))).with_context(|| {
        format!(
            "{module}.wasm.gz in {} (run policies/build.sh)",
            dir.display()
        )
    })?;
    let files: BTreeMap<String, Vec<u8>> = [
        ("policy.wasm.gz", wasm),
        ("order", order.as_bytes().to_vec()),
        ("settings", settings.as_bytes().to_vec()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok(PolicySource {
        name: name.into(),
        files,
    })
}

/// The five benchmark policies; `generation` appends a custom section to
/// every module, so each is a new module (digest) with the same code.
fn five(
    dir: &Path,
    pools: &str,
    managed_by: &str,
    generation: Option<u8>,
) -> Result<Vec<PolicySource>> {
    let mut policies = vec![
        source(
            dir,
            "tags-cost-center",
            "tag-defaults",
            "1",
            r#"{"fromNamespaceLabels":{"cost-center":"cost-center"},"defaults":{"cost-center":"shared"}}"#,
        )?,
        source(dir, "tags-managed-by", "tag-defaults", "2", managed_by)?,
        source(dir, "team-pool", "team-pool", "1", pools)?,
        source(
            dir,
            "pods-labelled",
            "pod-label-eligibility",
            "1",
            r#"{"podLabel":"public-ip"}"#,
        )?,
        source(
            dir,
            "pods-value",
            "pod-label-eligibility",
            "2",
            r#"{"podLabel":"public-ip","podLabelValue":"true"}"#,
        )?,
    ];
    if let Some(generation) = generation {
        for policy in &mut policies {
            new_module(policy, generation)?;
        }
    }
    Ok(policies)
}

/// Makes `policy`'s module a new one (a new digest, the same code) by
/// appending a custom section: what a rebuilt module is to the engine.
fn new_module(policy: &mut PolicySource, generation: u8) -> Result<()> {
    let gz = policy.files.remove("policy.wasm.gz").unwrap_or_default();
    let mut wasm = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut wasm)?;
    // A custom section: id 0, size, name length, name, payload.
    wasm.extend_from_slice(&[0, 3, 1, b'g', generation]);
    policy.files.insert("policy.wasm".into(), wasm);
    Ok(())
}

fn ensure_loaded(reports: &[LoadReport]) -> Result<()> {
    if let Some(failed) = reports
        .iter()
        .find(|r| !matches!(r.result, LoadResult::Loaded { .. }))
    {
        bail!("policy {} did not load: {:?}", failed.policy, failed.result);
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(label: &str, mut samples: Vec<Duration>, policies: usize) {
    samples.sort();
    let total: Duration = samples.iter().sum();
    let mean = total / samples.len() as u32;
    println!(
        "{label:<28} p50 {:>7.1} µs  p99 {:>7.1} µs  mean {:>7.1} µs  ({policies} policies; {:>6.1} µs per policy evaluation)",
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6 / policies as f64,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target"))
            .join("policies")
    });
    let iterations: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2000);

    let engine = PolicyEngine::new(Limits::default())?;
    let pools = format!(r#"{{"teamLabel":"team","pools":{{"payments":"{POOL}"}}}}"#);
    let policies = five(
        &dir,
        &pools,
        r#"{"enforced":{"managed-by":"platform"}}"#,
        None,
    )?;
    let started = Instant::now();
    let reports = engine.sync("bench", policies).await;
    let load_time = started.elapsed();
    ensure_loaded(&reports)?;
    let (compiled, _) = engine.metrics().modules_prepared();
    println!(
        "machine: {} CPUs available, {}; {} policies loaded ({compiled} distinct modules compiled) in {:.0} ms",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::env::consts::ARCH,
        reports.len(),
        load_time.as_secs_f64() * 1e3
    );

    let req = ReservedIpInput {
        reserved_ip: ReservedIp::new("web", "shop").with_tag("owner", "me"),
        namespace: Namespace::new("shop")
            .with_label("team", "payments")
            .with_label("cost-center", "cc-1"),
    };
    let target = Target::pod("web-0").with_pod_label("public-ip", "true");
    let allowed = AllowedPools::Only(vec![POOL.into()]);

    // Warm up (page in code, grow the blocking pool).
    for _ in 0..200 {
        engine.tag_defaults(&req).await?;
    }
    let mut tags = Vec::with_capacity(iterations);
    let mut pool = Vec::with_capacity(iterations);
    let mut elig = Vec::with_capacity(iterations);
    let all = Instant::now();
    for _ in 0..iterations {
        let t = Instant::now();
        engine.tag_defaults(&req).await?;
        tags.push(t.elapsed());
        let t = Instant::now();
        engine.select_pool(&req, &allowed).await?;
        pool.push(t.elapsed());
        let t = Instant::now();
        engine.eligibility(&req, &target).await?;
        elig.push(t.elapsed());
    }
    let all = all.elapsed();
    report("tag defaults", tags, 2);
    report("pool selection", pool, 1);
    report("eligibility", elig, 2);
    let evaluations = iterations * 5;
    println!(
        "sequential on one worker: {:.0} decisions/s, {:.0} policy evaluations/s (fresh instance each)",
        (iterations * 3) as f64 / all.as_secs_f64(),
        evaluations as f64 / all.as_secs_f64()
    );

    // Reload: a changed policy, from sync to the new version deciding.
    let started = Instant::now();
    engine
        .sync(
            "bench",
            five(
                &dir,
                &pools,
                r#"{"enforced":{"managed-by":"platform-v2"}}"#,
                None,
            )?,
        )
        .await;
    engine.tag_defaults(&req).await?;
    println!(
        "reload, settings changed: {:.1} ms to the new version deciding (module already compiled)",
        started.elapsed().as_secs_f64() * 1e3
    );

    // A new version of one policy's module must be compiled: the usual
    // ConfigMap update. Timed from the sync to the new version's first
    // decision (team-pool; tag-defaults is the largest example).
    let mut policies = five(
        &dir,
        &pools,
        r#"{"enforced":{"managed-by":"platform-v2"}}"#,
        None,
    )?;
    for (generation, name) in [(1, "team-pool"), (2, "tags-managed-by")] {
        if let Some(policy) = policies.iter_mut().find(|p| p.name == name) {
            new_module(policy, generation)?;
        }
        let started = Instant::now();
        ensure_loaded(&engine.sync("bench", policies.clone()).await)?;
        if name == "team-pool" {
            engine.select_pool(&req, &allowed).await?;
        } else {
            engine.tag_defaults(&req).await?;
        }
        println!(
            "reload, module of {name} changed: {:.0} ms to the new version deciding (compiled)",
            started.elapsed().as_secs_f64() * 1e3
        );
    }

    // A restart with the artifact cache: every module compiled before.
    let cache = std::env::temp_dir().join(format!("policy-bench-{}", std::process::id()));
    let options = || EngineOptions {
        artifact_dir: Some(cache.join("artifacts")),
        ..EngineOptions::default()
    };
    let first = PolicyEngine::with_options(options())?;
    let started = Instant::now();
    let settings = r#"{"enforced":{"managed-by":"platform"}}"#;
    ensure_loaded(
        &first
            .sync("bench", five(&dir, &pools, settings, Some(2))?)
            .await,
    )?;
    let cold = started.elapsed();
    drop(first);
    let restarted = PolicyEngine::with_options(options())?;
    let started = Instant::now();
    ensure_loaded(
        &restarted
            .sync("bench", five(&dir, &pools, settings, Some(2))?)
            .await,
    )?;
    restarted.tag_defaults(&req).await?;
    let warm = started.elapsed();
    let (compiled, from_artifacts) = restarted.metrics().modules_prepared();
    let _ = std::fs::remove_dir_all(&cache);
    println!(
        "start, 5 policies (3 modules): {:.0} ms compiling, {:.0} ms after a restart with the artifact cache ({compiled} compiled, {from_artifacts} from artifacts)",
        cold.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3
    );
    Ok(())
}
