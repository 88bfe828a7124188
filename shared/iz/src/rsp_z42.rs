//! RSP^K11 Z42: the evaluated history and forecast of the one patient a QBP
//! Z44 identified (CDC IG R1.5, NIST profile RSP-Z42).
//!
//! The structure the profile allows is MSH, MSA, QAK, QPD, PID, then one or
//! more groups of ORC, RXA, [RXR] and at least one OBX. The patient's PD1
//! and NK1, which Z32 carries, are not part of it and are left out.
//!
//! * Evaluated history: per administered dose its ORC/RXA/RXR as in Z32,
//!   then per vaccine group the dose counts for, an OBX group sharing one
//!   OBX-4 sub-ID: vaccine type (30956-7), schedule used (59779-9), dose
//!   number in series (30973-2), dose validity (59781-5, Y/N) and, when not
//!   valid, the CDSi reason (30982-3, as text, like the NIST example).
//! * Forecast: an ORC with filler 9999 and an RXA for CVX 998 "no vaccine
//!   administered", amount 999, completion NA (IZ-45, IZ-47, IZ-49); its
//!   first OBX names the CDSi supporting data used (48767-8), then per
//!   vaccine group: vaccine type, schedule used, status in series
//!   (59783-1), the next dose number, earliest (30981-5), recommended
//!   (30980-7), past due (59778-1) and latest (59777-3) dates, and the
//!   forecast reason when no dose is due (30982-3).
//!
//! Every OBX is dated (OBX-14) with the assessment date. The doses and the
//! assessment must come from [`assessment_request`] over the same doses, so
//! that an evaluation's dose index finds its dose.

use cdsi::model::{
    AdministeredDose, Assessment, AssessmentRequest, EvaluationStatus, GroupDoseEvaluation,
    Patient as CdsiPatient, PatientObservation, SeriesStatus, VaccineGroupForecast,
};
use hl7::{Message, MessageWriter};

use crate::ack::{write_msa, write_msh, write_qak_qpd, IisIdentity, QueryStatus, Received};
use crate::datetime::{Clock, Date};
use crate::intake::AckCode;
use crate::rsp::{comps, write_dose, write_pid, RspDose, RspPatient};
use crate::view::{CompletionStatus, Order, Patient, Value};

/// OBX-5 of 59779-9: the schedule CDSi implements (PHVS_ImmunizationScheduleIdentifier_IIS).
const ACIP_SCHEDULE: [&str; 3] = [
    "VXC16",
    "Advisory Committee on Immunization Practices (ACIP) Schedule",
    "CDCPHINVS",
];
/// Local code system of the CDSi series statuses LOINC has no answer for.
const CDSI_CODES: &str = "99CDS";

/// ORC-3 of the forecast group (IZ-45: RXA-20 is NA).
const NO_DOSE_FILLER: &str = "9999";

/// The engine's view of a dose: given (complete or partial) on a date, with
/// a CVX code. Refusals, doses not given and doses with no CVX are not part
/// of the evaluated history. Z42 and the FHIR forecast both take a
/// consolidated dose into the assessment through this one rule.
pub fn evaluable(order: &Order) -> Option<AdministeredDose> {
    let given = matches!(
        order.completion,
        CompletionStatus::Complete | CompletionStatus::PartiallyAdministered
    );
    if !given {
        return None;
    }
    let cvx = order
        .vaccine
        .iter()
        .find(|c| {
            c.system
                .as_deref()
                .is_some_and(|s| s.trim().eq_ignore_ascii_case("CVX"))
        })
        .and_then(|c| c.code.trim().parse().ok())?;
    Some(AdministeredDose {
        date: cdsi_date(order.administered?)?,
        cvx,
        mvx: order.manufacturer.as_ref().map(|m| m.code.clone()),
        // A partial dose cannot count (CDSi "sub-standard").
        sub_standard: order.completion == CompletionStatus::PartiallyAdministered,
    })
}

fn cdsi_date(d: Date) -> Option<cdsi::Date> {
    cdsi::Date::new(i32::from(d.year), d.month, d.day)
}

fn hl7_date(d: cdsi::Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

/// The CDSi request for a patient and the doses a Z42 will list, in the
/// same order: the request's dose `i` is the `i`-th evaluable dose.
/// `None` when the patient has no birth date (PID-7), without which nothing
/// can be evaluated.
pub fn assessment_request(
    patient: &Patient,
    doses: &[RspDose<'_>],
    assessment_date: cdsi::Date,
    observations: Vec<PatientObservation>,
) -> Option<AssessmentRequest> {
    let Value::Present(birth) = patient.birth_date else {
        return None;
    };
    let gender = match &patient.sex {
        Value::Present(s) if s.trim().eq_ignore_ascii_case("F") => cdsi::data::Gender::Female,
        Value::Present(s) if s.trim().eq_ignore_ascii_case("M") => cdsi::data::Gender::Male,
        _ => cdsi::data::Gender::Unknown,
    };
    Some(AssessmentRequest {
        patient: CdsiPatient {
            date_of_birth: cdsi_date(birth)?,
            gender,
            country_of_birth: None,
            observations,
        },
        assessment_date,
        doses: doses.iter().filter_map(|d| evaluable(d.order)).collect(),
    })
}

/// One vaccine group's forecast per group, in the supporting data's order.
fn forecasts(assessment: &Assessment) -> Vec<&VaccineGroupForecast> {
    let mut out: Vec<&VaccineGroupForecast> = Vec::new();
    for g in &assessment.vaccine_groups {
        if out.iter().any(|f| f.vaccine_group == g.vaccine_group) {
            continue;
        }
        if let Some(f) = cdsi::cases::primary_forecast(assessment, &g.vaccine_group) {
            out.push(f);
        }
    }
    out
}

/// The OBX rows of one ORDER group, numbered from 1 (NIST-01) and dated.
struct Observations<'w> {
    w: &'w mut MessageWriter,
    set_id: usize,
    date: String,
}

impl Observations<'_> {
    fn row(&mut self, value_type: &str, code: [&str; 2], sub_id: usize, value: &str) {
        self.set_id += 1;
        let id = comps(self.w, &[code[0], code[1], "LN"]);
        // OBX-6 is required for a number; a count has no unit (HL7 0353 "NA").
        let units = if value_type == "NM" {
            comps(self.w, &["NA", "NA", "HL70353"])
        } else {
            String::new()
        };
        self.w
            .segment("OBX")
            .text(1, &self.set_id.to_string())
            .text(2, value_type)
            .raw(3, &id)
            .text(4, &sub_id.to_string())
            .raw(5, value)
            .raw(6, &units)
            .text(11, "F")
            .text(14, &self.date);
    }

    fn coded(&mut self, code: [&str; 2], sub_id: usize, value: &[&str]) {
        let value = comps(self.w, value);
        self.row("CE", code, sub_id, &value);
    }

    fn text(&mut self, code: [&str; 2], sub_id: usize, text: &str) {
        let value = self.w.escape(text);
        self.row("ST", code, sub_id, &value);
    }

    fn date(&mut self, code: [&str; 2], sub_id: usize, date: Option<cdsi::Date>) {
        if let Some(d) = date {
            self.row("DT", code, sub_id, &hl7_date(d));
        }
    }

    fn number(&mut self, code: [&str; 2], sub_id: usize, n: Option<u32>) {
        if let Some(n) = n {
            self.row("NM", code, sub_id, &n.to_string());
        }
    }

    /// 30956-7 and 59779-9, which open every group.
    fn vaccine_type(&mut self, forecast: &VaccineGroupForecast, sub_id: usize) {
        let (cvx, text) = match &forecast.vaccine_type {
            Some(t) => (format!("{:02}", t.cvx), t.description.as_str()),
            None => (String::new(), forecast.vaccine_group.as_str()),
        };
        self.coded(VACCINE_TYPE, sub_id, &[&cvx, text, "CVX"]);
        self.coded(SCHEDULE_USED, sub_id, &ACIP_SCHEDULE);
    }
}

const VACCINE_TYPE: [&str; 2] = ["30956-7", "Vaccine type"];
const SCHEDULE_USED: [&str; 2] = ["59779-9", "Immunization schedule used"];
const DOSE_NUMBER: [&str; 2] = ["30973-2", "Dose number in series"];
const DOSE_VALIDITY: [&str; 2] = ["59781-5", "Dose validity"];
const REASON: [&str; 2] = [
    "30982-3",
    "Reason applied by forecast logic to project this vaccine",
];
const SERIES_STATUS: [&str; 2] = ["59783-1", "Status in immunization series"];
const EARLIEST: [&str; 2] = ["30981-5", "Earliest date to give"];
const RECOMMENDED: [&str; 2] = ["30980-7", "Date vaccine due"];
const PAST_DUE: [&str; 2] = ["59778-1", "Date dose is overdue"];
const LATEST: [&str; 2] = ["59777-3", "Latest date next dose may be given"];
const ANNOTATION: [&str; 2] = ["48767-8", "Annotation comment"];

/// OBX-5 of 59783-1: LOINC's answer (list LL940-8) where it has one, with
/// the CDSi status as the alternate identifier; the CDSi status alone
/// otherwise.
fn series_status(f: &VaccineGroupForecast, today: cdsi::Date) -> [&'static str; 6] {
    let cdsi = |code, text| [code, text, CDSI_CODES, "", "", ""];
    let with_loinc = |la, la_text, code, text| [la, la_text, "LN", code, text, CDSI_CODES];
    match f.status {
        SeriesStatus::NotComplete if f.past_due.is_some_and(|d| today >= d) => {
            with_loinc("LA13423-1", "Overdue", "NC", "Not Complete")
        }
        SeriesStatus::NotComplete => with_loinc("LA13422-3", "On schedule", "NC", "Not Complete"),
        SeriesStatus::Complete => with_loinc("LA13421-5", "Complete", "C", "Complete"),
        SeriesStatus::AgedOut => with_loinc("LA13424-9", "Too old", "AO", "Aged Out"),
        SeriesStatus::Immune => cdsi("I", "Immune"),
        SeriesStatus::Contraindicated => cdsi("CI", "Contraindicated"),
        SeriesStatus::NotRecommended => cdsi("NR", "Not Recommended"),
    }
}

/// The evaluation OBX groups of one dose: one sub-ID per vaccine group.
fn write_evaluations(
    obx: &mut Observations<'_>,
    evaluations: &[(&VaccineGroupForecast, GroupDoseEvaluation)],
) {
    for (n, (forecast, e)) in evaluations.iter().enumerate() {
        let sub = n + 1;
        obx.vaccine_type(forecast, sub);
        obx.number(DOSE_NUMBER, sub, e.dose_number);
        let valid = e.status == EvaluationStatus::Valid;
        obx.row("ID", DOSE_VALIDITY, sub, if valid { "Y" } else { "N" });
        if !valid {
            let reason = e.reason.map_or(e.status.as_str(), |r| r.as_str());
            obx.text(REASON, sub, reason);
        }
    }
}

/// RSP^K11 Z42: MSA AA, QAK OK, the query's QPD, PID, the evaluated doses
/// and the forecast. `doses` are the patient's consolidated doses in the
/// order [`assessment_request`] was given them.
#[allow(clippy::too_many_arguments)] // each is one part of the answer, as for Z32
pub fn build_rsp_z42(
    query: &Message<'_>,
    to: &Received,
    me: &IisIdentity,
    clock: Clock,
    control_id: &str,
    patient: RspPatient<'_>,
    doses: &[RspDose<'_>],
    assessment: &Assessment,
) -> String {
    let mut w = MessageWriter::new();
    write_msh(
        &mut w,
        me,
        to,
        clock,
        control_id,
        ["RSP", "K11", "RSP_K11"],
        "Z42",
    );
    write_msa(&mut w, AckCode::AA, to);
    write_qak_qpd(&mut w, query, QueryStatus::Ok);
    write_pid(&mut w, me, 1, patient);

    let today = assessment.assessment_date;
    let dated = hl7_date(today);
    let groups = forecasts(assessment);
    let per_group: Vec<(&VaccineGroupForecast, Vec<GroupDoseEvaluation>)> = groups
        .iter()
        .map(|f| (*f, assessment.group_dose_evaluations(f)))
        .collect();

    // Evaluated history.
    let mut index = 0;
    for dose in doses {
        if evaluable(dose.order).is_none() {
            continue;
        }
        let evaluations: Vec<(&VaccineGroupForecast, GroupDoseEvaluation)> = per_group
            .iter()
            .filter_map(|(f, evals)| {
                let e = evals.iter().find(|e| e.dose_index == index)?;
                Some((*f, e.clone()))
            })
            .collect();
        index += 1;
        // A vaccine outside every vaccine group (no CDSi antigen) has
        // nothing to report, and an ORDER group needs an OBX.
        if evaluations.is_empty() {
            continue;
        }
        write_dose(&mut w, me, dose);
        let mut obx = Observations {
            w: &mut w,
            set_id: 0,
            date: dated.clone(),
        };
        write_evaluations(&mut obx, &evaluations);
    }

    // Forecast.
    let filler = comps(&w, &[NO_DOSE_FILLER, &me.facility]);
    w.segment("ORC").text(1, "RE").raw(3, &filler);
    let no_vaccine = comps(&w, &["998", "no vaccine administered", "CVX"]);
    w.segment("RXA")
        .text(1, "0")
        .text(2, "1")
        .text(3, &dated)
        .text(4, &dated)
        .raw(5, &no_vaccine)
        .text(6, "999")
        .text(20, "NA");
    let mut obx = Observations {
        w: &mut w,
        set_id: 0,
        date: dated.clone(),
    };
    let note = format!(
        "Evaluated and forecast by CDC CDSi, supporting data {}",
        assessment.supporting_data_version
    );
    obx.text(ANNOTATION, 1, &note);
    for (n, f) in groups.iter().enumerate() {
        let sub = n + 2;
        obx.vaccine_type(f, sub);
        obx.coded(SERIES_STATUS, sub, &series_status(f, today));
        if f.status == SeriesStatus::NotComplete {
            obx.number(DOSE_NUMBER, sub, f.dose_number);
            obx.date(EARLIEST, sub, f.earliest);
            obx.date(RECOMMENDED, sub, f.recommended);
            obx.date(PAST_DUE, sub, f.past_due);
            obx.date(LATEST, sub, f.latest);
        } else if let Some(reason) = f.reasons.first() {
            obx.text(REASON, sub, reason.as_str());
        }
    }
    w.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::finding::Severity;
    use crate::profile::{profile, ProfileId};
    use crate::{judge, validate, view::vxu};

    /// 2024-08-01 12:00 UTC, the assessment date of the sample child.
    fn clock() -> Clock {
        Clock::at(1_722_513_600)
    }

    fn today() -> cdsi::Date {
        cdsi::Date::new(2024, 8, 1).unwrap()
    }

    /// A child born 2024-01-15: hepatitis B at birth, a DTaP given at three
    /// weeks (too young), the 2- and 4-month doses, and a refused MMR.
    const VXU: &str = "MSH|^~\\&|MYEHR|DCS|IIS|IIS|20240801120000-0500||VXU^V04^VXU_V04|CHILD-1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|DCS\r\
PID|1||123456^^^MYEHR^MR||Child^Robin^Q^^^^L|Que^Suzy^^^^^M|20240115|F|||10 East Main St^^Myfaircity^GA^30301^USA^L\r\
PD1|||||||||||02^Reminder/recall - any method^HL70215|N|20240801|||A|20240115|20240801\r\
NK1|1|Child^Suzy^^^^^L|MTH^Mother^HL70063\r\
ORC|RE||1001^DCS\r\
RXA|0|1|20240115||08^Hep B, adolescent or pediatric^CVX|999|||01^Historical Administration^NIP001|||||||||||CP|A\r\
ORC|RE||1002^DCS\r\
RXA|0|1|20240205||20^DTaP^CVX|999|||01^Historical Administration^NIP001|||||||||||CP|A\r\
ORC|RE||1003^DCS\r\
RXA|0|1|20240315||110^DTaP-Hep B-IPV^CVX|999|||01^Historical Administration^NIP001|||||||||||CP|A\r\
ORC|RE||1004^DCS\r\
RXA|0|1|20240315||49^Hib (PRP-OMP)^CVX|999|||01^Historical Administration^NIP001|||||||||||CP|A\r\
ORC|RE||1005^DCS\r\
RXA|0|1|20240515||110^DTaP-Hep B-IPV^CVX|999|||01^Historical Administration^NIP001|||||||||||CP|A\r\
ORC|RE||1006^DCS\r\
RXA|0|1|20240515||133^Pneumococcal conjugate PCV 13^CVX|999|||01^Historical Administration^NIP001|||||||||||CP|A\r\
ORC|RE||9999^DCS\r\
RXA|0|1|20240701||03^MMR^CVX|999||||||||||||00^Parental decision^NIP002||RE\r";

    const QBP: &str = "MSH|^~\\&|MYEHR|DCS|IIS|IIS|20240801120000-0500||QBP^Q11^QBP_Q11|Q-1|P|2.5.1|||ER|AL|||||Z44^CDCPHINVS|DCS\r\
QPD|Z44^Request Evaluated History and Forecast^CDCPHINVS|Q-1-TAG|123456^^^MYEHR^MR|Child^Robin^Q^^^^L|Que^Suzy^^^^^M|20240115|F\r\
RCP|I|1^RD&Records&HL70126\r";

    /// Builds the sample child's Z42 (or, with `no_doses`, the same child's
    /// with no history) and returns it.
    fn z42(no_doses: bool) -> String {
        let msg = Message::parse(VXU.as_bytes()).unwrap();
        let intake = judge(&msg, clock());
        assert!(intake.accepted, "{:?}", intake.findings);
        let v = vxu(&msg, intake.validation.as_ref().unwrap());
        let ids: Vec<String> = (0..v.orders.len()).map(|i| format!("D{i}")).collect();
        let doses: Vec<RspDose> = if no_doses {
            Vec::new()
        } else {
            v.orders
                .iter()
                .zip(&ids)
                .map(|(order, id)| RspDose { iis_id: id, order })
                .collect()
        };
        let request = assessment_request(&v.patient, &doses, today(), Vec::new()).unwrap();
        let assessment = cdsi::assess(cdsi::builtin().unwrap(), &request);
        let query = Message::parse(QBP.as_bytes()).unwrap();
        build_rsp_z42(
            &query,
            &Received::from_message(&query),
            &IisIdentity::default(),
            clock(),
            "Z42-1",
            RspPatient {
                iis_id: "P1",
                patient: &v.patient,
            },
            &doses,
            &assessment,
        )
    }

    fn conforms(answer: &str) {
        let msg = Message::parse(answer.as_bytes()).unwrap();
        let v = validate(&msg, profile(ProfileId::Z42), clock());
        let problems: Vec<String> = v
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning)
            .map(|f| format!("{} {}", f.location.to_erl(), f.message))
            .collect();
        assert!(
            problems.is_empty(),
            "{problems:#?}\n{}",
            answer.replace('\r', "\n")
        );
        assert!(!v.rejected);
    }

    fn segments(answer: &str) -> Vec<Vec<String>> {
        answer
            .split('\r')
            .filter(|s| !s.is_empty())
            .map(|s| s.split('|').map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn a_child_with_doses_gets_an_evaluated_history_and_forecast_that_conforms() {
        let answer = z42(false);
        if std::env::var_os("IZ_PRINT_Z42").is_some() {
            println!("{}", answer.replace('\r', "\n"));
        }
        conforms(&answer);
        let segs = segments(&answer);
        let ids: Vec<&str> = segs.iter().map(|s| s[0].as_str()).collect();
        assert_eq!(&ids[..5], ["MSH", "MSA", "QAK", "QPD", "PID"]);
        assert_eq!(segs[0][20], "Z42^CDCPHINVS");
        assert_eq!(segs[2][2], "OK");
        // PD1 and NK1 are not part of Z42; the refused MMR is no dose.
        assert!(!ids.contains(&"PD1") && !ids.contains(&"NK1"));
        assert_eq!(ids.iter().filter(|s| **s == "ORC").count(), 6 + 1);
        assert!(!answer.contains("03^MMR^CVX|999||||||||||||00"));

        // The DTaP at three weeks: not valid, too young, for DTaP only.
        let dtap = segs
            .iter()
            .position(|s| s[0] == "RXA" && s[5].starts_with("20^"))
            .unwrap();
        let obx: Vec<&Vec<String>> = segs[dtap + 1..]
            .iter()
            .take_while(|s| s[0] == "OBX")
            .collect();
        assert_eq!(obx[0][3], "30956-7^Vaccine type^LN");
        assert_eq!(obx[0][5], "107^DTaP, unspecified formulation^CVX");
        assert_eq!(obx[1][5], ACIP_SCHEDULE.join("^"));
        let validity = obx.iter().find(|o| o[3].starts_with("59781-5")).unwrap();
        assert_eq!((validity[2].as_str(), validity[5].as_str()), ("ID", "N"));
        let reason = obx.iter().find(|o| o[3].starts_with("30982-3")).unwrap();
        assert_eq!(reason[5], "Age: Too Young");
        assert!(obx.iter().all(|o| o[4] == "1" && o[14] == "20240801"));

        // Pediarix counts for three vaccine groups: one sub-ID each, and
        // OBX-1 starts again at 1 in each ORDER group.
        let pediarix = segs
            .iter()
            .position(|s| s[0] == "RXA" && s[5].starts_with("110^"))
            .unwrap();
        let obx: Vec<&Vec<String>> = segs[pediarix + 1..]
            .iter()
            .take_while(|s| s[0] == "OBX")
            .collect();
        let types: Vec<&str> = obx
            .iter()
            .filter(|o| o[3].starts_with("30956-7"))
            .map(|o| o[5].split('^').next().unwrap())
            .collect();
        assert_eq!(types, ["107", "45", "89"]);
        for (n, o) in obx.iter().enumerate() {
            assert_eq!(o[1], (n + 1).to_string());
        }
        let dose_numbers: Vec<&str> = obx
            .iter()
            .filter(|o| o[3].starts_with("30973-2"))
            .map(|o| o[5].as_str())
            .collect();
        assert_eq!(dose_numbers, ["1", "2", "1"]);

        // The forecast: ORC 9999, RXA 998 / 999 / NA, the data version, and
        // the DTaP group due for dose 2 from the 10-week minimum.
        let rxa = segs
            .iter()
            .position(|s| s[0] == "RXA" && s[5].starts_with("998^"))
            .unwrap();
        assert!(segs[rxa - 1][3].starts_with("9999^"));
        assert_eq!(segs[rxa][6], "999");
        assert_eq!(segs[rxa][20], "NA");
        assert_eq!(segs[rxa][3], "20240801");
        let obx: Vec<&Vec<String>> = segs[rxa + 1..].iter().collect();
        assert!(obx.iter().all(|o| o[0] == "OBX"));
        assert_eq!(
            obx[0][5],
            "Evaluated and forecast by CDC CDSi, supporting data 4.64"
        );
        let dtap_sub = &obx
            .iter()
            .find(|o| o[3].starts_with("30956-7") && o[5].starts_with("107^"))
            .unwrap()[4];
        let group: Vec<(&str, &str)> = obx
            .iter()
            .filter(|o| &o[4] == dtap_sub)
            .map(|o| (o[3].split('^').next().unwrap(), o[5].as_str()))
            .collect();
        let value = |code: &str| group.iter().find(|(c, _)| *c == code).map(|(_, v)| *v);
        assert_eq!(
            value("59783-1"),
            Some("LA13422-3^On schedule^LN^NC^Not Complete^99CDS")
        );
        assert_eq!(value("30973-2"), Some("3"));
        assert!(value("30981-5").is_some() && value("30980-7").is_some());
    }

    #[test]
    fn a_patient_with_no_doses_still_gets_a_forecast() {
        let answer = z42(true);
        conforms(&answer);
        let segs = segments(&answer);
        let orc: Vec<&Vec<String>> = segs.iter().filter(|s| s[0] == "ORC").collect();
        assert_eq!(orc.len(), 1);
        assert!(orc[0][3].starts_with("9999^"));
        assert!(answer.contains("|30956-7^Vaccine type^LN|"));
        assert!(answer.contains("|03^MMR^CVX|"));
    }

    #[test]
    fn z42_parses_back_with_the_query_echoed() {
        let answer = z42(false);
        let msg = Message::parse(answer.as_bytes()).unwrap();
        assert_eq!(msg.msh().value(9), "RSP");
        let qpd = msg.first("QPD").unwrap();
        assert_eq!(qpd.field(2).first_leaf().text(), "Q-1-TAG");
        let msa = msg.first("MSA").unwrap();
        assert_eq!(msa.field(2).first_leaf().text(), "Q-1");
    }
}
