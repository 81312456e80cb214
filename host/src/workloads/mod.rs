//! ReservedIPs for workloads, without plumbing: the operator creates them
//! for labelled pods and StatefulSets, so a workload needs no RBAC, no
//! initContainer and no kubectl to get a public IP.
//!
//! - A pod labelled [`WANTS_IP`]`: "true"` (in practice, a Deployment's pod
//!   template) gets a ReservedIP named after it, owned by it (released with
//!   it), assigned to it.
//! - A StatefulSet labelled the same way gets one ReservedIP per ordinal
//!   (`<name>-<ordinal>`), owned by the StatefulSet, so a restarted or
//!   rescheduled pod gets its address back. Scale-down and deletion follow
//!   [`WHEN_SCALED`] and [`WHEN_DELETED`] (`Retain` or `Delete`, as a
//!   StatefulSet's `persistentVolumeClaimRetentionPolicy` does for volumes).
//! - Optional annotations on the pod or StatefulSet: [`TAGS`] (a JSON
//!   object) and [`POOL`] (a BYOIP pool OCID), read when a ReservedIP is
//!   created.
//! - Each labelled pod shows its IP: the condition [`READY_CONDITION`] (for
//!   a `readinessGates` entry, so the pod is not Ready, and no Service sends
//!   it traffic, before its address answers) and, once assigned, the
//!   annotation [`PUBLIC_IP`] with the address (a downward API volume
//!   exposes it to the workload as a file, updated in place).
//!
//! Why a label rather than an annotation switches it on: the operator's
//! watches ask the API server for labelled pods and StatefulSets only, so
//! it caches the few that want an IP, not every pod of the cluster.
//!
//! Privilege: only in namespaces the platform team opted in with the
//! namespace annotation `oci.k8s.logmein.com/workload-ips: "true"`
//! ([`crate::decide::tenancy::WORKLOAD_IPS`]); elsewhere, someone who may
//! create pods but not ReservedIPs gets nothing, and an Event and the pod
//! condition say why. What is created is an ordinary ReservedIP: the
//! namespace's grants and cap, and the WebAssembly policies' tags, pool and
//! eligibility decisions, apply to it exactly as to a hand-made one.
//!
//! - [`desired`]: what to create, keep, delete and show (pure).
//! - [`pods`], [`statefulsets`]: the two controllers.

pub mod desired;
pub mod pods;
pub mod statefulsets;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

use crate::api::crd::ReservedIP;
use crate::controller::Context;
use crate::controller::observe;
use crate::decide::tenancy::{Grants, WORKLOAD_IPS};
use desired::Refusal;

/// Label on a pod or StatefulSet: `"true"` asks for public IPs.
pub const WANTS_IP: &str = "oci.k8s.logmein.com/reserved-ip";
/// Annotation: freeform tags for the ReservedIPs, a JSON object of strings.
pub const TAGS: &str = "oci.k8s.logmein.com/reserved-ip-tags";
/// Annotation: the BYOIP pool to allocate from (the namespace must be
/// granted it, as for a hand-made ReservedIP).
pub const POOL: &str = "oci.k8s.logmein.com/reserved-ip-pool";
/// StatefulSet annotation: `Retain` (default) or `Delete` the IPs of
/// ordinals removed by a scale-down.
pub const WHEN_SCALED: &str = "oci.k8s.logmein.com/reserved-ip-when-scaled";
/// StatefulSet annotation: `Delete` (default) or `Retain` the IPs when the
/// StatefulSet is deleted.
pub const WHEN_DELETED: &str = "oci.k8s.logmein.com/reserved-ip-when-deleted";
/// Pod annotation written by the operator: the public address on the pod.
pub const PUBLIC_IP: &str = "oci.k8s.logmein.com/public-ip";
/// Pod condition written by the operator: `True` once the pod's public IP
/// is assigned to it. Name it in the pod's `readinessGates`.
pub const READY_CONDITION: &str = "oci.k8s.logmein.com/public-ip-assigned";
/// Label on generated ReservedIPs: `pod` or `statefulset`.
pub const GENERATED_BY: &str = "oci.k8s.logmein.com/generated-by";
/// Annotations on a StatefulSet's ReservedIPs: its name and the ordinal.
pub const STATEFULSET: &str = "oci.k8s.logmein.com/statefulset";
pub const ORDINAL: &str = "oci.k8s.logmein.com/ordinal";

/// Runs both controllers until dropped.
pub async fn run(ctx: Arc<Context>) {
    let statefulsets: Api<StatefulSet> = scoped(&ctx);
    let (sts_store, sts_writer) = reflector::store();
    let labelled = statefulsets::stream(statefulsets, sts_writer);
    tokio::join!(
        pods::run(ctx.clone(), sts_store.clone()),
        statefulsets::run(ctx, labelled, sts_store),
    );
}

/// The API of a kind in the namespace the operator watches, or in all.
fn scoped<K>(ctx: &Context) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match &ctx.settings.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    }
}

/// Watch configuration for objects that asked for IPs.
fn labelled() -> watcher::Config {
    watcher::Config::default()
        .labels(&format!("{WANTS_IP}=true"))
        .any_semantic()
}

/// The generated ReservedIPs (of one generator, or all), watched and cached.
fn generated_rips(
    ctx: &Context,
    by: Option<desired::Generator>,
) -> (
    Store<ReservedIP>,
    impl futures::Stream<Item = Result<ReservedIP, watcher::Error>> + Send + 'static,
) {
    let selector = match by {
        Some(by) => format!("{GENERATED_BY}={}", by.label()),
        None => GENERATED_BY.to_string(),
    };
    let (store, writer) = reflector::store();
    let stream = watcher(
        scoped::<ReservedIP>(ctx),
        watcher::Config::default().labels(&selector).any_semantic(),
    )
    .backoff(crate::controller::watch_backoff())
    .reflect(writer)
    .touched_objects();
    (store, stream)
}

/// Namespaces as they change (a grant opened or closed): each controller
/// re-decides the objects it caches in the namespace.
fn namespace_changes(
    ctx: &Context,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<Namespace>, watcher::Error>> + Send + 'static
{
    let namespaces: Api<PartialObjectMeta<Namespace>> = Api::all(ctx.client.clone());
    watcher(namespaces, watcher::Config::default().any_semantic())
        .backoff(crate::controller::watch_backoff())
        .touched_objects()
}

/// Whether the operator may create ReservedIPs for workloads of `ns`; the
/// refusal says what the platform team would change. Err: the namespace
/// could not be read (retried).
async fn opted_in(ctx: &Context, ns: &str) -> Result<Result<(), Refusal>, String> {
    if ctx.settings.operator_namespace.as_deref() == Some(ns) {
        return Ok(Err((
            "OperatorNamespace",
            "pods of the operator's own namespace never get a public IP".into(),
        )));
    }
    let (_, annotations) = observe::namespace(ctx, ns).await.map_err(|f| f.message)?;
    let (grants, problems) = Grants::from_annotations(&annotations);
    if grants.workload_ips {
        return Ok(Ok(()));
    }
    let mut message = format!(
        "namespace {ns} is not opted in to ReservedIPs for workloads: a platform admin annotates it {WORKLOAD_IPS}=\"true\" (or create a ReservedIP yourself)"
    );
    if !problems.is_empty() {
        message = format!("{message} ({})", problems.join("; "));
    }
    Ok(Err(("NamespaceNotOptedIn", message)))
}

/// Why a workload controller's pass stopped (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Namespace(String),
    #[error("{0} has no namespace")]
    Incomplete(String),
}
