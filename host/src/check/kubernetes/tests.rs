//! The Kubernetes checks' pure parts: the permission list against
//! `deploy/10-rbac.yaml`, CRD drift, and the lines.

use super::*;
use crate::check::Status;
use crate::check::test_config as config;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinitionCondition, CustomResourceDefinitionStatus, SelectableField,
};
use serde::Deserialize;

/// The operator's settings in `deploy/`: leader election and policies in
/// its own namespace, every namespace watched.
fn deployed() -> RunConfig {
    config(&[
        "--leader-election-namespace",
        "k8s-oci-operator",
        "--policy-namespace",
        "k8s-oci-operator",
    ])
}

#[derive(Debug, Deserialize)]
struct Rule {
    #[serde(rename = "apiGroups", default)]
    groups: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(rename = "resourceNames", default)]
    names: Vec<String>,
}

/// One grant: (namespace of the Role, or None for a ClusterRole), group,
/// resource, verb, resource name.
type Grant = (Option<String>, String, String, String, Option<String>);

/// Every (verb, resource) the roles of `deploy/10-rbac.yaml` grant, after
/// checking each is bound to the operator's ServiceAccount.
fn deploy_grants() -> Vec<Grant> {
    let path = crate::checkout_dir().join("../deploy/10-rbac.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde_yaml::Value::deserialize(doc).expect("YAML document"))
        .collect();
    let kind = |d: &serde_yaml::Value| d["kind"].as_str().unwrap_or_default().to_string();
    let bound = |role_kind: &str, role: &str| {
        docs.iter().any(|d| {
            kind(d).ends_with("Binding")
                && d["roleRef"]["kind"].as_str() == Some(role_kind)
                && d["roleRef"]["name"].as_str() == Some(role)
                && d["subjects"].as_sequence().is_some_and(|s| {
                    s.iter().any(|s| {
                        s["kind"].as_str() == Some("ServiceAccount")
                            && s["name"].as_str() == Some("k8s-oci-operator")
                    })
                })
        })
    };
    let mut grants = Vec::new();
    for doc in &docs {
        let kind = kind(doc);
        if kind != "ClusterRole" && kind != "Role" {
            continue;
        }
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        assert!(
            bound(&kind, name),
            "{kind} {name} is not bound to the ServiceAccount"
        );
        let namespace = (kind == "Role").then(|| {
            doc["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        });
        let rules: Vec<Rule> =
            serde_yaml::from_value(doc["rules"].clone()).expect("rules of a role");
        for rule in rules {
            for group in &rule.groups {
                for resource in &rule.resources {
                    for verb in &rule.verbs {
                        let names: Vec<Option<String>> = if rule.names.is_empty() {
                            vec![None]
                        } else {
                            rule.names.iter().cloned().map(Some).collect()
                        };
                        for name in names {
                            grants.push((
                                namespace.clone(),
                                group.clone(),
                                resource.clone(),
                                verb.clone(),
                                name,
                            ));
                        }
                    }
                }
            }
        }
    }
    grants
}

/// What the check asks for, as grants.
fn asked(config: &RunConfig) -> Vec<Grant> {
    let mut asked = Vec::new();
    for p in required(config) {
        for verb in p.verbs {
            asked.push((
                p.namespace.clone(),
                p.group.to_string(),
                p.resource.to_string(),
                (*verb).to_string(),
                p.name.map(str::to_string),
            ));
        }
    }
    asked
}

/// Whether `grants` cover `want`: a ClusterRole covers every namespace; a
/// rule without resourceNames covers every name.
fn covered(grants: &[Grant], want: &Grant) -> bool {
    grants.iter().any(|g| {
        (g.0.is_none() || g.0 == want.0)
            && g.1 == want.1
            && g.2 == want.2
            && g.3 == want.3
            && (g.4.is_none() || g.4 == want.4)
    })
}

#[test]
fn check_rbac_list_equals_deploy_rbac() {
    let grants = deploy_grants();
    let asked = asked(&deployed());
    // Everything the check asks for is granted by deploy/ (else the check
    // would fail a correct installation).
    for want in &asked {
        assert!(
            covered(&grants, want),
            "the check asks for {want:?}, which deploy/10-rbac.yaml does not grant"
        );
    }
    // Everything deploy/ grants is asked for (else a permission could be
    // missing from a cluster and the check would not notice).
    for grant in &grants {
        assert!(
            asked.contains(grant),
            "deploy/10-rbac.yaml grants {grant:?}, which the check does not verify: add it to check::kubernetes::required"
        );
    }
}

#[test]
fn check_rbac_scopes_follow_the_settings() {
    let narrowed = required(&config(&["--namespace", "team-a"]));
    let find = |resource: &str| {
        narrowed
            .iter()
            .find(|p| p.resource == resource)
            .unwrap_or_else(|| panic!("{resource} not required"))
    };
    assert_eq!(find("reservedips").namespace.as_deref(), Some("team-a"));
    assert_eq!(find("events").namespace.as_deref(), Some("team-a"));
    assert_eq!(find("pods").namespace, None, "pods are watched everywhere");
    assert_eq!(
        find("reservedips/status").check_name(),
        "kubernetes rbac reservedips.oci.k8s.logmein.com/status (team-a)"
    );
    assert_eq!(find("pods").check_name(), "kubernetes rbac pods");
    assert!(
        !narrowed.iter().any(|p| p.resource == "leases"),
        "no leader election, no Lease"
    );
    let with_policies = required(&config(&[
        "--namespace",
        "team-a",
        "--policy-namespace",
        "ops",
    ]));
    assert!(
        with_policies
            .iter()
            .any(|p| p.resource == "events" && p.namespace.as_deref() == Some("ops")),
        "policy events in the policy namespace"
    );
}

fn established(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    crd.status = Some(CustomResourceDefinitionStatus {
        conditions: Some(vec![CustomResourceDefinitionCondition {
            type_: "Established".into(),
            status: "True".into(),
            ..CustomResourceDefinitionCondition::default()
        }]),
        ..CustomResourceDefinitionStatus::default()
    });
    crd
}

fn wanted() -> CustomResourceDefinition {
    ReservedIP::crd()
}

/// The installed CRD after `change`.
fn drift_after(change: impl FnOnce(&mut CustomResourceDefinitionVersion)) -> Vec<String> {
    let mut installed = wanted();
    change(&mut installed.spec.versions[0]);
    crd_drift(&installed, &wanted())
}

#[test]
fn check_crd_current_has_no_drift_even_with_server_defaults() {
    assert!(crd_drift(&wanted(), &wanted()).is_empty());
    // What the API server fills in is not drift.
    let mut installed = wanted();
    installed.spec.names.list_kind = None;
    installed.spec.names.singular = None;
    for column in installed.spec.versions[0]
        .additional_printer_columns
        .iter_mut()
        .flatten()
    {
        column.priority = column.priority.or(Some(0));
    }
    assert_eq!(crd_drift(&installed, &wanted()), Vec::<String>::new());
    let line = crd_line(Some(&established(wanted())), &wanted());
    assert_eq!(line.status, Status::Ok, "{line:#?}");
}

#[test]
fn check_crd_staleness_is_detected_part_by_part() {
    let drift = drift_after(|v| {
        if let Some(columns) = &mut v.additional_printer_columns {
            columns.retain(|c| c.name != "Ready");
        }
    });
    assert!(
        drift.iter().any(|d| d.contains("printer columns")),
        "{drift:?}"
    );

    let drift = drift_after(|v| v.selectable_fields = None);
    assert!(
        drift.iter().any(|d| d.contains("selectable fields")),
        "{drift:?}"
    );

    let drift = drift_after(|v| {
        v.selectable_fields = Some(vec![SelectableField {
            json_path: ".status.state".into(),
        }])
    });
    assert!(
        drift.iter().any(|d| d.contains("selectable fields")),
        "{drift:?}"
    );

    let drift = drift_after(|v| v.subresources = None);
    assert!(
        drift.iter().any(|d| d.contains("subresources")),
        "{drift:?}"
    );

    let drift = drift_after(|v| {
        if let Some(schema) = v
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            schema.description = Some("an older description".into());
        }
    });
    assert!(drift.iter().any(|d| d.contains("schema")), "{drift:?}");

    let drift = drift_after(|v| v.served = false);
    assert!(drift.iter().any(|d| d.contains("served")), "{drift:?}");

    let mut installed = wanted();
    installed.spec.names.categories = None;
    let drift = crd_drift(&installed, &wanted());
    assert!(drift.iter().any(|d| d.contains("names")), "{drift:?}");

    let mut installed = wanted();
    installed.spec.versions[0].name = "v1alpha0".into();
    let drift = crd_drift(&installed, &wanted());
    assert!(
        drift.iter().any(|d| d.contains("v1alpha1 missing")),
        "{drift:?}"
    );
    assert!(
        drift.iter().any(|d| d.contains("v1alpha0 is not")),
        "{drift:?}"
    );

    // A stale CRD fails the check with the command that updates it.
    let mut installed = established(wanted());
    installed.spec.versions[0].selectable_fields = None;
    let line = crd_line(Some(&installed), &wanted());
    assert_eq!(line.status, Status::Fail);
    assert!(
        line.fix.as_deref().unwrap_or("").contains(CRD_FILE),
        "{line:#?}"
    );
}

#[test]
fn check_crd_missing_or_not_established_fails() {
    let line = crd_line(None, &wanted());
    assert_eq!(line.status, Status::Fail);
    assert!(line.fix.as_deref().unwrap_or("").contains("kubectl apply"));
    let line = crd_line(Some(&wanted()), &wanted());
    assert_eq!(line.status, Status::Fail, "no Established condition");
    assert!(line.detail.contains("not Established"));
}

#[test]
fn check_rbac_line_names_missing_verbs_and_the_fix() {
    let permission = required(&deployed())
        .into_iter()
        .find(|p| p.resource == "leases")
        .expect("leases with leader election");
    let answers = [
        ("get", Ok(true)),
        ("list", Ok(true)),
        ("watch", Ok(true)),
        ("create", Ok(false)),
        ("update", Ok(false)),
        ("patch", Ok(true)),
    ];
    let line = rbac_line(&permission, &answers, Some("system:serviceaccount:x:y"));
    assert_eq!(line.status, Status::Fail);
    assert!(
        line.detail
            .starts_with("system:serviceaccount:x:y may not create, update leases.coordination.k8s.io in namespace k8s-oci-operator"),
        "{line:#?}"
    );
    let fix = line.fix.as_deref().unwrap_or("");
    assert!(
        fix.contains("helm upgrade") && fix.contains("kubectl apply -f deploy/10-rbac.yaml"),
        "{fix}"
    );
    assert!(fix.contains("verbs: [create, update]"), "{fix}");

    let all = permission
        .verbs
        .iter()
        .map(|v| (*v, Ok(true)))
        .collect::<Vec<_>>();
    assert_eq!(rbac_line(&permission, &all, None).status, Status::Ok);

    let failed = [("get", Err("connection reset".to_string()))];
    assert_eq!(
        rbac_line(&permission, &failed, None).status,
        Status::NotChecked
    );
}
