//! IPv4 CIDR blocks: parsing and membership. Pure; small enough that a
//! crate for it would cost more than it saves.

use std::net::Ipv4Addr;

/// An IPv4 CIDR block such as `10.0.64.0/18`.
pub type Cidr = (Ipv4Addr, u8);

/// `10.0.64.0/18` as a block; `None` when it is not one.
pub fn parse_cidr(s: &str) -> Option<Cidr> {
    let (net, bits) = s.split_once('/')?;
    let bits: u8 = bits.parse().ok().filter(|b| *b <= 32)?;
    Some((net.parse().ok()?, bits))
}

/// Whether `ip` is in `cidr` (never, for no block).
pub fn contains(cidr: Option<Cidr>, ip: Ipv4Addr) -> bool {
    let Some((net, bits)) = cidr else {
        return false;
    };
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(bits))
    };
    u32::from(ip) & mask == u32::from(net) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_membership() {
        let c = parse_cidr("10.0.64.0/18");
        assert!(contains(c, "10.0.65.7".parse().unwrap()));
        assert!(!contains(c, "10.0.128.1".parse().unwrap()));
        assert!(contains(
            parse_cidr("0.0.0.0/0"),
            "8.8.8.8".parse().unwrap()
        ));
        assert_eq!(parse_cidr("10.0.0.0/33"), None);
        assert_eq!(parse_cidr("nonsense"), None);
        assert!(!contains(None, "10.0.0.1".parse().unwrap()));
    }
}
