//! An operator sandbox per test: a namespace on the local control plane, an
//! OCI emulator of its own (seeded with the sandbox topology that matches the
//! kwok nodes) and the operator, running in-process through its real OCI
//! client (signed HTTP), watching only that namespace.
//!
//! [`OperatorSandbox::finish`] deletes every ReservedIP while the operator
//! still runs and checks that the emulator holds no public IP of this
//! sandbox's cluster identity: nothing leaked.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use k8s_oci_operator::api::crd::{ReservedIP, State, crd_yaml};
use k8s_oci_operator::config::DEFAULT_MAX_RESERVED_IPS_PER_NAMESPACE;
use k8s_oci_operator::controller::{self, Context, Settings};
use k8s_oci_operator::decide::ownership::TAG_CLUSTER;
use k8s_oci_operator::metrics::Metrics;
use k8s_oci_operator::oci::{HttpOciClient, Limits, OciCredentials, Throttled};
use k8s_oci_operator::policy::{Limits as PolicyLimits, PolicyEngine};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::conditions;
use kube::{Api, Client, ResourceExt};
use oci_emulator::{Emulator, EmulatorConfig, EmulatorHandle, Seed, Timing};
use serde_json::Value;
use test_support::{TestNamespace, wait_for, wait_until};
use tokio::sync::OnceCell;

pub use test_support::client;

pub mod outage;
pub mod platform;
pub mod probes;
pub mod report;
pub mod tenancy_report;
pub mod workloads;

/// The sandbox compartment of the emulator's seed.
pub const COMPARTMENT: &str = "ocid1.compartment.oc1..sandbox";
/// The BYOIP pool of the seed.
pub const POOL: &str = "ocid1.publicippool.oc1.sandbox.pool1";
/// An untagged, AVAILABLE reserved IP of the seed.
pub const SPECIFIC_ADDRESS: &str = "198.51.100.77";
/// Its OCID.
pub const SPECIFIC_ID: &str = "ocid1.publicip.oc1.sandbox.specific";

static CRD: OnceCell<()> = OnceCell::const_new();

/// Installs (or updates) the ReservedIP CRD from the checked-in file, once per test binary.
pub async fn install_crd(client: &Client) -> Result<()> {
    CRD.get_or_try_init(|| install_crd_again(client)).await?;
    Ok(())
}

/// Installs (or updates) the ReservedIP CRD now and waits until it is served.
pub async fn install_crd_again(client: &Client) -> Result<()> {
    let crd: CustomResourceDefinition = serde_yaml::from_str(&crd_yaml()?)?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        &crd.name_any(),
        &PatchParams::apply("integration-tests").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    wait_for(
        &crds,
        &crd.name_any(),
        Duration::from_secs(30),
        conditions::is_crd_established(),
    )
    .await?;
    Ok(())
}

pub struct OperatorSandbox {
    pub client: Client,
    pub emulator: EmulatorHandle,
    pub cluster_id: String,
    /// Orphan sweep interval and grace for the in-process operator.
    pub orphan_sweep: (Duration, Duration),
    /// How long a recorded public IP must answer 404 before it counts as deleted.
    pub missing_grace: Duration,
    /// How often an IP at rest is checked for drift (5 s unless a test needs
    /// to show something happens without waiting for it).
    pub resync: Duration,
    /// The operator's own Kubernetes client, when it should not use the admin's.
    pub operator_client: Option<Client>,
    /// The operator's policy engine (empty unless a test loads policies).
    pub policy: PolicyEngine,
    /// The namespace the operator runs in (its pods are never a target).
    pub operator_namespace: Option<String>,
    /// The operator's own OCI rate limits (the shipped defaults unless a
    /// test needs writes to queue).
    pub limits: Limits,
    operator: Option<tokio::task::JoinHandle<()>>,
    // Dropped last: the namespace goes once nothing in it holds a finalizer.
    pub ns: TestNamespace,
}

impl OperatorSandbox {
    pub async fn start(test: &str) -> Result<Self> {
        Self::start_with(test, Timing::fast()).await
    }

    pub async fn start_with(test: &str, timing: Timing) -> Result<Self> {
        // RUST_LOG=k8s_oci_operator=debug shows the operator's decisions.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let client = client().await?;
        install_crd(&client).await?;
        let ns = TestNamespace::create(&client, test).await?;
        let emulator =
            Emulator::start(EmulatorConfig::with_seed(Seed::sandbox()?).timing(timing)).await?;
        let cluster_id = format!("test-{}", ns.name());
        let mut me = Self {
            client,
            emulator,
            cluster_id,
            orphan_sweep: (Duration::from_secs(3600), Duration::from_secs(3600)),
            missing_grace: Duration::from_secs(3),
            resync: Duration::from_secs(5),
            operator_client: None,
            policy: PolicyEngine::new(PolicyLimits::default())?,
            operator_namespace: None,
            limits: Limits::default(),
            operator: None,
            ns,
        };
        me.start_operator()?;
        Ok(me)
    }

    /// Starts (or restarts) the in-process operator.
    pub fn start_operator(&mut self) -> Result<()> {
        self.stop_operator();
        let oci = self.oci_client()?;
        let settings = Settings {
            compartment_id: COMPARTMENT.into(),
            cluster_id: self.cluster_id.clone(),
            poll_interval: Duration::from_millis(200),
            resync_interval: self.resync,
            namespace: Some(self.ns.name().to_string()),
            orphan_interval: self.orphan_sweep.0,
            orphan_grace: self.orphan_sweep.1,
            missing_grace: self.missing_grace,
            operator_namespace: self.operator_namespace.clone(),
            // The shipped default: tests run with what users get.
            max_reserved_ips_per_namespace: Some(DEFAULT_MAX_RESERVED_IPS_PER_NAMESPACE),
            stuck_after: Duration::from_secs(300),
            workload_ips: true,
        };
        let subnets = vec![
            "ocid1.subnet.oc1.sandbox.pods".to_string(),
            "ocid1.subnet.oc1.sandbox.nodes".to_string(),
        ];
        let metrics = Arc::new(Metrics::default());
        let oci = Throttled::new(oci, self.limits, metrics.oci.clone());
        let client = self
            .operator_client
            .clone()
            .unwrap_or_else(|| self.client.clone());
        let ctx = Context::new(client, oci, settings, subnets, self.policy.clone(), metrics);
        // Stopped by aborting the task (`stop_operator`), as a crash would.
        self.operator = Some(tokio::spawn(controller::run(
            ctx,
            std::future::pending::<()>(),
        )));
        Ok(())
    }

    pub fn stop_operator(&mut self) {
        if let Some(op) = self.operator.take() {
            op.abort();
        }
    }

    pub fn rips(&self) -> Api<ReservedIP> {
        self.ns.api()
    }

    /// Creates a ReservedIP from a manifest (its namespace is set to the sandbox's).
    pub async fn create(&self, yaml: &str) -> Result<ReservedIP> {
        let mut rip: ReservedIP =
            serde_yaml::from_str(yaml).context("parsing the ReservedIP manifest")?;
        rip.metadata.namespace = Some(self.ns.name().to_string());
        Ok(self.rips().create(&PostParams::default(), &rip).await?)
    }

    /// Applies a manifest with server-side apply, as `kubectl apply` does.
    pub async fn apply(&self, yaml: &str) -> Result<ReservedIP> {
        let mut rip: ReservedIP =
            serde_yaml::from_str(yaml).context("parsing the ReservedIP manifest")?;
        rip.metadata.namespace = Some(self.ns.name().to_string());
        let name = rip.name_any();
        Ok(self
            .rips()
            .patch(
                &name,
                &PatchParams::apply("kubectl").force(),
                &Patch::Apply(&rip),
            )
            .await?)
    }

    /// Waits until the ReservedIP is in `state` with its Ready condition as given.
    pub async fn wait_state(&self, name: &str, state: State, ready: bool) -> Result<ReservedIP> {
        self.wait_state_within(name, state, ready, Duration::from_secs(30))
            .await
    }

    /// [`Self::wait_state`] with a time limit of the caller's choosing.
    pub async fn wait_state_within(
        &self,
        name: &str,
        state: State,
        ready: bool,
        timeout: Duration,
    ) -> Result<ReservedIP> {
        let want = if ready { "True" } else { "False" };
        wait_for(
            &self.rips(),
            name,
            timeout,
            move |r: Option<&ReservedIP>| {
                r.and_then(|r| r.status.as_ref()).is_some_and(|s| {
                    s.state == Some(state)
                        && s.observed_generation.is_some()
                        && k8s_oci_operator::api::conditions::get(&s.conditions, "Ready")
                            .is_some_and(|c| c.status == want)
                })
            },
        )
        .await
    }

    /// The emulator's public IPs in OCI's JSON form.
    pub fn public_ips(&self) -> Vec<Value> {
        self.emulator.state()["publicIps"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The emulator's public IP with this OCID.
    pub fn public_ip(&self, id: &str) -> Option<Value> {
        self.public_ips().into_iter().find(|ip| ip["id"] == id)
    }

    /// Live public IPs carrying this sandbox's cluster tag.
    pub fn ours(&self) -> Vec<Value> {
        self.public_ips()
            .into_iter()
            .filter(|ip| ip["freeformTags"][TAG_CLUSTER] == self.cluster_id.as_str())
            .filter(is_live)
            .collect()
    }

    /// Deletes a ReservedIP and waits until it is gone (its finalizer let go).
    pub async fn delete_and_wait(&self, name: &str) -> Result<()> {
        self.rips().delete(name, &DeleteParams::default()).await?;
        wait_until(Duration::from_secs(30), || async {
            Ok(self.rips().get_opt(name).await?.is_none())
        })
        .await
        .with_context(|| format!("ReservedIP {name} was not released"))
    }

    /// Every public IP of ours is owned by exactly one existing ReservedIP,
    /// and no ReservedIP owns two.
    pub async fn assert_no_leak(&self) -> Result<()> {
        let rips = self.rips().list(&ListParams::default()).await?.items;
        let owned: Vec<String> = rips
            .iter()
            .filter_map(|r| r.status.as_ref().and_then(|s| s.public_ip_id.clone()))
            .collect();
        for ip in self.ours() {
            let id = ip["id"].as_str().unwrap_or_default();
            let n = owned.iter().filter(|o| *o == id).count();
            if n != 1 {
                bail!(
                    "public IP {id} ({}) is owned by {n} ReservedIPs: {ip}",
                    ip["ipAddress"]
                );
            }
        }
        Ok(())
    }

    /// Deletes every ReservedIP (the operator releases their IPs), then
    /// checks that no public IP of this sandbox is left.
    pub async fn finish(mut self) -> Result<()> {
        let rips = self.rips();
        rips.delete_collection(&DeleteParams::default(), &ListParams::default())
            .await?;
        wait_until(Duration::from_secs(30), || async {
            Ok(rips.list(&ListParams::default()).await?.items.is_empty())
        })
        .await
        .context("ReservedIPs were not released")?;
        let left = self.ours();
        self.stop_operator();
        if !left.is_empty() {
            bail!("public IPs leaked after every ReservedIP was deleted: {left:?}");
        }
        Ok(())
    }
}

impl Drop for OperatorSandbox {
    fn drop(&mut self) {
        self.stop_operator();
        // After a failed test, ReservedIPs may still hold the finalizer with no
        // operator to remove it; strip it so the namespace can go.
        let ns = self.ns.name().to_string();
        test_support::with_fresh_client(move |client| async move {
            let api: Api<ReservedIP> = Api::namespaced(client, &ns);
            if let Ok(list) = api.list(&ListParams::default()).await {
                for r in list.items {
                    let patch = serde_json::json!({ "metadata": { "finalizers": null } });
                    let _ = api
                        .patch(
                            &r.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(&patch),
                        )
                        .await;
                }
            }
        });
    }
}

impl OperatorSandbox {
    /// Creates a pod (on `node` when given) and waits until it runs with an IP.
    pub async fn running_pod(
        &self,
        name: &str,
        node: Option<&str>,
    ) -> Result<k8s_openapi::api::core::v1::Pod> {
        use k8s_openapi::api::core::v1::Pod;
        let mut spec = serde_json::json!({ "containers": [{ "name": "app", "image": "registry.example/app:1" }] });
        if let Some(node) = node {
            spec["nodeName"] = node.into();
        }
        let pod: Pod = serde_json::from_value(
            serde_json::json!({ "metadata": { "name": name }, "spec": spec }),
        )?;
        let pods: Api<Pod> = self.ns.api();
        // A pod created again under the name of one just deleted was once
        // gone a moment later (a test waited 30 s for it, not there), with
        // nothing of the operator's deleting pods: made again, once, rather
        // than failing the scenario on its set-up.
        for attempt in 0..2 {
            pods.create(&PostParams::default(), &pod).await?;
            let running = wait_for(&pods, name, Duration::from_secs(30), |p: Option<&Pod>| {
                p.is_none()
                    || p.and_then(|p| p.status.as_ref()).is_some_and(|s| {
                        s.phase.as_deref() == Some("Running") && s.pod_ip.is_some()
                    })
            })
            .await;
            match running {
                Ok(_) => match pods.get_opt(name).await? {
                    Some(p) => return Ok(p),
                    None if attempt == 0 => {
                        eprintln!("pod {name} vanished after its creation; creating it again");
                    }
                    None => anyhow::bail!("pod {name} vanished after its creation, twice"),
                },
                Err(e) => return Err(e),
            }
        }
        anyhow::bail!("pod {name} never ran")
    }

    /// The emulator's private IP object with this OCID.
    pub fn private_ip(&self, id: &str) -> Option<Value> {
        self.emulator.state()["privateIps"]
            .as_array()?
            .iter()
            .find(|p| p["id"] == id)
            .cloned()
    }

    /// An OCI client of this sandbox's emulator (the operator's own, or a
    /// test's for changes made behind the operator's back).
    pub fn oci_client(&self) -> Result<HttpOciClient> {
        let config = oci_emulator::crate_dir()
            .join("testdata")
            .join("oci-config");
        Ok(HttpOciClient::new(
            OciCredentials::from_config_file(&config, "DEFAULT")?,
            &self.emulator.base_url(),
            Duration::from_secs(5),
        )?)
    }

    /// Count of calls the emulator answered for `operation` (any status).
    pub fn calls(&self, operation: &str) -> u64 {
        self.emulator.calls().total(operation)
    }
}

/// State of a ReservedIP in a shape tests can print.
pub fn describe(rip: &ReservedIP) -> String {
    format!("{:?}", rip.status)
}

/// Reads `status.state`.
pub fn state(rip: &ReservedIP) -> Option<State> {
    rip.status.as_ref().and_then(|s| s.state)
}

/// The repository's root: from the running test's `CARGO_MANIFEST_DIR` (set
/// by cargo at run time), since the compile-time path is stale when one
/// target dir serves several checkouts.
pub fn repo_root() -> std::path::PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| dir.join("../.."))
}

/// `kubectl apply -f <dir>` for a directory of the repository.
pub fn kubectl_apply(dir: &str) -> Result<()> {
    let root = repo_root();
    let out = std::process::Command::new("kubectl")
        .args(["apply", "-f"])
        .arg(root.join(dir))
        .output()
        .context("running kubectl (source .sandbox/env first)")?;
    if !out.status.success() {
        bail!(
            "kubectl apply -f {dir} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A client authenticated as the operator's ServiceAccount from `deploy/`
/// (applied first), with a fresh token: what the operator runs as in a cluster.
pub async fn operator_service_account_client() -> Result<Client> {
    kubectl_apply("config/crd/bases")?;
    kubectl_apply("deploy")?;
    let token = service_account_token("k8s-oci-operator", "k8s-oci-operator").await?;
    let mut config = kube::Config::infer().await?;
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.into()),
        ..Default::default()
    };
    Ok(Client::try_from(config)?)
}

/// Writes to `path` a kubeconfig for the current cluster that authenticates
/// as the operator's ServiceAccount from `deploy/` (applied first): what a
/// separate operator process runs as in a cluster.
pub async fn operator_service_account_kubeconfig(path: &std::path::Path) -> Result<()> {
    use kube::config::{AuthInfo, Kubeconfig, NamedAuthInfo, NamedContext};
    kubectl_apply("config/crd/bases")?;
    kubectl_apply("deploy")?;
    let token = service_account_token("k8s-oci-operator", "k8s-oci-operator").await?;
    let current = Kubeconfig::read().context("reading KUBECONFIG (source .sandbox/test/env)")?;
    let context = current
        .current_context
        .as_ref()
        .and_then(|name| current.contexts.iter().find(|c| &c.name == name))
        .and_then(|c| c.context.clone())
        .context("the kubeconfig has no current context")?;
    let cluster = current
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .cloned()
        .context("the current context's cluster is not in the kubeconfig")?;
    let operator = Kubeconfig {
        clusters: vec![cluster],
        auth_infos: vec![NamedAuthInfo {
            name: "operator".into(),
            auth_info: Some(AuthInfo {
                token: Some(token.into()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: "operator".into(),
            context: Some(kube::config::Context {
                user: Some("operator".into()),
                namespace: None,
                ..context
            }),
            other: Default::default(),
        }],
        current_context: Some("operator".into()),
        ..Default::default()
    };
    std::fs::write(path, serde_yaml::to_string(&operator)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes `dir/kubeconfig`: the test cluster's kubeconfig (`KUBECONFIG`) with
/// every user authenticating by `token` (e.g. a ServiceAccount's).
pub fn kubeconfig_with_token(dir: &std::path::Path, token: &str) -> Result<std::path::PathBuf> {
    let path = std::env::var("KUBECONFIG").context("KUBECONFIG (source the test env)")?;
    let mut config: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(path)?)?;
    let Some(users) = config["users"].as_sequence_mut() else {
        anyhow::bail!("the kubeconfig has no users");
    };
    for user in users {
        user["user"] = serde_yaml::to_value(serde_json::json!({ "token": token }))?;
    }
    let file = dir.join("kubeconfig");
    std::fs::write(&file, serde_yaml::to_string(&config)?)?;
    Ok(file)
}

/// A fresh token (one hour) of ServiceAccount `namespace/name`.
pub async fn service_account_token(namespace: &str, name: &str) -> Result<String> {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    let sas: Api<ServiceAccount> = Api::namespaced(client().await?, namespace);
    let request: TokenRequest = serde_json::from_value(serde_json::json!({
        "spec": { "audiences": [], "expirationSeconds": 3600 }
    }))?;
    Ok(sas
        .create_token_request(name, &PostParams::default(), &request)
        .await?
        .status
        .context("token request answered without a token")?
        .token)
}

static OPERATOR_BINARY: OnceCell<std::path::PathBuf> = OnceCell::const_new();

/// The `k8s-oci-operator` binary, built once per test process.
pub async fn operator_binary() -> Result<std::path::PathBuf> {
    OPERATOR_BINARY
        .get_or_try_init(|| binary("k8s-oci-operator", "k8s-oci-operator"))
        .await
        .cloned()
}

/// Binary `bin` as `cargo test` built it (it builds the binaries of every
/// package with integration tests, the emulator's among them); built with
/// [`binary`] only if missing, since a build of one package resolves the
/// workspace's features anew and rebuilds much of the dependency tree.
pub async fn built_binary(bin: &str) -> Result<std::path::PathBuf> {
    let built = target_debug_dir()?.join(bin);
    if built.is_file() {
        return Ok(built);
    }
    binary(bin, bin).await
}

fn target_debug_dir() -> Result<std::path::PathBuf> {
    // Tests run from <target>/debug/deps/<test binary>.
    let exe = std::env::current_exe()?;
    Ok(exe
        .parent()
        .and_then(|d| d.parent())
        .context("target directory")?
        .to_path_buf())
}

/// Binary `bin` of workspace package `package`, built (debug) if needed.
pub async fn binary(package: &str, bin: &str) -> Result<std::path::PathBuf> {
    let status = tokio::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", package, "--bin", bin])
        .status()
        .await
        .with_context(|| format!("building {bin}"))?;
    if !status.success() {
        bail!("building {bin} failed");
    }
    Ok(target_debug_dir()?.join(bin))
}

/// The operator as a separate process (for SIGKILL and failover tests),
/// watching the sandbox's namespace and talking to its emulator.
pub struct OperatorProcess {
    pub name: String,
    child: tokio::process::Child,
}

impl OperatorProcess {
    /// Starts `k8s-oci-operator run` as `name` (its POD_NAME, the Lease holder
    /// identity); with `leader_election`, the Lease lives in the sandbox namespace.
    pub async fn start(sb: &OperatorSandbox, name: &str, leader_election: bool) -> Result<Self> {
        Self::start_with_env(sb, name, leader_election, &[]).await
    }

    /// [`OperatorProcess::start`] with extra environment variables (e.g. a
    /// crash point, `k8s_oci_operator::crash_point::ENV`).
    pub async fn start_with_env(
        sb: &OperatorSandbox,
        name: &str,
        leader_election: bool,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let bin = operator_binary().await?;
        Self::start_binary(&bin, sb, name, leader_election, env)
    }

    /// [`OperatorProcess::start_with_env`] with a binary of the caller's
    /// (e.g. the one inside the built image).
    pub fn start_binary(
        bin: &std::path::Path,
        sb: &OperatorSandbox,
        name: &str,
        leader_election: bool,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        Self::spawn(bin, sb, name, leader_election, env, None)
    }

    /// [`OperatorProcess::start_with_env`] with the process's stdout and
    /// stderr written to `log` (to check what it logs).
    pub async fn start_logging_to(
        sb: &OperatorSandbox,
        name: &str,
        env: &[(&str, &str)],
        log: &std::path::Path,
    ) -> Result<Self> {
        let bin = operator_binary().await?;
        Self::spawn(&bin, sb, name, false, env, Some(log))
    }

    fn spawn(
        bin: &std::path::Path,
        sb: &OperatorSandbox,
        name: &str,
        leader_election: bool,
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Result<Self> {
        let config = oci_emulator::crate_dir()
            .join("testdata")
            .join("oci-config");
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("run")
            .env("POD_NAME", name)
            .env("OCI_COMPARTMENT_ID", COMPARTMENT)
            .env("CLUSTER_ID", &sb.cluster_id)
            .env("OCI_CONFIG_FILE", config)
            .env("OCI_ENDPOINT", sb.emulator.base_url())
            .env(
                "OCI_SUBNET_IDS",
                "ocid1.subnet.oc1.sandbox.pods,ocid1.subnet.oc1.sandbox.nodes",
            )
            .env("WATCH_NAMESPACE", sb.ns.name())
            .env("POLL_INTERVAL_MS", "200")
            .env("RESYNC_INTERVAL_SECONDS", "5")
            .env("HEALTH_ADDR", "127.0.0.1:0")
            .env(
                "RUST_LOG",
                std::env::var("OPERATOR_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        cmd.envs(env.iter().copied());
        if leader_election {
            cmd.env("LEADER_ELECTION_NAMESPACE", sb.ns.name())
                .env("LEASE_DURATION_SECONDS", "3");
        }
        if let Some(log) = log {
            let file = std::fs::File::create(log)
                .with_context(|| format!("creating {}", log.display()))?;
            cmd.stdout(file.try_clone()?).stderr(file);
        }
        // HEALTH_ADDR may be overridden by `env` (a probe test picks a port).
        let child = cmd.spawn().context("starting k8s-oci-operator")?;
        Ok(Self {
            name: name.to_string(),
            child,
        })
    }

    /// SIGKILL: no cleanup, no graceful shutdown, as in a node crash.
    pub async fn kill(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// SIGTERM, as the kubelet sends when the pod is deleted.
    fn terminate(&self) -> Result<()> {
        let pid = self.child.id().context("the process has exited already")?;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
        Ok(())
    }

    /// SIGTERM, then waits up to `grace` for a successful exit: how long
    /// it took from the signal (an error if it is still running or failed).
    pub async fn stop(&mut self, grace: Duration) -> Result<Duration> {
        self.terminate()?;
        let signalled = std::time::Instant::now();
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => bail!("{} still running {grace:?} after SIGTERM", self.name),
        };
        anyhow::ensure!(status.success(), "{} exited with {status}", self.name);
        Ok(signalled.elapsed())
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Who holds the operator's leader-election Lease in the sandbox's namespace.
pub async fn lease_holder(sb: &OperatorSandbox) -> Result<Option<String>> {
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = sb.ns.api();
    Ok(leases
        .get_opt("k8s-oci-operator")
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity))
}

/// Builds the example policies (`policies/build.sh`) and returns their directory.
pub fn built_policies() -> Result<std::path::PathBuf> {
    let script = repo_root().join("policies/build.sh");
    let out = std::process::Command::new(script)
        .output()
        .context("running policies/build.sh")?;
    if !out.status.success() {
        bail!(
            "policies/build.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(std::path::PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim(),
    ))
}

/// A ReservedIP manifest with the README's tags, assigned to `pod` if given.
pub fn rip_yaml(name: &str, pod: Option<&str>) -> String {
    let assignment = pod
        .map(|p| format!("  assignment:\n    podName: {p}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: {name}\nspec:\n  tags:\n    owner: My team\n{assignment}"
    )
}

/// Reproducible pseudo-random numbers below `n` (xorshift from `seed`):
/// the reliability scenarios' actions and stop points, the same every run.
pub fn xorshift(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    }
}

/// Whether a public IP (OCI JSON, from the emulator) is neither terminating nor terminated.
pub fn is_live(ip: &Value) -> bool {
    !matches!(
        ip["lifecycleState"].as_str(),
        Some("TERMINATED" | "TERMINATING")
    )
}

/// The status condition `type_` of a ReservedIP.
pub fn condition(
    rip: &ReservedIP,
    type_: &str,
) -> Result<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    let status = rip
        .status
        .as_ref()
        .context("the ReservedIP has no status")?;
    k8s_oci_operator::api::conditions::get(&status.conditions, type_)
        .cloned()
        .with_context(|| format!("no {type_} condition in {:?}", status.conditions))
}
