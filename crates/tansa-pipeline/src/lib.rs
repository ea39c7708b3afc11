//! Wiring of the stages for batch runs (`tansa analyze`, `tansa parse`).
//!
//! ```text
//!  file 1 ─ reader+parser thread ─┐ bounded
//!  file 2 ─ reader+parser thread ─┼─ channels ─► merge by @timestamp ─► detect ─► sinks
//!  file N ─ reader+parser thread ─┘
//! ```
//!
//! Each source is framed and parsed on its own thread into batches of events; batches travel
//! through bounded channels (back-pressure, bounded memory); the consumer merges the sources
//! in event-time order and feeds each event to the detection engine and to the caller's sink
//! (storage, printing) exactly once. The live server uses the same engine with live sources.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};
use tansa_detect::{Alert, Counters, Engine};
use tansa_event::{Event, Origin};
use tansa_parse::input::{self, ChunkReader, InputError, Source};
use tansa_parse::{Format, Parser, Stats, TimeCtx};

/// Events per batch sent between threads.
const BATCH: usize = 2048;
/// Batches buffered per source.
const QUEUE: usize = 4;

/// Errors that stop a run (unreadable inputs). Bad lines never do.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("no input files")]
    NoInput,
}

/// What to read and how to interpret it.
#[derive(Debug, Clone)]
pub struct Options {
    pub paths: Vec<PathBuf>,
    /// `Format::Auto` detects per file.
    pub format: Format,
    /// Zone for timestamps that carry none.
    pub timezone: jiff::tz::TimeZone,
    /// Reference "now" for year inference.
    pub now: jiff::Timestamp,
    /// Host name for all inputs (overrides directory names).
    pub host: Option<String>,
    /// Collector id written as `agent.id`.
    pub agent_id: String,
    /// Files at least this large are parsed by several threads (when cores allow).
    pub parallel_min_bytes: u64,
    /// Bytes read at a time (a parallel worker's unit of work).
    pub chunk_size: usize,
    /// Parser threads per source; 0 = the cores left once every source has one.
    pub workers: usize,
    /// The enrichment stage, run on the parser threads on every event.
    pub enrich: Arc<tansa_intel::Enricher>,
    /// Join multi-line records (stack traces, slow-log entries) before parsing; such
    /// sources are read by one thread.
    pub multiline: Vec<tansa_parse::multiline::Rule>,
}

impl Options {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        Options {
            paths,
            format: Format::Auto,
            timezone: jiff::tz::TimeZone::system(),
            now: jiff::Timestamp::now(),
            host: None,
            agent_id: "local".into(),
            parallel_min_bytes: PARALLEL_MIN_BYTES,
            chunk_size: input::CHUNK_SIZE,
            workers: 0,
            enrich: Arc::new(tansa_intel::Enricher::new(None, None)),
            multiline: Vec::new(),
        }
    }
}

/// One source's outcome.
#[derive(Debug, Clone)]
pub struct SourceSummary {
    pub path: PathBuf,
    pub host: Option<String>,
    pub stats: Stats,
    /// A read error that ended this source early (the lines before it were processed).
    pub error: Option<String>,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Summary {
    pub sources: Vec<SourceSummary>,
    /// Events processed (lines plus derived events).
    pub events: u64,
    pub alerts: Vec<Alert>,
    pub detection: Counters,
    /// Each suppression (where it is written, why) and the matches it held back.
    pub suppressed: Vec<(String, Option<String>, u64)>,
}

/// Shared progress counters, readable while a run goes on.
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes: AtomicU64,
    pub events: AtomicU64,
}

fn origin_for(src: &Source, opts: &Options) -> Arc<Origin> {
    let host = opts
        .host
        .clone()
        .or_else(|| src.host.clone())
        .unwrap_or_default();
    let mut o = Origin::file(&src.path.to_string_lossy(), &host);
    o.agent_id = opts.agent_id.as_str().into();
    Arc::new(o)
}

/// Files smaller than this are parsed by one thread.
const PARALLEL_MIN_BYTES: u64 = 8 << 20;
/// Bytes of the previous chunk a worker replays (without output) before its own chunk, so
/// that per-stream state (sshd connections, the detected format) carries over the boundary.
const CONTEXT_BYTES: usize = 64 << 10;

/// Reads and parses one source: in parallel when it is large and `workers` > 1, otherwise on
/// this thread. Batches go to `send` in file order.
fn read_source(
    src: &Source,
    opts: &Options,
    progress: &Progress,
    workers: usize,
    classifier: &tansa_detect::Classifier,
    recycle: &Receiver<Vec<Event>>,
    send: &dyn Fn(Vec<Event>) -> bool,
) -> (Stats, Option<String>) {
    let big = std::fs::metadata(&src.path)
        .map(|m| m.len() >= opts.parallel_min_bytes)
        .unwrap_or(false);
    let joined = tansa_parse::multiline::Rule::pick(&opts.multiline, &src.path.to_string_lossy());
    if workers > 1 && big && joined.is_none() {
        read_source_parallel(src, opts, progress, workers, classifier, recycle, send)
    } else {
        read_source_serial(src, opts, progress, recycle, send)
    }
}

fn new_parser(src: &Source, opts: &Options) -> Parser {
    let mut p = Parser::new(
        opts.format,
        origin_for(src, opts),
        TimeCtx::new(opts.timezone.clone(), opts.now),
    );
    if let Some(m) =
        tansa_parse::multiline::Rule::pick(&opts.multiline, &src.path.to_string_lossy())
    {
        p.set_multiline(m.clone());
    }
    p
}

/// Chunk `seq` of a file with the tail of the chunk before it.
struct Job {
    seq: u64,
    context: Option<bytes::Bytes>,
    chunk: input::Chunk,
}

/// One reader (this thread) and `workers` parsers; results are re-sequenced here.
fn read_source_parallel(
    src: &Source,
    opts: &Options,
    progress: &Progress,
    workers: usize,
    classifier: &tansa_detect::Classifier,
    recycle: &Receiver<Vec<Event>>,
    send: &dyn Fn(Vec<Event>) -> bool,
) -> (Stats, Option<String>) {
    let reader = match input::open(&src.path) {
        Ok(r) => r,
        Err(e) => return (Stats::default(), Some(e.to_string())),
    };
    let mut chunks = ChunkReader::with_chunk_size(reader, opts.chunk_size);
    let (job_tx, job_rx) = bounded::<Job>(workers * 2);
    let (res_tx, res_rx) = bounded::<(u64, Vec<Event>)>(workers * 2);
    let mut error = None;
    let mut stats = Stats::default();
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for _ in 0..workers {
            let (job_rx, res_tx) = (job_rx.clone(), res_tx.clone());
            handles.push(s.spawn(move || {
                let mut parser = new_parser(src, opts);
                let mut scratch = Vec::new();
                let mut cache = tansa_intel::Cache::default();
                for job in job_rx.iter() {
                    parser.set_ingested(tansa_event::now_nanos());
                    if let Some(ctx) = job.context {
                        let before = parser.stats().clone();
                        let c = input::Chunk {
                            data: ctx,
                            offset: 0,
                        };
                        for (line, off) in c.lines() {
                            parser.parse_line(line, off, &mut scratch);
                        }
                        parser.finish(&mut scratch);
                        scratch.clear();
                        parser.set_stats(before);
                    }
                    let mut out = recycled(recycle, job.chunk.data.len() / 64);
                    for (line, off) in job.chunk.lines() {
                        parser.parse_line(line, off, &mut out);
                    }
                    // a group held at the end of a chunk is the next chunk's context
                    parser.finish(&mut out);
                    // enriched before classified: rules may test what enrichment adds
                    opts.enrich.enrich_all(&mut out, &mut cache);
                    for ev in &mut out {
                        classifier.classify(ev);
                    }
                    progress
                        .bytes
                        .fetch_add(job.chunk.data.len() as u64, Ordering::Relaxed);
                    progress
                        .events
                        .fetch_add(out.len() as u64, Ordering::Relaxed);
                    if res_tx.send((job.seq, out)).is_err() {
                        break;
                    }
                }
                parser.stats().clone()
            }));
        }
        drop(res_tx);
        drop(job_rx);
        // reader: dispatch chunks; forward results in order as they complete
        let mut pending = std::collections::BTreeMap::new();
        let mut next = 0u64;
        let mut seq = 0u64;
        let mut prev_tail: Option<bytes::Bytes> = None;
        let mut open = true;
        let deliver = |pending: &mut std::collections::BTreeMap<u64, Vec<Event>>,
                       next: &mut u64,
                       open: &mut bool| {
            while let Some(batch) = pending.remove(next) {
                *next += 1;
                if *open && !send(batch) {
                    *open = false;
                }
            }
        };
        loop {
            let chunk = match chunks.next_chunk() {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    error = Some(format!("{}: {e}", src.path.display()));
                    break;
                }
            };
            let tail = {
                let d = &chunk.data;
                let start = d.len().saturating_sub(CONTEXT_BYTES);
                // start the context at a line boundary
                let start = memchr_line_start(d, start);
                d.slice(start..)
            };
            let job = Job {
                seq,
                context: prev_tail.replace(tail),
                chunk,
            };
            seq += 1;
            // keep the job queue moving while collecting finished chunks
            let mut job = Some(job);
            while let Some(j) = job.take() {
                match job_tx.try_send(j) {
                    Ok(()) => {}
                    Err(crossbeam_channel::TrySendError::Full(j)) => {
                        job = Some(j);
                        if let Ok((k, b)) = res_rx.recv() {
                            pending.insert(k, b);
                            deliver(&mut pending, &mut next, &mut open);
                        }
                    }
                    Err(crossbeam_channel::TrySendError::Disconnected(_)) => break,
                }
            }
            while let Ok((k, b)) = res_rx.try_recv() {
                pending.insert(k, b);
            }
            deliver(&mut pending, &mut next, &mut open);
            if !open {
                break;
            }
        }
        drop(job_tx);
        for (k, b) in res_rx.iter() {
            pending.insert(k, b);
            deliver(&mut pending, &mut next, &mut open);
        }
        for h in handles {
            if let Ok(st) = h.join() {
                stats.merge(&st);
            }
        }
    });
    (stats, error)
}

/// A batch the consumer gave back (its events dropped here), or a new one.
fn recycled(recycle: &Receiver<Vec<Event>>, capacity: usize) -> Vec<Event> {
    match recycle.try_recv() {
        Ok(mut v) => {
            v.clear();
            v
        }
        Err(_) => Vec::with_capacity(capacity),
    }
}

/// The start of the first whole line at or after `from`.
fn memchr_line_start(d: &[u8], from: usize) -> usize {
    if from == 0 {
        return 0;
    }
    match d[from..].iter().position(|&b| b == b'\n') {
        Some(i) => (from + i + 1).min(d.len()),
        None => d.len(),
    }
}

/// Reads and parses one source on this thread, sending batches; returns its stats. Batches
/// the consumer is done with come back through `recycle`: their events are dropped here, on
/// the thread that made them (their reference counts stay on one core), and their memory is
/// reused.
fn read_source_serial(
    src: &Source,
    opts: &Options,
    progress: &Progress,
    recycle: &Receiver<Vec<Event>>,
    send: &dyn Fn(Vec<Event>) -> bool,
) -> (Stats, Option<String>) {
    let fresh = || recycled(recycle, BATCH + 8);
    let mut parser = new_parser(src, opts);
    let reader = match input::open(&src.path) {
        Ok(r) => r,
        Err(e) => return (parser.stats().clone(), Some(e.to_string())),
    };
    let mut chunks = ChunkReader::with_chunk_size(reader, opts.chunk_size);
    let mut batch = fresh();
    let mut error = None;
    let mut cache = tansa_intel::Cache::default();
    loop {
        let chunk = match chunks.next_chunk() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                error = Some(format!("{}: {e}", src.path.display()));
                break;
            }
        };
        parser.set_ingested(tansa_event::now_nanos());
        for (line, off) in chunk.lines() {
            parser.parse_line(line, off, &mut batch);
            if batch.len() >= BATCH {
                opts.enrich.enrich_all(&mut batch, &mut cache);
                progress
                    .events
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                if !send(std::mem::replace(&mut batch, fresh())) {
                    return (parser.stats().clone(), error);
                }
            }
        }
        progress
            .bytes
            .fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
    }
    parser.finish(&mut batch);
    opts.enrich.enrich_all(&mut batch, &mut cache);
    if !batch.is_empty() {
        progress
            .events
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        send(batch);
    }
    (parser.stats().clone(), error)
}

/// Parses every input in file order (no merge, no detection): `tansa parse`.
pub fn parse(
    opts: &Options,
    mut sink: impl FnMut(&Event) -> bool,
) -> Result<Vec<SourceSummary>, PipelineError> {
    let sources = input::discover(&opts.paths)?;
    if sources.is_empty() {
        return Err(PipelineError::NoInput);
    }
    let progress = Progress::default();
    let mut out = Vec::new();
    for src in &sources {
        let (tx, rx) = bounded::<Vec<Event>>(QUEUE);
        let (back, back_rx) = bounded::<Vec<Event>>(QUEUE);
        let mut keep_going = true;
        let (stats, error) = std::thread::scope(|s| {
            // the producer owns the sender: when it returns, the channel ends
            let progress = &progress;
            let h = s.spawn(move || {
                let plain = tansa_detect::Classifier::default();
                read_source(src, opts, progress, 1, &plain, &back_rx, &|b| {
                    tx.send(b).is_ok()
                })
            });
            for batch in rx.iter() {
                if !keep_going {
                    continue;
                }
                for ev in &batch {
                    if !sink(ev) {
                        keep_going = false;
                        break;
                    }
                }
                let _ = back.try_send(batch);
                if !keep_going {
                    drop(rx);
                    break;
                }
            }
            h.join().unwrap_or_default()
        });
        out.push(SourceSummary {
            path: src.path.clone(),
            host: opts.host.clone().or_else(|| src.host.clone()),
            stats,
            error,
        });
        if !keep_going {
            break;
        }
    }
    Ok(out)
}

struct Head {
    batch: Vec<Event>,
    pos: usize,
    rx: Receiver<Vec<Event>>,
    /// Finished batches go back to their producer (see `read_source`).
    back: Sender<Vec<Event>>,
}

impl Head {
    /// Makes `pos` point at an event, receiving the next batch if needed; false at the end.
    fn fill(&mut self) -> bool {
        while self.pos >= self.batch.len() {
            match self.rx.recv() {
                Ok(b) => {
                    let done = std::mem::replace(&mut self.batch, b);
                    // if the producer's queue is full, the batch is dropped here instead
                    let _ = self.back.try_send(done);
                    self.pos = 0;
                }
                Err(_) => return false,
            }
        }
        true
    }
}

/// Reads, parses, merges in time order and detects: `tansa analyze`. Every event is given to
/// `sink` once, in merged order, after detection saw it.
pub fn analyze(
    opts: &Options,
    engine: Engine,
    progress: &Progress,
    sink: impl FnMut(&Event),
) -> Result<Summary, PipelineError> {
    analyze_sources(opts, &input::discover(&opts.paths)?, engine, progress, sink)
}

/// [`analyze`] on inputs the caller has already discovered (so that what it prepared for
/// them, such as store checkpoints, covers exactly the files read).
pub fn analyze_sources(
    opts: &Options,
    sources: &[input::Source],
    mut engine: Engine,
    progress: &Progress,
    mut sink: impl FnMut(&Event),
) -> Result<Summary, PipelineError> {
    if sources.is_empty() {
        return Err(PipelineError::NoInput);
    }
    let mut events = 0u64;
    // parser threads per source: the cores left once every source has one
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let workers = if opts.workers > 0 {
        opts.workers
    } else {
        (cores / sources.len()).max(1)
    };
    let classifier = engine.classifier();
    let classifier = &classifier;
    let results = std::thread::scope(|s| {
        let mut handles = Vec::new();
        let mut heads = Vec::new();
        for src in sources {
            let (tx, rx) = bounded::<Vec<Event>>(QUEUE);
            let (back, back_rx) = bounded::<Vec<Event>>(QUEUE);
            handles.push(s.spawn(move || {
                read_source(src, opts, progress, workers, classifier, &back_rx, &|b| {
                    tx.send(b).is_ok()
                })
            }));
            heads.push(Head {
                batch: Vec::new(),
                pos: 0,
                rx,
                back,
            });
        }
        // k-way merge on (@timestamp, source index)
        let mut heap = BinaryHeap::new();
        for (i, h) in heads.iter_mut().enumerate() {
            if h.fill() {
                heap.push(Reverse((h.batch[h.pos].timestamp, i)));
            }
        }
        let single = heads.len() == 1;
        while let Some(Reverse((_, i))) = heap.pop() {
            let h = &mut heads[i];
            let ev = &h.batch[h.pos];
            engine.process(ev);
            sink(ev);
            events += 1;
            h.pos += 1;
            if single {
                // one source: no merge needed, drain in order
                while h.fill() {
                    let ev = &h.batch[h.pos];
                    engine.process(ev);
                    sink(ev);
                    events += 1;
                    h.pos += 1;
                }
                break;
            }
            if h.fill() {
                heap.push(Reverse((h.batch[h.pos].timestamp, i)));
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect::<Vec<_>>()
    });
    let detection = engine.counters().clone();
    let suppressed = engine
        .suppressions()
        .map(|(s, n)| (s.at.clone(), s.reason.clone(), n))
        .collect();
    let sources = sources
        .iter()
        .zip(results)
        .map(|(src, (stats, error))| SourceSummary {
            path: src.path.clone(),
            host: opts.host.clone().or_else(|| src.host.clone()),
            stats,
            error,
        })
        .collect();
    Ok(Summary {
        sources,
        events,
        alerts: engine.finish(),
        detection,
        suppressed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tansa_detect::Limits;

    /// A busy auth.log: interleaved sshd connections whose lines depend on each other
    /// (failures completed by the connection's next line), brute force, logins.
    fn busy_auth_log(lines: usize) -> String {
        let mut s = String::new();
        let mut t = 0;
        let mut i = 0;
        while s.lines().count() < lines {
            let pid = 1000 + i;
            let ip = format!("198.51.{}.{}", i % 7, 1 + i % 200);
            let stamp = |t: usize| {
                format!(
                    "Mar 14 {:02}:{:02}:{:02}",
                    (t / 3600) % 24,
                    (t / 60) % 60,
                    t % 60
                )
            };
            s += &format!(
                "{} h sshd[{pid}]: Connection from {ip} port 5{:04} on 10.0.0.5 port 22\n",
                stamp(t),
                i % 10000
            );
            s += &format!(
                "{} h sshd[{pid}]: Disconnecting: Too many authentication failures [preauth]\n",
                stamp(t + 1)
            );
            s += &format!(
                "{} h sshd[{pid}]: Failed password for root from {ip} port 5{:04} ssh2\n",
                stamp(t + 1),
                i % 10000
            );
            s += &format!("{} h sshd[{}]: error: kex_exchange_identification: Connection closed by remote host\n", stamp(t + 2), pid + 50_000);
            s += &format!(
                "{} h sshd[{}]: Connection closed by {ip} port 4{:04}\n",
                stamp(t + 2),
                pid + 50_000,
                i % 10000
            );
            if i % 5 == 0 {
                s += &format!(
                    "{} h sshd[{pid}]: Accepted password for root from {ip} port 5{:04} ssh2\n",
                    stamp(t + 3),
                    i % 10000
                );
            }
            t += 1;
            i += 1;
        }
        s
    }

    #[test]
    fn parallel_parsing_equals_serial_parsing() {
        let dir = std::env::temp_dir().join(format!("tansa-par-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("auth.log");
        std::fs::write(&path, busy_auth_log(30_000)).unwrap();
        let run = |workers: usize| {
            let mut opts = Options::new(vec![path.clone()]);
            opts.timezone = jiff::tz::TimeZone::UTC;
            opts.now = "2026-03-15T00:00:00Z".parse().unwrap();
            opts.workers = workers;
            opts.parallel_min_bytes = 0;
            opts.chunk_size = 16 * 1024; // ~150 chunk boundaries
            let mut evs = Vec::new();
            let s = analyze(
                &opts,
                Engine::new(tansa_detect::builtin::rules(), Limits::default()),
                &Progress::default(),
                |e| {
                    evs.push((e.offset, e.timestamp, e.outcome, e.source_ip, e.action));
                },
            )
            .unwrap();
            (evs, s)
        };
        let (serial, s1) = run(1);
        let (parallel, s2) = run(3);
        assert_eq!(serial.len(), 30_000.max(serial.len()));
        assert_eq!(
            serial, parallel,
            "same events, same order, same attribution"
        );
        assert_eq!(s1.sources[0].stats, s2.sources[0].stats, "same counters");
        let ids = |s: &Summary| {
            s.alerts
                .iter()
                .map(|a| (a.rule_id, a.count, a.first_seen))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&s1), ids(&s2), "same alerts");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_are_merged_in_time_order_and_detected_once() {
        let dir = std::env::temp_dir().join(format!("tansa-pipe-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("web01")).unwrap();
        std::fs::create_dir_all(dir.join("db01")).unwrap();
        let mut a = String::new();
        let mut b = String::new();
        for i in 0..30 {
            let line = format!("Mar 14 10:00:{i:02} x sshd[{}]: Failed password for root from 203.0.113.9 port 4000{} ssh2\n", 100 + i, i % 10);
            if i % 2 == 0 {
                a.push_str(&line)
            } else {
                b.push_str(&line)
            }
        }
        a.push_str("garbage line\n");
        std::fs::write(dir.join("web01/auth.log"), a).unwrap();
        std::fs::write(dir.join("db01/auth.log"), b).unwrap();
        let mut opts = Options::new(vec![dir.clone()]);
        opts.timezone = jiff::tz::TimeZone::UTC;
        opts.now = "2026-03-15T00:00:00Z".parse().unwrap();
        let mut times = vec![];
        let mut hosts = vec![];
        let s = analyze(
            &opts,
            Engine::new(tansa_detect::builtin::rules(), Limits::default()),
            &Progress::default(),
            |e| {
                times.push(e.timestamp);
                hosts.push(e.origin.host.as_deref().unwrap_or("").to_string());
            },
        )
        .unwrap();
        assert_eq!(s.events, 31);
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "merged in time order"
        );
        assert_eq!(s.sources.len(), 2);
        assert_eq!(s.sources.iter().map(|x| x.stats.unparsed).sum::<u64>(), 1);
        assert!(hosts.contains(&"web01".to_string()) && hosts.contains(&"db01".to_string()));
        let bf: Vec<_> = s
            .alerts
            .iter()
            .filter(|a| a.rule_id == "tansa.ssh.brute_force")
            .collect();
        assert_eq!(bf.len(), 1, "one alert across both files");
        assert_eq!(bf[0].count, 30);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
