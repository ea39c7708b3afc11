//! File integrity monitoring in the server (`[server] fim = true`): a baseline at the first
//! start, a check every `fim_interval_s`. Changes are written to DATA/fim/changes.log (see
//! [`tansa_evidence::fim`]), which the server follows like any other log, so they reach
//! detection, the store and the evidence log by the one data path.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tansa_evidence::fim::{default_paths, Fim};

use crate::config::{FileSource, Server, Start};
use crate::ServeError;

/// The watcher, before it runs.
pub struct Watch {
    fim: Fim,
    host: String,
    every: Duration,
}

/// Takes the baseline when there is none and adds the FIM logs to the followed files.
pub fn start(
    server: &Server,
    data: &Path,
    host: &str,
    files: &mut Vec<FileSource>,
) -> Result<Watch, ServeError> {
    let fim = Fim::new(data);
    let err = |e: tansa_evidence::EvidenceError| ServeError::Config(format!("fim: {e}"));
    if fim.load().map_err(err)?.is_none() {
        let paths: Vec<PathBuf> = if server.fim_paths.is_empty() {
            default_paths(server.web_root.as_deref())
        } else {
            server.fim_paths.clone()
        };
        let (b, errors) = fim
            .take(
                &paths,
                server.web_root.as_deref(),
                host,
                tansa_event::now_nanos(),
            )
            .map_err(err)?;
        eprintln!("tansa: fim: baseline of {} files taken", b.entries.len());
        if let Some(e) = errors.first() {
            eprintln!(
                "tansa: fim: {} paths not readable (first: {e})",
                errors.len()
            );
        }
    }
    for p in [fim.baseline_log(), fim.changes_log()] {
        if !p.exists() {
            std::fs::write(&p, "").map_err(|source| ServeError::Io {
                path: p.clone(),
                source,
            })?;
        }
        if !files.iter().any(|f| f.path == p) {
            files.push(FileSource {
                path: p,
                format: "json".into(),
                host: Some(host.to_owned()),
                timezone: None,
                start: Start::Beginning,
                multiline: None,
                multiline_max_lines: None,
                multiline_max_bytes: None,
                multiline_timeout_ms: None,
            });
        }
    }
    Ok(Watch {
        fim,
        host: host.to_owned(),
        every: Duration::from_secs(server.fim_interval_s.max(1)),
    })
}

impl Watch {
    /// Checks now and every interval until `stop`.
    pub fn spawn(self, stop: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("tansa-fim".into())
            .spawn(move || {
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    if Instant::now() >= next {
                        match self.fim.check(&self.host, tansa_event::now_nanos()) {
                            Ok(Some(c)) if c.new > 0 => {
                                eprintln!("tansa: fim: {} new changes", c.new)
                            }
                            Ok(_) => {}
                            Err(e) => eprintln!("tansa: fim: {e}"),
                        }
                        next = Instant::now() + self.every;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
    }
}
