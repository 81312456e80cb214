//! Scenario 8: the targets of issue 15 that move or come back.
//!
//! - Failover of a floating IP (`assignment.podSelector`), after the cycle: the pod holding it
//!   stops being ready (its Ready condition set False, as a kubelet does
//!   when probes fail) until the ReservedIP reports `assigned` on the other
//!   pod; [`FAILOVERS`] times, back and forth. Floor: resolving the new pod's
//!   private IP, one UpdatePublicIp, OCI's ASSIGNING delay and the read that
//!   sees it done (the apply floor: OCI's share, whatever the operator does).
//! - First, a StatefulSet scale cycle 3 → 1 → 3 with one IP per ordinal: the OCI
//!   calls of each step (no CreatePublicIp: the addresses come back), and
//!   the time from the scale-up to every ordinal `assigned` again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::Bench;
use crate::calls::Calls;
use crate::error::{Error, Result};
use crate::floor::Floor;
use crate::report::Row;
use crate::workload::{self, NAMESPACE, PodSpec};

/// Failovers measured, alternating between the two pods.
pub const FAILOVERS: usize = 6;
const SCENARIO_FAILOVER: &str = "8 failover (podSelector)";
const SCENARIO_CYCLE: &str = "8 StatefulSet 3 → 1 → 3";
/// The labels and annotations of `k8s_oci_operator::workloads` (the
/// benchmark does not link the operator it measures).
const WANTS_IP: &str = "oci.k8s.logmein.com/reserved-ip";
const READY_GATE: &str = "oci.k8s.logmein.com/public-ip-assigned";
const MAX: Duration = Duration::from_secs(120);

pub async fn run(b: &mut Bench) -> Result<()> {
    // The cycle first: its assignments teach the operator OCI's ASSIGNING
    // time again after the sweep's last delay (5 s), so the failovers are
    // timed in the steady state, as in a cluster that has been running.
    statefulset_cycle(b).await?;
    failover(b).await
}

/// What a ReservedIP's status says: state and pod.
fn seen(obj: &DynamicObject) -> (Option<String>, Option<String>) {
    let status = &obj.data["status"];
    let text = |v: &Value| v.as_str().map(str::to_string);
    (text(&status["state"]), text(&status["podName"]))
}

/// Polls the ReservedIP until `done` holds for its (state, pod); returns when.
async fn wait_for(
    b: &Bench,
    name: &str,
    done: impl Fn(Option<&str>, Option<&str>) -> bool,
) -> Result<Instant> {
    let api = workload::reservedips(&b.client);
    let start = Instant::now();
    loop {
        if let Some(obj) = api.get_opt(name).await? {
            let (state, pod) = seen(&obj);
            if done(state.as_deref(), pod.as_deref()) {
                return Ok(Instant::now());
            }
        }
        if start.elapsed() > MAX {
            return Err(Error::Timeout(MAX, format!("ReservedIP {name}")));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn set_ready(b: &Bench, pod: &str, ready: bool) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), NAMESPACE);
    let status = if ready { "True" } else { "False" };
    pods.patch_status(
        pod,
        &PatchParams::default(),
        &Patch::Strategic(
            json!({ "status": { "conditions": [{ "type": "Ready", "status": status }] } }),
        ),
    )
    .await?;
    Ok(())
}

async fn settle(b: &Bench) -> Result<Calls> {
    Ok(b.emulator
        .settle(Duration::from_secs(2), Duration::from_secs(120))
        .await?
        .0)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

async fn failover(b: &mut Bench) -> Result<()> {
    let node = b.topology.target_node(0);
    let pair = ["pair-a", "pair-b"];
    let pods = pair
        .iter()
        .map(|n| PodSpec {
            name: n.to_string(),
            role: "pair".into(),
            node: node.clone(),
        })
        .collect();
    b.create_and_wait("pair", pods, 2).await?;
    let mut floating =
        DynamicObject::new("floating", &workload::reservedip_resource()).within(NAMESPACE);
    floating.data = json!({ "spec": {
        "tags": { "bench": "true" },
        "assignment": { "podSelector": { "matchLabels": { "role": "pair" } } },
    }});
    workload::reservedips(&b.client)
        .create(&PostParams::default(), &floating)
        .await?;
    wait_for(b, "floating", |state, pod| {
        state == Some("assigned") && pod.is_some()
    })
    .await?;
    let (mut times, mut calls) = (Vec::new(), Vec::new());
    for _ in 0..FAILOVERS {
        let api = workload::reservedips(&b.client);
        let (_, on) = seen(&api.get("floating").await?);
        let from = on.ok_or_else(|| Error::Process("floating IP on no pod".into()))?;
        let to = if from == pair[0] { pair[1] } else { pair[0] };
        let before = settle(b).await?;
        let start = Instant::now();
        set_ready(b, &from, false).await?;
        let moved = wait_for(b, "floating", |state, pod| {
            state == Some("assigned") && pod == Some(to)
        })
        .await?;
        times.push(moved.saturating_duration_since(start).as_secs_f64());
        calls.push(settle(b).await?.since(&before));
        // The pod that lost it is ready again: the standby of the next one.
        set_ready(b, &from, true).await?;
    }
    let settings = b.s.clone();
    let f = Floor::new(&settings);
    let max = times.iter().copied().fold(0.0, f64::max);
    let per_move: Vec<f64> = calls.iter().map(|c| c.total() as f64).collect();
    let updates: u64 = calls.iter().map(|c| c.count("UpdatePublicIp")).sum();
    b.rows.push(
        Row::new(SCENARIO_FAILOVER, "pod not ready → assigned to the next", "s", mean(&times))
            .floor(f.apply_seconds())
            .note(format!(
                "mean of {FAILOVERS}, max {max:.2} s, each: {}; floor: resolve + UpdatePublicIp + ASSIGNING {} ms + read",
                times.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>().join(", "),
                settings.assigning_ms
            )),
    );
    b.rows.push(
        Row::new(
            SCENARIO_FAILOVER,
            "OCI calls per failover",
            "",
            mean(&per_move),
        )
        .floor(f.apply_calls() as f64)
        .target("one UpdatePublicIp per move", updates == FAILOVERS as u64)
        .note(calls.last().map(Calls::summary).unwrap_or_default()),
    );
    b.detail("failover", json!({ "seconds": times, "calls": calls }));
    workload::delete_reservedip(&b.client, "floating").await?;
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), NAMESPACE);
    for pod in pair {
        pods.delete(pod, &DeleteParams::default()).await?;
    }
    Ok(())
}

/// The StatefulSet's ReservedIPs by name: (state, pod).
async fn ordinals(b: &Bench) -> Result<BTreeMap<String, Option<String>>> {
    let list = workload::reservedips(&b.client)
        .list(&Default::default())
        .await?;
    Ok(list
        .items
        .iter()
        .filter_map(|o| {
            let name = o.metadata.name.clone()?;
            name.starts_with("bench-db-").then(|| (name, seen(o).0))
        })
        .collect())
}

/// Waits until the StatefulSet's ReservedIPs are exactly `want` (name → state).
async fn wait_ordinals(b: &Bench, want: &[(&str, &str)]) -> Result<Instant> {
    let want: BTreeMap<String, Option<String>> = want
        .iter()
        .map(|(n, s)| (n.to_string(), Some(s.to_string())))
        .collect();
    let start = Instant::now();
    loop {
        if ordinals(b).await? == want {
            return Ok(Instant::now());
        }
        if start.elapsed() > MAX {
            return Err(Error::Timeout(MAX, format!("ReservedIPs {want:?}")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn scale(api: &Api<StatefulSet>, replicas: i32) -> Result<()> {
    api.patch(
        "bench-db",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "replicas": replicas } })),
    )
    .await?;
    Ok(())
}

async fn statefulset_cycle(b: &mut Bench) -> Result<()> {
    let node = b.topology.target_node(1);
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": { "name": "bench-db", "labels": { WANTS_IP: "true" } },
        "spec": {
            "replicas": 3,
            "serviceName": "bench-db",
            // Pods start together (the benchmark measures the IPs, not the
            // StatefulSet controller's ordering).
            "podManagementPolicy": "Parallel",
            "selector": { "matchLabels": { "role": "bench-db" } },
            "template": {
                "metadata": { "labels": { "app": "bench", "role": "bench-db", WANTS_IP: "true" } },
                "spec": {
                    "nodeName": node,
                    "automountServiceAccountToken": false,
                    "terminationGracePeriodSeconds": 0,
                    "readinessGates": [{ "conditionType": READY_GATE }],
                    "containers": [{ "name": "app", "image": "registry.invalid/fake:1" }],
                },
            },
        },
    }))?;
    let api: Api<StatefulSet> = Api::namespaced(b.client.clone(), NAMESPACE);
    let all_assigned = [
        ("bench-db-0", "assigned"),
        ("bench-db-1", "assigned"),
        ("bench-db-2", "assigned"),
    ];
    let before = settle(b).await?;
    let start = Instant::now();
    api.create(&PostParams::default(), &sts).await?;
    let created = wait_ordinals(b, &all_assigned).await?;
    let create_time = created.saturating_duration_since(start).as_secs_f64();
    let after_create = settle(b).await?;
    scale(&api, 1).await?;
    wait_ordinals(
        b,
        &[
            ("bench-db-0", "assigned"),
            ("bench-db-1", "allocated"),
            ("bench-db-2", "allocated"),
        ],
    )
    .await?;
    let after_down = settle(b).await?;
    let start = Instant::now();
    scale(&api, 3).await?;
    let back = wait_ordinals(b, &all_assigned).await?;
    let up_time = back.saturating_duration_since(start).as_secs_f64();
    let after_up = settle(b).await?;
    let (create, down, up) = (
        after_create.since(&before),
        after_down.since(&after_create),
        after_up.since(&after_down),
    );
    let settings = b.s.clone();
    let f = Floor::new(&settings);
    // Per ordinal: unassign (UpdatePublicIp, the read after UNASSIGNING);
    // assign (ListPrivateIps, UpdatePublicIp, the read after ASSIGNING).
    let created_in_cycle = down.count("CreatePublicIp") + up.count("CreatePublicIp");
    b.rows.push(
        Row::new(SCENARIO_CYCLE, "3 → 1: OCI calls", "", down.total() as f64)
            .floor(4.0)
            .note(down.summary()),
    );
    b.rows.push(
        Row::new(SCENARIO_CYCLE, "1 → 3: OCI calls", "", up.total() as f64)
            .floor(6.0)
            .note(up.summary()),
    );
    b.rows.push(
        Row::new(
            SCENARIO_CYCLE,
            "public IPs created in the cycle",
            "",
            created_in_cycle as f64,
        )
        .target("0 (the addresses come back)", created_in_cycle == 0),
    );
    b.rows.push(
        Row::new(
            SCENARIO_CYCLE,
            "scale 1 → 3 → every ordinal assigned",
            "s",
            up_time,
        )
        .floor(f.apply_seconds())
        .note("from the scale: the StatefulSet controller and kwok start the pods first"),
    );
    b.rows.push(
        Row::new(
            SCENARIO_CYCLE,
            "create (3 ordinals) → assigned",
            "s",
            create_time,
        )
        .note(format!(
            "{} OCI calls: {}",
            create.total(),
            create.summary()
        )),
    );
    b.detail(
        "statefulset_cycle",
        json!({ "create": create, "down": down, "up": up, "create_seconds": create_time, "up_seconds": up_time }),
    );
    api.delete("bench-db", &DeleteParams::default()).await?;
    wait_ordinals(b, &[]).await?;
    Ok(())
}
