//! HL7 date and time primitives (DT, DTM, TM) with calendar checks, and the
//! clock used to stamp outgoing messages.

use std::time::{SystemTime, UNIX_EPOCH};

/// A parsed DTM: precision may stop at any level, as HL7 allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime {
    pub year: u16,
    pub month: Option<u8>,
    pub day: Option<u8>,
    pub hour: Option<u8>,
    pub minute: Option<u8>,
    pub second: Option<u8>,
    /// Offset from UTC in minutes when the value carries `+/-ZZZZ`.
    pub offset_minutes: Option<i16>,
}

/// A calendar date (the day part of a DTM).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    pub fn to_hl7(&self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }
    pub fn iso(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// Days since 1970-01-01 (proleptic Gregorian), for date differences.
    pub fn day_number(&self) -> i64 {
        let (y, m, d) = (
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
        era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
    }
}

impl DateTime {
    pub fn date(&self) -> Option<Date> {
        Some(Date {
            year: self.year,
            month: self.month?,
            day: self.day?,
        })
    }
}

/// Why a date/time value is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateError(pub String);

fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

pub fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

/// Parses `YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`.
pub fn parse_dtm(s: &str) -> Result<DateTime, DateError> {
    let b = s.as_bytes();
    let (body, offset) = match b.iter().position(|&c| c == b'+' || c == b'-') {
        Some(i) => {
            let tz = &b[i + 1..];
            if tz.len() != 4 {
                return Err(DateError(format!(
                    "time zone '{}' must be +/-HHMM",
                    &s[i..]
                )));
            }
            let hh =
                digits(&tz[..2]).ok_or_else(|| DateError("time zone is not numeric".into()))?;
            let mm =
                digits(&tz[2..]).ok_or_else(|| DateError("time zone is not numeric".into()))?;
            if hh > 14 || mm > 59 {
                return Err(DateError(format!(
                    "time zone '{}' is out of range",
                    &s[i..]
                )));
            }
            let sign = if b[i] == b'-' { -1 } else { 1 };
            (&b[..i], Some(sign * (hh * 60 + mm) as i16))
        }
        None => (b, None),
    };
    let (main, frac) = match body.iter().position(|&c| c == b'.') {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    if let Some(f) = frac {
        if main.len() != 14 || f.is_empty() || f.len() > 4 || digits(f).is_none() {
            return Err(DateError(
                "fractional seconds need a full YYYYMMDDHHMMSS before them".into(),
            ));
        }
    }
    if !matches!(main.len(), 4 | 6 | 8 | 10 | 12 | 14) || digits(main).is_none() {
        return Err(DateError(format!("'{s}' is not YYYY[MM[DD[HH[MM[SS]]]]]")));
    }
    let part = |a: usize| digits(&main[a..a + 2]).map(|v| v as u8);
    let year = digits(&main[..4]).unwrap_or(0) as u16;
    let month = if main.len() >= 6 { part(4) } else { None };
    let day = if main.len() >= 8 { part(6) } else { None };
    let hour = if main.len() >= 10 { part(8) } else { None };
    let minute = if main.len() >= 12 { part(10) } else { None };
    let second = if main.len() >= 14 { part(12) } else { None };
    if let Some(m) = month {
        if !(1..=12).contains(&m) {
            return Err(DateError(format!("month {m:02} does not exist")));
        }
        if let Some(d) = day {
            if d == 0 || d > days_in_month(year, m) {
                return Err(DateError(format!(
                    "day {d:02} does not exist in {year:04}-{m:02}"
                )));
            }
        }
    }
    if hour.is_some_and(|h| h > 23)
        || minute.is_some_and(|m| m > 59)
        || second.is_some_and(|s| s > 59)
    {
        return Err(DateError("time of day is out of range".into()));
    }
    if year < 1800 {
        return Err(DateError(format!("year {year} is not plausible")));
    }
    Ok(DateTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
        offset_minutes: offset,
    })
}

/// DT: `YYYY[MM[DD]]`.
pub fn parse_dt(s: &str) -> Result<DateTime, DateError> {
    if s.len() > 8 || s.contains(['+', '-', '.']) {
        return Err(DateError(format!("'{s}' is not YYYY[MM[DD]]")));
    }
    parse_dtm(s)
}

/// TM: `HH[MM[SS[.S...]]][+/-ZZZZ]`.
pub fn check_tm(s: &str) -> Result<(), DateError> {
    let main: &str = s.split(['+', '-']).next().unwrap_or("");
    let main = main.split('.').next().unwrap_or("");
    let b = main.as_bytes();
    if !matches!(b.len(), 2 | 4 | 6) || digits(b).is_none() {
        return Err(DateError(format!("'{s}' is not HH[MM[SS]]")));
    }
    let h = digits(&b[..2]).unwrap_or(99);
    let m = if b.len() >= 4 {
        digits(&b[2..4]).unwrap_or(99)
    } else {
        0
    };
    let sec = if b.len() >= 6 {
        digits(&b[4..6]).unwrap_or(99)
    } else {
        0
    };
    if h > 23 || m > 59 || sec > 59 {
        return Err(DateError("time of day is out of range".into()));
    }
    Ok(())
}

/// The moment a message is processed; injected so tests can fix "today".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Seconds since the Unix epoch, UTC.
    pub unix_seconds: i64,
}

impl Clock {
    pub fn now() -> Clock {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Clock { unix_seconds: secs }
    }

    pub fn at(unix_seconds: i64) -> Clock {
        Clock { unix_seconds }
    }

    fn civil(&self) -> (i64, u8, u8, u8, u8, u8) {
        let days = self.unix_seconds.div_euclid(86_400);
        let rem = self.unix_seconds.rem_euclid(86_400);
        // Howard Hinnant's days-to-civil algorithm.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let y = yoe + era * 400 + i64::from(m <= 2);
        (
            y,
            m,
            d,
            (rem / 3600) as u8,
            ((rem % 3600) / 60) as u8,
            (rem % 60) as u8,
        )
    }

    pub fn today(&self) -> Date {
        let (y, m, d, ..) = self.civil();
        Date {
            year: y.clamp(0, 9999) as u16,
            month: m,
            day: d,
        }
    }

    /// `YYYYMMDDHHMMSS+0000`, the TS-with-time-zone form MSH-7 requires (IZ-TS_Z).
    pub fn hl7_timestamp(&self) -> String {
        let (y, m, d, hh, mm, ss) = self.civil();
        format!("{y:04}{m:02}{d:02}{hh:02}{mm:02}{ss:02}+0000")
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, a FHIR instant / dateTime in UTC.
    pub fn instant(&self) -> String {
        let (y, m, d, hh, mm, ss) = self.civil();
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_utc_rfc3339() {
        assert_eq!(Clock::at(0).instant(), "1970-01-01T00:00:00Z");
        assert_eq!(Clock::at(1_767_225_599).instant(), "2025-12-31T23:59:59Z");
    }

    #[test]
    fn day_numbers_count_days() {
        let d = |y, m, day| {
            Date {
                year: y,
                month: m,
                day,
            }
            .day_number()
        };
        assert_eq!(d(1970, 1, 1), 0);
        assert_eq!(d(2000, 3, 1) - d(2000, 2, 28), 2);
        assert_eq!(d(2024, 5, 7) - d(2024, 5, 5), 2);
        assert_eq!(d(2025, 1, 1) - d(2024, 1, 1), 366);
    }

    #[test]
    fn parses_precisions_and_offsets() {
        let t = parse_dtm("20150624073733.994-0500").unwrap();
        assert_eq!(
            (t.year, t.month, t.day, t.hour),
            (2015, Some(6), Some(24), Some(7))
        );
        assert_eq!(t.offset_minutes, Some(-300));
        assert!(parse_dtm("2015").is_ok());
        assert!(parse_dtm("201504").is_ok());
        assert!(parse_dtm("20240229").is_ok());
    }

    #[test]
    fn rejects_impossible_values() {
        for bad in [
            "20251301",
            "20230229",
            "20150632",
            "201201130000-500",
            "2015062",
            "abcd",
            "",
            "20150624250000",
            "1700",
        ] {
            assert!(parse_dtm(bad).is_err(), "{bad}");
        }
        assert!(parse_dt("20150101-0500").is_err());
    }

    #[test]
    fn clock_formats_utc() {
        let c = Clock::at(1_435_000_000);
        assert_eq!(c.hl7_timestamp(), "20150622190640+0000");
        assert_eq!(
            c.today(),
            Date {
                year: 2015,
                month: 6,
                day: 22
            }
        );
        assert_eq!(
            Clock::at(951_782_400).today(),
            Date {
                year: 2000,
                month: 2,
                day: 29
            }
        );
    }
}
