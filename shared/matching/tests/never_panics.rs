//! Whatever a sender writes, normalizing, blocking and scoring never panic.

use matching::blocking::{index_keys, query_keys};
use matching::{Alias, Matcher, PatientRecord, RecordIdentifier};
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
