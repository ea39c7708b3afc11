//! Timestamps as logs write them, to UTC nanoseconds.
//!
//! Formats without a zone take the source's zone ([`TimeCtx::new`]); formats without a year
//! (classic syslog) take the nearest year that does not put the line in the future relative to
//! the context's "now" (a day of slack absorbs clock skew). Zone offsets are cached per civil
//! minute, so converting a sorted file costs one zone lookup per minute of log, not per line.

use jiff::tz::TimeZone;
use tansa_event::Nanos;

const NS: i64 = 1_000_000_000;

/// A civil (wall-clock) time as written in a log, before a zone is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub nanos: u32,
}

impl Civil {
    fn valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second < 61
    }

    /// Seconds since the epoch if this civil time were UTC.
    fn epoch_seconds_utc(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + self.hour as i64 * 3600
            + self.minute as i64 * 60
            + self.second as i64
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i32, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y as i64 - 1 } else { y as i64 };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Zone and "now" for one source, with the caches that make conversion cheap.
#[derive(Debug, Clone)]
pub struct TimeCtx {
    tz: TimeZone,
    is_utc: bool,
    /// Reference time for year inference (UTC seconds) and its civil month/day in `tz`.
    now_secs: i64,
    now_year: i32,
    now_md: u16,
    /// (civil minute key, offset seconds).
    offset_cache: Option<(i64, i64)>,
}

impl TimeCtx {
    /// A context for zone `tz` with `now` as the reference for year inference.
    pub fn new(tz: TimeZone, now: jiff::Timestamp) -> Self {
        let z = now.to_zoned(tz.clone());
        let is_utc = tz
            .to_fixed_offset()
            .map(|o| o.seconds() == 0)
            .unwrap_or(false);
        TimeCtx {
            is_utc,
            now_secs: now.as_second(),
            now_year: z.year() as i32,
            now_md: z.month() as u16 * 100 + z.day() as u16,
            tz,
            offset_cache: None,
        }
    }

    /// UTC, now.
    pub fn utc() -> Self {
        Self::new(TimeZone::UTC, jiff::Timestamp::now())
    }

    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }

    /// The year for a yearless month/day: this year, or last year if that is more than a
    /// day ahead of now.
    pub fn infer_year(&self, month: u8, day: u8) -> i32 {
        let md = month as u16 * 100 + day as u16;
        // `now_md + 1` is a day of slack (approximate at month ends, exact enough for skew).
        if md > self.now_md + 1 {
            self.now_year - 1
        } else {
            self.now_year
        }
    }

    /// Converts a civil time in the source's zone to UTC nanoseconds.
    pub fn local(&mut self, c: Civil) -> Option<Nanos> {
        if !c.valid() {
            return None;
        }
        let utc_secs = c.epoch_seconds_utc();
        let offset = if self.is_utc {
            0
        } else {
            let key = utc_secs / 60;
            match self.offset_cache {
                Some((k, off)) if k == key => off,
                _ => {
                    let dt = jiff::civil::DateTime::new(
                        c.year as i16,
                        c.month as i8,
                        c.day as i8,
                        c.hour as i8,
                        c.minute as i8,
                        0,
                        0,
                    )
                    .ok()?;
                    let ts = self.tz.to_ambiguous_timestamp(dt).compatible().ok()?;
                    let off =
                        dt.to_zoned(TimeZone::UTC).ok()?.timestamp().as_second() - ts.as_second();
                    self.offset_cache = Some((key, off));
                    off
                }
            }
        };
        Some((utc_secs - offset) * NS + c.nanos as i64)
    }

    /// Converts a civil time with a known UTC offset (seconds east) to UTC nanoseconds.
    pub fn with_offset(c: Civil, offset_secs: i64) -> Option<Nanos> {
        if !c.valid() {
            return None;
        }
        Some((c.epoch_seconds_utc() - offset_secs) * NS + c.nanos as i64)
    }

    /// The reference "now" in UTC seconds.
    pub fn now_secs(&self) -> i64 {
        self.now_secs
    }
}

#[inline]
fn d2(b: &[u8], i: usize) -> Option<u8> {
    let (a, c) = (*b.get(i)?, *b.get(i + 1)?);
    if a.is_ascii_digit() && c.is_ascii_digit() {
        Some((a - b'0') * 10 + (c - b'0'))
    } else {
        None
    }
}

#[inline]
fn d4(b: &[u8], i: usize) -> Option<i32> {
    Some(d2(b, i)? as i32 * 100 + d2(b, i + 2)? as i32)
}

/// The month number of a three-letter English abbreviation (any case).
#[inline]
pub fn month_abbr(b: &[u8]) -> Option<u8> {
    if b.len() < 3 {
        return None;
    }
    let k = [
        b[0].to_ascii_lowercase(),
        b[1].to_ascii_lowercase(),
        b[2].to_ascii_lowercase(),
    ];
    Some(match &k {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// Parses `HH:MM:SS[.frac]` at `i`; returns (h, m, s, nanos, end).
#[inline]
pub fn hms(b: &[u8], i: usize) -> Option<(u8, u8, u8, u32, usize)> {
    let h = d2(b, i)?;
    if b.get(i + 2) != Some(&b':') || b.get(i + 5) != Some(&b':') {
        return None;
    }
    let m = d2(b, i + 3)?;
    let s = d2(b, i + 6)?;
    let mut end = i + 8;
    let mut nanos = 0u32;
    if matches!(b.get(end), Some(b'.') | Some(b','))
        && b.get(end + 1).is_some_and(u8::is_ascii_digit)
    {
        end += 1;
        let mut scale = 100_000_000u32;
        while let Some(&c) = b.get(end) {
            if !c.is_ascii_digit() {
                break;
            }
            nanos += (c - b'0') as u32 * scale;
            scale /= 10;
            end += 1;
        }
    }
    Some((h, m, s, nanos, end))
}

/// RFC 3164 `Mmm dd HH:MM:SS` (day space- or zero-padded, or a single digit), optionally
/// followed by a year (`Mmm dd yyyy HH:MM:SS`, as some devices write). Returns the civil time
/// (year 0 when absent) and the end offset.
pub fn bsd(b: &[u8]) -> Option<(Civil, usize)> {
    let month = month_abbr(b)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let mut i = 4;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let day = if let Some(d) = d2(b, i) {
        i += 2;
        d
    } else {
        let c = *b.get(i)?;
        if !c.is_ascii_digit() {
            return None;
        }
        i += 1;
        c - b'0'
    };
    if b.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    let mut year = 0;
    if let Some(y) = d4(b, i) {
        if b.get(i + 4) == Some(&b' ') {
            year = y;
            i += 5;
        }
    }
    let (hour, minute, second, nanos, end) = hms(b, i)?;
    Some((
        Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
        },
        end,
    ))
}

/// A zone suffix at `i`: `Z`, `+hh:mm`, `+hhmm`, `+hh`. Returns (offset seconds, end).
pub fn zone(b: &[u8], i: usize) -> Option<(i64, usize)> {
    match b.get(i)? {
        b'Z' | b'z' => Some((0, i + 1)),
        c @ (b'+' | b'-') => {
            let sign = if *c == b'-' { -1 } else { 1 };
            let h = d2(b, i + 1)? as i64;
            let (m, end) = if b.get(i + 3) == Some(&b':') {
                (d2(b, i + 4)? as i64, i + 6)
            } else if let Some(m) = d2(b, i + 3) {
                (m as i64, i + 5)
            } else {
                (0, i + 3)
            };
            Some((sign * (h * 3600 + m * 60), end))
        }
        _ => None,
    }
}

/// ISO 8601 / RFC 3339 `yyyy-mm-ddTHH:MM:SS[.frac][zone]` (a space or `T` between date and
/// time; `/` date separators too). Returns civil time, the zone offset if written, and the end.
pub fn iso(b: &[u8]) -> Option<(Civil, Option<i64>, usize)> {
    let year = d4(b, 0)?;
    let sep = *b.get(4)?;
    if sep != b'-' && sep != b'/' {
        return None;
    }
    let month = d2(b, 5)?;
    if b.get(7) != Some(&sep) {
        return None;
    }
    let day = d2(b, 8)?;
    if !matches!(b.get(10), Some(b'T') | Some(b' ')) {
        return None;
    }
    let (hour, minute, second, nanos, mut end) = hms(b, 11)?;
    let mut off = None;
    if let Some((o, e)) = zone(b, end) {
        off = Some(o);
        end = e;
    } else if b.get(end) == Some(&b' ') {
        // "2026-03-14 10:00:00 +0800"
        if let Some((o, e)) = zone(b, end + 1) {
            if matches!(b.get(e), None | Some(b' ') | Some(b']')) {
                off = Some(o);
                end = e;
            }
        }
    }
    Some((
        Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
        },
        off,
        end,
    ))
}

/// The common log format time `dd/Mon/yyyy:HH:MM:SS +zzzz` (without brackets).
pub fn clf(b: &[u8]) -> Option<(Civil, Option<i64>, usize)> {
    let day = d2(b, 0)?;
    if b.get(2) != Some(&b'/') || b.get(6) != Some(&b'/') {
        return None;
    }
    let month = month_abbr(&b[3..])?;
    let year = d4(b, 7)?;
    if b.get(11) != Some(&b':') {
        return None;
    }
    let (hour, minute, second, nanos, mut end) = hms(b, 12)?;
    let mut off = None;
    if b.get(end) == Some(&b' ') {
        if let Some((o, e)) = zone(b, end + 1) {
            off = Some(o);
            end = e;
        }
    }
    Some((
        Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
        },
        off,
        end,
    ))
}

/// Apache error log / ctime: `Www Mmm dd HH:MM:SS[.frac] yyyy`.
pub fn ctime(b: &[u8]) -> Option<(Civil, usize)> {
    if b.len() < 24 || b[3] != b' ' {
        return None;
    }
    let (mut c, end) = bsd(&b[4..])?;
    let end = end + 4;
    if b.get(end) != Some(&b' ') {
        return None;
    }
    c.year = d4(b, end + 1)?;
    Some((c, end + 5))
}

/// Unix epoch seconds with an optional fraction (`1364481363.243`).
pub fn epoch(b: &[u8]) -> Option<(Nanos, usize)> {
    let mut i = 0;
    let mut secs: i64 = 0;
    while let Some(&c) = b.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        secs = secs.checked_mul(10)?.checked_add((c - b'0') as i64)?;
        i += 1;
    }
    if !(9..=11).contains(&i) {
        return None;
    }
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut scale = 100_000_000i64;
        while let Some(&c) = b.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            nanos += (c - b'0') as i64 * scale;
            scale /= 10;
            i += 1;
        }
    }
    Some((secs * NS + nanos, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(tz: &str, now: &str) -> TimeCtx {
        TimeCtx::new(TimeZone::get(tz).unwrap(), now.parse().unwrap())
    }

    fn ts(s: &str) -> Nanos {
        s.parse::<jiff::Timestamp>().unwrap().as_nanosecond() as i64
    }

    #[test]
    fn days_from_civil_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
        assert_eq!(days_from_civil(2026, 3, 14), 20526);
    }

    #[test]
    fn bsd_timestamps_in_all_paddings() {
        let (c, e) = bsd(b"Mar 14 00:00:01 web01").unwrap();
        assert_eq!((c.month, c.day, c.hour, c.second, e), (3, 14, 0, 1, 15));
        let (c, e) = bsd(b"Jul  3 14:59:17 host").unwrap();
        assert_eq!((c.month, c.day, e), (7, 3, 15));
        let (c, e) = bsd(b"Feb 7 16:01:07 linux").unwrap();
        assert_eq!((c.day, e), (7, 14));
        let (c, _) = bsd(b"Mar 14 2026 00:00:01 x").unwrap();
        assert_eq!(c.year, 2026);
        let (c, e) = bsd(b"Mar 14 00:00:01.123456 x").unwrap();
        assert_eq!((c.nanos, e), (123_456_000, 22));
        assert!(bsd(b"Xyz 14 00:00:01").is_none());
        assert!(bsd(b"Mar 14 0:00:01").is_none());
    }

    #[test]
    fn year_is_inferred_backwards_across_new_year() {
        let c = ctx("UTC", "2026-01-02T10:00:00Z");
        assert_eq!(c.infer_year(12, 31), 2025);
        assert_eq!(c.infer_year(1, 2), 2026);
        assert_eq!(c.infer_year(1, 3), 2026); // a day of slack
        assert_eq!(c.infer_year(1, 5), 2025);
    }

    #[test]
    fn local_zone_applies_with_dst() {
        let mut c = ctx("Asia/Tokyo", "2026-06-01T00:00:00Z");
        let civ = Civil {
            year: 2026,
            month: 3,
            day: 14,
            hour: 9,
            minute: 0,
            second: 0,
            nanos: 0,
        };
        assert_eq!(c.local(civ), Some(ts("2026-03-14T00:00:00Z")));
        let mut c = ctx("America/New_York", "2026-12-01T00:00:00Z");
        let winter = Civil {
            year: 2026,
            month: 1,
            day: 10,
            hour: 12,
            minute: 0,
            second: 0,
            nanos: 0,
        };
        let summer = Civil { month: 7, ..winter };
        assert_eq!(c.local(winter), Some(ts("2026-01-10T17:00:00Z")));
        assert_eq!(c.local(summer), Some(ts("2026-07-10T16:00:00Z")));
    }

    #[test]
    fn iso_clf_ctime_epoch() {
        let (c, off, e) = iso(b"2026-03-14T10:20:30.5+08:00 host").unwrap();
        assert_eq!(
            (c.hour, c.nanos, off, e),
            (10, 500_000_000, Some(28800), 27)
        );
        let (_, off, _) = iso(b"2026-03-14 10:20:30 x").unwrap();
        assert_eq!(off, None);
        let (_, off, _) = iso(b"2019-03-24T07:51:48.123456Z ").unwrap();
        assert_eq!(off, Some(0));
        let (c, off, e) = clf(b"14/Mar/2026:00:00:01 +0000] \"GET").unwrap();
        assert_eq!(
            (c.year, c.month, c.second, off, e),
            (2026, 3, 1, Some(0), 26)
        );
        let (c, e) = ctime(b"Sun Jul 11 09:46:23.012345 2021] [x]").unwrap();
        assert_eq!(
            (c.year, c.month, c.day, c.nanos, e),
            (2021, 7, 11, 12_345_000, 31)
        );
        let (n, e) = epoch(b"1364481363.243:24287").unwrap();
        assert_eq!((n, e), (1_364_481_363_243_000_000, 14));
    }
}
