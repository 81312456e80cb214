//! Prints the tenancy table from the JSON lines the tenancy tests appended
//! to a report file (see `integration_tests::tenancy_report`).
//! Usage: `tenancy-table <report.jsonl>`. Exits non-zero if any attack was
//! not refused or changed OCI state it should not have.

use anyhow::{Context, Result, bail};
use integration_tests::tenancy_report::{TenancyRow, table};

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: tenancy-table <report.jsonl>")?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let rows: Vec<TenancyRow> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {path}"))?;
    if rows.is_empty() {
        bail!("{path} has no rows: did the tenancy tests run?");
    }
    print!("{}", table(&rows));
    if rows.iter().any(|r| !r.held()) {
        bail!("an attack was not refused, or changed OCI state");
    }
    Ok(())
}
