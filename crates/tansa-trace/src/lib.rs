//! Intrusion traceback (入侵溯源): from one entity — an address, a netblock, an ASN, a user,
//! a host or an alert — everything the attacker did, in order, across every log and host it
//! reached, each step labelled with its phase.
//!
//! Last box of the data path (`… → store → investigate`): reads the store only, through
//! [`tansa_store::Backend::query`] with bound parameters (log text never becomes SQL).
//!
//! How the chain is followed, each link bounded in time and recorded on the step it added:
//! - **address** → every event with it as source or destination, and events whose command
//!   line, URL or other fields mention it (as a whole address);
//! - **successful login** → its session: the sshd connection's lines (same host, same pid,
//!   up to the close), the logind session that started with it, the auditd processes it ran
//!   (children of the sshd pid, then everything of their audit session `ses`), sudo/su by the
//!   user, account and cron changes on the host — until the session closes, or (when no close
//!   is logged) until the host stays quiet for [`Options::idle`];
//! - **hop** → a login on another host from one of this host's addresses (the inventory and
//!   the addresses the host's own logs show) during the session, or right after an
//!   `ssh`/`scp`/`mysql` command to it; its session is followed in turn, to [`Options::depth`];
//! - **indicators** found on the way (URLs and hosts in commands, addresses in them, user
//!   names created) are searched for everywhere, and logins of created users are followed.
//!
//! Phases come from the ATT&CK tags of the alerts on a step's events, else from the event
//! ([`phase`]). Runs of the same kind of direct activity (a brute force's hundreds of lines)
//! become one step with a count.

pub mod html;
pub mod inventory;
pub mod phase;
pub mod query;
pub mod report;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use tansa_store::{Backend, Param};

pub use inventory::Inventory;
pub use phase::Phase;
use query::{fetch, list, mentions, rfc3339, sql_ts, Ev, Micros, DAY, HOUR, MINUTE, Q, SECOND};

/// Errors of the traceback.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(transparent)]
    Store(#[from] tansa_store::StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {msg}")]
    Inventory { path: PathBuf, msg: String },
    #[error("`{0}` is not something to trace: give an address (203.0.113.9), a netblock (45.141.87.0/24), an ASN (AS12345), user:NAME, host:NAME or an alert id")]
    Entity(String),
    #[error("{0}")]
    NotFound(String),
}

/// What a trace starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    Ip(IpAddr),
    /// A block of addresses (IPv4 or IPv6), its host bits cleared.
    Net(ipnet::IpNet),
    Asn(u32),
    User(String),
    Host(String),
    Alert(String),
}

impl FromStr for Entity {
    type Err = TraceError;

    fn from_str(s: &str) -> Result<Entity, TraceError> {
        let s = s.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Entity::Ip(ip));
        }
        if s.contains('/') {
            return s
                .parse::<ipnet::IpNet>()
                .map(|n| Entity::Net(n.trunc()))
                .map_err(|_| TraceError::Entity(s.into()));
        }
        let upper = s.to_ascii_uppercase();
        if let Some(n) = upper.strip_prefix("AS").and_then(|n| n.parse().ok()) {
            return Ok(Entity::Asn(n));
        }
        if let Some(u) = s.strip_prefix("user:").filter(|u| !u.is_empty()) {
            return Ok(Entity::User(u.into()));
        }
        if let Some(h) = s.strip_prefix("host:").filter(|h| !h.is_empty()) {
            return Ok(Entity::Host(h.into()));
        }
        if let Some(a) = s.strip_prefix("alert:").filter(|a| !a.is_empty()) {
            return Ok(Entity::Alert(a.into()));
        }
        if !s.is_empty()
            && s.len() <= 200
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Ok(Entity::Alert(s.into()));
        }
        Err(TraceError::Entity(s.into()))
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entity::Ip(ip) => write!(f, "{ip}"),
            Entity::Net(n) => write!(f, "{n}"),
            Entity::Asn(n) => write!(f, "AS{n}"),
            Entity::User(u) => write!(f, "user:{u}"),
            Entity::Host(h) => write!(f, "host:{h}"),
            Entity::Alert(a) => write!(f, "alert:{a}"),
        }
    }
}

/// Bounds of a trace.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only events at or after (UTC microseconds).
    pub from: Option<Micros>,
    /// Only events before.
    pub to: Option<Micros>,
    /// Hops followed from host to host.
    pub depth: u32,
    /// A session with no logged end ends after this long without activity.
    pub idle: Micros,
    /// Longest session followed.
    pub max_session: Micros,
    pub inventory: Inventory,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            from: None,
            to: None,
            depth: 3,
            idle: 30 * MINUTE,
            max_session: 24 * HOUR,
            inventory: Inventory::default(),
        }
    }
}

/// How an event came into the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The address (or user, host) itself.
    Direct,
    /// Mentions the address in a command line, URL or other field.
    Mention,
    /// Part of a session opened by a login of the chain.
    Session,
    /// A login on another host from a host of the chain.
    Hop,
    /// Mentions an indicator found on the way.
    Indicator,
}

/// One step of the timeline (one event, or a run of alike direct events).
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// UTC, RFC 3339.
    pub time: String,
    /// The last event's time when the step is a run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    /// The host's local time (inventory zone, else the offset its logs show).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    pub host: Option<String>,
    /// The log it came from (dataset: sshd, nginx.access, auditd…).
    pub source: String,
    pub phase: Phase,
    pub summary: String,
    /// The first event's line as written.
    pub raw: String,
    pub count: u64,
    pub source_ip: Option<String>,
    pub user: Option<String>,
    pub role: Role,
    /// Why the step is in the chain.
    pub link: String,
    /// Hops from the first host.
    pub depth: u32,
    /// Titles of the rules that fired on its events.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    pub log_path: Option<String>,
    pub log_offset: Option<u64>,
    /// Every event of the step (store ids).
    pub event_ids: Vec<u64>,
    #[serde(skip)]
    last_t: Micros,
    /// Of a run: kinds of events with counts, user names, ports.
    #[serde(skip)]
    tally: Tally,
}

#[derive(Debug, Clone, Default)]
struct Tally {
    kinds: BTreeMap<String, u64>,
    users: BTreeSet<String>,
    ports: BTreeSet<i64>,
}

impl Tally {
    fn add(&mut self, ev: &Ev) {
        *self.kinds.entry(kind_of(ev)).or_default() += 1;
        if let Some(u) = &ev.user {
            self.users.insert(u.clone());
        }
        if let Some(p) = ev.destination_port {
            self.ports.insert(p);
        }
    }

    /// `141 events: failed login ×107, invalid user ×34; users: admin, test (+10); ports: 22`
    fn describe(&self, count: u64) -> String {
        let mut kinds: Vec<(&String, &u64)> = self.kinds.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut out = format!(
            "{count} events: {}",
            kinds
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let few = |items: Vec<String>| {
            let n = items.len();
            let mut s = items.into_iter().take(8).collect::<Vec<_>>().join(", ");
            if n > 8 {
                s.push_str(&format!(" (+{} more)", n - 8));
            }
            s
        };
        if !self.users.is_empty() {
            out.push_str(&format!(
                "; users: {}",
                few(self.users.iter().cloned().collect())
            ));
        }
        if !self.ports.is_empty() {
            out.push_str(&format!(
                "; ports: {}",
                few(self.ports.iter().map(|p| p.to_string()).collect())
            ));
        }
        out
    }
}

/// A run's word for one event: `failed ssh login`, `firewall block`, `GET 404`…
fn kind_of(ev: &Ev) -> String {
    if ev.is("authentication") && ev.failed() {
        return match ev.dataset.as_deref() {
            Some("sshd") => "failed ssh login".into(),
            _ => "failed login".into(),
        };
    }
    if ev.is("web") {
        return format!(
            "{} {}",
            ev.http_method.as_deref().unwrap_or("?"),
            ev.http_status.map(|s| s.to_string()).unwrap_or_default()
        );
    }
    match &ev.action {
        Some(a) => a.replace('_', " "),
        None => ev.dataset.clone().unwrap_or_else(|| "event".into()),
    }
}

/// A session the chain entered.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub host: String,
    pub user: Option<String>,
    pub from: Option<String>,
    pub pid: Option<i64>,
    pub start: String,
    /// When the session's close is logged.
    pub end: Option<String>,
    /// Last activity seen in it.
    pub last_activity: String,
    pub logind_session: Option<String>,
    pub audit_sessions: Vec<String>,
    pub depth: u32,
    /// Another session of the same user on the host overlapped it: steps without a session
    /// key (sudo lines) are attributed by time.
    pub shared: bool,
    /// How access was gained (`password login as deploy from 45.141.87.23`).
    pub how: String,
}

/// Something found on the way that is followed too.
#[derive(Debug, Clone, Serialize)]
pub struct Indicator {
    pub kind: String,
    pub value: String,
    /// Where it was first seen (host).
    pub host: Option<String>,
    pub first_seen: String,
    /// Events that mention it.
    pub events: u64,
}

/// An address near the traced ones (same /24, or /64 for IPv6) active in the same window.
#[derive(Debug, Clone, Serialize)]
pub struct Neighbour {
    pub ip: String,
    pub events: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub roles: Vec<String>,
}

/// An alert related to the chain.
#[derive(Debug, Clone, Serialize)]
pub struct AlertRef {
    pub id: String,
    pub rule: String,
    pub severity: String,
    pub first_seen: String,
    pub count: u64,
    pub entity: String,
}

/// One member of a netblock (the /24 "C段" view).
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub ip: String,
    pub first_seen: String,
    pub last_seen: String,
    pub events: u64,
    pub firewall_hits: u64,
    pub ports: u64,
    pub auth_failures: u64,
    pub users_tried: u64,
    pub logins: u64,
    pub web_requests: u64,
    pub roles: Vec<String>,
    pub alerts: Vec<String>,
}

/// The netblock view: members, roles, totals.
#[derive(Debug, Clone, Serialize)]
pub struct Netblock {
    pub block: String,
    pub members: Vec<Member>,
    pub scanners: usize,
    pub brute_forcers: usize,
    pub got_in: usize,
    pub web_attackers: usize,
    pub events: u64,
}

impl Netblock {
    /// `3 members, 464 events: 3 scanned, 3 brute-forced, 1 got in, 0 attacked the web`
    pub fn totals(&self) -> String {
        format!(
            "{} members, {} events: {} scanned, {} brute-forced, {} got in, {} attacked the web",
            self.members.len(),
            self.events,
            self.scanners,
            self.brute_forcers,
            self.got_in,
            self.web_attackers
        )
    }
}

/// The summary above the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub entity: String,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Hosts where the attacker had a session.
    pub hosts_reached: Vec<String>,
    /// Hosts with any step.
    pub hosts_touched: Vec<String>,
    pub accounts: Vec<String>,
    pub access: Vec<String>,
    pub changes: Vec<String>,
    /// Addresses of the chain outside the inventory (the attacker's).
    pub addresses: Vec<String>,
    /// Country/ASN when the events carry enrichment.
    pub origin: Vec<String>,
    pub phases: Vec<Phase>,
    pub events: u64,
}

/// A whole trace.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    pub summary: Summary,
    pub sessions: Vec<Session>,
    pub indicators: Vec<Indicator>,
    pub neighbours: Vec<Neighbour>,
    pub alerts: Vec<AlertRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netblock: Option<Netblock>,
    /// Who holds the attacker's addresses and whom to tell (cached RDAP answers).
    pub registrations: Vec<Registration>,
    /// What the trace could not do (limits reached, enrichment missing).
    pub notes: Vec<String>,
    pub steps: Vec<Step>,
}

/// What a registry says of one of the attacker's addresses (from the RDAP answers `tansa
/// whois` cached in the store).
#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    pub address: String,
    /// The registered network (CIDR blocks, or first - last).
    pub network: String,
    pub name: Option<String>,
    pub holder: Option<String>,
    pub country: Option<String>,
    pub abuse_email: Option<String>,
    /// When the registry answered (UTC).
    pub fetched: String,
    pub source: String,
}

/// The cached registration of each public address (the most specific network holding it), and
/// the public addresses with none.
pub fn registrations(
    store: &dyn Backend,
    addresses: &[String],
) -> (Vec<Registration>, Vec<String>) {
    use tansa_intel::rdap::{covers, span, Query};
    let public: Vec<(String, Query)> = addresses
        .iter()
        .filter_map(|a| {
            let ip: IpAddr = a.parse().ok()?;
            tansa_intel::scope(ip)
                .is_none()
                .then(|| (a.clone(), Query::Ip(ip)))
        })
        .collect();
    if public.is_empty() {
        return (Vec::new(), Vec::new());
    }
    // a store written before the cache existed has no table: nothing is cached
    let Ok(t) = store.query(
        "SELECT strftime(fetched, '%Y-%m-%dT%H:%M:%SZ'), first, last, \
         array_to_string(cidrs, ', '), name, holder, country, abuse_email, url \
         FROM rdap WHERE kind = 'ip'",
        &[],
    ) else {
        return (Vec::new(), public.into_iter().map(|p| p.0).collect());
    };
    let text = |row: &[serde_json::Value], i: usize| -> Option<String> {
        row.get(i)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    for (address, q) in public {
        let best = t
            .rows
            .iter()
            .filter_map(|r| Some((r, text(r, 1)?, text(r, 2)?)))
            .filter(|(_, first, last)| covers("ip", first, last, &q))
            .min_by_key(|(_, first, last)| span(first, last));
        match best {
            Some((r, first, last)) => found.push(Registration {
                address,
                network: text(r, 3).unwrap_or_else(|| format!("{first} - {last}")),
                name: text(r, 4),
                holder: text(r, 5),
                country: text(r, 6),
                abuse_email: text(r, 7),
                fetched: text(r, 0).unwrap_or_default(),
                source: text(r, 8).unwrap_or_default(),
            }),
            None => unknown.push(address),
        }
    }
    (found, unknown)
}

/// The start of the note on addresses without a cached registration.
const UNREGISTERED_NOTE: &str = "no registry answer cached for";

impl Trace {
    /// Fills [`Trace::registrations`] from the store's RDAP cache, with a note naming the
    /// public addresses it has no answer for; returns those addresses.
    pub fn look_up_registrations(&mut self, store: &dyn Backend) -> Vec<String> {
        let (found, unknown) = registrations(store, &self.summary.addresses);
        self.registrations = found;
        self.notes.retain(|n| !n.starts_with(UNREGISTERED_NOTE));
        if !unknown.is_empty() {
            self.notes.push(format!(
                "{UNREGISTERED_NOTE} {} of the attacker's addresses (`tansa whois {}` or `tansa trace --whois` asks RDAP for the holder and abuse contact)",
                unknown.len(),
                unknown.iter().take(3).cloned().collect::<Vec<_>>().join(" ")
            ));
            self.notes.sort();
        }
        unknown
    }
}

impl Registration {
    /// `45.141.87.0/24 EXAMPLE-NET, Example Hosting (NL); abuse: abuse@example.net`.
    pub fn describe(&self) -> String {
        let mut s = self.network.clone();
        let who: Vec<&str> = [self.name.as_deref(), self.holder.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if !who.is_empty() {
            s.push(' ');
            s.push_str(&who.join(", "));
        }
        if let Some(c) = &self.country {
            s.push_str(&format!(" ({c})"));
        }
        s.push_str("; abuse: ");
        s.push_str(self.abuse_email.as_deref().unwrap_or("none listed"));
        s
    }
}

/// Traces an entity through a store.
pub fn trace(store: &dyn Backend, entity: &Entity, opts: &Options) -> Result<Trace, TraceError> {
    let mut t = Tracer::new(store, opts)?;
    let mut netblock = None;
    match entity {
        Entity::Ip(ip) => t.from_addresses(&[ip.to_string()])?,
        Entity::Net(net) => {
            let nb = t.netblock(net)?;
            let members: Vec<String> = nb.members.iter().map(|m| m.ip.clone()).collect();
            netblock = Some(nb);
            t.from_addresses(&members)?;
        }
        Entity::Asn(n) => {
            let ips = t.addresses_of_asn(*n)?;
            t.from_addresses(&ips)?;
        }
        Entity::User(u) => t.from_user(u)?,
        Entity::Host(h) => t.from_host(h)?,
        Entity::Alert(id) => t.from_alert(id)?,
    }
    t.follow_indicators()?;
    let mut out = t.finish(entity)?;
    out.netblock = netblock;
    Ok(out)
}

struct Draft {
    ev: Ev,
    role: Role,
    link: String,
    depth: u32,
}

/// Sshd, logind and PAM actions that end a session.
const CLOSES: &[&str] = &[
    "session_closed",
    "ssh_disconnect",
    "ssh_connection_closed",
    "logind_session_removed",
    "logind_session_logout",
];

fn closes_list() -> String {
    CLOSES
        .iter()
        .map(|c| format!("'{c}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Event id → the (title, tags) of the alerts on it.
type AlertsOn = HashMap<u64, Vec<(String, Vec<String>)>>;

/// What makes direct events one run: source address, host, phase, log.
type RunKey = (Option<String>, Option<String>, Phase, Option<String>);

/// One login's window for [`Tracer::fetch_windows`].
#[derive(Debug, Clone)]
struct Win {
    host: String,
    pid: i64,
    user: String,
    dataset: String,
    from: Micros,
    to: Micros,
}

/// The state of one trace while it is followed.
pub struct Tracer<'a> {
    store: &'a dyn Backend,
    opts: &'a Options,
    drafts: HashMap<u64, Draft>,
    sessions: Vec<Session>,
    seen_logins: HashSet<u64>,
    /// Host → its addresses (inventory and learned from its logs).
    host_addrs: BTreeMap<String, BTreeSet<String>>,
    indicators: BTreeMap<(String, String), Indicator>,
    followed_indicators: HashSet<String>,
    seeds: BTreeSet<String>,
    notes: Vec<String>,
}

/// `%XX` and `+` decoded (invalid sequences kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn text(s: &str) -> Param {
    Param::Text(s.to_owned())
}

impl<'a> Tracer<'a> {
    fn new(store: &'a dyn Backend, opts: &'a Options) -> Result<Tracer<'a>, TraceError> {
        let mut t = Tracer {
            store,
            opts,
            drafts: HashMap::new(),
            sessions: Vec::new(),
            seen_logins: HashSet::new(),
            host_addrs: BTreeMap::new(),
            indicators: BTreeMap::new(),
            followed_indicators: HashSet::new(),
            seeds: BTreeSet::new(),
            notes: Vec::new(),
        };
        for (name, h) in &opts.inventory.hosts {
            t.host_addrs
                .entry(name.clone())
                .or_default()
                .extend(h.addresses.iter().map(|a| a.to_string()));
        }
        t.learn_addresses()?;
        Ok(t)
    }

    /// The addresses a host's own logs give it: the destination of inbound firewall lines and
    /// of connections its services accepted. An address seen on more than one host (a shared
    /// NAT or load balancer) says nothing and is dropped.
    fn learn_addresses(&mut self) -> Result<(), TraceError> {
        let t = query::table(
            self.store,
            "SELECT destination_ip, list(DISTINCT host) FROM events \
             WHERE destination_ip IS NOT NULL AND host IS NOT NULL \
             AND (action = 'firewall_block' OR category IN ('authentication', 'session')) \
             AND json_extract_string(fields, '$.\"observer.egress.interface.name\"') IS NULL \
             GROUP BY 1 HAVING count(DISTINCT host) = 1",
            &[],
        )?;
        for row in &t.rows {
            let (Some(ip), Some(hosts)) = (row[0].as_str(), row[1].as_array()) else {
                continue;
            };
            if let Some(h) = hosts.first().and_then(|h| h.as_str()) {
                if self.opts.inventory.host_of(ip).is_none() {
                    self.host_addrs
                        .entry(h.to_owned())
                        .or_default()
                        .insert(ip.to_owned());
                }
            }
        }
        Ok(())
    }

    fn window(&self, q: Q) -> Q {
        let from = self.opts.from.unwrap_or(0);
        let to = self.opts.to.unwrap_or(4_102_444_800 * SECOND); // 2100-01-01
        q.between(from, to)
    }

    /// `q` limited to `[from, to)` within the trace's window.
    fn within(&self, q: Q, from: Micros, to: Micros) -> Q {
        let from = from.max(self.opts.from.unwrap_or(i64::MIN));
        let to = to.min(self.opts.to.unwrap_or(i64::MAX));
        q.between(from, to.max(from))
    }

    fn add(&mut self, ev: Ev, role: Role, link: impl Into<String>, depth: u32) -> bool {
        if self.drafts.contains_key(&ev.id) {
            return false;
        }
        self.drafts.insert(
            ev.id,
            Draft {
                ev,
                role,
                link: link.into(),
                depth,
            },
        );
        true
    }

    /// Everything of a set of addresses, then the sessions of their logins.
    pub fn from_addresses(&mut self, ips: &[String]) -> Result<(), TraceError> {
        if ips.is_empty() {
            return Ok(());
        }
        self.seeds.extend(ips.iter().cloned());
        let mut logins = Vec::new();
        let mut requests = Vec::new();
        for chunk in ips.chunks(500) {
            let evs = self.address_events(chunk, None)?;
            self.cap_note(evs.len(), "events of the traced addresses");
            for ev in evs {
                if ev.is_login() {
                    logins.push(ev.clone());
                }
                if ev.is("web") && ev.url.as_deref().is_some_and(|u| u.contains('?')) {
                    requests.push(ev.clone());
                }
                let ip = ev.source_ip.clone().unwrap_or_default();
                let link = if chunk.contains(&ip) {
                    format!("source address {ip}")
                } else {
                    format!(
                        "destination address {}",
                        ev.destination_ip.as_deref().unwrap_or("")
                    )
                };
                self.add(ev, Role::Direct, link, 0);
            }
        }
        for ip in ips.iter().take(64) {
            self.mentions_of(ip, Role::Mention, 0, None, None)?;
        }
        if ips.len() > 64 {
            self.notes.push(format!(
                "{} addresses traced: mentions in commands and URLs searched for the first 64",
                ips.len()
            ));
        }
        self.web_consequences(&requests)?;
        self.follow_sessions(logins.into_iter().map(|l| (l, 0)).collect())?;
        Ok(())
    }

    /// Events from or to any of `ips` (at most a few hundred), in time order; within `span`
    /// when given.
    fn address_events(
        &self,
        ips: &[String],
        span: Option<(Micros, Micros)>,
    ) -> Result<Vec<Ev>, TraceError> {
        let (marks, p) = list(ips.iter().cloned());
        // one query per column: an `IN` alone is applied in the scan, where the row groups'
        // ranges of addresses (days sorted by source address) skip most of the store; an OR
        // of two columns would read every row of both
        let mut evs = Vec::new();
        for col in ["source_ip", "destination_ip"] {
            let q = Q::new(&format!("{col} IN ({marks})"), p.clone());
            let q = match span {
                Some((a, b)) => self.within(q, a, b),
                None => self.window(q),
            };
            evs.extend(fetch(self.store, &q)?);
        }
        evs.sort_by_key(|e| (e.t, e.id));
        evs.dedup_by_key(|e| e.id);
        Ok(evs)
    }

    /// What the attacker's web requests set off: WAF records, application errors, database
    /// (slow-)query lines that carry a request's payload within two minutes after it, on any
    /// host — the entry point and the data it reached.
    fn web_consequences(&mut self, requests: &[Ev]) -> Result<(), TraceError> {
        let mut seen = HashSet::new();
        for r in requests.iter().take(200) {
            let Some((path, query)) = r.url.as_deref().and_then(|u| u.split_once('?')) else {
                continue;
            };
            for value in query
                .split('&')
                .filter_map(|kv| kv.split_once('=').map(|x| percent_decode(x.1)))
                // an attack payload, not an id: long enough, with something besides letters
                // and digits
                .filter(|v| v.chars().count() >= 6 && v.chars().any(|c| !c.is_alphanumeric()))
            {
                if !seen.insert(value.clone()) || seen.len() > 100 {
                    continue;
                }
                let q = Q::new("contains(raw, ?)", vec![text(&value)]);
                let q = self.within(q, r.t - 2 * SECOND, r.t + 120 * SECOND);
                for ev in query::fetch_sparse(self.store, &q)? {
                    if ev.id == r.id {
                        continue;
                    }
                    let what = match ev.dataset.as_deref().unwrap_or("") {
                        "modsecurity.audit" => "WAF record",
                        d if d.starts_with("mysql")
                            || d.starts_with("postgres")
                            || d.starts_with("mongo") =>
                        {
                            "database query"
                        }
                        d if d.starts_with("http")
                            || d.starts_with("nginx")
                            || d.starts_with("apache") =>
                        {
                            "web server line"
                        }
                        _ => "application log",
                    };
                    let dt = (ev.t - r.t) as f64 / SECOND as f64;
                    let short: String = value.chars().take(40).collect();
                    let link = format!(
                        "{what} {dt:+.1} s after {}'s request {} {path}, carrying its payload `{short}`",
                        r.source_ip.as_deref().unwrap_or("?"),
                        r.http_method.as_deref().unwrap_or("")
                    );
                    self.add(ev, Role::Mention, link, 0);
                }
            }
        }
        Ok(())
    }

    /// Events whose command line or URL (on `host`: also other fields) name `value`; within
    /// `[from, to)` when given. Returns how many matched.
    fn mentions_of(
        &mut self,
        value: &str,
        role: Role,
        depth: u32,
        span: Option<(Micros, Micros)>,
        host: Option<&str>,
    ) -> Result<u64, TraceError> {
        // command lines, URLs and referrers are short or mostly empty columns; the JSON of
        // other fields (error messages, decoded records) is searched only on one host, the
        // scan of every event's JSON being the dearest query of a trace. One query per
        // column: its `IS NOT NULL` is applied in the scan, which skips the row groups where
        // the column is empty (most of an auth.log's), an OR of columns would read them all
        let columns: &[&str] = match host {
            None => &["command_line", "url", "referrer"],
            Some(_) => &["command_line", "url", "referrer", "fields"],
        };
        let mut found = Vec::new();
        for col in columns {
            let q = Q::new(
                &format!("{col} IS NOT NULL AND contains({col}, ?)"),
                vec![text(value)],
            );
            let q = match host {
                Some(h) => q.and("host = ?", vec![text(h)]),
                None => q,
            };
            let q = match span {
                Some((a, b)) => self.within(q, a, b),
                None => self.window(q),
            };
            found.extend(query::fetch_sparse(self.store, &q)?);
        }
        found.sort_by_key(|e| (e.t, e.id));
        found.dedup_by_key(|e| e.id);
        let is_addr = value.parse::<IpAddr>().is_ok();
        let mut n = 0;
        for ev in found {
            let hay = [
                ev.command_line.as_deref(),
                ev.url.as_deref(),
                Some(ev.raw.as_str()),
            ];
            let hit = hay.iter().flatten().any(|h| {
                if is_addr {
                    mentions(h, value)
                } else {
                    h.contains(value)
                }
            });
            if !hit {
                continue;
            }
            n += 1;
            let link = match role {
                Role::Mention => format!("mentions {value}"),
                _ => format!("mentions indicator {value}"),
            };
            self.add(ev, role, link, depth);
        }
        Ok(n)
    }

    /// Follows sessions in waves: the logins of one wave are looked up together (one query
    /// per kind of evidence, each login with its own host, pid, user and time window), their
    /// hops form the next wave.
    fn follow_sessions(&mut self, mut wave: Vec<(Ev, u32)>) -> Result<(), TraceError> {
        while !wave.is_empty() {
            wave.retain(|(l, _)| l.host.is_some() && self.seen_logins.insert(l.id));
            let max = self.opts.max_session;
            let win = |l: &Ev, from: Micros, to: Micros| Win {
                host: l.host.clone().unwrap_or_default(),
                pid: l.pid.unwrap_or(-1),
                user: l.user.clone().unwrap_or_default(),
                dataset: l.dataset.clone().unwrap_or_default(),
                from,
                to,
            };
            let long: Vec<Win> = wave.iter().map(|(l, _)| win(l, l.t, l.t + max)).collect();
            // 1. the connection's own lines: same host, pid and log
            let conn = self.fetch_windows(
                &long,
                "e.process_pid = s.p AND e.dataset = s.d",
                "e.process_pid IS NOT NULL",
            )?;
            // 2. the logind session that started with the login
            let short: Vec<Win> = wave
                .iter()
                .map(|(l, _)| win(l, l.t, l.t + 10 * SECOND))
                .collect();
            let logind = self.fetch_windows(
                &short,
                "e.user_name = s.u",
                "e.action = 'logind_session_new'",
            )?;
            // 3. auditd processes the sshd pid started
            let children = self.fetch_windows(
                &long,
                "TRY_CAST(json_extract(e.fields, '$.\"process.parent.pid\"') AS BIGINT) = s.p",
                "e.dataset = 'auditd' AND e.category IS NOT NULL",
            )?;
            // 4. sudo/su by the user, account and cron changes on the host (no session key on
            // these lines: attributed by time)
            let acts = self.fetch_windows(
                &long,
                "((e.dataset IN ('sudo', 'su') AND (e.user_name = s.u OR json_extract_string(e.fields, '$.\"user.effective.name\"') = s.u)) \
                 OR e.category = 'iam' OR e.action LIKE 'crontab%')",
                "e.category IN ('process', 'session', 'iam', 'configuration')",
            )?;
            let mut by_login: Vec<Vec<(Ev, String, bool)>> = vec![Vec::new(); wave.len()];
            let mut ends: Vec<Option<Micros>> = vec![None; wave.len()];
            // the connection's lines up to its close, or up to a new connection with its pid
            for (k, ev) in conn {
                let (l, _) = &wave[k];
                if ends[k].is_some() || ev.id == l.id {
                    continue;
                }
                if ev.is("authentication")
                    && (ev.source_ip != l.source_ip
                        || ev.field("source.port") != l.field("source.port"))
                {
                    ends[k] = Some(ev.t); // the pid was reused: the session had ended
                    continue;
                }
                let closes = ev.action.as_deref().is_some_and(|a| CLOSES.contains(&a));
                if closes {
                    ends[k] = Some(ev.t);
                }
                let why = format!("same connection (pid {}) as the login", ev.pid.unwrap_or(0));
                by_login[k].push((ev, why, false));
            }
            let mut logind_ids: Vec<Option<String>> = vec![None; wave.len()];
            for (k, ev) in logind {
                if logind_ids[k].is_none() {
                    logind_ids[k] = ev.field("session.id");
                    by_login[k].push((ev, "logind session of the login".into(), false));
                }
            }
            let mut audit: Vec<BTreeSet<String>> = vec![BTreeSet::new(); wave.len()];
            for (k, ev) in children {
                if ends[k].is_some_and(|e| ev.t > e) {
                    continue;
                }
                if let Some(ses) = ev.field("session.id") {
                    audit[k].insert(ses);
                }
                let why = format!(
                    "process started by the session's sshd (pid {})",
                    wave[k].0.pid.unwrap_or(0)
                );
                by_login[k].push((ev, why, false));
            }
            // everything of those audit sessions
            let ses_wins: Vec<(usize, Win)> = wave
                .iter()
                .enumerate()
                .flat_map(|(k, (l, _))| {
                    audit[k].iter().map(move |ses| {
                        (
                            k,
                            Win {
                                host: l.host.clone().unwrap_or_default(),
                                pid: -1,
                                user: ses.clone(),
                                dataset: String::new(),
                                from: l.t,
                                to: l.t + max,
                            },
                        )
                    })
                })
                .collect();
            if !ses_wins.is_empty() {
                let wins: Vec<Win> = ses_wins.iter().map(|(_, w)| w.clone()).collect();
                for (i, ev) in self.fetch_windows(
                    &wins,
                    "json_extract_string(e.fields, '$.\"session.id\"') = s.u",
                    "e.dataset = 'auditd' AND e.category IS NOT NULL",
                )? {
                    let k = ses_wins[i].0;
                    let why = format!("audit session {} of the login", ses_wins[i].1.user);
                    by_login[k].push((ev, why, false));
                }
            }
            for (k, ev) in acts {
                let host = ev.host.clone().unwrap_or_default();
                let why = if ev.is("iam")
                    || ev
                        .action
                        .as_deref()
                        .is_some_and(|a| a.starts_with("crontab"))
                {
                    format!("account/cron change on {host} during the session")
                } else {
                    format!(
                        "by {} on {host} during the session",
                        wave[k].0.user.as_deref().unwrap_or("?")
                    )
                };
                by_login[k].push((ev, why, true));
            }
            let mut next = Vec::new();
            let mut hop_wins: Vec<(usize, String, Micros, Micros)> = Vec::new();
            let mut session_commands: Vec<Vec<Ev>> = vec![Vec::new(); wave.len()];
            for (k, evidence) in by_login.into_iter().enumerate() {
                let (login, depth) = wave[k].clone();
                let host = login.host.clone().unwrap_or_default();
                let t0 = login.t;
                let mut end = ends[k];
                let mut evidence = evidence;
                evidence.sort_by_key(|(e, _, _)| (e.t, e.id));
                evidence.dedup_by_key(|(e, _, _)| e.id);
                // a session whose end is not logged lasts while the host stays busy with it
                let mut last = t0;
                let mut kept = Vec::new();
                for (ev, why, timed) in evidence {
                    if end.is_some_and(|e| ev.t > e) {
                        continue;
                    }
                    if end.is_none() && ev.t - last > self.opts.idle {
                        break;
                    }
                    last = last.max(ev.t);
                    kept.push((ev, why, timed));
                }
                if let (None, Some(id)) = (end, &logind_ids[k]) {
                    // a logind session ends with its removal
                    let q = Q::new(
                        "host = ? AND action IN ('logind_session_removed', 'logind_session_logout') \
                         AND json_extract_string(fields, '$.\"session.id\"') = ?",
                        vec![text(&host), text(id)],
                    );
                    if let Some(ev) = fetch(self.store, &self.within(q, t0, last + self.opts.idle))?
                        .into_iter()
                        .next()
                    {
                        end = Some(ev.t);
                        kept.push((ev, format!("logind session {id} of the login"), false));
                    }
                }
                let active_until = end.unwrap_or(last + self.opts.idle);
                let mut shared = false;
                if let Some(u) = &login.user {
                    if kept.iter().any(|(_, _, timed)| *timed) {
                        shared = self.other_session_open(&login, u, t0, active_until)?;
                    }
                }
                let how = format!(
                    "{} login as {} from {}",
                    login
                        .field("ssh.method")
                        .unwrap_or_else(|| login.dataset.clone().unwrap_or_else(|| "a".into())),
                    login.user.as_deref().unwrap_or("?"),
                    login.source_ip.as_deref().unwrap_or("?")
                );
                self.sessions.push(Session {
                    host: host.clone(),
                    user: login.user.clone(),
                    from: login.source_ip.clone(),
                    pid: login.pid,
                    start: rfc3339(t0),
                    end: end.map(rfc3339),
                    last_activity: rfc3339(last),
                    logind_session: logind_ids[k].clone(),
                    audit_sessions: audit[k].iter().cloned().collect(),
                    depth,
                    shared,
                    how,
                });
                for (ev, mut why, timed) in kept {
                    if shared && timed {
                        why.push_str(
                            " (another session of the same user was open: attributed by time)",
                        );
                    }
                    if ev.command_line.is_some() {
                        self.note_indicators(&ev);
                        session_commands[k].push(ev.clone());
                    }
                    if ev.action_is("user_created") {
                        if let Some(u) = &ev.user {
                            self.indicator("user", u, &ev);
                        }
                    }
                    self.add(ev, Role::Session, why, depth);
                }
                if depth < self.opts.depth {
                    hop_wins.push((k, host, t0, active_until));
                } else {
                    self.notes.push(format!(
                        "hops from {host} not followed: depth {} reached",
                        self.opts.depth
                    ));
                }
            }
            // 5. hops to other hosts
            for (k, host, t0, until) in hop_wins {
                let depth = wave[k].1;
                for (ev, why) in self.hops(&host, t0, until, &session_commands[k])? {
                    if self.seen_logins.contains(&ev.id) || self.drafts.contains_key(&ev.id) {
                        continue;
                    }
                    let login = ev.clone();
                    self.add(ev, Role::Hop, why, depth + 1);
                    next.push((login, depth + 1));
                }
            }
            wave = next;
        }
        Ok(())
    }

    /// Events in per-login windows: `on` joins an event `e` to a window `s` (columns `h` host,
    /// `p` pid, `u` user, `d` dataset, `t0`/`t1` the time), `filter` narrows `e` before the
    /// join. Returns (window index, event) in time order.
    fn fetch_windows(
        &self,
        wins: &[Win],
        on: &str,
        filter: &str,
    ) -> Result<Vec<(usize, Ev)>, TraceError> {
        let mut out = Vec::new();
        // windows by host and time, in chunks of one host that span at most two days (each
        // query then reads the days of its chunk only, and its host is a filter of the scan)
        let mut order: Vec<usize> = (0..wins.len()).collect();
        order.sort_by(|&a, &b| (&wins[a].host, wins[a].from).cmp(&(&wins[b].host, wins[b].from)));
        let sorted: Vec<&Win> = order.iter().map(|&i| &wins[i]).collect();
        let mut chunks: Vec<(usize, &[&Win])> = Vec::new();
        let mut start = 0;
        for i in 1..=sorted.len() {
            if i == sorted.len()
                || i - start == 256
                || sorted[i].host != sorted[start].host
                || sorted[i].to - sorted[start].from > 2 * DAY
            {
                chunks.push((start, &sorted[start..i]));
                start = i;
            }
        }
        for (c, chunk) in chunks {
            let from = chunk.iter().map(|w| w.from).min().unwrap_or(0);
            let to = chunk.iter().map(|w| w.to).max().unwrap_or(0);
            let (from, to) = (
                from.max(self.opts.from.unwrap_or(i64::MIN)),
                to.min(self.opts.to.unwrap_or(i64::MAX)),
            );
            if from >= to {
                continue;
            }
            let mut p = Vec::new();
            let rows: Vec<String> = chunk
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    p.extend([
                        Param::Int((c + i) as i64),
                        text(&w.host),
                        Param::Int(w.pid),
                        text(&w.user),
                        text(&w.dataset),
                        Param::Text(sql_ts(w.from)),
                        Param::Text(sql_ts(w.to)),
                    ]);
                    "(?, ?, ?, ?, ?, CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP))".to_string()
                })
                .collect();
            let w = Q::new("TRUE", vec![]).between(from, to);
            p.extend(w.params);
            // the same bounds as plain filters the scan applies before the join (DuckDB
            // applies an `IN` of several values only to skip row groups; an equality or a
            // range is a filter of the scan itself)
            p.push(text(&chunk[0].host));
            let mut pushed = "e.host = ?".to_string();
            if on.contains("e.process_pid = s.p") {
                let pids: BTreeSet<i64> = chunk.iter().map(|w| w.pid).collect();
                pushed.push_str(&format!(
                    " AND e.process_pid IN ({}) AND e.process_pid BETWEEN {} AND {}",
                    pids.iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    pids.first().unwrap_or(&0),
                    pids.last().unwrap_or(&0),
                ));
            }
            // (whole rows straight away: a session's lines are spread over the day once it is
            // sorted by address, and a second query by key would read the day again)
            let sql = format!(
                "WITH s(k, h, p, u, d, t0, t1) AS (VALUES {}) \
                 SELECT s.k, {} FROM events e JOIN s ON e.host = s.h AND e.ts >= s.t0 AND e.ts < s.t1 AND {on} \
                 WHERE ({filter}) AND {} AND {pushed}",
                rows.join(", "),
                query::COLS
                    .split(", ")
                    .map(|c| format!("e.{c}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                w.sql.replace("day ", "e.day ").replace("ts ", "e.ts ")
            );
            let t = query::table(self.store, &sql, &p)?;
            for r in &t.rows {
                if let (Some(k), Some(ev)) = (r[0].as_u64(), query::Ev::from_row(&r[1..])) {
                    out.push((order[k as usize], ev));
                }
            }
        }
        out.sort_by_key(|(_, e)| (e.t, e.id));
        Ok(out)
    }

    /// Whether another login of `user` on the login's host was open in `[t0, bound)`.
    fn other_session_open(
        &self,
        login: &Ev,
        user: &str,
        t0: Micros,
        bound: Micros,
    ) -> Result<bool, TraceError> {
        let host = login.host.as_deref().unwrap_or("");
        let q = Q::new(
            "host = ? AND category = 'authentication' AND outcome = 'success' AND user_name = ? AND id <> ?",
            vec![text(host), text(user), Param::Int(login.id as i64)],
        );
        let others = fetch(
            self.store,
            &self.within(q, t0 - self.opts.max_session, bound),
        )?;
        for o in others {
            let Some(pid) = o.pid else { return Ok(true) };
            let q = Q::new(
                &format!(
                    "host = ? AND process_pid = ? AND action IN ({})",
                    closes_list()
                ),
                vec![text(host), Param::Int(pid)],
            );
            let close = fetch(self.store, &self.within(q, o.t, bound))?
                .into_iter()
                .next()
                .map(|e| e.t);
            if close.is_none_or(|c| c > t0) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Logins on other hosts from `host` during `[t0, until)`, or after a command that names
    /// the other host.
    fn hops(
        &mut self,
        host: &str,
        t0: Micros,
        until: Micros,
        commands: &[Ev],
    ) -> Result<Vec<(Ev, String)>, TraceError> {
        let mut found: Vec<(Ev, String)> = Vec::new();
        let addrs: Vec<String> = self
            .host_addrs
            .get(host)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        if !addrs.is_empty() {
            let (marks, p) = list(addrs.iter().cloned());
            let mut params = vec![text(host)];
            params.extend(p);
            let q = Q::new(
                &format!(
                    "category = 'authentication' AND outcome = 'success' AND host IS NOT NULL \
                     AND host <> ? AND source_ip IN ({marks})"
                ),
                params,
            );
            for ev in fetch(self.store, &self.within(q, t0, until))? {
                let why = format!(
                    "login on {} from {host}'s address {} during the session on {host}",
                    ev.host.as_deref().unwrap_or("?"),
                    ev.source_ip.as_deref().unwrap_or("?")
                );
                found.push((ev, why));
            }
        }
        // logins elsewhere from internal addresses no host claims: say how to link them
        let q = Q::new(
            "category = 'authentication' AND outcome = 'success' AND host IS NOT NULL AND host <> ? \
             AND (source_ip LIKE '10.%' OR source_ip LIKE '192.168.%' OR source_ip LIKE '172.%' OR source_ip LIKE 'fd%')",
            vec![text(host)],
        );
        for ev in fetch(self.store, &self.within(q, t0, until))? {
            let ip = ev.source_ip.clone().unwrap_or_default();
            let internal = match ip.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => a.is_private(),
                Ok(IpAddr::V6(a)) => (a.segments()[0] & 0xfe00) == 0xfc00,
                Err(_) => false,
            };
            if internal && self.host_of_addr(&ip).is_none() {
                self.notes.push(format!(
                    "login on {} from the internal address {ip} while the session on {host} was open: \
                     if {ip} is {host}, name it in hosts.toml and the trace follows the hop",
                    ev.host.as_deref().unwrap_or("?")
                ));
            }
        }
        // commands that reach another host by name or address
        for c in commands {
            let Some(target) = c.command_line.as_deref().and_then(remote_target) else {
                continue;
            };
            let next = self
                .opts
                .inventory
                .host_of(&target)
                .map(str::to_owned)
                .or_else(|| {
                    self.host_addrs
                        .iter()
                        .find(|(h, a)| **h == target || a.contains(&target))
                        .map(|(h, _)| h.clone())
                });
            let Some(next) = next.filter(|n| n != host) else {
                continue;
            };
            let q = Q::new(
                "category = 'authentication' AND outcome = 'success' AND host = ?",
                vec![text(&next)],
            );
            for ev in fetch(self.store, &self.within(q, c.t, c.t + 2 * MINUTE))? {
                let why = format!(
                    "login on {next} right after `{}` on {host}",
                    c.command_line.as_deref().unwrap_or("")
                );
                found.push((ev, why));
            }
        }
        Ok(found)
    }

    fn indicator(&mut self, kind: &str, value: &str, ev: &Ev) {
        self.indicators
            .entry((kind.to_owned(), value.to_owned()))
            .or_insert_with(|| Indicator {
                kind: kind.to_owned(),
                value: value.to_owned(),
                host: ev.host.clone(),
                first_seen: rfc3339(ev.t),
                events: 0,
            });
    }

    /// URLs, their hosts and public addresses in a command line.
    fn note_indicators(&mut self, ev: &Ev) {
        static URL: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r#"(?i)\b(?:https?|ftp)://([^\s/'"<>:?#]+)[^\s'"<>]*"#).expect("url regex")
        });
        static ADDR: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"\b(?:\d{1,3}\.){3}\d{1,3}\b").expect("address regex"));
        static STAGED: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r#"(?:/tmp|/var/tmp|/dev/shm)/[^\s'";|&<>()]+"#).expect("staged file regex")
        });
        let Some(cmd) = ev.command_line.clone() else {
            return;
        };
        for m in URL.captures_iter(&cmd) {
            self.indicator("url", &m[0], ev);
            let h = m[1].to_owned();
            let kind = if h.parse::<IpAddr>().is_ok() {
                "ip"
            } else {
                "domain"
            };
            self.indicator(kind, &h, ev);
        }
        // files staged where attackers stage them: followed on the same host
        for m in STAGED.find_iter(&cmd) {
            self.indicator("file", m.as_str(), ev);
        }
        for m in ADDR.find_iter(&cmd) {
            if let Ok(IpAddr::V4(a)) = m.as_str().parse::<IpAddr>() {
                if !(a.is_private() || a.is_loopback() || a.is_link_local()) {
                    self.indicator("ip", m.as_str(), ev);
                }
            }
        }
    }

    /// Searches every indicator (once) across all hosts; created users' logins are followed.
    fn follow_indicators(&mut self) -> Result<(), TraceError> {
        for _round in 0..3 {
            let todo: Vec<(String, String)> = self
                .indicators
                .keys()
                .filter(|k| {
                    !self
                        .followed_indicators
                        .contains(&format!("{}\0{}", k.0, k.1))
                })
                .cloned()
                .collect();
            if todo.is_empty() {
                break;
            }
            let (first, last) = self.span().unwrap_or((0, 0));
            let span = (first - DAY, last + DAY);
            for (kind, value) in todo {
                self.followed_indicators.insert(format!("{kind}\0{value}"));
                let n = match kind.as_str() {
                    "user" => self.follow_user_logins(&value, span)?,
                    "url" | "domain" => {
                        self.mentions_of(&value, Role::Indicator, 0, Some(span), None)?
                    }
                    "file" => {
                        let host = self
                            .indicators
                            .get(&(kind.clone(), value.clone()))
                            .and_then(|i| i.host.clone());
                        self.mentions_of(&value, Role::Indicator, 0, Some(span), host.as_deref())?
                    }
                    _ => {
                        let evs = self.address_events(std::slice::from_ref(&value), Some(span))?;
                        let mut n = evs.len() as u64;
                        for ev in evs {
                            self.add(
                                ev,
                                Role::Indicator,
                                format!("address {value} found in the chain"),
                                0,
                            );
                        }
                        n += self.mentions_of(&value, Role::Indicator, 0, Some(span), None)?;
                        n
                    }
                };
                if let Some(i) = self.indicators.get_mut(&(kind, value)) {
                    i.events = n;
                }
            }
        }
        Ok(())
    }

    /// Logins of a user the attacker created (persistence in use), and their sessions.
    fn follow_user_logins(
        &mut self,
        user: &str,
        span: (Micros, Micros),
    ) -> Result<u64, TraceError> {
        let q = Q::new(
            "user_name = ? AND (category = 'authentication' OR category = 'iam')",
            vec![text(user)],
        );
        let evs = fetch(self.store, &self.within(q, span.0, span.1 + 29 * DAY))?;
        let n = evs.len() as u64;
        let mut logins = Vec::new();
        for ev in evs {
            if ev.is_login() {
                logins.push((ev.clone(), 0));
            }
            self.add(
                ev,
                Role::Indicator,
                format!("account {user} created in the chain"),
                0,
            );
        }
        self.follow_sessions(logins)?;
        Ok(n)
    }

    fn span(&self) -> Option<(Micros, Micros)> {
        let first = self.drafts.values().map(|d| d.ev.t).min()?;
        let last = self.drafts.values().map(|d| d.ev.t).max()?;
        Some((first, last))
    }

    fn cap_note(&mut self, n: usize, what: &str) {
        if n >= query::CAP {
            self.notes.push(format!(
                "{what}: the first {} only (narrow the time with --from/--to)",
                query::CAP
            ));
        }
    }

    /// Users: their logins (from anywhere) and sessions, failures against them, changes to
    /// their account.
    pub fn from_user(&mut self, user: &str) -> Result<(), TraceError> {
        let q = Q::new("user_name = ?", vec![text(user)]);
        let evs = fetch(self.store, &self.window(q))?;
        self.cap_note(evs.len(), "events of the user");
        let mut logins = Vec::new();
        for ev in evs {
            if ev.is_login() {
                logins.push(ev.clone());
                if let Some(ip) = &ev.source_ip {
                    if self.opts.inventory.host_of(ip).is_none() {
                        self.seeds.insert(ip.clone());
                    }
                }
            }
            self.add(ev, Role::Direct, format!("user {user}"), 0);
        }
        self.follow_sessions(logins.into_iter().map(|l| (l, 0)).collect())?;
        Ok(())
    }

    /// A host: the addresses its alerts name, and for alerts that name none (a command run
    /// on the host), the address their session came from — traced.
    pub fn from_host(&mut self, host: &str) -> Result<(), TraceError> {
        let n = query::table(
            self.store,
            "SELECT count(*) FROM events WHERE host = ?",
            &[text(host)],
        )?;
        if n.rows.first().and_then(|r| r[0].as_u64()) == Some(0) {
            return Err(TraceError::NotFound(format!("no events of host {host}")));
        }
        let mut q = Q::new("host = ?", vec![text(host)]);
        if let Some(f) = self.opts.from {
            q = q.and(
                "last_seen >= CAST(? AS TIMESTAMP)",
                vec![Param::Text(sql_ts(f))],
            );
        }
        if let Some(t) = self.opts.to {
            q = q.and(
                "first_seen < CAST(? AS TIMESTAMP)",
                vec![Param::Text(sql_ts(t))],
            );
        }
        let t = query::table(
            self.store,
            &format!(
                "SELECT id, source_ip FROM alerts WHERE {} ORDER BY first_seen",
                q.sql
            ),
            &q.params,
        )?;
        let mut ips = BTreeSet::new();
        for r in &t.rows {
            let id = r[0].as_str().unwrap_or_default().to_owned();
            match r[1].as_str() {
                Some(ip) if self.host_of_addr(ip).is_none() => {
                    ips.insert(ip.to_owned());
                }
                _ => {
                    if let Some(o) = self.origin_of_alert(&id)? {
                        ips.insert(o);
                    }
                }
            }
        }
        if ips.is_empty() {
            self.notes.push(format!(
                "no alert on {host} leads to an address: nothing to trace"
            ));
        }
        self.from_addresses(&ips.into_iter().collect::<Vec<_>>())
    }

    /// An alert: its address, or the address its events' session came from, or its user.
    pub fn from_alert(&mut self, id: &str) -> Result<(), TraceError> {
        let t = query::table(
            self.store,
            "SELECT source_ip, user_name, host FROM alerts WHERE id = ?",
            &[text(id)],
        )?;
        let Some(row) = t.rows.first() else {
            return Err(TraceError::NotFound(format!("no alert with id {id}")));
        };
        let s = |i: usize| row[i].as_str().map(str::to_owned);
        if let Some(ip) = s(0).filter(|ip| self.host_of_addr(ip).is_none()) {
            return self.from_addresses(&[ip]);
        }
        if let Some(o) = self.origin_of_alert(id)? {
            return self.from_addresses(&[o]);
        }
        match s(1) {
            Some(u) => self.from_user(&u),
            None => Err(TraceError::NotFound(format!(
                "alert {id} names no address, and none of its events leads back to a login"
            ))),
        }
    }

    /// The host an address belongs to (inventory, or learned from the host's logs).
    fn host_of_addr(&self, ip: &str) -> Option<String> {
        if let Some(h) = self.opts.inventory.host_of(ip) {
            return Some(h.to_owned());
        }
        self.host_addrs
            .iter()
            .find(|(_, a)| a.contains(ip))
            .map(|(h, _)| h.clone())
    }

    /// The outside address an alert's activity came from, followed backwards.
    fn origin_of_alert(&mut self, id: &str) -> Result<Option<String>, TraceError> {
        let q = Q::new(
            "id IN (SELECT event_id FROM alert_events WHERE alert_id = ?)",
            vec![text(id)],
        );
        for ev in fetch(self.store, &q)?.iter().take(5) {
            let mut path = Vec::new();
            if let Some(o) = self.origin_of(ev, 0, &mut path)? {
                self.notes
                    .push(format!("alert {id} traced back: {}", path.join(" ← ")));
                return Ok(Some(o));
            }
        }
        Ok(None)
    }

    /// Backwards from an event to the outside address whose session did it: an auditd
    /// process to the login of its parent sshd, a sudo line or account change to the login
    /// open on the host at that time, a login from another host's address to the session open
    /// there — until an address that is no host of ours.
    fn origin_of(
        &self,
        ev: &Ev,
        depth: u32,
        path: &mut Vec<String>,
    ) -> Result<Option<String>, TraceError> {
        if depth > self.opts.depth + 1 {
            return Ok(None);
        }
        if let Some(ip) = &ev.source_ip {
            match self.host_of_addr(ip) {
                None => {
                    path.push(format!("{} from {ip}", summarize(ev)));
                    return Ok(Some(ip.clone()));
                }
                Some(from_host) => {
                    path.push(format!(
                        "{} on {} from {ip} ({from_host})",
                        summarize(ev),
                        ev.host.as_deref().unwrap_or("?")
                    ));
                    return match self.open_login_at(&from_host, None, None, ev.t)? {
                        Some(l) => self.origin_of(&l, depth + 1, path),
                        None => Ok(None),
                    };
                }
            }
        }
        let Some(host) = ev.host.clone() else {
            return Ok(None);
        };
        let ppid = ev
            .field("process.parent.pid")
            .and_then(|p| p.parse::<i64>().ok());
        let user = ev.field("user.effective.name").or_else(|| {
            matches!(ev.dataset.as_deref(), Some("sudo" | "su"))
                .then(|| ev.user.clone())
                .flatten()
        });
        let login = self.open_login_at(&host, user.as_deref(), ppid, ev.t)?;
        match login {
            Some(l) => {
                path.push(format!("{} on {host}", summarize(ev)));
                self.origin_of(&l, depth + 1, path)
            }
            None => Ok(None),
        }
    }

    /// The most recent login on `host` (of `user`, or with sshd pid `pid`) at or before `t`
    /// whose session had not closed by `t`.
    fn open_login_at(
        &self,
        host: &str,
        user: Option<&str>,
        pid: Option<i64>,
        t: Micros,
    ) -> Result<Option<Ev>, TraceError> {
        let mut q = Q::new(
            "host = ? AND category = 'authentication' AND outcome = 'success'",
            vec![text(host)],
        );
        if let Some(u) = user {
            q = q.and("user_name = ?", vec![text(u)]);
        }
        if let Some(p) = pid {
            q = q.and("process_pid = ?", vec![Param::Int(p)]);
        }
        let logins = fetch(
            self.store,
            &self.within(q, t - self.opts.max_session, t + SECOND),
        )?;
        for l in logins.into_iter().rev() {
            let Some(lp) = l.pid else { return Ok(Some(l)) };
            let q = Q::new(
                &format!(
                    "host = ? AND process_pid = ? AND action IN ({})",
                    closes_list()
                ),
                vec![text(host), Param::Int(lp)],
            );
            if fetch(self.store, &self.within(q, l.t, t))?.is_empty() {
                return Ok(Some(l));
            }
        }
        Ok(None)
    }

    fn addresses_of_asn(&mut self, asn: u32) -> Result<Vec<String>, TraceError> {
        let t = query::table(
            self.store,
            "SELECT DISTINCT source_ip FROM events WHERE source_ip IS NOT NULL \
             AND source_asn = ?",
            &[Param::Int(i64::from(asn))],
        )?;
        let ips: Vec<String> = t
            .rows
            .iter()
            .filter_map(|r| r[0].as_str().map(str::to_owned))
            .collect();
        if ips.is_empty() {
            return Err(TraceError::NotFound(format!(
                "no stored event has source.as.number {asn} (ASNs come from GeoIP/ASN enrichment at ingest)"
            )));
        }
        Ok(ips)
    }

    /// The members of a netblock with what each one did.
    fn netblock(&mut self, net: &ipnet::IpNet) -> Result<Netblock, TraceError> {
        let (prefix, params) = block_filter(net);
        let mut p = params.clone();
        let window = self.window(Q::new("TRUE", vec![]));
        p.extend(window.params.clone());
        let t = query::table(
            self.store,
            &format!(
                "SELECT source_ip, min(ts), max(ts), count(*), \
                 count(*) FILTER (action = 'firewall_block' OR category = 'network'), \
                 count(DISTINCT destination_port) FILTER (action = 'firewall_block' OR category = 'network'), \
                 count(*) FILTER (category = 'authentication' AND outcome = 'failure'), \
                 count(DISTINCT user_name) FILTER (category = 'authentication' AND outcome = 'failure'), \
                 count(*) FILTER (category = 'authentication' AND outcome = 'success'), \
                 count(*) FILTER (category = 'web') \
                 FROM events WHERE {prefix} AND {} GROUP BY 1 ORDER BY min(ts)",
                window.sql
            ),
            &p,
        )?;
        let alerts = query::table(
            self.store,
            &format!(
                "SELECT source_ip, list(DISTINCT rule_title ORDER BY rule_title), \
                 bool_or(list_contains(tags, 'attack.t1190')) FROM alerts WHERE {prefix} GROUP BY 1"
            ),
            &params,
        )?;
        let mut by_ip: HashMap<String, (Vec<String>, bool)> = HashMap::new();
        for r in &alerts.rows {
            let ip = r[0].as_str().unwrap_or_default().to_owned();
            let titles = r[1]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            by_ip.insert(ip, (titles, r[2].as_bool().unwrap_or(false)));
        }
        let n = |r: &[serde_json::Value], i: usize| r[i].as_u64().unwrap_or(0);
        let ts = |r: &[serde_json::Value], i: usize| {
            r[i].as_str()
                .and_then(query::parse_ts)
                .map(rfc3339)
                .unwrap_or_default()
        };
        let mut members = Vec::new();
        for r in &t.rows {
            let ip = r[0].as_str().unwrap_or_default().to_owned();
            let (alerts, web_attack) = by_ip.remove(&ip).unwrap_or_default();
            let mut m = Member {
                first_seen: ts(r, 1),
                last_seen: ts(r, 2),
                events: n(r, 3),
                firewall_hits: n(r, 4),
                ports: n(r, 5),
                auth_failures: n(r, 6),
                users_tried: n(r, 7),
                logins: n(r, 8),
                web_requests: n(r, 9),
                roles: Vec::new(),
                alerts,
                ip,
            };
            if m.firewall_hits > 0 || m.ports >= 3 {
                m.roles.push("scanner".into());
            }
            if m.auth_failures >= 5 {
                m.roles.push("brute force".into());
            }
            if m.logins > 0 {
                m.roles.push("got in".into());
            }
            if web_attack {
                m.roles.push("web attacker".into());
            }
            members.push(m);
        }
        let count = |role: &str| {
            members
                .iter()
                .filter(|m| m.roles.iter().any(|r| r == role))
                .count()
        };
        Ok(Netblock {
            block: net.to_string(),
            scanners: count("scanner"),
            brute_forcers: count("brute force"),
            got_in: count("got in"),
            web_attackers: count("web attacker"),
            events: members.iter().map(|m| m.events).sum(),
            members,
        })
    }

    /// Other addresses of the traced addresses' /24 (IPv6: /64) active in the chain's time.
    fn neighbours(&self, first: Micros, last: Micros) -> Result<Vec<Neighbour>, TraceError> {
        let mut blocks = BTreeSet::new();
        for ip in self.seeds.iter().take(16) {
            let net = match ip.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) if !(a.is_private() || a.is_loopback()) => {
                    ipnet::IpNet::new(IpAddr::V4(a), 24)
                }
                // not loopback, link-local or unique-local
                Ok(IpAddr::V6(a))
                    if !(a.is_loopback()
                        || (a.segments()[0] & 0xffc0) == 0xfe80
                        || (a.segments()[0] & 0xfe00) == 0xfc00) =>
                {
                    ipnet::IpNet::new(IpAddr::V6(a), 64)
                }
                _ => continue,
            };
            if let Ok(n) = net {
                blocks.insert(n.trunc());
            }
        }
        let mut out = Vec::new();
        for net in blocks {
            let (clause, mut p) = block_filter(&net);
            let w = self.within(Q::new("TRUE", vec![]), first - HOUR, last + HOUR);
            p.extend(w.params);
            let t = query::table(
                self.store,
                &format!(
                    "SELECT source_ip, count(*), min(ts), max(ts), \
                     count(*) FILTER (action = 'firewall_block' OR category = 'network'), \
                     count(*) FILTER (category = 'authentication' AND outcome = 'failure'), \
                     count(*) FILTER (category = 'authentication' AND outcome = 'success'), \
                     count(*) FILTER (category = 'web') \
                     FROM events WHERE {clause} AND {} GROUP BY 1 ORDER BY 2 DESC LIMIT 256",
                    w.sql
                ),
                &p,
            )?;
            for r in &t.rows {
                let ip = r[0].as_str().unwrap_or_default().to_owned();
                if self.seeds.contains(&ip) {
                    continue;
                }
                let n = |i: usize| r[i].as_u64().unwrap_or(0);
                let mut roles = Vec::new();
                if n(4) > 0 {
                    roles.push("scanner".to_owned());
                }
                if n(5) > 0 {
                    roles.push("brute force".to_owned());
                }
                if n(6) > 0 {
                    roles.push("got in".to_owned());
                }
                if n(7) > 0 {
                    roles.push("web".to_owned());
                }
                let ts = |i: usize| {
                    r[i].as_str()
                        .and_then(query::parse_ts)
                        .map(rfc3339)
                        .unwrap_or_default()
                };
                out.push(Neighbour {
                    events: n(1),
                    first_seen: ts(2),
                    last_seen: ts(3),
                    roles,
                    ip,
                });
            }
        }
        Ok(out)
    }

    /// Alerts on the chain's events: event id → (title, tags); and the related alerts.
    fn alerts(&self) -> Result<(AlertsOn, Vec<AlertRef>), TraceError> {
        let ids: Vec<u64> = self.drafts.keys().copied().collect();
        let mut on: HashMap<u64, Vec<(String, Vec<String>)>> = HashMap::new();
        let mut related: BTreeMap<String, AlertRef> = BTreeMap::new();
        for chunk in ids.chunks(2000) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let params: Vec<Param> = chunk.iter().map(|&i| Param::Int(i as i64)).collect();
            let t = query::table(
                self.store,
                &format!(
                    "SELECT ae.event_id, a.id, a.rule_title, a.tags, a.severity, a.first_seen, a.count, \
                     coalesce(a.entity, a.source_ip, a.host) FROM alert_events ae JOIN alerts a ON a.id = ae.alert_id \
                     WHERE ae.event_id IN ({marks})"
                ),
                &params,
            )?;
            for r in &t.rows {
                let Some(ev) = r[0].as_u64() else { continue };
                let s = |i: usize| r[i].as_str().unwrap_or_default().to_owned();
                let tags: Vec<String> = r[3]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                on.entry(ev).or_default().push((s(2), tags));
                related.entry(s(1)).or_insert_with(|| AlertRef {
                    id: s(1),
                    rule: s(2),
                    severity: s(4),
                    first_seen: r[5]
                        .as_str()
                        .and_then(query::parse_ts)
                        .map(rfc3339)
                        .unwrap_or_default(),
                    count: r[6].as_u64().unwrap_or(0),
                    entity: s(7),
                });
            }
        }
        let mut rel: Vec<AlertRef> = related.into_values().collect();
        rel.sort_by(|a, b| (&a.first_seen, &a.rule).cmp(&(&b.first_seen, &b.rule)));
        Ok((on, rel))
    }

    /// Clock offsets of hosts the server found off (`tansa.clock.behind/ahead` alerts, the
    /// latest per host): µs to add to their event times.
    fn clock_corrections(&self) -> Result<HashMap<String, Micros>, TraceError> {
        let t = query::table(
            self.store,
            "SELECT host, arg_max(rule_id, last_seen), arg_max(count, last_seen) FROM alerts \
             WHERE rule_id IN ('tansa.clock.behind', 'tansa.clock.ahead') AND host IS NOT NULL GROUP BY host",
            &[],
        )?;
        Ok(t.rows
            .iter()
            .filter_map(|r| {
                let secs = r[2].as_i64()?;
                let sign = if r[1].as_str()? == "tansa.clock.behind" {
                    1
                } else {
                    -1
                };
                Some((r[0].as_str()?.to_owned(), sign * secs * 1_000_000))
            })
            .collect())
    }

    /// Orders, labels and groups the steps; writes the summary.
    fn finish(mut self, entity: &Entity) -> Result<Trace, TraceError> {
        let (alerts_on, related) = self.alerts()?;
        let mut drafts: Vec<Draft> = std::mem::take(&mut self.drafts).into_values().collect();
        // a host whose clock was off: its events placed where they happened
        let corrections = self.clock_corrections()?;
        let mut corrected: BTreeMap<String, Micros> = BTreeMap::new();
        for d in &mut drafts {
            if let Some(c) = d.ev.host.as_ref().and_then(|h| corrections.get(h)) {
                d.ev.t += c;
                corrected.insert(d.ev.host.clone().unwrap_or_default(), *c);
            }
        }
        for (h, c) in corrected {
            self.notes.push(format!(
                "{h}'s clock was {} s {} (the server compared its event times with their arrival): its times here are corrected by {}{} s",
                c.abs() / 1_000_000,
                if c > 0 { "behind" } else { "ahead" },
                if c > 0 { "+" } else { "-" },
                c.abs() / 1_000_000
            ));
        }
        drafts.sort_by_key(|d| (d.ev.t, d.ev.id));
        let offsets = host_offsets(&drafts, &self.opts.inventory);
        let mut steps: Vec<Step> = Vec::new();
        // direct runs: (source ip, host, phase) → index of the open step
        let mut open: HashMap<RunKey, usize> = HashMap::new();
        for d in &drafts {
            let rules_here = alerts_on.get(&d.ev.id);
            let phase = phase_of(d, rules_here);
            let mut rules: Vec<String> = rules_here
                .map(|v| v.iter().map(|(t, _)| t.clone()).collect())
                .unwrap_or_default();
            rules.sort();
            rules.dedup();
            let groupable = d.role == Role::Direct && !d.ev.is_login();
            let key = (
                d.ev.source_ip.clone(),
                d.ev.host.clone(),
                phase,
                d.ev.dataset.clone(),
            );
            if groupable {
                if let Some(&i) = open.get(&key) {
                    let s = &mut steps[i];
                    if d.ev.t - s.last_t <= 10 * MINUTE {
                        s.count += 1;
                        s.last_t = d.ev.t;
                        s.tally.add(&d.ev);
                        s.event_ids.push(d.ev.id);
                        s.last = Some(rfc3339(d.ev.t));
                        for r in rules {
                            if !s.rules.contains(&r) {
                                s.rules.push(r);
                            }
                        }
                        continue;
                    }
                }
            }
            // a step of another kind from the same address closes its runs
            if !groupable {
                open.retain(|k, _| k.0 != d.ev.source_ip || k.0.is_none());
            }
            let local =
                d.ev.host
                    .as_ref()
                    .and_then(|h| offsets.get(h))
                    .map(|z| local_time(d.ev.t, z));
            steps.push(Step {
                time: rfc3339(d.ev.t),
                last: None,
                local,
                host: d.ev.host.clone(),
                source: d
                    .ev
                    .dataset
                    .clone()
                    .or_else(|| d.ev.log_path.clone())
                    .unwrap_or_default(),
                phase,
                summary: summarize(&d.ev),
                raw: d.ev.raw.clone(),
                count: 1,
                source_ip: d.ev.source_ip.clone(),
                user: d.ev.user.clone(),
                role: d.role,
                link: d.link.clone(),
                depth: d.depth,
                rules,
                log_path: d.ev.log_path.clone(),
                log_offset: d.ev.log_offset,
                event_ids: vec![d.ev.id],
                last_t: d.ev.t,
                tally: {
                    let mut t = Tally::default();
                    t.add(&d.ev);
                    t
                },
            });
            if groupable {
                open.insert(key, steps.len() - 1);
            }
        }
        for s in &mut steps {
            if s.count > 1 {
                s.summary = format!(
                    "{} until {}",
                    s.tally.describe(s.count),
                    s.last.as_deref().unwrap_or("")
                );
            }
        }
        let first = drafts.first().map(|d| d.ev.t);
        let last = drafts.last().map(|d| d.ev.t);
        let neighbours = match (first, last) {
            (Some(f), Some(l)) => self.neighbours(f, l)?,
            _ => Vec::new(),
        };
        let summary = self.summary(entity, &drafts, &steps, first, last);
        let mut indicators: Vec<Indicator> =
            std::mem::take(&mut self.indicators).into_values().collect();
        indicators.sort_by(|a, b| {
            (&a.first_seen, &a.kind, &a.value).cmp(&(&b.first_seen, &b.kind, &b.value))
        });
        let mut sessions = std::mem::take(&mut self.sessions);
        sessions.sort_by(|a, b| a.start.cmp(&b.start));
        self.notes.sort();
        self.notes.dedup();
        let mut t = Trace {
            summary,
            registrations: Vec::new(),
            sessions,
            indicators,
            neighbours,
            alerts: related,
            netblock: None,
            notes: self.notes,
            steps,
        };
        t.look_up_registrations(self.store);
        Ok(t)
    }

    fn summary(
        &self,
        entity: &Entity,
        drafts: &[Draft],
        steps: &[Step],
        first: Option<Micros>,
        last: Option<Micros>,
    ) -> Summary {
        let mut accounts = BTreeSet::new();
        let mut access = Vec::new();
        let mut changes = Vec::new();
        let mut addresses = BTreeSet::new();
        let mut origin = BTreeSet::new();
        for s in &self.sessions {
            if let Some(u) = &s.user {
                accounts.insert(u.clone());
            }
            if s.depth == 0 {
                // failures before the login from the same address
                let failures = drafts
                    .iter()
                    .filter(|d| {
                        d.ev.failed()
                            && d.ev.is("authentication")
                            && d.ev.source_ip == s.from
                            && d.ev.host.as_deref() == Some(s.host.as_str())
                            && rfc3339(d.ev.t) <= s.start
                    })
                    .count();
                let after = if failures > 0 {
                    format!(" after {failures} failed attempts")
                } else {
                    String::new()
                };
                access.push(format!("{} on {} at {}{after}", s.how, s.host, s.start));
            } else {
                access.push(format!(
                    "{} on {} at {} (hop {})",
                    s.how, s.host, s.start, s.depth
                ));
            }
        }
        for d in drafts {
            if let Some(t) = d.ev.field("user.target.name") {
                if d.role == Role::Session {
                    accounts.insert(t);
                }
            }
            if let Some(ip) = &d.ev.source_ip {
                if d.role == Role::Direct && self.opts.inventory.host_of(ip).is_none() {
                    addresses.insert(ip.clone());
                }
            }
            for f in ["source.geo.country_iso_code", "source.as.organization.name"] {
                if d.role == Role::Direct {
                    if let Some(v) = d.ev.field(f) {
                        origin.insert(v);
                    }
                }
            }
        }
        for s in steps {
            if matches!(s.phase, Phase::Persistence | Phase::DefenseEvasion)
                && s.role != Role::Direct
            {
                changes.push(format!(
                    "{} {}: {}",
                    s.time,
                    s.host.as_deref().unwrap_or("?"),
                    s.summary
                ));
            }
        }
        let hosts_reached: BTreeSet<String> =
            self.sessions.iter().map(|s| s.host.clone()).collect();
        let hosts_touched: BTreeSet<String> = steps.iter().filter_map(|s| s.host.clone()).collect();
        let phases: BTreeSet<Phase> = steps.iter().map(|s| s.phase).collect();
        Summary {
            entity: entity.to_string(),
            first_seen: first.map(rfc3339),
            last_seen: last.map(rfc3339),
            hosts_reached: hosts_reached.into_iter().collect(),
            hosts_touched: hosts_touched.into_iter().collect(),
            accounts: accounts.into_iter().collect(),
            access,
            changes,
            addresses: addresses.into_iter().collect(),
            origin: origin.into_iter().collect(),
            phases: phases.into_iter().collect(),
            events: drafts.len() as u64,
        }
    }
}

/// A `WHERE` part selecting a block's source addresses: a text prefix first (the store's
/// zone maps skip row groups by it), then the exact range (IPv6: as 32 hex digits, the
/// store's `tansa_ip6`).
fn block_filter(net: &ipnet::IpNet) -> (String, Vec<Param>) {
    match net {
        ipnet::IpNet::V4(n) => {
            let octets = (n.prefix_len() / 8) as usize;
            let prefix: String = n.network().octets()[..octets]
                .iter()
                .map(|o| format!("{o}."))
                .collect();
            (
                "source_ip LIKE ? AND tansa_ip4(source_ip) BETWEEN ? AND ?".into(),
                vec![
                    Param::Text(format!("{prefix}%")),
                    Param::Int(u32::from(n.network()) as i64),
                    Param::Int(u32::from(n.broadcast()) as i64),
                ],
            )
        }
        ipnet::IpNet::V6(n) => (
            "source_ip LIKE '%:%' AND tansa_ip6(source_ip) BETWEEN ? AND ?".into(),
            vec![
                Param::Text(format!("{:032x}", u128::from(n.network()))),
                Param::Text(format!("{:032x}", u128::from(n.broadcast()))),
            ],
        ),
    }
}

/// The host an `ssh`/`scp`/`mysql`/… command reaches (`user@host`, `-h host`, `host:path`).
fn remote_target(cmd: &str) -> Option<String> {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?:^|[\s/])(?:ssh|scp|sftp|rsync|sshpass|mysql|psql|mongo|mongosh|redis-cli)\s(.*)",
        )
        .expect("hop regex")
    });
    let rest = RE.captures(cmd)?.get(1)?.as_str();
    // options that take a value (ssh, scp, mysql, psql, redis-cli)
    const VALUED: &[&str] = &[
        "-p", "-P", "-i", "-l", "-o", "-F", "-J", "-L", "-R", "-D", "-b", "-c", "-e", "-m", "-O",
        "-S", "-W", "-w", "-E", "-B", "-u", "-U", "-d", "--port", "--user",
    ];
    let mut words = rest.split_whitespace();
    while let Some(w) = words.next() {
        if matches!(w, "-h" | "--host" | "-H") {
            return words.next().map(str::to_owned);
        }
        if VALUED.contains(&w) {
            words.next();
            continue;
        }
        if let Some(h) = w.strip_prefix("--host=") {
            return Some(h.to_owned());
        }
        if let Some(h) = w.strip_prefix("-h").filter(|h| !h.is_empty()) {
            return Some(h.to_owned());
        }
        if w.starts_with('-') {
            continue;
        }
        let h = w.rsplit_once('@').map(|(_, h)| h).unwrap_or(w);
        let h = h.split(':').next().unwrap_or(h);
        if !h.is_empty()
            && (h.parse::<IpAddr>().is_ok()
                || w.contains('@')
                || w.contains(':')
                || !h.contains('/'))
        {
            return Some(h.to_owned());
        }
    }
    None
}

/// The phase of one event of the chain.
fn phase_of(d: &Draft, alerts: Option<&Vec<(String, Vec<String>)>>) -> Phase {
    if d.role == Role::Hop {
        return Phase::LateralMovement;
    }
    let ev = &d.ev;
    // what a command does says more than the tactic of a rule that fired on it (a rule on
    // `curl` calls it a download; `curl -T file URL` is an upload)
    if let Some(p) = ev.command_line.as_deref().and_then(phase::of_command) {
        return p;
    }
    if ev.is("database") {
        let stmt = ev
            .field("db.statement")
            .or_else(|| ev.field("error.message"));
        if let Some(p) = stmt.as_deref().and_then(phase::of_statement) {
            return p;
        }
    }
    if let Some(p) = alerts.and_then(|v| {
        v.iter()
            .flat_map(|(_, tags)| tags.iter())
            .find_map(|t| Phase::from_tag(t))
    }) {
        return p;
    }
    let action = ev.action.as_deref().unwrap_or("");
    if ev.is("iam") || action.starts_with("crontab") {
        return Phase::Persistence;
    }
    if ev.dataset.as_deref() == Some("sudo") || ev.dataset.as_deref() == Some("su") {
        return Phase::PrivilegeEscalation;
    }
    if ev.is("session") && ev.field("user.effective.name").is_some() {
        return Phase::PrivilegeEscalation;
    }
    if ev.is("authentication") {
        return if ev.failed() {
            Phase::CredentialAccess
        } else {
            Phase::InitialAccess
        };
    }
    if ev.is("session") {
        return if d.depth > 0 {
            Phase::LateralMovement
        } else {
            Phase::InitialAccess
        };
    }
    if ev.is("process") {
        return Phase::Execution;
    }
    if ev.is("web")
        && ev.http_status.is_some_and(|s| (200..400).contains(&s))
        && d.role == Role::Direct
        && alerts.is_some()
    {
        return Phase::InitialAccess;
    }
    Phase::Reconnaissance
}

/// A short line a person reads for one event.
fn summarize(ev: &Ev) -> String {
    let user = ev.user.as_deref().unwrap_or("?");
    let from = ev.source_ip.as_deref().unwrap_or("?");
    let action = ev.action.as_deref().unwrap_or("");
    let ds = ev.dataset.as_deref().unwrap_or("");
    if ev.is("authentication") {
        let what = if ds == "sshd" { "ssh login" } else { "login" };
        let method = ev
            .field("ssh.method")
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        return if ev.failed() {
            format!("failed {what} as {user} from {from}")
        } else {
            format!("{what} as {user} from {from}{method}")
        };
    }
    if ds == "sudo" || ds == "su" {
        if let Some(c) = &ev.command_line {
            let target = ev
                .field("user.target.name")
                .unwrap_or_else(|| "root".into());
            return format!("{ds} by {user} as {target}: {c}");
        }
    }
    if let Some(c) = &ev.command_line {
        return format!("ran {c}");
    }
    if ev.is("web") {
        return format!(
            "{} {} → {}",
            ev.http_method.as_deref().unwrap_or("?"),
            ev.url.as_deref().unwrap_or(""),
            ev.http_status.map(|s| s.to_string()).unwrap_or_default()
        );
    }
    if action == "firewall_block" {
        return format!(
            "blocked {from} → port {}",
            ev.destination_port
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into())
        );
    }
    if ev.is("iam") {
        let group = ev
            .field("group.name")
            .map(|g| format!(" (group {g})"))
            .unwrap_or_default();
        return format!("{}: {user}{group}", action.replace('_', " "));
    }
    if !action.is_empty() {
        return format!("{}: {user}", action.replace('_', " "));
    }
    // the message after a syslog header, else the line
    ev.raw
        .split_once("]: ")
        .or_else(|| ev.raw.split_once(": "))
        .map(|(_, m)| m.to_owned())
        .unwrap_or_else(|| ev.raw.clone())
        .chars()
        .take(160)
        .collect()
}

/// How a host's local time is shown.
#[derive(Debug, Clone)]
enum Zone {
    Tz(jiff::tz::TimeZone),
    Offset(i32),
}

fn local_time(t: Micros, z: &Zone) -> String {
    let Ok(ts) = jiff::Timestamp::from_microsecond(t) else {
        return String::new();
    };
    let tz = match z {
        Zone::Tz(tz) => tz.clone(),
        Zone::Offset(s) => jiff::tz::TimeZone::fixed(
            jiff::tz::Offset::from_seconds(*s).unwrap_or(jiff::tz::Offset::UTC),
        ),
    };
    ts.to_zoned(tz)
        .strftime("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// Each host's zone: the inventory's, else the offset most of its stamps show (written with
/// an offset, or a local wall clock compared with the event's UTC time).
fn host_offsets(drafts: &[Draft], inv: &Inventory) -> HashMap<String, Zone> {
    let mut votes: HashMap<String, HashMap<i32, usize>> = HashMap::new();
    for d in drafts {
        let (Some(h), Some(tt)) = (&d.ev.host, &d.ev.time_text) else {
            continue;
        };
        if let Some(off) = stamp_offset(tt, d.ev.t) {
            *votes.entry(h.clone()).or_default().entry(off).or_default() += 1;
        }
    }
    let mut out: HashMap<String, Zone> = votes
        .into_iter()
        .filter_map(|(h, v)| {
            let best = v.into_iter().max_by_key(|(o, n)| (*n, -o.abs()))?.0;
            Some((h, Zone::Offset(best)))
        })
        .collect();
    for (name, h) in &inv.hosts {
        if let Some(tz) = h
            .timezone
            .as_deref()
            .and_then(|z| jiff::tz::TimeZone::get(z).ok())
        {
            out.insert(name.clone(), Zone::Tz(tz));
        }
    }
    out
}

/// The UTC offset (seconds) a stamp as written shows: `+0900`/`+09:00`/`Z` at its end, or a
/// wall clock (`HH:MM:SS` in it) compared with the UTC time. Epoch stamps show none.
fn stamp_offset(text: &str, t: Micros) -> Option<i32> {
    static OFF: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?:([+-])(\d{2}):?(\d{2})|(Z))$").expect("offset regex"));
    static CLOCK: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b(\d{2}):(\d{2}):(\d{2})\b").expect("clock regex"));
    let text = text.trim();
    if let Some(c) = OFF.captures(text) {
        if c.get(4).is_some() {
            return Some(0);
        }
        let h: i32 = c[2].parse().ok()?;
        let m: i32 = c[3].parse().ok()?;
        let s = if &c[1] == "-" { -1 } else { 1 };
        return Some(s * (h * 3600 + m * 60));
    }
    let c = CLOCK.captures(text)?;
    let wall: i64 = c[1].parse::<i64>().ok()? * 3600
        + c[2].parse::<i64>().ok()? * 60
        + c[3].parse::<i64>().ok()?;
    let utc = (t / SECOND).rem_euclid(86_400);
    let mut d = (wall - utc).rem_euclid(86_400);
    if d > 14 * 3600 {
        d -= 86_400;
    }
    // offsets are whole quarter hours
    let q = ((d as f64) / 900.0).round() as i64 * 900;
    ((q - d).abs() <= 60).then_some(q as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_parse() {
        assert_eq!(
            "203.0.113.9".parse::<Entity>().unwrap(),
            Entity::Ip("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            "45.141.87.77/24".parse::<Entity>().unwrap(),
            Entity::Net("45.141.87.0/24".parse().unwrap())
        );
        assert_eq!(
            "2001:db8:40:1::9/48".parse::<Entity>().unwrap(),
            Entity::Net("2001:db8:40::/48".parse().unwrap())
        );
        assert!("2001:db8::/129".parse::<Entity>().is_err());
        assert_eq!("AS12345".parse::<Entity>().unwrap(), Entity::Asn(12345));
        assert_eq!("as9009".parse::<Entity>().unwrap(), Entity::Asn(9009));
        assert_eq!(
            "user:deploy".parse::<Entity>().unwrap(),
            Entity::User("deploy".into())
        );
        assert_eq!(
            "host:web01".parse::<Entity>().unwrap(),
            Entity::Host("host:web01"[5..].into())
        );
        assert_eq!(
            "a1b2c3".parse::<Entity>().unwrap(),
            Entity::Alert("a1b2c3".into())
        );
        assert!("10.0.0.0/40".parse::<Entity>().is_err());
        assert!("user:".parse::<Entity>().is_err());
        assert!("two words".parse::<Entity>().is_err());
    }

    #[test]
    fn stamps_give_their_offsets() {
        let t = query::parse_ts("2026-03-14 09:14:48").unwrap();
        assert_eq!(stamp_offset("Mar 14 18:14:48", t), Some(9 * 3600));
        assert_eq!(
            stamp_offset("14/Mar/2026:18:14:48 +0900", t),
            Some(9 * 3600)
        );
        assert_eq!(stamp_offset("2026-03-14T09:14:48.000000+00:00", t), Some(0));
        assert_eq!(
            stamp_offset("2026-03-14T04:14:48-05:00", t),
            Some(-5 * 3600)
        );
        assert_eq!(stamp_offset("1773479688.000", t), None);
        assert_eq!(
            local_time(t, &Zone::Offset(9 * 3600)),
            "2026-03-14 18:14:48 +09:00"
        );
    }

    #[test]
    fn remote_targets_of_commands() {
        for (cmd, target) in [
            ("ssh deploy@10.0.0.6", "10.0.0.6"),
            ("/usr/bin/ssh -p 2222 db01", "db01"),
            ("scp /tmp/x root@db01:/tmp/", "db01"),
            ("mysql -h 10.0.0.6 -u root", "10.0.0.6"),
            ("mysql -h10.0.0.7 shop", "10.0.0.7"),
        ] {
            assert_eq!(remote_target(cmd).as_deref(), Some(target), "{cmd}");
        }
        assert_eq!(remote_target("ls -la"), None);
    }
}
