//! Select relevant patient series (logic specification chapter 5): a
//! standard or evaluation-only series is relevant for a patient of a
//! required gender; a risk series only when one of its indications applies
//! (the patient has the observation and the assessment date lies within the
//! indication's ages, Table 5-4).

use crate::data::{Gender, Series, SeriesType};
use crate::dates::Date;
use crate::model::Patient;

pub(crate) fn gender_matches(series: &Series, gender: Gender) -> bool {
    series.required_gender.is_empty() || series.required_gender.contains(&gender)
}

pub(crate) fn indication_applies(series: &Series, patient: &Patient, assessment: Date) -> bool {
    let dob = patient.date_of_birth;
    series.indications.iter().any(|ind| {
        patient
            .observations
            .iter()
            .any(|o| o.code == ind.observation_code)
            && ind.begin_age.is_none_or(|a| dob.plus(a) <= assessment)
            && ind.end_age.is_none_or(|a| assessment < dob.plus(a))
    })
}

/// Table 5-5: is the antigen series a relevant patient series?
pub(crate) fn is_relevant(series: &Series, patient: &Patient, assessment: Date) -> bool {
    if !gender_matches(series, patient.gender) {
        return false;
    }
    match series.series_type {
        SeriesType::Standard | SeriesType::EvaluationOnly => true,
        SeriesType::Risk => indication_applies(series, patient, assessment),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PatientObservation;

    fn patient(gender: Gender, codes: &[u16]) -> Patient {
        Patient {
            date_of_birth: Date::parse("2010-01-01").unwrap(),
            gender,
            country_of_birth: None,
            observations: codes
                .iter()
                .map(|&code| PatientObservation { code, date: None })
                .collect(),
        }
    }

    #[test]
    fn risk_series_need_an_indication_within_its_ages() {
        let data = crate::builtin().unwrap();
        let pneumo = data.antigen("Pneumococcal").unwrap();
        let risk = pneumo
            .series
            .iter()
            .find(|s| {
                s.series_type == SeriesType::Risk
                    && s.indications.iter().any(|i| i.observation_code == 10)
                    && s.indications.iter().all(|i| i.end_age.is_some())
            })
            .unwrap();
        let ind = risk
            .indications
            .iter()
            .find(|i| i.observation_code == 10)
            .unwrap();
        let dob = Date::parse("2010-01-01").unwrap();
        let inside = dob.plus(ind.begin_age.unwrap_or_default());
        let after = dob.plus(ind.end_age.unwrap());
        assert!(is_relevant(risk, &patient(Gender::Male, &[10]), inside));
        assert!(!is_relevant(risk, &patient(Gender::Male, &[10]), after));
        assert!(!is_relevant(risk, &patient(Gender::Male, &[]), inside));
    }

    #[test]
    fn gender_restricts_series() {
        let data = crate::builtin().unwrap();
        let restricted = data
            .antigens
            .iter()
            .flat_map(|a| &a.series)
            .find(|s| {
                s.required_gender.contains(&Gender::Female)
                    && !s.required_gender.contains(&Gender::Male)
            })
            .unwrap();
        assert!(gender_matches(restricted, Gender::Female));
        assert!(!gender_matches(restricted, Gender::Male));
    }
}
