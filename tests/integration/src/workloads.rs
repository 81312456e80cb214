//! Workloads as the tests, the reliability scenarios and the benchmark run
//! them: labelled pod templates and StatefulSets (`k8s_oci_operator::workloads`),
//! scaling, pods' readiness as a kubelet would set it, and waiting for an
//! IP to be on the current pod of a name.

use std::time::Duration;

use anyhow::{Context as _, Result};
use k8s_oci_operator::api::crd::{ReservedIP, State};
use k8s_oci_operator::workloads::{READY_CONDITION, WANTS_IP};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use test_support::{wait_for, wait_until};

use crate::OperatorSandbox;

/// A pod template labelled `app: <app>` that asks for a public IP and waits
/// for it (readiness gate).
pub fn template(app: &str, annotations: Value) -> Value {
    json!({
        "metadata": {
            "labels": { "app": app, WANTS_IP: "true" },
            "annotations": annotations,
        },
        "spec": {
            "containers": [{ "name": "app", "image": "registry.example/app:1" }],
            "readinessGates": [{ "conditionType": READY_CONDITION }],
        },
    })
}

/// A labelled StatefulSet whose pods are labelled too.
pub fn statefulset(name: &str, replicas: i32, annotations: Value) -> Result<StatefulSet> {
    Ok(serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": { WANTS_IP: "true" },
            "annotations": annotations,
        },
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": { "matchLabels": { "app": name } },
            "template": template(name, json!({})),
        },
    }))?)
}

/// Sets `spec.replicas` of a StatefulSet (or Deployment, through `api`).
pub async fn scale<K>(api: &Api<K>, name: &str, replicas: i32) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "replicas": replicas } })),
    )
    .await?;
    Ok(())
}

/// The address, state and pod UID a ReservedIP reports.
pub fn reported(rip: &ReservedIP) -> (Option<String>, Option<State>, Option<String>) {
    let s = rip.status.clone().unwrap_or_default();
    (s.public_ip_address, s.state, s.pod_uid)
}

impl OperatorSandbox {
    /// Sets a pod's Ready condition, as its kubelet does when probes pass
    /// or fail, and waits until the API shows it.
    pub async fn set_pod_ready(&self, name: &str, ready: bool) -> Result<()> {
        let pods: Api<Pod> = self.ns.api();
        let status = if ready { "True" } else { "False" };
        pods.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Strategic(
                json!({ "status": { "conditions": [{ "type": "Ready", "status": status }] } }),
            ),
        )
        .await?;
        wait_for(
            &pods,
            name,
            Duration::from_secs(30),
            move |p: Option<&Pod>| {
                p.and_then(|p| p.status.as_ref())
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == status))
            },
        )
        .await?;
        Ok(())
    }

    /// Waits until ReservedIP `name` is assigned to the pod of the same name
    /// as it is now (its UID), and returns its address.
    pub async fn wait_on_current_pod(&self, name: &str, timeout: Duration) -> Result<String> {
        let pods: Api<Pod> = self.ns.api();
        wait_until(timeout, || async {
            let (Some(pod), Some(rip)) =
                (pods.get_opt(name).await?, self.rips().get_opt(name).await?)
            else {
                return Ok(false);
            };
            let (_, state, uid) = reported(&rip);
            Ok(state == Some(State::Assigned) && uid == pod.uid())
        })
        .await
        .with_context(|| format!("ReservedIP {name} never reached its current pod"))?;
        reported(&self.rips().get(name).await?)
            .0
            .context("assigned without an address")
    }

    /// The names of the pods labelled `app=<app>`, sorted.
    pub async fn pods_of(&self, app: &str) -> Result<Vec<String>> {
        let pods: Api<Pod> = self.ns.api();
        let mut names: Vec<String> = pods
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await?
            .iter()
            .map(|p| p.name_any())
            .collect();
        names.sort();
        Ok(names)
    }
}
