//! WebAssembly policies loaded from ConfigMaps through the API watch, end to
//! end: tag defaults and enforced tags reach OCI, eligibility denies an
//! unlabelled pod (and the pod's label change lets it through), a changed
//! ConfigMap takes effect without restart (the delay is printed), and a broken
//! update keeps the last good version running.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use integration_tests::{OperatorSandbox, built_policies, condition};
use k8s_oci_operator::api::crd::State;
use k8s_oci_operator::policy::configmap::{POLICY_LABEL, watch_configmaps};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use test_support::{TestNamespace, wait_until};

fn policy_configmap(name: &str, module: &[u8], settings: serde_json::Value) -> Result<ConfigMap> {
    let mut cm: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { POLICY_LABEL: "true" } },
        "data": { "order": "0", "failureMode": "deny", "settings": settings.to_string() }
    }))?;
    cm.binary_data = Some(BTreeMap::from([(
        "policy.wasm.gz".to_string(),
        ByteString(module.to_vec()),
    )]));
    Ok(cm)
}

/// The example eligibility policy, letting only pods labelled
/// `public-ip: "true"` have a public IP.
fn only_labelled(dir: &std::path::Path) -> Result<ConfigMap> {
    let module = std::fs::read(dir.join("pod-label-eligibility.wasm.gz"))?;
    policy_configmap(
        "only-labelled",
        &module,
        json!({"podLabel": "public-ip", "podLabelValue": "true"}),
    )
}

async fn apply(api: &Api<ConfigMap>, cm: &ConfigMap) -> Result<()> {
    let name = cm.metadata.name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply("policy-test").force(),
        &Patch::Apply(cm),
    )
    .await?;
    Ok(())
}

/// A namespace standing for the operator's (the only place policies are read
/// from), its ConfigMaps, and the operator's watch of them feeding the
/// sandbox's engine.
async fn watch_policies(
    sb: &OperatorSandbox,
    name: &str,
) -> Result<(TestNamespace, Api<ConfigMap>, tokio::task::JoinHandle<()>)> {
    let operator_ns = TestNamespace::create(&sb.client, name).await?;
    let cms: Api<ConfigMap> = operator_ns.api();
    let watch = tokio::spawn(watch_configmaps(
        sb.policy.clone(),
        sb.client.clone(),
        operator_ns.name().to_string(),
        POLICY_LABEL.to_string(),
    ));
    Ok((operator_ns, cms, watch))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_from_configmaps_decide_tags_and_eligibility_and_reload_live() -> Result<()> {
    let dir = built_policies()?;
    let sb = OperatorSandbox::start("policy").await?;
    let (operator_ns, cms, watch) = watch_policies(&sb, "policy-operator").await?;
    let loaded = |name: &'static str| {
        let engine = sb.policy.clone();
        move || {
            let engine = engine.clone();
            async move {
                Ok(engine
                    .status()
                    .iter()
                    .any(|p| p.name == name && p.version.is_some()))
            }
        }
    };

    let tags_module = std::fs::read(dir.join("tag-defaults.wasm.gz"))?;
    apply(&cms, &policy_configmap("tags", &tags_module, json!({"defaults": {"cost-center": "shared"}, "enforced": {"managed-by": "platform-team"}}))?).await?;
    apply(&cms, &only_labelled(&dir)?).await?;
    wait_until(Duration::from_secs(30), loaded("tags"))
        .await
        .context("tags policy never loaded")?;
    wait_until(Duration::from_secs(30), loaded("only-labelled"))
        .await
        .context("eligibility policy never loaded")?;

    // Tag defaults and enforced tags.
    sb.running_pod("web", None).await?;
    sb.create("apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: r\nspec:\n  tags:\n    owner: My team\n    managed-by: me\n  assignment:\n    podName: web\n").await?;
    let rip = sb.wait_state("r", State::Allocated, false).await?;
    let status = rip.status.clone().context("status")?;
    let ip = sb
        .public_ip(status.public_ip_id.as_deref().unwrap_or_default())
        .context("ip")?;
    assert_eq!(
        ip["freeformTags"]["cost-center"], "shared",
        "default tag added: {ip}"
    );
    assert_eq!(ip["freeformTags"]["owner"], "My team", "user tag kept");
    assert_eq!(
        ip["freeformTags"]["managed-by"], "platform-team",
        "enforced tag wins over the user's"
    );
    // Eligibility: the pod has no public-ip=true label.
    let ready = condition(&rip, "Ready")?;
    assert_eq!(ready.reason, "PolicyDenied");
    assert!(
        ready.message.contains("only-labelled"),
        "names the policy: {}",
        ready.message
    );
    assert!(
        status
            .policies
            .iter()
            .any(|v| v.policy == "only-labelled" && v.decision == "eligibility"),
        "{:?}",
        status.policies
    );
    assert!(
        status
            .policies
            .iter()
            .any(|v| v.policy == "tags" && v.decision == "tagDefaults"),
        "{:?}",
        status.policies
    );

    // Labelling the pod lets the assignment through (the pod's change triggers it).
    let pods: Api<Pod> = sb.ns.api();
    pods.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"public-ip": "true"}}})),
    )
    .await?;
    sb.wait_state("r", State::Assigned, true).await?;

    // Hot reload: new settings take effect without a restart.
    let changed = Instant::now();
    let before = sb
        .policy
        .status()
        .into_iter()
        .find(|p| p.name == "tags")
        .and_then(|p| p.version);
    apply(
        &cms,
        &policy_configmap(
            "tags",
            &tags_module,
            json!({"defaults": {"cost-center": "shared"}, "enforced": {"managed-by": "team-b"}}),
        )?,
    )
    .await?;
    let id = status.public_ip_id.clone().unwrap_or_default();
    wait_until(Duration::from_secs(30), || async {
        Ok(sb
            .public_ip(&id)
            .is_some_and(|ip| ip["freeformTags"]["managed-by"] == "team-b"))
    })
    .await
    .context("the changed policy never retagged the IP")?;
    println!(
        "policy ConfigMap change to retagged IP in OCI: {:.2} s (module version {before:?} kept, settings changed)",
        changed.elapsed().as_secs_f64()
    );

    // A broken update keeps the last good version.
    apply(
        &cms,
        &policy_configmap("tags", b"not a wasm module", json!({}))?,
    )
    .await?;
    wait_until(Duration::from_secs(30), || async {
        Ok(sb
            .policy
            .status()
            .iter()
            .any(|p| p.name == "tags" && p.error.is_some()))
    })
    .await?;
    let tags = sb
        .policy
        .status()
        .into_iter()
        .find(|p| p.name == "tags")
        .context("tags policy")?;
    assert!(
        tags.version.is_some(),
        "last good version still active: {tags:?}"
    );
    let events = operator_ns
        .api::<k8s_openapi::api::events::v1::Event>()
        .list(&Default::default())
        .await?;
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("PolicyRefused")),
        "a PolicyRefused event on the ConfigMap"
    );

    // Pool per team: a namespace labelled team=payments draws from its pool.
    let pool_module = std::fs::read(dir.join("team-pool.wasm.gz"))?;
    let mut pool_cm = policy_configmap(
        "team-pool",
        &pool_module,
        json!({"teamLabel": "team", "pools": {"payments": integration_tests::POOL}}),
    )?;
    pool_cm.data.get_or_insert_default().insert(
        "namespaceSelector".into(),
        "matchExpressions: [{key: team, operator: Exists}]".into(),
    );
    apply(&cms, &pool_cm).await?;
    wait_until(Duration::from_secs(30), loaded("team-pool"))
        .await
        .context("team-pool never loaded")?;
    label_namespace(&sb, "team", Some("payments")).await?;
    sb.create("apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: pooled\nspec: {}\n").await?;
    let pooled = sb.wait_state("pooled", State::Allocated, true).await?;
    let pooled_status = pooled.status.context("status")?;
    assert!(
        pooled_status
            .public_ip_address
            .as_deref()
            .is_some_and(|a| a.starts_with("203.0.113.")),
        "allocated from the team's pool: {:?}",
        pooled_status.public_ip_address
    );
    assert!(
        pooled_status
            .policies
            .iter()
            .any(|v| v.policy == "team-pool" && v.decision == "pool"),
        "{:?}",
        pooled_status.policies
    );

    // A hostile policy (loops forever) for namespaces labelled hostile=true:
    // its decisions fail (deadline), the assignment is denied and says why,
    // and the operator keeps reconciling.
    apply(&cms, &hostile_configmap()?).await?;
    wait_until(Duration::from_secs(30), loaded("hostile"))
        .await
        .context("hostile policy never loaded")?;
    label_namespace(&sb, "hostile", Some("true")).await?;
    wait_until(Duration::from_secs(30), || async {
        let r = sb.rips().get("r").await?;
        let cond = r
            .status
            .as_ref()
            .and_then(|s| k8s_oci_operator::api::conditions::get(&s.conditions, "Ready").cloned());
        Ok(cond.is_some_and(|c| c.reason == "PolicyDenied" && c.message.contains("hostile")))
    })
    .await
    .context("the looping policy's failure never surfaced")?;
    // The IP is taken off the pod while its eligibility cannot be decided.
    sb.wait_state("r", State::Allocated, false).await?;
    // Meanwhile the others are reconciled as usual: a new ReservedIP is allocated.
    sb.create("apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: meanwhile\nspec: {}\n").await?;
    sb.wait_state("meanwhile", State::Allocated, true).await?;
    // Removing the hostile policy restores the assignment.
    cms.delete("hostile", &Default::default()).await?;
    sb.wait_state("r", State::Assigned, true).await?;

    watch.abort();
    sb.finish().await
}

/// Rolling a policy out: in audit mode it is evaluated and reported in the
/// ReservedIP's status, and the assignment it would deny goes through; a
/// ConfigMap pinning another module's digest is refused with an event that
/// says so, and the audited version keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audited_policy_is_reported_and_applies_nothing() -> Result<()> {
    let dir = built_policies()?;
    let sb = OperatorSandbox::start("policy-audit").await?;
    let (operator_ns, cms, watch) = watch_policies(&sb, "policy-audit-operator").await?;
    let module = std::fs::read(dir.join("pod-label-eligibility.wasm.gz"))?;
    let mut cm = policy_configmap("labelled-audit", &module, json!({"podLabel": "public-ip"}))?;
    cm.data
        .get_or_insert_default()
        .insert("mode".into(), "audit".into());
    apply(&cms, &cm).await?;
    wait_until(Duration::from_secs(30), || async {
        Ok(sb.policy.status().iter().any(|p| {
            p.name == "labelled-audit" && p.mode == Some(k8s_oci_operator::policy::Mode::Audit)
        }))
    })
    .await
    .context("the audited policy never loaded")?;

    // The pod lacks the label: enforced, the policy would deny it.
    sb.running_pod("web", None).await?;
    sb.create("apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: r\nspec:\n  assignment:\n    podName: web\n").await?;
    let rip = sb.wait_state("r", State::Assigned, true).await?;
    let policies = rip.status.context("status")?.policies;
    let audit = policies
        .iter()
        .find(|v| v.policy == "labelled-audit")
        .with_context(|| format!("no verdict of the audited policy: {policies:?}"))?;
    assert!(audit.audit, "{audit:?}");
    assert_eq!(
        (audit.decision.as_str(), audit.outcome.as_str()),
        ("eligibility", "deny"),
        "{audit:?}"
    );
    assert!(audit.message.contains("public-ip"), "{audit:?}");

    // A pinned digest that is not the module's: refused, the event says so.
    cm.data
        .get_or_insert_default()
        .insert("sha256".into(), "0".repeat(64));
    apply(&cms, &cm).await?;
    let events = operator_ns.api::<k8s_openapi::api::events::v1::Event>();
    let digest = "0".repeat(64);
    let naming_the_digest = ["pins", digest.as_str()];
    wait_until(Duration::from_secs(30), || {
        refused_saying(&events, &naming_the_digest)
    })
    .await
    .context("no PolicyRefused event naming the pinned digest")?;
    // Another refusal of the same ConfigMap says its own reason (an event
    // of the same reason is not a repeat of the first).
    cm.data
        .get_or_insert_default()
        .insert("failuremode".into(), "allow".into());
    apply(&cms, &cm).await?;
    wait_until(Duration::from_secs(30), || {
        refused_saying(&events, &["unknown key `failuremode`"])
    })
    .await
    .context("the second refusal's event does not give its own reason")?;
    assert!(
        sb.policy
            .status()
            .iter()
            .any(|p| p.name == "labelled-audit" && p.version.is_some() && p.error.is_some()),
        "the audited version keeps running: {:?}",
        sb.policy.status()
    );
    watch.abort();
    sb.finish().await
}

/// Whether a `PolicyRefused` event's note contains every one of `parts`.
async fn refused_saying(
    events: &Api<k8s_openapi::api::events::v1::Event>,
    parts: &[&str],
) -> Result<bool> {
    Ok(events
        .list(&Default::default())
        .await?
        .items
        .iter()
        .any(|e| {
            e.reason.as_deref() == Some("PolicyRefused")
                && e.note
                    .as_deref()
                    .is_some_and(|n| parts.iter().all(|p| n.contains(p)))
        }))
}

async fn label_namespace(sb: &OperatorSandbox, key: &str, value: Option<&str>) -> Result<()> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(sb.client.clone());
    let patch = json!({ "metadata": { "labels": { key: value } } });
    namespaces
        .patch(sb.ns.name(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// A policy that answers eligibility by looping forever.
fn hostile_configmap() -> Result<ConfigMap> {
    let module = wat::parse_str(
        r#"(module
            (memory (export "memory") 1)
            (func (export "policy_abi_version") (result i32) i32.const 1)
            (func (export "policy_decisions") (result i32) i32.const 8)
            (func (export "policy_alloc") (param i32) (result i32) i32.const 1024)
            (func (export "policy_evaluate") (param i32 i32 i32) (result i64)
              (loop $forever (br $forever))
              i64.const 0))"#,
    )?;
    let mut cm: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "hostile", "labels": { POLICY_LABEL: "true" } },
        "data": { "failureMode": "deny", "namespaceSelector": "matchLabels: {hostile: \"true\"}" }
    }))?;
    cm.binary_data = Some(BTreeMap::from([(
        "policy.wasm".to_string(),
        ByteString(module),
    )]));
    Ok(cm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_decide_for_a_labelled_pods_ip_as_for_a_hand_made_one() -> Result<()> {
    use k8s_oci_operator::decide::tenancy::WORKLOAD_IPS;
    use k8s_oci_operator::workloads::{READY_CONDITION, WANTS_IP};
    let dir = built_policies()?;
    let sb = OperatorSandbox::start("policy-workload").await?;
    sb.grant(WORKLOAD_IPS, Some("true")).await?;
    let (operator_ns, cms, watch) = watch_policies(&sb, "policy-workload-operator").await?;
    let tags_module = std::fs::read(dir.join("tag-defaults.wasm.gz"))?;
    apply(
        &cms,
        &policy_configmap(
            "tags",
            &tags_module,
            json!({"defaults": {"cost-center": "shared"}}),
        )?,
    )
    .await?;
    apply(&cms, &only_labelled(&dir)?).await?;
    wait_until(Duration::from_secs(30), || async {
        Ok(sb
            .policy
            .status()
            .iter()
            .filter(|p| p.version.is_some())
            .count()
            == 2)
    })
    .await
    .context("the policies never loaded")?;
    // The pod asks the operator for an IP, but lacks the label the
    // eligibility policy wants.
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "web", "labels": { WANTS_IP: "true" } },
        "spec": { "containers": [{ "name": "app", "image": "registry.example/app:1" }] },
    }))?;
    let pods: Api<Pod> = sb.ns.api();
    pods.create(&Default::default(), &pod).await?;
    let denied = test_support::wait_for(
        &sb.rips(),
        "web",
        Duration::from_secs(30),
        |r: Option<&k8s_oci_operator::api::crd::ReservedIP>| {
            r.and_then(|r| condition(r, "Ready").ok())
                .is_some_and(|c| c.reason == "PolicyDenied")
        },
    )
    .await?;
    // The tag default reached OCI as for any ReservedIP.
    let id = denied
        .status
        .as_ref()
        .and_then(|s| s.public_ip_id.clone())
        .context("no IP held")?;
    let ip = sb.public_ip(&id).context("ip")?;
    assert_eq!(ip["freeformTags"]["cost-center"], "shared", "{ip}");
    // The pod says why it has no IP.
    test_support::wait_for(&pods, "web", Duration::from_secs(30), |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.type_ == READY_CONDITION
                        && c.status == "False"
                        && c.reason.as_deref() == Some("PolicyDenied")
                        && c.message
                            .as_deref()
                            .is_some_and(|m| m.contains("only-labelled"))
                })
            })
    })
    .await
    .context("the pod does not show the denial")?;
    // Labelled as the policy wants: assigned.
    pods.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"public-ip": "true"}}})),
    )
    .await?;
    sb.wait_state("web", State::Assigned, true).await?;
    pods.delete("web", &Default::default()).await?;
    wait_until(Duration::from_secs(30), || async {
        Ok(sb.rips().get_opt("web").await?.is_none())
    })
    .await?;
    watch.abort();
    drop(operator_ns);
    sb.finish().await
}
