//! Scenario 3: every ReservedIP at rest for a while: OCI calls per ReservedIP
//! and hour (drift checks), mutating calls (should be none) and CPU.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{Bench, mib};
use crate::error::Result;
use crate::floor::Floor;
use crate::report::Row;

pub async fn run(b: &mut Bench) -> Result<()> {
    let ips = b.s.idle_ips;
    let window = Duration::from_secs(b.s.idle_seconds());
    let before = b.sample()?;
    let calls_before = b.emulator.calls().await?;
    let start = Instant::now();
    tokio::time::sleep(window).await;
    let calls = b.emulator.calls().await?.since(&calls_before);
    let after = b.sample()?;
    let secs = start.elapsed().as_secs_f64();
    let per_ip_hour = calls.total() as f64 / ips as f64 * 3600.0 / secs;
    let cpu = after.cpu_seconds - before.cpu_seconds;
    let scenario = format!("3 idle ({ips} at rest, {secs:.0} s)");
    b.rows.push(
        Row::new(
            &scenario,
            "OCI calls per ReservedIP per hour",
            "",
            per_ip_hour,
        )
        .floor(Floor::new(&b.s).idle_calls_per_ip_hour(ips))
        .note(format!(
            "resync every {} s; {}",
            b.s.resync_seconds,
            calls.summary()
        )),
    );
    b.rows.push(
        Row::new(&scenario, "mutating OCI calls", "", calls.mutating() as f64)
            .floor(0.0)
            .target("0", calls.mutating() == 0),
    );
    b.rows.push(
        Row::new(&scenario, "operator CPU", "% of a core", cpu / secs * 100.0)
            .note(format!("{cpu:.2} CPU s; RSS {:.1} MiB", mib(after.rss_kib))),
    );
    b.detail(
        "idle",
        json!({
            "reservedips": ips, "seconds": secs, "calls": calls,
            "calls_per_reservedip_hour": per_ip_hour, "cpu_seconds": cpu,
            "rss_kib": after.rss_kib,
        }),
    );
    Ok(())
}
