//! An in-memory blocking index: the candidate source of the evaluation
//! commands and the benchmark, and the model the stored index follows.

use rustc_hash::FxHashMap;
use std::hash::{Hash, Hasher};

use crate::blocking::{each_index_key, each_query_key, within_budget};
use crate::normalize::MatchRecord;
use crate::sketch::Sketch;
use crate::{Matcher, Outcome};

/// Records filed by blocking key, each belonging to a person.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    records: Vec<(u32, MatchRecord)>,
    // Apart from the records, so screening a candidate reads a few
    // adjacent cache lines and not a record scattered over a dozen.
    sketches: Vec<Sketch>,
    // Keys are hashed: at a million records the strings would double the
    // memory, and a collision only adds a candidate that scoring rejects.
    blocks: FxHashMap<u64, Vec<u32>>,
    max_block: usize,
    budget: Option<usize>,
}

/// A probe matched against its blocks.
#[derive(Debug)]
pub struct Found {
    pub lookup: Lookup,
    pub outcome: Outcome<u32>,
    /// Candidates scored in full; the others' sketches showed they grade none.
    pub scored: usize,
}

/// What a lookup touched.
#[derive(Debug, Default)]
pub struct Lookup {
    /// Distinct candidate records, by index.
    pub records: Vec<u32>,
    /// Keys skipped because their block was over the cap.
    pub skipped: Vec<String>,
    /// Size of the largest block read.
    pub largest_block: usize,
    /// Blocks left unread because the budget was spent.
    pub over_budget: usize,
}

fn key_hash(key: &str) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    key.hash(&mut h);
    h.finish()
}

impl MemoryIndex {
    pub fn new(max_block: usize) -> MemoryIndex {
        MemoryIndex {
            max_block,
            ..Default::default()
        }
    }

    /// An index with a configuration's block cap and candidate budget.
    pub fn for_config(blocking: &crate::config::Blocking) -> MemoryIndex {
        MemoryIndex::new(blocking.max_block).with_budget(blocking.max_candidates)
    }

    /// At most `budget` entries read per lookup (see
    /// [`crate::blocking::within_budget`]); `None` reads every block.
    pub fn with_budget(mut self, budget: Option<usize>) -> MemoryIndex {
        self.budget = budget;
        self
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn insert(&mut self, person: u32, record: MatchRecord) -> u32 {
        let at = self.records.len() as u32;
        let mut keys = Vec::with_capacity(32);
        each_index_key(&record, &mut |k| keys.push(key_hash(k)));
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            self.blocks.entry(key).or_default().push(at);
        }
        self.sketches.push(Sketch::of(&record));
        self.records.push((person, record));
        at
    }

    /// Files a record under another person (a merge).
    pub fn set_person(&mut self, at: u32, person: u32) {
        if let Some(entry) = self.records.get_mut(at as usize) {
            entry.0 = person;
        }
    }

    pub fn record(&self, at: u32) -> Option<(u32, &MatchRecord)> {
        self.records.get(at as usize).map(|(p, r)| (*p, r))
    }

    /// The union of the probe's blocks, each at most `max_block` long;
    /// a longer block is skipped whole, never read.
    pub fn lookup(&self, probe: &MatchRecord) -> Lookup {
        let mut out = Lookup::default();
        let mut keys = Vec::with_capacity(32);
        each_query_key(probe, &mut |k| keys.push(key_hash(k)));
        keys.sort_unstable();
        keys.dedup();
        let mut skipped = Vec::new();
        let mut blocks = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(block) = self.blocks.get(&key) else {
                continue;
            };
            if block.len() > self.max_block {
                skipped.push(key);
                continue;
            }
            blocks.push(block);
        }
        let sizes: Vec<usize> = blocks.iter().map(|b| b.len()).collect();
        for (block, read) in blocks.iter().zip(within_budget(&sizes, self.budget)) {
            if !read {
                out.over_budget += 1;
                continue;
            }
            out.largest_block = out.largest_block.max(block.len());
            out.records.extend_from_slice(block);
        }
        out.records.sort_unstable();
        out.records.dedup();
        // Rare: the texts of the keys skipped, for the log.
        if !skipped.is_empty() {
            each_query_key(probe, &mut |k| {
                if skipped.contains(&key_hash(k)) && !out.skipped.iter().any(|s| s == k) {
                    out.skipped.push(k.to_owned());
                }
            });
            out.skipped.sort();
        }
        out
    }

    /// Looks the probe up and chooses among the candidates: the ones
    /// whose sketch shows they cannot reach the possible band are never
    /// read; the outcome is [`Matcher::choose`]'s over every candidate.
    pub fn find(&self, matcher: &Matcher, probe: &MatchRecord) -> Found {
        self.find_in(matcher, None, probe)
    }

    /// [`MemoryIndex::find`] with the bands of a registry of `records`
    /// records ([`crate::config::Bands::at`]).
    pub fn find_in(&self, matcher: &Matcher, records: Option<u64>, probe: &MatchRecord) -> Found {
        let lookup = self.lookup(probe);
        let sketch = Sketch::of(probe);
        let touched = lookup.records.iter().fold(0, |t, &at| {
            t ^ self.sketches.get(at as usize).map_or(0, Sketch::touch)
        });
        std::hint::black_box(touched);
        let mut scored = 0;
        let candidates = lookup.records.iter().map(|&at| {
            let s = self.sketches.get(at as usize)?;
            if !matcher.may_reach_possible_in(records, &sketch, s) {
                return None;
            }
            scored += 1;
            self.record(at)
        });
        let outcome = matcher.choose_in(records, probe, candidates);
        Found {
            lookup,
            outcome,
            scored,
        }
    }

    /// Size of the largest block in the index.
    pub fn largest_block(&self) -> usize {
        self.blocks.values().map(Vec::len).max().unwrap_or(0)
    }
}
