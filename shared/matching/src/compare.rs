//! Multi-level field comparisons: each field of a pair lands on one level
//! (exact, nickname, close, ..., different, missing) whose weight the
//! configuration gives.

use serde::Serialize;

use crate::config::{Config, Similarity};
use crate::normalize::{BirthDate, MatchRecord, Name};
use crate::text::{jaro_winkler, one_slip, one_slip_bytes, within_edits};

/// The fields compared, in explanation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Given,
    Middle,
    Family,
    BirthDate,
    Sex,
    Phone,
    Address,
    MothersMaiden,
    Guardian,
    Identifier,
    Ssn,
}

/// Comparison outcomes; each field uses the subset `Field::levels` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Exact,
    Nickname,
    Swapped,
    Partial,
    Close,
    Phonetic,
    Initial,
    MonthDaySwap,
    OneDigit,
    YearOff,
    Local,
    Locality,
    Different,
    Missing,
}

impl Level {
    pub const COUNT: usize = Level::Missing as usize + 1;

    pub fn name(self) -> &'static str {
        match self {
            Level::Exact => "exact",
            Level::Nickname => "nickname",
            Level::Swapped => "swapped",
            Level::Partial => "partial",
            Level::Close => "close",
            Level::Phonetic => "phonetic",
            Level::Initial => "initial",
            Level::MonthDaySwap => "month_day_swap",
            Level::OneDigit => "one_digit",
            Level::YearOff => "year_off",
            Level::Local => "local",
            Level::Locality => "locality",
            Level::Different => "different",
            Level::Missing => "missing",
        }
    }
}

impl Field {
    pub const COUNT: usize = Field::Ssn as usize + 1;
    pub const ALL: [Field; Field::COUNT] = [
        Field::Given,
        Field::Middle,
        Field::Family,
        Field::BirthDate,
        Field::Sex,
        Field::Phone,
        Field::Address,
        Field::MothersMaiden,
        Field::Guardian,
        Field::Identifier,
        Field::Ssn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Given => "given",
            Field::Middle => "middle",
            Field::Family => "family",
            Field::BirthDate => "birth_date",
            Field::Sex => "sex",
            Field::Phone => "phone",
            Field::Address => "address",
            Field::MothersMaiden => "mothers_maiden",
            Field::Guardian => "guardian",
            Field::Identifier => "identifier",
            Field::Ssn => "ssn",
        }
    }

    /// The levels this field can produce besides `missing`, best first.
    pub fn levels(self) -> &'static [Level] {
        use Level::*;
        match self {
            Field::Given => &[
                Exact, Nickname, Swapped, Close, Phonetic, Initial, Different,
            ],
            Field::Middle => &[Exact, Initial, Close, Different],
            Field::Family => &[Exact, Partial, Close, Phonetic, Different],
            Field::BirthDate => &[Exact, MonthDaySwap, OneDigit, YearOff, Partial, Different],
            Field::Sex => &[Exact, Different],
            Field::Phone => &[Exact, Local, Different],
            Field::Address => &[Exact, Close, Partial, Locality, Different],
            Field::MothersMaiden => &[Exact, Close, Different],
            Field::Guardian => &[Exact, Partial, Different],
            Field::Identifier | Field::Ssn => &[Exact, OneDigit, Different],
        }
    }

    pub fn compare(self, a: &MatchRecord, b: &MatchRecord, config: &Config) -> Level {
        let sim = &config.similarity;
        match self {
            Field::Given => given(a, b, config),
            Field::Middle => middle(a, b, sim),
            Field::Family => family(a, b, sim),
            Field::BirthDate => birth_date(a, b),
            Field::Sex => both(&a.sex, &b.sex, |x, y| {
                if x == y {
                    Level::Exact
                } else {
                    Level::Different
                }
            }),
            Field::Phone => phone(a, b),
            Field::Address => address(a, b, sim),
            Field::MothersMaiden => both(&a.mothers_maiden, &b.mothers_maiden, |x, y| {
                if x.text == y.text {
                    Level::Exact
                } else if x.code == y.code || jaro_winkler(&x.text, &y.text) >= sim.close_name {
                    Level::Close
                } else {
                    Level::Different
                }
            }),
            Field::Guardian => guardian(a, b),
            Field::Identifier => identifier(a, b),
            Field::Ssn => both(&a.ssn, &b.ssn, |x, y| digits_level(x, y)),
        }
    }
}

fn both<T>(a: &Option<T>, b: &Option<T>, f: impl FnOnce(&T, &T) -> Level) -> Level {
    match (a, b) {
        (Some(x), Some(y)) => f(x, y),
        _ => Level::Missing,
    }
}

fn digits_level(x: &str, y: &str) -> Level {
    if x == y {
        Level::Exact
    } else if one_slip(x, y) {
        Level::OneDigit
    } else {
        Level::Different
    }
}

fn is_initial_of(short: &str, long: &str) -> bool {
    short.len() == 1 && long.len() > 1 && long.as_bytes()[0] == short.as_bytes()[0]
}

/// A keying or scanning slip: one edit between names of three to five
/// letters, two between longer ones (AXEL and AXRL, APOLLO and APOLOL).
pub(crate) fn slip(x: &str, y: &str) -> bool {
    let shorter = x.len().min(y.len());
    shorter >= 3 && within_edits(x, y, if shorter >= 6 { 2 } else { 1 })
}

fn given(a: &MatchRecord, b: &MatchRecord, config: &Config) -> Level {
    let sim = &config.similarity;
    let (Some(x), Some(y)) = (&a.given, &b.given) else {
        return Level::Missing;
    };
    if x.text == y.text || a.other_given.contains(&y.text) || b.other_given.contains(&x.text) {
        return Level::Exact;
    }
    if a.given_groups.iter().any(|g| b.given_groups.contains(g)) {
        return Level::Nickname;
    }
    // First and middle names, or given and family names, the other way round.
    let swapped = |p: &MatchRecord, q: &Name| {
        p.middle.as_ref().is_some_and(|m| m.text == q.text)
            || p.family.as_ref().is_some_and(|f| f.text == q.text)
    };
    if swapped(a, y) || swapped(b, x) || exchanged(a, b, sim) {
        return Level::Swapped;
    }
    // Two names known as names (the nickname table's, or names the
    // jurisdiction's own records hold again and again) that are not one
    // name's variants are different children, not a typo: JAYDEN and
    // JAYLEN, DAX and MAX. This is where twins would otherwise look close.
    // Spellings of one sound a letter apart (JONATHON, JONATHAN) are one
    // name written two ways.
    let known = |r: &MatchRecord, n: &Name| {
        n.text.len() > 1 && (!r.given_groups.is_empty() || config.knows_given(&n.text))
    };
    let respelled = x.code == y.code && within_edits(&x.text, &y.text, 1);
    if known(a, x) && known(b, y) && !respelled {
        return Level::Different;
    }
    if jaro_winkler(&x.text, &y.text) >= sim.close_name || slip(&x.text, &y.text) {
        return Level::Close;
    }
    if x.code == y.code {
        return Level::Phonetic;
    }
    if is_initial_of(&x.text, &y.text) || is_initial_of(&y.text, &x.text) {
        return Level::Initial;
    }
    Level::Different
}

/// Both names written the other way round: each given name is the other
/// record's family name, exactly or but for a typo.
fn exchanged(a: &MatchRecord, b: &MatchRecord, sim: &Similarity) -> bool {
    let alike = |x: &Option<Name>, y: &Option<Name>| match (x, y) {
        (Some(x), Some(y)) => x.text == y.text || jaro_winkler(&x.text, &y.text) >= sim.close_name,
        _ => false,
    };
    alike(&a.given, &b.family) && alike(&a.family, &b.given)
}

/// Full middle names agree (exact) or are alike (close); initials agree
/// (initial) when either side has only its initial, which is weaker: one
/// child in fifteen shares a given middle initial.
fn middle(a: &MatchRecord, b: &MatchRecord, sim: &Similarity) -> Level {
    both(&a.middle, &b.middle, |x, y| {
        let initial_only = x.text.len() == 1 || y.text.len() == 1;
        if initial_only {
            if x.text.as_bytes().first() == y.text.as_bytes().first() {
                Level::Initial
            } else {
                Level::Different
            }
        } else if x.text == y.text {
            Level::Exact
        } else if jaro_winkler(&x.text, &y.text) >= sim.close_name {
            Level::Close
        } else {
            Level::Different
        }
    })
}

fn family(a: &MatchRecord, b: &MatchRecord, sim: &Similarity) -> Level {
    let (Some(x), Some(y)) = (&a.family, &b.family) else {
        return Level::Missing;
    };
    if x.text == y.text {
        return Level::Exact;
    }
    let shared = a.family.iter().chain(&a.other_family).any(|x| {
        b.family
            .iter()
            .chain(&b.other_family)
            .any(|y| x.text == y.text)
    });
    if shared {
        return Level::Partial;
    }
    // Given and family names exchanged: the family name is still there.
    // One given name found in the other's family name alone is evidence
    // of one name, and the given name already counts it.
    if exchanged(a, b, sim) {
        return Level::Partial;
    }
    if jaro_winkler(&x.text, &y.text) >= sim.close_name || slip(&x.text, &y.text) {
        return Level::Close;
    }
    if x.code == y.code {
        return Level::Phonetic;
    }
    Level::Different
}

fn birth_date(a: &MatchRecord, b: &MatchRecord) -> Level {
    let level = both(&a.birth_date, &b.birth_date, |x, y| {
        birth_date_level(*x, *y)
    });
    repaired_birth_date(level, a.birth_date_repaired || b.birth_date_repaired)
}

/// A birth date read by guessing how it was written may agree, but its
/// disagreement is no evidence: it counts as missing.
pub(crate) fn repaired_birth_date(level: Level, repaired: bool) -> Level {
    if repaired && level == Level::Different {
        Level::Missing
    } else {
        level
    }
}

/// The birth date level of two dates (shared with the sketch ceiling).
pub(crate) fn birth_date_level(x: BirthDate, y: BirthDate) -> Level {
    let slip = || match (x.digits(), y.digits()) {
        (Some(dx), Some(dy)) => one_slip_bytes(&dx, &dy),
        _ => one_slip(&x.compact(), &y.compact()),
    };
    if x == y {
        Level::Exact
    } else if x.swapped() == Some(y) {
        Level::MonthDaySwap
    } else if slip() {
        Level::OneDigit
    } else if x.month == y.month && x.day == y.day && x.year.abs_diff(y.year) == 1 {
        Level::YearOff
    } else if x.year == y.year && (x.month == y.month || x.day == y.day) {
        // Two of three parts agree within one year: a day or month keyed
        // wrong, or siblings born within the year (which the first name
        // tells apart).
        Level::Partial
    } else {
        Level::Different
    }
}

fn phone(a: &MatchRecord, b: &MatchRecord) -> Level {
    both(&a.phone, &b.phone, |x, y| {
        if x == y {
            Level::Exact
        } else if x.len() >= 7
            && y.len() >= 7
            && x.as_bytes()[x.len() - 7..] == y.as_bytes()[y.len() - 7..]
        {
            Level::Local
        } else {
            Level::Different
        }
    })
}

/// Street level first: the same house number, street and unit (exact);
/// one keying slip, a street name typo, or a unit only one side gives
/// (close); the same street or building but another house or apartment, a
/// neighbour (partial); then only the same ZIP or city (locality). Another
/// address is a move as often as another person: its weight is mild.
fn address(a: &MatchRecord, b: &MatchRecord, sim: &Similarity) -> Level {
    let has_street = |r: &MatchRecord| r.street.is_some();
    let has_place = |r: &MatchRecord| r.zip.is_some() || r.city.is_some();
    if !(has_street(a) && has_street(b) || has_place(a) && has_place(b)) {
        return Level::Missing;
    }
    if let (Some(sa), Some(sb)) = (&a.street, &b.street) {
        let house_same = a.house_number == b.house_number;
        let unit = match (&a.unit, &b.unit) {
            (Some(x), Some(y)) if x == y => Level::Exact,
            (Some(_), Some(_)) => Level::Different,
            (None, None) => Level::Exact,
            _ => Level::Missing,
        };
        if house_same && sa == sb && unit == Level::Exact {
            return Level::Exact;
        }
        let house_slip = match (&a.house_number, &b.house_number) {
            (Some(x), Some(y)) => one_slip(x, y),
            _ => false,
        };
        let street_close = sa == sb || jaro_winkler(sa, sb) >= sim.close_street;
        if unit != Level::Different && ((house_same && street_close) || (house_slip && sa == sb)) {
            return Level::Close;
        }
        let zips_differ = matches!((&a.zip, &b.zip), (Some(x), Some(y)) if x != y);
        if sa == sb && a.house_number.is_some() && b.house_number.is_some() && !zips_differ {
            return Level::Partial;
        }
    }
    let same_zip = matches!((&a.zip, &b.zip), (Some(x), Some(y)) if x == y);
    let same_city = matches!((&a.city, &b.city), (Some(x), Some(y)) if x == y);
    if same_zip || (same_city && (a.zip.is_none() || b.zip.is_none())) {
        Level::Locality
    } else {
        Level::Different
    }
}

fn guardian(a: &MatchRecord, b: &MatchRecord) -> Level {
    let given = both(&a.guardian_given, &b.guardian_given, |x, y| {
        if x.text == y.text {
            Level::Exact
        } else {
            Level::Different
        }
    });
    let family = both(&a.guardian_family, &b.guardian_family, |x, y| {
        if x.text == y.text {
            Level::Exact
        } else {
            Level::Different
        }
    });
    match (given, family) {
        (Level::Missing, Level::Missing) => Level::Missing,
        (Level::Exact, Level::Exact) => Level::Exact,
        (Level::Exact, _) | (_, Level::Exact) => Level::Partial,
        _ => Level::Different,
    }
}

/// Identifiers agree or conflict only within one assigning authority and
/// type: an MRN from clinic 5 says nothing about one from clinic 7.
fn identifier(a: &MatchRecord, b: &MatchRecord) -> Level {
    let mut best = Level::Missing;
    for (scope, x) in &a.identifiers {
        for (other_scope, y) in &b.identifiers {
            if scope != other_scope {
                continue;
            }
            let level = digits_level(x, y);
            if level == Level::Exact {
                return Level::Exact;
            }
            if best == Level::Missing || level == Level::OneDigit {
                best = level;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nicknames::Nicknames;
    use crate::normalize::normalize;
    use crate::record::PatientRecord;

    fn cfg() -> Config {
        Config::built_in()
    }

    fn norm(given: &str, middle: &str, family: &str, dob: &str) -> MatchRecord {
        let r = PatientRecord {
            id: "x".into(),
            given: Some(given.into()),
            middle: Some(middle.into()),
            family: Some(family.into()),
            birth_date: Some(dob.into()),
            ..Default::default()
        };
        normalize(
            &r,
            &Nicknames::parse("william\tbill\njayden\tjay\njaylen\tjay\n").expect("table"),
        )
    }

    #[test]
    fn given_levels() {
        let lvl = |a: &str, b: &str| {
            Field::Given.compare(&norm(a, "", "X", ""), &norm(b, "", "X", ""), &cfg())
        };
        assert_eq!(lvl("William", "WILLIAM"), Level::Exact);
        assert_eq!(lvl("Bill", "William"), Level::Nickname);
        assert_eq!(lvl("Jonathon", "Jonathan"), Level::Close);
        assert_eq!(lvl("J", "John"), Level::Initial);
        assert_eq!(lvl("Twyla", "Sanyukta"), Level::Different);
        assert_eq!(lvl("", "John"), Level::Missing);
        // Two canonical names that only share a nickname are two names.
        assert_eq!(lvl("Jayden", "Jaylen"), Level::Different);
        assert_eq!(lvl("Jay", "Jaylen"), Level::Nickname);
        let a = norm("Rodolf", "Cadeo", "X", "");
        let b = norm("Cadeo", "Rodolf", "X", "");
        assert_eq!(Field::Given.compare(&a, &b, &cfg()), Level::Swapped);
    }

    #[test]
    fn known_distinct_names_are_never_close() {
        let t = Nicknames::parse("erin\terin\nerik\teric\n").expect("table");
        let n = |g: &str| {
            normalize(
                &PatientRecord {
                    id: "x".into(),
                    given: Some(g.into()),
                    ..Default::default()
                },
                &t,
            )
        };
        assert_eq!(
            Field::Given.compare(&n("Erin"), &n("Erik"), &cfg()),
            Level::Different
        );
    }

    #[test]
    fn addresses_at_street_level() {
        let at = |street: &str, zip: &str| {
            normalize(
                &PatientRecord {
                    id: "x".into(),
                    street: Some(street.into()),
                    zip: Some(zip.into()),
                    ..Default::default()
                },
                &Nicknames::default(),
            )
        };
        let lvl =
            |a: &str, b: &str| Field::Address.compare(&at(a, "48910"), &at(b, "48910"), &cfg());
        assert_eq!(lvl("12 Elm Street Apt 4", "12 ELM ST #4"), Level::Exact);
        assert_eq!(lvl("12 Elm Street", "12 Elm Stret"), Level::Close);
        assert_eq!(lvl("12 Elm Street", "21 Elm Street"), Level::Close);
        assert_eq!(lvl("12 Elm Street", "12 Elm Street Apt 4"), Level::Close);
        // Another apartment of the building, another house of the street:
        // a neighbour.
        assert_eq!(
            lvl("12 Elm Street Apt 4", "12 Elm Street Apt 9"),
            Level::Partial
        );
        assert_eq!(lvl("12 Elm Street", "418 Elm Street"), Level::Partial);
        assert_eq!(lvl("12 Elm Street", "7 Oak Avenue"), Level::Locality);
        let moved = Field::Address.compare(
            &at("12 Elm Street", "48910"),
            &at("7 Oak Ave", "49503"),
            &cfg(),
        );
        assert_eq!(moved, Level::Different);
    }

    #[test]
    fn middle_initials_agree_apart_from_full_middle_names() {
        let lvl = |a: &str, b: &str| {
            Field::Middle.compare(&norm("A", a, "X", ""), &norm("A", b, "X", ""), &cfg())
        };
        assert_eq!(lvl("Marie", "MARIE"), Level::Exact);
        assert_eq!(lvl("M", "Marie"), Level::Initial);
        assert_eq!(lvl("M", "M"), Level::Initial);
        assert_eq!(lvl("M", "K"), Level::Different);
        assert_eq!(lvl("Marie", "Maria"), Level::Close);
    }

    #[test]
    fn family_and_dates() {
        let a = norm("A", "", "Hardin-Worth", "2007-12-16");
        let b = norm("A", "", "Worth", "2007-12-61");
        assert_eq!(Field::Family.compare(&a, &b, &cfg()), Level::Partial);
        assert_eq!(Field::BirthDate.compare(&a, &b, &cfg()), Level::Missing);
        let d = |x: &str, y: &str| {
            Field::BirthDate.compare(&norm("A", "", "B", x), &norm("A", "", "B", y), &cfg())
        };
        assert_eq!(d("2007-12-16", "2007-12-16"), Level::Exact);
        assert_eq!(d("2007-03-04", "2007-04-03"), Level::MonthDaySwap);
        assert_eq!(d("2007-12-16", "2007-12-17"), Level::OneDigit);
        assert_eq!(d("2007-12-16", "2008-12-16"), Level::OneDigit);
        assert_eq!(d("2009-12-16", "2010-12-16"), Level::YearOff);
        assert_eq!(d("2007-12-16", "2011-01-02"), Level::Different);
        // Two parts of three within the year: a day or a month keyed wrong.
        assert_eq!(d("2011-06-06", "2011-06-23"), Level::Partial);
        assert_eq!(d("2011-02-23", "2011-11-23"), Level::Partial);
        assert_eq!(d("2008-06-06", "2011-06-23"), Level::Different);
    }
}
