//! Addresses and CIDRs a partition cuts a host off from, and whether one holds an address
//! (the engine's, as the host sees it: cutting that off would leave the fault undoable).

use std::net::IpAddr;

/// An IPv4 or IPv6 network; a bare address is its own /32 or /128.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| format!("{text:?} is not an address or CIDR"))?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{text:?}: a prefix of 0 to {bits}"))?,
            None => bits,
        };
        Ok(Cidr { network, prefix })
    }

    pub fn is_ipv6(&self) -> bool {
        self.network.is_ipv6()
    }

    /// Whether `address` lies in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, address) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_holds_its_addresses_and_no_other() {
        let net = Cidr::parse("10.213.0.0/16").unwrap();
        assert!(net.contains("10.213.7.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.213.7.1".parse().unwrap()), "IPv4-mapped");
        assert!(!net.contains("10.214.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("192.0.2.1".parse().unwrap()));
        assert!(Cidr::parse("192.0.2.5").unwrap().contains("192.0.2.5".parse().unwrap()));
        assert!(!Cidr::parse("192.0.2.5").unwrap().contains("192.0.2.6".parse().unwrap()));
        assert!(Cidr::parse("2001:db8::/32").unwrap().contains("2001:db8::1".parse().unwrap()));
        assert!(!Cidr::parse("2001:db8::/32").unwrap().contains("10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("::/0").unwrap().contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn bad_networks_are_refused_naming_them() {
        for bad in ["10.0.0.0/33", "10.0.0/8", "::/129", "x", "10.0.0.0/", "10.0.0.0/-1"] {
            assert!(Cidr::parse(bad).unwrap_err().contains(bad), "{bad}");
        }
    }

    proptest::proptest! {
        /// Any text is read or refused, never a panic; what is read holds its own address.
        #[test]
        fn any_text_is_read_or_refused_and_a_network_holds_itself(text in "[0-9a-fA-F.:/x-]{0,48}") {
            if let Ok(cidr) = Cidr::parse(&text) {
                proptest::prop_assert!(cidr.contains(cidr.network));
                proptest::prop_assert!(Cidr::parse(&cidr.to_string()).is_ok());
            }
        }

        #[test]
        fn an_ipv4_network_holds_exactly_the_addresses_sharing_its_prefix(net: u32, a: u32, prefix in 0u8..=32) {
            let cidr = Cidr { network: IpAddr::V4(net.into()), prefix };
            let shared = prefix == 0 || (net ^ a) >> (32 - u32::from(prefix)) == 0;
            proptest::prop_assert_eq!(cidr.contains(IpAddr::V4(a.into())), shared);
        }
    }
}
