//! One line through one parser: the first byte picks the format (auto or each forced
//! format), the rest is the line. Checks that nothing panics and the event serialises.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use tansa_parse::{Format, Parser, TimeCtx};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, line)) = data.split_first() else { return };
    let names = Format::names();
    let format: Format = names[sel as usize % names.len()].parse().unwrap();
    let mut p = Parser::new(
        format,
        Arc::new(tansa_event::Origin::default()),
        TimeCtx::new(jiff::tz::TimeZone::UTC, jiff::Timestamp::UNIX_EPOCH),
    );
    let mut out = Vec::new();
    p.parse_line(bytes::Bytes::copy_from_slice(line), 0, &mut out);
    p.finish(&mut out);
    assert!(!out.is_empty());
    for e in &out {
        let _ = e.to_json();
    }
});
