//! Releasing public IPs whose ReservedIP is gone.
//!
//! The finalizer releases a ReservedIP's IP on delete, but a ReservedIP can
//! vanish without it: deleted while the operator was down after someone
//! stripped the finalizer, or a namespace force-removed. Such an IP still
//! carries our ownership tags. The sweeper lists the compartment's public IPs
//! now and then and releases an IP tagged with *this* cluster whose ReservedIP
//! (namespace, name and UID) no longer exists, once it has stayed so for a
//! safety delay. IPs without our tags, or with another cluster's, are never
//! touched.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};
use tracing::{debug, info, warn};

use super::context::Context;
use super::release::{Released, release};
use crate::api::crd::ReservedIP;
use crate::decide::ownership::{
    Holder, Owner, TAG_ADOPTED, TAG_CLUSTER, TAG_NAME, TAG_NAMESPACE, TAG_UID,
};
use crate::oci::{Lifetime, ListPublicIpsQuery, OciError, PublicIp};

/// What one sweep found and did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Tagged with this cluster but without a live ReservedIP, still in the safety delay.
    pub waiting: Vec<String>,
    /// Released (deleted, or untagged if it was a taken-over address).
    pub released: Vec<String>,
    /// Being released (a taken-over address being unassigned first).
    pub releasing: Vec<String>,
}

/// Sweeps every `interval`, releasing orphans after `grace`, until the task is dropped.
pub async fn run(ctx: Arc<Context>, store: Store<ReservedIP>, interval: Duration, grace: Duration) {
    // The first sweep waits one interval, by which time the controller's cache
    // is filled. The cache only spares API reads: every candidate orphan is
    // confirmed against the API server before anything is released.
    // (`Store::wait_until_ready` never resolved for the controller's store here.)
    tokio::time::sleep(interval).await;
    let mut first_seen = HashMap::new();
    loop {
        let swept = sweep(&ctx, &store, &mut first_seen, grace).await;
        match &swept {
            Ok(s) => ctx.metrics.sweep(true, s.released.len()),
            Err(_) => ctx.metrics.sweep(false, 0),
        }
        match swept {
            Ok(s) if s != Sweep::default() => {
                info!(released = ?s.released, releasing = ?s.releasing, waiting = ?s.waiting, "orphan sweep");
            }
            Ok(_) => debug!("orphan sweep: nothing orphaned"),
            Err(e) => warn!(error = %e, "orphan sweep failed; trying again later"),
        }
        tokio::time::sleep(interval).await;
    }
}

/// The tags that name an IP's ReservedIP, if it is this cluster's.
fn owner_tags<'a>(ip: &'a PublicIp, cluster: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let tag = |k: &str| ip.freeform_tags.get(k).map(String::as_str);
    if tag(TAG_CLUSTER) != Some(cluster)
        || ip.lifetime != Lifetime::Reserved
        || ip.lifecycle_state.is_gone()
    {
        return None;
    }
    Some((tag(TAG_NAMESPACE)?, tag(TAG_NAME)?, tag(TAG_UID)?))
}

/// One pass: `first_seen` remembers since when each orphan has been seen.
pub async fn sweep(
    ctx: &Context,
    store: &Store<ReservedIP>,
    first_seen: &mut HashMap<String, Instant>,
    grace: Duration,
) -> Result<Sweep, OciError> {
    let settings = &ctx.settings;
    let began = Instant::now();
    let ips = ctx
        .oci
        .list_public_ips(&ListPublicIpsQuery::region(&settings.compartment_id))
        .await?;
    // The same listing serves the reconciles' drift checks.
    ctx.listing.offer(began, &ips).await;
    let cached: HashSet<String> = store.state().iter().filter_map(|r| r.uid()).collect();
    let mut result = Sweep::default();
    let mut still_orphaned = HashMap::new();
    for ip in &ips {
        let Some((ns, name, uid)) = owner_tags(ip, &settings.cluster_id) else {
            continue;
        };
        if settings
            .namespace
            .as_deref()
            .is_some_and(|watched| watched != ns)
        {
            continue;
        }
        if cached.contains(uid) || exists(ctx, ns, name, uid).await {
            continue;
        }
        let since = first_seen.get(&ip.id).copied().unwrap_or_else(Instant::now);
        still_orphaned.insert(ip.id.clone(), since);
        if since.elapsed() < grace {
            result.waiting.push(ip.id.clone());
            continue;
        }
        let owner = Owner {
            cluster: &settings.cluster_id,
            namespace: ns,
            name,
            uid,
        };
        let ours = |ip: &PublicIp| owner.classify(ip) == Holder::Us;
        // A taken-over address is kept (unassigned, untagged), as on a delete.
        let keep = ip.freeform_tags.contains_key(TAG_ADOPTED);
        match release(ctx.oci.as_ref(), &ip.id, ours, (None, ns), None).await? {
            Released::Pending(_) => result.releasing.push(ip.id.clone()),
            Released::Skipped => {
                still_orphaned.remove(&ip.id);
            }
            Released::Done { .. } => {
                let address = ip.ip_address.as_deref().unwrap_or_default();
                info!(id = %ip.id, %address, kept = keep, "released an orphaned public IP");
                still_orphaned.remove(&ip.id);
                result.released.push(ip.id.clone());
            }
        }
    }
    *first_seen = still_orphaned;
    Ok(result)
}

/// Asks the API server (not the cache) whether the ReservedIP still exists.
/// Any doubt (an API error) counts as "exists": never release on a guess.
async fn exists(ctx: &Context, ns: &str, name: &str, uid: &str) -> bool {
    let api: Api<ReservedIP> = Api::namespaced(ctx.client.clone(), ns);
    match api.get_opt(name).await {
        Ok(Some(r)) => r.uid().as_deref() == Some(uid),
        Ok(None) => false,
        Err(e) => {
            warn!(error = %e, namespace = ns, name, "cannot tell whether a ReservedIP exists; keeping its IP");
            true
        }
    }
}
