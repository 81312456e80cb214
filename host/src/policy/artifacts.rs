//! Compiled modules kept on disk, so a restart (or `policy eval`) does not
//! compile again what it compiled before.
//!
//! One file per module and engine configuration:
//! `<module sha256>-<engine hash>.cwasm`, holding the SHA-256 of the artifact
//! then wasmtime's serialized module. The engine hash covers wasmtime's
//! version and every setting that changes generated code, so an upgrade or a
//! changed limit never loads a stale artifact; wasmtime checks the same again
//! when it deserializes.
//!
//! Written here rather than with wasmtime's `cache` feature: that feature
//! brings zstd (C code) into the static cross-compiled release builds and a
//! configuration file of its own, where this needs one directory keyed by a
//! digest we already compute.
//!
//! Trust: deserializing runs the artifact's machine code, so the directory
//! must be writable only by the operator (the chart mounts an emptyDir). The
//! checksum guards against torn or corrupted files, not against an attacker
//! who can write there.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

/// A directory of compiled modules for one engine configuration.
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_hash: u64,
}

impl ArtifactCache {
    /// Opens (creating if needed) `dir`. `None` with a warning when it cannot
    /// be used: the engine then compiles every time, which is only slower.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> Option<Self> {
        if let Err(err) = create_private_dir(dir) {
            tracing::warn!(dir = %dir.display(), error = %err, "policy artifact cache unusable; modules will be compiled at every start");
            return None;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Some(ArtifactCache {
            dir: dir.to_path_buf(),
            engine_hash: hasher.finish(),
        })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{:016x}.cwasm", self.engine_hash))
    }

    /// The module compiled from the wasm with digest `sha256`, if a valid
    /// artifact is on disk. Any problem is a miss (and the bad file goes).
    pub(crate) fn load(&self, engine: &Engine, sha256: &str) -> Option<Module> {
        let path = self.path(sha256);
        let bytes = std::fs::read(&path).ok()?;
        let module = bytes
            .split_at_checked(32)
            .filter(|(sum, artifact)| Sha256::digest(artifact).as_slice() == *sum)
            // SAFETY: the artifact was written by `store` below from
            // wasmtime's own serialization, in a directory only the operator
            // writes (module docs), and its checksum matches; wasmtime also
            // refuses artifacts of another version or configuration.
            .and_then(|(_, artifact)| unsafe { Module::deserialize(engine, artifact) }.ok());
        if module.is_none() {
            tracing::warn!(file = %path.display(), "discarding an unreadable policy artifact");
            let _ = std::fs::remove_file(&path);
        }
        module
    }

    /// Keeps `module` (compiled from the wasm with digest `sha256`). Failures
    /// are logged and otherwise ignored: the cache is an optimisation.
    pub(crate) fn store(&self, sha256: &str, module: &Module) {
        let path = self.path(sha256);
        if path.exists() {
            return;
        }
        let result = module
            .serialize()
            .map_err(|e| std::io::Error::other(format!("{e:#}")))
            .and_then(|artifact| {
                // Written aside then renamed, so a reader never sees half a
                // file (a crash mid-write leaves only a .tmp).
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                let mut file = std::fs::File::create(&tmp)?;
                file.write_all(&Sha256::digest(&artifact))?;
                file.write_all(&artifact)?;
                file.sync_all()?;
                std::fs::rename(&tmp, &path)
            });
        if let Err(err) = result {
            tracing::warn!(file = %path.display(), error = %err, "cannot keep a compiled policy module");
        }
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o022 != 0 {
        // Others could plant machine code here (module docs).
        return Err(std::io::Error::other(format!(
            "{} is writable by group or others (mode {:o}); it must be private to the operator",
            dir.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::default()
    }

    fn wasm() -> Vec<u8> {
        ::wat::parse_str(r#"(module (func (export "f") (result i32) i32.const 7))"#)
            .expect("valid WAT")
    }

    #[test]
    fn a_stored_module_is_loaded_back_and_a_corrupt_one_is_a_miss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine();
        let cache = ArtifactCache::open(&dir.path().join("c"), &engine).expect("opens");
        assert!(cache.load(&engine, "abc").is_none());

        let module = Module::new(&engine, wasm()).expect("compiles");
        cache.store("abc", &module);
        let loaded = cache.load(&engine, "abc").expect("loaded back");
        assert!(loaded.get_export("f").is_some());

        // A flipped byte fails the checksum: a miss, and the file is removed.
        let path = cache.path("abc");
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).expect("write");
        assert!(cache.load(&engine, "abc").is_none());
        assert!(!path.exists());
    }

    #[test]
    fn another_engine_configuration_does_not_share_artifacts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = engine();
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let b = Engine::new(&config).expect("engine");
        let cache_a = ArtifactCache::open(dir.path(), &a).expect("opens");
        let cache_b = ArtifactCache::open(dir.path(), &b).expect("opens");
        cache_a.store("abc", &Module::new(&a, wasm()).expect("compiles"));
        assert!(cache_a.load(&a, "abc").is_some());
        assert!(cache_b.load(&b, "abc").is_none());
    }

    #[test]
    fn a_directory_others_may_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        assert!(ArtifactCache::open(dir.path(), &engine()).is_none());
    }
}
