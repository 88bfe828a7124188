//! The versioned matching configuration (`config/iis-fs-1.toml` is the one
//! shipped): weights per comparison level, thresholds, block cap, vetoes.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::compare::{Field, Level};

/// The configuration shipped with the crate.
pub const BUILT_IN: &str = include_str!("../config/iis-fs-1.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    version: String,
    bands: Bands,
    blocking: Blocking,
    similarity: Similarity,
    vetoes: Vetoes,
    fields: BTreeMap<String, BTreeMap<String, Probabilities>>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bands {
    pub certain: f64,
    pub possible: f64,
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

/// A checked configuration with the weights precomputed.
#[derive(Clone, Debug)]
pub struct Config {
    pub version: String,
    pub bands: Bands,
    pub blocking: Blocking,
    pub similarity: Similarity,
    pub vetoes: Vetoes,
    weights: [[f64; Level::COUNT]; Field::COUNT],
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
        Ok(Config {
            version: file.version,
            bands: file.bands,
            blocking: file.blocking,
            similarity: file.similarity,
            vetoes: file.vetoes,
            weights,
        })
    }

    pub fn built_in() -> Config {
        Config::parse(BUILT_IN)
            .unwrap_or_else(|e| panic!("the shipped matching configuration is invalid: {e}"))
    }

    /// log2(m/u) for a level; 0 for missing.
    pub fn weight(&self, field: Field, level: Level) -> f64 {
        self.weights[field as usize][level as usize]
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
    /// built-in IIS one must keep every one of them (a false merge of two
    /// children is the one error an IIS cannot afford).
    #[test]
    fn the_iis_configuration_keeps_every_iis_veto() {
        let v = Config::parse(BUILT_IN).expect("valid").vetoes;
        assert!(v.multiple_birth && v.birth_order && v.suspected_twin);
        assert!(v.conflicting_birth_date && v.conflicting_suffix && v.conflicting_identifier);
        assert!(
            v.insufficient_identity,
            "a record without name or DOB must never link"
        );
        assert!(v.min_compared >= 4);
    }

    #[test]
    fn bad_configurations_say_what_is_wrong() {
        let broken = BUILT_IN.replace("[fields.sex]", "[fields.gender]");
        assert!(Config::parse(&broken)
            .unwrap_err()
            .contains("unknown field [fields.gender]"));
        let broken = BUILT_IN.replace("nickname = ", "nick = ");
        assert!(Config::parse(&broken)
            .unwrap_err()
            .contains("no level \"nick\""));
        let broken = BUILT_IN.replace("certain = 31.0", "certain = 2.0");
        assert!(Config::parse(&broken)
            .unwrap_err()
            .contains("bands.possible"));
        let broken = BUILT_IN.replace("{ m = 0.97, u = 0.50 }", "{ m = 0.0, u = 0.50 }");
        assert!(Config::parse(&broken).unwrap_err().contains("(0, 1]"));
    }
}
