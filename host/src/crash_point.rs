//! Chosen crash points, for the reliability tests (issue 6).
//!
//! With `K8S_OCI_OPERATOR_TEST_CRASH_AT=<point>[@<n>]` in its environment the
//! process aborts, as a SIGKILL would stop it, the `n`-th time (default: the
//! first) it reaches `<point>`. Points are named where [`hit`] is called:
//! `before:<OCI operation>` and `after:<OCI operation>` around every OCI call
//! (e.g. `after:CreatePublicIp`: the call was made, its answer not yet used),
//! `before:status-write` and `after:status-write` around every status write,
//! and `before:finalizer-removal` (released, finalizer still on).
//!
//! Never set outside those tests; unset, a point costs one load of a
//! once-initialised value.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms a crash point.
pub const ENV: &str = "K8S_OCI_OPERATOR_TEST_CRASH_AT";

struct Armed {
    point: String,
    nth: u64,
    hits: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var(ENV).ok()?;
            let (point, nth) = match spec.rsplit_once('@') {
                Some((p, n)) => (p.to_string(), n.parse().unwrap_or(1)),
                None => (spec, 1),
            };
            Some(Armed {
                point,
                nth: nth.max(1),
                hits: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Marks a crash point: aborts here if the environment armed it and this is
/// its n-th hit.
pub fn hit(point: &str) {
    if let Some(a) = armed()
        && a.point == point
        && a.hits.fetch_add(1, Ordering::SeqCst) + 1 == a.nth
    {
        eprintln!("crash point {point} (hit {}): aborting", a.nth);
        std::process::abort();
    }
}

/// [`hit`] for the point `<stage>:<operation>`, formatted only when armed.
pub fn hit_oci(stage: &str, operation: &str) {
    if let Some(a) = armed()
        && a.point
            .strip_prefix(stage)
            .and_then(|r| r.strip_prefix(':'))
            == Some(operation)
    {
        hit(&a.point);
    }
}
