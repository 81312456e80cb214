//! What the controller remembers between passes to spare calls, each with
//! the rule that keeps it from ever being acted on stale.
//!
//! - [`own_writes`]: the statuses this process wrote, so their watch echo
//!   triggers nothing.
//! - [`listing`]: a recent listing of the compartment's public IPs, shared by
//!   drift checks and start-up, invalidated by every write; and the
//!   gathered look at the IPs in transition during a burst.
//! - [`gather`]: one read shared by the passes that asked for it before it
//!   began.
//! - [`nodes`]: the nodes pods run on (their instances), for a minute.

pub mod gather;
pub mod listing;
pub mod nodes;
pub mod own_writes;
