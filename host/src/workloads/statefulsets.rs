//! The labelled StatefulSets' controller: one ReservedIP per ordinal, kept
//! across the pods' restarts, scale-down and deletion as the retention
//! annotations say.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, warn};

use super::desired::{self, Generator, Refusal, StatefulSetPlan};
use super::{Error, STATEFULSET, WANTS_IP, labelled, opted_in};
use crate::api::crd::ReservedIP;
use crate::controller::Context;
use crate::controller::context::MANAGER;

/// How often a StatefulSet waiting on something (a scaled-away pod to go,
/// an earlier StatefulSet's ReservedIPs to be removed) looks again.
const LOOK_AGAIN: Duration = Duration::from_secs(2);

struct Shared {
    ctx: Arc<Context>,
    rips: Store<ReservedIP>,
    /// The warnings published, so each is told once (a StatefulSet has no
    /// condition of ours to remember it by).
    told: Mutex<HashSet<String>>,
}

/// The labelled StatefulSets, cached into `writer` (the pod controller
/// reads the same store).
pub(super) fn stream(
    api: Api<StatefulSet>,
    writer: Writer<StatefulSet>,
) -> impl futures::Stream<Item = Result<StatefulSet, watcher::Error>> + Send + 'static {
    watcher(api, labelled())
        .backoff(crate::controller::watch_backoff())
        // The pod template is most of a StatefulSet and never read here.
        .modify(|sts| {
            sts.managed_fields_mut().clear();
            if let Some(spec) = sts.spec.as_mut() {
                spec.template = Default::default();
                spec.volume_claim_templates = None;
            }
        })
        .reflect(writer)
        .applied_objects()
}

pub(super) async fn run(
    ctx: Arc<Context>,
    labelled: impl futures::Stream<Item = Result<StatefulSet, watcher::Error>> + Send + 'static,
    store: Store<StatefulSet>,
) {
    let (rips, rip_changes) = super::generated_rips(&ctx, Some(Generator::StatefulSet));
    let namespaces = super::namespace_changes(&ctx);
    let in_namespace = store.clone();
    let shared = Arc::new(Shared {
        ctx,
        rips,
        told: Mutex::default(),
    });
    Controller::for_stream(labelled, store)
        // A ReservedIP of its changed or deleted (by someone else, or the
        // garbage collector): looked at again.
        .watches_stream(rip_changes, |rip| {
            let sts = rip.annotations().get(STATEFULSET)?.clone();
            Some(ObjectRef::<StatefulSet>::new(&sts).within(&rip.namespace()?))
        })
        .watches_stream(namespaces, move |ns| {
            crate::controller::in_namespace(&in_namespace, &ns)
        })
        .run(reconcile, error_policy, shared)
        .for_each(|res| async move {
            if let Err(e) = res {
                debug!(error = %e, "workload StatefulSet pass");
            }
        })
        .await;
}

fn error_policy(sts: Arc<StatefulSet>, error: &Error, _: Arc<Shared>) -> Action {
    warn!(statefulset = %sts.name_any(), namespace = ?sts.namespace(), %error, "workload StatefulSet pass failed");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(sts: Arc<StatefulSet>, shared: Arc<Shared>) -> Result<Action, Error> {
    if sts.metadata.deletion_timestamp.is_some()
        || sts.labels().get(WANTS_IP).map(String::as_str) != Some("true")
    {
        // Being deleted: the garbage collector releases the IPs it owns
        // (`whenDeleted: Delete`); retained ones stay, unowned.
        return Ok(Action::await_change());
    }
    let ctx = &shared.ctx;
    let ns = sts
        .namespace()
        .ok_or_else(|| Error::Incomplete(sts.name_any()))?;
    let name = sts.name_any();
    if let Err(refusal) = opted_in(ctx, &ns).await.map_err(Error::Namespace)? {
        tell_once(&shared, &sts, &refusal).await;
        return Ok(Action::await_change());
    }
    let (wanted, retention) = match desired::requested(sts.annotations())
        .and_then(|w| Ok((w, desired::retention(sts.annotations())?)))
    {
        Ok(read) => read,
        Err(refusal) => {
            tell_once(&shared, &sts, &refusal).await;
            return Ok(Action::await_change());
        }
    };
    let existing: Vec<Arc<ReservedIP>> = shared
        .rips
        .state()
        .into_iter()
        .filter(|r| {
            r.namespace().as_deref() == Some(ns.as_str()) && desired::ordinal_of(r, &name).is_some()
        })
        .collect();
    let existing: Vec<&ReservedIP> = existing.iter().map(|r| &**r).collect();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    // Only the ReservedIPs a scale-down releases need their pod read: one
    // whose pod still runs (terminating) keeps its IP until the pod is gone.
    // This controller does not watch pods, so it looks again meanwhile.
    let (mut gone, mut terminating) = (Vec::new(), false);
    if retention.delete_when_scaled {
        let running = desired::running_ordinals(&sts);
        for rip in &existing {
            if desired::ordinal_of(rip, &name).is_some_and(|o| !running.contains(&o)) {
                if pods.get_metadata_opt(&rip.name_any()).await?.is_none() {
                    gone.push(rip.name_any());
                } else {
                    terminating = true;
                }
            }
        }
    }
    let plan = desired::statefulset_plan(&sts, &existing, &wanted, retention, |pod| {
        !gone.iter().any(|g| g == pod)
    });
    let waiting = act(&shared, &sts, &ns, plan).await? || terminating;
    Ok(if waiting {
        Action::requeue(LOOK_AGAIN)
    } else {
        Action::await_change()
    })
}

/// Carries out a plan; true when something is still to wait for.
async fn act(
    shared: &Shared,
    sts: &StatefulSet,
    ns: &str,
    plan: StatefulSetPlan,
) -> Result<bool, Error> {
    let ctx = &shared.ctx;
    let rips: Api<ReservedIP> = Api::namespaced(ctx.client.clone(), ns);
    let waiting = plan.waiting;
    let params = PostParams {
        field_manager: Some(MANAGER.into()),
        ..PostParams::default()
    };
    for rip in &plan.create {
        match rips.create(&params, rip).await {
            Ok(_) => {
                publish(
                    ctx,
                    sts,
                    EventType::Normal,
                    "ReservedIPCreated",
                    format!("created ReservedIP {}", rip.name_any()),
                )
                .await
            }
            // Made meanwhile (our cache lags) or by someone else: the next
            // pass, triggered by its watch event, tells which.
            Err(kube::Error::Api(e)) if e.code == 409 => {
                if let Some(found) = rips.get_opt(&rip.name_any()).await?
                    && desired::ordinal_of(&found, &sts.name_any()).is_none()
                {
                    taken(shared, sts, &rip.name_any()).await;
                }
            }
            Err(kube::Error::Api(e)) if e.code == 422 || e.code == 403 => {
                tell_once(shared, sts, &("ReservedIPRefused", e.message)).await;
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
    }
    for name in &plan.taken {
        taken(shared, sts, name).await;
    }
    for (name, owners) in &plan.reown {
        rips.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "ownerReferences": owners } })),
        )
        .await?;
    }
    for name in &plan.delete {
        match rips.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                publish(
                    ctx,
                    sts,
                    EventType::Normal,
                    "ReservedIPDeleted",
                    format!("deleted ReservedIP {name}: its ordinal was scaled away and the StatefulSet releases IPs when scaled"),
                )
                .await
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(waiting)
}

async fn taken(shared: &Shared, sts: &StatefulSet, name: &str) {
    tell_once(
        shared,
        sts,
        &(
            "ReservedIPNameTaken",
            format!(
                "a ReservedIP named {name} exists and was not made for this StatefulSet; its ordinal gets no IP until it is renamed or deleted"
            ),
        ),
    )
    .await;
}

/// Publishes a warning, once per StatefulSet generation and reason.
async fn tell_once(shared: &Shared, sts: &StatefulSet, (reason, message): &Refusal) {
    let key = format!(
        "{}/{}/{}",
        sts.uid().unwrap_or_default(),
        sts.metadata.generation.unwrap_or_default(),
        reason
    );
    if !shared
        .told
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key)
    {
        return;
    }
    publish(
        &shared.ctx,
        sts,
        EventType::Warning,
        reason,
        message.clone(),
    )
    .await;
}

async fn publish(ctx: &Context, sts: &StatefulSet, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "ReservedIPForStatefulSet".into(),
        secondary: None,
    };
    if let Err(e) = ctx.events.publish(&event, &sts.object_ref(&())).await {
        warn!(error = %e, statefulset = %sts.name_any(), "publishing an event");
    }
}
