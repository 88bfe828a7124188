//! Blocking keys: the few exact keys under which a record is filed, so a
//! match looks only at records sharing at least one key, never at everyone.
//! The union of several keys keeps recall high when any one field is wrong.

use crate::normalize::{BirthDate, MatchRecord};

/// The keys a record is filed under. Each starts with a letter naming its kind:
/// `I` identifier within its authority, `S` SSN, `J` an identifier or SSN with
/// one character deleted (finds one-digit slips; a clinic's number only
/// with the birth year), `D` birth date, `L` phonetic
/// family name + birth year (`D` and `L` qualified by sex when known, see
/// [`index_sex`]), `F` nickname-canonical or phonetic given name +
/// birth year-month, `M` mother's maiden name + birth date, `N` phonetic given
/// and family names, `Z` phonetic given or family name + ZIP, `P` phone (last 7
/// digits), `A` house number + ZIP.
pub fn index_keys(r: &MatchRecord) -> Vec<String> {
    let mut keys = Vec::with_capacity(24);
    each_index_key(r, &mut |k| keys.push(k.to_owned()));
    keys.sort();
    keys.dedup();
    keys
}

/// The keys to look under when matching a record: its own, plus the birth
/// date with month and day swapped (filed under `D` like any other date).
pub fn query_keys(r: &MatchRecord) -> Vec<String> {
    let mut keys = Vec::with_capacity(24);
    each_query_key(r, &mut |k| keys.push(k.to_owned()));
    keys.sort();
    keys.dedup();
    keys
}

/// Each key of [`query_keys`], unsorted and perhaps repeated.
pub fn each_query_key(r: &MatchRecord, out: &mut impl FnMut(&str)) {
    each_key(r, true, out);
    if let Some(swapped) = r.birth_date.and_then(|d| d.swapped()) {
        let swapped = Compact::of(swapped);
        for sex in query_sexes(r) {
            out(&["D:", swapped.as_str(), sex].concat());
        }
    }
}

/// Each key of [`index_keys`], unsorted and perhaps repeated, written into
/// one reused buffer: the in-memory index hashes them by the million and
/// need not allocate each.
pub fn each_index_key(r: &MatchRecord, out: &mut impl FnMut(&str)) {
    each_key(r, false, out);
}

/// The sex qualifier of a record's `D` and `L` keys: a birth date or a
/// family name with its year is shared by many children of both sexes, and
/// half of them need not be read. A record without a sex is filed
/// unqualified.
fn index_sex(r: &MatchRecord) -> &'static str {
    match r.sex {
        Some('F') => ":F",
        Some('M') => ":M",
        _ => "",
    }
}

/// The qualifiers a query looks under: its own sex and the records
/// without one, or every one when its sex is unknown.
fn query_sexes(r: &MatchRecord) -> &'static [&'static str] {
    match r.sex {
        Some('F') => &[":F", ""],
        Some('M') => &[":M", ""],
        _ => &[":F", ":M", ""],
    }
}

fn each_key(r: &MatchRecord, query: bool, out: &mut impl FnMut(&str)) {
    let own = [index_sex(r)];
    let sexes: &[&str] = if query { query_sexes(r) } else { &own };
    let mut buf = String::with_capacity(64);
    let mut key = |parts: &[&str]| {
        buf.clear();
        for p in parts {
            buf.push_str(p);
        }
        out(&buf);
    };
    for (scope, value) in &r.identifiers {
        key(&["I:", scope, ":", value]);
    }
    if let Some(ssn) = &r.ssn {
        key(&["S:", ssn]);
    }
    let date = r.birth_date.map(Compact::of);
    let date = date.as_ref().map(Compact::as_str);
    // One keying slip (a wrong digit or two swapped) in a number: both
    // numbers agree once one position is deleted from each. A clinic issues
    // its chart numbers in sequence, so there a deletion also agrees with
    // dozens of neighbours in the sequence (at a million patients they were
    // most of all candidates, none of them certain): a clinic number's slip
    // is looked for among patients born the same year only. National
    // numbers (an SSN) are drawn sparsely and need no such company.
    let year = r.birth_date.map(|d| d.year.to_string());
    for (scope, value, national) in r
        .identifiers
        .iter()
        .map(|(s, v)| (s.as_str(), v, is_national(s)))
        .chain(r.ssn.iter().map(|v| ("SSN", v, true)))
    {
        let qualifier = match (national, &year) {
            (true, _) => ["", ""],
            (false, Some(year)) => [":", year.as_str()],
            (false, None) => continue,
        };
        if value.len() >= 6 && value.is_ascii() {
            for i in 0..value.len() {
                key(&[
                    "J:",
                    scope,
                    ":",
                    &value[..i],
                    &value[i + 1..],
                    qualifier[0],
                    qualifier[1],
                ]);
            }
        }
    }
    if let Some(compact) = date {
        for sex in sexes {
            key(&["D:", compact, sex]);
        }
        let year = compact.get(..4).unwrap_or(compact);
        for name in r.family.iter().chain(&r.other_family) {
            if !name.code.is_empty() {
                for sex in sexes {
                    key(&["L:", &name.code, ":", year, sex]);
                }
            }
        }
        let month = compact.get(..6).unwrap_or(compact);
        for canonical in &r.given_groups {
            key(&["F:", canonical, ":", month]);
        }
        // The phonetic code catches typos; the middle name catches a first
        // and middle name given the other way round.
        for name in r.given.iter().chain(&r.middle) {
            if name.text.len() > 1 && !name.code.is_empty() {
                key(&["F:", &name.code, ":", month]);
            }
        }
        if let Some(mmn) = r.mothers_maiden.as_ref().filter(|n| !n.code.is_empty()) {
            key(&["M:", &mmn.code, ":", compact]);
        }
    }
    // Both names without the birth date: a wrong or missing date must not
    // hide a record. Sorted, so given and family names exchanged agree.
    if let (Some(given), Some(family)) = (&r.given, &r.family) {
        if !given.code.is_empty() && !family.code.is_empty() {
            let (x, y) = if given.code <= family.code {
                (&given.code, &family.code)
            } else {
                (&family.code, &given.code)
            };
            key(&["N:", x, ":", y]);
        }
    }
    // A name and the ZIP: people move less often than keyboards slip.
    if let Some(zip) = &r.zip {
        for name in r.given.iter().chain(&r.family) {
            if name.text.len() > 1 && !name.code.is_empty() {
                key(&["Z:", &name.code, ":", zip]);
            }
        }
    }
    if let Some(phone) = &r.phone {
        let last7 = phone.get(phone.len().saturating_sub(7)..).unwrap_or(phone);
        key(&["P:", last7]);
    }
    if let (Some(house), Some(zip)) = (&r.house_number, &r.zip) {
        key(&["A:", house, ":", zip]);
    }
}

/// Which of a query's blocks to read under a candidate budget, given their
/// sizes: the smallest first (ties in the given order), each while the
/// entries read so far plus its own stay within `budget`; a block that
/// would overrun it is left unread. `None` reads them all.
pub fn within_budget(sizes: &[usize], budget: Option<usize>) -> Vec<bool> {
    let Some(budget) = budget else {
        return vec![true; sizes.len()];
    };
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| sizes.get(i).copied().unwrap_or(0));
    let mut read = vec![false; sizes.len()];
    let mut total = 0usize;
    for i in order {
        let size = sizes.get(i).copied().unwrap_or(0);
        if total.saturating_add(size) <= budget {
            total += size;
            if let Some(r) = read.get_mut(i) {
                *r = true;
            }
        }
    }
    read
}

/// A birth date as `YYYYMMDD`, on the stack when it fits.
enum Compact {
    Digits([u8; 8]),
    Text(String),
}

impl Compact {
    fn of(date: BirthDate) -> Compact {
        date.digits()
            .map_or_else(|| Compact::Text(date.compact()), Compact::Digits)
    }

    fn as_str(&self) -> &str {
        match self {
            Compact::Digits(d) => std::str::from_utf8(d).unwrap_or_default(),
            Compact::Text(t) => t,
        }
    }
}

/// An identifier scope (`SYSTEM|TYPE`) of type SS: a social security
/// number carried as an identifier.
fn is_national(scope: &str) -> bool {
    scope.rsplit('|').next() == Some("SS")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nicknames::Nicknames;
    use crate::normalize::normalize;
    use crate::record::{PatientRecord, RecordIdentifier};

    #[test]
    fn keys_of_a_full_record() {
        let r = PatientRecord {
            id: "1".into(),
            given: Some("Bill".into()),
            family: Some("Todd".into()),
            birth_date: Some("2007-03-12".into()),
            identifiers: vec![RecordIdentifier {
                system: "CLINIC5".into(),
                kind: "MR".into(),
                value: "U51".into(),
            }],
            phone: Some("(810)433-3532".into()),
            street: Some("48 Leslie Pl".into()),
            zip: Some("49555".into()),
            mothers_maiden_family: Some("Wise".into()),
            ..Default::default()
        };
        let m = normalize(&r, &Nicknames::parse("william\tbill\n").expect("table"));
        let keys = index_keys(&m);
        for want in [
            "I:CLINIC5|MR:U51",
            "D:20070312",
            "L:TAD:2007",
            "F:WILLIAM:200703",
            "F:BAL:200703",
            "M:WAS:20070312",
            "P:4333532",
            "A:48:49555",
        ] {
            assert!(keys.iter().any(|k| k == want), "{want} not in {keys:?}");
        }
        assert!(!keys.contains(&"D:20071203".to_string()));
        assert!(query_keys(&m).contains(&"D:20071203".to_string()));
    }

    #[test]
    fn birth_date_and_family_keys_are_qualified_by_a_known_sex() {
        let t = &Nicknames::parse("").expect("table");
        let child = |sex: Option<&str>| {
            normalize(
                &PatientRecord {
                    id: "1".into(),
                    given: Some("Ada".into()),
                    family: Some("Todd".into()),
                    birth_date: Some("2007-03-12".into()),
                    sex: sex.map(str::to_owned),
                    ..Default::default()
                },
                t,
            )
        };
        let (girl, unknown) = (child(Some("F")), child(None));
        let keys = index_keys(&girl);
        assert!(keys.contains(&"D:20070312:F".to_string()), "{keys:?}");
        assert!(keys.contains(&"L:TAD:2007:F".to_string()), "{keys:?}");
        assert!(!keys.contains(&"D:20070312".to_string()));
        // A query finds its own sex and records without one; without a sex
        // it finds every record.
        let q = query_keys(&girl);
        for want in ["D:20070312:F", "D:20070312", "D:20071203:F", "L:TAD:2007"] {
            assert!(q.iter().any(|k| k == want), "{want} not in {q:?}");
        }
        assert!(!q.iter().any(|k| k.ends_with(":M")));
        let q = query_keys(&unknown);
        for want in ["D:20070312:F", "D:20070312:M", "D:20070312", "L:TAD:2007:M"] {
            assert!(q.iter().any(|k| k == want), "{want} not in {q:?}");
        }
        for k in index_keys(&unknown) {
            assert!(!k.ends_with(":F") && !k.ends_with(":M"), "{k}");
        }
    }

    #[test]
    fn the_budget_reads_the_smallest_blocks_first() {
        assert_eq!(within_budget(&[5, 1, 300], None), [true, true, true]);
        // 1 + 40 + 60 read; 150 would overrun 200.
        let sizes = [150, 1, 60, 40];
        assert_eq!(within_budget(&sizes, Some(200)), [false, true, true, true]);
        assert_eq!(within_budget(&sizes, Some(251)), [true, true, true, true]);
        assert_eq!(within_budget(&[201], Some(200)), [false]);
        assert_eq!(within_budget(&[], Some(200)), Vec::<bool>::new());
    }

    #[test]
    fn a_record_without_anything_has_no_keys() {
        let m = normalize(
            &PatientRecord {
                id: "1".into(),
                ..Default::default()
            },
            &Nicknames::default(),
        );
        assert!(index_keys(&m).is_empty());
    }
}
