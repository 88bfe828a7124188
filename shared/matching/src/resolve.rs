//! What a match outcome means for the persons the registry holds, once the
//! standing of each candidate person is known: link, create, and which
//! provisional persons the same record proves to be one person (the review
//! queue emptying itself). Pure: the registry and the in-memory linker both
//! apply it.

use crate::score::{Decision, Grade};
use crate::Outcome;

/// Where a person stands in the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Decided: created on evidence, linked certainly, or confirmed by a
    /// reviewer. Never merged into anyone without a reviewer.
    Active,
    /// Created from a possible match and waiting for review (or for
    /// evidence that decides it).
    Provisional,
}

/// What to do with one incoming record.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolution<P> {
    /// A new person: active when nobody came close, provisional (flagged
    /// against `flagged`) when the evidence could not decide.
    NewPerson { provisional: bool, flagged: Vec<P> },
    /// The record is `person`'s. `absorbed` are provisional persons the
    /// record is certainly also: the same child, held apart only because
    /// their own records could not decide; they merge into `person`.
    Link { person: P, absorbed: Vec<P> },
}

/// Decides from an outcome ([`crate::Matcher::choose`]) and each candidate
/// person's standing:
///
/// * one person certain: link;
/// * several certain, at most one of them active: link to the active one
///   (or the best) and absorb the provisional others, which this record
///   shows to be the same child;
/// * several active persons certain: the registry holds them apart on
///   evidence, so a person must look: a new provisional person flagged
///   against every candidate;
/// * nobody certain: a new person, provisional if anyone was possible.
pub fn resolve<P: Clone + PartialEq>(
    outcome: &Outcome<P>,
    standing: impl Fn(&P) -> Standing,
) -> Resolution<P> {
    let certain: Vec<&(P, Decision)> = outcome
        .candidates
        .iter()
        .filter(|(_, d)| d.grade == Grade::Certain)
        .collect();
    let flagged = || outcome.candidates.iter().map(|(p, _)| p.clone()).collect();
    if certain.is_empty() {
        return Resolution::NewPerson {
            provisional: !outcome.candidates.is_empty(),
            flagged: flagged(),
        };
    }
    let active: Vec<&P> = certain
        .iter()
        .map(|(p, _)| p)
        .filter(|p| standing(p) == Standing::Active)
        .collect();
    let person = match active.as_slice() {
        [] => certain[0].0.clone(),
        [one] => (*one).clone(),
        _ => {
            return Resolution::NewPerson {
                provisional: true,
                flagged: flagged(),
            }
        }
    };
    let absorbed = certain
        .iter()
        .map(|(p, _)| p.clone())
        .filter(|p| *p != person)
        .collect();
    Resolution::Link { person, absorbed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::Explanation;

    fn decision(grade: Grade, score: f64) -> Decision {
        Decision {
            grade,
            score,
            explanation: Explanation {
                config: "t".into(),
                score,
                uncapped: grade,
                fields: Vec::new(),
                vetoes: Vec::new(),
                compared: 4,
            },
        }
    }

    fn outcome(candidates: Vec<(u32, Grade, f64)>) -> Outcome<u32> {
        Outcome {
            grade: Grade::None,
            person: None,
            candidates: candidates
                .into_iter()
                .map(|(p, g, s)| (p, decision(g, s)))
                .collect(),
            compared: 0,
        }
    }

    #[test]
    fn one_certain_person_links() {
        let o = outcome(vec![(1, Grade::Certain, 40.0), (2, Grade::Possible, 12.0)]);
        assert_eq!(
            resolve(&o, |_| Standing::Active),
            Resolution::Link {
                person: 1,
                absorbed: vec![]
            }
        );
    }

    #[test]
    fn a_record_certain_with_a_provisional_person_too_merges_it() {
        let o = outcome(vec![(2, Grade::Certain, 41.0), (1, Grade::Certain, 40.0)]);
        let standing = |p: &u32| {
            if *p == 2 {
                Standing::Provisional
            } else {
                Standing::Active
            }
        };
        assert_eq!(
            resolve(&o, standing),
            Resolution::Link {
                person: 1,
                absorbed: vec![2]
            }
        );
    }

    #[test]
    fn two_active_persons_certain_go_to_a_reviewer() {
        let o = outcome(vec![(2, Grade::Certain, 41.0), (1, Grade::Certain, 40.0)]);
        assert_eq!(
            resolve(&o, |_| Standing::Active),
            Resolution::NewPerson {
                provisional: true,
                flagged: vec![2, 1]
            }
        );
    }

    #[test]
    fn nobody_certain_is_a_new_person() {
        assert_eq!(
            resolve(&outcome(vec![]), |_| Standing::Active),
            Resolution::NewPerson {
                provisional: false,
                flagged: vec![]
            }
        );
        assert_eq!(
            resolve(&outcome(vec![(3, Grade::Possible, 15.0)]), |_| {
                Standing::Active
            }),
            Resolution::NewPerson {
                provisional: true,
                flagged: vec![3]
            }
        );
    }
}
