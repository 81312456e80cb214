//! A ReservedIP being deleted: release its public IP (delete it, or keep it
//! unassigned and untagged), or on an uninstall let it go untouched.
//!
//! Returning `Ok` lets the finalizer go, so every path that has not finished
//! returns an error instead: [`Error::CleanupPending`] (OCI is still changing
//! the IP, look again shortly) or [`Error::Oci`] (retried with backoff).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tracing::{info, warn};

use super::context::Context;
use super::error::Error;
use super::release::{Released, release};
use super::status;
use crate::api::crd::{ReclaimPolicy, ReservedIP};
use crate::decide::Note;
use crate::decide::ownership::{self, Holder, Owner};
use crate::decide::release::needs_listing;
use crate::oci::{OciError, UpdatePublicIpDetails};

pub async fn cleanup(rip: &ReservedIP, ctx: &Context) -> Result<Action, Error> {
    // The cache may lag behind our own last status write (the one that
    // recorded the IP): read the object fresh before deciding what to release.
    let status = status::fresh(ctx, rip).await?;
    let owner = ctx.owner(rip)?;
    if crd_being_deleted(ctx).await? {
        return let_go_on_uninstall(ctx, rip, &owner).await;
    }
    let policy = rip.spec.reclaim_policy;
    let named = status.public_ip_id.as_deref();
    let mut named_released = false;
    if let Some(id) = named {
        let etag = ctx
            .memory
            .at_rest(owner.uid)
            .filter(|(known, _)| known == id)
            .map(|(_, etag)| etag);
        let address = status.public_ip_address.as_deref();
        named_released =
            release_one(ctx, rip, &owner, id, address, policy, etag.as_deref()).await?;
    }
    // Status names the one IP, unless a create is unfinished (its IP is
    // found only by its tags) or the IP it names proved gone or not ours
    // (status is not authority): then every IP with our tags is released.
    if needs_listing(&status) || !named_released {
        let ours = ctx
            .list_ours(&owner, None)
            .await
            .map_err(|e| failed(rip, "finding the ReservedIP's public IPs", e))?;
        for ip in ours.iter().filter(|ip| Some(ip.id.as_str()) != named) {
            let address = ip.ip_address.as_deref();
            release_one(ctx, rip, &owner, &ip.id, address, policy, None).await?;
        }
    }
    ctx.forget(owner.namespace, owner.uid);
    crate::crash_point::hit("before:finalizer-removal");
    Ok(Action::await_change())
}

/// Releases one IP and announces it; `Ok(false)` when it was gone or not
/// ours, an error while the release is not finished.
async fn release_one(
    ctx: &Context,
    rip: &ReservedIP,
    owner: &Owner<'_>,
    id: &str,
    known_address: Option<&str>,
    policy: Option<ReclaimPolicy>,
    at_rest_etag: Option<&str>,
) -> Result<bool, Error> {
    let ours = |ip: &_| owner.classify(ip) == Holder::Us;
    let how = (policy, owner.namespace);
    let released = release(ctx.oci.as_ref(), id, ours, how, at_rest_etag)
        .await
        .map_err(|e| failed(rip, "releasing the public IP", e))?;
    let (address, kept) = match released {
        Released::Skipped => {
            warn!(%id, "public IP gone or no longer ours; letting go without touching it");
            return Ok(false);
        }
        Released::Pending(what) => return Err(Error::CleanupPending(what)),
        Released::Done { address, kept } => (address, kept),
    };
    let address = address
        .or(known_address.map(str::to_string))
        .unwrap_or_default();
    let message = if kept && policy == Some(ReclaimPolicy::Delete) {
        format!(
            "retained public IP {address} (unassigned, untagged), not released: it was taken over, and the platform team has not marked it {}=true",
            ownership::TAG_RELEASABLE
        )
    } else if kept {
        format!("retained public IP {address} (unassigned, untagged)")
    } else {
        format!("released public IP {address}")
    };
    let note = Note {
        warning: false,
        reason: "Released".into(),
        message,
    };
    status::publish(ctx, rip, &[note]).await;
    Ok(true)
}

/// An OCI failure during cleanup: logged, returned as an error so the finalizer stays.
fn failed(rip: &ReservedIP, doing: &str, e: OciError) -> Error {
    warn!(reservedip = %rip.name_any(), namespace = ?rip.namespace(), error = %e, "{doing} failed");
    Error::Oci(format!("{doing}: {e}"))
}

/// Whether the ReservedIP CRD itself is being deleted (an uninstall): its
/// deletion deletes every ReservedIP, and that must not release addresses.
/// An API error is an error (retried), never a guess either way.
async fn crd_being_deleted(ctx: &Context) -> Result<bool, Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    let name = format!("{}.{}", ReservedIP::plural(&()), ReservedIP::group(&()));
    Ok(match crds.get_opt(&name).await? {
        Some(crd) => crd.metadata.deletion_timestamp.is_some(),
        // Gone already: whatever deletes ReservedIPs now is the uninstall.
        None => true,
    })
}

/// Uninstall: the ReservedIP goes because its CRD goes. Its public IPs are
/// kept as they are (assignment included, so traffic keeps flowing) and only
/// lose the operator's ownership tags, so no later sweep (or reinstall)
/// releases them; a `k8s-oci-operator-retained` tag says where they came from.
async fn let_go_on_uninstall(
    ctx: &Context,
    rip: &ReservedIP,
    owner: &Owner<'_>,
) -> Result<Action, Error> {
    let ours = ctx
        .list_ours(owner, None)
        .await
        .map_err(|e| failed(rip, "finding the ReservedIP's public IPs", e))?;
    for ip in ours {
        let mut tags = ownership::retained_tags(&ip, owner.namespace);
        tags.insert(
            ownership::TAG_RETAINED.to_string(),
            format!("{}/{}/{}", owner.cluster, owner.namespace, owner.name),
        );
        let details = UpdatePublicIpDetails {
            freeform_tags: Some(tags),
            ..Default::default()
        };
        ctx.oci
            .update_public_ip(&ip.id, &details, ip.etag.as_deref())
            .await
            .map_err(|e| failed(rip, "letting go of the public IP on uninstall", e))?;
        let address = ip.ip_address.unwrap_or_default();
        info!(reservedip = %rip.name_any(), %address, "CRD deleted: public IP kept, ownership tags removed");
        let note = Note {
            warning: false,
            reason: "RetainedOnUninstall".into(),
            message: format!(
                "the ReservedIP CRD is being deleted: public IP {address} is kept (tagged {}) and no longer managed",
                ownership::TAG_RETAINED
            ),
        };
        status::publish(ctx, rip, &[note]).await;
    }
    ctx.forget(owner.namespace, owner.uid);
    crate::crash_point::hit("before:finalizer-removal");
    Ok(Action::await_change())
}
