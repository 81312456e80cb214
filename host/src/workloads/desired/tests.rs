use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use serde_json::json;

use super::*;
use crate::api::crd::ReservedIPStatus;

fn pod(name: &str, uid: &str, annotations: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": "shop", "uid": uid, "annotations": annotations },
    }))
    .expect("pod")
}

fn statefulset(replicas: i32, annotations: serde_json::Value) -> StatefulSet {
    serde_json::from_value(json!({
        "metadata": { "name": "db", "namespace": "shop", "uid": "sts-1", "annotations": annotations },
        "spec": { "replicas": replicas, "selector": {}, "serviceName": "db", "template": {} },
    }))
    .expect("statefulset")
}

fn allowed() -> Result<(), Refusal> {
    Ok(())
}

fn created(step: PodStep) -> ReservedIP {
    match step {
        PodStep::Create(rip) => *rip,
        other => panic!("expected a create, got {other:?}"),
    }
}

#[test]
fn a_labelled_pod_gets_a_reserved_ip_it_owns() {
    let p = pod(
        "web-abc",
        "u1",
        json!({ TAGS: r#"{"owner":"team a"}"#, POOL: "ocid1.publicippool.oc1.x.pool1" }),
    );
    let rip = created(pod_step(&p, None, allowed(), false));
    assert_eq!(rip.name_any(), "web-abc");
    assert_eq!(rip.namespace().as_deref(), Some("shop"));
    assert_eq!(
        rip.spec
            .assignment
            .as_ref()
            .and_then(|a| a.pod_name.as_deref()),
        Some("web-abc")
    );
    assert_eq!(
        rip.spec.tags.get("owner").map(String::as_str),
        Some("team a")
    );
    assert_eq!(
        rip.spec.public_ipv4_pool.as_deref(),
        Some("ocid1.publicippool.oc1.x.pool1")
    );
    let owner = &rip.owner_references()[0];
    assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Pod", "u1"));
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.block_owner_deletion, Some(true));
    assert_eq!(generated_by(&rip), Some(Generator::Pod));
}

#[test]
fn a_pod_outside_an_opted_in_namespace_gets_nothing() {
    let p = pod("web-abc", "u1", json!({}));
    let refusal = ("NamespaceNotOptedIn", "not opted in".to_string());
    match pod_step(&p, None, Err(refusal.clone()), false) {
        PodStep::Refuse(r) => assert_eq!(r, refusal),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn bad_annotations_are_refused_with_the_rule() {
    for (annotations, says) in [
        (json!({ TAGS: "owner=team-a" }), "JSON object"),
        (
            json!({ TAGS: r#"{"k8s-oci-operator-uid":"x"}"# }),
            "reserved",
        ),
        (json!({ POOL: "pool-1" }), "not a public IP pool OCID"),
    ] {
        let p = pod("web-abc", "u1", annotations);
        match pod_step(&p, None, allowed(), false) {
            PodStep::Refuse((reason, message)) => {
                assert_eq!(reason, "InvalidAnnotation");
                assert!(message.contains(says), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

#[test]
fn an_existing_reserved_ip_is_used_only_when_made_for_this_pod() {
    let p = pod("web-abc", "u1", json!({}));
    let mine = created(pod_step(&p, None, allowed(), false));
    assert!(matches!(
        pod_step(&p, Some(&mine), allowed(), false),
        PodStep::Mirror
    ));
    // The same name, made for an earlier pod that is going away.
    let earlier = created(pod_step(
        &pod("web-abc", "u0", json!({})),
        None,
        allowed(),
        false,
    ));
    assert!(matches!(
        pod_step(&p, Some(&earlier), allowed(), false),
        PodStep::WaitForPrevious
    ));
    // Hand-made (no generator label), even if it names the pod: not ours
    // to take over or show.
    let mut hand_made = mine.clone();
    hand_made.metadata.labels = None;
    match pod_step(&p, Some(&hand_made), allowed(), false) {
        PodStep::Refuse((reason, _)) => assert_eq!(reason, "ReservedIPNameTaken"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Made for a pod of another name.
    let mut other = mine;
    other.spec.assignment = Some(Assignment {
        pod_name: Some("web-xyz".into()),
        ..Assignment::default()
    });
    assert!(matches!(
        pod_step(&p, Some(&other), allowed(), false),
        PodStep::Refuse(("ReservedIPNameTaken", _))
    ));
}

#[test]
fn a_statefulset_pod_waits_for_its_statefulset_ip() {
    let p = pod("db-0", "u1", json!({}));
    assert!(matches!(
        pod_step(&p, None, allowed(), true),
        PodStep::Mirror
    ));
    let sts = statefulset(1, json!({}));
    let rip =
        ordinal_reserved_ip(&sts, 0, &Requested::default(), Retention::default()).expect("rip");
    assert!(matches!(
        pod_step(&p, Some(&rip), allowed(), false),
        PodStep::Mirror
    ));
}

#[test]
fn retention_defaults_keep_on_scale_down_and_release_with_the_statefulset() {
    assert_eq!(
        retention(&BTreeMap::new()),
        Ok(Retention {
            delete_when_scaled: false,
            delete_when_deleted: true
        })
    );
    let both = BTreeMap::from([
        (WHEN_SCALED.to_string(), "Delete".to_string()),
        (WHEN_DELETED.to_string(), "Retain".to_string()),
    ]);
    assert_eq!(
        retention(&both),
        Ok(Retention {
            delete_when_scaled: true,
            delete_when_deleted: false
        })
    );
    let bad = BTreeMap::from([(WHEN_SCALED.to_string(), "delete".to_string())]);
    assert!(retention(&bad).is_err());
}

/// The plan for ReservedIPs without tags or pool.
fn plan_for(
    sts: &StatefulSet,
    existing: &[&ReservedIP],
    retention: Retention,
    pod_exists: impl Fn(&str) -> bool,
) -> StatefulSetPlan {
    statefulset_plan(sts, existing, &Requested::default(), retention, pod_exists)
}

fn names(rips: &[ReservedIP]) -> Vec<String> {
    rips.iter().map(|r| r.name_any()).collect()
}

#[test]
fn a_statefulset_gets_one_reserved_ip_per_ordinal() {
    let mut sts = statefulset(3, json!({}));
    let plan = plan_for(&sts, &[], Retention::default(), |_| false);
    assert_eq!(names(&plan.create), ["db-0", "db-1", "db-2"]);
    let one = &plan.create[1];
    assert_eq!(ordinal_of(one, "db"), Some(1));
    assert_eq!(
        one.spec
            .assignment
            .as_ref()
            .and_then(|a| a.pod_name.as_deref()),
        Some("db-1")
    );
    assert_eq!(one.owner_references()[0].kind, "StatefulSet");
    // spec.ordinals.start moves the names.
    sts.spec.as_mut().expect("spec").ordinals =
        Some(serde_json::from_value(json!({ "start": 5 })).expect("ordinals"));
    let plan = plan_for(&sts, &[], Retention::default(), |_| false);
    assert_eq!(names(&plan.create), ["db-5", "db-6", "db-7"]);
}

#[test]
fn scaling_down_keeps_or_releases_as_the_retention_says() {
    let three = statefulset(3, json!({}));
    let all = plan_for(&three, &[], Retention::default(), |_| false).create;
    let existing: Vec<&ReservedIP> = all.iter().collect();
    let one = plan_for(
        &statefulset(1, json!({})),
        &existing,
        Retention::default(),
        |_| false,
    );
    assert!(one.create.is_empty() && one.delete.is_empty() && one.reown.is_empty());
    let release = Retention {
        delete_when_scaled: true,
        delete_when_deleted: true,
    };
    // db-2's pod is still terminating: only db-1 goes now.
    let one = plan_for(&statefulset(1, json!({})), &existing, release, |pod| {
        pod == "db-2"
    });
    assert_eq!(one.delete, ["db-1"]);
    // Scaling up again reuses what is there.
    let again = plan_for(&three, &existing, release, |_| true);
    assert!(again.create.is_empty() && again.delete.is_empty());
}

#[test]
fn the_owner_follows_the_when_deleted_retention() {
    let sts = statefulset(1, json!({}));
    let owned = plan_for(&sts, &[], Retention::default(), |_| false).create;
    let retain = Retention {
        delete_when_scaled: false,
        delete_when_deleted: false,
    };
    let plan = plan_for(&sts, &[&owned[0]], retain, |_| false);
    assert_eq!(plan.reown, [("db-0".to_string(), Vec::new())]);
    // A retained one (no owner) is adopted by a StatefulSet that deletes.
    let unowned = plan_for(&sts, &[], retain, |_| false).create;
    assert!(unowned[0].metadata.owner_references.is_none());
    let plan = plan_for(&sts, &[&unowned[0]], Retention::default(), |_| false);
    assert_eq!(plan.reown.len(), 1);
    assert_eq!(plan.reown[0].1[0].uid, "sts-1");
    // Owned by an earlier StatefulSet of the same name: wait for the
    // garbage collector, change nothing.
    let mut earlier = owned[0].clone();
    earlier.metadata.owner_references.as_mut().expect("owners")[0].uid = "sts-0".into();
    let plan = plan_for(&sts, &[&earlier], retain, |_| false);
    assert!(plan.waiting && plan.reown.is_empty() && plan.create.is_empty());
}

#[test]
fn a_name_taken_by_another_reserved_ip_is_reported_not_touched() {
    let sts = statefulset(2, json!({}));
    let mut foreign = ReservedIP::new("db-1", ReservedIPSpec::default());
    foreign.metadata.namespace = Some("shop".into());
    let plan = plan_for(&sts, &[&foreign], Retention::default(), |_| false);
    assert_eq!(names(&plan.create), ["db-0"]);
    assert_eq!(plan.taken, ["db-1"]);
    // Annotations copied onto a ReservedIP of another name do not make it one.
    let mut copied = foreign.clone();
    copied.metadata.name = Some("other".into());
    copied.metadata.labels = Some(BTreeMap::from([(
        GENERATED_BY.to_string(),
        "statefulset".to_string(),
    )]));
    copied.metadata.annotations = Some(BTreeMap::from([
        (STATEFULSET.to_string(), "db".to_string()),
        (ORDINAL.to_string(), "1".to_string()),
    ]));
    assert_eq!(ordinal_of(&copied, "db"), None);
}

fn with_status(rip: &ReservedIP, status: ReservedIPStatus) -> ReservedIP {
    let mut rip = rip.clone();
    rip.status = Some(status);
    rip
}

#[test]
fn the_pod_shows_its_ip_only_when_it_is_on_this_pod() {
    let p = pod("web-abc", "u1", json!({}));
    let rip = created(pod_step(&p, None, allowed(), false));
    let assigned = |uid: &str| ReservedIPStatus {
        state: Some(State::Assigned),
        public_ip_address: Some("192.0.2.7".into()),
        pod_uid: Some(uid.into()),
        ..ReservedIPStatus::default()
    };
    let view = pod_view(&p, &with_status(&rip, assigned("u1")));
    assert!(view.ready);
    assert_eq!(view.address.as_deref(), Some("192.0.2.7"));
    // Still on the pod of the same name that came before.
    let view = pod_view(&p, &with_status(&rip, assigned("u0")));
    assert!(!view.ready && view.address.is_none());
    // Why not, from the ReservedIP's Ready condition.
    let denied = ReservedIPStatus {
        state: Some(State::Allocated),
        conditions: vec![Condition {
            type_: READY.into(),
            status: "False".into(),
            reason: "PolicyDenied".into(),
            message: "team-pool denied it".into(),
            observed_generation: None,
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ),
        }],
        ..ReservedIPStatus::default()
    };
    let view = pod_view(&p, &with_status(&rip, denied));
    assert_eq!(view.reason, "PolicyDenied");
    assert!(
        view.message.contains("team-pool denied it"),
        "{}",
        view.message
    );
}

#[test]
fn a_pod_showing_the_view_needs_no_write() {
    let view = PodView {
        ready: true,
        reason: "Assigned".into(),
        message: "m".into(),
        address: Some("192.0.2.7".into()),
    };
    let mut p: Pod = serde_json::from_value(json!({
        "metadata": { "name": "web", "annotations": { PUBLIC_IP: "192.0.2.7" } },
        "status": { "conditions": [
            { "type": READY_CONDITION, "status": "True", "reason": "Assigned", "message": "m" }
        ] },
    }))
    .expect("pod");
    assert!(pod_shows(&p, &view));
    p.metadata.annotations = None;
    assert!(!pod_shows(&p, &view));
    assert!(!pod_shows(
        &pod("web", "u", json!({})),
        &refused_view(&("R", "m".into()))
    ));
}
