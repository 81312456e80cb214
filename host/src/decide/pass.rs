//! What one pass does, decided from what it observed: [`decide`]. Pure.
//!
//! In order: whether the public IP can be held at all (ownership, the
//! address asked for, a recorded IP gone missing), then what the policies
//! allow, then the next step and the one OCI call that makes it. What the
//! call answered is concluded in `decide::outcome`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::conclusion::{Conclusion, Draft, Requeue};
use super::decision::{Call, Decision, Held, Plan};
use super::observation::{Failure, Gate, How, Observation, PublicIpSeen};
use super::ownership::Holder;
use super::plan::{self, Step};
use super::status::{
    POLICY_DENIED, POLICY_ERROR, PUBLIC_IP_MISSING, RETRY_TOKEN_INVALIDATED, TARGET_TAKEN,
};
use super::take_over;
use super::target::Target;
use super::tenancy;
use crate::api::conditions::{self, ALLOCATED, ASSIGNED};
use crate::api::crd::{ReservedIPStatus, State};
use crate::oci::{CreatePublicIpDetails, Lifetime, PublicIp, UpdatePublicIpDetails};

/// Decides the pass.
pub fn decide(obs: &Observation<'_>) -> Decision {
    let mut draft = Draft::new(obs);
    let (ip, how) = match hold(obs, &mut draft) {
        Err(stop) => return Decision::Conclude(*stop),
        Ok(Held::Claim(ip)) => return take_over::claim(obs, draft, ip),
        Ok(Held::Ip(ip, how)) => (Some(ip), Some(how)),
        Ok(Held::None) => (None, None),
    };
    if ip.is_none()
        && let Some(stop) = after_invalidated_token(obs, &mut draft)
    {
        return Decision::Conclude(*stop);
    }
    let target = match &obs.target {
        Some(Ok(target)) => target.clone(),
        Some(Err(f)) => return failed(draft, "resolving the assignment target", f),
        // Not looked up although needed: look again at once.
        None => return Decision::Conclude(draft.finish(None, Requeue::Now)),
    };
    let gate = match &obs.policy {
        Some(Ok(gate)) => gate,
        Some(Err(message)) => {
            draft.warn_once(POLICY_ERROR, message);
            let problem = super::status::Problem {
                reason: POLICY_ERROR.into(),
                message: message.clone(),
            };
            let backoff = Requeue::Backoff {
                at_least: Duration::ZERO,
            };
            return Decision::Conclude(draft.finish(Some(problem), backoff));
        }
        None => return Decision::Conclude(draft.finish(None, Requeue::Now)),
    };
    // Admission refuses bad tags; a spec stored before the rules existed
    // (or written past them) is held to them here, before any write.
    if let Err(message) = crate::api::tags::check_tags(&gate.tags) {
        return Decision::Conclude(draft.blocked("InvalidTags", &message));
    }
    // The platform team's rules first: a policy can refuse more, never less.
    let target = admit(obs, &mut draft, target);
    let (target, refused) = apply_policies(&mut draft, ip.is_some(), target, gate);
    if let Some(message) = refused {
        return Decision::Conclude(draft.blocked(POLICY_DENIED, &message));
    }
    if ip.is_none()
        && let Err((reason, message)) = may_allocate(obs, gate)
    {
        return Decision::Conclude(draft.blocked(reason, &message));
    }
    let tags = obs.owner.desired_tags(&gate.tags, ip.as_ref());
    let mut step = plan::next_step(ip.as_ref(), &target, &tags);
    let target_was_taken = conditions::get(&draft.status.conditions, ASSIGNED)
        .is_some_and(|c| c.reason == TARGET_TAKEN);
    if let Step::Allocate { assign_to } = &mut step
        && target_was_taken
    {
        // The target already has a public IP of someone else: hold an
        // address anyway, and try the assignment again later.
        *assign_to = None;
    }
    if matches!(step, Step::Assign { .. })
        && target_was_taken
        && ip.as_ref().and_then(plan::assigned_to).is_some()
    {
        // OCI refused to move the IP (the target has someone's public IP)
        // and left it on its previous private IP, which the spec no longer
        // names: take it off there. The assignment is tried again once the
        // IP is free, with backoff.
        step = Step::Unassign;
    }
    if let (Some(ip), Some(How::Listed | How::Gathered)) = (&ip, how)
        && step.calls_oci()
    {
        return Decision::Reread { id: ip.id.clone() };
    }
    let call = call_for(
        obs,
        &mut draft,
        &step,
        ip.as_ref(),
        &tags,
        gate.pool.clone(),
    );
    Decision::Act(Plan {
        step,
        call,
        target,
        observed: ip,
        draft,
    })
}

/// Whether the pass goes on to resolve the target (and ask the policies):
/// not when the public IP already settles it.
pub fn needs_target(obs: &Observation<'_>) -> bool {
    matches!(
        hold(obs, &mut Draft::new(obs)),
        Ok(Held::Ip(..) | Held::None)
    )
}

/// Whether the ReservedIP holds a public IP (pool policies only decide for a new one).
pub fn holds_ip(obs: &Observation<'_>) -> bool {
    matches!(hold(obs, &mut Draft::new(obs)), Ok(Held::Ip(..)))
}

/// Whether a failed `step` means the target already has someone's public IP.
pub fn is_target_taken(step: &Step, failure: &Failure) -> bool {
    failure.conflict
        && matches!(
            step,
            Step::Allocate { assign_to: Some(_) } | Step::Assign { .. }
        )
}

fn failed(draft: Draft, doing: &str, failure: &Failure) -> Decision {
    Decision::Conclude(draft.failed(&failure.reason, format!("{doing}: {}", failure.message)))
}

/// The public IP this ReservedIP holds, or why the pass stops here.
fn hold(obs: &Observation<'_>, draft: &mut Draft) -> Result<Held, Box<Conclusion>> {
    let (ip, how) = match &obs.public_ip {
        PublicIpSeen::Nothing => return Ok(Held::None),
        PublicIpSeen::Failed(f) => {
            let message = format!("reading the public IP: {}", f.message);
            return Err(Box::new(draft.clone().failed(&f.reason, message)));
        }
        PublicIpSeen::AddressNotFound => {
            let address = obs.spec.public_ipv4_address.as_deref().unwrap_or_default();
            let message = format!(
                "no public IP {address} exists in OCI; reserve it (or bring it in a BYOIP pool) first"
            );
            return Err(Box::new(draft.clone().blocked("AddressNotFound", &message)));
        }
        PublicIpSeen::NotFound { id } => return missing(obs, draft, id, true),
        PublicIpSeen::Found { ip, .. } if ip.lifecycle_state.is_gone() => {
            return missing(obs, draft, &ip.id, false);
        }
        PublicIpSeen::Found { ip, how } => (ip, *how),
    };
    if how == How::ByAddress {
        return take_over::hold(obs, draft, ip);
    }
    // Status is not proof of ownership (anyone allowed to write it could
    // point it elsewhere): only OCI's tags are. An untagged IP is held only
    // as the address the spec asks for, through the takeover checks.
    let id = &ip.id;
    let asked =
        obs.spec.public_ipv4_address.is_some() && obs.spec.public_ipv4_address == ip.ip_address;
    let blocked = match obs.owner.classify(ip) {
        Holder::Us => None,
        Holder::Nobody if asked => return take_over::hold(obs, draft, ip),
        Holder::Nobody => Some((
            "PublicIPNotOurs",
            format!(
                "status names public IP {id}, which does not carry this ReservedIP's ownership tags; nothing is done to it (status is not proof of ownership: remove status.publicIPId, or restore the IP's tags)"
            ),
        )),
        Holder::OtherReservedIp { .. } | Holder::OtherCluster(_) => Some((
            "PublicIPOwnedByOther",
            format!("status names public IP {id}, which belongs to another ReservedIP"),
        )),
    };
    if let Some((reason, message)) = blocked {
        return Err(Box::new(draft.clone().blocked(reason, &message)));
    }
    if ip.lifetime != Lifetime::Reserved {
        let message = format!("status names public IP {id}, which is not a reserved IP");
        return Err(Box::new(
            draft.clone().blocked("PublicIPNotReserved", &message),
        ));
    }
    if how == How::Recovered {
        draft.status.public_ip_id = Some(ip.id.clone());
    }
    Ok(Held::Ip(ip.clone(), how))
}

/// The recorded IP is gone (`not_found`: OCI answers 404; else terminated).
/// A 404 right after a create is OCI's eventual consistency, not a
/// deletion: only a 404 that lasts the grace period counts, else a second IP
/// would be created for one ReservedIP. The first 404 is dated by the
/// `Allocated` condition's transition.
fn missing(
    obs: &Observation<'_>,
    draft: &mut Draft,
    id: &str,
    not_found: bool,
) -> Result<Held, Box<Conclusion>> {
    let address = draft.status.public_ip_address.clone().unwrap_or_default();
    let since = conditions::get(&draft.status.conditions, ALLOCATED)
        .filter(|c| c.reason == PUBLIC_IP_MISSING && c.status == "False")
        .map(|c| c.last_transition_time.0);
    let grace = obs.timing.missing_grace;
    let missing_for = since
        .and_then(|t| obs.now.duration_since(t).try_into().ok())
        .unwrap_or(Duration::ZERO);
    if not_found && (since.is_none() || missing_for < grace) {
        let message = format!(
            "OCI answers 404 for public IP {address} ({id}); if that lasts {}s it counts as deleted outside the operator",
            grace.as_secs()
        );
        if since.is_none() {
            // Date the first 404 (a False from another reason would keep its older time).
            draft.status.conditions.retain(|c| c.type_ != ALLOCATED);
        }
        draft.condition(ALLOCATED, false, PUBLIC_IP_MISSING, &message);
        let wait = obs.timing.poll.max(Duration::from_secs(1));
        return Err(Box::new(draft.clone().finish(None, Requeue::After(wait))));
    }
    if obs.spec.public_ipv4_address.is_some() {
        let message = format!(
            "public IP {address} ({id}) was deleted outside the operator; the address cannot be recovered"
        );
        return Err(Box::new(draft.clone().blocked("PublicIPDeleted", &message)));
    }
    draft.event(
        true,
        "PublicIPDeleted",
        format!(
            "public IP {address} ({id}) was deleted outside the operator; allocating a new one"
        ),
    );
    draft.status = ReservedIPStatus {
        conditions: std::mem::take(&mut draft.status.conditions),
        ..Default::default()
    };
    Ok(Held::None)
}

/// Nothing found by tags after OCI refused the create's retry token (see
/// `outcome::retry_token_invalidated`): keep looking until the missing
/// grace has passed since the refusal, then drop the token so the create
/// starts over with a fresh one.
fn after_invalidated_token(obs: &Observation<'_>, draft: &mut Draft) -> Option<Box<Conclusion>> {
    let since = conditions::get(&draft.status.conditions, ALLOCATED)
        .filter(|c| c.reason == RETRY_TOKEN_INVALIDATED && c.status == "False")
        .map(|c| c.last_transition_time.0)?;
    draft.status.allocation_token.as_ref()?;
    let grace = obs.timing.missing_grace;
    let waited: Duration = obs
        .now
        .duration_since(since)
        .try_into()
        .unwrap_or(Duration::ZERO);
    if waited < grace {
        let wait = obs.timing.poll.max(Duration::from_secs(1));
        return Some(Box::new(draft.clone().finish(None, Requeue::After(wait))));
    }
    draft.event(
        false,
        "RetryTokenReplaced",
        format!(
            "no public IP with this ReservedIP's tags turned up in {} s after OCI refused the create's retry token: creating one with a fresh token",
            grace.as_secs()
        ),
    );
    draft.status.allocation_token = None;
    None
}

/// The target, or refused when the namespace may not use it.
fn admit(obs: &Observation<'_>, draft: &mut Draft, target: Target) -> Target {
    let Target::PrivateIp(t) = &target else {
        return target;
    };
    let tenancy = &obs.tenancy;
    let checked = tenancy::check_target(
        &tenancy.tenant(obs.owner.namespace),
        &t.private_ip_address,
        t.subnet_id.as_deref(),
        t.primary,
        &tenancy.facts,
    );
    match checked.map_err(|r| tenancy.explain(r)) {
        Ok(()) => target,
        Err((reason, message)) => {
            draft.warn_once(reason, &message);
            Target::Refused { reason, message }
        }
    }
}

/// Whether a new public IP may be created: a pool the tenant named must be
/// granted to its namespace (a pool a policy chose is the platform team's
/// choice), and the namespace must be under its cap. A create already
/// started (its marker written) was admitted then.
fn may_allocate(obs: &Observation<'_>, gate: &Gate) -> Result<(), tenancy::Refusal> {
    let tenancy = &obs.tenancy;
    let tenant = tenancy.tenant(obs.owner.namespace);
    if let Some(pool) = obs.spec.public_ipv4_pool.as_deref()
        && gate.pool.as_deref() == Some(pool)
    {
        tenancy::check_pool(&tenant, pool).map_err(|r| tenancy.explain(r))?;
    }
    if obs.status.allocation_token.is_none()
        && let Some(holding) = tenancy.holding
    {
        tenancy::check_quota(&tenant, tenancy.default_cap, holding)
            .map_err(|r| tenancy.explain(r))?;
    }
    Ok(())
}

/// The policies' verdicts in status and their refusals. Pool verdicts are
/// made once, at allocation, and kept afterwards. Returns the target (refused
/// when a policy denies it) and the message if the IP itself is refused.
fn apply_policies(
    draft: &mut Draft,
    holds_ip: bool,
    target: Target,
    gate: &Gate,
) -> (Target, Option<String>) {
    let kept_pool = draft
        .status
        .policies
        .iter()
        .filter(|v| holds_ip && v.decision == "pool")
        .cloned();
    draft.status.policies = kept_pool.chain(gate.verdicts.iter().cloned()).collect();
    if let (false, Some((policy, reason))) = (holds_ip, &gate.refused) {
        return (
            target,
            Some(format!("policy {policy} refused this ReservedIP: {reason}")),
        );
    }
    if let (Target::PrivateIp(_), Some((policy, reason))) = (&target, &gate.target_refused) {
        let message = format!("policy {policy} denied the assignment: {reason}");
        draft.warn_once(POLICY_DENIED, &message);
        return (
            Target::Refused {
                reason: POLICY_DENIED,
                message,
            },
            None,
        );
    }
    (target, None)
}

/// The OCI call that makes `step`.
fn call_for(
    obs: &Observation<'_>,
    draft: &mut Draft,
    step: &Step,
    ip: Option<&PublicIp>,
    tags: &BTreeMap<String, String>,
    pool: Option<String>,
) -> Call {
    let update = |details, if_match: Option<&String>| match ip {
        Some(ip) => Call::Update {
            id: ip.id.clone(),
            details,
            if_match: if_match.cloned(),
        },
        None => Call::None,
    };
    match step {
        Step::Allocate { assign_to } => {
            let (token, marker) = match &draft.status.allocation_token {
                Some(token) => (token.clone(), None),
                None => {
                    draft.status.allocation_token = Some(obs.new_token.clone());
                    draft.status.state = Some(State::Allocating);
                    let mut marker = draft.status.clone();
                    marker.observed_generation = obs.generation;
                    (obs.new_token.clone(), Some(marker))
                }
            };
            let details = CreatePublicIpDetails {
                private_ip_id: assign_to.clone(),
                public_ip_pool_id: pool,
                display_name: Some(format!("{}/{}", obs.owner.namespace, obs.owner.name)),
                freeform_tags: Some(tags.clone()),
                ..CreatePublicIpDetails::reserved(obs.compartment_id)
            };
            Call::Create {
                details,
                token,
                marker,
            }
        }
        Step::Assign { private_ip_id } => {
            update(UpdatePublicIpDetails::assign(private_ip_id), None)
        }
        Step::Unassign => update(UpdatePublicIpDetails::unassign(), None),
        Step::Retag { tags } | Step::Claim { tags } => update(
            UpdatePublicIpDetails {
                freeform_tags: Some(tags.clone()),
                ..Default::default()
            },
            ip.and_then(|ip| ip.etag.as_ref()),
        ),
        Step::Wait | Step::Done => Call::None,
    }
}
