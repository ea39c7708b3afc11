//! Terminal output: attacker-controlled text is escaped before it reaches a terminal.

use std::borrow::Cow;

/// Escapes control characters (C0, DEL, C1 — terminal escape sequences start with these) as
/// `\xNN`/`\u{NN}`, so that log content can never drive the terminal.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_control(c) {
            if (c as u32) < 0x100 {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A JSON writer's error as the I/O error it wraps (so that a closed pipe stays one).
pub fn io_error(e: serde_json::Error) -> std::io::Error {
    match e.io_error_kind() {
        Some(kind) => std::io::Error::new(kind, e),
        None => std::io::Error::other(e),
    }
}

/// Cuts a value to `max` characters for a table cell (after escaping).
pub fn cell(s: &str, max: usize) -> String {
    let c = clean(s);
    if c.chars().count() <= max {
        c.into_owned()
    } else {
        let mut t: String = c.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_sequences() {
        assert_eq!(clean("plain"), "plain");
        assert_eq!(clean("a\x1b[31mred"), "a\\x1b[31mred");
        assert_eq!(clean("bell\x07"), "bell\\x07");
        assert_eq!(clean("c1\u{9b}x"), "c1\\x9bx");
        assert_eq!(clean("rtl\u{202e}x"), "rtl\\u{202e}x");
        assert_eq!(cell("abcdef", 4), "abc…");
    }
}
