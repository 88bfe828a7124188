//! Whatever a sender writes, normalizing, blocking and scoring never panic,
//! and the sketch's ceiling is never below the score it stands in for.

use matching::blocking::{index_keys, query_keys};
use matching::score::assess;
use matching::sketch::ceiling;
use matching::{Alias, Config, Matcher, PatientRecord, RecordIdentifier, Sketch};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        any::<String>().prop_map(Some),
        "[0-9 ()\\-]{0,14}".prop_map(Some),
        "[A-Za-zÀ-ÿ' \\-]{0,20}".prop_map(Some),
        "(19|20)[0-9]{2}-[0-1][0-9]-[0-3][0-9]".prop_map(Some),
    ]
}

fn record() -> impl Strategy<Value = PatientRecord> {
    (
        (text(), text(), text(), text(), text(), text()),
        (text(), text(), text(), text(), text(), text()),
        (
            text(),
            text(),
            text(),
            any::<Option<bool>>(),
            any::<Option<u32>>(),
            text(),
        ),
    )
        .prop_map(
            |(
                (given, middle, family, suffix, birth_date, sex),
                (ssn, phone, street, city, state, zip),
                (mmn, gg, gf, mb, bo, id),
            )| PatientRecord {
                id: "p".into(),
                given,
                middle,
                family,
                suffix,
                aliases: vec![Alias::Family(id.clone().unwrap_or_default())],
                birth_date,
                sex,
                identifiers: vec![RecordIdentifier {
                    system: "S".into(),
                    kind: "MR".into(),
                    value: id.unwrap_or_default(),
                }],
                ssn,
                phone,
                street,
                city,
                state,
                zip,
                mothers_maiden_family: mmn,
                multiple_birth: mb,
                birth_order: bo,
                guardian_given: gg,
                guardian_family: gf,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn any_pair_is_normalized_blocked_and_scored(a in record(), b in record()) {
        let m = Matcher::default();
        let (x, y) = (m.normalize(&a), m.normalize(&b));
        let _ = (index_keys(&x), query_keys(&y));
        let d = m.decide(&x, &y);
        prop_assert!(d.score.is_finite());
        // Scoring is symmetric in its grade.
        prop_assert_eq!(d.grade, m.decide(&y, &x).grade);
    }
}

/// Two records sharing a random choice of fields (as candidates do), the
/// given and family names sometimes exchanged.
fn related() -> impl Strategy<Value = (PatientRecord, PatientRecord)> {
    (record(), record(), any::<[bool; 16]>(), any::<[u8; 16]>()).prop_map(
        |(a, mut b, keep, slips)| {
            let mut slips = slips.into_iter();
            let mut pick = |k: bool, x: &Option<String>, y: &mut Option<String>| {
                if k {
                    *y = x.as_deref().map(|v| slip(v, slips.next().unwrap_or(0)));
                }
            };
            pick(keep[0], &a.given, &mut b.given);
            pick(keep[1], &a.middle, &mut b.middle);
            pick(keep[2], &a.family, &mut b.family);
            pick(keep[3], &a.birth_date, &mut b.birth_date);
            pick(keep[4], &a.sex, &mut b.sex);
            pick(keep[5], &a.ssn, &mut b.ssn);
            pick(keep[6], &a.phone, &mut b.phone);
            pick(keep[7], &a.street, &mut b.street);
            pick(keep[8], &a.city, &mut b.city);
            pick(keep[9], &a.zip, &mut b.zip);
            pick(
                keep[10],
                &a.mothers_maiden_family,
                &mut b.mothers_maiden_family,
            );
            pick(keep[11], &a.guardian_given, &mut b.guardian_given);
            pick(keep[12], &a.guardian_family, &mut b.guardian_family);
            if keep[13] {
                b.identifiers = a.identifiers.clone();
            }
            if keep[14] {
                b.aliases = a.aliases.clone();
            }
            if keep[15] {
                std::mem::swap(&mut b.given, &mut b.family);
            }
            (a, b)
        },
    )
}

/// A keying slip chosen by `seed`: none, a character dropped, doubled or
/// swapped with the next.
fn slip(value: &str, seed: u8) -> String {
    let mut c: Vec<char> = value.chars().collect();
    if c.len() < 2 {
        return value.to_owned();
    }
    let at = usize::from(seed / 4) % (c.len() - 1);
    match seed % 4 {
        1 => {
            c.remove(at);
        }
        2 => c.insert(at, c[at]),
        3 => c.swap(at, at + 1),
        _ => {}
    }
    c.into_iter().collect()
}

fn configs() -> Vec<Config> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut out = vec![Config::built_in()];
    for name in ["general-fs-1.toml", "general-fs-2.toml"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("shipped");
        out.push(Config::parse(&text).expect("valid"));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn the_sketch_ceiling_bounds_every_score((a, b) in related()) {
        let m = Matcher::default();
        let (x, y) = (m.normalize(&a), m.normalize(&b));
        let (sx, sy) = (Sketch::of(&x), Sketch::of(&y));
        for config in configs() {
            for (p, q, sp, sq) in [(&x, &y, &sx, &sy), (&y, &x, &sy, &sx)] {
                let score = assess(&config, p, q).score;
                let top = ceiling(&config, sp, sq);
                prop_assert!(top >= score, "{}: ceiling {} < score {}", config.version, top, score);
            }
        }
    }
}
