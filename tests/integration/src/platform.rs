//! What the platform team does around a sandbox: opening doors for a
//! namespace (its annotations), handing an OCI address to it (a tag, as with
//! the OCI CLI), and acting as one of its tenants (impersonation with the
//! recommended tenant Role of `examples/tenant-role.yaml`).

use anyhow::{Context as _, Result};
use k8s_oci_operator::decide::ownership::TAG_CLAIMABLE_BY;
use k8s_oci_operator::oci::{OciNetwork, UpdatePublicIpDetails};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::{OperatorSandbox, repo_root};

impl OperatorSandbox {
    /// Sets (or with `None` removes) an annotation of the sandbox's
    /// namespace, as the platform team grants a namespace more.
    pub async fn grant(&self, annotation: &str, value: Option<&str>) -> Result<()> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let patch = json!({ "metadata": { "annotations": { annotation: value } } });
        namespaces
            .patch(
                self.ns.name(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .with_context(|| format!("annotating namespace {}", self.ns.name()))?;
        Ok(())
    }

    /// Tags public IP `id` claimable by `namespaces`, as the platform team
    /// hands an existing address over (with the OCI CLI or console).
    pub async fn hand_over(&self, id: &str, namespaces: &str) -> Result<()> {
        let oci = self.oci_client()?;
        let ip = oci.get_public_ip(id).await?;
        let mut tags = ip.freeform_tags.clone();
        tags.insert(TAG_CLAIMABLE_BY.to_string(), namespaces.to_string());
        let details = UpdatePublicIpDetails {
            freeform_tags: Some(tags),
            ..Default::default()
        };
        oci.update_public_ip(id, &details, None).await?;
        Ok(())
    }

    /// A client acting as `user`, a tenant bound to the recommended tenant
    /// Role in the sandbox's namespace and nothing else.
    pub async fn tenant_client(&self, user: &str) -> Result<Client> {
        let text = std::fs::read_to_string(repo_root().join("examples/tenant-role.yaml"))?;
        let role: Role = serde_yaml::from_str(&text).context("examples/tenant-role.yaml")?;
        let roles: Api<Role> = self.ns.api();
        let post = PostParams::default();
        if roles.get_opt("reservedip-tenant").await?.is_none() {
            roles.create(&post, &role).await?;
        }
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": { "name": format!("tenant-{user}") },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reservedip-tenant" },
            "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user }]
        }))?;
        let bindings: Api<RoleBinding> = self.ns.api();
        if bindings.get_opt(&format!("tenant-{user}")).await?.is_none() {
            bindings.create(&post, &binding).await?;
        }
        let mut config = kube::Config::infer().await?;
        config.auth_info.impersonate = Some(user.to_string());
        Ok(Client::try_from(config)?)
    }
}
