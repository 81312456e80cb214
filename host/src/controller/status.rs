//! Writing what a pass concluded: its events, then its one status write.

use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::debug;

use super::context::{Context, MANAGER};
use crate::api::crd::{ReservedIP, ReservedIPStatus};
use crate::decide::Note;

/// Writes `status` with server-side apply (fields left `None` are removed),
/// unless it is what the object already has. Recorded first as our own
/// write, so its watch echo triggers no pass.
pub async fn write(
    ctx: &Context,
    rip: &ReservedIP,
    status: &ReservedIPStatus,
) -> Result<(), kube::Error> {
    if rip.status.as_ref() == Some(status) {
        return Ok(());
    }
    ctx.own_writes
        .remember(rip.metadata.uid.as_deref().unwrap_or_default(), status);
    let api: Api<ReservedIP> = Api::namespaced(
        ctx.client.clone(),
        rip.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let patch = json!({
        "apiVersion": ReservedIP::api_version(&()),
        "kind": ReservedIP::kind(&()),
        "status": status,
    });
    crate::crash_point::hit("before:status-write");
    api.patch_status(
        &rip.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(patch),
    )
    .await?;
    crate::crash_point::hit("after:status-write");
    Ok(())
}

/// Publishes events on the ReservedIP; a failure to publish is logged, never fatal.
pub async fn publish(ctx: &Context, rip: &ReservedIP, notes: &[Note]) {
    for note in notes {
        let event = Event {
            type_: if note.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: note.reason.clone(),
            note: Some(note.message.clone()),
            action: note.reason.clone(),
            secondary: None,
        };
        if let Err(e) = ctx.events.publish(&event, &rip.object_ref(&())).await {
            debug!(error = %e, "could not publish event");
        }
    }
}

/// The object's status as the API server has it now (not as cached).
pub async fn fresh(ctx: &Context, rip: &ReservedIP) -> Result<ReservedIPStatus, kube::Error> {
    let api: Api<ReservedIP> = Api::namespaced(
        ctx.client.clone(),
        rip.metadata.namespace.as_deref().unwrap_or_default(),
    );
    Ok(api
        .get_status(&rip.name_any())
        .await?
        .status
        .unwrap_or_default())
}
