//! The operator as a real process: SIGKILLed at random points of many
//! lifecycles, and two replicas with leader election where the leader is
//! killed mid-work. Nothing is created twice, nothing leaks.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use integration_tests::{OperatorProcess, OperatorSandbox, lease_holder, rip_yaml, state};
use k8s_oci_operator::api::crd::{ReservedIP, State};
use kube::api::{DeleteParams, ListParams};
use oci_emulator::{FaultConfig, FaultRule};
use test_support::wait_until;

async fn converged(sb: &OperatorSandbox, expect: Option<usize>) -> Result<()> {
    wait_until(Duration::from_secs(90), || async {
        let list = sb.rips().list(&ListParams::default()).await?.items;
        Ok(expect.is_none_or(|n| n == list.len())
            && list.iter().all(|r: &ReservedIP| {
                r.metadata.deletion_timestamp.is_none()
                    && matches!(state(r), Some(State::Allocated | State::Assigned))
            }))
    })
    .await
    .context("ReservedIPs did not converge")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_of_many_lifecycles() -> Result<()> {
    let mut sb = OperatorSandbox::start("sigkill").await?;
    sb.stop_operator();
    for p in ["pod-a", "pod-b", "pod-c"] {
        sb.running_pod(p, None).await?;
    }
    // Half the creates lose their answer: the nasty case for idempotency.
    let mut faults = FaultConfig::default();
    faults.operations.insert(
        "CreatePublicIp".into(),
        FaultRule {
            drop_after_apply_probability: 0.3,
            ..Default::default()
        },
    );
    faults.operations.insert(
        "UpdatePublicIp".into(),
        FaultRule {
            drop_after_apply_probability: 0.3,
            ..Default::default()
        },
    );
    sb.emulator.set_faults(faults);

    // `make reliability` runs more (SIGKILL_ROUNDS).
    let rounds: u64 = std::env::var("SIGKILL_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let mut next = integration_tests::xorshift(0x2545f4914f6cdd1d);
    let mut op = OperatorProcess::start(&sb, "op", false).await?;
    let pods = [None, Some("pod-a"), Some("pod-b"), Some("pod-c")];
    for round in 0..rounds {
        let name = format!("rip-{}", round % 5);
        let exists = sb.rips().get_opt(&name).await?.is_some();
        match (exists, next(5)) {
            (true, 0) => {
                sb.rips().delete(&name, &DeleteParams::default()).await?;
            }
            (_, _) => {
                sb.apply(&rip_yaml(&name, pods[next(4) as usize])).await?;
            }
        }
        tokio::time::sleep(Duration::from_millis(next(600))).await;
        op.kill().await?;
        op = OperatorProcess::start(&sb, "op", false).await?;
    }
    sb.emulator.set_faults(FaultConfig::default());
    converged(&sb, None).await?;
    sb.assert_no_leak().await?;
    let live = sb.rips().list(&ListParams::default()).await?.items.len();
    assert_eq!(
        sb.ours().len(),
        live,
        "exactly one public IP per ReservedIP"
    );
    println!(
        "{rounds} SIGKILLs: {live} ReservedIPs live, {} public IPs held; OCI calls by operation and outcome {}",
        sb.ours().len(),
        serde_json::to_value(sb.emulator.calls())?
    );
    let dropped = ["CreatePublicIp", "UpdatePublicIp"]
        .iter()
        .map(|op| sb.emulator.calls().count(op, oci_emulator::calls::DROPPED))
        .sum::<u64>();
    sb.report(
        "operator process SIGKILLed at random moments",
        rounds,
        rounds + dropped,
        format!("{rounds} SIGKILLs, {dropped} answers dropped after apply"),
    )
    .await?;
    // Release everything with a live operator, then check nothing is left.
    let mut sb = sb;
    sb.start_operator()?;
    op.kill().await?;
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_hands_over_without_double_creates() -> Result<()> {
    let mut sb = OperatorSandbox::start("failover").await?;
    sb.stop_operator();
    let n = 6;
    for i in 0..n {
        sb.running_pod(&format!("pod-{i}"), None).await?;
    }
    // Slow OCI so the leader dies with work in flight.
    let faults = FaultConfig {
        default: FaultRule {
            latency_ms: 150,
            ..Default::default()
        },
        operations: Default::default(),
    };
    sb.emulator.set_faults(faults);
    let a = OperatorProcess::start(&sb, "op-a", true).await?;
    let b = OperatorProcess::start(&sb, "op-b", true).await?;
    let holder = || lease_holder(&sb);
    wait_until(Duration::from_secs(30), || async {
        Ok(holder().await?.is_some())
    })
    .await?;
    let leader = holder().await?.context("leader")?;

    for i in 0..n {
        sb.create(&rip_yaml(&format!("rip-{i}"), Some(&format!("pod-{i}"))))
            .await?;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (dead, survivor) = if leader == "op-a" { (a, b) } else { (b, a) };
    let killed_at = Instant::now();
    dead.kill().await?;
    wait_until(Duration::from_secs(30), || async {
        Ok(holder().await?.as_deref() == Some(survivor.name.as_str()))
    })
    .await
    .context("the standby never took over")?;
    let takeover = killed_at.elapsed();

    converged(&sb, Some(n)).await?;
    let all_assigned = sb
        .rips()
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .all(|r| state(r) == Some(State::Assigned));
    assert!(all_assigned, "every ReservedIP is assigned");
    sb.assert_no_leak().await?;
    assert_eq!(sb.ours().len(), n, "no public IP was created twice");
    println!(
        "leader {leader} killed; {} took over after {:.1} s (lease 3 s); {n} ReservedIPs, {} public IPs; CreatePublicIp calls {}",
        survivor.name,
        takeover.as_secs_f64(),
        sb.ours().len(),
        sb.calls("CreatePublicIp")
    );
    sb.report(
        "leader killed mid-work (2 replicas)",
        n as u64,
        1,
        format!("standby took over after {:.1} s", takeover.as_secs_f64()),
    )
    .await?;
    sb.emulator.set_faults(FaultConfig::default());
    sb.start_operator()?;
    survivor.kill().await?;
    sb.finish().await
}
