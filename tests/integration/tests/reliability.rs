//! Nothing leaked, nothing lost: orphans are collected (and only ours), a
//! create whose answer was lost is recovered rather than repeated, the
//! operator stopped at random points converges after a restart, and OCI
//! faults (5xx, 429, latency) are ridden out, and the IPs of workloads
//! (StatefulSet ordinals, Deployment pods, a floating IP) survive stops
//! during scaling and failover. Each test prints its figures.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use integration_tests::workloads::{scale, statefulset, template};
use integration_tests::{COMPARTMENT, OperatorSandbox, is_live, rip_yaml, state};
use k8s_oci_operator::api::crd::{ReservedIP, State};
use k8s_oci_operator::decide::ownership::{TAG_CLUSTER, TAG_NAME, TAG_NAMESPACE, TAG_UID};
use k8s_oci_operator::decide::tenancy::WORKLOAD_IPS;
use k8s_oci_operator::oci::{CreatePublicIpDetails, OciNetwork};
use k8s_oci_operator::workloads::GENERATED_BY;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
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
    let mut next = integration_tests::xorshift(0x9e3779b97f4a7c15);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_ips_and_failover_survive_operator_stops() -> Result<()> {
    let mut sb = OperatorSandbox::start("workload-stops").await?;
    sb.grant(WORKLOAD_IPS, Some("true")).await?;
    let sts: Api<StatefulSet> = sb.ns.api();
    let deployments: Api<Deployment> = sb.ns.api();
    let pods: Api<Pod> = sb.ns.api();
    sts.create(&PostParams::default(), &statefulset("db", 3, json!({}))?)
        .await?;
    let web: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": template("web", json!({})),
        },
    }))?;
    deployments.create(&PostParams::default(), &web).await?;
    // A floating IP over an active/passive pair without IPs of their own
    // (a private IP holds one public IP at most).
    let pair: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "pair" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "pair" } },
            "template": {
                "metadata": { "labels": { "app": "pair" } },
                "spec": { "containers": [{ "name": "app", "image": "registry.example/app:1" }] },
            },
        },
    }))?;
    deployments.create(&PostParams::default(), &pair).await?;
    sb.create(
        "apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: primary\nspec:\n  assignment:\n    podSelector:\n      matchLabels:\n        app: pair\n",
    )
    .await?;
    let mut addresses = BTreeMap::new();
    for ordinal in 0..3 {
        let name = format!("db-{ordinal}");
        let address = sb
            .wait_on_current_pod(&name, Duration::from_secs(60))
            .await?;
        addresses.insert(name, address);
    }
    let rounds = 24u64;
    let mut next = integration_tests::xorshift(0x2545f4914f6cdd1d);
    let mut replicas = 3;
    for _ in 0..rounds {
        match next(4) {
            0 => {
                replicas = 1 + next(3) as i32;
                scale(&sts, "db", replicas).await?;
            }
            1 => {
                // A StatefulSet pod restarted (its IP must come back).
                let victim = format!("db-{}", next(replicas as u64));
                let _ = pods.delete(&victim, &DeleteParams::default()).await;
            }
            2 => {
                // Failover: a pair pod's probes fail or pass again, or it is
                // replaced.
                let pair = sb.pods_of("pair").await?;
                if let Some(pod) = pair.get(next(pair.len().max(1) as u64) as usize) {
                    // Either may find the pod gone already: fine.
                    match next(3) {
                        0 => drop(pods.delete(pod, &DeleteParams::default()).await),
                        n => drop(sb.set_pod_ready(pod, n == 1).await),
                    }
                }
            }
            _ => {
                // A Deployment pod replaced: its IP released, a new one made.
                if let Some(victim) = sb.pods_of("web").await?.first() {
                    let _ = pods.delete(victim, &DeleteParams::default()).await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(next(400))).await;
        sb.stop_operator();
        sb.start_operator()?;
    }
    // Back to three, every pod ready: the ordinals' addresses are the
    // first ones, the floating IP is on a ready pair pod, web's two pods
    // have one IP each.
    scale(&sts, "db", 3).await?;
    wait_until(Duration::from_secs(60), || async {
        Ok(sb.pods_of("db").await? == ["db-0", "db-1", "db-2"])
    })
    .await?;
    for pod in sb.pods_of("pair").await? {
        sb.set_pod_ready(&pod, true).await?;
    }
    for (name, address) in &addresses {
        let now = sb
            .wait_on_current_pod(name, Duration::from_secs(60))
            .await?;
        assert_eq!(&now, address, "{name} changed its address");
    }
    let converged = wait_until(Duration::from_secs(60), || async {
        let list = sb.rips().list(&ListParams::default()).await?.items;
        let web_ips = list
            .iter()
            .filter(|r| r.labels().get(GENERATED_BY).map(String::as_str) == Some("pod"))
            .count();
        let primary_on_db = list.iter().any(|r| {
            r.name_any() == "primary"
                && state(r) == Some(State::Assigned)
                && r.status
                    .as_ref()
                    .and_then(|s| s.pod_name.as_deref())
                    .is_some_and(|p| p.starts_with("pair-"))
        });
        Ok(web_ips == 2
            && primary_on_db
            && list.iter().all(|r: &ReservedIP| {
                r.metadata.deletion_timestamp.is_none() && state(r) == Some(State::Assigned)
            }))
    })
    .await;
    if let Err(e) = converged {
        // What did not converge, for the log.
        for r in sb.rips().list(&ListParams::default()).await?.items {
            let status = r.status.clone().unwrap_or_default();
            eprintln!(
                "ReservedIP {} {:?} on {:?}: {:?}",
                r.name_any(),
                status.state,
                status.pod_name,
                status
                    .conditions
                    .iter()
                    .map(|c| (&c.type_, &c.reason, &c.message))
                    .collect::<Vec<_>>()
            );
        }
        eprintln!("pods: {:?}", sb.pods_of("db").await?);
        return Err(e.context("workload ReservedIPs did not converge"));
    }
    sb.report(
        "workload IPs and floating IP, operator stopped",
        rounds,
        rounds,
        "stop + restart per round (StatefulSet scale/pod restart, failover, Deployment pod replaced)",
    )
    .await?;
    for deployment in ["web", "pair"] {
        deployments
            .delete(deployment, &DeleteParams::default())
            .await?;
    }
    sts.delete("db", &DeleteParams::default()).await?;
    wait_until(Duration::from_secs(90), || async {
        let left = sb.rips().list(&ListParams::default()).await?.items;
        Ok(left.len() == 1 && left[0].name_any() == "primary")
    })
    .await
    .context("the workloads' ReservedIPs were not released with them")?;
    sb.finish().await
}
