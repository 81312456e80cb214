//! Observing a ReservedIP for one pass: its public IP in OCI, its target in
//! the cluster and OCI, and the policies' verdicts. Reads only; it stops as
//! soon as the decisions need no more (`decide::pass::needs_target`).

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::{Api, ResourceExt};
use tracing::info;

use super::context::Context;
use super::policy_gate;
use crate::api::crd::{ReservedIP, ReservedIPStatus};
use crate::decide::ownership::Owner;
use crate::decide::pass::{holds_ip, needs_target};
use crate::decide::{
    Failure, How, Observation, PublicIpSeen, Read, ResolvedTarget, Target, what_to_read,
};
use crate::oci::OciError;

/// Observes `rip`, starting from `status`.
pub async fn observe<'a>(
    ctx: &'a Context,
    rip: &'a ReservedIP,
    owner: Owner<'a>,
    status: ReservedIPStatus,
) -> Observation<'a> {
    let public_ip = public_ip(ctx, rip, &owner, &status).await;
    let mut obs = Observation {
        owner,
        compartment_id: &ctx.settings.compartment_id,
        spec: &rip.spec,
        generation: rip.metadata.generation,
        status,
        public_ip,
        target: None,
        policy: None,
        timing: ctx.settings.timing(),
        now: Timestamp::now(),
        new_token: uuid::Uuid::new_v4().simple().to_string(),
    };
    if !needs_target(&obs) {
        return obs;
    }
    let (target, pod) = match target(ctx, rip, &obs.status).await {
        Ok(found) => found,
        Err(e) => {
            obs.target = Some(Err(Failure::from_oci(&e)));
            return obs;
        }
    };
    let gate = policy_gate::consult(
        &ctx.policy,
        &ctx.client,
        rip,
        holds_ip(&obs),
        &target,
        pod.as_ref(),
    )
    .await;
    obs.policy = Some(gate.map_err(|e| e.to_string()));
    obs.target = Some(Ok(target));
    obs
}

/// The public IP where status and spec say to look for it.
async fn public_ip(
    ctx: &Context,
    rip: &ReservedIP,
    owner: &Owner<'_>,
    status: &ReservedIPStatus,
) -> PublicIpSeen {
    let failed = |e: &OciError| PublicIpSeen::Failed(Failure::from_oci(e));
    match what_to_read(status, &rip.spec) {
        Read::Nothing => PublicIpSeen::Nothing,
        Read::ById(id) => {
            // From the shared listing when that is recent enough to be trusted.
            let compartment = &ctx.settings.compartment_id;
            match ctx.listing.lookup(ctx.oci.as_ref(), compartment, &id).await {
                Ok(Some(ip)) => {
                    return PublicIpSeen::Found {
                        ip,
                        how: How::Listed,
                    };
                }
                Ok(None) => {}
                Err(e) => return failed(&e),
            }
            match ctx.oci.get_public_ip(&id).await {
                Ok(ip) => PublicIpSeen::Found { ip, how: How::Read },
                Err(e) if e.is_not_found() => {
                    info!(reservedip = %rip.name_any(), %id, "public IP not found");
                    PublicIpSeen::NotFound { id }
                }
                Err(e) => failed(&e),
            }
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
    }
}

/// The target the spec names, and the pod if it names one.
async fn target(
    ctx: &Context,
    rip: &ReservedIP,
    status: &ReservedIPStatus,
) -> Result<(Target, Option<Pod>), OciError> {
    let Some(a) = &rip.spec.assignment else {
        return Ok((Target::Unassigned, None));
    };
    let Some(pod_name) = &a.pod_name else {
        return Ok((ctx.resolver.resolve_private_ip(a).await?, None));
    };
    let ns = rip.namespace().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let absent = |reason, message| Ok((Target::Absent { reason, message }, None));
    let pod = match pods.get_opt(pod_name).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return absent(
                "PodNotFound",
                format!("pod {ns}/{pod_name} does not exist (yet)"),
            );
        }
        Err(e) => return absent("PodUnreadable", format!("reading pod {ns}/{pod_name}: {e}")),
    };
    let node = match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        Some(n) => Api::<Node>::all(ctx.client.clone())
            .get_opt(n)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let known = match (
        &status.private_ip_id,
        &status.private_ip_address,
        &status.pod_name,
        &status.pod_uid,
    ) {
        (Some(id), Some(addr), Some(n), Some(u)) => Some(ResolvedTarget {
            private_ip_id: id.clone(),
            private_ip_address: addr.clone(),
            pod: Some((n.clone(), u.clone())),
        }),
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
