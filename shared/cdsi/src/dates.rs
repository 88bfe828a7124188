//! Calendar dates and the CDSi date arithmetic (logic specification, "Date
//! calculations": CALCDT-1 … CALCDT-5).
//!
//! The specification counts ages and intervals in calendar units, not in
//! days: adding years keeps month and day, adding months keeps the day,
//! weeks are 7 days, and a date that does not exist (31 September) moves to
//! the first day of the next month. Years are added first, then months, then
//! weeks and days. That is why a [`Duration`] keeps the three parts apart.

use std::fmt;

use serde::{Serialize, Serializer};

/// A calendar date (proleptic Gregorian). Field order makes the derived
/// ordering chronological.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Date {
    year: i32,
    month: u8,
    day: u8,
}

/// The default "effective" date the specification assumes where supporting
/// data leaves one empty (01/01/1900).
pub const MIN_DATE: Date = Date {
    year: 1900,
    month: 1,
    day: 1,
};

/// The default "cessation"/end date the specification assumes (12/31/2999).
pub const MAX_DATE: Date = Date {
    year: 2999,
    month: 12,
    day: 31,
};

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

impl Date {
    /// A date, or `None` when it does not exist.
    pub fn new(year: i32, month: u8, day: u8) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date { year, month, day })
    }

    pub fn year(self) -> i32 {
        self.year
    }
    pub fn month(self) -> u8 {
        self.month
    }
    pub fn day(self) -> u8 {
        self.day
    }

    /// Parses `YYYY-MM-DD` (ISO), `YYYYMMDD` (the supporting data's
    /// effective/cessation dates) or `MM/DD/YYYY` (its immunity birth dates).
    pub fn parse(text: &str) -> Option<Date> {
        let t = text.trim();
        let num = |s: &str| -> Option<i32> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let (y, m, d) = if t.len() == 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-' {
            (num(&t[0..4])?, num(&t[5..7])?, num(&t[8..10])?)
        } else if t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) {
            (num(&t[0..4])?, num(&t[4..6])?, num(&t[6..8])?)
        } else if t.len() == 10 && t.as_bytes()[2] == b'/' && t.as_bytes()[5] == b'/' {
            (num(&t[6..10])?, num(&t[0..2])?, num(&t[3..5])?)
        } else {
            return None;
        };
        Date::new(y, u8::try_from(m).ok()?, u8::try_from(d).ok()?)
    }

    /// Days since 1970-01-01 (Howard Hinnant's civil algorithm).
    fn to_days(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    fn from_days(z: i64) -> Date {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }

    /// This date plus (or minus) a number of days.
    pub fn add_days(self, days: i64) -> Date {
        Date::from_days(self.to_days() + days)
    }

    /// Days from `self` to `other` (positive when `other` is later).
    pub fn days_until(self, other: Date) -> i64 {
        other.to_days() - self.to_days()
    }

    /// This date plus a CDSi duration: years, then months (an impossible
    /// day moves to the 1st of the next month, CALCDT-5), then days.
    pub fn plus(self, d: Duration) -> Date {
        let total_months = i64::from(self.year) * 12 + i64::from(self.month) - 1
            + i64::from(d.years) * 12
            + i64::from(d.months);
        let year = total_months.div_euclid(12) as i32;
        let month = (total_months.rem_euclid(12) + 1) as u8;
        let shifted = match Date::new(year, month, self.day) {
            Some(date) => date,
            // CALCDT-5: the day does not exist in that month.
            None => {
                if month == 12 {
                    Date {
                        year: year + 1,
                        month: 1,
                        day: 1,
                    }
                } else {
                    Date {
                        year,
                        month: month + 1,
                        day: 1,
                    }
                }
            }
        };
        if d.days == 0 {
            shifted
        } else {
            shifted.add_days(i64::from(d.days))
        }
    }
}

impl std::ops::Add<Duration> for Date {
    type Output = Date;
    fn add(self, d: Duration) -> Date {
        self.plus(d)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An age or interval of the supporting data, e.g. "6 months - 4 days" or
/// "4 years + 4 weeks": kept as years, months and days (weeks become days)
/// because each unit is added by its own rule.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Duration {
    pub years: i32,
    pub months: i32,
    pub days: i32,
}

impl Duration {
    pub const ZERO: Duration = Duration {
        years: 0,
        months: 0,
        days: 0,
    };

    pub fn days(days: i32) -> Duration {
        Duration {
            years: 0,
            months: 0,
            days,
        }
    }

    /// Parses the supporting data's text. Empty text and "n/a" mean "no
    /// value" (`Ok(None)`); anything else unreadable is an error naming it.
    pub fn parse(text: &str) -> Result<Option<Duration>, String> {
        let t = text.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("n/a") {
            return Ok(None);
        }
        let mut out = Duration::ZERO;
        let mut sign = 1i32;
        let mut tokens = t.split_whitespace().peekable();
        let mut expect_term = true;
        while let Some(tok) = tokens.next() {
            if !expect_term {
                sign = match tok {
                    "+" => 1,
                    "-" => -1,
                    _ => return Err(format!("duration {t:?}: expected + or -, found {tok:?}")),
                };
                expect_term = true;
                continue;
            }
            let n: i32 = tok
                .parse()
                .map_err(|_| format!("duration {t:?}: {tok:?} is not a number"))?;
            let unit = tokens
                .next()
                .ok_or_else(|| format!("duration {t:?}: number {n} has no unit"))?;
            let unit = unit.to_ascii_lowercase();
            let n = sign * n;
            match unit.trim_end_matches('s') {
                "year" => out.years += n,
                "month" => out.months += n,
                "week" => out.days += 7 * n,
                "day" => out.days += n,
                _ => return Err(format!("duration {t:?}: unknown unit {unit:?}")),
            }
            expect_term = false;
        }
        if expect_term {
            return Err(format!("duration {t:?}: ends with an operator"));
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }
    fn dur(s: &str) -> Duration {
        Duration::parse(s).unwrap().unwrap()
    }

    #[test]
    fn parses_the_three_date_forms() {
        assert_eq!(d("2000-01-31"), Date::new(2000, 1, 31).unwrap());
        assert_eq!(d("20000131"), Date::new(2000, 1, 31).unwrap());
        assert_eq!(d("01/31/2000"), Date::new(2000, 1, 31).unwrap());
        assert!(Date::parse("2001-02-29").is_none());
        assert!(Date::parse("not a date").is_none());
        assert_eq!(d("2000-01-31").to_string(), "2000-01-31");
    }

    #[test]
    fn adding_years_keeps_month_and_day() {
        // CALCDT-1
        assert_eq!(d("2000-01-01").plus(dur("3 years")), d("2003-01-01"));
        // 29 February plus a year does not exist: 1 March (CALCDT-5).
        assert_eq!(d("2000-02-29").plus(dur("1 year")), d("2001-03-01"));
    }

    #[test]
    fn adding_months_keeps_the_day() {
        // CALCDT-2
        assert_eq!(d("2000-01-01").plus(dur("6 months")), d("2000-07-01"));
        assert_eq!(d("2000-11-01").plus(dur("6 months")), d("2001-05-01"));
    }

    #[test]
    fn adding_months_to_the_31st_moves_to_the_first_of_next_month() {
        // CALCDT-5: 31 September and 31 February do not exist.
        assert_eq!(d("2000-03-31").plus(dur("6 months")), d("2000-10-01"));
        assert_eq!(d("2000-08-31").plus(dur("6 months")), d("2001-03-01"));
        assert_eq!(d("2000-12-31").plus(dur("2 months")), d("2001-03-01"));
        assert_eq!(
            d("2000-11-30").plus(dur("3 months")),
            d("2001-03-02").add_days(-1)
        );
    }

    #[test]
    fn weeks_and_days_count_days() {
        // CALCDT-3
        assert_eq!(d("2000-01-01").plus(dur("3 days")), d("2000-01-04"));
        assert_eq!(d("2000-01-01").plus(dur("3 weeks")), d("2000-01-22"));
        assert_eq!(d("2000-02-01").plus(dur("5 weeks")), d("2000-03-07"));
        assert_eq!(d("2001-02-01").plus(dur("5 weeks")), d("2001-03-08"));
        assert_eq!(d("2000-01-15").plus(Duration::days(-4)), d("2000-01-11"));
    }

    #[test]
    fn months_before_days_and_grace_periods() {
        // CALCDT-4: years, then months, then days.
        assert_eq!(
            d("2000-01-31").plus(dur("6 months - 4 days")),
            d("2000-07-27")
        );
        // The 4-day grace period of an absolute minimum age.
        assert_eq!(
            d("2008-08-06").plus(dur("12 months - 4 days")),
            d("2009-08-02")
        );
        assert_eq!(
            d("2020-01-01").plus(dur("4 years + 4 weeks")),
            d("2024-01-29")
        );
        assert_eq!(
            d("2020-01-01").plus(dur("8 months + 1 day")),
            d("2020-09-02")
        );
    }

    #[test]
    fn parses_supporting_data_durations() {
        assert_eq!(Duration::parse("").unwrap(), None);
        assert_eq!(Duration::parse("n/a").unwrap(), None);
        assert_eq!(
            dur("19 years  - 4 days"),
            Duration {
                years: 19,
                months: 0,
                days: -4
            }
        );
        assert_eq!(dur("1 years - 4 days").years, 1);
        assert_eq!(dur("0 days"), Duration::ZERO);
        assert!(Duration::parse("6 fortnights").is_err());
        assert!(Duration::parse("6 weeks -").is_err());
        assert!(Duration::parse("six weeks").is_err());
    }

    #[test]
    fn day_arithmetic_round_trips() {
        let start = d("1899-12-25");
        let mut day = start;
        for i in 0..100_000 {
            assert_eq!(start.days_until(day), i);
            let next = day.add_days(1);
            assert!(next > day);
            day = next;
        }
    }
}
