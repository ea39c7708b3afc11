//! Addresses that are not on the public internet: labelled, never looked up.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The scope of a non-public address (`"private"`, `"loopback"`, …); `None` for a public one.
/// Ranges from the IANA special-purpose registries (RFC 6890 and successors).
pub fn scope(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => scope_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return scope_v4(v4);
            }
            scope_v6(v6)
        }
    }
}

fn scope_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(match o {
        [0, ..] => "unspecified",
        [10, ..] | [172, 16..=31, ..] | [192, 168, ..] => "private",
        [100, 64..=127, ..] => "shared",
        [127, ..] => "loopback",
        [169, 254, ..] => "link-local",
        [192, 0, 0, _] => "reserved",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "documentation",
        [198, 18..=19, ..] => "benchmarking",
        [224..=239, ..] => "multicast",
        [255, 255, 255, 255] => "broadcast",
        [240..=255, ..] => "reserved",
        _ => return None,
    })
}

fn scope_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "private"
    } else if s[0] & 0xffc0 == 0xfe80 {
        "link-local"
    } else if s[0] & 0xff00 == 0xff00 {
        "multicast"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 || s[0] == 0x3fff && s[1] & 0xf000 == 0 {
        "documentation"
    } else if s[0] == 0x0064 && s[1] == 0xff9b {
        // NAT64: the embedded IPv4 address is what matters, but it is not looked up here
        "translation"
    } else if s[0] & 0xe000 != 0x2000 {
        // outside 2000::/3, the only global unicast space allocated
        "reserved"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(s: &str) -> Option<&'static str> {
        scope(s.parse().unwrap())
    }

    #[test]
    fn reserved_ranges_are_labelled() {
        assert_eq!(sc("10.1.2.3"), Some("private"));
        assert_eq!(sc("172.31.0.1"), Some("private"));
        assert_eq!(sc("172.32.0.1"), None);
        assert_eq!(sc("192.168.1.1"), Some("private"));
        assert_eq!(sc("100.64.0.1"), Some("shared"));
        assert_eq!(sc("127.0.0.1"), Some("loopback"));
        assert_eq!(sc("169.254.169.254"), Some("link-local"));
        assert_eq!(sc("203.0.113.10"), Some("documentation"));
        assert_eq!(sc("224.0.0.1"), Some("multicast"));
        assert_eq!(sc("8.8.8.8"), None);
        assert_eq!(sc("45.141.87.23"), None);
        assert_eq!(sc("::1"), Some("loopback"));
        assert_eq!(sc("fd00::1"), Some("private"));
        assert_eq!(sc("fe80::1"), Some("link-local"));
        assert_eq!(sc("2001:db8::1"), Some("documentation"));
        assert_eq!(sc("::ffff:192.168.0.1"), Some("private"));
        assert_eq!(sc("2a01:4f8::1"), None);
    }
}
