//! What a pass decided: conclude at once, read again, or make one call.

use super::conclusion::{Conclusion, Draft};
use super::observation::How;
use super::plan::Step;
use super::target::Target;
use crate::api::crd::ReservedIPStatus;
use crate::oci::{CreatePublicIpDetails, PublicIp, UpdatePublicIpDetails};

/// What to do with a ReservedIP in this pass.
// One value per pass, moved along and dropped: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// No OCI call: publish, write the status and requeue.
    Conclude(Conclusion),
    /// A call would follow an observation from the shared listing (up to a
    /// minute old, no etag): read the IP fresh and decide again, now.
    Reread { id: String },
    /// One OCI call; `decide::outcome::conclude` turns its answer into the
    /// pass's conclusion.
    Act(Plan),
}

/// One OCI call and what concluding it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub step: Step,
    pub call: Call,
    /// Where the IP should be (`Unassigned` for a claim: the target is
    /// looked at by the next pass).
    pub target: Target,
    /// The IP as observed, `None` before allocation.
    pub observed: Option<PublicIp>,
    pub draft: Draft,
}

/// An OCI call, fully specified.
// One value per pass (see `Decision`).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// Nothing to call (waiting for OCI, or nothing to do).
    None,
    /// CreatePublicIp; `marker` is written to status first when the token is
    /// new, so a crash after the call is recovered, never doubled.
    Create {
        details: CreatePublicIpDetails,
        token: String,
        marker: Option<ReservedIPStatus>,
    },
    /// UpdatePublicIp, with if-match when the change must not race another.
    Update {
        id: String,
        details: UpdatePublicIpDetails,
        if_match: Option<String>,
    },
}

/// The public IP this ReservedIP holds, as far as this pass can tell.
pub(super) enum Held {
    /// This IP, as read (`how`).
    Ip(PublicIp, How),
    /// An address nobody owns that the spec asks for: claim it first.
    Claim(PublicIp),
    /// None yet: allocate.
    None,
}
