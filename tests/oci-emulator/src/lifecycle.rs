//! Public IP lifecycle: how long each transitional state lasts, and advancing
//! IPs whose time has come.
//!
//! Transitions are evaluated lazily: every API or admin call first advances
//! the world to "now". To a client this is indistinguishable from a background
//! worker, and it keeps the logic pure (tests pass their own `Instant`).

use crate::model::{PublicIp, PublicIpState};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Durations of the transitional states, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Timing {
    /// PROVISIONING -> AVAILABLE (reserved IP created without a target).
    pub provisioning_ms: u64,
    /// ASSIGNING -> ASSIGNED (create with a target, assign, move).
    pub assigning_ms: u64,
    /// UNASSIGNING -> AVAILABLE.
    pub unassigning_ms: u64,
    /// TERMINATING -> TERMINATED.
    pub terminating_ms: u64,
    /// How long a TERMINATED IP stays visible before it vanishes.
    pub terminated_retention_ms: u64,
}

impl Default for Timing {
    /// Roughly what OCI shows: a second or two per transition.
    fn default() -> Self {
        Self {
            provisioning_ms: 1000,
            assigning_ms: 2000,
            unassigning_ms: 1000,
            terminating_ms: 1000,
            terminated_retention_ms: 60_000,
        }
    }
}

impl Timing {
    /// Fast transitions for tests.
    pub fn fast() -> Self {
        Self {
            provisioning_ms: 50,
            assigning_ms: 50,
            unassigning_ms: 50,
            terminating_ms: 50,
            terminated_retention_ms: 500,
        }
    }

    /// How long `state` lasts before the next step; `None` for stable states.
    fn duration_of(&self, state: PublicIpState) -> Option<Duration> {
        let ms = match state {
            PublicIpState::Provisioning => self.provisioning_ms,
            PublicIpState::Assigning => self.assigning_ms,
            PublicIpState::Unassigning => self.unassigning_ms,
            PublicIpState::Terminating => self.terminating_ms,
            PublicIpState::Terminated => self.terminated_retention_ms,
            PublicIpState::Available | PublicIpState::Assigned | PublicIpState::Unassigned => {
                return None;
            }
        };
        Some(Duration::from_millis(ms))
    }
}

/// Puts `ip` into `state` from `now`, scheduling its completion, with a new etag.
pub fn enter(ip: &mut PublicIp, state: PublicIpState, now: Instant, timing: &Timing) {
    ip.lifecycle_state = state;
    ip.due = timing.duration_of(state).map(|d| now + d);
    ip.etag = new_etag();
    match state {
        PublicIpState::Assigning => {
            // OCI shows the target in assignedEntityId at once, but keeps the
            // deprecated privateIpId null until the assignment completes.
            ip.assigned_entity_type = Some("PRIVATE_IP".to_string());
            ip.private_ip_id = None;
        }
        PublicIpState::Assigned => {
            ip.private_ip_id = ip.assigned_entity_id.clone();
        }
        PublicIpState::Available | PublicIpState::Unassigned | PublicIpState::Terminated => {
            ip.assigned_entity_id = None;
            ip.assigned_entity_type = None;
            ip.private_ip_id = None;
        }
        PublicIpState::Provisioning | PublicIpState::Unassigning | PublicIpState::Terminating => {}
    }
}

/// What [`advance`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advanced {
    Unchanged,
    Changed,
    /// TERMINATED long enough: remove it from the world.
    Vanished,
}

/// Applies every transition of `ip` that is due at `now` (several, if the
/// caller has not looked for a while).
pub fn advance(ip: &mut PublicIp, now: Instant, timing: &Timing) -> Advanced {
    let mut result = Advanced::Unchanged;
    while let Some(due) = ip.due {
        if due > now {
            break;
        }
        let next = match ip.lifecycle_state {
            PublicIpState::Provisioning | PublicIpState::Unassigning => PublicIpState::Available,
            PublicIpState::Assigning => PublicIpState::Assigned,
            PublicIpState::Terminating => PublicIpState::Terminated,
            PublicIpState::Terminated => return Advanced::Vanished,
            PublicIpState::Available | PublicIpState::Assigned | PublicIpState::Unassigned => {
                ip.due = None;
                break;
            }
        };
        // The next state starts when the previous one ended, not when we looked.
        enter(ip, next, due, timing);
        result = Advanced::Changed;
    }
    result
}

/// A fresh opaque etag.
pub fn new_etag() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Lifetime, Scope};

    fn ip(state: PublicIpState) -> PublicIp {
        PublicIp {
            id: "ip".into(),
            ip_address: "192.0.2.1".into(),
            lifetime: Lifetime::Reserved,
            lifecycle_state: state,
            assigned_entity_id: None,
            assigned_entity_type: None,
            private_ip_id: None,
            compartment_id: "c".into(),
            display_name: None,
            freeform_tags: Default::default(),
            defined_tags: Default::default(),
            scope: Scope::Region,
            availability_domain: None,
            public_ip_pool_id: None,
            time_created: String::new(),
            etag: String::new(),
            due: None,
            created: None,
        }
    }

    #[test]
    fn assigning_becomes_assigned_with_private_ip_id() {
        let timing = Timing::fast();
        let start = Instant::now();
        let mut ip = ip(PublicIpState::Available);
        ip.assigned_entity_id = Some("p1".into());
        enter(&mut ip, PublicIpState::Assigning, start, &timing);
        assert_eq!(ip.private_ip_id, None);
        assert_eq!(advance(&mut ip, start, &timing), Advanced::Unchanged);
        let later = start + Duration::from_millis(timing.assigning_ms);
        assert_eq!(advance(&mut ip, later, &timing), Advanced::Changed);
        assert_eq!(ip.lifecycle_state, PublicIpState::Assigned);
        assert_eq!(ip.private_ip_id.as_deref(), Some("p1"));
        assert_eq!(ip.due, None);
    }

    #[test]
    fn terminating_goes_all_the_way_when_late() {
        let timing = Timing::fast();
        let start = Instant::now();
        let mut ip = ip(PublicIpState::Assigned);
        ip.assigned_entity_id = Some("p1".into());
        enter(&mut ip, PublicIpState::Terminating, start, &timing);
        let just_terminated = start + Duration::from_millis(timing.terminating_ms);
        assert_eq!(
            advance(&mut ip, just_terminated, &timing),
            Advanced::Changed
        );
        assert_eq!(ip.lifecycle_state, PublicIpState::Terminated);
        assert_eq!(ip.assigned_entity_id, None);
        let much_later = start + Duration::from_secs(10);
        assert_eq!(advance(&mut ip, much_later, &timing), Advanced::Vanished);
    }

    #[test]
    fn unassigning_frees_the_ip() {
        let timing = Timing::fast();
        let start = Instant::now();
        let mut ip = ip(PublicIpState::Assigned);
        ip.assigned_entity_id = Some("p1".into());
        enter(&mut ip, PublicIpState::Unassigning, start, &timing);
        advance(&mut ip, start + Duration::from_secs(1), &timing);
        assert_eq!(ip.lifecycle_state, PublicIpState::Available);
        assert_eq!(ip.assigned_entity_id, None);
    }
}
