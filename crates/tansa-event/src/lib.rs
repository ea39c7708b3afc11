//! The normalised [`Event`]: one record per log line, flow or packet-derived request.
//!
//! This crate is the first box of the data path (`sources → frame → parse → enrich → detect →
//! store → respond`): every later stage reads and extends an `Event`, and nothing else travels
//! between stages. It does no I/O.
//!
//! Field names follow the Elastic Common Schema (ECS). Internally an event is compact and
//! typed: the raw line is a reference-counted slice of the chunk it was read in ([`bytes::Bytes`]),
//! most string fields are [`Val::Span`]s into that line (no allocation per field), addresses are
//! [`IpAddr`], times are nanoseconds since the Unix epoch in UTC, and field names are interned
//! [`Field`] ids. JSON is only produced for output ([`Event::to_json`]).
//!
//! Every event keeps its raw line, the original timestamp text as written, `@timestamp`
//! (normalised to UTC), `event.ingested` (when Tansa received it) and its [`Origin`] (file,
//! host, collector). A line that no parser understands is still an event, with
//! [`Kind::Unparsed`].
//!
//! ```
//! use std::sync::Arc;
//! use tansa_event::{Event, Field, Origin, Outcome, Val};
//!
//! let origin = Arc::new(Origin::file("/var/log/auth.log", "web01"));
//! let mut ev = Event::new(bytes::Bytes::from_static(b"Failed password for root"), origin, 0);
//! ev.outcome = Outcome::Failure;
//! ev.set(Field::USER_NAME, Val::Span(20, 24));
//! assert_eq!(ev.get_str(Field::USER_NAME).as_deref(), Some("root"));
//! ```

mod field;
mod ipinfo;
mod json;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;

pub use field::Field;
pub use ipinfo::{InfoPart, IpFlags, IpInfo};

/// Nanoseconds since the Unix epoch, UTC.
pub type Nanos = i64;

/// `event.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Kind {
    #[default]
    Event,
    /// A line no parser understood. It is kept, stored and counted like any other.
    Unparsed,
    Alert,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Event => "event",
            Kind::Unparsed => "unparsed",
            Kind::Alert => "alert",
        }
    }
}

/// `event.category` (ECS allowed values that Linux server logs produce).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Category {
    #[default]
    None,
    Authentication,
    Session,
    Web,
    Network,
    Process,
    Iam,
    Database,
    File,
    Configuration,
    IntrusionDetection,
    Host,
    Package,
    Email,
}

impl Category {
    pub fn as_str(self) -> Option<&'static str> {
        Some(match self {
            Category::None => return None,
            Category::Authentication => "authentication",
            Category::Session => "session",
            Category::Web => "web",
            Category::Network => "network",
            Category::Process => "process",
            Category::Iam => "iam",
            Category::Database => "database",
            Category::File => "file",
            Category::Configuration => "configuration",
            Category::IntrusionDetection => "intrusion_detection",
            Category::Host => "host",
            Category::Package => "package",
            Category::Email => "email",
        })
    }
}

/// `event.type` (the ECS allowed values we use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EventType {
    #[default]
    None,
    Start,
    End,
    Info,
    Access,
    Connection,
    Denied,
    Allowed,
    Creation,
    Deletion,
    Change,
    User,
    Group,
    Admin,
    Error,
    Protocol,
    Indicator,
}

impl EventType {
    pub fn as_str(self) -> Option<&'static str> {
        Some(match self {
            EventType::None => return None,
            EventType::Start => "start",
            EventType::End => "end",
            EventType::Info => "info",
            EventType::Access => "access",
            EventType::Connection => "connection",
            EventType::Denied => "denied",
            EventType::Allowed => "allowed",
            EventType::Creation => "creation",
            EventType::Deletion => "deletion",
            EventType::Change => "change",
            EventType::User => "user",
            EventType::Group => "group",
            EventType::Admin => "admin",
            EventType::Error => "error",
            EventType::Protocol => "protocol",
            EventType::Indicator => "indicator",
        })
    }
}

/// `event.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Outcome {
    #[default]
    Unknown,
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Outcome::Unknown => None,
            Outcome::Success => Some("success"),
            Outcome::Failure => Some("failure"),
        }
    }
}

/// Where a line came from: shared by every event of one file or stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// `log.file.path` (or a stream name such as `syslog://127.0.0.1:514`).
    pub path: Arc<str>,
    /// `host.name` of the machine that wrote the log, when known for the whole stream.
    pub host: Option<Arc<str>>,
    /// `agent.id`: the collector or agent that read the line.
    pub agent_id: Arc<str>,
}

impl Origin {
    /// An origin for a local file read by this process.
    pub fn file(path: &str, host: &str) -> Self {
        Origin {
            path: path.into(),
            host: (!host.is_empty()).then(|| host.into()),
            agent_id: "local".into(),
        }
    }
}

/// A line of text: a reference-counted slice of the buffer it was read in, guaranteed UTF-8
/// (invalid bytes are replaced when it is made), so reading it never re-validates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text(Bytes);

impl Text {
    /// Wraps `b`, replacing invalid UTF-8 (lossily) so that every line is text.
    pub fn new(b: Bytes) -> Self {
        if std::str::from_utf8(&b).is_ok() {
            Text(b)
        } else {
            Text(Bytes::from(String::from_utf8_lossy(&b).into_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: the only constructor, `Text::new`, checks or makes the bytes valid UTF-8,
        // and the bytes are immutable afterwards.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// A field value. `Span` borrows from the raw line; the other variants own their data.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// A byte range `[start, end)` of [`Event::raw`]; always on UTF-8 boundaries.
    Span(u32, u32),
    /// A value that is not a plain slice of the line (decoded, joined, from another record).
    Str(Box<str>),
    Int(i64),
    Ip(IpAddr),
    Bool(bool),
}

/// One normalised record. See the crate docs.
#[derive(Debug, Clone)]
pub struct Event {
    /// The line as received (invalid UTF-8 replaced).
    pub raw: Text,
    /// `@timestamp`, UTC nanoseconds. When a line carries no time, its receive time.
    pub timestamp: Nanos,
    /// The timestamp text as written in the line (`event.created` text), as a span of `raw`.
    pub time_text: Option<(u32, u32)>,
    /// `event.ingested`: when Tansa received the line.
    pub ingested: Nanos,
    pub kind: Kind,
    pub category: Category,
    pub event_type: EventType,
    pub outcome: Outcome,
    /// `event.action`, a stable snake-case verb such as `ssh_login` or `http_request`.
    pub action: Option<&'static str>,
    /// `event.dataset`: which parser produced the event (`sshd`, `nginx.access`, …).
    pub dataset: &'static str,
    pub source_ip: Option<IpAddr>,
    pub source_port: Option<u16>,
    pub destination_ip: Option<IpAddr>,
    pub destination_port: Option<u16>,
    /// Byte offset of the line in its file (`log.offset`).
    pub offset: u64,
    pub origin: Arc<Origin>,
    /// All other fields.
    pub fields: SmallVec<[(Field, Val); 8]>,
    /// Classes found by stateless classifiers run before detection (a bit set whose meaning
    /// the classifier defines; `tansa_detect::web::Class` for web requests). `None` until
    /// classified, so that detection classifies events nobody classified before.
    pub classes: Option<u32>,
    /// Numbers of the loaded Sigma rules that match the event, when the parser threads
    /// evaluated them (`None`: not evaluated yet; detection does it then).
    pub rule_hits: Option<Box<[u32]>>,
    /// What enrichment knows of `source.ip` / `destination.ip` (geography, AS, flags).
    pub source_info: Option<Arc<IpInfo>>,
    pub destination_info: Option<Arc<IpInfo>>,
    /// Numbers of the threat-intelligence indicators the event matches (numbers of the
    /// loaded intelligence set; empty and unallocated for almost every event).
    pub intel_hits: Option<Box<[u32]>>,
}

impl Event {
    /// A bare event for `raw`, received at `ingested`; parsers fill in the rest. Invalid
    /// UTF-8 in `raw` is replaced.
    pub fn new(raw: Bytes, origin: Arc<Origin>, ingested: Nanos) -> Self {
        Event {
            raw: Text::new(raw),
            timestamp: ingested,
            time_text: None,
            ingested,
            kind: Kind::Event,
            category: Category::None,
            event_type: EventType::None,
            outcome: Outcome::Unknown,
            action: None,
            dataset: "",
            source_ip: None,
            source_port: None,
            destination_ip: None,
            destination_port: None,
            offset: 0,
            origin,
            fields: SmallVec::new(),
            classes: None,
            rule_hits: None,
            source_info: None,
            destination_info: None,
            intel_hits: None,
        }
    }

    /// The raw line as text.
    pub fn raw_str(&self) -> &str {
        self.raw.as_str()
    }

    /// The text of a span of the raw line.
    pub fn span(&self, start: u32, end: u32) -> &str {
        self.raw_str()
            .get(start as usize..end as usize)
            .unwrap_or("")
    }

    /// Sets a field, replacing an earlier value of the same field.
    pub fn set(&mut self, field: Field, val: Val) {
        if let Some(slot) = self.fields.iter_mut().find(|(f, _)| *f == field) {
            slot.1 = val;
        } else {
            self.fields.push((field, val));
        }
    }

    /// Sets a field to a span of the raw line given as a byte range; empty spans are ignored.
    pub fn set_span(&mut self, field: Field, start: usize, end: usize) {
        if end > start {
            self.set(field, Val::Span(start as u32, end as u32));
        }
    }

    /// Sets a string field to an owned value.
    pub fn set_str(&mut self, field: Field, s: &str) {
        self.set(field, Val::Str(s.into()));
    }

    /// The raw value of a field stored in [`Event::fields`].
    pub fn get(&self, field: Field) -> Option<&Val> {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| v)
    }

    /// Any field, including the typed members, as text.
    pub fn get_str(&self, field: Field) -> Option<Cow<'_, str>> {
        match field {
            Field::SOURCE_IP => return self.source_ip.map(|ip| Cow::Owned(ip.to_string())),
            Field::DESTINATION_IP => {
                return self.destination_ip.map(|ip| Cow::Owned(ip.to_string()))
            }
            Field::SOURCE_PORT => return self.source_port.map(|p| Cow::Owned(p.to_string())),
            Field::DESTINATION_PORT => {
                return self.destination_port.map(|p| Cow::Owned(p.to_string()))
            }
            Field::EVENT_OUTCOME => return self.outcome.as_str().map(Cow::Borrowed),
            Field::EVENT_CATEGORY => return self.category.as_str().map(Cow::Borrowed),
            Field::EVENT_TYPE => return self.event_type.as_str().map(Cow::Borrowed),
            Field::EVENT_ACTION => return self.action.map(Cow::Borrowed),
            Field::EVENT_KIND => return Some(Cow::Borrowed(self.kind.as_str())),
            Field::EVENT_DATASET => {
                return (!self.dataset.is_empty()).then_some(Cow::Borrowed(self.dataset))
            }
            Field::MESSAGE if self.get(Field::MESSAGE).is_none() => {
                return Some(Cow::Borrowed(self.raw_str()))
            }
            Field::HOST_NAME if self.get(Field::HOST_NAME).is_none() => {
                return self.origin.host.as_deref().map(Cow::Borrowed)
            }
            Field::LOG_FILE_PATH => return Some(Cow::Borrowed(&self.origin.path)),
            _ => {}
        }
        if let Some((info, part)) = self.info_part(field) {
            return info.and_then(|i| i.part(part)).map(Cow::Owned);
        }
        self.get(field).map(|v| self.val_str(v))
    }

    /// A value as text.
    pub fn val_str<'a>(&'a self, v: &'a Val) -> Cow<'a, str> {
        match v {
            Val::Span(s, e) => Cow::Borrowed(self.span(*s, *e)),
            Val::Str(s) => Cow::Borrowed(s),
            Val::Int(i) => Cow::Owned(i.to_string()),
            Val::Ip(ip) => Cow::Owned(ip.to_string()),
            Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        }
    }

    /// For an enrichment field (`source.geo.country_iso_code`, `destination.as.number`, …):
    /// the side's [`IpInfo`] (if any) and the part the field names.
    fn info_part(&self, field: Field) -> Option<(Option<&IpInfo>, InfoPart)> {
        let n = InfoPart::ALL.len() as u16;
        let i = field.0.checked_sub(Field::SOURCE_GEO_NAME.0)?;
        if i >= 2 * n {
            return None;
        }
        let info = if i < n {
            self.source_info.as_deref()
        } else {
            self.destination_info.as_deref()
        };
        Some((info, InfoPart::ALL[(i % n) as usize].0))
    }

    /// `host.name`: the value the line names, else the stream's host.
    pub fn host_name(&self) -> Option<Cow<'_, str>> {
        self.get_str(Field::HOST_NAME)
    }

    /// `user.name`, if any.
    pub fn user_name(&self) -> Option<Cow<'_, str>> {
        self.get_str(Field::USER_NAME)
    }

    /// The address-or-name of the remote party: `source.ip`, else `source.address`/`source.domain`.
    pub fn source_text(&self) -> Option<Cow<'_, str>> {
        if let Some(ip) = self.source_ip {
            return Some(Cow::Owned(ip.to_string()));
        }
        self.get_str(Field::SOURCE_ADDRESS)
            .or_else(|| self.get_str(Field::SOURCE_DOMAIN))
    }

    /// The event as one ECS JSON object (nested objects, as Elasticsearch stores them).
    pub fn to_json(&self) -> serde_json::Value {
        json::to_json(self)
    }
}

/// Formats UTC nanoseconds as RFC 3339 with the precision the value needs.
pub fn format_ts(ns: Nanos) -> String {
    match jiff::Timestamp::from_nanosecond(ns as i128) {
        Ok(t) => t.to_string(),
        Err(_) => ns.to_string(),
    }
}

/// The current time in UTC nanoseconds.
pub fn now_nanos() -> Nanos {
    jiff::Timestamp::now().as_nanosecond() as Nanos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(raw: &'static str) -> Event {
        Event::new(
            Bytes::from_static(raw.as_bytes()),
            Arc::new(Origin::file("/var/log/auth.log", "web01")),
            0,
        )
    }

    #[test]
    fn set_replaces_and_get_reads_spans() {
        let mut e = ev("user=root x");
        e.set_span(Field::USER_NAME, 5, 9);
        assert_eq!(e.get_str(Field::USER_NAME).unwrap(), "root");
        e.set_str(Field::USER_NAME, "admin");
        assert_eq!(e.get_str(Field::USER_NAME).unwrap(), "admin");
        assert_eq!(e.fields.len(), 1);
        // an empty span is not stored
        e.set_span(Field::USER_ID, 3, 3);
        assert!(e.get(Field::USER_ID).is_none());
    }

    #[test]
    fn host_falls_back_to_origin_and_message_to_raw() {
        let mut e = ev("hello");
        assert_eq!(e.host_name().unwrap(), "web01");
        assert_eq!(e.get_str(Field::MESSAGE).unwrap(), "hello");
        e.set_str(Field::HOST_NAME, "db1");
        assert_eq!(e.host_name().unwrap(), "db1");
    }

    #[test]
    fn span_outside_the_line_is_empty_not_a_panic() {
        let e = ev("abc");
        assert_eq!(e.span(1, 99), "");
    }

    #[test]
    fn enrichment_fields_read_the_side_info() {
        let n = InfoPart::ALL.len() as u16;
        for (k, (_, name)) in InfoPart::ALL.iter().enumerate() {
            let k = k as u16;
            assert_eq!(
                Field(Field::SOURCE_GEO_NAME.0 + k).name(),
                format!("source.{name}")
            );
            assert_eq!(
                Field(Field::SOURCE_GEO_NAME.0 + n + k).name(),
                format!("destination.{name}")
            );
        }
        let mut e = ev("x");
        assert_eq!(e.get_str(Field::SOURCE_GEO_COUNTRY), None);
        e.source_info = Some(Arc::new(IpInfo {
            country_iso_code: Some("JP".into()),
            as_number: Some(2516),
            ..Default::default()
        }));
        e.destination_info = Some(Arc::new(IpInfo {
            scope: Some("private"),
            ..Default::default()
        }));
        assert_eq!(e.get_str(Field::SOURCE_GEO_COUNTRY).unwrap(), "JP");
        assert_eq!(e.get_str(Field::SOURCE_AS_NUMBER).unwrap(), "2516");
        assert_eq!(e.get_str(Field::DESTINATION_GEO_NAME).unwrap(), "private");
        assert_eq!(e.get_str(Field::DESTINATION_GEO_COUNTRY), None);
        let j = e.to_json();
        assert_eq!(j["source"]["geo"]["country_iso_code"], "JP");
        assert_eq!(j["source"]["as"]["number"], 2516);
        assert_eq!(j["destination"]["geo"]["name"], "private");
    }

    #[test]
    fn json_is_nested_ecs() {
        let mut e = ev("Failed password for root from 192.0.2.1");
        e.timestamp = 1_000_000_000;
        e.outcome = Outcome::Failure;
        e.category = Category::Authentication;
        e.source_ip = Some("192.0.2.1".parse().unwrap());
        e.set_span(Field::USER_NAME, 20, 24);
        let j = e.to_json();
        assert_eq!(j["@timestamp"], "1970-01-01T00:00:01Z");
        assert_eq!(j["event"]["outcome"], "failure");
        assert_eq!(j["event"]["category"], "authentication");
        assert_eq!(j["source"]["ip"], "192.0.2.1");
        assert_eq!(j["user"]["name"], "root");
        assert_eq!(j["host"]["name"], "web01");
        assert_eq!(j["log"]["file"]["path"], "/var/log/auth.log");
        assert_eq!(
            j["event"]["original"],
            "Failed password for root from 192.0.2.1"
        );
    }
}
