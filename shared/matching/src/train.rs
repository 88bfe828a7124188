//! Weights learned from a jurisdiction's own records, without labels, the
//! way Splink and fastLink learn them (`iisbulk matching train`):
//!
//! * **u**, the chance a level occurs between two different people, is its
//!   share among random pairs of records (nearly all of them different
//!   people).
//! * **m**, the chance it occurs between two records of one person, comes
//!   from expectation-maximisation over pairs that agree exactly on one
//!   thing, with u held fixed: the pairs sharing a birth date teach every
//!   field but the birth date, the pairs sharing given and family name
//!   teach every field but the names. A field is never learned from pairs
//!   chosen by agreeing on it.
//! * **Term frequencies**: each given and family name's share of the
//!   records, so agreeing on a rare name weighs more than agreeing on SMITH.
//! * **Bands** from the posterior probability of a match: the pairs sharing
//!   a birth date tell how many records of one person the records hold,
//!   hence the prior chance that two records picked at random match, for a
//!   registry of the size the configuration is for; certain is the score at
//!   which the posterior odds reach the target, possible where they reach
//!   the lower one.
//!
//! A field (or level) the records hold too rarely keeps the base
//! configuration's values, and says so in the file written. Labelled pairs
//! are never read here: they stay the acceptance check.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rustc_hash::FxHashMap;

use crate::compare::{Field, Level};
use crate::config::{Config, TERM_FREQUENCY_FIELDS};
use crate::estimate::{expectation_maximisation, posteriors, shares, Levels, Table};
use crate::normalize::MatchRecord;
use crate::rng::Rng;
use crate::score::assess;
use crate::{Matcher, PatientRecord};

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// The version written into the configuration (every decision records it).
    pub version: String,
    /// Random pairs drawn for u.
    pub random_pairs: usize,
    /// Expectation-maximisation rounds per pass.
    pub rounds: usize,
    pub seed: u64,
    /// The number of records of the registry the bands are for (a bigger
    /// registry holds more namesakes, so it needs more evidence); the
    /// training records' count when not given.
    pub population: Option<u64>,
    /// Posterior odds of a match, as log2, at which a pair is certain.
    pub certain_odds: f64,
    /// Posterior odds, as log2, at which a pair is worth a person's review.
    pub possible_odds: f64,
    /// A field present on both sides of fewer pairs than this in a pass is
    /// not learned from that pass.
    pub min_pairs: usize,
    /// A field seen in fewer matches than this in a pass is not learned
    /// from it (m would rest on a handful of pairs).
    pub min_matches: f64,
    /// A level seen in fewer matches, or fewer random pairs, than this
    /// keeps the base configuration's m and u.
    pub min_level: f64,
    /// Names seen fewer times than this are not listed in the term
    /// frequencies; they weigh as the floor.
    pub tf_min_count: usize,
    /// The least share any name is given (a name seen once in the training
    /// records is not proof that no one else has it).
    pub tf_floor: f64,
    /// How far above the average a rare name may weigh (see
    /// [`crate::config::TermFrequencies`]); 0 lowers common names only.
    pub tf_max_boost: f64,
    /// Records sharing one birth date (or one name) beyond this many are
    /// not all paired, which bounds the work on a huge registry.
    pub max_group: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            version: "trained".into(),
            random_pairs: 2_000_000,
            rounds: 60,
            seed: 1,
            population: None,
            // 10,000 to 1 that the pair is one person.
            certain_odds: 10_000f64.log2(),
            // 1 to 20: worth a look, not worth a merge.
            possible_odds: (1.0f64 / 20.0).log2(),
            min_pairs: 200,
            min_matches: 100.0,
            min_level: 30.0,
            tf_min_count: 2,
            tf_floor: 1e-4,
            tf_max_boost: 0.0,
            max_group: 400,
        }
    }
}

/// What training produced: the configuration file's text (parsed back, so
/// it is known valid) and a summary of what was learned, in words.
#[derive(Debug)]
pub struct Trained {
    pub config_text: String,
    pub config: Config,
    pub summary: String,
}

/// Where one field's m and u came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Trained,
    /// Too rare in the records: the base configuration's values.
    Kept,
}

/// One expectation-maximisation pass: pairs agreeing on something.
struct Pass {
    name: &'static str,
    pairs: Vec<Levels>,
    /// The fields learned here (all but the ones the pairs were chosen by).
    fields: Vec<Field>,
    m: Table,
    share: f64,
    /// Expected matches per field and level (the posteriors summed).
    seen: Table,
}

/// Trains a configuration on `records` (in any order), starting from
/// `base` for what the records cannot teach (blocking, similarity
/// thresholds, vetoes, and fields the records lack).
pub fn train(
    records: &[PatientRecord],
    base: &Config,
    options: &TrainOptions,
) -> Result<Trained, String> {
    if records.len() < 100 {
        return Err(format!(
            "training needs at least 100 records, got {}",
            records.len()
        ));
    }
    let matcher = Matcher::new(base.clone());
    let normalized: Vec<MatchRecord> = records.iter().map(|r| matcher.normalize(r)).collect();
    let n = normalized.len();
    let levels_of = |i: usize, j: usize| assess(base, &normalized[i], &normalized[j]).levels;

    // u from random pairs.
    let mut rng = Rng::new(options.seed);
    let mut random = Vec::with_capacity(options.random_pairs);
    while random.len() < options.random_pairs {
        let (i, j) = (rng.below(n), rng.below(n));
        if i != j {
            random.push(levels_of(i, j));
        }
    }
    let u = shares(&random, |_| 1.0);
    let mut random_present = [0usize; Field::COUNT];
    for pair in &random {
        for field in Field::ALL {
            if pair[field as usize] != Level::Missing {
                random_present[field as usize] += 1;
            }
        }
    }

    // The two passes.
    let by_date = group_pairs(
        &normalized,
        |r| r.birth_date.map(|d| d.compact()),
        options.max_group,
    );
    let by_name = group_pairs(
        &normalized,
        |r| match (&r.given, &r.family) {
            (Some(g), Some(f)) => Some(format!("{}|{}", g.text, f.text)),
            _ => None,
        },
        options.max_group,
    );
    let mut passes = Vec::new();
    for (name, pairs, skip) in [
        ("same birth date", &by_date, &[Field::BirthDate][..]),
        (
            "same given and family name",
            &by_name,
            &[Field::Given, Field::Family][..],
        ),
    ] {
        let levels: Vec<Levels> = pairs.iter().map(|&(i, j)| levels_of(i, j)).collect();
        let fields: Vec<Field> = Field::ALL
            .iter()
            .copied()
            .filter(|f| !skip.contains(f))
            .filter(|f| present_in(&levels, *f) >= options.min_pairs)
            .filter(|f| random_present[*f as usize] >= options.min_pairs)
            .collect();
        let (m, share) = expectation_maximisation(&levels, &u, &fields, options.rounds);
        let posterior = posteriors(&levels, &m, &u, &fields, share);
        let mut seen = [[0.0; Level::COUNT]; Field::COUNT];
        for (pair, p) in levels.iter().zip(&posterior) {
            for field in Field::ALL {
                seen[field as usize][pair[field as usize] as usize] += p;
            }
        }
        // A field too rare among the matches is not learned here after all.
        let fields = fields
            .into_iter()
            .filter(|f| {
                let row = &seen[*f as usize];
                f.levels().iter().map(|l| row[*l as usize]).sum::<f64>() >= options.min_matches
            })
            .collect();
        passes.push(Pass {
            name,
            pairs: levels,
            fields,
            m,
            share,
            seen,
        });
    }
    let mut random_seen = [[0.0; Level::COUNT]; Field::COUNT];
    for pair in &random {
        for field in Field::ALL {
            random_seen[field as usize][pair[field as usize] as usize] += 1.0;
        }
    }

    // m per field: the average of the passes that learned it, each weighted
    // by the matches it saw with the field present.
    let mut m = [[0.0; Level::COUNT]; Field::COUNT];
    let mut source = [Source::Kept; Field::COUNT];
    let mut level_seen = [[0.0; Level::COUNT]; Field::COUNT];
    for field in Field::ALL {
        let f = field as usize;
        let mut total = 0.0;
        let mut sum = [0.0; Level::COUNT];
        for pass in &passes {
            if !pass.fields.contains(&field) {
                continue;
            }
            let seen: f64 = field
                .levels()
                .iter()
                .map(|l| pass.seen[f][*l as usize])
                .sum();
            total += seen;
            for level in field.levels() {
                sum[*level as usize] += seen * pass.m[f][*level as usize];
                level_seen[f][*level as usize] += pass.seen[f][*level as usize];
            }
        }
        if total > 0.0 {
            for level in field.levels() {
                m[f][*level as usize] = sum[*level as usize] / total;
            }
            source[f] = Source::Trained;
        }
    }

    // The probabilities written: trained where learned, else the base's; no
    // level may outweigh exact agreement (a rare level's u can be estimated
    // smaller than exact's, and a typo must never count more than the name).
    let mut written: [[(f64, f64); Level::COUNT]; Field::COUNT] =
        [[(0.0, 0.0); Level::COUNT]; Field::COUNT];
    for field in Field::ALL {
        let f = field as usize;
        for level in field.levels() {
            let l = *level as usize;
            let rare =
                level_seen[f][l] < options.min_level || random_seen[f][l] < options.min_level;
            written[f][l] = match source[f] {
                Source::Trained if !rare => (m[f][l], u[f][l]),
                _ => base.probabilities(field, *level),
            };
        }
        let (me, ue) = written[f][Level::Exact as usize];
        let exact = (me / ue).log2();
        for level in field.levels().iter().skip(1) {
            let (ml, ul) = &mut written[f][*level as usize];
            if (*ml / *ul).log2() > exact {
                *ul = (*ml / 2f64.powf(exact)).min(1.0);
            }
        }
    }

    // Term frequencies.
    let mut frequencies: Vec<(Field, f64, BTreeMap<String, f64>, usize)> = Vec::new();
    for field in TERM_FREQUENCY_FIELDS {
        let mut counts: FxHashMap<&str, usize> = FxHashMap::default();
        let mut total = 0usize;
        for r in &normalized {
            let name = match field {
                Field::Given => r.given.as_ref(),
                _ => r.family.as_ref(),
            };
            // An initial is no name to count.
            if let Some(name) = name.filter(|n| n.text.len() > 1) {
                *counts.entry(name.text.as_str()).or_default() += 1;
                total += 1;
            }
        }
        if total == 0 {
            continue;
        }
        let floor = options.tf_floor.max(1.0 / total as f64);
        // Every name seen more than once is listed, even one that weighs as
        // a name not listed: the list also tells a real name from a typo.
        let values: BTreeMap<String, f64> = counts
            .iter()
            .filter(|(_, c)| **c >= options.tf_min_count)
            .map(|(name, c)| ((*name).to_owned(), *c as f64 / total as f64))
            .collect();
        frequencies.push((field, floor, values, counts.len()));
    }

    // The prior and the bands.
    let date_pass = &passes[0];
    let name_pass = &passes[1];
    let m_date_exact = name_pass.m[Field::BirthDate as usize][Level::Exact as usize];
    let m_date_exact = if name_pass.fields.contains(&Field::BirthDate) && m_date_exact > 0.0 {
        m_date_exact
    } else {
        base.probabilities(Field::BirthDate, Level::Exact).0
    };
    let matches_sharing_date = date_pass.share * date_pass.pairs.len() as f64;
    let matching_pairs = matches_sharing_date / m_date_exact;
    let all_pairs = n as f64 * (n as f64 - 1.0) / 2.0;
    let population = options.population.unwrap_or(n as u64).max(2) as f64;
    // Matching pairs grow with the records, all pairs with their square.
    let prior = (matching_pairs / all_pairs) * (n as f64 - 1.0) / (population - 1.0);
    let prior = prior.clamp(1e-15, 0.5);
    let prior_bits = (prior / (1.0 - prior)).log2();
    let certain = round2(options.certain_odds - prior_bits);
    let possible = round2(options.possible_odds - prior_bits);

    // The file.
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Patient-matching configuration trained by `iisbulk matching train` on {n} records\n\
         # (no labels read). m: expectation-maximisation over pairs sharing a birth date\n\
         # (every field but the birth date) and pairs sharing given and family name (every\n\
         # field but the names); u: {} random pairs; term frequencies: each name's share of\n\
         # the records. Fields marked `kept` were too rare in the records and keep the base\n\
         # configuration's ({}) values. Change `version` whenever anything below changes.",
        random.len(),
        base.version
    );
    let _ = writeln!(text, "version = {:?}\n", options.version);
    let _ = writeln!(
        text,
        "[bands]\n\
         # Posterior odds of a match = prior odds x 2^score. Prior: about {matching_pairs:.0}\n\
         # matching pairs among the {n} training records ({:.3} per record), so two records\n\
         # drawn at random from a registry of {population:.0} match with odds 2^{prior_bits:.2}.\n\
         # certain: posterior odds 2^{:.2}; possible: 2^{:.2}.\n\
         certain = {certain}\n\
         possible = {possible}\n\
         # The bands above are for a registry of this many records; a registry\n\
         # of N records adds log2(N / records) to both.\n\
         records = {population:.0}\n",
        matching_pairs / n as f64,
        options.certain_odds,
        options.possible_odds,
    );
    let b = &base.blocking;
    let _ = writeln!(text, "[blocking]\nmax_block = {}", b.max_block);
    if let Some(c) = b.max_candidates {
        let _ = writeln!(text, "max_candidates = {c}");
    }
    let s = &base.similarity;
    let _ = writeln!(
        text,
        "\n[similarity]\nclose_name = {}\nclose_street = {}\n",
        s.close_name, s.close_street
    );
    let v = &base.vetoes;
    let _ = writeln!(
        text,
        "[vetoes]\nmin_compared = {}\nmultiple_birth = {}\nbirth_order = {}\nsuspected_twin = {}\n\
         conflicting_birth_date = {}\nconflicting_suffix = {}\nconflicting_identifier = {}\n\
         insufficient_identity = {}\nnamesake = {}\nsparse = {}\nguessed_birth_date = {}\nundated_needs_identifier = {}\ncount_identifiers = {}\n",
        v.min_compared,
        v.multiple_birth,
        v.birth_order,
        v.suspected_twin,
        v.conflicting_birth_date,
        v.conflicting_suffix,
        v.conflicting_identifier,
        v.insufficient_identity,
        v.namesake,
        v.sparse,
        v.guessed_birth_date,
        v.undated_needs_identifier,
        v.count_identifiers
    );
    for field in Field::ALL {
        let f = field as usize;
        let how = match source[f] {
            Source::Trained => "trained".to_owned(),
            Source::Kept => format!("kept from {}", base.version),
        };
        let _ = writeln!(text, "[fields.{}]  # {how}", field.name());
        for level in field.levels() {
            let (m, u) = written[f][*level as usize];
            let kept = source[f] == Source::Trained
                && (level_seen[f][*level as usize] < options.min_level
                    || random_seen[f][*level as usize] < options.min_level);
            let _ = writeln!(
                text,
                "{:<14} = {{ m = {}, u = {} }}  # weight {:.2}{}",
                level.name(),
                sig(m),
                sig(u),
                (m / u).log2(),
                if kept { " (too rare: kept)" } else { "" }
            );
        }
        let _ = writeln!(text);
    }
    for (field, floor, values, _) in &frequencies {
        let _ = writeln!(
            text,
            "[term_frequencies.{}]\nfloor = {}\nmax_boost = {:.2}\n\n[term_frequencies.{}.values]",
            field.name(),
            sig(*floor),
            options.tf_max_boost,
            field.name()
        );
        for (name, share) in values {
            let _ = writeln!(text, "{name} = {}", sig(*share));
        }
        let _ = writeln!(text);
    }
    let config = Config::parse(&text).map_err(|e| format!("the trained configuration: {e}"))?;

    // The summary.
    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "trained on {n} records: {} random pairs for u",
        random.len()
    );
    for pass in &passes {
        let _ = writeln!(
            summary,
            "  pass {:<28} {:>9} pairs, {:>6.2}% matches; learns {}",
            pass.name,
            pass.pairs.len(),
            100.0 * pass.share,
            pass.fields
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        summary,
        "  matching pairs: about {matching_pairs:.0} ({:.3} per record); prior for a registry of {population:.0} records: 2^{prior_bits:.2}",
        matching_pairs / n as f64
    );
    let _ = writeln!(
        summary,
        "  bands: certain >= {certain} (posterior odds 2^{:.2}), possible >= {possible} (2^{:.2})",
        options.certain_odds, options.possible_odds
    );
    let _ = writeln!(summary, "  weights (log2 m/u) per field and level:");
    for field in Field::ALL {
        let f = field as usize;
        let levels: Vec<String> = field
            .levels()
            .iter()
            .map(|l| {
                let (m, u) = written[f][*l as usize];
                format!("{} {:+.2}", l.name(), (m / u).log2())
            })
            .collect();
        let _ = writeln!(
            summary,
            "    {:<15} {:<8} {}",
            field.name(),
            match source[f] {
                Source::Trained => "trained",
                Source::Kept => "kept",
            },
            levels.join(", ")
        );
    }
    for (field, floor, values, distinct) in &frequencies {
        let common: Vec<String> = {
            let mut v: Vec<(&String, &f64)> = values.iter().collect();
            v.sort_by(|a, b| b.1.total_cmp(a.1));
            v.iter()
                .take(5)
                .map(|(n, s)| format!("{n} {:.2}%", 100.0 * **s))
                .collect()
        };
        let _ = writeln!(
            summary,
            "  term frequencies, {}: {distinct} distinct, {} listed, floor {}; most common {}",
            field.name(),
            values.len(),
            sig(*floor),
            common.join(", ")
        );
    }
    Ok(Trained {
        config_text: text,
        config,
        summary,
    })
}

/// Every pair of records sharing a key (at most `max_group` records of one
/// key are paired).
fn group_pairs(
    records: &[MatchRecord],
    key: impl Fn(&MatchRecord) -> Option<String>,
    max_group: usize,
) -> Vec<(usize, usize)> {
    let mut groups: FxHashMap<String, Vec<usize>> = FxHashMap::default();
    for (i, r) in records.iter().enumerate() {
        if let Some(k) = key(r) {
            let group = groups.entry(k).or_default();
            if group.len() < max_group {
                group.push(i);
            }
        }
    }
    let mut keys: Vec<&String> = groups.keys().collect();
    keys.sort();
    let mut pairs = Vec::new();
    for k in keys {
        let members = &groups[k];
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                pairs.push((i, j));
            }
        }
    }
    pairs
}

fn present_in(pairs: &[Levels], field: Field) -> usize {
    pairs
        .iter()
        .filter(|p| p[field as usize] != Level::Missing)
        .count()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Four significant digits, as TOML reads them.
fn sig(x: f64) -> String {
    if x >= 0.001 {
        let digits = (3 - x.log10().floor() as i32).max(0) as usize;
        format!("{x:.digits$}")
    } else {
        format!("{x:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_writes_toml_floats() {
        assert_eq!(sig(0.91234), "0.9123");
        assert_eq!(sig(0.0012345), "0.001234");
        assert_eq!(sig(0.00012345), "1.234e-4");
        assert_eq!(sig(1.0), "1.000");
        assert!(
            Config::parse(&crate::config::BUILT_IN.replace("m = 0.88,", "m = 1.234e-1,")).is_ok()
        );
    }

    #[test]
    fn refuses_too_few_records() {
        let err = train(&[], &Config::built_in(), &TrainOptions::default()).unwrap_err();
        assert!(err.contains("at least 100"), "{err}");
    }
}
