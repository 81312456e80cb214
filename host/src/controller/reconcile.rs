//! One pass over a ReservedIP. [`reconcile`] is thin: the finalizer helper
//! branches to [`apply`] (normal) or `cleanup` (being deleted); a new
//! ReservedIP's first pass adds the finalizer while it observes.
//!
//! [`apply`] reads like the lifecycle: observe, decide, act, record. Each
//! pass makes at most one mutating OCI call and writes status once (plus,
//! before a create, the allocation marker); OCI works asynchronously, so a
//! pass that started a change requeues to watch it finish instead of
//! blocking a worker.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, warn};

use super::act::act;
use super::cleanup::cleanup;
use super::context::Context;
use super::error::Error;
use super::observe::observe;
use super::status;
use crate::api::conditions::{self, READY};
use crate::api::crd::{ReservedIP, ReservedIPStatus};
use crate::decide::ownership::{self, Holder, Owner};
use crate::decide::{
    Conclusion, Decision, How, Outcome, Plan, PublicIpSeen, Requeue, conclude, decide,
};
use crate::metrics::PassResult;

/// When a new ReservedIP that changed while its first pass added the
/// finalizer is looked at again, if the change's watch event does not come first.
const RETRY_CHANGED: Duration = Duration::from_millis(500);

/// The finalizer that keeps a ReservedIP until its public IP is released.
pub const FINALIZER: &str = "oci.k8s.logmein.com/reservedip";

pub async fn reconcile(rip: Arc<ReservedIP>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _under_way = ctx.health.pass();
    let began = Instant::now();
    // The reason of a failure the pass recorded in status, if it did.
    let failure = Mutex::new(None);
    let result = pass(rip, &ctx, &failure).await;
    let failure = failure.into_inner().unwrap_or_else(|e| e.into_inner());
    let (counted, reason) = match (&result, failure) {
        (Err(e), _) => match e.reason() {
            // Waiting for OCI to finish a release is not a failure.
            None => (PassResult::Success, None),
            Some(reason) => (PassResult::Error, Some(reason.to_string())),
        },
        (Ok(_), Some(reason)) => (PassResult::Failed, Some(reason)),
        (Ok(_), None) => (PassResult::Success, None),
    };
    ctx.metrics
        .pass(counted, reason.as_deref(), began.elapsed());
    result
}

async fn pass(
    rip: Arc<ReservedIP>,
    ctx: &Context,
    failure: &Mutex<Option<String>>,
) -> Result<Action, Error> {
    let ns = rip
        .namespace()
        .ok_or_else(|| Error::Incomplete(rip.name_any()))?;
    let api: Api<ReservedIP> = Api::namespaced(ctx.client.clone(), &ns);
    let finalized = rip.finalizers().iter().any(|f| f == FINALIZER);
    debug!(reservedip = %rip.name_any(), finalized, "pass begins");
    if !finalized && rip.meta().deletion_timestamp.is_none() {
        return first_pass(rip, ctx, &api, failure).await;
    }
    finalizer(&api, FINALIZER, rip, |event| async {
        match event {
            Finalizer::Apply(rip) => {
                let (action, failed) = apply(&rip, ctx, None).await?;
                *failure.lock().unwrap_or_else(|e| e.into_inner()) = failed;
                Ok(action)
            }
            Finalizer::Cleanup(rip) => cleanup(&rip, ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// The pass of a ReservedIP without the finalizer yet. kube's helper adds
/// it and ends the pass, to go on when the watch brings the change back: a
/// round trip per new ReservedIP before its first create (a tenth of a
/// second at the start of a burst). Here it is added while the pass
/// observes, and nothing is done in OCI before it is in place; its echo
/// wakes no other pass. The patch names the resourceVersion the pass
/// started from, so once it succeeds the object was as cached: its status
/// too, which spares the fresh read of status a pass about to allocate
/// makes otherwise.
async fn first_pass(
    rip: Arc<ReservedIP>,
    ctx: &Context,
    api: &Api<ReservedIP>,
    failure: &Mutex<Option<String>>,
) -> Result<Action, Error> {
    let Some(version) = rip.resource_version() else {
        return Err(Error::Incomplete(rip.name_any()));
    };
    let mut with_finalizer = (*rip).clone();
    with_finalizer.finalizers_mut().push(FINALIZER.to_string());
    ctx.own_writes
        .remember_finalizer(&rip.uid().unwrap_or_default(), FINALIZER);
    let patch = json!({
        "metadata": {
            // A precondition: refused (409) if the object changed since.
            "resourceVersion": version,
            "finalizers": with_finalizer.finalizers(),
        }
    });
    let name = rip.name_any();
    let added = async move {
        let asked = Instant::now();
        // In its turn, like the pod read (`Context::arrival_turn`).
        let _turn = ctx.arrival_turn().await;
        let patched = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
        debug!(reservedip = %name, took_ms = asked.elapsed().as_millis(), "finalizer added");
        patched.map(|_| ()).map_err(Error::Kube)
    };
    let (action, failed) = match apply(&with_finalizer, ctx, Some(added.boxed())).await {
        Err(Error::Kube(kube::Error::Api(e))) if e.code == 409 => {
            // Changed since cached: the watch brings the change, and a
            // pass over it right after this one.
            debug!(reservedip = %rip.name_any(), "changed while its finalizer was added; again");
            return Ok(Action::requeue(RETRY_CHANGED));
        }
        other => other?,
    };
    *failure.lock().unwrap_or_else(|e| e.into_inner()) = failed;
    Ok(action)
}

pub fn error_policy(rip: Arc<ReservedIP>, error: &Error, ctx: Arc<Context>) -> Action {
    if let Error::Finalizer(e) = error
        && let kube::runtime::finalizer::Error::CleanupFailed(Error::CleanupPending(what)) =
            e.as_ref()
    {
        debug!(reservedip = %rip.name_any(), %what, "waiting to release");
        return Action::requeue(ctx.settings.poll_interval);
    }
    warn!(reservedip = %rip.name_any(), namespace = ?rip.namespace(), %error, "reconcile error");
    Action::requeue(ctx.memory.backoff(&rip.uid().unwrap_or_default()))
}

/// Brings a ReservedIP to the state its spec asks for; with the reason of
/// the failure it recorded in status, if any (for the metrics).
/// `adding_finalizer`: a new ReservedIP's finalizer being added, on the
/// condition that the object is as cached (awaited beside the observation,
/// which then starts from the cached status; nothing is done before it is
/// in place).
async fn apply(
    rip: &ReservedIP,
    ctx: &Context,
    adding_finalizer: Option<BoxFuture<'_, Result<(), Error>>>,
) -> Result<(Action, Option<String>), Error> {
    let owner = ctx.owner(rip)?;
    let (obs, seen_at) = match adding_finalizer {
        None => {
            let status = starting_status(rip, ctx).await?;
            observe(ctx, rip, owner.clone(), status).await
        }
        Some(added) => {
            let cached = rip.status.clone().unwrap_or_default();
            let (observed, added) = tokio::join!(observe(ctx, rip, owner.clone(), cached), added);
            added?;
            observed
        }
    };
    let seen_at = seen_at.unwrap_or_else(Instant::now);
    if let PublicIpSeen::Found {
        ip,
        how: How::Read | How::Gathered,
    } = &obs.public_ip
        && !ip.lifecycle_state.is_transitional()
    {
        // Seen fresh at rest: a change being watched is done.
        ctx.waits().done(owner.uid, seen_at);
    }
    let decision = decide(&obs);
    debug!(reservedip = %rip.name_any(), ?decision, "decided");
    let conclusion = match decision {
        Decision::Conclude(conclusion) => conclusion,
        Decision::Reread { id } => {
            // Never act on a listed observation: read the IP fresh, now
            // (not from a listing, not even a gathered one).
            ctx.listing.touch(&id);
            ctx.waits().forget(owner.uid);
            return Ok((Action::requeue(Duration::ZERO), None));
        }
        Decision::Act(plan) => {
            let outcome = act(ctx, rip, &plan).await?;
            remember_at_rest(ctx, &owner, &plan, &outcome);
            conclude(plan, outcome)
        }
    };
    let failed = conclusion.failure.clone();
    let action = record(ctx, rip, conclusion, seen_at).await?;
    Ok((action, failed))
}

/// Status as cached, or read fresh when no IP is recorded: about to
/// allocate, the cache may not show our last write yet (the IP or the
/// allocation marker), and a lagging cache must never cause a second create.
async fn starting_status(rip: &ReservedIP, ctx: &Context) -> Result<ReservedIPStatus, Error> {
    let cached = rip.status.clone().unwrap_or_default();
    if cached.public_ip_id.is_some() {
        return Ok(cached);
    }
    Ok(status::fresh(ctx, rip).await?)
}

/// An IP read fresh, ours and left as it was is remembered with its etag (a
/// delete then needs one call); any change forgets it.
fn remember_at_rest(ctx: &Context, owner: &Owner<'_>, plan: &Plan, outcome: &Outcome) {
    let at_rest = match (&plan.observed, outcome) {
        (Some(ip), Outcome::Answered(_)) if !plan.step.calls_oci() => ip
            .etag
            .clone()
            // Not for a taken-over address: whether it is deleted depends on
            // its tags, read at the delete.
            .filter(|_| {
                owner.classify(ip) == Holder::Us
                    && !ip.lifecycle_state.is_transitional()
                    && !ownership::is_adopted(ip)
            })
            .map(|etag| (ip.id.clone(), etag)),
        _ => None,
    };
    // A listed observation (no etag) says nothing new: keep what was remembered.
    if at_rest.is_some() || plan.step.calls_oci() {
        ctx.memory.set_at_rest(owner.uid, at_rest);
    }
}

/// Writes the pass's status once, publishes its events, and says when to
/// look again (`seen_at`: when the read this pass concluded from began).
async fn record(
    ctx: &Context,
    rip: &ReservedIP,
    conclusion: Conclusion,
    seen_at: Instant,
) -> Result<Action, Error> {
    let uid = rip.uid().unwrap_or_default();
    let mut look_due = None;
    let wait = match conclusion.requeue {
        Requeue::Now => Duration::ZERO,
        Requeue::After(wait) => {
            ctx.memory.succeeded(&uid);
            wait
        }
        Requeue::Backoff { at_least } => ctx
            .memory
            .backoff(&uid)
            .max(at_least)
            .min(ctx.settings.resync_interval),
        Requeue::Transition { state, began } => {
            ctx.memory.succeeded(&uid);
            let mut waits = ctx.waits();
            let now = Instant::now();
            let wait = if began {
                waits.began(&uid, state, now)
            } else {
                // Timed from when OCI was seen still changing: a look that
                // waited for a shared listing has spent part of the wait.
                let wait = waits.still(&uid, state, seen_at);
                (seen_at + wait).saturating_duration_since(now)
            };
            debug!(reservedip = %rip.name_any(), ?state, began, ?wait, estimate = ?waits.estimate(state), "transition: next look");
            look_due = Some(now + wait);
            wait
        }
    };
    let status = &conclusion.status;
    if !status.claims_an_ip() {
        // Holds nothing: its place under the namespace's cap is free.
        ctx.quota
            .give_back(&rip.namespace().unwrap_or_default(), &uid);
    }
    // Status first: it is what users and workloads wait on; the events
    // follow (and are published even if the write failed: what they tell
    // happened in OCI either way).
    ctx.metrics
        .spec_pass(rip, is_ready(status, rip.metadata.generation));
    let written = status::write(ctx, rip, &conclusion.status).await;
    status::publish(ctx, rip, &conclusion.events).await;
    written?;
    // A look at a transition is due when the waits said, the writes above
    // included: a look that came later by them (10-20 ms) taught the waits
    // that OCI took that much longer, so an OCI that answers at once was
    // looked at some 30 ms after its write rather than 10.
    let wait = look_due.map_or(wait, |due| due.saturating_duration_since(Instant::now()));
    Ok(Action::requeue(wait))
}

/// Ready for this generation of the spec.
fn is_ready(status: &ReservedIPStatus, generation: Option<i64>) -> bool {
    conditions::get(&status.conditions, READY)
        .is_some_and(|c| c.status == "True" && c.observed_generation == generation)
}
