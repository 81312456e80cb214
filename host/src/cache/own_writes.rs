//! Telling the echo of our own status writes apart from real changes.
//!
//! Every status write comes back through the ReservedIP watch. Reconciling on
//! that echo re-reads OCI for nothing (the pass that wrote the status already
//! requeued itself for when it wants to look again), and it is most of the
//! calls an apply costs. [`trigger_key`] is the key the controller's trigger
//! stream filters on: it changes with the spec, the metadata that matter and a
//! status somebody else wrote, but not with a status this process wrote.
//! Nothing is skipped on the cache or on requeues, only on those triggers: a
//! forged or edited status still wakes the controller.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use kube::ResourceExt;

use crate::api::crd::{ReservedIP, ReservedIPStatus};

/// What this process last wrote to one ReservedIP.
#[derive(Default)]
struct Written {
    /// Hash of the status it was given.
    status: Option<u64>,
    /// The finalizer it was given.
    finalizer: Option<String>,
}

/// What this process wrote to each ReservedIP (by UID).
#[derive(Default)]
pub struct OwnWrites {
    written: Mutex<HashMap<String, Written>>,
}

impl OwnWrites {
    /// Records `status` as about to be written for `uid`. Recorded before the
    /// write, so the echo cannot overtake the record.
    pub fn remember(&self, uid: &str, status: &ReservedIPStatus) {
        self.lock().entry(uid.to_string()).or_default().status = Some(status_hash(Some(status)));
    }

    /// Records `finalizer` as about to be added to `uid` by a pass that goes
    /// on without waiting for the echo: the echo is no news, while the
    /// finalizer's removal by anyone else still is.
    pub fn remember_finalizer(&self, uid: &str, finalizer: &str) {
        self.lock().entry(uid.to_string()).or_default().finalizer = Some(finalizer.to_string());
    }

    /// Forgets a ReservedIP that is gone.
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// What this process last wrote to `rip`: the hash of the status and
    /// the finalizer it added.
    fn ours(&self, rip: &ReservedIP) -> (Option<u64>, Option<String>) {
        let uid = rip.metadata.uid.as_deref().unwrap_or_default();
        self.lock()
            .get(uid)
            .map_or((None, None), |w| (w.status, w.finalizer.clone()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Written>> {
        // Single inserts/removes: data stays consistent across a panic.
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The trigger key of `rip`: equal for two versions of the object that
    /// differ only by a status this process wrote (or by resourceVersion and
    /// managedFields).
    pub fn trigger_key(&self, rip: &ReservedIP) -> u64 {
        let mut h = DefaultHasher::new();
        let meta = &rip.metadata;
        meta.generation.hash(&mut h);
        meta.deletion_timestamp
            .as_ref()
            .map(|t| t.0.as_millisecond())
            .hash(&mut h);
        // The finalizer this process added counts as there from the start:
        // the pass that added it went on at once. Its removal is news.
        let (our_status, our_finalizer) = self.ours(rip);
        let finalizers = rip.finalizers();
        finalizers
            .iter()
            .filter(|f| Some(*f) != our_finalizer.as_ref())
            .collect::<Vec<_>>()
            .hash(&mut h);
        our_finalizer
            .is_some_and(|f| !finalizers.contains(&f))
            .hash(&mut h);
        meta.labels.hash(&mut h);
        meta.annotations.hash(&mut h);
        rip.owner_references()
            .iter()
            .map(|o| (&o.uid, &o.kind, &o.name))
            .collect::<Vec<_>>()
            .hash(&mut h);
        // The spec bumps `generation`; hashed as well for servers that do not.
        serde_json::to_vec(&rip.spec)
            .unwrap_or_default()
            .hash(&mut h);
        // A status nobody wrote yet and one we wrote are both "no news".
        let written = status_hash(rip.status.as_ref());
        let status = if rip.status.is_none() || our_status == Some(written) {
            0
        } else {
            written
        };
        status.hash(&mut h);
        h.finish()
    }
}

fn status_hash(status: Option<&ReservedIPStatus>) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_vec(&status).unwrap_or_default().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::crd::{ReservedIPSpec, State};

    fn rip(status: Option<ReservedIPStatus>) -> ReservedIP {
        let mut r = ReservedIP::new("web", ReservedIPSpec::default());
        r.metadata.uid = Some("u1".into());
        r.metadata.generation = Some(1);
        r.status = status;
        r
    }

    fn status(state: State) -> ReservedIPStatus {
        ReservedIPStatus {
            state: Some(state),
            ..Default::default()
        }
    }

    #[test]
    fn our_own_status_write_keeps_the_key() {
        let writes = OwnWrites::default();
        let before = writes.trigger_key(&rip(None));
        writes.remember("u1", &status(State::Allocated));
        assert_eq!(
            writes.trigger_key(&rip(Some(status(State::Allocated)))),
            before
        );
        writes.remember("u1", &status(State::Assigned));
        assert_eq!(
            writes.trigger_key(&rip(Some(status(State::Assigned)))),
            before
        );
    }

    #[test]
    fn a_status_written_by_someone_else_changes_the_key() {
        let writes = OwnWrites::default();
        writes.remember("u1", &status(State::Allocated));
        let ours = writes.trigger_key(&rip(Some(status(State::Allocated))));
        let forged = writes.trigger_key(&rip(Some(status(State::Assigned))));
        assert_ne!(ours, forged);
        // Another UID's record says nothing about this one.
        writes.forget("u1");
        writes.remember("u2", &status(State::Allocated));
        assert_ne!(
            writes.trigger_key(&rip(Some(status(State::Allocated)))),
            ours
        );
    }

    #[test]
    fn the_finalizer_we_added_keeps_the_key_until_someone_removes_it() {
        let writes = OwnWrites::default();
        let created = rip(None);
        let key = writes.trigger_key(&created);
        writes.remember_finalizer("u1", "ours");
        let mut added = created.clone();
        added.metadata.finalizers = Some(vec!["ours".into()]);
        assert_eq!(writes.trigger_key(&added), key, "the echo of our own add");
        let mut removed = added.clone();
        removed.metadata.finalizers = Some(vec![]);
        assert_ne!(writes.trigger_key(&removed), key, "removed by someone else");
        let mut other = added;
        other.metadata.finalizers = Some(vec!["ours".into(), "theirs".into()]);
        assert_ne!(writes.trigger_key(&other), key, "another finalizer");
    }

    #[test]
    fn spec_metadata_and_deletion_change_the_key() {
        let writes = OwnWrites::default();
        let base = rip(None);
        let key = writes.trigger_key(&base);
        let mut r = base.clone();
        r.metadata.generation = Some(2);
        assert_ne!(writes.trigger_key(&r), key);
        let mut r = base.clone();
        r.metadata.finalizers = Some(vec!["f".into()]);
        assert_ne!(writes.trigger_key(&r), key);
        let mut r = base.clone();
        r.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
        assert_ne!(writes.trigger_key(&r), key);
        let mut r = base.clone();
        r.spec.public_ipv4_pool = Some("ocid1.publicippool.oc1..p".into());
        assert_ne!(writes.trigger_key(&r), key);
        let mut r = base;
        r.metadata.resource_version = Some("42".into());
        assert_eq!(writes.trigger_key(&r), key);
    }
}
