//! Policies from a directory: one subdirectory per policy, holding the same
//! keys as a policy ConfigMap as files (`policy.wasm.gz`, `order`, ...). This
//! is the layout of ConfigMaps mounted as volumes under one parent, and handy
//! for local development.
//!
//! Kubelet updates a mounted ConfigMap by writing a new `..<timestamp>`
//! directory and atomically swapping the `..data` symlink; the key files are
//! symlinks through `..data`. Watching individual files breaks on that swap,
//! so the whole tree is watched recursively and any event triggers a rescan
//! (debounced), and names starting with `.` are ignored. Unchanged policies
//! are not reloaded (content digests), so rescans are cheap; a periodic
//! rescan covers events a watcher might miss.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::engine::PolicyEngine;
use super::source::PolicySource;

/// Events closer together than this are handled by one rescan.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Rescan this often even without events.
const RESCAN: Duration = Duration::from_secs(30);

/// Keeps a directory watched; dropping it stops the watch.
pub struct DirectoryWatcher {
    _watcher: RecommendedWatcher,
    task: JoinHandle<()>,
}

impl Drop for DirectoryWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Loads the policies under `dir`, then keeps them in sync with it.
/// Returns after the first load, so the caller knows policies are in place.
pub async fn watch_directory(
    engine: PolicyEngine,
    dir: PathBuf,
) -> Result<DirectoryWatcher, notify::Error> {
    let source = format!("dir:{}", dir.display());
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            // A full channel already means "rescan soon".
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::Recursive)?;

    sync_directory(&engine, &source, &dir).await;
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                event = rx.recv() => {
                    if event.is_none() {
                        return;
                    }
                    tokio::time::sleep(DEBOUNCE).await;
                    while rx.try_recv().is_ok() {}
                }
                () = tokio::time::sleep(RESCAN) => {}
            }
            sync_directory(&engine, &source, &dir).await;
        }
    });
    Ok(DirectoryWatcher {
        _watcher: watcher,
        task,
    })
}

async fn sync_directory(engine: &PolicyEngine, source: &str, dir: &Path) {
    let dir = dir.to_path_buf();
    let cap = engine.limits().max_module_bytes;
    match tokio::task::spawn_blocking(move || read_policies(&dir, cap)).await {
        Ok(Ok(policies)) => {
            engine.sync(source, policies).await;
        }
        // Keep what is loaded: a transiently unreadable directory must not
        // unload every policy.
        Ok(Err(err)) => tracing::warn!(%source, error = %err, "cannot read the policy directory"),
        Err(err) => tracing::error!(%source, error = %err, "policy directory scan failed"),
    }
}

/// Reads every policy under `dir` (one subdirectory each). Files larger than
/// `max_file_bytes` are read only up to one byte past it, so the size check
/// in parsing refuses them without reading them whole.
pub fn read_policies(dir: &Path, max_file_bytes: usize) -> std::io::Result<Vec<PolicySource>> {
    let mut policies = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // `..data`, `..2024_...` and editor/hidden files.
        if name.starts_with('.') {
            continue;
        }
        // Follows symlinks, as kubelet's layout is made of them.
        if !std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let mut files = BTreeMap::new();
        for file in std::fs::read_dir(entry.path())? {
            let file = file?;
            let key = file.file_name().to_string_lossy().into_owned();
            if key.starts_with('.') || !std::fs::metadata(file.path()).is_ok_and(|m| m.is_file()) {
                continue;
            }
            let mut content = Vec::new();
            match std::fs::File::open(file.path())
                .and_then(|f| f.take(max_file_bytes as u64 + 1).read_to_end(&mut content))
            {
                Ok(_) => {
                    files.insert(key, content);
                }
                // A file swapped away mid-scan: the next event rescans.
                Err(err) => {
                    tracing::debug!(path = %file.path().display(), error = %err, "skipping unreadable policy file")
                }
            }
        }
        policies.push(PolicySource { name, files });
    }
    Ok(policies)
}
