//! A policy as configured: the keys of its ConfigMap (or the files of its
//! directory) parsed into a [`PolicySpec`]. Pure: no I/O, no compilation.
//!
//! Keys (all but the module optional):
//! - `policy.wasm` or `policy.wasm.gz`: the module (gzip allowed).
//! - `order`: integer, lower runs first (default 0; ties by name).
//! - `failureMode`: `deny` (default) or `allow`: what a failed evaluation means.
//! - `namespaceSelector`: a Kubernetes label selector (YAML or JSON) choosing
//!   the namespaces the policy applies to (default: all).
//! - `settings`: the policy's own settings (YAML or JSON, default `{}`).
//! - `mode`: `enforce` (default) or `audit`: an audited policy is evaluated
//!   and its would-be decision recorded, but never applied.
//! - `sha256`: the expected SHA-256 of the (decompressed) module, hex, as
//!   `sha256sum` prints it; any other module is refused.
//! - `policy.wasm.sig`: an Ed25519 signature of the (decompressed) module,
//!   64 bytes or base64, checked with the operator's trusted keys.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::LoadError;
use super::selector::NamespaceSelector;

pub const KEY_MODULE: &str = "policy.wasm";
pub const KEY_MODULE_GZ: &str = "policy.wasm.gz";
pub const KEY_ORDER: &str = "order";
pub const KEY_FAILURE_MODE: &str = "failureMode";
pub const KEY_NAMESPACE_SELECTOR: &str = "namespaceSelector";
pub const KEY_SETTINGS: &str = "settings";
pub const KEY_MODE: &str = "mode";
pub const KEY_SHA256: &str = "sha256";
pub const KEY_SIGNATURE: &str = "policy.wasm.sig";

/// A policy as read from its source, before parsing: its name and its keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicySource {
    /// The policy's name (ConfigMap name or directory name).
    pub name: String,
    /// Key -> content.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl PolicySource {
    /// SHA-256 over every key and value: a policy is reloaded only when this
    /// changes.
    pub fn digest(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        for (key, value) in &self.files {
            // Lengths first, so ("ab","c") and ("a","bc") hash differently.
            hash.update((key.len() as u64).to_le_bytes());
            hash.update(key.as_bytes());
            hash.update((value.len() as u64).to_le_bytes());
            hash.update(value);
        }
        hash.finalize().into()
    }
}

/// What happens when a policy fails to answer (trap, timeout, bad output).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureMode {
    /// Fail closed: the decision is denied (the safe default).
    #[default]
    Deny,
    /// Fail open: the policy is skipped for this decision.
    Allow,
}

impl fmt::Display for FailureMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureMode::Deny => "deny",
            FailureMode::Allow => "allow",
        })
    }
}

/// Whether a policy's decisions are applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// Decisions count (the default).
    #[default]
    Enforce,
    /// Evaluated and recorded (status, metrics), never applied: for rolling
    /// a policy out and seeing what it would do first.
    Audit,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        })
    }
}

/// A parsed, validated policy configuration (the module not yet compiled).
#[derive(Clone, Debug)]
pub struct PolicySpec {
    pub name: String,
    pub order: i32,
    pub failure_mode: FailureMode,
    pub mode: Mode,
    pub selector: NamespaceSelector,
    /// Compact JSON, spliced into every request as-is.
    pub settings: String,
    /// The module bytes as configured (possibly gzip-compressed).
    pub module: Vec<u8>,
    /// The module's pinned SHA-256 (lowercase hex), if any.
    pub expected_sha256: Option<String>,
    /// The module's signature as configured, if any.
    pub signature: Option<Vec<u8>>,
}

/// Parses a source; `max_module_bytes` caps the (compressed) module size.
pub fn parse(source: &PolicySource, max_module_bytes: usize) -> Result<PolicySpec, LoadError> {
    let config = |msg: String| LoadError::Config(msg);
    if let Some(unknown) = source.files.keys().find(|k| {
        ![
            KEY_MODULE,
            KEY_MODULE_GZ,
            KEY_ORDER,
            KEY_FAILURE_MODE,
            KEY_NAMESPACE_SELECTOR,
            KEY_SETTINGS,
            KEY_MODE,
            KEY_SHA256,
            KEY_SIGNATURE,
        ]
        .contains(&k.as_str())
    }) {
        // A typo (`failuremode`) must not silently fall back to a default.
        return Err(config(format!("unknown key `{unknown}`")));
    }
    let text = |key: &str| -> Result<Option<&str>, LoadError> {
        source
            .files
            .get(key)
            .map(|v| {
                std::str::from_utf8(v)
                    .map(str::trim)
                    .map_err(|_| config(format!("`{key}` is not UTF-8")))
            })
            .transpose()
    };

    let module = match (
        source.files.get(KEY_MODULE),
        source.files.get(KEY_MODULE_GZ),
    ) {
        (Some(_), Some(_)) => return Err(LoadError::TwoModules),
        (Some(m), None) | (None, Some(m)) => m,
        (None, None) => return Err(LoadError::NoModule),
    };
    if module.len() > max_module_bytes {
        return Err(LoadError::TooLarge {
            size: module.len(),
            cap: max_module_bytes,
        });
    }

    let order = match text(KEY_ORDER)? {
        None | Some("") => 0,
        Some(s) => s
            .parse()
            .map_err(|_| config(format!("`order` must be an integer, not `{s}`")))?,
    };
    let failure_mode = match text(KEY_FAILURE_MODE)? {
        None | Some("") | Some("deny") => FailureMode::Deny,
        Some("allow") => FailureMode::Allow,
        Some(other) => {
            return Err(config(format!(
                "`failureMode` must be deny or allow, not `{other}`"
            )));
        }
    };
    let mode = match text(KEY_MODE)? {
        None | Some("") | Some("enforce") => Mode::Enforce,
        Some("audit") => Mode::Audit,
        Some(other) => {
            return Err(config(format!(
                "`mode` must be enforce or audit, not `{other}`"
            )));
        }
    };
    let expected_sha256 = match text(KEY_SHA256)? {
        None | Some("") => None,
        // `sha256sum` prints "<hex>  <file>"; the hex is what counts.
        Some(s) => {
            let hex = s.split_whitespace().next().unwrap_or_default();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(config(format!(
                    "`sha256` must be 64 hex digits (sha256sum policy.wasm), not `{s}`"
                )));
            }
            Some(hex.to_ascii_lowercase())
        }
    };
    let signature = source.files.get(KEY_SIGNATURE).cloned();
    let selector = match text(KEY_NAMESPACE_SELECTOR)? {
        None | Some("") => NamespaceSelector::default(),
        Some(s) => {
            let selector: LabelSelector =
                serde_yaml::from_str(s).map_err(|e| config(format!("`namespaceSelector`: {e}")))?;
            NamespaceSelector::new(selector)
                .map_err(|e| config(format!("`namespaceSelector`: {e}")))?
        }
    };
    let settings = match text(KEY_SETTINGS)? {
        None | Some("") => "{}".to_string(),
        Some(s) => {
            // YAML is a superset of JSON, so either is accepted.
            let value: serde_json::Value =
                serde_yaml::from_str(s).map_err(|e| config(format!("`settings`: {e}")))?;
            serde_json::to_string(&value).map_err(|e| config(format!("`settings`: {e}")))?
        }
    };
    Ok(PolicySpec {
        name: source.name.clone(),
        order,
        failure_mode,
        mode,
        selector,
        settings,
        module: module.clone(),
        expected_sha256,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(pairs: &[(&str, &[u8])]) -> PolicySource {
        PolicySource {
            name: "p".into(),
            files: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
        }
    }

    #[test]
    fn defaults_and_full_configuration() {
        let spec = parse(&source(&[(KEY_MODULE, b"\0asm")]), 100).expect("parses");
        assert_eq!((spec.order, spec.failure_mode), (0, FailureMode::Deny));
        assert_eq!(spec.settings, "{}");

        let spec = parse(
            &source(&[
                (KEY_MODULE_GZ, b"gz"),
                (KEY_ORDER, b" -5\n"),
                (KEY_FAILURE_MODE, b"allow"),
                (KEY_NAMESPACE_SELECTOR, b"matchLabels: {a: b}"),
                (KEY_SETTINGS, b"pools:\n  a: b\n"),
                (KEY_MODE, b"audit\n"),
                (
                    KEY_SHA256,
                    format!("{}  policy.wasm\n", "AB".repeat(32)).as_bytes(),
                ),
                (KEY_SIGNATURE, b"c2ln"),
            ]),
            100,
        )
        .expect("parses");
        assert_eq!((spec.order, spec.failure_mode), (-5, FailureMode::Allow));
        assert_eq!(spec.mode, Mode::Audit);
        assert_eq!(spec.expected_sha256, Some("ab".repeat(32)));
        assert_eq!(spec.signature.as_deref(), Some(&b"c2ln"[..]));
        assert_eq!(spec.settings, r#"{"pools":{"a":"b"}}"#);
        assert_eq!(spec.module, b"gz");
    }

    #[test]
    fn configuration_mistakes_are_reported() {
        let cases: Vec<(PolicySource, &str)> = vec![
            (source(&[]), "no module"),
            (source(&[(KEY_MODULE, b"a"), (KEY_MODULE_GZ, b"b")]), "both"),
            (source(&[(KEY_MODULE, &[0; 101])]), "over the limit"),
            (
                source(&[(KEY_MODULE, b"a"), ("failuremode", b"x")]),
                "unknown key",
            ),
            (
                source(&[(KEY_MODULE, b"a"), (KEY_ORDER, b"first")]),
                "integer",
            ),
            (
                source(&[(KEY_MODULE, b"a"), (KEY_FAILURE_MODE, b"ignore")]),
                "deny or allow",
            ),
            (
                source(&[(KEY_MODULE, b"a"), (KEY_MODE, b"dry-run")]),
                "enforce or audit",
            ),
            (
                source(&[(KEY_MODULE, b"a"), (KEY_SHA256, b"abc")]),
                "64 hex digits",
            ),
            (
                source(&[(KEY_MODULE, b"a"), (KEY_SETTINGS, b"{")]),
                "settings",
            ),
            (
                source(&[
                    (KEY_MODULE, b"a"),
                    (
                        KEY_NAMESPACE_SELECTOR,
                        b"matchExpressions: [{key: a, operator: Nope}]",
                    ),
                ]),
                "unknown selector operator",
            ),
        ];
        for (src, expected) in cases {
            let err = parse(&src, 100).expect_err(expected).to_string();
            assert!(err.contains(expected), "{err} should mention {expected}");
        }
    }

    #[test]
    fn digest_changes_with_any_key() {
        let a = source(&[(KEY_MODULE, b"a"), (KEY_ORDER, b"1")]);
        let b = source(&[(KEY_MODULE, b"a"), (KEY_ORDER, b"2")]);
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest(), a.clone().digest());
    }
}
