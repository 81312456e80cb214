//! What the scenarios put into the cluster: fake nodes, pods pinned to them,
//! ReservedIPs naming those pods; and waiting for kwok to run the pods.
//!
//! ReservedIPs are handled as dynamic objects, so the benchmark does not link
//! the operator it measures.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use kube::{Api, Client};
use serde_json::json;

use crate::error::{Error, Result};

/// The namespace every benchmark object lives in.
pub const NAMESPACE: &str = "bench";

pub fn reservedip_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("oci.k8s.logmein.com", "v1alpha1", "ReservedIP"),
        "reservedips",
    )
}

pub fn reservedips(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NAMESPACE, &reservedip_resource())
}

/// Creates the fake nodes (already existing ones are left as they are).
pub async fn create_nodes(client: &Client, nodes: Vec<Node>) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    for node in nodes {
        match api.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Creates the namespace and waits for its "default" ServiceAccount, which
/// pod admission requires.
pub async fn create_namespace(client: &Client) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    // Opted in to ReservedIPs for labelled workloads (scenario 8) from the
    // start: a grant changed later re-decides every ReservedIP of the
    // namespace, which would land in that scenario's figures.
    let ns = serde_json::from_value(json!({"metadata": {
        "name": NAMESPACE,
        "annotations": { "oci.k8s.logmein.com/workload-ips": "true" },
    }}))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), NAMESPACE);
    let max = Duration::from_secs(60);
    let start = Instant::now();
    while sas.get_opt("default").await?.is_none() {
        if start.elapsed() > max {
            return Err(Error::Timeout(max, "the default ServiceAccount".into()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// A pod to create: its name, role label and node.
pub struct PodSpec {
    pub name: String,
    pub role: String,
    pub node: String,
}

/// Creates pods bound to their nodes directly (no scheduler: on 2 cores the
/// control plane's own work would otherwise dominate the wave).
pub async fn create_pods(client: &Client, pods: Vec<PodSpec>, concurrency: usize) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    stream::iter(pods.into_iter().map(|p| {
        let api = api.clone();
        async move {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": p.name, "labels": {"app": "bench", "role": p.role}},
                "spec": {
                    "nodeName": p.node,
                    "automountServiceAccountToken": false,
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "app", "image": "registry.invalid/fake:1"}],
                },
            }))?;
            match api.create(&PostParams::default(), &pod).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(Error::from(e)),
            }
        }
    }))
    .buffer_unordered(concurrency)
    .try_collect::<()>()
    .await
}

/// Waits until `count` pods of `role` run with an IP (kwok's doing).
pub async fn wait_pods_running(
    client: &Client,
    role: &str,
    count: usize,
    max: Duration,
) -> Result<Duration> {
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let start = Instant::now();
    loop {
        let mut running = 0;
        let mut params = ListParams::default()
            .labels(&format!("role={role}"))
            .limit(1000);
        loop {
            let page = api.list(&params).await?;
            running += page
                .items
                .iter()
                .filter(|p| {
                    p.status.as_ref().is_some_and(|s| {
                        s.phase.as_deref() == Some("Running") && s.pod_ip.is_some()
                    })
                })
                .count();
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(c) => params = params.continue_token(&c),
                None => break,
            }
        }
        if running >= count {
            return Ok(start.elapsed());
        }
        if start.elapsed() > max {
            return Err(Error::Timeout(
                max,
                format!("{count} {role} pods to run ({running} do)"),
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A ReservedIP assigned to a pod of the same name's index.
pub fn reservedip(name: &str, pod: &str) -> DynamicObject {
    with_spec(
        name,
        json!({"tags": {"bench": "true"}, "assignment": {"podName": pod}}),
    )
}

/// A ReservedIP with no assignment (allocated only).
pub fn unassigned_reservedip(name: &str) -> DynamicObject {
    with_spec(name, json!({"tags": {"bench": "true"}}))
}

fn with_spec(name: &str, spec: serde_json::Value) -> DynamicObject {
    let mut obj = DynamicObject::new(name, &reservedip_resource()).within(NAMESPACE);
    obj.data = json!({ "spec": spec });
    obj
}

/// Creates the ReservedIPs `(name, pod)`, `concurrency` at a time.
pub async fn create_reservedips(
    client: &Client,
    items: Vec<(String, String)>,
    concurrency: usize,
) -> Result<()> {
    let api = reservedips(client);
    stream::iter(items.into_iter().map(|(name, pod)| {
        let api = api.clone();
        async move {
            let obj = reservedip(&name, &pod);
            api.create(&PostParams::default(), &obj).await?;
            Ok::<_, Error>(())
        }
    }))
    .buffer_unordered(concurrency)
    .try_collect::<()>()
    .await
}

pub async fn delete_reservedip(client: &Client, name: &str) -> Result<()> {
    reservedips(client)
        .delete(name, &DeleteParams::default())
        .await?;
    Ok(())
}
