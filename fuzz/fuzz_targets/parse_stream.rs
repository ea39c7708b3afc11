//! A whole stream (newline-separated) through the auto-detecting parser, so that per-stream
//! state (sshd connections, auditd groups, sticky format) sees hostile sequences.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use tansa_parse::input::ChunkReader;
use tansa_parse::{Format, Parser, TimeCtx};

fuzz_target!(|data: &[u8]| {
    let mut p = Parser::new(
        Format::Auto,
        Arc::new(tansa_event::Origin::default()),
        TimeCtx::new(jiff::tz::TimeZone::UTC, jiff::Timestamp::UNIX_EPOCH),
    );
    let mut r = ChunkReader::with_chunk_size(data, 64);
    let mut out = Vec::new();
    let mut lines = 0u64;
    while let Ok(Some(c)) = r.next_chunk() {
        for (l, off) in c.lines() {
            p.parse_line(l, off, &mut out);
            lines += 1;
        }
    }
    p.finish(&mut out);
    assert_eq!(p.stats().lines, lines);
    assert!(out.len() as u64 >= lines);
});
