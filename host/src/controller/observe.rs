//! Observing a ReservedIP for one pass: its public IP in OCI, its target in
//! the cluster and OCI, and the policies' verdicts. Reads only; it stops as
//! soon as the decisions need no more (`decide::pass::needs_target`).

use std::collections::BTreeMap;
use std::time::Instant;

use futures::FutureExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::core::Selector;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use tracing::{debug, info};

use super::context::Context;
use super::policy_gate;
use crate::api::crd::{ReservedIP, ReservedIPStatus};
use crate::decide::floating;
use crate::decide::ownership::Owner;
use crate::decide::pass::{holds_ip, needs_target};
use crate::decide::plan::assigned_to;
use crate::decide::tenancy::{Grants, PodFacts, TargetFacts, Tenancy};
use crate::decide::{
    Failure, How, Observation, PublicIpSeen, Read, ResolvedTarget, Target, what_to_read,
};
use crate::oci::OciError;

/// Observes `rip`, starting from `status`; also says when the read that saw
/// its public IP began (the moment a transition was seen in progress or
/// done: a look that waited for a shared listing is timed by the listing).
pub async fn observe<'a>(
    ctx: &'a Context,
    rip: &'a ReservedIP,
    owner: Owner<'a>,
    status: ReservedIPStatus,
) -> (Observation<'a>, Option<Instant>) {
    let (public_ip, seen_at) = public_ip(ctx, rip, &owner, &status).await;
    (around(ctx, rip, owner, status, public_ip).await, seen_at)
}

/// The rest of the observation around the public IP seen: the target, the
/// namespace's grants and the policies' decision, when the pass needs them.
async fn around<'a>(
    ctx: &'a Context,
    rip: &'a ReservedIP,
    owner: Owner<'a>,
    status: ReservedIPStatus,
    public_ip: PublicIpSeen,
) -> Observation<'a> {
    let nothing_held = what_to_read(&status, &rip.spec) == Read::Nothing;
    let mut obs = Observation {
        owner,
        compartment_id: &ctx.settings.compartment_id,
        spec: &rip.spec,
        generation: rip.metadata.generation,
        status,
        public_ip,
        target: None,
        policy: None,
        tenancy: Tenancy {
            operator_namespace: ctx.settings.operator_namespace.clone(),
            default_cap: ctx.settings.max_reserved_ips_per_namespace,
            ..Tenancy::default()
        },
        timing: ctx.settings.timing(),
        now: Timestamp::now(),
        new_token: uuid::Uuid::new_v4().simple().to_string(),
    };
    if !needs_target(&obs) {
        return obs;
    }
    let ns = obs.owner.namespace;
    let (labels, annotations) = match namespace(ctx, ns).await {
        Ok(meta) => meta,
        Err(failure) => {
            obs.target = Some(Err(failure));
            return obs;
        }
    };
    let (grants, problems) = Grants::from_annotations(&annotations);
    if nothing_held {
        let cap = grants.max_reserved_ips.or(obs.tenancy.default_cap);
        obs.tenancy.holding = Some(ctx.quota.reserve(ns, obs.owner.uid, cap));
    }
    obs.tenancy.grants = grants;
    obs.tenancy.problems = problems;
    let on_oci = match &obs.public_ip {
        PublicIpSeen::Found { ip, .. } => assigned_to(ip),
        _ => None,
    };
    let (target, pod) = match target(ctx, rip, &obs.status, on_oci).await {
        Ok(found) => found,
        Err(e) => {
            obs.target = Some(Err(Failure::from_oci(&e)));
            return obs;
        }
    };
    let targets_node = rip
        .spec
        .assignment
        .as_ref()
        .is_some_and(|a| a.node_name.is_some());
    obs.tenancy.facts = match facts(ctx, &obs.tenancy, &target, pod.as_ref(), targets_node).await {
        Ok(facts) => facts,
        Err(failure) => {
            obs.target = Some(Err(failure));
            return obs;
        }
    };
    let gate = policy_gate::consult(
        &ctx.policy,
        rip,
        labels,
        holds_ip(&obs),
        &target,
        pod.as_ref(),
        &obs.tenancy.facts,
    )
    .await;
    obs.policy = Some(gate.map_err(|e| e.to_string()));
    obs.target = Some(Ok(target));
    obs
}

/// The public IP where status and spec say to look for it, and when the
/// read that saw it began.
async fn public_ip(
    ctx: &Context,
    rip: &ReservedIP,
    owner: &Owner<'_>,
    status: &ReservedIPStatus,
) -> (PublicIpSeen, Option<Instant>) {
    let failed = |e: &OciError| PublicIpSeen::Failed(Failure::from_oci(e));
    let began = Instant::now();
    let seen = match what_to_read(status, &rip.spec) {
        Read::Nothing => PublicIpSeen::Nothing,
        Read::ById(id) => {
            let compartment = &ctx.settings.compartment_id;
            let together = ctx.waits().look_together(
                owner.uid,
                Instant::now(),
                ctx.listing.transition_gather(),
            );
            debug!(reservedip = %rip.name_any(), ?together, "looking at the IP");
            let listed = match together {
                // In transition with more others than the listing has pages
                // (or a listing gathers already: the last to join starts
                // it): one listing looks at them all. Fewer are cheaper read
                // one by one (two IPs moving in a compartment of 2,000).
                Some(together)
                    if together > ctx.listing.pages() || ctx.listing.gathering(compartment) =>
                {
                    ctx.listing
                        .gathered(&ctx.oci, compartment, &id, together)
                        .await
                        .map(|ip| ip.map(|(ip, at)| (ip, How::Gathered, Some(at))))
                }
                // Alone (or nearly) in transition: a listing would show it
                // changing or not be trusted for it; read it.
                Some(_) => Ok(None),
                // From the shared listing when that is recent enough to be trusted.
                _ => ctx
                    .listing
                    .lookup(ctx.oci.as_ref(), compartment, &id)
                    .await
                    // Up to a minute old, for an IP at rest: not a time to learn from.
                    .map(|ip| ip.map(|ip| (ip, How::Listed, None))),
            };
            match listed {
                Ok(Some((ip, how, at))) => return (PublicIpSeen::Found { ip, how }, at),
                Ok(None) => {}
                Err(e) => return (failed(&e), None),
            }
            let began = Instant::now();
            let read = match ctx.oci.get_public_ip(&id).await {
                Ok(ip) => PublicIpSeen::Found { ip, how: How::Read },
                Err(e) if e.is_not_found() => {
                    info!(reservedip = %rip.name_any(), %id, "public IP not found");
                    PublicIpSeen::NotFound { id }
                }
                Err(e) => failed(&e),
            };
            return (read, Some(began));
        }
        Read::ByAddress(address) => match ctx.oci.get_public_ip_by_ip_address(&address).await {
            Ok(ip) => PublicIpSeen::Found {
                ip,
                how: How::ByAddress,
            },
            Err(e) if e.is_not_found() => PublicIpSeen::AddressNotFound,
            Err(e) => failed(&e),
        },
        Read::ByTags { pool } => match ctx.list_ours(owner, pool).await {
            Ok(ours) => match ours.into_iter().next() {
                Some(ip) => {
                    info!(reservedip = %rip.name_any(), id = %ip.id, "recovered the public IP of an unfinished create");
                    PublicIpSeen::Found {
                        ip,
                        how: How::Recovered,
                    }
                }
                None => PublicIpSeen::Nothing,
            },
            Err(e) => failed(&e),
        },
    };
    (seen, Some(began))
}

/// The labels and annotations of the ReservedIP's namespace: the policies'
/// selectors and the platform team's grants. Without them nothing is
/// decided (a grant or selector could be misread): the pass fails.
pub(crate) async fn namespace(
    ctx: &Context,
    ns: &str,
) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>), Failure> {
    let failure = |message| Failure::cluster("NamespaceUnreadable", message);
    // From the watch's cache once it has synced (a namespace not in it yet,
    // just created, is read from the API server).
    if let Some(store) = ctx.namespaces.get()
        && store.wait_until_ready().now_or_never().is_some()
        && let Some(n) = store.get(&ObjectRef::new(ns))
    {
        return Ok((n.labels().clone(), n.annotations().clone()));
    }
    match Api::<Namespace>::all(ctx.client.clone()).get_opt(ns).await {
        Ok(Some(n)) => Ok((
            n.metadata.labels.unwrap_or_default(),
            n.metadata.annotations.unwrap_or_default(),
        )),
        Ok(None) => Err(failure(format!("namespace {ns} not found"))),
        Err(e) => Err(failure(format!("reading namespace {ns}: {e}"))),
    }
}

/// What the cluster says of the target: the pod's namespace and network,
/// or which namespaces' pods hold a private IP target's address now.
async fn facts(
    ctx: &Context,
    tenancy: &Tenancy,
    target: &Target,
    pod: Option<&Pod>,
    rip_targets_node: bool,
) -> Result<TargetFacts, Failure> {
    if let Some(pod) = pod {
        return Ok(TargetFacts {
            pod: Some(PodFacts {
                namespace: pod.namespace().unwrap_or_default(),
                host_network: pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.host_network)
                    .unwrap_or(false),
            }),
            pods_at_address: vec![],
            node: false,
        });
    }
    let Target::PrivateIp(t) = target else {
        return Ok(TargetFacts::default());
    };
    if rip_targets_node {
        return Ok(TargetFacts {
            node: true,
            ..TargetFacts::default()
        });
    }
    if tenancy.grants.private_ip_targets.is_empty() {
        // Refused whoever holds it: no need to ask.
        return Ok(TargetFacts::default());
    }
    // Every namespace's pods, whatever this operator watches: a private IP
    // target must never be another namespace's pod.
    let selector = format!("status.podIP={}", t.private_ip_address);
    let params = ListParams::default().fields(&selector);
    match Api::<Pod>::all(ctx.client.clone())
        .list_metadata(&params)
        .await
    {
        Ok(pods) => Ok(TargetFacts {
            pod: None,
            pods_at_address: pods.items.iter().filter_map(|p| p.namespace()).collect(),
            node: false,
        }),
        Err(e) => Err(Failure::cluster(
            "PodsUnreadable",
            format!(
                "listing the pods at {} (a private IP target must not be another namespace's pod): {e}",
                t.private_ip_address
            ),
        )),
    }
}

/// The target the spec names, and the pod if it names one. `on_oci`: the
/// private IP OCI says the public IP is on.
async fn target(
    ctx: &Context,
    rip: &ReservedIP,
    status: &ReservedIPStatus,
    on_oci: Option<&str>,
) -> Result<(Target, Option<Pod>), OciError> {
    let Some(a) = &rip.spec.assignment else {
        return Ok((Target::Unassigned, None));
    };
    let ns = rip.namespace().unwrap_or_default();
    let absent = |reason, message| Ok((Target::Absent { reason, message }, None));
    if let Some(node) = &a.node_name {
        return match Api::<Node>::all(ctx.client.clone()).get_opt(node).await {
            Ok(Some(n)) => Ok((ctx.resolver.resolve_node(&n).await?, None)),
            Ok(None) => absent("NodeNotFound", format!("node {node} does not exist")),
            Err(e) => absent("NodeUnreadable", format!("reading node {node}: {e}")),
        };
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pod = if let Some(pod_name) = &a.pod_name {
        let asked = Instant::now();
        let read = {
            // A new ReservedIP's: counted from now, so a VNIC listing
            // gathering knows this one may join (`TargetResolver::private_ips_at`),
            // and in its turn (`Context::arrival_turn`).
            let new_ip = status.public_ip_id.is_none();
            let _looking_up = new_ip.then(|| ctx.resolver.pod_lookup());
            let _turn = if new_ip {
                ctx.arrival_turn().await
            } else {
                None
            };
            pods.get_opt(pod_name).await
        };
        debug!(pod = %pod_name, took_ms = asked.elapsed().as_millis(), "pod read");
        match read {
            Ok(Some(p)) => p,
            Ok(None) => {
                return absent(
                    "PodNotFound",
                    format!("pod {ns}/{pod_name} does not exist (yet)"),
                );
            }
            Err(e) => return absent("PodUnreadable", format!("reading pod {ns}/{pod_name}: {e}")),
        }
    } else if let Some(selector) = &a.pod_selector {
        match selected_pod(&pods, selector, status).await {
            Ok(p) => p,
            Err(target) => return Ok((target, None)),
        }
    } else {
        return Ok((ctx.resolver.resolve_private_ip(a).await?, None));
    };
    let node = match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        Some(n) => ctx.nodes.get(&ctx.client, n).await.ok().flatten(),
        None => None,
    };
    let known = match (
        &status.private_ip_id,
        &status.private_ip_address,
        &status.pod_name,
        &status.pod_uid,
    ) {
        // Status is not authority: what it records spares the lookup only
        // while OCI agrees the public IP is on that private IP (a forged
        // private IP in status never leads to an assign).
        (Some(id), Some(addr), Some(n), Some(u)) if on_oci == Some(id.as_str()) => {
            Some(ResolvedTarget {
                private_ip_id: id.clone(),
                private_ip_address: addr.clone(),
                pod: Some((n.clone(), u.clone())),
                subnet_id: None,
                primary: false,
            })
        }
        // Sent but not yet assigned: what this process resolved then. Used,
        // like status, only for the same pod UID at the same address.
        _ => rip
            .metadata
            .uid
            .as_deref()
            .and_then(|uid| ctx.memory.sent_to(uid)),
    };
    let target = ctx
        .resolver
        .resolve_pod(&pod, node.as_ref(), known.as_ref())
        .await?;
    Ok((target, Some(pod)))
}

/// The pod a `podSelector` IP should be on (`decide::floating`), or why
/// there is none.
async fn selected_pod(
    pods: &Api<Pod>,
    selector: &LabelSelector,
    status: &ReservedIPStatus,
) -> Result<Pod, Target> {
    let selector = match Selector::try_from(selector.clone()) {
        Ok(s) => s.to_string(),
        Err(e) => {
            return Err(Target::Refused {
                reason: "InvalidPodSelector",
                message: format!("podSelector: {e}"),
            });
        }
    };
    let matched = match pods.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => list.items,
        Err(e) => {
            return Err(Target::Absent {
                reason: "PodUnreadable",
                message: format!("listing the pods matching {selector}: {e}"),
            });
        }
    };
    match floating::choose(status.pod_uid.as_deref(), &matched) {
        Some(pod) => Ok(pod.clone()),
        None => {
            let (reason, message) = floating::none_ready(&selector, matched.len());
            Err(Target::Absent { reason, message })
        }
    }
}
