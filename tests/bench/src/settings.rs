//! The benchmark's command line: where things are, the emulator's "realistic"
//! settings (latency, lifecycle timing, rate limits) and the scenario sizes.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Runs the performance scenarios of issue 7 against a separate operator
/// process, the OCI emulator and the benchmark's own control plane. Normally
/// started by `make bench` (tests/bench/run.sh), which passes the paths.
#[derive(Debug, Clone, Parser)]
#[command(name = "k8s-oci-operator-bench", version)]
pub struct Settings {
    /// Work directory: seed, logs, pid files and results (.sandbox/bench).
    #[arg(long)]
    pub dir: PathBuf,
    /// Admin kubeconfig of the benchmark's control plane.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// Kubeconfig the operator runs with (the deploy/ ServiceAccount's token).
    #[arg(long)]
    pub operator_kubeconfig: PathBuf,
    /// The operator binary (a release build).
    #[arg(long)]
    pub operator_bin: PathBuf,
    /// The OCI emulator binary.
    #[arg(long)]
    pub emulator_bin: PathBuf,
    /// OCI config file the operator signs with (the emulator's test key).
    #[arg(long)]
    pub oci_config: PathBuf,
    /// Public half of that key, registered in the emulator's seed.
    #[arg(long)]
    pub public_key: PathBuf,
    /// The policy engine's micro-benchmark (policies/bench, release build), for scenario 6.
    #[arg(long)]
    pub policy_bench_bin: Option<PathBuf>,
    /// The built example policies (policies/build.sh's output directory).
    #[arg(long)]
    pub policy_dir: Option<PathBuf>,
    /// Markdown file whose results table (between the bench markers) is replaced.
    #[arg(long)]
    pub docs: Option<PathBuf>,

    /// Emulator latency of every read call, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub read_latency_ms: u64,
    /// Emulator latency of every mutating call (create, update, delete), in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub write_latency_ms: u64,
    /// Emulator rate limit of each mutating operation, calls per second (also its bucket size).
    #[arg(long, default_value_t = 10.0)]
    pub write_rate: f64,
    /// Emulator rate limit of each read operation, calls per second (also its bucket size).
    #[arg(long, default_value_t = 50.0)]
    pub read_rate: f64,
    /// PROVISIONING -> AVAILABLE, milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub provisioning_ms: u64,
    /// ASSIGNING -> ASSIGNED, milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub assigning_ms: u64,
    /// UNASSIGNING -> AVAILABLE, milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub unassigning_ms: u64,
    /// TERMINATING -> TERMINATED, milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub terminating_ms: u64,

    /// The operator's client-side OCI limits: `matched` sets them to the
    /// emulator's (what an admin who knows the tenancy's limits configures),
    /// `default` leaves the operator's defaults (20 reads/s, 20 writes/s, burst 5).
    #[arg(long, value_enum, default_value_t = OperatorLimits::Matched)]
    pub operator_limits: OperatorLimits,
    /// The operator's RESYNC_INTERVAL_SECONDS (drift check period).
    #[arg(long, default_value_t = 120)]
    pub resync_seconds: u64,
    /// Extra environment of the operator, KEY=VALUE (repeatable), for
    /// experiments such as MALLOC_ARENA_MAX=2.
    #[arg(long = "operator-env", value_parser = parse_env)]
    pub operator_env: Vec<(String, String)>,
    /// The operator's POLL_INTERVAL_MS; its default when unset.
    #[arg(long)]
    pub poll_ms: Option<u64>,

    /// Scenario 2: ReservedIPs (each with its pod) created at once.
    #[arg(long, default_value_t = 1000)]
    pub burst: usize,
    /// Scenario 2: smaller bursts run before it, one after another
    /// (comma-separated; their ReservedIPs stay and count in --idle-ips).
    #[arg(long, value_delimiter = ',', default_values_t = [50, 200])]
    pub bursts: Vec<usize>,
    /// Scenarios 3 and 4: ReservedIPs in place (the burst's plus more, all assigned).
    #[arg(long, default_value_t = 2000)]
    pub idle_ips: usize,
    /// Scenario 3: how long the ReservedIPs rest, in seconds (default: one resync interval).
    #[arg(long)]
    pub idle_seconds: Option<u64>,
    /// Scenario 5: pods in the cluster in all.
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// Pods named by ReservedIPs per fake node. Each node has a /22 pod CIDR
    /// (1,024 addresses), but kwok skips addresses under load (those of pod
    /// status writes it retried), and a pod IP past the /22 has no private IP
    /// in the emulator: half the range leaves room for that.
    #[arg(long, default_value_t = 500)]
    pub pods_per_node: usize,
    /// Other pods (scenario 5's) per fake node; their IPs are never looked up.
    #[arg(long, default_value_t = 1000)]
    pub filler_pods_per_node: usize,
    /// Parallel requests when creating pods and ReservedIPs.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OperatorLimits {
    Matched,
    Default,
}

impl Settings {
    /// Refuses sizes the scenarios cannot be built from.
    pub fn check(&self) -> Result<(), crate::error::Error> {
        let bad = |m: &str| Err(crate::error::Error::Settings(m.to_string()));
        if self.burst == 0 {
            return bad("--burst must be at least 1");
        }
        if self.bursts.contains(&0) {
            return bad("--bursts must be at least 1 each");
        }
        if self.idle_ips < self.burst + self.bursts.iter().sum::<usize>() {
            return bad(
                "--idle-ips must be at least --burst plus --bursts (the bursts' ReservedIPs stay)",
            );
        }
        if self.pods < self.idle_ips {
            return bad("--pods must be at least --idle-ips (every ReservedIP has a pod)");
        }
        if self.pods_per_node == 0 || self.pods_per_node > 1000 {
            return bad("--pods-per-node must be 1 to 1000 (a node's /22 holds 1,024 pod IPs)");
        }
        if self.filler_pods_per_node == 0 {
            return bad("--filler-pods-per-node must be at least 1");
        }
        if self.write_rate <= 0.0 || self.read_rate <= 0.0 {
            return bad("rates must be positive");
        }
        if self.concurrency == 0 {
            return bad("--concurrency must be at least 1");
        }
        Ok(())
    }

    pub fn idle_seconds(&self) -> u64 {
        self.idle_seconds.unwrap_or(self.resync_seconds)
    }
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}
