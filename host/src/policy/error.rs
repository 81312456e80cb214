//! Typed errors of the policy engine. Load errors keep the previous version
//! of a policy running; evaluation errors cost one decision its answer (the
//! policy's failure mode applies); [`PolicyError`] is for the engine itself.

use thiserror::Error;

/// Why a policy could not be loaded (its last good version, if any, stays).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LoadError {
    #[error("invalid policy configuration: {0}")]
    Config(String),
    #[error("no module: expected a `policy.wasm` or `policy.wasm.gz` key")]
    NoModule,
    #[error("both `policy.wasm` and `policy.wasm.gz` are present; keep one")]
    TwoModules,
    #[error("module is {size} bytes, over the limit of {cap} bytes")]
    TooLarge { size: usize, cap: usize },
    #[error("gzip-compressed module cannot be decompressed: {0}")]
    Gzip(String),
    #[error("module decompresses to more than {cap} bytes")]
    DecompressedTooLarge { cap: usize },
    #[error("not a WebAssembly module (missing the \\0asm magic bytes)")]
    NotWasm,
    #[error("invalid WebAssembly module: {0}")]
    Compile(String),
    #[error(
        "module imports `{module}::{name}`; policies are given no imports (no WASI, filesystem, network or clock)"
    )]
    Import { module: String, name: String },
    #[error("module does not export `{name}` as {expected}; is it a k8s-oci-operator policy?")]
    MissingExport { name: String, expected: String },
    #[error("module's memory starts at {needed} bytes, over the cap of {cap} bytes")]
    MemoryTooLarge { needed: u64, cap: usize },
    #[error(
        "module speaks policy ABI version {found}, this operator speaks version {supported}; rebuild the policy with a matching SDK"
    )]
    AbiVersion { found: i64, supported: u32 },
    #[error("module failed while starting: {0}")]
    Start(EvalError),
    #[error("the policy rejected its settings: {0}")]
    Settings(String),
    #[error(
        "module's SHA-256 is {found}, but the policy pins {expected}; update `sha256` or the module"
    )]
    DigestMismatch { expected: String, found: String },
    #[error("signature refused: {0}")]
    Signature(String),
    #[error("a policy named {name} already comes from {other_source}")]
    DuplicateName { name: String, other_source: String },
}

/// Why one policy gave no usable answer to one decision.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EvalError {
    #[error("input is {size} bytes, over the limit of {cap} bytes")]
    InputTooLarge { size: usize, cap: usize },
    #[error("deadline of {ms} ms exceeded")]
    Timeout { ms: u128 },
    #[error("memory cap of {cap} bytes exceeded")]
    OutOfMemory { cap: usize },
    #[error("trapped: {0}")]
    Trap(String),
    #[error(
        "returned an out-of-bounds buffer (address {ptr}, length {len}, memory {memory} bytes)"
    )]
    OutOfBounds { ptr: u64, len: u64, memory: usize },
    #[error("output is {size} bytes, over the limit of {cap} bytes")]
    OutputTooLarge { size: usize, cap: usize },
    #[error("malformed output: {0}")]
    Malformed(String),
    #[error("reported an error: {0}")]
    Reported(String),
    #[error("invalid answer: {0}")]
    Invalid(String),
}

/// The engine could not evaluate at all (not a policy's fault).
#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("the request cannot be serialised: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("policy evaluation task failed: {0}")]
    Runtime(String),
    #[error("cannot create the WebAssembly engine: {0}")]
    Engine(String),
}
