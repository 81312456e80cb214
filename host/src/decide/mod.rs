//! Every decision of the operator, as pure functions of what was observed:
//! no I/O, unit-tested without a cluster or OCI (`decide::tests`).
//!
//! A pass over one ReservedIP: the controller fills an [`Observation`]
//! (`controller::observe`), [`decide`] says what to do, the controller makes
//! at most one OCI call (`controller::act`), [`conclude`] turns its answer
//! into the status, events and requeue, and the controller writes them once.
//!
//! - [`observation`]: what a pass saw, and [`what_to_read`] for the public IP.
//! - [`pass`]: [`decide`]: can the IP be held, what the policies allow, the call.
//! - [`decision`]: what a pass decided ([`Decision`], [`Plan`], [`Call`]).
//! - [`outcome`]: [`conclude`]: what the call's answer comes to.
//! - [`conclusion`]: the status, events and requeue a pass ends with.
//! - [`status`]: status fields and conditions; `Ready` derived in one place.
//! - [`take_over`]: `publicIPv4Address`: claiming an existing address.
//! - [`plan`]: the next step for a held IP.
//! - [`target`]: where the IP should be; [`floating`]: which pod a
//!   `podSelector` IP is on.
//! - [`ownership`]: whose a public IP is, by its tags.
//! - [`release`]: releasing an IP, on delete and for orphans.
//! - [`tenancy`]: what a namespace may do (the platform team's grants).
//! - [`wait`]: how long to wait for OCI to finish changing an IP.

pub mod conclusion;
pub mod decision;
pub mod floating;
pub mod observation;
pub mod outcome;
pub mod ownership;
pub mod pass;
pub mod plan;
pub mod release;
pub mod status;
pub mod take_over;
pub mod target;
pub mod tenancy;
#[cfg(test)]
mod tests;
pub mod wait;

pub use conclusion::{Conclusion, Note, Requeue};
pub use decision::{Call, Decision, Plan};
pub use observation::{Failure, Gate, How, Observation, PublicIpSeen, Read, Timing, what_to_read};
pub use outcome::{Outcome, conclude};
pub use pass::decide;
pub use target::{ResolvedTarget, Target};
