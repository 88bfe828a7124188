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

    /// What a sender meant by a birth date written another way: ISO and
    /// HL7 first ([`BirthDate::parse`]), then US `MM/DD/YYYY` and
    /// `MMDDYYYY`, a day and month written the other way round where the
    /// month cannot be one (`27/05/2002`, `2019-27-05`), and letters that
    /// scanning and keying put for digits (`12/O4/z018`). `None` when no
    /// reading gives a real date.
    pub fn parse_lenient(text: &str) -> Option<BirthDate> {
        if let Some(d) = BirthDate::parse(text) {
            return Some(d);
        }
        let cleaned: String = text
            .trim()
            .chars()
            .map(|c| match c {
                'o' | 'O' | 'Q' => '0',
                'i' | 'I' | 'l' | '|' | '!' => '1',
                'z' | 'Z' => '2',
                's' | 'S' => '5',
                'b' | 'G' => '6',
                'B' => '8',
                'g' | 'q' => '9',
                other => other,
            })
            .collect();
        let number = |s: &str| -> Option<u32> {
            (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        // Year, month and day in each order a sender may have meant, the
        // likeliest first.
        let readings: Vec<(u32, u32, u32)> = if cleaned.contains(['/', '-', '.']) {
            let parts: Vec<&str> = cleaned.split(['/', '-', '.']).collect();
            let [a, b, c] = parts.as_slice() else {
                return None;
            };
            let (a, b, c) = (number(a)?, number(b)?, number(c)?);
            if a > 31 {
                // Y-M-D, or Y-D-M when the month cannot be one.
                vec![(a, b, c), (a, c, b)]
            } else {
                // US M/D/Y, or D/M/Y.
                vec![(c, a, b), (c, b, a)]
            }
        } else {
            let d = digits(&cleaned);
            if d.len() != 8 || d.len() != cleaned.len() {
                return None;
            }
            let n = |r: std::ops::Range<usize>| d[r].parse::<u32>().ok();
            let (y1, m1, d1) = (n(0..4)?, n(4..6)?, n(6..8)?);
            let (m2, d2, y2) = (n(0..2)?, n(2..4)?, n(4..8)?);
            vec![(y1, d1, m1), (y2, m2, d2), (y2, d2, m2)]
        };
        readings.into_iter().find_map(|(y, m, d)| {
            BirthDate::new(
                u16::try_from(y).ok()?,
                u8::try_from(m).ok()?,
                u8::try_from(d).ok()?,
            )
        })
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
    /// The birth date was read from another way of writing it (a US
    /// date, a day and month the other way round, letters for digits): a
    /// guess that may confirm, never contradict.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub birth_date_repaired: bool,
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
    /// The secondary unit (apartment, suite, lot), letters and digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<CompactString>,
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
    /// Whether the record holds nothing beyond the name, birth date, sex,
    /// address and a clinic's chart number: no middle name, phone,
    /// responsible person, mother's maiden name, SSN or other identifier.
    /// Two such records agreeing is agreement on the least a VXU can carry;
    /// the IIS leaves merging them to a person.
    pub fn is_thin(&self) -> bool {
        self.middle.is_none()
            && self.phone.is_none()
            && self.guardian_given.is_none()
            && self.guardian_family.is_none()
            && self.mothers_maiden.is_none()
            && self.ssn.is_none()
            && self
                .identifiers
                .iter()
                .all(|(scope, _)| scope.ends_with("|MR"))
    }

    /// Enough identity to link to anyone: a name, and a valid birth date or
    /// an identifier. A name alone (or placeholders alone) can only ever
    /// become its own provisional person.
    pub fn is_linkable(&self) -> bool {
        (self.given.is_some() || self.family.is_some())
            && (self.birth_date.is_some() || self.ssn.is_some() || !self.identifiers.is_empty())
    }
}

/// Words that stand in for any name: none given, unknown, refused, a test,
/// a newborn's label, and the household and address words that land in a
/// name field when columns slip.
const NO_NAME: &[&str] = &[
    "UNKNOWN",
    "UNK",
    "UNKN",
    "NONE",
    "NONAME",
    "FNU",
    "ANONYMOUS",
    "ANON",
    "REFUSED",
    "NULL",
    "NA",
    "TEST",
    "TESTING",
    "DUMMY",
    "PATIENT",
    "XXX",
    "XX",
    "X",
    "ZZZ",
    "BABY",
    "BABYBOY",
    "BABYGIRL",
    "INFANT",
    "NEWBORN",
    "RESIDENT",
    "OCCUPANT",
    "HOUSEHOLD",
    "APT",
    "UNIT",
    "STE",
];
/// Words that stand in for a given name nobody has chosen yet, or that a
/// sender typed where the name belongs: a newborn's label, a relation or a
/// title instead of a name, "no first name" written out, and address
/// words. A given name made only of these (and [`NO_NAME`]) is no name.
const NO_GIVEN_NAME: &[&str] = &[
    // newborns and multiple births
    "BABE",
    "BEBE",
    "BB",
    "BG",
    "BBY",
    "BOY",
    "GIRL",
    "INF",
    "NB",
    "TWIN",
    "TWINA",
    "TWINB",
    "TRIPLET",
    "A",
    "B",
    "C",
    "I",
    "II",
    "III",
    "ONE",
    "TWO",
    "THREE",
    // no first name, not yet
    "NFN",
    "NOFIRSTNAME",
    "UNNAMED",
    "NOTGIVEN",
    "NOTSTATED",
    "PENDING",
    "TBD",
    "PT",
    // relations, roles and titles written instead of a name
    "CHILD",
    "KID",
    "MINOR",
    "SON",
    "DAUGHTER",
    "DAU",
    "HIJO",
    "HIJA",
    "NINO",
    "BROTHER",
    "SISTER",
    "MOTHER",
    "MOM",
    "MOTHERS",
    "FATHER",
    "DAD",
    "PARENT",
    "GUARDIAN",
    "GRANDSON",
    "GRANDDAUGHTER",
    "GRANDCHILD",
    "NEPHEW",
    "NIECE",
    "COUSIN",
    "HUSBAND",
    "WIFE",
    "SPOUSE",
    "FRIEND",
    "MR",
    "MRS",
    "MS",
    "MISS",
    "MISTER",
    "SIR",
    "MADAM",
    "SENOR",
    "SENORA",
    "SENORITA",
    "MALE",
    "FEMALE",
    "MAN",
    "WOMAN",
    "LADY",
    "GENT",
    "GENTLEMAN",
    "ADULT",
    "PERSON",
    "RESPONDENT",
    "HEAD",
    "HOUSE",
    "OF",
    "THE",
    "OLDEST",
    "YOUNGEST",
    "ELDEST",
    // address words
    "APARTMENT",
    "SUITE",
    "LOT",
    "ROOM",
    "RM",
    "BOX",
    "PO",
    "POBOX",
];
/// "No middle name" written as one.
const PLACEHOLDER_MIDDLE: &[&str] = &["NMN", "NONE", "UNKNOWN", "UNK", "NA", "X", "NULL"];
/// Words that, alone, stand in for an unknown family name (with
/// [`NO_NAME`]).
const NO_FAMILY_NAME: &[&str] = &["LNU", "NOLASTNAME", "HH", "FAMILY"];

fn placeholder_given(word: &str) -> bool {
    NO_NAME.contains(&word) || NO_GIVEN_NAME.contains(&word)
}

/// Whether a given name is only a placeholder (BABY GIRL, UNKNOWN, FNU,
/// ...): a name nobody chose, which matching treats as missing and which
/// should never replace a chosen name in a consolidated record.
pub fn is_placeholder_given(raw: &str) -> bool {
    let words = name_words(raw);
    !words.is_empty() && words.iter().all(|w| placeholder_given(w))
}

fn placeholder_family(word: &str) -> bool {
    NO_NAME.contains(&word) || NO_FAMILY_NAME.contains(&word)
}

/// Family name words that are placeholders only together with a placeholder
/// (or no) given name: DOE is a real family name, JOHN DOE is nobody.
const PLACEHOLDER_FAMILY_WITH_NO_GIVEN: &[&str] = &["DOE", "ROE"];
/// Multi-word fillers of a family field ("OF THE HOUSE"): every word one of these.
const FILLER_WORDS: &[&str] = &["OF", "THE", "HOUSE", "HOUSEHOLD", "HEAD", "MEMBER", "HHM"];

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

/// Street words to their USPS abbreviations (Publication 28's suffixes and
/// directionals, with the common misspellings it lists), so AVENUE, AVEN
/// and AVE agree.
const STREET_WORDS: &[(&str, &str)] = &[
    ("ALLEY", "ALY"),
    ("ALLY", "ALY"),
    ("ANNEX", "ANX"),
    ("ARCADE", "ARC"),
    ("AVENUE", "AVE"),
    ("AV", "AVE"),
    ("AVEN", "AVE"),
    ("AVENU", "AVE"),
    ("AVN", "AVE"),
    ("AVNUE", "AVE"),
    ("BAYOU", "BYU"),
    ("BEACH", "BCH"),
    ("BEND", "BND"),
    ("BLUFF", "BLF"),
    ("BOULEVARD", "BLVD"),
    ("BOUL", "BLVD"),
    ("BOULV", "BLVD"),
    ("BRANCH", "BR"),
    ("BRIDGE", "BRG"),
    ("BROOK", "BRK"),
    ("BYPASS", "BYP"),
    ("CANYON", "CYN"),
    ("CAUSEWAY", "CSWY"),
    ("CENTER", "CTR"),
    ("CENTRE", "CTR"),
    ("CENT", "CTR"),
    ("CNTR", "CTR"),
    ("CIRCLE", "CIR"),
    ("CIRC", "CIR"),
    ("CIRCL", "CIR"),
    ("CRCL", "CIR"),
    ("CLIFF", "CLF"),
    ("COMMON", "CMN"),
    ("CORNER", "COR"),
    ("COURSE", "CRSE"),
    ("COURT", "CT"),
    ("CRT", "CT"),
    ("COVE", "CV"),
    ("CREEK", "CRK"),
    ("CRESCENT", "CRES"),
    ("CREST", "CRST"),
    ("CROSSING", "XING"),
    ("DRIVE", "DR"),
    ("DRIV", "DR"),
    ("DRV", "DR"),
    ("ESTATES", "ESTS"),
    ("EXPRESSWAY", "EXPY"),
    ("EXTENSION", "EXT"),
    ("FALLS", "FLS"),
    ("FERRY", "FRY"),
    ("FIELD", "FLD"),
    ("FIELDS", "FLDS"),
    ("FOREST", "FRST"),
    ("FORK", "FRK"),
    ("FORT", "FT"),
    ("FREEWAY", "FWY"),
    ("GARDEN", "GDN"),
    ("GARDENS", "GDNS"),
    ("GATEWAY", "GTWY"),
    ("GLEN", "GLN"),
    ("GREEN", "GRN"),
    ("GROVE", "GRV"),
    ("HARBOR", "HBR"),
    ("HAVEN", "HVN"),
    ("HEIGHTS", "HTS"),
    ("HIGHWAY", "HWY"),
    ("HIGHWY", "HWY"),
    ("HILL", "HL"),
    ("HILLS", "HLS"),
    ("HOLLOW", "HOLW"),
    ("ISLAND", "IS"),
    ("JUNCTION", "JCT"),
    ("KNOLL", "KNL"),
    ("LAKE", "LK"),
    ("LAKES", "LKS"),
    ("LANDING", "LNDG"),
    ("LANE", "LN"),
    ("MANOR", "MNR"),
    ("MEADOW", "MDW"),
    ("MEADOWS", "MDWS"),
    ("MILL", "ML"),
    ("MOUNT", "MT"),
    ("MOUNTAIN", "MTN"),
    ("ORCHARD", "ORCH"),
    ("PARKWAY", "PKWY"),
    ("PARKWY", "PKWY"),
    ("PKY", "PKWY"),
    ("PLACE", "PL"),
    ("PLAIN", "PLN"),
    ("PLAINS", "PLNS"),
    ("PLAZA", "PLZ"),
    ("POINT", "PT"),
    ("PORT", "PRT"),
    ("PRAIRIE", "PR"),
    ("RANCH", "RNCH"),
    ("RIDGE", "RDG"),
    ("RIVER", "RIV"),
    ("ROAD", "RD"),
    ("ROUTE", "RTE"),
    ("SHORE", "SHR"),
    ("SPRING", "SPG"),
    ("SPRINGS", "SPGS"),
    ("SQUARE", "SQ"),
    ("STATION", "STA"),
    ("STREET", "ST"),
    ("STR", "ST"),
    ("STRT", "ST"),
    ("SUMMIT", "SMT"),
    ("TERRACE", "TER"),
    ("TERR", "TER"),
    ("TRACE", "TRCE"),
    ("TRAIL", "TRL"),
    ("TURNPIKE", "TPKE"),
    ("VALLEY", "VLY"),
    ("VIEW", "VW"),
    ("VILLAGE", "VLG"),
    ("VISTA", "VIS"),
    ("NORTH", "N"),
    ("SOUTH", "S"),
    ("EAST", "E"),
    ("WEST", "W"),
    ("NORTHEAST", "NE"),
    ("NORTHWEST", "NW"),
    ("SOUTHEAST", "SE"),
    ("SOUTHWEST", "SW"),
];

/// Words that start the secondary unit of an address (USPS Publication 28's
/// unit designators and their long forms): what follows is the unit.
const UNIT_WORDS: &[&str] = &[
    "APT",
    "APARTMENT",
    "UNIT",
    "STE",
    "SUITE",
    "RM",
    "ROOM",
    "LOT",
    "TRLR",
    "TRAILER",
    "SPC",
    "SPACE",
    "BLDG",
    "BUILDING",
    "FL",
    "FLOOR",
    "DEPT",
    "PH",
    "PENTHOUSE",
    "NO",
    "NUM",
    "NUMBER",
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

    // Given name: the words that are not a suffix; a name made only of
    // placeholder words is missing.
    if let Some(raw) = present(&record.given) {
        let words = name_words(raw);
        let mut kept: Vec<&str> = Vec::new();
        for w in &words {
            if let Some(s) = suffix_of(w).filter(|_| words.len() > 1 && !kept.is_empty()) {
                suffix = suffix.or(Some(s));
            } else {
                kept.push(w);
            }
        }
        if kept.iter().all(|w| placeholder_given(w)) {
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
        let text = name_words(raw).concat();
        if !text.is_empty() && !PLACEHOLDER_MIDDLE.contains(&text.as_str()) {
            out.middle = Some(Name::new(text));
        }
    }
    if let Some(raw) = present(&record.family) {
        let mut words = name_words(raw);
        if words.len() > 1 {
            if let Some(s) = words.last().and_then(|w| suffix_of(w)) {
                suffix = suffix.or(Some(s));
                words.pop();
            }
        }
        let whole: String = words.concat();
        let filler = words
            .iter()
            .all(|w| FILLER_WORDS.contains(&w.as_str()) || placeholder_family(w));
        if whole.is_empty() || filler || placeholder_family(&whole) {
            out.placeholders.push("family".into());
        } else {
            if words.len() > 1 {
                out.other_family
                    .extend(words.iter().map(|w| Name::new(w.clone())));
            }
            out.family = Some(Name::new(whole));
        }
    }
    // JOHN DOE and JANE DOE are how many systems write "unidentified"; a
    // DOE without a real given name is nobody either.
    let doe = out
        .family
        .as_ref()
        .is_some_and(|n| PLACEHOLDER_FAMILY_WITH_NO_GIVEN.contains(&n.text.as_str()));
    if doe
        && matches!(
            out.given.as_ref().map(|n| n.text.as_str()),
            None | Some("JOHN" | "JANE" | "BABY" | "RICHARD" | "MARY")
        )
    {
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
        if let Some(g) = given
            .map(|g| name_words(g).concat())
            .filter(|g| !g.is_empty())
        {
            if !placeholder_given(&g) && !out.other_given.iter().any(|o| *o == g) {
                out.other_given.push(g.into());
            }
        }
        if let Some(f) = family {
            let words = name_words(f);
            let mut names: Vec<String> = vec![words.concat()];
            if words.len() > 1 {
                names.extend(words.iter().cloned());
            }
            for n in names {
                if !n.is_empty()
                    && !placeholder_family(&n)
                    && !out.other_family.iter().any(|o| o.text == n)
                {
                    out.other_family.push(Name::new(n));
                }
            }
        }
    }
    out.suffix = suffix.map(CompactString::from);
    if let Some(raw) = present(&record.birth_date) {
        out.birth_date = BirthDate::parse(raw);
        if out.birth_date.is_none() {
            out.birth_date = BirthDate::parse_lenient(raw);
            out.birth_date_repaired = out.birth_date.is_some();
        }
    }
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
        let line = street_parts(raw);
        if line
            .street
            .as_deref()
            .is_some_and(|s| PLACEHOLDER_STREET.contains(&s.replace(' ', "").as_str()))
        {
            out.placeholders.push("street".into());
        } else {
            out.house_number = line.house.map(CompactString::from);
            out.street = line.street.map(CompactString::from);
            out.unit = line.unit.map(CompactString::from);
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
        .map(|m| name_words(m).concat())
        .filter(|m| !m.is_empty() && !placeholder_family(m))
        .map(Name::new);
    out.multiple_birth = record.multiple_birth;
    out.birth_order = record.birth_order.filter(|o| *o > 0);
    out.guardian_given = present(&record.guardian_given)
        .map(|g| name_words(g).concat())
        .filter(|g| !g.is_empty() && !placeholder_given(g))
        .map(Name::new);
    out.guardian_family = present(&record.guardian_family)
        .map(|g| name_words(g).concat())
        .filter(|g| !g.is_empty() && !placeholder_family(g))
        .map(Name::new);
    out
}

/// The words of a name as matching reads them: folded, letters only. A
/// digit inside a word of letters is read as the letter it is mistaken for
/// (4NNA is ANNA: OCR and keying slips); a word with no letter at all (a
/// house or apartment number that slipped into the name field) is dropped.
pub fn name_words(raw: &str) -> Vec<String> {
    fold(raw)
        .split(' ')
        .filter(|w| w.bytes().any(|b| b.is_ascii_alphabetic()))
        .map(|w| {
            w.bytes()
                .map(|b| match b {
                    b'0' => 'O',
                    b'1' => 'I',
                    b'2' => 'Z',
                    b'3' => 'E',
                    b'4' => 'A',
                    b'5' => 'S',
                    b'6' => 'G',
                    b'7' => 'T',
                    b'8' => 'B',
                    b'9' => 'G',
                    other => char::from(other),
                })
                .collect()
        })
        .collect()
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

/// A street line split as USPS addresses are: the house number, the street
/// name with its suffix and directionals abbreviated, and the secondary unit
/// (`48 Leslie Place Apt 3B` → `48`, `LESLIE PL`, `3B`). A PO box is the
/// street `PO BOX` with the box as its number.
#[derive(Debug, PartialEq, Eq)]
struct StreetLine {
    house: Option<String>,
    street: Option<String>,
    unit: Option<String>,
}

fn street_parts(raw: &str) -> StreetLine {
    // `#` starts a unit (`12 Main St #4`); folding would lose it.
    let (line, hash_unit) = match raw.split_once('#') {
        Some((line, unit)) => (line, Some(letters_digits(&fold(unit)))),
        None => (raw, None),
    };
    let folded = fold(line);
    let mut words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
    // P O BOX, PO BOX, POB, POST OFFICE BOX
    let po = match words.as_slice() {
        ["P", "O", "BOX", rest @ ..] | ["PO", "BOX", rest @ ..] | ["POB", rest @ ..] => Some(rest),
        ["POST", "OFFICE", "BOX", rest @ ..] => Some(rest),
        _ => None,
    };
    if let Some(rest) = po {
        return StreetLine {
            house: rest.first().map(|w| (*w).to_owned()),
            street: Some("PO BOX".into()),
            unit: None,
        };
    }
    let house = match words.first() {
        Some(w) if w.as_bytes().first().is_some_and(u8::is_ascii_digit) => {
            let h = (*w).to_owned();
            words.remove(0);
            Some(h)
        }
        _ => None,
    };
    let mut unit = hash_unit.filter(|u| !u.is_empty());
    if let Some(at) = words
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, w)| UNIT_WORDS.contains(w))
        .map(|(i, _)| i)
    {
        // `APT NUMBER 109`, `APT # 109`: the unit is what follows the
        // designators, from its first word with a digit when there is one
        // (a typo in a designator word must not make another unit).
        let rest: Vec<&str> = words[at + 1..]
            .iter()
            .copied()
            .filter(|w| !UNIT_WORDS.contains(w))
            .collect();
        let from = rest
            .iter()
            .position(|w| w.bytes().any(|b| b.is_ascii_digit()))
            .unwrap_or(0);
        let value: String = rest[from..].concat();
        if !value.is_empty() {
            unit = unit.or(Some(value));
        }
        words.truncate(at);
    }
    let street: Vec<&str> = words
        .iter()
        .map(|w| {
            STREET_WORDS
                .iter()
                .find(|(long, _)| long == w)
                .map(|(_, short)| *short)
                .unwrap_or(w)
        })
        .collect();
    StreetLine {
        house,
        street: (!street.is_empty()).then(|| street.join(" ")),
        unit,
    }
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
        // "Anonymous Anonymous" is nobody, and nobody links.
        let anon = rec(|r| {
            r.given = Some("Anonymous".into());
            r.family = Some("Anonymous".into());
            r.ssn = Some("123-45-6780".into());
        });
        assert!(anon.given.is_none() && anon.family.is_none() && !anon.is_linkable());
        // An address fragment in the name fields is no name.
        let apt = rec(|r| {
            r.given = Some("APT".into());
            r.family = Some("5".into());
        });
        assert!(apt.given.is_none() && apt.family.is_none());
        // Relations, titles and refusals written for a name.
        for word in [
            "Son",
            "MOM",
            "Daughter Of",
            "Mr",
            "Refused",
            "Unknown",
            "Test",
        ] {
            assert!(
                rec(|r| r.given = Some(word.into())).given.is_none(),
                "{word}"
            );
        }
        let household = rec(|r| r.family = Some("Of The House".into()));
        assert!(household.family.is_none());
        // Digits inside a name are the letters a scanner mistook.
        assert_eq!(
            rec(|r| r.given = Some("4nna".into())).given.map(|n| n.text),
            Some("ANNA".into())
        );
    }

    #[test]
    fn streets_split_into_house_street_and_unit() {
        let parts = |s: &str| {
            let m = rec(|r| r.street = Some(s.into()));
            (m.house_number, m.street, m.unit)
        };
        let p = |h: &str, s: &str, u: Option<&str>| {
            (
                Some(CompactString::from(h)),
                Some(CompactString::from(s)),
                u.map(CompactString::from),
            )
        };
        assert_eq!(
            parts("48 Leslie Place Apt 3B"),
            p("48", "LESLIE PL", Some("3B"))
        );
        assert_eq!(parts("48 LESLIE PL #3b"), p("48", "LESLIE PL", Some("3B")));
        assert_eq!(
            parts("830 NE 50th Terrace Apt apt nkmber 109"),
            p("830", "NE 50TH TER", Some("109"))
        );
        assert_eq!(parts("12 North Main Street"), p("12", "N MAIN ST", None));
        assert_eq!(parts("P.O. Box 77"), p("77", "PO BOX", None));
    }

    #[test]
    fn birth_dates_written_other_ways_are_read_as_guesses() {
        let d = |s: &str| BirthDate::parse_lenient(s);
        assert_eq!(d("2018-12-04"), BirthDate::new(2018, 12, 4));
        assert_eq!(d("12/04/2018"), BirthDate::new(2018, 12, 4));
        assert_eq!(d("12/O4/z018"), BirthDate::new(2018, 12, 4));
        assert_eq!(d("27/05/2002"), BirthDate::new(2002, 5, 27));
        assert_eq!(d("20192705"), BirthDate::new(2019, 5, 27));
        assert_eq!(d("12012o16"), BirthDate::new(2016, 12, 1));
        assert_eq!(d("18221980"), None);
        assert_eq!(d("not a date"), None);
        let m = rec(|r| r.birth_date = Some("12/04/2018".into()));
        assert!(m.birth_date_repaired);
        let m = rec(|r| r.birth_date = Some("2018-12-04".into()));
        assert!(!m.birth_date_repaired);
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
