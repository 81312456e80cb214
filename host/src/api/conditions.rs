//! Status conditions, following the Kubernetes API conventions.
//!
//! `lastTransitionTime` only moves when a condition's status flips, so the
//! operator's own status writes never look like changes (no hot loops).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// `Ready`: the ReservedIP is in the state its spec asks for.
pub const READY: &str = "Ready";
/// `Allocated`: a public IP is held.
pub const ALLOCATED: &str = "Allocated";
/// `Assigned`: the public IP is on the target the spec names.
pub const ASSIGNED: &str = "Assigned";

/// Sets condition `type_` in `conditions`, keeping its transition time unless
/// its status changes.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let now = Time(Timestamp::now());
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now;
            }
            c.status = status;
            c.reason = reason.to_string();
            c.message = message.to_string();
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: message.to_string(),
            observed_generation: generation,
            last_transition_time: now,
        }),
    }
}

/// The condition of this type, if set.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_on_flips() {
        let mut c = Vec::new();
        set(&mut c, READY, false, "Allocating", "", Some(1));
        let first = c[0].last_transition_time.clone();
        std::thread::sleep(std::time::Duration::from_millis(5));
        set(&mut c, READY, false, "Assigning", "waiting", Some(2));
        assert_eq!(
            c[0].last_transition_time, first,
            "same status keeps the time"
        );
        assert_eq!(c[0].reason, "Assigning");
        assert_eq!(c[0].observed_generation, Some(2));
        set(&mut c, READY, true, "Assigned", "", Some(2));
        assert_ne!(c[0].last_transition_time, first);
        assert_eq!(c.len(), 1);
        assert_eq!(get(&c, READY).map(|c| c.status.as_str()), Some("True"));
    }
}
