//! Handing freed heap memory back to the operating system.
//!
//! glibc's allocator keeps memory a process freed for later reuse, and its
//! threshold for giving large blocks their own mappings grows with the
//! largest block freed: after a burst has parsed many large OCI listings
//! (a page of 1,000 public IPs is about a megabyte of JSON), the freed
//! memory stays in the process's RSS, which is what a memory limit counts.
//! `malloc_trim` returns the free pages; asking every few seconds costs
//! microseconds. Other allocators (musl's) return memory by themselves.

use std::time::Duration;

/// How often freed memory is handed back.
const EVERY: Duration = Duration::from_secs(5);

/// Hands freed heap memory back every [`EVERY`], until the task is dropped.
pub async fn return_freed_memory() {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        trim();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim takes no pointers and is thread-safe in glibc; it
    // only releases pages no allocation uses.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
