//! ReservedIPs the operator creates for labelled workloads, on the local
//! control plane (the Deployment, ReplicaSet, StatefulSet and garbage
//! collector controllers of kube-controller-manager; kwok's pods) and the
//! OCI emulator: a Deployment's pods each get an IP and give it back, a
//! StatefulSet keeps its ordinals' addresses through restarts and scaling,
//! and a namespace that did not opt in gets nothing, even for someone who
//! may create pods.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::workloads::{reported, scale, statefulset, template};
use integration_tests::{OperatorSandbox, POOL, is_live};
use k8s_oci_operator::api::crd::{ReservedIP, State};
use k8s_oci_operator::decide::tenancy::WORKLOAD_IPS;
use k8s_oci_operator::workloads::{
    GENERATED_BY, POOL as POOL_ANNOTATION, PUBLIC_IP, READY_CONDITION, TAGS, WANTS_IP,
    WHEN_DELETED, WHEN_SCALED,
};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use test_support::{wait_for, wait_until};

const WAIT: Duration = Duration::from_secs(60);

/// The pod condition the operator sets.
fn gate(pod: &Pod) -> Option<(String, String, String)> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == READY_CONDITION)?;
    Some((
        c.status.clone(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ))
}

/// Waits until the pod shows its public IP (condition and annotation) and
/// returns the address.
async fn wait_pod_shows_ip(pods: &Api<Pod>, name: &str) -> Result<String> {
    let pod = wait_for(pods, name, WAIT, |p: Option<&Pod>| {
        p.is_some_and(|p| {
            gate(p).is_some_and(|(status, reason, _)| status == "True" && reason == "Assigned")
                && p.annotations().contains_key(PUBLIC_IP)
        })
    })
    .await
    .with_context(|| format!("pod {name} never showed its public IP"))?;
    Ok(pod.annotations()[PUBLIC_IP].clone())
}

/// Waits until ReservedIP `name` is in `state` (Ready or not: a
/// StatefulSet's IP whose pod is gone is allocated, waiting for it).
async fn wait_in_state(sb: &OperatorSandbox, name: &str, state: State) -> Result<ReservedIP> {
    wait_for(&sb.rips(), name, WAIT, move |r: Option<&ReservedIP>| {
        r.is_some_and(|r| reported(r).1 == Some(state))
    })
    .await
    .with_context(|| format!("ReservedIP {name} never {state:?}"))
}

/// Waits until ReservedIP `name` reports it is not Ready for its spec.
async fn wait_refused(sb: &OperatorSandbox, name: &str) -> Result<ReservedIP> {
    wait_for(&sb.rips(), name, WAIT, |r: Option<&ReservedIP>| {
        r.and_then(|r| integration_tests::condition(r, "Ready").ok())
            .is_some_and(|c| c.status == "False" && c.observed_generation.is_some())
    })
    .await
    .with_context(|| format!("ReservedIP {name} never refused"))
}

/// Live public IPs of the sandbox in OCI, by address.
fn live_addresses(sb: &OperatorSandbox) -> Vec<String> {
    let mut v: Vec<String> = sb
        .ours()
        .iter()
        .filter(|ip| is_live(ip))
        .map(|ip| ip["ipAddress"].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

/// A sandbox whose namespace the platform team opted in.
async fn opted_in(test: &str) -> Result<OperatorSandbox> {
    let sb = OperatorSandbox::start(test).await?;
    sb.grant(WORKLOAD_IPS, Some("true")).await?;
    Ok(sb)
}

/// Waits until no ReservedIP and no public IP of the sandbox is left.
async fn wait_all_released(sb: &OperatorSandbox, timeout: Duration, after: &str) -> Result<()> {
    wait_until(timeout, || async {
        Ok(sb
            .rips()
            .list(&ListParams::default())
            .await?
            .items
            .is_empty()
            && live_addresses(sb).is_empty())
    })
    .await
    .with_context(|| format!("left after {after}: {:?}", live_addresses(sb)))
}

/// The notes of the events about an object, by reason.
async fn events_about(client: &Client, ns: &str, name: &str) -> Result<Vec<(String, String)>> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    Ok(events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect())
}

#[tokio::test]
async fn each_pod_of_a_deployment_gets_its_own_ip_and_gives_it_back() -> Result<()> {
    let sb = opted_in("wl-deployment").await?;
    let deployments: Api<Deployment> = sb.ns.api();
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": template("web", json!({ TAGS: r#"{"owner":"team a","env":"prod"}"# })),
        },
    }))?;
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    let pods: Api<Pod> = sb.ns.api();
    let web = ListParams::default().labels("app=web");
    wait_until(WAIT, || async {
        Ok(pods.list(&web).await?.items.len() == 2)
    })
    .await?;
    let names: Vec<String> = pods
        .list(&web)
        .await?
        .iter()
        .map(|p| p.name_any())
        .collect();
    let mut addresses = Vec::new();
    for name in &names {
        let address = wait_pod_shows_ip(&pods, name).await?;
        let rip = sb.rips().get(name).await?;
        let (ip, state, uid) = reported(&rip);
        let pod = pods.get(name).await?;
        ensure!(
            ip.as_deref() == Some(address.as_str()),
            "pod shows {address}, ReservedIP {ip:?}"
        );
        ensure!(state == Some(State::Assigned) && uid == pod.uid());
        // Owned by the pod, so the garbage collector deletes it with the pod.
        let owner = rip.owner_references().first().context("no owner")?;
        ensure!(owner.kind == "Pod" && Some(&owner.uid) == pod.uid().as_ref());
        ensure!(rip.labels().get(GENERATED_BY).map(String::as_str) == Some("pod"));
        // The annotation's tags are on the OCI public IP.
        let id = rip.status.and_then(|s| s.public_ip_id).context("no OCID")?;
        let oci = sb.public_ip(&id).context("not in OCI")?;
        ensure!(oci["freeformTags"]["owner"] == "team a" && oci["freeformTags"]["env"] == "prod");
        let events = events_about(&sb.client, sb.ns.name(), name).await?;
        ensure!(
            events.iter().any(|(r, _)| r == "ReservedIPCreated")
                && events
                    .iter()
                    .any(|(r, n)| r == "PublicIPAssigned" && n.contains(&address)),
            "events: {events:?}"
        );
        addresses.push(address);
    }
    addresses.sort();
    ensure!(addresses[0] != addresses[1], "two pods share {addresses:?}");
    ensure!(
        live_addresses(&sb) == addresses,
        "OCI holds {:?}",
        live_addresses(&sb)
    );
    // Scaled to zero: the pods go, their ReservedIPs with them, the IPs are released.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "replicas": 0 } })),
        )
        .await?;
    wait_all_released(&sb, WAIT, "scaling to zero").await?;
    deployments.delete("web", &DeleteParams::default()).await?;
    sb.finish().await
}

/// A role that may create and read pods, and nothing else.
async fn pod_creator(sb: &OperatorSandbox, user: &str) -> Result<Client> {
    let role: Role = serde_json::from_value(json!({
        "metadata": { "name": "pod-creator" },
        "rules": [{ "apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list"] }],
    }))?;
    sb.ns
        .api::<Role>()
        .create(&PostParams::default(), &role)
        .await?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "pod-creator" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-creator" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user }],
    }))?;
    sb.ns
        .api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await?;
    let mut config = kube::Config::infer().await?;
    config.auth_info.impersonate = Some(user.to_string());
    Ok(Client::try_from(config)?)
}

#[tokio::test]
async fn pods_get_nothing_where_the_namespace_did_not_opt_in() -> Result<()> {
    let sb = OperatorSandbox::start("wl-opt-in").await?;
    let client = pod_creator(&sb, "pod-creator").await?;
    let as_user_rips: Api<ReservedIP> = Api::namespaced(client.clone(), sb.ns.name());
    let refused = as_user_rips
        .create(
            &PostParams::default(),
            &serde_yaml::from_str(&integration_tests::rip_yaml("direct", None))?,
        )
        .await;
    ensure!(
        matches!(&refused, Err(kube::Error::Api(e)) if e.code == 403),
        "the user may create ReservedIPs: {refused:?}"
    );
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "sneaky", "labels": { WANTS_IP: "true" } },
        "spec": {
            "containers": [{ "name": "app", "image": "registry.example/app:1" }],
            "readinessGates": [{ "conditionType": READY_CONDITION }],
        },
    }))?;
    let as_user_pods: Api<Pod> = Api::namespaced(client, sb.ns.name());
    as_user_pods.create(&PostParams::default(), &pod).await?;
    // The pod is told why, by an Event and its condition.
    let pods: Api<Pod> = sb.ns.api();
    let shown = wait_for(&pods, "sneaky", WAIT, |p: Option<&Pod>| {
        p.and_then(gate)
            .is_some_and(|(status, reason, _)| status == "False" && reason == "NamespaceNotOptedIn")
    })
    .await?;
    let (_, _, message) = gate(&shown).context("condition")?;
    ensure!(message.contains(WORKLOAD_IPS), "{message}");
    let events = events_about(&sb.client, sb.ns.name(), "sneaky").await?;
    ensure!(
        events
            .iter()
            .any(|(r, n)| r == "NamespaceNotOptedIn" && n.contains(WORKLOAD_IPS)),
        "events: {events:?}"
    );
    ensure!(
        sb.rips()
            .list(&ListParams::default())
            .await?
            .items
            .is_empty()
    );
    ensure!(sb.ours().is_empty(), "OCI: {:?}", sb.ours());
    ensure!(sb.calls("CreatePublicIp") == 0, "CreatePublicIp was called");
    // The platform team opts the namespace in: applied at once.
    sb.grant(WORKLOAD_IPS, Some("true")).await?;
    let address = wait_pod_shows_ip(&pods, "sneaky").await?;
    ensure!(live_addresses(&sb) == std::slice::from_ref(&address));
    pods.delete("sneaky", &DeleteParams::default()).await?;
    wait_until(WAIT, || async {
        Ok(sb.rips().get_opt("sneaky").await?.is_none() && live_addresses(&sb).is_empty())
    })
    .await
    .context("the pod's IP outlived it")?;
    sb.finish().await
}

#[tokio::test]
async fn grants_and_bad_annotations_apply_to_generated_ips() -> Result<()> {
    let sb = opted_in("wl-rules").await?;
    let pods: Api<Pod> = sb.ns.api();
    let labelled = |name: &str, annotations: Value| -> Result<Pod> {
        Ok(serde_json::from_value(json!({
            "metadata": { "name": name, "labels": { WANTS_IP: "true" }, "annotations": annotations },
            "spec": { "containers": [{ "name": "app", "image": "registry.example/app:1" }] },
        }))?)
    };
    // A reserved tag key: refused before anything is created.
    pods.create(
        &PostParams::default(),
        &labelled(
            "bad-tags",
            json!({ TAGS: r#"{"k8s-oci-operator-uid":"x"}"# }),
        )?,
    )
    .await?;
    // A pool the namespace is not granted: the ReservedIP is made, and the
    // grant check (the same as for a hand-made one) refuses to allocate.
    pods.create(
        &PostParams::default(),
        &labelled("pooled", json!({ POOL_ANNOTATION: POOL }))?,
    )
    .await?;
    let shown = wait_for(&pods, "bad-tags", WAIT, |p: Option<&Pod>| {
        p.and_then(gate)
            .is_some_and(|(_, reason, _)| reason == "InvalidAnnotation")
    })
    .await?;
    ensure!(
        gate(&shown).is_some_and(|(_, _, m)| m.contains("reserved")),
        "{:?}",
        gate(&shown)
    );
    ensure!(sb.rips().get_opt("bad-tags").await?.is_none());
    let rip = wait_refused(&sb, "pooled").await?;
    let ready = integration_tests::condition(&rip, "Ready")?;
    let shown = wait_for(&pods, "pooled", WAIT, |p: Option<&Pod>| {
        p.and_then(gate)
            .is_some_and(|(s, reason, _)| s == "False" && reason == ready.reason)
    })
    .await?;
    ensure!(
        gate(&shown).is_some_and(|(_, _, m)| m.contains(&ready.message)),
        "the pod does not say why: {:?} vs {}",
        gate(&shown),
        ready.message
    );
    ensure!(sb.ours().is_empty(), "OCI: {:?}", sb.ours());
    for name in ["bad-tags", "pooled"] {
        pods.delete(name, &DeleteParams::default()).await?;
    }
    wait_until(WAIT, || async {
        Ok(sb
            .rips()
            .list(&ListParams::default())
            .await?
            .items
            .is_empty())
    })
    .await?;
    sb.finish().await
}

/// Waits until exactly the pods `names` of the StatefulSet exist.
async fn wait_pods(sb: &OperatorSandbox, app: &str, names: &[&str]) -> Result<()> {
    wait_until(WAIT, || async { Ok(sb.pods_of(app).await? == names) })
        .await
        .with_context(|| format!("pods of {app} are not {names:?}"))
}

#[tokio::test]
async fn a_statefulset_keeps_its_addresses_through_restarts_and_scaling() -> Result<()> {
    let sb = opted_in("wl-sts").await?;
    let sts: Api<StatefulSet> = sb.ns.api();
    let pods: Api<Pod> = sb.ns.api();
    sts.create(&PostParams::default(), &statefulset("db", 3, json!({}))?)
        .await?;
    let names = ["db-0", "db-1", "db-2"];
    let mut addresses = BTreeMap::new();
    for name in names {
        let address = sb.wait_on_current_pod(name, WAIT).await?;
        ensure!(wait_pod_shows_ip(&pods, name).await? == address);
        let rip = sb.rips().get(name).await?;
        let owner = rip.owner_references().first().context("no owner")?;
        ensure!(owner.kind == "StatefulSet" && owner.name == "db");
        addresses.insert(name, address);
    }
    let all: Vec<String> = {
        let mut v: Vec<String> = addresses.values().cloned().collect();
        v.sort();
        v
    };
    ensure!(live_addresses(&sb) == all);
    let creates = sb.calls("CreatePublicIp");
    // A pod deleted comes back (new UID) and gets its address back.
    let old_uid = pods.get("db-1").await?.uid();
    pods.delete("db-1", &DeleteParams::default()).await?;
    wait_until(WAIT, || async {
        Ok(pods
            .get_opt("db-1")
            .await?
            .is_some_and(|p| p.uid() != old_uid))
    })
    .await?;
    ensure!(sb.wait_on_current_pod("db-1", WAIT).await? == addresses["db-1"]);
    // 3 -> 1: the scaled-away ordinals keep their addresses, unassigned.
    scale(&sts, "db", 1).await?;
    wait_pods(&sb, "db", &["db-0"]).await?;
    for name in ["db-1", "db-2"] {
        let rip = wait_in_state(&sb, name, State::Allocated).await?;
        ensure!(reported(&rip).0.as_deref() == Some(addresses[name].as_str()));
    }
    ensure!(live_addresses(&sb) == all, "OCI: {:?}", live_addresses(&sb));
    // 1 -> 3: the same addresses again.
    scale(&sts, "db", 3).await?;
    for name in names {
        ensure!(
            sb.wait_on_current_pod(name, WAIT).await? == addresses[name],
            "{name} came back with another address"
        );
    }
    ensure!(live_addresses(&sb) == all, "OCI: {:?}", live_addresses(&sb));
    ensure!(
        sb.calls("CreatePublicIp") == creates,
        "a scale cycle or restart created public IPs"
    );
    // Deleted (whenDeleted: Delete, the default): released with it.
    sts.delete("db", &DeleteParams::default()).await?;
    wait_all_released(&sb, Duration::from_secs(90), "the StatefulSet").await?;
    sb.finish().await
}

#[tokio::test]
async fn a_statefulset_can_release_on_scale_down_and_retain_on_delete() -> Result<()> {
    let sb = opted_in("wl-sts-retain").await?;
    let sts: Api<StatefulSet> = sb.ns.api();
    let annotations = json!({ WHEN_SCALED: "Delete", WHEN_DELETED: "Retain" });
    sts.create(
        &PostParams::default(),
        &statefulset("cache", 2, annotations.clone())?,
    )
    .await?;
    let first = sb.wait_on_current_pod("cache-0", WAIT).await?;
    let second = sb.wait_on_current_pod("cache-1", WAIT).await?;
    // Retained on delete: not owned by the StatefulSet.
    let kept = sb.rips().get("cache-0").await?;
    ensure!(
        kept.owner_references().is_empty(),
        "owned: {:?}",
        kept.owner_references()
    );
    // 2 -> 1: cache-1's IP is released once its pod is gone.
    scale(&sts, "cache", 1).await?;
    wait_until(WAIT, || async {
        Ok(sb.rips().get_opt("cache-1").await?.is_none() && live_addresses(&sb) == [first.clone()])
    })
    .await
    .with_context(|| format!("cache-1 ({second}) not released: {:?}", live_addresses(&sb)))?;
    let events = events_about(&sb.client, sb.ns.name(), "cache").await?;
    ensure!(
        events
            .iter()
            .any(|(r, n)| r == "ReservedIPDeleted" && n.contains("cache-1")),
        "events: {events:?}"
    );
    // Deleted: cache-0 stays with its address; a new StatefulSet of the
    // same name takes it up again.
    sts.delete("cache", &DeleteParams::default()).await?;
    wait_pods(&sb, "cache", &[]).await?;
    let kept = wait_in_state(&sb, "cache-0", State::Allocated).await?;
    ensure!(reported(&kept).0.as_deref() == Some(first.as_str()));
    ensure!(live_addresses(&sb) == std::slice::from_ref(&first));
    sts.create(
        &PostParams::default(),
        &statefulset("cache", 1, annotations)?,
    )
    .await?;
    ensure!(sb.wait_on_current_pod("cache-0", WAIT).await? == first);
    sts.delete("cache", &DeleteParams::default()).await?;
    wait_pods(&sb, "cache", &[]).await?;
    sb.finish().await
}

#[tokio::test]
async fn a_statefulset_outside_an_opted_in_namespace_gets_nothing() -> Result<()> {
    let sb = OperatorSandbox::start("wl-sts-opt-in").await?;
    let sts: Api<StatefulSet> = sb.ns.api();
    sts.create(&PostParams::default(), &statefulset("db", 1, json!({}))?)
        .await?;
    wait_until(WAIT, || async {
        Ok(events_about(&sb.client, sb.ns.name(), "db")
            .await?
            .iter()
            .any(|(r, n)| r == "NamespaceNotOptedIn" && n.contains(WORKLOAD_IPS)))
    })
    .await
    .context("no event says why")?;
    ensure!(
        sb.rips()
            .list(&ListParams::default())
            .await?
            .items
            .is_empty()
    );
    ensure!(sb.ours().is_empty());
    sts.delete("db", &DeleteParams::default()).await?;
    sb.finish().await
}

/// `kubectl <verb> -n <ns> -f examples/workloads/<file>`, as a user would.
/// Run without blocking: the operator works on this test's runtime, and
/// `kubectl delete` waits for it to release the ReservedIPs.
async fn kubectl_examples(verb: &str, ns: &str, file: &str) -> Result<()> {
    let path = integration_tests::repo_root()
        .join("examples/workloads")
        .join(file);
    let out = tokio::process::Command::new("kubectl")
        .args([verb, "-n", ns, "-f"])
        .arg(&path)
        .output()
        .await
        .context("running kubectl (source .sandbox/test/env first)")?;
    ensure!(
        out.status.success(),
        "kubectl {verb} -f {file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn the_workload_examples_work_as_written() -> Result<()> {
    let sb = OperatorSandbox::start("wl-examples").await?;
    let ns = sb.ns.name().to_string();
    sb.grant(WORKLOAD_IPS, Some("true")).await?;
    sb.grant(k8s_oci_operator::decide::tenancy::NODE_IPS, Some("true"))
        .await?;
    let files = [
        "deployment.yaml",
        "statefulset.yaml",
        "floating-ip.yaml",
        "node-ip.yaml",
    ];
    for file in files {
        kubectl_examples("apply", &ns, file).await?;
    }
    let pods: Api<Pod> = sb.ns.api();
    // The Deployment's two pods, each with its IP shown on it.
    wait_until(WAIT, || async { Ok(sb.pods_of("web").await?.len() == 2) }).await?;
    for pod in sb.pods_of("web").await? {
        let address = sb.wait_on_current_pod(&pod, WAIT).await?;
        ensure!(wait_pod_shows_ip(&pods, &pod).await? == address);
    }
    for ordinal in 0..3 {
        sb.wait_on_current_pod(&format!("db-{ordinal}"), WAIT)
            .await?;
    }
    let floating = wait_in_state(&sb, "primary-db", State::Assigned).await?;
    ensure!(
        floating
            .status
            .as_ref()
            .and_then(|s| s.pod_name.as_deref())
            .is_some_and(|p| p.starts_with("primary-db-")),
        "{:?}",
        floating.status
    );
    let node = wait_in_state(&sb, "node-egress", State::Assigned).await?;
    ensure!(
        node.status
            .as_ref()
            .and_then(|s| s.private_ip_address.as_deref())
            == Some("10.0.0.11")
    );
    for file in files {
        kubectl_examples("delete", &ns, file).await?;
    }
    wait_until(Duration::from_secs(90), || async {
        Ok(sb
            .rips()
            .list(&ListParams::default())
            .await?
            .items
            .is_empty())
    })
    .await
    .context("the examples' ReservedIPs were not released")?;
    sb.finish().await
}
