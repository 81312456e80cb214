//! The operator's Prometheus metrics: the families, where they are counted,
//! and the registry `/metrics` serves (`crate::health`).
//!
//! Every family is registered, and every label value known in advance is
//! created at zero, when the process starts: an alert on a rate or an
//! absence works before the first event. docs/metrics.md lists them all (a
//! test compares that table with what `/metrics` serves at start).
//!
//! - OCI calls (`crate::oci::limit` counts them): `oci_*`.
//! - Passes: `reconcile_*`, and the time from a spec change to Ready.
//! - The orphan sweep: `orphan_*`.
//! - Read at scrape time: ReservedIPs by state (the controller's cache),
//!   leader status (`crate::health`), build info, and the standard
//!   `process_*` families (from `/proc`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::api::crd::{ReservedIP, State};
use crate::build_info;
use crate::health::{Health, Role};
use crate::oci::OciMetrics;

/// Prefix of the operator's own families (not of `process_*`).
pub const PREFIX: &str = "k8s_oci_operator";

/// Buckets of the pass duration, in seconds: passes take milliseconds,
/// unless OCI or the API server is slow.
const PASS_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets of spec change → Ready: OCI's own changes take seconds.
const READY_BUCKETS: [f64; 12] = [
    0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

/// How a pass ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassResult {
    /// It did what it could (including waiting for OCI or for a pod).
    Success,
    /// It recorded a failure in status (OCI refused, a policy failed, the
    /// target has another IP): retried with backoff.
    Failed,
    /// It could not finish (the Kubernetes API failed...): retried with backoff.
    Error,
}

impl PassResult {
    const ALL: [PassResult; 3] = [Self::Success, Self::Failed, Self::Error];

    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Error => "error",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
    arch: &'static str,
}

/// Reasons of the passes that end in an error, created at zero at start.
/// (Failures recorded in status add their own reason, OCI's code, when
/// they first happen: those are not known in advance.)
pub const ERROR_REASONS: [&str; 4] = ["KubernetesAPI", "AllocationMarker", "Incomplete", "OCI"];

/// The operator's metrics. One per process, shared by every pass.
pub struct Metrics {
    pub oci: OciMetrics,
    pub policy: crate::policy::PolicyMetrics,
    passes: Family<ResultLabels, Counter>,
    pass_errors: Family<ReasonLabels, Counter>,
    pass_duration: Histogram,
    to_ready: Histogram,
    sweeps: Family<ResultLabels, Counter>,
    released: Counter,
    /// The controller's cache of ReservedIPs, once it runs (standby: none).
    reservedips: Arc<OnceLock<Store<ReservedIP>>>,
    /// When each ReservedIP's spec last changed, until it is Ready.
    specs: Mutex<HashMap<String, SpecSeen>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Self {
            oci: OciMetrics::default(),
            policy: crate::policy::PolicyMetrics::default(),
            passes: Family::default(),
            pass_errors: Family::default(),
            pass_duration: Histogram::new(PASS_BUCKETS),
            to_ready: Histogram::new(READY_BUCKETS),
            sweeps: Family::default(),
            released: Counter::default(),
            reservedips: Arc::default(),
            specs: Mutex::default(),
        };
        for result in PassResult::ALL {
            let _ = metrics.passes.get_or_create(&ResultLabels {
                result: result.label(),
            });
        }
        for reason in ERROR_REASONS {
            let _ = metrics.pass_errors.get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            });
        }
        for result in ["success", "error"] {
            let _ = metrics.sweeps.get_or_create(&ResultLabels { result });
        }
        metrics
    }
}

impl Metrics {
    /// The registry `/metrics` serves: every family, at zero until counted.
    pub fn registry(&self, health: Arc<Health>) -> Registry {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let r = root.sub_registry_with_prefix(PREFIX);
        self.oci.register(r);
        self.policy.register(r);
        r.register(
            "reconcile",
            "Passes over a ReservedIP by result: success, failed (a failure recorded in status, retried with backoff) or error (the pass could not finish)",
            self.passes.clone(),
        );
        r.register(
            "reconcile_errors",
            "Failed and errored passes by reason (OCI's error code for a failure recorded in status)",
            self.pass_errors.clone(),
        );
        r.register_with_unit(
            "reconcile_duration",
            "Duration of a pass over a ReservedIP",
            Unit::Seconds,
            self.pass_duration.clone(),
        );
        r.register_with_unit(
            "spec_to_ready",
            "Time from a ReservedIP's creation or spec change to its Ready condition for that generation",
            Unit::Seconds,
            self.to_ready.clone(),
        );
        r.register(
            "orphan_sweeps",
            "Sweeps of the compartment for public IPs tagged with this cluster whose ReservedIP is gone, by result",
            self.sweeps.clone(),
        );
        r.register(
            "orphans_released",
            "Public IPs the orphan sweep released",
            self.released.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: build_info::VERSION,
                commit: build_info::COMMIT,
                arch: std::env::consts::ARCH,
            })
            .set(1);
        r.register(
            "build_info",
            "The running build: version, git commit and architecture (value 1)",
            build,
        );
        r.register_collector(Box::new(StateCollector {
            reservedips: self.reservedips.clone(),
            health: health.clone(),
        }));
        root
    }

    /// Counts ReservedIPs by state from the controller's cache from now on.
    pub fn watch(&self, store: Store<ReservedIP>) {
        let _ = self.reservedips.set(store);
    }

    /// Counts a pass, its duration and, unless it succeeded, its reason.
    pub fn pass(&self, result: PassResult, reason: Option<&str>, took: Duration) {
        self.passes
            .get_or_create(&ResultLabels {
                result: result.label(),
            })
            .inc();
        if let (Some(reason), false) = (reason, result == PassResult::Success) {
            self.pass_errors
                .get_or_create(&ReasonLabels {
                    reason: reason.to_string(),
                })
                .inc();
        }
        self.pass_duration.observe(took.as_secs_f64());
    }

    /// Counts one orphan sweep and what it released.
    pub fn sweep(&self, ok: bool, released: usize) {
        let result = if ok { "success" } else { "error" };
        self.sweeps.get_or_create(&ResultLabels { result }).inc();
        self.released.inc_by(released as u64);
    }

    /// Called by each pass with its ReservedIP and whether the status it
    /// writes is Ready for the current generation: observes the time since
    /// that generation's spec was made, once per generation.
    pub fn spec_pass(&self, rip: &ReservedIP, ready: bool) {
        let Some(uid) = rip.metadata.uid.as_deref() else {
            return;
        };
        let generation = rip.metadata.generation.unwrap_or(0);
        let created = rip
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| SystemTime::from(t.0));
        let mut specs = lock(&self.specs);
        let seen = specs.get(uid).copied();
        let (next, took) = spec_step(seen, generation, created, ready, SystemTime::now());
        match specs.get_mut(uid) {
            Some(entry) => *entry = next,
            None => {
                specs.insert(uid.to_string(), next);
            }
        }
        drop(specs);
        if let Some(took) = took {
            self.to_ready.observe(took.as_secs_f64());
        }
    }

    /// Forgets a ReservedIP that is gone.
    pub fn forget(&self, uid: &str) {
        lock(&self.specs).remove(uid);
    }

    /// Passes counted so far with `result` (for tests).
    pub fn passes(&self, result: PassResult) -> u64 {
        self.passes
            .get_or_create(&ResultLabels {
                result: result.label(),
            })
            .get()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Single inserts and removes: consistent across a panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What is known of a ReservedIP's current generation.
#[derive(Clone, Copy, Debug, PartialEq)]
struct SpecSeen {
    generation: i64,
    /// When the generation was made: the creation for the first one, else
    /// when this process first saw it.
    since: SystemTime,
    /// Its time to Ready has been observed.
    ready: bool,
}

/// The next [`SpecSeen`] after a pass, and the time to observe if this pass
/// made the generation Ready for the first time. Pure, for tests.
fn spec_step(
    seen: Option<SpecSeen>,
    generation: i64,
    created: Option<SystemTime>,
    ready: bool,
    now: SystemTime,
) -> (SpecSeen, Option<Duration>) {
    let current = match seen {
        Some(s) if s.generation == generation => s,
        // A new generation, or one this process has not seen. Generation 1
        // is the creation: timed from it. Later ones from now (the API
        // server does not record when a spec changed). A process that starts
        // on a Ready object observes nothing (it is not known when its spec
        // was made, and it made nothing Ready).
        _ => SpecSeen {
            generation,
            since: match created {
                Some(created) if generation <= 1 => created,
                _ => now,
            },
            ready: seen.is_none() && ready,
        },
    };
    if ready && !current.ready {
        let took = now.duration_since(current.since).unwrap_or_default();
        return (
            SpecSeen {
                ready: true,
                ..current
            },
            Some(took),
        );
    }
    (current, None)
}

/// ReservedIPs by state and leader status, read at each scrape.
struct StateCollector {
    reservedips: Arc<OnceLock<Store<ReservedIP>>>,
    health: Arc<Health>,
}

/// Every state, as `.status.state` spells it (`pending` also for no status yet).
const STATES: [(State, &str); 8] = [
    (State::Pending, "pending"),
    (State::Allocating, "allocating"),
    (State::Allocated, "allocated"),
    (State::Assigning, "assigning"),
    (State::Assigned, "assigned"),
    (State::Unassigning, "unassigning"),
    (State::Releasing, "releasing"),
    (State::Failed, "failed"),
];

impl std::fmt::Debug for StateCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateCollector")
    }
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut counts = [0i64; STATES.len()];
        if let Some(store) = self.reservedips.get() {
            for rip in store.state() {
                let state = rip
                    .status
                    .as_ref()
                    .and_then(|s| s.state)
                    .unwrap_or_default();
                if let Some(i) = STATES.iter().position(|(s, _)| *s == state) {
                    counts[i] += 1;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "reservedips",
            "ReservedIPs by state, as this replica's cache sees them (all 0 on a standby)",
            None,
            MetricType::Gauge,
        )?;
        for ((_, name), count) in STATES.iter().zip(counts) {
            ConstGauge::new(count).encode(family.encode_family(&[("state", *name)])?)?;
        }
        let leading = i64::from(self.health.role() == Role::Reconciling);
        let leader = encoder.encode_descriptor(
            "leader",
            "1 while this replica reconciles (holds the Lease, or runs without leader election), else 0",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(leading).encode(leader)
    }
}

/// The standard `process_*` families, read from `/proc` at each scrape.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Unreadable /proc (not Linux): the families are left out rather
        // than reported as zeros that would look real.
        let Ok(process) = procfs::process::Process::myself() else {
            return Ok(());
        };
        let Ok(stat) = process.stat() else {
            return Ok(());
        };
        let ticks = procfs::ticks_per_second() as f64;
        let cpu = (stat.utime + stat.stime) as f64 / ticks;
        // The unit completes the name: process_cpu_seconds_total.
        let c = encoder.encode_descriptor(
            "process_cpu",
            "Total user and system CPU time spent in seconds",
            Some(&Unit::Seconds),
            MetricType::Counter,
        )?;
        ConstCounter::new(cpu).encode(c)?;
        let rss = stat.rss.saturating_mul(procfs::page_size());
        gauge(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            rss as f64,
        )?;
        gauge(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            stat.vsize as f64,
        )?;
        if let Ok(boot) = procfs::boot_time_secs() {
            let start = boot as f64 + stat.starttime as f64 / ticks;
            gauge(
                &mut encoder,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                start,
            )?;
        }
        if let Ok(fds) = process.fd_count() {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors",
                fds as f64,
            )?;
        }
        if let Ok(limits) = process.limits()
            && let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit
        {
            gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors",
                max as f64,
            )?;
        }
        Ok(())
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let g = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_new_reservedip_is_timed_from_its_creation_once() {
        let (seen, took) = spec_step(None, 1, Some(at(100)), false, at(101));
        assert_eq!(took, None);
        let (seen, took) = spec_step(Some(seen), 1, Some(at(100)), true, at(103));
        assert_eq!(took, Some(Duration::from_secs(3)));
        // Ready again later (a resync): nothing more to observe.
        let (_, took) = spec_step(Some(seen), 1, Some(at(100)), true, at(200));
        assert_eq!(took, None);
    }

    #[test]
    fn a_spec_change_is_timed_from_when_it_was_first_seen() {
        let ready = SpecSeen {
            generation: 1,
            since: at(100),
            ready: true,
        };
        let (seen, took) = spec_step(Some(ready), 2, Some(at(100)), false, at(500));
        assert_eq!((seen.since, took), (at(500), None));
        let (_, took) = spec_step(Some(seen), 2, Some(at(100)), true, at(502));
        assert_eq!(took, Some(Duration::from_secs(2)));
    }

    #[test]
    fn a_restart_on_a_ready_reservedip_observes_nothing() {
        let (seen, took) = spec_step(None, 3, Some(at(100)), true, at(900));
        assert_eq!(took, None);
        assert!(seen.ready);
        // But a ReservedIP seen first not Ready is timed when it becomes so.
        let (seen, _) = spec_step(None, 1, Some(at(100)), false, at(101));
        let (_, took) = spec_step(Some(seen), 1, Some(at(100)), true, at(102));
        assert_eq!(took, Some(Duration::from_secs(2)));
    }

    #[test]
    fn passes_are_counted_by_result_and_unsuccessful_ones_by_reason() {
        let metrics = Metrics::default();
        metrics.pass(PassResult::Success, None, Duration::from_millis(3));
        metrics.pass(PassResult::Failed, Some("OCILimitExceeded"), Duration::ZERO);
        metrics.pass(PassResult::Error, Some("KubernetesAPI"), Duration::ZERO);
        assert_eq!(metrics.passes(PassResult::Success), 1);
        assert_eq!(metrics.passes(PassResult::Failed), 1);
        let reason = |r: &str| {
            metrics
                .pass_errors
                .get_or_create(&ReasonLabels {
                    reason: r.to_string(),
                })
                .get()
        };
        assert_eq!(
            (reason("OCILimitExceeded"), reason("KubernetesAPI")),
            (1, 1)
        );
    }
}
