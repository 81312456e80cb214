//! Prints the reliability suite's table from the JSON lines the scenario
//! tests appended to a report file (see `integration_tests::report`).
//! Usage: `reliability-table <report.jsonl>`. Exits non-zero if any row did
//! not converge or counted a leaked, double-allocated or lost IP.

use anyhow::{Context, Result, bail};
use integration_tests::report::{Row, table};

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: reliability-table <report.jsonl>")?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let rows: Vec<Row> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {path}"))?;
    if rows.is_empty() {
        bail!("{path} has no rows: did the reliability tests run?");
    }
    print!("{}", table(&rows));
    if rows.iter().any(|r| !r.converged || !r.audit.is_clean()) {
        bail!("a scenario did not converge or lost, leaked or double-allocated an IP");
    }
    Ok(())
}
