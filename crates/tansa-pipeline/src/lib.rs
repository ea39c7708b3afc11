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
use tansa_detect::{Alert, Counters, Engine, Limits, Rule};
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

/// Reads and parses one source, sending batches; returns its stats. Batches the consumer is
/// done with come back through `recycle`: their events are dropped here, on the thread that
/// made them (their reference counts stay on one core), and their memory is reused.
fn read_source(
    src: &Source,
    opts: &Options,
    progress: &Progress,
    recycle: &Receiver<Vec<Event>>,
    send: &dyn Fn(Vec<Event>) -> bool,
) -> (Stats, Option<String>) {
    let fresh = || match recycle.try_recv() {
        Ok(mut v) => {
            v.clear();
            v
        }
        Err(_) => Vec::with_capacity(BATCH + 8),
    };
    let origin = origin_for(src, opts);
    let mut parser = Parser::new(
        opts.format,
        origin,
        TimeCtx::new(opts.timezone.clone(), opts.now),
    );
    let reader = match input::open(&src.path) {
        Ok(r) => r,
        Err(e) => return (parser.stats().clone(), Some(e.to_string())),
    };
    let mut chunks = ChunkReader::new(reader);
    let mut batch = fresh();
    let mut error = None;
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
            let h =
                s.spawn(|| read_source(src, opts, &progress, &back_rx, &|b| tx.send(b).is_ok()));
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
    rules: Vec<Rule>,
    limits: Limits,
    progress: &Progress,
    mut sink: impl FnMut(&Event),
) -> Result<Summary, PipelineError> {
    let sources = input::discover(&opts.paths)?;
    if sources.is_empty() {
        return Err(PipelineError::NoInput);
    }
    let mut engine = Engine::new(rules, limits);
    let mut events = 0u64;
    let results = std::thread::scope(|s| {
        let mut handles = Vec::new();
        let mut heads = Vec::new();
        for src in &sources {
            let (tx, rx) = bounded::<Vec<Event>>(QUEUE);
            let (back, back_rx) = bounded::<Vec<Event>>(QUEUE);
            handles.push(s.spawn(move || {
                read_source(src, opts, progress, &back_rx, &|b| tx.send(b).is_ok())
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            tansa_detect::builtin::rules(),
            Limits::default(),
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
