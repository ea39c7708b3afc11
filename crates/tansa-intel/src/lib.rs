//! Enrichment and threat intelligence: what is known about the addresses, domains and hashes
//! an event names.
//!
//! This crate is the `enrich` box of the data path (`sources → frame → parse → enrich →
//! detect → store → respond`). It runs on the parser threads, after parsing and before the
//! events are merged, so its cost is spread over the cores:
//!
//! - **Scope**: private, loopback, CGNAT, documentation and other reserved addresses are
//!   labelled (`source.geo.name`) and never looked up.
//! - **GeoIP/ASN** from MaxMind DB files ([`geo::GeoIp`]): country, city, location, AS number
//!   and organisation, and the anonymity flags of an Anonymous-IP database.
//! - **Flags**: hosting/cloud ASNs and internet-wide scanners from lists shipped with Tansa
//!   (`data/*.txt`), TOR exits and other flags from the feeds that list an address.
//! - **Indicators** ([`Intel`]): every loaded feed's addresses and networks (prefix tries),
//!   domains and URLs (Aho-Corasick over URLs, command lines, DNS names) and hashes. Matches
//!   are recorded on the event (`Event::intel_hits`); detection turns them into alerts.
//! - **RDAP** ([`rdap`]): who holds an address and whom to write to about abuse.
//!
//! Everything about an address is looked up once: [`IpInfo`] is shared by the events from the
//! address ([`std::sync::Arc`]), through a per-thread [`Cache`].

pub mod feeds;
pub mod geo;
mod matcher;
pub mod rdap;
mod scope;
mod watch;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use tansa_event::{Event, IpFlags, IpInfo};

pub use feeds::{classify, Feed, FeedSpec, Indicator, Ioc};
pub use geo::GeoIp;
pub use matcher::{for_each_ipv4, for_each_ipv6, Intel, TEXT_FIELDS};
pub use scope::scope;
pub use watch::FeedWatch;

/// Errors of loading databases and feeds. Lookups and matching never fail.
#[derive(Debug, thiserror::Error)]
pub enum IntelError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a usable MaxMind DB file: {reason}", path.display())]
    GeoIp { path: PathBuf, reason: String },
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    #[error("feed `{spec}`: {reason}")]
    Spec { spec: String, reason: String },
    #[error("RDAP: {0}")]
    Rdap(String),
}

/// ASNs of a shipped list, with the holder's name.
#[derive(Debug, Default, Clone)]
pub struct AsnList(FxHashMap<u32, Box<str>>);

impl AsnList {
    /// Parses `ASN name` lines (`#` comments).
    pub fn parse(text: &str) -> AsnList {
        AsnList(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter_map(|l| {
                    let (n, name) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
                    let n = n.trim_start_matches("AS").parse().ok()?;
                    Some((n, name.trim().into()))
                })
                .collect(),
        )
    }

    pub fn get(&self, asn: u32) -> Option<&str> {
        self.0.get(&asn).map(|s| &**s)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Hosting and cloud providers' ASNs shipped with Tansa.
pub fn hosting_asns() -> AsnList {
    AsnList::parse(include_str!("../data/hosting-asns.txt"))
}

/// Internet-wide scanners' ASNs shipped with Tansa.
pub fn scanner_asns() -> AsnList {
    AsnList::parse(include_str!("../data/scanner-asns.txt"))
}

/// The enrichment stage: GeoIP databases, the shipped lists and the loaded indicators.
#[derive(Debug, Default)]
pub struct Enricher {
    geo: Option<Arc<GeoIp>>,
    intel: Option<Arc<Intel>>,
    hosting: AsnList,
    scanners: AsnList,
    /// No enrichment at all (for measuring what it costs).
    off: bool,
}

/// What one thread remembers of the addresses it has seen: their [`IpInfo`] and the
/// indicators that cover them.
#[derive(Debug, Default)]
pub struct Cache {
    map: FxHashMap<IpAddr, Entry>,
    text: matcher::TextCache,
    scratch: Vec<u32>,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    info: Option<Arc<IpInfo>>,
    hits: Box<[u32]>,
}

/// Addresses a cache holds before it starts over (bounded memory against address floods).
const CACHE_MAX: usize = 1 << 16;

impl Enricher {
    pub fn new(geo: Option<GeoIp>, intel: Option<Arc<Intel>>) -> Enricher {
        Enricher {
            geo: geo.filter(|g| !g.is_empty()).map(Arc::new),
            intel: intel.filter(|i| !i.is_empty()),
            hosting: hosting_asns(),
            scanners: scanner_asns(),
            off: false,
        }
    }

    /// A stage that leaves events as they are (the baseline of the enrichment benchmark).
    pub fn off() -> Enricher {
        Enricher {
            off: true,
            ..Enricher::default()
        }
    }

    pub fn geo(&self) -> Option<&GeoIp> {
        self.geo.as_deref()
    }

    /// The same stage with other indicators (the feeds reloaded); the GeoIP databases are
    /// shared. Caches made for the old indicators must not be used with it.
    pub fn with_intel(&self, intel: Option<Arc<Intel>>) -> Enricher {
        Enricher {
            geo: self.geo.clone(),
            intel: intel.filter(|i| !i.is_empty()),
            hosting: self.hosting.clone(),
            scanners: self.scanners.clone(),
            off: self.off,
        }
    }

    pub fn intel(&self) -> Option<&Arc<Intel>> {
        self.intel.as_ref()
    }

    /// Everything known about `ip` (uncached), and the indicators covering it.
    pub fn lookup(&self, ip: IpAddr) -> (IpInfo, Vec<u32>) {
        let mut hits = Vec::new();
        let mut info = match scope(ip) {
            // reserved addresses are labelled, not looked up in public databases
            Some(s) => IpInfo {
                scope: Some(s),
                ..IpInfo::default()
            },
            None => self.public_info(ip),
        };
        // a feed may still list them (an internal deny list, documentation examples)
        if let Some(intel) = &self.intel {
            intel.ip_hits(ip, &mut hits);
            info.flags.insert(intel.ip_flags(&hits));
        }
        (info, hits)
    }

    fn public_info(&self, ip: IpAddr) -> IpInfo {
        let mut info = self.geo.as_ref().map(|g| g.lookup(ip)).unwrap_or_default();
        if let Some(asn) = info.as_number {
            if self.hosting.get(asn).is_some() {
                info.flags.insert(IpFlags::HOSTING);
            }
            if let Some(name) = self.scanners.get(asn) {
                info.flags.insert(IpFlags::SCANNER);
                info.scanner = Some(name.into());
            }
        }
        info
    }

    fn cached(&self, ip: IpAddr, cache: &mut Cache) -> Entry {
        if let Some(e) = cache.map.get(&ip) {
            return e.clone();
        }
        if cache.map.len() >= CACHE_MAX {
            cache.map.clear();
        }
        let (info, hits) = self.lookup(ip);
        let e = Entry {
            info: (!info.is_empty()).then(|| Arc::new(info)),
            hits: hits.into_boxed_slice(),
        };
        cache.map.insert(ip, e.clone());
        e
    }

    /// Enriches one event: its addresses' [`IpInfo`] and the indicators it matches.
    pub fn enrich(&self, ev: &mut Event, cache: &mut Cache) {
        if self.off {
            return;
        }
        let mut hits = std::mem::take(&mut cache.scratch);
        hits.clear();
        if let Some(ip) = ev.source_ip {
            let e = self.cached(ip, cache);
            ev.source_info = e.info;
            hits.extend_from_slice(&e.hits);
        }
        if let Some(ip) = ev.destination_ip {
            let e = self.cached(ip, cache);
            ev.destination_info = e.info;
            hits.extend_from_slice(&e.hits);
        }
        if let Some(intel) = &self.intel {
            intel.event_text_hits(ev, &mut hits, &mut cache.text);
            if !hits.is_empty() {
                intel.retain_live(&mut hits, ev.timestamp);
            }
        }
        ev.intel_hits = (!hits.is_empty()).then(|| hits.as_slice().into());
        cache.scratch = hits;
    }

    /// Enriches a batch.
    pub fn enrich_all(&self, events: &mut [Event], cache: &mut Cache) {
        for ev in events {
            self.enrich(ev, cache);
        }
    }
}

/// The distinct addresses of `events` with their info (what the store keeps per address).
pub fn addresses<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<(IpAddr, Arc<IpInfo>)> {
    let mut seen = FxHashSet::default();
    let mut out = Vec::new();
    for ev in events {
        for (ip, info) in [
            (ev.source_ip, &ev.source_info),
            (ev.destination_ip, &ev.destination_info),
        ] {
            if let (Some(ip), Some(info)) = (ip, info) {
                if seen.insert(ip) {
                    out.push((ip, info.clone()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_lists_parse() {
        let h = hosting_asns();
        assert!(h.len() > 50);
        assert_eq!(h.get(24940), Some("Hetzner Online"));
        assert!(scanner_asns().get(398324).is_some());
    }

    #[test]
    fn private_addresses_are_labelled_and_public_ones_flagged_by_feeds() {
        let tor = Feed {
            name: "tor".into(),
            path: "tor".into(),
            format: "tor-exit",
            indicators: 1,
            skipped: Vec::new(),
            flag: IpFlags::TOR_EXIT,
        };
        let ind = Indicator {
            ioc: classify("185.220.101.1").unwrap(),
            feed: 0,
            confidence: None,
            tags: Vec::new(),
            expires: None,
            description: None,
        };
        let e = Enricher::new(
            None,
            Some(Arc::new(Intel::from_parts(vec![tor], vec![ind]))),
        );
        let (info, hits) = e.lookup("10.0.0.5".parse().unwrap());
        assert_eq!(info.scope, Some("private"));
        assert!(hits.is_empty());
        let (info, hits) = e.lookup("185.220.101.1".parse().unwrap());
        assert!(info.flags.contains(IpFlags::TOR_EXIT));
        assert!(info.flags.contains(IpFlags::LISTED));
        assert_eq!(hits, [0]);
        let (info, _) = e.lookup("8.8.8.8".parse().unwrap());
        assert!(info.is_empty());
    }
}
