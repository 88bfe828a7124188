//! Patient matching for an Immunization Information System.
//!
//! A record is normalized ([`normalize`]), filed under a few blocking keys
//! ([`blocking`]), and compared with the records that share a key: each
//! field lands on a level ([`compare`]) whose Fellegi-Sunter weight comes
//! from the versioned [`Config`]; IIS vetoes ([`score::Veto`]) hold twins and
//! conflicting identifiers back from `certain`; every [`Decision`] carries its
//! explanation. Pure code: storage and transport live elsewhere.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod blocking;
pub mod compare;
pub mod config;
pub mod estimate;
pub mod index;
pub mod labelled;
pub mod link;
pub mod miis;
pub mod nicknames;
pub mod normalize;
pub mod record;
pub mod resolve;
pub mod rng;
pub mod score;
pub mod sketch;
pub mod text;
pub mod train;

use std::collections::BTreeMap;

use serde::Serialize;

pub use compare::{Field, Level};
pub use config::Config;
pub use nicknames::Nicknames;
pub use normalize::{BirthDate, MatchRecord, Name};
pub use record::{Alias, PatientRecord, RecordIdentifier};
pub use score::{Decision, Explanation, Grade, Veto};
pub use sketch::Sketch;

/// Normalization, scoring and choice with one configuration.
#[derive(Debug)]
pub struct Matcher {
    config: Config,
    nicknames: &'static Nicknames,
}

impl Default for Matcher {
    fn default() -> Self {
        Matcher::new(Config::built_in())
    }
}

impl Matcher {
    /// The shipped configuration's matcher, built once per process and
    /// shared: parsing its 77 KB of weights and term frequencies is a few
    /// milliseconds of every Lambda cold start, paid once however many use
    /// cases hold it.
    pub fn built_in() -> std::sync::Arc<Matcher> {
        static SHARED: std::sync::OnceLock<std::sync::Arc<Matcher>> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| std::sync::Arc::new(Matcher::default()))
            .clone()
    }
}

/// The outcome of matching one record against the persons already known.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome<P> {
    pub grade: Grade,
    /// The person to link to (grade certain only).
    pub person: Option<P>,
    /// The best decision per person that reached possible or certain,
    /// best first: potential duplicates to review when not linked.
    pub candidates: Vec<(P, Decision)>,
    /// Records compared.
    pub compared: usize,
}

impl Matcher {
    pub fn new(config: Config) -> Matcher {
        Matcher {
            config,
            nicknames: Nicknames::built_in(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn normalize(&self, record: &PatientRecord) -> MatchRecord {
        normalize::normalize(record, self.nicknames)
    }

    pub fn decide(&self, a: &MatchRecord, b: &MatchRecord) -> Decision {
        score::decide(&self.config, a, b)
    }

    /// [`Matcher::decide`] as a registry of `records` records decides
    /// ([`config::Bands::at`]).
    pub fn decide_in(&self, records: Option<u64>, a: &MatchRecord, b: &MatchRecord) -> Decision {
        let bands = self.config.bands.at(records);
        score::assess_in(&self.config, &bands, a, b).explain(&self.config)
    }

    /// Compares `probe` with every candidate record (several may belong to
    /// one person) and decides: link to the one person graded certain; if two
    /// different persons are both certain the registry already holds a
    /// duplicate, and a link would pick one at random, so the answer is
    /// possible with both listed for review.
    pub fn choose<'r, P: Ord + Clone>(
        &self,
        probe: &MatchRecord,
        candidates: impl IntoIterator<Item = (P, &'r MatchRecord)>,
    ) -> Outcome<P> {
        self.choose_screened(probe, candidates.into_iter().map(Some))
    }

    /// Whether a pair could grade above none, from the sketches alone: when
    /// not, [`Matcher::decide`] grades it none too.
    pub fn may_reach_possible(&self, a: &Sketch, b: &Sketch) -> bool {
        sketch::may_reach_possible(&self.config, a, b)
    }

    /// [`Matcher::may_reach_possible`] in a registry of `records` records.
    pub fn may_reach_possible_in(&self, records: Option<u64>, a: &Sketch, b: &Sketch) -> bool {
        sketch::may_reach(&self.config, self.config.bands.at(records).possible, a, b)
    }

    /// [`Matcher::choose`] where a `None` candidate is one whose sketch
    /// already showed it grades none: compared, but not read.
    pub fn choose_screened<'r, P: Ord + Clone>(
        &self,
        probe: &MatchRecord,
        candidates: impl IntoIterator<Item = Option<(P, &'r MatchRecord)>>,
    ) -> Outcome<P> {
        self.choose_in(None, probe, candidates)
    }

    /// [`Matcher::choose_screened`] as a registry of `records` records
    /// decides: its bands move with its size ([`config::Bands::at`]).
    pub fn choose_in<'r, P: Ord + Clone>(
        &self,
        records: Option<u64>,
        probe: &MatchRecord,
        candidates: impl IntoIterator<Item = Option<(P, &'r MatchRecord)>>,
    ) -> Outcome<P> {
        let bands = self.config.bands.at(records);
        let mut best: BTreeMap<P, Decision> = BTreeMap::new();
        let mut compared = 0;
        for candidate in candidates {
            compared += 1;
            let Some((person, record)) = candidate else {
                continue;
            };
            // Most candidates grade none: explain only the ones kept.
            let a = score::assess_in(&self.config, &bands, probe, record);
            if a.grade == Grade::None {
                continue;
            }
            match best.get(&person) {
                Some(old) if (old.grade, old.score) >= (a.grade, a.score) => {}
                _ => {
                    best.insert(person, a.explain(&self.config));
                }
            }
        }
        let mut ranked: Vec<(P, Decision)> = best.into_iter().collect();
        ranked.sort_by(|x, y| {
            y.1.grade
                .cmp(&x.1.grade)
                .then(y.1.score.total_cmp(&x.1.score))
        });
        let certain = ranked
            .iter()
            .filter(|(_, d)| d.grade == Grade::Certain)
            .count();
        let (grade, person) = match (certain, ranked.first()) {
            (1, Some((p, _))) => (Grade::Certain, Some(p.clone())),
            (0, None) => (Grade::None, None),
            _ => (Grade::Possible, None),
        };
        Outcome {
            grade,
            person,
            candidates: ranked,
            compared,
        }
    }
}
