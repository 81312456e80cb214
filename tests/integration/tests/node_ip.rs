//! `assignment.nodeName`: a reserved IP on a node's primary private IP,
//! behind the node-IPs grant; the node's ephemeral public IP is reported and
//! left alone unless the spec says `replaceEphemeral: true`.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::{OperatorSandbox, condition, is_live};
use k8s_oci_operator::api::crd::{ReservedIP, State};
use k8s_oci_operator::decide::tenancy::NODE_IPS;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use test_support::wait_for;

const WAIT: Duration = Duration::from_secs(30);
const NODE1_PRIMARY: &str = "ocid1.privateip.oc1.sandbox.node1-primary";

const EGRESS: &str = "apiVersion: oci.k8s.logmein.com/v1alpha1
kind: ReservedIP
metadata:
  name: egress
spec:
  assignment:
    nodeName: sandbox-node-1
";

/// The public IPs on node1's primary private IP, live ones only.
fn on_node1(sb: &OperatorSandbox) -> Vec<Value> {
    sb.public_ips()
        .into_iter()
        .filter(|ip| ip["privateIpId"] == NODE1_PRIMARY && is_live(ip))
        .collect()
}

/// Waits until the ReservedIP's Assigned condition has this reason.
async fn wait_assigned_reason(sb: &OperatorSandbox, reason: &'static str) -> Result<ReservedIP> {
    wait_for(&sb.rips(), "egress", WAIT, move |r: Option<&ReservedIP>| {
        r.and_then(|r| condition(r, "Assigned").ok())
            .is_some_and(|c| c.reason == reason)
    })
    .await
    .with_context(|| format!("never {reason}"))
}

#[tokio::test]
async fn a_node_ip_needs_the_grant_and_replaces_the_ephemeral_ip_only_when_asked() -> Result<()> {
    let sb = OperatorSandbox::start("node-ip").await?;
    let ephemeral = on_node1(&sb);
    ensure!(
        ephemeral.len() == 1 && ephemeral[0]["lifetime"] == "EPHEMERAL",
        "the seed gives node1 an ephemeral IP: {ephemeral:?}"
    );
    let ephemeral_id = ephemeral[0]["id"].as_str().unwrap_or_default().to_string();

    // Not granted: refused (the IP is held, assigned nowhere).
    sb.create(EGRESS).await?;
    let refused = wait_for(&sb.rips(), "egress", WAIT, |r: Option<&ReservedIP>| {
        r.and_then(|r| condition(r, "Ready").ok())
            .is_some_and(|c| c.reason == "NodeIPNotAllowed")
    })
    .await?;
    ensure!(condition(&refused, "Ready")?.message.contains(NODE_IPS));
    ensure!(
        sb.ours().iter().all(|ip| ip["privateIpId"].is_null()),
        "assigned though refused: {:?}",
        sb.ours()
    );
    ensure!(
        on_node1(&sb) == ephemeral,
        "node1 changed: {:?}",
        on_node1(&sb)
    );

    // Granted, without replaceEphemeral: the conflict is reported, the
    // ephemeral IP untouched.
    sb.grant(NODE_IPS, Some("true")).await?;
    let taken = wait_assigned_reason(&sb, "TargetHasPublicIP").await?;
    let message = condition(&taken, "Assigned")?.message;
    ensure!(
        message.contains("ephemeral public IP") && message.contains("replaceEphemeral"),
        "{message}"
    );
    ensure!(sb.calls("DeletePublicIp") == 0);
    ensure!(
        on_node1(&sb)
            .iter()
            .any(|ip| ip["id"] == ephemeral_id.as_str())
    );

    // Asked: the ephemeral IP goes, the reserved one takes its place.
    sb.rips()
        .patch(
            "egress",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "assignment": { "replaceEphemeral": true } } })),
        )
        .await?;
    let assigned = sb
        .wait_state_within("egress", State::Assigned, true, WAIT)
        .await?;
    let status = assigned.status.clone().unwrap_or_default();
    ensure!(status.private_ip_id.as_deref() == Some(NODE1_PRIMARY));
    ensure!(status.private_ip_address.as_deref() == Some("10.0.0.11"));
    let now = on_node1(&sb);
    ensure!(
        now.len() == 1 && now[0]["id"] == status.public_ip_id.clone().unwrap_or_default().as_str(),
        "node1 holds {now:?}"
    );
    ensure!(now[0]["lifetime"] == "RESERVED");
    ensure!(
        sb.calls("DeletePublicIp") == 1,
        "exactly the ephemeral IP was deleted"
    );
    let listed: kube::Api<k8s_openapi::api::events::v1::Event> = sb.ns.api();
    let deleted_event = listed
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .any(|e| e.reason.as_deref() == Some("EphemeralIPDeleted"));
    ensure!(deleted_event, "no EphemeralIPDeleted event");
    sb.finish().await
}
