//! Find-or-create over the in-memory index, as the registry decides: every
//! record joins the one person it certainly is, or becomes a new person
//! (provisional, flagged against its potential duplicates, when the best it
//! got was possible). Later records decide provisional persons the way the
//! registry's review queue empties itself ([`crate::resolve`]): a record
//! certainly both a provisional person and another merges them; a record
//! certainly a provisional person and certainly not its flagged partner
//! separates them, and a provisional person left with no partner is active.

use serde::Serialize;

use crate::index::MemoryIndex;
use crate::normalize::MatchRecord;
use crate::resolve::{resolve, Resolution, Standing};
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
    /// Provisional persons this record showed to be the person it joined.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PossibleDuplicate {
    pub person: u32,
    pub score: f64,
}

#[derive(Clone, Debug)]
struct PersonState {
    standing: Standing,
    merged_into: Option<u32>,
    /// Index positions of the person's records.
    records: Vec<u32>,
    /// Potential duplicates still flagged.
    flagged: Vec<u32>,
}

/// How the linker's persons stand after the records so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Queue {
    /// Provisional persons still waiting for a reviewer.
    pub waiting: usize,
    /// Provisional persons merged into another by a later record.
    pub merged: usize,
    /// Provisional persons a later record showed to be nobody else.
    pub confirmed: usize,
}

#[derive(Debug)]
pub struct Linker {
    matcher: Matcher,
    index: MemoryIndex,
    /// By person id; id 0 is unused.
    persons: Vec<PersonState>,
    queue: Queue,
}

impl Linker {
    pub fn new(matcher: Matcher) -> Linker {
        let index = MemoryIndex::for_config(&matcher.config().blocking);
        Linker {
            matcher,
            index,
            persons: vec![PersonState {
                standing: Standing::Active,
                merged_into: None,
                records: Vec::new(),
                flagged: Vec::new(),
            }],
            queue: Queue::default(),
        }
    }

    pub fn index(&self) -> &MemoryIndex {
        &self.index
    }

    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// The person a person id stands for now (itself, or the one it was
    /// merged into).
    pub fn person_now(&self, mut person: u32) -> u32 {
        while let Some(into) = self
            .persons
            .get(person as usize)
            .and_then(|p| p.merged_into)
        {
            person = into;
        }
        person
    }

    /// The review queue's state.
    pub fn queue(&self) -> Queue {
        self.queue
    }

    pub fn link(&mut self, record: &PatientRecord) -> Linked {
        let probe = self.matcher.normalize(record);
        self.link_normalized(probe)
    }

    fn standing(&self, person: u32) -> Standing {
        self.persons
            .get(person as usize)
            .map_or(Standing::Active, |p| p.standing)
    }

    fn new_person(&mut self, standing: Standing, flagged: Vec<u32>) -> u32 {
        let id = self.persons.len() as u32;
        for other in &flagged {
            if let Some(o) = self.persons.get_mut(*other as usize) {
                o.flagged.push(id);
            }
        }
        self.persons.push(PersonState {
            standing,
            merged_into: None,
            records: Vec::new(),
            flagged,
        });
        if standing == Standing::Provisional {
            self.queue.waiting += 1;
        }
        id
    }

    /// Merges provisional person `from` into `into`: its records, and its
    /// flags on others, become `into`'s.
    fn absorb(&mut self, from: u32, into: u32) {
        let Some(state) = self.persons.get_mut(from as usize) else {
            return;
        };
        let records = std::mem::take(&mut state.records);
        let flagged = std::mem::take(&mut state.flagged);
        state.merged_into = Some(into);
        if state.standing == Standing::Provisional {
            self.queue.waiting = self.queue.waiting.saturating_sub(1);
            self.queue.merged += 1;
        }
        for at in &records {
            self.index.set_person(*at, into);
        }
        for other in flagged {
            self.unflag(other, from);
            if other != into {
                self.flag(into, other);
            }
        }
        self.unflag(into, from);
        if let Some(target) = self.persons.get_mut(into as usize) {
            target.records.extend(records);
        }
    }

    fn flag(&mut self, a: u32, b: u32) {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(p) = self.persons.get_mut(x as usize) {
                if !p.flagged.contains(&y) {
                    p.flagged.push(y);
                }
            }
        }
    }

    fn unflag(&mut self, a: u32, b: u32) {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(p) = self.persons.get_mut(x as usize) {
                p.flagged.retain(|f| *f != y);
            }
        }
    }

    /// After a certain link to provisional `person`: a flagged partner
    /// every one of whose records the probe grades none is another child;
    /// a provisional person without partners left is active.
    fn separate(&mut self, person: u32, probe: &MatchRecord, registry: u64) {
        if self.standing(person) != Standing::Provisional {
            return;
        }
        let partners = self
            .persons
            .get(person as usize)
            .map(|p| p.flagged.clone())
            .unwrap_or_default();
        for partner in partners {
            let partner_now = self.person_now(partner);
            let records = self
                .persons
                .get(partner_now as usize)
                .map(|p| p.records.clone())
                .unwrap_or_default();
            let different = !records.is_empty()
                && records.iter().all(|at| {
                    self.index.record(*at).is_none_or(|(_, r)| {
                        self.matcher.decide_in(Some(registry), probe, r).grade == Grade::None
                    })
                });
            if different {
                self.unflag(person, partner);
            }
        }
        if let Some(p) = self.persons.get_mut(person as usize) {
            if p.flagged.is_empty() && p.standing == Standing::Provisional {
                p.standing = Standing::Active;
                self.queue.waiting = self.queue.waiting.saturating_sub(1);
                self.queue.confirmed += 1;
            }
        }
    }

    pub fn link_normalized(&mut self, probe: MatchRecord) -> Linked {
        // The registry so far is what a record is matched against: its
        // bands follow its size.
        let records = self.index.len() as u64;
        let found = self.index.find_in(&self.matcher, Some(records), &probe);
        let (lookup, outcome) = (found.lookup, found.outcome);
        let score = outcome.candidates.first().map(|(_, d)| d.score);
        let resolution = resolve(&outcome, |p| self.standing(*p));
        let (person, grade, possible, merged) = match resolution {
            Resolution::Link { person, absorbed } => {
                for other in &absorbed {
                    self.absorb(*other, person);
                }
                self.separate(person, &probe, records);
                (person, Grade::Certain, Vec::new(), absorbed)
            }
            Resolution::NewPerson {
                provisional,
                flagged,
            } => {
                let standing = if provisional {
                    Standing::Provisional
                } else {
                    Standing::Active
                };
                let person = self.new_person(standing, flagged);
                let possible = outcome
                    .candidates
                    .iter()
                    .map(|(p, d)| PossibleDuplicate {
                        person: *p,
                        score: d.score,
                    })
                    .collect();
                let grade = if provisional {
                    Grade::Possible
                } else {
                    Grade::None
                };
                (person, grade, possible, Vec::new())
            }
        };
        let at = self.index.insert(person, probe);
        if let Some(p) = self.persons.get_mut(person as usize) {
            p.records.push(at);
        }
        Linked {
            person,
            grade,
            possible,
            score,
            compared: outcome.compared,
            skipped_blocks: lookup.skipped.len(),
            merged,
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

    /// The household's phone, address, mother and guardian agree because
    /// the two are one family; a birth date one keying slip away and
    /// another first name make a sister, not the same child.
    #[test]
    fn sisters_whose_birth_dates_are_a_slip_apart_are_two_people() {
        let mut l = Linker::new(Matcher::default());
        let kelly = l.link(&child("1", "Kelly", "2024-09-05", "0349006"));
        let lindsay = l.link(&child("2", "Lindsay", "2024-02-05", "0367007"));
        assert_ne!(lindsay.person, kelly.person);
        assert_eq!(lindsay.grade, Grade::None);
        // Without a first name the newborn could be either: review.
        let newborn = l.link(&PatientRecord {
            given: Some("Baby Girl".into()),
            ..child("3", "", "2024-02-05", "0367008")
        });
        assert_eq!(newborn.grade, Grade::Possible);
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
