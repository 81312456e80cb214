//! [`HttpOciClient`]: the [`OciNetwork`] calls over HTTP, each signed by the
//! credentials' [`RequestSigner`].
//!
//! We build requests ourselves (rather than through an SDK's client) because
//! the signer must see the opc-retry-token and if-match headers, and because
//! the endpoint must be configurable (the emulator speaks plain HTTP).

use super::OciNetwork;
use super::auth::{OciCredentials, RequestSigner};
use super::error::{OciError, OciResult};
use super::model::*;
use super::request::*;
use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// Safety stop for pagination: a server that keeps returning opc-next-page
/// must not keep us looping forever.
const MAX_PAGES: usize = 10_000;
/// Page size asked for in list calls (OCI's maximum for these lists).
const DEFAULT_PAGE_LIMIT: u32 = 1000;

/// [`OciNetwork`] over HTTP(S).
pub struct HttpOciClient {
    http: reqwest::Client,
    /// `<endpoint>/20160918`, without trailing slash.
    base: Url,
    signer: Arc<dyn RequestSigner>,
    page_limit: u32,
}

impl std::fmt::Debug for HttpOciClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOciClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl HttpOciClient {
    /// A client for `endpoint` (e.g. [`super::region_endpoint`]'s or the emulator's
    /// `http://127.0.0.1:<port>`); every request gives up after `timeout`.
    pub fn new(credentials: OciCredentials, endpoint: &str, timeout: Duration) -> OciResult<Self> {
        let base = api_base(endpoint)?;
        let signer = credentials.signer;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("k8s-oci-operator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OciError::Config(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            signer,
            page_limit: DEFAULT_PAGE_LIMIT,
        })
    }

    /// Asks for `limit` items per page in list calls (default 1000); small
    /// values exercise pagination in tests.
    pub fn with_page_limit(mut self, limit: u32) -> Self {
        self.page_limit = limit.max(1);
        self
    }

    /// The API base URL requests go to (`<endpoint>/20160918`).
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// Sends one signed request and returns the successful answer; non-2xx
    /// answers become [`OciError::Service`].
    async fn send(&self, call: Call<'_>) -> OciResult<Answer> {
        match self.send_once(&call).await {
            // A session token OCI no longer accepts (revoked, or expired by
            // OCI's clock): the signer renews it, and the request goes once
            // more. API keys do not change, so their 401 stands.
            Err((error, signed))
                if error.status() == Some(401) && self.signer.unauthorized(&signed) =>
            {
                tracing::info!(
                    operation = call.operation,
                    "401 with a session token: retrying once with a renewed one"
                );
                self.send_once(&call).await.map_err(|(error, _)| error)
            }
            result => result.map_err(|(error, _)| error),
        }
    }

    /// One signed request; on failure also the headers it was signed with.
    async fn send_once(&self, call: &Call<'_>) -> Result<Answer, (OciError, HeaderMap)> {
        let operation = call.operation;
        let url = build_url(&self.base, call.path, &call.query);
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static("application/json"));
        if call.body.is_some() {
            headers.insert("content-type", HeaderValue::from_static("application/json"));
        }
        for (name, value) in &call.headers {
            let value = HeaderValue::from_str(value).map_err(|_| {
                let error = OciError::Signing {
                    operation,
                    message: format!("header {name} has characters HTTP does not allow"),
                };
                (error, HeaderMap::new())
            })?;
            headers.insert(*name, value);
        }
        // Signed last: the signature covers the headers added above.
        if let Err(error) = self
            .sign(
                operation,
                &call.method,
                &url,
                &mut headers,
                call.body.as_deref(),
            )
            .await
        {
            return Err((error, headers));
        }
        // What a failure hands back for `RequestSigner::unauthorized`: the
        // signature (it names the keyId), not a copy of every header.
        let mut signed = HeaderMap::new();
        if let Some(authorization) = headers.get("authorization") {
            signed.insert("authorization", authorization.clone());
        }
        let failed = |error: OciError, signed: &HeaderMap| (error, signed.clone());

        let mut request = self
            .http
            .request(call.method.clone(), url.clone())
            .headers(headers);
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let started = Instant::now();
        crate::crash_point::hit_oci("before", operation);
        let response = request
            .send()
            .await
            .map_err(|e| transport(operation, started, &e));
        crate::crash_point::hit_oci("after", operation);
        let response = response.map_err(|e| failed(e, &signed))?;
        let status = response.status();
        let response_headers = response.headers().clone();
        let request_id = header(&response_headers, "opc-request-id");
        let body = response
            .bytes()
            .await
            .map_err(|e| failed(transport(operation, started, &e), &signed))?;
        tracing::debug!(
            operation,
            method = %call.method,
            path = url.path(),
            status = status.as_u16(),
            request_id = request_id.as_deref().unwrap_or(""),
            duration_ms = started.elapsed().as_millis() as u64,
            "OCI call"
        );
        if !status.is_success() {
            return Err(failed(
                service_error(operation, status, request_id, &body),
                &signed,
            ));
        }
        Ok(Answer {
            operation,
            status,
            headers: response_headers,
            request_id,
            body: body.to_vec(),
        })
    }

    async fn sign(
        &self,
        operation: &'static str,
        method: &Method,
        url: &Url,
        headers: &mut HeaderMap,
        body: Option<&[u8]>,
    ) -> OciResult<()> {
        self.signer
            .sign(method, url, headers, body)
            .await
            .map_err(|message| OciError::Signing { operation, message })
    }

    /// Follows `opc-next-page` until the list is complete.
    async fn list_all<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
        query: Vec<(&'static str, String)>,
        wrapped_in_items: bool,
    ) -> OciResult<Vec<T>> {
        let mut all = Vec::new();
        let mut page: Option<String> = None;
        let mut previous: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = query.clone();
            query.push(("limit", self.page_limit.to_string()));
            if let Some(page) = page.take() {
                query.push(("page", page.clone()));
                previous = Some(page);
            }
            let answer = self
                .send(Call::new(operation, Method::GET, path).query(query))
                .await?;
            let items: Vec<T> = if wrapped_in_items {
                answer.json::<Items<T>>()?.items
            } else {
                answer.json()?
            };
            all.extend(items);
            match header(&answer.headers, "opc-next-page") {
                // The same token twice would loop forever: a broken server.
                Some(next) if previous.as_deref() == Some(next.as_str()) => {
                    return Err(OciError::Decode {
                        operation,
                        status: 200,
                        message: format!("opc-next-page repeated the token {next:?}; giving up"),
                        request_id: None,
                    });
                }
                Some(next) if !next.is_empty() => page = Some(next),
                _ => return Ok(all),
            }
        }
        Err(OciError::Decode {
            operation,
            status: 200,
            message: format!("more than {MAX_PAGES} pages; giving up"),
            request_id: None,
        })
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
    ) -> OciResult<(T, Option<String>)> {
        let answer = self.send(Call::new(operation, Method::GET, path)).await?;
        Ok((answer.json()?, header(&answer.headers, "etag")))
    }

    async fn public_ip_from(&self, call: Call<'_>) -> OciResult<PublicIp> {
        let answer = self.send(call).await?;
        let mut ip: PublicIp = answer.json()?;
        ip.etag = header(&answer.headers, "etag");
        Ok(ip)
    }
}

#[async_trait]
impl OciNetwork for HttpOciClient {
    async fn create_public_ip(
        &self,
        details: &CreatePublicIpDetails,
        retry_token: &str,
    ) -> OciResult<PublicIp> {
        let call = Call::new("CreatePublicIp", Method::POST, "/publicIps")
            .json(details)?
            .header("opc-retry-token", retry_token);
        self.public_ip_from(call).await
    }

    async fn get_public_ip(&self, id: &str) -> OciResult<PublicIp> {
        let path = format!("/publicIps/{}", segment(id));
        self.public_ip_from(Call::new("GetPublicIp", Method::GET, &path))
            .await
    }

    async fn get_public_ip_by_ip_address(&self, ip_address: &str) -> OciResult<PublicIp> {
        let body = serde_json::json!({ "ipAddress": ip_address });
        let call = Call::new(
            "GetPublicIpByIpAddress",
            Method::POST,
            "/publicIps/actions/getByIpAddress",
        )
        .json(&body)?;
        self.public_ip_from(call).await
    }

    async fn get_public_ip_by_private_ip_id(
        &self,
        private_ip_id: &str,
    ) -> OciResult<Option<PublicIp>> {
        let body = serde_json::json!({ "privateIpId": private_ip_id });
        let call = Call::new(
            "GetPublicIpByPrivateIpId",
            Method::POST,
            "/publicIps/actions/getByPrivateIpId",
        )
        .json(&body)?;
        match self.public_ip_from(call).await {
            Ok(ip) => Ok(Some(ip)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn update_public_ip(
        &self,
        id: &str,
        details: &UpdatePublicIpDetails,
        if_match: Option<&str>,
    ) -> OciResult<PublicIp> {
        let path = format!("/publicIps/{}", segment(id));
        let mut call = Call::new("UpdatePublicIp", Method::PUT, &path).json(details)?;
        if let Some(etag) = if_match {
            call = call.header("if-match", etag);
        }
        self.public_ip_from(call).await
    }

    async fn delete_public_ip(&self, id: &str, if_match: Option<&str>) -> OciResult<Deletion> {
        let path = format!("/publicIps/{}", segment(id));
        let mut call = Call::new("DeletePublicIp", Method::DELETE, &path);
        if let Some(etag) = if_match {
            call = call.header("if-match", etag);
        }
        match self.send(call).await {
            Ok(_) => Ok(Deletion::Deleted),
            Err(e) if e.is_not_found() => Ok(Deletion::AlreadyGone),
            Err(e) => Err(e),
        }
    }

    async fn list_public_ips(&self, query: &ListPublicIpsQuery) -> OciResult<Vec<PublicIp>> {
        self.list_all("ListPublicIps", "/publicIps", public_ip_query(query), false)
            .await
    }

    async fn list_private_ips(&self, filter: &PrivateIpFilter) -> OciResult<Vec<PrivateIp>> {
        self.list_all(
            "ListPrivateIps",
            "/privateIps",
            private_ip_query(filter),
            false,
        )
        .await
    }

    async fn get_private_ip(&self, id: &str) -> OciResult<PrivateIp> {
        let path = format!("/privateIps/{}", segment(id));
        Ok(self.get_json("GetPrivateIp", &path).await?.0)
    }

    async fn get_vnic(&self, id: &str) -> OciResult<Vnic> {
        let path = format!("/vnics/{}", segment(id));
        Ok(self.get_json("GetVnic", &path).await?.0)
    }

    async fn list_vnic_attachments(
        &self,
        compartment_id: &str,
        instance_id: Option<&str>,
    ) -> OciResult<Vec<VnicAttachment>> {
        let mut query = vec![("compartmentId", compartment_id.to_string())];
        if let Some(instance_id) = instance_id {
            query.push(("instanceId", instance_id.to_string()));
        }
        self.list_all("ListVnicAttachments", "/vnicAttachments", query, false)
            .await
    }

    async fn get_subnet(&self, id: &str) -> OciResult<Subnet> {
        let path = format!("/subnets/{}", segment(id));
        Ok(self.get_json("GetSubnet", &path).await?.0)
    }

    async fn list_public_ip_pools(&self, compartment_id: &str) -> OciResult<Vec<PublicIpPool>> {
        let query = vec![("compartmentId", compartment_id.to_string())];
        self.list_all("ListPublicIpPools", "/publicIpPools", query, true)
            .await
    }

    async fn get_public_ip_pool(&self, id: &str) -> OciResult<PublicIpPool> {
        let path = format!("/publicIpPools/{}", segment(id));
        Ok(self.get_json("GetPublicIpPool", &path).await?.0)
    }
}
