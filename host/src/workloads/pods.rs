//! The labelled pods' controller: creates a pod's ReservedIP (unless its
//! StatefulSet's controller does) and shows the IP on the pod.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, warn};

use super::desired::{self, PodStep, PodView};
use super::{Error, PUBLIC_IP, READY_CONDITION, WANTS_IP, labelled, opted_in, scoped};
use crate::api::crd::ReservedIP;
use crate::controller::Context;
use crate::controller::context::MANAGER;

/// How often a pod waiting for an earlier pod's ReservedIP to go looks again.
const WAIT_FOR_PREVIOUS: Duration = Duration::from_secs(2);

struct Shared {
    ctx: Arc<Context>,
    rips: Store<ReservedIP>,
    statefulsets: Store<StatefulSet>,
}

pub(super) async fn run(ctx: Arc<Context>, statefulsets: Store<StatefulSet>) {
    let (pod_store, pod_writer) = kube::runtime::reflector::store();
    let pods = watcher(scoped::<Pod>(&ctx), labelled())
        .backoff(crate::controller::watch_backoff())
        // What the pass reads: metadata and the pod's conditions.
        .modify(|pod| {
            pod.managed_fields_mut().clear();
            pod.spec = None;
            if let Some(status) = pod.status.as_mut() {
                *status = PodStatus {
                    conditions: status.conditions.take(),
                    ..PodStatus::default()
                };
            }
        })
        .reflect(pod_writer)
        .applied_objects();
    let (rips, rip_changes) = super::generated_rips(&ctx, None);
    let namespaces = super::namespace_changes(&ctx);
    let in_namespace = pod_store.clone();
    let shared = Arc::new(Shared {
        ctx,
        rips,
        statefulsets,
    });
    Controller::for_stream(pods, pod_store)
        // A ReservedIP's change is shown on the pod it is assigned to.
        .watches_stream(rip_changes, |rip| {
            let pod = rip.spec.assignment.as_ref()?.pod_name.clone()?;
            Some(ObjectRef::<Pod>::new(&pod).within(&rip.namespace()?))
        })
        // A namespace opted in (or out) is applied to its pods at once.
        .watches_stream(namespaces, move |ns| {
            crate::controller::in_namespace(&in_namespace, &ns)
        })
        .run(reconcile, error_policy, shared)
        .for_each(|res| async move {
            if let Err(e) = res {
                debug!(error = %e, "workload pod pass");
            }
        })
        .await;
}

fn error_policy(pod: Arc<Pod>, error: &Error, _: Arc<Shared>) -> Action {
    warn!(pod = %pod.name_any(), namespace = ?pod.namespace(), %error, "workload pod pass failed");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(pod: Arc<Pod>, shared: Arc<Shared>) -> Result<Action, Error> {
    if pod.metadata.deletion_timestamp.is_some()
        || pod.labels().get(WANTS_IP).map(String::as_str) != Some("true")
    {
        return Ok(Action::await_change());
    }
    let ctx = &shared.ctx;
    let ns = pod
        .namespace()
        .ok_or_else(|| Error::Incomplete(pod.name_any()))?;
    let name = pod.name_any();
    let rips: Api<ReservedIP> = Api::namespaced(ctx.client.clone(), &ns);
    let allowed = opted_in(ctx, &ns).await.map_err(Error::Namespace)?;
    let statefulset_ips = of_labelled_statefulset(ctx, &pod, &shared.statefulsets).await?;
    let existing = shared.rips.get(&ObjectRef::new(&name).within(&ns));
    let mut step = desired::pod_step(&pod, existing.as_deref(), allowed.clone(), statefulset_ips);
    let mut existing = existing.map(|r| (*r).clone());
    if let PodStep::Create(rip) = &step {
        let params = PostParams {
            field_manager: Some(MANAGER.into()),
            ..PostParams::default()
        };
        match rips.create(&params, rip).await {
            Ok(_) => {
                publish(
                    ctx,
                    &pod,
                    EventType::Normal,
                    "ReservedIPCreated",
                    format!("created ReservedIP {name} for this pod"),
                )
                .await;
                show(ctx, &pod, &desired::waiting_view(&name)).await?;
                // Its changes come through the ReservedIP watch.
                return Ok(Action::await_change());
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                // Made meanwhile, or a hand-made one the cache does not hold.
                existing = rips.get_opt(&name).await?;
                step = desired::pod_step(&pod, existing.as_ref(), allowed, statefulset_ips);
            }
            Err(kube::Error::Api(e)) if e.code == 422 || e.code == 403 => {
                // The API server's own refusal (a tag rule, a pool pattern,
                // or a missing permission) says what to fix.
                step = PodStep::Refuse(("ReservedIPRefused", e.message));
            }
            Err(e) => return Err(e.into()),
        }
    }
    match step {
        PodStep::Create(_) => Ok(Action::requeue(WAIT_FOR_PREVIOUS)),
        PodStep::Mirror => {
            let view = match &existing {
                Some(rip) => desired::pod_view(&pod, rip),
                None => desired::waiting_view(&name),
            };
            if view.ready && !desired::pod_shows(&pod, &view) {
                publish(
                    ctx,
                    &pod,
                    EventType::Normal,
                    "PublicIPAssigned",
                    view.message.clone(),
                )
                .await;
            }
            show(ctx, &pod, &view).await?;
            Ok(Action::await_change())
        }
        PodStep::WaitForPrevious => {
            show(ctx, &pod, &desired::waiting_view(&name)).await?;
            Ok(Action::requeue(WAIT_FOR_PREVIOUS))
        }
        PodStep::Refuse(refusal) => {
            let view = desired::refused_view(&refusal);
            // Told once: the condition on the pod remembers it was.
            if !desired::pod_shows(&pod, &view) {
                publish(ctx, &pod, EventType::Warning, refusal.0, refusal.1.clone()).await;
                show(ctx, &pod, &view).await?;
            }
            Ok(Action::await_change())
        }
    }
}

/// Whether the pod's controller is a StatefulSet that asked for IPs per
/// ordinal (its controller creates the pod's ReservedIP). Read from the API
/// when the cache does not hold it: a StatefulSet's first pod can arrive
/// before the StatefulSet's own watch event, and a pod must never take the
/// name of its ordinal's ReservedIP for an IP of its own.
async fn of_labelled_statefulset(
    ctx: &Context,
    pod: &Pod,
    statefulsets: &Store<StatefulSet>,
) -> Result<bool, Error> {
    let Some(owner) = pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == "StatefulSet")
    else {
        return Ok(false);
    };
    let ns = pod
        .namespace()
        .ok_or_else(|| Error::Incomplete(pod.name_any()))?;
    let labelled = |sts: &StatefulSet| {
        sts.uid().as_deref() == Some(owner.uid.as_str())
            && sts.labels().get(WANTS_IP).map(String::as_str) == Some("true")
    };
    if let Some(sts) = statefulsets.get(&ObjectRef::new(&owner.name).within(&ns)) {
        return Ok(labelled(&sts));
    }
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    Ok(api
        .get_opt(&owner.name)
        .await?
        .is_some_and(|s| labelled(&s)))
}

/// Writes the view onto the pod, if it does not show it yet: the condition
/// (pods/status) and the address annotation.
async fn show(ctx: &Context, pod: &Pod, view: &PodView) -> Result<(), Error> {
    if desired::pod_shows(pod, view) {
        return Ok(());
    }
    let (Some(ns), name) = (pod.namespace(), pod.name_any()) else {
        return Err(Error::Incomplete(pod.name_any()));
    };
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let status = if view.ready { "True" } else { "False" };
    let previous = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == READY_CONDITION));
    // The transition time moves only when the status flips.
    let since = match previous {
        Some(c) if c.status == status => c.last_transition_time.clone().map(|t| t.0),
        _ => None,
    }
    .unwrap_or_else(Timestamp::now);
    let condition = json!({
        "type": READY_CONDITION,
        "status": status,
        "reason": view.reason,
        "message": view.message,
        "lastTransitionTime": since,
    });
    // Strategic merge: conditions merge by type, kubelet's stay untouched.
    pods.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Strategic(json!({ "status": { "conditions": [condition] } })),
    )
    .await?;
    if pod.annotations().get(PUBLIC_IP) != view.address.as_ref() {
        pods.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { PUBLIC_IP: view.address } } })),
        )
        .await?;
    }
    Ok(())
}

async fn publish(ctx: &Context, pod: &Pod, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "ReservedIPForPod".into(),
        secondary: None,
    };
    if let Err(e) = ctx.events.publish(&event, &pod.object_ref(&())).await {
        warn!(error = %e, pod = %pod.name_any(), "publishing an event");
    }
}
