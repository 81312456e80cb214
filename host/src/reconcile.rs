//! The ReservedIP controller: observe, decide, act, record.
//!
//! [`reconcile`] is thin: the finalizer helper branches to [`apply`] (normal)
//! or [`cleanup`] (being deleted). Each pass observes the public IP in OCI and
//! the target in the cluster, asks [`plan::decide`] for one step, makes at most
//! one mutating OCI call, and writes status once. OCI works asynchronously, so
//! a pass that started a change requeues shortly to watch it finish instead of
//! blocking a worker.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use rand::Rng;
use serde_json::json;
use tracing::{debug, info, warn};

use crate::conditions::{self, ALLOCATED, ASSIGNED, READY};
use crate::crd::{ReclaimPolicy, ReservedIP, ReservedIPStatus, State};
use crate::ip_listing::IpListing;
use crate::oci::{
    CreatePublicIpDetails, ListPublicIpsQuery, OciError, OciNetwork, PublicIp,
    UpdatePublicIpDetails,
};
use crate::own_writes::OwnWrites;
use crate::ownership::{self, Holder, Owner};
use crate::plan::{self, ResolvedTarget, Step, Target};
use crate::pod_ip::TargetResolver;
use crate::policy::PolicyEngine;
use crate::policy_gate;

/// The finalizer that keeps a ReservedIP until its public IP is released.
pub const FINALIZER: &str = "oci.k8s.logmein.com/reservedip";
/// Condition reason: OCI answers 404 for the recorded public IP (so far).
const PUBLIC_IP_MISSING: &str = "PublicIPNotFound";
/// Condition reason: the target private IP already has another public IP.
const TARGET_TAKEN: &str = "TargetHasPublicIP";
/// ReservedIPs reconciled at once.
const RECONCILE_CONCURRENCY: u16 = 32;
/// kubectl's copy of the last applied manifest, not needed in the cache.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Field manager of the operator's status writes.
const MANAGER: &str = "k8s-oci-operator";
/// Oldest listing of the compartment a drift check is answered from (and at
/// most half the resync interval).
const LISTING_MAX_AGE: Duration = Duration::from_secs(60);

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Compartment where public IPs are created and looked for.
    pub compartment_id: String,
    /// This cluster's identity in the ownership tags.
    pub cluster_id: String,
    /// How soon to look again while OCI is changing an IP.
    pub poll_interval: Duration,
    /// How often an IP at rest is checked for drift.
    pub resync_interval: Duration,
    /// Watch only this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// How often the orphan sweep lists the compartment's public IPs.
    pub orphan_interval: Duration,
    /// How long an IP must stay orphaned before the sweep releases it.
    pub orphan_grace: Duration,
    /// How long a recorded public IP must answer 404 before it counts as
    /// deleted (OCI reads are eventually consistent).
    pub missing_grace: Duration,
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub oci: Arc<dyn OciNetwork>,
    pub resolver: TargetResolver,
    /// The WebAssembly policies (none loaded: every decision passes through).
    pub policy: PolicyEngine,
    pub recorder: Recorder,
    pub settings: Settings,
    /// The statuses this process wrote, so their watch echo triggers nothing.
    pub own_writes: OwnWrites,
    /// A recent listing of the compartment's public IPs.
    pub listing: IpListing,
    /// Consecutive failures per ReservedIP UID, for backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// The private IP each ReservedIP (by UID) was last sent to, while status
    /// cannot say it yet (it records a target once assigned): the poll that
    /// watches an assignment finish needs no new lookup.
    sent_to: Mutex<HashMap<String, ResolvedTarget>>,
}

impl Context {
    pub fn new(
        client: Client,
        oci: Arc<dyn OciNetwork>,
        settings: Settings,
        subnet_ids: Vec<String>,
        policy: PolicyEngine,
    ) -> Arc<Self> {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Arc::new(Self {
            recorder: Recorder::new(client.clone(), reporter),
            resolver: TargetResolver::new(oci.clone(), settings.compartment_id.clone(), subnet_ids),
            client,
            oci,
            policy,
            own_writes: OwnWrites::default(),
            listing: IpListing::new(LISTING_MAX_AGE.min(settings.resync_interval / 2)),
            settings,
            failures: Mutex::default(),
            sent_to: Mutex::default(),
        })
    }

    fn sent_to(&self) -> std::sync::MutexGuard<'_, HashMap<String, ResolvedTarget>> {
        self.sent_to.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets what this process remembers of a ReservedIP that is gone.
    fn forget(&self, uid: &str) {
        self.succeeded(uid);
        self.own_writes.forget(uid);
        self.sent_to().remove(uid);
    }

    /// Exponential backoff with jitter per object: 1s, 2s, 4s ... capped at 5 min.
    fn backoff(&self, uid: &str) -> Duration {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = f.entry(uid.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        let base = Duration::from_secs(1u64 << (*n - 1).min(8)).min(Duration::from_secs(300));
        let jitter = rand::thread_rng().gen_range(0.8..1.2);
        base.mul_f64(jitter)
    }

    fn succeeded(&self, uid: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }
}

/// Errors that stop a reconcile. OCI errors are not among them: they are
/// recorded in status and retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("{0} has no namespace or UID")]
    Incomplete(String),
    /// Cleanup waits for OCI to finish a change; not a failure.
    #[error("release in progress: {0}")]
    CleanupPending(String),
    /// An OCI call failed during cleanup; retried with backoff.
    #[error("{0}")]
    Oci(String),
}

/// Runs the controller until shutdown.
pub async fn run(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    let (rips, pods): (Api<ReservedIP>, Api<PartialObjectMeta<Pod>>) = match &ctx.settings.namespace
    {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client, ns),
        ),
        None => (Api::all(client.clone()), Api::all(client)),
    };
    // The trigger stream skips the echo of our own status writes (the pass
    // that wrote one has already requeued itself); the cache sees everything.
    let (store, writer) = kube::runtime::reflector::store();
    let filter_ctx = ctx.clone();
    let trigger = watcher(rips, watcher::Config::default().any_semantic())
        .default_backoff()
        // The cache keeps what reconciles read, not the bookkeeping of every
        // writer (the bulk of a ReservedIP's size at rest).
        .modify(|rip| {
            rip.managed_fields_mut().clear();
            rip.annotations_mut().remove(LAST_APPLIED);
        })
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            move |rip: &ReservedIP| Some(filter_ctx.own_writes.trigger_key(rip)),
            Default::default(),
        );
    let controller = Controller::for_stream(trigger, store.clone());
    // Runs beside the controller (not spawned), so it stops with it.
    let sweeper = crate::orphans::run(
        ctx.clone(),
        store.clone(),
        ctx.settings.orphan_interval,
        ctx.settings.orphan_grace,
    );
    // Pods only trigger reconciles of the ReservedIPs that name them; only
    // their metadata is watched and nothing is cached, so memory stays small
    // however many pods the cluster runs. Reconcile reads the one pod it needs.
    let pods = watcher(pods, watcher::Config::default().any_semantic())
        .default_backoff()
        .touched_objects();
    let controller = controller
        .watches_stream(pods, move |pod| {
            let (ns, name) = (pod.namespace(), pod.name_any());
            store
                .state()
                .into_iter()
                .filter(|r| r.namespace() == ns && pod_name(r) == Some(name.as_str()))
                .map(|r| ObjectRef::from_obj(&*r))
                .collect::<Vec<_>>()
        })
        // A changed policy is applied to every ReservedIP at once.
        .reconcile_all_on(ctx.policy.changes())
        // Bounded concurrency: a wave of thousands waits in the queue, not in
        // memory as reconciles parked on the OCI rate limiter.
        .with_config(
            kube::runtime::controller::Config::default().concurrency(RECONCILE_CONCURRENCY),
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => debug!(reservedip = %obj, "reconciled"),
                Err(e) => warn!(error = %e, "reconcile failed"),
            }
        });
    tokio::select! {
        _ = controller => {}
        _ = sweeper => {}
    }
}

fn pod_name(rip: &ReservedIP) -> Option<&str> {
    rip.spec
        .assignment
        .as_ref()
        .and_then(|a| a.pod_name.as_deref())
}

async fn reconcile(rip: Arc<ReservedIP>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = rip
        .namespace()
        .ok_or_else(|| Error::Incomplete(rip.name_any()))?;
    let api: Api<ReservedIP> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, rip, |event| async {
        match event {
            Finalizer::Apply(rip) => apply(&rip, &ctx).await,
            Finalizer::Cleanup(rip) => cleanup(&rip, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

fn error_policy(rip: Arc<ReservedIP>, error: &Error, ctx: Arc<Context>) -> Action {
    if let Error::Finalizer(e) = error
        && let kube::runtime::finalizer::Error::CleanupFailed(Error::CleanupPending(what)) =
            e.as_ref()
    {
        debug!(reservedip = %rip.name_any(), %what, "waiting to release");
        return Action::requeue(ctx.settings.poll_interval);
    }
    warn!(reservedip = %rip.name_any(), namespace = ?rip.namespace(), %error, "reconcile error");
    Action::requeue(ctx.backoff(&rip.uid().unwrap_or_default()))
}

/// One pass's view of a ReservedIP, for status and events.
struct Pass<'a> {
    rip: &'a ReservedIP,
    ctx: &'a Context,
    status: ReservedIPStatus,
}

impl<'a> Pass<'a> {
    fn new(rip: &'a ReservedIP, ctx: &'a Context) -> Self {
        Self {
            rip,
            ctx,
            status: rip.status.clone().unwrap_or_default(),
        }
    }

    fn owner(&self) -> Result<Owner<'a>, Error> {
        let incomplete = || Error::Incomplete(self.rip.name_any());
        Ok(Owner {
            cluster: &self.ctx.settings.cluster_id,
            namespace: self
                .rip
                .metadata
                .namespace
                .as_deref()
                .ok_or_else(incomplete)?,
            name: self.rip.metadata.name.as_deref().ok_or_else(incomplete)?,
            uid: self.rip.metadata.uid.as_deref().ok_or_else(incomplete)?,
        })
    }

    fn condition(&mut self, type_: &str, ok: bool, reason: &str, message: &str) {
        conditions::set(
            &mut self.status.conditions,
            type_,
            ok,
            reason,
            message,
            self.rip.metadata.generation,
        );
    }

    /// Publishes an event; a failure to publish is logged, never fatal.
    async fn event(&self, type_: EventType, reason: &str, note: String) {
        let ev = KubeEvent {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        if let Err(e) = self
            .ctx
            .recorder
            .publish(&ev, &self.rip.object_ref(&()))
            .await
        {
            debug!(error = %e, "could not publish event");
        }
    }

    /// Warns once per new reason: repeats of the same failure are not re-announced.
    async fn warn_once(&self, reason: &str, message: &str) {
        let previous = conditions::get(&self.status.conditions, READY).map(|c| c.reason.as_str());
        if previous != Some(reason) {
            self.event(EventType::Warning, reason, message.to_string())
                .await;
        }
    }

    /// Writes the status (one write per pass; fields left `None` are removed).
    async fn save(mut self) -> Result<(), Error> {
        self.status.observed_generation = self.rip.metadata.generation;
        if self.rip.status.as_ref() == Some(&self.status) {
            return Ok(());
        }
        self.ctx.own_writes.record(
            self.rip.metadata.uid.as_deref().unwrap_or_default(),
            &self.status,
        );
        let api: Api<ReservedIP> = Api::namespaced(
            self.ctx.client.clone(),
            self.rip.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let patch = json!({
            "apiVersion": ReservedIP::api_version(&()),
            "kind": ReservedIP::kind(&()),
            "status": self.status,
        });
        crate::crash_point::hit("before:status-write");
        api.patch_status(
            &self.rip.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(patch),
        )
        .await?;
        crate::crash_point::hit("after:status-write");
        Ok(())
    }

    /// An OCI failure during cleanup: logged, announced once, returned as an error
    /// so the finalizer stays.
    fn cleanup_failed(&self, doing: &str, e: OciError) -> Error {
        warn!(reservedip = %self.rip.name_any(), namespace = ?self.rip.namespace(), error = %e, "{doing} failed");
        Error::Oci(format!("{doing}: {e}"))
    }

    /// Records an OCI failure in status and returns the backoff to wait.
    async fn oci_failed(mut self, doing: &str, e: &OciError) -> Result<Action, Error> {
        // OCI's own code in the reason (e.g. OCILimitExceeded), so users and
        // alerts can tell a full compartment from a transient 500.
        let reason = match e.code() {
            _ if e.is_throttled() => "OCIThrottled".to_string(),
            Some(code) if !code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric()) => {
                format!("OCI{code}")
            }
            _ => "OCIError".to_string(),
        };
        let reason = reason.as_str();
        let message = format!("{doing}: {e}");
        warn!(reservedip = %self.rip.name_any(), namespace = ?self.rip.namespace(), error = %e, "{doing} failed");
        self.warn_once(reason, &message).await;
        // A repeat of the same failure keeps the first message (and its
        // opc-request-id): rewriting status on every retry would wake this
        // controller through its own watch and defeat the backoff.
        let repeat = conditions::get(&self.status.conditions, READY)
            .is_some_and(|c| c.status == "False" && c.reason == reason);
        if !repeat {
            self.condition(READY, false, reason, &message);
        }
        let uid = self.rip.uid().unwrap_or_default();
        let wait = self.ctx.backoff(&uid);
        self.save().await?;
        Ok(Action::requeue(wait))
    }
}

/// Brings a ReservedIP to the state its spec asks for.
async fn apply(rip: &ReservedIP, ctx: &Context) -> Result<Action, Error> {
    let mut pass = Pass::new(rip, ctx);
    if pass.status.public_ip_id.is_none() {
        // About to allocate: the cache may not yet show our last status write
        // (which recorded the IP or the allocation marker), so read it fresh.
        // Without this a lagging cache could make one ReservedIP create two IPs.
        pass.status = fresh_status(rip, ctx).await?;
    }
    let owner = pass.owner()?;

    // Observe: the public IP this ReservedIP holds, if any (from the shared
    // listing when that is recent enough to be trusted).
    let mut listed = false;
    let observed = match observe_public_ip(&mut pass, &owner, &mut listed).await {
        Ok(Observed::Ip(ip)) => Some(*ip),
        Ok(Observed::None) => None,
        Ok(Observed::Blocked { reason, message }) => {
            pass.warn_once(reason, &message).await;
            pass.status.state = Some(State::Failed);
            pass.condition(ALLOCATED, false, reason, &message);
            pass.condition(READY, false, reason, &message);
            pass.save().await?;
            return Ok(Action::requeue(ctx.settings.resync_interval));
        }
        Ok(Observed::Missing { message }) => {
            pass.condition(READY, false, PUBLIC_IP_MISSING, &message);
            pass.save().await?;
            return Ok(Action::requeue(
                ctx.settings.poll_interval.max(Duration::from_secs(1)),
            ));
        }
        Err(e) => return pass.oci_failed("reading the public IP", &e).await,
    };

    // Observe: the target the spec names.
    let (mut target, pod) = match resolve_target(&pass, rip, ctx).await {
        Ok(t) => t,
        Err(e) => return pass.oci_failed("resolving the assignment target", &e).await,
    };

    // Decide: the platform team's policies first (tags, pool, target).
    let gate = match policy_gate::evaluate(
        &ctx.policy,
        &ctx.client,
        rip,
        observed.is_some(),
        &target,
        pod.as_ref(),
    )
    .await
    {
        Ok(g) => g,
        Err(e) => {
            let message = e.to_string();
            pass.warn_once("PolicyError", &message).await;
            pass.condition(READY, false, "PolicyError", &message);
            let wait = ctx.backoff(&rip.uid().unwrap_or_default());
            pass.save().await?;
            return Ok(Action::requeue(wait));
        }
    };
    // Pool verdicts are made once, at allocation: keep them afterwards.
    let kept_pool: Vec<_> = match &observed {
        Some(_) => pass
            .status
            .policies
            .iter()
            .filter(|v| v.decision == "pool")
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    pass.status.policies = kept_pool
        .into_iter()
        .chain(gate.verdicts.iter().cloned())
        .collect();
    if let (None, Some((policy, reason))) = (&observed, &gate.refused) {
        let message = format!("policy {policy} refused this ReservedIP: {reason}");
        pass.warn_once("PolicyDenied", &message).await;
        pass.status.state = Some(State::Failed);
        pass.condition(ALLOCATED, false, "PolicyDenied", &message);
        pass.condition(READY, false, "PolicyDenied", &message);
        pass.save().await?;
        return Ok(Action::requeue(ctx.settings.resync_interval));
    }
    if let (Target::PrivateIp(_), Some((policy, reason))) = (&target, &gate.target_refused) {
        let message = format!("policy {policy} denied the assignment: {reason}");
        pass.warn_once("PolicyDenied", &message).await;
        target = Target::Refused {
            reason: "PolicyDenied",
            message,
        };
    }
    let desired_tags = owner.desired_tags(&gate.tags, pass.status.adopted);

    // Decide and act.
    let mut step = plan::decide(observed.as_ref(), &target, &desired_tags);
    if let Step::Allocate { assign_to } = &mut step
        && conditions::get(&pass.status.conditions, ASSIGNED)
            .is_some_and(|c| c.reason == TARGET_TAKEN)
    {
        // The target already has a public IP of someone else: hold an
        // address anyway, and try the assignment again later.
        *assign_to = None;
    }
    debug!(reservedip = %rip.name_any(), ?step, "decided");
    if listed
        && !matches!(step, Step::Done | Step::Wait)
        && let Some(ip) = &observed
    {
        // Never act on a listed observation (it may be a minute old and has
        // no etag): read the IP fresh and decide again, now.
        ctx.listing.touch(&ip.id);
        return Ok(Action::requeue(Duration::ZERO));
    }
    if let (Step::Allocate { assign_to: Some(_) } | Step::Assign { .. }, Target::PrivateIp(t)) =
        (&step, &target)
        && let Some(uid) = rip.metadata.uid.as_deref()
    {
        ctx.sent_to().insert(uid.to_string(), t.clone());
    }
    let result = match &step {
        Step::Allocate { assign_to } => {
            allocate(
                &mut pass,
                &owner,
                &desired_tags,
                gate.pool.clone(),
                assign_to.as_deref(),
            )
            .await
        }
        Step::Assign { private_ip_id } => {
            let id = observed
                .as_ref()
                .map(|ip| ip.id.as_str())
                .unwrap_or_default();
            ctx.oci
                .update_public_ip(id, &UpdatePublicIpDetails::assign(private_ip_id), None)
                .await
                .map(Some)
        }
        Step::Unassign => {
            let id = observed
                .as_ref()
                .map(|ip| ip.id.as_str())
                .unwrap_or_default();
            ctx.oci
                .update_public_ip(id, &UpdatePublicIpDetails::unassign(), None)
                .await
                .map(Some)
        }
        Step::Retag { tags } => {
            let ip = observed
                .as_ref()
                .map(|ip| (ip.id.as_str(), ip.etag.as_deref()))
                .unwrap_or_default();
            let details = UpdatePublicIpDetails {
                freeform_tags: Some(tags.clone()),
                ..Default::default()
            };
            ctx.oci
                .update_public_ip(ip.0, &details, ip.1)
                .await
                .map(Some)
        }
        Step::Wait | Step::Done => Ok(observed.clone()),
    };
    // Whatever the answer, OCI may have applied the change: listings begun
    // before now no longer speak for this IP.
    let changed = match (&result, &observed) {
        (Ok(Some(ip)), _) => Some(ip.id.as_str()),
        (_, Some(ip)) => Some(ip.id.as_str()),
        _ => None,
    };
    if let Some(id) = changed
        && !matches!(step, Step::Done | Step::Wait)
    {
        ctx.listing.touch(id);
    }
    let current = match result {
        Ok(ip) => ip,
        Err(e)
            if e.is_conflict()
                && matches!(
                    step,
                    Step::Allocate { assign_to: Some(_) } | Step::Assign { .. }
                ) =>
        {
            return target_taken(pass, &target, &e).await;
        }
        Err(e) => {
            if matches!(step, Step::Allocate { .. }) && e.code() == Some("InvalidatedRetryToken") {
                // The token was used with another body (the target changed
                // meanwhile): the next attempt needs a fresh one. Other
                // refusals keep it, so a retry writes no new marker.
                pass.status.allocation_token = None;
            }
            return pass.oci_failed(&format!("{step:?}"), &e).await;
        }
    };

    // Record.
    announce(&pass, &step, current.as_ref(), &target).await;
    record(&mut pass, current.as_ref(), &target);
    let settled = matches!(step, Step::Done) && !matches!(target, Target::Absent { .. });
    ctx.succeeded(&rip.uid().unwrap_or_default());
    pass.save().await?;
    Ok(Action::requeue(if settled {
        ctx.settings.resync_interval
    } else {
        ctx.settings.poll_interval
    }))
}

enum Observed {
    Ip(Box<PublicIp>),
    None,
    /// OCI answers 404 for the recorded IP, but not yet for long enough to
    /// tell "deleted" from "not readable yet"; nothing is created meanwhile.
    Missing {
        message: String,
    },
    /// The IP cannot be held: the requested address is someone else's, or ours was deleted.
    Blocked {
        reason: &'static str,
        message: String,
    },
}

async fn observe_public_ip(
    pass: &mut Pass<'_>,
    owner: &Owner<'_>,
    listed: &mut bool,
) -> Result<Observed, OciError> {
    let ctx = pass.ctx;
    let spec = &pass.rip.spec;
    if let Some(id) = pass.status.public_ip_id.clone() {
        let from_listing = ctx
            .listing
            .lookup(ctx.oci.as_ref(), &ctx.settings.compartment_id, &id)
            .await?;
        *listed = from_listing.is_some();
        let mut not_found = false;
        let got = match from_listing {
            Some(ip) => Ok(ip),
            None => ctx.oci.get_public_ip(&id).await,
        };
        match got {
            Ok(ip) if !ip.lifecycle_state.is_gone() => {
                // Status is not proof of ownership (anyone allowed to write it
                // could point it elsewhere): never act on another's IP.
                return Ok(match owner.classify(&ip) {
                    Holder::OtherReservedIp { namespace, name } => Observed::Blocked {
                        reason: "PublicIPOwnedByOther",
                        message: format!(
                            "status names public IP {id}, which belongs to ReservedIP {namespace}/{name}"
                        ),
                    },
                    Holder::OtherCluster(c) => Observed::Blocked {
                        reason: "PublicIPOwnedByOther",
                        message: format!(
                            "status names public IP {id}, which belongs to cluster {c:?}"
                        ),
                    },
                    _ if ip.lifetime != crate::oci::Lifetime::Reserved => Observed::Blocked {
                        reason: "PublicIPNotReserved",
                        message: format!("status names public IP {id}, which is not a reserved IP"),
                    },
                    Holder::Us | Holder::Nobody => Observed::Ip(Box::new(ip)),
                });
            }
            // Seen TERMINATING/TERMINATED: certainly deleted.
            Ok(_) => {}
            Err(e) if e.is_not_found() => not_found = true,
            Err(e) => return Err(e),
        }
        // A 404 right after a create is OCI's eventual consistency, not a
        // deletion: only a 404 that lasts the grace period counts, else a
        // second IP would be created for one ReservedIP. The first 404 is
        // dated by the Allocated condition's transition.
        let address = pass.status.public_ip_address.clone().unwrap_or_default();
        let missing_since = conditions::get(&pass.status.conditions, ALLOCATED)
            .filter(|c| c.reason == PUBLIC_IP_MISSING && c.status == "False")
            .map(|c| c.last_transition_time.0);
        let grace = ctx.settings.missing_grace;
        let missing_for = missing_since
            .and_then(|t| {
                k8s_openapi::jiff::Timestamp::now()
                    .duration_since(t)
                    .try_into()
                    .ok()
            })
            .unwrap_or(Duration::ZERO);
        if not_found && (missing_since.is_none() || missing_for < grace) {
            let message = format!(
                "OCI answers 404 for public IP {address} ({id}); if that lasts {}s it counts as deleted outside the operator",
                grace.as_secs()
            );
            if missing_since.is_none() {
                // Date the first 404 (a False from another reason would keep its older time).
                pass.status.conditions.retain(|c| c.type_ != ALLOCATED);
                info!(reservedip = %pass.rip.name_any(), %id, "public IP not found; waiting before treating it as deleted");
            }
            pass.condition(ALLOCATED, false, PUBLIC_IP_MISSING, &message);
            return Ok(Observed::Missing { message });
        }
        // Deleted behind our back.
        if spec.public_ipv4_address.is_some() {
            return Ok(Observed::Blocked {
                reason: "PublicIPDeleted",
                message: format!(
                    "public IP {address} ({id}) was deleted outside the operator; the address cannot be recovered"
                ),
            });
        }
        pass.event(
            EventType::Warning,
            "PublicIPDeleted",
            format!(
                "public IP {address} ({id}) was deleted outside the operator; allocating a new one"
            ),
        )
        .await;
        pass.status = ReservedIPStatus {
            conditions: std::mem::take(&mut pass.status.conditions),
            ..Default::default()
        };
        return Ok(Observed::None);
    }
    if let Some(address) = &spec.public_ipv4_address {
        return take_over(pass, owner, address).await;
    }
    if pass.status.allocation_token.is_some() {
        // A create was started but its answer never recorded (crash, timeout):
        // find what it made by our tags before creating anything.
        let mut query = ListPublicIpsQuery::region(&ctx.settings.compartment_id);
        query.public_ip_pool_id = spec.public_ipv4_pool.clone();
        let ours: Vec<PublicIp> = ctx
            .oci
            .list_public_ips(&query)
            .await?
            .into_iter()
            .filter(|ip| owner.classify(ip) == Holder::Us && !ip.lifecycle_state.is_gone())
            .collect();
        if let Some(ip) = ours.into_iter().next() {
            info!(reservedip = %pass.rip.name_any(), id = %ip.id, "recovered the public IP of an unfinished create");
            pass.status.public_ip_id = Some(ip.id.clone());
            return Ok(Observed::Ip(Box::new(ip)));
        }
    }
    Ok(Observed::None)
}

/// `publicIPv4Address`: take over an existing reserved IP nobody else owns.
async fn take_over(
    pass: &mut Pass<'_>,
    owner: &Owner<'_>,
    address: &str,
) -> Result<Observed, OciError> {
    let ctx = pass.ctx;
    let ip = match ctx.oci.get_public_ip_by_ip_address(address).await {
        Ok(ip) => ip,
        Err(e) if e.is_not_found() => {
            return Ok(Observed::Blocked {
                reason: "AddressNotFound",
                message: format!(
                    "no public IP {address} exists in OCI; reserve it (or bring it in a BYOIP pool) first"
                ),
            });
        }
        Err(e) => return Err(e),
    };
    let blocked = |reason, message| Ok(Observed::Blocked { reason, message });
    if ip.lifetime != crate::oci::Lifetime::Reserved {
        return blocked(
            "AddressNotReserved",
            format!("{address} is an ephemeral public IP; only reserved IPs can be taken over"),
        );
    }
    if ip.compartment_id.as_deref() != Some(ctx.settings.compartment_id.as_str()) {
        return blocked(
            "AddressInOtherCompartment",
            format!("{address} is not in the operator's compartment"),
        );
    }
    if let Some(pool) = &pass.rip.spec.public_ipv4_pool
        && ip.public_ip_pool_id.as_deref() != Some(pool.as_str())
    {
        return blocked(
            "AddressNotInPool",
            format!("{address} is not in pool {pool}"),
        );
    }
    match owner.classify(&ip) {
        Holder::Us => {}
        Holder::Nobody => {
            if plan::assigned_to(&ip).is_some() {
                return blocked(
                    "AddressInUse",
                    format!(
                        "{address} is assigned to {} outside the operator; unassign it first",
                        plan::assigned_to(&ip).unwrap_or_default()
                    ),
                );
            }
            // Claim it with our tags. if-match makes a concurrent claim by
            // another ReservedIP fail here instead of both believing they own it.
            let mut tags = ip.freeform_tags.clone();
            tags.extend(owner.tags());
            tags.insert(ownership::TAG_ADOPTED.to_string(), "true".to_string());
            let details = UpdatePublicIpDetails {
                freeform_tags: Some(tags),
                ..Default::default()
            };
            let claimed = ctx
                .oci
                .update_public_ip(&ip.id, &details, ip.etag.as_deref())
                .await;
            ctx.listing.touch(&ip.id);
            let claimed = claimed?;
            pass.status.adopted = true;
            pass.event(
                EventType::Normal,
                "AddressTakenOver",
                format!("took over existing public IP {address}"),
            )
            .await;
            pass.status.public_ip_id = Some(claimed.id.clone());
            return Ok(Observed::Ip(Box::new(claimed)));
        }
        Holder::OtherReservedIp { namespace, name } => {
            return blocked(
                "AddressOwnedByOther",
                format!("{address} is owned by ReservedIP {namespace}/{name}"),
            );
        }
        Holder::OtherCluster(c) => {
            return blocked(
                "AddressOwnedByOtherCluster",
                format!("{address} is owned by cluster {c:?}"),
            );
        }
    }
    pass.status.public_ip_id = Some(ip.id.clone());
    Ok(Observed::Ip(Box::new(ip)))
}

async fn resolve_target(
    pass: &Pass<'_>,
    rip: &ReservedIP,
    ctx: &Context,
) -> Result<(Target, Option<Pod>), OciError> {
    let Some(a) = &rip.spec.assignment else {
        return Ok((Target::Unassigned, None));
    };
    let Some(pod_name) = &a.pod_name else {
        return Ok((ctx.resolver.resolve_private_ip(a).await?, None));
    };
    let ns = rip.namespace().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pod = match pods.get_opt(pod_name).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            let message = format!("pod {ns}/{pod_name} does not exist (yet)");
            return Ok((
                Target::Absent {
                    reason: "PodNotFound",
                    message,
                },
                None,
            ));
        }
        Err(e) => {
            let message = format!("reading pod {ns}/{pod_name}: {e}");
            return Ok((
                Target::Absent {
                    reason: "PodUnreadable",
                    message,
                },
                None,
            ));
        }
    };
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let node = match node_name {
        Some(n) => Api::<Node>::all(ctx.client.clone())
            .get_opt(&n)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let s = &pass.status;
    let known = match (
        &s.private_ip_id,
        &s.private_ip_address,
        &s.pod_name,
        &s.pod_uid,
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
            .and_then(|uid| ctx.sent_to().get(uid).cloned()),
    };
    let target = ctx
        .resolver
        .resolve_pod(&pod, node.as_ref(), known.as_ref())
        .await?;
    Ok((target, Some(pod)))
}

/// Creates the public IP, with the marker recorded first.
async fn allocate(
    pass: &mut Pass<'_>,
    owner: &Owner<'_>,
    tags: &BTreeMap<String, String>,
    pool: Option<String>,
    assign_to: Option<&str>,
) -> Result<Option<PublicIp>, OciError> {
    let ctx = pass.ctx;
    if pass.status.allocation_token.is_none() {
        // The marker: once it is in status, a crash after the create call is
        // recovered by the same retry token or by our tags, never by a second IP.
        pass.status.allocation_token = Some(uuid::Uuid::new_v4().simple().to_string());
        pass.status.state = Some(State::Allocating);
        let marker = ReservedIPStatus {
            ..pass.status.clone()
        };
        let p = Pass {
            rip: pass.rip,
            ctx,
            status: marker,
        };
        if let Err(e) = p.save().await {
            return Err(OciError::Config(format!(
                "could not record the allocation marker: {e}"
            )));
        }
    }
    let token = pass.status.allocation_token.clone().unwrap_or_default();
    let details = CreatePublicIpDetails {
        private_ip_id: assign_to.map(str::to_string),
        public_ip_pool_id: pool,
        display_name: Some(format!("{}/{}", owner.namespace, owner.name)),
        freeform_tags: Some(tags.clone()),
        ..CreatePublicIpDetails::reserved(&ctx.settings.compartment_id)
    };
    let ip = ctx.oci.create_public_ip(&details, &token).await?;
    pass.status.public_ip_id = Some(ip.id.clone());
    Ok(Some(ip))
}

/// The target private IP already has a public IP: say whose, take nothing.
async fn target_taken(mut pass: Pass<'_>, target: &Target, e: &OciError) -> Result<Action, Error> {
    let ctx = pass.ctx;
    let private_ip = target.private_ip_id().unwrap_or_default();
    let message = match ctx.oci.get_public_ip_by_private_ip_id(private_ip).await {
        Ok(Some(other)) if other.lifetime == crate::oci::Lifetime::Ephemeral => format!(
            "private IP {private_ip} already has ephemeral public IP {} (hostNetwork pods use the node's primary private IP); the operator does not remove it",
            other.ip_address.unwrap_or_default()
        ),
        Ok(Some(other)) => {
            let holder = match (
                other.freeform_tags.get(ownership::TAG_NAMESPACE),
                other.freeform_tags.get(ownership::TAG_NAME),
            ) {
                (Some(ns), Some(n)) => format!("ReservedIP {ns}/{n}"),
                _ => "a public IP not managed by this operator".to_string(),
            };
            format!(
                "private IP {private_ip} already has public IP {} of {holder}",
                other.ip_address.unwrap_or_default()
            )
        }
        _ => format!("OCI refused the assignment: {e}"),
    };
    pass.warn_once(TARGET_TAKEN, &message).await;
    pass.status.state = Some(if pass.status.public_ip_id.is_some() {
        State::Allocated
    } else {
        State::Pending
    });
    if pass.status.public_ip_id.is_none() {
        // The create was refused: the next attempt needs a fresh token.
        pass.status.allocation_token = None;
    }
    pass.condition(ASSIGNED, false, TARGET_TAKEN, &message);
    pass.condition(READY, false, TARGET_TAKEN, &message);
    let wait = ctx
        .backoff(&pass.rip.uid().unwrap_or_default())
        .max(ctx.settings.poll_interval * 10);
    pass.save().await?;
    Ok(Action::requeue(wait))
}

/// Events for real transitions only.
async fn announce(pass: &Pass<'_>, step: &Step, ip: Option<&PublicIp>, target: &Target) {
    let address = ip.and_then(|i| i.ip_address.clone()).unwrap_or_default();
    let to = match target {
        Target::PrivateIp(t) => match &t.pod {
            Some((pod, _)) => format!("pod {pod} ({})", t.private_ip_address),
            None => format!("private IP {}", t.private_ip_address),
        },
        _ => String::new(),
    };
    let (reason, note) = match step {
        Step::Allocate { assign_to: None } => {
            ("Allocated", format!("allocated public IP {address}"))
        }
        Step::Allocate { assign_to: Some(_) } => (
            "Assigning",
            format!("allocated public IP {address}, assigning it to {to}"),
        ),
        Step::Assign { .. } => (
            "Assigning",
            format!("assigning public IP {address} to {to}"),
        ),
        Step::Unassign => ("Unassigning", format!("unassigning public IP {address}")),
        Step::Retag { .. } => (
            "Retagged",
            format!("restored the tags of public IP {address}"),
        ),
        Step::Wait | Step::Done => {
            // A finished assignment or unassignment is worth one event.
            let was = pass.rip.status.as_ref().and_then(|s| s.state);
            let now = plan::state_of(ip, target);
            let (reason, note) = match (was, now) {
                (Some(w), State::Assigned) if w != State::Assigned => (
                    "Assigned",
                    format!("public IP {address} is assigned to {to}"),
                ),
                (Some(State::Assigned | State::Unassigning), State::Allocated) => {
                    ("Unassigned", format!("public IP {address} is not assigned"))
                }
                _ => return,
            };
            pass.event(EventType::Normal, reason, note).await;
            return;
        }
    };
    pass.event(EventType::Normal, reason, note).await;
}

/// Fills status and conditions from what is now known.
fn record(pass: &mut Pass<'_>, ip: Option<&PublicIp>, target: &Target) {
    let state = plan::state_of(ip, target);
    let s = &mut pass.status;
    s.state = Some(state);
    if let Some(ip) = ip {
        s.public_ip_id = Some(ip.id.clone());
        s.public_ip_address = ip.ip_address.clone();
        s.allocation_token = None;
    }
    let on_target = state == State::Assigned;
    match (target, on_target) {
        (Target::PrivateIp(t), true) => {
            s.private_ip_id = Some(t.private_ip_id.clone());
            s.private_ip_address = Some(t.private_ip_address.clone());
            s.pod_name = t.pod.as_ref().map(|p| p.0.clone());
            s.pod_uid = t.pod.as_ref().map(|p| p.1.clone());
        }
        _ => {
            s.private_ip_id = None;
            s.private_ip_address = None;
            s.pod_name = None;
            s.pod_uid = None;
        }
    }
    let address = s.public_ip_address.clone().unwrap_or_default();
    match ip {
        Some(_) => pass.condition(
            ALLOCATED,
            true,
            "Allocated",
            &format!("public IP {address} is held"),
        ),
        None => pass.condition(ALLOCATED, false, "Allocating", "creating the public IP"),
    }
    let (assigned, reason, message): (bool, &str, String) = match (target, state) {
        (Target::Unassigned, State::Allocated) => {
            (false, "NoAssignment", "the spec has no assignment".into())
        }
        (Target::Unassigned, _) => (false, "Unassigning", "taking the IP off its target".into()),
        (Target::Absent { reason, message }, _) => (false, reason, message.clone()),
        (Target::Refused { reason, message }, _) => (false, reason, message.clone()),
        (Target::PrivateIp(t), State::Assigned) => (
            true,
            "Assigned",
            format!("assigned to {}", t.private_ip_address),
        ),
        (Target::PrivateIp(t), _) => (
            false,
            "Assigning",
            format!("assigning to {}", t.private_ip_address),
        ),
    };
    pass.condition(ASSIGNED, assigned, reason, &message);
    let ready = match target {
        Target::Unassigned => state == State::Allocated,
        Target::PrivateIp(_) => state == State::Assigned,
        Target::Absent { .. } | Target::Refused { .. } => false,
    };
    let (ready_reason, ready_message) = if ready {
        (
            if assigned { "Assigned" } else { "Allocated" },
            format!("public IP {address} is in the state the spec asks for"),
        )
    } else {
        (reason, message)
    };
    pass.condition(READY, ready, ready_reason, &ready_message);
}

/// Releases (or, for a retained IP, unassigns and untags) the public IP.
///
/// Returning `Ok` lets the finalizer go, so every path that has not finished
/// returns an error instead: [`Error::CleanupPending`] (OCI is still changing
/// the IP, look again shortly) or [`Error::Oci`] (retried with backoff).
async fn cleanup(rip: &ReservedIP, ctx: &Context) -> Result<Action, Error> {
    // The cache may lag behind our own last status write (the one that
    // recorded the IP): read the object fresh before deciding what to release.
    let fresh = fresh_status(rip, ctx).await?;
    let mut pass = Pass::new(rip, ctx);
    pass.status = fresh;
    let owner = pass.owner()?;
    if crd_being_deleted(ctx).await? {
        return let_go_on_uninstall(&pass, &owner).await;
    }
    let retain = match rip.spec.reclaim_policy {
        Some(p) => p == ReclaimPolicy::Retain,
        None => pass.status.adopted,
    };
    // Everything tagged with this ReservedIP's UID is released, not only the
    // IP its status names: status may be stale or wrong, and an IP of an
    // unfinished create is found only by its tags. One list per delete.
    let query = ListPublicIpsQuery::region(&ctx.settings.compartment_id);
    let tagged = ctx
        .oci
        .list_public_ips(&query)
        .await
        .map_err(|e| pass.cleanup_failed("finding the ReservedIP's public IPs", e))?;
    let mut ids: Vec<String> = pass.status.public_ip_id.iter().cloned().collect();
    for ip in tagged {
        if owner.classify(&ip) == Holder::Us && !ids.contains(&ip.id) {
            ids.push(ip.id);
        }
    }
    for id in ids {
        let ip = match ctx.oci.get_public_ip(&id).await {
            Ok(ip) => ip,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(pass.cleanup_failed("reading the public IP to release", e)),
        };
        if ip.lifecycle_state.is_gone() {
            continue;
        }
        if owner.classify(&ip) != Holder::Us {
            // Never release what is not ours (re-tagged by someone, or another cluster's).
            warn!(%id, "public IP no longer carries our tags; letting go without touching it");
            continue;
        }
        if ip.lifecycle_state.is_transitional() {
            return Err(Error::CleanupPending(format!(
                "public IP {id} is {:?}",
                ip.lifecycle_state
            )));
        }
        if retain {
            if plan::assigned_to(&ip).is_some() {
                let unassigned = ctx
                    .oci
                    .update_public_ip(&id, &UpdatePublicIpDetails::unassign(), None)
                    .await;
                ctx.listing.touch(&id);
                unassigned
                    .map_err(|e| pass.cleanup_failed("unassigning the retained public IP", e))?;
                return Err(Error::CleanupPending(format!(
                    "unassigning retained public IP {id}"
                )));
            }
            let details = UpdatePublicIpDetails {
                freeform_tags: Some(ownership::without_ownership(&ip.freeform_tags)),
                ..Default::default()
            };
            let untagged = ctx
                .oci
                .update_public_ip(&id, &details, ip.etag.as_deref())
                .await;
            ctx.listing.touch(&id);
            untagged.map_err(|e| {
                pass.cleanup_failed(
                    "removing the operator's tags from the retained public IP",
                    e,
                )
            })?;
        } else {
            // OCI unassigns and deletes in one call.
            let deleted = ctx.oci.delete_public_ip(&id, None).await;
            ctx.listing.touch(&id);
            deleted.map_err(|e| pass.cleanup_failed("releasing the public IP", e))?;
        }
        let address = ip.ip_address.unwrap_or_default();
        let note = if retain {
            format!("retained public IP {address} (unassigned, untagged)")
        } else {
            format!("released public IP {address}")
        };
        pass.event(EventType::Normal, "Released", note).await;
    }
    ctx.forget(&rip.uid().unwrap_or_default());
    crate::crash_point::hit("before:finalizer-removal");
    Ok(Action::await_change())
}

/// Whether the ReservedIP CRD itself is being deleted (an uninstall): its
/// deletion deletes every ReservedIP, and that must not release addresses.
/// An API error is an error (retried), never a guess either way.
async fn crd_being_deleted(ctx: &Context) -> Result<bool, Error> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
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
async fn let_go_on_uninstall(pass: &Pass<'_>, owner: &Owner<'_>) -> Result<Action, Error> {
    let ctx = pass.ctx;
    let query = ListPublicIpsQuery::region(&ctx.settings.compartment_id);
    let ours: Vec<PublicIp> = ctx
        .oci
        .list_public_ips(&query)
        .await
        .map_err(|e| pass.cleanup_failed("finding the ReservedIP's public IPs", e))?
        .into_iter()
        .filter(|ip| owner.classify(ip) == Holder::Us && !ip.lifecycle_state.is_gone())
        .collect();
    for ip in ours {
        let mut tags = ownership::without_ownership(&ip.freeform_tags);
        tags.insert(
            ownership::TAG_RETAINED.to_string(),
            format!("{}/{}/{}", owner.cluster, owner.namespace, owner.name),
        );
        let details = UpdatePublicIpDetails {
            freeform_tags: Some(tags),
            ..Default::default()
        };
        let untagged = ctx
            .oci
            .update_public_ip(&ip.id, &details, ip.etag.as_deref())
            .await;
        ctx.listing.touch(&ip.id);
        untagged.map_err(|e| pass.cleanup_failed("letting go of the public IP on uninstall", e))?;
        let address = ip.ip_address.unwrap_or_default();
        info!(reservedip = %pass.rip.name_any(), %address, "CRD deleted: public IP kept, ownership tags removed");
        pass.event(
            EventType::Normal,
            "RetainedOnUninstall",
            format!("the ReservedIP CRD is being deleted: public IP {address} is kept (tagged {}) and no longer managed", ownership::TAG_RETAINED),
        )
        .await;
    }
    ctx.forget(&pass.rip.uid().unwrap_or_default());
    crate::crash_point::hit("before:finalizer-removal");
    Ok(Action::await_change())
}

/// The object's status as the API server has it now (not as cached).
async fn fresh_status(rip: &ReservedIP, ctx: &Context) -> Result<ReservedIPStatus, Error> {
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
