//! `assignment.podSelector`: one floating IP on one ready pod of a set,
//! moved (one UpdatePublicIp) when that pod stops being ready or goes, and
//! never moved between healthy pods.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::{OperatorSandbox, condition};
use k8s_oci_operator::api::crd::{ReservedIP, State};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use test_support::wait_for;

const WAIT: Duration = Duration::from_secs(30);

const FLOATING: &str = "apiVersion: oci.k8s.logmein.com/v1alpha1
kind: ReservedIP
metadata:
  name: db-primary
spec:
  assignment:
    podSelector:
      matchLabels:
        app: db
";

/// A running pod labelled app=db.
async fn db_pod(sb: &OperatorSandbox, name: &str) -> Result<Pod> {
    sb.running_pod(name, None).await?;
    let pods: Api<Pod> = sb.ns.api();
    let labelled = pods
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "app": "db" } } })),
        )
        .await?;
    Ok(labelled)
}

/// Waits until the floating IP is assigned to `pod` (its current UID).
async fn wait_on(sb: &OperatorSandbox, pod: &str) -> Result<ReservedIP> {
    let uid = sb.ns.api::<Pod>().get(pod).await?.uid();
    let pod = pod.to_string();
    wait_for(
        &sb.rips(),
        "db-primary",
        WAIT,
        move |r: Option<&ReservedIP>| {
            r.and_then(|r| r.status.as_ref()).is_some_and(|s| {
                s.state == Some(State::Assigned)
                    && s.pod_name.as_deref() == Some(pod.as_str())
                    && s.pod_uid == uid
            })
        },
    )
    .await
    .context("the floating IP did not reach its pod")
}

/// The private IP the emulator has the public IP on.
fn on_private_ip(sb: &OperatorSandbox, rip: &ReservedIP) -> Option<String> {
    let id = rip.status.as_ref()?.public_ip_id.clone()?;
    sb.public_ip(&id)?["privateIpId"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test]
async fn a_floating_ip_fails_over_to_a_ready_pod_and_does_not_flap() -> Result<()> {
    let sb = OperatorSandbox::start("floating").await?;
    db_pod(&sb, "db-a").await?;
    db_pod(&sb, "db-b").await?;
    sb.create(FLOATING).await?;
    // The pod that has existed longest.
    let first = wait_on(&sb, "db-a").await?;
    let address = first
        .status
        .as_ref()
        .and_then(|s| s.public_ip_address.clone());
    let a_private = first.status.as_ref().and_then(|s| s.private_ip_id.clone());
    ensure!(on_private_ip(&sb, &first) == a_private, "OCI disagrees");

    // db-a's probes fail: the IP moves to db-b, in one call.
    sb.emulator.reset_calls();
    sb.set_pod_ready("db-a", false).await?;
    let moved = wait_on(&sb, "db-b").await?;
    ensure!(
        moved
            .status
            .as_ref()
            .and_then(|s| s.public_ip_address.clone())
            == address
    );
    ensure!(
        on_private_ip(&sb, &moved) == moved.status.as_ref().and_then(|s| s.private_ip_id.clone())
    );
    ensure!(
        sb.calls("UpdatePublicIp") == 1,
        "a move is one UpdatePublicIp, made {}",
        sb.calls("UpdatePublicIp")
    );
    ensure!(sb.calls("CreatePublicIp") == 0 && sb.calls("DeletePublicIp") == 0);

    // db-a is ready again, and a third ready pod comes: the IP stays on
    // db-b, which is healthy (no flapping back to the older pod).
    sb.emulator.reset_calls();
    sb.set_pod_ready("db-a", true).await?;
    db_pod(&sb, "db-c").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stayed = wait_on(&sb, "db-b").await?;
    ensure!(
        sb.calls("UpdatePublicIp") == 0,
        "moved between healthy pods"
    );
    ensure!(condition(&stayed, "Ready")?.status == "True");

    // db-b goes: the IP moves to the oldest ready pod left, db-a.
    sb.ns
        .api::<Pod>()
        .delete("db-b", &DeleteParams::default())
        .await?;
    wait_on(&sb, "db-a").await?;

    // No ready pod at all: unassigned, and it says why; then back.
    for pod in ["db-a", "db-c"] {
        sb.set_pod_ready(pod, false).await?;
    }
    let idle = wait_for(&sb.rips(), "db-primary", WAIT, |r: Option<&ReservedIP>| {
        r.and_then(|r| r.status.as_ref())
            .is_some_and(|s| s.state == Some(State::Allocated))
    })
    .await?;
    let assigned = condition(&idle, "Assigned")?;
    ensure!(assigned.reason == "NoReadyPod", "{assigned:?}");
    sb.set_pod_ready("db-c", true).await?;
    wait_on(&sb, "db-c").await?;
    sb.finish().await
}
