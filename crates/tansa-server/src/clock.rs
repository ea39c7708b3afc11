//! Clock trust: each host's event times against the times its lines arrived.
//!
//! The lag of a line is `received − @timestamp`. Transport and buffering only ever add to it,
//! so the smallest lag of a host over the last five minutes estimates how far its clock is
//! off (`offset = −min lag`: negative when the clock is behind). Old lines read at start (a
//! file's history, an agent's spool) all arrive within moments and have large lags: an
//! estimate is trusted only once the host's lines have kept arriving for a minute, so that
//! live lines are among them. An offset beyond the threshold raises an alert
//! (`tansa.clock.behind` / `tansa.clock.ahead`, entity the host, count the seconds), again when
//! it changes by more than the threshold or an hour later.

use std::collections::{HashMap, VecDeque};

use tansa_detect::{alert_id, Alert, Key, Severity};
use tansa_event::Nanos;

const SEC: i64 = 1_000_000_000;
/// Receive time over which the smallest lag is taken.
pub const WINDOW: i64 = 300 * SEC;
/// Receive time the window must span before its estimate counts.
pub const MIN_SPAN: i64 = 60 * SEC;

#[derive(Default)]
struct Host {
    /// (receive second, smallest lag in it), oldest first.
    buckets: VecDeque<(i64, i64)>,
    /// The last offset reported and when.
    reported: Option<(i64, Nanos)>,
}

/// Watches the clocks of the hosts lines come from.
pub struct ClockWatch {
    threshold: i64,
    hosts: HashMap<String, Host>,
}

/// A host whose clock is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skew {
    pub host: String,
    /// Host clock minus receive clock (ns): negative when the host's clock is behind.
    pub offset: i64,
    /// The receive times the estimate covers.
    pub from: Nanos,
    pub to: Nanos,
}

impl ClockWatch {
    /// Offsets beyond `threshold_s` seconds are reported.
    pub fn new(threshold_s: u64) -> ClockWatch {
        ClockWatch {
            threshold: threshold_s as i64 * SEC,
            hosts: HashMap::new(),
        }
    }

    /// A line of `host` stamped `ts`, received at `received`.
    pub fn observe(&mut self, host: &str, received: Nanos, ts: Nanos) {
        let lag = received.saturating_sub(ts);
        let sec = received.div_euclid(SEC);
        let h = match self.hosts.get_mut(host) {
            Some(h) => h,
            None => self.hosts.entry(host.to_owned()).or_default(),
        };
        match h.buckets.back_mut() {
            Some((s, m)) if *s == sec => *m = (*m).min(lag),
            _ => h.buckets.push_back((sec, lag)),
        }
        while h
            .buckets
            .front()
            .is_some_and(|&(s, _)| (sec - s) * SEC > WINDOW)
        {
            h.buckets.pop_front();
        }
    }

    /// Hosts whose clock is off now (each reported again only when its offset moved by more
    /// than the threshold, or an hour later).
    pub fn check(&mut self) -> Vec<Skew> {
        let mut out = Vec::new();
        for (name, h) in &mut self.hosts {
            let (Some(&(first, _)), Some(&(last, _))) = (h.buckets.front(), h.buckets.back())
            else {
                continue;
            };
            if (last - first) * SEC < MIN_SPAN {
                continue;
            }
            let offset = -h.buckets.iter().map(|b| b.1).min().unwrap_or(0);
            if offset.abs() <= self.threshold {
                continue;
            }
            let now = last * SEC;
            let again = match h.reported {
                None => true,
                Some((o, at)) => (o - offset).abs() > self.threshold || now - at > 3600 * SEC,
            };
            if again {
                h.reported = Some((offset, now));
                out.push(Skew {
                    host: name.clone(),
                    offset,
                    from: first * SEC,
                    to: now,
                });
            }
        }
        out.sort_by(|a, b| a.host.cmp(&b.host));
        out
    }
}

impl Skew {
    /// The alert of a skewed clock.
    pub fn alert(&self) -> Alert {
        let behind = self.offset < 0;
        let (rule_id, rule_title) = if behind {
            (
                "tansa.clock.behind",
                "Host clock behind: its events are stamped earlier than they arrived",
            )
        } else {
            (
                "tansa.clock.ahead",
                "Host clock ahead: its events are stamped later than they arrived",
            )
        };
        let key = Key::Text(self.host.as_str().into());
        Alert {
            id: alert_id(rule_id, &key, self.from),
            rule_id,
            rule_title,
            severity: Severity::Medium,
            tags: &["attack.defense_evasion", "attack.t1070.006"],
            first_seen: self.from,
            last_seen: self.to,
            count: (self.offset.unsigned_abs() / SEC as u64).max(1),
            key_field: "host.name",
            key,
            host: Some(self.host.clone()),
            source_ip: None,
            user: None,
            events: Vec::new(),
            simulated: false,
            threat: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_off_is_found_once_lines_keep_arriving_and_history_is_not_skew() {
        let mut w = ClockWatch::new(120);
        let t0 = 1_800_000_000 * SEC;
        // a day of history read at once: huge lags, but all at one moment
        for i in 0..1000 {
            w.observe("web01", t0, t0 - 86_400 * SEC + i * SEC);
        }
        assert!(w.check().is_empty(), "history is not skew");
        // then live lines, with a clock in time (delays of up to 2 s)
        for s in 1..=90 {
            w.observe("web01", t0 + s * SEC, t0 + s * SEC - (s % 3) * SEC);
        }
        assert!(w.check().is_empty(), "{:?}", w.check());
        // db01's clock is 10 minutes behind; lines arrive live for 90 s
        for s in 0..90 {
            w.observe("db01", t0 + s * SEC + SEC / 2, t0 + s * SEC - 600 * SEC);
        }
        let k = w.check();
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].host, "db01");
        assert!((k[0].offset + 600 * SEC).abs() < SEC, "{}", k[0].offset);
        let a = k[0].alert();
        assert_eq!((a.rule_id, a.count), ("tansa.clock.behind", 600));
        assert!(w.check().is_empty(), "reported once");
        // a clock ahead
        for s in 0..70 {
            w.observe("app01", t0 + s * SEC, t0 + s * SEC + 300 * SEC);
        }
        let k = w.check();
        assert_eq!(k[0].alert().rule_id, "tansa.clock.ahead");
        assert_eq!(k[0].offset / SEC, 300);
    }
}
