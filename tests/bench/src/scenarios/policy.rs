//! Scenario 6: added latency per decision with 5 policies loaded. The engine
//! is timed in-process by the policy engine's own micro-benchmark
//! (`policy-bench`, policies/bench: five SDK-built policies, a fresh
//! instance per policy per decision), run here as a separate process on the
//! same machine; its per-decision figures are parsed into the table. A pass
//! that allocates asks all three decisions (tag defaults, pool, eligibility),
//! so their sum is what policies add to such a pass.
//!
//! Then the live reload, end to end in the running operator: a policy
//! ConfigMap's module is replaced by a new build (a new digest: the module
//! with one more custom section), and the time from the update to the
//! operator's `PolicyLoaded` event for the new version is measured: the API
//! watch's delivery, decoding, compiling and checking the module, and the
//! swap after which every decision uses it.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use super::Bench;
use crate::error::{Error, Result, io};
use crate::report::Row;

const SCENARIO: &str = "6 policy (5 policies)";

/// Where the bench operator reads policy ConfigMaps: the deploy/ namespace,
/// whose Role lets its ServiceAccount read ConfigMaps.
pub const POLICY_NAMESPACE: &str = "k8s-oci-operator";

/// Module updates timed in the live reload.
const RELOADS_LIVE: u8 = 5;

/// Time for the operator's re-decision of every ReservedIP after a policy
/// load to finish (about 2,000 passes on 2 cores).
const SETTLE: Duration = Duration::from_secs(10);

/// Decisions as policy-bench labels them, with how many policies each runs.
const DECISIONS: [(&str, usize); 3] = [
    ("tag defaults", 2),
    ("pool selection", 1),
    ("eligibility", 2),
];

pub async fn run(b: &mut Bench) {
    if let Some(dir) = b.s.policy_dir.clone() {
        match live_reload(b, &dir).await {
            Ok(times) => {
                let mean = times.iter().sum::<f64>() / times.len() as f64;
                let max = times.iter().copied().fold(0.0, f64::max);
                b.rows.push(
                    Row::new(
                        SCENARIO,
                        "live reload: ConfigMap module update → new version active in the operator",
                        "ms",
                        mean,
                    )
                    .floor(0.0)
                    .note(format!(
                        "mean of {} updates of tag-defaults, each {} s after the previous (max {max:.0} ms): API watch, compile, check, swap; target < 500 ms",
                        times.len(),
                        SETTLE.as_secs()
                    )),
                );
                b.detail("policy_live_reload_ms", json!(times));
            }
            Err(e) => b.rows.push(Row::skipped(
                SCENARIO,
                "live reload",
                &format!("failed: {e}"),
            )),
        }
    }
    let (Some(bin), Some(dir)) = (b.s.policy_bench_bin.clone(), b.s.policy_dir.clone()) else {
        b.rows.push(Row::skipped(
            SCENARIO,
            "added latency per decision",
            "skipped: no --policy-bench-bin / --policy-dir",
        ));
        return;
    };
    match measure(&bin, &dir).await {
        Ok((rows, output)) => {
            let total: f64 = rows.iter().map(|(_, _, _, mean)| mean).sum();
            for ((label, p50, p99, mean), (_, n)) in rows.iter().zip(DECISIONS) {
                b.rows.push(
                    Row::new(
                        SCENARIO,
                        &format!("{label} ({n} policies): per decision"),
                        "µs",
                        *mean,
                    )
                    .floor(0.0)
                    .note(format!("p50 {p50:.0} µs, p99 {p99:.0} µs")),
                );
            }
            b.rows.push(
                Row::new(
                    SCENARIO,
                    "added to an allocating pass (3 decisions, 5 evaluations)",
                    "ms",
                    total / 1000.0,
                )
                .floor(0.0)
                .note("sum of the means; in-process engine figure from policy-bench"),
            );
            for (prefix, what) in RELOADS {
                match ms_after(&output, prefix) {
                    Some(ms) => b.rows.push(
                        Row::new(SCENARIO, what, "ms", ms)
                            .floor(0.0)
                            .note("in-process, from the engine's sync to the first decision; add the ConfigMap watch's delivery"),
                    ),
                    None => b.rows.push(Row::skipped(
                        SCENARIO,
                        what,
                        &format!("policy-bench printed no {prefix:?} line"),
                    )),
                }
            }
            b.detail("policy", json!({"output": output}));
        }
        Err(e) => b.rows.push(Row::skipped(
            SCENARIO,
            "added latency per decision",
            &format!("policy-bench failed: {e}"),
        )),
    }
}

/// Reload and start figures policy-bench prints, by line prefix.
const RELOADS: [(&str, &str); 4] = [
    (
        "reload, settings changed",
        "reload: settings changed → new version deciding",
    ),
    (
        "reload, module of team-pool changed",
        "reload: team-pool module changed → new version deciding",
    ),
    (
        "reload, module of tags-managed-by changed",
        "reload: tag-defaults module changed → new version deciding",
    ),
    (
        "start, 5 policies",
        "start after a restart, artifact cache kept (5 policies)",
    ),
];

/// The last figure before " ms" on the line starting with `prefix` (for
/// the start line: the second, after a restart).
fn ms_after(output: &str, prefix: &str) -> Option<f64> {
    let line = output.lines().find(|l| l.starts_with(prefix))?;
    let figures: Vec<f64> = line
        .split(" ms")
        .filter_map(|part| part.rsplit(' ').next()?.parse().ok())
        .collect();
    figures.last().copied()
}

/// Updates a policy ConfigMap's module `RELOADS_LIVE` times and returns, for
/// each, the milliseconds until the operator's event says the new version is
/// active.
async fn live_reload(b: &Bench, dir: &Path) -> Result<Vec<f64>> {
    use std::io::Read;

    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::api::events::v1::Event;
    use kube::Api;
    use kube::api::{DeleteParams, Patch, PatchParams};
    use sha2::{Digest, Sha256};

    let path = dir.join("tag-defaults.wasm.gz");
    let gz = std::fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
    let mut wasm = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut wasm)
        .map_err(io("decompressing tag-defaults.wasm.gz"))?;
    // A new build: the same code with one more custom section (id 0, size,
    // name length, name, payload), hence a new digest the engine compiles.
    let build = |generation: u8| {
        let mut module = wasm.clone();
        module.extend_from_slice(&[0, 3, 1, b'g', generation]);
        module
    };
    let version = |module: &[u8]| {
        Sha256::digest(module)
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let cms: Api<ConfigMap> = Api::namespaced(b.client.clone(), POLICY_NAMESPACE);
    let events: Api<Event> = Api::namespaced(b.client.clone(), POLICY_NAMESPACE);
    let name = "bench-reload";
    let configmap = |module: &[u8]| -> Result<ConfigMap> {
        use base64::Engine as _;
        let cm: ConfigMap = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"oci.k8s.logmein.com/policy": "true"}},
            // Applies to no namespace: only the load is measured, and the
            // benchmark's ReservedIPs stay untouched.
            "data": {
                "namespaceSelector": "matchLabels: {bench-policy-reload: none}",
                "settings": "{\"defaults\": {\"reloaded\": \"yes\"}}"
            },
            "binaryData": {"policy.wasm": base64::engine::general_purpose::STANDARD.encode(module)}
        }))?;
        Ok(cm)
    };
    let active = |want: String| {
        let events = events.clone();
        async move {
            let list = events.list(&Default::default()).await?;
            Ok::<bool, Error>(list.items.iter().any(|e| {
                e.reason.as_deref() == Some("PolicyLoaded")
                    && e.note
                        .as_deref()
                        .is_some_and(|n| n.contains(name) && n.contains(&want))
            }))
        }
    };
    let apply = PatchParams::apply("k8s-oci-operator-bench").force();
    let first = build(0);
    cms.patch(name, &apply, &Patch::Apply(configmap(&first)?))
        .await?;
    wait_for(
        || active(version(&first)),
        Duration::from_secs(60),
        "the first version",
    )
    .await?;

    let mut times = Vec::new();
    for generation in 1..=RELOADS_LIVE {
        // Each load makes the operator decide every ReservedIP again (2,000
        // here, none of them selected): the next update is timed once that
        // wave is over, as a single change in a settled cluster would be.
        tokio::time::sleep(SETTLE).await;
        let module = build(generation);
        let want = version(&module);
        let cm = configmap(&module)?;
        let started = Instant::now();
        cms.patch(name, &apply, &Patch::Apply(cm)).await?;
        wait_for(
            || active(want.clone()),
            Duration::from_secs(30),
            "the new version",
        )
        .await?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    cms.delete(name, &DeleteParams::default()).await?;
    // The in-process benchmark that follows shares the machine.
    tokio::time::sleep(SETTLE).await;
    Ok(times)
}

/// Polls `check` every 10 ms until it holds.
async fn wait_for<F, Fut>(mut check: F, max: Duration, what: &str) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let started = Instant::now();
    while !check().await? {
        if started.elapsed() > max {
            return Err(Error::Timeout(max, what.into()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

type Figures = Vec<(String, f64, f64, f64)>;

async fn measure(bin: &Path, dir: &Path) -> Result<(Figures, String)> {
    let out = tokio::process::Command::new(bin)
        .arg(dir)
        .arg("2000")
        .output()
        .await
        .map_err(io(format!("running {}", bin.display())))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(Error::Process(format!(
            "{} exited with {}: {}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let figures = DECISIONS
        .iter()
        .map(|(label, _)| {
            let line = text
                .lines()
                .find(|l| l.starts_with(label))
                .ok_or_else(|| Error::Process(format!("policy-bench printed no {label:?} line")))?;
            Ok((
                label.to_string(),
                after(line, "p50")?,
                after(line, "p99")?,
                after(line, "mean")?,
            ))
        })
        .collect::<Result<Figures>>()?;
    Ok((figures, text))
}

/// The number after `key` in `... p50    12.3 µs ...`.
fn after(line: &str, key: &str) -> Result<f64> {
    let mut words = line.split_whitespace();
    words
        .find(|w| *w == key)
        .and_then(|_| words.next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error::Process(format!("cannot read {key} from {line:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_policy_bench_lines() {
        let line = "tag defaults                 p50    85.2 µs  p99   140.0 µs  mean    90.1 µs  (2 policies;   45.0 µs per policy evaluation)";
        assert_eq!(after(line, "p50").ok(), Some(85.2));
        assert_eq!(after(line, "mean").ok(), Some(90.1));
        assert!(after(line, "p75").is_err());
    }

    #[test]
    fn reads_reload_lines() {
        let out = "reload, settings changed: 1.6 ms to the new version deciding (module already compiled)\nstart, 5 policies (3 modules): 1522 ms compiling, 23 ms after a restart with the artifact cache (0 compiled, 3 from artifacts)\n";
        assert_eq!(ms_after(out, "reload, settings changed"), Some(1.6));
        assert_eq!(ms_after(out, "start, 5 policies"), Some(23.0));
        assert_eq!(ms_after(out, "reload, module"), None);
    }
}
