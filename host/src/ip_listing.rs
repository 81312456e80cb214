//! A recent listing of the compartment's public IPs, shared by reconciles.
//!
//! A ReservedIP at rest is checked for drift now and then, and every one is
//! looked at when the operator starts. One GetPublicIp each would cost OCI
//! as many calls as there are ReservedIPs (2,000 at start-up for 2,000); one
//! ListPublicIps returns a thousand per page. So a pass that wants to *look*
//! at its IP asks [`IpListing::lookup`], which answers from a listing at most
//! `max_age` old, taking a new one (one at a time, the others wait for it)
//! when there is none.
//!
//! The listing is only trusted where it cannot be behind our own work:
//! - an IP this process changed (or saw changing) after the listing began is
//!   not answered from it: the caller reads it with GetPublicIp;
//! - an IP absent from the listing, or in a transitional state, likewise
//!   (absent may just mean "created a moment ago", and OCI lists are
//!   eventually consistent);
//! - the listing never carries an etag, and a pass never *acts* on a listed
//!   observation: a pass that would change the IP reads it fresh first
//!   (see `reconcile::apply`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::oci::{ListPublicIpsQuery, OciError, OciNetwork, PublicIp};

/// A listing's public IPs by OCID and when the list call began.
struct Listing {
    began: Instant,
    by_id: HashMap<String, PublicIp>,
}

/// See the module docs. Shared by all reconciles.
pub struct IpListing {
    max_age: Duration,
    /// Held across the list call: concurrent lookups wait for one listing.
    current: tokio::sync::Mutex<Option<Listing>>,
    /// When this process last changed (or saw changing) each IP.
    touched: Mutex<HashMap<String, Instant>>,
}

impl IpListing {
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            current: tokio::sync::Mutex::new(None),
            touched: Mutex::default(),
        }
    }

    /// Marks `id` as changed now: listings begun before this moment no
    /// longer answer for it.
    pub fn touch(&self, id: &str) {
        self.lock_touched().insert(id.to_string(), Instant::now());
    }

    /// `id` as a listing at most `max_age` old shows it, listing the
    /// compartment if needed; `None` when the caller must GetPublicIp.
    pub async fn lookup(
        &self,
        oci: &dyn OciNetwork,
        compartment_id: &str,
        id: &str,
    ) -> Result<Option<PublicIp>, OciError> {
        let mut current = self.current.lock().await;
        let fresh = current
            .as_ref()
            .is_some_and(|l| l.began.elapsed() < self.max_age);
        if !fresh {
            let began = Instant::now();
            let ips = oci
                .list_public_ips(&ListPublicIpsQuery::region(compartment_id))
                .await?;
            *current = Some(Listing {
                began,
                by_id: ips.into_iter().map(|ip| (ip.id.clone(), ip)).collect(),
            });
            self.forget_touches_before(began);
        }
        let Some(listing) = current.as_ref() else {
            return Ok(None);
        };
        let touched_since = self
            .lock_touched()
            .get(id)
            .is_some_and(|t| *t >= listing.began);
        Ok(listing
            .by_id
            .get(id)
            .filter(|ip| !touched_since && !ip.lifecycle_state.is_transitional())
            .cloned())
    }

    /// Offers a listing made elsewhere (the orphan sweep lists the same
    /// compartment), begun at `began`.
    pub async fn offer(&self, began: Instant, ips: &[PublicIp]) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|l| l.began >= began) {
            return;
        }
        *current = Some(Listing {
            began,
            by_id: ips.iter().map(|ip| (ip.id.clone(), ip.clone())).collect(),
        });
        self.forget_touches_before(began);
    }

    /// A listing replaces only an older one, so touches from before the
    /// current listing began say nothing any more.
    fn forget_touches_before(&self, began: Instant) {
        self.lock_touched().retain(|_, t| *t >= began);
    }

    fn lock_touched(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.touched.lock().unwrap_or_else(|e| e.into_inner())
    }
}
