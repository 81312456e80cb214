//! The operator as a separate process (the release build), run as the
//! deploy/ ServiceAccount against the emulator, with a health port to wait on.

use std::fs::OpenOptions;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::error::{Error, Result, io};
use crate::settings::{OperatorLimits, Settings};
use crate::topology::{CLUSTER_ID, COMPARTMENT, NODES_SUBNET, PODS_SUBNET};

pub struct Operator {
    child: Child,
    pid: u32,
    health: String,
    /// From spawn to the first answer of /readyz.
    pub ready_after: Duration,
}

impl Operator {
    /// Starts the operator; `fresh` starts a new operator.log (a restart appends).
    pub async fn start(s: &Settings, emulator_url: &str, fresh: bool) -> Result<Self> {
        // A free port for the health endpoint: bind, read, release.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(io("finding a free port"))?
            .port();
        let log = OpenOptions::new()
            .create(true)
            .write(true)
            .append(!fresh)
            .truncate(fresh)
            .open(s.dir.join("operator.log"))
            .map_err(io("opening operator.log"))?;
        let err = log.try_clone().map_err(io("opening operator.log"))?;
        let mut cmd = Command::new(&s.operator_bin);
        cmd.arg("run")
            .env("KUBECONFIG", &s.operator_kubeconfig)
            .env("OCI_COMPARTMENT_ID", COMPARTMENT)
            .env("CLUSTER_ID", CLUSTER_ID)
            .env("OCI_CONFIG_FILE", &s.oci_config)
            .env("OCI_ENDPOINT", emulator_url)
            .env("OCI_SUBNET_IDS", format!("{PODS_SUBNET},{NODES_SUBNET}"))
            .env("HEALTH_ADDR", format!("127.0.0.1:{port}"))
            // Policy ConfigMaps, for scenario 6's live reload (none exist
            // before it, so the other scenarios evaluate no policy).
            .env(
                "POLICY_NAMESPACE",
                crate::scenarios::policy::POLICY_NAMESPACE,
            )
            .env("RESYNC_INTERVAL_SECONDS", s.resync_seconds.to_string())
            // One namespace holds the whole burst: as a platform team would
            // for such a namespace, the per-namespace cap is lifted.
            .env("MAX_RESERVED_IPS_PER_NAMESPACE", "0")
            .env(
                "RUST_LOG",
                std::env::var("BENCH_OPERATOR_LOG").unwrap_or_else(|_| "info,kube=warn".into()),
            )
            // Whatever the caller's shell holds must not change what is measured.
            .env_remove("WATCH_NAMESPACE")
            .env_remove("LEADER_ELECTION_NAMESPACE")
            .env_remove("POLL_INTERVAL_MS")
            .env_remove("OCI_READS_PER_SECOND")
            .env_remove("OCI_WRITES_PER_SECOND")
            .env_remove("OCI_BURST")
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        if s.operator_limits == OperatorLimits::Matched {
            // The operator's limiter has one bucket for all reads and one for
            // all writes; OCI (and the emulator) limit each operation.
            cmd.env("OCI_READS_PER_SECOND", (s.read_rate as u32).to_string())
                .env("OCI_WRITES_PER_SECOND", (s.write_rate as u32).to_string())
                .env("OCI_BURST", (s.write_rate as u32).max(1).to_string());
        }
        cmd.envs(s.operator_env.iter().map(|(k, v)| (k, v)));
        if let Some(ms) = s.poll_ms {
            cmd.env("POLL_INTERVAL_MS", ms.to_string());
        }
        let started = Instant::now();
        let child = cmd
            .spawn()
            .map_err(io(format!("starting {}", s.operator_bin.display())))?;
        let pid = child
            .id()
            .ok_or_else(|| Error::Process("the operator exited at once".into()))?;
        std::fs::write(s.dir.join("operator.pid"), pid.to_string())
            .map_err(io("writing operator.pid"))?;
        let mut op = Self {
            child,
            pid,
            health: format!("http://127.0.0.1:{port}/readyz"),
            ready_after: Duration::ZERO,
        };
        op.ready_after = op.wait_ready(started).await?;
        Ok(op)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    async fn wait_ready(&mut self, started: Instant) -> Result<Duration> {
        let http = reqwest::Client::new();
        let max = Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(&self.health).send().await
                && r.status().is_success()
            {
                return Ok(started.elapsed());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Process(format!(
                    "the operator exited ({status}); see operator.log"
                )));
            }
            if started.elapsed() > max {
                return Err(Error::Timeout(max, "the operator's /readyz".into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM (the operator shuts its controller down on it), then SIGKILL.
    pub async fn stop(mut self, s: &Settings) -> Result<()> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let wait = Duration::from_secs(15);
        if tokio::time::timeout(wait, self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
        let _ = std::fs::remove_file(s.dir.join("operator.pid"));
        Ok(())
    }
}
