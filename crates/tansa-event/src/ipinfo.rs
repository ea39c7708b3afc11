//! What enrichment knows about an address: [`IpInfo`], shared by every event from that address.

use std::fmt::Write;

/// Flags of an address (a bit set; [`IpInfo::flags`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IpFlags(pub u8);

impl IpFlags {
    /// Listed as a TOR exit (the TOR project's exit list, or a GeoIP anonymity database).
    pub const TOR_EXIT: IpFlags = IpFlags(1);
    /// Announced by a hosting or cloud provider's AS.
    pub const HOSTING: IpFlags = IpFlags(2);
    /// A VPN service's address (anonymity databases).
    pub const ANONYMOUS_VPN: IpFlags = IpFlags(4);
    /// An open proxy (anonymity databases).
    pub const PUBLIC_PROXY: IpFlags = IpFlags(8);
    /// A known internet-wide scanner (research scanners, search engines of devices).
    pub const SCANNER: IpFlags = IpFlags(16);
    /// Named by a threat-intelligence feed loaded in this run.
    pub const LISTED: IpFlags = IpFlags(32);

    const NAMES: [(IpFlags, &'static str); 6] = [
        (IpFlags::TOR_EXIT, "tor_exit"),
        (IpFlags::HOSTING, "hosting"),
        (IpFlags::ANONYMOUS_VPN, "anonymous_vpn"),
        (IpFlags::PUBLIC_PROXY, "public_proxy"),
        (IpFlags::SCANNER, "scanner"),
        (IpFlags::LISTED, "listed"),
    ];

    pub fn contains(self, f: IpFlags) -> bool {
        self.0 & f.0 == f.0 && f.0 != 0
    }

    pub fn insert(&mut self, f: IpFlags) {
        self.0 |= f.0;
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names of the flags set, in a fixed order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        IpFlags::NAMES
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }

    /// The flag called `name`.
    pub fn from_name(name: &str) -> Option<IpFlags> {
        IpFlags::NAMES
            .into_iter()
            .find(|(_, n)| *n == name)
            .map(|(f, _)| f)
    }
}

/// Geography, network owner and reputation of one address, as enrichment found them. Events
/// share it ([`std::sync::Arc`]): it is looked up once per address, not per event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpInfo {
    /// For private, loopback, link-local, shared (CGNAT), documentation, multicast and other
    /// reserved addresses: which (`"private"`, `"loopback"`, …). They are not looked up.
    pub scope: Option<&'static str>,
    pub continent_code: Option<Box<str>>,
    pub country_iso_code: Option<Box<str>>,
    pub country_name: Option<Box<str>>,
    pub region_name: Option<Box<str>>,
    pub city_name: Option<Box<str>>,
    /// Latitude and longitude.
    pub location: Option<(f64, f64)>,
    pub as_number: Option<u32>,
    pub as_organization: Option<Box<str>>,
    pub flags: IpFlags,
    /// Which scanner, when [`IpFlags::SCANNER`] is set and the list names it.
    pub scanner: Option<Box<str>>,
}

/// The parts of [`IpInfo`] that have a field name (under `source.` or `destination.`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoPart {
    Scope,
    ContinentCode,
    CountryIsoCode,
    CountryName,
    RegionName,
    CityName,
    Location,
    AsNumber,
    AsOrganization,
    Flags,
}

impl InfoPart {
    /// Field names after `source.` / `destination.` (ECS where ECS has one; `geo.name` holds
    /// the scope of a reserved address, ECS's "user-defined description of a location").
    pub const ALL: [(InfoPart, &'static str); 10] = [
        (InfoPart::Scope, "geo.name"),
        (InfoPart::ContinentCode, "geo.continent_code"),
        (InfoPart::CountryIsoCode, "geo.country_iso_code"),
        (InfoPart::CountryName, "geo.country_name"),
        (InfoPart::RegionName, "geo.region_name"),
        (InfoPart::CityName, "geo.city_name"),
        (InfoPart::Location, "geo.location"),
        (InfoPart::AsNumber, "as.number"),
        (InfoPart::AsOrganization, "as.organization.name"),
        (InfoPart::Flags, "flags"),
    ];
}

impl IpInfo {
    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        *self == IpInfo::default()
    }

    /// One part as text (`Location` as `"lat,lon"`, `Flags` as comma-separated names).
    pub fn part(&self, part: InfoPart) -> Option<String> {
        let s = |v: &Option<Box<str>>| v.as_deref().map(str::to_owned);
        match part {
            InfoPart::Scope => self.scope.map(str::to_owned),
            InfoPart::ContinentCode => s(&self.continent_code),
            InfoPart::CountryIsoCode => s(&self.country_iso_code),
            InfoPart::CountryName => s(&self.country_name),
            InfoPart::RegionName => s(&self.region_name),
            InfoPart::CityName => s(&self.city_name),
            InfoPart::Location => self.location.map(|(lat, lon)| format!("{lat},{lon}")),
            InfoPart::AsNumber => self.as_number.map(|n| n.to_string()),
            InfoPart::AsOrganization => s(&self.as_organization),
            InfoPart::Flags => (!self.flags.is_empty()).then(|| {
                let mut out = String::new();
                for n in self.flags.names() {
                    if !out.is_empty() {
                        out.push(',');
                    }
                    let _ = write!(out, "{n}");
                }
                out
            }),
        }
    }

    /// The known parts as `(name after the prefix, JSON value)`.
    pub fn json_parts(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut out = Vec::new();
        for (part, name) in InfoPart::ALL {
            let v = match part {
                InfoPart::Location => self
                    .location
                    .map(|(lat, lon)| serde_json::json!({"lat": lat, "lon": lon})),
                InfoPart::AsNumber => self.as_number.map(serde_json::Value::from),
                InfoPart::Flags => (!self.flags.is_empty())
                    .then(|| self.flags.names().map(serde_json::Value::from).collect()),
                _ => self.part(part).map(serde_json::Value::from),
            };
            if let Some(v) = v {
                out.push((name, v));
            }
        }
        if let Some(s) = &self.scanner {
            out.push(("scanner", serde_json::Value::from(s.as_ref())));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_have_names_both_ways() {
        let mut f = IpFlags::default();
        f.insert(IpFlags::TOR_EXIT);
        f.insert(IpFlags::HOSTING);
        assert_eq!(f.names().collect::<Vec<_>>(), ["tor_exit", "hosting"]);
        assert_eq!(IpFlags::from_name("scanner"), Some(IpFlags::SCANNER));
        let info = IpInfo {
            flags: f,
            location: Some((51.75, -1.25)),
            ..Default::default()
        };
        assert_eq!(info.part(InfoPart::Flags).unwrap(), "tor_exit,hosting");
        assert_eq!(info.part(InfoPart::Location).unwrap(), "51.75,-1.25");
        assert!(!info.is_empty());
    }
}
