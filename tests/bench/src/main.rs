//! `k8s-oci-operator-bench`: the performance benchmark of issue 7.
//!
//! Modules, one job each:
//! - [`settings`]: the command line (paths, emulator settings, sizes).
//! - [`topology`]: the emulator's seed and the matching fake nodes.
//! - [`emulator`], [`operator`]: the two processes and what is read from them.
//! - [`procstat`]: memory and CPU from /proc.
//! - [`calls`]: OCI call counts from the emulator.
//! - [`workload`], [`tracker`]: objects put into the cluster, and watching them.
//! - [`floor`]: the minimum each scenario's figures can reach.
//! - [`scenarios`]: the scenarios; [`report`]: table, JSON, docs.

mod calls;
mod emulator;
mod error;
mod floor;
mod operator;
mod procstat;
mod report;
mod scenarios;
mod settings;
mod topology;
mod tracker;
mod workload;

use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use crate::emulator::Emulator;
use crate::error::{Error, Result, io};
use crate::operator::Operator;
use crate::report::{Machine, Report};
use crate::scenarios::Bench;
use crate::settings::Settings;
use crate::topology::Topology;
use crate::tracker::Tracker;

#[tokio::main]
async fn main() -> ExitCode {
    let s = Settings::parse();
    match run(s).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("[bench] error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn log(msg: &str) {
    eprintln!("[bench] {msg}");
}

async fn client(path: &std::path::Path) -> Result<Client> {
    let bad = |message: String| Error::Kubeconfig {
        path: path.display().to_string(),
        message,
    };
    let kc = Kubeconfig::read_from(path).map_err(|e| bad(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| bad(e.to_string()))?;
    Client::try_from(config).map_err(Error::from)
}

/// Runs every scenario; `Ok(false)` when one did not finish (the report is
/// written anyway, with what was measured).
async fn run(s: Settings) -> Result<bool> {
    s.check()?;
    let load_start = report::load_average();
    let started = Instant::now();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    std::fs::create_dir_all(&s.dir).map_err(io(format!("creating {}", s.dir.display())))?;
    // The single scenario's two pods live on node 0 beside the others.
    let topology = Topology::new(s.idle_ips, s.pods - s.idle_ips, &s)?;
    let seed = s.dir.join("seed.yaml");
    std::fs::write(&seed, serde_yaml::to_string(&topology.seed(&s))?)
        .map_err(io("writing seed.yaml"))?;

    let client = client(&s.kubeconfig).await?;
    log(&format!("creating {} fake nodes", topology.nodes));
    workload::create_nodes(&client, topology.node_objects()?).await?;
    workload::create_namespace(&client).await?;

    log("starting the OCI emulator");
    let emulator = Emulator::start(&s.emulator_bin, &seed, &s.dir).await?;
    log(&format!(
        "starting the operator (emulator at {})",
        emulator.url
    ));
    let operator = match Operator::start(&s, &emulator.url, true).await {
        Ok(op) => op,
        Err(e) => {
            emulator.stop(&s.dir).await;
            return Err(e);
        }
    };
    let mut b = Bench {
        tracker: Tracker::start(&client),
        ticks: procstat::ticks_per_second(),
        s: s.clone(),
        topology,
        client,
        emulator,
        operator: Some(operator),
        rows: Vec::new(),
        details: serde_json::Map::new(),
        timeline: Vec::new(),
    };
    b.detail("emulator_pid", json!(b.emulator.pid()));

    let mut errors = Vec::new();
    if let Err(e) = scenarios_in_order(&mut b).await {
        log(&format!("stopped early: {e}"));
        errors.push(e.to_string());
    }
    log("6 policy evaluation");
    scenarios::policy::run(&mut b).await;

    if let Some(op) = b.operator.take() {
        op.stop(&s).await?;
    }
    let Bench {
        emulator,
        rows,
        mut details,
        timeline,
        ..
    } = b;
    details.insert("operator_timeline".into(), json!(timeline));
    emulator.stop(&s.dir).await;

    let report = Report {
        machine: Machine::this(),
        load_start,
        load_end: report::load_average(),
        started_unix,
        duration_seconds: started.elapsed().as_secs_f64(),
        settings: settings_summary(&s),
        rows,
        details,
        errors,
    };
    println!("\n{}", report.markdown());
    let path = report.write_json(&s.dir)?;
    println!("JSON: {}", path.display());
    // A run that stopped early does not replace the table of a complete one.
    if let Some(docs) = &s.docs
        && report.errors.is_empty()
        && report.update_docs(docs)?
    {
        println!("updated the results table in {}", docs.display());
    }
    Ok(report.errors.is_empty())
}

async fn scenarios_in_order(b: &mut Bench) -> Result<()> {
    // Let the operator's start-up settle before the first reading.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    b.mark("start (nothing in the cluster)");
    log("1 single ReservedIP");
    scenarios::single::run(b).await?;
    b.mark("1 single");
    let (burst, ips) = (b.s.burst, b.s.idle_ips);
    let smaller = &b.s.bursts;
    log(&format!(
        "2 bursts of {smaller:?}, then {burst} (then fill to {ips})"
    ));
    scenarios::burst::run(b).await?;
    b.mark("2 fill");
    log(&format!("5 memory: {} pods", b.s.pods));
    scenarios::memory::run(b).await?;
    b.mark("5 pods");
    log(&format!("3 idle for {} s", b.s.idle_seconds()));
    scenarios::idle::run(b).await?;
    b.mark("3 idle");
    log("4 restart");
    scenarios::restart::run(b).await?;
    b.mark("4 restart (new process)");
    log("7 sweep of OCI delays");
    scenarios::sweep::run(b).await?;
    b.mark("7 sweep");
    log("8 workloads: failover, StatefulSet scale cycle");
    scenarios::workloads::run(b).await?;
    b.mark("8 workloads");
    Ok(())
}

/// The measured sources: `git describe` of the working directory (run.sh
/// runs from the repository root), `-dirty` when it has uncommitted changes.
fn revision() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".into(), |s| s.trim().to_string())
}

fn settings_summary(s: &Settings) -> serde_json::Value {
    json!({
        "revision": revision(),
        "read_latency_ms": s.read_latency_ms,
        "write_latency_ms": s.write_latency_ms,
        "read_rate": s.read_rate,
        "write_rate": s.write_rate,
        "assigning_ms": s.assigning_ms,
        "provisioning_ms": s.provisioning_ms,
        "terminating_ms": s.terminating_ms,
        "operator_limits": s.operator_limits,
        "resync_seconds": s.resync_seconds,
        "poll_ms": s.poll_ms,
        "operator_env": s.operator_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "burst": s.burst,
        "bursts": s.bursts,
        "idle_ips": s.idle_ips,
        "idle_seconds": s.idle_seconds(),
        "pods": s.pods,
    })
}
