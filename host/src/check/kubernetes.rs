//! The Kubernetes side of `check`: the API server, the ReservedIP CRD
//! (installed and the same as this build's), and RBAC.
//!
//! [`required`] is the list of permissions the operator uses, by what the
//! code does; a unit test holds it equal to `deploy/10-rbac.yaml`, so the
//! two cannot drift apart. [`crd_drift`] and [`rbac_line`] are pure.

use std::time::Duration;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionVersion,
};
use kube::api::PostParams;
use kube::{Api, Client, CustomResourceExt};
use serde_json::Value;

use super::CheckLine;
use crate::api::crd::ReservedIP;
use crate::config::RunConfig;

/// Check names.
pub const API_SERVER: &str = "kubernetes api server";
pub const CRD: &str = "kubernetes crd";

/// The checked-in CRD manifest, for the fix.
pub const CRD_FILE: &str = "config/crd/bases/oci.k8s.logmein.com_reservedips.yaml";

/// How long one step (connecting, one request) may take: a check must not hang.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// One permission the operator needs: verbs on a resource, in a namespace
/// or cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// Resource, with `/subresource` if any (e.g. `reservedips/status`).
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    /// `None`: every namespace (or a cluster-scoped resource).
    pub namespace: Option<String>,
    /// Restricted to one object (RBAC `resourceNames`).
    pub name: Option<&'static str>,
    /// What the operator does with it (a verb phrase: "... needed to <why>").
    pub why: &'static str,
}

impl Permission {
    /// `resource[.group][/subresource]`, as kubectl names it.
    pub fn resource_label(&self) -> String {
        let (resource, subresource) = match self.resource.split_once('/') {
            Some((r, s)) => (r, format!("/{s}")),
            None => (self.resource, String::new()),
        };
        if self.group.is_empty() {
            format!("{resource}{subresource}")
        } else {
            format!("{resource}.{}{subresource}", self.group)
        }
    }

    /// Where: `in namespace x` or `cluster-wide`.
    pub fn scope(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "cluster-wide".to_string(),
        }
    }

    /// The name of this permission's check line.
    pub fn check_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("kubernetes rbac {} ({ns})", self.resource_label()),
            None => format!("kubernetes rbac {}", self.resource_label()),
        }
    }
}

/// The name of the ReservedIP CRD.
pub fn crd_name() -> String {
    ReservedIP::crd().metadata.name.unwrap_or_default()
}

/// Every permission the operator uses with `config`, and where. The same
/// list as `deploy/10-rbac.yaml` (a unit test compares them both ways).
pub fn required(config: &RunConfig) -> Vec<Permission> {
    const GROUP: &str = "oci.k8s.logmein.com";
    // ReservedIPs and their events: one namespace with WATCH_NAMESPACE, else all.
    let watched = config.namespace.clone();
    let mut list = vec![
        Permission {
            group: GROUP,
            resource: "reservedips",
            verbs: &["get", "list", "watch", "patch", "update"],
            namespace: watched.clone(),
            name: None,
            why: "watch ReservedIPs and add or remove their finalizer",
        },
        Permission {
            group: GROUP,
            resource: "reservedips/status",
            verbs: &["get", "patch", "update"],
            namespace: watched.clone(),
            name: None,
            why: "write their status with server-side apply",
        },
        Permission {
            group: GROUP,
            resource: "reservedips/finalizers",
            verbs: &["update"],
            namespace: watched.clone(),
            name: None,
            why: "set the finalizer where OwnerReferencesPermissionEnforcement applies",
        },
        Permission {
            group: "",
            resource: "pods",
            verbs: &["get", "list", "watch"],
            // Every namespace even with WATCH_NAMESPACE: a pod elsewhere may
            // receive the address of a private IP target.
            namespace: None,
            name: None,
            why: "find target pods and guard private IPs handed to another pod",
        },
        Permission {
            group: "",
            resource: "nodes",
            verbs: &["get"],
            namespace: None,
            name: None,
            why: "read a pod's node's providerID (its OCI instance)",
        },
        Permission {
            group: "",
            resource: "namespaces",
            verbs: &["get", "list", "watch"],
            namespace: None,
            name: None,
            why: "read the platform team's grants (annotations) and policies' selectors (labels)",
        },
        Permission {
            group: "events.k8s.io",
            resource: "events",
            verbs: &["create", "patch"],
            namespace: watched.clone(),
            name: None,
            why: "report each ReservedIP's transitions",
        },
        Permission {
            group: "apiextensions.k8s.io",
            resource: "customresourcedefinitions",
            verbs: &["get"],
            namespace: None,
            name: Some("reservedips.oci.k8s.logmein.com"),
            why: "tell an uninstall (the CRD being deleted) from a ReservedIP being deleted",
        },
    ];
    if config.workload_ips {
        list.extend([
            Permission {
                group: GROUP,
                resource: "reservedips",
                verbs: &["create", "delete"],
                namespace: watched.clone(),
                name: None,
                why: "create ReservedIPs for labelled pods and StatefulSets, and release scaled-away ordinals' (WORKLOAD_IPS)",
            },
            Permission {
                group: "",
                resource: "pods",
                verbs: &["patch"],
                namespace: watched.clone(),
                name: None,
                why: "annotate labelled pods with their public address (WORKLOAD_IPS)",
            },
            Permission {
                group: "",
                resource: "pods/status",
                verbs: &["patch"],
                namespace: watched.clone(),
                name: None,
                why: "set labelled pods' readiness-gate condition (WORKLOAD_IPS)",
            },
            Permission {
                group: "apps",
                resource: "statefulsets",
                verbs: &["get", "list", "watch"],
                namespace: watched.clone(),
                name: None,
                why: "watch labelled StatefulSets for their ordinals' IPs (WORKLOAD_IPS)",
            },
        ]);
    }
    if let Some(ns) = &config.leader_election_namespace {
        list.push(Permission {
            group: "coordination.k8s.io",
            resource: "leases",
            verbs: &["get", "list", "watch", "create", "update", "patch"],
            namespace: Some(ns.clone()),
            name: None,
            why: "hold the leader-election Lease",
        });
    }
    if let Some(ns) = &config.policy_namespace {
        list.push(Permission {
            group: "",
            resource: "configmaps",
            verbs: &["get", "list", "watch"],
            namespace: Some(ns.clone()),
            name: None,
            why: "read policy ConfigMaps",
        });
        // Policy load reports are events on those ConfigMaps; covered by the
        // cluster-wide events permission unless WATCH_NAMESPACE narrows it.
        if watched.as_ref().is_some_and(|w| w != ns) {
            list.push(Permission {
                group: "events.k8s.io",
                resource: "events",
                verbs: &["create", "patch"],
                namespace: Some(ns.clone()),
                name: None,
                why: "report policy ConfigMaps that fail to load",
            });
        }
    }
    list
}

/// Every Kubernetes check, in order. Never fails: each problem is a line.
pub async fn check(config: &RunConfig) -> Vec<CheckLine> {
    let permissions = required(config);
    let client = match connect().await {
        Ok(connected) => connected,
        Err(line) => {
            let reason = "the API server did not answer";
            let mut lines = vec![line, CheckLine::not_checked(CRD, reason)];
            lines.extend(
                permissions
                    .iter()
                    .map(|p| CheckLine::not_checked(p.check_name(), reason)),
            );
            return lines;
        }
    };
    let (client, api_line) = client;
    let mut lines = vec![api_line];
    lines.push(crd_check(&client).await);
    let who = whoami(&client).await;
    let reviews = permissions.iter().map(|p| reviews(&client, p));
    let answers = futures::future::join_all(reviews).await;
    for (permission, answer) in permissions.iter().zip(answers) {
        lines.push(rbac_line(permission, &answer, who.as_deref()));
    }
    lines
}

/// The client of the current kubeconfig (or in-cluster config), and the
/// API server line.
async fn connect() -> Result<(Client, CheckLine), CheckLine> {
    let fix = "set KUBECONFIG to a kubeconfig for the cluster (or run in the cluster with the operator's ServiceAccount); `kubectl cluster-info` must answer";
    let config = match tokio::time::timeout(STEP_TIMEOUT, kube::Config::infer()).await {
        Ok(Ok(config)) => config,
        Ok(Err(e)) => {
            return Err(CheckLine::fail(
                API_SERVER,
                format!("no Kubernetes configuration: {e}"),
                fix,
            ));
        }
        Err(_) => {
            return Err(CheckLine::fail(
                API_SERVER,
                "reading the Kubernetes configuration timed out",
                fix,
            ));
        }
    };
    let url = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| {
        CheckLine::fail(
            API_SERVER,
            format!("cannot build a client for {url}: {e}"),
            fix,
        )
    })?;
    match tokio::time::timeout(STEP_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(version)) => Ok((
            client,
            CheckLine::ok(
                API_SERVER,
                format!("{url} answered (Kubernetes {})", version.git_version),
            ),
        )),
        Ok(Err(e)) => Err(CheckLine::fail(
            API_SERVER,
            format!("{url} did not answer: {e}"),
            fix,
        )),
        Err(_) => Err(CheckLine::fail(
            API_SERVER,
            format!("{url} did not answer within {} s", STEP_TIMEOUT.as_secs()),
            fix,
        )),
    }
}

/// Who the API server says we are (for messages); `None` if it will not say.
async fn whoami(client: &Client) -> Option<String> {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = tokio::time::timeout(
        STEP_TIMEOUT,
        api.create(&PostParams::default(), &SelfSubjectReview::default()),
    )
    .await
    .ok()?
    .ok()?;
    review.status?.user_info?.username
}

/// The installed CRD compared with this build's.
async fn crd_check(client: &Client) -> CheckLine {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd_name();
    match tokio::time::timeout(STEP_TIMEOUT, api.get_opt(&name)).await {
        Ok(Ok(installed)) => crd_line(installed.as_ref(), &ReservedIP::crd()),
        Ok(Err(e)) => CheckLine::not_checked(
            CRD,
            format!("could not read CustomResourceDefinition {name}: {e}"),
        ),
        Err(_) => CheckLine::not_checked(CRD, "reading the CRD timed out"),
    }
}

/// The CRD line: missing, being deleted, not established, stale, or current.
pub fn crd_line(
    installed: Option<&CustomResourceDefinition>,
    wanted: &CustomResourceDefinition,
) -> CheckLine {
    let apply = format!("kubectl apply --server-side -f {CRD_FILE} (of this operator's release)");
    let name = wanted.metadata.name.clone().unwrap_or_default();
    let Some(installed) = installed else {
        return CheckLine::fail(
            CRD,
            format!("CustomResourceDefinition {name} is not installed"),
            apply,
        );
    };
    if installed.metadata.deletion_timestamp.is_some() {
        return CheckLine::fail(
            CRD,
            format!(
                "CustomResourceDefinition {name} is being deleted (an uninstall: every ReservedIP goes with it)"
            ),
            format!("wait until it is gone, then {apply}"),
        );
    }
    let established = installed
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
    if !established {
        return CheckLine::fail(
            CRD,
            format!("CustomResourceDefinition {name} is not Established"),
            format!(
                "kubectl wait --for=condition=Established crd/{name}; kubectl describe crd/{name} says why not"
            ),
        );
    }
    let drift = crd_drift(installed, wanted);
    if drift.is_empty() {
        let versions: Vec<&str> = wanted
            .spec
            .versions
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        CheckLine::ok(
            CRD,
            format!(
                "{name} installed, Established and the same as this build's ({})",
                versions.join(", ")
            ),
        )
    } else {
        CheckLine::fail(
            CRD,
            format!("{name} differs from this build's: {}", drift.join("; ")),
            apply,
        )
    }
}

/// How the installed CRD differs from `wanted` (empty: the same), in the
/// parts the operator and its users depend on: group, scope, names, and per
/// version served/storage, schema, printer columns, selectable fields,
/// subresources. Defaults the API server fills in are normalised first.
pub fn crd_drift(
    installed: &CustomResourceDefinition,
    wanted: &CustomResourceDefinition,
) -> Vec<String> {
    let mut drift = Vec::new();
    let (have, want) = (&installed.spec, &wanted.spec);
    if have.group != want.group {
        drift.push(format!("group {} (want {})", have.group, want.group));
    }
    if have.scope != want.scope {
        drift.push(format!("scope {} (want {})", have.scope, want.scope));
    }
    if names(&have.names) != names(&want.names) {
        drift.push(format!(
            "names {} (want {})",
            names(&have.names),
            names(&want.names)
        ));
    }
    for version in &want.versions {
        match have.versions.iter().find(|v| v.name == version.name) {
            None => drift.push(format!("version {} missing", version.name)),
            Some(installed) => drift.extend(
                version_drift(installed, version)
                    .into_iter()
                    .map(|d| format!("version {}: {d}", version.name)),
            ),
        }
    }
    for version in &have.versions {
        if !want.versions.iter().any(|v| v.name == version.name) {
            drift.push(format!("version {} is not this build's", version.name));
        }
    }
    drift
}

/// Names with the API server's defaults applied (listKind, singular).
fn names(n: &CustomResourceDefinitionNames) -> Value {
    serde_json::json!({
        "kind": n.kind,
        "listKind": n.list_kind.clone().unwrap_or_else(|| format!("{}List", n.kind)),
        "plural": n.plural,
        "singular": n.singular.clone().unwrap_or_else(|| n.kind.to_lowercase()),
        "shortNames": n.short_names.clone().unwrap_or_default(),
        "categories": n.categories.clone().unwrap_or_default(),
    })
}

fn version_drift(
    have: &CustomResourceDefinitionVersion,
    want: &CustomResourceDefinitionVersion,
) -> Vec<String> {
    let mut drift = Vec::new();
    if have.served != want.served {
        drift.push(format!("served {} (want {})", have.served, want.served));
    }
    if have.storage != want.storage {
        drift.push(format!("storage {} (want {})", have.storage, want.storage));
    }
    let schema = |v: &CustomResourceDefinitionVersion| {
        serde_json::to_value(
            v.schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref()),
        )
        .unwrap_or(Value::Null)
    };
    if schema(have) != schema(want) {
        drift.push("schema differs".to_string());
    }
    let columns = |v: &CustomResourceDefinitionVersion| -> Vec<Value> {
        v.additional_printer_columns
            .iter()
            .flatten()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "type": c.type_,
                    "jsonPath": c.json_path,
                    "format": c.format,
                    "description": c.description,
                    // The API server stores an absent priority as absent; 0 is the same.
                    "priority": c.priority.unwrap_or(0),
                })
            })
            .collect()
    };
    if columns(have) != columns(want) {
        let titles = |v: &CustomResourceDefinitionVersion| {
            v.additional_printer_columns
                .iter()
                .flatten()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        drift.push(format!(
            "printer columns [{}] (want [{}])",
            titles(have),
            titles(want)
        ));
    }
    let selectable = |v: &CustomResourceDefinitionVersion| -> Vec<String> {
        v.selectable_fields
            .iter()
            .flatten()
            .map(|f| f.json_path.clone())
            .collect()
    };
    if selectable(have) != selectable(want) {
        drift.push(format!(
            "selectable fields [{}] (want [{}])",
            selectable(have).join(", "),
            selectable(want).join(", ")
        ));
    }
    let subresources = |v: &CustomResourceDefinitionVersion| {
        serde_json::to_value(&v.subresources).unwrap_or(Value::Null)
    };
    if subresources(have) != subresources(want) {
        drift.push("subresources differ".to_string());
    }
    drift
}

/// One SelfSubjectAccessReview per verb of `permission`.
async fn reviews(
    client: &Client,
    permission: &Permission,
) -> Vec<(&'static str, Result<bool, String>)> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let (resource, subresource) = match permission.resource.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (permission.resource, None),
    };
    let mut answers = Vec::new();
    for verb in permission.verbs {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(permission.group.to_string()),
                    resource: Some(resource.to_string()),
                    subresource: subresource.map(str::to_string),
                    verb: Some((*verb).to_string()),
                    namespace: permission.namespace.clone(),
                    name: permission.name.map(str::to_string),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let answer =
            match tokio::time::timeout(STEP_TIMEOUT, api.create(&PostParams::default(), &review))
                .await
            {
                Ok(Ok(done)) => Ok(done.status.is_some_and(|s| s.allowed)),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("timed out".to_string()),
            };
        answers.push((*verb, answer));
    }
    answers
}

/// The RBAC line of one permission from its reviews (verb, allowed?).
pub fn rbac_line(
    permission: &Permission,
    answers: &[(&'static str, Result<bool, String>)],
    who: Option<&str>,
) -> CheckLine {
    let name = permission.check_name();
    let who = who.unwrap_or("the current identity");
    let target = match permission.name {
        Some(object) => format!("{} {object}", permission.resource_label()),
        None => permission.resource_label(),
    };
    if let Some((verb, Err(e))) = answers.iter().find(|(_, a)| a.is_err()) {
        return CheckLine::not_checked(
            name,
            format!("SelfSubjectAccessReview for {verb} failed: {e}"),
        );
    }
    let denied: Vec<&str> = answers
        .iter()
        .filter(|(_, a)| matches!(a, Ok(false)))
        .map(|(verb, _)| *verb)
        .collect();
    if denied.is_empty() {
        return CheckLine::ok(
            name,
            format!(
                "{who} may {} {target} {}, to {}",
                permission.verbs.join(", "),
                permission.scope(),
                permission.why
            ),
        );
    }
    let rule = format!(
        "apiGroups: [\"{}\"], resources: [{}], verbs: [{}]{}",
        permission.group,
        permission.resource,
        denied.join(", "),
        permission
            .name
            .map(|n| format!(", resourceNames: [{n}]"))
            .unwrap_or_default()
    );
    let fix = match &permission.namespace {
        // The role names depend on how the operator was installed (a Helm
        // release names them after itself): say where they come from.
        None => format!(
            "restore the operator's RBAC (`helm upgrade` of its release, whose ClusterRole is named after it; or, for a kubectl install, kubectl apply -f deploy/10-rbac.yaml), or add {{{rule}}} to a ClusterRole bound to {who}"
        ),
        Some(ns) => format!(
            "restore the operator's RBAC (`helm upgrade` of its release, whose leader-election Role lives in the release namespace; or, for a kubectl install, kubectl apply -f deploy/10-rbac.yaml), or add {{{rule}}} to a Role in namespace {ns} bound to {who}"
        ),
    };
    CheckLine::fail(
        name,
        format!(
            "{who} may not {} {target} {}, needed to {}",
            denied.join(", "),
            permission.scope(),
            permission.why
        ),
        fix,
    )
}

#[cfg(test)]
mod tests;
