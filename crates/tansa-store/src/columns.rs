//! The events table: its columns, the ECS names users know them by, and the conversion of a
//! batch of [`Event`]s into one Arrow record batch (what the DuckDB appender takes whole —
//! one call per batch, no per-row statement).

use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayRef, Date32Builder, Int16Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder, TimestampMillisecondBuilder, UInt16Builder, UInt32Builder,
    UInt64Builder, UInt8Builder,
};
use duckdb::arrow::datatypes::{DataType, Field as AField, Schema, TimeUnit};
use duckdb::arrow::record_batch::RecordBatch;
use tansa_event::{Event, Field, Val};

/// SQL type of a column, and how search compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// An address kept as text; search accepts CIDR blocks for it.
    Ip,
    Int,
    Time,
    Date,
    Json,
}

/// One column of the view `events`: its name in SQL, its ECS name (what `tansa search`
/// accepts), its type as stored (see [`STORED`]) and, for the few columns the view derives
/// from stored ones, the expression.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ecs: &'static str,
    pub kind: Kind,
    pub sql_type: &'static str,
    pub derived: Option<&'static str>,
}

const fn col(name: &'static str, ecs: &'static str, kind: Kind, sql_type: &'static str) -> Column {
    Column {
        name,
        ecs,
        kind,
        sql_type,
        derived: None,
    }
}

const fn derived(name: &'static str, ecs: &'static str, kind: Kind, expr: &'static str) -> Column {
    Column {
        name,
        ecs,
        kind,
        sql_type: "",
        derived: Some(expr),
    }
}

/// Stored columns that the view `events` replaces with derived ones. An event id is the source
/// number and the offset (`id` would repeat `log_offset`: 3 bytes an event once a day is sorted
/// by address), and the timestamp as written is a slice of the raw line (6 bytes an event),
/// kept as text only when it is not.
pub const STORED_ONLY: &[(&str, &str)] = &[
    ("source", "UINTEGER"),
    ("time_at", "USMALLINT"),
    ("time_len", "UTINYINT"),
];

/// The columns of `events`, in view order.
pub const COLUMNS: &[Column] = &[
    derived(
        "id",
        "event.id",
        Kind::Int,
        "(CAST(source AS UBIGINT) << 40) | log_offset",
    ),
    col("day", "day", Kind::Date, "DATE"),
    col("ts", "@timestamp", Kind::Time, "TIMESTAMP"),
    // milliseconds are enough for arrival times and take fewer bits
    derived(
        "ingested",
        "event.ingested",
        Kind::Time,
        "CAST(ingested AS TIMESTAMP)",
    ),
    derived(
        "time_text",
        "event.created",
        Kind::Text,
        "coalesce(time_text, substr(raw, time_at + 1, time_len))",
    ),
    col("kind", "event.kind", Kind::Text, "VARCHAR"),
    col("dataset", "event.dataset", Kind::Text, "VARCHAR"),
    col("category", "event.category", Kind::Text, "VARCHAR"),
    col("type", "event.type", Kind::Text, "VARCHAR"),
    col("action", "event.action", Kind::Text, "VARCHAR"),
    col("outcome", "event.outcome", Kind::Text, "VARCHAR"),
    col("host", "host.name", Kind::Text, "VARCHAR"),
    col("source_ip", "source.ip", Kind::Ip, "VARCHAR"),
    col("source_port", "source.port", Kind::Int, "USMALLINT"),
    col("destination_ip", "destination.ip", Kind::Ip, "VARCHAR"),
    col(
        "destination_port",
        "destination.port",
        Kind::Int,
        "USMALLINT",
    ),
    col("user_name", "user.name", Kind::Text, "VARCHAR"),
    col("process_name", "process.name", Kind::Text, "VARCHAR"),
    col("process_pid", "process.pid", Kind::Int, "BIGINT"),
    col(
        "command_line",
        "process.command_line",
        Kind::Text,
        "VARCHAR",
    ),
    col("url", "url.original", Kind::Text, "VARCHAR"),
    col("http_method", "http.request.method", Kind::Text, "VARCHAR"),
    col(
        "http_status",
        "http.response.status_code",
        Kind::Int,
        "SMALLINT",
    ),
    col("user_agent", "user_agent.original", Kind::Text, "VARCHAR"),
    col("referrer", "http.request.referrer", Kind::Text, "VARCHAR"),
    col("bytes", "http.response.body.bytes", Kind::Int, "BIGINT"),
    col("log_path", "log.file.path", Kind::Text, "VARCHAR"),
    col("log_offset", "log.offset", Kind::Int, "UBIGINT"),
    col("agent_id", "agent.id", Kind::Text, "VARCHAR"),
    // JSON text (VARCHAR: DuckDB's JSON functions take it as it is, without re-parsing every
    // object on insert)
    col("fields", "fields", Kind::Json, "VARCHAR"),
    // The raw line is most of an event's bytes: zstd stores auth.log lines in about half the
    // space of DuckDB's default string compression (dictionary/FSST) and writes them faster.
    col(
        "raw",
        "message",
        Kind::Text,
        "VARCHAR USING COMPRESSION zstd",
    ),
    // enrichment of source.ip (the rest of what is known per address is in `addresses`);
    // last, so that a store made before them gains them with ALTER TABLE ADD COLUMN
    col(
        "source_country",
        "source.geo.country_iso_code",
        Kind::Text,
        "VARCHAR",
    ),
    col("source_asn", "source.as.number", Kind::Int, "UINTEGER"),
    col(
        "source_as_org",
        "source.as.organization.name",
        Kind::Text,
        "VARCHAR",
    ),
];

/// Columns added by schema version 5 (enrichment): what a version-4 store gains.
pub const ADDED_IN_5: &[&str] = &["source_country", "source_asn", "source_as_org"];

/// The column an ECS name (or a column name) refers to.
pub fn column(name: &str) -> Option<&'static Column> {
    COLUMNS.iter().find(|c| c.ecs == name || c.name == name)
}

/// The stored columns of the hot table (and of cold Parquet files), in table order: name and
/// SQL type.
pub fn stored() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = STORED_ONLY.to_vec();
    for c in COLUMNS {
        match c.name {
            "id" => {}
            "ingested" => out.push(("ingested", "TIMESTAMP_MS")),
            "time_text" => out.push(("time_text", "VARCHAR")),
            _ => out.push((c.name, c.sql_type)),
        }
    }
    out
}

/// `CREATE TABLE` for the hot events table.
pub fn create_table(table: &str) -> String {
    let cols: Vec<String> = stored()
        .iter()
        .map(|(name, ty)| format!("{name} {ty}"))
        .collect();
    format!("CREATE TABLE IF NOT EXISTS {table} ({})", cols.join(", "))
}

/// The select list of the view `events` over stored rows.
pub fn view_select() -> String {
    COLUMNS
        .iter()
        .map(|c| match c.derived {
            Some(e) => format!("{e} AS {}", c.name),
            None => c.name.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Event fields with a column of their own (the rest go to `fields`).
const OWN_COLUMN: &[Field] = &[
    Field::USER_NAME,
    Field::PROCESS_NAME,
    Field::PROCESS_PID,
    Field::PROCESS_COMMAND_LINE,
    Field::URL_ORIGINAL,
    Field::HTTP_METHOD,
    Field::HTTP_STATUS,
    Field::USER_AGENT,
    Field::HTTP_REFERRER,
    Field::HTTP_BYTES,
    Field::HOST_NAME,
    Field::MESSAGE,
];

/// Bits of an event id that hold the line's offset in its source (offsets up to 1 TiB).
pub const OFFSET_BITS: u32 = 40;

/// The id of the line at `offset` of the store's source number `source`: the same in every run
/// (and for a rotated copy of the file, which has the same fingerprint, so the same number).
/// Ids of one source grow with the offset, so DuckDB stores them in about a byte each where a
/// hash would take eight.
pub fn event_id(source: u32, offset: u64) -> u64 {
    (u64::from(source) << OFFSET_BITS) | (offset & ((1 << OFFSET_BITS) - 1))
}

const DAY_NS: i64 = 86_400_000_000_000;

fn schema() -> Arc<Schema> {
    let fields: Vec<AField> = stored()
        .iter()
        .map(|&(name, ty)| {
            let t = match ty.split(' ').next().unwrap_or(ty) {
                "UBIGINT" => DataType::UInt64,
                "UINTEGER" => DataType::UInt32,
                "UTINYINT" => DataType::UInt8,
                "TIMESTAMP_MS" => DataType::Timestamp(TimeUnit::Millisecond, None),
                "DATE" => DataType::Date32,
                "TIMESTAMP" => DataType::Timestamp(TimeUnit::Microsecond, None),
                "USMALLINT" => DataType::UInt16,
                "BIGINT" => DataType::Int64,
                "SMALLINT" => DataType::Int16,
                _ => DataType::Utf8,
            };
            AField::new(name, t, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Builds the record batch of `events`; `sources[i]` is the store's number for event i's
/// source (for the event id).
pub fn record_batch(events: &[Event], sources: &[u32]) -> RecordBatch {
    let n = events.len();
    let text = || StringBuilder::with_capacity(n, n * 8);
    let mut source = UInt32Builder::with_capacity(n);
    let mut time_at = UInt16Builder::with_capacity(n);
    let mut time_len = UInt8Builder::with_capacity(n);
    let mut day = Date32Builder::with_capacity(n);
    let mut ts = TimestampMicrosecondBuilder::with_capacity(n);
    let mut ingested = TimestampMillisecondBuilder::with_capacity(n);
    let mut time_text = text();
    let mut kind = text();
    let mut dataset = text();
    let mut category = text();
    let mut etype = text();
    let mut action = text();
    let mut outcome = text();
    let mut host = text();
    let mut source_ip = text();
    let mut source_port = UInt16Builder::with_capacity(n);
    let mut destination_ip = text();
    let mut destination_port = UInt16Builder::with_capacity(n);
    let mut user_name = text();
    let mut process_name = text();
    let mut process_pid = Int64Builder::with_capacity(n);
    let mut command_line = text();
    let mut url = text();
    let mut http_method = text();
    let mut http_status = Int16Builder::with_capacity(n);
    let mut user_agent = text();
    let mut referrer = text();
    let mut bytes = Int64Builder::with_capacity(n);
    let mut log_path = text();
    let mut log_offset = UInt64Builder::with_capacity(n);
    let mut agent_id = text();
    let mut fields = text();
    let mut raw = StringBuilder::with_capacity(n, events.iter().map(|e| e.raw.len()).sum());
    let mut source_country = text();
    let mut source_asn = UInt32Builder::with_capacity(n);
    let mut source_as_org = text();

    let mut ipbuf = String::with_capacity(40);
    let mut json = String::with_capacity(256);
    for (i, ev) in events.iter().enumerate() {
        source.append_value(sources.get(i).copied().unwrap_or(0));
        day.append_value(ev.timestamp.div_euclid(DAY_NS) as i32);
        ts.append_value(ev.timestamp.div_euclid(1000));
        ingested.append_value(ev.ingested.div_euclid(1_000_000));
        match ev
            .time_text
            .and_then(|(s, e)| time_slice(ev.raw_str(), s, e))
        {
            Some((at, len)) => {
                time_at.append_value(at);
                time_len.append_value(len);
                time_text.append_null();
            }
            None => {
                time_at.append_null();
                time_len.append_null();
                time_text.append_option(ev.time_text.map(|(s, e)| ev.span(s, e)));
            }
        }
        kind.append_value(ev.kind.as_str());
        dataset.append_option((!ev.dataset.is_empty()).then_some(ev.dataset));
        category.append_option(ev.category.as_str());
        etype.append_option(ev.event_type.as_str());
        action.append_option(ev.action);
        outcome.append_option(ev.outcome.as_str());
        host.append_option(ev.host_name());
        for (b, ip) in [
            (&mut source_ip, ev.source_ip),
            (&mut destination_ip, ev.destination_ip),
        ] {
            match ip {
                Some(ip) => {
                    use std::fmt::Write;
                    ipbuf.clear();
                    let _ = write!(ipbuf, "{ip}");
                    b.append_value(&ipbuf);
                }
                None => b.append_null(),
            }
        }
        source_port.append_option(ev.source_port);
        destination_port.append_option(ev.destination_port);
        let s = |f| ev.get(f).map(|v| ev.val_str(v));
        user_name.append_option(s(Field::USER_NAME));
        process_name.append_option(s(Field::PROCESS_NAME));
        process_pid.append_option(match ev.get(Field::PROCESS_PID) {
            Some(Val::Int(i)) => Some(*i),
            _ => None,
        });
        command_line.append_option(s(Field::PROCESS_COMMAND_LINE));
        url.append_option(s(Field::URL_ORIGINAL));
        http_method.append_option(s(Field::HTTP_METHOD));
        http_status.append_option(match ev.get(Field::HTTP_STATUS) {
            Some(Val::Int(i)) => i16::try_from(*i).ok(),
            _ => None,
        });
        user_agent.append_option(s(Field::USER_AGENT));
        referrer.append_option(s(Field::HTTP_REFERRER));
        bytes.append_option(match ev.get(Field::HTTP_BYTES) {
            Some(Val::Int(i)) => Some(*i),
            _ => None,
        });
        let url_path = s(Field::URL_ORIGINAL);
        let url_path = url_path
            .as_deref()
            .map(|u| u.split('?').next().unwrap_or(u));
        log_path.append_value(&*ev.origin.path);
        log_offset.append_value(ev.offset);
        agent_id.append_value(&*ev.origin.agent_id);
        json.clear();
        for (f, v) in &ev.fields {
            if OWN_COLUMN.contains(f) {
                continue;
            }
            // url.path as the part of url.original before `?` is left to the query side
            // (search derives it); other paths (absolute URLs, decoded) are kept
            if *f == Field::URL_PATH && url_path.is_some_and(|p| ev.val_str(v) == p) {
                continue;
            }
            json.push(if json.is_empty() { '{' } else { ',' });
            push_json_str(&mut json, f.name());
            json.push(':');
            match v {
                Val::Int(i) => {
                    use std::fmt::Write;
                    let _ = write!(json, "{i}");
                }
                Val::Bool(b) => json.push_str(if *b { "true" } else { "false" }),
                other => push_json_str(&mut json, &ev.val_str(other)),
            }
        }
        if json.is_empty() {
            fields.append_null();
        } else {
            json.push('}');
            fields.append_value(&json);
        }
        raw.append_value(ev.raw_str());
        let info = ev.source_info.as_deref();
        source_country.append_option(info.and_then(|i| i.country_iso_code.as_deref()));
        source_asn.append_option(info.and_then(|i| i.as_number));
        source_as_org.append_option(info.and_then(|i| i.as_organization.as_deref()));
    }
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(source.finish()),
        Arc::new(time_at.finish()),
        Arc::new(time_len.finish()),
        Arc::new(day.finish()),
        Arc::new(ts.finish()),
        Arc::new(ingested.finish()),
        Arc::new(time_text.finish()),
        Arc::new(kind.finish()),
        Arc::new(dataset.finish()),
        Arc::new(category.finish()),
        Arc::new(etype.finish()),
        Arc::new(action.finish()),
        Arc::new(outcome.finish()),
        Arc::new(host.finish()),
        Arc::new(source_ip.finish()),
        Arc::new(source_port.finish()),
        Arc::new(destination_ip.finish()),
        Arc::new(destination_port.finish()),
        Arc::new(user_name.finish()),
        Arc::new(process_name.finish()),
        Arc::new(process_pid.finish()),
        Arc::new(command_line.finish()),
        Arc::new(url.finish()),
        Arc::new(http_method.finish()),
        Arc::new(http_status.finish()),
        Arc::new(user_agent.finish()),
        Arc::new(referrer.finish()),
        Arc::new(bytes.finish()),
        Arc::new(log_path.finish()),
        Arc::new(log_offset.finish()),
        Arc::new(agent_id.finish()),
        Arc::new(fields.finish()),
        Arc::new(raw.finish()),
        Arc::new(source_country.finish()),
        Arc::new(source_asn.finish()),
        Arc::new(source_as_org.finish()),
    ];
    RecordBatch::try_new(schema(), arrays).expect("the builders follow the schema")
}

/// The stored columns of `address_marks`: one row per address with enrichment and batch.
pub const ADDRESS_COLUMNS: &str = "ip VARCHAR, scope VARCHAR, continent VARCHAR, country VARCHAR, \
     country_name VARCHAR, region VARCHAR, city VARCHAR, lat DOUBLE, lon DOUBLE, asn UINTEGER, \
     as_org VARCHAR, flags VARCHAR, scanner VARCHAR, first_seen TIMESTAMP, last_seen TIMESTAMP, \
     events UBIGINT";

/// The `address_marks` rows of a batch: each enriched address once, with when it was seen and
/// in how many events. `None` when no event carries enrichment.
pub fn address_batch(events: &[Event]) -> Option<RecordBatch> {
    use duckdb::arrow::array::Float64Builder;
    use std::collections::HashMap;
    use std::net::IpAddr;
    use tansa_event::{InfoPart, IpInfo};
    let mut seen: HashMap<IpAddr, (&IpInfo, i64, i64, u64)> = HashMap::new();
    for ev in events {
        for (ip, info) in [
            (ev.source_ip, &ev.source_info),
            (ev.destination_ip, &ev.destination_info),
        ] {
            if let (Some(ip), Some(info)) = (ip, info.as_deref()) {
                let e = seen
                    .entry(ip)
                    .or_insert((info, ev.timestamp, ev.timestamp, 0));
                e.1 = e.1.min(ev.timestamp);
                e.2 = e.2.max(ev.timestamp);
                e.3 += 1;
            }
        }
    }
    if seen.is_empty() {
        return None;
    }
    let n = seen.len();
    let text = || StringBuilder::with_capacity(n, n * 8);
    let (mut ip_b, mut scope, mut continent, mut country, mut country_name) =
        (text(), text(), text(), text(), text());
    let (mut region, mut city, mut as_org, mut flags, mut scanner) =
        (text(), text(), text(), text(), text());
    let (mut lat, mut lon) = (
        Float64Builder::with_capacity(n),
        Float64Builder::with_capacity(n),
    );
    let mut asn = UInt32Builder::with_capacity(n);
    let mut first = TimestampMicrosecondBuilder::with_capacity(n);
    let mut last = TimestampMicrosecondBuilder::with_capacity(n);
    let mut count = UInt64Builder::with_capacity(n);
    let mut rows: Vec<_> = seen.into_iter().collect();
    rows.sort_by_key(|(ip, _)| *ip);
    for (ip, (info, f, l, c)) in rows {
        ip_b.append_value(ip.to_string());
        scope.append_option(info.scope);
        continent.append_option(info.continent_code.as_deref());
        country.append_option(info.country_iso_code.as_deref());
        country_name.append_option(info.country_name.as_deref());
        region.append_option(info.region_name.as_deref());
        city.append_option(info.city_name.as_deref());
        lat.append_option(info.location.map(|l| l.0));
        lon.append_option(info.location.map(|l| l.1));
        asn.append_option(info.as_number);
        as_org.append_option(info.as_organization.as_deref());
        flags.append_option(info.part(InfoPart::Flags));
        scanner.append_option(info.scanner.as_deref());
        first.append_value(f.div_euclid(1000));
        last.append_value(l.div_euclid(1000));
        count.append_value(c);
    }
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(ip_b.finish()),
        Arc::new(scope.finish()),
        Arc::new(continent.finish()),
        Arc::new(country.finish()),
        Arc::new(country_name.finish()),
        Arc::new(region.finish()),
        Arc::new(city.finish()),
        Arc::new(lat.finish()),
        Arc::new(lon.finish()),
        Arc::new(asn.finish()),
        Arc::new(as_org.finish()),
        Arc::new(flags.finish()),
        Arc::new(scanner.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        Arc::new(count.finish()),
    ];
    let fields: Vec<AField> = ADDRESS_COLUMNS
        .split(", ")
        .map(|c| {
            let (name, ty) = c.split_once(' ').unwrap_or((c, "VARCHAR"));
            let t = match ty {
                "DOUBLE" => DataType::Float64,
                "UINTEGER" => DataType::UInt32,
                "UBIGINT" => DataType::UInt64,
                "TIMESTAMP" => DataType::Timestamp(TimeUnit::Microsecond, None),
                _ => DataType::Utf8,
            };
            AField::new(name.trim(), t, true)
        })
        .collect();
    Some(
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .expect("the builders follow the schema"),
    )
}

/// Where the view finds the timestamp text `raw[start..end]` again with `substr` (which counts
/// characters): only for an ASCII prefix, so that bytes and characters agree.
fn time_slice(raw: &str, start: u32, end: u32) -> Option<(u16, u8)> {
    let prefix = raw.get(..end as usize)?;
    if start > end || !prefix.is_ascii() {
        return None;
    }
    Some((u16::try_from(start).ok()?, u8::try_from(end - start).ok()?))
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        push_json_str(&mut s, "a\"b\\c\n\u{1}é");
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\n\u{1}é");
    }

    #[test]
    fn event_ids_are_stable_and_distinct() {
        assert_eq!(event_id(1, 2), event_id(1, 2));
        assert_ne!(event_id(1, 2), event_id(2, 1));
        let ids: std::collections::HashSet<u64> = (1..100)
            .flat_map(|s| (0..1000).map(move |o| event_id(s, o * 97 + (1 << 39))))
            .collect();
        assert_eq!(ids.len(), 99 * 1000);
    }

    #[test]
    fn every_column_has_one_name() {
        for c in COLUMNS {
            assert_eq!(column(c.ecs).unwrap().name, c.name);
            assert_eq!(column(c.name).unwrap().name, c.name);
        }
        assert_eq!(schema().fields().len(), stored().len());
        assert_eq!(stored().len(), COLUMNS.len() - 1 + STORED_ONLY.len());
    }

    #[test]
    fn time_text_is_a_slice_only_after_ascii() {
        assert_eq!(time_slice("Mar 14 00:00:00 web01", 0, 15), Some((0, 15)));
        assert_eq!(time_slice("é [10/Oct/2000:13:55:36 -0700]", 4, 30), None);
        assert_eq!(time_slice("short", 0, 15), None);
    }
}
