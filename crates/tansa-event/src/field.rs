//! Interned field names.
//!
//! Known ECS fields are constants (`Field::USER_NAME`); names met at run time (keys of JSON
//! logs) are interned once into a process-wide append-only table, so an event stores a `u16`
//! per field, never a name.

use std::collections::HashMap;
use std::fmt;
use std::sync::{OnceLock, RwLock};

/// An interned field name. Compare ids, print with [`Field::name`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Field(pub u16);

macro_rules! fields {
    ($($id:ident = $name:literal,)*) => {
        const KNOWN: &[&str] = &[$($name,)*];
        #[allow(non_upper_case_globals)]
        mod ids { #[allow(non_camel_case_types, clippy::upper_case_acronyms)] #[repr(u16)] pub(super) enum Id { $($id,)* } }
        impl Field {
            $(pub const $id: Field = Field(ids::Id::$id as u16);)*
        }
    };
}

fields! {
    TIMESTAMP = "@timestamp",
    MESSAGE = "message",
    EVENT_KIND = "event.kind",
    EVENT_CATEGORY = "event.category",
    EVENT_TYPE = "event.type",
    EVENT_ACTION = "event.action",
    EVENT_OUTCOME = "event.outcome",
    EVENT_DATASET = "event.dataset",
    EVENT_REASON = "event.reason",
    EVENT_CODE = "event.code",
    EVENT_SEVERITY = "event.severity",
    EVENT_SEQUENCE = "event.sequence",
    EVENT_DURATION = "event.duration",
    LOG_LEVEL = "log.level",
    LOG_LOGGER = "log.logger",
    LOG_FILE_PATH = "log.file.path",
    LOG_SYSLOG_FACILITY = "log.syslog.facility.code",
    LOG_SYSLOG_PRIORITY = "log.syslog.priority",
    LOG_SYSLOG_APPNAME = "log.syslog.appname",
    LOG_SYSLOG_MSGID = "log.syslog.msgid",
    HOST_NAME = "host.name",
    HOST_IP = "host.ip",
    SOURCE_IP = "source.ip",
    SOURCE_PORT = "source.port",
    SOURCE_ADDRESS = "source.address",
    SOURCE_DOMAIN = "source.domain",
    SOURCE_MAC = "source.mac",
    SOURCE_BYTES = "source.bytes",
    DESTINATION_IP = "destination.ip",
    DESTINATION_PORT = "destination.port",
    DESTINATION_ADDRESS = "destination.address",
    DESTINATION_BYTES = "destination.bytes",
    NETWORK_TRANSPORT = "network.transport",
    NETWORK_PROTOCOL = "network.protocol",
    NETWORK_DIRECTION = "network.direction",
    NETWORK_COMMUNITY_ID = "network.community_id",
    OBSERVER_INGRESS = "observer.ingress.interface.name",
    OBSERVER_EGRESS = "observer.egress.interface.name",
    USER_NAME = "user.name",
    USER_ID = "user.id",
    USER_EFFECTIVE_NAME = "user.effective.name",
    USER_EFFECTIVE_ID = "user.effective.id",
    USER_TARGET_NAME = "user.target.name",
    USER_TARGET_ID = "user.target.id",
    USER_AUDIT_ID = "user.audit.id",
    PROCESS_REAL_USER_ID = "process.real_user.id",
    USER_CHANGES_NAME = "user.changes.name",
    GROUP_NAME = "group.name",
    GROUP_ID = "group.id",
    PROCESS_NAME = "process.name",
    PROCESS_PID = "process.pid",
    PROCESS_PPID = "process.parent.pid",
    PROCESS_EXECUTABLE = "process.executable",
    PROCESS_COMMAND_LINE = "process.command_line",
    PROCESS_WORKING_DIRECTORY = "process.working_directory",
    PROCESS_TTY = "process.tty.name",
    PROCESS_EXIT_CODE = "process.exit_code",
    PROCESS_SESSION = "process.session_leader.entity_id",
    FILE_PATH = "file.path",
    URL_ORIGINAL = "url.original",
    URL_PATH = "url.path",
    URL_QUERY = "url.query",
    URL_DOMAIN = "url.domain",
    HTTP_METHOD = "http.request.method",
    HTTP_STATUS = "http.response.status_code",
    HTTP_BYTES = "http.response.body.bytes",
    HTTP_REFERRER = "http.request.referrer",
    HTTP_VERSION = "http.version",
    USER_AGENT = "user_agent.original",
    SSH_METHOD = "ssh.method",
    SSH_SIGNATURE = "ssh.signature",
    SESSION_ID = "session.id",
    SERVICE_NAME = "service.name",
    ERROR_MESSAGE = "error.message",
    RULE_ID = "rule.id",
    RULE_NAME = "rule.name",
    DNS_QUESTION_NAME = "dns.question.name",
    DNS_QUESTION_TYPE = "dns.question.type",
    DB_USER = "db.user.name",
    DB_NAME = "db.name",
    DB_STATEMENT = "db.statement",
    DB_QUERY_TIME = "db.query_time",
    AUDITD_TYPE = "auditd.log.record_type",
    AUDITD_SEQUENCE = "auditd.log.sequence",
    AUDITD_KEY = "auditd.log.key",
    AUDITD_SYSCALL = "auditd.log.syscall",
    AUDITD_COMM = "auditd.log.comm",
    AUDITD_ARGC = "auditd.log.argc",
    AUDITD_RESULT = "auditd.log.res",
    TAGS = "tags",
    LABELS_MAC = "labels.mac",
    SURICATA_SIGNATURE = "rule.description",
    EMAIL_FROM = "email.from.address",
    EMAIL_TO = "email.to.address",
    TLS_VERSION = "tls.version",
    // enrichment (tansa-intel): in the order of `InfoPart::ALL`, sources then destinations
    SOURCE_GEO_NAME = "source.geo.name",
    SOURCE_GEO_CONTINENT = "source.geo.continent_code",
    SOURCE_GEO_COUNTRY = "source.geo.country_iso_code",
    SOURCE_GEO_COUNTRY_NAME = "source.geo.country_name",
    SOURCE_GEO_REGION = "source.geo.region_name",
    SOURCE_GEO_CITY = "source.geo.city_name",
    SOURCE_GEO_LOCATION = "source.geo.location",
    SOURCE_AS_NUMBER = "source.as.number",
    SOURCE_AS_ORG = "source.as.organization.name",
    SOURCE_FLAGS = "source.flags",
    DESTINATION_GEO_NAME = "destination.geo.name",
    DESTINATION_GEO_CONTINENT = "destination.geo.continent_code",
    DESTINATION_GEO_COUNTRY = "destination.geo.country_iso_code",
    DESTINATION_GEO_COUNTRY_NAME = "destination.geo.country_name",
    DESTINATION_GEO_REGION = "destination.geo.region_name",
    DESTINATION_GEO_CITY = "destination.geo.city_name",
    DESTINATION_GEO_LOCATION = "destination.geo.location",
    DESTINATION_AS_NUMBER = "destination.as.number",
    DESTINATION_AS_ORG = "destination.as.organization.name",
    DESTINATION_FLAGS = "destination.flags",
    THREAT_INDICATOR = "threat.indicator.name",
    THREAT_FEED = "threat.feed.name",
}

/// Names by id, and ids by name.
type Table = (Vec<&'static str>, HashMap<&'static str, u16>);

/// Field names interned at run time (JSON keys), after the known ones.
fn dynamic() -> &'static RwLock<Table> {
    static T: OnceLock<RwLock<Table>> = OnceLock::new();
    T.get_or_init(|| {
        let map = KNOWN
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i as u16))
            .collect();
        RwLock::new((KNOWN.to_vec(), map))
    })
}

impl Field {
    /// The id of `name`, interning it if new. At most 65 535 distinct names; past that,
    /// every new name maps to `labels.overflow` rather than failing.
    pub fn intern(name: &str) -> Field {
        if let Some(f) = Field::lookup(name) {
            return f;
        }
        let mut t = dynamic().write().unwrap_or_else(|e| e.into_inner());
        if let Some(&id) = t.1.get(name) {
            return Field(id);
        }
        if t.0.len() >= u16::MAX as usize - 1 {
            drop(t);
            return Field::intern_overflow();
        }
        let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let id = t.0.len() as u16;
        t.0.push(leaked);
        t.1.insert(leaked, id);
        Field(id)
    }

    fn intern_overflow() -> Field {
        let t = dynamic().read().unwrap_or_else(|e| e.into_inner());
        t.1.get("labels.overflow")
            .map(|&i| Field(i))
            .unwrap_or(Field::TAGS)
    }

    /// The id of `name` if it has been seen, without interning.
    pub fn lookup(name: &str) -> Option<Field> {
        let t = dynamic().read().unwrap_or_else(|e| e.into_inner());
        t.1.get(name).map(|&i| Field(i))
    }

    /// The dotted ECS name.
    pub fn name(self) -> &'static str {
        if let Some(n) = KNOWN.get(self.0 as usize) {
            return n;
        }
        let t = dynamic().read().unwrap_or_else(|e| e.into_inner());
        t.0.get(self.0 as usize).copied().unwrap_or("unknown")
    }

    /// Whether this is one of the built-in ECS fields.
    pub fn is_known(self) -> bool {
        (self.0 as usize) < KNOWN.len()
    }
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_round_trip() {
        assert_eq!(Field::USER_NAME.name(), "user.name");
        assert_eq!(Field::lookup("source.ip"), Some(Field::SOURCE_IP));
        assert!(Field::USER_NAME.is_known());
    }

    #[test]
    fn interning_is_stable() {
        let a = Field::intern("zeek.conn.history");
        let b = Field::intern("zeek.conn.history");
        assert_eq!(a, b);
        assert!(!a.is_known());
        assert_eq!(a.name(), "zeek.conn.history");
    }
}
