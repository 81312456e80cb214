//! The floors: the least time and the fewest calls the emulator's settings
//! allow for each scenario, whatever the operator does. Ratios are measured
//! against these.

use crate::settings::Settings;

/// OCI lists return at most this many items per page.
const PAGE: usize = 1000;

pub struct Floor<'a> {
    s: &'a Settings,
}

impl<'a> Floor<'a> {
    pub fn new(s: &'a Settings) -> Self {
        Self { s }
    }

    fn read(&self) -> f64 {
        self.s.read_latency_ms as f64 / 1000.0
    }

    fn write(&self) -> f64 {
        self.s.write_latency_ms as f64 / 1000.0
    }

    /// Allocate and assign to a running pod whose node's VNICs are known:
    /// ListPrivateIps (pod IP -> private IP OCID), CreatePublicIp with that
    /// target, and one GetPublicIp after the ASSIGNING delay to see ASSIGNED.
    pub fn apply_calls(&self) -> u64 {
        3
    }

    pub fn apply_seconds(&self) -> f64 {
        self.apply_seconds_at(self.s.assigning_ms)
    }

    /// [`Self::apply_seconds`] when OCI's ASSIGNING lasts `assigning_ms`.
    pub fn apply_seconds_at(&self, assigning_ms: u64) -> f64 {
        self.read() + self.write() + assigning_ms as f64 / 1000.0 + self.read()
    }

    /// A ReservedIP with no assignment, apply to `allocated`: CreatePublicIp,
    /// then one GetPublicIp once PROVISIONING (`provisioning_ms`) is over.
    pub fn allocate_seconds_at(&self, provisioning_ms: u64) -> f64 {
        self.write() + provisioning_ms as f64 / 1000.0 + self.read()
    }

    /// The first pod on a node also needs the node's VNICs and their subnets:
    /// ListVnicAttachments, then GetSubnet of its two VNICs' subnets in parallel.
    pub fn cold_apply_calls(&self) -> u64 {
        self.apply_calls() + 3
    }

    pub fn cold_apply_seconds(&self) -> f64 {
        self.apply_seconds() + 2.0 * self.read()
    }

    /// Delete to released: one DeletePublicIp (OCI unassigns and deletes in one call).
    pub fn delete_calls(&self) -> u64 {
        1
    }

    pub fn delete_seconds(&self) -> f64 {
        self.write()
    }

    /// N ReservedIPs created at once, each naming a running pod: the
    /// emulator's bucket (as many creates as the rate per second) goes at
    /// once, the others at the rate; the last create's latency, ASSIGNING
    /// and the GetPublicIp that sees it follow. About N / rate for a large N
    /// (the bound issue 19 states), the tail matters for a small one.
    pub fn burst_seconds(&self, n: usize) -> f64 {
        let bucket = self.s.write_rate.floor().max(1.0);
        let after_bucket = (n as f64 - bucket).max(0.0) / self.s.write_rate;
        after_bucket + self.write() + self.s.assigning_ms as f64 / 1000.0 + self.read()
    }

    /// Calls per ReservedIP of a burst: its create, when every read is
    /// shared by the whole burst.
    pub fn burst_calls(&self) -> f64 {
        1.0
    }

    /// Drift checks by listing: one ListPublicIps page of up to 1,000 IPs per
    /// resync interval covers them all. Per ReservedIP and hour.
    pub fn idle_calls_per_ip_hour(&self, ips: usize) -> f64 {
        let pages = ips.div_ceil(PAGE) as f64;
        pages * (3600.0 / self.s.resync_seconds as f64) / ips as f64
    }

    /// A restart re-reads every IP with one paged ListPublicIps.
    pub fn restart_calls(&self, ips: usize) -> u64 {
        ips.div_ceil(PAGE) as u64
    }

    pub fn restart_seconds(&self, ips: usize) -> f64 {
        ips.div_ceil(PAGE) as f64 * self.read()
    }
}
