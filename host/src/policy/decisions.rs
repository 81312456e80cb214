//! Every decision the operator asks of the policies for one ReservedIP, in
//! its order: tag defaults, then the pool (for a new IP), then the target's
//! eligibility. One place, so that `policy eval` and `policy test` ask
//! exactly what a reconcile asks.

use super::abi::Target;
use super::{
    AllowedPools, Decision, EligibilityOutcome, PolicyEngine, PolicyError, PoolOutcome,
    ReservedIpInput, TagOutcome,
};

/// The decisions made for one ReservedIP.
#[derive(Clone, Debug)]
pub struct Decisions {
    pub tags: Decision<TagOutcome>,
    /// Asked only when the caller asked for a pool (a new IP not named by
    /// its address).
    pub pool: Option<Decision<PoolOutcome>>,
    /// Asked only when there is a target.
    pub eligibility: Option<Decision<EligibilityOutcome>>,
}

impl PolicyEngine {
    /// Asks every decision for `req`: the pool among `pools` when given,
    /// and whether `target` may have the IP when given.
    pub async fn decide_all(
        &self,
        req: &ReservedIpInput,
        pools: Option<&AllowedPools>,
        target: Option<&Target>,
    ) -> Result<Decisions, PolicyError> {
        let tags = self.tag_defaults(req).await?;
        let pool = match pools {
            Some(allowed) => Some(self.select_pool(req, allowed).await?),
            None => None,
        };
        let eligibility = match target {
            Some(target) => Some(self.eligibility(req, target).await?),
            None => None,
        };
        Ok(Decisions {
            tags,
            pool,
            eligibility,
        })
    }
}
