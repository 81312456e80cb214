//! Client-side rate limiting and call metrics around any [`OciNetwork`].
//!
//! OCI throttles with 429 long before anything breaks; staying under its
//! limits in the first place costs less than backing off after. Reads and
//! writes get separate token buckets (as OCI's own cloud-controller-manager
//! does), so a burst of lookups never delays a release. Every call is counted
//! by operation and outcome for `/metrics`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::{
    CreatePublicIpDetails, Deletion, ListPublicIpsQuery, OciNetwork, OciResult, PrivateIp,
    PrivateIpFilter, PublicIp, PublicIpPool, Subnet, UpdatePublicIpDetails, Vnic, VnicAttachment,
};

/// Requests per second (and burst) allowed for reads and for writes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub reads_per_second: NonZeroU32,
    pub writes_per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Default for Limits {
    /// OCI's own cloud-controller-manager's client-side limits: 20 QPS, burst 5.
    fn default() -> Self {
        let n = |v| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
        Self {
            reads_per_second: n(20),
            writes_per_second: n(20),
            burst: n(5),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: String,
    /// HTTP status, or `error` when no answer came.
    outcome: String,
}

/// Counters of OCI calls, registered in a Prometheus registry.
#[derive(Clone, Default)]
pub struct OciMetrics {
    calls: Family<CallLabels, Counter>,
}

impl OciMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "oci_calls",
            "OCI API calls by operation and outcome",
            self.calls.clone(),
        );
    }

    fn record<T>(&self, operation: &str, result: &OciResult<T>) {
        let outcome = match result {
            Ok(_) => "ok".to_string(),
            Err(e) => e
                .status()
                .map_or_else(|| "error".to_string(), |s| s.to_string()),
        };
        self.calls
            .get_or_create(&CallLabels {
                operation: operation.to_string(),
                outcome,
            })
            .inc();
    }

    /// Calls of `operation` so far, whatever the outcome (for tests and benchmarks).
    pub fn total(&self, operation: &str) -> u64 {
        [
            "ok", "error", "400", "401", "404", "409", "412", "429", "500", "503",
        ]
        .iter()
        .map(|o| {
            self.calls
                .get_or_create(&CallLabels {
                    operation: operation.to_string(),
                    outcome: o.to_string(),
                })
                .get()
        })
        .sum()
    }
}

/// An [`OciNetwork`] that waits for a token before each call and counts it.
pub struct Throttled<C> {
    inner: C,
    reads: DefaultDirectRateLimiter,
    writes: DefaultDirectRateLimiter,
    writes_per_second: u32,
    /// Writes waiting for a token now.
    writes_waiting: AtomicUsize,
    metrics: OciMetrics,
}

impl<C: OciNetwork> Throttled<C> {
    pub fn new(inner: C, limits: Limits, metrics: OciMetrics) -> Arc<Self> {
        Arc::new(Self {
            inner,
            reads: RateLimiter::direct(
                Quota::per_second(limits.reads_per_second).allow_burst(limits.burst),
            ),
            writes: RateLimiter::direct(
                Quota::per_second(limits.writes_per_second).allow_burst(limits.burst),
            ),
            writes_per_second: limits.writes_per_second.get(),
            writes_waiting: AtomicUsize::new(0),
            metrics,
        })
    }

    async fn read<T>(
        &self,
        operation: &str,
        call: impl Future<Output = OciResult<T>>,
    ) -> OciResult<T> {
        self.reads.until_ready().await;
        let result = call.await;
        self.metrics.record(operation, &result);
        result
    }

    async fn write<T>(
        &self,
        operation: &str,
        call: impl Future<Output = OciResult<T>>,
    ) -> OciResult<T> {
        {
            // Counted while waiting, even if the caller gives up meanwhile.
            let _waiting = Counted::new(&self.writes_waiting);
            self.writes.until_ready().await;
        }
        let result = call.await;
        self.metrics.record(operation, &result);
        result
    }
}

/// One caller counted in a gauge while it lives (writes waiting for a
/// token, pods being looked up); `others`: how many were counted before it.
pub(crate) struct Counted<'a> {
    gauge: &'a AtomicUsize,
    pub others: usize,
}

impl<'a> Counted<'a> {
    pub fn new(gauge: &'a AtomicUsize) -> Self {
        let others = gauge.fetch_add(1, Ordering::Relaxed);
        Self { gauge, others }
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.gauge.fetch_sub(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl<C: OciNetwork> OciNetwork for Throttled<C> {
    async fn create_public_ip(
        &self,
        details: &CreatePublicIpDetails,
        retry_token: &str,
    ) -> OciResult<PublicIp> {
        self.write(
            "CreatePublicIp",
            self.inner.create_public_ip(details, retry_token),
        )
        .await
    }
    async fn get_public_ip(&self, id: &str) -> OciResult<PublicIp> {
        self.read("GetPublicIp", self.inner.get_public_ip(id)).await
    }
    async fn get_public_ip_by_ip_address(&self, ip_address: &str) -> OciResult<PublicIp> {
        self.read(
            "GetPublicIpByIpAddress",
            self.inner.get_public_ip_by_ip_address(ip_address),
        )
        .await
    }
    async fn get_public_ip_by_private_ip_id(
        &self,
        private_ip_id: &str,
    ) -> OciResult<Option<PublicIp>> {
        self.read(
            "GetPublicIpByPrivateIpId",
            self.inner.get_public_ip_by_private_ip_id(private_ip_id),
        )
        .await
    }
    async fn update_public_ip(
        &self,
        id: &str,
        details: &UpdatePublicIpDetails,
        if_match: Option<&str>,
    ) -> OciResult<PublicIp> {
        self.write(
            "UpdatePublicIp",
            self.inner.update_public_ip(id, details, if_match),
        )
        .await
    }
    async fn delete_public_ip(&self, id: &str, if_match: Option<&str>) -> OciResult<Deletion> {
        self.write("DeletePublicIp", self.inner.delete_public_ip(id, if_match))
            .await
    }
    async fn list_public_ips(&self, query: &ListPublicIpsQuery) -> OciResult<Vec<PublicIp>> {
        self.read("ListPublicIps", self.inner.list_public_ips(query))
            .await
    }
    async fn list_private_ips(&self, filter: &PrivateIpFilter) -> OciResult<Vec<PrivateIp>> {
        self.read("ListPrivateIps", self.inner.list_private_ips(filter))
            .await
    }
    async fn get_private_ip(&self, id: &str) -> OciResult<PrivateIp> {
        self.read("GetPrivateIp", self.inner.get_private_ip(id))
            .await
    }
    async fn get_vnic(&self, id: &str) -> OciResult<Vnic> {
        self.read("GetVnic", self.inner.get_vnic(id)).await
    }
    async fn list_vnic_attachments(
        &self,
        compartment_id: &str,
        instance_id: Option<&str>,
    ) -> OciResult<Vec<VnicAttachment>> {
        self.read(
            "ListVnicAttachments",
            self.inner
                .list_vnic_attachments(compartment_id, instance_id),
        )
        .await
    }
    async fn get_subnet(&self, id: &str) -> OciResult<Subnet> {
        self.read("GetSubnet", self.inner.get_subnet(id)).await
    }
    async fn list_public_ip_pools(&self, compartment_id: &str) -> OciResult<Vec<PublicIpPool>> {
        self.read(
            "ListPublicIpPools",
            self.inner.list_public_ip_pools(compartment_id),
        )
        .await
    }
    async fn get_public_ip_pool(&self, id: &str) -> OciResult<PublicIpPool> {
        self.read("GetPublicIpPool", self.inner.get_public_ip_pool(id))
            .await
    }

    /// The writes waiting for a token, at the configured rate.
    fn write_wait(&self) -> Duration {
        let queued = self.writes_waiting.load(Ordering::Relaxed);
        let queued = u32::try_from(queued).unwrap_or(u32::MAX);
        Duration::from_secs(1) * queued / self.writes_per_second
    }
}
