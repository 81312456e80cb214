//! The ReservedIP controller: kube-runtime's `Controller` wired to the pass
//! of [`reconcile`], and the orphan sweep beside it.
//!
//! - [`context`]: what every pass shares (clients, settings, caches).
//! - [`error`]: why a pass stops with an error.
//! - [`reconcile`]: one pass: observe, decide, act, record; or cleanup.
//! - [`observe`]: the reads of a pass. [`act`]: its one OCI call.
//! - [`status`]: the one status write of a pass, and its events.
//! - [`cleanup`]: a ReservedIP being deleted (or the CRD: an uninstall).
//! - [`release`]: releasing a public IP, for cleanup and orphans alike.
//! - [`orphans`]: releasing tagged public IPs whose ReservedIP is gone.
//! - [`policy_gate`]: asking the WebAssembly policies in a pass.
//! - [`memory`]: what this process remembers per ReservedIP between passes.
//! - [`quota`]: counting a namespace's ReservedIPs for its cap.
//!
//! The decisions themselves are in `crate::decide`, free of I/O.

pub mod act;
pub mod cleanup;
pub mod context;
pub mod error;
pub mod memory;
pub mod observe;
pub mod orphans;
pub mod policy_gate;
pub mod quota;
pub mod reconcile;
pub mod release;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::utils::ResetTimerBackoff;
use kube::runtime::{WatchStreamExt, watcher};
use tracing::{debug, warn};

pub use context::{Context, Settings};
pub use reconcile::FINALIZER;

use crate::api::crd::ReservedIP;

/// ReservedIPs reconciled at once. In a burst, many passes wait a while
/// for a shared read (`cache::gather`) while others write: the more wait
/// together, the fewer reads. Each VNIC's listing answered 2x more pods
/// with 64 than with 32 in a burst of 1,000, in the same time, and 128
/// halves the listings again.
const RECONCILE_CONCURRENCY: u16 = 128;
/// kubectl's copy of the last applied manifest, not needed in the cache.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Runs the controller until `stop` resolves, then lets the passes under
/// way finish (no new one begins) and returns.
pub async fn run(ctx: Arc<Context>, stop: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let rips: Api<ReservedIP> = match &ctx.settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // Every namespace's pods, even when only one namespace's ReservedIPs
    // are: a pod elsewhere may receive the address of a private IP target.
    let pods: Api<PartialObjectMeta<Pod>> = Api::all(client.clone());
    let namespaces: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
    // The trigger stream skips the echo of our own status writes (the pass
    // that wrote one has already requeued itself); the cache sees everything.
    let (store, writer) = kube::runtime::reflector::store();
    let filter_ctx = ctx.clone();
    let trigger = watcher(rips, watcher::Config::default().any_semantic())
        .backoff(watch_backoff())
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
    // Each watch feeding the controller backs off on its own. The controller
    // would also pause all of them together on any one's error, and after an
    // outage each watch's stale error would pause them again, up to a minute
    // each with kube's default: it must not pause at all.
    let controller = Controller::for_stream(trigger, store.clone()).trigger_backoff(NoPause);
    ctx.quota.watch(store.clone());
    ctx.metrics.watch(store.clone());
    // Runs beside the controller (not spawned), so it stops with it.
    let sweeper = orphans::run(
        ctx.clone(),
        store.clone(),
        ctx.settings.orphan_interval,
        ctx.settings.orphan_grace,
    );
    // Pods only trigger reconciles of the ReservedIPs that name them or
    // their address (a private IP target a pod of another namespace just
    // received must come off it at once). Only their metadata is watched and
    // nothing is cached, so memory stays small however many pods the cluster
    // runs; a pod's address is read only while some ReservedIP targets an
    // address (a door the platform team opens), and reconcile reads the one
    // pod it needs.
    let address_targets = store.clone();
    let pods = watcher(pods, watcher::Config::default().any_semantic())
        .backoff(watch_backoff())
        .touched_objects()
        .then(move |pod| {
            let targets = address_targets.clone();
            let client = client.clone();
            async move { Ok::<_, watcher::Error>(with_address(pod?, &targets, client).await) }
        });
    // A namespace's annotations are the platform team's grants: a change
    // (a door opened or closed) is applied to its ReservedIPs at once. The
    // cache answers each pass's question about them.
    let (namespace_store, namespace_writer) = kube::runtime::reflector::store();
    ctx.namespaces.get_or_init(|| namespace_store);
    let namespaces = watcher(namespaces, namespace_filter(&ctx.settings.namespace))
        .backoff(watch_backoff())
        .reflect(namespace_writer)
        .touched_objects();
    let store_in_namespace = store.clone();
    let synced_store = store.clone();
    let controller = controller
        .watches_stream(pods, move |pod| {
            let (ns, name) = (pod.namespace(), pod.name_any());
            let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
            store
                .state()
                .into_iter()
                .filter(|r| {
                    (r.namespace() == ns
                        && (pod_name(r) == Some(name.as_str()) || selects(r, pod.labels())))
                        || ip.is_some() && at_address(r) == ip.as_deref()
                })
                .map(|r| ObjectRef::from_obj(&*r))
                .collect::<Vec<_>>()
        })
        .watches_stream(namespaces, move |ns| in_namespace(&store_in_namespace, &ns))
        // A changed policy is applied to every ReservedIP at once.
        .reconcile_all_on(ctx.policy.changes())
        // Bounded concurrency: a wave of thousands waits in the queue, not in
        // memory as reconciles parked on the OCI rate limiter.
        .with_config(
            kube::runtime::controller::Config::default().concurrency(RECONCILE_CONCURRENCY),
        )
        .graceful_shutdown_on(stop)
        .run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => debug!(reservedip = %obj, "reconciled"),
                Err(e) => warn!(error = %e, "reconcile failed"),
            }
        });
    let synced = async {
        if synced_store.wait_until_ready().await.is_ok() {
            ctx.health.set_synced();
        }
        std::future::pending::<()>().await
    };
    // Beside the controller too: ReservedIPs for labelled workloads.
    let workloads = async {
        if ctx.settings.workload_ips {
            crate::workloads::run(ctx.clone()).await
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = controller => {}
        _ = sweeper => {}
        () = workloads => {}
        () = synced => {}
        () = crate::heap::return_freed_memory() => {}
    }
}

/// The objects of `store` in namespace `ns`: what a change of the
/// namespace (a grant opened or closed) is applied to.
pub(crate) fn in_namespace<K>(
    store: &Store<K>,
    ns: &PartialObjectMeta<Namespace>,
) -> Vec<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    let name = ns.name_any();
    store
        .state()
        .into_iter()
        .filter(|o| o.namespace().as_deref() == Some(name.as_str()))
        .map(|o| ObjectRef::from_obj(&*o))
        .collect()
}

/// A pod watched as metadata, with its address when a ReservedIP may need
/// it: only while some ReservedIP targets an address is the pod read
/// (otherwise the address maps to nothing, and the read is spared).
async fn with_address(
    pod: PartialObjectMeta<Pod>,
    rips: &Store<ReservedIP>,
    client: kube::Client,
) -> Pod {
    let mut full = Pod {
        metadata: pod.metadata,
        ..Pod::default()
    };
    if rips.find(|r| at_address(r).is_some()).is_none() {
        return full;
    }
    let (Some(ns), Some(name)) = (full.metadata.namespace.clone(), full.metadata.name.clone())
    else {
        return full;
    };
    match Api::<Pod>::namespaced(client, &ns).get_opt(&name).await {
        Ok(Some(read)) => full.status = read.status,
        Ok(None) => {}
        Err(e) => warn!(error = %e, namespace = %ns, pod = %name, "reading a pod's address"),
    }
    full
}

/// The namespaces to watch: the one the operator watches, or all.
fn namespace_filter(only: &Option<String>) -> watcher::Config {
    let config = watcher::Config::default().any_semantic();
    match only {
        Some(ns) => config.fields(&format!("metadata.name={ns}")),
        None => config,
    }
}

/// The address of a private IP target (as the spec or, for `privateIPId`,
/// status names it).
fn at_address(rip: &ReservedIP) -> Option<&str> {
    let assignment = rip.spec.assignment.as_ref()?;
    // Pods and nodes are found by name or labels; a node's primary IP is
    // never handed to a pod.
    if assignment.private_ip_address.is_none() && assignment.private_ip_id.is_none() {
        return None;
    }
    assignment.private_ip_address.as_deref().or(rip
        .status
        .as_ref()
        .and_then(|s| s.private_ip_address.as_deref()))
}

/// Whether a `podSelector` ReservedIP selects a pod with these labels: a
/// change of such a pod (readiness above all) may move the IP.
fn selects(rip: &ReservedIP, labels: &std::collections::BTreeMap<String, String>) -> bool {
    rip.spec
        .assignment
        .as_ref()
        .and_then(|a| a.pod_selector.clone())
        .and_then(|s| kube::core::Selector::try_from(s).ok())
        .is_some_and(|s| kube::core::SelectorExt::matches(&s, labels))
}

fn pod_name(rip: &ReservedIP) -> Option<&str> {
    rip.spec
        .assignment
        .as_ref()
        .and_then(|a| a.pod_name.as_deref())
}

/// How watches retry when the API server cannot be reached. kube's default
/// (client-go's: 0.8 s doubling to 30 s, plus up to 100% jitter) can leave
/// the operator blind for a minute after a short API server outage such as
/// an OKE control-plane upgrade, while pods wait for their addresses. A few
/// watches from one replica retrying every 5 to 10 s at worst are no load
/// worth saving; the timer resets after two quiet minutes, as kube's does.
pub(crate) fn watch_backoff() -> ResetTimerBackoff<watcher::ExponentialBackoff> {
    let retries = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(5))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times();
    ResetTimerBackoff::new(retries.into(), Duration::from_secs(120))
}

/// A backoff that never waits: see where the controller is built.
struct NoPause;

impl Iterator for NoPause {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

impl kube::runtime::utils::Backoff for NoPause {
    fn reset(&mut self) {}
}
