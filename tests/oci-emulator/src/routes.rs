//! Which OCI operation a method and path name.

use http::Method;

/// OCI API version prefix of every Core Services path.
pub const API_PREFIX: &str = "/20160918";

/// Every emulated operation's name, as [`Route::operation`] gives it (fault
/// rules, call counts and keys' `deny` lists use these names).
pub const OPERATIONS: &[&str] = &[
    "CreatePublicIp",
    "GetPublicIp",
    "GetPublicIpByIpAddress",
    "GetPublicIpByPrivateIpId",
    "UpdatePublicIp",
    "DeletePublicIp",
    "ListPublicIps",
    "ListPrivateIps",
    "GetPrivateIp",
    "GetVnic",
    "ListVnicAttachments",
    "GetSubnet",
    "ListPublicIpPools",
    "GetPublicIpPool",
];

/// An emulated operation with its path parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    CreatePublicIp,
    GetPublicIp(String),
    GetPublicIpByIpAddress,
    GetPublicIpByPrivateIpId,
    UpdatePublicIp(String),
    DeletePublicIp(String),
    ListPublicIps,
    ListPrivateIps,
    GetPrivateIp(String),
    GetVnic(String),
    ListVnicAttachments,
    GetSubnet(String),
    ListPublicIpPools,
    GetPublicIpPool(String),
}

impl Route {
    /// OCI's operation name, used for fault rules and call counts.
    pub fn operation(&self) -> &'static str {
        match self {
            Self::CreatePublicIp => "CreatePublicIp",
            Self::GetPublicIp(_) => "GetPublicIp",
            Self::GetPublicIpByIpAddress => "GetPublicIpByIpAddress",
            Self::GetPublicIpByPrivateIpId => "GetPublicIpByPrivateIpId",
            Self::UpdatePublicIp(_) => "UpdatePublicIp",
            Self::DeletePublicIp(_) => "DeletePublicIp",
            Self::ListPublicIps => "ListPublicIps",
            Self::ListPrivateIps => "ListPrivateIps",
            Self::GetPrivateIp(_) => "GetPrivateIp",
            Self::GetVnic(_) => "GetVnic",
            Self::ListVnicAttachments => "ListVnicAttachments",
            Self::GetSubnet(_) => "GetSubnet",
            Self::ListPublicIpPools => "ListPublicIpPools",
            Self::GetPublicIpPool(_) => "GetPublicIpPool",
        }
    }

    /// Maps `method path` (path without query) to a route.
    pub fn parse(method: &Method, path: &str) -> Option<Self> {
        let rest = path.strip_prefix(API_PREFIX)?;
        let segments: Vec<String> = rest
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect::<Option<_>>()?;
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let route = match (method.as_str(), segments.as_slice()) {
            ("POST", ["publicIps"]) => Self::CreatePublicIp,
            ("GET", ["publicIps"]) => Self::ListPublicIps,
            ("POST", ["publicIps", "actions", "getByIpAddress"]) => Self::GetPublicIpByIpAddress,
            ("POST", ["publicIps", "actions", "getByPrivateIpId"]) => {
                Self::GetPublicIpByPrivateIpId
            }
            ("GET", ["publicIps", id]) => Self::GetPublicIp(id.to_string()),
            ("PUT", ["publicIps", id]) => Self::UpdatePublicIp(id.to_string()),
            ("DELETE", ["publicIps", id]) => Self::DeletePublicIp(id.to_string()),
            ("GET", ["privateIps"]) => Self::ListPrivateIps,
            ("GET", ["privateIps", id]) => Self::GetPrivateIp(id.to_string()),
            ("GET", ["vnics", id]) => Self::GetVnic(id.to_string()),
            ("GET", ["vnicAttachments"]) => Self::ListVnicAttachments,
            ("GET", ["subnets", id]) => Self::GetSubnet(id.to_string()),
            ("GET", ["publicIpPools"]) => Self::ListPublicIpPools,
            ("GET", ["publicIpPools", id]) => Self::GetPublicIpPool(id.to_string()),
            _ => return None,
        };
        // An empty id ("/publicIps/") is no route.
        match &route {
            Self::GetPublicIp(id)
            | Self::UpdatePublicIp(id)
            | Self::DeletePublicIp(id)
            | Self::GetPrivateIp(id)
            | Self::GetVnic(id)
            | Self::GetSubnet(id)
            | Self::GetPublicIpPool(id)
                if id.is_empty() =>
            {
                None
            }
            _ => Some(route),
        }
    }
}

/// Decodes `%XX` escapes; `None` for malformed escapes or non-UTF-8 results.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_lists_every_route() {
        let id = String::from("x");
        let routes = [
            Route::CreatePublicIp,
            Route::GetPublicIp(id.clone()),
            Route::GetPublicIpByIpAddress,
            Route::GetPublicIpByPrivateIpId,
            Route::UpdatePublicIp(id.clone()),
            Route::DeletePublicIp(id.clone()),
            Route::ListPublicIps,
            Route::ListPrivateIps,
            Route::GetPrivateIp(id.clone()),
            Route::GetVnic(id.clone()),
            Route::ListVnicAttachments,
            Route::GetSubnet(id.clone()),
            Route::ListPublicIpPools,
            Route::GetPublicIpPool(id),
        ];
        let names: Vec<&str> = routes.iter().map(Route::operation).collect();
        assert_eq!(names, OPERATIONS);
    }

    #[test]
    fn routes_oci_paths() {
        let get = Route::parse(&Method::GET, "/20160918/publicIps/ocid1.publicip.oc1..a");
        assert_eq!(
            get,
            Some(Route::GetPublicIp("ocid1.publicip.oc1..a".into()))
        );
        assert_eq!(
            Route::parse(
                &Method::POST,
                "/20160918/publicIps/actions/getByPrivateIpId"
            ),
            Some(Route::GetPublicIpByPrivateIpId)
        );
        assert_eq!(
            Route::parse(&Method::PUT, "/20160918/publicIps/a%2Fb"),
            Some(Route::UpdatePublicIp("a/b".into()))
        );
        assert_eq!(Route::parse(&Method::PATCH, "/20160918/publicIps/a"), None);
        assert_eq!(Route::parse(&Method::GET, "/20160918/publicIps/"), None);
        assert_eq!(Route::parse(&Method::GET, "/20170101/publicIps"), None);
        assert_eq!(Route::parse(&Method::GET, "/20160918/vnics/%zz"), None);
    }
}
