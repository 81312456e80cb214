//! What the operator should create, keep or delete for a labelled workload,
//! and what it should show on a pod. Pure: the controllers in `pods` and
//! `statefulsets` read the cluster, call these, and write what they answer.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use super::{
    GENERATED_BY, ORDINAL, POOL, PUBLIC_IP, READY_CONDITION, STATEFULSET, TAGS, WHEN_DELETED,
    WHEN_SCALED,
};
use crate::api::conditions::READY;
use crate::api::crd::{Assignment, ReservedIP, ReservedIPSpec, State};
use crate::api::tags::check_tags;

/// A refusal: a reason (an Event's and the pod condition's) and a message
/// that says what to change.
pub type Refusal = (&'static str, String);

/// The spec fields a workload's annotations give its ReservedIPs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requested {
    pub tags: BTreeMap<String, String>,
    pub pool: Option<String>,
}

/// Reads the tags and pool annotations, checked as the CRD checks them, so
/// a mistake is reported on the workload with the rule it broke.
pub fn requested(annotations: &BTreeMap<String, String>) -> Result<Requested, Refusal> {
    let invalid = |m: String| ("InvalidAnnotation", m);
    let tags = match annotations.get(TAGS) {
        None => BTreeMap::new(),
        Some(raw) => serde_json::from_str::<BTreeMap<String, String>>(raw).map_err(|e| {
            invalid(format!(
                "annotation {TAGS} must be a JSON object of strings, e.g. {{\"owner\":\"team-a\"}}: {e}"
            ))
        })?,
    };
    check_tags(&tags).map_err(|e| invalid(format!("annotation {TAGS}: {e}")))?;
    let pool = match annotations.get(POOL).map(|p| p.trim()) {
        None | Some("") => None,
        Some(p) if p.starts_with("ocid1.publicippool.") && p.len() <= 255 => Some(p.to_string()),
        Some(p) => {
            return Err(invalid(format!(
                "annotation {POOL}: '{p}' is not a public IP pool OCID (ocid1.publicippool...)"
            )));
        }
    };
    Ok(Requested { tags, pool })
}

/// What a StatefulSet's IPs do when it scales down or is deleted, as
/// `persistentVolumeClaimRetentionPolicy` does for its volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Release the IPs of ordinals beyond `replicas` (once their pod is gone).
    pub delete_when_scaled: bool,
    /// Release the IPs with the StatefulSet (they are owned by it).
    pub delete_when_deleted: bool,
}

impl Default for Retention {
    /// Kept on scale-down (scaling up reuses them), released with the
    /// StatefulSet: addresses cost money, and the common wish is "stable
    /// while the StatefulSet lives".
    fn default() -> Self {
        Retention {
            delete_when_scaled: false,
            delete_when_deleted: true,
        }
    }
}

/// The retention annotations; a value other than `Retain` or `Delete` is
/// refused (and nothing is deleted meanwhile).
pub fn retention(annotations: &BTreeMap<String, String>) -> Result<Retention, Refusal> {
    let read = |key: &str, default: bool| match annotations.get(key).map(|v| v.trim()) {
        None => Ok(default),
        Some("Delete") => Ok(true),
        Some("Retain") => Ok(false),
        Some(other) => Err((
            "InvalidAnnotation",
            format!("annotation {key}: '{other}' is neither Retain nor Delete"),
        )),
    };
    let default = Retention::default();
    Ok(Retention {
        delete_when_scaled: read(WHEN_SCALED, default.delete_when_scaled)?,
        delete_when_deleted: read(WHEN_DELETED, default.delete_when_deleted)?,
    })
}

/// Who a generated ReservedIP was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    Pod,
    StatefulSet,
}

impl Generator {
    pub fn label(self) -> &'static str {
        match self {
            Generator::Pod => "pod",
            Generator::StatefulSet => "statefulset",
        }
    }
}

fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> Option<OwnerReference> {
    let mut r = owner.controller_owner_ref(&())?;
    r.block_owner_deletion = Some(true);
    Some(r)
}

/// The ReservedIP a labelled pod gets: named after it, owned by it (so it
/// is released when the pod goes), assigned to it.
pub fn pod_reserved_ip(pod: &Pod, wanted: &Requested) -> Option<ReservedIP> {
    let owner = controller_ref(pod)?;
    Some(generated(
        pod.name_any(),
        pod.namespace()?,
        Generator::Pod,
        BTreeMap::new(),
        vec![owner],
        wanted,
    ))
}

/// The ReservedIP of a StatefulSet's ordinal, named and assigned like its
/// pod (`<name>-<ordinal>`), owned by the StatefulSet only when its IPs are
/// released with it.
pub fn ordinal_reserved_ip(
    sts: &StatefulSet,
    ordinal: i32,
    wanted: &Requested,
    retention: Retention,
) -> Option<ReservedIP> {
    let owners = if retention.delete_when_deleted {
        vec![controller_ref(sts)?]
    } else {
        Vec::new()
    };
    let annotations = BTreeMap::from([
        (STATEFULSET.to_string(), sts.name_any()),
        (ORDINAL.to_string(), ordinal.to_string()),
    ]);
    Some(generated(
        ordinal_name(&sts.name_any(), ordinal),
        sts.namespace()?,
        Generator::StatefulSet,
        annotations,
        owners,
        wanted,
    ))
}

/// The name of an ordinal's pod, and of its ReservedIP.
pub fn ordinal_name(statefulset: &str, ordinal: i32) -> String {
    format!("{statefulset}-{ordinal}")
}

fn generated(
    name: String,
    namespace: String,
    by: Generator,
    annotations: BTreeMap<String, String>,
    owners: Vec<OwnerReference>,
    wanted: &Requested,
) -> ReservedIP {
    let mut rip = ReservedIP::new(
        &name,
        ReservedIPSpec {
            tags: wanted.tags.clone(),
            public_ipv4_pool: wanted.pool.clone(),
            assignment: Some(Assignment {
                pod_name: Some(name.clone()),
                ..Assignment::default()
            }),
            ..ReservedIPSpec::default()
        },
    );
    rip.metadata = ObjectMeta {
        name: Some(name),
        namespace: Some(namespace),
        labels: Some(BTreeMap::from([(
            GENERATED_BY.to_string(),
            by.label().to_string(),
        )])),
        annotations: Some(annotations).filter(|a| !a.is_empty()),
        owner_references: Some(owners).filter(|o| !o.is_empty()),
        ..ObjectMeta::default()
    };
    rip
}

/// Who made an existing ReservedIP, as far as its labels say.
pub fn generated_by(rip: &ReservedIP) -> Option<Generator> {
    match rip.labels().get(GENERATED_BY).map(String::as_str) {
        Some("pod") => Some(Generator::Pod),
        Some("statefulset") => Some(Generator::StatefulSet),
        _ => None,
    }
}

/// The ordinal of a StatefulSet's ReservedIP, if it is one of `statefulset`'s.
pub fn ordinal_of(rip: &ReservedIP, statefulset: &str) -> Option<i32> {
    if generated_by(rip) != Some(Generator::StatefulSet)
        || rip.annotations().get(STATEFULSET).map(String::as_str) != Some(statefulset)
    {
        return None;
    }
    let ordinal = rip.annotations().get(ORDINAL)?.parse().ok()?;
    // The name must agree: the annotations alone could be copied onto
    // another ReservedIP.
    (rip.name_any() == ordinal_name(statefulset, ordinal)).then_some(ordinal)
}

/// The UID of the controller owner of an object, if any.
pub fn controller_uid(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

/// What the pod controller does about a labelled pod, given the ReservedIP
/// of the pod's name, if one exists.
#[derive(Debug, Clone)]
pub enum PodStep {
    /// Create this ReservedIP.
    Create(Box<ReservedIP>),
    /// Show the ReservedIP's state on the pod.
    Mirror,
    /// A ReservedIP of this name belongs to an earlier pod of the same name
    /// and is being deleted: look again later.
    WaitForPrevious,
    /// Nothing is created; the pod is told why.
    Refuse(Refusal),
}

/// What a labelled pod gets. `allowed`: the namespace is opted in;
/// `statefulset_ips`: the pod belongs to a labelled StatefulSet, whose
/// controller makes its ReservedIP (stable across the pod's restarts).
pub fn pod_step(
    pod: &Pod,
    existing: Option<&ReservedIP>,
    allowed: Result<(), Refusal>,
    statefulset_ips: bool,
) -> PodStep {
    let name = pod.name_any();
    if let Some(rip) = existing {
        let for_this_pod = rip
            .spec
            .assignment
            .as_ref()
            .and_then(|a| a.pod_name.as_deref())
            == Some(name.as_str());
        return match generated_by(rip) {
            Some(Generator::Pod) if for_this_pod => {
                if controller_uid(&rip.metadata) == pod.uid().as_deref() {
                    PodStep::Mirror
                } else {
                    PodStep::WaitForPrevious
                }
            }
            Some(Generator::StatefulSet) if for_this_pod => PodStep::Mirror,
            _ => PodStep::Refuse((
                "ReservedIPNameTaken",
                format!(
                    "a ReservedIP named {name} exists and was not made for this pod; rename one of them"
                ),
            )),
        };
    }
    if statefulset_ips {
        // The StatefulSet's controller creates it; shown here once it does.
        return PodStep::Mirror;
    }
    if let Err(refusal) = allowed {
        return PodStep::Refuse(refusal);
    }
    match requested(pod.annotations()) {
        Err(refusal) => PodStep::Refuse(refusal),
        Ok(wanted) => match pod_reserved_ip(pod, &wanted) {
            Some(rip) => PodStep::Create(Box::new(rip)),
            None => PodStep::Refuse((
                "PodIncomplete",
                format!("pod {name} has no UID or namespace yet"),
            )),
        },
    }
}

/// What one StatefulSet's ReservedIPs need.
#[derive(Debug, Default)]
pub struct StatefulSetPlan {
    /// Ordinals without a ReservedIP: create these.
    pub create: Vec<ReservedIP>,
    /// Existing ReservedIPs whose owner references must change (the
    /// `whenDeleted` retention changed, or a retained one is adopted by a
    /// new StatefulSet of the same name): name and the references to set.
    pub reown: Vec<(String, Vec<OwnerReference>)>,
    /// ReservedIPs of ordinals beyond the replicas, released on scale-down
    /// (`whenScaled: Delete`) once their pod is gone.
    pub delete: Vec<String>,
    /// Names that are taken by ReservedIPs this StatefulSet did not make.
    pub taken: Vec<String>,
    /// ReservedIPs of another StatefulSet of the same name being deleted.
    pub waiting: bool,
}

/// The plan for a labelled StatefulSet. `existing`: the namespace's
/// ReservedIPs with the names of its desired ordinals or made for it;
/// `pod_exists`: whether the pod of a name exists.
pub fn statefulset_plan(
    sts: &StatefulSet,
    existing: &[&ReservedIP],
    wanted: &Requested,
    retention: Retention,
    pod_exists: impl Fn(&str) -> bool,
) -> StatefulSetPlan {
    let name = sts.name_any();
    let desired = running_ordinals(sts);
    let uid = sts.uid();
    let owners = if retention.delete_when_deleted {
        controller_ref(sts).into_iter().collect()
    } else {
        Vec::new()
    };
    let mut plan = StatefulSetPlan::default();
    for ordinal in desired.clone() {
        let rip_name = ordinal_name(&name, ordinal);
        let found = existing.iter().find(|r| r.name_any() == rip_name);
        match found {
            None => plan
                .create
                .extend(ordinal_reserved_ip(sts, ordinal, wanted, retention)),
            Some(rip) if ordinal_of(rip, &name).is_none() => plan.taken.push(rip_name),
            Some(_) => {}
        }
    }
    for rip in existing {
        let Some(ordinal) = ordinal_of(rip, &name) else {
            continue;
        };
        let owner = controller_uid(&rip.metadata);
        if owner.is_some() && owner != uid.as_deref() {
            // Owned by an earlier StatefulSet of this name, which the
            // garbage collector is removing with its ReservedIPs.
            plan.waiting = true;
            continue;
        }
        if !desired.contains(&ordinal) && retention.delete_when_scaled {
            if rip.metadata.deletion_timestamp.is_none() && !pod_exists(&rip.name_any()) {
                plan.delete.push(rip.name_any());
            }
            continue;
        }
        if owner.is_some() != retention.delete_when_deleted {
            // Other (non-controller) references someone added are kept.
            let mut refs: Vec<OwnerReference> = rip
                .metadata
                .owner_references
                .iter()
                .flatten()
                .filter(|o| o.controller != Some(true))
                .cloned()
                .collect();
            refs.extend(owners.iter().cloned());
            plan.reown.push((rip.name_any(), refs));
        }
    }
    plan
}

/// The ordinals a StatefulSet runs: `replicas` (default 1) from
/// `spec.ordinals.start` (default 0).
pub fn running_ordinals(sts: &StatefulSet) -> std::ops::Range<i32> {
    let spec = sts.spec.as_ref();
    let start = spec
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
        .max(0);
    start..start.saturating_add(spec.and_then(|s| s.replicas).unwrap_or(1).max(0))
}

/// What a pod shows of its ReservedIP: the readiness gate's condition and
/// the address annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub ready: bool,
    pub reason: String,
    pub message: String,
    /// The public address, while it is assigned to this pod.
    pub address: Option<String>,
}

/// The view of a pod whose ReservedIP is `rip`.
pub fn pod_view(pod: &Pod, rip: &ReservedIP) -> PodView {
    let status = rip.status.clone().unwrap_or_default();
    let on_this_pod = status.state == Some(State::Assigned)
        && status.pod_uid.is_some()
        && status.pod_uid == pod.uid()
        && status.public_ip_address.is_some();
    if on_this_pod {
        let address = status.public_ip_address.clone().unwrap_or_default();
        return PodView {
            ready: true,
            reason: "Assigned".into(),
            message: format!(
                "public IP {address} of ReservedIP {} is on this pod",
                rip.name_any()
            ),
            address: Some(address),
        };
    }
    // Why not, as the ReservedIP's Ready condition says (a policy's
    // denial, a grant missing, OCI still assigning).
    let (reason, why) = status
        .conditions
        .iter()
        .find(|c| c.type_ == READY && c.status != "True")
        .map(|c| (c.reason.clone(), c.message.clone()))
        .unwrap_or_else(|| {
            let state = status
                .state
                .map(|s| format!("{s:?}").to_lowercase())
                .unwrap_or_else(|| "pending".into());
            ("NotAssigned".into(), format!("ReservedIP is {state}"))
        });
    PodView {
        ready: false,
        reason,
        message: format!("ReservedIP {}: {why}", rip.name_any()),
        address: None,
    }
}

/// A view for a pod that gets no ReservedIP.
pub fn refused_view((reason, message): &Refusal) -> PodView {
    PodView {
        ready: false,
        reason: reason.to_string(),
        message: message.clone(),
        address: None,
    }
}

/// A view for a pod whose ReservedIP is not there yet.
pub fn waiting_view(name: &str) -> PodView {
    PodView {
        ready: false,
        reason: "Pending".into(),
        message: format!("waiting for ReservedIP {name}"),
        address: None,
    }
}

/// Whether the pod already shows this view (no write needed).
pub fn pod_shows(pod: &Pod, view: &PodView) -> bool {
    let condition = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == READY_CONDITION));
    let condition_matches = condition.is_some_and(|c| {
        (c.status == "True") == view.ready
            && c.reason.as_deref() == Some(view.reason.as_str())
            && c.message.as_deref() == Some(view.message.as_str())
    });
    condition_matches && pod.annotations().get(PUBLIC_IP) == view.address.as_ref()
}

#[cfg(test)]
mod tests;
