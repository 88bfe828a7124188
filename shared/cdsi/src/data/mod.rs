//! The CDC supporting data as typed structures: the schedule (live virus
//! conflicts, vaccine groups, CVX → antigen map, coded observations) and one
//! [`Antigen`] per antigen supporting data file (immunity, contraindications,
//! series and their series doses).
//!
//! Loaded from CDC's own XML by [`load`]; never transcribed by hand. Every
//! age, interval and date is parsed once at load time so that evaluation
//! does no text parsing.

mod builtin;
mod xml;

use std::collections::HashMap;

use crate::dates::{Date, Duration};

pub use builtin::{builtin, BUILTIN_VERSION};
pub use xml::{load, load_dir, load_release_dir, release_name, LoadError};

/// The CVX that names a vaccine group as a whole: among the CVX codes whose
/// antigens are exactly the group's, an "unspecified formulation" one, then
/// any "unspecified" one, then the shortest description, then the lowest
/// code (DTaP/Tdap/Td gives 107, MMR 03, HepA 85, Polio 89).
pub fn group_vaccine_type(antigens: &[String], cvx_map: &HashMap<Cvx, CvxMap>) -> Option<Cvx> {
    let same_antigens = |m: &CvxMap| {
        let mut of_cvx: Vec<&str> = m.associations.iter().map(|a| a.antigen.as_str()).collect();
        of_cvx.sort_unstable();
        of_cvx.dedup();
        let mut of_group: Vec<&str> = antigens.iter().map(String::as_str).collect();
        of_group.sort_unstable();
        !of_group.is_empty() && of_cvx == of_group
    };
    cvx_map
        .values()
        .filter(|m| same_antigens(m))
        .min_by_key(|m| {
            let d = m.short_description.to_ascii_lowercase();
            (
                !d.contains("unspecified formulation"),
                !d.contains("unspecified"),
                d.len(),
                m.cvx,
            )
        })
        .map(|m| m.cvx)
}

/// A CVX code as a number ("03" and "3" are the same vaccine).
pub type Cvx = u16;
/// A CDSi observation code as a number ("042" is 42).
pub type ObservationCode = u16;

/// All supporting data of one CDC release.
#[derive(Debug, Clone)]
pub struct SupportingData {
    /// The release, e.g. "4.64"; reported in every result.
    pub version: String,
    pub live_virus_conflicts: Vec<LiveVirusConflict>,
    pub vaccine_groups: Vec<VaccineGroup>,
    pub cvx_map: HashMap<Cvx, CvxMap>,
    pub observations: Vec<ObservationDefinition>,
    pub antigens: Vec<Antigen>,
}

impl SupportingData {
    pub fn antigen(&self, name: &str) -> Option<&Antigen> {
        self.antigens.iter().find(|a| a.name == name)
    }
    pub fn vaccine_group(&self, name: &str) -> Option<&VaccineGroup> {
        self.vaccine_groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(name))
    }
}

/// A pair of vaccine types that must be spaced apart (the logic
/// specification's "conflicting" = previous and "impacted" = current type).
#[derive(Debug, Clone)]
pub struct LiveVirusConflict {
    pub previous_vaccine_type: String,
    pub previous_cvx: Cvx,
    pub current_vaccine_type: String,
    pub current_cvx: Cvx,
    pub conflict_begin_interval: Duration,
    /// Used when the conflicting dose is valid (or was not evaluated).
    pub min_conflict_end_interval: Duration,
    /// Used when the conflicting dose was not valid.
    pub conflict_end_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct VaccineGroup {
    pub name: String,
    /// "Yes" for MMR: every antigen of the group is given together.
    pub administer_full_vaccine_group: bool,
    pub antigens: Vec<String>,
    /// The vaccine type that stands for the whole group where a message
    /// needs one CVX (HL7 OBX 30956-7): see [`group_vaccine_type`].
    pub vaccine_type: Option<Cvx>,
}

#[derive(Debug, Clone)]
pub struct CvxMap {
    pub cvx: Cvx,
    pub short_description: String,
    pub associations: Vec<AntigenAssociation>,
}

/// A CVX counts for an antigen only when given within these ages (e.g. a
/// zoster vaccine below 50 years counts as varicella).
#[derive(Debug, Clone)]
pub struct AntigenAssociation {
    pub antigen: String,
    pub begin_age: Option<Duration>,
    pub end_age: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct ObservationDefinition {
    pub code: ObservationCode,
    pub title: String,
    pub indication_text: String,
    pub contraindication_text: String,
    pub coded_values: Vec<CodedValue>,
}

#[derive(Debug, Clone)]
pub struct CodedValue {
    pub code: String,
    pub code_system: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Antigen {
    pub name: String,
    pub immunity: Immunity,
    pub group_contraindications: Vec<AntigenContraindication>,
    pub vaccine_contraindications: Vec<VaccineContraindication>,
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, Default)]
pub struct Immunity {
    /// Observation codes that are evidence of immunity by themselves.
    pub clinical_history: Vec<ObservationCode>,
    pub birth_date: Vec<BirthDateImmunity>,
}

#[derive(Debug, Clone)]
pub struct BirthDateImmunity {
    pub immunity_birth_date: Date,
    pub birth_country: String,
    pub exclusions: Vec<ObservationCode>,
}

#[derive(Debug, Clone)]
pub struct AntigenContraindication {
    pub observation_code: ObservationCode,
    pub text: String,
    pub begin_age: Option<Duration>,
    pub end_age: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct VaccineContraindication {
    pub observation_code: ObservationCode,
    pub text: String,
    pub vaccines: Vec<ContraindicatedVaccine>,
}

#[derive(Debug, Clone)]
pub struct ContraindicatedVaccine {
    pub cvx: Cvx,
    pub begin_age: Option<Duration>,
    pub end_age: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SeriesType {
    Standard,
    Risk,
    #[serde(rename = "Evaluation Only")]
    EvaluationOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Gender {
    Female,
    Male,
    Unknown,
}

/// An antigen series: one path to immunity.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub target_disease: String,
    pub vaccine_group: String,
    pub admin_guidance: Vec<String>,
    pub series_type: SeriesType,
    /// Series groups whose prioritized series makes this one redundant.
    pub equivalent_series_groups: Vec<String>,
    /// Empty: every gender.
    pub required_gender: Vec<Gender>,
    pub default_series: bool,
    pub product_path: bool,
    pub series_group_name: String,
    pub series_group: String,
    /// "A" before "B" before "C".
    pub series_priority: String,
    /// 1 is preferred over 2 when scores tie.
    pub series_preference: u32,
    pub min_age_to_start: Option<Duration>,
    pub max_age_to_start: Option<Duration>,
    pub indications: Vec<Indication>,
    pub doses: Vec<SeriesDose>,
}

#[derive(Debug, Clone)]
pub struct Indication {
    pub observation_code: ObservationCode,
    pub description: String,
    pub begin_age: Option<Duration>,
    pub end_age: Option<Duration>,
    pub guidance: String,
}

#[derive(Debug, Clone)]
pub struct SeriesDose {
    /// 1-based, as in "Dose 1".
    pub dose_number: u32,
    pub ages: Vec<AgeRule>,
    pub preferable_intervals: Vec<Interval>,
    pub allowable_intervals: Vec<Interval>,
    pub preferable_vaccines: Vec<PreferableVaccine>,
    pub allowable_vaccines: Vec<AllowableVaccine>,
    pub inadvertent_vaccines: Vec<Cvx>,
    pub conditional_skips: Vec<ConditionalSkip>,
    pub recurring_dose: bool,
    pub seasonal_recommendation: Option<SeasonalRecommendation>,
}

/// Effective and cessation dates of a rule (RELEVANT-1/2).
#[derive(Debug, Clone, Copy, Default)]
pub struct Effective {
    pub effective: Option<Date>,
    pub cessation: Option<Date>,
}

impl Effective {
    /// Does the rule apply on this date? Defaults 01/01/1900 and 12/31/2999.
    pub fn applies_on(&self, date: Date) -> bool {
        self.effective.is_none_or(|e| e <= date) && self.cessation.is_none_or(|c| date <= c)
    }
}

#[derive(Debug, Clone)]
pub struct AgeRule {
    pub abs_min_age: Option<Duration>,
    pub min_age: Option<Duration>,
    pub earliest_rec_age: Option<Duration>,
    pub latest_rec_age: Option<Duration>,
    pub max_age: Option<Duration>,
    pub effective: Effective,
}

/// Where an interval is measured from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntervalFrom {
    /// The immediate previous dose administered.
    Previous,
    /// The dose that satisfied target dose N (1-based).
    TargetDose(u32),
    /// The most recent dose of any of these vaccine types.
    MostRecent(Vec<Cvx>),
    /// The date of a patient observation.
    RelevantObservation(ObservationCode),
}

/// A preferable interval (all four limits) or an allowable one (only the
/// absolute minimum).
#[derive(Debug, Clone)]
pub struct Interval {
    pub from: IntervalFrom,
    pub abs_min_int: Option<Duration>,
    pub min_int: Option<Duration>,
    pub earliest_rec_int: Option<Duration>,
    pub latest_rec_int: Option<Duration>,
    /// The interval priority flag ("override" in 4.64).
    pub priority: bool,
    pub effective: Effective,
}

#[derive(Debug, Clone)]
pub struct PreferableVaccine {
    pub vaccine_type: String,
    pub cvx: Cvx,
    pub begin_age: Option<Duration>,
    pub end_age: Option<Duration>,
    pub trade_name: String,
    pub mvx: Option<String>,
    pub volume: Option<f64>,
    pub forecast_vaccine_type: bool,
}

#[derive(Debug, Clone)]
pub struct AllowableVaccine {
    pub vaccine_type: String,
    pub cvx: Cvx,
    pub begin_age: Option<Duration>,
    pub end_age: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipContext {
    Evaluation,
    Forecast,
    Both,
}

impl SkipContext {
    pub fn applies_to_evaluation(self) -> bool {
        matches!(self, SkipContext::Evaluation | SkipContext::Both)
    }
    pub fn applies_to_forecast(self) -> bool {
        matches!(self, SkipContext::Forecast | SkipContext::Both)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logic {
    And,
    Or,
}

#[derive(Debug, Clone)]
pub struct ConditionalSkip {
    pub context: SkipContext,
    pub set_logic: Logic,
    pub sets: Vec<SkipSet>,
}

#[derive(Debug, Clone)]
pub struct SkipSet {
    pub id: String,
    pub description: String,
    pub effective: Effective,
    pub condition_logic: Logic,
    pub conditions: Vec<SkipCondition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionType {
    Age,
    CompletedSeries,
    Interval,
    /// "Vaccine Count by Age", "… by Date" and "… by Date and Age": CONDSKIP-1
    /// applies whichever age and date limits the condition carries.
    VaccineCount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoseType {
    Valid,
    Total,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoseCountLogic {
    GreaterThan,
    Equal,
    LessThan,
}

#[derive(Debug, Clone)]
pub struct SkipCondition {
    pub condition_type: ConditionType,
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
    pub begin_age: Option<Duration>,
    pub end_age: Option<Duration>,
    pub interval: Option<Duration>,
    pub dose_count: u32,
    pub dose_type: DoseType,
    pub dose_count_logic: DoseCountLogic,
    /// Empty: every vaccine type counts.
    pub vaccine_types: Vec<Cvx>,
    pub series_groups: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct SeasonalRecommendation {
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
}
