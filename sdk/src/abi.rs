//! The policy ABI, version 1: the JSON documents exchanged between the
//! operator (the host) and a policy module (the guest), and the names of the
//! functions a module exports. `sdk/ABI.md` describes the calling convention;
//! `sdk/schema/` holds the JSON Schemas generated from these types.
//!
//! These types are the single source of truth: the host deserialises what a
//! policy returns with exactly the types a Rust policy serialises.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The ABI version this SDK speaks. A module exports it from
/// `policy_abi_version`; the host refuses versions it does not know.
///
/// ```
/// assert_eq!(k8s_oci_operator_policy_sdk::ABI_VERSION, 1);
/// ```
pub const ABI_VERSION: u32 = 1;

/// Names of the functions a policy module exports (see `sdk/ABI.md`).
///
/// ```
/// use k8s_oci_operator_policy_sdk::exports;
/// assert_eq!(exports::EVALUATE, "policy_evaluate");
/// ```
pub mod exports {
    /// `() -> i32`: the ABI version the module speaks.
    pub const ABI_VERSION: &str = "policy_abi_version";
    /// `() -> i32`: bit mask of the decisions the module implements
    /// (bit `n` set for [`DecisionKind`](super::DecisionKind) `n`).
    pub const DECISIONS: &str = "policy_decisions";
    /// `(len: i32) -> i32`: a buffer of `len` bytes for the input document.
    pub const ALLOC: &str = "policy_alloc";
    /// `(kind: i32, ptr: i32, len: i32) -> i64`: evaluate; returns the output
    /// document's address in the high 32 bits and its length in the low 32.
    pub const EVALUATE: &str = "policy_evaluate";
    /// The module's linear memory.
    pub const MEMORY: &str = "memory";
}

/// Which question the host asks; passed as the first argument of
/// `policy_evaluate`.
///
/// ```
/// use k8s_oci_operator_policy_sdk::DecisionKind;
/// assert_eq!(DecisionKind::from_code(2), Some(DecisionKind::SelectPool));
/// assert_eq!(DecisionKind::SelectPool.bit(), 0b100);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum DecisionKind {
    /// Are these settings valid? Asked once when the policy is loaded.
    ValidateSettings = 0,
    /// Which tags should a ReservedIP's public IP carry?
    TagDefaults = 1,
    /// Which pool should a ReservedIP allocate from?
    SelectPool = 2,
    /// May this ReservedIP be assigned to this target?
    Eligibility = 3,
}

impl DecisionKind {
    /// Every kind, in code order.
    ///
    /// ```
    /// use k8s_oci_operator_policy_sdk::DecisionKind;
    /// assert_eq!(DecisionKind::ALL.len(), 4);
    /// ```
    pub const ALL: [DecisionKind; 4] = [
        DecisionKind::ValidateSettings,
        DecisionKind::TagDefaults,
        DecisionKind::SelectPool,
        DecisionKind::Eligibility,
    ];

    /// The numeric code passed to `policy_evaluate`.
    ///
    /// ```
    /// use k8s_oci_operator_policy_sdk::DecisionKind;
    /// assert_eq!(DecisionKind::Eligibility.code(), 3);
    /// ```
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The bit of this kind in the `policy_decisions` mask.
    ///
    /// ```
    /// use k8s_oci_operator_policy_sdk::DecisionKind;
    /// assert_eq!(DecisionKind::TagDefaults.bit(), 2);
    /// ```
    pub const fn bit(self) -> u32 {
        1 << self as u32
    }

    /// The kind for a numeric code, if there is one.
    ///
    /// ```
    /// use k8s_oci_operator_policy_sdk::DecisionKind;
    /// assert_eq!(DecisionKind::from_code(9), None);
    /// ```
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(DecisionKind::ValidateSettings),
            1 => Some(DecisionKind::TagDefaults),
            2 => Some(DecisionKind::SelectPool),
            3 => Some(DecisionKind::Eligibility),
            _ => None,
        }
    }
}

/// The namespace a ReservedIP lives in.
///
/// ```
/// use k8s_oci_operator_policy_sdk::Namespace;
/// let ns = Namespace::new("shop").with_label("team", "payments");
/// assert_eq!(ns.label("team"), Some("payments"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    /// The namespace's name.
    pub name: String,
    /// The namespace's labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Namespace {
    /// A namespace without labels.
    ///
    /// ```
    /// assert!(k8s_oci_operator_policy_sdk::Namespace::new("a").labels.is_empty());
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Namespace {
            name: name.into(),
            labels: BTreeMap::new(),
        }
    }

    /// Adds a label (builder style, handy in tests).
    ///
    /// ```
    /// let ns = k8s_oci_operator_policy_sdk::Namespace::new("a").with_label("x", "y");
    /// assert_eq!(ns.labels.len(), 1);
    /// ```
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The value of a label.
    ///
    /// ```
    /// let ns = k8s_oci_operator_policy_sdk::Namespace::new("a");
    /// assert_eq!(ns.label("team"), None);
    /// ```
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// The ReservedIP a decision is about.
///
/// ```
/// use k8s_oci_operator_policy_sdk::ReservedIp;
/// let rip = ReservedIp::new("web", "shop").with_tag("owner", "me");
/// assert_eq!(rip.spec.tags["owner"], "me");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReservedIp {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The spec as the user wrote it.
    #[serde(default)]
    pub spec: ReservedIpSpec,
}

impl ReservedIp {
    /// A ReservedIP with an empty spec.
    ///
    /// ```
    /// let rip = k8s_oci_operator_policy_sdk::ReservedIp::new("web", "shop");
    /// assert_eq!(rip.namespace, "shop");
    /// ```
    pub fn new(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        ReservedIp {
            name: name.into(),
            namespace: namespace.into(),
            ..ReservedIp::default()
        }
    }

    /// Adds a user tag to the spec (builder style).
    ///
    /// ```
    /// let rip = k8s_oci_operator_policy_sdk::ReservedIp::new("a", "b").with_tag("k", "v");
    /// assert_eq!(rip.spec.tags.len(), 1);
    /// ```
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.tags.insert(key.into(), value.into());
        self
    }

    /// Sets `spec.publicIPv4Pool` (builder style).
    ///
    /// ```
    /// let rip = k8s_oci_operator_policy_sdk::ReservedIp::new("a", "b").with_pool("ocid1.publicippool.oc1..x");
    /// assert!(rip.spec.public_ipv4_pool.is_some());
    /// ```
    pub fn with_pool(mut self, pool: impl Into<String>) -> Self {
        self.spec.public_ipv4_pool = Some(pool.into());
        self
    }
}

/// The fields of a ReservedIP's spec that policies commonly read; fields the
/// operator adds later arrive in [`ReservedIpSpec::other`].
///
/// ```
/// let spec: k8s_oci_operator_policy_sdk::ReservedIpSpec =
///     serde_json::from_str(r#"{"tags":{"a":"b"},"reclaimPolicy":"Retain"}"#).unwrap();
/// assert_eq!(spec.other["reclaimPolicy"], "Retain");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReservedIpSpec {
    /// The user's freeform tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// `publicIPv4Pool`: the pool the user asked for, if any.
    #[serde(
        default,
        rename = "publicIPv4Pool",
        skip_serializing_if = "Option::is_none"
    )]
    pub public_ipv4_pool: Option<String>,
    /// `publicIPv4Address`: an existing address to take over, if any.
    #[serde(
        default,
        rename = "publicIPv4Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub public_ipv4_address: Option<String>,
    /// Where the user wants the public IP assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<Value>,
    /// Every other spec field, as JSON.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Input of [`DecisionKind::ValidateSettings`].
///
/// ```
/// let req = k8s_oci_operator_policy_sdk::ValidateSettingsRequest { settings: serde_json::json!({}) };
/// assert!(req.settings.is_object());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ValidateSettingsRequest {
    /// The policy's settings as configured by the operator's administrator.
    #[serde(default)]
    pub settings: Value,
}

/// Input of [`DecisionKind::TagDefaults`].
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// let req = TagDefaultsRequest {
///     settings: serde_json::json!({}),
///     reserved_ip: ReservedIp::new("web", "shop"),
///     namespace: Namespace::new("shop"),
/// };
/// assert_eq!(req.namespace.name, "shop");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TagDefaultsRequest {
    /// The policy's settings.
    #[serde(default)]
    pub settings: Value,
    /// The ReservedIP.
    #[serde(rename = "reservedIP")]
    pub reserved_ip: ReservedIp,
    /// Its namespace.
    pub namespace: Namespace,
}

/// Input of [`DecisionKind::SelectPool`].
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// let req = SelectPoolRequest {
///     settings: serde_json::json!({}),
///     reserved_ip: ReservedIp::new("web", "shop"),
///     namespace: Namespace::new("shop"),
///     allowed_pools: Some(vec!["ocid1.publicippool.oc1..a".into()]),
/// };
/// assert!(req.pool_allowed("ocid1.publicippool.oc1..a"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SelectPoolRequest {
    /// The policy's settings.
    #[serde(default)]
    pub settings: Value,
    /// The ReservedIP.
    #[serde(rename = "reservedIP")]
    pub reserved_ip: ReservedIp,
    /// Its namespace.
    pub namespace: Namespace,
    /// The pools the operator may allocate from; `null` means any pool.
    /// A policy that chooses a pool outside this list fails validation.
    #[serde(default)]
    pub allowed_pools: Option<Vec<String>>,
}

impl SelectPoolRequest {
    /// Whether the operator accepts `pool` as a choice.
    ///
    /// ```
    /// let req = k8s_oci_operator_policy_sdk::SelectPoolRequest::default();
    /// assert!(req.pool_allowed("anything")); // no list: any pool
    /// ```
    pub fn pool_allowed(&self, pool: &str) -> bool {
        self.allowed_pools
            .as_ref()
            .is_none_or(|pools| pools.iter().any(|p| p == pool))
    }
}

/// Input of [`DecisionKind::Eligibility`].
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// let req = EligibilityRequest {
///     settings: serde_json::json!({}),
///     reserved_ip: ReservedIp::new("web", "shop"),
///     namespace: Namespace::new("shop"),
///     target: Target::pod("web-0"),
/// };
/// assert!(matches!(req.target, Target::Pod { .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct EligibilityRequest {
    /// The policy's settings.
    #[serde(default)]
    pub settings: Value,
    /// The ReservedIP.
    #[serde(rename = "reservedIP")]
    pub reserved_ip: ReservedIp,
    /// Its namespace.
    pub namespace: Namespace,
    /// What the public IP would be assigned to.
    pub target: Target,
}

/// The target of an assignment.
///
/// ```
/// use k8s_oci_operator_policy_sdk::Target;
/// let t: Target = serde_json::from_str(r#"{"kind":"privateIP","address":"10.0.0.5"}"#).unwrap();
/// assert_eq!(t, Target::PrivateIp {
///     address: Some("10.0.0.5".into()),
///     id: None,
///     subnet_id: None,
///     pod_namespace: None,
///     node_ip: false,
/// });
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind")]
pub enum Target {
    /// A pod in the ReservedIP's namespace.
    #[serde(rename = "pod", rename_all = "camelCase")]
    Pod {
        /// The pod's name.
        name: String,
        /// The pod's labels.
        #[serde(default)]
        labels: BTreeMap<String, String>,
        /// The node the pod runs on, once scheduled.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node_name: Option<String>,
        /// The pod uses its node's own network (and IP). Reaches a policy
        /// only where the platform team allowed node IPs.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        host_network: bool,
    },
    /// A private IP in the VCN.
    #[serde(rename = "privateIP", rename_all = "camelCase")]
    PrivateIp {
        /// The private address, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        /// The private IP's OCID, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The subnet's OCID, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subnet_id: Option<String>,
        /// Whose the address is: the namespace of the pod that holds it now
        /// (always the ReservedIP's own: the operator refuses another's
        /// before asking), or none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pod_namespace: Option<String>,
        /// It is a node's own IP (its VNIC's primary IP). Reaches a policy
        /// only where the platform team allowed node IPs.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        node_ip: bool,
    },
}

impl Target {
    /// A pod target without labels or node.
    ///
    /// ```
    /// let t = k8s_oci_operator_policy_sdk::Target::pod("web-0");
    /// assert_eq!(t.pod_label("app"), None);
    /// ```
    pub fn pod(name: impl Into<String>) -> Self {
        Target::Pod {
            name: name.into(),
            labels: BTreeMap::new(),
            node_name: None,
            host_network: false,
        }
    }

    /// The value of a pod label (`None` for private IP targets).
    ///
    /// ```
    /// use k8s_oci_operator_policy_sdk::Target;
    /// let t = Target::pod("web-0").with_pod_label("public-ip", "true");
    /// assert_eq!(t.pod_label("public-ip"), Some("true"));
    /// ```
    pub fn pod_label(&self, key: &str) -> Option<&str> {
        match self {
            Target::Pod { labels, .. } => labels.get(key).map(String::as_str),
            Target::PrivateIp { .. } => None,
        }
    }

    /// Adds a pod label (builder style; no effect on private IP targets).
    ///
    /// ```
    /// let t = k8s_oci_operator_policy_sdk::Target::pod("p").with_pod_label("a", "b");
    /// assert_eq!(t.pod_label("a"), Some("b"));
    /// ```
    pub fn with_pod_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        if let Target::Pod { labels, .. } = &mut self {
            labels.insert(key.into(), value.into());
        }
        self
    }
}

/// Output of [`DecisionKind::ValidateSettings`].
///
/// ```
/// use k8s_oci_operator_policy_sdk::SettingsResponse;
/// let json = serde_json::to_string(&SettingsResponse::Invalid { message: "no pools".into() }).unwrap();
/// assert_eq!(json, r#"{"decision":"invalid","message":"no pools"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "decision", rename_all = "camelCase", deny_unknown_fields)]
pub enum SettingsResponse {
    /// The settings are fine.
    Valid,
    /// The settings are wrong; the host refuses to load the policy.
    Invalid {
        /// What is wrong, for the administrator.
        message: String,
    },
}

/// Output of [`DecisionKind::TagDefaults`]: tags merged under the user's own
/// (`defaults`) and tags that override the user's (`enforced`).
///
/// ```
/// use k8s_oci_operator_policy_sdk::TagDefaultsResponse;
/// let out = TagDefaultsResponse::default().default_tag("cost-center", "42").enforce_tag("managed-by", "platform");
/// assert_eq!(out.enforced["managed-by"], "platform");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagDefaultsResponse {
    /// Tags added when the user did not set the key.
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    /// Tags set whatever the user wrote.
    #[serde(default)]
    pub enforced: BTreeMap<String, String>,
}

impl TagDefaultsResponse {
    /// Adds a default tag (builder style).
    ///
    /// ```
    /// let out = k8s_oci_operator_policy_sdk::TagDefaultsResponse::default().default_tag("a", "b");
    /// assert_eq!(out.defaults.len(), 1);
    /// ```
    pub fn default_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.defaults.insert(key.into(), value.into());
        self
    }

    /// Adds an enforced tag (builder style).
    ///
    /// ```
    /// let out = k8s_oci_operator_policy_sdk::TagDefaultsResponse::default().enforce_tag("a", "b");
    /// assert_eq!(out.enforced.len(), 1);
    /// ```
    pub fn enforce_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.enforced.insert(key.into(), value.into());
        self
    }
}

/// Output of [`DecisionKind::SelectPool`].
///
/// ```
/// use k8s_oci_operator_policy_sdk::PoolResponse;
/// let json = serde_json::to_string(&PoolResponse::Choose { pool: "ocid1.publicippool.oc1..a".into() }).unwrap();
/// assert_eq!(json, r#"{"decision":"choose","pool":"ocid1.publicippool.oc1..a"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "decision", rename_all = "camelCase", deny_unknown_fields)]
pub enum PoolResponse {
    /// No opinion: keep the spec's pool (or the operator's default).
    Keep,
    /// Allocate from this pool. Must be among the allowed pools, and equal to
    /// the spec's pool when the spec names one.
    Choose {
        /// OCID of the public IP pool.
        pool: String,
    },
    /// Refuse to allocate.
    Deny {
        /// Why, shown to the user in status and events.
        reason: String,
    },
}

/// Output of [`DecisionKind::Eligibility`].
///
/// ```
/// use k8s_oci_operator_policy_sdk::EligibilityResponse;
/// let json = serde_json::to_string(&EligibilityResponse::Allow).unwrap();
/// assert_eq!(json, r#"{"decision":"allow"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "decision", rename_all = "camelCase", deny_unknown_fields)]
pub enum EligibilityResponse {
    /// The assignment may go ahead.
    Allow,
    /// The assignment is refused.
    Deny {
        /// Why, shown to the user in status and events.
        reason: String,
    },
}

/// The envelope of every output document: the answer, or an error the policy
/// reports (the host then applies the policy's failure mode).
///
/// ```
/// use k8s_oci_operator_policy_sdk::{Output, EligibilityResponse};
/// let ok: Output<EligibilityResponse> = Ok(EligibilityResponse::Allow).into();
/// assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"ok":{"decision":"allow"}}"#);
/// let err: Output<EligibilityResponse> = Err("bad settings".to_string()).into();
/// assert_eq!(serde_json::to_string(&err).unwrap(), r#"{"error":"bad settings"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Output<T> {
    /// The policy's answer.
    Ok(T),
    /// The policy could not answer.
    Error(String),
}

impl<T> From<Result<T, String>> for Output<T> {
    fn from(result: Result<T, String>) -> Self {
        match result {
            Ok(answer) => Output::Ok(answer),
            Err(message) => Output::Error(message),
        }
    }
}

impl<T> From<Output<T>> for Result<T, String> {
    fn from(output: Output<T>) -> Self {
        match output {
            Output::Ok(answer) => Ok(answer),
            Output::Error(message) => Err(message),
        }
    }
}
