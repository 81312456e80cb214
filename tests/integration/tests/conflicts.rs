//! Scarcity is reported, not fought over: the compartment's reserved-IP limit
//! and an exhausted BYOIP pool end in a clear condition carrying OCI's code,
//! without flapping, and nothing already held is lost.

use std::time::Duration;

use anyhow::{Context, Result};
use integration_tests::{OperatorSandbox, POOL, condition};
use k8s_oci_operator::api::crd::State;
use k8s_oci_operator::decide::tenancy::PUBLIC_IP_POOLS;
use kube::api::ListParams;
use test_support::wait_until;

fn rip(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: {name}\nspec:\n{extra}"
    )
}

async fn ready_reason(sb: &OperatorSandbox, name: &str) -> Result<Option<String>> {
    let r = sb.rips().get(name).await?;
    Ok(r.status.and_then(|s| {
        k8s_oci_operator::api::conditions::get(&s.conditions, "Ready").map(|c| c.reason.clone())
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compartment_limit_is_reported_without_flapping() -> Result<()> {
    let sb = OperatorSandbox::start("limit").await?;
    // The seed holds two reserved IPs already; allow one more.
    sb.emulator.with_world(|w| w.reserved_limit = 3);
    sb.create(&rip("first", "  tags: {}\n")).await?;
    sb.wait_state("first", State::Allocated, true).await?;
    sb.create(&rip("second", "  tags: {}\n")).await?;
    wait_until(Duration::from_secs(30), || async {
        Ok(ready_reason(&sb, "second").await?.as_deref() == Some("OCILimitExceeded"))
    })
    .await
    .context("the limit was not reported with OCI's code")?;
    // Stays reported (no flapping), with backoff (few calls), nothing lost.
    let calls_then = sb.calls("CreatePublicIp");
    let then = condition(&sb.rips().get("second").await?, "Ready")?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let now = condition(&sb.rips().get("second").await?, "Ready")?;
    // The message carries the latest opc-request-id; status, reason and
    // transition time stay: no flapping.
    assert_eq!(
        (now.status.as_str(), now.reason.as_str()),
        ("False", "OCILimitExceeded")
    );
    assert_eq!(
        now.last_transition_time, then.last_transition_time,
        "no flapping while blocked"
    );
    assert!(now.message.contains("opc-request-id"), "{}", now.message);
    let retries = sb.calls("CreatePublicIp") - calls_then;
    assert!(retries <= 4, "backed off: {retries} creates in 4 s");
    assert_eq!(sb.ours().len(), 1, "the first keeps its IP");
    println!(
        "limit reached: {retries} create retries in 4 s, Ready stays False/OCILimitExceeded, first IP kept"
    );
    // Room again: the second gets its IP.
    sb.emulator.with_world(|w| w.reserved_limit = 10);
    sb.wait_state("second", State::Allocated, true).await?;
    let refused = sb.emulator.calls().count("CreatePublicIp", "400");
    sb.report(
        "compartment limit reached, then raised",
        2,
        refused,
        "creates refused with LimitExceeded",
    )
    .await?;
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_is_reported() -> Result<()> {
    let sb = OperatorSandbox::start("poolfull").await?;
    sb.emulator.with_world(|w| w.reserved_limit = 100);
    sb.grant(PUBLIC_IP_POOLS, Some(POOL)).await?;
    // The seed's pool is a /28: 16 addresses.
    for i in 0..17 {
        sb.create(&rip(
            &format!("p{i}"),
            &format!("  publicIPv4Pool: {POOL}\n"),
        ))
        .await?;
    }
    wait_until(Duration::from_secs(60), || async {
        let list = sb.rips().list(&ListParams::default()).await?.items;
        let allocated = list
            .iter()
            .filter(|r| r.status.as_ref().and_then(|s| s.state) == Some(State::Allocated))
            .count();
        Ok(allocated == 16)
    })
    .await?;
    let mut blocked = Vec::new();
    for i in 0..17 {
        let name = format!("p{i}");
        if let Some(reason) = ready_reason(&sb, &name).await?
            && reason != "Allocated"
        {
            blocked.push((name, reason));
        }
    }
    assert_eq!(
        blocked.len(),
        1,
        "exactly one waits for an address: {blocked:?}"
    );
    assert!(
        blocked[0].1.starts_with("OCI"),
        "reason carries OCI's code: {blocked:?}"
    );
    sb.assert_no_leak().await?;
    println!(
        "pool of 16 with 17 ReservedIPs: 16 allocated, {} reports {}",
        blocked[0].0, blocked[0].1
    );
    let refused: u64 = ["400", "409", "500"]
        .iter()
        .map(|code| sb.emulator.calls().count("CreatePublicIp", code))
        .sum();
    sb.report(
        "BYOIP pool exhausted (17 for 16 addresses)",
        17,
        refused,
        "creates refused for want of an address",
    )
    .await?;
    sb.finish().await
}
