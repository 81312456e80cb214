//! The guest side of the ABI: memory handoff and JSON (de)serialisation,
//! used by the code [`export_policy!`](crate::export_policy) generates. Policy
//! authors rarely call these directly.
//!
//! Every decision runs in a fresh instance that the host throws away
//! afterwards, so buffers handed to the host are simply leaked.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{
    EligibilityPolicy, EligibilityRequest, Output, Policy, PoolPolicy, SelectPoolRequest,
    SettingsResponse, TagDefaultsPolicy, TagDefaultsRequest, ValidateSettingsRequest,
};

/// Implemented by [`export_policy!`](crate::export_policy): the decisions a
/// policy answers and the dispatch from a decision code to its answer.
///
/// ```
/// use k8s_oci_operator_policy_sdk::{guest::Exported, DecisionKind};
/// struct Custom;
/// impl Exported for Custom {
///     const DECISIONS: u32 = DecisionKind::ValidateSettings.bit();
///     fn dispatch(_kind: u32, _input: &[u8]) -> Vec<u8> { br#"{"ok":{"decision":"valid"}}"#.to_vec() }
/// }
/// assert_eq!(Custom::dispatch(0, b"{}"), br#"{"ok":{"decision":"valid"}}"#);
/// ```
pub trait Exported {
    /// Bit mask of [`DecisionKind::bit`](crate::DecisionKind::bit) values.
    const DECISIONS: u32;
    /// Answers decision `kind` for the JSON `input`; returns the JSON output
    /// document ([`Output`]).
    fn dispatch(kind: u32, input: &[u8]) -> Vec<u8>;
}

/// `policy_alloc`: a zeroed buffer of `len` bytes that lives until the
/// instance is dropped; 0 when `len` is negative.
///
/// ```
/// # // Natively, pointers are wider than 32 bits, so only check the refusal.
/// assert_eq!(k8s_oci_operator_policy_sdk::guest::alloc(-1), 0);
/// ```
pub fn alloc(len: i32) -> i32 {
    let Ok(len) = usize::try_from(len) else {
        return 0;
    };
    let buffer: &'static mut [u8] = Box::leak(vec![0u8; len].into_boxed_slice());
    buffer.as_mut_ptr() as usize as i32
}

/// The input buffer the host filled.
///
/// # Safety
/// `ptr` and `len` must describe a live buffer, as returned by [`alloc`].
///
/// ```
/// let data = [1u8, 2, 3];
/// # // Only meaningful on wasm32; natively we demonstrate the empty case.
/// let empty = unsafe { k8s_oci_operator_policy_sdk::guest::input(0, 0) };
/// assert!(empty.is_empty());
/// # let _ = data;
/// ```
pub unsafe fn input<'a>(ptr: i32, len: i32) -> &'a [u8] {
    let Ok(len) = usize::try_from(len) else {
        return &[];
    };
    if len == 0 || ptr == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller (the buffer came from `alloc`).
    unsafe { std::slice::from_raw_parts(ptr as u32 as usize as *const u8, len) }
}

/// Hands `out` to the host: leaks it and packs its address (high 32 bits) and
/// length (low 32 bits) into the return value of `policy_evaluate`.
///
/// ```
/// # // Natively the address does not fit 32 bits; the length still does.
/// let packed = k8s_oci_operator_policy_sdk::guest::output(vec![1, 2, 3]);
/// assert_eq!(packed as u64 & 0xffff_ffff, 3);
/// ```
pub fn output(out: Vec<u8>) -> i64 {
    let out: &'static mut [u8] = Box::leak(out.into_boxed_slice());
    let ptr = out.as_ptr() as usize as u64 & 0xffff_ffff;
    let len = out.len() as u64 & 0xffff_ffff;
    ((ptr << 32) | len) as i64
}

/// Runs [`Policy::validate_settings`] on a [`ValidateSettingsRequest`].
///
/// ```
/// use k8s_oci_operator_policy_sdk::{guest, Policy};
/// #[derive(serde::Deserialize)] struct S { _pool: String }
/// struct P; impl Policy for P { type Settings = S; }
/// let out = guest::validate_settings::<P>(br#"{"settings":{}}"#);
/// assert!(String::from_utf8(out).unwrap().contains("invalid"));
/// ```
pub fn validate_settings<P: Policy>(input: &[u8]) -> Vec<u8> {
    let answer = parse::<ValidateSettingsRequest>(input).map(|req| {
        match settings::<P>(&req.settings).and_then(|s| P::validate_settings(&s)) {
            Ok(()) => SettingsResponse::Valid,
            Err(message) => SettingsResponse::Invalid { message },
        }
    });
    respond(answer)
}

/// Runs [`TagDefaultsPolicy::tag_defaults`] on a [`TagDefaultsRequest`].
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// struct P; impl Policy for P { type Settings = serde_json::Value; }
/// impl TagDefaultsPolicy for P {
///     fn tag_defaults(_: &serde_json::Value, _: &TagDefaultsRequest) -> Result<TagDefaultsResponse, String> {
///         Ok(TagDefaultsResponse::default())
///     }
/// }
/// let out = guest::tag_defaults::<P>(b"not json");
/// assert!(String::from_utf8(out).unwrap().starts_with(r#"{"error""#));
/// ```
pub fn tag_defaults<P: TagDefaultsPolicy>(input: &[u8]) -> Vec<u8> {
    respond(parse::<TagDefaultsRequest>(input).and_then(|req| {
        let settings = settings::<P>(&req.settings)?;
        P::tag_defaults(&settings, &req)
    }))
}

/// Runs [`PoolPolicy::select_pool`] on a [`SelectPoolRequest`].
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// struct P; impl Policy for P { type Settings = serde_json::Value; }
/// impl PoolPolicy for P {
///     fn select_pool(_: &serde_json::Value, _: &SelectPoolRequest) -> Result<PoolResponse, String> {
///         Ok(PoolResponse::Keep)
///     }
/// }
/// let input = serde_json::to_vec(&SelectPoolRequest::default()).unwrap();
/// assert_eq!(guest::select_pool::<P>(&input), br#"{"ok":{"decision":"keep"}}"#);
/// ```
pub fn select_pool<P: PoolPolicy>(input: &[u8]) -> Vec<u8> {
    respond(parse::<SelectPoolRequest>(input).and_then(|req| {
        let settings = settings::<P>(&req.settings)?;
        P::select_pool(&settings, &req)
    }))
}

/// Runs [`EligibilityPolicy::eligibility`] on an [`EligibilityRequest`].
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// struct P; impl Policy for P { type Settings = serde_json::Value; }
/// impl EligibilityPolicy for P {
///     fn eligibility(_: &serde_json::Value, _: &EligibilityRequest) -> Result<EligibilityResponse, String> {
///         Ok(EligibilityResponse::Allow)
///     }
/// }
/// let out = guest::eligibility::<P>(b"{}");
/// assert!(String::from_utf8(out).unwrap().contains("error"));
/// ```
pub fn eligibility<P: EligibilityPolicy>(input: &[u8]) -> Vec<u8> {
    respond(parse::<EligibilityRequest>(input).and_then(|req| {
        let settings = settings::<P>(&req.settings)?;
        P::eligibility(&settings, &req)
    }))
}

/// The answer to a decision the policy does not implement.
///
/// ```
/// let out = k8s_oci_operator_policy_sdk::guest::unsupported(7);
/// assert!(String::from_utf8(out).unwrap().contains("does not answer decision 7"));
/// ```
pub fn unsupported(kind: u32) -> Vec<u8> {
    respond::<()>(Err(format!("this policy does not answer decision {kind}")))
}

fn parse<T: DeserializeOwned>(input: &[u8]) -> Result<T, String> {
    serde_json::from_slice(input).map_err(|e| format!("malformed input: {e}"))
}

fn settings<P: Policy>(settings: &serde_json::Value) -> Result<P::Settings, String> {
    P::Settings::deserialize(settings).map_err(|e| format!("invalid settings: {e}"))
}

fn respond<T: Serialize>(answer: Result<T, String>) -> Vec<u8> {
    serde_json::to_vec(&Output::from(answer))
        // Serialising our own types cannot fail short of a bug; still answer.
        .unwrap_or_else(|_| br#"{"error":"policy could not serialise its answer"}"#.to_vec())
}
