//! What the platform team does around a sandbox: opening doors for a
//! namespace (its annotations), handing an OCI address to it (a tag, as with
//! the OCI CLI), and acting as one of its tenants (impersonation with the
//! recommended tenant Role of `examples/tenant-role.yaml`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use k8s_oci_operator::decide::ownership::TAG_CLAIMABLE_BY;
use k8s_oci_operator::oci::{OciNetwork, UpdatePublicIpDetails};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use test_support::wait_until;

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
        let mut tags = self.oci_client()?.get_public_ip(id).await?.freeform_tags;
        tags.insert(TAG_CLAIMABLE_BY.to_string(), namespaces.to_string());
        self.tamper(id, tags, false).await
    }

    /// Changes public IP `id` outside the operator, as anyone with OCI
    /// access could: sets its tags, and unassigns it when asked.
    pub async fn tamper(
        &self,
        id: &str,
        tags: BTreeMap<String, String>,
        unassign: bool,
    ) -> Result<()> {
        let base = if unassign {
            UpdatePublicIpDetails::unassign()
        } else {
            UpdatePublicIpDetails::default()
        };
        let details = UpdatePublicIpDetails {
            freeform_tags: Some(tags),
            ..base
        };
        self.oci_client()?
            .update_public_ip(id, &details, None)
            .await?;
        Ok(())
    }

    /// Deletes the ephemeral public IP of node1's primary private IP (the
    /// node's own address) and waits until OCI no longer lists it.
    pub async fn remove_node1_ephemeral_ip(&self) -> Result<()> {
        let ip = self
            .public_ips()
            .into_iter()
            .find(|ip| {
                ip["lifetime"] == "EPHEMERAL"
                    && ip["assignedEntityId"] == "ocid1.privateip.oc1.sandbox.node1-primary"
            })
            .context("node1's ephemeral IP")?;
        let id = ip["id"].as_str().unwrap_or_default();
        self.oci_client()?.delete_public_ip(id, None).await?;
        // Terminated IPs vanish from the listing shortly after.
        wait_until(Duration::from_secs(30), || async {
            Ok(self.public_ip(id).is_none())
        })
        .await
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
