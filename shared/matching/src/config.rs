//! The versioned matching configuration (`config/iis-fs-2.toml` is the one
//! shipped): weights per comparison level, thresholds, block cap, vetoes.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::compare::{Field, Level};

/// The configuration shipped with the crate.
pub const BUILT_IN: &str = include_str!("../config/iis-fs-2.toml");

/// The expert starting point training learns from (`config/iis-base.toml`).
pub const BASE: &str = include_str!("../config/iis-base.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    version: String,
    bands: Bands,
    blocking: Blocking,
    similarity: Similarity,
    vetoes: Vetoes,
    fields: BTreeMap<String, BTreeMap<String, Probabilities>>,
    #[serde(default)]
    term_frequencies: BTreeMap<String, TermFrequencyFile>,
}

/// `[term_frequencies.<field>]`: how common each name is among the
/// jurisdiction's records (what `iisbulk matching train` counted).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TermFrequencyFile {
    /// The share assumed for a name not listed, and the least any name is
    /// given: a name seen once in the training records is not proof of a
    /// name no one else has.
    floor: f64,
    /// How far above the field's average exact-agreement weight a rare
    /// name may weigh (bits; 0 unless said). At 0 the frequencies only
    /// lower the weight of names more common than average: a rare name in
    /// the training records is not proof that a registry of another place
    /// holds it rarely, and a typo makes any name rare.
    #[serde(default)]
    max_boost: f64,
    #[serde(default)]
    values: BTreeMap<String, f64>,
}

/// The certainty bands: a pair scoring at least `certain` links, at least
/// `possible` goes to review. With `records`, they are the bands of a
/// registry of that many records, and a registry of N records moves both by
/// log2(N / records): the chance that a record matches one particular other
/// falls as the registry grows, so more evidence is needed for the same
/// certainty (a registry is never taken as smaller than `min_records`).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bands {
    pub certain: f64,
    pub possible: f64,
    #[serde(default)]
    pub records: Option<u64>,
    #[serde(default = "default_min_records")]
    pub min_records: u64,
}

fn default_min_records() -> u64 {
    10_000
}

impl Bands {
    /// The bands for a registry of `records` records (these bands as they
    /// are when the size is unknown or the bands are not tied to a size).
    pub fn at(&self, records: Option<u64>) -> Bands {
        match (self.records, records) {
            (Some(reference), Some(n)) if reference > 0 => {
                let shift = (n.max(self.min_records).max(1) as f64 / reference as f64).log2();
                Bands {
                    certain: self.certain + shift,
                    possible: self.possible + shift,
                    ..*self
                }
            }
            _ => *self,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blocking {
    pub max_block: usize,
    /// At most this many block entries read per match, the smallest blocks
    /// first (see [`crate::blocking::within_budget`]); unset reads every
    /// block under `max_block`.
    #[serde(default)]
    pub max_candidates: Option<usize>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Similarity {
    pub close_name: f64,
    pub close_street: f64,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vetoes {
    pub min_compared: u32,
    /// Each IIS veto can be switched off for populations where it does not
    /// apply (adult-only data without twins); all are on unless said.
    #[serde(default = "on")]
    pub multiple_birth: bool,
    #[serde(default = "on")]
    pub birth_order: bool,
    #[serde(default = "on")]
    pub suspected_twin: bool,
    #[serde(default = "on")]
    pub conflicting_birth_date: bool,
    #[serde(default = "on")]
    pub conflicting_suffix: bool,
    #[serde(default = "on")]
    pub conflicting_identifier: bool,
    #[serde(default = "on")]
    pub insufficient_identity: bool,
    /// Two records that hold only name, birth date, sex, address and a
    /// clinic's chart number are held at possible.
    #[serde(default = "on")]
    pub sparse: bool,
    /// A record without a birth date links only through an identifier the
    /// other record shares (else a Jr could become his father).
    #[serde(default = "on")]
    pub undated_needs_identifier: bool,
    /// A birth date read by guessing how it was written, disagreeing,
    /// holds the pair at possible (it may be the other child's).
    #[serde(default = "on")]
    pub guessed_birth_date: bool,
    /// Whether identifiers (chart, Medicaid and social security numbers)
    /// count as compared fields for `min_compared`. Off in an IIS, where
    /// families share them and clinics reuse them; on where a national
    /// number is reliable.
    #[serde(default)]
    pub count_identifiers: bool,
    /// Off unless said: where a conflicting birth date or identifier
    /// vetoes alone, both conflicting adds nothing.
    #[serde(default)]
    pub namesake: bool,
}

fn on() -> bool {
    true
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Probabilities {
    m: f64,
    u: f64,
}

/// Term-frequency adjustment of one field's exact agreement: agreeing on
/// SMITH is weaker evidence than agreeing on a name one record in ten
/// thousand holds. The weight of exact agreement on a value is
/// log2(m / share), the share at least `floor`, and at most the field's
/// average weight plus `max_boost`.
#[derive(Clone, Debug)]
pub struct TermFrequencies {
    pub floor: f64,
    pub max_boost: f64,
    /// Folded name → its weight, precomputed.
    weights: rustc_hash::FxHashMap<compact_str::CompactString, f64>,
    /// The weight of a name not listed, and the most any name weighs.
    rare: f64,
    /// The (value, share) pairs as configured, for writing the file back.
    pub shares: BTreeMap<String, f64>,
}

impl TermFrequencies {
    /// The exact-agreement weight of a value.
    pub fn weight(&self, value: &str) -> f64 {
        self.weights.get(value).copied().unwrap_or(self.rare)
    }

    /// The largest weight any value can have.
    pub fn max_weight(&self) -> f64 {
        self.rare
    }
}

/// Fields whose exact agreement may be adjusted by term frequency.
pub const TERM_FREQUENCY_FIELDS: [Field; 2] = [Field::Given, Field::Family];

/// A checked configuration with the weights precomputed.
#[derive(Clone, Debug)]
pub struct Config {
    pub version: String,
    pub bands: Bands,
    pub blocking: Blocking,
    pub similarity: Similarity,
    pub vetoes: Vetoes,
    weights: [[f64; Level::COUNT]; Field::COUNT],
    /// m and u as configured, by field and level (0 where none).
    probabilities: [[(f64, f64); Level::COUNT]; Field::COUNT],
    term_frequencies: [Option<TermFrequencies>; Field::COUNT],
}

impl Config {
    /// Parses and checks a configuration: every level a field can produce
    /// must have m and u in (0, 1], nothing unknown may appear, bands must be
    /// ordered. The error says which line is wrong.
    pub fn parse(text: &str) -> Result<Config, String> {
        let file: ConfigFile =
            toml::from_str(text).map_err(|e| format!("matching configuration: {e}"))?;
        if file.version.trim().is_empty() {
            return Err("matching configuration: version must not be empty".into());
        }
        if file.bands.possible > file.bands.certain {
            return Err("matching configuration: bands.possible is above bands.certain".into());
        }
        if file.blocking.max_block == 0 {
            return Err("matching configuration: blocking.max_block must be at least 1".into());
        }
        if file.blocking.max_candidates == Some(0) {
            return Err(
                "matching configuration: blocking.max_candidates must be at least 1".into(),
            );
        }
        let mut weights = [[0.0; Level::COUNT]; Field::COUNT];
        let mut probabilities = [[(0.0, 0.0); Level::COUNT]; Field::COUNT];
        for (name, levels) in &file.fields {
            let field = Field::ALL
                .iter()
                .copied()
                .find(|f| f.name() == name)
                .ok_or_else(|| format!("matching configuration: unknown field [fields.{name}]"))?;
            for (level_name, p) in levels {
                let level = field
                    .levels()
                    .iter()
                    .copied()
                    .find(|l| l.name() == level_name)
                    .ok_or_else(|| {
                        format!(
                            "matching configuration: [fields.{name}] has no level {level_name:?} (it has {})",
                            field.levels().iter().map(|l| l.name()).collect::<Vec<_>>().join(", ")
                        )
                    })?;
                if !(p.m > 0.0 && p.m <= 1.0 && p.u > 0.0 && p.u <= 1.0) {
                    return Err(format!("matching configuration: [fields.{name}] {level_name}: m and u must be in (0, 1]"));
                }
                weights[field as usize][level as usize] = (p.m / p.u).log2();
                probabilities[field as usize][level as usize] = (p.m, p.u);
            }
        }
        for field in Field::ALL {
            let levels = file.fields.get(field.name()).ok_or_else(|| {
                format!(
                    "matching configuration: [fields.{}] is missing",
                    field.name()
                )
            })?;
            for level in field.levels() {
                if !levels.contains_key(level.name()) {
                    return Err(format!(
                        "matching configuration: [fields.{}] lacks level {}",
                        field.name(),
                        level.name()
                    ));
                }
            }
        }
        let mut term_frequencies: [Option<TermFrequencies>; Field::COUNT] = Default::default();
        for (name, tf) in &file.term_frequencies {
            let field = TERM_FREQUENCY_FIELDS
                .iter()
                .copied()
                .find(|f| f.name() == name)
                .ok_or_else(|| {
                    format!("matching configuration: [term_frequencies.{name}]: only given and family names are adjusted by term frequency")
                })?;
            if !(tf.floor > 0.0 && tf.floor <= 1.0) {
                return Err(format!(
                    "matching configuration: [term_frequencies.{name}] floor must be in (0, 1]"
                ));
            }
            let m = probabilities[field as usize][Level::Exact as usize].0;
            if !(tf.max_boost >= 0.0 && tf.max_boost.is_finite()) {
                return Err(format!(
                    "matching configuration: [term_frequencies.{name}] max_boost must be 0 or more"
                ));
            }
            let rare = weights[field as usize][Level::Exact as usize] + tf.max_boost;
            let mut tf_weights = rustc_hash::FxHashMap::default();
            for (value, share) in &tf.values {
                if !(*share > 0.0 && *share <= 1.0) {
                    return Err(format!(
                        "matching configuration: [term_frequencies.{name}.values] {value}: the share must be in (0, 1]"
                    ));
                }
                tf_weights.insert(
                    value.as_str().into(),
                    (m / share.max(tf.floor)).log2().min(rare),
                );
            }
            term_frequencies[field as usize] = Some(TermFrequencies {
                floor: tf.floor,
                max_boost: tf.max_boost,
                weights: tf_weights,
                rare,
                shares: tf.values.clone(),
            });
        }
        Ok(Config {
            version: file.version,
            bands: file.bands,
            blocking: file.blocking,
            similarity: file.similarity,
            vetoes: file.vetoes,
            weights,
            probabilities,
            term_frequencies,
        })
    }

    pub fn built_in() -> Config {
        Config::parse(BUILT_IN)
            .unwrap_or_else(|e| panic!("the shipped matching configuration is invalid: {e}"))
    }

    /// log2(m/u) for a level; 0 for missing. For exact agreement on a
    /// field with term frequencies, the weight without them (its average).
    pub fn weight(&self, field: Field, level: Level) -> f64 {
        self.weights[field as usize][level as usize]
    }

    /// The weight of a level for the values compared: exact agreement on a
    /// term-frequency field weighs by how common the value is.
    pub fn weight_of(&self, field: Field, level: Level, value: Option<&str>) -> f64 {
        match (level, value, &self.term_frequencies[field as usize]) {
            (Level::Exact, Some(v), Some(tf)) => tf.weight(v),
            _ => self.weight(field, level),
        }
    }

    /// The most a level can weigh for any value (the sketch ceiling's bound).
    pub fn max_weight(&self, field: Field, level: Level) -> f64 {
        match (level, &self.term_frequencies[field as usize]) {
            (Level::Exact, Some(tf)) => tf.max_weight().max(self.weight(field, level)),
            _ => self.weight(field, level),
        }
    }

    /// m and u as configured (0, 0 for a level the field does not have).
    pub fn probabilities(&self, field: Field, level: Level) -> (f64, f64) {
        self.probabilities[field as usize][level as usize]
    }

    /// Whether the term frequencies list this given name: a name the
    /// jurisdiction's records hold more than once, so a real name and not a
    /// typo of another.
    pub fn knows_given(&self, name: &str) -> bool {
        self.term_frequencies[Field::Given as usize]
            .as_ref()
            .is_some_and(|tf| tf.weights.contains_key(name))
    }

    pub fn term_frequencies(&self, field: Field) -> Option<&TermFrequencies> {
        self.term_frequencies[field as usize].as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_configuration_is_complete_and_ordered() {
        let c = Config::parse(BUILT_IN).expect("valid");
        assert!(c.weight(Field::Given, Level::Exact) > 0.0);
        assert!(c.weight(Field::Given, Level::Different) < 0.0);
        assert_eq!(c.weight(Field::Given, Level::Missing), 0.0);
        for field in Field::ALL {
            let exact = c.weight(field, Level::Exact);
            for level in field.levels() {
                assert!(
                    c.weight(field, *level) <= exact,
                    "{field:?} {level:?} outweighs exact"
                );
            }
        }
    }

    /// The general-population configurations switch IIS vetoes off; the
    /// built-in IIS one must keep every one that tells children apart (a
    /// false merge of two children is the one error an IIS cannot afford).
    /// Conflicting chart numbers only weigh: clinics re-register children.
    #[test]
    fn the_iis_configuration_keeps_every_iis_veto() {
        let v = Config::parse(BUILT_IN).expect("valid").vetoes;
        assert!(v.multiple_birth && v.birth_order && v.suspected_twin);
        assert!(v.conflicting_birth_date && v.conflicting_suffix && v.sparse);
        assert!(!v.conflicting_identifier);
        assert!(
            v.insufficient_identity,
            "a record without name or DOB must never link"
        );
        // Given, family name and birth date at least; the bands decide
        // whether that much is enough in a registry of its size.
        assert!(v.min_compared >= 3);
    }

    #[test]
    fn bad_configurations_say_what_is_wrong() {
        let broken = BASE.replace("[fields.sex]", "[fields.gender]");
        assert!(Config::parse(&broken)
            .unwrap_err()
            .contains("unknown field [fields.gender]"));
        let broken = BASE.replace("nickname = ", "nick = ");
        assert!(Config::parse(&broken)
            .unwrap_err()
            .contains("no level \"nick\""));
        let broken = BASE.replace("certain = 31.0", "certain = 2.0");
        assert!(Config::parse(&broken)
            .unwrap_err()
            .contains("bands.possible"));
        let broken = BASE.replace("{ m = 0.97, u = 0.50 }", "{ m = 0.0, u = 0.50 }");
        assert!(Config::parse(&broken).unwrap_err().contains("(0, 1]"));
        let tf = format!("{BASE}\n[term_frequencies.sex]\nfloor = 0.001\n");
        assert!(Config::parse(&tf)
            .unwrap_err()
            .contains("only given and family names"));
        let tf = format!("{BASE}\n[term_frequencies.family]\nfloor = 0.001\nmax_boost = -1.0\n");
        assert!(Config::parse(&tf).unwrap_err().contains("max_boost"));
    }

    /// The shipped configuration is the trained one, tied to a registry
    /// size, with names adjusted by frequency.
    #[test]
    fn the_shipped_configuration_is_trained() {
        let c = Config::built_in();
        assert_eq!(c.version, "iis-fs-2");
        assert!(c.bands.records.is_some());
        assert!(c.term_frequencies(Field::Family).is_some());
        assert!(c.knows_given("SOPHIA") && !c.knows_given("QXZV"));
    }

    /// A common name weighs less than the average; one not listed weighs
    /// the average (plus the boost allowed); none weighs more.
    #[test]
    fn term_frequencies_lower_common_names() {
        let text = format!(
            "{BASE}\n[term_frequencies.family]\nfloor = 0.0001\nmax_boost = 1.5\n\n[term_frequencies.family.values]\nSMITH = 0.01\nZYWICKI = 0.00001\n"
        );
        let c = Config::parse(&text).expect("valid");
        let average = c.weight(Field::Family, Level::Exact);
        let smith = c.weight_of(Field::Family, Level::Exact, Some("SMITH"));
        let rare = c.weight_of(Field::Family, Level::Exact, Some("ZYWICKI"));
        let unknown = c.weight_of(Field::Family, Level::Exact, Some("OKAFOR"));
        assert!(smith < average, "{smith} {average}");
        assert!((rare - (average + 1.5)).abs() < 1e-9 && (unknown - rare).abs() < 1e-9);
        assert_eq!(c.max_weight(Field::Family, Level::Exact), rare);
        // Only exact agreement is adjusted.
        assert_eq!(
            c.weight_of(Field::Family, Level::Close, Some("SMITH")),
            c.weight(Field::Family, Level::Close)
        );
    }

    /// A registry twice the size needs one more bit of evidence; a tiny one
    /// is taken as `min_records`.
    #[test]
    fn bands_move_with_the_registry_size() {
        let b = Bands {
            certain: 30.0,
            possible: 12.0,
            records: Some(1_000_000),
            min_records: 10_000,
        };
        let doubled = b.at(Some(2_000_000));
        assert!((doubled.certain - 31.0).abs() < 1e-9 && (doubled.possible - 13.0).abs() < 1e-9);
        assert_eq!(b.at(None).certain, 30.0);
        assert_eq!(b.at(Some(10)).certain, b.at(Some(10_000)).certain);
        let untied = Bands { records: None, ..b };
        assert_eq!(untied.at(Some(2_000_000)).certain, 30.0);
    }
}
