//! The tenancy table: a hostile tenant ("team-b", impersonated, with only
//! the recommended tenant Role of `examples/tenant-role.yaml`) tries every
//! way to expose, take or destroy what it does not own. Each attack records
//! a row (`integration_tests::tenancy_report`): refused or not, why, and
//! whether OCI stayed untouched: every public IP that is not the tenant's own
//! is exactly as before, and the tenant's own are assigned nowhere.
//!
//! Then the doors: what the platform team opens deliberately (private IP
//! ranges, node IPs, handed-over addresses, pools) works.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use integration_tests::tenancy_report::{TenancyRow, record};
use integration_tests::{OperatorSandbox, POOL, SPECIFIC_ADDRESS, SPECIFIC_ID, condition};
use k8s_oci_operator::api::crd::{ReservedIP, State};
use k8s_oci_operator::config::DEFAULT_MAX_RESERVED_IPS_PER_NAMESPACE;
use k8s_oci_operator::decide::ownership::{
    TAG_CLAIMABLE_BY, TAG_CLUSTER, TAG_NAME, TAG_NAMESPACE, TAG_UID,
};
use k8s_oci_operator::decide::tenancy::{NODE_IPS, PRIVATE_IP_TARGETS, PUBLIC_IP_POOLS};
use k8s_oci_operator::oci::{CreatePublicIpDetails, OciNetwork};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use test_support::{TestNamespace, wait_for, wait_until};

/// team-b's sandbox: the operator, the tenant's own API access, and a
/// victim namespace (team-a) with a running pod.
struct Arena {
    sb: OperatorSandbox,
    tenant: Api<ReservedIP>,
    victim: TestNamespace,
    victim_pod_ip: String,
    /// Private IPs of the tenant's own pods: the only places its IPs may be.
    own_targets: Vec<String>,
}

impl Arena {
    async fn start(test: &str) -> Result<Self> {
        let sb = OperatorSandbox::start(test).await?;
        let tenant = Api::namespaced(sb.tenant_client("team-b").await?, sb.ns.name());
        let victim = TestNamespace::create(&sb.client, "team-a").await?;
        let victim_pod_ip = running_pod(&victim, "victim").await?;
        Ok(Self {
            sb,
            tenant,
            victim,
            victim_pod_ip,
            own_targets: Vec::new(),
        })
    }

    /// Creates a ReservedIP as the tenant.
    async fn attack(&self, name: &str, spec: &str) -> Result<ReservedIP> {
        let yaml = format!(
            "apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: {name}\nspec:\n  tags:\n    owner: team-b\n{spec}"
        );
        let rip: ReservedIP = serde_yaml::from_str(&yaml)?;
        Ok(self.tenant.create(&PostParams::default(), &rip).await?)
    }

    /// Every public IP that is not the tenant's own, as OCI holds it.
    fn others(&self) -> BTreeMap<String, Value> {
        self.sb
            .public_ips()
            .into_iter()
            .filter(|ip| !self.is_tenants(ip))
            .filter_map(|ip| Some((ip["id"].as_str()?.to_string(), ip)))
            .collect()
    }

    fn is_tenants(&self, ip: &Value) -> bool {
        let tags = &ip["freeformTags"];
        tags[TAG_CLUSTER] == self.sb.cluster_id.as_str() && tags[TAG_NAMESPACE] == self.sb.ns.name()
    }

    /// OCI untouched: the others' IPs as `before`, the tenant's assigned
    /// nowhere but to its own pods.
    fn untouched(&self, before: &BTreeMap<String, Value>) -> bool {
        let now = self.others();
        let unassigned = self
            .sb
            .public_ips()
            .iter()
            .filter(|ip| self.is_tenants(ip))
            .all(|ip| {
                let ok = ip["assignedEntityId"]
                    .as_str()
                    .is_none_or(|on| self.own_targets.iter().any(|t| t == on));
                if !ok {
                    println!("the tenant's IP is assigned: {ip}");
                }
                ok
            });
        if &now != before {
            for (id, ip) in &now {
                let was = before.get(id).cloned().unwrap_or_default();
                if &was != ip {
                    let fields = ip.as_object().into_iter().flatten();
                    let changed: Vec<String> = fields
                        .filter(|(k, v)| was.get(k.as_str()) != Some(v))
                        .map(|(k, v)| format!("{k}: {} -> {v}", was[k.as_str()]))
                        .collect();
                    println!("changed {id}: {}", changed.join(", "));
                }
            }
            for id in before.keys().filter(|id| !now.contains_key(*id)) {
                println!("gone: {id}");
            }
        }
        &now == before && unassigned
    }

    /// Waits until ReservedIP `name` is refused with `reason`, then (after a
    /// resync, when the operator would act again) records the row.
    async fn expect_refused(
        &self,
        attack: &str,
        name: &str,
        reason: &str,
        before: &BTreeMap<String, Value>,
    ) -> Result<()> {
        let seen = wait_for(
            &self.sb.rips(),
            name,
            Duration::from_secs(30),
            |r: Option<&ReservedIP>| {
                r.and_then(|r| r.status.as_ref()).is_some_and(|s| {
                    k8s_oci_operator::api::conditions::get(&s.conditions, "Ready")
                        .is_some_and(|c| c.reason == reason)
                })
            },
        )
        .await;
        // One resync (5 s in tests): nothing happens later either.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let ready = self
            .sb
            .rips()
            .get(name)
            .await
            .ok()
            .and_then(|r| condition(&r, "Ready").ok());
        let row = TenancyRow {
            attack: attack.to_string(),
            refused: seen.is_ok() && ready.as_ref().is_some_and(|c| c.reason == reason),
            reason: ready
                .map(|c| format!("{}: {}", c.reason, c.message))
                .unwrap_or_else(|| "no Ready condition".into()),
            oci_untouched: self.untouched(before),
        };
        self.finish_row(row)
    }

    /// An attack refused at admission: the API server's message.
    async fn expect_rejected(
        &self,
        attack: &str,
        result: Result<ReservedIP>,
        expect: &str,
        before: &BTreeMap<String, Value>,
    ) -> Result<()> {
        let (refused, reason) = match result {
            Ok(r) => (false, format!("accepted as {}", r.name_any())),
            Err(e) => (
                e.to_string().contains(expect),
                format!("admission: {}", short(&e.to_string())),
            ),
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let row = TenancyRow {
            attack: attack.to_string(),
            refused,
            reason,
            oci_untouched: self.untouched(before),
        };
        self.finish_row(row)
    }

    fn finish_row(&self, row: TenancyRow) -> Result<()> {
        record(&row)?;
        ensure!(row.held(), "attack got through: {row:?}");
        Ok(())
    }

    /// The emulator's private IP with this address.
    fn private_ip_id(&self, address: &str) -> Result<String> {
        self.sb.emulator.state()["privateIps"]
            .as_array()
            .and_then(|ips| ips.iter().find(|p| p["ipAddress"] == address))
            .and_then(|p| p["id"].as_str().map(str::to_string))
            .with_context(|| format!("no private IP {address} in the emulator"))
    }

    async fn finish(self) -> Result<()> {
        let Arena { sb, victim, .. } = self;
        drop(victim);
        sb.finish().await
    }
}

/// An API error without the Status it repeats.
fn short(message: &str) -> &str {
    message
        .split_once(" (Status {")
        .map_or(message, |(head, _)| head)
}

async fn running_pod(ns: &TestNamespace, name: &str) -> Result<String> {
    let pods: Api<Pod> = ns.api();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "containers": [{ "name": "app", "image": "registry.example/app:1" }] }
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let pod = wait_for(&pods, name, Duration::from_secs(30), |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref())
            .is_some_and(|s| s.phase.as_deref() == Some("Running") && s.pod_ip.is_some())
    })
    .await?;
    pod.status
        .and_then(|s| s.pod_ip)
        .context("pod without an IP")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_ip_targets_are_refused_by_default() -> Result<()> {
    let a = Arena::start("tenancy-targets").await?;
    // node1's primary IP without its ephemeral public IP (the only thing
    // that stopped this attack before).
    a.sb.remove_node1_ephemeral_ip().await?;
    let before = a.others();
    let cases = [
        (
            "privateIPAddress of a node's pod-VNIC primary IP",
            "  assignment:\n    privateIPAddress: 10.0.127.11\n    subnetId: ocid1.subnet.oc1.sandbox.pods\n",
        ),
        (
            "privateIPAddress of a node's primary IP, its ephemeral IP gone",
            "  assignment:\n    privateIPAddress: 10.0.0.11\n",
        ),
        (
            "privateIPAddress of a free IP another team's next pod gets",
            "  assignment:\n    privateIPAddress: 10.0.67.250\n    vnicId: ocid1.vnic.oc1.sandbox.node2-pods\n",
        ),
    ];
    for (i, (_, spec)) in cases.iter().enumerate() {
        a.attack(&format!("t{i}"), spec).await?;
    }
    let victim_ip_id = a.private_ip_id(&a.victim_pod_ip)?;
    a.attack(
        "other-pod",
        &format!("  assignment:\n    privateIPId: {victim_ip_id}\n"),
    )
    .await?;
    for (i, (attack, _)) in cases.iter().enumerate() {
        a.expect_refused(
            attack,
            &format!("t{i}"),
            "PrivateIPTargetNotAllowed",
            &before,
        )
        .await?;
    }
    a.expect_refused(
        "privateIPId of another team's pod",
        "other-pod",
        "PrivateIPTargetNotAllowed",
        &before,
    )
    .await?;
    a.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_ranges_never_reach_other_namespaces_or_the_operator() -> Result<()> {
    let mut a = Arena::start("tenancy-granted").await?;
    // The operator runs in its own namespace, with a pod of its own.
    let operator_ns = TestNamespace::create(&a.sb.client, "oci-operator").await?;
    let operator_pod_ip = running_pod(&operator_ns, "k8s-oci-operator-0").await?;
    a.sb.operator_namespace = Some(operator_ns.name().to_string());
    a.sb.start_operator()?;
    // The platform team lets team-b target the whole pods subnet, node IPs not.
    a.sb.grant(
        PRIVATE_IP_TARGETS,
        Some("ocid1.subnet.oc1.sandbox.pods, 10.0.0.0/24"),
    )
    .await?;
    let before = a.others();
    a.attack(
        "other-pod",
        &format!(
            "  assignment:\n    privateIPAddress: {}\n    subnetId: ocid1.subnet.oc1.sandbox.pods\n",
            a.victim_pod_ip
        ),
    )
    .await?;
    a.attack(
        "operator-pod",
        &format!(
            "  assignment:\n    privateIPAddress: {operator_pod_ip}\n    subnetId: ocid1.subnet.oc1.sandbox.pods\n"
        ),
    )
    .await?;
    a.attack(
        "node-ip",
        "  assignment:\n    privateIPAddress: 10.0.127.12\n    subnetId: ocid1.subnet.oc1.sandbox.pods\n",
    )
    .await?;
    a.expect_refused(
        "granted range: another team's pod's IP",
        "other-pod",
        "PrivateIPHeldByOtherNamespace",
        &before,
    )
    .await?;
    a.expect_refused(
        "granted range: the operator's own pod's IP",
        "operator-pod",
        "OperatorPod",
        &before,
    )
    .await?;
    a.expect_refused(
        "granted range: a node's VNIC primary IP",
        "node-ip",
        "NodeIPNotAllowed",
        &before,
    )
    .await?;
    a.finish().await?;
    drop(operator_ns);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_are_taken_over_only_when_handed_over() -> Result<()> {
    let a = Arena::start("tenancy-takeover").await?;
    let oci = a.sb.oci_client()?;
    // A platform address, tagged by its owner, never handed to anyone.
    let mut tags = oci.get_public_ip(SPECIFIC_ID).await?.freeform_tags;
    tags.insert("owner".into(), "platform".into());
    a.sb.tamper(SPECIFIC_ID, tags, false).await?;
    // An address team-a's ReservedIP retained (the operator leaves it claimable by team-a).
    let retained = platform_ip(&oci).await?;
    let tags = BTreeMap::from([(TAG_CLAIMABLE_BY.to_string(), a.victim.name().to_string())]);
    a.sb.tamper(&retained.0, tags, false).await?;
    // An address another ReservedIP (team-a's) holds.
    let held = platform_ip(&oci).await?;
    let tags = BTreeMap::from([
        (TAG_CLUSTER.to_string(), a.sb.cluster_id.clone()),
        (TAG_NAMESPACE.to_string(), a.victim.name().to_string()),
        (TAG_NAME.to_string(), "theirs".to_string()),
        (TAG_UID.to_string(), "uid-of-team-a".to_string()),
    ]);
    a.sb.tamper(&held.0, tags, false).await?;

    let before = a.others();
    a.attack(
        "platform",
        &format!("  publicIPv4Address: {SPECIFIC_ADDRESS}\n  reclaimPolicy: Delete\n"),
    )
    .await?;
    a.attack(
        "retained",
        &format!("  publicIPv4Address: {}\n", retained.1),
    )
    .await?;
    a.attack("held", &format!("  publicIPv4Address: {}\n", held.1))
        .await?;
    a.expect_refused(
        "publicIPv4Address of a platform address (tagged by its owner) + reclaimPolicy: Delete",
        "platform",
        "AddressNotClaimable",
        &before,
    )
    .await?;
    a.expect_refused(
        "publicIPv4Address of an address another team's ReservedIP retained",
        "retained",
        "AddressNotClaimable",
        &before,
    )
    .await?;
    a.expect_refused(
        "publicIPv4Address of another team's ReservedIP's address",
        "held",
        "AddressOwnedByOther",
        &before,
    )
    .await?;
    let held_msg = condition(&a.sb.rips().get("held").await?, "Ready")?.message;
    ensure!(
        !held_msg.contains(a.victim.name()) && !held_msg.contains("theirs"),
        "the refusal names the other namespace: {held_msg}"
    );
    // Deleting the refused ReservedIPs leaves the addresses as they were.
    for name in ["platform", "retained", "held"] {
        a.tenant.delete(name, &DeleteParams::default()).await?;
    }
    wait_until(Duration::from_secs(30), || async {
        Ok(a.sb
            .rips()
            .list(&Default::default())
            .await?
            .items
            .is_empty())
    })
    .await?;
    let row = TenancyRow {
        attack: "delete of the refused takeovers (reclaimPolicy: Delete)".into(),
        refused: a
            .sb
            .public_ip(SPECIFIC_ID)
            .is_some_and(|ip| integration_tests::is_live(&ip)),
        reason: "the addresses still exist".into(),
        oci_untouched: a.untouched(&before),
    };
    a.finish_row(row)?;
    // The stand-in for team-a's IP goes with it (it is not the sandbox's).
    oci.delete_public_ip(&held.0, None).await?;
    a.finish().await
}

/// A reserved IP the platform team made (with the OCI CLI): (id, address).
async fn platform_ip(oci: &impl OciNetwork) -> Result<(String, String)> {
    let details = CreatePublicIpDetails::reserved(integration_tests::COMPARTMENT);
    let ip = oci
        .create_public_ip(&details, &uuid::Uuid::new_v4().simple().to_string())
        .await?;
    wait_until(Duration::from_secs(10), || async {
        Ok(oci.get_public_ip(&ip.id).await?.lifecycle_state.is_free())
    })
    .await?;
    Ok((ip.id, ip.ip_address.unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_are_capped_and_pools_granted() -> Result<()> {
    let a = Arena::start("tenancy-shares").await?;
    let before = a.others();
    a.attack("pool", &format!("  publicIPv4Pool: {POOL}\n"))
        .await?;
    a.expect_refused(
        "publicIPv4Pool of a BYOIP pool not granted",
        "pool",
        "PoolNotAllowed",
        &before,
    )
    .await?;
    a.tenant.delete("pool", &DeleteParams::default()).await?;
    let cap = DEFAULT_MAX_RESERVED_IPS_PER_NAMESPACE as usize;
    for i in 0..cap {
        a.attack(&format!("r{i}"), "").await?;
    }
    wait_until(Duration::from_secs(60), || async {
        Ok(a.sb.ours().len() == cap)
    })
    .await
    .context("the first ReservedIPs up to the cap were allocated")?;
    let before = a.others();
    a.attack("one-too-many", "").await?;
    a.expect_refused(
        "more ReservedIPs than the namespace's cap",
        "one-too-many",
        "NamespaceQuotaExceeded",
        &before,
    )
    .await?;
    ensure!(a.sb.ours().len() == cap, "no IP beyond the cap");
    // One released: the next gets its place.
    a.tenant.delete("r0", &DeleteParams::default()).await?;
    a.sb.wait_state("one-too-many", State::Allocated, true)
        .await?;
    a.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_that_pass_for_the_operators_are_refused_at_admission() -> Result<()> {
    let a = Arena::start("tenancy-tags").await?;
    let before = a.others();
    let cases = [
        (
            "tag key K8S-OCI-OPERATOR-cluster",
            "K8S-OCI-OPERATOR-cluster: x",
            "reserved for the operator",
        ),
        (
            "tag key with Unicode look-alike hyphens",
            "k8s\u{2011}oci\u{2011}operator-claimable-by: team-b",
            "only ASCII letters",
        ),
        (
            "tag key with a Cyrillic look-alike letter",
            "k8s-\u{43e}ci-operator-uid: x",
            "only ASCII letters",
        ),
        ("tag value with NUL", r#"note: "a\0b""#, "control or format"),
        (
            "tag value with a bidi override",
            r#"note: "\u202Eevil""#,
            "control or format",
        ),
    ];
    for (i, (attack, tag, expect)) in cases.iter().enumerate() {
        let result = a.attack(&format!("tag-{i}"), &format!("    {tag}\n")).await;
        a.expect_rejected(attack, result, expect, &before).await?;
    }
    a.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_never_authority() -> Result<()> {
    let mut a = Arena::start("tenancy-status").await?;
    // The tenant cannot write status at all.
    let pod = a.sb.running_pod("mine", None).await?;
    a.attack("mine", "  assignment:\n    podName: mine\n")
        .await?;
    let rip = a.sb.wait_state("mine", State::Assigned, true).await?;
    let before = a.others();
    let forged = json!({ "status": { "publicIPId": SPECIFIC_ID } });
    let by_tenant = a
        .tenant
        .patch_status("mine", &PatchParams::default(), &Patch::Merge(&forged))
        .await;
    a.finish_row(TenancyRow {
        attack: "tenant writes status".into(),
        refused: by_tenant.is_err(),
        reason: by_tenant
            .err()
            .map(|e| short(&e.to_string()).to_string())
            .unwrap_or_else(|| "accepted".into()),
        oci_untouched: true,
    })?;

    // Someone with status write (not the tenant) forges the private IP: the
    // public IP stays on the pod's private IP.
    let own_ip = rip
        .status
        .as_ref()
        .and_then(|s| s.public_ip_id.clone())
        .context("ip")?;
    let pod_private = a.private_ip_id(
        pod.status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .unwrap_or_default(),
    )?;
    a.own_targets.push(pod_private.clone());
    let node_primary = a.private_ip_id("10.0.0.11")?;
    let forged = json!({ "status": { "privateIPId": node_primary } });
    a.sb.rips()
        .patch_status("mine", &PatchParams::default(), &Patch::Merge(&forged))
        .await?;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let ip = a.sb.public_ip(&own_ip).context("own ip")?;
    a.finish_row(TenancyRow {
        attack: "forged status.privateIPId of another host".into(),
        refused: ip["assignedEntityId"] == pod_private.as_str(),
        reason: format!("public IP stays on {}", ip["assignedEntityId"]),
        oci_untouched: a.others() == before,
    })?;

    // Forged publicIPId of an untagged platform IP: left alone.
    a.attack("forged", "").await?;
    a.sb.wait_state("forged", State::Allocated, true).await?;
    let before = a.others();
    let forged = json!({ "status": { "publicIPId": SPECIFIC_ID } });
    a.sb.rips()
        .patch_status("forged", &PatchParams::default(), &Patch::Merge(&forged))
        .await?;
    a.expect_refused(
        "forged status.publicIPId of an untagged platform address",
        "forged",
        "PublicIPNotOurs",
        &before,
    )
    .await?;
    a.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ip_another_namespaces_new_pod_receives_is_taken_off_at_once() -> Result<()> {
    let mut a = Arena::start("tenancy-reuse").await?;
    // No resync within the test: only the pod's arrival can wake the operator.
    a.sb.resync = Duration::from_secs(600);
    a.sb.start_operator()?;
    a.sb.grant(PRIVATE_IP_TARGETS, Some("10.0.67.0/24")).await?;
    let free = "10.0.67.251";
    let target = a.private_ip_id(free)?;
    a.own_targets.push(target.clone());
    a.attack(
        "reuse",
        &format!("  assignment:\n    privateIPAddress: {free}\n    subnetId: ocid1.subnet.oc1.sandbox.pods\n"),
    )
    .await?;
    let rip = a.sb.wait_state("reuse", State::Assigned, true).await?;
    let id = rip
        .status
        .and_then(|s| s.public_ip_id)
        .context("public IP")?;
    let before = a.others();
    // team-a's next pod receives the address. Played by the test (a pod on a
    // node nobody runs, its status written here), so the address is known.
    let pods: Api<Pod> = a.victim.api();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "next" },
        "spec": {
            "nodeName": "unmanaged-node",
            "containers": [{ "name": "app", "image": "registry.example/app:1" }]
        }
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let status =
        json!({ "status": { "phase": "Running", "podIP": free, "podIPs": [{ "ip": free }] } });
    pods.patch_status("next", &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    a.own_targets.clear();
    let off = wait_until(Duration::from_secs(30), || async {
        Ok(a.sb
            .public_ip(&id)
            .is_some_and(|ip| ip["assignedEntityId"].is_null()))
    })
    .await;
    let ready = condition(&a.sb.rips().get("reuse").await?, "Ready")?;
    let row = TenancyRow {
        attack: "granted privateIPAddress that another team's next pod receives".into(),
        refused: off.is_ok() && ready.reason == "PrivateIPHeldByOtherNamespace",
        reason: format!("{}: {}", ready.reason, ready.message),
        oci_untouched: a.untouched(&before),
    };
    a.finish_row(row)?;
    pods.delete("next", &DeleteParams::default().grace_period(0))
        .await?;
    a.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_namespaces_pod_cannot_be_named() -> Result<()> {
    let a = Arena::start("tenancy-podname").await?;
    let before = a.others();
    a.attack("grab", "  assignment:\n    podName: victim\n")
        .await?;
    a.expect_refused(
        "podName of another namespace's pod",
        "grab",
        "PodNotFound",
        &before,
    )
    .await?;
    a.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresolvable_targets_back_off() -> Result<()> {
    let a = Arena::start("tenancy-backoff").await?;
    a.sb.grant(PRIVATE_IP_TARGETS, Some("10.0.66.0/24")).await?;
    // An address no VNIC holds: OCI is asked, finds nothing, again and again.
    a.attack(
        "nowhere",
        "  assignment:\n    privateIPAddress: 10.0.66.254\n    vnicId: ocid1.vnic.oc1.sandbox.node0-pods\n",
    )
    .await?;
    a.sb.wait_state("nowhere", State::Allocated, false).await?;
    a.sb.emulator.reset_calls();
    let window = Duration::from_secs(20);
    tokio::time::sleep(window).await;
    let reads = a.sb.calls("ListPrivateIps");
    // At the poll interval (200 ms in tests) it would be about 100.
    let backed_off = reads <= 12;
    a.finish_row(TenancyRow {
        attack: "a target that never resolves".into(),
        refused: backed_off,
        reason: format!(
            "PrivateIPNotFound, looked up {reads} times in {} s (backoff to the resync)",
            window.as_secs()
        ),
        oci_untouched: true,
    })?;
    if !backed_off {
        bail!("{reads} lookups in 20 s");
    }
    a.finish().await
}

/// What the platform team opens works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_team_opens_each_door_deliberately() -> Result<()> {
    let sb = OperatorSandbox::start("tenancy-doors").await?;
    let tenant: Api<ReservedIP> = Api::namespaced(sb.tenant_client("team-b").await?, sb.ns.name());
    let create = |name: &str, spec: &str| {
        let yaml = format!(
            "apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: {name}\nspec:\n{spec}"
        );
        let rip: ReservedIP = serde_yaml::from_str(&yaml).expect("manifest");
        let tenant = tenant.clone();
        async move { tenant.create(&PostParams::default(), &rip).await }
    };
    // A private IP range.
    sb.grant(PRIVATE_IP_TARGETS, Some("10.0.66.0/24")).await?;
    create("range", "  assignment:\n    privateIPAddress: 10.0.66.201\n    subnetId: ocid1.subnet.oc1.sandbox.pods\n").await?;
    sb.wait_state("range", State::Assigned, true).await?;
    // Revoked: the IP comes off at once (the next pass).
    sb.grant(PRIVATE_IP_TARGETS, None).await?;
    let revoked = sb.wait_state("range", State::Allocated, false).await?;
    assert_eq!(
        condition(&revoked, "Ready")?.reason,
        "PrivateIPTargetNotAllowed"
    );
    // A node IP, with both the range and the node opt-in.
    sb.grant(PRIVATE_IP_TARGETS, Some("10.0.0.0/24")).await?;
    sb.grant(NODE_IPS, Some("true")).await?;
    // The node's ephemeral IP goes first (the operator never removes it).
    sb.remove_node1_ephemeral_ip().await?;
    create("node", "  assignment:\n    privateIPAddress: 10.0.0.11\n").await?;
    sb.wait_state("node", State::Assigned, true).await?;
    // A handed-over address, released only where the platform team allows.
    sb.hand_over(SPECIFIC_ID, sb.ns.name()).await?;
    create(
        "address",
        &format!("  publicIPv4Address: {SPECIFIC_ADDRESS}\n  reclaimPolicy: Delete\n"),
    )
    .await?;
    sb.wait_state("address", State::Allocated, true).await?;
    tenant.delete("address", &DeleteParams::default()).await?;
    wait_until(Duration::from_secs(30), || async {
        Ok(tenant.get_opt("address").await?.is_none())
    })
    .await?;
    let kept = sb.public_ip(SPECIFIC_ID).context("kept")?;
    assert!(
        integration_tests::is_live(&kept),
        "not releasable: kept {kept}"
    );
    assert_eq!(kept["freeformTags"][TAG_CLAIMABLE_BY], sb.ns.name());
    // A pool.
    sb.grant(PUBLIC_IP_POOLS, Some(POOL)).await?;
    create("pool", &format!("  publicIPv4Pool: {POOL}\n")).await?;
    sb.wait_state("pool", State::Allocated, true).await?;
    sb.finish().await
}

/// Kubernetes' own count limit, as the README recommends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_quota_limits_the_count_at_admission() -> Result<()> {
    use k8s_openapi::api::core::v1::ResourceQuota;
    let a = Arena::start("tenancy-resourcequota").await?;
    let text =
        std::fs::read_to_string(integration_tests::repo_root().join("examples/tenant-quota.yaml"))?;
    let mut quota: ResourceQuota = serde_yaml::from_str(&text)?;
    let hard = quota
        .spec
        .as_mut()
        .and_then(|s| s.hard.as_mut())
        .context("the example quota has spec.hard")?;
    let key = "count/reservedips.oci.k8s.logmein.com";
    ensure!(hard.contains_key(key), "the example limits {key}");
    hard.insert(
        key.into(),
        k8s_openapi::apimachinery::pkg::api::resource::Quantity("2".into()),
    );
    let quotas: Api<ResourceQuota> = a.sb.ns.api();
    quotas.create(&PostParams::default(), &quota).await?;
    // The quota controller computes its usage before admission counts on it.
    wait_for(
        &quotas,
        "reservedips",
        Duration::from_secs(30),
        |q: Option<&ResourceQuota>| {
            q.and_then(|q| q.status.as_ref())
                .is_some_and(|s| s.used.is_some())
        },
    )
    .await?;
    a.attack("q0", "").await?;
    a.attack("q1", "").await?;
    let before = a.others();
    let third = a.attack("q2", "").await;
    a.expect_rejected(
        "more ReservedIPs than the namespace's ResourceQuota",
        third,
        "exceeded quota",
        &before,
    )
    .await?;
    a.finish().await
}
