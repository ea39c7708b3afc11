//! The long-running server, `tansa serve --config tansa.toml`: the live form of the data path
//! (`sources → frame → parse → enrich → detect → store`).
//!
//! - [`config`]: the strict, versioned TOML file.
//! - [`live`]: files followed through rotation and resumed from the store's checkpoints,
//!   syslog listeners; one processor thread runs the same parser, enrichment, classifier and
//!   detection engine as `tansa analyze`; one writer thread commits events with the
//!   checkpoints and file instances they complete, and alerts as they change.
//! - [`clock`]: each host's clock against the arrival of its lines (skew alerts).
//! - [`tls`], [`ca`]: TLS for the listeners from PEM files; the small CA of `tansa ca` that
//!   issues and revokes the certificates of listeners and agents.
//! - [`http`]: `/health`, `/metrics`, the token-protected query API the CLI uses while the
//!   server holds the store, and HTTP ingest ([`ingest`]: lines, and the Elasticsearch
//!   `_bulk` subset of Filebeat, Fluent Bit and Vector).
//! - [`respond`]: new alerts to the responder (decisions, firewall), the decisions API and
//!   the CrowdSec local-API subset for bouncers.

pub mod agent;
pub mod agents;
pub mod ca;
pub mod clock;
pub mod config;
pub mod files;
pub mod fim;
pub mod http;
pub mod ingest;
pub mod journal;
pub mod live;
pub mod respond;
pub mod spool;
pub mod tls;
pub mod udp;
pub mod wire;

pub use config::{Config, ConfigError};
pub use live::{run, Metrics, Ready, Report, Setup};

/// Why the server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(String),
    #[error("{what}: {source}")]
    Bind {
        what: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    System(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] tansa_store::StoreError),
    #[error("the store writer stopped")]
    Writer,
    #[error("evidence log: {0}")]
    Evidence(#[from] tansa_evidence::EvidenceError),
}

/// Sets `stop` on SIGTERM, SIGINT or SIGHUP (a thread waits for them).
pub fn stop_on_signals(
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut term, mut int, mut hup) = rt.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::hangup())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("tansa-signals".into())
        .spawn(move || {
            rt.block_on(async {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                    _ = hup.recv() => {}
                }
            });
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        })?;
    Ok(())
}
