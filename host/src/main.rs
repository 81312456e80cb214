//! The `k8s-oci-operator` binary: `run` starts the controller, `crd` prints
//! the CustomResourceDefinition generated from the Rust types.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracing::{info, warn};

use k8s_oci_operator::api::crd::crd_yaml;
use k8s_oci_operator::config::RunConfig;
use k8s_oci_operator::controller::{self, Context, Settings};
use k8s_oci_operator::health::{self, Health, Role};
use k8s_oci_operator::leader::Lease;
use k8s_oci_operator::metrics::Metrics;
use k8s_oci_operator::oci::Throttled;
use k8s_oci_operator::policy::PolicyEngine;
use k8s_oci_operator::policy::configmap::{POLICY_LABEL, watch_configmaps};
use k8s_oci_operator::policy::directory::watch_directory;
use k8s_oci_operator::shutdown::Stop;

#[derive(Parser)]
#[command(
    version = k8s_oci_operator::build_info::LONG_VERSION,
    about = "Manage OCI reserved public IPs as Kubernetes ReservedIP resources"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller.
    Run(Box<RunConfig>),
    /// Check the configuration, OCI credentials and IAM, and the cluster
    /// (CRD, RBAC); prints a checklist. Exit 0: all good, 1: a check
    /// failed, 2: unusable configuration.
    Check(Box<k8s_oci_operator::check::CheckArgs>),
    /// Print the ReservedIP CustomResourceDefinition as YAML.
    Crd,
    /// Work with WebAssembly policies offline.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Evaluate policies on one input with the operator's engine, limits and
    /// trust settings; prints the decisions as JSON, exits 1 if a policy is
    /// refused or the input is invalid.
    Eval {
        #[command(flatten)]
        from: PolicySources,
        /// JSON or YAML: {"reservedIP": <manifest>, "namespace": {"name", "labels"},
        /// "pod": <Pod manifest> or "target": {...}, "allowedPools": [...]}.
        #[arg(long)]
        input: std::path::PathBuf,
        #[command(flatten)]
        policy: k8s_oci_operator::config::PolicyArgs,
    },
    /// Run a file of test cases (input → expected decisions) against
    /// policies; prints PASS/FAIL per case, exits 1 if any fails.
    Test {
        /// The test file (YAML): {"policies": [paths], "cases": [{"name", "input", "expect"}]}.
        file: std::path::PathBuf,
        #[command(flatten)]
        from: PolicySources,
        #[command(flatten)]
        policy: k8s_oci_operator::config::PolicyArgs,
    },
}

#[derive(clap::Args)]
struct PolicySources {
    /// ConfigMap manifests (YAML/JSON, several per file or a List), directories
    /// of them, or a directory in the --policy-dir layout. Only ConfigMaps
    /// labelled `oci.k8s.logmein.com/policy` count, as in the cluster.
    #[arg(long = "policies", num_args = 1..)]
    paths: Vec<std::path::PathBuf>,
    /// A single module (`.wasm`, or `.wasm.gz`) instead of ConfigMaps.
    #[arg(long)]
    module: Option<std::path::PathBuf>,
    /// The --module's settings (JSON or YAML), as in its ConfigMap.
    #[arg(long, requires = "module")]
    settings: Option<std::path::PathBuf>,
}

impl PolicySources {
    fn paths(self) -> k8s_oci_operator::policy_cli::PolicyPaths {
        k8s_oci_operator::policy_cli::PolicyPaths {
            paths: self.paths,
            module: self.module,
            settings: self.settings,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd => print!("{}", crd_yaml()?),
        Command::Check(args) => std::process::exit(k8s_oci_operator::check::main(*args).await),
        Command::Run(config) => {
            let result = run(*config).await;
            // Not waiting for whatever tasks remain (watches, probes): the
            // work is done or abandoned on purpose, and the pod's grace
            // period is counting.
            if let Err(e) = &result {
                eprintln!("Error: {e:?}");
            }
            std::process::exit(i32::from(result.is_err()));
        }
        Command::Policy(PolicyCommand::Eval {
            from,
            input,
            policy,
        }) => match k8s_oci_operator::policy_cli::eval(&policy, &from.paths(), &input).await {
            Ok(out) => println!("{}", serde_json::to_string_pretty(&out)?),
            Err(e) => {
                eprintln!("k8s-oci-operator policy eval: {e}");
                std::process::exit(1);
            }
        },
        Command::Policy(PolicyCommand::Test { file, from, policy }) => {
            match k8s_oci_operator::policy_cli::test(&policy, &from.paths(), &file).await {
                Ok(report) => {
                    for line in &report.lines {
                        println!("{line}");
                    }
                    if report.failed > 0 {
                        std::process::exit(1);
                    }
                }
                Err(e) => {
                    eprintln!("k8s-oci-operator policy test: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
    Ok(())
}

async fn run(config: RunConfig) -> anyhow::Result<()> {
    init_logging(config.log_json);
    // Listening from the start: a SIGTERM while connecting stops the process too.
    let stop = Stop::on_signals().context("listening for SIGTERM")?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes")?;
    let metrics = Arc::new(Metrics::default());
    // Probes serve from here on: /readyz says what the start waits for.
    let health = Arc::new(Health::new(
        client.clone(),
        Duration::from_secs(config.stuck_pass_seconds),
    ));
    let listener = tokio::net::TcpListener::bind(&config.health_addr)
        .await
        .with_context(|| format!("binding the health endpoint {}", config.health_addr))?;
    let registry = metrics.registry(health.clone());
    tokio::spawn(health::serve(listener, health.clone(), Arc::new(registry)));
    let Some(oci) = oci_client_when_ready(&config, &health, &stop).await? else {
        info!("stopped before the OCI credentials were ready");
        return Ok(());
    };
    info!(endpoint = %oci.base_url(), compartment = %config.compartment_id, cluster = %config.cluster_id, "starting");
    let settings = Settings {
        compartment_id: config.compartment_id.clone(),
        cluster_id: config.cluster_id.clone(),
        poll_interval: Duration::from_millis(config.poll_interval_ms),
        resync_interval: Duration::from_secs(config.resync_interval_seconds),
        namespace: config.namespace.clone(),
        orphan_interval: Duration::from_secs(config.orphan_sweep_interval_seconds),
        orphan_grace: Duration::from_secs(config.orphan_grace_seconds),
        missing_grace: Duration::from_secs(config.missing_grace_seconds),
        operator_namespace: config.operator_namespace.clone(),
        max_reserved_ips_per_namespace: Some(config.max_reserved_ips_per_namespace)
            .filter(|n| *n > 0),
        stuck_after: Duration::from_secs(config.stuck_pass_seconds),
        workload_ips: config.workload_ips,
    };
    let oci = Throttled::new(oci, config.oci_limits(), metrics.oci.clone());
    let policy = PolicyEngine::with_options(config.policy.engine_options(metrics.policy.clone())?)
        .context("starting the policy engine")?;
    if let Some(ns) = &config.policy_namespace {
        info!(namespace = %ns, label = POLICY_LABEL, "watching policy ConfigMaps");
        tokio::spawn(watch_configmaps(
            policy.clone(),
            client.clone(),
            ns.clone(),
            POLICY_LABEL.to_string(),
        ));
    }
    // Kept alive for the process's lifetime: dropping it stops the watch.
    let _policy_dir = match &config.policy_dir {
        Some(dir) => Some(
            watch_directory(policy.clone(), dir.clone())
                .await
                .with_context(|| format!("watching policy directory {}", dir.display()))?,
        ),
        None => None,
    };
    let ctx = Context::with_health(
        client,
        oci,
        settings,
        config.subnet_ids.clone(),
        policy,
        metrics.clone(),
        health,
    );
    {
        let (health, stop) = (ctx.health.clone(), stop.clone());
        tokio::spawn(async move {
            stop.asked().await;
            health.set_role(Role::Stopping);
        });
    }
    let lease = match &config.leader_election_namespace {
        Some(ns) => Some(Lease::join(ctx.client.clone(), ns, config.lease_duration_seconds).await?),
        None => None,
    };
    let grace = Duration::from_secs(config.shutdown_timeout_seconds);
    let result = tokio::select! {
        result = work(ctx, lease.as_ref(), stop.clone()) => result,
        () = stop.past(grace) => {
            warn!(seconds = grace.as_secs(), "passes still under way at the shutdown deadline: abandoned (each resumes safely on the next start)");
            Ok(())
        }
    };
    if let Some(lease) = lease {
        lease.release(LEASE_RELEASE_TIMEOUT).await;
    }
    info!("stopped");
    result
}

/// The OCI client, once its credentials work. Credentials that cannot be
/// obtained yet (the metadata service or the proxymux not answering, a
/// ServiceAccount token not mounted yet) are retried with backoff while
/// `/readyz` says why: a crash loop would say less and retry slower. Bad
/// configuration (no such file, no region) is retried too, since the fix may
/// be a mounted Secret arriving. `None`: a stop was asked for meanwhile.
async fn oci_client_when_ready(
    config: &RunConfig,
    health: &Health,
    stop: &Stop,
) -> anyhow::Result<Option<k8s_oci_operator::oci::HttpOciClient>> {
    let mut delay = Duration::from_secs(1);
    loop {
        let attempt = async {
            let (credentials, source) = config.oci_credentials().await?;
            credentials.warm_up().await?;
            info!(credentials = credentials.description(), from = %source, "OCI credentials ready");
            config.oci_client_with(credentials)
        };
        match attempt.await {
            Ok(client) => {
                health.set_waiting_for(None);
                return Ok(Some(client));
            }
            Err(e) => {
                let reason = format!("OCI credentials: {e}");
                warn!(error = %e, retry_in_s = delay.as_secs(), "OCI credentials not usable yet");
                health.set_waiting_for(Some(reason));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.asked() => return Ok(None),
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// How long the Lease's release may wait for the API server at shutdown.
const LEASE_RELEASE_TIMEOUT: Duration = Duration::from_secs(3);

/// Reconciles until a stop is asked for; with leader election, only once
/// this replica holds the Lease, and only while it does. Losing it ends the
/// process: a replica that may have been superseded must not make another
/// OCI call, and Kubernetes restarts it as a standby.
async fn work(ctx: Arc<Context>, lease: Option<&Lease>, stop: Stop) -> anyhow::Result<()> {
    let stopping = {
        let stop = stop.clone();
        async move { stop.asked().await }
    };
    let Some(lease) = lease else {
        ctx.health.set_role(Role::Reconciling);
        controller::run(ctx, stopping).await;
        return Ok(());
    };
    ctx.health.set_role(Role::Standby);
    tokio::select! {
        led = lease.lead() => led?,
        () = stop.asked() => return Ok(()),
    }
    ctx.health.set_role(Role::Reconciling);
    tokio::select! {
        () = controller::run(ctx, stopping) => Ok(()),
        () = lease.lost() => {
            anyhow::bail!("lost the leader Lease; exiting so no superseded replica keeps working")
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
