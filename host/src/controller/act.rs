//! Acting on a plan: at most one mutating OCI call per pass (before a
//! create, the allocation marker is written to status first).

use kube::ResourceExt;

use super::context::Context;
use super::error::MarkerError;
use super::status;
use crate::api::crd::ReservedIP;
use crate::decide::outcome::may_replace_ephemeral;
use crate::decide::pass::is_target_taken;
use crate::decide::plan::Step;
use crate::decide::{Call, Failure, Outcome, Plan, Target};
use crate::oci::PublicIpState;

/// Makes the plan's call.
pub async fn act(ctx: &Context, rip: &ReservedIP, plan: &Plan) -> Result<Outcome, MarkerError> {
    if let (Step::Allocate { assign_to: Some(_) } | Step::Assign { .. }, Target::PrivateIp(t)) =
        (&plan.step, &plan.target)
    {
        ctx.memory.send(&rip.uid().unwrap_or_default(), t.clone());
    }
    let answer = match &plan.call {
        Call::None => return Ok(Outcome::Answered(plan.observed.clone())),
        Call::Create {
            details,
            token,
            marker,
        } => {
            if let Some(marker) = marker {
                // Once the marker is in status, a crash after the create is
                // recovered by the same token or by our tags, never by a second IP.
                // In its turn (`Context::marker_turn`).
                let asked = std::time::Instant::now();
                let turn = ctx.marker_turn().await;
                status::write(ctx, rip, marker).await.map_err(MarkerError)?;
                drop(turn);
                tracing::debug!(reservedip = %rip.name_any(), took_ms = asked.elapsed().as_millis(), "allocation marker written");
            }
            ctx.oci.create_public_ip(details, token).await
        }
        Call::Update {
            id,
            details,
            if_match,
        } => {
            ctx.oci
                .update_public_ip(id, details, if_match.as_deref())
                .await
        }
    };
    let failure = match answer {
        Ok(ip) => return Ok(Outcome::Answered(Some(ip))),
        Err(e) => Failure::from_oci(&e),
    };
    if !is_target_taken(&plan.step, &failure) {
        return Ok(Outcome::Failed(failure));
    }
    // Whose public IP is on the target, for a message that says so.
    let holder = match plan.target.private_ip_id() {
        Some(private_ip) => ctx
            .oci
            .get_public_ip_by_private_ip_id(private_ip)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    if let Some(h) = &holder
        && may_replace_ephemeral(rip.spec.assignment.as_ref(), &plan.target, h)
    {
        let address = h.ip_address.clone().unwrap_or_default();
        if matches!(
            h.lifecycle_state,
            PublicIpState::Terminating | PublicIpState::Terminated
        ) {
            return Ok(Outcome::EphemeralReplaced {
                address,
                deleted: false,
            });
        }
        // The call above changed nothing (refused), so this delete is the
        // pass's one change; its etag makes it the IP just read, nothing else.
        return Ok(
            match ctx.oci.delete_public_ip(&h.id, h.etag.as_deref()).await {
                Ok(_) => Outcome::EphemeralReplaced {
                    address,
                    deleted: true,
                },
                Err(e) => Outcome::Failed(Failure::from_oci(&e)),
            },
        );
    }
    Ok(Outcome::TargetTaken { failure, holder })
}
