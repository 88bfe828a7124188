//! From a reported record to the normalized form every comparison and
//! blocking key reads: folded names with phonetic codes and nickname groups,
//! placeholders removed, digits-only phones and identifiers, a checked birth
//! date, a comparable street.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::nicknames::Nicknames;
use crate::record::{Alias, PatientRecord};
use crate::text::{digits, fold, letters, nysiis};

/// A folded name (letters only) and its NYSIIS code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Name {
    pub text: CompactString,
    pub code: CompactString,
}

impl Name {
    fn new(text: String) -> Name {
        let code = nysiis(&text).into();
        Name {
            text: text.into(),
            code,
        }
    }
}

/// A calendar date known to exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BirthDate {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl BirthDate {
    /// `YYYY-MM-DD` or `YYYYMMDD`; `None` unless the date exists and the
    /// year is plausible for a living patient's record.
    pub fn parse(text: &str) -> Option<BirthDate> {
        let d = digits(text.trim());
        if d.len() != 8 || (text.trim().len() != 8 && text.trim().len() != 10) {
            return None;
        }
        let year: u16 = d[0..4].parse().ok()?;
        let month: u8 = d[4..6].parse().ok()?;
        let day: u8 = d[6..8].parse().ok()?;
        BirthDate::new(year, month, day)
    }

    pub fn new(year: u16, month: u8, day: u8) -> Option<BirthDate> {
        let leap =
            (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        ((1880..=2100).contains(&year) && (1..=days).contains(&day)).then_some(BirthDate {
            year,
            month,
            day,
        })
    }

    /// The date with month and day exchanged, when that is a different real date.
    pub fn swapped(self) -> Option<BirthDate> {
        (self.month != self.day)
            .then(|| BirthDate::new(self.year, self.day, self.month))
            .flatten()
    }

    pub fn compact(self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    /// [`BirthDate::compact`] without allocating, as dates are compared
    /// digit by digit for every candidate; `None` for a date too large for
    /// eight digits (only a hand-built one can be).
    pub fn digits(self) -> Option<[u8; 8]> {
        if self.year > 9999 || self.month > 99 || self.day > 99 {
            return None;
        }
        let mut out = [b'0'; 8];
        let mut put = |at: usize, width: usize, mut value: u32| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, u32::from(self.year));
        put(4, 2, u32::from(self.month));
        put(6, 2, u32::from(self.day));
        Some(out)
    }
}

/// A patient ready for comparison. Missing and placeholder values are `None`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MatchRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given: Option<Name>,
    /// Canonical names of the given name's nickname groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub given_groups: Vec<CompactString>,
    /// Given names from aliases (e.g. a name used before adoption).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_given: Vec<CompactString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle: Option<Name>,
    /// The family name whole (HARDINWORTH for Hardin-Worth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Name>,
    /// Parts of a compound family name and alias family names, each whole
    /// and by part: any one shared with the other record is partial agreement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_family: Vec<Name>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<CompactString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<BirthDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<char>,
    /// `SYSTEM|TYPE` and value, both folded to letters and digits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<(CompactString, CompactString)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssn: Option<CompactString>,
    /// Ten digits (or seven when no area code was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<CompactString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub house_number: Option<CompactString>,
    /// Street name with standard abbreviations (LESLIE PL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<CompactString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<CompactString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<CompactString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip: Option<CompactString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mothers_maiden: Option<Name>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_birth: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_order: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardian_given: Option<Name>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardian_family: Option<Name>,
    /// Fields that held a placeholder (BABY BOY, 999-99-9999, ...) and were
    /// therefore treated as missing: worth a warning to the sender.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placeholders: Vec<String>,
}

impl MatchRecord {
    /// Enough identity to link to anyone: a name, and a valid birth date or
    /// an identifier. A name alone (or placeholders alone) can only ever
    /// become its own provisional person.
    pub fn is_linkable(&self) -> bool {
        (self.given.is_some() || self.family.is_some())
            && (self.birth_date.is_some() || self.ssn.is_some() || !self.identifiers.is_empty())
    }
}

/// Words that stand in for a given name nobody has chosen yet.
const PLACEHOLDER_GIVEN: &[&str] = &[
    "BABY", "BABYBOY", "BABYGIRL", "BOY", "GIRL", "INFANT", "NEWBORN", "TWIN", "TRIPLET", "MALE",
    "FEMALE", "UNKNOWN", "UNK", "NONE", "NONAME", "NFN", "FNU", "TEST", "BB", "BG", "BBY", "INF",
    "NB", "A", "B", "C", "I", "II", "III", "ONE", "TWO", "THREE",
];
/// "No middle name" written as one.
const PLACEHOLDER_MIDDLE: &[&str] = &["NMN", "NONE", "UNKNOWN", "UNK", "NA", "X"];
/// Words that, alone, stand in for an unknown family name.
const PLACEHOLDER_FAMILY: &[&str] = &[
    "UNKNOWN", "UNK", "NONE", "LNU", "FNU", "NONAME", "TEST", "PATIENT",
];
/// Generational suffixes, with the canonical spelling.
const SUFFIXES: &[(&str, &str)] = &[
    ("JR", "JR"),
    ("JUNIOR", "JR"),
    ("SR", "SR"),
    ("SENIOR", "SR"),
    ("II", "II"),
    ("2ND", "II"),
    ("III", "III"),
    ("3RD", "III"),
    ("IV", "IV"),
    ("4TH", "IV"),
    ("V", "V"),
    ("5TH", "V"),
];

fn suffix_of(word: &str) -> Option<&'static str> {
    SUFFIXES.iter().find(|(w, _)| *w == word).map(|(_, s)| *s)
}

/// Street words to their USPS abbreviations, so AVENUE and AVE agree.
const STREET_WORDS: &[(&str, &str)] = &[
    ("STREET", "ST"),
    ("AVENUE", "AVE"),
    ("AV", "AVE"),
    ("ROAD", "RD"),
    ("DRIVE", "DR"),
    ("LANE", "LN"),
    ("PLACE", "PL"),
    ("COURT", "CT"),
    ("CIRCLE", "CIR"),
    ("BOULEVARD", "BLVD"),
    ("PARKWAY", "PKWY"),
    ("HIGHWAY", "HWY"),
    ("TERRACE", "TER"),
    ("TRAIL", "TRL"),
    ("CRESCENT", "CRES"),
    ("SQUARE", "SQ"),
    ("APARTMENT", "APT"),
    ("NORTH", "N"),
    ("SOUTH", "S"),
    ("EAST", "E"),
    ("WEST", "W"),
];

const PLACEHOLDER_STREET: &[&str] = &[
    "UNKNOWN",
    "UNK",
    "NONE",
    "HOMELESS",
    "NOADDRESS",
    "NA",
    "GENERALDELIVERY",
];

/// US state names to postal codes, so MICHIGAN and MI agree.
const STATES: &[(&str, &str)] = &[
    ("ALABAMA", "AL"),
    ("ALASKA", "AK"),
    ("ARIZONA", "AZ"),
    ("ARKANSAS", "AR"),
    ("CALIFORNIA", "CA"),
    ("COLORADO", "CO"),
    ("CONNECTICUT", "CT"),
    ("DELAWARE", "DE"),
    ("DISTRICTOFCOLUMBIA", "DC"),
    ("FLORIDA", "FL"),
    ("GEORGIA", "GA"),
    ("HAWAII", "HI"),
    ("IDAHO", "ID"),
    ("ILLINOIS", "IL"),
    ("INDIANA", "IN"),
    ("IOWA", "IA"),
    ("KANSAS", "KS"),
    ("KENTUCKY", "KY"),
    ("LOUISIANA", "LA"),
    ("MAINE", "ME"),
    ("MARYLAND", "MD"),
    ("MASSACHUSETTS", "MA"),
    ("MICHIGAN", "MI"),
    ("MINNESOTA", "MN"),
    ("MISSISSIPPI", "MS"),
    ("MISSOURI", "MO"),
    ("MONTANA", "MT"),
    ("NEBRASKA", "NE"),
    ("NEVADA", "NV"),
    ("NEWHAMPSHIRE", "NH"),
    ("NEWJERSEY", "NJ"),
    ("NEWMEXICO", "NM"),
    ("NEWYORK", "NY"),
    ("NORTHCAROLINA", "NC"),
    ("NORTHDAKOTA", "ND"),
    ("OHIO", "OH"),
    ("OKLAHOMA", "OK"),
    ("OREGON", "OR"),
    ("PENNSYLVANIA", "PA"),
    ("PUERTORICO", "PR"),
    ("RHODEISLAND", "RI"),
    ("SOUTHCAROLINA", "SC"),
    ("SOUTHDAKOTA", "SD"),
    ("TENNESSEE", "TN"),
    ("TEXAS", "TX"),
    ("UTAH", "UT"),
    ("VERMONT", "VT"),
    ("VIRGINIA", "VA"),
    ("WASHINGTON", "WA"),
    ("WESTVIRGINIA", "WV"),
    ("WISCONSIN", "WI"),
    ("WYOMING", "WY"),
];

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Builds the normalized record.
pub fn normalize(record: &PatientRecord, nicknames: &Nicknames) -> MatchRecord {
    let mut out = MatchRecord::default();
    let mut suffix = present(&record.suffix).and_then(|s| suffix_of(&letters_digits(&fold(s))));

    // Given name: the first word that is not a placeholder or suffix; a
    // name made only of placeholder words is missing.
    if let Some(raw) = present(&record.given) {
        let words: Vec<String> = fold(raw).split(' ').map(str::to_owned).collect();
        let mut kept: Vec<&str> = Vec::new();
        for w in &words {
            if let Some(s) = suffix_of(w).filter(|_| words.len() > 1 && !kept.is_empty()) {
                suffix = suffix.or(Some(s));
            } else {
                kept.push(w);
            }
        }
        if kept.iter().all(|w| PLACEHOLDER_GIVEN.contains(w)) {
            out.placeholders.push("given".into());
        } else {
            // "MARY ANN" is one given name; joined letters compare whole.
            let text: String = kept.concat();
            out.given_groups = nicknames
                .canonicals(&text)
                .iter()
                .map(|c| CompactString::from(c.as_str()))
                .collect();
            if out.given_groups.is_empty() && kept.len() > 1 {
                out.given_groups = nicknames
                    .canonicals(kept[0])
                    .iter()
                    .map(|c| CompactString::from(c.as_str()))
                    .collect();
            }
            out.given = Some(Name::new(text));
        }
    }
    if let Some(raw) = present(&record.middle) {
        let text = letters(&fold(raw));
        if !text.is_empty() && !PLACEHOLDER_MIDDLE.contains(&text.as_str()) {
            out.middle = Some(Name::new(text));
        }
    }
    if let Some(raw) = present(&record.family) {
        let folded = fold(raw);
        let mut words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
        if words.len() > 1 {
            if let Some(s) = words.last().and_then(|w| suffix_of(w)) {
                suffix = suffix.or(Some(s));
                words.pop();
            }
        }
        let whole: String = words.concat();
        if whole.is_empty() || PLACEHOLDER_FAMILY.contains(&whole.as_str()) {
            out.placeholders.push("family".into());
        } else {
            if words.len() > 1 {
                out.other_family
                    .extend(words.iter().map(|w| Name::new((*w).to_owned())));
            }
            out.family = Some(Name::new(whole));
        }
    }
    // JOHN DOE and JANE DOE are how many systems write "unidentified".
    if matches!(
        (
            out.given.as_ref().map(|n| n.text.as_str()),
            out.family.as_ref().map(|n| n.text.as_str())
        ),
        (Some("JOHN" | "JANE" | "BABY"), Some("DOE"))
    ) {
        out.given = None;
        out.given_groups.clear();
        out.family = None;
        out.other_family.clear();
        out.placeholders.push("name".into());
    }
    for alias in &record.aliases {
        let (given, family) = match alias {
            Alias::Family(f) => (None, Some(f.as_str())),
            Alias::Name { given, family } => (present(given), present(family)),
        };
        if let Some(g) = given.map(|g| letters(&fold(g))).filter(|g| !g.is_empty()) {
            if !PLACEHOLDER_GIVEN.contains(&g.as_str()) && !out.other_given.iter().any(|o| *o == g)
            {
                out.other_given.push(g.into());
            }
        }
        if let Some(f) = family {
            let folded = fold(f);
            let words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
            let mut names: Vec<String> = vec![words.concat()];
            if words.len() > 1 {
                names.extend(words.iter().map(|w| (*w).to_owned()));
            }
            for n in names {
                if !n.is_empty()
                    && !PLACEHOLDER_FAMILY.contains(&n.as_str())
                    && !out.other_family.iter().any(|o| o.text == n)
                {
                    out.other_family.push(Name::new(n));
                }
            }
        }
    }
    out.suffix = suffix.map(CompactString::from);
    out.birth_date = present(&record.birth_date).and_then(BirthDate::parse);
    out.sex = present(&record.sex)
        .and_then(|s| s.chars().next())
        .map(|c| c.to_ascii_uppercase())
        .filter(|c| matches!(c, 'F' | 'M'));

    for id in &record.identifiers {
        let value = letters_digits(&fold(&id.value));
        if value.is_empty() {
            continue;
        }
        if is_placeholder_identifier(&value) {
            out.placeholders.push("identifier".into());
            continue;
        }
        let scope = format!(
            "{}|{}",
            letters_digits(&fold(&id.system)),
            letters_digits(&fold(&id.kind))
        );
        if !out
            .identifiers
            .iter()
            .any(|(s, v)| *s == scope && *v == value)
        {
            out.identifiers.push((scope.into(), value.into()));
        }
    }
    if let Some(raw) = present(&record.ssn) {
        let d = digits(raw);
        if valid_ssn(&d) {
            out.ssn = Some(d.into());
        } else {
            out.placeholders.push("ssn".into());
        }
    }
    if let Some(raw) = present(&record.phone) {
        let mut d = digits(raw);
        if d.len() == 11 && d.starts_with('1') {
            d.remove(0);
        }
        if (d.len() == 10 || d.len() == 7) && !is_placeholder_identifier(&d) {
            out.phone = Some(d.into());
        } else {
            out.placeholders.push("phone".into());
        }
    }
    if let Some(raw) = present(&record.street) {
        let (house, street) = street_parts(raw);
        if street
            .as_deref()
            .is_some_and(|s| PLACEHOLDER_STREET.contains(&s.replace(' ', "").as_str()))
        {
            out.placeholders.push("street".into());
        } else {
            out.house_number = house.map(CompactString::from);
            out.street = street.map(CompactString::from);
        }
    }
    out.city = present(&record.city)
        .map(|c| letters(&fold(c)))
        .filter(|c| !c.is_empty())
        .map(CompactString::from);
    out.state = present(&record.state).map(|s| {
        let s = letters(&fold(s));
        STATES
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, code)| (*code).to_owned())
            .unwrap_or(s)
            .into()
    });
    // ZIP+4 compares on its first five digits; four digits are a postcode
    // elsewhere or a ZIP whose leading zero a spreadsheet ate.
    out.zip = present(&record.zip)
        .map(digits)
        .filter(|z| z.len() >= 4)
        .map(|z| CompactString::from(&z[..z.len().min(5)]));
    out.mothers_maiden = present(&record.mothers_maiden_family)
        .map(|m| letters(&fold(m)))
        .filter(|m| !m.is_empty() && !PLACEHOLDER_FAMILY.contains(&m.as_str()))
        .map(Name::new);
    out.multiple_birth = record.multiple_birth;
    out.birth_order = record.birth_order.filter(|o| *o > 0);
    out.guardian_given = present(&record.guardian_given)
        .map(|g| letters(&fold(g)))
        .filter(|g| !g.is_empty() && !PLACEHOLDER_GIVEN.contains(&g.as_str()))
        .map(Name::new);
    out.guardian_family = present(&record.guardian_family)
        .map(|g| letters(&fold(g)))
        .filter(|g| !g.is_empty() && !PLACEHOLDER_FAMILY.contains(&g.as_str()))
        .map(Name::new);
    out
}

fn letters_digits(folded: &str) -> String {
    folded
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(char::from)
        .collect()
}

/// Values people type when they have no real number: one repeated
/// character (000000, 999-99-9999), a full run of nine or more digits
/// (123456789, 0123456789), or a word. A short run such as 123456 is a
/// real chart number at many small clinics and is kept.
fn is_placeholder_identifier(value: &str) -> bool {
    let b = value.as_bytes();
    let repeated = b.len() > 1 && b.iter().all(|c| *c == b[0]);
    let run = b.len() >= 9
        && b.iter().all(u8::is_ascii_digit)
        && (b
            .windows(2)
            .all(|w| w[1] == w[0] + 1 || (w[0] == b'9' && w[1] == b'0'))
            || b.windows(2).all(|w| w[0] == w[1] + 1));
    repeated || run || matches!(value, "UNKNOWN" | "UNK" | "NONE" | "NA" | "TEST")
}

/// The Social Security Administration never issues area 000, 666 or 9xx,
/// group 00 or serial 0000.
fn valid_ssn(d: &str) -> bool {
    d.len() == 9
        && !d.starts_with("000")
        && !d.starts_with("666")
        && !d.starts_with('9')
        && &d[3..5] != "00"
        && &d[5..] != "0000"
        && !is_placeholder_identifier(d)
}

/// `48 Leslie Place` → (`48`, `LESLIE PL`).
fn street_parts(raw: &str) -> (Option<String>, Option<String>) {
    let folded = fold(raw);
    let mut words = folded.split(' ').filter(|w| !w.is_empty()).peekable();
    let house = words
        .next_if(|w| w.as_bytes().first().is_some_and(u8::is_ascii_digit))
        .map(str::to_owned);
    let street: Vec<&str> = words
        .map(|w| {
            STREET_WORDS
                .iter()
                .find(|(long, _)| *long == w)
                .map(|(_, short)| *short)
                .unwrap_or(w)
        })
        .collect();
    let street = (!street.is_empty()).then(|| street.join(" "));
    (house, street)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(f: impl FnOnce(&mut PatientRecord)) -> MatchRecord {
        let mut r = PatientRecord {
            id: "x".into(),
            ..Default::default()
        };
        f(&mut r);
        normalize(
            &r,
            &Nicknames::parse("william\tbill,billy\n").expect("table"),
        )
    }

    #[test]
    fn placeholder_names_are_missing() {
        let m = rec(|r| {
            r.given = Some("Baby Boy".into());
            r.family = Some("Smith".into());
        });
        assert!(m.given.is_none());
        assert_eq!(m.family.as_ref().map(|n| n.text.as_str()), Some("SMITH"));
        assert_eq!(m.placeholders, ["given"]);
        let twin = rec(|r| r.given = Some("TWIN A".into()));
        assert!(twin.given.is_none());
        let doe = rec(|r| {
            r.given = Some("John".into());
            r.family = Some("Doe".into());
        });
        assert!(doe.given.is_none() && doe.family.is_none());
    }

    #[test]
    fn compound_family_names_keep_whole_and_parts_and_suffix_moves() {
        let m = rec(|r| {
            r.family = Some("Hardin-Worth Jr.".into());
            r.given = Some("Billy".into());
        });
        assert_eq!(
            m.family.as_ref().map(|n| n.text.as_str()),
            Some("HARDINWORTH")
        );
        let parts: Vec<_> = m.other_family.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(parts, ["HARDIN", "WORTH"]);
        assert_eq!(m.suffix.as_deref(), Some("JR"));
        assert_eq!(m.given_groups, ["WILLIAM"]);
    }

    #[test]
    fn dates_identifiers_phones_and_streets() {
        assert_eq!(BirthDate::parse("2007-12-16"), BirthDate::new(2007, 12, 16));
        assert_eq!(BirthDate::parse("20071216"), BirthDate::new(2007, 12, 16));
        assert_eq!(BirthDate::parse("2007-02-30"), None);
        assert_eq!(BirthDate::parse("1800-01-01"), None);
        assert_eq!(BirthDate::parse("2007-1-16"), None);
        assert_eq!(
            BirthDate::new(2020, 3, 4).and_then(BirthDate::swapped),
            BirthDate::new(2020, 4, 3)
        );
        assert_eq!(
            BirthDate::new(2020, 3, 14).and_then(BirthDate::swapped),
            None
        );
        let m = rec(|r| {
            r.ssn = Some("999-99-9999".into());
            r.phone = Some("1 (810) 433-3532".into());
            r.street = Some("48 Leslie Place".into());
            r.state = Some("Michigan".into());
            r.zip = Some("49555-1234".into());
            r.sex = Some("u".into());
        });
        assert_eq!(m.ssn, None);
        assert_eq!(m.placeholders, ["ssn"]);
        assert_eq!(m.phone.as_deref(), Some("8104333532"));
        assert_eq!(m.house_number.as_deref(), Some("48"));
        assert_eq!(m.street.as_deref(), Some("LESLIE PL"));
        assert_eq!(m.state.as_deref(), Some("MI"));
        assert_eq!(m.zip.as_deref(), Some("49555"));
        assert_eq!(m.sex, None);
        assert!(!valid_ssn("123456789") && valid_ssn("494523553"));
        assert!(is_placeholder_identifier("000000") && is_placeholder_identifier("1234567890"));
        assert!(!is_placeholder_identifier("123456") && !is_placeholder_identifier("7"));
    }

    #[test]
    fn linkable_needs_a_birth_date_and_a_name() {
        assert!(!rec(|r| r.given = Some("Ann".into())).is_linkable());
        assert!(!rec(|r| r.birth_date = Some("2020-01-01".into())).is_linkable());
        assert!(rec(|r| {
            r.family = Some("Lee".into());
            r.birth_date = Some("2020-01-01".into());
        })
        .is_linkable());
    }
}
