//! The scenarios of issue 7, one module each, run in this order on one
//! growing cluster: single (1), burst (2), fill up to the idle size, memory
//! with many pods (5), idle (3), restart (4), the sweep of OCI delays (7,
//! on the restarted process, which has learned nothing yet), workloads (8:
//! floating IP failover, a StatefulSet scale cycle); policy (6) last. Each pushes its rows and details into [`Bench`].

pub mod burst;
pub mod idle;
pub mod memory;
pub mod policy;
pub mod restart;
pub mod single;
pub mod sweep;
pub mod workloads;

use std::time::{Duration, Instant};

use kube::Client;
use serde_json::{Map, Value};

use crate::emulator::Emulator;
use crate::error::{Error, Result};
use crate::operator::Operator;
use crate::procstat::Sample;
use crate::report::Row;
use crate::settings::Settings;
use crate::topology::Topology;
use crate::tracker::Tracker;
use crate::workload::{self, PodSpec};

/// Everything the scenarios share.
pub struct Bench {
    pub s: Settings,
    pub topology: Topology,
    pub client: Client,
    pub emulator: Emulator,
    pub operator: Option<Operator>,
    pub tracker: Tracker,
    pub ticks: f64,
    pub rows: Vec<Row>,
    pub details: Map<String, Value>,
    /// The operator's memory after each step, to tell what it grows with.
    pub timeline: Vec<Value>,
}

impl Bench {
    pub fn operator(&self) -> Result<&Operator> {
        self.operator
            .as_ref()
            .ok_or_else(|| Error::Process("the operator is not running".into()))
    }

    pub fn sample(&self) -> Result<Sample> {
        Sample::read(self.operator()?.pid(), self.ticks)
    }

    /// Records the operator's RSS and CPU now, labelled with the step just done.
    pub fn mark(&mut self, step: &str) {
        if let Ok(sample) = self.sample() {
            self.timeline.push(serde_json::json!({
                "after": step,
                "rss_mib": mib(sample.rss_kib),
                "hwm_mib": mib(sample.hwm_kib),
                "cpu_seconds": sample.cpu_seconds,
            }));
        }
    }

    pub fn detail(&mut self, key: &str, value: Value) {
        self.details.insert(key.into(), value);
    }

    /// Pods `p-<from>`..`p-<to>` (the ones ReservedIPs name), `per_node` to a node.
    pub async fn create_target_pods(&self, role: &str, from: usize, to: usize) -> Result<Duration> {
        let pods = (from..to)
            .map(|i| PodSpec {
                name: pod_name(i),
                role: role.to_string(),
                node: self.topology.target_node(i),
            })
            .collect();
        self.create_and_wait(role, pods, to - from).await
    }

    pub async fn create_and_wait(
        &self,
        role: &str,
        pods: Vec<PodSpec>,
        count: usize,
    ) -> Result<Duration> {
        let start = Instant::now();
        workload::create_pods(&self.client, pods, self.s.concurrency).await?;
        // kwok needs a moment per pod on 2 cores; give it generously.
        let max = Duration::from_secs(120 + count as u64 / 5);
        workload::wait_pods_running(&self.client, role, count, max).await?;
        Ok(start.elapsed())
    }

    /// Creates ReservedIPs `r-<i>` for pods `p-<i>` and waits until all are
    /// assigned; returns the names and the time from the first create to the
    /// last `assigned`.
    pub async fn assign_wave(&self, from: usize, to: usize, max: Duration) -> Result<Duration> {
        Ok(self.assign_wave_timed(from, to, max).await?.took)
    }

    /// [`Self::assign_wave`], with when each ReservedIP became `assigned`.
    pub async fn assign_wave_timed(&self, from: usize, to: usize, max: Duration) -> Result<Wave> {
        let items: Vec<(String, String)> = (from..to).map(|i| (rip_name(i), pod_name(i))).collect();
        let names: Vec<String> = items.iter().map(|(n, _)| n.clone()).collect();
        let started_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let start = Instant::now();
        workload::create_reservedips(&self.client, items, self.s.concurrency).await?;
        let created = start.elapsed();
        let n = names.len();
        self.tracker
            .wait(&format!("{n} ReservedIPs to be assigned"), max, |st| {
                st.assigned(names.iter()).0 == n
            })
            .await?;
        let mut assigned: Vec<f64> = self.tracker.read(|st| {
            names
                .iter()
                .filter_map(|n| st.assigned_at(n))
                .map(|t| t.saturating_duration_since(start).as_secs_f64())
                .collect()
        });
        assigned.sort_by(f64::total_cmp);
        let took = Duration::from_secs_f64(assigned.last().copied().unwrap_or_default());
        Ok(Wave {
            took,
            created,
            started_unix_ms,
            assigned,
        })
    }
}

/// A wave of ReservedIPs: when it began and when each became `assigned`.
pub struct Wave {
    /// From the first create to the last `assigned`.
    pub took: Duration,
    /// How long the creates took (the API server's part).
    pub created: Duration,
    /// When the first create was sent (milliseconds since the Unix epoch),
    /// to line the wave up with the operator's and the emulator's logs.
    pub started_unix_ms: u128,
    /// Seconds from the first create to each `assigned`, in order.
    pub assigned: Vec<f64>,
}

impl Wave {
    /// The `q` quantile (0..=1) of the assigned times.
    pub fn quantile(&self, q: f64) -> f64 {
        let i = ((self.assigned.len().saturating_sub(1)) as f64 * q).round() as usize;
        self.assigned.get(i).copied().unwrap_or_default()
    }
}

pub fn pod_name(i: usize) -> String {
    format!("p-{i}")
}

pub fn rip_name(i: usize) -> String {
    format!("r-{i}")
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
