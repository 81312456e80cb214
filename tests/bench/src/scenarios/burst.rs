//! Scenario 2: N ReservedIPs, each naming a running pod, created at once (a
//! StatefulSet-sized wave): time until all are `assigned` against N divided
//! by the rate limit, and the share of calls answered 429. Then the fill: more
//! of the same until the idle scenarios' size is in place (reported, no target).

use std::time::Duration;

use serde_json::json;

use super::Bench;
use crate::error::Result;
use crate::floor::Floor;
use crate::report::Row;

pub async fn run(b: &mut Bench) -> Result<()> {
    let n = b.s.burst;
    let pods_took = b.create_target_pods("burst", 0, n).await?;
    let (before, _) = b
        .emulator
        .settle(Duration::from_secs(1), Duration::from_secs(60))
        .await?;
    let cpu_before = b.sample()?;
    let floor = Floor::new(&b.s).burst_seconds(n);
    let max = Duration::from_secs_f64(floor * 5.0 + 300.0);
    let took = b.assign_wave(0, n, max).await?.as_secs_f64();
    let (after, _) = b
        .emulator
        .settle(Duration::from_secs(3), Duration::from_secs(120))
        .await?;
    let cpu_after = b.sample()?;
    let calls = after.since(&before);
    let share = calls.throttled() as f64 / calls.total().max(1) as f64 * 100.0;
    let scenario = format!("2 burst (N={n})");
    b.rows.push(
        Row::new(&scenario, "all assigned", "s", took)
            .floor(floor)
            .target("≤ 1.1x floor", took <= 1.1 * floor)
            .note(format!("floor = N / {} writes/s", b.s.write_rate)),
    );
    b.rows.push(
        Row::new(&scenario, "calls answered 429", "%", share)
            .target("< 2%", share < 2.0)
            .note(format!("{} of {}", calls.throttled(), calls.total())),
    );
    b.rows.push(
        Row::new(
            &scenario,
            "OCI calls per ReservedIP",
            "",
            calls.total() as f64 / n as f64,
        )
        .floor(Floor::new(&b.s).apply_calls() as f64)
        .note(calls.summary()),
    );
    b.rows.push(Row::new(
        &scenario,
        "operator CPU during the wave",
        "s",
        cpu_after.cpu_seconds - cpu_before.cpu_seconds,
    ));
    b.detail(
        "burst",
        json!({
            "n": n, "seconds": took, "floor_seconds": floor, "pods_running_after_seconds": pods_took.as_secs_f64(),
            "calls": calls, "throttled_percent": share,
            "cpu_seconds": cpu_after.cpu_seconds - cpu_before.cpu_seconds,
            "rss_kib_after": cpu_after.rss_kib,
        }),
    );

    b.mark("2 burst");
    // Fill up to the idle size: the same wave again, smaller or larger.
    let m = b.s.idle_ips;
    if m > n {
        b.create_target_pods("fill", n, m).await?;
        let floor = Floor::new(&b.s).burst_seconds(m - n);
        let max = Duration::from_secs_f64(floor * 5.0 + 300.0);
        let took = b.assign_wave(n, m, max).await?.as_secs_f64();
        b.rows.push(
            Row::new(&format!("2 fill (+{})", m - n), "all assigned", "s", took)
                .floor(floor)
                .note(format!("{n} ReservedIPs already in place")),
        );
        b.detail(
            "fill",
            json!({"n": m - n, "seconds": took, "floor_seconds": floor}),
        );
    }
    Ok(())
}
