//! Forecast dates and reasons for one evaluated patient series (logic
//! specification chapter 7): conditional skip at the assessment date,
//! evidence of immunity, contraindications, forecast need, the forecast
//! dates of the next target dose, and the validation that re-forecasts when
//! the dose could be skipped by its earliest date.

use std::collections::HashSet;

use crate::data::{Antigen, Cvx};
use crate::dates::{Date, Duration};
use crate::evaluate::{age_rule, Context, SeriesRun, TargetStatus};
use crate::model::{EvaluationStatus, ForecastReason, SeriesForecast, SeriesStatus};
use crate::skip::{can_skip, SkipEnv, SkipPhase};

fn no_dates(status: SeriesStatus, reason: Option<ForecastReason>) -> SeriesForecast {
    SeriesForecast {
        status,
        reason,
        target_dose: None,
        forecast_dose_number: None,
        earliest: None,
        recommended: None,
        past_due: None,
        latest: None,
        unadjusted_recommended: None,
        unadjusted_past_due: None,
        priority: false,
        recommended_vaccines: Vec::new(),
    }
}

/// 7.2: clinical history, or birth before the immunity date without an
/// exclusion (in the named country; an unknown country is taken to match).
pub(crate) fn has_immunity(antigen: &Antigen, ctx: &Context) -> bool {
    let patient = &ctx.request.patient;
    let has = |code: u16| patient.observations.iter().any(|o| o.code == code);
    if antigen.immunity.clinical_history.iter().any(|&c| has(c)) {
        return true;
    }
    antigen.immunity.birth_date.iter().any(|b| {
        ctx.dob < b.immunity_birth_date
            && !b.exclusions.iter().any(|&c| has(c))
            && match &patient.country_of_birth {
                Some(country) if !b.birth_country.is_empty() => {
                    country.trim().eq_ignore_ascii_case(b.birth_country.trim())
                        || (is_us(country) && is_us(&b.birth_country))
                }
                _ => true,
            }
    })
}

fn is_us(country: &str) -> bool {
    let c: String = country
        .chars()
        .filter(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    matches!(
        c.as_str(),
        "US" | "USA" | "UNITEDSTATES" | "UNITEDSTATESOFAMERICA"
    )
}

fn in_ages(ctx: &Context, begin: Option<Duration>, end: Option<Duration>, on: Date) -> bool {
    begin.is_none_or(|a| ctx.dob.plus(a) <= on) && end.is_none_or(|a| on < ctx.dob.plus(a))
}

/// 7.3 Table 7-5: an antigen contraindication applies.
pub(crate) fn antigen_contraindicated(antigen: &Antigen, ctx: &Context) -> bool {
    let patient = &ctx.request.patient;
    antigen.group_contraindications.iter().any(|c| {
        patient
            .observations
            .iter()
            .any(|o| o.code == c.observation_code)
            && in_ages(ctx, c.begin_age, c.end_age, ctx.assessment)
    })
}

/// 7.3 Table 7-6: the vaccine types whose vaccine contraindication applies
/// to the patient on the assessment date.
pub(crate) fn contraindicated_vaccines(antigen: &Antigen, ctx: &Context) -> Vec<Cvx> {
    let patient = &ctx.request.patient;
    let mut out = Vec::new();
    for c in &antigen.vaccine_contraindications {
        if !patient
            .observations
            .iter()
            .any(|o| o.code == c.observation_code)
        {
            continue;
        }
        for v in &c.vaccines {
            if in_ages(ctx, v.begin_age, v.end_age, ctx.assessment) && !out.contains(&v.cvx) {
                out.push(v.cvx);
            }
        }
    }
    out
}

/// 7.3 Table 7-7 second rule: every preferable vaccine of the patient
/// series still to give is contraindicated. The remaining target doses are
/// looked at, not only the next one: a contraindication to the pertussis
/// component (e.g. encephalopathy after DTaP, observation 079) names every
/// DTaP and Tdap product in the diphtheria and tetanus data too, yet Td stays
/// a preferable vaccine of their later doses, so only the pertussis series,
/// whose every preferable vaccine carries pertussis, is contraindicated.
fn all_preferable_contraindicated(run: &SeriesRun, contraindicated: &[Cvx]) -> bool {
    let mut preferable = run.targets[run.current..]
        .iter()
        .flat_map(|t| &run.series.doses[t.series_dose].preferable_vaccines)
        .peekable();
    preferable.peek().is_some() && preferable.all(|v| contraindicated.contains(&v.cvx))
}

struct Dates {
    earliest: Date,
    unadjusted_recommended: Date,
    unadjusted_past_due: Option<Date>,
    latest: Option<Date>,
    max_age_date: Option<Date>,
    priority: bool,
}

impl SeriesRun<'_> {
    /// FORECASTDN-1: satisfied target doses plus one; for seasonal doses
    /// only those given on or after the season's start count.
    fn forecast_dose_number(&self) -> u32 {
        self.targets
            .iter()
            .filter(|t| t.status == TargetStatus::Satisfied)
            .filter(|t| {
                let dose = &self.series.doses[t.series_dose];
                match dose.seasonal_recommendation.and_then(|s| s.start_date) {
                    None => true,
                    Some(start) => t
                        .satisfied_by
                        .is_some_and(|r| self.records[r].date >= start),
                }
            })
            .count() as u32
            + 1
    }

    /// FORECASTDTCAN-1 and FORECASTDT-1 … 6 for the current target dose.
    fn forecast_dates(&self, ctx: &Context) -> Dates {
        let dose = self.series_dose(self.current);
        let at = ctx.assessment;
        let age = age_rule(dose, at);
        let from_dob = |d: Option<Duration>| d.map(|d| ctx.dob.plus(d));
        let min_age = age.and_then(|a| from_dob(a.min_age));
        let earliest_rec_age = age.and_then(|a| from_dob(a.earliest_rec_age));
        let latest_rec_age = age.and_then(|a| from_dob(a.latest_rec_age));
        let max_age_date = age.and_then(|a| from_dob(a.max_age));

        let mut min_interval: Option<Date> = None;
        let mut earliest_rec_interval: Option<Date> = None;
        let mut latest_rec_interval: Option<Date> = None;
        let relevant: Vec<_> = dose
            .preferable_intervals
            .iter()
            .filter(|i| i.effective.applies_on(at))
            .collect();
        for interval in &relevant {
            let Some(reference) = self.interval_reference(ctx, interval, None) else {
                continue;
            };
            let later = |acc: Option<Date>, d: Option<Duration>| match d.map(|d| reference.plus(d))
            {
                Some(x) => Some(acc.map_or(x, |a| a.max(x))),
                None => acc,
            };
            min_interval = later(min_interval, interval.min_int);
            earliest_rec_interval = later(earliest_rec_interval, interval.earliest_rec_int);
            latest_rec_interval = later(latest_rec_interval, interval.latest_rec_int);
        }
        let priority = !relevant.is_empty() && relevant.iter().all(|i| i.priority);

        // Latest conflict end date for the vaccines this dose would use.
        let forecast_types: Vec<u16> = {
            let flagged: Vec<u16> = dose
                .preferable_vaccines
                .iter()
                .filter(|v| v.forecast_vaccine_type)
                .map(|v| v.cvx)
                .collect();
            if flagged.is_empty() {
                dose.preferable_vaccines.iter().map(|v| v.cvx).collect()
            } else {
                flagged
            }
        };
        let mut conflict_end: Option<Date> = None;
        for c in ctx
            .data
            .live_virus_conflicts
            .iter()
            .filter(|c| forecast_types.contains(&c.current_cvx))
        {
            for (i, previous) in ctx.request.doses.iter().enumerate() {
                if previous.cvx == c.previous_cvx && previous.date <= at {
                    let end = previous.date.plus(self.conflict_end_interval(c, i));
                    conflict_end = Some(conflict_end.map_or(end, |e| e.max(end)));
                }
            }
        }
        let seasonal_start = dose.seasonal_recommendation.and_then(|s| s.start_date);
        let mut evaluated_latest: Option<Date> = None;
        for (record, evaluation) in self.records.iter().zip(&self.evaluations) {
            if evaluation.is_some_and(|e| e.target.is_some()) {
                evaluated_latest =
                    Some(evaluated_latest.map_or(record.date, |d| d.max(record.date)));
            }
        }
        let earliest = [
            min_age,
            min_interval,
            conflict_end,
            seasonal_start,
            evaluated_latest,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(ctx.dob);
        let unadjusted_recommended = earliest_rec_age
            .or(earliest_rec_interval)
            .unwrap_or(earliest);
        let unadjusted_past_due = latest_rec_age
            .or(latest_rec_interval)
            .map(|d| d.add_days(-1));
        Dates {
            earliest,
            unadjusted_recommended,
            unadjusted_past_due,
            latest: max_age_date.map(|d| d.add_days(-1)),
            max_age_date,
            priority,
        }
    }

    /// Chapter 7 for this series. Skipped target doses are recorded in the
    /// run (their status becomes `Skipped`).
    pub fn forecast(
        &mut self,
        antigen: &Antigen,
        ctx: &Context,
        completed_groups: &HashSet<String>,
    ) -> SeriesForecast {
        let prior = self.prior(None);
        // 7.1: skip at the assessment date.
        while self.current < self.targets.len() {
            let env = SkipEnv {
                dob: ctx.dob,
                reference_date: ctx.assessment,
                prior: &prior,
                completed_groups,
            };
            if !can_skip(self.series_dose(self.current), SkipPhase::Forecast, &env) {
                break;
            }
            self.targets[self.current].status = TargetStatus::Skipped;
            self.advance();
        }
        loop {
            // Table 7-10.
            if self.current >= self.targets.len() {
                return if self.satisfied_count() > 0 {
                    no_dates(SeriesStatus::Complete, Some(ForecastReason::SeriesComplete))
                } else {
                    no_dates(
                        SeriesStatus::NotRecommended,
                        Some(ForecastReason::NotRecommendedPastHistory),
                    )
                };
            }
            if has_immunity(antigen, ctx) {
                return no_dates(
                    SeriesStatus::Immune,
                    Some(ForecastReason::EvidenceOfImmunity),
                );
            }
            let dose = self.series_dose(self.current);
            let contraindicated = contraindicated_vaccines(antigen, ctx);
            if antigen_contraindicated(antigen, ctx)
                || all_preferable_contraindicated(self, &contraindicated)
            {
                return no_dates(
                    SeriesStatus::Contraindicated,
                    Some(ForecastReason::Contraindication),
                );
            }
            if dose
                .seasonal_recommendation
                .and_then(|s| s.end_date)
                .is_some_and(|end| ctx.assessment > end)
            {
                return no_dates(
                    SeriesStatus::NotRecommended,
                    Some(ForecastReason::PastSeasonalEnd),
                );
            }
            let dates = self.forecast_dates(ctx);
            if let Some(max) = dates.max_age_date {
                if ctx.assessment >= max {
                    return no_dates(
                        SeriesStatus::AgedOut,
                        Some(ForecastReason::ExceededMaximumAge),
                    );
                }
                if dates.earliest >= max {
                    return no_dates(SeriesStatus::AgedOut, Some(ForecastReason::UnableToFinish));
                }
            }
            // 7.6: would the dose be skipped by its earliest date?
            let env = SkipEnv {
                dob: ctx.dob,
                reference_date: dates.earliest,
                prior: &prior,
                completed_groups,
            };
            if can_skip(dose, SkipPhase::Forecast, &env) {
                self.targets[self.current].status = TargetStatus::Skipped;
                self.advance();
                continue;
            }
            let recommended = dates.unadjusted_recommended.max(dates.earliest);
            let past_due = dates.unadjusted_past_due.map(|d| d.max(dates.earliest));
            let recommended_vaccines = dose
                .preferable_vaccines
                .iter()
                .filter(|v| {
                    v.forecast_vaccine_type
                        && !contraindicated.contains(&v.cvx)
                        && (in_ages(ctx, v.begin_age, v.end_age, dates.earliest)
                            || in_ages(ctx, v.begin_age, v.end_age, recommended))
                })
                .map(|v| v.cvx)
                .collect();
            return SeriesForecast {
                status: SeriesStatus::NotComplete,
                reason: None,
                target_dose: Some(self.current as u32 + 1),
                forecast_dose_number: Some(self.forecast_dose_number()),
                earliest: Some(dates.earliest),
                recommended: Some(recommended),
                past_due,
                latest: dates.latest,
                unadjusted_recommended: Some(dates.unadjusted_recommended),
                unadjusted_past_due: dates.unadjusted_past_due,
                priority: dates.priority,
                recommended_vaccines,
            };
        }
    }

    /// The number of valid doses (SELECTB-21) and whether every evaluated
    /// dose is valid (SELECTB-2).
    pub fn all_valid(&self) -> bool {
        self.evaluations
            .iter()
            .flatten()
            .filter(|e| e.target.is_some())
            .all(|e| e.status == EvaluationStatus::Valid)
    }
}
