//! Matching and consolidation end to end over the embedded store: VXUs in
//! through intake, persons and histories out.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use iz::{Clock, IisIdentity};
use matching::{Grade, Matcher};
use registry::patients::{PatientMatching, PersonStatus};
use registry::{AuthorizedUser, Intake, Transport};

struct Fixture {
    _dir: tempfile::TempDir,
    intake: Intake,
    matching: PatientMatching,
    clinic_a: AuthorizedUser,
    clinic_b: AuthorizedUser,
}

async fn fixture() -> Fixture {
    let r = support::two_clinics().await;
    Fixture {
        _dir: r.dir,
        intake: Intake::new(r.store.clone(), IisIdentity::default()),
        matching: PatientMatching::new(r.store, Arc::new(Matcher::default())),
        clinic_a: r.clinic_a,
        clinic_b: r.clinic_b,
    }
}

/// A child as a clinic's EHR would send it.
#[derive(Clone)]
struct Child {
    mrn: &'static str,
    given: &'static str,
    middle: &'static str,
    family: &'static str,
    dob: &'static str,
    sex: &'static str,
    street: &'static str,
    multiple_birth: &'static str,
    birth_order: &'static str,
}

fn jones(mrn: &'static str) -> Child {
    Child {
        mrn,
        given: "Katherine",
        middle: "Ann",
        family: "Jones",
        dob: "20240305",
        sex: "F",
        street: "12 Elm Street",
        multiple_birth: "",
        birth_order: "",
    }
}

/// (filler order number, CVX, date, RXA-21 action)
type Dose = (&'static str, &'static str, &'static str, &'static str);

fn vxu(facility: &str, control_id: &str, c: &Child, doses: &[Dose]) -> String {
    let mut m = format!(
        "MSH|^~\\&|EHR|{facility}|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{control_id}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{facility}|IISFAC\r\
PID|1||{mrn}^^^{facility}^MR||{family}^{given}^{middle}^^^^L|Smith^^^^^^M|{dob}|{sex}|||{street}^^Lansing^MI^48910^USA^P||^PRN^PH^^^517^5550142|||||||||||{mb}|{bo}\r\
NK1|1|{family}^Maria^^^^^L|MTH^Mother^HL70063\r",
        mrn = c.mrn,
        family = c.family,
        given = c.given,
        middle = c.middle,
        dob = c.dob,
        sex = c.sex,
        street = c.street,
        mb = c.multiple_birth,
        bo = c.birth_order,
    );
    for (filler, cvx, date, action) in doses {
        m.push_str(&format!(
            "ORC|RE||{filler}^{facility}\rRXA|0|1|{date}||{cvx}^vaccine^CVX|999|||01^Historical^NIP001|||||||||||CP|{action}\r"
        ));
    }
    m
}

impl Fixture {
    /// Sends through intake (which must accept it) and applies it.
    async fn send(&self, au: &AuthorizedUser, message: &str) -> registry::patients::Matched {
        let d = self
            .intake
            .receive(
                au,
                &Transport::Rest,
                message.as_bytes(),
                Clock::at(1_790_000_000),
            )
            .await
            .unwrap();
        let id = d
            .message_id
            .unwrap_or_else(|| panic!("not accepted:\n{}", d.answer));
        self.matching.process(&id, 1_790_000_000_000).await.unwrap()
    }

    async fn cvx_history(&self, person: &str) -> Vec<(String, String, usize)> {
        let mut h: Vec<_> = self
            .matching
            .history(person)
            .await
            .unwrap()
            .into_iter()
            .map(|i| {
                (
                    i.order.vaccine[0].code.clone(),
                    i.order.administered.unwrap().to_hl7(),
                    i.sources.len(),
                )
            })
            .collect();
        h.sort();
        h
    }
}

#[tokio::test]
async fn one_child_from_two_clinics_is_one_person_with_one_copy_of_each_shared_dose() {
    let f = fixture().await;
    let a = f
        .send(
            &f.clinic_a,
            &vxu(
                "FACA",
                "A1",
                &jones("A100"),
                &[
                    ("A-D1", "08", "20240305", "A"),
                    ("A-D2", "20", "20240505", "A"),
                ],
            ),
        )
        .await;
    assert!(a.new_person && a.grade == Grade::None);
    // The other clinic: its own MRN, a nickname, no middle name, a typo in
    // the street; it reports the same DTaP and an MMR of its own.
    let kathy = Child {
        given: "Kathy",
        middle: "",
        street: "12 Elm Stret",
        ..jones("B-77")
    };
    let b = f
        .send(
            &f.clinic_b,
            &vxu(
                "FACB",
                "B1",
                &kathy,
                &[
                    ("B-9", "20", "20240505", "A"),
                    ("B-10", "03", "20250306", "A"),
                ],
            ),
        )
        .await;
    assert_eq!(
        (b.person.as_str(), b.grade, b.new_person),
        (a.person.as_str(), Grade::Certain, false)
    );
    assert_ne!(a.source, b.source);
    assert_eq!(
        f.cvx_history(&a.person).await,
        [
            ("03".into(), "20250306".into(), 1),
            ("08".into(), "20240305".into(), 1),
            ("20".into(), "20240505".into(), 2)
        ]
    );
    let source = f.matching.source(&b.source).await.unwrap().unwrap();
    let explanation = source.link.explanation.unwrap();
    assert_eq!(explanation["config"], "iis-fs-2");
    assert!(explanation["fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["field"] == "given" && e["level"] == "nickname"));

    // Clinic A withdraws its HepB dose: exactly that one goes.
    let gone = f
        .send(
            &f.clinic_a,
            &vxu(
                "FACA",
                "A2",
                &jones("A100"),
                &[("A-D1", "08", "20240305", "D")],
            ),
        )
        .await;
    assert_eq!(
        (gone.person.as_str(), gone.source.as_str()),
        (a.person.as_str(), a.source.as_str())
    );
    assert_eq!(
        f.cvx_history(&a.person).await,
        [
            ("03".into(), "20250306".into(), 1),
            ("20".into(), "20240505".into(), 2)
        ]
    );
    // Clinic A withdraws its DTaP: clinic B's report of it stays.
    f.send(
        &f.clinic_a,
        &vxu(
            "FACA",
            "A3",
            &jones("A100"),
            &[("A-D2", "20", "20240505", "D")],
        ),
    )
    .await;
    assert_eq!(
        f.cvx_history(&a.person).await,
        [
            ("03".into(), "20250306".into(), 1),
            ("20".into(), "20240505".into(), 1)
        ]
    );
}

#[tokio::test]
async fn a_resent_message_changes_nothing() {
    let f = fixture().await;
    let msg = vxu(
        "FACA",
        "R1",
        &jones("A100"),
        &[("A-D1", "08", "20240305", "A")],
    );
    let first = f.send(&f.clinic_a, &msg).await;
    let before = (
        f.matching.person(&first.person).await.unwrap(),
        f.cvx_history(&first.person).await,
    );
    // Intake answers a resend from its idempotency record and queues nothing.
    let again = f
        .intake
        .receive(
            &f.clinic_a,
            &Transport::Rest,
            msg.as_bytes(),
            Clock::at(1_790_000_100),
        )
        .await
        .unwrap();
    assert!(again.duplicate);
    // A redelivered change event for the same message is a no-op too.
    let id = again.message_id.unwrap();
    let redelivered = f.matching.process(&id, 1_790_000_200_000).await.unwrap();
    assert!(redelivered.already);
    let after = (
        f.matching.person(&first.person).await.unwrap(),
        f.cvx_history(&first.person).await,
    );
    assert_eq!(before, after);
}

#[tokio::test]
async fn twins_with_the_same_parents_and_birth_date_are_two_persons() {
    let f = fixture().await;
    let liam = Child {
        given: "Liam",
        middle: "",
        multiple_birth: "Y",
        birth_order: "1",
        sex: "M",
        ..jones("T1")
    };
    let noah = Child {
        given: "Noah",
        middle: "",
        multiple_birth: "Y",
        birth_order: "2",
        sex: "M",
        ..jones("T2")
    };
    let one = f
        .send(
            &f.clinic_a,
            &vxu("FACA", "T1", &liam, &[("T1-1", "08", "20240305", "A")]),
        )
        .await;
    let two = f
        .send(
            &f.clinic_a,
            &vxu("FACA", "T2", &noah, &[("T2-1", "08", "20240305", "A")]),
        )
        .await;
    assert_ne!(one.person, two.person);
    // Their birth orders and first names differ: two children, decided, and
    // nobody's to review.
    assert_eq!(two.grade, Grade::None);
    let noah_person = f.matching.person(&two.person).await.unwrap().unwrap();
    assert_eq!(noah_person.status, PersonStatus::Active);
    assert!(f.matching.review_queue(10).await.unwrap().is_empty());
    // Even with the twin's first name misspelled by another clinic, the
    // multiple birth keeps them apart from each other (no silent merge).
    let liam_b = Child {
        given: "Lian",
        ..liam.clone()
    };
    let three = f.send(&f.clinic_b, &vxu("FACB", "T3", &liam_b, &[])).await;
    assert_ne!(three.grade, Grade::Certain);
    assert_ne!(three.person, two.person);
    let p = f.matching.person(&three.person).await.unwrap().unwrap();
    assert_eq!(p.status, PersonStatus::Provisional);
    assert!(!f
        .matching
        .potential_duplicates(&three.person)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_messages_for_one_new_child_make_one_person() {
    let f = Arc::new(fixture().await);
    for round in 0..8u32 {
        let dob: &'static str = Box::leak(format!("202301{:02}", round + 1).into_boxed_str());
        let a_mrn: &'static str = Box::leak(format!("CA{round}").into_boxed_str());
        let b_mrn: &'static str = Box::leak(format!("CB{round}").into_boxed_str());
        // Unrelated children each round, so only the race is under test.
        let family = [
            "Okafor", "Nguyen", "Haddad", "Kowalski", "Mensah", "Larsen", "Ibarra", "Tanaka",
        ][round as usize];
        let given = [
            "Amara", "Bao", "Celine", "Dawid", "Efua", "Freja", "Gael", "Hana",
        ][round as usize];
        let street: &'static str = Box::leak(format!("{} Oak Ave", 100 + round).into_boxed_str());
        let ca = Child {
            dob,
            family,
            given,
            street,
            ..jones(a_mrn)
        };
        let cb = Child {
            dob,
            family,
            given,
            street,
            middle: "A",
            ..jones(b_mrn)
        };
        // Both accepted first, then both applied at the same moment, as two
        // function instances would.
        let ida = f
            .intake
            .receive(
                &f.clinic_a,
                &Transport::Rest,
                vxu("FACA", &format!("C{round}"), &ca, &[]).as_bytes(),
                Clock::at(1_790_000_000),
            )
            .await
            .unwrap()
            .message_id
            .unwrap();
        let idb = f
            .intake
            .receive(
                &f.clinic_b,
                &Transport::Rest,
                vxu("FACB", &format!("C{round}"), &cb, &[]).as_bytes(),
                Clock::at(1_790_000_000),
            )
            .await
            .unwrap()
            .message_id
            .unwrap();
        let (fa, fb) = (f.clone(), f.clone());
        let ta = tokio::spawn(async move { fa.matching.process(&ida, 1).await.unwrap() });
        let tb = tokio::spawn(async move { fb.matching.process(&idb, 1).await.unwrap() });
        let (ma, mb) = (ta.await.unwrap(), tb.await.unwrap());
        assert_eq!(
            ma.person, mb.person,
            "round {round}: two persons for one child"
        );
        assert!(
            ma.new_person ^ mb.new_person,
            "round {round}: {ma:?} {mb:?}"
        );
    }
}

#[tokio::test]
async fn placeholder_names_never_link() {
    let f = fixture().await;
    let baby = Child {
        given: "Baby Girl",
        middle: "",
        ..jones("P1")
    };
    // The sender hears about it: accepted, with a warning on PID-5.
    let d = f
        .intake
        .receive(
            &f.clinic_a,
            &Transport::Rest,
            vxu("FACA", "P0", &baby, &[]).as_bytes(),
            Clock::at(1_790_000_000),
        )
        .await
        .unwrap();
    assert!(d.accepted, "{}", d.answer);
    assert!(d.answer.contains("MSA|AE|P0"), "{}", d.answer);
    assert!(
        d.answer.contains(
            "ERR||PID^1^5|999^Application error^HL70357|W|3^Illogical Value error^HL70533"
        ),
        "{}",
        d.answer
    );
    let first = f.send(&f.clinic_a, &vxu("FACA", "P1", &baby, &[])).await;
    let sibling = Child {
        given: "Baby Girl",
        middle: "",
        ..jones("P2")
    };
    let second = f.send(&f.clinic_b, &vxu("FACB", "P2", &sibling, &[])).await;
    assert_ne!(first.person, second.person);
    assert_ne!(second.grade, Grade::Certain);
}

/// Clinic A's Katherine, then clinic B's BABY GIRL of the same birth date
/// and household: she waits for review (a twin cannot be told from her
/// sister without a first name). Returns both.
async fn katherine_then_a_newborn(
    f: &Fixture,
) -> (registry::patients::Matched, registry::patients::Matched) {
    let a = f
        .send(
            &f.clinic_a,
            &vxu(
                "FACA",
                "R1",
                &jones("A100"),
                &[("A-1", "08", "20240305", "A")],
            ),
        )
        .await;
    let newborn = Child {
        given: "Baby Girl",
        middle: "",
        ..jones("B200")
    };
    let b = f
        .send(
            &f.clinic_b,
            &vxu("FACB", "R2", &newborn, &[("B-1", "20", "20240505", "A")]),
        )
        .await;
    assert_eq!(b.grade, Grade::Possible);
    assert_eq!(f.matching.review_queue(10).await.unwrap().len(), 1);
    (a, b)
}

/// When the newborn's own clinic reports her again with her name, the
/// queue empties itself: the same child as the person already known is
/// merged into her.
#[tokio::test]
async fn a_newborn_named_later_is_merged_into_the_child_she_is() {
    let f = fixture().await;
    let (a, b) = katherine_then_a_newborn(&f).await;
    // The registry counts its charts (its bands follow its size).
    assert_eq!(
        registry::patients::count::read(f.matching.store())
            .await
            .unwrap(),
        Some(2)
    );
    // The same chart again, named.
    let named = Child {
        middle: "",
        ..jones("B200")
    };
    let again = f.send(&f.clinic_b, &vxu("FACB", "R3", &named, &[])).await;
    assert_eq!(again.source, b.source);
    let gone = f.matching.person(&b.person).await.unwrap().unwrap();
    assert_eq!(gone.status, PersonStatus::Merged);
    assert_eq!(gone.merged_into.as_deref(), Some(a.person.as_str()));
    assert!(f.matching.review_queue(10).await.unwrap().is_empty());
    assert!(f
        .matching
        .potential_duplicates(&a.person)
        .await
        .unwrap()
        .is_empty());
    let source = f.matching.source(&b.source).await.unwrap().unwrap();
    assert_eq!(source.person, a.person);
    assert_eq!(source.link.how, registry::patients::LinkHow::Auto);
    assert!(source
        .link
        .resolved
        .as_deref()
        .is_some_and(|r| r.contains("merged automatically")));
    // One child, both clinics' doses.
    assert_eq!(f.cvx_history(&a.person).await.len(), 2);
    assert!(f.cvx_history(&b.person).await.is_empty());
}

/// The same start, but the name given later is another child's: the twin
/// sister. The provisional person is decided the other way: active, and
/// no longer anyone's potential duplicate.
#[tokio::test]
async fn a_newborn_named_later_as_the_twin_becomes_her_own_person() {
    let f = fixture().await;
    let (a, b) = katherine_then_a_newborn(&f).await;
    let sister = Child {
        given: "Margaret",
        middle: "Rose",
        ..jones("B200")
    };
    f.send(&f.clinic_b, &vxu("FACB", "S3", &sister, &[])).await;
    let p = f.matching.person(&b.person).await.unwrap().unwrap();
    assert_eq!(p.status, PersonStatus::Active);
    assert!(p
        .notes
        .iter()
        .any(|n| n.contains("confirmed automatically")));
    assert!(f.matching.review_queue(10).await.unwrap().is_empty());
    for person in [&a.person, &b.person] {
        assert!(f
            .matching
            .potential_duplicates(person)
            .await
            .unwrap()
            .is_empty());
    }
    assert_ne!(a.person, b.person);
    // Her own dose stays hers.
    assert_eq!(f.cvx_history(&b.person).await.len(), 1);
}

#[tokio::test]
async fn a_reviewer_merges_and_unmerges_by_editing_links_and_the_matcher_keeps_them() {
    let f = fixture().await;
    let a = f
        .send(
            &f.clinic_a,
            &vxu(
                "FACA",
                "M1",
                &jones("A100"),
                &[("A-1", "08", "20240305", "A")],
            ),
        )
        .await;
    // Clinic B flags a multiple birth and spells the name another way: a
    // twin's name may be a letter off the other's, so the matcher will not
    // merge on its own.
    let flagged = Child {
        multiple_birth: "Y",
        given: "Katharine",
        ..jones("B200")
    };
    let b = f
        .send(
            &f.clinic_b,
            &vxu("FACB", "M2", &flagged, &[("B-1", "20", "20240505", "A")]),
        )
        .await;
    assert_eq!(b.grade, Grade::Possible);
    assert_ne!(a.person, b.person);
    let dups = f.matching.potential_duplicates(&b.person).await.unwrap();
    assert_eq!(dups.len(), 1);
    assert_eq!(dups[0].other, a.person);

    let queue = f.matching.review_queue(10).await.unwrap();
    assert_eq!(
        queue.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        [b.person.as_str()]
    );

    // The reviewer decides they are one child.
    let merged = f
        .matching
        .relink(&b.source, Some(&a.person), 5)
        .await
        .unwrap();
    assert_eq!(merged, a.person);
    assert_eq!(f.cvx_history(&a.person).await.len(), 2);
    let gone = f.matching.person(&b.person).await.unwrap().unwrap();
    assert_eq!(gone.status, PersonStatus::Merged);
    assert_eq!(gone.merged_into.as_deref(), Some(a.person.as_str()));
    assert!(f.cvx_history(&b.person).await.is_empty());
    assert!(f.matching.review_queue(10).await.unwrap().is_empty());
    let source = f.matching.source(&b.source).await.unwrap().unwrap();
    assert_eq!(source.link.how, registry::patients::LinkHow::Manual);

    // Clinic B reports again: the manual link stands.
    let again = f
        .send(
            &f.clinic_b,
            &vxu("FACB", "M3", &flagged, &[("B-2", "03", "20250306", "A")]),
        )
        .await;
    assert_eq!(again.person, a.person);
    assert_eq!(f.cvx_history(&a.person).await.len(), 3);

    // Then the reviewer separates them again (an unmerge): B's doses leave.
    let apart = f.matching.relink(&b.source, None, 6).await.unwrap();
    assert_ne!(apart, a.person);
    assert_eq!(
        f.cvx_history(&a.person).await,
        [("08".into(), "20240305".into(), 1)]
    );
    assert_eq!(f.cvx_history(&apart).await.len(), 2);
    // Linking to a merged-away person is refused with where it went.
    let err = f
        .matching
        .relink(&a.source, Some(&b.person), 7)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&a.person), "{err}");
}

#[tokio::test]
async fn a_reviewer_confirms_a_provisional_person_is_nobody_else() {
    let f = fixture().await;
    let a = f
        .send(&f.clinic_a, &vxu("FACA", "N1", &jones("A100"), &[]))
        .await;
    let flagged = Child {
        multiple_birth: "Y",
        given: "Katharine",
        ..jones("B200")
    };
    let b = f.send(&f.clinic_b, &vxu("FACB", "N2", &flagged, &[])).await;
    assert_eq!(b.grade, Grade::Possible);
    f.matching.confirm(&b.person, 9).await.unwrap();
    let p = f.matching.person(&b.person).await.unwrap().unwrap();
    assert_eq!(p.status, PersonStatus::Active);
    assert!(f.matching.review_queue(10).await.unwrap().is_empty());
    assert!(f
        .matching
        .potential_duplicates(&b.person)
        .await
        .unwrap()
        .is_empty());
    assert!(f
        .matching
        .potential_duplicates(&a.person)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_chart_refiled_under_more_keys_than_one_transaction_holds_is_filed_under_all() {
    let f = fixture().await;
    let first = f
        .send(&f.clinic_a, &vxu("FACA", "K1", &jones("A100"), &[]))
        .await;
    // The clinic resends the chart with eight more long identifiers: about
    // ninety new blocking keys (each identifier also files its one-slip
    // variants), more than one transaction of 100 writes with the deletes.
    let mut msg = vxu("FACA", "K2", &jones("A100"), &[]);
    let extra: Vec<String> = (0..8)
        .map(|n| format!("~{:010}^^^OTHER{n}^PI", 4_812_345_670u64 + n))
        .collect();
    msg = msg.replacen(
        "A100^^^FACA^MR",
        &format!("A100^^^FACA^MR{}", extra.concat()),
        1,
    );
    let again = f.send(&f.clinic_a, &msg).await;
    assert_eq!(again.source, first.source);
    let source = f.matching.source(&first.source).await.unwrap().unwrap();
    assert!(source.index_keys.len() > 90, "{}", source.index_keys.len());
    for key in &source.index_keys {
        let entry = f
            .matching
            .store()
            .get(&registry::keys::block_entry(key, &source.id))
            .await
            .unwrap();
        assert!(entry.is_some(), "not filed under {key}");
    }
}

/// Who `find` would link the chart of `source` to now.
async fn found_for(f: &Fixture, source: &str) -> matching::Outcome<String> {
    let record = f.matching.source(source).await.unwrap().unwrap().record;
    f.matching.find(&record).await.unwrap().outcome
}

#[tokio::test]
async fn after_a_relink_candidates_are_scored_as_the_person_the_reviewer_chose() {
    let f = fixture().await;
    let a = f
        .send(&f.clinic_a, &vxu("FACA", "R1", &jones("A100"), &[]))
        .await;
    assert_eq!(
        found_for(&f, &a.source).await.person.as_ref(),
        Some(&a.person)
    );
    // Separated onto a new person: the old one is merged away, and a
    // matching chart must now land on the new one.
    let apart = f.matching.relink(&a.source, None, 5).await.unwrap();
    assert_ne!(apart, a.person);
    let now = found_for(&f, &a.source).await;
    assert_eq!((now.grade, now.person), (Grade::Certain, Some(apart)));
}

#[tokio::test]
async fn a_corrected_birth_date_is_what_later_charts_are_matched_against() {
    let f = fixture().await;
    let first = f
        .send(&f.clinic_a, &vxu("FACA", "D1", &jones("A100"), &[]))
        .await;
    let corrected = Child {
        dob: "20230917",
        ..jones("A100")
    };
    let again = f
        .send(&f.clinic_a, &vxu("FACA", "D2", &corrected, &[]))
        .await;
    assert_eq!(
        (again.source.as_str(), again.person.as_str()),
        (first.source.as_str(), first.person.as_str())
    );
    // Clinic B's chart with the corrected date is the same child.
    let b = f
        .send(
            &f.clinic_b,
            &vxu(
                "FACB",
                "D3",
                &Child {
                    ..corrected.clone()
                },
                &[],
            ),
        )
        .await;
    assert_eq!((b.grade, b.person), (Grade::Certain, first.person));
}

/// Block entries filed before match views existed carry a copy of the
/// record: matching still finds them, and once a view is written (here by a
/// relink) the view is what counts, not the stale copy.
#[tokio::test]
async fn block_entries_with_a_copied_record_still_match_until_a_view_replaces_them() {
    use registry::patients::MatchView;
    use store::{Condition, Item};
    let f = fixture().await;
    let a = f
        .send(&f.clinic_a, &vxu("FACA", "L1", &jones("A100"), &[]))
        .await;
    let source = f.matching.source(&a.source).await.unwrap().unwrap();
    let copy = serde_json::to_vec(&MatchView {
        person: a.person.clone(),
        record: source.match_record.clone(),
    })
    .unwrap();
    let store = f.matching.store();
    for key in &source.index_keys {
        let entry = Item::new(registry::keys::block_entry(key, &a.source), copy.clone());
        store.put(entry, Condition::None).await.unwrap();
    }
    store
        .delete(&registry::keys::match_view(&a.source), Condition::None)
        .await
        .unwrap();
    let before = found_for(&f, &a.source).await;
    assert_eq!(
        (before.grade, before.person),
        (Grade::Certain, Some(a.person.clone()))
    );

    let apart = f.matching.relink(&a.source, None, 5).await.unwrap();
    let after = found_for(&f, &a.source).await;
    assert_eq!((after.grade, after.person), (Grade::Certain, Some(apart)));
}
