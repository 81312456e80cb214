//! `kubectl apply -f config/crd/bases` and `kubectl apply -f deploy/` work on
//! the real control plane, and the operator's ServiceAccount gets what it
//! needs and nothing more (checked with SubjectAccessReviews, which is how the
//! API server itself decides).

use anyhow::Result;
use integration_tests::kubectl_apply;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use test_support::client;

const SA: &str = "system:serviceaccount:k8s-oci-operator:k8s-oci-operator";

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
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {
            "user": SA,
            "groups": ["system:serviceaccounts", "system:serviceaccounts:k8s-oci-operator", "system:authenticated"],
            "resourceAttributes": { "verb": verb, "group": group, "resource": resource, "subresource": sub, "namespace": ns.unwrap_or(""), "name": name }
        }
    }))?;
    let answer = api.create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

#[tokio::test]
async fn manifests_apply_and_rbac_is_least_privilege() -> Result<()> {
    kubectl_apply("config/crd/bases")?;
    kubectl_apply("deploy")?;
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
        ("create", "oci.k8s.logmein.com", "reservedips", "", ns),
        ("delete", "oci.k8s.logmein.com", "reservedips", "", ns),
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
