//! Watches the benchmark's ReservedIPs and records, per object, when it was
//! first seen `assigned` and when it was deleted. Times come from the watch
//! events themselves, so waiting loops do not add their polling period.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Client;
use kube::api::DynamicObject;
use kube::runtime::watcher::{self, Event};

use crate::error::{Error, Result};
use crate::workload::reservedips;

#[derive(Debug, Default)]
pub struct Seen {
    pub state: Option<String>,
    pub assigned_at: Option<Instant>,
    pub allocated_at: Option<Instant>,
    pub deleted_at: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct State {
    pub objects: HashMap<String, Seen>,
}

impl State {
    pub fn assigned_at(&self, name: &str) -> Option<Instant> {
        self.objects.get(name).and_then(|s| s.assigned_at)
    }

    pub fn allocated_at(&self, name: &str) -> Option<Instant> {
        self.objects.get(name).and_then(|s| s.allocated_at)
    }

    pub fn deleted_at(&self, name: &str) -> Option<Instant> {
        self.objects.get(name).and_then(|s| s.deleted_at)
    }

    /// How many of `names` are (or were) assigned, and the latest time one became so.
    pub fn assigned<'a>(
        &self,
        names: impl Iterator<Item = &'a String>,
    ) -> (usize, Option<Instant>) {
        names
            .filter_map(|n| self.assigned_at(n))
            .fold((0, None), |(n, last), t| (n + 1, last.max(Some(t))))
    }

    /// Objects whose current state is `state`.
    pub fn in_state(&self, state: &str) -> usize {
        self.objects
            .values()
            .filter(|s| s.deleted_at.is_none() && s.state.as_deref() == Some(state))
            .count()
    }
}

pub struct Tracker {
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Tracker {
    pub fn start(client: &Client) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let stream = watcher::watcher(reservedips(client), watcher::Config::default());
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                let now = Instant::now();
                // A watch error is retried by the watcher itself; the next
                // (re)list brings the state back.
                let Ok(event) = event else { continue };
                let mut st = lock(&shared);
                match event {
                    Event::Apply(obj) | Event::InitApply(obj) => observe(&mut st, &obj, now),
                    Event::Delete(obj) => {
                        if let Some(name) = obj.metadata.name {
                            st.objects.entry(name).or_default().deleted_at = Some(now);
                        }
                    }
                    Event::Init | Event::InitDone => {}
                }
            }
        });
        Self { state, task }
    }

    /// Waits until `done` holds for the watched state.
    pub async fn wait(
        &self,
        what: &str,
        max: Duration,
        done: impl Fn(&State) -> bool,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            if done(&lock(&self.state)) {
                return Ok(());
            }
            if start.elapsed() > max {
                return Err(Error::Timeout(max, what.to_string()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&lock(&self.state))
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic elsewhere while holding it leaves plain data behind: keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn observe(st: &mut State, obj: &DynamicObject, now: Instant) {
    let Some(name) = obj.metadata.name.clone() else {
        return;
    };
    let state = obj
        .data
        .get("status")
        .and_then(|s| s.get("state"))
        .and_then(|s| s.as_str())
        .map(str::to_string);
    let seen = st.objects.entry(name).or_default();
    if state.as_deref() == Some("assigned") && seen.assigned_at.is_none() {
        seen.assigned_at = Some(now);
    }
    if state.as_deref() == Some("allocated") && seen.allocated_at.is_none() {
        seen.allocated_at = Some(now);
    }
    seen.state = state;
    seen.deleted_at = None;
}
