//! Active response: alerts become decisions (bans of an address, a prefix or an AS's
//! announced prefixes), decisions are enforced by a firewall backend and served to CrowdSec
//! bouncers.
//!
//! Last box of the data path (`… → detect → store → respond`). The live server hands every
//! new alert to a [`Responder`]; `tansa ban` drives one by hand. Decisions and every action
//! taken are rows of the store (`decisions`, `actions`).
//!
//! Invariants:
//! - The allow list wins: a decision whose prefixes touch an allowed prefix (either contains
//!   the other) is refused as a whole and recorded as refused; nothing of it is enforced. The
//!   nftables and ipset backends also let allowed sources through before their drop rules.
//! - A decision is stored before it is enforced; enforcement is derived from the stored
//!   decisions alone ([`Responder::want`]), so a restart, `tansa ban apply` or a failed
//!   firewall call converge to the same state.
//! - Simulated decisions (globally or per matrix entry) are stored and listed, never
//!   enforced or served to bouncers.
//! - Escalation (fail2ban's `bantime.increment`): the n-th decision on the same value within
//!   `remember` lasts `ban_time × factor^(n−1)`, at most `max_time`.
//! - Attacker text never reaches a shell: firewall changes are written as nft/ipset scripts
//!   from parsed prefixes only, commands get their arguments as a vector.

pub mod firewall;
pub mod hooks;
pub mod lapi;
pub mod policy;
mod responder;
pub mod share;

pub use firewall::{Firewall, SyncReport, Want};
pub use policy::{Allow, BanRule, Config, Scope};
pub use responder::{build_firewall, AsnSource, Decision, Manual, Responder};
pub use tansa_store::{ActionRow, ApprovalRow, DecisionRow};

#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    #[error(transparent)]
    Store(#[from] tansa_store::StoreError),
    #[error("{program}: {message}")]
    Firewall { program: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Refused(String),
    #[error("no decision matches {0}")]
    NotFound(String),
}

pub type Result<T> = std::result::Result<T, RespondError>;

/// Nanoseconds in a second.
pub const SECOND: i64 = 1_000_000_000;

/// A duration such as `90s`, `10m`, `1h30m`, `7d`, `2w` in nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64> {
    let bad = || RespondError::Invalid(format!("{s:?}: not a duration (e.g. 90s, 10m, 1h30m, 7d)"));
    let mut total: i64 = 0;
    let mut num = String::new();
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: i64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total = n
            .checked_mul(unit * SECOND)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// A duration as `1h30m5s` (what `tansa ban list` prints and CrowdSec's API sends).
pub fn format_duration(ns: i64) -> String {
    let neg = ns < 0;
    let mut s = ns.unsigned_abs() / SECOND as u64;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let h = s / 3600;
    s %= 3600;
    let m = s / 60;
    s %= 60;
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}s"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), 90 * SECOND);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400 * SECOND);
        assert_eq!(parse_duration("2w").unwrap(), 14 * 86_400 * SECOND);
        for bad in ["", "10", "1x", "h", "99999999999999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(5405 * SECOND), "1h30m5s");
        assert_eq!(format_duration(59 * SECOND), "59s");
        assert_eq!(format_duration(-61 * SECOND), "-1m1s");
    }
}
