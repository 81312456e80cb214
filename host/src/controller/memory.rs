//! What this process remembers per ReservedIP (by UID) between passes. Lost
//! on restart by design: each item only spares a call, and the pass without
//! it reads OCI instead.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;

use crate::decide::ResolvedTarget;

#[derive(Default)]
pub struct Memory {
    /// Consecutive failures, for backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// The private IP the public IP was last sent to, while status cannot say
    /// it yet (it records a target once assigned): the poll that watches an
    /// assignment finish needs no new lookup.
    sent_to: Mutex<HashMap<String, ResolvedTarget>>,
    /// The public IP (id, etag) last read fresh, ours and at rest, with no
    /// change since: a delete can go straight to DeletePublicIp with that
    /// etag, which OCI refuses if the IP changed in any way since.
    at_rest: Mutex<HashMap<String, (String, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Single inserts and removes: the data stays consistent across a panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Memory {
    /// Exponential backoff with jitter: 1s, 2s, 4s ... capped at 5 min.
    pub fn backoff(&self, uid: &str) -> Duration {
        let mut failures = lock(&self.failures);
        let n = failures.entry(uid.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        let base = Duration::from_secs(1u64 << (*n - 1).min(8)).min(Duration::from_secs(300));
        base.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
    }

    /// A pass went as planned: the next failure backs off from the start.
    pub fn succeeded(&self, uid: &str) {
        lock(&self.failures).remove(uid);
    }

    pub fn sent_to(&self, uid: &str) -> Option<ResolvedTarget> {
        lock(&self.sent_to).get(uid).cloned()
    }

    pub fn send(&self, uid: &str, target: ResolvedTarget) {
        lock(&self.sent_to).insert(uid.to_string(), target);
    }

    /// The IP at rest, as `(id, etag)`.
    pub fn at_rest(&self, uid: &str) -> Option<(String, String)> {
        lock(&self.at_rest).get(uid).cloned()
    }

    /// Remembers the IP at rest, or (`None`) forgets it once it changes.
    pub fn set_at_rest(&self, uid: &str, ip: Option<(String, String)>) {
        let mut at_rest = lock(&self.at_rest);
        match ip {
            Some(ip) => at_rest.insert(uid.to_string(), ip),
            None => at_rest.remove(uid),
        };
    }

    pub fn forget(&self, uid: &str) {
        self.succeeded(uid);
        lock(&self.sent_to).remove(uid);
        lock(&self.at_rest).remove(uid);
    }
}
