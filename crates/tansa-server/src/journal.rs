//! The systemd journal as a source: `journalctl -o json --follow` (no maintained crate reads
//! journal files without linking libsystemd), each entry turned into the RFC 3339 syslog
//! line journald would have forwarded (`TIME HOST IDENT[PID]: MESSAGE`), so that the same
//! parsers read it as from `/var/log`.
//!
//! An entry's offset in its stream is its sequence number (the `i=` of its cursor; the stream
//! is the journal's sequence-number id `s=`), so a restart that reads an entry again is
//! de-duplicated against the store's checkpoint. The cursor of the last committed entry is
//! saved (`DATA/journal-ID.cursor`) and reading resumes after it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use serde::Deserialize;
use serde_json::Value;

use crate::config::Start;
use crate::live::{Committed, Input, Metrics, Shipped};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSource {
    /// A directory of journal files (default: the system journal).
    pub directory: Option<PathBuf>,
    /// Only these units (`journalctl -u`).
    #[serde(default)]
    pub units: Vec<String>,
    #[serde(default)]
    pub start: Start,
    /// The `journalctl` to run.
    #[serde(default = "journalctl")]
    pub journalctl: PathBuf,
}

fn journalctl() -> PathBuf {
    PathBuf::from("journalctl")
}

/// An entry as a line: (sequence-number id, sequence number, cursor, line).
pub fn entry_line(v: &Value) -> Option<(String, u64, String, String)> {
    let cursor = v["__CURSOR"].as_str()?;
    let mut seqid = None;
    let mut seq = None;
    for part in cursor.split(';') {
        if let Some(s) = part.strip_prefix("s=") {
            seqid = Some(s.to_owned());
        } else if let Some(i) = part.strip_prefix("i=") {
            seq = u64::from_str_radix(i, 16).ok();
        }
    }
    let text = |k: &str| -> Option<String> {
        match &v[k] {
            Value::String(s) => Some(s.clone()),
            // binary fields come as arrays of bytes
            Value::Array(a) => Some(
                String::from_utf8_lossy(
                    &a.iter()
                        .filter_map(|b| b.as_u64().map(|b| b as u8))
                        .collect::<Vec<_>>(),
                )
                .into_owned(),
            ),
            _ => None,
        }
    };
    let us: i64 = text("__REALTIME_TIMESTAMP")?.parse().ok()?;
    let ts = jiff::Timestamp::from_microsecond(us).ok()?;
    let host = text("_HOSTNAME").unwrap_or_else(|| "-".into());
    let ident = text("SYSLOG_IDENTIFIER")
        .or_else(|| text("_COMM"))
        .unwrap_or_else(|| "journal".into());
    let pid = text("SYSLOG_PID").or_else(|| text("_PID"));
    let msg = text("MESSAGE")
        .unwrap_or_default()
        .replace(['\n', '\r'], " ");
    let stamp = ts.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00");
    let line = match pid {
        Some(p) => format!("{stamp} {host} {ident}[{p}]: {msg}"),
        None => format!("{stamp} {host} {ident}: {msg}"),
    };
    Some((seqid?, seq?, cursor.to_owned(), line))
}

fn spawn(j: &JournalSource, cursor: Option<&str>) -> std::io::Result<Child> {
    let mut c = Command::new(&j.journalctl);
    c.args(["-o", "json", "--follow", "--no-pager"]);
    if let Some(d) = &j.directory {
        c.arg("--directory").arg(d);
    }
    for u in &j.units {
        c.arg("-u").arg(u);
    }
    match (cursor, j.start) {
        (Some(cur), _) => {
            c.arg(format!("--after-cursor={cur}"));
        }
        (None, Start::Beginning) => {
            c.arg("--no-tail");
        }
        (None, Start::End) => {
            c.args(["-n", "0"]);
        }
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
}

/// Where the cursor of source `name` is kept.
pub fn cursor_path(data: &Path, j: &JournalSource) -> PathBuf {
    let key = j
        .directory
        .as_ref()
        .map_or("system".to_owned(), |d| d.display().to_string());
    let id = tansa_collect::fnv(&[key.as_bytes(), j.units.join(",").as_bytes()]);
    data.join(format!("journal-{id:016x}.cursor"))
}

/// The stream name of a journal source.
pub fn name(j: &JournalSource) -> String {
    match &j.directory {
        Some(d) => format!("journal://{}", d.display()),
        None => "journal://system".to_owned(),
    }
}

/// An entry read: its sequence-number id and number, its cursor, its line.
pub struct Entry {
    pub seqid: String,
    pub seq: u64,
    pub cursor: String,
    pub line: String,
}

/// Runs `journalctl` (again after it ends) until `stop` or until `on` returns false. `on`
/// gets batches of entries (up to 4096, or what arrived within 50 ms) and, at least every
/// 100 ms, `None`; `cursor` says where to resume at each start.
pub(crate) fn follow_entries(
    j: &JournalSource,
    stop: &AtomicBool,
    cursor: &dyn Fn() -> Option<String>,
    on: &mut dyn FnMut(Option<Vec<Entry>>) -> bool,
) {
    let name = name(j);
    let mut reported = false;
    while !stop.load(Ordering::Relaxed) {
        let started = std::time::Instant::now();
        let mut child = match spawn(j, cursor().as_deref().map(str::trim)) {
            Ok(c) => c,
            Err(e) => {
                if !reported {
                    eprintln!("tansa: {name}: {}: {e}", j.journalctl.display());
                    reported = true;
                }
                std::thread::sleep(Duration::from_secs(5));
                continue;
            }
        };
        let Some(out) = child.stdout.take() else {
            continue;
        };
        let (ltx, lrx) = crossbeam_channel::bounded::<String>(8192);
        let reader = std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if ltx.send(l).is_err() {
                    break;
                }
            }
        });
        let go_on = read_entries(&lrx, stop, on);
        let _ = child.kill();
        let _ = child.wait();
        let _ = reader.join();
        if !go_on {
            return;
        }
        if !stop.load(Ordering::Relaxed) {
            // journalctl ended (no journal yet, or an error): start it again, not in a hurry
            let pause = if started.elapsed() < Duration::from_secs(5) {
                5000
            } else {
                500
            };
            std::thread::sleep(Duration::from_millis(pause));
        }
    }
}

/// Hands batches of entries to `on` until journalctl ends (true) or `on` says stop (false).
fn read_entries(
    lines: &Receiver<String>,
    stop: &AtomicBool,
    on: &mut dyn FnMut(Option<Vec<Entry>>) -> bool,
) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) || !on(None) {
            return false;
        }
        let first = match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(l) => l,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(_) => return true,
        };
        let mut batch = vec![first];
        let until = std::time::Instant::now() + Duration::from_millis(50);
        while batch.len() < 4096 {
            match lines.recv_deadline(until) {
                Ok(l) => batch.push(l),
                Err(_) => break,
            }
        }
        let entries: Vec<Entry> = batch
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| entry_line(&v))
            .map(|(seqid, seq, cursor, line)| Entry {
                seqid,
                seq,
                cursor,
                line,
            })
            .collect();
        if !entries.is_empty() && !on(Some(entries)) {
            return false;
        }
    }
}

/// The server's journal source: entries to the processor (one stream per sequence-number
/// id, offsets = sequence numbers); the cursor saved once a batch is committed.
pub(crate) fn follow(
    j: JournalSource,
    cursor_file: PathBuf,
    tx: Sender<Input>,
    stop: &AtomicBool,
    metrics: &Metrics,
) {
    let name = name(&j);
    // batches sent, oldest first: the cursor to save once committed
    let mut waiting: std::collections::VecDeque<(String, Committed)> = Default::default();
    let read_cursor = || std::fs::read_to_string(&cursor_file).ok();
    follow_entries(&j, stop, &read_cursor, &mut |batch| {
        while let Some((_, w)) = waiting.front_mut() {
            match w.try_recv() {
                Ok(()) => {
                    if let Some((c, _)) = waiting.pop_front() {
                        let _ = std::fs::write(&cursor_file, &c);
                    }
                }
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => break,
                Err(_) => {
                    waiting.pop_front();
                }
            }
        }
        let Some(entries) = batch else {
            return true;
        };
        let received = tansa_event::now_nanos();
        for (seqid, lines, cursor) in group(entries, |e| e.seq) {
            let shipped = Shipped {
                stream: tansa_collect::fnv(&[name.as_bytes(), seqid.as_bytes()]),
                path: name.clone(),
                host: None,
                agent: None,
                format: None,
                next: lines.last().map(|l| l.1 + 1),
                lines,
                received,
                done: None,
            };
            let Some(wait) = shipped.send(&tx, metrics) else {
                return false;
            };
            waiting.push_back((cursor, wait));
        }
        true
    });
}

/// Entries of one sequence-number id: the id, the lines with their offsets, the last cursor.
pub(crate) type Group = (String, Vec<(Bytes, u64)>, String);

/// Consecutive entries grouped by sequence-number id (a stream each), with the offset
/// `offset` gives each entry.
pub(crate) fn group(entries: Vec<Entry>, mut offset: impl FnMut(&Entry) -> u64) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for e in entries {
        let off = offset(&e);
        match groups.last_mut() {
            Some(g) if g.0 == e.seqid => {
                g.1.push((Bytes::from(e.line), off));
                g.2 = e.cursor;
            }
            _ => groups.push((e.seqid, vec![(Bytes::from(e.line), off)], e.cursor)),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_syslog_lines_with_their_sequence_numbers() {
        let v: Value = serde_json::from_str(r#"{"__CURSOR":"s=095bf154;i=1f;b=01;m=3e8;t=660f4cdb8f000;x=1a","__REALTIME_TIMESTAMP":"1795454400000123","_HOSTNAME":"web01","SYSLOG_IDENTIFIER":"sshd","_PID":"77","MESSAGE":"Failed password for root from 203.0.113.9 port 22 ssh2"}"#).unwrap();
        let (id, seq, _, line) = entry_line(&v).unwrap();
        assert_eq!((id.as_str(), seq), ("095bf154", 31));
        assert_eq!(
            line,
            "2026-11-23T17:20:00.000123+00:00 web01 sshd[77]: Failed password for root from 203.0.113.9 port 22 ssh2"
        );
        // a binary message, no pid
        let v: Value = serde_json::from_str(r#"{"__CURSOR":"s=a;i=2","__REALTIME_TIMESTAMP":"0","SYSLOG_IDENTIFIER":"kernel","MESSAGE":[104,105,10,255]}"#).unwrap();
        let (_, _, _, line) = entry_line(&v).unwrap();
        assert_eq!(
            line,
            "1970-01-01T00:00:00.000000+00:00 - kernel: hi \u{fffd}"
        );
        assert!(entry_line(&serde_json::json!({"MESSAGE": "no cursor"})).is_none());
    }
}
