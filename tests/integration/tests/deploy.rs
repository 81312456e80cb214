//! `kubectl apply -f config/crd/bases` and `kubectl apply -f deploy/` work on
//! the real control plane, and the operator's ServiceAccount gets what it
//! needs and nothing more (checked with SubjectAccessReviews, which is how the
//! API server itself decides). The users' roles give what they say: reading
//! ReservedIPs to whoever may read the namespace, writing them only where the
//! edit role is bound.

use anyhow::Result;
use integration_tests::kubectl_apply;
use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use test_support::{TestNamespace, client};

const SA: &str = "system:serviceaccount:k8s-oci-operator:k8s-oci-operator";

/// `kubectl apply` of the CRD and `deploy/`, one test at a time (two
/// concurrent first applies would both try to create).
fn apply_manifests() -> Result<()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    kubectl_apply("config/crd/bases")?;
    kubectl_apply("deploy")
}

async fn allowed(
    api: &Api<SubjectAccessReview>,
    verb: &str,
    group: &str,
    resource: &str,
    sub: &str,
    ns: Option<&str>,
) -> Result<bool> {
    allowed_named(api, verb, group, resource, sub, ns, "").await
}

async fn allowed_named(
    api: &Api<SubjectAccessReview>,
    verb: &str,
    group: &str,
    resource: &str,
    sub: &str,
    ns: Option<&str>,
    name: &str,
) -> Result<bool> {
    let groups = [
        "system:serviceaccounts",
        "system:serviceaccounts:k8s-oci-operator",
        "system:authenticated",
    ];
    may(api, (SA, &groups), verb, group, (resource, sub), ns, name).await
}

/// Whether `who` (user, groups) may `verb` `resource`/`sub` of `group`.
async fn may(
    api: &Api<SubjectAccessReview>,
    (user, groups): (&str, &[&str]),
    verb: &str,
    group: &str,
    (resource, sub): (&str, &str),
    ns: Option<&str>,
    name: &str,
) -> Result<bool> {
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {
            "user": user,
            "groups": groups,
            "resourceAttributes": { "verb": verb, "group": group, "resource": resource, "subresource": sub, "namespace": ns.unwrap_or(""), "name": name }
        }
    }))?;
    let answer = api.create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

#[tokio::test]
async fn manifests_apply_and_rbac_is_least_privilege() -> Result<()> {
    apply_manifests()?;
    let reviews: Api<SubjectAccessReview> = Api::all(client().await?);
    let ns = Some("tenant-a");
    let op = Some("k8s-oci-operator");
    let must = [
        ("watch", "oci.k8s.logmein.com", "reservedips", "", ns),
        ("patch", "oci.k8s.logmein.com", "reservedips", "", ns),
        ("patch", "oci.k8s.logmein.com", "reservedips", "status", ns),
        (
            "update",
            "oci.k8s.logmein.com",
            "reservedips",
            "finalizers",
            ns,
        ),
        ("get", "", "pods", "", ns),
        ("watch", "", "pods", "", ns),
        ("get", "", "nodes", "", None),
        ("create", "events.k8s.io", "events", "", ns),
        ("update", "coordination.k8s.io", "leases", "", op),
        ("watch", "", "configmaps", "", op),
        ("get", "", "namespaces", "", None),
        // ReservedIPs for labelled workloads (workloadIPs.enabled, the default).
        ("create", "oci.k8s.logmein.com", "reservedips", "", ns),
        ("delete", "oci.k8s.logmein.com", "reservedips", "", ns),
        ("patch", "", "pods", "", ns),
        ("patch", "", "pods", "status", ns),
        ("watch", "apps", "statefulsets", "", ns),
    ];
    for (verb, group, resource, sub, ns) in must {
        assert!(
            allowed(&reviews, verb, group, resource, sub, ns).await?,
            "the operator needs {verb} {resource}/{sub} in {ns:?}"
        );
    }
    let must_not = [
        ("get", "", "secrets", "", ns),
        ("list", "", "secrets", "", None),
        ("get", "", "configmaps", "", ns),
        ("delete", "", "pods", "", ns),
        ("update", "", "pods", "", ns),
        ("create", "", "pods", "", ns),
        ("update", "apps", "statefulsets", "", ns),
        ("update", "", "nodes", "", None),
        ("list", "", "nodes", "", None),
        ("update", "coordination.k8s.io", "leases", "", ns),
        ("create", "rbac.authorization.k8s.io", "roles", "", ns),
    ];
    // Its own CRD only, and only to read whether it is being deleted.
    let crds = ("apiextensions.k8s.io", "customresourcedefinitions");
    assert!(
        allowed_named(
            &reviews,
            "get",
            crds.0,
            crds.1,
            "",
            None,
            "reservedips.oci.k8s.logmein.com"
        )
        .await?,
        "the operator needs to read its CRD"
    );
    for (verb, name) in [
        ("get", "other.example.com"),
        ("list", ""),
        ("delete", "reservedips.oci.k8s.logmein.com"),
    ] {
        assert!(
            !allowed_named(&reviews, verb, crds.0, crds.1, "", None, name).await?,
            "the operator must not {verb} CRD {name:?}"
        );
    }
    for (verb, group, resource, sub, ns) in must_not {
        assert!(
            !allowed(&reviews, verb, group, resource, sub, ns).await?,
            "the operator must not {verb} {resource}/{sub} in {ns:?}"
        );
    }
    Ok(())
}

/// Whether `user` may `verb` ReservedIPs (`sub`: a subresource or "") in `ns`.
async fn user_may(
    api: &Api<SubjectAccessReview>,
    user: &str,
    verb: &str,
    sub: &str,
    ns: &str,
) -> Result<bool> {
    let groups = ["system:authenticated"];
    let rips = ("reservedips", sub);
    may(
        api,
        (user, &groups),
        verb,
        "oci.k8s.logmein.com",
        rips,
        Some(ns),
        "",
    )
    .await
}

#[tokio::test]
async fn users_read_reservedips_with_view_and_write_them_only_where_edit_is_bound() -> Result<()> {
    apply_manifests()?;
    let client = client().await?;
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let namespace = TestNamespace::create(&client, "user-roles").await?;
    let (ns, other) = (namespace.name(), "user-roles-elsewhere");
    let bindings: Api<RoleBinding> = Api::namespaced(client, ns);
    for (name, role, user) in [
        ("viewer", "view", "vera"),
        ("editor", "edit", "ed"),
        ("rips", "k8s-oci-operator-reservedips-edit", "rita"),
    ] {
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }))?;
        bindings.create(&PostParams::default(), &binding).await?;
    }
    // Kubernetes' view/edit/admin take in the aggregated rules a moment
    // after the ClusterRole appears (kube-controller-manager's doing).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(user_may(&reviews, "vera", "list", "", ns).await?
        && user_may(&reviews, "ed", "list", "", ns).await?)
    {
        assert!(
            Instant::now() < deadline,
            "view and edit never took in the ReservedIP view role"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for user in ["vera", "ed", "rita"] {
        for verb in ["get", "list", "watch"] {
            assert!(
                user_may(&reviews, user, verb, "", ns).await?,
                "{user} may {verb}"
            );
        }
        assert!(
            !user_may(&reviews, user, "get", "", other).await?,
            "{user} may read another namespace's ReservedIPs"
        );
        for verb in ["patch", "update"] {
            assert!(
                !user_may(&reviews, user, verb, "status", ns).await?,
                "{user} may {verb} status, which is the operator's"
            );
        }
    }
    // Namespace editors get no public IPs unless the edit role is bound.
    for verb in ["create", "patch", "delete"] {
        assert!(
            !user_may(&reviews, "vera", verb, "", ns).await?,
            "vera may {verb}"
        );
        assert!(
            !user_may(&reviews, "ed", verb, "", ns).await?,
            "ed may {verb}"
        );
        assert!(
            user_may(&reviews, "rita", verb, "", ns).await?,
            "rita may not {verb}"
        );
        assert!(
            !user_may(&reviews, "rita", verb, "", other).await?,
            "rita may {verb} where her role is not bound"
        );
    }
    let ns_group = ("", "namespaces");
    assert!(
        !may(
            &reviews,
            ("rita", &["system:authenticated"]),
            "patch",
            ns_group.0,
            (ns_group.1, ""),
            None,
            ns
        )
        .await?,
        "rita may change her Namespace's grants"
    );
    Ok(())
}
