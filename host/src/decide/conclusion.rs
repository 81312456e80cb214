//! What a pass comes to: the status to write, the events to publish and
//! when to look again. A [`Draft`] collects them while the decisions run;
//! [`Draft::finish`] derives `Ready` and hands the [`Conclusion`] to the
//! controller, which publishes and writes it once.

use std::time::Duration;

use super::observation::{Observation, Timing};
use super::status::{Problem, set_ready};
use crate::api::conditions::{self, ALLOCATED, READY};
use crate::api::crd::{ReservedIPStatus, State};
use crate::oci::PublicIpState;

/// When the controller should look at the ReservedIP again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// At once (e.g. to read an IP fresh, or to assign a claimed address).
    Now,
    /// After this long; the pass went as planned (the backoff is reset).
    After(Duration),
    /// After the per-object exponential backoff, and not sooner than `at_least`.
    Backoff { at_least: Duration },
    /// OCI is changing the IP (it is in `state`): look again when it is
    /// likely done ([`super::wait::Waits`]). `began`: this pass's call
    /// started the change.
    Transition { state: PublicIpState, began: bool },
}

/// An event to publish on the ReservedIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

/// The end of a pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Conclusion {
    pub status: ReservedIPStatus,
    pub events: Vec<Note>,
    pub requeue: Requeue,
    /// The reason of the failure the pass records, if it failed.
    pub failure: Option<String>,
}

/// The status and events of a pass while it is being decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub status: ReservedIPStatus,
    pub events: Vec<Note>,
    pub generation: Option<i64>,
    pub timing: Timing,
    /// The state the pass started from (for "assigned" / "unassigned" events).
    pub was: Option<State>,
    /// The ReservedIP's namespace: messages name other ReservedIPs of it,
    /// never another namespace's.
    pub namespace: String,
}

impl Draft {
    pub fn new(obs: &Observation<'_>) -> Self {
        Self {
            status: obs.status.clone(),
            events: Vec::new(),
            generation: obs.generation,
            timing: obs.timing,
            was: obs.status.state,
            namespace: obs.owner.namespace.to_string(),
        }
    }

    pub fn condition(&mut self, type_: &str, ok: bool, reason: &str, message: &str) {
        conditions::set(
            &mut self.status.conditions,
            type_,
            ok,
            reason,
            message,
            self.generation,
        );
    }

    pub fn event(&mut self, warning: bool, reason: &str, message: String) {
        self.events.push(Note {
            warning,
            reason: reason.to_string(),
            message,
        });
    }

    /// Warns once per new reason: a repeat of the failure `Ready` already
    /// shows is not announced again.
    pub fn warn_once(&mut self, reason: &str, message: &str) {
        if self.ready_reason() != Some(reason) {
            self.event(true, reason, message.to_string());
        }
    }

    fn ready_reason(&self) -> Option<&str> {
        conditions::get(&self.status.conditions, READY).map(|c| c.reason.as_str())
    }

    /// Stops the pass: the IP cannot be held as the spec asks (an address
    /// that is someone else's, a policy refusal...) until something changes.
    pub fn blocked(mut self, reason: &str, message: &str) -> Conclusion {
        self.warn_once(reason, message);
        self.status.state = Some(State::Failed);
        self.condition(ALLOCATED, false, reason, message);
        let resync = self.timing.resync;
        Conclusion {
            failure: Some(reason.to_string()),
            ..self.finish(None, Requeue::After(resync))
        }
    }

    /// Stops the pass on a failed call: announced once, retried with backoff.
    /// A repeat of the same failure keeps the first message (and its
    /// opc-request-id): rewriting status on every retry would wake the
    /// controller through its own watch and defeat the backoff.
    pub fn failed(mut self, reason: &str, message: String) -> Conclusion {
        self.warn_once(reason, &message);
        let message = match conditions::get(&self.status.conditions, READY) {
            Some(c) if c.status == "False" && c.reason == reason => c.message.clone(),
            _ => message,
        };
        let problem = Problem {
            reason: reason.to_string(),
            message,
        };
        self.finish(
            Some(problem),
            Requeue::Backoff {
                at_least: Duration::ZERO,
            },
        )
    }

    /// The conclusion: `Ready` derived, the generation observed.
    pub fn finish(mut self, problem: Option<Problem>, requeue: Requeue) -> Conclusion {
        self.status.observed_generation = self.generation;
        set_ready(&mut self.status, problem.as_ref(), self.generation);
        Conclusion {
            status: self.status,
            events: self.events,
            requeue,
            failure: problem.map(|p| p.reason),
        }
    }
}
