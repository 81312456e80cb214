//! End to end, on the local control plane and the OCI emulator: every block of
//! the README's usage section, plus the cases around it (pod IP change, drift,
//! conflicts, admission). Each test checks that no public IP is left that no
//! ReservedIP owns.

use std::time::Duration;

use anyhow::{Context, Result};
use integration_tests::{
    OperatorSandbox, POOL, SPECIFIC_ADDRESS, SPECIFIC_ID, condition, is_live, state,
};
use k8s_oci_operator::api::crd::{ReservedIP, State};
use k8s_oci_operator::decide::ownership::{TAG_NAME, TAG_UID};
use k8s_oci_operator::decide::tenancy::{NODE_IPS, PRIVATE_IP_TARGETS, PUBLIC_IP_POOLS};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use test_support::wait_until;

const SEED_EXAMPLE: &str = r#"
apiVersion: oci.k8s.logmein.com/v1alpha1
kind: ReservedIP
metadata:
  name: my-reserved-ip
spec:
  tags:
    owner: My team
"#;

fn with_assignment(pod: &str) -> String {
    format!("{SEED_EXAMPLE}  assignment:\n    podName: {pod}\n")
}

fn status_field(
    rip: &ReservedIP,
    f: impl Fn(&k8s_oci_operator::api::crd::ReservedIPStatus) -> Option<String>,
) -> String {
    rip.status.as_ref().and_then(f).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocate_then_release() -> Result<()> {
    let sb = OperatorSandbox::start("allocate").await?;
    sb.create(SEED_EXAMPLE).await?;
    let rip = sb
        .wait_state("my-reserved-ip", State::Allocated, true)
        .await?;
    let id = status_field(&rip, |s| s.public_ip_id.clone());
    let ip = sb
        .public_ip(&id)
        .context("the emulator has the public IP")?;
    assert_eq!(ip["lifetime"], "RESERVED");
    assert_eq!(
        ip["ipAddress"],
        status_field(&rip, |s| s.public_ip_address.clone()).as_str()
    );
    assert_eq!(ip["freeformTags"]["owner"], "My team");
    assert_eq!(
        ip["freeformTags"][TAG_UID],
        rip.uid().unwrap_or_default().as_str()
    );
    assert_eq!(ip["freeformTags"][TAG_NAME], "my-reserved-ip");
    assert!(
        rip.finalizers()
            .iter()
            .any(|f| f == "oci.k8s.logmein.com/reservedip")
    );
    sb.assert_no_leak().await?;

    // `kubectl get reservedip` shows the README's columns.
    let out = std::process::Command::new("kubectl")
        .args(["get", "reservedip", "my-reserved-ip", "-n", sb.ns.name()])
        .output()
        .context("running kubectl (source .sandbox/env first)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let header: Vec<&str> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split("  ")
        .filter(|s| !s.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        ["NAME", "STATE", "PUBLIC IP", "POD", "READY", "AGE"],
        "kubectl printed:\n{text}"
    );
    let row = text.lines().nth(1).unwrap_or_default();
    assert!(
        row.contains("allocated")
            && row.contains(ip["ipAddress"].as_str().unwrap_or("?"))
            && row.contains("True"),
        "row: {row}"
    );
    // `kubectl get oci` (the CRD's category) and a field selector on the
    // state find it; `-o wide` says why it is (not) ready.
    for args in [
        vec!["get", "oci", "-o", "name"],
        vec![
            "get",
            "rip",
            "--field-selector",
            "status.state=allocated",
            "-o",
            "name",
        ],
    ] {
        let out = kubectl(&args, sb.ns.name())?;
        assert!(
            out.contains("reservedip.oci.k8s.logmein.com/my-reserved-ip"),
            "kubectl {args:?}: {out}"
        );
    }
    let none = kubectl(
        &[
            "get",
            "rip",
            "--field-selector",
            "status.state=assigned",
            "-o",
            "name",
        ],
        sb.ns.name(),
    )?;
    assert!(none.trim().is_empty(), "assigned: {none}");
    let wide = kubectl(
        &["get", "rip", "my-reserved-ip", "-o", "wide"],
        sb.ns.name(),
    )?;
    assert!(
        wide.contains("REASON") && wide.contains("Allocated"),
        "wide: {wide}"
    );

    sb.delete_and_wait("my-reserved-ip").await?;
    let ip = sb.public_ip(&id);
    assert!(
        ip.as_ref().is_none_or(|ip| !is_live(ip)),
        "released IP still live: {ip:?}"
    );
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byoip_pool() -> Result<()> {
    let sb = OperatorSandbox::start("pool").await?;
    // The platform team allows the pool in this namespace.
    sb.grant(PUBLIC_IP_POOLS, Some(POOL)).await?;
    sb.create(&format!("{SEED_EXAMPLE}  publicIPv4Pool: {POOL}\n"))
        .await?;
    let rip = sb
        .wait_state("my-reserved-ip", State::Allocated, true)
        .await?;
    let address = status_field(&rip, |s| s.public_ip_address.clone());
    assert!(address.starts_with("203.0.113."), "pool address {address}");
    let ip = sb
        .public_ip(&status_field(&rip, |s| s.public_ip_id.clone()))
        .context("ip")?;
    assert_eq!(ip["publicIpPoolId"], POOL);
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn specific_address_is_taken_over_and_retained() -> Result<()> {
    let sb = OperatorSandbox::start("specific").await?;
    // The platform team hands the address to this namespace.
    sb.hand_over(SPECIFIC_ID, sb.ns.name()).await?;
    sb.create(&format!(
        "{SEED_EXAMPLE}  publicIPv4Address: {SPECIFIC_ADDRESS}\n"
    ))
    .await?;
    let rip = sb
        .wait_state("my-reserved-ip", State::Allocated, true)
        .await?;
    assert_eq!(
        status_field(&rip, |s| s.public_ip_address.clone()),
        SPECIFIC_ADDRESS
    );
    assert!(rip.status.as_ref().is_some_and(|s| s.adopted));
    let id = status_field(&rip, |s| s.public_ip_id.clone());
    assert_eq!(id, SPECIFIC_ID);

    // A second ReservedIP for the same address is refused, and steals nothing.
    sb.create(&format!(
        "{}  publicIPv4Address: {SPECIFIC_ADDRESS}\n",
        SEED_EXAMPLE.replace("my-reserved-ip", "second")
    ))
    .await?;
    let second = sb.wait_state("second", State::Failed, false).await?;
    let ready = condition(&second, "Ready")?;
    assert_eq!(ready.reason, "AddressOwnedByOther");
    assert!(
        ready.message.contains("my-reserved-ip"),
        "{}",
        ready.message
    );
    sb.rips().delete("second", &DeleteParams::default()).await?;

    // Deleting the owner keeps the address (the default for taken-over IPs),
    // without the operator's tags.
    sb.delete_and_wait("my-reserved-ip").await?;
    let ip = sb.public_ip(&id).context("retained IP exists")?;
    assert_eq!(ip["lifecycleState"], "AVAILABLE");
    assert!(
        ip["freeformTags"].get(TAG_UID).is_none(),
        "ownership tags removed: {ip}"
    );
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_to_pod_then_unassign_then_release() -> Result<()> {
    let sb = OperatorSandbox::start("assign").await?;
    let pod = sb.running_pod("some-pod", None).await?;
    let pod_ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .context("pod ip")?;
    sb.apply(SEED_EXAMPLE).await?;
    sb.wait_state("my-reserved-ip", State::Allocated, true)
        .await?;

    sb.apply(&with_assignment("some-pod")).await?;
    let rip = sb
        .wait_state("my-reserved-ip", State::Assigned, true)
        .await?;
    assert_eq!(status_field(&rip, |s| s.pod_name.clone()), "some-pod");
    assert_eq!(status_field(&rip, |s| s.private_ip_address.clone()), pod_ip);
    let ip = sb
        .public_ip(&status_field(&rip, |s| s.public_ip_id.clone()))
        .context("ip")?;
    assert_eq!(ip["lifecycleState"], "ASSIGNED");
    let private = sb
        .private_ip(ip["assignedEntityId"].as_str().unwrap_or_default())
        .context("private ip")?;
    assert_eq!(
        private["ipAddress"],
        pod_ip.as_str(),
        "the public IP is on the pod's private IP"
    );
    sb.assert_no_leak().await?;

    // Remove the assignment section and re-apply.
    sb.apply(SEED_EXAMPLE).await?;
    let rip = sb
        .wait_state("my-reserved-ip", State::Allocated, true)
        .await?;
    assert_eq!(rip.status.as_ref().and_then(|s| s.pod_name.clone()), None);
    let ip = sb
        .public_ip(&status_field(&rip, |s| s.public_ip_id.clone()))
        .context("ip")?;
    assert!(ip["assignedEntityId"].is_null(), "unassigned in OCI: {ip}");
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocate_and_assign_in_one_step_then_release_in_one_step() -> Result<()> {
    let sb = OperatorSandbox::start("onestep").await?;
    sb.running_pod("some-pod", None).await?;
    sb.emulator.reset_calls();
    sb.create(&with_assignment("some-pod")).await?;
    let rip = sb
        .wait_state("my-reserved-ip", State::Assigned, true)
        .await?;
    assert_eq!(
        sb.calls("CreatePublicIp"),
        1,
        "one create that also assigns"
    );
    assert_eq!(sb.calls("UpdatePublicIp"), 0, "no separate assign call");
    let id = status_field(&rip, |s| s.public_ip_id.clone());

    // Delete while assigned: unassigned and released in one DeletePublicIp.
    // Status names the one IP, so the compartment is not listed; a read comes
    // first only when the IP was last seen in the shared listing (no etag),
    // as here, where the listing is at most 2.5 s old (`controller::release`
    // and `release.rs` show the one-call path).
    sb.emulator.reset_calls();
    sb.delete_and_wait("my-reserved-ip").await?;
    assert_eq!(sb.calls("DeletePublicIp"), 1);
    assert_eq!(sb.calls("ListPublicIps"), 0, "no listing on a delete");
    assert!(sb.calls("GetPublicIp") <= 1);
    let ip = sb.public_ip(&id);
    assert!(
        ip.as_ref()
            .is_none_or(|ip| ip["lifecycleState"] != "ASSIGNED"),
        "{ip:?}"
    );
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_a_missing_pod_and_follows_a_recreated_one() -> Result<()> {
    let sb = OperatorSandbox::start("follow").await?;
    sb.create(&with_assignment("later")).await?;
    let rip = sb
        .wait_state("my-reserved-ip", State::Allocated, false)
        .await?;
    let assigned = condition(&rip, "Assigned")?;
    assert_eq!(assigned.reason, "PodNotFound");

    // The pod's arrival triggers the assignment (resync is slower than this wait allows).
    let first = sb.running_pod("later", Some("sandbox-node-0")).await?;
    let rip = sb
        .wait_state("my-reserved-ip", State::Assigned, true)
        .await?;
    assert_eq!(
        status_field(&rip, |s| s.pod_uid.clone()),
        first.uid().unwrap_or_default()
    );

    // Recreated on another node, with another IP: the public IP follows.
    let pods: Api<Pod> = sb.ns.api();
    pods.delete("later", &DeleteParams::default().grace_period(0))
        .await?;
    wait_until(Duration::from_secs(30), || async {
        Ok(pods.get_opt("later").await?.is_none())
    })
    .await?;
    let second = sb.running_pod("later", Some("sandbox-node-1")).await?;
    let new_ip = second
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .context("ip")?;
    wait_until(Duration::from_secs(30), || async {
        let r = sb.rips().get("my-reserved-ip").await?;
        Ok(state(&r) == Some(State::Assigned)
            && status_field(&r, |s| s.private_ip_address.clone()) == new_ip)
    })
    .await
    .context("the public IP did not follow the recreated pod")?;
    sb.assert_no_leak().await?;
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_to_a_private_ip_address() -> Result<()> {
    let sb = OperatorSandbox::start("privateip").await?;
    // The platform team allows private IP targets in the pods subnet.
    sb.grant(PRIVATE_IP_TARGETS, Some("ocid1.subnet.oc1.sandbox.pods"))
        .await?;
    sb.create(&format!("{SEED_EXAMPLE}  assignment:\n    privateIPAddress: 10.0.66.200\n    subnetId: ocid1.subnet.oc1.sandbox.pods\n")).await?;
    let rip = sb
        .wait_state("my-reserved-ip", State::Assigned, true)
        .await?;
    assert_eq!(
        status_field(&rip, |s| s.private_ip_address.clone()),
        "10.0.66.200"
    );
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reserved_ips_for_one_pod_one_wins() -> Result<()> {
    let sb = OperatorSandbox::start("twoforone").await?;
    sb.running_pod("some-pod", None).await?;
    sb.create(&with_assignment("some-pod")).await?;
    let first = sb
        .wait_state("my-reserved-ip", State::Assigned, true)
        .await?;
    sb.create(&with_assignment("some-pod").replace("my-reserved-ip", "second"))
        .await?;
    let second = sb.wait_state("second", State::Allocated, false).await?;
    let ready = condition(&second, "Ready")?;
    assert_eq!(ready.reason, "TargetHasPublicIP");
    assert!(
        ready.message.contains("my-reserved-ip"),
        "says who holds it: {}",
        ready.message
    );
    // The first keeps its assignment.
    let first_now = sb.rips().get("my-reserved-ip").await?;
    assert_eq!(state(&first_now), Some(State::Assigned));
    assert_eq!(
        first_now
            .status
            .as_ref()
            .and_then(|s| s.public_ip_id.clone()),
        first.status.as_ref().and_then(|s| s.public_ip_id.clone())
    );
    sb.assert_no_leak().await?;
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_to_a_taken_pod_leaves_the_old_pod_and_waits_for_the_new_one() -> Result<()> {
    let sb = OperatorSandbox::start("takenmove").await?;
    sb.running_pod("pod-a", None).await?;
    sb.running_pod("pod-b", None).await?;
    sb.create(&with_assignment("pod-a")).await?;
    let mover = sb
        .wait_state("my-reserved-ip", State::Assigned, true)
        .await?;
    let mover_ip = status_field(&mover, |s| s.public_ip_id.clone());
    sb.create(&with_assignment("pod-b").replace("my-reserved-ip", "blocker"))
        .await?;
    sb.wait_state("blocker", State::Assigned, true).await?;

    // The spec moves to pod-b, whose private IP has the blocker's IP: OCI
    // refuses the move and leaves the IP on pod-a, which the spec no longer
    // names, so the operator takes it off pod-a and waits.
    sb.apply(&with_assignment("pod-b")).await?;
    let refused = sb
        .wait_state("my-reserved-ip", State::Allocated, false)
        .await?;
    assert_eq!(condition(&refused, "Ready")?.reason, "TargetHasPublicIP");
    wait_until(Duration::from_secs(30), || async {
        let ip = sb.public_ip(&mover_ip).context("the IP is gone")?;
        Ok(ip["lifecycleState"] == "AVAILABLE")
    })
    .await
    .context("the IP stayed on pod-a")?;
    assert_eq!(
        status_field(&sb.rips().get("my-reserved-ip").await?, |s| s
            .public_ip_id
            .clone()),
        mover_ip,
        "the same IP is held"
    );

    // The blocker goes: the move is tried again and succeeds.
    sb.delete_and_wait("blocker").await?;
    let moved = sb
        .wait_state_within(
            "my-reserved-ip",
            State::Assigned,
            true,
            Duration::from_secs(60),
        )
        .await?;
    assert_eq!(status_field(&moved, |s| s.public_ip_id.clone()), mover_ip);
    sb.assert_no_leak().await?;
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_put_back() -> Result<()> {
    let sb = OperatorSandbox::start("drift").await?;
    sb.running_pod("some-pod", None).await?;
    sb.create(&with_assignment("some-pod")).await?;
    let rip = sb
        .wait_state("my-reserved-ip", State::Assigned, true)
        .await?;
    let id = status_field(&rip, |s| s.public_ip_id.clone());
    // Someone unassigns the IP and drops the user's tag behind the
    // operator's back (its ownership tags stay).
    use k8s_oci_operator::oci::OciNetwork;
    let tags = sb.oci_client()?.get_public_ip(&id).await?.freeform_tags;
    let ownership_only = tags
        .iter()
        .filter(|(k, _)| k.starts_with("k8s-oci-operator-"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    sb.tamper(&id, ownership_only, true).await?;
    // The next resync (5 s in tests) puts both back.
    wait_until(Duration::from_secs(30), || async {
        let ip = sb.public_ip(&id).unwrap_or_default();
        Ok(ip["lifecycleState"] == "ASSIGNED" && ip["freeformTags"]["owner"] == "My team")
    })
    .await
    .context("drift was not corrected")?;

    // With its ownership tags stripped the IP is no longer provably this
    // ReservedIP's (status alone is not proof): nothing is written to it,
    // and the ReservedIP says why.
    sb.tamper(&id, Default::default(), true).await?;
    sb.emulator.reset_calls();
    let rip = sb
        .wait_state("my-reserved-ip", State::Failed, false)
        .await?;
    assert_eq!(condition(&rip, "Ready")?.reason, "PublicIPNotOurs");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        sb.calls("UpdatePublicIp"),
        0,
        "the untagged IP was left alone"
    );
    // Put back by whoever stripped them, the tags make it ours again.
    sb.tamper(&id, tags, false).await?;
    sb.wait_state("my-reserved-ip", State::Assigned, true)
        .await?;
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_never_releases_an_ip_changed_behind_its_back_without_reading_it() -> Result<()> {
    use k8s_oci_operator::decide::ownership::TAG_NAMESPACE;
    let sb = OperatorSandbox::start("stale-etag").await?;
    sb.running_pod("some-pod", None).await?;
    sb.create(&with_assignment("some-pod")).await?;
    sb.create(&SEED_EXAMPLE.replace("my-reserved-ip", "other-ip"))
        .await?;
    let rip = sb
        .wait_state("my-reserved-ip", State::Assigned, true)
        .await?;
    let other = sb.wait_state("other-ip", State::Allocated, true).await?;
    // Someone re-tags my-reserved-ip's IP as other-ip's, behind the operator's back.
    let id = status_field(&rip, |s| s.public_ip_id.clone());
    let mut tags = sb.public_ip(&id).context("ip")?["freeformTags"].clone();
    tags[TAG_NAME] = "other-ip".into();
    tags[TAG_UID] = other.uid().unwrap_or_default().into();
    tags[TAG_NAMESPACE] = sb.ns.name().into();
    sb.tamper(&id, serde_json::from_value(tags)?, false).await?;

    sb.emulator.reset_calls();
    sb.delete_and_wait("my-reserved-ip").await?;
    // Whether the delete was tried with a remembered etag (and refused: the
    // IP changed) or the IP was read first, the fresh read showed it is no
    // longer ours, and it was left alone.
    assert!(
        sb.calls("DeletePublicIp") <= 1,
        "at most the refused attempt"
    );
    assert!(
        sb.calls("GetPublicIp") >= 1,
        "read before anything is released"
    );
    let ip = sb.public_ip(&id).context("ip")?;
    assert!(is_live(&ip), "released although no longer ours: {ip}");
    // Hand it back, so other-ip's own release finds exactly one IP per owner.
    sb.tamper(&id, Default::default(), true).await?;
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_are_rejected_at_admission() -> Result<()> {
    let sb = OperatorSandbox::start("admission").await?;
    let cases = [
        (
            "assignment:\n    podName: a\n    privateIPAddress: 10.0.0.1\n",
            "exactly one of podName, podSelector, nodeName, privateIPAddress or privateIPId",
        ),
        (
            "assignment:\n    nodeName: node-1\n    podSelector:\n      matchLabels:\n        app: db\n",
            "exactly one of",
        ),
        (
            "assignment:\n    podSelector: {}\n",
            "podSelector must select by at least one label",
        ),
        (
            "assignment:\n    podSelector:\n      matchLabels: {}\n",
            "podSelector must select by at least one label",
        ),
        (
            "assignment:\n    podName: web\n    replaceEphemeral: true\n",
            "replaceEphemeral only applies to nodeName",
        ),
        ("assignment:\n    nodeName: Not_A_Node\n", "nodeName"),
        ("publicIPv4Address: 300.1.1.1\n", "publicIPv4Address"),
        ("publicIPv4Pool: not-an-ocid\n", "publicIPv4Pool"),
        ("assignment:\n    podName: Not_A_Pod\n", "podName"),
        (
            "assignment:\n    subnetId: ocid1.subnet.oc1.sandbox.pods\n",
            "exactly one of",
        ),
    ];
    for (i, (spec, expect)) in cases.iter().enumerate() {
        let yaml = format!(
            "{}  {spec}",
            SEED_EXAMPLE.replace("my-reserved-ip", &format!("bad-{i}"))
        );
        let err = sb
            .create(&yaml)
            .await
            .expect_err(&format!("admission must refuse:\n{yaml}"));
        assert!(err.to_string().contains(expect), "case {i}: {err}");
    }
    // Tags: the operator's prefix in any case, look-alike keys, invisible characters.
    let tag_cases = [
        ("k8s-oci-operator-uid: forged", "reserved for the operator"),
        (
            "K8S-OCI-OPERATOR-cluster: forged",
            "reserved for the operator",
        ),
        (
            "k8s\u{2011}oci\u{2011}operator-cluster: x",
            "only ASCII letters",
        ),
        ("app.example/team: x", "only ASCII letters"),
        (r#"owner: "a\0b""#, "control or format"),
        (r#"owner: "\u202Eevil""#, "control or format"),
        (r#"owner: "zero\u200Bwidth""#, "control or format"),
    ];
    for (i, (tag, expect)) in tag_cases.iter().enumerate() {
        let yaml = format!(
            "{}    {tag}\n",
            SEED_EXAMPLE.replace("my-reserved-ip", &format!("bad-tag-{i}"))
        );
        let err = sb
            .create(&yaml)
            .await
            .expect_err(&format!("admission must refuse:\n{yaml}"));
        assert!(err.to_string().contains(expect), "tag case {i}: {err}");
    }
    // Unicode text in values is fine.
    sb.create(&format!(
        "{}    city: Zürich 東京\n",
        SEED_EXAMPLE.replace("my-reserved-ip", "unicode-ok")
    ))
    .await?;
    sb.rips()
        .delete("unicode-ok", &DeleteParams::default())
        .await?;

    // The pool cannot be changed once set.
    sb.create(&format!("{SEED_EXAMPLE}  publicIPv4Pool: {POOL}\n"))
        .await?;
    let patch = json!({ "spec": { "publicIPv4Pool": "ocid1.publicippool.oc1.sandbox.other" } });
    let err = sb
        .rips()
        .patch(
            "my-reserved-ip",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect_err("immutable");
    assert!(err.to_string().contains("immutable"), "{err}");
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_reference_cleanup_holds_the_pod_until_released() -> Result<()> {
    let sb = OperatorSandbox::start("ownerref").await?;
    let pod = sb.running_pod("some-pod", None).await?;
    let yaml = format!(
        "{}  ownerReferences:\n  - apiVersion: v1\n    kind: Pod\n    name: some-pod\n    uid: {}\n    blockOwnerDeletion: true\nspec:\n  tags:\n    owner: My team\n  assignment:\n    podName: some-pod\n",
        "apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: my-reserved-ip\n",
        pod.uid().unwrap_or_default()
    );
    sb.create(&yaml).await?;
    let rip = sb
        .wait_state("my-reserved-ip", State::Assigned, true)
        .await?;
    let id = status_field(&rip, |s| s.public_ip_id.clone());

    let pods: Api<Pod> = sb.ns.api();
    pods.delete("some-pod", &DeleteParams::foreground()).await?;
    // The garbage collector (which may need up to ~30 s to discover a newly
    // installed CRD) deletes the ReservedIP; the operator releases the IP; the
    // pod goes only after that.
    wait_until(Duration::from_secs(90), || async {
        Ok(pods.get_opt("some-pod").await?.is_none()
            && sb.rips().get_opt("my-reserved-ip").await?.is_none())
    })
    .await
    .context("pod and ReservedIP were not cleaned up")?;
    let ip = sb.public_ip(&id);
    assert!(ip.as_ref().is_none_or(|ip| !is_live(ip)), "{ip:?}");
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_pod_reserved_ip_created_with_the_pods_service_account() -> Result<()> {
    let sb = OperatorSandbox::start("perpod").await?;
    let ns = sb.ns.name().to_string();
    // The README's ServiceAccount, Role and RoleBinding (with the Role's name
    // spelled the same in both places).
    let rbac: Vec<serde_json::Value> = vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reservedip-user"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "reservedip-user-role"},
               "rules": [{"apiGroups": ["oci.k8s.logmein.com"], "resources": ["reservedips"], "verbs": ["get", "create", "patch"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "reservedip-user-rolebinding"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reservedip-user-role"},
               "subjects": [{"kind": "ServiceAccount", "name": "reservedip-user"}]}),
    ];
    for obj in rbac {
        let tm: kube::core::TypeMeta = serde_json::from_value(obj.clone())?;
        let ar = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::try_from(&tm)?);
        let api: Api<kube::core::DynamicObject> = Api::namespaced_with(sb.client.clone(), &ns, &ar);
        api.create(&PostParams::default(), &serde_json::from_value(obj)?)
            .await?;
    }
    let pod = sb.running_pod("web-0", None).await?;

    // What the initContainer applies, as the pod's service account.
    let mut config = kube::Config::infer().await?;
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{ns}:reservedip-user"));
    let as_pod = kube::Client::try_from(config)?;
    let rips: Api<ReservedIP> = Api::namespaced(as_pod, &ns);
    let rip: ReservedIP = serde_yaml::from_str(&format!(
        "apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: web-0\n  namespace: {ns}\nspec:\n  tags:\n    owner: My team\n    pod: web-0\n    namespace: {ns}\n  assignment:\n    podName: web-0\n"
    ))?;
    rips.patch(
        "web-0",
        &PatchParams::apply("kubectl").force(),
        &Patch::Apply(&rip),
    )
    .await?;
    // The initContainer's loop: wait until .status.state is "assigned".
    wait_until(Duration::from_secs(30), || async {
        Ok(rips.get("web-0").await.ok().and_then(|r| state(&r)) == Some(State::Assigned))
    })
    .await?;
    let r = rips.get("web-0").await?;
    assert_eq!(
        status_field(&r, |s| s.private_ip_address.clone()),
        pod.status.and_then(|s| s.pod_ip).unwrap_or_default()
    );
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_works_with_its_deploy_service_account_alone() -> Result<()> {
    let mut sb = OperatorSandbox::start("asserviceaccount").await?;
    sb.operator_client = Some(integration_tests::operator_service_account_client().await?);
    sb.start_operator()?;
    sb.running_pod("some-pod", None).await?;
    sb.apply(&with_assignment("some-pod")).await?;
    sb.wait_state("my-reserved-ip", State::Assigned, true)
        .await?;
    // Events are written with the same credentials (just after the status).
    let events: Api<k8s_openapi::api::events::v1::Event> = sb.ns.api();
    wait_until(Duration::from_secs(10), || async {
        let list = events.list(&Default::default()).await?;
        Ok(list
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Assigned")))
    })
    .await
    .context("no Assigned event")?;
    sb.apply(SEED_EXAMPLE).await?;
    sb.wait_state("my-reserved-ip", State::Allocated, true)
        .await?;
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_network_pod_behind_an_ephemeral_ip_is_reported_not_stolen() -> Result<()> {
    let sb = OperatorSandbox::start("hostnet").await?;
    // The platform team allows node IPs (hostNetwork pods) in this namespace.
    sb.grant(NODE_IPS, Some("true")).await?;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "hostnet" },
        "spec": {
            "hostNetwork": true,
            "nodeName": "sandbox-node-0",
            "containers": [{ "name": "app", "image": "registry.example/app:1" }]
        }
    }))?;
    let pods: Api<Pod> = sb.ns.api();
    pods.create(&PostParams::default(), &pod).await?;
    sb.create(&with_assignment("hostnet")).await?;
    let rip = sb
        .wait_state("my-reserved-ip", State::Allocated, false)
        .await?;
    let ready = condition(&rip, "Ready")?;
    assert_eq!(ready.reason, "TargetHasPublicIP");
    assert!(ready.message.contains("ephemeral"), "{}", ready.message);
    // The node's ephemeral IP is still there, untouched.
    let ephemeral: Vec<_> = sb
        .public_ips()
        .into_iter()
        .filter(|ip| ip["lifetime"] == "EPHEMERAL" && ip["lifecycleState"] == "ASSIGNED")
        .collect();
    assert_eq!(ephemeral.len(), 3, "every node keeps its ephemeral IP");
    sb.finish().await
}

/// `kubectl <args> -n <ns>`'s standard output; fails when kubectl does.
/// With a discovery cache of its own: a cache from before this CRD was
/// installed would not know its category.
fn kubectl(args: &[&str], ns: &str) -> Result<String> {
    let cache =
        std::env::temp_dir().join(format!("kubectl-cache-{}", uuid::Uuid::new_v4().simple()));
    let out = std::process::Command::new("kubectl")
        .args(args)
        .args(["-n", ns])
        .arg(format!("--cache-dir={}", cache.display()))
        .output()
        .context("running kubectl (source .sandbox/env first)")?;
    let _ = std::fs::remove_dir_all(&cache);
    anyhow::ensure!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
