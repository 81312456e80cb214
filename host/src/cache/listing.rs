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
//!   (`decide::Decision::Reread`).
//!
//! The IPs OCI is changing are looked at apart ([`IpListing::gathered`]):
//! while many are in transition at once (a burst), their looks gather into
//! one listing that begins after each of them asked (`cache::gather`), so it
//! is as fresh as a GetPublicIp each; an IP missing from it, or changed by
//! this process since it began, is still read with GetPublicIp. One IP alone
//! in transition is read with GetPublicIp: a listing costs more.
//!
//! [`InvalidatingWrites`] wraps the OCI client so that every write marks its
//! IP, whatever the answer: nobody has to remember to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use futures::FutureExt;

use super::gather::Gather;
use crate::oci::{
    CreatePublicIpDetails, Deletion, ListPublicIpsQuery, OciError, OciNetwork, OciResult,
    PrivateIp, PrivateIpFilter, PublicIp, PublicIpPool, Subnet, UpdatePublicIpDetails, Vnic,
    VnicAttachment,
};

/// How long the looks at IPs in transition gather at most, per page the
/// listing costs: a listing of two pages answers twice as many looks for
/// the same calls per look (in a burst, looks come at the write rate).
const TRANSITION_GATHER_PER_PAGE: Duration = Duration::from_secs(2);
/// However many pages: a look waits at most this long for its listing.
const TRANSITION_GATHER_MAX: Duration = Duration::from_secs(4);
/// How many looks one listing page should answer before it begins early.
const LOOKS_PER_PAGE: usize = 20;
/// The largest page of ListPublicIps, which the client asks for.
const PAGE: usize = 1000;

/// A listing's public IPs by OCID and when the list call began.
struct Listing {
    began: Instant,
    by_id: HashMap<String, PublicIp>,
}

impl Listing {
    fn new(began: Instant, ips: impl IntoIterator<Item = PublicIp>) -> Self {
        Self {
            began,
            by_id: ips.into_iter().map(|ip| (ip.id.clone(), ip)).collect(),
        }
    }
}

/// A gathered listing, or the error every joiner gets.
type GatheredListing = Result<Arc<Listing>, OciError>;

/// See the module docs. Shared by all reconciles.
pub struct IpListing {
    max_age: Duration,
    /// Held across the list call: concurrent lookups wait for one listing.
    current: tokio::sync::Mutex<Option<Arc<Listing>>>,
    /// When this process last changed (or saw changing) each IP.
    touched: Mutex<HashMap<String, Instant>>,
    /// The looks at IPs in transition, gathering.
    transitions: Gather<GatheredListing>,
    /// How many IPs the last listing held (how many pages the next costs).
    last_size: std::sync::atomic::AtomicUsize,
}

impl IpListing {
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            current: tokio::sync::Mutex::new(None),
            touched: Mutex::default(),
            transitions: Gather::default(),
            last_size: Default::default(),
        }
    }

    /// Marks `id` as changed now: listings begun before this moment no
    /// longer answer for it (the next lookup is a GetPublicIp).
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
            self.set_size(ips.len());
            *current = Some(Arc::new(Listing::new(began, ips)));
            self.forget_touches_before(began);
        }
        let Some(listing) = current.as_ref() else {
            return Ok(None);
        };
        Ok(self
            .answer(listing, id)
            .filter(|ip| !ip.lifecycle_state.is_transitional()))
    }

    /// `id`, which OCI is changing, as a listing begun after this call shows
    /// it, with the moment the listing began (when OCI was seen so), gathered
    /// with the looks of the `together` IPs in transition due by then; at most
    /// [`Self::transition_gather`] later. `None` when the caller must
    /// GetPublicIp (missing from the listing, or changed since it began).
    pub async fn gathered(
        &self,
        oci: &Arc<dyn OciNetwork>,
        compartment_id: &str,
        id: &str,
        together: usize,
    ) -> Result<Option<(PublicIp, Instant)>, OciError> {
        let enough = together.min(LOOKS_PER_PAGE * self.pages());
        let read = {
            let oci = Arc::clone(oci);
            let query = ListPublicIpsQuery::region(compartment_id);
            // (Alone after all, it still lists: as cheap as a read of its
            // IP while the compartment fits in a page, and it refreshes the
            // listing the IPs at rest are looked up in.)
            move |_joined| {
                async move {
                    let began = Instant::now();
                    let ips = oci.list_public_ips(&query).await?;
                    Ok(Arc::new(Listing::new(began, ips)))
                }
                .boxed()
            }
        };
        let listing = self
            .transitions
            .join(compartment_id, self.transition_gather(), enough, read)
            .await?;
        self.set_size(listing.by_id.len());
        self.offer_listing(Arc::clone(&listing)).await;
        Ok(self.answer(&listing, id).map(|ip| (ip, listing.began)))
    }

    /// How long the looks at IPs in transition gather for one listing at
    /// most: longer as the listing costs more pages.
    pub fn transition_gather(&self) -> Duration {
        let pages = u32::try_from(self.pages()).unwrap_or(u32::MAX);
        TRANSITION_GATHER_PER_PAGE
            .saturating_mul(pages)
            .min(TRANSITION_GATHER_MAX)
    }

    /// The pages the next listing costs, as the last one went.
    pub fn pages(&self) -> usize {
        self.last_size().div_ceil(PAGE).max(1)
    }

    /// Whether looks at IPs in transition gather for a listing now.
    pub fn gathering(&self, compartment_id: &str) -> bool {
        self.transitions.waiting(compartment_id) > 0
    }

    /// `id` as `listing` shows it, unless this process changed it since.
    fn answer(&self, listing: &Listing, id: &str) -> Option<PublicIp> {
        let touched_since = self
            .lock_touched()
            .get(id)
            .is_some_and(|t| *t >= listing.began);
        listing.by_id.get(id).filter(|_| !touched_since).cloned()
    }

    fn last_size(&self) -> usize {
        self.last_size.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set_size(&self, size: usize) {
        self.last_size
            .store(size, std::sync::atomic::Ordering::Relaxed);
    }

    /// Offers a listing made elsewhere (the orphan sweep lists the same
    /// compartment), begun at `began`.
    pub async fn offer(&self, began: Instant, ips: &[PublicIp]) {
        self.offer_listing(Arc::new(Listing::new(began, ips.iter().cloned())))
            .await;
    }

    async fn offer_listing(&self, listing: Arc<Listing>) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|l| l.began >= listing.began) {
            return;
        }
        self.forget_touches_before(listing.began);
        *current = Some(listing);
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

/// The OCI client with every write (create, update, delete) marking its IP
/// in the listing, whatever the answer: OCI may have applied a change whose
/// answer was lost, so listings begun before it no longer speak for that IP.
pub struct InvalidatingWrites {
    inner: Arc<dyn OciNetwork>,
    listing: Arc<IpListing>,
}

impl InvalidatingWrites {
    pub fn new(inner: Arc<dyn OciNetwork>, listing: Arc<IpListing>) -> Self {
        Self { inner, listing }
    }
}

#[async_trait]
impl OciNetwork for InvalidatingWrites {
    async fn create_public_ip(
        &self,
        details: &CreatePublicIpDetails,
        retry_token: &str,
    ) -> OciResult<PublicIp> {
        let created = self.inner.create_public_ip(details, retry_token).await;
        // An IP whose create answer was lost is not known by id: it is found
        // by its tags (recovery), never from a listing older than the create.
        if let Ok(ip) = &created {
            self.listing.touch(&ip.id);
        }
        created
    }

    async fn update_public_ip(
        &self,
        id: &str,
        details: &UpdatePublicIpDetails,
        if_match: Option<&str>,
    ) -> OciResult<PublicIp> {
        let updated = self.inner.update_public_ip(id, details, if_match).await;
        self.listing.touch(id);
        updated
    }

    async fn delete_public_ip(&self, id: &str, if_match: Option<&str>) -> OciResult<Deletion> {
        let deleted = self.inner.delete_public_ip(id, if_match).await;
        self.listing.touch(id);
        deleted
    }

    async fn get_public_ip(&self, id: &str) -> OciResult<PublicIp> {
        self.inner.get_public_ip(id).await
    }

    async fn get_public_ip_by_ip_address(&self, ip_address: &str) -> OciResult<PublicIp> {
        self.inner.get_public_ip_by_ip_address(ip_address).await
    }

    async fn get_public_ip_by_private_ip_id(
        &self,
        private_ip_id: &str,
    ) -> OciResult<Option<PublicIp>> {
        self.inner
            .get_public_ip_by_private_ip_id(private_ip_id)
            .await
    }

    async fn list_public_ips(&self, query: &ListPublicIpsQuery) -> OciResult<Vec<PublicIp>> {
        self.inner.list_public_ips(query).await
    }

    async fn list_private_ips(&self, filter: &PrivateIpFilter) -> OciResult<Vec<PrivateIp>> {
        self.inner.list_private_ips(filter).await
    }

    async fn get_private_ip(&self, id: &str) -> OciResult<PrivateIp> {
        self.inner.get_private_ip(id).await
    }

    async fn get_vnic(&self, id: &str) -> OciResult<Vnic> {
        self.inner.get_vnic(id).await
    }

    async fn list_vnic_attachments(
        &self,
        compartment_id: &str,
        instance_id: Option<&str>,
    ) -> OciResult<Vec<VnicAttachment>> {
        self.inner
            .list_vnic_attachments(compartment_id, instance_id)
            .await
    }

    async fn get_subnet(&self, id: &str) -> OciResult<Subnet> {
        self.inner.get_subnet(id).await
    }

    async fn list_public_ip_pools(&self, compartment_id: &str) -> OciResult<Vec<PublicIpPool>> {
        self.inner.list_public_ip_pools(compartment_id).await
    }

    async fn get_public_ip_pool(&self, id: &str) -> OciResult<PublicIpPool> {
        self.inner.get_public_ip_pool(id).await
    }

    fn write_wait(&self) -> Duration {
        self.inner.write_wait()
    }

    fn writes_at_once(&self) -> usize {
        self.inner.writes_at_once()
    }
}
