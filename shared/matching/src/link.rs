//! Find-or-create over the in-memory index: every record either joins the
//! one person it is certainly, or becomes a new person (provisional, with
//! its potential duplicates, when the best it got was possible).

use serde::Serialize;

use crate::index::MemoryIndex;
use crate::normalize::MatchRecord;
use crate::{Grade, Matcher, PatientRecord};

/// Where one record went.
#[derive(Clone, Debug, Serialize)]
pub struct Linked {
    pub person: u32,
    /// certain: joined an existing person; possible: a new provisional
    /// person flagged against `possible`; none: a new person.
    pub grade: Grade,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub possible: Vec<PossibleDuplicate>,
    /// Score against the person joined, or the best candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Candidate records compared and blocks skipped as oversized.
    pub compared: usize,
    pub skipped_blocks: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct PossibleDuplicate {
    pub person: u32,
    pub score: f64,
}

#[derive(Debug)]
pub struct Linker {
    matcher: Matcher,
    index: MemoryIndex,
    persons: u32,
}

impl Linker {
    pub fn new(matcher: Matcher) -> Linker {
        let index = MemoryIndex::for_config(&matcher.config().blocking);
        Linker {
            matcher,
            index,
            persons: 0,
        }
    }

    pub fn index(&self) -> &MemoryIndex {
        &self.index
    }

    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    pub fn link(&mut self, record: &PatientRecord) -> Linked {
        let probe = self.matcher.normalize(record);
        self.link_normalized(probe)
    }

    pub fn link_normalized(&mut self, probe: MatchRecord) -> Linked {
        let found = self.index.find(&self.matcher, &probe);
        let (lookup, outcome) = (found.lookup, found.outcome);
        let score = outcome.candidates.first().map(|(_, d)| d.score);
        let (person, possible) = match outcome.person {
            Some(person) => (person, Vec::new()),
            None => {
                self.persons += 1;
                let possible = outcome
                    .candidates
                    .iter()
                    .map(|(p, d)| PossibleDuplicate {
                        person: *p,
                        score: d.score,
                    })
                    .collect();
                (self.persons, possible)
            }
        };
        self.index.insert(person, probe);
        Linked {
            person,
            grade: outcome.grade,
            possible,
            score,
            compared: outcome.compared,
            skipped_blocks: lookup.skipped.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(id: &str, given: &str, dob: &str, mrn: &str) -> PatientRecord {
        PatientRecord {
            id: id.into(),
            given: Some(given.into()),
            family: Some("Okafor".into()),
            birth_date: Some(dob.into()),
            sex: Some("F".into()),
            phone: Some("517-555-0142".into()),
            street: Some("12 Elm St".into()),
            zip: Some("48910".into()),
            mothers_maiden_family: Some("Bello".into()),
            guardian_given: Some("Ada".into()),
            guardian_family: Some("Okafor".into()),
            identifiers: vec![crate::RecordIdentifier {
                system: "CLINIC1".into(),
                kind: "MR".into(),
                value: mrn.into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn same_child_twice_is_one_person_and_twins_are_two() {
        let mut l = Linker::new(Matcher::default());
        let first = l.link(&child("1", "Chioma", "2024-02-03", "A100"));
        assert_eq!(first.grade, Grade::None);
        let again = l.link(&PatientRecord {
            identifiers: vec![],
            ..child("2", "Chioma", "2024-02-03", "")
        });
        assert_eq!((again.grade, again.person), (Grade::Certain, first.person));
        let twin = l.link(&child("3", "Adaeze", "2024-02-03", "A101"));
        assert_ne!(twin.person, first.person);
        assert_ne!(twin.grade, Grade::Certain);
    }

    #[test]
    fn a_younger_sibling_named_after_the_older_ones_middle_name_is_not_merged() {
        let mut l = Linker::new(Matcher::default());
        let older = PatientRecord {
            middle: Some("Veronica".into()),
            ..child("1", "Presdeara", "2007-06-02", "A100")
        };
        let first = l.link(&older);
        let newborn = child("2", "Veronica", "2025-01-15", "A200");
        let second = l.link(&newborn);
        assert_ne!(second.person, first.person);
        assert_ne!(second.grade, Grade::Certain);
    }

    #[test]
    fn a_name_without_a_birth_date_never_links() {
        let mut l = Linker::new(Matcher::default());
        let first = l.link(&child("1", "Chioma", "2024-02-03", "A100"));
        let bare = PatientRecord {
            id: "2".into(),
            given: Some("Chioma".into()),
            family: Some("Okafor".into()),
            ..Default::default()
        };
        let second = l.link(&bare);
        assert_ne!(second.person, first.person);
        assert_eq!(second.grade, Grade::None);
    }
}
