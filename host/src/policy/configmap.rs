//! Policies from ConfigMaps in the operator's own namespace (tenants cannot
//! create them there), selected by a label. Each ConfigMap is one policy:
//! the module in `binaryData` (`policy.wasm` or `policy.wasm.gz`), the other
//! keys (`order`, `failureMode`, `namespaceSelector`, `settings`) in `data`.
//! A watch on the API server delivers changes within about a second.

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::events::{Event, EventType, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};

use super::engine::PolicyEngine;
use super::registry::{LoadReport, LoadResult};
use super::source::PolicySource;

/// The label that marks a ConfigMap as a policy (any value).
pub const POLICY_LABEL: &str = "oci.k8s.logmein.com/policy";

/// The keys of a ConfigMap as a policy source (`data` as UTF-8 bytes).
pub fn configmap_source(cm: &ConfigMap) -> PolicySource {
    let mut files: BTreeMap<String, Vec<u8>> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    files.extend(
        cm.binary_data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone())),
    );
    PolicySource {
        name: cm.metadata.name.clone().unwrap_or_default(),
        files,
    }
}

/// Watches policy ConfigMaps in `namespace` matching `label_selector` (e.g.
/// [`POLICY_LABEL`]) and keeps `engine` in sync; runs until the task is
/// dropped. Load failures become Warning events on the ConfigMap (the
/// previous version keeps running).
pub async fn watch_configmaps(
    engine: PolicyEngine,
    client: Client,
    namespace: String,
    label_selector: String,
) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    // A recorder per event (crate::events): a new version's event must not
    // become a repeat of the previous version's.
    let recorder = crate::events::Events::new(client, Reporter::from("k8s-oci-operator-policies"));
    let source = format!("configmap:{namespace}");
    let config = watcher::Config::default().labels(&label_selector);
    let mut current: BTreeMap<String, ConfigMap> = BTreeMap::new();
    let mut pending: Option<BTreeMap<String, ConfigMap>> = None;

    // Batches events that arrive together into one sync.
    let mut events = watcher(api, config)
        .backoff(crate::controller::watch_backoff())
        .ready_chunks(64)
        .boxed();
    while let Some(batch) = events.next().await {
        let mut changed = false;
        for event in batch {
            match event {
                Ok(watcher::Event::Apply(cm)) => {
                    current.insert(cm.metadata.name.clone().unwrap_or_default(), cm);
                    changed = true;
                }
                Ok(watcher::Event::Delete(cm)) => {
                    current.remove(cm.metadata.name.as_deref().unwrap_or_default());
                    changed = true;
                }
                Ok(watcher::Event::Init) => pending = Some(BTreeMap::new()),
                Ok(watcher::Event::InitApply(cm)) => {
                    if let Some(pending) = pending.as_mut() {
                        pending.insert(cm.metadata.name.clone().unwrap_or_default(), cm);
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(listed) = pending.take() {
                        current = listed;
                        changed = true;
                    }
                }
                Err(err) => {
                    tracing::warn!(%namespace, error = %err, "policy ConfigMap watch failed; retrying")
                }
            }
        }
        if changed {
            let sources = current.values().map(configmap_source).collect();
            let reports = engine.sync(&source, sources).await;
            for report in reports {
                if let Some(cm) = current.get(&report.policy) {
                    publish(&recorder, cm, &report).await;
                }
            }
        }
    }
}

async fn publish(recorder: &crate::events::Events, cm: &ConfigMap, report: &LoadReport) {
    let (type_, reason, note) = match &report.result {
        LoadResult::Loaded { version } => (
            EventType::Normal,
            "PolicyLoaded",
            format!("policy {} version {version} is active", report.policy),
        ),
        LoadResult::Failed {
            error,
            kept_version,
        } => (
            EventType::Warning,
            "PolicyRefused",
            format!(
                "policy {} refused: {error}; {}",
                report.policy,
                match kept_version {
                    Some(v) => format!("version {v} keeps running"),
                    None => "no version is active".to_string(),
                }
            ),
        ),
        LoadResult::Removed => return,
    };
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "LoadPolicy".into(),
        secondary: None,
    };
    if let Err(err) = recorder.publish(&event, &cm.object_ref(&())).await {
        tracing::warn!(policy = %report.policy, error = %err, "cannot publish policy event");
    }
}
