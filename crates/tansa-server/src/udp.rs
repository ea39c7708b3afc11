//! UDP syslog behind a full queue. A datagram cannot wait (the sender does not know; the
//! kernel drops what the socket buffer cannot hold), so while the processor's queue is full
//! the datagrams go to a bounded disk spool (DATA/spool/udp-ADDRESS-PORT, [`crate::spool`])
//! and a feeder thread hands them to the processor in order; datagrams arriving meanwhile
//! queue behind them. Only when the spool is full is a datagram dropped: counted per
//! listener (`tansa_syslog_dropped_total`), in `tansa_lines_dropped_total`, and alerted
//! (`tansa.collect.dropped`). The datagrams the kernel dropped before Tansa read them are
//! counted too (`tansa_syslog_kernel_drops_total`, [`syslog::kernel_drops`]).
//!
//! The feeder remembers how far the processor has committed (`sent.json`): a spool left by
//! a stop or a crash is fed at the next start, and what a crash fed twice is dropped by the
//! stream's checkpoint (records keep their stream and offset).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use tansa_collect::syslog::{self, Delivery};

use crate::live::{Committed, Input, Metrics};
use crate::spool::{self, Cursor, SpoolWriter};

/// Staged datagrams are written once they take this many bytes (or when the feeder reads).
const STAGE: usize = 256 << 10;

/// Records handed to the processor at a time, and such hand-overs awaiting their commit.
const CHUNK: usize = 5000;
const IN_FLIGHT: usize = 8;

/// The spool of one UDP listener.
pub(crate) struct UdpSpool {
    dir: PathBuf,
    max: u64,
    state: Mutex<State>,
    /// Bytes spooled and not yet handed to the processor.
    bytes: AtomicU64,
    counters: Arc<syslog::Counters>,
}

/// What is staged when the server stops is written: fed at the next start.
impl Drop for UdpSpool {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Err((e, lost)) = st.writer.flush() {
            eprintln!(
                "tansa: udp spool {}: {e} ({lost} datagrams lost)",
                self.dir.display()
            );
        }
    }
}

impl std::fmt::Debug for UdpSpool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSpool")
            .field("dir", &self.dir)
            .field("waiting", &self.waiting())
            .finish()
    }
}

struct State {
    writer: SpoolWriter,
    /// Datagrams go to the spool (it holds some not yet fed: later ones queue behind).
    active: bool,
}

impl UdpSpool {
    /// Opens (or creates) the spool of the listener at `addr` under DATA/spool.
    pub(crate) fn open(
        data: &Path,
        addr: std::net::SocketAddr,
        max_mb: u64,
        counters: Arc<syslog::Counters>,
    ) -> std::io::Result<Self> {
        let dir = data
            .join("spool")
            .join(format!("udp-{}-{}", addr.ip(), addr.port()).replace([':', '/'], "_"));
        let writer = SpoolWriter::open(&dir)?;
        let cursor = start_cursor(&dir);
        // what an earlier run left is fed before anything new
        let left: u64 = spool::segments(&dir)
            .into_iter()
            .filter(|&s| s >= cursor.segment)
            .filter_map(|s| std::fs::metadata(spool::segment_path(&dir, s)).ok())
            .map(|m| m.len())
            .sum::<u64>()
            .saturating_sub(cursor.pos);
        Ok(UdpSpool {
            dir,
            max: max_mb << 20,
            state: Mutex::new(State {
                writer,
                active: left > 0,
            }),
            bytes: AtomicU64::new(left),
            counters,
        })
    }

    /// Bytes waiting in the spool.
    pub(crate) fn waiting(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The listener's sink: to the queue when it has room and the spool is empty, else to
    /// the spool; dropped (and counted) when the spool is full. False once the server stops.
    pub(crate) fn sink(
        self: &Arc<Self>,
        source: usize,
        tx: Sender<Input>,
        metrics: Arc<Metrics>,
    ) -> syslog::Sink {
        let counters = self.counters.clone();
        let sp = self.clone();
        Arc::new(move |d: Delivery| {
            let mut st = sp.state.lock().unwrap_or_else(|e| e.into_inner());
            let d = if st.active {
                d
            } else {
                match tx.try_send(Input::Net {
                    source,
                    delivery: d,
                    done: None,
                }) {
                    Ok(()) => {
                        metrics.queued.fetch_add(1, Ordering::Relaxed);
                        return true;
                    }
                    Err(TrySendError::Disconnected(_)) => return false,
                    Err(TrySendError::Full(Input::Net { delivery, .. })) => delivery,
                    Err(TrySendError::Full(_)) => return true,
                }
            };
            let n = d.messages.len() as u64;
            let bytes: u64 = d
                .messages
                .iter()
                .map(|(m, _)| spool::spooled_bytes(m))
                .sum();
            if sp.bytes.load(Ordering::Relaxed) + bytes > sp.max {
                counters.dropped.fetch_add(n, Ordering::Relaxed);
                metrics.dropped.fetch_add(n, Ordering::Relaxed);
                return true;
            }
            let host = d.stream.peer.ip().to_string();
            // staged in memory and written in large pieces (a write per datagram would slow
            // the reading down to where the kernel drops); the feeder writes what is staged
            // before it reads
            st.writer
                .stage(d.stream.id, &d.stream.name, &host, &d.messages, d.received);
            st.active = true;
            sp.bytes.fetch_add(bytes, Ordering::Relaxed);
            counters.spooled.fetch_add(n, Ordering::Relaxed);
            if st.writer.staged() >= STAGE {
                sp.write_staged(&mut st, &metrics);
            }
            true
        })
    }

    /// Writes the staged datagrams; those a failed write lost are counted as dropped.
    fn write_staged(&self, st: &mut State, metrics: &Metrics) {
        if let Err((e, lost)) = st.writer.flush() {
            eprintln!("tansa: udp spool {}: {e}", self.dir.display());
            self.counters.dropped.fetch_add(lost, Ordering::Relaxed);
            metrics.dropped.fetch_add(lost, Ordering::Relaxed);
        }
    }

    /// Feeds the spool to the processor until `stop`, in order; the cursor moves once the
    /// records it passes are committed.
    pub(crate) fn feed(
        &self,
        source: usize,
        tx: &Sender<Input>,
        metrics: &Metrics,
        stop: &AtomicBool,
    ) {
        let cursor_path = self.dir.join("sent.json");
        let mut committed = start_cursor(&self.dir);
        let mut next = committed;
        let mut inflight: std::collections::VecDeque<(Vec<Committed>, Cursor)> = Default::default();
        while !stop.load(Ordering::Relaxed) {
            // hand-overs committed: the cursor moves past them
            while let Some((waits, _)) = inflight.front_mut() {
                waits.retain_mut(|w| {
                    matches!(
                        w.try_recv(),
                        Err(tokio::sync::oneshot::error::TryRecvError::Empty)
                    )
                });
                if !waits.is_empty() {
                    break;
                }
                if let Some((_, after)) = inflight.pop_front() {
                    committed = after;
                    let _ = crate::files::write_atomic(
                        &cursor_path,
                        serde_json::to_string(&committed)
                            .unwrap_or_default()
                            .as_bytes(),
                        0o644,
                    );
                    spool::release(&self.dir, committed);
                }
            }
            if inflight.len() >= IN_FLIGHT {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                self.write_staged(&mut st, metrics);
            }
            let batch = match spool::read_batch(&self.dir, next, CHUNK) {
                Ok(Some(b)) => Some(b),
                Ok(None) => {
                    // nothing more: datagrams go to the queue again (checked under the
                    // writer's lock, so that none is appended meanwhile)
                    let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    // (what was staged since is written first)
                    self.write_staged(&mut st, metrics);
                    match spool::read_batch(&self.dir, next, CHUNK) {
                        Ok(None) => {
                            st.active = false;
                            None
                        }
                        Ok(b) => b,
                        Err(_) => None,
                    }
                }
                Err(e) => {
                    eprintln!("tansa: udp spool {}: {e}", self.dir.display());
                    None
                }
            };
            let Some((batch, after)) = batch else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let mut waits = Vec::new();
            let mut bytes = 0;
            for s in batch.streams {
                let received = s.lines.iter().map(|l| l.read).min().unwrap_or_default();
                bytes += s
                    .lines
                    .iter()
                    .map(|l| spool::spooled_bytes(&l.text))
                    .sum::<u64>();
                let peer = s
                    .host
                    .as_deref()
                    .and_then(|h| h.parse().ok())
                    .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
                let (done, wait) = tokio::sync::oneshot::channel();
                let delivery = Delivery {
                    stream: Arc::new(syslog::Stream {
                        id: s.id,
                        name: s.path,
                        peer: std::net::SocketAddr::new(peer, 0),
                        identity: None,
                    }),
                    messages: s.lines.into_iter().map(|l| (l.text, l.offset)).collect(),
                    received,
                    closed: false,
                };
                metrics.queued.fetch_add(1, Ordering::Relaxed);
                if tx
                    .send(Input::Net {
                        source,
                        delivery,
                        done: Some(done),
                    })
                    .is_err()
                {
                    return;
                }
                waits.push(wait);
            }
            let _ = self
                .bytes
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v.saturating_sub(bytes))
                });
            inflight.push_back((waits, after));
            next = after;
        }
    }
}

/// Where feeding starts: after the records the last run saw committed.
fn start_cursor(dir: &Path) -> Cursor {
    let mut c: Cursor = std::fs::read(dir.join("sent.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if c.segment == 0 {
        c.segment = spool::segments(dir).first().copied().unwrap_or(1);
    }
    c
}

/// Lines lost to a full spool become one alert per episode (`tansa.collect.dropped`), grown
/// while drops go on; a new one after ten quiet minutes.
#[derive(Debug, Default)]
pub(crate) struct DropWatch {
    seen: u64,
    alert: Option<tansa_detect::Alert>,
}

impl DropWatch {
    /// The alert to store when `dropped` (the server's count) has grown.
    pub(crate) fn check(
        &mut self,
        dropped: u64,
        collector: &str,
        now: i64,
    ) -> Option<tansa_detect::Alert> {
        const QUIET: i64 = 600 * 1_000_000_000;
        if dropped <= self.seen {
            return None;
        }
        let n = dropped - self.seen;
        self.seen = dropped;
        match &mut self.alert {
            Some(a) if now - a.last_seen < QUIET => {
                a.count += n;
                a.last_seen = now;
            }
            _ => {
                let rule_id = "tansa.collect.dropped";
                let key = tansa_detect::Key::Text(collector.into());
                self.alert = Some(tansa_detect::Alert {
                    id: tansa_detect::alert_id(rule_id, &key, now),
                    rule_id,
                    rule_title: "Log lines dropped: UDP syslog arrived faster than it could be \
                                 stored and the disk spool was full",
                    severity: tansa_detect::Severity::High,
                    // a flood that drowns the logs is also a way to hide in them
                    tags: &["attack.defense_evasion", "attack.t1562.006"],
                    first_seen: now,
                    last_seen: now,
                    count: n,
                    key_field: "agent.id",
                    key,
                    host: Some(collector.to_owned()),
                    source_ip: None,
                    user: None,
                    events: Vec::new(),
                    simulated: false,
                    threat: None,
                });
            }
        }
        self.alert.clone()
    }
}
