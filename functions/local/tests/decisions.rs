//! Reviewers' decisions as labelled pairs for matching: `iisbulk patients
//! decisions --export` writes them (PHI: a new file of the owner's alone,
//! nothing of the records printed), `iisbulk matching train
//! --labelled-pairs` judges a trained configuration on them, and `iisbulk
//! matching compare --pairs` reads them as they are.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use registry::patients::decisions::{record_decision, ReviewDecision};
use registry::patients::PatientMatching;
use registry::{AuKind, AuthorizedUser, AuthorizedUsers, Intake, NewAuthorizedUser, Transport};

fn iisbulk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> (String, String) {
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(out.status.success(), "{stderr}");
    (String::from_utf8(out.stdout.clone()).unwrap(), stderr)
}

fn vxu(
    facility: &str,
    control_id: &str,
    mrn: &str,
    given: &str,
    family: &str,
    dob: &str,
) -> String {
    format!(
        "MSH|^~\\&|EHR|{facility}|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{control_id}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{facility}|IISFAC\r\
PID|1||{mrn}^^^{facility}^MR||{family}^{given}^^^^^L|Smith^^^^^^M|{dob}|F|||12 Elm Street^^Lansing^MI^48910^USA^P||^PRN^PH^^^517^5550142\r\
NK1|1|{family}^Maria^^^^^L|MTH^Mother^HL70063\r\
ORC|RE||{control_id}-1^{facility}\rRXA|0|1|20240505||20^vaccine^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r"
    )
}

/// Two pairs waiting for review on the data directory's store, each a
/// clinic-a record beside a clinic-b newborn: (known, waiting) persons.
async fn two_waiting(data: &Path) -> Vec<(String, String)> {
    let store: Arc<dyn store::ItemStore> =
        Arc::new(store::embedded::EmbeddedStore::open(data.join("iis.redb")).unwrap());
    let users = AuthorizedUsers::new(store.clone());
    let mut clinics = Vec::new();
    for (id, facility) in [("clinic-a", "FACA"), ("clinic-b", "FACB")] {
        clinics.push(
            users
                .add(
                    NewAuthorizedUser {
                        id: id.into(),
                        kind: AuKind::Clinic,
                        name: id.into(),
                        facilities: vec![facility.into()],
                        username: id.into(),
                        password: "a long enough password".into(),
                    },
                    0,
                )
                .await
                .unwrap(),
        );
    }
    let intake = Intake::new(store.clone(), iz::IisIdentity::default());
    let patients = PatientMatching::new(store.clone(), Arc::new(matching::Matcher::default()));
    let send = |au: &AuthorizedUser, message: String| {
        let (intake, patients, au) = (intake.clone(), patients.clone(), au.clone());
        async move {
            let d = intake
                .receive(
                    &au,
                    &Transport::Rest,
                    message.as_bytes(),
                    iz::Clock::at(1_790_000_000),
                )
                .await
                .unwrap();
            let id = d
                .message_id
                .unwrap_or_else(|| panic!("refused: {}", d.answer));
            patients.process(&id, 1_790_000_000_000).await.unwrap()
        }
    };
    let mut pairs = Vec::new();
    for (n, family, dob) in [(1, "Jones", "20240305"), (2, "Okafor", "20230101")] {
        let known = send(
            &clinics[0],
            vxu(
                "FACA",
                &format!("A{n}"),
                &format!("A{n}00"),
                "Katherine",
                family,
                dob,
            ),
        )
        .await;
        let newborn = send(
            &clinics[1],
            vxu(
                "FACB",
                &format!("B{n}"),
                &format!("B{n}00"),
                "Baby Girl",
                family,
                dob,
            ),
        )
        .await;
        assert_eq!(
            newborn.grade,
            matching::Grade::Possible,
            "the fixture makes a possible match"
        );
        pairs.push((known.person, newborn.person));
    }
    pairs
}

/// The first pair merged and the second kept apart by a reviewer, each
/// decision recorded as the console records it.
async fn decide_both(data: &Path, pairs: &[(String, String)]) {
    let store: Arc<dyn store::ItemStore> =
        Arc::new(store::embedded::EmbeddedStore::open(data.join("iis.redb")).unwrap());
    let patients = PatientMatching::new(store.clone(), Arc::new(matching::Matcher::default()));
    // The first pair: the same person (merged), with both sides' source
    // records named as the console names them.
    let (known, waiting) = &pairs[0];
    let sources = patients.persons().sources_of(waiting).await.unwrap();
    let other_sources = patients.persons().sources_of(known).await.unwrap();
    for source in &sources {
        patients
            .relink(source, Some(known), 1_790_000_100_000)
            .await
            .unwrap();
    }
    record_decision(
        &store,
        &ReviewDecision {
            person: waiting.clone(),
            others: vec![known.clone()],
            same_person: true,
            reviewer: "rita".into(),
            reason: "newborn named later".into(),
            at_ms: 1_790_000_100_000,
            sources,
            other_sources,
        },
    )
    .await
    .unwrap();
    // The second: different people (kept apart), kept as decisions were
    // before they named source records: resolved from the persons.
    let (known, waiting) = &pairs[1];
    patients.confirm(waiting, 1_790_000_200_000).await.unwrap();
    record_decision(
        &store,
        &ReviewDecision {
            person: waiting.clone(),
            others: vec![known.clone()],
            same_person: false,
            reviewer: "rita".into(),
            reason: "twin".into(),
            at_ms: 1_790_000_200_000,
            sources: Vec::new(),
            other_sources: Vec::new(),
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn reviewers_decisions_become_labelled_pairs_that_training_is_judged_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let pairs = two_waiting(&data).await;
    let data_arg = data.to_str().unwrap();

    // The queue from the command line, by the sender of the waiting records.
    let review = |au: &str| {
        ok(&iisbulk(&[
            "patients",
            "review",
            "--data-dir",
            data_arg,
            "--au",
            au,
        ]))
    };
    let (listed, said) = review("clinic-b");
    let waiting: Vec<String> = listed
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["person"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        waiting,
        [pairs[0].1.clone(), pairs[1].1.clone()],
        "oldest first"
    );
    assert!(
        said.contains("2 waiting with a record from clinic-b"),
        "{said}"
    );
    let (listed, said) = review("clinic-a");
    assert!(listed.is_empty(), "{listed}");
    assert!(said.contains("0 waiting"), "{said}");

    decide_both(&data, &pairs).await;

    // The decisions themselves: ids and verdicts, no records.
    let (listed, _) = ok(&iisbulk(&["patients", "decisions", "--data-dir", data_arg]));
    let listed: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["same_person"], true, "oldest first");
    assert_eq!(listed[1]["same_person"], false);

    // The export: labelled pairs, mode 0600, nothing of them printed.
    let pairs_path = dir.path().join("pairs.jsonl");
    let pairs_arg = pairs_path.to_str().unwrap();
    let export = iisbulk(&[
        "patients",
        "decisions",
        "--data-dir",
        data_arg,
        "--export",
        pairs_arg,
    ]);
    let (stdout, stderr) = ok(&export);
    for printed in [&stdout, &stderr] {
        for phi in ["Katherine", "Jones", "Okafor", "Baby", "2024-03-05", "Elm"] {
            assert!(!printed.contains(phi), "{phi} printed: {printed}");
        }
    }
    assert!(
        stderr.contains("2 labelled pairs (1 same person, 1 different people)"),
        "{stderr}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&pairs_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the export is its owner's alone");
    }
    let text = std::fs::read_to_string(&pairs_path).unwrap();
    let pairs = matching::labelled::parse(&text).unwrap();
    assert_eq!(pairs.len(), 2, "{text}");
    let merged = pairs.iter().find(|p| p.same_person).unwrap();
    let apart = pairs.iter().find(|p| !p.same_person).unwrap();
    // Each pair is the waiting record beside the one it was compared with.
    for (pair, family) in [(merged, "Jones"), (apart, "Okafor")] {
        let mut given = [pair.a.given.clone().unwrap(), pair.b.given.clone().unwrap()];
        given.sort();
        assert_eq!(given, ["Baby Girl".to_owned(), "Katherine".to_owned()]);
        assert_eq!(pair.a.family.as_deref(), Some(family));
        assert_eq!(pair.b.family.as_deref(), Some(family));
        assert_ne!(pair.a.id, pair.b.id);
    }
    assert_eq!(merged.decided_at, Some(1_790_000_100_000));

    // Never over an existing file.
    let again = iisbulk(&[
        "patients",
        "decisions",
        "--data-dir",
        data_arg,
        "--export",
        pairs_arg,
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));

    // compare reads the export as it is, and echoes the label.
    let (compared, _) = ok(&iisbulk(&["matching", "compare", "--pairs", pairs_arg]));
    let compared: Vec<serde_json::Value> = compared
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(compared.len(), 2);
    assert!(compared.iter().any(|c| c["expected"] == "same person"));
    assert!(compared.iter().any(|c| c["expected"] == "different people"));

    // train on unlabelled records, judged on the labelled pairs.
    let records_path = dir.path().join("records.jsonl");
    let mut records = std::fs::File::create(&records_path).unwrap();
    for record in synthetic_population::Population::generate(300, 7).people {
        writeln!(records, "{}", serde_json::to_string(&record).unwrap()).unwrap();
    }
    drop(records);
    let config_path = dir.path().join("trained.toml");
    let (summary, stderr) = ok(&iisbulk(&[
        "matching",
        "train",
        "--records",
        records_path.to_str().unwrap(),
        "--random-pairs",
        "20000",
        "--labelled-pairs",
        pairs_arg,
        "--out",
        config_path.to_str().unwrap(),
    ]));
    assert!(summary.contains("labelled pairs"), "{summary}");
    assert!(summary.contains("judged on, not trained on"), "{summary}");
    assert!(summary.contains("base (iis-fs-2"), "{summary}");
    assert!(summary.contains("trained (trained)"), "{summary}");
    assert!(summary.contains("false merges"), "{summary}");
    for phi in ["Katherine", "Jones", "Okafor", "Baby"] {
        assert!(
            !summary.contains(phi) && !stderr.contains(phi),
            "{phi} printed"
        );
    }
    assert!(config_path.exists());

    // A file that is not labelled pairs is refused at once, by line.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\":\"1\",\"a\":{\"id\":\"x\",\"given\":\"Secretname\"}}\n",
    )
    .unwrap();
    let refused = iisbulk(&[
        "matching",
        "train",
        "--records",
        records_path.to_str().unwrap(),
        "--labelled-pairs",
        bad.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("line 1"), "{said}");
    assert!(!said.contains("Secretname"), "{said}");
}
