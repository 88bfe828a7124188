//! QBP Z34 and Z44 answered from the registry: Z32, Z42 (evaluated history
//! and forecast), Z31, Z33 NF/TM, protection, twins; every generated RSP
//! validated against its own NIST profile.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use hl7::Message;
use iz::{Clock, IisIdentity, Severity};
use matching::Matcher;
use registry::patients::PatientMatching;
use registry::queries::{Queries, QueryPolicy};
use registry::{AuthorizedUser, Intake, Transport};
use store::ItemStore;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn ItemStore>,
    intake: Intake,
    queries: Queries,
    matching: PatientMatching,
    clinic_a: AuthorizedUser,
    clinic_b: AuthorizedUser,
}

async fn fixture() -> Fixture {
    let r = support::two_clinics().await;
    let matching = PatientMatching::new(r.store.clone(), Arc::new(Matcher::default()));
    let queries = Queries::new(matching.clone(), QueryPolicy::default());
    Fixture {
        _dir: r.dir,
        store: r.store.clone(),
        intake: Intake::new(r.store, IisIdentity::default()).with_queries(queries.clone()),
        queries,
        matching,
        clinic_a: r.clinic_a,
        clinic_b: r.clinic_b,
    }
}

fn clock() -> Clock {
    Clock::at(1_790_000_000)
}

/// A child's VXU: (given, MRN, multiple birth, birth order, protection), doses (filler, CVX, date, lot).
fn vxu(
    fac: &str,
    ctl: &str,
    given: &str,
    mrn: &str,
    twin: &str,
    protect: &str,
    doses: &[(&str, &str, &str, &str)],
) -> String {
    let pdate = if protect.is_empty() { "" } else { "20250601" };
    let (mb, bo) = match twin {
        "" => ("", ""),
        order => ("Y", order),
    };
    let mut m = format!(
        "MSH|^~\\&|EHR|{fac}|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{ctl}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{fac}|IISFAC\r\
PID|1||{mrn}^^^{fac}^MR||Mendoza^{given}^^^^^L|Ruiz^^^^^^M|20240305|F|||7 Birch Ln^^Lansing^MI^48910^USA^P||^PRN^PH^^^517^5550177|||||||||||{mb}|{bo}\r\
PD1||||||||||||{protect}|{pdate}\r\
NK1|1|Mendoza^Lucia^^^^^L|MTH^Mother^HL70063\r"
    );
    for (filler, cvx, date, lot) in doses {
        m.push_str(&format!(
            "ORC|RE||{filler}^{fac}\rRXA|0|1|{date}||{cvx}^vaccine^CVX|0.5|mL^mL^UCUM||00^New record^NIP001||||||{lot}||MSD^Merck^MVX|||CP|A\r\
OBX|1|CE|64994-7^Vaccine Funding Program Eligibility^LN|1|V02^VFC eligible Medicaid^HL70064||||||F|||{date}|||VXC40^per immunization^CDCPHINVS\r\
OBX|2|CE|30956-7^Vaccine type^LN|2|45^Hep B^CVX||||||F|||{date}\r\
OBX|3|DT|29768-9^VIS published^LN|2|20230512||||||F|||{date}\r\
OBX|4|DT|29769-7^VIS presented^LN|2|{date}||||||F|||{date}\r"
        ));
    }
    m
}

fn z34(fac: &str, ctl: &str, given: &str, limit: &str) -> String {
    let rcp = if limit.is_empty() {
        String::new()
    } else {
        format!("RCP|I|{limit}^RD&records&HL70126\r")
    };
    format!(
        "MSH|^~\\&|EHR|{fac}|IIS|IISFAC|20250601120000-0500||QBP^Q11^QBP_Q11|{ctl}|P|2.5.1|||ER|AL|||||Z34^CDCPHINVS|{fac}|IISFAC\r\
QPD|Z34^Request Immunization History^CDCPHINVS|Q-{ctl}|^^^{fac}^MR|Mendoza^{given}^^^^^L|Ruiz^^^^^^M|20240305|F|7 Birch Ln^^Lansing^MI^48910^USA^P\r{rcp}"
    )
}

impl Fixture {
    /// Sends a VXU and applies it; returns the person it went to.
    async fn send(&self, au: &AuthorizedUser, msg: &str) -> String {
        let d = self
            .intake
            .receive(au, &Transport::Rest, msg.as_bytes(), clock())
            .await
            .unwrap();
        assert!(
            !d.answer.contains("|E|"),
            "{}",
            d.answer.replace('\r', "\n")
        );
        let id = d
            .message_id
            .unwrap_or_else(|| panic!("not accepted:\n{}", d.answer));
        self.matching.process(&id, 1).await.unwrap().person
    }

    async fn ask(&self, au: &AuthorizedUser, msg: &str) -> String {
        let d = self
            .intake
            .receive(au, &Transport::Rest, msg.as_bytes(), clock())
            .await
            .unwrap();
        // Every answer must conform to the profile it declares.
        let parsed = Message::parse(d.answer.as_bytes()).unwrap();
        let (profile, v) = iz::validate_declared(&parsed, clock()).unwrap();
        let errors: Vec<_> = v
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Error)
            .map(|f| format!("{} {}", f.location.to_erl(), f.message))
            .collect();
        assert!(
            errors.is_empty(),
            "{profile:?} answer does not conform: {errors:#?}\n{}",
            d.answer.replace('\r', "\n")
        );
        d.answer.replace('\r', "\n")
    }
}

fn segments<'a>(rsp: &'a str, id: &str) -> Vec<&'a str> {
    rsp.lines()
        .filter(|l| l.starts_with(&format!("{id}|")))
        .collect()
}

#[tokio::test]
async fn a_known_child_gets_z32_with_every_dose_and_nothing_from_anyone_else() {
    let f = fixture().await;
    f.send(
        &f.clinic_a,
        &vxu(
            "FACA",
            "V1",
            "Sofia",
            "A1",
            "",
            "",
            &[
                ("A-1", "08", "20240305", "LOT-HB1"),
                ("A-2", "20", "20240505", "LOT-DT1"),
            ],
        ),
    )
    .await;
    // Another child in the registry must never appear.
    f.send(
        &f.clinic_b,
        &vxu(
            "FACB",
            "V2",
            "Mateo",
            "B1",
            "",
            "",
            &[("B-1", "03", "20250306", "LOT-MMR")],
        ),
    )
    .await;
    let rsp = f.ask(&f.clinic_a, &z34("FACA", "Q1", "Sofia", "5")).await;
    assert!(rsp.contains("MSH|^~\\&|IISBULK"), "{rsp}");
    assert!(
        rsp.lines().any(|l| l.starts_with("MSH|")
            && l.contains("|RSP^K11^RSP_K11|")
            && l.contains("Z32^CDCPHINVS")),
        "{rsp}"
    );
    assert!(segments(&rsp, "MSA")[0].starts_with("MSA|AA|Q1"), "{rsp}");
    assert!(
        segments(&rsp, "QAK")[0].starts_with("QAK|Q-Q1|OK|"),
        "{rsp}"
    );
    let pid = segments(&rsp, "PID");
    assert_eq!(pid.len(), 1);
    assert!(
        pid[0].contains("A1^^^FACA^MR") && pid[0].contains("Mendoza^Sofia"),
        "{rsp}"
    );
    let rxa = segments(&rsp, "RXA");
    assert_eq!(rxa.len(), 2, "{rsp}");
    assert!(
        rxa[0].starts_with("RXA|0|1|20240305|20240305|08^vaccine^CVX|")
            && rxa[0].contains("|LOT-HB1|")
            && rxa[0].contains("MSD^Merck^MVX"),
        "{rsp}"
    );
    assert!(
        rxa[1].contains("|20^vaccine^CVX|") && rxa[1].contains("|LOT-DT1|"),
        "{rsp}"
    );
    assert!(!rsp.contains("Mateo") && !rsp.contains("LOT-MMR"), "{rsp}");
    assert_eq!(segments(&rsp, "ORC").len(), 2);
    // Funding eligibility and the VIS the sender recorded come back too.
    let obx = segments(&rsp, "OBX");
    assert!(
        obx.iter()
            .any(|o| o.contains("|64994-7^") && o.contains("|V02^VFC eligible Medicaid^HL70064|")),
        "{rsp}"
    );
    assert!(
        obx.iter()
            .any(|o| o.contains("|29768-9^") && o.contains("|20230512|")),
        "{rsp}"
    );
}

#[tokio::test]
async fn an_unknown_child_is_not_found_and_a_query_creates_no_one() {
    let f = fixture().await;
    let rsp = f.ask(&f.clinic_a, &z34("FACA", "Q2", "Nadia", "5")).await;
    assert!(
        rsp.contains("Z33^CDCPHINVS") && segments(&rsp, "MSA")[0].starts_with("MSA|AA|"),
        "{rsp}"
    );
    assert!(segments(&rsp, "QAK")[0].contains("|NF|"), "{rsp}");
    // Asking again still finds nobody: the first query created nothing.
    let again = f.ask(&f.clinic_a, &z34("FACA", "Q3", "Nadia", "5")).await;
    assert!(segments(&again, "QAK")[0].contains("|NF|"), "{again}");
}

#[tokio::test]
async fn twins_answer_one_by_name_and_never_one_history_without_a_first_name() {
    let f = fixture().await;
    f.send(
        &f.clinic_a,
        &vxu(
            "FACA",
            "T1",
            "Ana",
            "T1",
            "1",
            "",
            &[("T-1", "08", "20240305", "L1")],
        ),
    )
    .await;
    f.send(
        &f.clinic_a,
        &vxu(
            "FACA",
            "T2",
            "Eva",
            "T2",
            "2",
            "",
            &[("T-2", "08", "20240305", "L2")],
        ),
    )
    .await;
    // By name: that twin, certainly (the very same first name is what tells
    // one child of a multiple birth from the other), with her history only.
    let by_name = f.ask(&f.clinic_a, &z34("FACA", "Q4", "Ana", "5")).await;
    assert!(by_name.contains("Z32^CDCPHINVS"), "{by_name}");
    assert_eq!(segments(&by_name, "PID").len(), 1, "{by_name}");
    assert!(
        by_name.contains("^Ana^") && !by_name.contains("^Eva^"),
        "{by_name}"
    );
    let rxa = segments(&by_name, "RXA");
    assert_eq!(rxa.len(), 1, "{by_name}");
    assert!(
        rxa[0].contains("|L1|") && !by_name.contains("|L2|"),
        "{by_name}"
    );
    // Without a first name: both as candidates (Z31) or too many; no history.
    let nameless = f.ask(&f.clinic_a, &z34("FACA", "Q5", "", "5")).await;
    assert!(segments(&nameless, "RXA").is_empty(), "{nameless}");
    assert!(
        nameless.contains("Z31^CDCPHINVS") || segments(&nameless, "QAK")[0].contains("|TM|"),
        "{nameless}"
    );
    if nameless.contains("Z31^CDCPHINVS") {
        let pids = segments(&nameless, "PID");
        assert_eq!(pids.len(), 2, "{nameless}");
        assert!(pids[0].starts_with("PID|1|") && pids[1].starts_with("PID|2|"));
    }
    // RCP-2 = 1 with two candidates: too many.
    let one = f.ask(&f.clinic_a, &z34("FACA", "Q6", "", "1")).await;
    assert!(segments(&one, "QAK")[0].contains("|TM|"), "{one}");

    // The clinic's own chart number finds its chart's child, even without
    // her first name (the clinic knows its patient).
    let by_chart = z34("FACA", "Q8", "", "5").replace("|^^^FACA^MR|", "|T2^^^FACA^MR|");
    let rsp = f.ask(&f.clinic_a, &by_chart).await;
    assert!(rsp.contains("Z32^CDCPHINVS"), "{rsp}");
    assert!(rsp.contains("^Eva^") && !rsp.contains("^Ana^"), "{rsp}");
    assert!(rsp.contains("|L2|") && !rsp.contains("|L1|"), "{rsp}");
    // A chart number with demographics that say another child is not
    // trusted: the query is matched by what it says (Ana, by name).
    let mixed = z34("FACA", "Q9", "Ana", "5").replace("|^^^FACA^MR|", "|T2^^^FACA^MR|");
    let rsp = f.ask(&f.clinic_a, &mixed).await;
    assert!(
        rsp.contains("Z32^CDCPHINVS") && rsp.contains("^Ana^"),
        "{rsp}"
    );
    assert!(rsp.contains("|L1|") && !rsp.contains("|L2|"), "{rsp}");
    // Another clinic's query with the same number names none of its charts.
    let other = z34("FACB", "Q10", "", "5").replace("|^^^FACB^MR|", "|T2^^^FACA^MR|");
    let rsp = f.ask(&f.clinic_b, &other).await;
    assert!(!rsp.contains("Z32^CDCPHINVS"), "{rsp}");
}

#[tokio::test]
async fn a_query_without_rcp_is_refused_with_a_clear_error() {
    let f = fixture().await;
    let rsp = f.ask(&f.clinic_a, &z34("FACA", "Q7", "Sofia", "")).await;
    assert!(!segments(&rsp, "MSA")[0].starts_with("MSA|AA"), "{rsp}");
    assert!(
        segments(&rsp, "ERR")
            .iter()
            .any(|e| e.starts_with("ERR||RCP^1|")),
        "{rsp}"
    );
    // RCP present but RCP-2 (the quantity limit) empty: refused naming RCP-2.
    let no_limit = z34("FACA", "Q7B", "Sofia", "5").replace("RCP|I|5^RD&records&HL70126", "RCP|I");
    let rsp = f.ask(&f.clinic_a, &no_limit).await;
    assert!(!segments(&rsp, "MSA")[0].starts_with("MSA|AA"), "{rsp}");
    assert!(
        segments(&rsp, "ERR")
            .iter()
            .any(|e| e.starts_with("ERR||RCP^1^2")),
        "{rsp}"
    );
}

#[tokio::test]
async fn a_do_not_share_patient_is_not_found_except_by_its_reporter() {
    let f = fixture().await;
    f.send(
        &f.clinic_a,
        &vxu(
            "FACA",
            "P1",
            "Sofia",
            "A1",
            "",
            "Y",
            &[("A-1", "08", "20240305", "L1")],
        ),
    )
    .await;
    let other = f.ask(&f.clinic_b, &z34("FACB", "Q8", "Sofia", "5")).await;
    assert!(segments(&other, "QAK")[0].contains("|NF|"), "{other}");
    let reporter = f.ask(&f.clinic_a, &z34("FACA", "Q9", "Sofia", "5")).await;
    assert!(reporter.contains("Z32^CDCPHINVS"), "{reporter}");
}

// ---- Z44: evaluated history and forecast (RSP Z42) ------------------------------

fn z44(fac: &str, ctl: &str, given: &str, limit: &str) -> String {
    z34(fac, ctl, given, limit)
        .replace("|Z34^CDCPHINVS|", "|Z44^CDCPHINVS|")
        .replace(
            "Z34^Request Immunization History^CDCPHINVS",
            "Z44^Request Evaluated History and Forecast^CDCPHINVS",
        )
}

/// The OBX rows that follow segment `at` (up to the next ORC).
fn obx_after<'a>(rsp: &'a str, at: &str) -> Vec<Vec<&'a str>> {
    rsp.lines()
        .skip_while(|l| *l != at)
        .skip(1)
        .take_while(|l| l.starts_with("OBX|"))
        .map(|l| l.split('|').collect())
        .collect()
}

/// OBX-5 of the first row of `rows` whose OBX-3 code is `code`.
fn value_of<'a>(rows: &[Vec<&'a str>], code: &str) -> Option<&'a str> {
    rows.iter()
        .find(|o| o[3].split('^').next() == Some(code))
        .map(|o| o[5])
}

impl Fixture {
    /// Answers a query through the query service directly, for its record.
    async fn record_of(&self, au: &AuthorizedUser, msg: &str) -> registry::queries::QueryRecord {
        let parsed = Message::parse(msg.as_bytes()).unwrap();
        let judged = iz::judge(&parsed, clock());
        let Some(iz::RequestKind::Qbp(profile)) = judged.kind else {
            panic!("not a query: {msg}");
        };
        self.queries
            .answer(
                au,
                &parsed,
                judged.validation.as_ref().unwrap(),
                profile,
                &IisIdentity::default(),
                clock(),
                None,
            )
            .await
            .unwrap()
            .record
    }
}

#[tokio::test]
async fn a_child_with_doses_gets_z42_with_her_evaluated_doses_and_a_forecast() {
    let f = fixture().await;
    f.send(
        &f.clinic_a,
        &vxu(
            "FACA",
            "V1",
            "Sofia",
            "A1",
            "",
            "",
            &[
                ("A-1", "08", "20240305", "LOT-HB1"),
                // Two weeks old: too young for DTaP.
                ("A-2", "20", "20240320", "LOT-DT0"),
                ("A-3", "20", "20240505", "LOT-DT1"),
            ],
        ),
    )
    .await;
    f.send(
        &f.clinic_b,
        &vxu(
            "FACB",
            "V2",
            "Mateo",
            "B1",
            "",
            "",
            &[("B-1", "03", "20250306", "LOT-MMR")],
        ),
    )
    .await;
    let rsp = f.ask(&f.clinic_a, &z44("FACA", "Q1", "Sofia", "5")).await;
    let msh = segments(&rsp, "MSH")[0];
    assert!(
        msh.contains("|RSP^K11^RSP_K11|") && msh.contains("|Z42^CDCPHINVS|"),
        "{rsp}"
    );
    assert!(segments(&rsp, "MSA")[0].starts_with("MSA|AA|Q1"), "{rsp}");
    assert!(
        segments(&rsp, "QAK")[0].starts_with("QAK|Q-Q1|OK|Z44^"),
        "{rsp}"
    );
    let pid = segments(&rsp, "PID");
    assert_eq!(pid.len(), 1, "{rsp}");
    assert!(
        pid[0].contains("A1^^^FACA^MR") && pid[0].contains("Mendoza^Sofia"),
        "{rsp}"
    );
    // Z42 carries no PD1/NK1, and nothing of the other child.
    assert!(segments(&rsp, "PD1").is_empty() && segments(&rsp, "NK1").is_empty());
    assert!(!rsp.contains("Mateo") && !rsp.contains("LOT-MMR"), "{rsp}");

    // Her three doses, each with its evaluation, then the forecast (998).
    let rxa = segments(&rsp, "RXA");
    assert_eq!(rxa.len(), 4, "{rsp}");
    assert!(rxa[0].contains("|08^vaccine^CVX|") && rxa[0].contains("|LOT-HB1|"));
    assert!(rxa[1].contains("|LOT-DT0|") && rxa[2].contains("|LOT-DT1|"));
    assert_eq!(segments(&rsp, "ORC").len(), 4, "{rsp}");
    let hepb = obx_after(&rsp, rxa[0]);
    assert_eq!(value_of(&hepb, "59781-5"), Some("Y"), "{rsp}");
    assert_eq!(value_of(&hepb, "30973-2"), Some("1"), "{rsp}");
    assert!(
        value_of(&hepb, "59779-9").is_some_and(|v| v.starts_with("VXC16^")),
        "{rsp}"
    );
    let too_young = obx_after(&rsp, rxa[1]);
    assert!(
        value_of(&too_young, "30956-7").is_some_and(|v| v.starts_with("107^")),
        "{rsp}"
    );
    assert_eq!(value_of(&too_young, "59781-5"), Some("N"), "{rsp}");
    assert_eq!(value_of(&too_young, "30982-3"), Some("Age: Too Young"));
    // Every evaluation is dated with the query's date (the clock's).
    assert!(
        too_young.iter().chain(&hepb).all(|o| o[14] == "20260921"),
        "{rsp}"
    );

    // The forecast: ORC 9999, RXA 998 not administered, the data version,
    // and per vaccine group its status and dates.
    let forecast = rxa[3];
    assert!(
        forecast.starts_with("RXA|0|1|20260921|20260921|998^no vaccine administered^CVX|999|"),
        "{rsp}"
    );
    assert_eq!(forecast.split('|').nth(20), Some("NA"));
    let orc = segments(&rsp, "ORC");
    assert!(orc[3].starts_with("ORC|RE||9999^"), "{rsp}");
    let rows = obx_after(&rsp, forecast);
    assert_eq!(
        value_of(&rows, "48767-8"),
        Some("Evaluated and forecast by CDC CDSi, supporting data 4.64")
    );
    assert!(value_of(&rows, "59783-1").is_some(), "{rsp}");
    assert!(value_of(&rows, "30980-7").is_some(), "{rsp}");
    assert!(value_of(&rows, "30981-5").is_some(), "{rsp}");
    // The DTaP group: not complete, with its due date.
    let dtap_sub = rows
        .iter()
        .find(|o| o[3].starts_with("30956-7") && o[5].starts_with("107^"))
        .map(|o| o[4])
        .unwrap();
    let dtap: Vec<Vec<&str>> = rows.iter().filter(|o| o[4] == dtap_sub).cloned().collect();
    assert!(
        value_of(&dtap, "59783-1").is_some_and(|v| v.contains("^NC^Not Complete^")),
        "{rsp}"
    );
    assert!(value_of(&dtap, "30980-7").is_some(), "{rsp}");

    // The query is recorded as a Z44 about her.
    let record = f
        .record_of(&f.clinic_a, &z44("FACA", "Q1B", "Sofia", "5"))
        .await;
    assert_eq!(record.profile, "Z44");
    assert_eq!(record.status, "OK");
    assert_eq!(record.persons.len(), 1);
}

#[tokio::test]
async fn twins_of_one_clinic_are_each_forecast_by_chart_number_with_their_own_doses() {
    let f = fixture().await;
    f.send(
        &f.clinic_a,
        &vxu(
            "FACA",
            "T1",
            "Ana",
            "T1",
            "1",
            "",
            &[("T-1", "08", "20240305", "L1")],
        ),
    )
    .await;
    f.send(
        &f.clinic_a,
        &vxu(
            "FACA",
            "T2",
            "Eva",
            "T2",
            "2",
            "",
            &[
                ("T-2", "08", "20240305", "L2"),
                ("T-3", "20", "20240505", "L3"),
            ],
        ),
    )
    .await;
    for (ctl, chart, name, other, lots, not_lots) in [
        (
            "Q21",
            "T1",
            "^Ana^",
            "^Eva^",
            &["L1"][..],
            &["L2", "L3"][..],
        ),
        (
            "Q22",
            "T2",
            "^Eva^",
            "^Ana^",
            &["L2", "L3"][..],
            &["L1"][..],
        ),
    ] {
        let q = z44("FACA", ctl, "", "5").replace("|^^^FACA^MR|", &format!("|{chart}^^^FACA^MR|"));
        let rsp = f.ask(&f.clinic_a, &q).await;
        assert!(rsp.contains("|Z42^CDCPHINVS|"), "{rsp}");
        assert_eq!(segments(&rsp, "PID").len(), 1, "{rsp}");
        assert!(rsp.contains(name) && !rsp.contains(other), "{rsp}");
        // Her doses (and the forecast's 998), nobody else's.
        assert_eq!(segments(&rsp, "RXA").len(), lots.len() + 1, "{rsp}");
        for lot in lots {
            assert!(rsp.contains(&format!("|{lot}|")), "{lot}: {rsp}");
        }
        for lot in not_lots {
            assert!(!rsp.contains(&format!("|{lot}|")), "{lot}: {rsp}");
        }
    }
}

#[tokio::test]
async fn a_child_without_doses_still_gets_a_forecast() {
    let f = fixture().await;
    f.send(&f.clinic_a, &vxu("FACA", "V1", "Sofia", "A1", "", "", &[]))
        .await;
    let rsp = f.ask(&f.clinic_a, &z44("FACA", "Q1", "Sofia", "5")).await;
    assert!(rsp.contains("|Z42^CDCPHINVS|"), "{rsp}");
    assert!(segments(&rsp, "QAK")[0].contains("|OK|"), "{rsp}");
    let orc = segments(&rsp, "ORC");
    let rxa = segments(&rsp, "RXA");
    assert_eq!((orc.len(), rxa.len()), (1, 1), "{rsp}");
    assert!(orc[0].starts_with("ORC|RE||9999^"), "{rsp}");
    assert!(
        rxa[0].contains("|998^no vaccine administered^CVX|"),
        "{rsp}"
    );
    let rows = obx_after(&rsp, rxa[0]);
    // Every routine childhood vaccine group is due: MMR, DTaP, HepB ...
    for cvx in ["03^", "107^", "45^"] {
        assert!(
            rows.iter()
                .any(|o| o[3].starts_with("30956-7") && o[5].starts_with(cvx)),
            "{cvx}: {rsp}"
        );
    }
    assert!(value_of(&rows, "30980-7").is_some(), "{rsp}");
}

#[tokio::test]
async fn z44_follows_the_z34_match_rules_candidates_too_many_and_nobody() {
    let f = fixture().await;
    for (ctl, given, order, filler, lot) in [
        ("T1", "Ana", "1", "T-1", "L1"),
        ("T2", "Eva", "2", "T-2", "L2"),
    ] {
        let msg = vxu(
            "FACA",
            ctl,
            given,
            ctl,
            order,
            "",
            &[(filler, "08", "20240305", lot)],
        );
        f.send(&f.clinic_a, &msg).await;
    }
    // Without a first name the twins are only candidates: Z31, no history,
    // no forecast (or too many for RCP-2, as for Z34).
    let nameless = f.ask(&f.clinic_a, &z44("FACA", "Q31", "", "5")).await;
    let nameless_z34 = f.ask(&f.clinic_a, &z34("FACA", "Q31B", "", "5")).await;
    assert!(segments(&nameless, "RXA").is_empty(), "{nameless}");
    assert!(segments(&nameless, "OBX").is_empty(), "{nameless}");
    if nameless_z34.contains("Z31^CDCPHINVS") {
        assert!(nameless.contains("|Z31^CDCPHINVS|"), "{nameless}");
        let pids = segments(&nameless, "PID");
        assert_eq!(pids.len(), 2, "{nameless}");
        assert!(pids[0].starts_with("PID|1|") && pids[1].starts_with("PID|2|"));
    } else {
        assert!(segments(&nameless, "QAK")[0].contains("|TM|"), "{nameless}");
    }
    let one = f.ask(&f.clinic_a, &z44("FACA", "Q32", "", "1")).await;
    assert!(one.contains("|Z33^CDCPHINVS|"), "{one}");
    assert!(segments(&one, "QAK")[0].contains("|TM|"), "{one}");
    assert!(segments(&one, "MSA")[0].starts_with("MSA|AA|"), "{one}");
    // Nobody: Z33 NF.
    let nobody = f.ask(&f.clinic_a, &z44("FACA", "Q33", "Nadia", "5")).await;
    assert!(nobody.contains("|Z33^CDCPHINVS|"), "{nobody}");
    assert!(segments(&nobody, "QAK")[0].contains("|NF|"), "{nobody}");
    assert!(
        segments(&nobody, "MSA")[0].starts_with("MSA|AA|"),
        "{nobody}"
    );
    let record = f
        .record_of(&f.clinic_a, &z44("FACA", "Q34", "Nadia", "5"))
        .await;
    assert_eq!(
        (record.profile.as_str(), record.status.as_str()),
        ("Z44", "NF")
    );
}

#[tokio::test]
async fn a_person_without_a_birth_date_gets_z33_ae_saying_why() {
    let f = fixture().await;
    let person = f
        .send(
            &f.clinic_a,
            &vxu(
                "FACA",
                "V1",
                "Sofia",
                "A1",
                "",
                "",
                &[("A-1", "08", "20240305", "LOT-HB1")],
            ),
        )
        .await;
    // Intake never lets a patient in without a birth date; a damaged record
    // could still lack one.
    let mut p = f.matching.person(&person).await.unwrap().unwrap();
    p.demographics.birth_date.value = None;
    f.store
        .put(
            store::Item::new(
                registry::keys::person(&person),
                serde_json::to_vec(&p).unwrap(),
            ),
            store::Condition::None,
        )
        .await
        .unwrap();
    let q = z44("FACA", "Q41", "", "5").replace("|^^^FACA^MR|", "|A1^^^FACA^MR|");
    let rsp = f.ask(&f.clinic_a, &q).await;
    assert!(rsp.contains("|Z33^CDCPHINVS|"), "{rsp}");
    assert!(segments(&rsp, "MSA")[0].starts_with("MSA|AE|Q41"), "{rsp}");
    assert!(segments(&rsp, "QAK")[0].contains("|AE|"), "{rsp}");
    let err = segments(&rsp, "ERR");
    assert_eq!(err.len(), 1, "{rsp}");
    assert!(err[0].contains("no birth date"), "{rsp}");
    assert!(segments(&rsp, "RXA").is_empty() && segments(&rsp, "PID").is_empty());
    let d = f
        .intake
        .receive(&f.clinic_a, &Transport::Rest, q.as_bytes(), clock())
        .await
        .unwrap();
    assert_eq!(d.ack_code, iz::AckCode::AE);
    let record = f.record_of(&f.clinic_a, &q).await;
    assert_eq!(
        (record.profile.as_str(), record.status.as_str()),
        ("Z44", "AE")
    );
}

/// Every event `au` made, oldest first.
async fn audited(f: &Fixture, au: &AuthorizedUser) -> Vec<registry::audit::AuditEvent> {
    let mut events = registry::audit::AuditTrail::new(f.store.clone())
        .search(&registry::audit::AuditSearch {
            actor: Some(format!("authorized-user/{}", au.id)),
            from_ms: 0,
            to_ms: i64::MAX / 2,
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    events.reverse();
    events
}

#[tokio::test]
async fn every_answer_and_refusal_is_audited_by_ids_with_its_profile_and_msh10() {
    use registry::audit::Outcome;
    let f = fixture().await;
    let sofia = f
        .send(
            &f.clinic_a,
            &vxu(
                "FACA",
                "V1",
                "Sofia",
                "A1",
                "",
                "",
                &[("A-1", "08", "20240305", "LOT-HB1")],
            ),
        )
        .await;
    // Twins of clinic A: a nameless query finds them as candidates.
    for (ctl, given, order) in [("T1", "Ana", "1"), ("T2", "Eva", "2")] {
        f.send(
            &f.clinic_a,
            &vxu(
                "FACA",
                ctl,
                given,
                ctl,
                order,
                "",
                &[(ctl, "08", "20240305", ctl)],
            ),
        )
        .await;
    }
    let z32 = f.ask(&f.clinic_a, &z34("FACA", "Q1", "Sofia", "5")).await;
    assert!(z32.contains("Z32^CDCPHINVS"), "{z32}");
    // From an address the transport knows.
    let d = f
        .intake
        .receive_from(
            &f.clinic_a,
            &Transport::Rest,
            z44("FACA", "Q2", "Sofia", "5").as_bytes(),
            clock(),
            Some("192.0.2.7"),
        )
        .await
        .unwrap();
    assert!(d.answer.contains("Z42^CDCPHINVS"), "{}", d.answer);
    f.ask(&f.clinic_a, &z34("FACA", "Q3", "Nadia", "5")).await;
    let nameless = f.ask(&f.clinic_a, &z34("FACA", "Q4", "", "5")).await;
    // Refused: no RCP; and a facility not clinic B's.
    f.ask(&f.clinic_a, &z34("FACA", "Q5", "Sofia", "")).await;
    let wrong = f
        .intake
        .receive(
            &f.clinic_b,
            &Transport::Rest,
            z34("FACA", "Q6", "Sofia", "5").as_bytes(),
            clock(),
        )
        .await
        .unwrap();
    assert_eq!(wrong.ack_code, iz::AckCode::AR);

    let events = audited(&f, &f.clinic_a).await;
    let seen: Vec<(&str, Outcome)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.outcome))
        .collect();
    assert_eq!(
        seen,
        [
            ("hl7.query.z34", Outcome::Success),
            ("hl7.query.z44", Outcome::Success),
            ("hl7.query.z34", Outcome::Success),
            ("hl7.query.z34", Outcome::Success),
            ("hl7.query.z34", Outcome::Failure),
        ],
        "{events:#?}"
    );
    let person = format!("Person/{sofia}");
    assert_eq!(events[0].subjects, std::slice::from_ref(&person));
    assert_eq!(events[0].detail, "Z32, doses: 1; MSH-10 Q1");
    assert_eq!(events[0].source, None);
    assert_eq!(events[1].subjects, std::slice::from_ref(&person));
    assert_eq!(events[1].detail, "Z42, doses: 1; MSH-10 Q2");
    assert_eq!(events[1].source.as_deref(), Some("192.0.2.7"));
    assert!(events[2].subjects.is_empty());
    assert_eq!(events[2].detail, "Z33 NF; MSH-10 Q3");
    if nameless.contains("Z31^CDCPHINVS") {
        // Every candidate shown, by id.
        let n = segments(&nameless, "PID").len();
        assert!(n >= 2, "{nameless}");
        assert_eq!(events[3].subjects.len(), n, "{events:#?}");
        assert_eq!(events[3].detail, format!("Z31, candidates: {n}; MSH-10 Q4"));
    } else {
        assert!(events[3].detail.starts_with("Z33 TM"), "{events:#?}");
    }
    assert!(events[4].subjects.is_empty());
    assert!(
        events[4].detail.starts_with("refused, MSA ") && events[4].detail.ends_with("MSH-10 Q5"),
        "{}",
        events[4].detail
    );
    // The refusal of a sender writing as another clinic is clinic B's.
    let b = audited(&f, &f.clinic_b).await;
    assert_eq!(b.len(), 1);
    assert_eq!(
        (b[0].action.as_str(), b[0].outcome),
        ("hl7.query.z34", Outcome::Failure)
    );
    assert_eq!(b[0].detail, "refused, MSA AR (sender); MSH-10 Q6");
    // A person's subject search finds the answers about them.
    let about = registry::audit::AuditTrail::new(f.store.clone())
        .search(&registry::audit::AuditSearch {
            subject: Some(person),
            from_ms: 0,
            to_ms: i64::MAX / 2,
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    for q in ["MSH-10 Q1", "MSH-10 Q2"] {
        assert!(about.iter().any(|e| e.detail.ends_with(q)), "{about:#?}");
    }
    // Ids only: no name, birth date, chart number or lot in the trail.
    let text = serde_json::to_string(&(events, b)).unwrap();
    for phi in [
        "Sofia", "Mendoza", "Ruiz", "20240305", "A1^", "LOT-HB1", "Birch", "5550177",
    ] {
        assert!(!text.contains(phi), "{phi} in {text}");
    }
}

/// V2-dynamic: with the jurisdiction's option on, a Z32 (and a Z42) carries
/// the person's FHIR Patient id as an extra PID-3 identifier of the type and
/// assigning authority it chose; a Z31 candidate list never does.
#[tokio::test]
async fn with_v2_dynamic_on_a_z32_and_a_z42_carry_the_fhir_patient_id() {
    let r = support::two_clinics().await;
    let matching = PatientMatching::new(r.store.clone(), Arc::new(Matcher::default()));
    let policy = registry::membership::JurisdictionPolicy::from_toml(
        &registry::membership::DEFAULT_POLICY
            .replace("patient_identifier = false", "patient_identifier = true")
            .replace(
                "# patient_identifier_type = \"PI\"",
                "patient_identifier_type = \"PI\"",
            )
            .replace(
                "# patient_assigning_authority = \"IISFHIR\"",
                "patient_assigning_authority = \"IISFHIR\"",
            ),
    )
    .unwrap();
    let queries = Queries::new(
        matching.clone(),
        QueryPolicy {
            jurisdiction: Arc::new(policy),
            ..QueryPolicy::default()
        },
    );
    let f = Fixture {
        _dir: r.dir,
        store: r.store.clone(),
        intake: Intake::new(r.store, IisIdentity::default()).with_queries(queries.clone()),
        queries,
        matching,
        clinic_a: r.clinic_a,
        clinic_b: r.clinic_b,
    };
    let person = f
        .send(
            &f.clinic_a,
            &vxu(
                "FACA",
                "V1",
                "Sofia",
                "A1",
                "",
                "",
                &[("A-1", "08", "20240305", "LOT-HB1")],
            ),
        )
        .await;
    let expected = format!("{person}^^^IISFHIR^PI");
    let z32 = f.ask(&f.clinic_a, &z34("FACA", "Q1", "Sofia", "5")).await;
    let pid = segments(&z32, "PID");
    assert!(pid[0].contains(&expected), "{z32}");
    let z44 = z34("FACA", "Q2", "Sofia", "5")
        .replace("Z34^CDCPHINVS", "Z44^CDCPHINVS")
        .replace(
            "Z34^Request Immunization History^CDCPHINVS",
            "Z44^Request Evaluated History and Forecast^CDCPHINVS",
        );
    let z42 = f.ask(&f.clinic_a, &z44).await;
    assert!(z42.contains("Z42^CDCPHINVS"), "{z42}");
    assert!(segments(&z42, "PID")[0].contains(&expected), "{z42}");
    // The off default keeps PID-3 as it was.
    let plain = fixture().await;
    plain
        .send(
            &plain.clinic_a,
            &vxu(
                "FACA",
                "V1",
                "Sofia",
                "A1",
                "",
                "",
                &[("A-1", "08", "20240305", "LOT-HB1")],
            ),
        )
        .await;
    let z32 = plain
        .ask(&plain.clinic_a, &z34("FACA", "Q1", "Sofia", "5"))
        .await;
    assert!(!z32.contains("^IISFHIR^PI"), "{z32}");
}
