//! Loading a module: decompress (capped), compile once, and check it is a
//! policy this host can run safely: no imports, a memory within the cap, the
//! ABI version this host speaks, the ABI's exports with the right types, and
//! settings the policy accepts. Compilation happens here only, never during
//! evaluation.

use std::io::Read;

use sha2::{Digest, Sha256};
use wasmtime::{Engine, ExternType, InstancePre, Linker, Module};

use super::abi::{ABI_VERSION, DecisionKind, SettingsResponse, exports};
use super::error::LoadError;
use super::instance::{self, Sandbox};
use super::limits::Limits;

const WASM_MAGIC: &[u8] = b"\0asm";
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];

/// A compiled, checked module, ready to instantiate per decision.
pub(crate) struct CompiledModule {
    pub(crate) pre: InstancePre<Sandbox>,
    /// Bit mask of the [`DecisionKind`]s the module answers.
    pub(crate) decisions: u32,
    /// SHA-256 of the (decompressed) module, hex.
    pub(crate) sha256: String,
}

impl CompiledModule {
    pub(crate) fn answers(&self, kind: DecisionKind) -> bool {
        self.decisions & kind.bit() != 0
    }
}

/// Decompresses a gzip module (capped against gzip bombs) and checks the
/// WebAssembly magic bytes. Pure.
pub(crate) fn decode(bytes: &[u8], limits: &Limits) -> Result<Vec<u8>, LoadError> {
    let wasm = if bytes.starts_with(GZIP_MAGIC) {
        let cap = limits.max_decompressed_bytes;
        let mut out = Vec::new();
        // Read one byte past the cap to tell "exactly the cap" from "more".
        flate2::read::GzDecoder::new(bytes)
            .take(cap as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| LoadError::Gzip(e.to_string()))?;
        if out.len() > cap {
            return Err(LoadError::DecompressedTooLarge { cap });
        }
        out
    } else {
        bytes.to_vec()
    };
    if !wasm.starts_with(WASM_MAGIC) {
        return Err(LoadError::NotWasm);
    }
    Ok(wasm)
}

/// SHA-256 of a decoded module, hex; the compile cache key and the "version"
/// shown in verdicts.
pub(crate) fn sha256_hex(wasm: &[u8]) -> String {
    Sha256::digest(wasm)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compiles and checks a decoded module.
pub(crate) fn compile(
    engine: &Engine,
    wasm: &[u8],
    limits: &Limits,
) -> Result<CompiledModule, LoadError> {
    let module = Module::new(engine, wasm).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
    check(engine, module, &sha256_hex(wasm), limits)
}

/// Checks a compiled module (fresh or from the artifact cache: a cached one
/// passes the same checks, so a change of limits applies to it too).
pub(crate) fn check(
    engine: &Engine,
    module: Module,
    sha256: &str,
    limits: &Limits,
) -> Result<CompiledModule, LoadError> {
    if let Some(import) = module.imports().next() {
        return Err(LoadError::Import {
            module: import.module().to_string(),
            name: import.name().to_string(),
        });
    }
    match module.get_export(exports::MEMORY) {
        Some(ExternType::Memory(memory)) => {
            let needed = memory.minimum().saturating_mul(memory.page_size());
            if needed > limits.memory_bytes as u64 {
                return Err(LoadError::MemoryTooLarge {
                    needed,
                    cap: limits.memory_bytes,
                });
            }
        }
        _ => return Err(missing(exports::MEMORY, "a memory")),
    }

    let pre = Linker::new(engine)
        .instantiate_pre(&module)
        .map_err(|e| LoadError::Compile(format!("{e:#}")))?;

    // Probe once: run the start function (if any), read the ABI version
    // first (other exports may differ between versions), then the rest.
    let mut store = instance::new_store(engine, limits, instance::Deadline::Trap);
    let instance = pre
        .instantiate(&mut store)
        .map_err(|e| LoadError::Start(instance::classify(e, &store, limits)))?;
    let version = instance
        .get_typed_func::<(), i32>(&mut store, exports::ABI_VERSION)
        .map_err(|_| missing(exports::ABI_VERSION, "a function () -> i32"))?
        .call(&mut store, ())
        .map_err(|e| LoadError::Start(instance::classify(e, &store, limits)))?;
    if i64::from(version) != i64::from(ABI_VERSION) {
        return Err(LoadError::AbiVersion {
            found: version.into(),
            supported: ABI_VERSION,
        });
    }
    let decisions = instance
        .get_typed_func::<(), i32>(&mut store, exports::DECISIONS)
        .map_err(|_| missing(exports::DECISIONS, "a function () -> i32"))?
        .call(&mut store, ())
        .map_err(|e| LoadError::Start(instance::classify(e, &store, limits)))?
        as u32;
    instance
        .get_typed_func::<i32, i32>(&mut store, exports::ALLOC)
        .map_err(|_| missing(exports::ALLOC, "a function (i32) -> i32"))?;
    instance
        .get_typed_func::<(i32, i32, i32), i64>(&mut store, exports::EVALUATE)
        .map_err(|_| missing(exports::EVALUATE, "a function (i32, i32, i32) -> i64"))?;

    Ok(CompiledModule {
        pre,
        decisions,
        sha256: sha256.to_string(),
    })
}

/// Asks the module whether it accepts `settings` (compact JSON), when it
/// answers settings validation at all.
pub(crate) fn validate_settings(
    engine: &Engine,
    module: &CompiledModule,
    settings: &str,
    limits: &Limits,
) -> Result<(), LoadError> {
    if !module.answers(DecisionKind::ValidateSettings) {
        return Ok(());
    }
    let input = super::abi::request_document(settings, b"{}");
    // Loads run on a blocking thread; the decision path's async call is
    // driven to completion here.
    let output = futures::executor::block_on(instance::call(
        engine,
        &module.pre,
        DecisionKind::ValidateSettings,
        &input,
        limits,
    ))
    .map_err(LoadError::Start)?;
    match instance::parse_output::<SettingsResponse>(&output).map_err(LoadError::Start)? {
        SettingsResponse::Valid => Ok(()),
        SettingsResponse::Invalid { message } => {
            Err(LoadError::Settings(instance::truncate(message, 1024)))
        }
    }
}

fn missing(name: &str, expected: &str) -> LoadError {
    LoadError::MissingExport {
        name: name.to_string(),
        expected: expected.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).expect("gzip");
        enc.finish().expect("gzip")
    }

    #[test]
    fn decode_accepts_plain_and_gzip() {
        let limits = Limits::default();
        assert_eq!(
            decode(b"\0asm\x01\0\0\0", &limits),
            Ok(b"\0asm\x01\0\0\0".to_vec())
        );
        assert_eq!(
            decode(&gzip(b"\0asm\x01\0\0\0"), &limits),
            Ok(b"\0asm\x01\0\0\0".to_vec())
        );
        assert_eq!(decode(b"hello", &limits), Err(LoadError::NotWasm));
    }

    #[test]
    fn decode_caps_gzip_bombs() {
        let limits = Limits {
            max_decompressed_bytes: 1000,
            ..Limits::default()
        };
        let mut bomb = b"\0asm".to_vec();
        bomb.resize(1_000_000, 0);
        assert_eq!(
            decode(&gzip(&bomb), &limits),
            Err(LoadError::DecompressedTooLarge { cap: 1000 })
        );
        assert!(matches!(
            decode(&[0x1f, 0x8b, 0, 0], &limits),
            Err(LoadError::Gzip(_))
        ));
    }
}
