//! Select the best patient series of an antigen (logic specification
//! chapter 8): per series group pre-filter the scorable series, take an
//! obvious prioritized series when there is one, otherwise classify and
//! score (complete, in-process or no valid doses), break ties on series
//! preference; then keep the prioritized series that equivalent groups do
//! not make redundant.

use std::collections::BTreeMap;

use crate::data::{Series, SeriesType};
use crate::dates::Date;
use crate::model::{SeriesForecast, SeriesStatus};

/// An evaluated and forecast relevant patient series, as selection sees it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate<'a> {
    pub series: &'a Series,
    pub forecast: SeriesForecast,
    /// SELECTB-21
    pub valid_doses: u32,
    /// SELECTB-2
    pub all_valid: bool,
    /// The earliest valid dose's date.
    pub first_valid: Option<Date>,
    /// SELECTB-12: the forecast finish date.
    pub finish: Option<Date>,
    /// Target doses still to give (SELECTB-5): the current one and those
    /// after it that no forecast skip condition could drop.
    pub remaining: u32,
    /// The maximum age date of the last target dose.
    pub last_max_age: Option<Date>,
    /// The date the series could start (no valid doses): the forecast's
    /// earliest date.
    pub start: Option<Date>,
    pub dob: Date,
    pub assessment: Date,
}

impl Candidate<'_> {
    fn complete(&self) -> bool {
        self.forecast.status == SeriesStatus::Complete
    }
    /// SELECTB-16
    fn in_process(&self) -> bool {
        self.valid_doses > 0 && self.forecast.status == SeriesStatus::NotComplete
    }
    /// SELECTB-3
    fn completable(&self) -> bool {
        match (self.finish, self.last_max_age) {
            (Some(finish), Some(max)) => finish < max,
            (Some(_), None) => true,
            (None, _) => self.complete(),
        }
    }
    fn product_all_valid(&self) -> bool {
        self.series.product_path && self.all_valid && self.valid_doses > 0
    }
}

/// Points for one condition (Tables 8-7, 8-9, 8-11): a comparative
/// condition true for several series scores `tie`; an absolute one scores
/// `yes` for each series it holds for.
fn award(scores: &mut [i32], holds: &[bool], yes: i32, tie: i32, no: i32, comparative: bool) {
    let count = holds.iter().filter(|h| **h).count();
    for (score, &h) in scores.iter_mut().zip(holds) {
        *score += if !h {
            no
        } else if comparative && count > 1 {
            tie
        } else {
            yes
        };
    }
}

fn most<T: Ord + Copy>(values: &[T]) -> Vec<bool> {
    let best = values.iter().copied().max();
    values.iter().map(|v| Some(*v) == best).collect()
}

fn least_some<T: Ord + Copy>(values: &[Option<T>]) -> Vec<bool> {
    let best = values.iter().flatten().copied().min();
    values.iter().map(|v| v.is_some() && *v == best).collect()
}

fn score_and_pick(group: &[&Candidate], scored: Vec<usize>, kind: Kind) -> usize {
    let cands: Vec<&Candidate> = scored.iter().map(|&i| group[i]).collect();
    let mut scores = vec![0i32; cands.len()];
    let valid: Vec<u32> = cands.iter().map(|c| c.valid_doses).collect();
    match kind {
        Kind::Complete => {
            award(&mut scores, &most(&valid), 1, 0, -1, true);
        }
        Kind::InProcess => {
            let product: Vec<bool> = cands.iter().map(|c| c.product_all_valid()).collect();
            award(&mut scores, &product, 2, 2, -2, false);
            let completable: Vec<bool> = cands.iter().map(|c| c.completable()).collect();
            award(&mut scores, &completable, 3, 3, -3, false);
            award(&mut scores, &most(&valid), 2, 0, -2, true);
            // SELECTB-5: fewest not satisfied target doses.
            let remaining: Vec<Option<u32>> = cands.iter().map(|c| Some(c.remaining)).collect();
            award(&mut scores, &least_some(&remaining), 2, 0, -2, true);
            // SELECTB-11: completable and finishing first.
            let finish: Vec<Option<Date>> = cands
                .iter()
                .map(|c| if c.completable() { c.finish } else { None })
                .collect();
            award(&mut scores, &least_some(&finish), 1, 0, -1, true);
        }
        Kind::NoValidDoses => {
            let start: Vec<Option<Date>> = cands.iter().map(|c| c.start).collect();
            award(&mut scores, &least_some(&start), 1, 0, -1, true);
            let completable: Vec<bool> = cands.iter().map(|c| c.completable()).collect();
            award(&mut scores, &completable, 1, 1, -1, false);
            let product: Vec<bool> = cands.iter().map(|c| c.series.product_path).collect();
            award(&mut scores, &product, -1, -1, 1, false);
        }
    }
    // SELECTBEST-2: highest score, then best series preference.
    let mut best = 0;
    for i in 1..cands.len() {
        let better = scores[i] > scores[best]
            || (scores[i] == scores[best]
                && cands[i].series.series_preference < cands[best].series.series_preference);
        if better {
            best = i;
        }
    }
    scored[best]
}

#[derive(Clone, Copy)]
enum Kind {
    Complete,
    InProcess,
    NoValidDoses,
}

/// Pre-filter (8.1), prioritize (8.2) and classify/score (8.3–8.7) one
/// series group; returns the index (into `group`) of its prioritized series.
fn prioritized(group: &[&Candidate]) -> Option<usize> {
    // SELECTB-24
    let all_contraindicated = group
        .iter()
        .all(|c| c.forecast.status == SeriesStatus::Contraindicated);
    // A series the patient is still too young to start, with nothing
    // valid in it yet, is not a path for this patient today (e.g. the 50+
    // pneumococcal series for a child).
    let too_young = |c: &Candidate| {
        c.valid_doses == 0
            && c.series
                .min_age_to_start
                .is_some_and(|m| c.assessment < c.dob.plus(m))
    };
    let candidate = |c: &Candidate| {
        !too_young(c) && (c.forecast.status != SeriesStatus::Contraindicated || all_contraindicated)
    };
    let best_priority = group
        .iter()
        .map(|c| c.series.series_priority.as_str())
        .min();
    let none_valid = group.iter().all(|c| c.valid_doses == 0);
    let default = group
        .iter()
        .position(|c| c.series.default_series && !too_young(c));
    // SELECTSCORE-2
    let scorable: Vec<usize> = (0..group.len())
        .filter(|&i| {
            let c = group[i];
            if !candidate(c) {
                return false;
            }
            match c.series.series_type {
                SeriesType::Risk => Some(c.series.series_priority.as_str()) == best_priority,
                SeriesType::Standard => {
                    let started_in_time = c.valid_doses > 0
                        && match (c.first_valid, c.series.max_age_to_start) {
                            (Some(first), Some(max)) => first < c.dob.plus(max),
                            _ => true,
                        };
                    started_in_time || (none_valid && default.is_none())
                }
                SeriesType::EvaluationOnly => c.complete(),
            }
        })
        .collect();

    // Table 8-3.
    let complete: Vec<usize> = scorable
        .iter()
        .copied()
        .filter(|&i| group[i].complete())
        .collect();
    let in_process: Vec<usize> = scorable
        .iter()
        .copied()
        .filter(|&i| group[i].in_process())
        .collect();
    match scorable.len() {
        0 => return default,
        1 => return Some(scorable[0]),
        _ => {}
    }
    if complete.len() == 1 {
        return Some(complete[0]);
    }
    if complete.is_empty() && in_process.len() == 1 {
        return Some(in_process[0]);
    }
    if complete.is_empty() && in_process.is_empty() {
        if let Some(d) = default {
            return Some(d);
        }
    }
    // Table 8-5.
    let (scored, kind) = if complete.len() >= 2 {
        (complete, Kind::Complete)
    } else if in_process.len() >= 2 {
        (in_process, Kind::InProcess)
    } else {
        let zero: Vec<usize> = scorable
            .iter()
            .copied()
            .filter(|&i| group[i].valid_doses == 0)
            .collect();
        if zero.is_empty() {
            (scorable, Kind::InProcess)
        } else {
            (zero, Kind::NoValidDoses)
        }
    };
    Some(score_and_pick(group, scored, kind))
}

/// Chapter 8 for one antigen: indices (into `candidates`) of the best
/// patient series.
pub(crate) fn best_series(candidates: &[Candidate]) -> Vec<usize> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, c) in candidates.iter().enumerate() {
        groups
            .entry(c.series.series_group.as_str())
            .or_default()
            .push(i);
    }
    let mut prioritized_by_group: Vec<(&str, usize)> = Vec::new();
    for (name, members) in &groups {
        let group: Vec<&Candidate> = members.iter().map(|&i| &candidates[i]).collect();
        if let Some(p) = prioritized(&group) {
            prioritized_by_group.push((name, members[p]));
        }
    }
    // Table 8-14.
    let mut best = Vec::new();
    for &(_, p) in &prioritized_by_group {
        let c = &candidates[p];
        let equivalent = |other: &Candidate| {
            c.series
                .equivalent_series_groups
                .iter()
                .any(|g| g == &other.series.series_group)
        };
        let others: Vec<&Candidate> = prioritized_by_group
            .iter()
            .filter(|&&(_, o)| o != p)
            .map(|&(_, o)| &candidates[o])
            .filter(|o| equivalent(o))
            .collect();
        let is_best = if c.complete() {
            true
        } else if others.iter().any(|o| o.complete())
            || c.series.series_type == SeriesType::EvaluationOnly
        {
            false
        } else if c.series.series_type == SeriesType::Risk {
            true
        } else {
            !others
                .iter()
                .any(|o| o.series.series_type == SeriesType::Risk)
        };
        if is_best {
            best.push(p);
        }
    }
    best
}
