//! `make demo` leaves the sandbox running (control plane, emulator and an
//! operator watching every namespace), and `make test` may come right after.
//! The tests run on their own control plane (`tests/test-cluster.sh`), so the
//! sandbox's operator never sees a test's objects. This test starts the
//! sandbox (or uses the one already running), runs a ReservedIP lifecycle on
//! the tests' control plane, and checks the sandbox operator touched nothing
//! of it: no mutating call to the sandbox's emulator, its public IPs as they
//! were, the test namespace unknown to the sandbox's API server, and no Event
//! in the test namespace reported by the sandbox's operator.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use integration_tests::{OperatorSandbox, repo_root, rip_yaml};
use k8s_oci_operator::api::crd::State;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::Value;

/// The sandbox's operator runs with this POD_NAME (tests/sandbox/up.sh), which
/// its Events carry as `reportingInstance`.
const SANDBOX_OPERATOR: &str = "sandbox-operator";
/// OCI calls that change the emulator's state.
const MUTATING: [&str; 3] = ["CreatePublicIp", "UpdatePublicIp", "DeletePublicIp"];

/// The running sandbox; stops it on drop if this test started it.
struct Sandbox {
    root: PathBuf,
    started: bool,
    emulator_url: String,
}

impl Sandbox {
    async fn up() -> Result<Self> {
        let root = repo_root();
        let dir = root.join(".sandbox");
        let running = dir.join("cluster.ready").is_file()
            && std::fs::read_to_string(dir.join("operator.pid"))
                .ok()
                .and_then(|pid| pid.trim().parse::<i32>().ok())
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !running {
            // The binaries the tests use, not a build of its own (which
            // would resolve the workspace's features anew and rebuild).
            let operator = integration_tests::operator_binary().await?;
            let emulator = integration_tests::built_binary("oci-emulator").await?;
            let out = Command::new(root.join("tests/sandbox/up.sh"))
                .env("OPERATOR_BIN", operator)
                .env("EMULATOR_BIN", emulator)
                .output()
                .context("running tests/sandbox/up.sh")?;
            if !out.status.success() {
                bail!(
                    "tests/sandbox/up.sh failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let env = std::fs::read_to_string(dir.join("env")).context("reading .sandbox/env")?;
        let emulator_url = env
            .lines()
            .filter_map(|l| l.strip_prefix("export OCI_EMULATOR_URL="))
            .next_back()
            .context(".sandbox/env names no OCI_EMULATOR_URL")?
            .to_string();
        Ok(Self {
            root,
            started: !running,
            emulator_url,
        })
    }

    fn kubeconfig(&self) -> PathBuf {
        self.root.join(".sandbox/kubeconfig")
    }

    async fn client(&self) -> Result<Client> {
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig())?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    async fn emulator(&self, what: &str) -> Result<Value> {
        let url = format!("{}/_emulator/{what}", self.emulator_url);
        Ok(reqwest::get(&url).await?.error_for_status()?.json().await?)
    }

    /// Calls of the mutating operations so far, whatever their outcome.
    async fn mutating_calls(&self) -> Result<u64> {
        let calls = self.emulator("calls").await?;
        Ok(MUTATING
            .iter()
            .filter_map(|op| calls[op].as_object())
            .flat_map(|outcomes| outcomes.values())
            .filter_map(Value::as_u64)
            .sum())
    }

    /// The sandbox's public IPs: id, lifecycle state, private IP and tags.
    async fn public_ips(&self) -> Result<Vec<Value>> {
        let state = self.emulator("state").await?;
        let mut ips: Vec<Value> = state["publicIps"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|ip| {
                serde_json::json!([
                    ip["id"],
                    ip["lifecycleState"],
                    ip["privateIpId"],
                    ip["freeformTags"]
                ])
            })
            .collect();
        ips.sort_by_key(|ip| ip[0].to_string());
        Ok(ips)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.started {
            let _ = Command::new(self.root.join("tests/sandbox/down.sh")).output();
        }
    }
}

fn server_of(kubeconfig: &Path) -> Result<String> {
    let config = Kubeconfig::read_from(kubeconfig)?;
    config
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .with_context(|| format!("no server in {}", kubeconfig.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_sandbox_operator_never_touches_a_tests_objects() -> Result<()> {
    let sandbox = Sandbox::up().await?;
    let tests_kubeconfig = PathBuf::from(
        std::env::var_os("KUBECONFIG").context("KUBECONFIG is not set (use make test)")?,
    );
    let (ours, theirs) = (
        server_of(&tests_kubeconfig)?,
        server_of(&sandbox.kubeconfig())?,
    );
    ensure!(
        ours != theirs,
        "the tests run on the sandbox's control plane ({ours}); make test must use its own"
    );

    let calls_before = sandbox.mutating_calls().await?;
    let ips_before = sandbox.public_ips().await?;

    // A lifecycle on the tests' control plane: allocate, assign, release.
    let sb = OperatorSandbox::start("isolation").await?;
    sb.running_pod("web", None).await?;
    sb.create(&rip_yaml("isolated", Some("web"))).await?;
    sb.wait_state("isolated", State::Assigned, true).await?;
    // An operator sharing this control plane would have acted by now (it
    // reacts to a new ReservedIP within milliseconds); give it ample time.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let events: Api<Event> = sb.ns.api();
    let events = events.list(&ListParams::default()).await?.items;
    let instances: Vec<Option<&str>> = events
        .iter()
        .map(|e| e.reporting_instance.as_deref())
        .collect();
    ensure!(
        !events.is_empty(),
        "the tests' operator recorded no Event, so none could be told apart"
    );
    ensure!(
        !instances.contains(&Some(SANDBOX_OPERATOR)),
        "the sandbox operator reported Events in the test namespace: {instances:?}"
    );
    let sandbox_namespaces: Api<Namespace> = Api::all(sandbox.client().await?);
    ensure!(
        sandbox_namespaces.get_opt(sb.ns.name()).await?.is_none(),
        "the test namespace {} exists on the sandbox's control plane",
        sb.ns.name()
    );
    sb.finish().await?;

    assert_eq!(
        sandbox.mutating_calls().await?,
        calls_before,
        "the sandbox's emulator received create/update/delete calls during the test"
    );
    assert_eq!(
        sandbox.public_ips().await?,
        ips_before,
        "the sandbox's public IPs changed during the test"
    );
    Ok(())
}
