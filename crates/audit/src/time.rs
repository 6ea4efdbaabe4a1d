//! UTC timestamps with nanosecond precision, serialized as RFC 3339.
//!
//! The canonical form always has nine fraction digits and a `Z` suffix
//! (`2026-03-01T12:00:00.000000042Z`) so that a record's serialization, and therefore its leaf
//! hash, is deterministic. Parsing accepts only that form.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Nanoseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

const NANOS_PER_SEC: u64 = 1_000_000_000;

impl Timestamp {
    /// The current time (the epoch if the clock is before it).
    #[must_use]
    pub fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// From nanoseconds since the epoch.
    #[must_use]
    pub const fn from_unix_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// Nanoseconds since the epoch.
    #[must_use]
    pub const fn unix_nanos(self) -> u64 {
        self.0
    }

    /// Milliseconds since the epoch (OCSF uses these).
    #[must_use]
    pub const fn unix_millis(self) -> u64 {
        self.0 / 1_000_000
    }

    /// Splits into civil date and time fields:
    /// (year, month, day, hour, minute, second, nanosecond).
    fn fields(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let secs = self.0 / NANOS_PER_SEC;
        let nanos = u32::try_from(self.0 % NANOS_PER_SEC).unwrap_or(0);
        let days = i64::try_from(secs / 86_400).unwrap_or(0);
        let rem = u32::try_from(secs % 86_400).unwrap_or(0);
        let (y, m, d) = civil_from_days(days);
        (y, m, d, rem / 3600, rem / 60 % 60, rem % 60, nanos)
    }

    /// RFC 3339 with `digits` fraction digits (0..=9), e.g. 6 for RFC 5424 syslog.
    #[must_use]
    pub fn to_rfc3339(self, digits: u32) -> String {
        let (y, mo, d, h, mi, s, n) = self.fields();
        let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
        let digits = digits.min(9);
        if digits > 0 {
            let frac = n / 10u32.pow(9 - digits);
            out.push_str(&format!(".{frac:0width$}", width = digits as usize));
        }
        out.push('Z');
        out
    }

    /// Parses the canonical form `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
    ///
    /// # Errors
    /// Returns a description of the problem if the string is not in that exact form.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let b = s.as_bytes();
        if b.len() != 30 {
            return Err("timestamp must look like 2026-01-02T03:04:05.123456789Z");
        }
        let num = |from: usize, to: usize| -> Result<u64, &'static str> {
            let part = s.get(from..to).ok_or("bad timestamp")?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err("timestamp has a non-digit where a digit belongs");
            }
            part.parse::<u64>().map_err(|_| "bad timestamp number")
        };
        let sep = |i: usize, c: u8| b.get(i) == Some(&c);
        if !(sep(4, b'-')
            && sep(7, b'-')
            && sep(10, b'T')
            && sep(13, b':')
            && sep(16, b':')
            && sep(19, b'.')
            && sep(29, b'Z'))
        {
            return Err("timestamp must look like 2026-01-02T03:04:05.123456789Z");
        }
        let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
        let (h, mi, sec, n) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 29)?);
        if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
            return Err("timestamp date out of range");
        }
        if h > 23 || mi > 59 || sec > 59 || y < 1970 {
            return Err("timestamp time out of range");
        }
        let days = u64::try_from(days_from_civil(
            i64::try_from(y).map_err(|_| "year")?,
            u32::try_from(mo).map_err(|_| "month")?,
            u32::try_from(d).map_err(|_| "day")?,
        ))
        .map_err(|_| "timestamp before 1970")?;
        let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
        secs.checked_mul(NANOS_PER_SEC)
            .and_then(|x| x.checked_add(n))
            .map(Self)
            .ok_or("timestamp out of range")
    }
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339(9))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339(9))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let t = Timestamp::from_unix_nanos(1_767_225_600_123_456_789);
        assert_eq!(t.to_rfc3339(9), "2026-01-01T00:00:00.123456789Z");
        assert_eq!(t.to_rfc3339(6), "2026-01-01T00:00:00.123456Z");
        assert_eq!(t.to_rfc3339(0), "2026-01-01T00:00:00Z");
        assert_eq!(Timestamp::parse("2026-01-01T00:00:00.123456789Z"), Ok(t));
        assert_eq!(
            Timestamp::parse("1970-01-01T00:00:00.000000000Z"),
            Ok(Timestamp(0))
        );
        let leap = Timestamp::parse("2024-02-29T23:59:59.999999999Z").unwrap();
        assert_eq!(leap.to_string(), "2024-02-29T23:59:59.999999999Z");
    }

    #[test]
    fn round_trips_many_days() {
        for day in (0..40_000u64).step_by(7) {
            let t = Timestamp(day * 86_400 * NANOS_PER_SEC + 3_723_000_000_017);
            assert_eq!(Timestamp::parse(&t.to_string()), Ok(t));
        }
    }

    #[test]
    fn rejects_non_canonical() {
        for bad in [
            "",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.123456789+00:00",
            "2026-13-01T00:00:00.000000000Z",
            "2025-02-29T00:00:00.000000000Z",
            "2026-01-01T24:00:00.000000000Z",
            "2026-01-01 00:00:00.000000000Z",
            "2026-01-01T00:00:00.00000000aZ",
            "+026-01-01T00:00:00.000000000Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }
}
