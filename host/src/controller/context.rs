//! What every pass shares: clients, settings, caches and memory.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::events::Reporter;

use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::error::Error;
use super::memory::Memory;
use super::quota::Quota;
use crate::api::crd::ReservedIP;
use crate::cache::listing::{InvalidatingWrites, IpListing};
use crate::cache::nodes::Nodes;
use crate::cache::own_writes::OwnWrites;
use crate::decide::Timing;
use crate::decide::ownership::Owner;
use crate::decide::wait::Waits;
pub use crate::events::Events;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::oci::{ListPublicIpsQuery, OciError, OciNetwork, PublicIp};
use crate::policy::PolicyEngine;
use crate::resolve::TargetResolver;

/// Field manager of the operator's status writes, and its Events' reporter.
pub const MANAGER: &str = "k8s-oci-operator";
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
    /// The longest wait between two looks at an IP OCI is changing, while
    /// OCI's time is not known (`decide::wait`); waiting for a deletion.
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
    /// The operator's own namespace: its pods never get a public IP.
    pub operator_namespace: Option<String>,
    /// How many ReservedIPs of one namespace may hold a public IP, unless
    /// the namespace is annotated otherwise (`None`: no cap).
    pub max_reserved_ips_per_namespace: Option<u32>,
    /// A pass running longer than this is stuck (the liveness probe fails).
    pub stuck_after: Duration,
    /// Whether ReservedIPs are created for labelled workloads (`crate::workloads`).
    pub workload_ips: bool,
}

impl Settings {
    pub fn timing(&self) -> Timing {
        Timing {
            poll: self.poll_interval,
            resync: self.resync_interval,
            missing_grace: self.missing_grace,
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    /// The OCI client; every write through it invalidates the listing.
    pub oci: Arc<dyn OciNetwork>,
    pub resolver: TargetResolver,
    /// The nodes pods run on, as pod lookups need them.
    pub nodes: Nodes,
    /// The WebAssembly policies (none loaded: every decision passes through).
    pub policy: PolicyEngine,
    pub events: Events,
    pub settings: Settings,
    /// The statuses this process wrote, so their watch echo triggers nothing.
    pub own_writes: OwnWrites,
    /// A recent listing of the compartment's public IPs.
    pub listing: Arc<IpListing>,
    /// What this process remembers per ReservedIP between passes.
    pub memory: Memory,
    /// Per namespace, the ReservedIPs that hold or are allocating an IP.
    pub quota: Quota,
    /// How long OCI takes to change IPs, learned: when to look again.
    waits: Mutex<Waits>,
    /// The namespaces' metadata (grants, policy selectors), once the
    /// controller watches them.
    pub namespaces: OnceLock<Store<PartialObjectMeta<Namespace>>>,
    /// What the probes say (`crate::health`).
    pub health: Arc<Health>,
    /// What `/metrics` serves (`crate::metrics`).
    pub metrics: Arc<Metrics>,
    /// New ReservedIPs' first requests to the API server under way (see
    /// [`TURNS_AT_ONCE`]).
    arrivals: Semaphore,
    /// Allocation markers being written (see [`Self::marker_turn`]).
    markers: Semaphore,
}

/// How many new ReservedIPs' first requests (the finalizer, the pod read)
/// go to the API server at once; and, in a queue of their own, how many
/// allocation markers (`Context::marker_turn`). A burst's passes all start together: a
/// hundred requests at once on the benchmark's control plane were all
/// answered together, 130-320 ms later (median per burst of 50). In turns,
/// in arrival order (tokio's semaphore is fair), the first passes, whose
/// creates go first, are answered first (the tenth pod read 0.06-0.17 s
/// into a burst), and the later ones, whose creates wait for the write
/// rate anyway, follow. Also less at once for an API server under load.
const TURNS_AT_ONCE: usize = 8;

impl Context {
    pub fn new(
        client: Client,
        oci: Arc<dyn OciNetwork>,
        settings: Settings,
        subnet_ids: Vec<String>,
        policy: PolicyEngine,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let health = Arc::new(Health::new(client.clone(), settings.stuck_after));
        Self::with_health(client, oci, settings, subnet_ids, policy, metrics, health)
    }

    /// [`Self::new`] with probes that already serve (the start-up reports
    /// what it waits for through them).
    pub fn with_health(
        client: Client,
        oci: Arc<dyn OciNetwork>,
        settings: Settings,
        subnet_ids: Vec<String>,
        policy: PolicyEngine,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Arc<Self> {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let listing = Arc::new(IpListing::new(
            LISTING_MAX_AGE.min(settings.resync_interval / 2),
        ));
        let oci: Arc<dyn OciNetwork> = Arc::new(InvalidatingWrites::new(oci, listing.clone()));
        Arc::new(Self {
            events: Events::new(client.clone(), reporter),
            resolver: TargetResolver::new(oci.clone(), settings.compartment_id.clone(), subnet_ids),
            client,
            oci,
            policy,
            own_writes: OwnWrites::default(),
            nodes: Nodes::default(),
            listing,
            memory: Memory::default(),
            quota: Quota::default(),
            waits: Mutex::new(Waits::new(settings.poll_interval)),
            health,
            metrics,
            settings,
            namespaces: OnceLock::new(),
            arrivals: Semaphore::new(TURNS_AT_ONCE),
            markers: Semaphore::new(TURNS_AT_ONCE),
        })
    }

    /// The ReservedIP as its ownership tags name it.
    pub fn owner<'a>(&'a self, rip: &'a ReservedIP) -> Result<Owner<'a>, Error> {
        let incomplete = || Error::Incomplete(rip.name_any());
        Ok(Owner {
            cluster: &self.settings.cluster_id,
            namespace: rip.metadata.namespace.as_deref().ok_or_else(incomplete)?,
            name: rip.metadata.name.as_deref().ok_or_else(incomplete)?,
            uid: rip.metadata.uid.as_deref().ok_or_else(incomplete)?,
        })
    }

    /// The compartment's live public IPs that carry `owner`'s tags (of
    /// `pool`, if given): what an unfinished create made, what a delete
    /// releases, what an uninstall lets go of.
    pub async fn list_ours(
        &self,
        owner: &Owner<'_>,
        pool: Option<String>,
    ) -> Result<Vec<PublicIp>, OciError> {
        let mut query = ListPublicIpsQuery::region(&self.settings.compartment_id);
        query.public_ip_pool_id = pool;
        Ok(owner.keep_ours(self.oci.list_public_ips(&query).await?))
    }

    /// Forgets what this process remembers of a ReservedIP that is gone.
    pub fn forget(&self, namespace: &str, uid: &str) {
        self.quota.give_back(namespace, uid);
        self.memory.forget(uid);
        self.own_writes.forget(uid);
        self.waits().forget(uid);
        self.metrics.forget(uid);
    }

    /// Waits for a new ReservedIP's turn to send a first request (see
    /// [`TURNS_AT_ONCE`]); the turn lasts as long as the permit.
    pub async fn arrival_turn(&self) -> Option<SemaphorePermit<'_>> {
        // Never closed: `None` cannot happen, and would only mean no wait.
        self.arrivals.acquire().await.ok()
    }

    /// Waits for an allocation marker's turn, like [`Self::arrival_turn`]
    /// but in a queue of its own: a burst's passes decide together once the
    /// VNIC listing answers them, and their markers, all at once, took
    /// 70-120 ms each where the first ones' creates could go; behind the
    /// later passes' first requests they would wait longer still.
    pub async fn marker_turn(&self) -> Option<SemaphorePermit<'_>> {
        self.markers.acquire().await.ok()
    }

    /// The learned waits (single short updates: a panic cannot leave them
    /// half-changed, so a poisoned lock is taken as is).
    pub fn waits(&self) -> MutexGuard<'_, Waits> {
        self.waits.lock().unwrap_or_else(|e| e.into_inner())
    }
}
