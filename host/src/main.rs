//! The `k8s-oci-operator` binary: `run` starts the controller, `crd` prints
//! the CustomResourceDefinition generated from the Rust types.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio::io::AsyncWriteExt;
use tracing::info;

use k8s_oci_operator::api::crd::crd_yaml;
use k8s_oci_operator::config::RunConfig;
use k8s_oci_operator::controller::{self, Context, Settings};
use k8s_oci_operator::oci::{OciMetrics, Throttled};
use k8s_oci_operator::policy::configmap::{POLICY_LABEL, watch_configmaps};
use k8s_oci_operator::policy::directory::watch_directory;
use k8s_oci_operator::policy::{Limits as PolicyLimits, PolicyEngine};
use prometheus_client::registry::Registry;

#[derive(Parser)]
#[command(
    version,
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
    /// Print the ReservedIP CustomResourceDefinition as YAML.
    Crd,
    /// Work with WebAssembly policies offline.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Evaluate a policy module on an input, with the operator's engine and
    /// limits; prints the decisions as JSON, exits 1 if the module is refused
    /// or fails.
    Eval {
        /// The module (`.wasm`, or `.wasm.gz`).
        #[arg(long)]
        module: std::path::PathBuf,
        /// JSON: {"reservedIP": <manifest>, "namespaceLabels": {}, "target": {...}, "allowedPools": [...]}.
        #[arg(long)]
        input: std::path::PathBuf,
        /// The policy's settings (JSON or YAML), as in its ConfigMap.
        #[arg(long)]
        settings: Option<std::path::PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd => print!("{}", crd_yaml()?),
        Command::Run(config) => run(*config).await?,
        Command::Policy(PolicyCommand::Eval {
            module,
            input,
            settings,
        }) => {
            match k8s_oci_operator::policy_cli::eval(&module, &input, settings.as_deref()).await {
                Ok(out) => println!("{}", serde_json::to_string_pretty(&out)?),
                Err(e) => {
                    eprintln!("k8s-oci-operator policy eval: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
    Ok(())
}

async fn run(config: RunConfig) -> anyhow::Result<()> {
    init_logging(config.log_json);
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes")?;
    let oci = config
        .oci_client()
        .await
        .context("setting up the OCI client")?;
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
    };
    let metrics = OciMetrics::default();
    let mut registry = Registry::with_prefix("k8s_oci_operator");
    metrics.register(&mut registry);
    let oci = Throttled::new(oci, config.oci_limits(), metrics);
    let policy =
        PolicyEngine::new(PolicyLimits::default()).context("starting the policy engine")?;
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
    let ctx = Context::new(client, oci, settings, config.subnet_ids.clone(), policy);
    let health = tokio::net::TcpListener::bind(&config.health_addr)
        .await
        .with_context(|| format!("binding the health endpoint {}", config.health_addr))?;
    tokio::spawn(serve_health(health, Arc::new(registry)));
    match &config.leader_election_namespace {
        None => controller::run(ctx).await,
        Some(ns) => run_as_leader(ctx, ns, config.lease_duration_seconds).await?,
    }
    info!("stopped");
    Ok(())
}

/// Reconciles only while holding the Lease `k8s-oci-operator` in `namespace`.
/// Losing it ends the process: a replica that may have been superseded must
/// not make another OCI call, and Kubernetes restarts it as a standby.
async fn run_as_leader(ctx: Arc<Context>, namespace: &str, duration: u64) -> anyhow::Result<()> {
    let identity = std::env::var("POD_NAME")
        .unwrap_or_else(|_| format!("k8s-oci-operator-{}", uuid::Uuid::new_v4().simple()));
    let manager =
        kube_lease_manager::LeaseManagerBuilder::new(ctx.client.clone(), "k8s-oci-operator")
            .with_namespace(namespace)
            .with_identity(&identity)
            .with_duration(duration)
            .with_grace((duration / 3).max(1))
            .build()
            .await
            .context("setting up leader election")?;
    let (mut leading, _task) = manager.watch().await;
    info!(%identity, "waiting to become the leader");
    while !*leading.borrow_and_update() {
        leading.changed().await.context("leader election stopped")?;
    }
    info!(%identity, "became the leader");
    tokio::select! {
        _ = controller::run(ctx) => Ok(()),
        _ = async { while *leading.borrow_and_update() { if leading.changed().await.is_err() { break; } } } => {
            anyhow::bail!("lost the leader Lease; exiting so no superseded replica keeps working")
        }
    }
}

/// `/metrics` in the Prometheus text format; any other path answers 200 "ok"
/// for the liveness and readiness probes.
// A few lines of tokio instead of an HTTP framework: two fixed answers, read-only.
async fn serve_health(listener: tokio::net::TcpListener, registry: Arc<Registry>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let registry = registry.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
                .await
                .unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let (content_type, body) = if request.starts_with("GET /metrics") {
                let mut text = String::new();
                let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
                (
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    text,
                )
            } else {
                ("text/plain", "ok".to_string())
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        });
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
