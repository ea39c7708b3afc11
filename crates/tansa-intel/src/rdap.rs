//! RDAP: who holds an address or an autonomous system, and whom to write to about abuse.
//!
//! - [`Bootstrap`] finds the registry that answers for a number (RFC 9224): IANA's bootstrap
//!   files (`ipv4.json`, `ipv6.json`, `asn.json`) when given, else the address blocks shipped
//!   with Tansa (`data/rdap-bootstrap.txt`, IPv4 and IPv6 only).
//! - [`Client`] asks it (RFC 9082: `{base}ip/{address}`, `{base}autnum/{number}`) over HTTPS,
//!   following the redirects registries send for space another registry holds.
//! - [`parse`] reads the answer (RFC 9083) into a [`Record`]: the network's range, name,
//!   holder, country and abuse contacts, wherever the registry put them (ARIN nests the abuse
//!   contact under the holder, APNIC and RIPE list it beside).
//!
//! Caching is the caller's: the CLI keeps every answer in the store with its time.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;
use serde_json::Value;

use crate::IntelError;

/// Where IANA publishes the bootstrap files.
pub const IANA_BOOTSTRAP: &str = "https://data.iana.org/rdap/";

/// What to look up: an address or an AS number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Query {
    Ip(IpAddr),
    Asn(u32),
}

impl FromStr for Query {
    type Err = IntelError;

    fn from_str(s: &str) -> Result<Query, IntelError> {
        let t = s.trim();
        if let Some(n) = t
            .strip_prefix("AS")
            .or_else(|| t.strip_prefix("as"))
            .or_else(|| t.strip_prefix("As"))
        {
            return n
                .parse()
                .map(Query::Asn)
                .map_err(|_| IntelError::Rdap(format!("`{s}`: not an AS number")));
        }
        t.parse().map(Query::Ip).map_err(|_| {
            IntelError::Rdap(format!(
                "`{s}`: not an IP address or AS number (write AS64500)"
            ))
        })
    }
}

impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Query::Ip(ip) => write!(f, "{ip}"),
            Query::Asn(n) => write!(f, "AS{n}"),
        }
    }
}

impl Query {
    /// The bootstrap registry that names its server.
    pub fn registry(&self) -> Registry {
        match self {
            Query::Ip(IpAddr::V4(_)) => Registry::Ipv4,
            Query::Ip(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => Registry::Ipv4,
            Query::Ip(IpAddr::V6(_)) => Registry::Ipv6,
            Query::Asn(_) => Registry::Asn,
        }
    }

    /// The path below a server's base URL (RFC 9082 section 3.1).
    pub fn path(&self) -> String {
        match self {
            Query::Ip(ip) => format!("ip/{}", ip.to_canonical()),
            Query::Asn(n) => format!("autnum/{n}"),
        }
    }

    /// The record kind that answers it (`ip` or `autnum`).
    pub fn kind(&self) -> &'static str {
        match self {
            Query::Ip(_) => "ip",
            Query::Asn(_) => "autnum",
        }
    }
}

/// The three IANA bootstrap registries for numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Registry {
    Ipv4,
    Ipv6,
    Asn,
}

impl Registry {
    pub const ALL: [Registry; 3] = [Registry::Ipv4, Registry::Ipv6, Registry::Asn];

    /// The name IANA gives the file (`ipv4.json`…) without `.json`.
    pub fn name(self) -> &'static str {
        match self {
            Registry::Ipv4 => "ipv4",
            Registry::Ipv6 => "ipv6",
            Registry::Asn => "asn",
        }
    }
}

/// Which servers answer for which numbers.
#[derive(Debug, Default, Clone)]
pub struct Bootstrap {
    v4: Vec<(Ipv4Net, Vec<String>)>,
    v6: Vec<(Ipv6Net, Vec<String>)>,
    asn: Vec<(u32, u32, Vec<String>)>,
    /// Registries loaded from IANA files (not the shipped fallback).
    loaded: Vec<Registry>,
}

impl Bootstrap {
    /// The address blocks shipped with Tansa (no AS numbers).
    pub fn builtin() -> Bootstrap {
        let mut b = Bootstrap::default();
        for line in include_str!("../data/rdap-bootstrap.txt").lines() {
            let mut w = line.split_whitespace();
            let (Some(family), Some(url)) = (w.next(), w.next()) else {
                continue;
            };
            let urls = vec![url.to_owned()];
            for block in w {
                match family {
                    "v4" => {
                        if let Ok(o) = block.parse::<u8>() {
                            let net = Ipv4Net::new(Ipv4Addr::new(o, 0, 0, 0), 8).expect("/8");
                            b.v4.push((net, urls.clone()));
                        }
                    }
                    "v6" => {
                        if let Ok(net) = block.parse() {
                            b.v6.push((net, urls.clone()));
                        }
                    }
                    _ => {}
                }
            }
        }
        b
    }

    /// Replaces a registry's entries with those of an IANA bootstrap file (RFC 9224:
    /// `{"services": [[[entries…], [urls…]], …]}`).
    pub fn load(&mut self, registry: Registry, json: &str) -> Result<(), IntelError> {
        let bad = |why: &str| IntelError::Rdap(format!("{}.json: {why}", registry.name()));
        let v: Value = serde_json::from_str(json).map_err(|e| bad(&e.to_string()))?;
        let services = v
            .get("services")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no `services` array (not an RDAP bootstrap file)"))?;
        let (mut v4, mut v6, mut asn) = (Vec::new(), Vec::new(), Vec::new());
        for s in services {
            let (Some(entries), Some(urls)) = (
                s.get(0).and_then(Value::as_array),
                s.get(1).and_then(Value::as_array),
            ) else {
                return Err(bad("a service is not [[entries], [urls]]"));
            };
            let urls: Vec<String> = urls
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            if urls.is_empty() {
                continue;
            }
            for e in entries.iter().filter_map(Value::as_str) {
                match registry {
                    Registry::Asn => {
                        let (lo, hi) = e.split_once('-').unwrap_or((e, e));
                        if let (Ok(lo), Ok(hi)) = (lo.trim().parse(), hi.trim().parse()) {
                            asn.push((lo, hi, urls.clone()));
                        }
                    }
                    Registry::Ipv4 => {
                        // IANA writes "1.0.0.0/8"; a bare "8" is a /8 too
                        let net = e.parse::<Ipv4Net>().ok().or_else(|| {
                            e.parse::<u8>()
                                .ok()
                                .and_then(|o| Ipv4Net::new(Ipv4Addr::new(o, 0, 0, 0), 8).ok())
                        });
                        if let Some(n) = net {
                            v4.push((n, urls.clone()));
                        }
                    }
                    Registry::Ipv6 => {
                        if let Ok(n) = e.parse::<Ipv6Net>() {
                            v6.push((n, urls.clone()));
                        }
                    }
                }
            }
        }
        match registry {
            Registry::Ipv4 => self.v4 = v4,
            Registry::Ipv6 => self.v6 = v6,
            Registry::Asn => self.asn = asn,
        }
        if !self.loaded.contains(&registry) {
            self.loaded.push(registry);
        }
        Ok(())
    }

    /// Whether a registry came from an IANA file.
    pub fn is_loaded(&self, registry: Registry) -> bool {
        self.loaded.contains(&registry)
    }

    /// The base URLs that answer for `q` (the most specific block's), HTTPS first.
    pub fn servers(&self, q: &Query) -> Vec<String> {
        let found = match q {
            Query::Ip(ip) => match ip.to_canonical() {
                IpAddr::V4(a) => self
                    .v4
                    .iter()
                    .filter(|(n, _)| n.contains(&a))
                    .max_by_key(|(n, _)| n.prefix_len())
                    .map(|e| &e.1),
                IpAddr::V6(a) => self
                    .v6
                    .iter()
                    .filter(|(n, _)| n.contains(&a))
                    .max_by_key(|(n, _)| n.prefix_len())
                    .map(|e| &e.1),
            },
            Query::Asn(n) => self
                .asn
                .iter()
                .filter(|(lo, hi, _)| (lo..=hi).contains(&n))
                .min_by_key(|(lo, hi, _)| hi - lo)
                .map(|e| &e.2),
        };
        let mut urls: Vec<String> = found.cloned().unwrap_or_default();
        urls.sort_by_key(|u| !u.starts_with("https://"));
        urls
    }
}

/// A contact of a record (the abuse desk, the holder).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Contact {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<String>,
}

/// What a registry says about a network or an autonomous system.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Record {
    /// `ip` or `autnum`.
    pub kind: String,
    /// First and last address (or AS number) of the registered range.
    pub first: String,
    pub last: String,
    /// The range as CIDR blocks (networks only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The allocation type (`ALLOCATED PA`, `DIRECT ALLOCATION`…).
    #[serde(skip_serializing_if = "Option::is_none", rename = "type")]
    pub kind_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The registrant's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// Contacts with the `abuse` role, nearest the network first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub abuse: Vec<Contact>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<String>,
    /// The URL that answered (after redirects).
    pub url: String,
}

impl Record {
    /// The first abuse e-mail address.
    pub fn abuse_email(&self) -> Option<&str> {
        self.abuse
            .iter()
            .flat_map(|c| c.emails.iter())
            .map(String::as_str)
            .next()
    }

    /// Whether the record's range holds `q`.
    pub fn covers(&self, q: &Query) -> bool {
        covers(&self.kind, &self.first, &self.last, q)
    }

    /// The size of the range (to prefer the most specific of several records).
    pub fn span(&self) -> u128 {
        span(&self.first, &self.last)
    }
}

/// Whether the range `first..=last` of a record of `kind` holds `q`.
pub fn covers(kind: &str, first: &str, last: &str, q: &Query) -> bool {
    match q {
        Query::Ip(ip) => {
            if kind != "ip" {
                return false;
            }
            match (first.parse::<IpAddr>(), last.parse::<IpAddr>()) {
                (Ok(a), Ok(b)) => {
                    let (a, b, ip) = (a.to_canonical(), b.to_canonical(), ip.to_canonical());
                    a.is_ipv4() == ip.is_ipv4() && a <= ip && ip <= b
                }
                _ => false,
            }
        }
        Query::Asn(n) => {
            kind == "autnum"
                && matches!((first.parse::<u32>(), last.parse::<u32>()), (Ok(a), Ok(b)) if a <= *n && *n <= b)
        }
    }
}

/// The number of addresses (or AS numbers) from `first` to `last`.
pub fn span(first: &str, last: &str) -> u128 {
    let num = |s: &str| -> Option<u128> {
        match s.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(IpAddr::V4(a)) => Some(u32::from(a) as u128),
            Ok(IpAddr::V6(a)) => Some(u128::from(a)),
            Err(_) => s.parse().ok(),
        }
    };
    match (num(first), num(last)) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => u128::MAX,
    }
}

/// Reads an RDAP answer for `q` (fetched from `url`).
pub fn parse(q: &Query, body: &str, url: &str) -> Result<Record, IntelError> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| IntelError::Rdap(format!("{url}: not RDAP JSON: {e}")))?;
    if let Some(code) = v.get("errorCode") {
        return Err(IntelError::Rdap(format!(
            "{url}: error {code}: {}",
            error_text(&v)
        )));
    }
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let class = text("objectClassName").unwrap_or_default();
    let mut r = Record {
        kind: q.kind().to_owned(),
        handle: text("handle"),
        name: text("name"),
        kind_of: text("type"),
        country: text("country"),
        url: url.to_owned(),
        ..Record::default()
    };
    match q {
        Query::Ip(_) => {
            if class != "ip network" {
                return Err(IntelError::Rdap(format!(
                    "{url}: answer is a `{class}`, not an `ip network`"
                )));
            }
            let (Some(first), Some(last)) = (text("startAddress"), text("endAddress")) else {
                return Err(IntelError::Rdap(format!(
                    "{url}: the network has no startAddress/endAddress"
                )));
            };
            // some registries write the ends as `2001:db8::/128`
            let addr = |s: &str| s.split('/').next().unwrap_or(s).trim().parse::<IpAddr>();
            let (Ok(a), Ok(b)) = (addr(&first), addr(&last)) else {
                return Err(IntelError::Rdap(format!(
                    "{url}: bad network range {first} - {last}"
                )));
            };
            r.first = a.to_string();
            r.last = b.to_string();
            r.cidrs = cidrs(&v, a, b);
        }
        Query::Asn(_) => {
            if class != "autnum" {
                return Err(IntelError::Rdap(format!(
                    "{url}: answer is a `{class}`, not an `autnum`"
                )));
            }
            let n = |k: &str| v.get(k).and_then(Value::as_u64);
            let (Some(first), Some(last)) = (n("startAutnum"), n("endAutnum").or(n("startAutnum")))
            else {
                return Err(IntelError::Rdap(format!(
                    "{url}: the autnum has no startAutnum"
                )));
            };
            r.first = first.to_string();
            r.last = last.to_string();
        }
    }
    if !r.covers(q) {
        return Err(IntelError::Rdap(format!(
            "{url}: the answer ({} - {}) does not hold {q}",
            r.first, r.last
        )));
    }
    if let Some(events) = v.get("events").and_then(Value::as_array) {
        for e in events {
            let date = e
                .get("eventDate")
                .and_then(Value::as_str)
                .map(str::to_owned);
            match e.get("eventAction").and_then(Value::as_str) {
                Some("registration") => r.registered = date,
                Some("last changed") => r.changed = date,
                _ => {}
            }
        }
    }
    // entities breadth first: the nearest registrant and abuse contacts come first
    let mut level: Vec<&Value> = entities(&v).collect();
    while !level.is_empty() {
        let mut next = Vec::new();
        for e in level {
            let roles: Vec<&str> = e
                .get("roles")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let c = contact(e);
            if roles.contains(&"registrant") && r.holder.is_none() {
                r.holder = c.name.clone().or_else(|| c.handle.clone());
            }
            if roles.contains(&"abuse") && !r.abuse.contains(&c) {
                r.abuse.push(c);
            }
            next.extend(entities(e));
        }
        level = next;
    }
    Ok(r)
}

fn error_text(v: &Value) -> String {
    let mut parts: Vec<String> = v
        .get("title")
        .and_then(Value::as_str)
        .map(|s| vec![s.to_owned()])
        .unwrap_or_default();
    if let Some(d) = v.get("description").and_then(Value::as_array) {
        parts.extend(d.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    parts.join("; ")
}

fn entities(v: &Value) -> impl Iterator<Item = &Value> {
    v.get("entities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The range as CIDR blocks: the `cidr0_cidrs` extension when given, else computed.
fn cidrs(v: &Value, a: IpAddr, b: IpAddr) -> Vec<String> {
    let listed: Vec<String> = v
        .get("cidr0_cidrs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let prefix = c
                .get("v4prefix")
                .or_else(|| c.get("v6prefix"))
                .and_then(Value::as_str)?;
            let len = c.get("length").and_then(Value::as_u64)?;
            let net: IpNet = format!("{prefix}/{len}").parse().ok()?;
            Some(net.to_string())
        })
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => ipnet::Ipv4Subnets::new(a, b, 0)
            .map(|n| n.to_string())
            .collect(),
        (IpAddr::V6(a), IpAddr::V6(b)) => ipnet::Ipv6Subnets::new(a, b, 0)
            .map(|n| n.to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// Name, e-mail addresses and phones of an entity's jCard (RFC 7095: `["vcard", [[name,
/// params, type, value], …]]`).
fn contact(e: &Value) -> Contact {
    let mut c = Contact {
        handle: e.get("handle").and_then(Value::as_str).map(str::to_owned),
        ..Contact::default()
    };
    let props = e
        .get("vcardArray")
        .and_then(|a| a.get(1))
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for p in props {
        let (Some(name), Some(value)) = (p.get(0).and_then(Value::as_str), p.get(3)) else {
            continue;
        };
        let value = match value {
            Value::String(s) => s.trim().to_owned(),
            _ => continue,
        };
        if value.is_empty() {
            continue;
        }
        match name {
            "fn" if c.name.is_none() => c.name = Some(value),
            "email" if !c.emails.contains(&value) => c.emails.push(value),
            "tel" => {
                let t = value.strip_prefix("tel:").unwrap_or(&value).to_owned();
                if !c.phones.contains(&t) {
                    c.phones.push(t);
                }
            }
            _ => {}
        }
    }
    c
}

/// An answer as received.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL that answered (after redirects).
    pub url: String,
    pub body: String,
}

/// A blocking RDAP client (HTTPS with rustls and the Mozilla roots; proxies from the
/// environment).
pub struct Client {
    agent: ureq::Agent,
}

impl Client {
    pub fn new(timeout: Duration) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(5)
            .user_agent(concat!("tansa/", env!("CARGO_PKG_VERSION")))
            .accept("application/rdap+json, application/json;q=0.9")
            .build()
            .into();
        Client { agent }
    }

    /// GETs a URL; a 2xx answer's body, or an error naming the status and RDAP error text.
    pub fn get(&self, url: &str) -> Result<Fetched, IntelError> {
        use ureq::ResponseExt;
        let mut res = self
            .agent
            .get(url)
            .call()
            .map_err(|e| IntelError::Rdap(format!("{url}: {e}")))?;
        let status = res.status();
        let answered = res.get_uri().to_string();
        let body = res
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .map_err(|e| IntelError::Rdap(format!("{answered}: {e}")))?;
        if !status.is_success() {
            let detail = serde_json::from_str::<Value>(&body)
                .ok()
                .map(|v| error_text(&v))
                .filter(|s| !s.is_empty())
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            let what = match status.as_u16() {
                404 => "no record",
                429 => "rate limited, try later",
                _ => "refused",
            };
            return Err(IntelError::Rdap(format!(
                "{answered}: HTTP {} ({what}){detail}",
                status.as_u16()
            )));
        }
        Ok(Fetched {
            url: answered,
            body,
        })
    }

    /// Asks the servers the bootstrap names for `q`, the next when one cannot be reached.
    pub fn lookup(
        &self,
        bootstrap: &Bootstrap,
        q: &Query,
    ) -> Result<(Record, Fetched), IntelError> {
        let servers = bootstrap.servers(q);
        if servers.is_empty() {
            return Err(IntelError::Rdap(format!(
                "no RDAP service known for {q}{}",
                if bootstrap.is_loaded(q.registry()) {
                    ""
                } else {
                    " (IANA's bootstrap file could not be loaded)"
                }
            )));
        }
        let mut errors = Vec::new();
        for base in servers {
            let url = format!("{}/{}", base.trim_end_matches('/'), q.path());
            match self.get(&url) {
                Ok(f) => {
                    let r = parse(q, &f.body, &f.url)?;
                    return Ok((r, f));
                }
                Err(IntelError::Rdap(m)) => errors.push(m),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(IntelError::Rdap(errors.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        assert_eq!("AS64500".parse::<Query>().unwrap(), Query::Asn(64500));
        assert_eq!(
            "2001:db8::1".parse::<Query>().unwrap().path(),
            "ip/2001:db8::1"
        );
        assert_eq!(
            "::ffff:1.2.3.4".parse::<Query>().unwrap().path(),
            "ip/1.2.3.4"
        );
        assert!("example.com".parse::<Query>().is_err());
        assert!("ASX".parse::<Query>().is_err());
    }

    #[test]
    fn builtin_bootstrap_names_the_rirs() {
        let b = Bootstrap::builtin();
        let first = |s: &str| b.servers(&s.parse().unwrap()).first().cloned();
        assert_eq!(first("1.1.1.1").as_deref(), Some("https://rdap.apnic.net/"));
        assert_eq!(
            first("8.8.8.8").as_deref(),
            Some("https://rdap.arin.net/registry/")
        );
        assert_eq!(
            first("193.0.6.139").as_deref(),
            Some("https://rdap.db.ripe.net/")
        );
        assert_eq!(
            first("200.3.14.10").as_deref(),
            Some("https://rdap.lacnic.net/rdap/")
        );
        assert_eq!(
            first("196.216.2.1").as_deref(),
            Some("https://rdap.afrinic.net/rdap/")
        );
        assert_eq!(
            first("2a00:1450::1").as_deref(),
            Some("https://rdap.db.ripe.net/")
        );
        assert_eq!(first("AS13335"), None);
    }

    #[test]
    fn iana_file_most_specific_and_https_first() {
        let mut b = Bootstrap::default();
        b.load(
            Registry::Ipv4,
            r#"{"version":"1.0","services":[[["93.0.0.0/8"],["http://x.example/","https://x.example/"]],[["93.184.0.0/15"],["https://y.example/"]],[["8"],["https://z.example/"]]]}"#,
        )
        .unwrap();
        b.load(
            Registry::Asn,
            r#"{"services":[[["1-1876","64496-64511"],["https://a.example/"]],[["64500"],["https://b.example/"]]]}"#,
        )
        .unwrap();
        let s = |q: &str| b.servers(&q.parse().unwrap());
        assert_eq!(s("93.184.216.34"), ["https://y.example/"]);
        assert_eq!(s("93.1.1.1"), ["https://x.example/", "http://x.example/"]);
        assert_eq!(s("8.8.8.8"), ["https://z.example/"]);
        assert_eq!(s("AS64500"), ["https://b.example/"]);
        assert_eq!(s("AS64501"), ["https://a.example/"]);
        assert!(s("AS70000").is_empty());
        assert!(b.load(Registry::Ipv6, "{}").is_err());
        assert!(b.load(Registry::Ipv6, "not json").is_err());
    }

    #[test]
    fn covers_and_span() {
        let q: Query = "203.0.113.9".parse().unwrap();
        assert!(covers("ip", "203.0.113.0", "203.0.113.255", &q));
        assert!(!covers("ip", "203.0.114.0", "203.0.114.255", &q));
        assert!(!covers("autnum", "1", "2", &q));
        assert!(!covers("ip", "2001:db8::", "2001:db8::ffff", &q));
        assert!(covers("autnum", "64496", "64511", &Query::Asn(64500)));
        assert_eq!(span("203.0.113.0", "203.0.113.255"), 255);
        assert!(span("10.0.0.0", "10.255.255.255") > span("10.0.0.0", "10.0.0.255"));
    }
}
