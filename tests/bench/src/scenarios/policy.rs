//! Scenario 6: added latency per decision with 5 policies loaded. The engine
//! is timed in-process by the policy engine's own micro-benchmark
//! (`policy-bench`, policies/bench: five SDK-built policies, a fresh
//! instance per policy per decision), run here as a separate process on the
//! same machine; its per-decision figures are parsed into the table. A pass
//! that allocates asks all three decisions (tag defaults, pool, eligibility),
//! so their sum is what policies add to such a pass.

use std::path::Path;

use serde_json::json;

use super::Bench;
use crate::error::{Error, Result, io};
use crate::report::Row;

const SCENARIO: &str = "6 policy (5 policies)";

/// Decisions as policy-bench labels them, with how many policies each runs.
const DECISIONS: [(&str, usize); 3] = [
    ("tag defaults", 2),
    ("pool selection", 1),
    ("eligibility", 2),
];

pub async fn run(b: &mut Bench) {
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
