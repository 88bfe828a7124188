//! Blocking keys: the few exact keys under which a record is filed, so a
//! match looks only at records sharing at least one key, never at everyone.
//! The union of several keys keeps recall high when any one field is wrong.

use crate::normalize::MatchRecord;

/// The keys a record is filed under. Each starts with a letter naming its kind:
/// `I` identifier within its authority, `S` SSN, `J` an identifier or SSN with
/// one character deleted (finds one-digit slips), `D` birth date, `L` phonetic
/// family name + birth year, `F` nickname-canonical or phonetic given name +
/// birth year-month, `M` mother's maiden name + birth date, `N` phonetic given
/// and family names, `Z` phonetic given or family name + ZIP, `P` phone (last 7
/// digits), `A` house number + ZIP.
pub fn index_keys(r: &MatchRecord) -> Vec<String> {
    let mut keys = Vec::with_capacity(12);
    for (scope, value) in &r.identifiers {
        keys.push(format!("I:{scope}:{value}"));
    }
    if let Some(ssn) = &r.ssn {
        keys.push(format!("S:{ssn}"));
    }
    // One keying slip (a wrong digit or two swapped) in a number: both
    // numbers agree once the same position is deleted from each.
    for (scope, value) in r
        .identifiers
        .iter()
        .map(|(s, v)| (s.as_str(), v))
        .chain(r.ssn.iter().map(|v| ("SSN", v)))
    {
        if value.len() >= 6 && value.is_ascii() {
            for i in 0..value.len() {
                keys.push(format!("J:{scope}:{}{}", &value[..i], &value[i + 1..]));
            }
        }
    }
    if let Some(dob) = r.birth_date {
        let compact = dob.compact();
        keys.push(format!("D:{compact}"));
        for name in r.family.iter().chain(&r.other_family) {
            if !name.code.is_empty() {
                keys.push(format!("L:{}:{}", name.code, &compact[..4]));
            }
        }
        let month = &compact[..6];
        for canonical in &r.given_groups {
            keys.push(format!("F:{canonical}:{month}"));
        }
        // The phonetic code catches typos; the middle name catches a first
        // and middle name given the other way round.
        for name in r.given.iter().chain(&r.middle) {
            if name.text.len() > 1 && !name.code.is_empty() {
                keys.push(format!("F:{}:{month}", name.code));
            }
        }
        if let Some(mmn) = r.mothers_maiden.as_ref().filter(|n| !n.code.is_empty()) {
            keys.push(format!("M:{}:{compact}", mmn.code));
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
            keys.push(format!("N:{x}:{y}"));
        }
    }
    // A name and the ZIP: people move less often than keyboards slip.
    if let Some(zip) = &r.zip {
        for name in r.given.iter().chain(&r.family) {
            if name.text.len() > 1 && !name.code.is_empty() {
                keys.push(format!("Z:{}:{zip}", name.code));
            }
        }
    }
    if let Some(phone) = &r.phone {
        keys.push(format!("P:{}", &phone[phone.len().saturating_sub(7)..]));
    }
    if let (Some(house), Some(zip)) = (&r.house_number, &r.zip) {
        keys.push(format!("A:{house}:{zip}"));
    }
    keys.sort();
    keys.dedup();
    keys
}

/// The keys to look under when matching a record: its own, plus the birth
/// date with month and day swapped (filed under `D` like any other date).
pub fn query_keys(r: &MatchRecord) -> Vec<String> {
    let mut keys = index_keys(r);
    if let Some(swapped) = r.birth_date.and_then(|d| d.swapped()) {
        keys.push(format!("D:{}", swapped.compact()));
        keys.sort();
        keys.dedup();
    }
    keys
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
