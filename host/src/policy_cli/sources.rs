//! Where `policy eval` and `policy test` find policies: ConfigMap manifests
//! (YAML or JSON, several documents or a `List` per file), directories of
//! them, or a directory in the operator's `--policy-dir` layout. ConfigMaps
//! become policy sources with the function the operator's watcher uses, and
//! only those carrying the policy label count, as in the cluster.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ConfigMap;
use serde::Deserialize;

use super::PolicyCliError;
use crate::policy::PolicySource;
use crate::policy::configmap::{POLICY_LABEL, configmap_source};
use crate::policy::directory::read_policies;

/// Policies read from the given paths, and what was passed over and why.
#[derive(Debug, Default)]
pub struct Found {
    pub policies: Vec<PolicySource>,
    /// One line per document that is not a policy ConfigMap.
    pub skipped: Vec<String>,
}

/// Reads every policy under `paths`. `max_file_bytes` caps a module file of
/// the directory layout as the operator does.
pub fn read(paths: &[PathBuf], max_file_bytes: usize) -> Result<Found, PolicyCliError> {
    let mut found = Found::default();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| read_error(path, e))?;
        if !meta.is_dir() {
            read_manifest_file(path, &mut found)?;
        } else if is_policy_dir_layout(path)? {
            found
                .policies
                .extend(read_policies(path, max_file_bytes + 1).map_err(|e| read_error(path, e))?);
        } else {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| read_error(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
                })
                .collect();
            files.sort();
            for file in files {
                read_manifest_file(&file, &mut found)?;
            }
        }
    }
    let mut names: Vec<&str> = found.policies.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(PolicyCliError::Input(format!(
            "two policies are named {}; in one namespace ConfigMap names are unique",
            pair[0]
        )));
    }
    Ok(found)
}

fn read_error(path: &Path, err: std::io::Error) -> PolicyCliError {
    PolicyCliError::Read(path.display().to_string(), err)
}

/// The `--policy-dir` layout: subdirectories holding a module.
fn is_policy_dir_layout(dir: &Path) -> Result<bool, PolicyCliError> {
    for entry in std::fs::read_dir(dir).map_err(|e| read_error(dir, e))? {
        let path = entry.map_err(|e| read_error(dir, e))?.path();
        if path.join("policy.wasm").exists() || path.join("policy.wasm.gz").exists() {
            return Ok(true);
        }
    }
    Ok(false)
}

fn read_manifest_file(path: &Path, found: &mut Found) -> Result<(), PolicyCliError> {
    let text = std::fs::read_to_string(path).map_err(|e| read_error(path, e))?;
    for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let value = serde_yaml::Value::deserialize(document)
            .map_err(|e| PolicyCliError::Input(format!("{}: {e}", path.display())))?;
        if value.is_null() {
            continue;
        }
        let at = format!("{} (document {})", path.display(), index + 1);
        add_object(value, &at, found)?;
    }
    Ok(())
}

fn add_object(value: serde_yaml::Value, at: &str, found: &mut Found) -> Result<(), PolicyCliError> {
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default();
    match kind {
        "List" | "ConfigMapList" => {
            let items = value
                .get("items")
                .and_then(|i| i.as_sequence())
                .cloned()
                .unwrap_or_default();
            for item in items {
                add_object(item, at, found)?;
            }
        }
        "ConfigMap" => {
            let cm: ConfigMap = serde_yaml::from_value(value)
                .map_err(|e| PolicyCliError::Input(format!("{at}: not a valid ConfigMap: {e}")))?;
            let name = cm.metadata.name.clone().unwrap_or_default();
            let labelled = cm
                .metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(POLICY_LABEL));
            if labelled {
                found.policies.push(configmap_source(&cm));
            } else {
                found.skipped.push(format!(
                    "{at}: ConfigMap {name} has no `{POLICY_LABEL}` label; the operator would not load it"
                ));
            }
        }
        other => found
            .skipped
            .push(format!("{at}: a {other} is not a policy ConfigMap")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configmaps_lists_and_unlabelled_documents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("policies.yaml");
        std::fs::write(
            &file,
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: a, labels: {oci.k8s.logmein.com/policy: "true"}}
binaryData: {policy.wasm: AGFzbQEAAAA=}
data: {order: "2", mode: audit}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: b, labels: {oci.k8s.logmein.com/policy: ""}}
  data: {order: "1"}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: c}
---
apiVersion: v1
kind: Secret
metadata: {name: s}
"#,
        )
        .expect("write");
        let found = read(&[dir.path().to_path_buf()], 1 << 20).expect("reads");
        let names: Vec<&str> = found.policies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(found.policies[0].files["policy.wasm"], b"\0asm\x01\0\0\0");
        assert_eq!(found.policies[0].files["mode"], b"audit");
        assert_eq!(found.skipped.len(), 2, "{:?}", found.skipped);
        assert!(found.skipped[0].contains("ConfigMap c has no"));

        // The same file twice: duplicate names are refused.
        let err = read(&[file.clone(), file], 1 << 20).expect_err("duplicates");
        assert!(
            err.to_string().contains("two policies are named a"),
            "{err}"
        );
    }

    #[test]
    fn the_policy_dir_layout_is_read_like_the_operator_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let policy = dir.path().join("only-labelled");
        std::fs::create_dir(&policy).expect("mkdir");
        std::fs::write(policy.join("policy.wasm"), b"\0asm\x01\0\0\0").expect("write");
        std::fs::write(policy.join("order"), b"3").expect("write");
        let found = read(&[dir.path().to_path_buf()], 1 << 20).expect("reads");
        assert_eq!(found.policies.len(), 1);
        assert_eq!(found.policies[0].name, "only-labelled");
        assert_eq!(found.policies[0].files["order"], b"3");
    }
}
