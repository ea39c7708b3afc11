//! The streaming detection engine: every [`Event`] passes through [`Engine::process`] once,
//! in batch runs (`tansa analyze`, fed in time order) and in the live server alike.
//!
//! Fifth box of the data path (`… → parse → enrich → detect → store → …`). Rules match single
//! events or count them in event-time sliding windows keyed by an entity (`source.ip`,
//! `user.name`, …): a threshold of matching events, or of distinct values of a field.
//! Alerts are aggregated — one alert per rule × entity while the activity goes on, with a
//! count, first and last seen — so a brute force of ten thousand attempts is one alert.
//!
//! State is bounded: each rule keeps at most [`Limits::max_keys`] entities; expired keys are
//! evicted as the watermark (the highest event time seen, minus the allowed lateness)
//! advances, and when the cap is still reached the oldest key is dropped and counted in
//! [`Counters::evicted`] — never an unbounded map.
//!
//! ```
//! use std::sync::Arc;
//! use tansa_detect::{builtin, Engine};
//! use tansa_event::{Category, Event, Origin, Outcome};
//!
//! let mut engine = Engine::new(builtin::rules(), Default::default());
//! assert!(engine.rule_count() > 10);
//! let origin = Arc::new(Origin::file("/var/log/auth.log", "web01"));
//! for i in 0..12 {
//!     let mut ev = Event::new(bytes::Bytes::from_static(b"Failed password"), origin.clone(), 0);
//!     ev.timestamp = i * 1_000_000_000;
//!     ev.category = Category::Authentication;
//!     ev.outcome = Outcome::Failure;
//!     ev.action = Some("ssh_login");
//!     ev.dataset = "sshd";
//!     ev.source_ip = Some("203.0.113.9".parse().unwrap());
//!     engine.process(&ev);
//! }
//! let alerts = engine.finish();
//! assert!(alerts.iter().any(|a| a.rule_id == "tansa.ssh.brute_force" && a.count >= 10));
//! ```

pub mod builtin;
pub mod crs;
pub mod suppress;
pub mod web;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use tansa_event::{Event, Field, Nanos};

const SEC: i64 = 1_000_000_000;
/// Sightings kept per key for distinct counts (bounds memory for very busy keys).
const MAX_DISTINCT: usize = 16_384;

/// Alert severity, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What identifies the entity a rule counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyBy {
    SourceIp,
    /// The source's /24 (IPv4) or /64 (IPv6) network.
    SourceNet,
    /// `source.ip` when the event has one, else `host.name`.
    SourceOrHost,
    User,
    Host,
    /// `host.name` + `user.name`.
    HostUser,
    /// A threat-intelligence indicator (the key is given by the caller, never derived).
    Indicator,
}

/// An entity value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Ip(IpAddr),
    Text(Box<str>),
    /// Two names (boxed: the key stays small, most keys are addresses).
    Pair(Box<(Box<str>, Box<str>)>),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Ip(ip) => write!(f, "{ip}"),
            Key::Text(s) => f.write_str(s),
            Key::Pair(p) => write!(f, "{}/{}", p.0, p.1),
        }
    }
}

fn net_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            IpAddr::V4([o[0], o[1], o[2], 0].into())
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6([s[0], s[1], s[2], s[3], 0, 0, 0, 0].into())
        }
    }
}

impl KeyBy {
    fn key(self, ev: &Event) -> Option<Key> {
        match self {
            KeyBy::SourceIp => ev.source_ip.map(Key::Ip),
            KeyBy::SourceNet => ev.source_ip.map(|ip| Key::Ip(net_of(ip))),
            KeyBy::SourceOrHost => ev
                .source_ip
                .map(Key::Ip)
                .or_else(|| ev.host_name().map(|h| Key::Text(h.into()))),
            KeyBy::User => ev
                .user_name()
                .filter(|u| !u.is_empty())
                .map(|u| Key::Text(u.into())),
            KeyBy::Host => ev.host_name().map(|h| Key::Text(h.into())),
            KeyBy::HostUser => Some(Key::Pair(Box::new((
                ev.host_name().unwrap_or(Cow::Borrowed("")).into(),
                ev.user_name()?.into(),
            )))),
            KeyBy::Indicator => None,
        }
    }

    /// The ECS field the key is reported as.
    pub fn field(self) -> &'static str {
        match self {
            KeyBy::SourceIp => "source.ip",
            KeyBy::SourceNet => "source.network",
            KeyBy::SourceOrHost => "source.ip",
            KeyBy::User => "user.name",
            KeyBy::Host => "host.name",
            KeyBy::HostUser => "user.name",
            KeyBy::Indicator => "threat.indicator.name",
        }
    }
}

/// How a rule turns matching events into alerts.
#[derive(Debug, Clone)]
pub enum Condition {
    /// Every matching event is an alert (aggregated per key within `window`).
    Each,
    /// At least `count` matching events for one key within `window`.
    Count { count: u32 },
    /// At least `count` distinct values of `field` for one key within `window`.
    Distinct { field: DistinctField, count: u32 },
    /// A matching event for a key that had at least `count` events of `before` within `window`.
    After {
        before: fn(&Event) -> bool,
        count: u32,
    },
    /// A Sigma correlation rule: the correlator decides, the key is its group.
    Correlated,
    /// A leaky bucket per key (CrowdSec's `type: leaky`): each matching event pours one unit
    /// in, one unit leaks out every `leak`; more than `capacity` units in the bucket overflow
    /// (an alert counting the events poured since the bucket was last empty), and the bucket
    /// starts over.
    Leaky { capacity: u32, leak: Nanos },
}

/// The field a distinct-count rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistinctField {
    User,
    SourceIp,
    DestinationPort,
    DestinationIp,
    UrlPath,
    /// The country enrichment found for `source.ip`.
    SourceCountry,
}

impl DistinctField {
    fn value(self, ev: &Event) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        match self {
            DistinctField::User => ev.user_name()?.hash(&mut h),
            DistinctField::SourceIp => ev.source_ip?.hash(&mut h),
            DistinctField::DestinationPort => ev.destination_port?.hash(&mut h),
            DistinctField::DestinationIp => ev.destination_ip?.hash(&mut h),
            DistinctField::UrlPath => ev.get_str(Field::URL_PATH)?.hash(&mut h),
            DistinctField::SourceCountry => ev
                .source_info
                .as_ref()?
                .country_iso_code
                .as_ref()?
                .hash(&mut h),
        }
        Some(h.finish())
    }
}

/// What is computed once per event for all rules.
#[derive(Debug, Default)]
pub struct Features {
    /// Attack classes of a web request's URL (empty for non-web events).
    pub web: Vec<web::Class>,
    /// A scanner or attack tool's User-Agent.
    pub scanner_agent: bool,
}

/// The stateless detection work, shareable across parser threads ([`Engine::classifier`]).
#[derive(Clone, Default)]
pub struct Classifier {
    sigma: Option<Arc<tansa_rules::SigmaRules>>,
    crs: Option<Arc<crs::CrsRules>>,
}

/// Bit that marks a ModSecurity rule's number among `Event::rule_hits` (after the Sigma ones).
const CRS_HIT: u32 = 1 << 31;

impl Classifier {
    /// Classifies `ev` ([`classify`]) and stores the Sigma and ModSecurity rules it matches
    /// on it.
    pub fn classify(&self, ev: &mut Event) {
        classify(ev);
        if self.sigma.is_some() || self.crs.is_some() {
            ev.rule_hits = Some(rule_hits(self.sigma.as_deref(), self.crs.as_deref(), ev));
        }
    }
}

/// The Sigma rules `ev` matches, then the ModSecurity rules (numbers with [`CRS_HIT`]).
fn rule_hits(
    sigma: Option<&tansa_rules::SigmaRules>,
    crs: Option<&crs::CrsRules>,
    ev: &Event,
) -> Box<[u32]> {
    let sig = sigma.map(|s| s.match_numbers(ev)).unwrap_or_default();
    let Some(req) = crs.and_then(|_| crs::Request::of(ev)) else {
        return sig;
    };
    let mut all = sig.into_vec();
    let from = all.len();
    crs.unwrap().matches(&req, &mut all);
    for h in &mut all[from..] {
        *h |= CRS_HIT;
    }
    all.into_boxed_slice()
}

/// Bit of `Event::classes` for a scanner user agent (web classes use their own bits).
const SCANNER_BIT: u32 = 1 << 31;

/// Runs the stateless classifiers on an event and stores the result on it (`Event::classes`),
/// so that this work can run on the parser threads instead of the detection thread.
pub fn classify(ev: &mut Event) {
    let mut f = Features::default();
    Features::compute(ev, &mut f);
    let mut bits = if f.scanner_agent { SCANNER_BIT } else { 0 };
    for c in &f.web {
        bits |= 1 << (*c as u32);
    }
    ev.classes = Some(bits);
}

impl Features {
    fn of(ev: &Event, f: &mut Features) {
        match ev.classes {
            Some(bits) => {
                f.web.clear();
                f.scanner_agent = bits & SCANNER_BIT != 0;
                for c in web::Class::ALL {
                    if bits & (1 << (c as u32)) != 0 {
                        f.web.push(c);
                    }
                }
            }
            None => Self::compute(ev, f),
        }
    }

    fn compute(ev: &Event, f: &mut Features) {
        f.web.clear();
        f.scanner_agent = false;
        if ev.category != tansa_event::Category::Web {
            return;
        }
        if let Some(u) = ev.get_str(Field::URL_ORIGINAL) {
            web::classify_url(&u, &mut f.web);
        }
        for fld in [Field::USER_AGENT, Field::HTTP_REFERRER] {
            if let Some(v) = ev.get_str(fld) {
                if fld == Field::USER_AGENT && web::scanner_agent(&v) {
                    f.scanner_agent = true;
                }
                // payloads in headers (Shellshock, Log4Shell, XSS or SQL in Referer/User-Agent)
                if v.as_ref() != "-" {
                    web::classify_header(&v, &mut f.web);
                }
            }
        }
    }
}

/// A compiled rule. `matches` is a cheap predicate (typed fields first).
#[derive(Clone)]
pub struct Rule {
    pub id: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    /// ATT&CK tags: `attack.t1110.001`, `attack.credential_access`.
    pub tags: &'static [&'static str],
    pub key: KeyBy,
    pub window: Nanos,
    pub condition: Condition,
    pub matches: fn(&Event, &Features) -> bool,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule").field("id", &self.id).finish()
    }
}

/// A reference to an event behind an alert: its file and byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    pub path: std::sync::Arc<str>,
    pub offset: u64,
}

/// An aggregated alert.
#[derive(Debug, Clone)]
pub struct Alert {
    pub id: String,
    pub rule_id: &'static str,
    pub rule_title: &'static str,
    pub severity: Severity,
    pub tags: &'static [&'static str],
    pub first_seen: Nanos,
    pub last_seen: Nanos,
    /// Matching events folded into this alert.
    pub count: u64,
    pub key_field: &'static str,
    pub key: Key,
    pub host: Option<String>,
    pub source_ip: Option<IpAddr>,
    pub user: Option<String>,
    /// The first events behind the alert (at most [`Limits::max_refs`]).
    pub events: Vec<EventRef>,
    /// Raised by a rule in simulation ([`suppress`]): stored and shown, no response.
    pub simulated: bool,
    /// For an indicator match: what its feed says of the indicator.
    pub threat: Option<Box<Threat>>,
}

/// The indicator an intelligence alert is about, as its feed describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Threat {
    pub feed: String,
    /// The indicator as written in reports (an address without `/32`).
    pub indicator: String,
    /// `ip`, `cidr`, `domain`, `url` or `hash`.
    pub kind: &'static str,
    /// 0–100, when the feed gives one.
    pub confidence: Option<u8>,
    pub tags: Vec<Box<str>>,
    pub description: Option<Box<str>>,
    /// When the indicator stops matching (UTC nanoseconds).
    pub expires: Option<Nanos>,
}

impl Threat {
    /// ECS `threat.*`: `indicator` (name, type, confidence, description, expiry), `feed.name`,
    /// `tags`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut ind = serde_json::Map::new();
        ind.insert("name".into(), self.indicator.clone().into());
        ind.insert("type".into(), self.kind.into());
        if let Some(c) = self.confidence {
            ind.insert("confidence".into(), c.into());
        }
        if let Some(d) = &self.description {
            ind.insert("description".into(), (**d).into());
        }
        if let Some(e) = self.expires {
            ind.insert("expires".into(), tansa_event::format_ts(e).into());
        }
        let tags: Vec<&str> = self.tags.iter().map(|t| &**t).collect();
        serde_json::json!({"indicator": ind, "feed": {"name": self.feed}, "tags": tags})
    }
}

impl Alert {
    /// The alert as a JSON object (see DESIGN.md for the fields).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("id".into(), self.id.clone().into());
        m.insert(
            "rule".into(),
            serde_json::json!({"id": self.rule_id, "title": self.rule_title}),
        );
        m.insert("severity".into(), self.severity.as_str().into());
        m.insert(
            "tags".into(),
            self.tags
                .iter()
                .map(|t| serde_json::Value::from(*t))
                .collect(),
        );
        m.insert(
            "first_seen".into(),
            tansa_event::format_ts(self.first_seen).into(),
        );
        m.insert(
            "last_seen".into(),
            tansa_event::format_ts(self.last_seen).into(),
        );
        m.insert("count".into(), self.count.into());
        if self.simulated {
            m.insert("simulated".into(), true.into());
        }
        if let Some(h) = &self.host {
            m.insert("host".into(), serde_json::json!({"name": h}));
        }
        if let Some(ip) = self.source_ip {
            m.insert("source".into(), serde_json::json!({"ip": ip.to_string()}));
        }
        if let Some(u) = &self.user {
            m.insert("user".into(), serde_json::json!({"name": u}));
        }
        if self.key_field == "source.network" {
            m.insert("source.network".into(), self.key.to_string().into());
        }
        if let Some(t) = &self.threat {
            m.insert("threat".into(), t.to_json());
        } else if let Some(feed) = self.rule_id.strip_prefix(INTEL_RULE_PREFIX) {
            m.insert(
                "threat".into(),
                serde_json::json!({"indicator": {"name": self.key.to_string()}, "feed": {"name": feed}}),
            );
        }
        m.insert(
            "events".into(),
            self.events
                .iter()
                .map(|r| serde_json::json!({"log.file.path": &*r.path, "log.offset": r.offset}))
                .collect(),
        );
        serde_json::Value::Object(m)
    }
}

/// Bounds of the engine's state.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entities tracked per rule.
    pub max_keys: usize,
    /// Event references kept per alert.
    pub max_refs: usize,
    /// How late an event may arrive (behind the highest time seen) and still be counted in
    /// its window; state older than the watermark is evicted.
    pub lateness: Nanos,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_keys: 1_000_000,
            max_refs: 20,
            lateness: 60 * SEC,
        }
    }
}

/// Counters by outcome, for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub events: u64,
    pub matched: u64,
    pub alerts: u64,
    /// Keys dropped because a rule reached `max_keys` with nothing expired.
    pub evicted: u64,
    /// Matches held back by a suppression (the events were not counted for that rule).
    pub suppressed: u64,
}

/// The state of one key of one rule. Kept small: a million attacking addresses are a
/// million of these per rule that sees them.
#[derive(Debug, Default)]
struct KeyState {
    /// Times of recent matching events (at most `count` are needed).
    times: VecDeque<Nanos>,
    /// `Distinct`: the values seen in the window.
    distinct: Distinct,
    /// Time of last update (for eviction).
    last: Nanos,
    /// `Leaky`: when the bucket will be empty (its level is the time to that, in leaks).
    drain_at: Nanos,
    /// The open alert for this key, an index into `Engine::alerts`.
    open: Option<u32>,
}

/// Values a key has shown, each with its last sighting: a short list while they are few
/// (nearly every key), a map with a time-ordered queue beyond [`Distinct::SMALL`].
#[derive(Debug, Default)]
enum Distinct {
    #[default]
    Empty,
    Small(Vec<(u64, Nanos)>),
    Large(Box<LargeDistinct>),
}

#[derive(Debug, Default)]
struct LargeDistinct {
    /// Value → (last sighting, the sighting queued in `seen` for it).
    map: FxHashMap<u64, (Nanos, Nanos)>,
    /// One queued sighting per value, in time order (for expiry).
    seen: std::collections::BTreeSet<(Nanos, u64)>,
}

impl Distinct {
    const SMALL: usize = 32;

    fn len(&self) -> usize {
        match self {
            Distinct::Empty => 0,
            Distinct::Small(v) => v.len(),
            Distinct::Large(l) => l.map.len(),
        }
    }

    /// The earliest last sighting.
    fn first(&self) -> Option<Nanos> {
        match self {
            Distinct::Empty => None,
            Distinct::Small(v) => v.iter().map(|x| x.1).min(),
            Distinct::Large(l) => l.map.values().map(|x| x.0).min(),
        }
    }

    /// Value `v` seen at `t`; values last seen before `cutoff` leave, and the oldest beyond
    /// [`MAX_DISTINCT`].
    fn see(&mut self, v: Option<u64>, t: Nanos, cutoff: Nanos) {
        if let Distinct::Empty = self {
            if v.is_none() {
                return;
            }
            *self = Distinct::Small(Vec::with_capacity(2));
        }
        if let Distinct::Small(list) = self {
            if let Some(v) = v {
                match list.iter_mut().find(|x| x.0 == v) {
                    Some(x) => x.1 = x.1.max(t),
                    None => list.push((v, t)),
                }
            }
            list.retain(|x| x.1 >= cutoff);
            if list.len() <= Self::SMALL {
                return;
            }
            let mut l = LargeDistinct::default();
            for &(v, last) in list.iter() {
                l.map.insert(v, (last, last));
                l.seen.insert((last, v));
            }
            *self = Distinct::Large(Box::new(l));
            return;
        }
        let Distinct::Large(l) = self else { return };
        if let Some(v) = v {
            // one queued sighting per value (not one per event): a value seen again only
            // moves its last time; the queue re-checks it on expiry
            match l.map.get_mut(&v) {
                Some(e) => e.0 = e.0.max(t),
                None => {
                    l.map.insert(v, (t, t));
                    l.seen.insert((t, v));
                }
            }
        }
        // expire from the front: a value leaves when its last sighting is too old
        while let Some(&(ft, fv)) = l.seen.first() {
            let too_many = l.seen.len() > MAX_DISTINCT;
            if ft >= cutoff && !too_many {
                break;
            }
            l.seen.pop_first();
            let Some(&(last, queued)) = l.map.get(&fv) else {
                continue;
            };
            if queued != ft {
                continue;
            }
            if last < cutoff || too_many {
                l.map.remove(&fv);
            } else {
                // seen since: queued again at its last sighting
                l.map.insert(fv, (last, last));
                l.seen.insert((last, fv));
            }
        }
    }
}

struct RuleState {
    rule: Rule,
    keys: FxHashMap<Key, KeyState>,
    /// `before`-events per key for `Condition::After`.
    before: FxHashMap<Key, VecDeque<Nanos>>,
}

impl RuleState {
    fn new(rule: Rule) -> RuleState {
        RuleState {
            rule,
            keys: FxHashMap::default(),
            before: FxHashMap::default(),
        }
    }
}

/// The engine: rules, their per-key state, the alerts.
pub struct Engine {
    rules: Vec<RuleState>,
    /// Rules `native..` stand for the loaded Sigma detection rules, then its correlations.
    native: usize,
    sigma: Option<Arc<tansa_rules::SigmaRules>>,
    correlator: Option<tansa_rules::Correlator>,
    /// ModSecurity rules; rule `crs_base + n` stands for rule `n` of them.
    crs: Option<Arc<crs::CrsRules>>,
    crs_base: usize,
    limits: Limits,
    alerts: Vec<Alert>,
    watermark: Nanos,
    last_sweep: Nanos,
    counters: Counters,
    features: Features,
    /// The loaded indicators; rule `intel_rules[f]` stands for feed `f`.
    intel: Option<Arc<tansa_intel::Intel>>,
    intel_rules: Vec<usize>,
    /// Alerts created or grown since [`Engine::take_changed`] last ran (indexes, in order).
    changed: Vec<usize>,
    changed_mark: Vec<bool>,
    /// Suppressions, the ones that apply to each rule (by index), and the matches each held
    /// back; rules in simulation.
    suppress: suppress::Suppressions,
    applies: Vec<Vec<u32>>,
    held: Vec<u64>,
    simulated: Vec<bool>,
}

/// Adds the event behind a match to an alert's references, up to `max`; with `refs` (the
/// events of a correlation's window) those first, each once.
fn add_refs(events: &mut Vec<EventRef>, refs: &[EventRef], ev: &Event, max: usize) {
    let trigger = EventRef {
        path: ev.origin.path.clone(),
        offset: ev.offset,
    };
    if refs.is_empty() {
        if events.len() < max {
            events.push(trigger);
        }
        return;
    }
    for r in refs.iter().chain(std::iter::once(&trigger)) {
        if events.len() >= max {
            break;
        }
        if !events.contains(r) {
            events.push(r.clone());
        }
    }
}

/// Rule ids of indicator matches: this prefix and the feed's name.
pub const INTEL_RULE_PREFIX: &str = "intel:";

/// Rule ids of ModSecurity rule matches: this prefix and the rule's id.
pub const CRS_RULE_PREFIX: &str = "crs:";

impl Engine {
    pub fn new(rules: Vec<Rule>, limits: Limits) -> Self {
        let n = rules.len();
        Engine {
            native: n,
            sigma: None,
            correlator: None,
            crs: None,
            crs_base: 0,
            rules: rules.into_iter().map(RuleState::new).collect(),
            limits,
            alerts: Vec::new(),
            watermark: i64::MIN,
            last_sweep: i64::MIN,
            counters: Counters::default(),
            features: Features::default(),
            intel: None,
            intel_rules: Vec::new(),
            changed: Vec::new(),
            changed_mark: Vec::new(),
            suppress: Default::default(),
            applies: Vec::new(),
            held: Vec::new(),
            simulated: Vec::new(),
        }
    }

    /// Holds back the events that `s` suppresses, and marks the alerts of its simulated rules
    /// (call after the rules and feeds are all in).
    pub fn with_suppressions(mut self, s: suppress::Suppressions) -> Self {
        self.held = vec![0; s.list.len()];
        self.suppress = s;
        self.index_suppressions();
        self
    }

    fn index_suppressions(&mut self) {
        let s = &self.suppress;
        self.applies = self
            .rules
            .iter()
            .map(|r| {
                (0..s.list.len() as u32)
                    .filter(|&j| s.list[j as usize].covers(r.rule.id))
                    .collect()
            })
            .collect();
        self.simulated = self.rules.iter().map(|r| s.simulated(r.rule.id)).collect();
    }

    /// Each suppression with the matches it held back.
    pub fn suppressions(&self) -> impl Iterator<Item = (&suppress::Suppression, u64)> {
        self.suppress.list.iter().zip(self.held.iter().copied())
    }

    /// Adds one rule per feed of `intel`: an event that matches an indicator (as enrichment
    /// recorded in `Event::intel_hits`) is an alert of its feed's rule, one per indicator
    /// while the activity goes on. Lists that only describe an address (TOR exits, scanners)
    /// give low-severity alerts, others high.
    pub fn with_intel(mut self, intel: Arc<tansa_intel::Intel>) -> Self {
        self.set_intel(intel);
        self
    }

    /// Takes other indicators (the feeds reloaded while the engine runs): a feed seen before
    /// keeps its rule and the alerts open under it; a new feed gets a rule. Events must carry
    /// hits on these indicators from now on (enrichment with the same [`tansa_intel::Intel`]).
    pub fn set_intel(&mut self, intel: Arc<tansa_intel::Intel>) {
        self.intel_rules.clear();
        for feed in intel.feeds() {
            let id = format!("{INTEL_RULE_PREFIX}{}", feed.name);
            if let Some(i) = self.rules.iter().position(|r| r.rule.id == id) {
                self.intel_rules.push(i);
                continue;
            }
            let describes = feed.flag.contains(tansa_event::IpFlags::TOR_EXIT)
                || feed.flag.contains(tansa_event::IpFlags::SCANNER);
            self.intel_rules.push(self.rules.len());
            self.rules.push(RuleState::new(outside_rule(
                &id,
                &format!("Threat intelligence match ({})", feed.name),
                if describes {
                    Severity::Low
                } else {
                    Severity::High
                },
                Vec::new(),
                KeyBy::Indicator,
                Condition::Each,
            )));
        }
        self.intel = Some(intel);
        self.index_suppressions();
    }

    /// An engine with the native rules and loaded Sigma rules: each Sigma detection rule
    /// becomes a rule of this engine (every match an alert, aggregated per source address —
    /// or host, for events without one — within an hour).
    pub fn with_sigma(rules: Vec<Rule>, sigma: tansa_rules::SigmaRules, limits: Limits) -> Self {
        let mut all = rules;
        let native = all.len();
        for info in sigma.rules() {
            all.push(sigma_rule(info, Condition::Each));
        }
        for info in sigma.correlations() {
            all.push(sigma_rule(info, Condition::Correlated));
        }
        let mut e = Engine::new(all, limits);
        e.native = native;
        e.correlator = sigma.correlator();
        e.sigma = Some(Arc::new(sigma));
        e
    }

    /// The stateless part of detection, for the parser threads: the web classifiers and the
    /// Sigma detection rules, whose results are stored on the event.
    pub fn classifier(&self) -> Classifier {
        Classifier {
            sigma: self.sigma.clone(),
            crs: self.crs.clone(),
        }
    }

    /// Adds ModSecurity rules (see [`crs`]): every match is an alert of rule `crs:ID`,
    /// aggregated per source address within an hour. CRS severities CRITICAL/ERROR/WARNING/
    /// NOTICE become high/medium/low/informational.
    pub fn with_crs(mut self, rules: Arc<crs::CrsRules>) -> Self {
        self.crs_base = self.rules.len();
        for r in rules.rules() {
            let mut tags: Vec<&'static str> = vec!["attack.initial_access", "attack.t1190"];
            tags.extend(r.tags.iter().map(|t| leak(t)));
            self.rules.push(RuleState::new(outside_rule(
                &format!("{CRS_RULE_PREFIX}{}", r.id),
                &r.msg,
                match r.severity.as_str() {
                    "CRITICAL" | "ALERT" | "EMERGENCY" => Severity::High,
                    "ERROR" => Severity::Medium,
                    "WARNING" => Severity::Low,
                    _ => Severity::Informational,
                },
                tags,
                KeyBy::SourceOrHost,
                Condition::Each,
            )));
        }
        self.crs = Some(rules);
        self.index_suppressions();
        self
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Feeds one event.
    pub fn process(&mut self, ev: &Event) {
        self.counters.events += 1;
        let t = ev.timestamp;
        if t > self.watermark {
            self.watermark = t;
        }
        let mut features = std::mem::take(&mut self.features);
        Features::of(ev, &mut features);
        for i in 0..self.native {
            let (before_fn, matched) = {
                let r = &self.rules[i].rule;
                let bf = match r.condition {
                    Condition::After { before, .. } => Some(before),
                    _ => None,
                };
                (bf, (r.matches)(ev, &features))
            };
            if let Some(before) = before_fn {
                if before(ev) {
                    self.note_before(i, ev);
                }
            }
            if matched {
                self.counters.matched += 1;
                self.on_match(i, ev);
            }
        }
        self.features = features;
        let computed;
        let all: &[u32] = match &ev.rule_hits {
            Some(h) => h,
            None if self.sigma.is_some() || self.crs.is_some() => {
                computed = rule_hits(self.sigma.as_deref(), self.crs.as_deref(), ev);
                &computed
            }
            None => &[],
        };
        let split = all
            .iter()
            .position(|h| h & CRS_HIT != 0)
            .unwrap_or(all.len());
        let (hits, crs_hits) = all.split_at(split);
        for &h in crs_hits {
            self.counters.matched += 1;
            self.on_match(self.crs_base + (h & !CRS_HIT) as usize, ev);
        }
        if let Some(sig) = &self.sigma {
            let fired = match self.correlator.as_mut() {
                Some(c) if !hits.is_empty() => c.feed(sig, ev, hits),
                _ => Vec::new(),
            };
            let own: Vec<usize> = hits
                .iter()
                .map(|&h| h as usize)
                .filter(|&h| sig.generates(h))
                .collect();
            let detections = sig.loaded();
            for h in own {
                self.counters.matched += 1;
                self.on_match(self.native + h, ev);
            }
            for c in fired {
                self.counters.matched += 1;
                let key = Key::Text(
                    c.group
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                        .into_boxed_str(),
                );
                // the events of the window behind the correlation, as references
                let refs: Vec<EventRef> = c
                    .events
                    .into_iter()
                    .map(|(path, offset)| EventRef {
                        path: if *ev.origin.path == *path {
                            ev.origin.path.clone()
                        } else {
                            Arc::from(path)
                        },
                        offset,
                    })
                    .collect();
                self.on_match_key(
                    self.native + detections + c.rule,
                    ev,
                    key,
                    Some(c.value as u64),
                    &refs,
                );
            }
        }
        if let (Some(intel), Some(hits)) = (&self.intel, &ev.intel_hits) {
            let intel = intel.clone();
            for &h in hits.iter() {
                let ind = intel.indicator(h);
                self.counters.matched += 1;
                let Some(&rule) = self.intel_rules.get(ind.feed as usize) else {
                    continue;
                };
                let key = Key::Text(ind.ioc.value().into_boxed_str());
                self.on_match_key(rule, ev, key.clone(), None, &[]);
                // the alert says what the feed says of the indicator
                let open = self.rules[rule].keys.get(&key).and_then(|s| s.open);
                if let Some(a) = open.and_then(|a| self.alerts.get_mut(a as usize)) {
                    if a.threat.is_none() {
                        a.threat = Some(Box::new(Threat {
                            feed: intel.feed_of(h).name.clone(),
                            indicator: ind.ioc.value(),
                            kind: ind.ioc.kind(),
                            confidence: ind.confidence,
                            tags: ind.tags.clone(),
                            description: ind.description.clone(),
                            expires: ind.expires,
                        }));
                    }
                }
            }
        }
        // sweep expired state once per minute of event time
        if self.watermark.saturating_sub(self.last_sweep) > 60 * SEC {
            self.sweep();
            self.last_sweep = self.watermark;
        }
    }

    fn note_before(&mut self, i: usize, ev: &Event) {
        let rs = &mut self.rules[i];
        let Some(key) = rs.rule.key.key(ev) else {
            return;
        };
        let (window, need) = match rs.rule.condition {
            Condition::After { count, .. } => (rs.rule.window, count as usize),
            _ => return,
        };
        if rs.before.len() >= self.limits.max_keys && !rs.before.contains_key(&key) {
            self.counters.evicted += 1;
            if let Some(k) = rs.before.keys().next().cloned() {
                rs.before.remove(&k);
            }
        }
        let q = rs.before.entry(key).or_default();
        q.push_back(ev.timestamp);
        while q.front().is_some_and(|&f| f < ev.timestamp - window) || q.len() > need.max(1) {
            q.pop_front();
        }
    }

    fn on_match(&mut self, i: usize, ev: &Event) {
        let Some(key) = self.rules[i].rule.key.key(ev) else {
            return;
        };
        self.on_match_key(i, ev, key, None, &[]);
    }

    /// A match of rule `i` for entity `key`; `value` is the aggregate a correlation counted,
    /// `refs` the events of its window.
    fn on_match_key(
        &mut self,
        i: usize,
        ev: &Event,
        key: Key,
        value: Option<u64>,
        refs: &[EventRef],
    ) {
        if let Some(list) = self.applies.get(i).filter(|l| !l.is_empty()) {
            if let Some(&j) = list
                .iter()
                .find(|&&j| self.suppress.list[j as usize].matches(ev))
            {
                self.counters.suppressed += 1;
                self.held[j as usize] += 1;
                return;
            }
        }
        let simulated = self.simulated.get(i).copied().unwrap_or(false);
        let limits = self.limits;
        let rs = &mut self.rules[i];
        let rule = &rs.rule;
        let t = ev.timestamp;
        let fire = match &rule.condition {
            Condition::Each | Condition::Correlated => true,
            Condition::Count { .. } | Condition::Distinct { .. } | Condition::Leaky { .. } => false,
            Condition::After { count, .. } => rs
                .before
                .get(&key)
                .map(|q| {
                    q.iter()
                        .filter(|&&x| x >= t - rule.window && x <= t)
                        .count()
                        >= *count as usize
                })
                .unwrap_or(false),
        };
        if rs.keys.len() >= limits.max_keys && !rs.keys.contains_key(&key) {
            self.counters.evicted += evict_oldest(&mut rs.keys, &mut self.alerts);
        }
        let st = rs.keys.entry(key.clone()).or_default();
        st.last = st.last.max(t);
        let fire = fire
            || match &rule.condition {
                Condition::Count { count } => {
                    st.times.push_back(t);
                    while st.times.front().is_some_and(|&f| f < t - rule.window) {
                        st.times.pop_front();
                    }
                    while st.times.len() > *count as usize {
                        st.times.pop_front();
                    }
                    st.times.len() >= *count as usize
                }
                Condition::Distinct { field, count } => {
                    st.distinct.see(field.value(ev), t, t - rule.window);
                    st.distinct.len() >= *count as usize
                }
                Condition::Leaky { capacity, leak } => {
                    if st.drain_at <= t {
                        // leaked empty since: a new bucket
                        st.times.clear();
                    }
                    st.drain_at = st.drain_at.max(t) + leak;
                    // the poured events (at most capacity + 1: it overflows then)
                    st.times.push_back(t);
                    let over = st.drain_at - t > i64::from(*capacity) * leak;
                    if over {
                        // the bucket overflows and is gone
                        st.drain_at = t;
                    }
                    over
                }
                _ => false,
            };
        // an open alert for this key absorbs the matching events while the activity goes on
        // (for `After`, only those that meet the condition again)
        let absorbs = !matches!(rule.condition, Condition::After { .. }) || fire;
        if let Some(ai) = st.open.filter(|_| absorbs).map(|i| i as usize) {
            let a = &mut self.alerts[ai];
            if t <= a.last_seen + rule.window {
                if !self.changed_mark[ai] {
                    self.changed_mark[ai] = true;
                    self.changed.push(ai);
                }
                a.count = match value {
                    Some(v) => a.count.max(v),
                    None => a.count + 1,
                };
                a.last_seen = a.last_seen.max(t);
                a.first_seen = a.first_seen.min(t);
                add_refs(&mut a.events, refs, ev, limits.max_refs);
                return;
            }
            st.open = None;
        }
        if !fire {
            return;
        }
        let first = match &rule.condition {
            Condition::Count { .. } | Condition::Leaky { .. } => {
                st.times.front().copied().unwrap_or(t)
            }
            Condition::Distinct { .. } => st.distinct.first().unwrap_or(t),
            _ => t,
        };
        let count = match &rule.condition {
            Condition::Count { .. } | Condition::Leaky { .. } => st.times.len() as u64,
            Condition::Distinct { .. } => st.distinct.len() as u64,
            _ => value.unwrap_or(1),
        };
        let id = alert_id(rule.id, &key, first);
        let alert = Alert {
            id,
            rule_id: rule.id,
            rule_title: rule.title,
            severity: rule.severity,
            tags: rule.tags,
            first_seen: first,
            last_seen: t,
            count,
            key_field: rule.key.field(),
            key,
            host: ev.host_name().map(|h| h.into_owned()),
            source_ip: ev.source_ip,
            user: ev
                .user_name()
                .filter(|u| !u.is_empty())
                .map(|u| u.into_owned()),
            events: {
                let mut v = Vec::with_capacity(refs.len() + 1);
                add_refs(&mut v, refs, ev, limits.max_refs);
                v
            },
            simulated,
            threat: None,
        };
        st.open = Some(self.alerts.len() as u32);
        st.times = VecDeque::new();
        st.distinct = Distinct::Empty;
        self.changed.push(self.alerts.len());
        self.changed_mark.push(true);
        self.alerts.push(alert);
        self.counters.alerts += 1;
    }

    /// Drops state that can no longer contribute to a window.
    fn sweep(&mut self) {
        let wm = self.watermark - self.limits.lateness;
        for rs in &mut self.rules {
            let w = rs.rule.window;
            // (a leaky bucket is kept until it has leaked empty)
            rs.keys.retain(|_, s| s.last >= wm - w || s.drain_at > wm);
            rs.before
                .retain(|_, q| q.back().is_some_and(|&b| b >= wm - w));
        }
    }

    /// Number of entity keys held across rules (for memory tests).
    pub fn state_keys(&self) -> usize {
        self.rules
            .iter()
            .map(|r| r.keys.len() + r.before.len())
            .sum()
    }

    /// Ends the stream: all alerts, sorted by severity (highest first) then time.
    pub fn finish(self) -> Vec<Alert> {
        let mut a = self.alerts;
        a.sort_by(|x, y| {
            y.severity
                .cmp(&x.severity)
                .then(x.first_seen.cmp(&y.first_seen))
                .then(x.rule_id.cmp(y.rule_id))
        });
        a
    }

    /// The alerts created or grown since the last call (a live server stores them as they
    /// change: the store replaces an alert by its id).
    pub fn take_changed(&mut self) -> Vec<Alert> {
        let mut out = Vec::with_capacity(self.changed.len());
        for i in self.changed.drain(..) {
            self.changed_mark[i] = false;
            out.push(self.alerts[i].clone());
        }
        out
    }

    /// Forgets alerts that can no longer change: no entity holds them open, they were handed
    /// out by [`Engine::take_changed`], and their last event is before `before`. A live
    /// server calls it after storing what changed, so that its memory stays bounded however
    /// long it runs. Returns how many were forgotten.
    pub fn retire(&mut self, before: Nanos) -> usize {
        let n = self.alerts.len();
        let mut keep = vec![false; n];
        for rs in &self.rules {
            for st in rs.keys.values() {
                if let Some(i) = st.open {
                    keep[i as usize] = true;
                }
            }
        }
        for &i in &self.changed {
            keep[i] = true;
        }
        let mut map = vec![usize::MAX; n];
        let mut kept = 0;
        for (i, a) in self.alerts.iter().enumerate() {
            if keep[i] || a.last_seen >= before {
                map[i] = kept;
                kept += 1;
            }
        }
        if kept == n {
            return 0;
        }
        let mut i = 0;
        self.alerts.retain(|_| {
            i += 1;
            map[i - 1] != usize::MAX
        });
        let mut i = 0;
        self.changed_mark.retain(|_| {
            i += 1;
            map[i - 1] != usize::MAX
        });
        for c in &mut self.changed {
            *c = map[*c];
        }
        for rs in &mut self.rules {
            for st in rs.keys.values_mut() {
                if let Some(o) = &mut st.open {
                    *o = map[*o as usize] as u32;
                }
            }
        }
        n - kept
    }

    /// Alerts so far (for a live server's API).
    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }
}

/// A string that lives as long as the process: the names of rules loaded once (Sigma,
/// ModSecurity, feeds), like interned names.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// An engine rule whose matches are found outside the engine (Sigma, ModSecurity, indicators):
/// each match counted for `key` within an hour, under `condition`.
fn outside_rule(
    id: &str,
    title: &str,
    severity: Severity,
    tags: Vec<&'static str>,
    key: KeyBy,
    condition: Condition,
) -> Rule {
    Rule {
        id: leak(id),
        title: leak(title),
        severity,
        tags: Box::leak(tags.into_boxed_slice()),
        key,
        window: 3600 * SEC,
        condition,
        matches: |_, _| false,
    }
}

/// An engine rule for a loaded Sigma rule.
fn sigma_rule(info: &tansa_rules::RuleInfo, condition: Condition) -> Rule {
    outside_rule(
        &info.id,
        &info.title,
        match info.level.as_str() {
            "critical" => Severity::Critical,
            "high" => Severity::High,
            "low" => Severity::Low,
            "informational" => Severity::Informational,
            _ => Severity::Medium,
        },
        info.tags.iter().map(|t| leak(t)).collect(),
        KeyBy::SourceOrHost,
        condition,
    )
}

/// Drops the least recently updated tenth of a full rule's keys (amortised O(1) per insert).
fn evict_oldest(keys: &mut FxHashMap<Key, KeyState>, _alerts: &mut [Alert]) -> u64 {
    let n = (keys.len() / 10).max(1);
    let mut lasts: Vec<Nanos> = keys.values().map(|s| s.last).collect();
    let (_, cut, _) = lasts.select_nth_unstable(n - 1);
    let cut = *cut;
    let mut removed = 0u64;
    keys.retain(|_, s| {
        if removed < n as u64 && s.last <= cut {
            removed += 1;
            false
        } else {
            true
        }
    });
    removed
}

/// A stable alert id: the same rule, entity and first time always give the same id.
/// The stable id of an alert: its rule, entity and first time.
pub fn alert_id(rule: &str, key: &Key, first: Nanos) -> String {
    // FNV-1a, 64 bit: stable across runs and platforms
    let mut h: u64 = 0xcbf29ce484222325;
    for b in rule
        .bytes()
        .chain(key.to_string().bytes())
        .chain(first.to_le_bytes())
    {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tansa_event::{Category, Origin, Outcome};

    fn fail(ip: &str, user: &str, t: i64) -> Event {
        let mut ev = Event::new(
            bytes::Bytes::from_static(b"x"),
            Arc::new(Origin::file("/a", "h")),
            0,
        );
        ev.timestamp = t * SEC;
        ev.category = Category::Authentication;
        ev.outcome = Outcome::Failure;
        ev.action = Some("ssh_login");
        ev.dataset = "sshd";
        ev.source_ip = Some(ip.parse().unwrap());
        ev.set_str(Field::USER_NAME, user);
        ev
    }

    fn rule(cond: Condition, window_s: i64) -> Rule {
        Rule {
            id: "t",
            title: "t",
            severity: Severity::High,
            tags: &[],
            key: KeyBy::SourceIp,
            window: window_s * SEC,
            condition: cond,
            matches: |e, _| e.outcome == Outcome::Failure,
        }
    }

    #[test]
    fn suppressed_events_count_for_no_window_and_simulated_rules_mark_their_alerts() {
        let mut other = rule(Condition::Count { count: 3 }, 60);
        other.id = "u";
        let s = suppress::Suppressions::parse(
            "s.toml",
            "simulate = [\"u\"]\n\n[[suppress]]\nrule = \"t\"\nmatch = { \"source.ip\" = \"192.0.2.0/28\", \"user.name\" = \"back*\" }\nreason = \"backup\"\n\n\
             [[suppress]]\nmatch = { \"source.ip\" = \"198.51.100.7\" }\nuntil = \"1970-01-01T00:01:40Z\"\n",
        )
        .unwrap();
        let mut e = Engine::new(
            vec![rule(Condition::Count { count: 3 }, 60), other],
            Limits::default(),
        )
        .with_suppressions(s);
        // the backup account from its host: held back for rule t (not for u)
        for t in 0..10 {
            e.process(&fail("192.0.2.3", "backup", t));
        }
        // the same address with another account, and the account from elsewhere: counted
        for t in 0..3 {
            e.process(&fail("192.0.2.3", "root", 20 + t));
            e.process(&fail("192.0.2.99", "backup", 20 + t));
        }
        // an allow list for every rule, until t = 100 s
        for t in 0..6 {
            e.process(&fail("198.51.100.7", "x", 95 + t));
        }
        let held: Vec<u64> = e.suppressions().map(|(_, n)| n).collect();
        assert_eq!(held, vec![10, 2 * 5]);
        assert_eq!(e.counters().suppressed, 20);
        let a = e.finish();
        let of = |rule: &str, ip: &str| {
            a.iter()
                .filter(|x| x.rule_id == rule && x.key.to_string() == ip)
                .map(|x| (x.count, x.simulated))
                .collect::<Vec<_>>()
        };
        // rule t: the backup account's ten failures never counted; root's three fire
        assert_eq!(of("t", "192.0.2.3"), vec![(3, false)]);
        assert_eq!(of("t", "192.0.2.99"), vec![(3, false)]);
        // rule u (simulated) counts everything the suppressions leave it, marked
        assert_eq!(of("u", "192.0.2.3"), vec![(13, true)]);
        // the allow list ended at 100 s: only the events from then on count
        assert!(of("t", "198.51.100.7").is_empty());
        e_after_until();
    }

    /// An allow list that ended lets the events after it count.
    fn e_after_until() {
        let s = suppress::Suppressions::parse(
            "s.toml",
            "[[suppress]]\nmatch = { \"source.ip\" = \"198.51.100.7\" }\nuntil = \"1970-01-01T00:01:40Z\"\n",
        )
        .unwrap();
        let mut e = Engine::new(
            vec![rule(Condition::Count { count: 3 }, 60)],
            Limits::default(),
        )
        .with_suppressions(s);
        for t in 95..106 {
            e.process(&fail("198.51.100.7", "x", t));
        }
        let a = e.finish();
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].count, a[0].first_seen), (6, 100 * SEC));
    }

    #[test]
    fn threshold_fires_once_and_aggregates() {
        let mut e = Engine::new(
            vec![rule(Condition::Count { count: 5 }, 60)],
            Limits::default(),
        );
        for t in 0..4 {
            e.process(&fail("192.0.2.1", "root", t));
        }
        assert_eq!(e.alerts().len(), 0, "below the threshold");
        for t in 4..100 {
            e.process(&fail("192.0.2.1", "root", t));
        }
        let a = e.finish();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].count, 100);
        assert_eq!(a[0].first_seen, 0);
        assert_eq!(a[0].last_seen, 99 * SEC);
        assert_eq!(a[0].events.len(), 20);
    }

    #[test]
    fn changed_alerts_are_handed_out_once_per_change() {
        let mut e = Engine::new(
            vec![rule(Condition::Count { count: 3 }, 60)],
            Limits::default(),
        );
        for t in 0..3 {
            e.process(&fail("192.0.2.1", "root", t));
        }
        let first = e.take_changed();
        assert_eq!((first.len(), first[0].count), (1, 3));
        assert!(e.take_changed().is_empty(), "nothing changed since");
        for t in 3..6 {
            e.process(&fail("192.0.2.1", "root", t));
        }
        e.process(&fail("192.0.2.2", "root", 6));
        let grown = e.take_changed();
        assert_eq!(grown.len(), 1, "the grown alert, once");
        assert_eq!(
            (grown[0].id.as_str(), grown[0].count),
            (first[0].id.as_str(), 6)
        );
        for t in [1000, 1001, 1002] {
            e.process(&fail("192.0.2.1", "root", t));
        }
        let new = e.take_changed();
        assert_eq!(new.len(), 1);
        assert_ne!(new[0].id, first[0].id, "a new alert after a quiet window");
    }

    #[test]
    fn retired_alerts_leave_memory_and_open_ones_keep_growing() {
        let mut e = Engine::new(
            vec![rule(Condition::Count { count: 3 }, 60)],
            Limits::default(),
        );
        let mut stored = std::collections::HashMap::new();
        for k in 0..100i64 {
            let ip = format!("192.0.2.{k}");
            for t in 0..3 {
                e.process(&fail(&ip, "root", k * 1000 + t));
            }
            for a in e.take_changed() {
                stored.insert(a.id.clone(), a.count);
            }
            // what a server does after each commit: forget what ended ten minutes ago
            e.retire((k * 1000 - 600) * SEC);
            assert!(
                e.alerts().len() <= 2,
                "{k}: {:?}",
                e.alerts()
                    .iter()
                    .map(|a| (a.key.to_string(), a.last_seen))
                    .collect::<Vec<_>>()
            );
        }
        // the newest alert is still open: it grows, and is handed out again, correctly indexed
        e.process(&fail("192.0.2.99", "root", 99_010));
        let grown = e.take_changed();
        assert_eq!(grown.len(), 1);
        assert_eq!(grown[0].key.to_string(), "192.0.2.99");
        assert_eq!(grown[0].count, 4);
        assert_eq!(
            stored.len(),
            100,
            "every alert was handed out before it was forgotten"
        );
        // nothing changed since: retiring all leaves only what a key holds open
        e.retire(i64::MAX);
        assert_eq!(e.alerts().len(), 1);
    }

    #[test]
    fn distinct_state_holds_one_entry_per_value_however_often_it_is_seen() {
        let mut e = Engine::new(
            vec![rule(
                Condition::Distinct {
                    field: DistinctField::User,
                    count: 50,
                },
                600,
            )],
            Limits::default(),
        );
        // one address tries five accounts, once a second for an hour
        for t in 0..3600 {
            e.process(&fail(
                "192.0.2.7",
                ["a", "b", "c", "d", "e"][t as usize % 5],
                t,
            ));
        }
        let st = e.rules[0].keys.values().next().unwrap();
        assert_eq!(st.distinct.len(), 5);
        // values leave once their last sighting is older than the window
        e.process(&fail("192.0.2.7", "z", 3600 + 601));
        let st = e.rules[0].keys.values().next().unwrap();
        assert_eq!(st.distinct.len(), 1, "only z is left");
        // many values: past the short list, the same answers
        let names: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            e.process(&fail("192.0.2.8", n, 10_000 + i as i64));
            e.process(&fail("192.0.2.8", "u0", 10_000 + i as i64));
        }
        let a = e
            .alerts()
            .iter()
            .find(|a| a.key.to_string() == "192.0.2.8")
            .unwrap();
        // fired by u49 (50 values; the earliest last sighting u1's), then 101 events more
        assert_eq!((a.count, a.first_seen), (151, 10_001 * SEC));
        let mut e = Engine::new(
            vec![rule(
                Condition::Distinct {
                    field: DistinctField::User,
                    count: 500,
                },
                600,
            )],
            Limits::default(),
        );
        for (i, n) in names.iter().enumerate() {
            e.process(&fail("192.0.2.8", n, i as i64));
        }
        let st = e.rules[0].keys.values().next().unwrap();
        assert!(matches!(st.distinct, Distinct::Large(_)));
        assert_eq!((st.distinct.len(), st.distinct.first()), (100, Some(0)));
        // u0 again later keeps it; the others leave with their window
        e.process(&fail("192.0.2.8", "u0", 650));
        e.process(&fail("192.0.2.8", "new", 700));
        let st = e.rules[0].keys.values().next().unwrap();
        assert_eq!(st.distinct.len(), 2, "u0 and new");
    }

    #[test]
    fn sparse_events_do_not_reach_a_sliding_threshold() {
        let mut e = Engine::new(
            vec![rule(Condition::Count { count: 5 }, 60)],
            Limits::default(),
        );
        for t in 0..50 {
            e.process(&fail("192.0.2.1", "root", t * 20)); // 3 per minute
        }
        assert!(e.finish().is_empty());
    }

    #[test]
    fn a_new_alert_after_a_quiet_window() {
        let mut e = Engine::new(
            vec![rule(Condition::Count { count: 3 }, 60)],
            Limits::default(),
        );
        for t in [0, 1, 2, 1000, 1001, 1002] {
            e.process(&fail("192.0.2.1", "root", t));
        }
        assert_eq!(e.finish().len(), 2);
    }

    #[test]
    fn distinct_users() {
        let r = rule(
            Condition::Distinct {
                field: DistinctField::User,
                count: 3,
            },
            60,
        );
        let mut e = Engine::new(vec![r], Limits::default());
        for (t, u) in ["a", "a", "a", "b", "b"].iter().enumerate() {
            e.process(&fail("192.0.2.1", u, t as i64));
        }
        assert!(e.alerts().is_empty());
        e.process(&fail("192.0.2.1", "c", 10));
        assert_eq!(e.finish()[0].count, 3);
    }

    #[test]
    fn state_is_bounded() {
        let limits = Limits {
            max_keys: 100,
            ..Limits::default()
        };
        let mut e = Engine::new(vec![rule(Condition::Count { count: 5 }, 3600)], limits);
        for i in 0..1000u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
            e.process(&fail(&ip, "root", 1));
        }
        assert!(e.state_keys() <= 100);
        assert_eq!(e.counters().evicted as usize, 1000 - e.state_keys());
    }

    #[test]
    fn sigma_rules_become_engine_rules() {
        let sigma = tansa_rules::SigmaRules::from_yaml(
            "t.yml",
            "title: Root attempts\nid: 5d1f0000-0000-4000-8000-000000000001\nlogsource: {product: linux, service: sshd}\ndetection:\n  s: {User: root}\n  condition: s\nlevel: high\ntags: [attack.t1110]\n",
        );
        let mut e = Engine::with_sigma(vec![], sigma, Limits::default());
        assert_eq!(e.rule_count(), 1);
        for t in 0..3 {
            e.process(&fail("192.0.2.9", "root", t));
        }
        e.process(&fail("192.0.2.9", "alice", 4));
        let a = e.finish();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].rule_id, "5d1f0000-0000-4000-8000-000000000001");
        assert_eq!(a[0].severity, Severity::High);
        assert_eq!(a[0].count, 3);
        assert_eq!(a[0].tags, &["attack.t1110"]);
    }

    #[test]
    fn sigma_hits_from_parser_threads_and_correlations_make_the_same_alerts() {
        let yaml = "title: Failed\nname: failed\nlogsource: {product: linux, service: sshd}\ndetection:\n  s: {User|startswith: r}\n  condition: s\nlevel: low\n---\ntitle: Spray\nid: 5d1f0000-0000-4000-8000-0000000000c1\ncorrelation:\n  type: value_count\n  rules: [failed]\n  group-by: [SourceIp]\n  timespan: 10m\n  condition: {field: User, gte: 3}\nlevel: critical\n";
        let run = |classify_first: bool| {
            let sigma = tansa_rules::SigmaRules::from_yaml("t.yml", yaml);
            let mut e = Engine::with_sigma(vec![], sigma, Limits::default());
            let c = e.classifier();
            for (i, user) in ["root", "rob", "rob", "alice", "ruth", "rex"]
                .iter()
                .enumerate()
            {
                let mut ev = fail("192.0.2.9", user, i as i64);
                ev.offset = i as u64 * 100;
                if classify_first {
                    c.classify(&mut ev);
                    assert!(ev.rule_hits.is_some());
                }
                e.process(&ev);
            }
            e.finish()
        };
        let a = run(true);
        assert_eq!(
            format!("{a:?}"),
            format!("{:?}", run(false)),
            "the same alerts whoever evaluates the rules"
        );
        // the detection rule feeds the correlation and raises nothing itself
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].rule_id, "5d1f0000-0000-4000-8000-0000000000c1");
        assert_eq!(a[0].severity, Severity::Critical);
        // root, rob, ruth: the third distinct user fires; rex raises the count
        assert_eq!(a[0].first_seen, 4 * SEC);
        assert_eq!(a[0].count, 4);
        assert_eq!(a[0].key.to_string(), "SourceIp=192.0.2.9");
        // the alert names the events behind it: every hit of the detection rule in the
        // window (not alice's line), not only the one that fired it
        let mut offsets: Vec<u64> = a[0].events.iter().map(|r| r.offset).collect();
        offsets.sort_unstable();
        assert_eq!(offsets, vec![0, 100, 200, 400, 500]);
    }

    #[test]
    fn alert_ids_are_stable() {
        assert_eq!(
            alert_id("r", &Key::Text("x".into()), 5),
            alert_id("r", &Key::Text("x".into()), 5)
        );
        assert_ne!(
            alert_id("r", &Key::Text("x".into()), 5),
            alert_id("r", &Key::Text("y".into()), 5)
        );
    }
}
