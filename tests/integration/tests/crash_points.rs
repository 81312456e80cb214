//! Crash anywhere (issue 6, item 1), at chosen points: the operator runs as
//! a process armed to abort (as a SIGKILL would stop it) at the n-th hit of
//! one point: before and after each OCI call it makes, before and after a
//! status write, and in the finalizer after the release. Each (point, n) runs
//! one full lifecycle: create and assign to a pod, move (the pod comes back
//! with a new IP), unassign, delete. After a crash the operator is restarted
//! unarmed and must finish the lifecycle. 20% of creates and updates also
//! lose their answer after OCI applied them. Every lifecycle ends audited:
//! no leaked, double-allocated or lost IP.
//!
//! `CRASH_HITS` (default 1: every point once) sets how many n per point; `make reliability`
//! runs more.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use integration_tests::report::{self, Row};
use integration_tests::{OperatorProcess, OperatorSandbox, rip_yaml, state};
use k8s_oci_operator::api::crd::State;
use k8s_oci_operator::crash_point;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;
use oci_emulator::calls::DROPPED;
use oci_emulator::{FaultConfig, FaultRule};

const POINTS: &[&str] = &[
    "before:CreatePublicIp",
    "after:CreatePublicIp",
    "before:UpdatePublicIp",
    "after:UpdatePublicIp",
    "before:DeletePublicIp",
    "after:DeletePublicIp",
    "before:GetPublicIp",
    "after:GetPublicIp",
    "before:ListPublicIps",
    "after:ListPublicIps",
    "before:ListPrivateIps",
    "after:ListPrivateIps",
    "before:status-write",
    "after:status-write",
    "before:finalizer-removal",
];

struct Harness {
    sb: OperatorSandbox,
    op: Option<OperatorProcess>,
    kills: u64,
}

impl Harness {
    /// Waits until `done`, restarting the operator (unarmed) whenever it died.
    async fn until<F, Fut>(&mut self, what: &str, mut done: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool>>,
    {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if done().await? {
                return Ok(());
            }
            if let Some(op) = self.op.as_mut()
                && !op.alive()
            {
                self.kills += 1;
                self.op = Some(OperatorProcess::start(&self.sb, "op", false).await?);
            }
            if Instant::now() > deadline {
                bail!("{what}: not reached within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn lifecycle(&mut self, point: &str, nth: u32) -> Result<()> {
        let arm = format!("{point}@{nth}");
        if let Some(op) = self.op.take() {
            op.kill().await?;
        }
        self.op = Some(
            OperatorProcess::start_with_env(&self.sb, "op", false, &[(crash_point::ENV, &arm)])
                .await?,
        );
        let pods: Api<Pod> = self.sb.ns.api();
        let rips = self.sb.rips();
        let rip_state = || async {
            Ok::<_, anyhow::Error>(rips.get_opt("rip").await?.and_then(|r| {
                let address = r.status.as_ref().and_then(|s| s.private_ip_address.clone());
                state(&r).map(|s| (s, address))
            }))
        };
        let first = self.sb.running_pod("app", None).await?;
        let first_ip = first.status.and_then(|s| s.pod_ip);

        // Create and assign.
        self.sb.apply(&rip_yaml("rip", Some("app"))).await?;
        self.until("assigned", || async {
            Ok(rip_state().await? == Some((State::Assigned, first_ip.clone())))
        })
        .await?;
        // Move: the pod comes back with a new IP.
        pods.delete("app", &DeleteParams::default()).await?;
        self.until("pod gone", || async {
            Ok(pods.get_opt("app").await?.is_none())
        })
        .await?;
        let second = self.sb.running_pod("app", None).await?;
        let second_ip = second.status.and_then(|s| s.pod_ip);
        self.until("moved", || async {
            Ok(rip_state().await? == Some((State::Assigned, second_ip.clone())))
        })
        .await?;
        // Unassign.
        self.sb.apply(&rip_yaml("rip", None)).await?;
        self.until("unassigned", || async {
            Ok(rip_state().await?.map(|s| s.0) == Some(State::Allocated))
        })
        .await?;
        // Delete (released by the finalizer).
        self.sb
            .rips()
            .delete("rip", &DeleteParams::default())
            .await?;
        self.until("released", || async { Ok(rip_state().await?.is_none()) })
            .await?;
        pods.delete("app", &DeleteParams::default()).await?;
        self.until("pod gone", || async {
            Ok(pods.get_opt("app").await?.is_none())
        })
        .await?;
        let audit = self.sb.audit().await?;
        ensure!(audit.is_clean(), "after crash point {arm}: {audit:?}");
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_chosen_points_of_full_lifecycles() -> Result<()> {
    let mut sb = OperatorSandbox::start("crashpoints").await?;
    sb.stop_operator();
    let lossy = FaultRule {
        drop_after_apply_probability: 0.2,
        ..Default::default()
    };
    let mut faults = FaultConfig::default();
    faults
        .operations
        .insert("CreatePublicIp".into(), lossy.clone());
    faults.operations.insert("UpdatePublicIp".into(), lossy);
    sb.emulator.set_faults(faults);
    let hits: u32 = std::env::var("CRASH_HITS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);

    let mut h = Harness {
        sb,
        op: None,
        kills: 0,
    };
    let started = Instant::now();
    let mut lifecycles = 0u64;
    let mut first_hit_kills = 0;
    for nth in 1..=hits {
        for point in POINTS {
            let before = h.kills;
            h.lifecycle(point, nth)
                .await
                .with_context(|| format!("crash point {point}@{nth}"))?;
            lifecycles += 1;
            if nth == 1 && h.kills > before {
                first_hit_kills += 1;
            }
        }
    }
    if let Some(op) = h.op.take() {
        op.kill().await?;
    }
    let calls = h.sb.emulator.calls();
    let dropped = calls.count("CreatePublicIp", DROPPED) + calls.count("UpdatePublicIp", DROPPED);
    let audit = h.sb.audit().await?;
    report::record(&Row {
        scenario: format!("crash at chosen points ({} points x {hits})", POINTS.len()),
        lifecycles,
        injected: h.kills + dropped,
        converged: true,
        audit,
        note: format!(
            "{} aborts at a point, {dropped} answers dropped after apply; {:.0} s",
            h.kills,
            started.elapsed().as_secs_f64()
        ),
    })?;
    // Every point is on the path of a lifecycle: its first hit must crash.
    ensure!(
        first_hit_kills == POINTS.len(),
        "only {first_hit_kills} of {} points were reached",
        POINTS.len()
    );
    ensure!(audit.is_clean(), "{audit:?}");
    let mut sb = h.sb;
    sb.emulator.set_faults(FaultConfig::default());
    sb.start_operator()?;
    sb.finish().await
}
