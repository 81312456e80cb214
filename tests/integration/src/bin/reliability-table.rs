//! Prints the reliability suite's table from the JSON lines the scenario
//! tests appended to a report file (see `integration_tests::report`).
//! Usage: `reliability-table <report.jsonl>`. Exits non-zero if any row did
//! not converge or counted a leaked, double-allocated or lost IP.

use anyhow::{Context, Result, bail};
use integration_tests::report::read_rows;
use integration_tests::report::{Row, table};

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: reliability-table <report.jsonl>")?;
    let rows: Vec<Row> = read_rows(&path)?;
    print!("{}", table(&rows));
    if rows.iter().any(|r| !r.converged || !r.audit.is_clean()) {
        bail!("a scenario did not converge or lost, leaked or double-allocated an IP");
    }
    Ok(())
}
