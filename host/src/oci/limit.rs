//! Client-side rate limiting and call metrics around any [`OciNetwork`].
//!
//! OCI throttles with 429 long before anything breaks; staying under its
//! limits in the first place costs less than backing off after. Reads and
//! writes get separate token buckets (as OCI's own cloud-controller-manager
//! does), so a burst of lookups never delays a release. Every call is counted
//! and timed by operation and outcome for `/metrics`, with the time it
//! waited for the limiter, OCI's own throttling (429) and retries.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

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

impl Limits {
    /// The bucket of this client's limiter for a rate of `per_second`, in
    /// cells of [`CELLS`] to a request: OCI's `burst` less the requests of
    /// [`JITTER`] at that rate, and at least one request. OCI's bucket and
    /// ours fill on different clocks (OCI's from when a request arrives,
    /// ours from when it leaves), and requests reach OCI with jitter: a
    /// client spending the whole burst and then exactly the rate sees a
    /// request arrive before OCI has a token for it now and then (the
    /// benchmark saw 1 in 58 answered 429 in a burst of 50 without headroom,
    /// and a throttled create costs a retry after a backoff). The headroom
    /// lets a request arrive up to `JITTER` early; it delays the writes of
    /// a burst past the bucket by that much (a whole request of headroom,
    /// as before, delayed them by a whole period: 100 ms at 10 per second).
    fn bucket_cells(&self, per_second: NonZeroU32) -> NonZeroU32 {
        let headroom = (u64::from(per_second.get()) * u64::from(CELLS) * JITTER.as_millis() as u64)
            .div_ceil(1000);
        let cells = (u64::from(self.burst.get()) * u64::from(CELLS))
            .saturating_sub(headroom)
            .clamp(u64::from(CELLS), u64::from(u32::MAX));
        NonZeroU32::new(cells as u32).unwrap_or(NonZeroU32::MIN)
    }

    /// The limiter's quota for `per_second`: one cell every
    /// 1 / (`per_second` × `CELLS`) seconds, [`Self::bucket_cells`] at once.
    fn quota(&self, per_second: NonZeroU32) -> Quota {
        let cells_per_second = u64::from(per_second.get()) * u64::from(CELLS);
        let period = Duration::from_nanos((1_000_000_000 / cells_per_second).max(1));
        // `with_period` refuses only a zero period, which `max(1)` rules out;
        // the fallback (whole requests, not cells) is never taken.
        Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(per_second))
            .allow_burst(self.bucket_cells(per_second))
    }

    /// How many writes the write bucket holds at once (whole requests).
    fn write_bucket(&self) -> u32 {
        (self.bucket_cells(self.writes_per_second).get() / CELLS).max(1)
    }
}

/// Cells of the limiters' buckets per request: fine enough for a headroom
/// of a fraction of a request.
const CELLS: u32 = 100;
/// How early a request may reach OCI, compared with when this client's
/// limiter let it go, and still find OCI's bucket holding a token for it
/// (the headroom of [`Limits::bucket_cells`]).
const JITTER: Duration = Duration::from_millis(25);
/// One request, in cells.
const REQUEST: NonZeroU32 = match NonZeroU32::new(CELLS) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

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

/// Every operation the client makes, so each series exists from the start.
pub const OPERATIONS: [&str; 14] = [
    "CreatePublicIp",
    "GetPublicIp",
    "GetPublicIpByIpAddress",
    "GetPublicIpByPrivateIpId",
    "UpdatePublicIp",
    "DeletePublicIp",
    "ListPublicIps",
    "ListPrivateIps",
    "GetPrivateIp",
    "GetVnic",
    "ListVnicAttachments",
    "GetSubnet",
    "ListPublicIpPools",
    "GetPublicIpPool",
];

/// Seconds: OCI answers in tens of milliseconds, slower under load.
const CALL_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Seconds waited for the client-side limiter: none at rest, up to the
/// length of the queue in a burst.
const WAIT_BUCKETS: [f64; 11] = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Retryable failures remembered to recognise their retry; past this many
/// (an outage), the oldest are dropped and a few retries go uncounted.
const REMEMBERED_FAILURES: usize = 4096;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: &'static str,
    /// `ok`, the HTTP status of an error, or `error` when no answer came.
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    /// `read` or `write`: each has its own token bucket.
    kind: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// OCI call metrics, registered in a Prometheus registry.
#[derive(Clone)]
pub struct OciMetrics {
    calls: Family<CallLabels, Counter>,
    duration: HistogramFamily<OperationLabels>,
    throttled: Family<OperationLabels, Counter>,
    retries: Family<OperationLabels, Counter>,
    waits: HistogramFamily<KindLabels>,
    /// Calls by operation whatever the outcome (not served: the sum of
    /// `calls`, which cannot be summed in process).
    totals: Family<OperationLabels, Counter>,
    /// Calls that failed in a way worth retrying, by operation and what
    /// they were about (an OCID, a retry token, a query).
    failed: Arc<Mutex<VecDeque<(&'static str, String)>>>,
}

impl Default for OciMetrics {
    fn default() -> Self {
        let metrics = Self {
            calls: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(CALL_BUCKETS)),
            throttled: Family::default(),
            retries: Family::default(),
            waits: Family::new_with_constructor(|| Histogram::new(WAIT_BUCKETS)),
            totals: Family::default(),
            failed: Arc::default(),
        };
        for operation in OPERATIONS {
            let _ = metrics.calls.get_or_create(&CallLabels {
                operation,
                outcome: "ok".into(),
            });
            let labels = OperationLabels { operation };
            let _ = metrics.duration.get_or_create(&labels);
            let _ = metrics.throttled.get_or_create(&labels);
            let _ = metrics.retries.get_or_create(&labels);
        }
        for kind in ["read", "write"] {
            let _ = metrics.waits.get_or_create(&KindLabels { kind });
        }
        metrics
    }
}

impl OciMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "oci_calls",
            "OCI API calls by operation and outcome (ok, the HTTP status, or error when no answer came)",
            self.calls.clone(),
        );
        registry.register_with_unit(
            "oci_call_duration",
            "Duration of OCI API calls by operation, from request to answer",
            Unit::Seconds,
            self.duration.clone(),
        );
        registry.register(
            "oci_throttled",
            "OCI API calls answered 429 (OCI's rate limit) by operation",
            self.throttled.clone(),
        );
        registry.register(
            "oci_retries",
            "OCI API calls that repeat one that failed with a retryable error (429, 5xx, no answer) by operation",
            self.retries.clone(),
        );
        registry.register_with_unit(
            "oci_rate_limit_wait",
            "Time a call waited for the client-side rate limiter, by kind (read or write)",
            Unit::Seconds,
            self.waits.clone(),
        );
    }

    /// Counts a call that took `took`; `about` names what it was about, to
    /// recognise the retry of a failure (made only when a failure is
    /// remembered or to be: a query's name is not formatted on every call).
    fn record<T>(
        &self,
        operation: &'static str,
        about: impl FnOnce() -> String,
        took: Duration,
        result: &OciResult<T>,
    ) {
        let outcome = match result {
            Ok(_) => "ok".to_string(),
            Err(e) => e
                .status()
                .map_or_else(|| "error".to_string(), |s| s.to_string()),
        };
        let labels = OperationLabels { operation };
        self.calls
            .get_or_create(&CallLabels { operation, outcome })
            .inc();
        self.duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.totals.get_or_create(&labels).inc();
        if matches!(result, Err(e) if e.status() == Some(429)) {
            self.throttled.get_or_create(&labels).inc();
        }
        let retryable = matches!(result, Err(e) if e.is_retryable());
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        if failed.is_empty() && !retryable {
            return;
        }
        let key = (operation, about());
        if let Some(i) = failed.iter().position(|k| *k == key) {
            failed.remove(i);
            self.retries.get_or_create(&labels).inc();
        }
        if retryable {
            if failed.len() >= REMEMBERED_FAILURES {
                failed.pop_front();
            }
            failed.push_back(key);
        }
    }

    fn waited(&self, kind: &'static str, took: Duration) {
        self.waits
            .get_or_create(&KindLabels { kind })
            .observe(took.as_secs_f64());
    }

    /// Calls of `operation` so far, whatever the outcome (for tests and benchmarks).
    pub fn total(&self, operation: &'static str) -> u64 {
        self.totals
            .get_or_create(&OperationLabels { operation })
            .get()
    }

    /// Retries of `operation` so far (for tests).
    pub fn retries(&self, operation: &'static str) -> u64 {
        self.retries
            .get_or_create(&OperationLabels { operation })
            .get()
    }
}

/// An [`OciNetwork`] that waits for a token before each call and counts it.
pub struct Throttled<C> {
    inner: C,
    reads: DefaultDirectRateLimiter,
    writes: DefaultDirectRateLimiter,
    writes_per_second: u32,
    /// The write bucket's size.
    write_burst: u32,
    /// When the writes of the last bucket's worth of time began: what the
    /// bucket lacks now (governor's limiter cannot be asked without taking).
    recent_writes: Mutex<VecDeque<Instant>>,
    /// Writes waiting for a token now.
    writes_waiting: AtomicUsize,
    metrics: OciMetrics,
}

impl<C: OciNetwork> Throttled<C> {
    pub fn new(inner: C, limits: Limits, metrics: OciMetrics) -> Arc<Self> {
        Arc::new(Self {
            inner,
            reads: RateLimiter::direct(limits.quota(limits.reads_per_second)),
            writes: RateLimiter::direct(limits.quota(limits.writes_per_second)),
            writes_per_second: limits.writes_per_second.get(),
            write_burst: limits.write_bucket(),
            recent_writes: Mutex::default(),
            writes_waiting: AtomicUsize::new(0),
            metrics,
        })
    }

    async fn read<T>(
        &self,
        operation: &'static str,
        about: impl FnOnce() -> String,
        call: impl Future<Output = OciResult<T>>,
    ) -> OciResult<T> {
        let queued = Instant::now();
        take(&self.reads).await;
        self.metrics.waited("read", queued.elapsed());
        self.timed(operation, about, call).await
    }

    async fn write<T>(
        &self,
        operation: &'static str,
        about: impl FnOnce() -> String,
        call: impl Future<Output = OciResult<T>>,
    ) -> OciResult<T> {
        let queued = Instant::now();
        {
            // Counted while waiting, even if the caller gives up meanwhile.
            let _waiting = Counted::new(&self.writes_waiting);
            take(&self.writes).await;
        }
        {
            let mut recent = self.recent_writes.lock().unwrap_or_else(|e| e.into_inner());
            recent.push_back(Instant::now());
            while recent.len() > self.write_burst as usize {
                recent.pop_front();
            }
        }
        self.metrics.waited("write", queued.elapsed());
        self.timed(operation, about, call).await
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        about: impl FnOnce() -> String,
        call: impl Future<Output = OciResult<T>>,
    ) -> OciResult<T> {
        let began = Instant::now();
        let result = call.await;
        self.metrics
            .record(operation, about, began.elapsed(), &result);
        result
    }
}

/// Waits until `limiter` lets one request go.
async fn take(limiter: &DefaultDirectRateLimiter) {
    // Every bucket holds one request at least (`Limits::bucket_cells`), so
    // the request always fits; were it not to, it would go unlimited rather
    // than never.
    let _fits = limiter.until_n_ready(REQUEST).await;
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
            || retry_token.to_string(),
            self.inner.create_public_ip(details, retry_token),
        )
        .await
    }
    async fn get_public_ip(&self, id: &str) -> OciResult<PublicIp> {
        self.read(
            "GetPublicIp",
            || id.to_string(),
            self.inner.get_public_ip(id),
        )
        .await
    }
    async fn get_public_ip_by_ip_address(&self, ip_address: &str) -> OciResult<PublicIp> {
        self.read(
            "GetPublicIpByIpAddress",
            || ip_address.to_string(),
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
            || private_ip_id.to_string(),
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
            || id.to_string(),
            self.inner.update_public_ip(id, details, if_match),
        )
        .await
    }
    async fn delete_public_ip(&self, id: &str, if_match: Option<&str>) -> OciResult<Deletion> {
        self.write(
            "DeletePublicIp",
            || id.to_string(),
            self.inner.delete_public_ip(id, if_match),
        )
        .await
    }
    async fn list_public_ips(&self, query: &ListPublicIpsQuery) -> OciResult<Vec<PublicIp>> {
        self.read(
            "ListPublicIps",
            || format!("{query:?}"),
            self.inner.list_public_ips(query),
        )
        .await
    }
    async fn list_private_ips(&self, filter: &PrivateIpFilter) -> OciResult<Vec<PrivateIp>> {
        self.read(
            "ListPrivateIps",
            || format!("{filter:?}"),
            self.inner.list_private_ips(filter),
        )
        .await
    }
    async fn get_private_ip(&self, id: &str) -> OciResult<PrivateIp> {
        self.read(
            "GetPrivateIp",
            || id.to_string(),
            self.inner.get_private_ip(id),
        )
        .await
    }
    async fn get_vnic(&self, id: &str) -> OciResult<Vnic> {
        self.read("GetVnic", || id.to_string(), self.inner.get_vnic(id))
            .await
    }
    async fn list_vnic_attachments(
        &self,
        compartment_id: &str,
        instance_id: Option<&str>,
    ) -> OciResult<Vec<VnicAttachment>> {
        self.read(
            "ListVnicAttachments",
            || format!("{compartment_id} {instance_id:?}"),
            self.inner
                .list_vnic_attachments(compartment_id, instance_id),
        )
        .await
    }
    async fn get_subnet(&self, id: &str) -> OciResult<Subnet> {
        self.read("GetSubnet", || id.to_string(), self.inner.get_subnet(id))
            .await
    }
    async fn list_public_ip_pools(&self, compartment_id: &str) -> OciResult<Vec<PublicIpPool>> {
        self.read(
            "ListPublicIpPools",
            || compartment_id.to_string(),
            self.inner.list_public_ip_pools(compartment_id),
        )
        .await
    }
    async fn get_public_ip_pool(&self, id: &str) -> OciResult<PublicIpPool> {
        self.read(
            "GetPublicIpPool",
            || id.to_string(),
            self.inner.get_public_ip_pool(id),
        )
        .await
    }

    /// The writes waiting for a token, at the configured rate.
    fn write_wait(&self) -> Duration {
        let queued = self.writes_waiting.load(Ordering::Relaxed);
        let queued = u32::try_from(queued).unwrap_or(u32::MAX);
        Duration::from_secs(1) * queued / self.writes_per_second
    }

    /// None while writes wait; else the bucket less the writes of the time
    /// it takes to refill (close to what the limiter would let through).
    fn writes_at_once(&self) -> usize {
        if self.writes_waiting.load(Ordering::Relaxed) > 0 {
            return 0;
        }
        let recent = self.recent_writes.lock().unwrap_or_else(|e| e.into_inner());
        free_writes(
            self.write_burst,
            self.writes_per_second,
            recent.iter(),
            Instant::now(),
        )
    }
}

/// Writes a bucket of `burst` refilled at `per_second` lets through at
/// `now`, after writes that began at `recent`: those of the time it takes
/// to refill still count against it.
fn free_writes<'a>(
    burst: u32,
    per_second: u32,
    recent: impl Iterator<Item = &'a Instant>,
    now: Instant,
) -> usize {
    let refill = Duration::from_secs(1) * burst / per_second.max(1);
    let used = recent
        .filter(|t| now.saturating_duration_since(**t) < refill)
        .count();
    (burst as usize).saturating_sub(used)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::oci::OciError;

    fn limits(writes_per_second: u32, burst: u32) -> Limits {
        let n = |v| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
        Limits {
            reads_per_second: n(50),
            writes_per_second: n(writes_per_second),
            burst: n(burst),
        }
    }

    #[test]
    fn the_bucket_keeps_the_jitter_of_headroom_below_ocis_burst() {
        let n = |v| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
        // 25 ms at 10 per second: a quarter of a request.
        assert_eq!(limits(10, 10).bucket_cells(n(10)).get(), 975);
        assert_eq!(limits(10, 10).write_bucket(), 9);
        // At 20 per second (the default) half a request, at 50 more than one.
        assert_eq!(limits(20, 5).bucket_cells(n(20)).get(), 450);
        assert_eq!(limits(10, 10).bucket_cells(n(50)).get(), 875);
        // Never less than one request, or a request could never go.
        assert_eq!(limits(10, 1).bucket_cells(n(10)).get(), 100);
        assert_eq!(limits(10, 1).write_bucket(), 1);
    }

    #[test]
    fn past_the_bucket_requests_go_at_the_rate_a_jitter_behind() {
        use governor::clock::FakeRelativeClock;
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::direct_with_clock(
            limits(10, 10).quota(limits(10, 10).writes_per_second),
            clock.clone(),
        );
        let go = || matches!(limiter.check_n(REQUEST), Ok(Ok(())));
        for i in 0..9 {
            assert!(go(), "request {i} of the bucket goes at once");
        }
        assert!(!go(), "the tenth waits for the headroom");
        clock.advance(Duration::from_millis(24));
        assert!(!go(), "not before 25 ms");
        clock.advance(Duration::from_millis(1));
        assert!(
            go(),
            "the tenth goes 25 ms after the burst (100 ms with a whole request of headroom)"
        );
        assert!(!go());
        clock.advance(Duration::from_millis(100));
        assert!(go(), "then one every 100 ms");
        assert!(!go());
    }

    #[test]
    fn writes_of_the_last_refill_count_against_the_bucket() {
        let now = Instant::now();
        let ago = |ms| now - Duration::from_millis(ms);
        assert_eq!(free_writes(9, 10, [].iter(), now), 9, "at rest: all of it");
        let burst: Vec<Instant> = (0..9).map(|_| ago(50)).collect();
        assert_eq!(free_writes(9, 10, burst.iter(), now), 0, "just spent");
        let spread = [ago(100), ago(500), ago(899), ago(900), ago(2000)];
        assert_eq!(
            free_writes(9, 10, spread.iter(), now),
            6,
            "refilled for 0.9 s"
        );
    }

    fn failure(status: u16) -> OciResult<()> {
        Err(OciError::Service {
            operation: "CreatePublicIp",
            status,
            code: "Code".to_string(),
            message: "m".to_string(),
            request_id: None,
        })
    }

    #[test]
    fn a_call_repeating_a_retryable_failure_is_a_retry() {
        let m = OciMetrics::default();
        let call = |about: &str, result: OciResult<()>| {
            m.record(
                "CreatePublicIp",
                || about.to_string(),
                Duration::ZERO,
                &result,
            )
        };
        call("token-a", failure(503));
        call("token-b", Ok(()));
        assert_eq!(m.retries("CreatePublicIp"), 0, "another token");
        call("token-a", failure(429));
        call("token-a", Ok(()));
        assert_eq!(m.retries("CreatePublicIp"), 2);
        call("token-a", Ok(()));
        assert_eq!(
            m.retries("CreatePublicIp"),
            2,
            "after a success: a new call"
        );
        // Not worth retrying: a repeat is a new call, not a retry.
        call("token-c", failure(404));
        call("token-c", Ok(()));
        assert_eq!(m.retries("CreatePublicIp"), 2);
        assert_eq!(m.total("CreatePublicIp"), 7);
        let throttled = m
            .throttled
            .get_or_create(&OperationLabels {
                operation: "CreatePublicIp",
            })
            .get();
        assert_eq!(throttled, 1);
    }
}
