//! What the engine reads (a patient, the assessment date, the consolidated
//! one-event-per-dose history) and what it answers: per antigen the dose
//! evaluations and forecast of its best patient series, and per vaccine
//! group a forecast. Everything serialises so that callers can print JSON.

use serde::{Deserialize, Deserializer, Serialize};

use crate::data::{Cvx, Gender, ObservationCode, SeriesType};
use crate::dates::Date;

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let s = String::deserialize(d)?;
        Date::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a date")))
    }
}

/// The patient facts the logic needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Patient {
    pub date_of_birth: Date,
    pub gender: Gender,
    /// Used only by birth-date immunity rules (e.g. measles before 1957 in
    /// the U.S.); when unknown the patient is taken to be born in the
    /// country the rule names.
    #[serde(default)]
    pub country_of_birth: Option<String>,
    /// Active CDSi coded observations (indications, contraindications,
    /// evidence of immunity) with their dates where known.
    #[serde(default)]
    pub observations: Vec<PatientObservation>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PatientObservation {
    pub code: ObservationCode,
    #[serde(default)]
    pub date: Option<Date>,
}

/// One vaccine dose administered (the registry's consolidated event).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdministeredDose {
    pub date: Date,
    pub cvx: Cvx,
    #[serde(default)]
    pub mvx: Option<String>,
    /// Expired, recalled, sub-potent…: the dose cannot be evaluated
    /// (evaluation status "Sub-standard").
    #[serde(default)]
    pub sub_standard: bool,
}

/// Everything one assessment needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssessmentRequest {
    pub patient: Patient,
    pub assessment_date: Date,
    pub doses: Vec<AdministeredDose>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EvaluationStatus {
    Valid,
    #[serde(rename = "Not Valid")]
    NotValid,
    Extraneous,
    #[serde(rename = "Sub-standard")]
    SubStandard,
}

impl EvaluationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EvaluationStatus::Valid => "Valid",
            EvaluationStatus::NotValid => "Not Valid",
            EvaluationStatus::Extraneous => "Extraneous",
            EvaluationStatus::SubStandard => "Sub-standard",
        }
    }
}

/// Why a dose is not simply valid (the CDC test cases' wording).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EvaluationReason {
    #[serde(rename = "Age: Too Young")]
    TooYoung,
    #[serde(rename = "Age: Too Old")]
    TooOld,
    #[serde(rename = "Interval: Too Soon")]
    TooSoon,
    #[serde(rename = "Live Virus Conflict")]
    LiveVirusConflict,
    #[serde(rename = "Not a preferable or allowable vaccine")]
    NotPreferableOrAllowable,
    #[serde(rename = "Inadvertent Vaccine")]
    Inadvertent,
    #[serde(rename = "Series Already Complete")]
    SeriesAlreadyComplete,
    #[serde(rename = "Sub-standard dose")]
    SubStandard,
    /// Valid, but within the 4-day grace period of an age or interval.
    #[serde(rename = "Grace Period")]
    GracePeriod,
}

impl EvaluationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EvaluationReason::TooYoung => "Age: Too Young",
            EvaluationReason::TooOld => "Age: Too Old",
            EvaluationReason::TooSoon => "Interval: Too Soon",
            EvaluationReason::LiveVirusConflict => "Live Virus Conflict",
            EvaluationReason::NotPreferableOrAllowable => "Not a preferable or allowable vaccine",
            EvaluationReason::Inadvertent => "Inadvertent Vaccine",
            EvaluationReason::SeriesAlreadyComplete => "Series Already Complete",
            EvaluationReason::SubStandard => "Sub-standard dose",
            EvaluationReason::GracePeriod => "Grace Period",
        }
    }
}

/// The evaluation of one dose within one patient series.
#[derive(Debug, Clone, Serialize)]
pub struct DoseEvaluation {
    /// Index of the dose in [`AssessmentRequest::doses`].
    pub dose_index: usize,
    pub date: Date,
    pub cvx: Cvx,
    pub status: EvaluationStatus,
    pub reason: Option<EvaluationReason>,
    /// The target dose (1-based dose number in the series) the dose was
    /// evaluated against; `None` for doses left over after the series ended.
    pub dose_number: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SeriesStatus {
    #[serde(rename = "Not Complete")]
    NotComplete,
    Complete,
    Immune,
    Contraindicated,
    #[serde(rename = "Aged Out")]
    AgedOut,
    #[serde(rename = "Not Recommended")]
    NotRecommended,
}

impl SeriesStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SeriesStatus::NotComplete => "Not Complete",
            SeriesStatus::Complete => "Complete",
            SeriesStatus::Immune => "Immune",
            SeriesStatus::Contraindicated => "Contraindicated",
            SeriesStatus::AgedOut => "Aged Out",
            SeriesStatus::NotRecommended => "Not Recommended",
        }
    }
}

/// The specification's forecast reasons (Table 7-10 and 7.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ForecastReason {
    #[serde(rename = "Patient series is complete")]
    SeriesComplete,
    #[serde(rename = "Not recommended at this time due to past immunization history")]
    NotRecommendedPastHistory,
    #[serde(rename = "Patient has evidence of immunity")]
    EvidenceOfImmunity,
    #[serde(rename = "Patient has a contraindication")]
    Contraindication,
    #[serde(rename = "Past seasonal recommendation end date")]
    PastSeasonalEnd,
    #[serde(rename = "Patient has exceeded the maximum age")]
    ExceededMaximumAge,
    #[serde(rename = "Patient is unable to finish the series prior to the maximum age")]
    UnableToFinish,
}

impl ForecastReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ForecastReason::SeriesComplete => "Patient series is complete",
            ForecastReason::NotRecommendedPastHistory => {
                "Not recommended at this time due to past immunization history"
            }
            ForecastReason::EvidenceOfImmunity => "Patient has evidence of immunity",
            ForecastReason::Contraindication => "Patient has a contraindication",
            ForecastReason::PastSeasonalEnd => "Past seasonal recommendation end date",
            ForecastReason::ExceededMaximumAge => "Patient has exceeded the maximum age",
            ForecastReason::UnableToFinish => {
                "Patient is unable to finish the series prior to the maximum age"
            }
        }
    }
}

/// The forecast of one patient series.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesForecast {
    pub status: SeriesStatus,
    pub reason: Option<ForecastReason>,
    /// The target dose being forecast (1-based), when another dose is due.
    pub target_dose: Option<u32>,
    /// FORECASTDN-1: satisfied target doses + 1.
    pub forecast_dose_number: Option<u32>,
    pub earliest: Option<Date>,
    pub recommended: Option<Date>,
    pub past_due: Option<Date>,
    pub latest: Option<Date>,
    pub unadjusted_recommended: Option<Date>,
    pub unadjusted_past_due: Option<Date>,
    /// FORECASTPRIORITY-1: every preferable interval of the forecast target
    /// dose carries the interval priority flag.
    pub priority: bool,
    /// Preferable vaccines flagged for forecasting (FORECASTRECVAC-1).
    pub recommended_vaccines: Vec<Cvx>,
}

/// A relevant patient series, evaluated and forecast.
#[derive(Debug, Clone, Serialize)]
pub struct PatientSeriesResult {
    pub series_name: String,
    pub series_type: SeriesType,
    pub series_group: String,
    pub evaluations: Vec<DoseEvaluation>,
    pub forecast: SeriesForecast,
    /// Count of satisfied target doses (SELECTB-21).
    pub valid_doses: u32,
}

/// One antigen: its best patient series (usually one; more when the
/// supporting data's series groups are not equivalent).
#[derive(Debug, Clone, Serialize)]
pub struct AntigenResult {
    pub antigen: String,
    pub best_series: Vec<PatientSeriesResult>,
    /// The other relevant patient series, evaluated and forecast but not
    /// selected (e.g. the standard series of a patient whose risk series is
    /// the best one): how a dose fared on another path.
    pub other_series: Vec<PatientSeriesResult>,
}

/// A vaccine group's forecast, blended from the best patient series of its
/// antigens of one series type (chapter 9).
#[derive(Debug, Clone, Serialize)]
pub struct VaccineGroupForecast {
    pub vaccine_group: String,
    /// The CVX naming the group as a whole (e.g. 107 "DTaP, unspecified
    /// formulation"), for messages that identify a forecast by vaccine type.
    pub vaccine_type: Option<VaccineType>,
    pub series_type: SeriesType,
    pub status: SeriesStatus,
    pub dose_number: Option<u32>,
    pub earliest: Option<Date>,
    pub recommended: Option<Date>,
    pub past_due: Option<Date>,
    pub latest: Option<Date>,
    pub reasons: Vec<ForecastReason>,
    /// The antigens still needing a dose (FORECASTVG-8).
    pub recommended_antigens: Vec<String>,
    pub recommended_vaccines: Vec<Cvx>,
    /// The series each antigen's part of this forecast came from.
    pub series: Vec<GroupSeriesRef>,
}

/// A CVX code with the supporting data's short description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VaccineType {
    pub cvx: Cvx,
    pub description: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupSeriesRef {
    pub antigen: String,
    pub series_name: String,
}

/// One dose's evaluation as seen by a vaccine group: for a combination
/// vaccine the antigens' evaluations are merged (any not valid makes it not
/// valid).
#[derive(Debug, Clone, Serialize)]
pub struct GroupDoseEvaluation {
    pub dose_index: usize,
    pub date: Date,
    pub cvx: Cvx,
    pub status: EvaluationStatus,
    pub reason: Option<EvaluationReason>,
    pub dose_number: Option<u32>,
    pub series_name: String,
}

/// The whole answer for one patient.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub supporting_data_version: String,
    pub assessment_date: Date,
    pub antigens: Vec<AntigenResult>,
    pub vaccine_groups: Vec<VaccineGroupForecast>,
}
