//! The local control plane behaves like a real cluster: CRDs are served, pods
//! are scheduled to kwok nodes and get IPs from the node's pod CIDR, and the
//! garbage collector honours foreground deletion and blockOwnerDeletion.
//!
//! Needs the cluster from `make cluster-up` (`make test` starts it).

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::wait::conditions;
use kube::{Api, ResourceExt};
use serde_json::json;
use test_support::{TestNamespace, client, wait_for, wait_until};

const TIMEOUT: Duration = Duration::from_secs(60);

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (Some((net, bits)), Ok(ip)) = (cidr.split_once('/'), ip.parse::<Ipv4Addr>()) else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<Ipv4Addr>(), bits.parse::<u32>()) else {
        return false;
    };
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from(ip) & mask == u32::from(net) & mask
}

fn pod_running_with_ip(pod: Option<&Pod>) -> bool {
    pod.and_then(|p| p.status.as_ref())
        .is_some_and(|s| s.phase.as_deref() == Some("Running") && s.pod_ip.is_some())
}

/// The pod's IP is inside the pod CIDR of the node it was scheduled to.
async fn assert_ip_from_node_cidr(nodes: &Api<Node>, pod: &Pod) -> Result<()> {
    let node_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .context("pod has no node")?;
    let node = nodes.get(&node_name).await?;
    let cidr = node
        .spec
        .and_then(|s| s.pod_cidr)
        .context("node has no podCIDR")?;
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .context("pod has no IP")?;
    assert!(
        in_cidr(&ip, &cidr),
        "pod {} got {ip}, outside its node's {cidr}",
        pod.name_any()
    );
    assert!(
        in_cidr(&ip, "10.0.64.0/18"),
        "pod IP {ip} outside the sandbox pods subnet"
    );
    Ok(())
}

#[tokio::test]
async fn nodes_look_like_oke_workers() -> Result<()> {
    let nodes: Api<Node> = Api::all(client().await?);
    let list = nodes.list(&ListParams::default()).await?;
    assert!(
        list.items.len() >= 3,
        "expected the 3 sandbox nodes, got {}",
        list.items.len()
    );
    for node in &list.items {
        let spec = node.spec.as_ref().context("node spec")?;
        let provider = spec.provider_id.as_deref().unwrap_or_default();
        assert!(
            provider.starts_with("oci://ocid1.instance."),
            "{}: providerID {provider}",
            node.name_any()
        );
        let internal_ip = node
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
            .map(|a| a.address.clone())
            .context("node has no InternalIP")?;
        assert!(
            in_cidr(&internal_ip, "10.0.0.0/24"),
            "node IP {internal_ip}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn crd_is_applied_and_served() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "crd").await?;
    // A CRD of its own per run, so parallel runs never share one.
    let group = format!("{}.test.k8s-oci-operator.io", ns.name());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": { "name": format!("widgets.{group}") },
        "spec": {
            "group": group,
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget" },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": {
                        "type": "object",
                        "properties": { "size": { "type": "integer", "minimum": 1 } }
                    }}
                }}
            }]
        }
    }))?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await?;
    let crd_name = crd.name_any();
    let result = async {
        wait_for(&crds, &crd_name, TIMEOUT, conditions::is_crd_established()).await?;
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(&group, "v1", "Widget"));
        let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &ar);
        let mut w = DynamicObject::new("w1", &ar);
        w.data = json!({ "spec": { "size": 3 } });
        // Discovery of a new CRD can lag its Established condition by a moment.
        wait_until(TIMEOUT, || async {
            Ok(widgets.create(&PostParams::default(), &w).await.is_ok())
        })
        .await?;
        let back = widgets.get("w1").await?;
        assert_eq!(back.data["spec"]["size"], 3);
        // The schema is enforced: size must be at least 1.
        let mut bad = DynamicObject::new("w2", &ar);
        bad.data = json!({ "spec": { "size": 0 } });
        let err = widgets
            .create(&PostParams::default(), &bad)
            .await
            .expect_err("schema must reject size 0");
        assert!(
            err.to_string().contains("spec.size"),
            "unexpected error: {err}"
        );
        Ok::<_, anyhow::Error>(())
    }
    .await;
    crds.delete(&crd_name, &DeleteParams::default()).await?;
    result
}

#[tokio::test]
async fn pods_and_statefulset_pods_run_with_ips_from_node_cidr() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "pods").await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = ns.api();

    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "plain" },
        "spec": { "containers": [{ "name": "app", "image": "registry.example/app:1" }] }
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let pod = wait_for(&pods, "plain", TIMEOUT, pod_running_with_ip).await?;
    assert_ip_from_node_cidr(&nodes, &pod).await?;

    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 3,
            "serviceName": "web",
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "app", "image": "registry.example/web:1" }] }
            }
        }
    }))?;
    ns.api::<StatefulSet>()
        .create(&PostParams::default(), &sts)
        .await?;
    // StatefulSet pods come one at a time, each after the previous is Running.
    for i in 0..3 {
        let name = format!("web-{i}");
        wait_until(TIMEOUT, || async {
            Ok(pods.get_opt(&name).await?.is_some())
        })
        .await?;
        let pod = wait_for(&pods, &name, TIMEOUT, pod_running_with_ip).await?;
        assert_ip_from_node_cidr(&nodes, &pod).await?;
        let owner = pod.owner_references().first().map(|o| o.kind.clone());
        assert_eq!(owner.as_deref(), Some("StatefulSet"));
    }
    Ok(())
}

#[tokio::test]
async fn foreground_deletion_waits_for_a_blocking_dependent() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "gc").await?;
    let cms: Api<ConfigMap> = ns.api();

    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": "owner" }
            }))?,
        )
        .await?;
    let dependent: ConfigMap = serde_json::from_value(json!({
        "metadata": {
            "name": "dependent",
            "finalizers": ["test.k8s-oci-operator.io/hold"],
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                "uid": owner.uid().context("owner uid")?,
                "blockOwnerDeletion": true
            }]
        }
    }))?;
    cms.create(&PostParams::default(), &dependent).await?;

    cms.delete("owner", &DeleteParams::foreground()).await?;
    // The garbage collector deletes the dependent (it gets a deletionTimestamp)
    // but its finalizer holds it, and so the owner is held too.
    wait_for(&cms, "dependent", TIMEOUT, |cm: Option<&ConfigMap>| {
        cm.is_some_and(|cm| cm.metadata.deletion_timestamp.is_some())
    })
    .await
    .context("the garbage collector never deleted the dependent")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = cms
        .get("owner")
        .await
        .context("owner vanished while its dependent was blocking")?;
    assert!(
        held.finalizers().iter().any(|f| f == "foregroundDeletion"),
        "owner finalizers: {:?}",
        held.finalizers()
    );

    cms.patch(
        "dependent",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
    )
    .await?;
    wait_until(TIMEOUT, || async {
        Ok(cms.get_opt("owner").await?.is_none() && cms.get_opt("dependent").await?.is_none())
    })
    .await
    .context("owner and dependent should both be gone once the finalizer is removed")?;
    Ok(())
}
