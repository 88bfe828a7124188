//! Identify and evaluate vaccine groups (logic specification chapter 9):
//! blend the best patient series of a group's antigens, one forecast per
//! series type, with the general rules (FORECASTVG-*, FORECASTDN-2) and the
//! single-antigen or multiple-antigen rules (SINGLEANTVG-*, Table 9-4,
//! MULTIANTVG-1).

use crate::data::{SeriesType, SupportingData, VaccineGroup};
use crate::dates::Date;
use crate::model::{
    AntigenResult, AssessmentRequest, GroupSeriesRef, PatientSeriesResult, SeriesStatus,
    VaccineGroupForecast, VaccineType,
};

/// Which of an antigen's best series speaks for it in a vaccine group.
fn status_rank(s: SeriesStatus) -> u8 {
    match s {
        SeriesStatus::NotComplete => 0,
        SeriesStatus::Complete => 1,
        SeriesStatus::Immune => 2,
        SeriesStatus::Contraindicated => 3,
        SeriesStatus::NotRecommended => 4,
        SeriesStatus::AgedOut => 5,
    }
}

/// Table 9-4.
fn group_status(statuses: &[SeriesStatus]) -> SeriesStatus {
    let any = |s| statuses.contains(&s);
    if any(SeriesStatus::Contraindicated) {
        SeriesStatus::Contraindicated
    } else if any(SeriesStatus::AgedOut) {
        SeriesStatus::AgedOut
    } else if any(SeriesStatus::NotRecommended) {
        SeriesStatus::NotRecommended
    } else if any(SeriesStatus::NotComplete) {
        SeriesStatus::NotComplete
    } else if statuses.iter().all(|s| *s == SeriesStatus::Immune) {
        SeriesStatus::Immune
    } else {
        SeriesStatus::Complete
    }
}

fn blend(
    data: &SupportingData,
    request: &AssessmentRequest,
    group: &VaccineGroup,
    series_type: SeriesType,
    parts: &[(&str, &PatientSeriesResult)],
) -> VaccineGroupForecast {
    let all_forecasts: Vec<_> = parts.iter().map(|(_, s)| &s.forecast).collect();
    // A group whose antigens may be given apart (administer full vaccine
    // group "N", e.g. DT or Td without pertussis) is not stopped by one
    // contraindicated antigen: the others are still forecast.
    let contraindicated =
        |f: &&crate::model::SeriesForecast| f.status == SeriesStatus::Contraindicated;
    let forecasts: Vec<_> =
        if !group.administer_full_vaccine_group && !all_forecasts.iter().all(contraindicated) {
            all_forecasts
                .iter()
                .copied()
                .filter(|f| !contraindicated(f))
                .collect()
        } else {
            all_forecasts.clone()
        };
    let statuses: Vec<SeriesStatus> = forecasts.iter().map(|f| f.status).collect();
    let status = if statuses.len() == 1 {
        statuses[0]
    } else {
        group_status(&statuses)
    };
    let due: Vec<_> = forecasts
        .iter()
        .filter(|f| f.status == SeriesStatus::NotComplete)
        .collect();
    let (mut earliest, mut recommended, mut past_due, mut latest, mut dose_number) =
        (None, None, None, None, None);
    if status == SeriesStatus::NotComplete && !due.is_empty() {
        let earliest_dates: Vec<Date> = due.iter().filter_map(|f| f.earliest).collect();
        earliest = if group.antigens.len() == 1 {
            earliest_dates.iter().copied().min()
        } else if due.iter().any(|f| f.priority) {
            // MULTIANTVG-1, priority forecast: not before the last dose of
            // any vaccine of the group.
            let last_dose = request
                .doses
                .iter()
                .filter(|d| {
                    data.cvx_map.get(&d.cvx).is_some_and(|m| {
                        m.associations
                            .iter()
                            .any(|a| group.antigens.contains(&a.antigen))
                    })
                })
                .map(|d| d.date)
                .max();
            earliest_dates.iter().copied().min().max(last_dose)
        } else {
            earliest_dates.iter().copied().max()
        };
        // FORECASTVG-2/3: the earliest of the series dates, not before the
        // vaccine group's earliest date.
        recommended = due.iter().filter_map(|f| f.recommended).min().max(earliest);
        past_due = due
            .iter()
            .filter_map(|f| f.past_due)
            .min()
            .map(|d| Some(d).max(earliest).unwrap_or(d));
        // FORECASTVG-4
        latest = due.iter().filter_map(|f| f.latest).min();
        // FORECASTDN-2
        let numbers = due.iter().filter_map(|f| f.forecast_dose_number);
        dose_number = if group.administer_full_vaccine_group {
            numbers.min()
        } else {
            numbers.max()
        };
    }
    let mut reasons = Vec::new();
    for f in &all_forecasts {
        if let Some(r) = f.reason {
            if !reasons.contains(&r) {
                reasons.push(r);
            }
        }
    }
    let mut recommended_vaccines = Vec::new();
    for f in &due {
        for v in &f.recommended_vaccines {
            if !recommended_vaccines.contains(v) {
                recommended_vaccines.push(*v);
            }
        }
    }
    let vaccine_type = group.vaccine_type.and_then(|cvx| {
        data.cvx_map.get(&cvx).map(|m| VaccineType {
            cvx,
            description: m.short_description.clone(),
        })
    });
    VaccineGroupForecast {
        vaccine_group: group.name.clone(),
        vaccine_type,
        series_type,
        status,
        dose_number,
        earliest,
        recommended,
        past_due,
        latest,
        reasons,
        recommended_antigens: parts
            .iter()
            .filter(|(_, s)| s.forecast.status == SeriesStatus::NotComplete)
            .map(|(a, _)| a.to_string())
            .collect(),
        recommended_vaccines,
        series: parts
            .iter()
            .map(|(a, s)| GroupSeriesRef {
                antigen: a.to_string(),
                series_name: s.series_name.clone(),
            })
            .collect(),
    }
}

/// Every vaccine group with at least one best patient series.
pub(crate) fn vaccine_group_forecasts(
    data: &SupportingData,
    request: &AssessmentRequest,
    antigens: &[AntigenResult],
) -> Vec<VaccineGroupForecast> {
    let mut out = Vec::new();
    for group in &data.vaccine_groups {
        let mut parts: Vec<(&str, &PatientSeriesResult)> = Vec::new();
        for antigen in &group.antigens {
            if let Some(result) = antigens.iter().find(|a| &a.antigen == antigen) {
                for s in &result.best_series {
                    parts.push((result.antigen.as_str(), s));
                }
            }
        }
        for series_type in [
            SeriesType::Standard,
            SeriesType::Risk,
            SeriesType::EvaluationOnly,
        ] {
            // One series per antigen: an antigen with several best series of
            // one type (non-equivalent series groups, e.g. the childhood and
            // the 50+ pneumococcal series) is represented by the one that
            // still needs a dose, else a complete one.
            let mut of_type: Vec<(&str, &PatientSeriesResult)> = Vec::new();
            for (antigen, series) in parts.iter().filter(|(_, s)| s.series_type == series_type) {
                match of_type.iter_mut().find(|(a, _)| a == antigen) {
                    Some(slot) => {
                        if status_rank(series.forecast.status) < status_rank(slot.1.forecast.status)
                        {
                            slot.1 = series;
                        }
                    }
                    None => of_type.push((antigen, series)),
                }
            }
            if !of_type.is_empty() {
                let mut forecast = blend(data, request, group, series_type, &of_type);
                if series_type == SeriesType::Risk {
                    // A risk series often continues a path the patient began
                    // on the standard schedule; the dose number shown is the
                    // patient's next dose (valid doses on any relevant path,
                    // plus one), as the CDC test cases count it, not the
                    // risk series' own target dose number.
                    if let Some(n) = forecast.dose_number {
                        let history = of_type
                            .iter()
                            .filter_map(|(a, _)| antigens.iter().find(|r| &r.antigen == a))
                            .map(|r| {
                                let mut valid: Vec<usize> = r
                                    .best_series
                                    .iter()
                                    .chain(&r.other_series)
                                    .flat_map(|s| &s.evaluations)
                                    .filter(|e| e.status == crate::model::EvaluationStatus::Valid)
                                    .map(|e| e.dose_index)
                                    .collect();
                                valid.sort_unstable();
                                valid.dedup();
                                valid.len() as u32 + 1
                            })
                            .max()
                            .unwrap_or(n);
                        forecast.dose_number = Some(n.max(history));
                    }
                }
                out.push(forecast);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiple_antigen_status_follows_table_9_4() {
        use SeriesStatus::*;
        assert_eq!(
            group_status(&[Complete, NotComplete, Complete]),
            NotComplete
        );
        assert_eq!(group_status(&[Complete, Immune]), Complete);
        assert_eq!(group_status(&[Immune, Immune]), Immune);
        assert_eq!(
            group_status(&[NotComplete, Contraindicated]),
            Contraindicated
        );
        assert_eq!(group_status(&[AgedOut, NotComplete]), AgedOut);
    }
}
