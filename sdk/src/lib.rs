//! Write k8s-oci-operator policies in Rust.
//!
//! A policy is a WebAssembly module the operator asks up to three questions
//! about a `ReservedIP`: which tags its public IP carries
//! ([`TagDefaultsPolicy`]), which pool it draws from ([`PoolPolicy`]) and
//! whether it may be assigned to a pod or private IP ([`EligibilityPolicy`]).
//! Implement [`Policy`] plus the traits of the questions you answer, then
//! export them with [`export_policy!`]:
//!
//! ```
//! use k8s_oci_operator_policy_sdk::*;
//!
//! #[derive(serde::Deserialize)]
//! struct Settings { label: String }
//!
//! struct OnlyLabelledPods;
//!
//! impl Policy for OnlyLabelledPods {
//!     type Settings = Settings;
//! }
//!
//! impl EligibilityPolicy for OnlyLabelledPods {
//!     fn eligibility(settings: &Settings, req: &EligibilityRequest) -> Result<EligibilityResponse, String> {
//!         Ok(match req.target.pod_label(&settings.label) {
//!             Some(_) => EligibilityResponse::Allow,
//!             None => EligibilityResponse::Deny { reason: format!("pod lacks label {}", settings.label) },
//!         })
//!     }
//! }
//!
//! export_policy!(OnlyLabelledPods => [eligibility]);
//!
//! // Natively, test it through the same JSON path the host uses:
//! let req = EligibilityRequest {
//!     settings: serde_json::json!({"label": "public-ip"}),
//!     reserved_ip: ReservedIp::new("web", "shop"),
//!     namespace: Namespace::new("shop"),
//!     target: Target::pod("web-0"),
//! };
//! assert!(matches!(testing::eligibility::<OnlyLabelledPods>(&req), Ok(EligibilityResponse::Deny { .. })));
//! ```
//!
//! [`testing`] checks answers with the operator's own rules ([`checks`]):
//! a tag key the operator reserves, a pool outside the allowed ones or a deny
//! without a reason fail the native test as they would fail in the cluster.
//!
//! Build the module with `cargo build --release --target
//! wasm32-unknown-unknown` (`rustup target add wasm32-unknown-unknown`
//! once), with the release profile of the repository's
//! `policies/template/Cargo.toml` (opt-level 3, LTO, one codegen unit,
//! `panic = "abort"`, stripped) for a small, fast module. The crate needs
//! `crate-type = ["cdylib", "rlib"]`: the cdylib is the module, the rlib
//! what native tests link. The `k8s-oci-operator-policy-harness` crate runs
//! the built module through the operator's own engine in a test. The ABI
//! itself is language-neutral and described in `ABI.md`; this crate is one
//! way to speak it.
//!
//! Features: `bump-alloc` makes a bump allocator the global allocator on
//! wasm32 (module `bump`, wasm32 only); `schema` derives
//! `schemars::JsonSchema` for the ABI types (the operator generates
//! `sdk/schema/` with it).

pub mod abi;
#[cfg(all(feature = "bump-alloc", target_arch = "wasm32"))]
pub mod bump;
pub mod checks;
pub mod guest;
pub mod testing;

#[cfg(all(feature = "bump-alloc", target_arch = "wasm32"))]
#[global_allocator]
static ALLOCATOR: bump::BumpAllocator = bump::BumpAllocator::new();

pub use abi::*;

use serde::de::DeserializeOwned;

/// What every policy implements: its settings type and their validation.
///
/// The host hands the settings (JSON from the policy's ConfigMap) to every
/// call; the SDK deserialises them into [`Policy::Settings`] first, so a
/// settings document of the wrong shape is an error the host reports when it
/// loads the policy.
///
/// ```
/// use k8s_oci_operator_policy_sdk::Policy;
///
/// #[derive(serde::Deserialize)]
/// struct Settings { pools: std::collections::BTreeMap<String, String> }
///
/// struct TeamPools;
/// impl Policy for TeamPools {
///     type Settings = Settings;
///     fn validate_settings(s: &Settings) -> Result<(), String> {
///         if s.pools.is_empty() { Err("pools must not be empty".into()) } else { Ok(()) }
///     }
/// }
/// ```
pub trait Policy {
    /// The policy's settings; use `serde_json::Value` to take them raw and
    /// `()`-like empty structs (with `#[serde(default)]`) for none.
    type Settings: DeserializeOwned;

    /// Checks settings once, when the host loads the policy. An error keeps
    /// the previous version of the policy running.
    fn validate_settings(_settings: &Self::Settings) -> Result<(), String> {
        Ok(())
    }
}

/// Answers [`DecisionKind::TagDefaults`].
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// struct ManagedBy;
/// impl Policy for ManagedBy { type Settings = serde_json::Value; }
/// impl TagDefaultsPolicy for ManagedBy {
///     fn tag_defaults(_: &serde_json::Value, _: &TagDefaultsRequest) -> Result<TagDefaultsResponse, String> {
///         Ok(TagDefaultsResponse::default().enforce_tag("managed-by", "k8s"))
///     }
/// }
/// ```
pub trait TagDefaultsPolicy: Policy {
    /// Tags to add under the user's (`defaults`) or over them (`enforced`).
    fn tag_defaults(
        settings: &Self::Settings,
        req: &TagDefaultsRequest,
    ) -> Result<TagDefaultsResponse, String>;
}

/// Answers [`DecisionKind::SelectPool`].
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// struct NoPools;
/// impl Policy for NoPools { type Settings = serde_json::Value; }
/// impl PoolPolicy for NoPools {
///     fn select_pool(_: &serde_json::Value, _: &SelectPoolRequest) -> Result<PoolResponse, String> {
///         Ok(PoolResponse::Deny { reason: "public IPs are not available here".into() })
///     }
/// }
/// ```
pub trait PoolPolicy: Policy {
    /// Keep the spec's pool, choose one, or deny allocation.
    fn select_pool(
        settings: &Self::Settings,
        req: &SelectPoolRequest,
    ) -> Result<PoolResponse, String>;
}

/// Answers [`DecisionKind::Eligibility`].
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// struct AllowAll;
/// impl Policy for AllowAll { type Settings = serde_json::Value; }
/// impl EligibilityPolicy for AllowAll {
///     fn eligibility(_: &serde_json::Value, _: &EligibilityRequest) -> Result<EligibilityResponse, String> {
///         Ok(EligibilityResponse::Allow)
///     }
/// }
/// ```
pub trait EligibilityPolicy: Policy {
    /// Allow the assignment, or deny it with a reason the user sees.
    fn eligibility(
        settings: &Self::Settings,
        req: &EligibilityRequest,
    ) -> Result<EligibilityResponse, String>;
}

/// Exports a policy type as a WebAssembly policy module.
///
/// List the decisions the type answers; each needs the matching trait
/// (`tag_defaults` → [`TagDefaultsPolicy`], `select_pool` → [`PoolPolicy`],
/// `eligibility` → [`EligibilityPolicy`]). Settings validation is always
/// exported. On `wasm32` this emits the ABI functions (`policy_abi_version`,
/// `policy_decisions`, `policy_alloc`, `policy_evaluate`); on other targets it
/// only implements [`guest::Exported`], which the [`testing`] helpers use.
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// struct Nothing;
/// impl Policy for Nothing { type Settings = serde_json::Value; }
/// impl EligibilityPolicy for Nothing {
///     fn eligibility(_: &serde_json::Value, _: &EligibilityRequest) -> Result<EligibilityResponse, String> {
///         Ok(EligibilityResponse::Allow)
///     }
/// }
/// export_policy!(Nothing => [eligibility]);
/// assert_eq!(<Nothing as guest::Exported>::DECISIONS, 0b1001);
/// ```
///
/// # Several policies in one crate
///
/// A WebAssembly module holds one policy (the ABI functions have fixed
/// names), so a crate with several policies picks the one a build exports
/// with a `#[cfg(...)]` before the type, usually a cargo feature per policy.
/// The condition gates only the wasm exports: natively every policy still
/// implements [`guest::Exported`], so `cargo test` tests them all. Build
/// each module with its feature, e.g. `cargo build --release --target
/// wasm32-unknown-unknown --features team-pool`; enabling two at once fails
/// to compile ("symbol `policy_abi_version` is already defined").
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
///
/// // Cargo.toml: [features] team-pool = [] / labelled-pods = []
/// struct TeamPool;
/// impl Policy for TeamPool { type Settings = serde_json::Value; }
/// impl PoolPolicy for TeamPool {
///     fn select_pool(_: &serde_json::Value, _: &SelectPoolRequest) -> Result<PoolResponse, String> {
///         Ok(PoolResponse::Keep)
///     }
/// }
///
/// struct LabelledPods;
/// impl Policy for LabelledPods { type Settings = serde_json::Value; }
/// impl EligibilityPolicy for LabelledPods {
///     fn eligibility(_: &serde_json::Value, req: &EligibilityRequest) -> Result<EligibilityResponse, String> {
///         Ok(match req.target.pod_label("public-ip") {
///             Some(_) => EligibilityResponse::Allow,
///             None => EligibilityResponse::Deny { reason: "pod lacks label public-ip".into() },
///         })
///     }
/// }
///
/// export_policy!(#[cfg(feature = "team-pool")] TeamPool => [select_pool]);
/// export_policy!(#[cfg(feature = "labelled-pods")] LabelledPods => [eligibility]);
///
/// // Both are testable natively, whichever feature is on.
/// assert_eq!(testing::select_pool::<TeamPool>(&SelectPoolRequest::default()), Ok(PoolResponse::Keep));
/// let req = EligibilityRequest {
///     settings: serde_json::Value::Null,
///     reserved_ip: ReservedIp::new("web", "shop"),
///     namespace: Namespace::new("shop"),
///     target: Target::pod("web-0"),
/// };
/// assert!(matches!(testing::eligibility::<LabelledPods>(&req), Ok(EligibilityResponse::Deny { .. })));
/// ```
#[macro_export]
macro_rules! export_policy {
    (#[cfg($($condition:tt)+)] $policy:ty => [$($decision:ident),+ $(,)?]) => {
        $crate::__exported!($policy => [$($decision),+]);
        $crate::__wasm_exports!([all(target_arch = "wasm32", $($condition)+)] $policy);
    };
    ($policy:ty => [$($decision:ident),+ $(,)?]) => {
        $crate::__exported!($policy => [$($decision),+]);
        $crate::__wasm_exports!([target_arch = "wasm32"] $policy);
    };
}

/// The native half of [`export_policy!`]: implements [`guest::Exported`].
#[doc(hidden)]
#[macro_export]
macro_rules! __exported {
    ($policy:ty => [$($decision:ident),+]) => {
        impl $crate::guest::Exported for $policy {
            const DECISIONS: u32 = $crate::DecisionKind::ValidateSettings.bit()
                $(| $crate::__decision_kind!($decision).bit())+;

            fn dispatch(kind: u32, input: &[u8]) -> ::std::vec::Vec<u8> {
                match $crate::DecisionKind::from_code(kind) {
                    ::std::option::Option::Some($crate::DecisionKind::ValidateSettings) => {
                        $crate::guest::validate_settings::<$policy>(input)
                    }
                    $(
                        ::std::option::Option::Some($crate::__decision_kind!($decision)) => {
                            $crate::guest::$decision::<$policy>(input)
                        }
                    )+
                    _ => $crate::guest::unsupported(kind),
                }
            }
        }
    };
}

/// The wasm half of [`export_policy!`]: the ABI functions, under `cfg`.
#[doc(hidden)]
#[macro_export]
macro_rules! __wasm_exports {
    ([$($condition:tt)+] $policy:ty) => {
        #[cfg($($condition)+)]
        const _: () = {
            #[unsafe(no_mangle)]
            extern "C" fn policy_abi_version() -> i32 {
                $crate::ABI_VERSION as i32
            }

            #[unsafe(no_mangle)]
            extern "C" fn policy_decisions() -> i32 {
                <$policy as $crate::guest::Exported>::DECISIONS as i32
            }

            #[unsafe(no_mangle)]
            extern "C" fn policy_alloc(len: i32) -> i32 {
                $crate::guest::alloc(len)
            }

            #[unsafe(no_mangle)]
            extern "C" fn policy_evaluate(kind: i32, ptr: i32, len: i32) -> i64 {
                // SAFETY: the host passes back the buffer `policy_alloc`
                // returned, filled with `len` bytes (ABI.md).
                let input = unsafe { $crate::guest::input(ptr, len) };
                $crate::guest::output(<$policy as $crate::guest::Exported>::dispatch(
                    kind as u32,
                    input,
                ))
            }
        };
    };
}

/// Maps a decision name in [`export_policy!`] to its [`DecisionKind`].
#[doc(hidden)]
#[macro_export]
macro_rules! __decision_kind {
    (tag_defaults) => {
        $crate::DecisionKind::TagDefaults
    };
    (select_pool) => {
        $crate::DecisionKind::SelectPool
    };
    (eligibility) => {
        $crate::DecisionKind::Eligibility
    };
}
