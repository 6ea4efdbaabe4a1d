//! `@ipMatch` / `@ipMatchFromFile`: IPv4 and IPv6 addresses and CIDR blocks.

use std::net::IpAddr;

/// A list of networks.
#[derive(Debug, Clone)]
pub(crate) struct IpList {
    nets: Vec<(IpAddr, u8)>,
}

impl IpList {
    pub(crate) fn parse<'a>(items: impl Iterator<Item = &'a str>) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in items.map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, bits) = match item.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (item, None),
            };
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("invalid address {item:?}"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("invalid prefix length in {item:?}"))?,
                None => max,
            };
            nets.push((ip, bits));
        }
        Ok(Self { nets })
    }

    pub(crate) fn matches(&self, input: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(input) else {
            return false;
        };
        let Ok(ip) = text.trim().parse::<IpAddr>() else {
            return false;
        };
        self.nets.iter().any(|(net, bits)| in_net(ip, *net, *bits))
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}
