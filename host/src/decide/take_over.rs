//! `publicIPv4Address`: taking over an existing reserved IP. Pure.
//!
//! Only an address in the operator's compartment (and the spec's pool), of
//! reserved lifetime, that nobody else owns, nothing uses, and the platform
//! team handed to this namespace (`k8s-oci-operator-claimable-by`) is taken:
//! it is claimed with our tags (one call, with if-match) and assigned by the
//! next pass. Refusals never name another namespace.

use super::conclusion::{Conclusion, Draft};
use super::decision::{Call, Decision, Held, Plan};
use super::observation::{How, Observation};
use super::ownership::{self, Holder};
use super::plan::{Step, assigned_to};
use super::target::Target;
use crate::oci::{Lifetime, PublicIp, UpdatePublicIpDetails};

/// `publicIPv4Address`: an existing reserved IP in our compartment (and
/// pool) that nobody else owns and nothing uses.
pub(super) fn hold(
    obs: &Observation<'_>,
    draft: &mut Draft,
    ip: &PublicIp,
) -> Result<Held, Box<Conclusion>> {
    let address = obs.spec.public_ipv4_address.as_deref().unwrap_or_default();
    let refusal = if ip.lifetime != Lifetime::Reserved {
        Some((
            "AddressNotReserved",
            format!("{address} is an ephemeral public IP; only reserved IPs can be taken over"),
        ))
    } else if ip.compartment_id.as_deref() != Some(obs.compartment_id) {
        Some((
            "AddressInOtherCompartment",
            format!("{address} is not in the operator's compartment"),
        ))
    } else if let Some(pool) = obs
        .spec
        .public_ipv4_pool
        .as_deref()
        .filter(|pool| ip.public_ip_pool_id.as_deref() != Some(*pool))
    {
        Some((
            "AddressNotInPool",
            format!("{address} is not in pool {pool}"),
        ))
    } else {
        match obs.owner.classify(ip) {
            Holder::Us => None,
            Holder::Nobody if !ownership::claimable_by(ip, obs.owner.namespace) => Some((
                "AddressNotClaimable",
                format!(
                    "{address} has not been handed to this namespace; the platform team hands an address over by tagging it {}=<namespace> in OCI",
                    ownership::TAG_CLAIMABLE_BY
                ),
            )),
            Holder::Nobody => assigned_to(ip).map(|on| {
                (
                    "AddressInUse",
                    format!(
                        "{address} is assigned to {on} outside the operator; unassign it first"
                    ),
                )
            }),
            // The name of a ReservedIP of the same namespace helps; another
            // namespace's is not this tenant's to learn.
            Holder::OtherReservedIp { namespace, name } if namespace == obs.owner.namespace => {
                Some((
                    "AddressOwnedByOther",
                    format!("{address} is held by ReservedIP {name} of this namespace"),
                ))
            }
            Holder::OtherReservedIp { .. } => Some((
                "AddressOwnedByOther",
                format!("{address} is held by another ReservedIP"),
            )),
            Holder::OtherCluster(_) => Some((
                "AddressOwnedByOtherCluster",
                format!("{address} is held by another cluster's operator"),
            )),
        }
    };
    if let Some((reason, message)) = refusal {
        return Err(Box::new(draft.clone().blocked(reason, &message)));
    }
    if obs.owner.classify(ip) == Holder::Nobody {
        return Ok(Held::Claim(ip.clone()));
    }
    draft.status.public_ip_id = Some(ip.id.clone());
    Ok(Held::Ip(ip.clone(), How::ByAddress))
}

/// Claims an address with our tags; if-match makes a concurrent claim by
/// another ReservedIP fail instead of both believing they own it.
pub(super) fn claim(obs: &Observation<'_>, draft: Draft, ip: PublicIp) -> Decision {
    let mut tags = ip.freeform_tags.clone();
    tags.extend(obs.owner.tags());
    tags.insert(ownership::TAG_ADOPTED.to_string(), "true".to_string());
    let call = Call::Update {
        id: ip.id.clone(),
        details: UpdatePublicIpDetails {
            freeform_tags: Some(tags.clone()),
            ..Default::default()
        },
        if_match: ip.etag.clone(),
    };
    Decision::Act(Plan {
        step: Step::Claim { tags },
        call,
        target: Target::Unassigned,
        observed: Some(ip),
        draft,
    })
}
