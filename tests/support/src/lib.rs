//! Shared helpers for tests that run on the local control plane.
//!
//! The cluster is the one `make cluster-up` starts; tests find it through
//! `KUBECONFIG` (`source .sandbox/env`). Each test takes its own namespace with
//! [`TestNamespace::create`], so tests run in parallel without seeing each
//! other's objects; the namespace is deleted when the guard is dropped, also
//! when the test panics.

use std::fmt::Debug;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::wait::{Condition, await_condition};
use kube::{Api, Client, Resource};
use serde_json::json;

/// Label on every namespace a test creates, so leftovers are easy to find.
pub const TEST_LABEL: &str = "k8s-oci-operator.test/owned";

/// A client for the local control plane named by `KUBECONFIG`.
pub async fn client() -> Result<Client> {
    if std::env::var_os("KUBECONFIG").is_none() {
        bail!(
            "KUBECONFIG is not set: run `make cluster-up` and `source .sandbox/env` (or use `make test`)"
        );
    }
    let client = Client::try_default()
        .await
        .context("connecting to the cluster named by KUBECONFIG")?;
    client.apiserver_version().await.context(
        "the cluster named by KUBECONFIG does not answer; is `make cluster-up` running?",
    )?;
    Ok(client)
}

/// A namespace owned by one test and deleted when dropped.
pub struct TestNamespace {
    name: String,
    client: Client,
}

impl TestNamespace {
    /// Creates `t-<prefix>-<random>`; `prefix` should name the test.
    pub async fn create(client: &Client, prefix: &str) -> Result<Self> {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let prefix: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        let name = format!("t-{}-{suffix}", prefix.trim_matches('-'));
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": { TEST_LABEL: "true" } }
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating test namespace {name}"))?;
        // Pods are refused until the namespace's default ServiceAccount exists.
        let sa =
            Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), &name);
        wait_until(Duration::from_secs(30), || async {
            Ok(sa.get_opt("default").await?.is_some())
        })
        .await
        .with_context(|| format!("default service account in {name}"))?;
        Ok(Self {
            name,
            client: client.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// An `Api` for a namespaced kind in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let name = self.name.clone();
        with_fresh_client(move |client| async move {
            let _ = Api::<Namespace>::all(client)
                .delete(&name, &DeleteParams::background())
                .await;
        });
    }
}

/// Runs `cleanup` to completion with a client of its own, from any context,
/// including `Drop` of a guard inside a test: Drop cannot await, and blocking
/// the test's runtime there would stall the test client's own background task
/// (a deadlock on a current-thread runtime), so it runs on a thread with its
/// own small runtime. Errors are ignored: cleanup is best effort.
pub fn with_fresh_client<F, Fut>(cleanup: F)
where
    F: FnOnce(Client) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if let Ok(client) = Client::try_default().await {
                cleanup(client).await;
            }
        });
    })
    .join();
}

/// Waits until `condition` holds for the named object, or fails after `timeout`
/// with the object's last state in the error.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    condition: impl Condition<K>,
) -> Result<K>
where
    K: Resource + Clone + Debug + serde::de::DeserializeOwned + Send + 'static,
{
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, condition)).await {
        Ok(Ok(Some(obj))) => Ok(obj),
        Ok(Ok(None)) => bail!("{name} was deleted while waiting"),
        Ok(Err(e)) => Err(e).with_context(|| format!("watching {name}")),
        Err(_) => {
            let last = api.get_opt(name).await.ok().flatten();
            bail!("timed out after {timeout:?} waiting for {name}; last seen: {last:?}")
        }
    }
}

/// Polls `check` every 200 ms until it returns true, or fails after `timeout`.
/// For conditions that span several objects, where a single watch does not fit.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = Some(e),
        }
        if tokio::time::Instant::now() >= deadline {
            return match last_err {
                Some(e) => Err(e.context(format!("condition not met within {timeout:?}"))),
                None => bail!("condition not met within {timeout:?}"),
            };
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
