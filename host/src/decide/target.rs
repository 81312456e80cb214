//! Where the spec wants the public IP: the assignment resolved to an OCI
//! private IP, or why there is none to go to.

/// The private IP the public IP should be on, as resolved from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The spec has no assignment: the IP should be unassigned.
    Unassigned,
    /// The spec names a target that is not there (yet): pod missing, not
    /// running, without an IP, or being deleted. The IP is unassigned until it
    /// comes, because its private IP may be handed to someone else.
    Absent {
        reason: &'static str,
        message: String,
    },
    /// A target exists but the IP may not go there (e.g. a private subnet, or
    /// a policy denied it).
    Refused {
        reason: &'static str,
        message: String,
    },
    /// The private IP to assign to.
    PrivateIp(ResolvedTarget),
}

/// An assignment resolved to the OCI private IP it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    pub private_ip_id: String,
    pub private_ip_address: String,
    /// Set when the target is a pod: its name and UID.
    pub pod: Option<(String, String)>,
    /// The private IP's subnet, when OCI said.
    pub subnet_id: Option<String>,
    /// OCI says it is its VNIC's primary IP: a node's own address.
    pub primary: bool,
}

impl Target {
    pub fn private_ip_id(&self) -> Option<&str> {
        match self {
            Target::PrivateIp(t) => Some(&t.private_ip_id),
            _ => None,
        }
    }

    /// How a user would name the target in an event: `pod web (10.0.65.3)`.
    pub fn describe(&self) -> String {
        match self {
            Target::PrivateIp(t) => match &t.pod {
                Some((pod, _)) => format!("pod {pod} ({})", t.private_ip_address),
                None => format!("private IP {}", t.private_ip_address),
            },
            _ => String::new(),
        }
    }
}
