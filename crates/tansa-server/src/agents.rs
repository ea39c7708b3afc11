//! The server's end of `tansa agent`: batches ([`crate::wire`]) over mutual TLS, each
//! answered once its lines are committed. The client certificate's name is the agent's id
//! (`agent.id`); a stream is an agent's file instance, numbered the same across restarts of
//! both ends, so that a batch sent again is de-duplicated by offset.
//!
//! A JSON frame `{"status": {...}}` among the batches carries the agent's own counters
//! ([`AgentReport`]: lines read and sent, spool, reconnects), shown in `/metrics`.
//!
//! A connection whose first frame is `{"subscribe": "decisions"}` (JSON, where batches are
//! zstd) is the agent's ban-sharing link instead: the server sends it the decisions in force
//! (`{"decisions": Update}`, [`tansa_respond::share`]) as they change, and an empty update
//! every [`HEARTBEAT`] so that the agent knows the link is alive.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use tansa_collect::syslog::{Conn, Handler, Stream};

use crate::live::{AgentReport, Committed, Input, Metrics, Shipped};
use crate::wire;

/// An agent that sends nothing for this long is disconnected (it reconnects when it has
/// lines again).
pub const IDLE: Duration = Duration::from_secs(300);

fn reply(conn: &mut Conn, v: serde_json::Value) -> bool {
    wire::write_frame(conn, v.to_string().as_bytes()).is_ok()
}

/// How long a read waits before the answers of committed batches are looked at again.
const POLL: Duration = Duration::from_millis(5);

/// A batch queued and the commits its answer waits for.
struct Pending {
    seq: u64,
    waits: Vec<Committed>,
}

/// Serves agents' connections into the processor's queue. Several batches may be in flight
/// (the agent sends ahead); answers go back in order, each once its lines are committed.
pub(crate) fn handler(
    tx: Sender<Input>,
    metrics: Arc<Metrics>,
    respond: Option<Arc<crate::respond::Respond>>,
) -> Handler {
    Arc::new(move |mut conn: Conn, stream: Stream| {
        // the listener requires client certificates: an identity is always there
        let Some(agent) = stream.identity.clone() else {
            return;
        };
        let _ = conn.set_read_timeout(POLL);
        let _ = conn.set_write_timeout(IDLE);
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 256 << 10];
        let mut pending: std::collections::VecDeque<Pending> = Default::default();
        let mut last_read = std::time::Instant::now();
        loop {
            // answers of the batches whose lines are all committed, in order
            while let Some(p) = pending.front_mut() {
                let mut failed = false;
                p.waits.retain_mut(|w| match w.try_recv() {
                    Ok(()) => false,
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty) => true,
                    Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                        failed = true;
                        false
                    }
                });
                if failed {
                    let seq = p.seq;
                    reply(
                        &mut conn,
                        serde_json::json!({ "seq": seq, "error": "not stored; send it again" }),
                    );
                    return;
                }
                if !p.waits.is_empty() {
                    break;
                }
                let seq = p.seq;
                pending.pop_front();
                if !reply(&mut conn, serde_json::json!({ "seq": seq })) {
                    return;
                }
            }
            match conn.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    last_read = std::time::Instant::now();
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if pending.is_empty() && last_read.elapsed() > IDLE {
                        return;
                    }
                    continue;
                }
                Err(_) => return,
            }
            loop {
                let frame = match wire::take_frame(&mut buf) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        reply(&mut conn, serde_json::json!({ "error": e.to_string() }));
                        return;
                    }
                };
                if frame.first() == Some(&b'{') {
                    let v: serde_json::Value = serde_json::from_slice(&frame).unwrap_or_default();
                    if let Ok(r) = serde_json::from_value::<AgentReport>(v["status"].clone()) {
                        // the agent's own counters, for /metrics
                        metrics.agent_report(&agent, r);
                        continue;
                    }
                    if v["subscribe"] == "decisions" && pending.is_empty() {
                        share_decisions(conn, respond.clone(), &agent);
                    } else {
                        reply(&mut conn, serde_json::json!({ "error": "unknown request" }));
                    }
                    return;
                }
                let batch = match wire::decode(&frame) {
                    Ok(b) => b,
                    Err(e) => {
                        // a broken client is cut off; the others go on
                        reply(&mut conn, serde_json::json!({ "error": e.to_string() }));
                        return;
                    }
                };
                let mut waits = Vec::new();
                for s in batch.streams {
                    let Some(received) = s.lines.iter().map(|l| l.read).min() else {
                        continue;
                    };
                    let shipped = Shipped {
                        stream: tansa_collect::fnv(&[agent.as_bytes(), &s.id.to_le_bytes()]),
                        path: s.path,
                        host: s.host,
                        agent: Some(agent.clone()),
                        format: None,
                        lines: s.lines.into_iter().map(|l| (l.text, l.offset)).collect(),
                        next: None,
                        received,
                        done: None,
                    };
                    let Some(wait) = shipped.send(&tx, &metrics) else {
                        return;
                    };
                    waits.push(wait);
                }
                pending.push_back(Pending {
                    seq: batch.seq,
                    waits,
                });
            }
        }
    })
}

/// An empty update this often tells the agent that its link is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// Decisions per frame (a first sync of 100k decisions goes in several frames).
const SHARE_CHUNK: usize = 10_000;

/// The ban-sharing link of one agent: the decisions in force, then their changes.
fn share_decisions(mut conn: Conn, respond: Option<Arc<crate::respond::Respond>>, agent: &str) {
    let Some(r) = respond else {
        reply(
            &mut conn,
            serde_json::json!({ "error": "this server makes no decisions (no [response] section)" }),
        );
        return;
    };
    // a change reaches the agent within this (the generation is compared, nothing more)
    let _ = conn.set_read_timeout(Duration::from_millis(250));
    let mut cursor = tansa_respond::share::ShareCursor::default();
    let mut last = std::time::Instant::now();
    let mut chunk = [0u8; 512];
    loop {
        let mut u = {
            let resp = r.lock();
            cursor.update(&resp, tansa_event::now_nanos())
        };
        if !u.is_empty() || last.elapsed() >= HEARTBEAT {
            let rest = if u.set.len() > SHARE_CHUNK {
                u.set.split_off(SHARE_CHUNK)
            } else {
                Vec::new()
            };
            let mut frames = vec![u];
            for c in rest.chunks(SHARE_CHUNK) {
                frames.push(tansa_respond::share::Update {
                    set: c.to_vec(),
                    ..Default::default()
                });
            }
            for f in frames {
                if !reply(&mut conn, serde_json::json!({ "decisions": f })) {
                    return;
                }
            }
            last = std::time::Instant::now();
        }
        match conn.read(&mut chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                eprintln!("tansa: agent {agent}: decision link: {e}");
                return;
            }
        }
    }
}
