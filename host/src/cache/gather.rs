//! One read for many passes that need the same one at about the same time.
//!
//! In a burst, hundreds of passes each want a listing that answers for all
//! of them (the private IPs of one VNIC, the compartment's public IPs). A
//! pass *joins* the read gathering for a key; the read begins when enough
//! passes joined or its wait is over, and answers everyone who joined.
//!
//! Why this is as safe as a read of one's own: a read begins only after
//! every pass that gets its answer had joined, i.e. after each of them asked.
//! What it shows is at least as recent as what a read each would have shown
//! (the rule that a write is only ever based on a fresh read still holds);
//! a pass that comes after the read began joins the next one.
//!
//! Written here rather than taken from a crate: the request-coalescing crates
//! share a read with whoever asks while it is *in flight*, which is exactly
//! what must not happen here (an in-flight read began before the newcomer asked).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::debug;

/// A gathered read's answer, shared by those who joined it.
pub type Gathered<T> = Shared<BoxFuture<'static, T>>;

/// The read gathering for one key, not begun yet.
struct Pending<T: Clone> {
    id: u64,
    joined: usize,
    enough: usize,
    /// Wakes the read before its wait is over once enough have joined.
    start: Arc<Notify>,
    read: Gathered<T>,
}

/// See the module docs. Shared by all passes.
pub struct Gather<T: Clone> {
    pending: Arc<Mutex<HashMap<String, Pending<T>>>>,
    /// Reads begun and not answered yet, by key.
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    next_id: AtomicU64,
}

impl<T: Clone + Send + Sync + 'static> Default for Gather<T> {
    fn default() -> Self {
        Self {
            pending: Arc::default(),
            in_flight: Arc::default(),
            next_id: AtomicU64::new(0),
        }
    }
}

/// Counts a read in flight for its key while it lives.
struct InFlight {
    reads: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl InFlight {
    fn new(reads: &Arc<Mutex<HashMap<String, usize>>>, key: &str) -> Self {
        *lock(reads).entry(key.to_string()).or_default() += 1;
        Self {
            reads: Arc::clone(reads),
            key: key.to_string(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut reads = lock(&self.reads);
        if let Some(n) = reads.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                reads.remove(&self.key);
            }
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Gather<T> {
    /// Joins the read gathering for `key`, or starts gathering one: it
    /// begins `wait` from now (the first joiner's wait), or as soon as
    /// enough passes joined. `enough`: how many passes this one expects to
    /// join from now on, itself included (the fewest any joiner expects
    /// counts: the last to come knows best that no one else will). `read`
    /// makes the call (only the first joiner's is used), told how many
    /// joined: one alone may have a cheaper read of its own.
    pub fn join<F>(&self, key: &str, wait: Duration, enough: usize, read: F) -> Gathered<T>
    where
        F: FnOnce(usize) -> BoxFuture<'static, T> + Send + 'static,
    {
        let mut pending = lock(&self.pending);
        if let Some(p) = pending.get_mut(key) {
            p.enough = p.enough.min(p.joined.saturating_add(enough));
            p.joined += 1;
            if p.joined >= p.enough {
                p.start.notify_one();
            }
            return p.read.clone();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let start = Arc::new(Notify::new());
        let read = {
            let pending = Arc::clone(&self.pending);
            let start = Arc::clone(&start);
            let in_flight = Arc::clone(&self.in_flight);
            let key = key.to_string();
            let deadline = Instant::now() + wait;
            let asked = Instant::now();
            async move {
                if enough > 1 && !wait.is_zero() {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = start.notified() => {}
                    }
                }
                let joined = {
                    // From here on, newcomers gather for the next read.
                    let mut pending = lock(&pending);
                    match pending.get(&key) {
                        Some(p) if p.id == id => pending.remove(&key).map_or(0, |p| p.joined),
                        _ => 0,
                    }
                };
                debug!(%key, joined, enough, gathered_ms = asked.elapsed().as_millis(), "gathered read begins");
                let _in_flight = InFlight::new(&in_flight, &key);
                read(joined).await
            }
            .boxed()
            .shared()
        };
        pending.insert(
            key.to_string(),
            Pending {
                id,
                joined: 1,
                enough,
                start,
                read: read.clone(),
            },
        );
        read
    }

    /// How many passes wait for the read gathering for `key` (0: none).
    pub fn waiting(&self, key: &str) -> usize {
        lock(&self.pending).get(key).map_or(0, |p| p.joined)
    }

    /// Whether a read for `key` has begun and not been answered yet.
    pub fn in_flight(&self, key: &str) -> bool {
        lock(&self.in_flight).contains_key(key)
    }
}

/// The map is only ever changed by single inserts and removes: a panic
/// elsewhere cannot leave it half-changed, so a poisoned lock is taken as is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A read that counts its calls and answers with the call's number and
    /// when it began.
    fn counting(
        calls: &Arc<AtomicUsize>,
    ) -> impl FnOnce(usize) -> BoxFuture<'static, (usize, Instant)> + Send + use<> {
        let calls = Arc::clone(calls);
        move |_| {
            async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                let began = Instant::now();
                tokio::time::sleep(Duration::from_millis(50)).await;
                (n, began)
            }
            .boxed()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn passes_that_join_before_the_read_begins_share_it() {
        let gather = Gather::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let wait = Duration::from_secs(1);
        let first = gather.join("vnic", wait, 100, counting(&calls));
        tokio::time::advance(Duration::from_millis(300)).await;
        let asked_second = Instant::now();
        let second = gather.join("vnic", wait, 100, counting(&calls));
        assert_eq!(gather.waiting("vnic"), 2);
        let (a, b) = tokio::join!(first, second);
        assert_eq!(a, b);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // It began after the last joiner asked: fresh for both.
        assert!(b.1 >= asked_second);
        assert_eq!(gather.waiting("vnic"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pass_that_comes_while_the_read_is_in_flight_gets_the_next_one() {
        let gather = Gather::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let first = tokio::spawn(gather.join("vnic", Duration::ZERO, 1, counting(&calls)));
        // Let the first read begin, then ask while it is in flight.
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(gather.in_flight("vnic"));
        let asked = Instant::now();
        let second = gather
            .join("vnic", Duration::ZERO, 1, counting(&calls))
            .await;
        let first = first.await.expect("first read");
        assert!(!gather.in_flight("vnic"));
        assert_eq!((first.0, second.0), (1, 2));
        assert!(first.1 < asked && second.1 >= asked);
    }

    #[tokio::test(start_paused = true)]
    async fn enough_joiners_start_the_read_before_its_wait_is_over() {
        let gather = Gather::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let reads: Vec<_> = (0..3)
            .map(|_| gather.join("compartment", Duration::from_secs(5), 3, counting(&calls)))
            .collect();
        let answers = futures::future::join_all(reads).await;
        assert!(answers.iter().all(|a| a.0 == 1));
        assert!(answers[0].1 - start < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_joiner_that_expects_no_one_else_starts_the_read() {
        let gather = Gather::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let wait = Duration::from_secs(5);
        // The first expects 5; the second knows only itself is left.
        let first = gather.join("compartment", wait, 5, counting(&calls));
        let second = gather.join("compartment", wait, 1, counting(&calls));
        let (a, b) = tokio::join!(first, second);
        assert_eq!((a.0, b.0), (1, 1));
        assert!(a.1 - start < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_read_is_told_how_many_joined() {
        let gather = Gather::<usize>::default();
        let told = |joined| async move { joined }.boxed();
        let wait = Duration::from_millis(100);
        // Alone until its wait is over.
        assert_eq!(gather.join("vnic", wait, 10, told).await, 1);
        // Three.
        let reads: Vec<_> = (0..3)
            .map(|_| gather.join("vnic", wait, 10, told))
            .collect();
        assert_eq!(futures::future::join_all(reads).await, vec![3, 3, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_gather_apart() {
        let gather = Gather::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let wait = Duration::from_millis(100);
        let a = gather.join("vnic-a", wait, 10, counting(&calls));
        let b = gather.join("vnic-b", wait, 10, counting(&calls));
        let (a, b) = tokio::join!(a, b);
        assert_ne!(a.0, b.0);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_whose_first_joiner_gave_up_is_run_by_the_others() {
        let gather = Gather::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let wait = Duration::from_millis(100);
        drop(gather.join("vnic", wait, 10, counting(&calls)));
        let second = gather.join("vnic", wait, 10, counting(&calls)).await;
        assert_eq!(second.0, 1);
    }
}
