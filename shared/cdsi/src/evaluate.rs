//! Evaluate a relevant patient series (logic specification 4.4 and chapter
//! 6): walk the antigen administered records against the target doses,
//! checking in order the dose condition, conditional skip, inadvertent
//! vaccine, age, preferable then allowable intervals, live virus conflicts
//! and preferable/allowable vaccines; a satisfied recurring last target dose
//! makes a new one; records left after the last target dose are extraneous.

use std::collections::HashSet;

use crate::data::{AgeRule, Interval, IntervalFrom, Series, SeriesDose, SupportingData};
use crate::dates::{Date, Duration};
use crate::history::Record;
use crate::model::{AssessmentRequest, EvaluationReason, EvaluationStatus};
use crate::skip::{can_skip, SkipEnv, SkipPhase};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetStatus {
    NotSatisfied,
    Satisfied,
    Skipped,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct TargetDose {
    /// Index into `series.doses`.
    pub series_dose: usize,
    pub status: TargetStatus,
    /// The record (index into the antigen's records) that satisfied it.
    pub satisfied_by: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordEvaluation {
    pub status: EvaluationStatus,
    pub reason: Option<EvaluationReason>,
    /// Index into `targets` of the target dose it was evaluated against.
    pub target: Option<usize>,
    pub inadvertent: bool,
}

/// Everything shared by all series of one assessment.
pub(crate) struct Context<'a> {
    pub data: &'a SupportingData,
    pub request: &'a AssessmentRequest,
    pub dob: Date,
    pub assessment: Date,
}

/// One relevant patient series being evaluated.
pub(crate) struct SeriesRun<'a> {
    pub series: &'a Series,
    pub records: &'a [Record],
    pub evaluations: Vec<Option<RecordEvaluation>>,
    pub targets: Vec<TargetDose>,
    /// The first target dose not yet satisfied or skipped.
    pub current: usize,
}

/// The age rule in force on a date (RELEVANT-1/2).
pub(crate) fn age_rule(dose: &SeriesDose, on: Date) -> Option<&AgeRule> {
    dose.ages.iter().find(|a| a.effective.applies_on(on))
}

fn add_opt(date: Date, d: Option<Duration>) -> Option<Date> {
    d.map(|d| date.plus(d))
}

impl<'a> SeriesRun<'a> {
    pub fn new(series: &'a Series, records: &'a [Record]) -> SeriesRun<'a> {
        SeriesRun {
            series,
            records,
            evaluations: vec![None; records.len()],
            targets: (0..series.doses.len())
                .map(|i| TargetDose {
                    series_dose: i,
                    status: TargetStatus::NotSatisfied,
                    satisfied_by: None,
                })
                .collect(),
            current: 0,
        }
    }

    pub fn series_dose(&self, target: usize) -> &'a SeriesDose {
        &self.series.doses[self.targets[target].series_dose]
    }

    /// Records before `upto` (all records when `None`) with their status.
    pub fn prior(&self, upto: Option<usize>) -> Vec<(Record, Option<EvaluationStatus>)> {
        let end = upto.unwrap_or(self.records.len());
        self.records[..end]
            .iter()
            .zip(&self.evaluations)
            .map(|(r, e)| (*r, e.map(|e| e.status)))
            .collect()
    }

    /// After a target dose is satisfied or skipped: move on. A satisfied
    /// recurring target dose is followed by a new identical one (4.4 step
    /// 6; in 4.64 a recurring dose need not be the last, e.g. COVID-19's
    /// seasonal dose 1 comes before the 65+ dose 2). A skipped recurring
    /// dose does not recur: its skip conditions say no more is needed.
    pub(crate) fn advance(&mut self) {
        let t = self.current;
        if self.targets[t].status == TargetStatus::Satisfied && self.series_dose(t).recurring_dose {
            let series_dose = self.targets[t].series_dose;
            self.targets.insert(
                t + 1,
                TargetDose {
                    series_dose,
                    status: TargetStatus::NotSatisfied,
                    satisfied_by: None,
                },
            );
        }
        self.current += 1;
    }

    pub fn satisfied_count(&self) -> u32 {
        self.targets
            .iter()
            .filter(|t| t.status == TargetStatus::Satisfied)
            .count() as u32
    }

    /// The reference date of an interval (CALCDTINT-1, -2, -8, -9) for a
    /// dose at record `before` (or the forecast when `None`).
    pub fn interval_reference(
        &self,
        ctx: &Context,
        interval: &Interval,
        before: Option<usize>,
    ) -> Option<Date> {
        let end = before.unwrap_or(self.records.len());
        match &interval.from {
            IntervalFrom::Previous => (0..end).rev().find_map(|i| {
                let e = self.evaluations[i]?;
                (matches!(
                    e.status,
                    EvaluationStatus::Valid | EvaluationStatus::NotValid
                ) && !e.inadvertent)
                    .then_some(self.records[i].date)
            }),
            IntervalFrom::TargetDose(n) => {
                let t = self.targets.get((*n as usize).checked_sub(1)?)?;
                (t.status == TargetStatus::Satisfied)
                    .then(|| t.satisfied_by.map(|r| self.records[r].date))
                    .flatten()
            }
            IntervalFrom::MostRecent(types) => (0..end).rev().find_map(|i| {
                let inadvertent = self.evaluations[i].is_some_and(|e| e.inadvertent);
                (types.contains(&self.records[i].cvx) && !inadvertent)
                    .then_some(self.records[i].date)
            }),
            IntervalFrom::RelevantObservation(code) => ctx
                .request
                .patient
                .observations
                .iter()
                .filter(|o| o.code == *code)
                .filter_map(|o| o.date)
                .max(),
        }
    }

    /// Evaluate every record (Figure 4-6).
    pub fn evaluate(&mut self, ctx: &Context, completed_groups: &HashSet<String>) {
        let dob = ctx.dob;
        let doses = &ctx.request.doses;
        for r in 0..self.records.len() {
            let record = self.records[r];
            loop {
                if self.current >= self.targets.len() {
                    // 4.4 step 6b: no target dose left.
                    self.evaluations[r] = Some(RecordEvaluation {
                        status: EvaluationStatus::Extraneous,
                        reason: Some(EvaluationReason::SeriesAlreadyComplete),
                        target: None,
                        inadvertent: false,
                    });
                    break;
                }
                let t = self.current;
                let dose = self.series_dose(t);
                // 6.1 Evaluate dose administered condition.
                if doses[record.dose_index].sub_standard {
                    self.evaluations[r] = Some(RecordEvaluation {
                        status: EvaluationStatus::SubStandard,
                        reason: Some(EvaluationReason::SubStandard),
                        target: Some(t),
                        inadvertent: false,
                    });
                    break;
                }
                // 6.2 Evaluate conditional skip.
                let prior = self.prior(Some(r));
                let env = SkipEnv {
                    dob,
                    reference_date: record.date,
                    prior: &prior,
                    completed_groups,
                };
                if can_skip(dose, SkipPhase::Evaluation, &env) {
                    self.targets[t].status = TargetStatus::Skipped;
                    self.advance();
                    continue;
                }
                // 6.3 Evaluate for inadvertent vaccine.
                if dose.inadvertent_vaccines.contains(&record.cvx) {
                    self.evaluations[r] = Some(RecordEvaluation {
                        status: EvaluationStatus::NotValid,
                        reason: Some(EvaluationReason::Inadvertent),
                        target: Some(t),
                        inadvertent: true,
                    });
                    break;
                }
                let (status, reason) = self.evaluate_against(ctx, r, dose);
                self.evaluations[r] = Some(RecordEvaluation {
                    status,
                    reason,
                    target: Some(t),
                    inadvertent: false,
                });
                if status == EvaluationStatus::Valid {
                    self.targets[t].status = TargetStatus::Satisfied;
                    self.targets[t].satisfied_by = Some(r);
                    self.advance();
                }
                break;
            }
        }
    }

    /// 6.4 – 6.10 for one record against one target dose.
    fn evaluate_against(
        &self,
        ctx: &Context,
        r: usize,
        dose: &SeriesDose,
    ) -> (EvaluationStatus, Option<EvaluationReason>) {
        let record = self.records[r];
        let date = record.date;
        let dob = ctx.dob;
        let mut grace = false;

        // 6.4 Evaluate age.
        if let Some(age) = age_rule(dose, date) {
            if add_opt(dob, age.abs_min_age).is_some_and(|d| date < d) {
                return (EvaluationStatus::NotValid, Some(EvaluationReason::TooYoung));
            }
            if add_opt(dob, age.max_age).is_some_and(|d| date >= d) {
                return (EvaluationStatus::Extraneous, Some(EvaluationReason::TooOld));
            }
            if add_opt(dob, age.min_age).is_some_and(|d| date < d) {
                grace = true;
            }
        }

        // 6.5 Evaluate preferable interval; 6.6 allowable interval.
        let preferable = self.intervals_satisfied(ctx, r, &dose.preferable_intervals, true);
        let interval_ok = match preferable {
            IntervalOutcome::Satisfied { grace: g } => {
                grace |= g;
                true
            }
            IntervalOutcome::TooSoon => matches!(
                self.intervals_satisfied(ctx, r, &dose.allowable_intervals, false),
                IntervalOutcome::Satisfied { .. }
            ),
        };
        if !interval_ok {
            return (EvaluationStatus::NotValid, Some(EvaluationReason::TooSoon));
        }

        // 6.7 Evaluate vaccine conflict.
        if self.in_live_virus_conflict(ctx, r) {
            return (
                EvaluationStatus::NotValid,
                Some(EvaluationReason::LiveVirusConflict),
            );
        }

        // 6.8 / 6.9 Preferable or allowable vaccine.
        let in_ages = |begin: Option<Duration>, end: Option<Duration>| {
            add_opt(dob, begin).is_none_or(|d| d <= date)
                && add_opt(dob, end).is_none_or(|d| date < d)
        };
        let mvx = ctx.request.doses[record.dose_index].mvx.as_deref();
        let preferable_vaccine = dose.preferable_vaccines.iter().any(|v| {
            v.cvx == record.cvx
                && in_ages(v.begin_age, v.end_age)
                && match (&v.mvx, mvx) {
                    (Some(want), Some(got)) => want.eq_ignore_ascii_case(got.trim()),
                    // An unspecified manufacturer is not held against the dose.
                    _ => true,
                }
        });
        let allowable_vaccine = dose
            .allowable_vaccines
            .iter()
            .any(|v| v.cvx == record.cvx && in_ages(v.begin_age, v.end_age));
        if !(preferable_vaccine || allowable_vaccine) {
            return (
                EvaluationStatus::NotValid,
                Some(EvaluationReason::NotPreferableOrAllowable),
            );
        }

        // 6.10 Satisfy target dose.
        (
            EvaluationStatus::Valid,
            grace.then_some(EvaluationReason::GracePeriod),
        )
    }

    /// Tables 6-18 and 6-21: all relevant intervals with a reference date
    /// must be met. Without any relevant allowable interval the allowable
    /// check fails (6.6: "to avoid a false validation").
    fn intervals_satisfied(
        &self,
        ctx: &Context,
        r: usize,
        intervals: &[Interval],
        preferable: bool,
    ) -> IntervalOutcome {
        let date = self.records[r].date;
        let mut grace = false;
        let mut relevant = 0;
        for interval in intervals.iter().filter(|i| i.effective.applies_on(date)) {
            relevant += 1;
            let Some(reference) = self.interval_reference(ctx, interval, Some(r)) else {
                continue;
            };
            if add_opt(reference, interval.abs_min_int).is_some_and(|d| date < d) {
                return IntervalOutcome::TooSoon;
            }
            if add_opt(reference, interval.min_int).is_some_and(|d| date < d) {
                grace = true;
            }
        }
        if !preferable && relevant == 0 {
            return IntervalOutcome::TooSoon;
        }
        IntervalOutcome::Satisfied { grace }
    }

    /// CONFLICT-3 against every earlier dose of the patient, whatever its
    /// antigen.
    fn in_live_virus_conflict(&self, ctx: &Context, r: usize) -> bool {
        let record = self.records[r];
        ctx.data
            .live_virus_conflicts
            .iter()
            .filter(|c| c.current_cvx == record.cvx)
            .any(|c| {
                ctx.request.doses.iter().enumerate().any(|(i, previous)| {
                    if previous.cvx != c.previous_cvx || previous.date >= record.date {
                        return false;
                    }
                    let begin = previous.date.plus(c.conflict_begin_interval);
                    let end = previous.date.plus(self.conflict_end_interval(c, i));
                    begin <= record.date && record.date < end
                })
            })
    }

    /// CALCDTCONFLICT-2: the shorter end when the conflicting dose is valid
    /// (or was not evaluated here), the longer one otherwise.
    pub fn conflict_end_interval(
        &self,
        conflict: &crate::data::LiveVirusConflict,
        dose_index: usize,
    ) -> Duration {
        let status = self
            .records
            .iter()
            .position(|rec| rec.dose_index == dose_index)
            .and_then(|p| self.evaluations[p])
            .map(|e| e.status);
        match status {
            None | Some(EvaluationStatus::Valid) => conflict.min_conflict_end_interval,
            Some(_) => conflict.conflict_end_interval,
        }
    }
}

enum IntervalOutcome {
    Satisfied { grace: bool },
    TooSoon,
}
