//! The processing model (logic specification chapter 4): gather, organise
//! the history, create relevant patient series, evaluate and forecast each,
//! select the best patient series per antigen, and blend vaccine groups.

use std::collections::HashSet;

use crate::data::{ConditionType, SeriesDose, SupportingData};
use crate::evaluate::{Context, SeriesRun, TargetStatus};
use crate::history::organize;
use crate::model::{
    AntigenResult, Assessment, AssessmentRequest, DoseEvaluation, EvaluationStatus,
    GroupDoseEvaluation, PatientSeriesResult, SeriesStatus, VaccineGroupForecast,
};
use crate::relevant::is_relevant;
use crate::select::{best_series, Candidate};
use crate::vaccine_group::vaccine_group_forecasts;

fn uses_completed_series(doses: &[SeriesDose]) -> bool {
    doses.iter().any(|d| {
        d.conditional_skips.iter().any(|s| {
            s.sets.iter().any(|set| {
                set.conditions
                    .iter()
                    .any(|c| c.condition_type == ConditionType::CompletedSeries)
            })
        })
    })
}

/// Evaluate and forecast a patient against the supporting data.
pub fn assess(data: &SupportingData, request: &AssessmentRequest) -> Assessment {
    let ctx = Context {
        data,
        request,
        dob: request.patient.date_of_birth,
        assessment: request.assessment_date,
    };
    let records = organize(data, request);
    let mut antigens = Vec::new();
    for (ai, antigen) in data.antigens.iter().enumerate() {
        let relevant: Vec<_> = antigen
            .series
            .iter()
            .filter(|s| is_relevant(s, &request.patient, ctx.assessment))
            .collect();
        if relevant.is_empty() {
            continue;
        }
        let recs = &records[ai];
        let run_all = |completed: &HashSet<String>| {
            relevant
                .iter()
                .map(|series| {
                    let mut run = SeriesRun::new(series, recs);
                    run.evaluate(&ctx, completed);
                    let forecast = run.forecast(antigen, &ctx, completed);
                    (run, forecast)
                })
                .collect::<Vec<_>>()
        };
        let mut runs = run_all(&HashSet::new());
        // A "completed series" skip condition looks at the other series of
        // the antigen: evaluate once, then again knowing which are complete.
        if relevant.iter().any(|s| uses_completed_series(&s.doses)) {
            let completed: HashSet<String> = runs
                .iter()
                .filter(|(_, f)| f.status == SeriesStatus::Complete)
                .map(|(r, _)| r.series.series_group.clone())
                .collect();
            if !completed.is_empty() {
                runs = run_all(&completed);
            }
        }
        let candidates: Vec<Candidate> = runs
            .iter()
            .map(|(run, forecast)| {
                let valid_doses = run.satisfied_count();
                let first_valid = run
                    .records
                    .iter()
                    .zip(&run.evaluations)
                    .find(|(_, e)| e.is_some_and(|e| e.status == EvaluationStatus::Valid))
                    .map(|(r, _)| r.date);
                // SELECTB-5: the target doses not satisfied (the current
                // one and every one after it).
                let remaining = if forecast.status == SeriesStatus::NotComplete {
                    (run.targets.len() - run.current) as u32
                } else {
                    0
                };
                // SELECTB-12: the earliest date plus the latest minimum
                // interval of the remaining target doses.
                let finish = forecast.earliest.map(|earliest| {
                    run.targets
                        .iter()
                        .skip(run.current + 1)
                        .flat_map(|t| &run.series.doses[t.series_dose].preferable_intervals)
                        .filter(|i| i.effective.applies_on(earliest))
                        .filter_map(|i| i.min_int)
                        .map(|min| earliest.plus(min))
                        .max()
                        .unwrap_or(earliest)
                });
                let last_max_age = run
                    .series
                    .doses
                    .last()
                    .and_then(|d| crate::evaluate::age_rule(d, ctx.assessment))
                    .and_then(|a| a.max_age)
                    .map(|m| ctx.dob.plus(m));
                Candidate {
                    series: run.series,
                    forecast: forecast.clone(),
                    valid_doses,
                    all_valid: run.all_valid(),
                    first_valid,
                    finish,
                    last_max_age,
                    remaining,
                    start: forecast.earliest,
                    dob: ctx.dob,
                    assessment: ctx.assessment,
                }
            })
            .collect();
        let best = best_series(&candidates);
        let result = |i: usize| {
            let (run, forecast) = &runs[i];
            PatientSeriesResult {
                series_name: run.series.name.clone(),
                series_type: run.series.series_type,
                series_group: run.series.series_group.clone(),
                evaluations: run
                    .records
                    .iter()
                    .zip(&run.evaluations)
                    .filter_map(|(r, e)| {
                        let e = (*e)?;
                        Some(DoseEvaluation {
                            dose_index: r.dose_index,
                            date: r.date,
                            cvx: r.cvx,
                            status: e.status,
                            reason: e.reason,
                            dose_number: e.target.map(|t| t as u32 + 1),
                        })
                    })
                    .collect(),
                forecast: forecast.clone(),
                valid_doses: run
                    .targets
                    .iter()
                    .filter(|t| t.status == TargetStatus::Satisfied)
                    .count() as u32,
            }
        };
        let best_series = best.iter().map(|&i| result(i)).collect();
        let other_series = (0..runs.len())
            .filter(|i| !best.contains(i))
            .map(result)
            .collect();
        antigens.push(AntigenResult {
            antigen: antigen.name.clone(),
            best_series,
            other_series,
        });
    }
    let vaccine_groups = vaccine_group_forecasts(data, request, &antigens);
    Assessment {
        supporting_data_version: data.version.clone(),
        assessment_date: request.assessment_date,
        antigens,
        vaccine_groups,
    }
}

impl Assessment {
    /// The doses that carry an antigen of a vaccine group forecast's
    /// series, each with its evaluation merged over the group's antigens:
    /// not valid for any antigen makes it not valid, else valid for any
    /// makes it valid. Each antigen speaks through the series the forecast
    /// used, falling back to its other best series for doses that one did
    /// not evaluate.
    pub fn group_dose_evaluations(
        &self,
        forecast: &VaccineGroupForecast,
    ) -> Vec<GroupDoseEvaluation> {
        let rank = |s: EvaluationStatus| match s {
            EvaluationStatus::NotValid => 3,
            EvaluationStatus::SubStandard => 2,
            EvaluationStatus::Valid => 1,
            EvaluationStatus::Extraneous => 0,
        };
        let mut out: Vec<GroupDoseEvaluation> = Vec::new();
        for part in &forecast.series {
            let Some(antigen) = self.antigens.iter().find(|a| a.antigen == part.antigen) else {
                continue;
            };
            let mut ordered: Vec<&PatientSeriesResult> = antigen
                .best_series
                .iter()
                .filter(|s| s.series_name == part.series_name)
                .collect();
            ordered.extend(
                antigen
                    .best_series
                    .iter()
                    .filter(|s| s.series_name != part.series_name),
            );
            let mut seen: Vec<usize> = Vec::new();
            for series in ordered {
                for e in &series.evaluations {
                    if seen.contains(&e.dose_index) {
                        continue;
                    }
                    seen.push(e.dose_index);
                    match out.iter_mut().find(|g| g.dose_index == e.dose_index) {
                        Some(existing) => {
                            if rank(e.status) > rank(existing.status) {
                                existing.status = e.status;
                                existing.reason = e.reason;
                                existing.dose_number = e.dose_number;
                                existing.series_name = series.series_name.clone();
                            }
                        }
                        None => out.push(GroupDoseEvaluation {
                            dose_index: e.dose_index,
                            date: e.date,
                            cvx: e.cvx,
                            status: e.status,
                            reason: e.reason,
                            dose_number: e.dose_number,
                            series_name: series.series_name.clone(),
                        }),
                    }
                }
            }
        }
        out.sort_by_key(|g| g.dose_index);
        out
    }

    /// A dose's evaluation in the first antigen that evaluated it (for a
    /// dose outside the vaccine group being reported).
    pub fn any_dose_evaluation(
        &self,
        dose_index: usize,
    ) -> Option<(&PatientSeriesResult, &DoseEvaluation)> {
        self.antigens
            .iter()
            .flat_map(|a| &a.best_series)
            .find_map(|s| {
                s.evaluations
                    .iter()
                    .find(|e| e.dose_index == dose_index)
                    .map(|e| (s, e))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Gender;
    use crate::dates::Date;
    use crate::model::{AdministeredDose, EvaluationReason, Patient};

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    fn request(dob: &str, gender: Gender, at: &str, doses: &[(&str, u16)]) -> AssessmentRequest {
        AssessmentRequest {
            patient: Patient {
                date_of_birth: d(dob),
                gender,
                country_of_birth: None,
                observations: vec![],
            },
            assessment_date: d(at),
            doses: doses
                .iter()
                .map(|&(date, cvx)| AdministeredDose {
                    date: d(date),
                    cvx,
                    mvx: None,
                    sub_standard: false,
                })
                .collect(),
        }
    }

    fn status(
        a: &Assessment,
        antigen: &str,
        dose_index: usize,
    ) -> (EvaluationStatus, Option<EvaluationReason>) {
        let e = a
            .antigens
            .iter()
            .find(|r| r.antigen == antigen)
            .and_then(|r| r.best_series.first())
            .and_then(|s| s.evaluations.iter().find(|e| e.dose_index == dose_index))
            .unwrap();
        (e.status, e.reason)
    }

    #[test]
    fn live_virus_conflict_invalidates_a_varicella_dose_too_soon_after_mmr() {
        let data = crate::builtin().unwrap();
        // MMR at 12 months, varicella 10 days later: within 28 days.
        let r = request(
            "2020-01-01",
            Gender::Male,
            "2021-03-01",
            &[("2021-01-01", 3), ("2021-01-11", 21)],
        );
        let a = assess(data, &r);
        assert_eq!(status(&a, "Measles", 0).0, EvaluationStatus::Valid);
        assert_eq!(
            status(&a, "Varicella", 1),
            (
                EvaluationStatus::NotValid,
                Some(EvaluationReason::LiveVirusConflict)
            )
        );
        // The same day is no conflict.
        let r = request(
            "2020-01-01",
            Gender::Male,
            "2021-03-01",
            &[("2021-01-01", 3), ("2021-01-01", 21)],
        );
        assert_eq!(
            status(&assess(data, &r), "Varicella", 1).0,
            EvaluationStatus::Valid
        );
    }

    #[test]
    fn a_dose_four_days_early_is_valid_five_days_early_is_not() {
        let data = crate::builtin().unwrap();
        // DTaP dose 1: minimum age 6 weeks, absolute minimum 6 weeks - 4 days.
        let dob = d("2025-01-01");
        let six_weeks = dob.add_days(42);
        let at = "2025-06-01";
        let grace = six_weeks.add_days(-4).to_string();
        let early = six_weeks.add_days(-5).to_string();
        let a = assess(
            data,
            &request("2025-01-01", Gender::Female, at, &[(&grace, 20)]),
        );
        assert_eq!(
            status(&a, "Diphtheria", 0),
            (EvaluationStatus::Valid, Some(EvaluationReason::GracePeriod))
        );
        let a = assess(
            data,
            &request("2025-01-01", Gender::Female, at, &[(&early, 20)]),
        );
        assert_eq!(
            status(&a, "Diphtheria", 0),
            (EvaluationStatus::NotValid, Some(EvaluationReason::TooYoung))
        );
    }

    #[test]
    fn series_selection_prefers_the_series_closest_to_completion() {
        let data = crate::builtin().unwrap();
        // A girl with one HPV dose at 12: the 2-dose series, dose 2 in 5 months.
        let a = assess(
            data,
            &request(
                "2010-01-01",
                Gender::Female,
                "2022-01-01",
                &[("2022-01-01", 165)],
            ),
        );
        let hpv = a.antigens.iter().find(|r| r.antigen == "HPV").unwrap();
        assert_eq!(hpv.best_series.len(), 1);
        assert_eq!(hpv.best_series[0].series_name, "HPV 2-dose series");
        assert_eq!(hpv.best_series[0].forecast.earliest, Some(d("2022-06-01")));
        // A child gets no 50+ pneumococcal forecast.
        let a = assess(
            data,
            &request("2020-01-01", Gender::Male, "2021-01-01", &[]),
        );
        let pcv = a
            .antigens
            .iter()
            .find(|r| r.antigen == "Pneumococcal")
            .unwrap();
        assert!(pcv
            .best_series
            .iter()
            .all(|s| !s.series_name.contains("50+")));
    }

    #[test]
    fn encephalopathy_after_dtap_contraindicates_pertussis_only() {
        let data = crate::builtin().unwrap();
        let mut r = request(
            "2011-02-02",
            Gender::Female,
            "2011-04-02",
            &[("2011-04-02", 110)],
        );
        r.patient.observations = vec![crate::model::PatientObservation {
            code: 79,
            date: None,
        }];
        let a = assess(data, &r);
        let status = |antigen: &str| {
            a.antigens
                .iter()
                .find(|x| x.antigen == antigen)
                .unwrap()
                .best_series[0]
                .forecast
                .status
        };
        assert_eq!(status("Pertussis"), SeriesStatus::Contraindicated);
        assert_eq!(status("Diphtheria"), SeriesStatus::NotComplete);
        assert_eq!(status("Tetanus"), SeriesStatus::NotComplete);
        // DT/Td may still be given: the group is forecast, without DTaP.
        let dtap = a
            .vaccine_groups
            .iter()
            .find(|g| g.vaccine_group == "DTaP/Tdap/Td")
            .unwrap();
        assert_eq!(dtap.status, SeriesStatus::NotComplete);
        assert_eq!(dtap.earliest, Some(d("2011-04-30")));
        assert!(!dtap.recommended_vaccines.contains(&20));
    }

    #[test]
    fn every_result_carries_the_supporting_data_version() {
        let data = crate::builtin().unwrap();
        let a = assess(
            data,
            &request("2020-01-01", Gender::Male, "2021-01-01", &[]),
        );
        assert_eq!(a.supporting_data_version, "4.64");
        assert!(a.vaccine_groups.iter().any(|g| g.vaccine_group == "MMR"));
    }
}
