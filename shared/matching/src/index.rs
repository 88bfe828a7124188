//! An in-memory blocking index: the candidate source of the evaluation
//! commands and the benchmark, and the model the stored index follows.

use rustc_hash::FxHashMap;
use std::hash::{Hash, Hasher};

use crate::blocking::{index_keys, query_keys};
use crate::normalize::MatchRecord;

/// Records filed by blocking key, each belonging to a person.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    records: Vec<(u32, MatchRecord)>,
    // Keys are hashed: at a million records the strings would double the
    // memory, and a collision only adds a candidate that scoring rejects.
    blocks: FxHashMap<u64, Vec<u32>>,
    max_block: usize,
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

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn insert(&mut self, person: u32, record: MatchRecord) -> u32 {
        let at = self.records.len() as u32;
        for key in index_keys(&record) {
            self.blocks.entry(key_hash(&key)).or_default().push(at);
        }
        self.records.push((person, record));
        at
    }

    pub fn record(&self, at: u32) -> Option<(u32, &MatchRecord)> {
        self.records.get(at as usize).map(|(p, r)| (*p, r))
    }

    /// The union of the probe's blocks, each at most `max_block` long;
    /// a longer block is skipped whole, never read.
    pub fn lookup(&self, probe: &MatchRecord) -> Lookup {
        let mut out = Lookup::default();
        for key in query_keys(probe) {
            let Some(block) = self.blocks.get(&key_hash(&key)) else {
                continue;
            };
            if block.len() > self.max_block {
                out.skipped.push(key);
                continue;
            }
            out.largest_block = out.largest_block.max(block.len());
            out.records.extend_from_slice(block);
        }
        out.records.sort_unstable();
        out.records.dedup();
        out
    }

    /// Size of the largest block in the index.
    pub fn largest_block(&self) -> usize {
        self.blocks.values().map(Vec::len).max().unwrap_or(0)
    }
}
