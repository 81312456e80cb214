//! Nothing leaked, nothing lost: orphans are collected (and only ours), a
//! create whose answer was lost is recovered rather than repeated, the
//! operator stopped at random points converges after a restart, and OCI
//! faults (5xx, 429, latency) are ridden out. Each test prints its figures.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use integration_tests::{COMPARTMENT, OperatorSandbox, is_live, rip_yaml, state};
use k8s_oci_operator::api::crd::{ReservedIP, State};
use k8s_oci_operator::decide::ownership::{TAG_CLUSTER, TAG_NAME, TAG_NAMESPACE, TAG_UID};
use k8s_oci_operator::oci::{CreatePublicIpDetails, OciNetwork};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use oci_emulator::{FaultConfig, FaultRule, RateLimit};
use serde_json::json;
use test_support::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_of_this_cluster_are_released_and_nothing_else_is_touched() -> Result<()> {
    let mut sb = OperatorSandbox::start("orphans").await?;
    sb.create(&rip_yaml("doomed", None)).await?;
    let doomed = sb.wait_state("doomed", State::Allocated, true).await?;
    let doomed_ip = doomed.status.and_then(|s| s.public_ip_id).context("ip")?;

    // IPs the sweep must leave alone: another cluster's, and an untagged one.
    let oci = sb.oci_client()?;
    let tags = |cluster: &str, name: &str| -> BTreeMap<String, String> {
        BTreeMap::from([
            (TAG_CLUSTER.to_string(), cluster.to_string()),
            (TAG_NAMESPACE.to_string(), sb.ns.name().to_string()),
            (TAG_NAME.to_string(), name.to_string()),
            (TAG_UID.to_string(), format!("uid-of-{name}")),
        ])
    };
    let create = |t: Option<BTreeMap<String, String>>, token: &'static str| {
        let details = CreatePublicIpDetails {
            freeform_tags: t,
            ..CreatePublicIpDetails::reserved(COMPARTMENT)
        };
        let oci = &oci;
        async move { oci.create_public_ip(&details, token).await }
    };
    let foreign = create(Some(tags("another-cluster", "ghost")), "foreign")
        .await?
        .id;
    let untagged = create(None, "untagged").await?.id;
    // Tagged as ours, for a ReservedIP that does not exist: an orphan too.
    let ghost = create(Some(tags(&sb.cluster_id, "ghost")), "ghost")
        .await?
        .id;

    // "doomed" is deleted while the operator is down, its finalizer stripped by hand.
    sb.stop_operator();
    let patch = json!({ "metadata": { "finalizers": null } });
    sb.rips()
        .patch("doomed", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    sb.rips().delete("doomed", &DeleteParams::default()).await?;

    sb.orphan_sweep = (Duration::from_millis(300), Duration::from_secs(1));
    sb.start_operator()?;
    wait_until(Duration::from_secs(30), || async {
        Ok([&doomed_ip, &ghost]
            .iter()
            .all(|id| sb.public_ip(id).is_none_or(|ip| !is_live(&ip))))
    })
    .await
    .context("orphans were not released")?;
    for id in [&foreign, &untagged] {
        let ip = sb.public_ip(id).context("foreign IP vanished")?;
        assert_eq!(
            ip["lifecycleState"], "AVAILABLE",
            "the sweep touched {id}: {ip}"
        );
    }
    println!(
        "orphan sweep: released 2 (deleted while down, never existed), kept 2 (other cluster, untagged)"
    );
    sb.report(
        "orphans: deleted while down, never existed",
        1,
        2,
        "2 orphans released; 2 foreign IPs untouched",
    )
    .await?;
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_recovered_not_repeated() -> Result<()> {
    let sb = OperatorSandbox::start("dropped").await?;
    // The create is applied, but the connection drops before the answer.
    let mut faults = FaultConfig::default();
    faults.operations.insert(
        "CreatePublicIp".into(),
        FaultRule {
            drop_after_apply_probability: 1.0,
            ..Default::default()
        },
    );
    sb.emulator.set_faults(faults);
    sb.create(&rip_yaml("lost-answer", None)).await?;
    wait_until(Duration::from_secs(30), || async {
        Ok(sb.emulator.calls().count("CreatePublicIp", "dropped") >= 1)
    })
    .await?;
    sb.emulator.set_faults(FaultConfig::default());

    let rip = sb.wait_state("lost-answer", State::Allocated, true).await?;
    let ours = sb.ours();
    assert_eq!(
        ours.len(),
        1,
        "exactly one public IP for the ReservedIP: {ours:?}"
    );
    assert_eq!(
        Some(ours[0]["id"].as_str().unwrap_or_default().to_string()),
        rip.status.and_then(|s| s.public_ip_id)
    );
    let dropped = sb.emulator.calls().count("CreatePublicIp", "dropped");
    println!(
        "lost answer: CreatePublicIp calls {}, dropped {dropped}, public IPs created 1",
        sb.calls("CreatePublicIp"),
    );
    sb.report(
        "create applied, answer lost",
        1,
        dropped,
        "CreatePublicIp answers dropped after apply",
    )
    .await?;
    sb.finish().await
}

/// Stops the in-process operator at pseudo-random moments of many lifecycles
/// (create, assign, move, unassign, delete) and restarts it each time: every
/// ReservedIP converges and owns exactly one public IP, and none is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_stopped_anywhere_converges_without_leaks() -> Result<()> {
    let mut sb = OperatorSandbox::start("crashes").await?;
    for p in ["pod-a", "pod-b"] {
        sb.running_pod(p, None).await?;
    }
    let rounds = 40u64;
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut next = move |n: u64| {
        // xorshift: reproducible pseudo-random stop points.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for round in 0..rounds {
        let name = format!("rip-{}", round % 4);
        let exists = sb.rips().get_opt(&name).await?.is_some();
        match (exists, next(4)) {
            (false, _) => sb
                .apply(&rip_yaml(
                    &name,
                    [None, Some("pod-a"), Some("pod-b")][next(3) as usize],
                ))
                .await
                .map(|_| ())?,
            (true, 0) => sb
                .rips()
                .delete(&name, &DeleteParams::default())
                .await
                .map(|_| ())?,
            (true, 1) => sb.apply(&rip_yaml(&name, None)).await.map(|_| ())?,
            (true, 2) => sb
                .apply(&rip_yaml(&name, Some("pod-a")))
                .await
                .map(|_| ())?,
            (true, _) => sb
                .apply(&rip_yaml(&name, Some("pod-b")))
                .await
                .map(|_| ())?,
        }
        tokio::time::sleep(Duration::from_millis(next(400))).await;
        sb.stop_operator();
        sb.start_operator()?;
    }
    // Converged: every ReservedIP is in a resting state and nothing is owned twice.
    wait_until(Duration::from_secs(60), || async {
        let list = sb.rips().list(&ListParams::default()).await?.items;
        Ok(list.iter().all(|r: &ReservedIP| {
            r.metadata.deletion_timestamp.is_none()
                && matches!(state(r), Some(State::Allocated | State::Assigned))
        }))
    })
    .await
    .context("ReservedIPs did not converge")?;
    sb.assert_no_leak().await?;
    let live = sb.rips().list(&ListParams::default()).await?.items.len();
    assert_eq!(sb.ours().len(), live, "one public IP per ReservedIP");
    println!(
        "{rounds} stop/restart rounds: {live} ReservedIPs live, {} public IPs held; OCI calls by operation and outcome {}",
        sb.ours().len(),
        serde_json::to_value(sb.emulator.calls())?
    );
    sb.report(
        "in-process operator stopped at random moments",
        rounds,
        rounds,
        "stop + restart per round (create/assign/move/unassign/delete)",
    )
    .await?;
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_through_5xx_throttling_and_latency() -> Result<()> {
    let sb = OperatorSandbox::start("faults").await?;
    let n = 8;
    for i in 0..n {
        sb.running_pod(&format!("pod-{i}"), None).await?;
    }
    let faults = FaultConfig {
        default: FaultRule {
            latency_ms: 20,
            error500_probability: 0.05,
            error503_probability: 0.05,
            rate_limit: Some(RateLimit {
                per_second: 10.0,
                burst: 3.0,
            }),
            ..Default::default()
        },
        operations: Default::default(),
    };
    sb.emulator.set_faults(faults);
    for i in 0..n {
        sb.create(&rip_yaml(&format!("rip-{i}"), Some(&format!("pod-{i}"))))
            .await?;
    }
    wait_until(Duration::from_secs(90), || async {
        let list = sb.rips().list(&ListParams::default()).await?.items;
        Ok(list.len() == n && list.iter().all(|r| state(r) == Some(State::Assigned)))
    })
    .await
    .context("not all ReservedIPs were assigned under faults")?;
    sb.assert_no_leak().await?;
    assert_eq!(sb.ours().len(), n, "one public IP each");
    let calls = sb.emulator.calls();
    let json = serde_json::to_value(&calls)?;
    println!(
        "{n} ReservedIPs under 10% 5xx, 10 rps limit, 20 ms latency: calls by operation and outcome {json}"
    );
    let failed: u64 = [
        "CreatePublicIp",
        "GetPublicIp",
        "UpdatePublicIp",
        "ListPrivateIps",
        "ListPublicIps",
        "GetSubnet",
        "ListVnicAttachments",
    ]
    .iter()
    .map(|op| calls.count(op, "500") + calls.count(op, "503") + calls.count(op, "429"))
    .sum();
    sb.report(
        "OCI 10% 5xx, 429 (10 rps), 20 ms latency",
        n as u64,
        failed,
        "calls answered 500, 503 or 429",
    )
    .await?;
    sb.emulator.set_faults(FaultConfig::default());
    sb.finish().await
}
