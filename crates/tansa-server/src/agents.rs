//! The server's end of `tansa agent`: batches ([`crate::wire`]) over mutual TLS, each
//! answered once its lines are committed. The client certificate's name is the agent's id
//! (`agent.id`); a stream is an agent's file instance, numbered the same across restarts of
//! both ends, so that a batch sent again is de-duplicated by offset.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use tansa_collect::syslog::{Conn, Handler, Stream};

use crate::live::{Input, Metrics, Shipped};
use crate::wire;

/// An agent that sends nothing for this long is disconnected (it reconnects when it has
/// lines again).
pub const IDLE: Duration = Duration::from_secs(300);

fn reply(conn: &mut Conn, v: serde_json::Value) -> bool {
    wire::write_frame(conn, v.to_string().as_bytes()).is_ok()
}

/// Serves agents' connections into the processor's queue.
pub(crate) fn handler(tx: Sender<Input>, metrics: Arc<Metrics>) -> Handler {
    Arc::new(move |mut conn: Conn, stream: Stream| {
        // the listener requires client certificates: an identity is always there
        let Some(agent) = stream.identity.clone() else {
            return;
        };
        let _ = conn.set_read_timeout(IDLE);
        let _ = conn.set_write_timeout(IDLE);
        loop {
            let frame = match wire::read_frame(&mut conn) {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => {
                    reply(&mut conn, serde_json::json!({ "error": e.to_string() }));
                    return;
                }
            };
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
                let (done, wait) = tokio::sync::oneshot::channel();
                metrics.queued.fetch_add(1, Ordering::Relaxed);
                let shipped = Shipped {
                    stream: tansa_collect::fnv(&[agent.as_bytes(), &s.id.to_le_bytes()]),
                    path: s.path,
                    host: s.host,
                    agent: Some(agent.clone()),
                    format: None,
                    lines: s.lines.into_iter().map(|l| (l.text, l.offset)).collect(),
                    received,
                    done: Some(done),
                };
                if tx.send(Input::Shipped(shipped)).is_err() {
                    return;
                }
                waits.push(wait);
            }
            let stored = waits.into_iter().all(|w| w.blocking_recv().is_ok());
            let answer = if stored {
                serde_json::json!({ "seq": batch.seq })
            } else {
                serde_json::json!({ "seq": batch.seq, "error": "not stored; send it again" })
            };
            if !reply(&mut conn, answer) || !stored {
                return;
            }
        }
    })
}
