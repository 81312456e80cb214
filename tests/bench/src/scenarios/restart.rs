//! Scenario 4: the operator restarted with every ReservedIP in place: time
//! until it is ready and until its start-up work is done (no OCI call for
//! 10 s), and the OCI calls that took (a listing would do; not one GET each).

use std::time::{Duration, Instant};

use serde_json::json;

use super::{Bench, mib};
use crate::error::Result;
use crate::floor::Floor;
use crate::operator::Operator;
use crate::report::Row;

/// Quiet time that marks the end of the start-up work.
const QUIET: Duration = Duration::from_secs(10);
/// Target of issue 7.
const MAX_CALLS: u64 = 50;

pub async fn run(b: &mut Bench) -> Result<()> {
    let ips = b.s.idle_ips;
    if let Some(op) = b.operator.take() {
        op.stop(&b.s).await?;
    }
    let (before, _) = b
        .emulator
        .settle(Duration::from_secs(1), Duration::from_secs(60))
        .await?;
    let start = Instant::now();
    let op = Operator::start(&b.s, &b.emulator.url, false).await?;
    let ready = op.ready_after.as_secs_f64();
    b.operator = Some(op);
    let max = Duration::from_secs(300 + ips as u64);
    let (after, last_change) = b.emulator.settle(QUIET, max).await?;
    let calls = after.since(&before);
    let done = if calls.total() == 0 {
        ready
    } else {
        last_change.saturating_duration_since(start).as_secs_f64()
    };
    let sample = b.sample()?;
    let still = b.tracker.read(|st| st.in_state("assigned"));
    let f = Floor::new(&b.s);
    let scenario = format!("4 restart ({ips} in place)");
    b.rows.push(
        Row::new(
            &scenario,
            "OCI calls until settled",
            "",
            calls.total() as f64,
        )
        .floor(f.restart_calls(ips) as f64)
        .target("< 50", calls.total() < MAX_CALLS)
        .note(calls.summary()),
    );
    b.rows.push(
        Row::new(&scenario, "start → work done", "s", done)
            .floor(f.restart_seconds(ips))
            .note(format!(
                "last OCI call of the start-up wave; /readyz answered after {ready:.2} s"
            )),
    );
    b.rows.push(
        Row::new(&scenario, "mutating OCI calls", "", calls.mutating() as f64)
            .floor(0.0)
            .target("0", calls.mutating() == 0)
            .note(format!("{still} ReservedIPs assigned afterwards")),
    );
    b.rows.push(
        Row::new(
            &scenario,
            "operator RSS after start-up",
            "MiB",
            mib(sample.rss_kib),
        )
        .note(format!(
            "peak {:.1} MiB; CPU {:.1} s",
            mib(sample.hwm_kib),
            sample.cpu_seconds
        )),
    );
    b.detail(
        "restart",
        json!({
            "reservedips": ips, "ready_seconds": ready, "settled_seconds": done,
            "calls": calls, "assigned_afterwards": still,
            "rss_kib": sample.rss_kib, "hwm_kib": sample.hwm_kib, "cpu_seconds": sample.cpu_seconds,
        }),
    );
    Ok(())
}
