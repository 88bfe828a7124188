//! Conditional skip (logic specification 6.2, used again by 7.1 and 7.6):
//! may a target dose be skipped because of the patient's age, an interval,
//! a completed series or a count of earlier doses?

use std::collections::HashSet;

use crate::data::{
    ConditionType, ConditionalSkip, DoseCountLogic, DoseType, Logic, SeriesDose, SkipCondition,
};
use crate::dates::Date;
use crate::history::Record;
use crate::model::EvaluationStatus;

/// Which conditional skip instances apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SkipPhase {
    Evaluation,
    Forecast,
}

/// What a condition may look at.
pub(crate) struct SkipEnv<'a> {
    pub dob: Date,
    /// CONDSKIP-2: the date administered (evaluation), the assessment date
    /// (forecast) or the earliest date (validating a forecast).
    pub reference_date: Date,
    /// The antigen's records that come before the reference point, with
    /// their evaluation status in this series so far.
    pub prior: &'a [(Record, Option<EvaluationStatus>)],
    /// Series groups of this antigen with a complete relevant series.
    pub completed_groups: &'a HashSet<String>,
}

fn condition_met(c: &SkipCondition, env: &SkipEnv) -> bool {
    let dob = env.dob;
    let in_ages = |d: Date| {
        c.begin_age.is_none_or(|a| dob.plus(a) <= d) && c.end_age.is_none_or(|a| d < dob.plus(a))
    };
    match c.condition_type {
        ConditionType::Age => in_ages(env.reference_date),
        ConditionType::CompletedSeries => c
            .series_groups
            .iter()
            .any(|g| env.completed_groups.contains(g)),
        ConditionType::Interval => match (env.prior.last(), c.interval) {
            // CALCDTSKIP-5: from the immediate previous dose administered.
            (Some((previous, _)), Some(interval)) => {
                env.reference_date >= previous.date.plus(interval)
            }
            _ => false,
        },
        ConditionType::VaccineCount => {
            // CONDSKIP-1
            let count = env
                .prior
                .iter()
                .filter(|(r, status)| {
                    (c.vaccine_types.is_empty() || c.vaccine_types.contains(&r.cvx))
                        && in_ages(r.date)
                        && c.start_date.is_none_or(|s| s <= r.date)
                        && c.end_date.is_none_or(|e| r.date < e)
                        && match c.dose_type {
                            DoseType::Total => true,
                            DoseType::Valid => *status == Some(EvaluationStatus::Valid),
                        }
                })
                .count() as u32;
            match c.dose_count_logic {
                DoseCountLogic::GreaterThan => count > c.dose_count,
                DoseCountLogic::Equal => count == c.dose_count,
                DoseCountLogic::LessThan => count < c.dose_count,
            }
        }
    }
}

fn combine(logic: Logic, met: usize, total: usize) -> bool {
    match logic {
        Logic::And => total > 0 && met == total,
        Logic::Or => met > 0,
    }
}

fn skip_met(skip: &ConditionalSkip, env: &SkipEnv) -> bool {
    let sets: Vec<_> = skip
        .sets
        .iter()
        .filter(|s| s.effective.applies_on(env.reference_date))
        .collect();
    let met = sets
        .iter()
        .filter(|set| {
            let met = set
                .conditions
                .iter()
                .filter(|c| condition_met(c, env))
                .count();
            combine(set.condition_logic, met, set.conditions.len())
        })
        .count();
    combine(skip.set_logic, met, sets.len())
}

/// Table 6-11: can the target dose be skipped?
pub(crate) fn can_skip(dose: &SeriesDose, phase: SkipPhase, env: &SkipEnv) -> bool {
    dose.conditional_skips.iter().any(|skip| {
        let applies = match phase {
            SkipPhase::Evaluation => skip.context.applies_to_evaluation(),
            SkipPhase::Forecast => skip.context.applies_to_forecast(),
        };
        applies && skip_met(skip, env)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Effective, SkipContext, SkipSet};
    use crate::dates::Duration;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    fn cond(condition_type: ConditionType) -> SkipCondition {
        SkipCondition {
            condition_type,
            start_date: None,
            end_date: None,
            begin_age: None,
            end_age: None,
            interval: None,
            dose_count: 0,
            dose_type: DoseType::Total,
            dose_count_logic: DoseCountLogic::GreaterThan,
            vaccine_types: vec![],
            series_groups: vec![],
        }
    }

    fn dose_with(skips: Vec<ConditionalSkip>) -> SeriesDose {
        SeriesDose {
            dose_number: 1,
            ages: vec![],
            preferable_intervals: vec![],
            allowable_intervals: vec![],
            preferable_vaccines: vec![],
            allowable_vaccines: vec![],
            inadvertent_vaccines: vec![],
            conditional_skips: skips,
            recurring_dose: false,
            seasonal_recommendation: None,
        }
    }

    fn set(logic: Logic, conditions: Vec<SkipCondition>) -> SkipSet {
        SkipSet {
            id: "1".into(),
            description: String::new(),
            effective: Effective::default(),
            condition_logic: logic,
            conditions,
        }
    }

    #[test]
    fn age_condition_uses_the_reference_date() {
        let mut age = cond(ConditionType::Age);
        age.begin_age = Duration::parse("7 years").unwrap();
        let dose = dose_with(vec![ConditionalSkip {
            context: SkipContext::Evaluation,
            set_logic: Logic::Or,
            sets: vec![set(Logic::And, vec![age])],
        }]);
        let groups = HashSet::new();
        let env = |reference_date| SkipEnv {
            dob: d("2010-05-31"),
            reference_date,
            prior: &[],
            completed_groups: &groups,
        };
        assert!(can_skip(
            &dose,
            SkipPhase::Evaluation,
            &env(d("2017-05-31"))
        ));
        assert!(!can_skip(
            &dose,
            SkipPhase::Evaluation,
            &env(d("2017-05-30"))
        ));
        // An evaluation-only skip does not apply to the forecast.
        assert!(!can_skip(&dose, SkipPhase::Forecast, &env(d("2020-01-01"))));
    }

    #[test]
    fn counts_interval_and_set_logic() {
        let records = [
            (
                Record {
                    dose_index: 0,
                    date: d("2020-01-01"),
                    cvx: 20,
                },
                Some(EvaluationStatus::Valid),
            ),
            (
                Record {
                    dose_index: 1,
                    date: d("2020-03-01"),
                    cvx: 20,
                },
                Some(EvaluationStatus::NotValid),
            ),
        ];
        let mut two_valid = cond(ConditionType::VaccineCount);
        two_valid.dose_count = 1;
        two_valid.dose_type = DoseType::Valid;
        let mut total_gt_one = two_valid.clone();
        total_gt_one.dose_type = DoseType::Total;
        let mut interval = cond(ConditionType::Interval);
        interval.interval = Duration::parse("6 months").unwrap();

        let groups = HashSet::new();
        let env = |reference_date| SkipEnv {
            dob: d("2019-01-01"),
            reference_date,
            prior: &records,
            completed_groups: &groups,
        };
        let skip = |logic, conditions| {
            dose_with(vec![ConditionalSkip {
                context: SkipContext::Both,
                set_logic: Logic::Or,
                sets: vec![set(logic, conditions)],
            }])
        };
        // One valid dose is not "greater than 1"; two total doses are.
        assert!(!can_skip(
            &skip(Logic::And, vec![two_valid.clone()]),
            SkipPhase::Forecast,
            &env(d("2021-01-01"))
        ));
        assert!(can_skip(
            &skip(Logic::And, vec![total_gt_one.clone()]),
            SkipPhase::Forecast,
            &env(d("2021-01-01"))
        ));
        // The interval counts from the previous dose (2020-03-01).
        assert!(can_skip(
            &skip(Logic::And, vec![interval.clone()]),
            SkipPhase::Forecast,
            &env(d("2020-09-01"))
        ));
        assert!(!can_skip(
            &skip(Logic::And, vec![interval.clone()]),
            SkipPhase::Forecast,
            &env(d("2020-08-31"))
        ));
        // AND needs every condition, OR one.
        assert!(!can_skip(
            &skip(Logic::And, vec![total_gt_one.clone(), two_valid.clone()]),
            SkipPhase::Forecast,
            &env(d("2021-01-01"))
        ));
        assert!(can_skip(
            &skip(Logic::Or, vec![total_gt_one, two_valid]),
            SkipPhase::Forecast,
            &env(d("2021-01-01"))
        ));
    }
}
