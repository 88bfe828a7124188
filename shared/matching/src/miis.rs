//! Reader for AIRA's MIIS labelled-pair files (`TEST:` / `EXPECT:` /
//! `PATIENT A:` / `PATIENT B:` blocks of `key=value,` fields).

use crate::record::{Alias, PatientRecord, RecordIdentifier};
use crate::score::Grade;

#[derive(Clone, Debug)]
pub struct MiisPair {
    /// The test id, e.g. `D-197:BIRTH_MULITPLE_MISSING_FOR_TWIN:IDEAL-IDEAL`.
    pub id: String,
    /// AIRA's expected outcome; `None` for "Not Sure".
    pub expect: Option<Grade>,
    pub a: PatientRecord,
    pub b: PatientRecord,
}

impl MiisPair {
    /// The scenario name (`BIRTH_MULITPLE_MISSING_FOR_TWIN`), or the id's
    /// prefix for tests without one.
    pub fn scenario(&self) -> &str {
        self.id
            .split(':')
            .nth(1)
            .unwrap_or_else(|| self.id.split('-').next().unwrap_or(&self.id))
    }
}

/// Parses a whole file; the error names the line that could not be read.
pub fn parse(text: &str) -> Result<Vec<MiisPair>, String> {
    let mut pairs = Vec::new();
    let mut id: Option<String> = None;
    let mut expect: Option<Option<Grade>> = None;
    let mut a: Option<PatientRecord> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let err = |what: &str| format!("MIIS line {}: {what}", n + 1);
        if let Some(rest) = line.strip_prefix("TEST:") {
            id = Some(rest.trim().to_owned());
            expect = None;
            a = None;
        } else if let Some(rest) = line.strip_prefix("EXPECT:") {
            // One published file has a block whose TEST line is blank.
            id.get_or_insert_with(|| format!("untitled-line-{}", n + 1));
            expect = Some(match rest.trim() {
                "Match" => Some(Grade::Certain),
                "Possible Match" => Some(Grade::Possible),
                "Not a Match" => Some(Grade::None),
                "Not Sure" => None,
                other => return Err(err(&format!("unknown expectation {other:?}"))),
            });
        } else if let Some(rest) = line.strip_prefix("PATIENT A:") {
            let test = id.as_deref().ok_or_else(|| err("PATIENT A before TEST"))?;
            a = Some(patient(&format!("{test}/A"), rest));
        } else if let Some(rest) = line.strip_prefix("PATIENT B:") {
            let (Some(test), Some(exp), Some(first)) = (id.take(), expect.take(), a.take()) else {
                return Err(err(
                    "PATIENT B without TEST, EXPECT and PATIENT A before it",
                ));
            };
            let b = patient(&format!("{test}/B"), rest);
            pairs.push(MiisPair {
                id: test,
                expect: exp,
                a: first,
                b,
            });
        } else {
            return Err(err("expected TEST:, EXPECT:, PATIENT A: or PATIENT B:"));
        }
    }
    Ok(pairs)
}

/// One `key=value,...` patient. The MRN's prefix before the first `-` is
/// the clinic that assigned it.
fn patient(id: &str, fields: &str) -> PatientRecord {
    let mut r = PatientRecord {
        id: id.to_owned(),
        ..Default::default()
    };
    let mut birth_count = None;
    for field in fields.split(',') {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let v = Some(value.to_owned());
        match key.trim() {
            "nameFirst" => r.given = v,
            "nameMiddle" => r.middle = v,
            "nameLast" => r.family = v,
            "nameLastHyph" | "nameAlias" => r.aliases.push(Alias::Family(value.to_owned())),
            "nameSuffix" => r.suffix = v,
            "birthDate" => r.birth_date = v,
            "gender" => r.sex = v,
            "mrns" => {
                for mrn in value.split([';', ' ']).filter(|m| !m.is_empty()) {
                    let (system, number) = mrn.split_once('-').unwrap_or(("", mrn));
                    r.identifiers.push(RecordIdentifier {
                        system: system.to_owned(),
                        kind: "MR".into(),
                        value: number.to_owned(),
                    });
                }
            }
            "medicaid" => r.identifiers.push(RecordIdentifier {
                system: "MEDICAID".into(),
                kind: "MA".into(),
                value: value.to_owned(),
            }),
            "ssn" => r.ssn = v,
            "motherMaidenName" => r.mothers_maiden_family = v,
            "guardianNameFirst" => r.guardian_given = v,
            "guardianNameLast" => r.guardian_family = v,
            "phone" => r.phone = v,
            "addressStreet1" => r.street = v,
            "addressCity" => r.city = v,
            "addressState" => r.state = v,
            "addressZip" | "address2Zip" => r.zip = v,
            "birthStatus" => r.multiple_birth = Some(value.eq_ignore_ascii_case("Y")),
            "birthOrder" => r.birth_order = value.parse().ok(),
            "birthType" => birth_count = value.parse::<u32>().ok(),
            _ => {}
        }
    }
    if birth_count.is_some_and(|c| c > 1) {
        r.multiple_birth = Some(true);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_block() {
        let text = "TEST: S-1:ADDRESS_CHANGED:IDEAL-IDEAL\nEXPECT: Match\nPATIENT A: nameFirst=Pablo,mrns=5-U51,birthDate=20071216,birthStatus=,\nPATIENT B: nameFirst=Pablo,birthType=2,\n";
        let pairs = parse(text).expect("parses");
        assert_eq!(pairs.len(), 1);
        let p = &pairs[0];
        assert_eq!(p.scenario(), "ADDRESS_CHANGED");
        assert_eq!(p.expect, Some(Grade::Certain));
        assert_eq!(p.a.identifiers[0].system, "5");
        assert_eq!(p.a.identifiers[0].value, "U51");
        assert_eq!(p.a.multiple_birth, None);
        assert_eq!(p.b.multiple_birth, Some(true));
        assert!(parse("PATIENT B: x=1\n").is_err());
    }
}
