//! Parallel batch commits: several connections append batches at once and commit them in the
//! order they were handed in.
//!
//! DuckDB appends from different transactions do not conflict, and a transaction that appends
//! whole row groups compresses and writes them before it commits; so with two connections the
//! expensive part of two batches runs at once. Commits take turns in batch order: a source's
//! checkpoint row (the largest offset whose lines are stored) is committed only after every
//! earlier batch, which keeps "every line exactly once" true across a crash.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::{append, DuckStore, Prepared, Result, StoreError};

/// The commit turn: the sequence number of the last committed batch, and the first batch
/// that failed (later batches must not commit; earlier ones still do).
struct Turn {
    state: Mutex<(u64, Option<u64>)>,
    cv: Condvar,
}

impl Turn {
    /// Waits until batch `seq - 1` is committed; false when an earlier batch failed.
    fn wait(&self, seq: u64) -> bool {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if g.1.is_some_and(|f| f < seq) {
                return false;
            }
            if g.0 + 1 == seq {
                return true;
            }
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn done(&self, seq: u64, ok: bool) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            g.0 = seq;
        } else if g.1.is_none_or(|f| seq < f) {
            g.1 = Some(seq);
        }
        self.cv.notify_all();
    }
}

/// Writes prepared batches with several connections; see the module docs.
pub struct ParallelWriter {
    store: DuckStore,
    tx: Option<std::sync::mpsc::SyncSender<(u64, Prepared)>>,
    workers: Vec<JoinHandle<Result<()>>>,
    seq: u64,
}

impl ParallelWriter {
    pub(crate) fn new(store: DuckStore, threads: usize) -> Result<ParallelWriter> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Prepared)>(0);
        let rx = Arc::new(Mutex::new(rx));
        let turn = Arc::new(Turn {
            state: Mutex::new((0, None)),
            cv: Condvar::new(),
        });
        let mut workers = Vec::new();
        for _ in 0..threads.max(1) {
            let conn = store.conn.try_clone()?;
            let rx = Arc::clone(&rx);
            let turn = Arc::clone(&turn);
            workers.push(std::thread::spawn(move || -> Result<()> {
                let mut conn = conn;
                loop {
                    let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((seq, p)) = next else {
                        return Ok(());
                    };
                    let r = (|| -> Result<()> {
                        let tx = conn.transaction()?;
                        append(&tx, p)?;
                        if !turn.wait(seq) {
                            return Err(StoreError::Invalid(
                                "an earlier batch failed; this one is not committed".into(),
                            ));
                        }
                        tx.commit()?;
                        Ok(())
                    })();
                    turn.done(seq, r.is_ok());
                    r?;
                }
            }));
        }
        Ok(ParallelWriter {
            store,
            tx: Some(tx),
            workers,
            seq: 0,
        })
    }

    /// Hands a batch to the next free connection (waits while all are busy).
    pub fn write(&mut self, p: Prepared) -> Result<()> {
        self.seq += 1;
        let sent = self.tx.as_ref().map(|tx| tx.send((self.seq, p)).is_ok());
        if sent != Some(true) {
            return Err(self.fail());
        }
        Ok(())
    }

    /// The first worker error (a send fails only when every worker has stopped).
    fn fail(&mut self) -> StoreError {
        self.join()
            .unwrap_or_else(|| StoreError::Invalid("the store writers stopped".into()))
    }

    /// Closes the queue and waits for the workers; their first error.
    fn join(&mut self) -> Option<StoreError> {
        self.tx = None;
        let mut first = None;
        for w in self.workers.drain(..) {
            let e = match w.join() {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e,
                Err(_) => StoreError::Invalid("a store writer panicked".into()),
            };
            first.get_or_insert(e);
        }
        first
    }

    /// Waits for every batch to be committed and returns the store.
    pub fn finish(mut self) -> Result<DuckStore> {
        match self.join() {
            Some(e) => Err(e),
            None => Ok(self.store),
        }
    }
}
