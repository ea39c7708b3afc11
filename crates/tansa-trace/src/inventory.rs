//! The host inventory (`hosts.toml`): which addresses are which host, and each host's zone.
//! Internal addresses do not say which host they are, so a hop from one host to another
//! (`Accepted … from 10.0.0.5` on db01) is recognised through this file and through the
//! addresses the logs themselves show for a host (see [`crate::Tracer`]).
//!
//! ```toml
//! [hosts.web01]
//! addresses = ["10.0.0.5", "203.0.113.10"]
//! timezone = "Asia/Tokyo"
//!
//! [hosts.db01]
//! addresses = ["10.0.0.6"]
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

use crate::TraceError;

/// One host of the inventory.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// IANA zone name; the host's local time in traces (otherwise learned from its logs).
    #[serde(default)]
    pub timezone: Option<String>,
}

/// Host name → addresses and zone.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    #[serde(default)]
    pub hosts: BTreeMap<String, Host>,
}

impl Inventory {
    /// Reads and checks a `hosts.toml` (errors name the file, line and column).
    pub fn load(path: &Path) -> Result<Inventory, TraceError> {
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
            path: path.to_owned(),
            source,
        })?;
        Inventory::parse(&text).map_err(|msg| TraceError::Inventory {
            path: path.to_owned(),
            msg,
        })
    }

    /// Parses inventory text; the error is a readable message with the position.
    pub fn parse(text: &str) -> Result<Inventory, String> {
        let inv: Inventory = toml::from_str(text).map_err(|e| e.to_string())?;
        for (name, h) in &inv.hosts {
            if let Some(tz) = &h.timezone {
                jiff::tz::TimeZone::get(tz)
                    .map_err(|_| format!("host {name}: unknown time zone `{tz}`"))?;
            }
        }
        Ok(inv)
    }

    /// The host an address belongs to.
    pub fn host_of(&self, addr: &str) -> Option<&str> {
        let ip: IpAddr = addr.parse().ok()?;
        self.hosts
            .iter()
            .find(|(_, h)| h.addresses.contains(&ip))
            .map(|(n, _)| n.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hosts_and_reports_mistakes_with_their_place() {
        let inv = Inventory::parse(
            "[hosts.web01]\naddresses = [\"10.0.0.5\", \"2001:db8::5\"]\ntimezone = \"Asia/Tokyo\"\n[hosts.db01]\naddresses = [\"10.0.0.6\"]\n",
        )
        .unwrap();
        assert_eq!(inv.host_of("10.0.0.5"), Some("web01"));
        assert_eq!(inv.host_of("2001:db8::5"), Some("web01"));
        assert_eq!(inv.host_of("10.0.0.6"), Some("db01"));
        assert_eq!(inv.host_of("10.0.0.7"), None);
        let e = Inventory::parse("[hosts.web01]\naddresses = [\"10.0.0.300\"]\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        let e = Inventory::parse("[hosts.web01]\ntimezone = \"Mars/Olympus\"\n").unwrap_err();
        assert!(e.contains("Mars/Olympus"), "{e}");
        assert!(Inventory::parse("[hosts.web01]\nadress = []\n").is_err());
    }
}
