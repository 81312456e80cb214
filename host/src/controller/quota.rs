//! Counting, per namespace, the ReservedIPs that hold or are allocating a
//! public IP, for the per-namespace cap (`decide::tenancy::check_quota`).
//!
//! The controller's cache says which ReservedIPs hold one (status names an
//! IP or an allocation marker), but it lags behind passes running at the same
//! time: two passes of one namespace could both see room for one more. So a
//! pass about to allocate also reserves its place here, counted under one
//! lock with the cache's view; the place is given back when the ReservedIP
//! ends a pass holding nothing, or is gone.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

use kube::ResourceExt;
use kube::runtime::reflector::Store;

use crate::api::crd::ReservedIP;

#[derive(Default)]
pub struct Quota {
    /// The controller's cache of ReservedIPs, once the controller runs.
    store: OnceLock<Store<ReservedIP>>,
    /// Per namespace, the UIDs that reserved a place and may not show in
    /// the cache yet.
    reserved: Mutex<HashMap<String, HashSet<String>>>,
}

impl Quota {
    /// Counts from this cache from now on.
    pub fn watch(&self, store: Store<ReservedIP>) {
        let _ = self.store.set(store);
    }

    /// How many other ReservedIPs of `namespace` hold or are allocating a
    /// public IP; `uid` is counted among them from now on (until
    /// [`Quota::give_back`]) when that leaves it under `cap`. Without a cap
    /// nothing is counted (0): a namespace the platform team left uncapped
    /// costs no bookkeeping.
    pub fn reserve(&self, namespace: &str, uid: &str, cap: Option<u32>) -> usize {
        let Some(cap) = cap else {
            return 0;
        };
        let mut reserved = self.reserved.lock().unwrap_or_else(|e| e.into_inner());
        let mut holders: HashSet<String> = reserved.get(namespace).cloned().unwrap_or_default();
        if let Some(store) = self.store.get() {
            holders.extend(
                store
                    .state()
                    .iter()
                    .filter(|r| r.namespace().as_deref() == Some(namespace))
                    .filter(|r| r.status.as_ref().is_some_and(|s| s.claims_an_ip()))
                    .filter_map(|r| r.uid()),
            );
        }
        holders.remove(uid);
        let others = holders.len();
        if others < cap as usize {
            reserved
                .entry(namespace.to_string())
                .or_default()
                .insert(uid.to_string());
        }
        others
    }

    /// `uid` holds nothing (any more): its place is free.
    pub fn give_back(&self, namespace: &str, uid: &str) {
        let mut reserved = self.reserved.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = reserved.get_mut(namespace) {
            set.remove(uid);
            if set.is_empty() {
                reserved.remove(namespace);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_reserved_under_the_cap_and_given_back() {
        let q = Quota::default();
        assert_eq!(q.reserve("a", "u1", Some(2)), 0);
        assert_eq!(q.reserve("a", "u2", Some(2)), 1);
        assert_eq!(q.reserve("a", "u3", Some(2)), 2, "full: u3 is not counted");
        assert_eq!(q.reserve("a", "u1", Some(2)), 1, "u1 counts the others");
        assert_eq!(q.reserve("b", "u4", Some(2)), 0, "per namespace");
        q.give_back("a", "u2");
        assert_eq!(q.reserve("a", "u3", Some(2)), 1);
        assert_eq!(q.reserve("a", "u5", None), 0, "no cap: nothing counted");
        assert_eq!(q.reserve("a", "u6", Some(3)), 2, "u5 took no place");
    }
}
