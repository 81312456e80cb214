//! IPv4 helpers: CIDR blocks and address ranges (the emulator only does IPv4).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}")]
pub struct ParseError {
    what: &'static str,
    input: String,
}

fn parse_error(what: &'static str, input: &str) -> ParseError {
    ParseError {
        what,
        input: input.to_string(),
    }
}

/// An IPv4 CIDR block such as `10.0.64.0/18`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: u32,
    prefix: u8,
}

impl Cidr {
    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    pub fn first(self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    pub fn last(self) -> Ipv4Addr {
        Ipv4Addr::from(self.network | !self.mask())
    }

    pub fn contains(self, address: Ipv4Addr) -> bool {
        u32::from(address) & self.mask() == self.network
    }

    /// Every address of the block, network and broadcast included (BYOIP pools
    /// hand out all of them).
    pub fn addresses(self) -> AddressRange {
        AddressRange {
            first: self.first(),
            last: self.last(),
        }
    }

    /// The addresses a host can use: without network and broadcast address for
    /// blocks larger than /31.
    pub fn host_addresses(self) -> AddressRange {
        let (first, last) = (u32::from(self.first()), u32::from(self.last()));
        if self.prefix >= 31 {
            return self.addresses();
        }
        AddressRange {
            first: Ipv4Addr::from(first + 1),
            last: Ipv4Addr::from(last - 1),
        }
    }

    /// The first host address, which OCI uses for the subnet's virtual router.
    pub fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::from(self.network.saturating_add(1))
    }
}

impl FromStr for Cidr {
    type Err = ParseError;

    fn from_str(input: &str) -> Result<Self, ParseError> {
        let (address, prefix) = input
            .trim()
            .split_once('/')
            .ok_or_else(|| parse_error("CIDR block", input))?;
        let address: Ipv4Addr = address
            .parse()
            .map_err(|_| parse_error("CIDR block", input))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| parse_error("CIDR block", input))?;
        let cidr = Cidr { network: 0, prefix };
        let network = u32::from(address) & cidr.mask();
        if network != u32::from(address) {
            return Err(parse_error("CIDR block (host bits set)", input));
        }
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.first(), self.prefix)
    }
}

/// An inclusive range of IPv4 addresses, e.g. `10.0.64.2-10.0.64.254`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl AddressRange {
    pub fn iter(self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.first)..=u32::from(self.last)).map(Ipv4Addr::from)
    }

    pub fn count(self) -> u64 {
        u64::from(u32::from(self.last)) + 1 - u64::from(u32::from(self.first))
    }
}

impl FromStr for AddressRange {
    type Err = ParseError;

    fn from_str(input: &str) -> Result<Self, ParseError> {
        let (first, last) = input
            .trim()
            .split_once('-')
            .ok_or_else(|| parse_error("address range", input))?;
        let first: Ipv4Addr = first
            .trim()
            .parse()
            .map_err(|_| parse_error("address range", input))?;
        let last: Ipv4Addr = last
            .trim()
            .parse()
            .map_err(|_| parse_error("address range", input))?;
        if first > last {
            return Err(parse_error("address range (first after last)", input));
        }
        Ok(AddressRange { first, last })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cidrs() {
        let cidr: Cidr = "10.0.64.0/18".parse().expect("valid");
        assert_eq!(cidr.first(), Ipv4Addr::new(10, 0, 64, 0));
        assert_eq!(cidr.last(), Ipv4Addr::new(10, 0, 127, 255));
        assert!(cidr.contains(Ipv4Addr::new(10, 0, 66, 7)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 0, 128, 0)));
        assert_eq!(cidr.to_string(), "10.0.64.0/18");
        assert!("10.0.64.1/18".parse::<Cidr>().is_err());
        assert!("10.0.64.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }

    #[test]
    fn counts_addresses() {
        let pool: Cidr = "203.0.113.0/28".parse().expect("valid");
        assert_eq!(pool.addresses().count(), 16);
        assert_eq!(pool.host_addresses().count(), 14);
        assert_eq!(pool.gateway(), Ipv4Addr::new(203, 0, 113, 1));
        let all: Cidr = "0.0.0.0/0".parse().expect("valid");
        assert_eq!(all.addresses().count(), 1 << 32);
    }

    #[test]
    fn parses_ranges() {
        let range: AddressRange = "10.0.64.2-10.0.64.254".parse().expect("valid");
        assert_eq!(range.count(), 253);
        assert_eq!(range.iter().nth(1), Some(Ipv4Addr::new(10, 0, 64, 3)));
        assert!("10.0.64.9-10.0.64.2".parse::<AddressRange>().is_err());
    }
}
