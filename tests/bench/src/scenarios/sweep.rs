//! Scenario 7: how soon the operator sees OCI finish, whatever OCI's delay.
//! For each ASSIGNING delay of [`DELAYS_MS`], [`PER_DELAY`] ReservedIPs are
//! applied one after another to pods on a known node (apply → `assigned`);
//! then the same for PROVISIONING with ReservedIPs without an assignment
//! (apply → `allocated`). The delay is changed in the running emulator.
//!
//! The operator learns OCI's delay as it goes, so the first ReservedIP after
//! a change of delay is reported on its own; the target applies to the mean
//! of the others (the steady state). Looks per transition: GetPublicIp calls
//! per ReservedIP (the first read after the create included).

use std::time::{Duration, Instant};

use kube::api::PostParams;
use serde_json::{Value, json};

use super::Bench;
use crate::error::{Error, Result};
use crate::floor::Floor;
use crate::report::Row;
use crate::workload::{self, PodSpec};

/// The delays of issue 19, in milliseconds.
pub const DELAYS_MS: [u64; 5] = [0, 500, 1000, 2000, 5000];
/// ReservedIPs applied per delay, one after another.
pub const PER_DELAY: usize = 5;

#[derive(Clone, Copy)]
enum Kind {
    Assigning,
    Provisioning,
}

impl Kind {
    fn field(self) -> &'static str {
        match self {
            Kind::Assigning => "assigningMs",
            Kind::Provisioning => "provisioningMs",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Assigning => "ASSIGNING",
            Kind::Provisioning => "PROVISIONING",
        }
    }

    fn figure(self) -> &'static str {
        match self {
            Kind::Assigning => "apply → assigned",
            Kind::Provisioning => "apply → allocated",
        }
    }
}

pub async fn run(b: &mut Bench) -> Result<()> {
    let original = b.emulator.timing().await?;
    let swept = sweep(b, &original).await;
    // The other scenarios' floors assume the configured timing.
    b.emulator.set_timing(&original).await?;
    swept
}

async fn sweep(b: &mut Bench, original: &Value) -> Result<()> {
    let node = b.topology.target_node(0);
    let pods = DELAYS_MS
        .iter()
        .flat_map(|d| (0..PER_DELAY).map(move |i| pod(*d, i)))
        .map(|name| PodSpec {
            name,
            role: "sweep".into(),
            node: node.clone(),
        })
        .collect();
    b.create_and_wait("sweep", pods, DELAYS_MS.len() * PER_DELAY)
        .await?;
    let mut summary = Vec::new();
    for kind in [Kind::Assigning, Kind::Provisioning] {
        for delay in DELAYS_MS {
            let mut timing = original.clone();
            timing[kind.field()] = json!(delay);
            b.emulator.set_timing(&timing).await?;
            let group = measure(b, kind, delay).await?;
            summary.push(json!({
                "state": kind.label(),
                "delay_ms": delay,
                "seconds": group.seconds,
                "get_public_ip": group.looks,
            }));
            push_rows(b, kind, delay, &group);
        }
    }
    b.detail("sweep", json!(summary));
    Ok(())
}

struct Group {
    /// apply → assigned/allocated of each ReservedIP, in order.
    seconds: Vec<f64>,
    /// GetPublicIp calls of the whole group.
    looks: u64,
    calls: String,
}

async fn measure(b: &Bench, kind: Kind, delay: u64) -> Result<Group> {
    let settle = || {
        b.emulator
            .settle(Duration::from_secs(1), Duration::from_secs(60))
    };
    let (before, _) = settle().await?;
    let api = workload::reservedips(&b.client);
    let mut seconds = Vec::new();
    let mut names = Vec::new();
    for i in 0..PER_DELAY {
        let name = match kind {
            Kind::Assigning => format!("sweep-a-{delay}-{i}"),
            Kind::Provisioning => format!("sweep-p-{delay}-{i}"),
        };
        let obj = match kind {
            Kind::Assigning => workload::reservedip(&name, &pod(delay, i)),
            Kind::Provisioning => workload::unassigned_reservedip(&name),
        };
        let start = Instant::now();
        api.create(&PostParams::default(), &obj).await?;
        let done = |st: &crate::tracker::State| match kind {
            Kind::Assigning => st.assigned_at(&name),
            Kind::Provisioning => st.allocated_at(&name),
        };
        b.tracker
            .wait(
                &format!("{name}: {}", kind.figure()),
                Duration::from_secs(60),
                |st| done(st).is_some(),
            )
            .await?;
        let at = b
            .tracker
            .read(done)
            .ok_or_else(|| Error::Process(format!("{name}: no time recorded")))?;
        seconds.push(at.saturating_duration_since(start).as_secs_f64());
        names.push(name);
    }
    let (after, _) = settle().await?;
    let calls = after.since(&before);
    for name in &names {
        workload::delete_reservedip(&b.client, name).await?;
    }
    let looks = calls
        .0
        .get("GetPublicIp")
        .map_or(0, |outcomes| outcomes.values().sum());
    Ok(Group {
        seconds,
        looks,
        calls: calls.summary(),
    })
}

fn push_rows(b: &mut Bench, kind: Kind, delay: u64, group: &Group) {
    let settings = b.s.clone();
    let f = Floor::new(&settings);
    let floor = match kind {
        Kind::Assigning => f.apply_seconds_at(delay),
        Kind::Provisioning => f.allocate_seconds_at(delay),
    };
    let scenario = format!("7 sweep ({} {} s)", kind.label(), delay as f64 / 1000.0);
    let (first, rest) = group.seconds.split_first().unwrap_or((&0.0, &[]));
    let mean = rest.iter().sum::<f64>() / rest.len().max(1) as f64;
    let bound = 1.1 * floor + 0.1;
    b.rows.push(
        Row::new(
            &scenario,
            &format!("{}, first after the change", kind.figure()),
            "s",
            *first,
        )
        .floor(floor),
    );
    b.rows.push(
        Row::new(
            &scenario,
            &format!("{}, mean of the next {}", kind.figure(), rest.len()),
            "s",
            mean,
        )
        .floor(floor)
        .target("≤ 1.1x floor + 0.1 s", mean <= bound),
    );
    let looks = group.looks as f64 / group.seconds.len().max(1) as f64;
    b.rows.push(
        Row::new(&scenario, "GetPublicIp per ReservedIP", "", looks)
            .floor(1.0)
            .target("≤ 2", looks <= 2.0)
            .note(group.calls.clone()),
    );
}

fn pod(delay: u64, i: usize) -> String {
    format!("sweep-{delay}-{i}")
}
