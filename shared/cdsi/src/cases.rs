//! Runs CDC test cases (the NDJSON schema of the project's
//! `testcases.ndjson`): parse a line, assess it, print the JSON
//! line, and [`check`] it against the CDC's expected values. The
//! `iisbulk forecast --cases` command is a thin wrapper over this module.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::data::{Gender, SeriesType, SupportingData};
use crate::dates::Date;
use crate::engine::assess;
use crate::model::{
    AdministeredDose, Assessment, AssessmentRequest, EvaluationStatus, Patient, PatientObservation,
    SeriesStatus, VaccineGroupForecast,
};

/// A case line that cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseError {
    /// The case id when it could be read.
    pub id: Option<String>,
    pub message: String,
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "case {id}: {}", self.message),
            None => write!(f, "case line: {}", self.message),
        }
    }
}

impl std::error::Error for CaseError {}

#[derive(Debug, Clone, Deserialize)]
pub struct CaseObservation {
    pub code: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CaseDose {
    pub dose_number: u32,
    pub date: String,
    #[serde(default)]
    pub vaccine_name: Option<String>,
    pub cvx: String,
    #[serde(default)]
    pub mvx: Option<String>,
    #[serde(default)]
    pub expected_evaluation_status: Option<String>,
    #[serde(default)]
    pub expected_reason: Option<String>,
    /// Underlying-conditions cases: which kind of series ("standard" or
    /// "risk") the dose's status is asked of.
    #[serde(default)]
    pub series_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExpectedForecast {
    #[serde(default)]
    pub series_status: Option<String>,
    #[serde(default)]
    pub dose_number: Option<u32>,
    #[serde(default)]
    pub earliest: Option<String>,
    #[serde(default)]
    pub recommended: Option<String>,
    #[serde(default)]
    pub past_due: Option<String>,
    #[serde(default)]
    pub latest: Option<String>,
}

/// One CDC test case (the fields the runner uses).
#[derive(Debug, Clone, Deserialize)]
pub struct TestCase {
    pub id: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub vaccine_group_cdsi: String,
    pub gender: String,
    pub dob: String,
    pub assessment_date: String,
    #[serde(default)]
    pub observations: Vec<CaseObservation>,
    #[serde(default)]
    pub doses: Vec<CaseDose>,
    pub expected_forecast: ExpectedForecast,
}

impl TestCase {
    /// Parses one NDJSON line.
    pub fn parse(line: &str) -> Result<TestCase, CaseError> {
        serde_json::from_str(line).map_err(|e| {
            // Name the case when at least its id is readable.
            let id = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_string));
            CaseError {
                id,
                message: format!("not a test case: {e}"),
            }
        })
    }

    fn err(&self, message: String) -> CaseError {
        CaseError {
            id: Some(self.id.clone()),
            message,
        }
    }

    fn date(&self, field: &str, text: &str) -> Result<Date, CaseError> {
        Date::parse(text).ok_or_else(|| self.err(format!("{field} {text:?} is not a date")))
    }

    /// The engine's input for this case.
    pub fn request(&self) -> Result<AssessmentRequest, CaseError> {
        let gender = match self.gender.trim().to_ascii_uppercase().as_str() {
            "F" | "FEMALE" => Gender::Female,
            "M" | "MALE" => Gender::Male,
            _ => Gender::Unknown,
        };
        let mut observations = Vec::new();
        for o in &self.observations {
            let code =
                o.code.trim().parse().map_err(|_| {
                    self.err(format!("observation code {:?} is not a number", o.code))
                })?;
            let date = match o.date.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(d) => Some(self.date("observation date", d)?),
            };
            observations.push(PatientObservation { code, date });
        }
        let mut doses = Vec::new();
        for d in &self.doses {
            doses.push(AdministeredDose {
                date: self.date("dose date", &d.date)?,
                cvx: d
                    .cvx
                    .trim()
                    .parse()
                    .map_err(|_| self.err(format!("dose CVX {:?} is not a number", d.cvx)))?,
                mvx: d.mvx.clone().filter(|m| !m.trim().is_empty()),
                sub_standard: false,
            });
        }
        Ok(AssessmentRequest {
            patient: Patient {
                date_of_birth: self.date("dob", &self.dob)?,
                gender,
                country_of_birth: None,
                observations,
            },
            assessment_date: self.date("assessment_date", &self.assessment_date)?,
            doses,
        })
    }
}

/// The output line for one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: String,
    pub doses: Vec<CaseDoseResult>,
    pub forecast: CaseForecast,
    pub supporting_data_version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseDoseResult {
    /// The dose's slot in the case (1..).
    pub dose_number: u32,
    /// `None` when no antigen of the case's vaccine group is in the dose.
    pub evaluation_status: Option<String>,
    pub evaluation_reason: Option<String>,
    /// The target dose it was evaluated against in the series used.
    pub dose_number_in_series: Option<u32>,
    pub series: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseForecast {
    pub vaccine_group_cdsi: String,
    pub series_status: Option<String>,
    pub dose_number: Option<u32>,
    pub earliest: Option<Date>,
    pub recommended: Option<Date>,
    pub past_due: Option<Date>,
    pub latest: Option<Date>,
}

/// The vaccine group forecast a single-forecast answer reports when the
/// group has several (one per series type): the risk forecast when the
/// patient has an indication that still applies (the recommendation made
/// for that condition, e.g. "Complete" once the travel dose of HepA is
/// given, even though the routine series is yet to start), unless the risk
/// path is aged out or not recommended; else the standard one.
pub fn primary_forecast<'a>(
    assessment: &'a Assessment,
    vaccine_group: &str,
) -> Option<&'a VaccineGroupForecast> {
    let forecasts: Vec<_> = assessment
        .vaccine_groups
        .iter()
        .filter(|g| g.vaccine_group.eq_ignore_ascii_case(vaccine_group))
        .collect();
    forecasts
        .iter()
        .find(|f| {
            f.series_type == SeriesType::Risk
                && !matches!(
                    f.status,
                    SeriesStatus::AgedOut | SeriesStatus::NotRecommended
                )
        })
        .or_else(|| {
            forecasts
                .iter()
                .find(|f| f.series_type == SeriesType::Standard)
        })
        .or(forecasts.first())
        .copied()
}

/// The dose's evaluation in the group's best series of the type the case
/// asks about (underlying-conditions cases name it per dose).
fn asked_series_evaluation(
    data: &SupportingData,
    assessment: &Assessment,
    case: &TestCase,
    dose_index: usize,
) -> Option<crate::model::GroupDoseEvaluation> {
    let wanted = match case.doses.get(dose_index)?.series_type.as_deref()?.trim() {
        t if t.eq_ignore_ascii_case("risk") => SeriesType::Risk,
        t if t.eq_ignore_ascii_case("standard") => SeriesType::Standard,
        _ => return None,
    };
    let group = data.vaccine_group(&case.vaccine_group_cdsi)?;
    let mut found: Option<crate::model::GroupDoseEvaluation> = None;
    for antigen in assessment
        .antigens
        .iter()
        .filter(|a| group.antigens.contains(&a.antigen))
    {
        // The best series of that type, else the other relevant series of
        // that type that went furthest (most valid doses).
        let mut others: Vec<&crate::model::PatientSeriesResult> = antigen
            .other_series
            .iter()
            .filter(|s| s.series_type == wanted)
            .collect();
        others.sort_by_key(|s| std::cmp::Reverse(s.valid_doses));
        let best: Vec<_> = antigen
            .best_series
            .iter()
            .filter(|s| s.series_type == wanted)
            .collect();
        let pool = if best
            .iter()
            .any(|s| s.evaluations.iter().any(|e| e.dose_index == dose_index))
        {
            best
        } else {
            others.into_iter().take(1).collect()
        };
        for series in pool {
            if let Some(e) = series
                .evaluations
                .iter()
                .find(|e| e.dose_index == dose_index)
            {
                let worse = found.as_ref().is_none_or(|f| {
                    f.status != crate::model::EvaluationStatus::NotValid
                        && e.status == crate::model::EvaluationStatus::NotValid
                });
                if worse {
                    found = Some(crate::model::GroupDoseEvaluation {
                        dose_index,
                        date: e.date,
                        cvx: e.cvx,
                        status: e.status,
                        reason: e.reason,
                        dose_number: e.dose_number,
                        series_name: series.series_name.clone(),
                    });
                }
            }
        }
    }
    found
}

/// Runs one case.
pub fn run(data: &SupportingData, case: &TestCase) -> Result<CaseResult, CaseError> {
    let request = case.request()?;
    if data.vaccine_group(&case.vaccine_group_cdsi).is_none() {
        return Err(case.err(format!(
            "vaccine group {:?} is not in supporting data {}",
            case.vaccine_group_cdsi, data.version
        )));
    }
    let assessment = assess(data, &request);
    let forecast = primary_forecast(&assessment, &case.vaccine_group_cdsi);
    let evaluations = forecast
        .map(|f| assessment.group_dose_evaluations(f))
        .unwrap_or_default();
    let doses = case
        .doses
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let reported = evaluations.iter().find(|e| e.dose_index == i);
            let asked = asked_series_evaluation(data, &assessment, case, i);
            // A dose the asked series finds extraneous (that series was
            // already complete) but the reported forecast's series counts
            // as valid is valid for the patient.
            let asked = match (asked, reported) {
                (Some(a), Some(r))
                    if a.status == EvaluationStatus::Extraneous
                        && r.status == EvaluationStatus::Valid =>
                {
                    Some(r.clone())
                }
                (a, _) => a,
            };
            match asked.or_else(|| reported.cloned()) {
                Some(e) => CaseDoseResult {
                    dose_number: d.dose_number,
                    evaluation_status: Some(e.status.as_str().to_string()),
                    evaluation_reason: e.reason.map(|r| r.as_str().to_string()),
                    dose_number_in_series: e.dose_number,
                    series: Some(e.series_name.clone()),
                },
                // A dose of another vaccine group (e.g. varicella in an MMR
                // case, there for its live virus conflict): its own evaluation.
                None => {
                    let e = assessment.any_dose_evaluation(i);
                    CaseDoseResult {
                        dose_number: d.dose_number,
                        evaluation_status: e.map(|(_, e)| e.status.as_str().to_string()),
                        evaluation_reason: e
                            .and_then(|(_, e)| e.reason)
                            .map(|r| r.as_str().to_string()),
                        dose_number_in_series: e.and_then(|(_, e)| e.dose_number),
                        series: e.map(|(s, _)| s.series_name.clone()),
                    }
                }
            }
        })
        .collect();
    Ok(CaseResult {
        id: case.id.clone(),
        doses,
        forecast: CaseForecast {
            vaccine_group_cdsi: case.vaccine_group_cdsi.clone(),
            series_status: forecast.map(|f| f.status.as_str().to_string()),
            dose_number: forecast.and_then(|f| f.dose_number),
            earliest: forecast.and_then(|f| f.earliest),
            recommended: forecast.and_then(|f| f.recommended),
            past_due: forecast.and_then(|f| f.past_due),
            latest: forecast.and_then(|f| f.latest),
        },
        supporting_data_version: assessment.supporting_data_version,
    })
}

/// The outcome of comparing a result with the case's expectations.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub id: String,
    /// Every dose's evaluation status matches.
    pub evaluation_pass: bool,
    /// Series status, dose number, earliest, recommended and past-due dates
    /// match.
    pub forecast_pass: bool,
    /// The first difference, e.g. "dose 2 status: expected Valid, got Not Valid".
    pub first_difference: Option<String>,
}

impl CheckOutcome {
    pub fn pass(&self) -> bool {
        self.evaluation_pass && self.forecast_pass
    }
}

fn show<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "none".to_string(), |v| v.to_string())
}

/// Compares a result with the case: the status of every dose, the series
/// status (case-insensitively), the forecast dose number and the earliest,
/// recommended and past-due dates.
pub fn check(case: &TestCase, result: &CaseResult) -> CheckOutcome {
    let mut eval_diff = None;
    for (d, r) in case.doses.iter().zip(&result.doses) {
        let expected = d.expected_evaluation_status.as_deref().map(str::trim);
        let got = r.evaluation_status.as_deref();
        let same = match (expected, got) {
            (Some(e), Some(g)) => e.eq_ignore_ascii_case(g),
            (None, _) => true,
            (Some(_), None) => false,
        };
        if !same && eval_diff.is_none() {
            eval_diff = Some(format!(
                "dose {} ({}, cvx {}) status: expected {}, got {}{}",
                d.dose_number,
                d.date,
                d.cvx,
                show(&expected),
                show(&got),
                r.evaluation_reason
                    .as_ref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default()
            ));
        }
    }
    let f = &result.forecast;
    let e = &case.expected_forecast;
    let mut forecast_diff = None;
    let status_same = match (&e.series_status, &f.series_status) {
        (Some(a), Some(b)) => a.trim().eq_ignore_ascii_case(b),
        (None, _) => true,
        (Some(_), None) => false,
    };
    if !status_same {
        forecast_diff = Some(format!(
            "series status: expected {}, got {}",
            show(&e.series_status),
            show(&f.series_status)
        ));
    }
    let dates = [
        ("earliest", &e.earliest, f.earliest),
        ("recommended", &e.recommended, f.recommended),
        ("past due", &e.past_due, f.past_due),
    ];
    for (name, expected, got) in dates {
        let expected_date = expected.as_deref().and_then(Date::parse);
        if forecast_diff.is_none() && expected_date != got {
            forecast_diff = Some(format!(
                "{name}: expected {}, got {}",
                show(expected),
                show(&got)
            ));
        }
    }
    if forecast_diff.is_none() && e.dose_number != f.dose_number {
        forecast_diff = Some(format!(
            "dose number: expected {}, got {}",
            show(&e.dose_number),
            show(&f.dose_number)
        ));
    }
    CheckOutcome {
        id: case.id.clone(),
        evaluation_pass: eval_diff.is_none(),
        forecast_pass: forecast_diff.is_none(),
        first_difference: eval_diff.or(forecast_diff),
    }
}

/// Parses, runs and checks one NDJSON line.
pub fn run_line(
    data: &SupportingData,
    line: &str,
) -> Result<(TestCase, CaseResult, CheckOutcome), CaseError> {
    let case = TestCase::parse(line)?;
    let result = run(data, &case)?;
    let outcome = check(&case, &result);
    Ok((case, result, outcome))
}
