//! Group membership from V2 traffic, driven the way the deployed system
//! drives it: messages through intake and matching, then every change of
//! the store's change feed handed to the membership use case.
#![allow(clippy::unwrap_used, clippy::cloned_ref_to_slice_refs)]

use std::sync::Arc;

use iz::{Clock, IisIdentity};
use matching::{Grade, Matcher};
use registry::membership::{
    change_event, Certainty, EvidenceKind, JurisdictionPolicy, Member, Membership, Outcome,
    DEFAULT_POLICY,
};
use registry::patients::PatientMatching;
use registry::queries::{Queries, QueryPolicy};
use registry::{AuKind, AuthorizedUser, AuthorizedUsers, Intake, NewAuthorizedUser, Transport};
use store::embedded::EmbeddedStore;
use store::{ChangeFeed, ItemStore};

struct Iis {
    _dir: tempfile::TempDir,
    store: Arc<EmbeddedStore>,
    intake: Intake,
    matching: PatientMatching,
    membership: Membership,
    users: AuthorizedUsers,
    clinic_a: AuthorizedUser,
    clinic_b: AuthorizedUser,
    /// How far the membership consumer has read the change feed.
    after: std::sync::Mutex<Option<u64>>,
}

/// The shipped policy with some lines changed.
fn policy(changes: &[(&str, &str)]) -> JurisdictionPolicy {
    let mut text = DEFAULT_POLICY.to_owned();
    for (from, to) in changes {
        assert!(text.contains(from), "{from}");
        text = text.replace(from, to);
    }
    JurisdictionPolicy::from_toml(&text).unwrap()
}

async fn iis(policy: JurisdictionPolicy) -> Iis {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path().join("iis.redb")).unwrap());
    let items: Arc<dyn ItemStore> = store.clone();
    let users = AuthorizedUsers::new(items.clone());
    let mut made = Vec::new();
    for (id, fac) in [("clinic-a", "FACA"), ("clinic-b", "FACB")] {
        made.push(
            registry::membership::onboard(
                &users,
                NewAuthorizedUser {
                    id: id.into(),
                    kind: AuKind::Clinic,
                    name: format!("Clinic {fac}"),
                    facilities: vec![fac.into()],
                    username: id.into(),
                    password: "a long enough password".into(),
                },
                0,
                &policy,
            )
            .await
            .unwrap(),
        );
    }
    let matching = PatientMatching::new(items.clone(), Arc::new(Matcher::default()));
    let queries = Queries::new(
        matching.clone(),
        QueryPolicy {
            jurisdiction: Arc::new(policy.clone()),
            ..QueryPolicy::default()
        },
    );
    let clinic_b = made.pop().unwrap();
    let clinic_a = made.pop().unwrap();
    Iis {
        _dir: dir,
        intake: Intake::new(items, IisIdentity::default()).with_queries(queries),
        membership: Membership::new(matching.persons().clone(), Arc::new(policy)),
        matching,
        users,
        store,
        clinic_a,
        clinic_b,
        after: std::sync::Mutex::new(None),
    }
}

fn vxu(fac: &str, ctl: &str, given: &str, mrn: &str, multiple_birth: &str) -> String {
    format!(
        "MSH|^~\\&|EHR|{fac}|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{ctl}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{fac}|IISFAC\r\
PID|1||{mrn}^^^{fac}^MR||Okafor^{given}^^^^^L|Eze^^^^^^M|20240305|F|||7 Birch Ln^^Lansing^MI^48910^USA^P||^PRN^PH^^^517^5550177|||||||||||{multiple_birth}\r\
NK1|1|Okafor^Ada^^^^^L|MTH^Mother^HL70063\r\
ORC|RE||{ctl}-1^{fac}\r\
RXA|0|1|20240305||08^HepB^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r"
    )
}

fn z34(fac: &str, ctl: &str, given: &str) -> String {
    format!(
        "MSH|^~\\&|EHR|{fac}|IIS|IISFAC|20250601120000-0500||QBP^Q11^QBP_Q11|{ctl}|P|2.5.1|||ER|AL|||||Z34^CDCPHINVS|{fac}|IISFAC\r\
QPD|Z34^Request Immunization History^CDCPHINVS|Q-{ctl}|^^^{fac}^MR|Okafor^{given}^^^^^L|Eze^^^^^^M|20240305|F|7 Birch Ln^^Lansing^MI^48910^USA^P\r\
RCP|I|5^RD&records&HL70126\r"
    )
}

impl Iis {
    /// Sends a message; a VXU is then matched. Returns (person, grade) for a VXU.
    async fn send(&self, au: &AuthorizedUser, msg: &str) -> Option<(String, Grade)> {
        let d = self
            .intake
            .receive(
                au,
                &Transport::Rest,
                msg.as_bytes(),
                Clock::at(1_790_000_000),
            )
            .await
            .unwrap();
        assert!(!d.answer.contains("MSA|AR"), "{}", d.answer);
        let id = d.message_id?;
        let m = self.matching.process(&id, next_ms()).await.unwrap();
        Some((m.person, m.grade))
    }

    async fn ask(&self, au: &AuthorizedUser, msg: &str) -> String {
        let d = self
            .intake
            .receive(
                au,
                &Transport::Rest,
                msg.as_bytes(),
                Clock::at(1_790_000_000),
            )
            .await
            .unwrap();
        d.answer.replace('\r', "\n")
    }

    /// Applies every membership event the store has announced since the
    /// last call; `from_start` replays the whole feed (redelivery).
    async fn drain(&self, from_start: bool) -> Vec<Outcome> {
        let mut after = if from_start {
            None
        } else {
            *self.after.lock().unwrap()
        };
        let mut out = Vec::new();
        loop {
            let changes = self.store.read(after, 100).await.unwrap();
            if changes.is_empty() {
                break;
            }
            for c in &changes {
                if let Some(event) = change_event(c) {
                    out.extend(self.membership.apply(&event).await.unwrap());
                }
                after = Some(c.seq);
            }
        }
        let mut saved = self.after.lock().unwrap();
        *saved = (*saved).max(after);
        out
    }

    async fn group(&self, au: &AuthorizedUser) -> String {
        self.users
            .get(&au.id)
            .await
            .unwrap()
            .unwrap()
            .group
            .unwrap()
    }

    async fn members(&self, au: &AuthorizedUser) -> Vec<Member> {
        let g = self.group(au).await;
        self.membership
            .groups()
            .members(&g, None, 1000)
            .await
            .unwrap()
            .0
    }

    async fn active(&self, au: &AuthorizedUser) -> Vec<String> {
        let mut v: Vec<String> = self
            .members(au)
            .await
            .into_iter()
            .filter(|m| m.active)
            .map(|m| m.person)
            .collect();
        v.sort();
        v
    }

    async fn quantity(&self, au: &AuthorizedUser) -> u64 {
        let g = self.group(au).await;
        self.membership.groups().quantity(&g).await.unwrap()
    }
}

/// Event times must advance, as they do in a running system.
fn next_ms() -> i64 {
    static T: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1_790_000_000_000);
    T.fetch_add(1000, std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test]
async fn onboarding_creates_the_group_and_a_vxu_adds_its_patient_with_provenance() {
    let iis = iis(JurisdictionPolicy::default()).await;
    let ga = iis.group(&iis.clinic_a).await;
    let gb = iis.group(&iis.clinic_b).await;
    assert_ne!(ga, gb);
    let record = iis.membership.groups().get(&ga).await.unwrap().unwrap();
    assert_eq!(record.au, "clinic-a");

    let (person, _) = iis
        .send(&iis.clinic_a, &vxu("FACA", "V1", "Chioma", "A1", ""))
        .await
        .unwrap();
    iis.drain(false).await;
    let members = iis.members(&iis.clinic_a).await;
    assert_eq!(members.len(), 1);
    let m = &members[0];
    assert_eq!((m.person.as_str(), m.active), (person.as_str(), true));
    assert_eq!(m.first.kind, EvidenceKind::Vxu);
    assert_eq!(m.first.certainty, Certainty::New);
    assert_eq!(m.first.policy, "default-1");
    assert!(iis.members(&iis.clinic_b).await.is_empty());
    assert_eq!(iis.quantity(&iis.clinic_a).await, 1);

    // Clinic B reports the same child: one person, in both Groups (multiple).
    let (again, grade) = iis
        .send(&iis.clinic_b, &vxu("FACB", "V2", "Chioma", "B1", ""))
        .await
        .unwrap();
    assert_eq!((again.as_str(), grade), (person.as_str(), Grade::Certain));
    iis.drain(false).await;
    assert_eq!(iis.active(&iis.clinic_a).await, [person.clone()]);
    assert_eq!(iis.active(&iis.clinic_b).await, [person.clone()]);
    let b = &iis.members(&iis.clinic_b).await[0];
    assert_eq!(b.first.certainty, Certainty::Certain);
}

#[tokio::test]
async fn replayed_and_duplicate_events_change_nothing() {
    let iis = iis(JurisdictionPolicy::default()).await;
    iis.send(&iis.clinic_a, &vxu("FACA", "V1", "Chioma", "A1", ""))
        .await
        .unwrap();
    iis.send(&iis.clinic_a, &vxu("FACA", "V2", "Chioma", "A1", ""))
        .await
        .unwrap();
    iis.send(&iis.clinic_b, &vxu("FACB", "V3", "Chioma", "B1", ""))
        .await
        .unwrap();
    iis.drain(false).await;
    let before_a = iis.members(&iis.clinic_a).await;
    let before_b = iis.members(&iis.clinic_b).await;
    assert_eq!(before_a.len(), 1);
    // The whole feed delivered again, twice.
    for _ in 0..2 {
        let outcomes = iis.drain(true).await;
        assert!(
            outcomes.iter().all(|o| !matches!(o, Outcome::Added { .. })),
            "{outcomes:?}"
        );
    }
    assert_eq!(iis.members(&iis.clinic_a).await, before_a);
    assert_eq!(iis.members(&iis.clinic_b).await, before_b);
    assert_eq!(iis.quantity(&iis.clinic_a).await, 1);
    assert_eq!(iis.quantity(&iis.clinic_b).await, 1);
}

#[tokio::test]
async fn a_query_adds_nobody_unless_the_policy_says_queries_count() {
    let off = iis(JurisdictionPolicy::default()).await;
    let (person, _) = off
        .send(&off.clinic_a, &vxu("FACA", "V1", "Chioma", "A1", ""))
        .await
        .unwrap();
    off.send(&off.clinic_b, &z34("FACB", "Q1", "Chioma")).await;
    off.drain(false).await;
    assert!(off.members(&off.clinic_b).await.is_empty());

    let on = iis(policy(&[("qbp = false", "qbp = true")])).await;
    let (person_on, _) = on
        .send(&on.clinic_a, &vxu("FACA", "V1", "Chioma", "A1", ""))
        .await
        .unwrap();
    // Not found: nobody is added.
    on.send(&on.clinic_b, &z34("FACB", "Q0", "Zelda")).await;
    on.drain(false).await;
    assert!(on.members(&on.clinic_b).await.is_empty());
    // A Z32 answer: the patient joins the asker's Group.
    on.send(&on.clinic_b, &z34("FACB", "Q1", "Chioma")).await;
    on.drain(false).await;
    let b = on.members(&on.clinic_b).await;
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].person, person_on);
    assert_eq!(b[0].first.kind, EvidenceKind::Qbp);
    assert_eq!(b[0].first.message, "Q1");
    let _ = person;
}

#[tokio::test]
async fn a_possible_match_is_not_added_unless_the_policy_admits_possible() {
    for (admit, expect) in [(false, 0), (true, 1)] {
        let p = if admit {
            policy(&[(
                "minimum_certainty = \"certain\"",
                "minimum_certainty = \"possible\"",
            )])
        } else {
            JurisdictionPolicy::default()
        };
        let iis = iis(p).await;
        iis.send(&iis.clinic_a, &vxu("FACA", "V1", "Chioma", "A1", ""))
            .await
            .unwrap();
        // Of a multiple birth, a first name one letter off may be the twin:
        // possible.
        let (_, grade) = iis
            .send(&iis.clinic_b, &vxu("FACB", "V2", "Chiomx", "B1", "Y"))
            .await
            .unwrap();
        assert_eq!(grade, Grade::Possible);
        iis.drain(false).await;
        assert_eq!(
            iis.members(&iis.clinic_b).await.len(),
            expect,
            "admit possible: {admit}"
        );
        if admit {
            assert_eq!(
                iis.members(&iis.clinic_b).await[0].first.certainty,
                Certainty::Possible
            );
        }
    }
}

#[tokio::test]
async fn a_confirmed_provisional_patient_joins_the_group() {
    let iis = iis(JurisdictionPolicy::default()).await;
    iis.send(&iis.clinic_a, &vxu("FACA", "V1", "Chioma", "A1", ""))
        .await
        .unwrap();
    let (provisional, _) = iis
        .send(&iis.clinic_b, &vxu("FACB", "V2", "Chiomx", "B1", "Y"))
        .await
        .unwrap();
    iis.drain(false).await;
    assert!(iis.members(&iis.clinic_b).await.is_empty());
    iis.matching.confirm(&provisional, next_ms()).await.unwrap();
    iis.drain(false).await;
    assert_eq!(iis.active(&iis.clinic_b).await, [provisional]);
    assert_eq!(
        iis.members(&iis.clinic_b).await[0].first.certainty,
        Certainty::Manual
    );
}

#[tokio::test]
async fn single_association_moves_the_patient_and_remembers_the_removal() {
    let iis = iis(policy(&[(
        "association = \"multiple\"",
        "association = \"single\"",
    )]))
    .await;
    let (person, _) = iis
        .send(&iis.clinic_a, &vxu("FACA", "V1", "Chioma", "A1", ""))
        .await
        .unwrap();
    iis.drain(false).await;
    assert_eq!(iis.active(&iis.clinic_a).await, [person.clone()]);
    iis.send(&iis.clinic_b, &vxu("FACB", "V2", "Chioma", "B1", ""))
        .await
        .unwrap();
    let outcomes = iis.drain(false).await;
    let gb = iis.group(&iis.clinic_b).await;
    let ga = iis.group(&iis.clinic_a).await;
    assert!(
        outcomes.contains(&Outcome::Added {
            group: gb.clone(),
            person: person.clone(),
            left: vec![ga.clone()]
        }),
        "{outcomes:?}"
    );
    assert_eq!(iis.active(&iis.clinic_b).await, [person.clone()]);
    let a = iis.members(&iis.clinic_a).await;
    assert_eq!(a.len(), 1, "the removal is kept");
    assert!(!a[0].active);
    assert!(a[0].removed_at.is_some());
    assert!(a[0].removed_because.as_deref().unwrap().contains(&gb));
    assert_eq!(iis.quantity(&iis.clinic_a).await, 0);
    assert_eq!(iis.quantity(&iis.clinic_b).await, 1);

    // Replaying clinic A's older report does not take the patient back.
    iis.drain(true).await;
    assert!(iis.active(&iis.clinic_a).await.is_empty());
    assert_eq!(iis.active(&iis.clinic_b).await, [person.clone()]);
    // A new report from clinic A does.
    iis.send(&iis.clinic_a, &vxu("FACA", "V3", "Chioma", "A1", ""))
        .await
        .unwrap();
    iis.drain(false).await;
    assert_eq!(iis.active(&iis.clinic_a).await, [person]);
    assert!(iis.active(&iis.clinic_b).await.is_empty());
    assert_eq!(iis.quantity(&iis.clinic_a).await, 1);
    assert_eq!(iis.quantity(&iis.clinic_b).await, 0);
}

#[tokio::test]
async fn merged_persons_memberships_follow_the_survivor_and_an_unmerge_puts_them_back() {
    let iis = iis(JurisdictionPolicy::default()).await;
    // Two records the matcher keeps apart: different children to it.
    let (pa, _) = iis
        .send(&iis.clinic_a, &vxu("FACA", "V1", "Chioma", "A1", ""))
        .await
        .unwrap();
    let other = vxu("FACB", "V2", "Nkechi", "B1", "")
        .replace("Okafor^", "Adeyemi^")
        .replace("20240305|F", "20230117|F")
        .replace("7 Birch Ln", "90 Oak St");
    let (pb, _) = iis.send(&iis.clinic_b, &other).await.unwrap();
    assert_ne!(pa, pb);
    iis.drain(false).await;
    assert_eq!(iis.active(&iis.clinic_a).await, [pa.clone()]);
    assert_eq!(iis.active(&iis.clinic_b).await, [pb.clone()]);

    // A reviewer merges B's record into A's person: B's person is merged
    // away, and the survivor is in both Groups.
    let b_source = iis.matching.sources_of(&pb).await.unwrap().remove(0);
    iis.matching
        .relink(&b_source, Some(&pa), next_ms())
        .await
        .unwrap();
    iis.drain(false).await;
    assert_eq!(iis.active(&iis.clinic_a).await, [pa.clone()]);
    assert_eq!(iis.active(&iis.clinic_b).await, [pa.clone()]);
    let b = iis.members(&iis.clinic_b).await;
    let gone = b.iter().find(|m| m.person == pb).unwrap();
    assert!(!gone.active);
    assert!(gone.removed_because.as_deref().unwrap().contains(&pa));
    assert_eq!(iis.quantity(&iis.clinic_b).await, 1);

    // The reviewer separates them again: B's record goes to a new person,
    // who is in B's Group; A's person leaves B's Group (no evidence left)
    // and keeps A's.
    let apart = iis
        .matching
        .relink(&b_source, None, next_ms())
        .await
        .unwrap();
    iis.drain(false).await;
    assert_eq!(iis.active(&iis.clinic_a).await, [pa.clone()]);
    assert_eq!(iis.active(&iis.clinic_b).await, [apart]);
    assert_eq!(iis.quantity(&iis.clinic_a).await, 1);
    assert_eq!(iis.quantity(&iis.clinic_b).await, 1);
}

#[tokio::test]
async fn a_kind_without_groups_gets_none_and_its_traffic_adds_nobody() {
    let p = policy(&[(
        "kinds = [\"clinic\", \"health-system\", \"pharmacy\", \"school\", \"payer\", \"health-department\", \"other\"]",
        "kinds = [\"health-system\"]",
    )]);
    let iis = iis(p).await;
    assert!(iis.clinic_a.group.is_none());
    iis.send(&iis.clinic_a, &vxu("FACA", "V1", "Chioma", "A1", ""))
        .await
        .unwrap();
    let outcomes = iis.drain(false).await;
    assert!(
        matches!(outcomes.as_slice(), [Outcome::Skipped(why)] if why.contains("no Group")),
        "{outcomes:?}"
    );
    let au = iis.users.get("clinic-a").await.unwrap().unwrap();
    assert!(au.group.is_none());
}

#[tokio::test]
async fn a_user_onboarded_without_a_group_gets_one_on_first_eligible_message() {
    let iis = iis(JurisdictionPolicy::default()).await;
    let plain = iis
        .users
        .add(
            NewAuthorizedUser {
                id: "clinic-c".into(),
                kind: AuKind::Clinic,
                name: "Clinic C".into(),
                facilities: vec!["FACC".into()],
                username: "clinic-c".into(),
                password: "a long enough password".into(),
            },
            0,
        )
        .await
        .unwrap();
    assert!(plain.group.is_none());
    let (person, _) = iis
        .send(&plain, &vxu("FACC", "V1", "Chioma", "C1", ""))
        .await
        .unwrap();
    iis.drain(false).await;
    let c = iis.users.get("clinic-c").await.unwrap().unwrap();
    let g = c.group.unwrap();
    let (members, _) = iis.membership.groups().members(&g, None, 10).await.unwrap();
    assert_eq!(members[0].person, person);
}

/// The seed's Groups grow for years: a large Group is written by 16
/// concurrent adders and read back, and no stored item grows with
/// membership (DynamoDB caps an item at 400 KB; a Group item holding its
/// members would hit it). 20,000 members by default, to keep CI short;
/// `IISBULK_BIG_GROUP=200000` runs the full size (minutes: every add is its
/// own durable transaction, as in production).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_group_keeps_every_item_small() {
    let n: usize = std::env::var("IISBULK_BIG_GROUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let iis = iis(JurisdictionPolicy::default()).await;
    let g = iis.group(&iis.clinic_a).await;
    let groups = iis.membership.groups().clone();
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let groups = groups.clone();
            let g = g.clone();
            tokio::spawn(async move {
                for i in (t..n).step_by(16) {
                    let evidence = registry::membership::Evidence {
                        kind: EvidenceKind::Vxu,
                        message: format!("m{i}"),
                        certainty: Certainty::New,
                        at: 1_790_000_000_000 + i as i64,
                        policy: "default-1".into(),
                        from_person: None,
                        basis: None,
                    };
                    groups
                        .add(
                            &g,
                            &format!("p{i:07}"),
                            &evidence,
                            registry::membership::Association::Multiple,
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!("{n} members added in {:?}", started.elapsed());
    assert_eq!(groups.quantity(&g).await.unwrap(), n as u64);

    // Read back page by page; the Group's own items stay tiny.
    let mut cursor = None;
    let mut seen = 0usize;
    let mut largest = 0usize;
    loop {
        let (page, next) = groups.members(&g, cursor, 1000).await.unwrap();
        seen += page.len();
        for m in &page {
            largest = largest.max(serde_json::to_vec(m).unwrap().len());
        }
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, n);
    let mut everything = 0usize;
    let mut after = None;
    loop {
        let changes = iis.store.read(after, 10_000).await.unwrap();
        if changes.is_empty() {
            break;
        }
        for c in &changes {
            if let Some(item) = &c.new {
                largest = largest.max(item.data.len());
                everything += 1;
            }
            after = Some(c.seq);
        }
    }
    eprintln!("{everything} item writes, largest item {largest} bytes");
    assert!(largest < 2_000, "an item grew to {largest} bytes");
}

#[tokio::test]
async fn a_z32_carries_the_askers_group_id_when_the_jurisdiction_says_so() {
    let on = [
        ("group_identifier = false", "group_identifier = true"),
        ("# identifier_type = \"GI\"", "identifier_type = \"GI\""),
        (
            "# assigning_authority = \"IISGROUP\"",
            "assigning_authority = \"IISGROUP\"",
        ),
    ];
    let iis = iis(policy(&on)).await;
    iis.send(&iis.clinic_a, &vxu("FACA", "V1", "Chioma", "A1", ""))
        .await
        .unwrap();
    iis.drain(false).await;
    let ga = iis.group(&iis.clinic_a).await;
    let gb = iis.group(&iis.clinic_b).await;
    let rsp = iis.ask(&iis.clinic_a, &z34("FACA", "Q1", "Chioma")).await;
    let pid = rsp.lines().find(|l| l.starts_with("PID|")).unwrap();
    assert!(pid.contains(&format!("~{ga}^^^IISGROUP^GI")), "{pid}");
    // Clinic B's query (queries add nobody by default): no Group id, and
    // never clinic A's.
    let rsp = iis.ask(&iis.clinic_b, &z34("FACB", "Q2", "Chioma")).await;
    let pid = rsp.lines().find(|l| l.starts_with("PID|")).unwrap();
    assert!(
        !pid.contains("IISGROUP") && !pid.contains(&ga) && !pid.contains(&gb),
        "{pid}"
    );

    // With queries counting, clinic B's own query puts the patient in its
    // Group, so its answer carries its Group id.
    let mut with_qbp = on.to_vec();
    with_qbp.push(("qbp = false", "qbp = true"));
    let iis = self::iis(policy(&with_qbp)).await;
    iis.send(&iis.clinic_a, &vxu("FACA", "V1", "Chioma", "A1", ""))
        .await
        .unwrap();
    let gb = iis.group(&iis.clinic_b).await;
    let rsp = iis.ask(&iis.clinic_b, &z34("FACB", "Q2", "Chioma")).await;
    let pid = rsp.lines().find(|l| l.starts_with("PID|")).unwrap();
    assert!(pid.contains(&format!("~{gb}^^^IISGROUP^GI")), "{pid}");
}
