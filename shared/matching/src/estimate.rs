//! Fellegi-Sunter probabilities estimated from records without labels, the
//! way general-fs-2's were (`examples/estimate.rs` runs it on FEBRL):
//! u is the share of each level among random pairs, which are nearly all
//! different people; m comes from expectation-maximisation over the
//! blocked candidate pairs, a mixture of matches and non-matches, with u
//! held at its random-pair value (fields assumed independent given the
//! class, as the weights themselves assume).

use crate::compare::{Field, Level};

/// The levels of one compared pair, by field.
pub type Levels = [Level; Field::COUNT];

/// A probability per field and level (missing is never counted).
pub type Table = [[f64; Level::COUNT]; Field::COUNT];

/// What an estimation found.
#[derive(Clone, Debug)]
pub struct Estimate {
    pub m: Table,
    pub u: Table,
    /// The share of candidate pairs that are matches.
    pub match_share: f64,
    /// Pairs with the field present on both sides, among the candidates:
    /// a field seen too rarely keeps its configured values.
    pub present: [usize; Field::COUNT],
}

/// Each level's share among the pairs where the field is present, with
/// half a pair added to every level so none is estimated at zero.
pub fn shares(pairs: &[Levels], weights: impl Fn(usize) -> f64) -> Table {
    let mut table = [[0.0; Level::COUNT]; Field::COUNT];
    for field in Field::ALL {
        let f = field as usize;
        let mut counts = [0.0; Level::COUNT];
        let mut total = 0.0;
        for (n, pair) in pairs.iter().enumerate() {
            if pair[f] != Level::Missing {
                counts[pair[f] as usize] += weights(n);
                total += weights(n);
            }
        }
        let levels = field.levels();
        for level in levels {
            table[f][*level as usize] =
                (counts[*level as usize] + 0.5) / (total + 0.5 * levels.len() as f64);
        }
    }
    table
}

/// m by expectation-maximisation over `candidates` for the `fields` given,
/// with u held at `u`; the fields not given are left out of the likelihood
/// (the ones the candidates were chosen by agreeing on, whose agreement
/// says nothing there). Returns m (zero for fields not given) and the share
/// of candidates that are matches.
pub fn expectation_maximisation(
    candidates: &[Levels],
    u: &Table,
    fields: &[Field],
    rounds: usize,
) -> (Table, f64) {
    let mut m = [[0.0; Level::COUNT]; Field::COUNT];
    for field in fields {
        let levels = field.levels();
        for (k, level) in levels.iter().enumerate() {
            m[*field as usize][*level as usize] = if k == 0 {
                0.9
            } else {
                0.1 / (levels.len() - 1).max(1) as f64
            };
        }
    }
    let mut share: f64 = 0.5;
    for _ in 0..rounds {
        let posterior = posteriors(candidates, &m, u, fields, share);
        share = (posterior.iter().sum::<f64>() / candidates.len().max(1) as f64)
            .clamp(1e-9, 1.0 - 1e-9);
        let all = shares(candidates, |n| posterior[n]);
        for field in fields {
            m[*field as usize] = all[*field as usize];
        }
    }
    (m, share)
}

/// Each candidate's probability of being a match under m, u and the match
/// share, over the `fields` given (the expectation step).
pub fn posteriors(
    candidates: &[Levels],
    m: &Table,
    u: &Table,
    fields: &[Field],
    share: f64,
) -> Vec<f64> {
    candidates
        .iter()
        .map(|pair| {
            let (mut log_m, mut log_u) = (share.ln(), (1.0 - share).ln());
            for field in fields {
                let level = pair[*field as usize];
                if level != Level::Missing {
                    log_m += m[*field as usize][level as usize].ln();
                    log_u += u[*field as usize][level as usize].ln();
                }
            }
            1.0 / (1.0 + (log_u - log_m).exp())
        })
        .collect()
}

/// Estimates m and u: `random` pairs give u, `candidates` give m.
pub fn estimate(candidates: &[Levels], random: &[Levels], rounds: usize) -> Estimate {
    let u = shares(random, |_| 1.0);
    // Start from "agreement is likely for a match": the first level of each
    // field (its best) at 0.9.
    let mut m = [[0.0; Level::COUNT]; Field::COUNT];
    for field in Field::ALL {
        let levels = field.levels();
        for (k, level) in levels.iter().enumerate() {
            m[field as usize][*level as usize] = if k == 0 {
                0.9
            } else {
                0.1 / (levels.len() - 1).max(1) as f64
            };
        }
    }
    let mut share: f64 = 0.5;
    let mut posterior = vec![0.0; candidates.len()];
    for _ in 0..rounds {
        for (p, pair) in posterior.iter_mut().zip(candidates) {
            let (mut log_m, mut log_u) = (share.ln(), (1.0 - share).ln());
            for field in Field::ALL {
                let level = pair[field as usize];
                if level != Level::Missing {
                    log_m += m[field as usize][level as usize].ln();
                    log_u += u[field as usize][level as usize].ln();
                }
            }
            *p = 1.0 / (1.0 + (log_u - log_m).exp());
        }
        share = posterior.iter().sum::<f64>() / candidates.len().max(1) as f64;
        m = shares(candidates, |n| posterior[n]);
    }
    let mut present = [0; Field::COUNT];
    for pair in candidates {
        for field in Field::ALL {
            if pair[field as usize] != Level::Missing {
                present[field as usize] += 1;
            }
        }
    }
    Estimate {
        m,
        u,
        match_share: share,
        present,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Pairs drawn from known probabilities: estimation finds them again.
    #[test]
    fn recovers_the_probabilities_it_was_drawn_from() {
        let mut rng = Rng::new(3);
        let draw = |rng: &mut Rng, agree: f64| {
            let mut pair = [Level::Missing; Field::COUNT];
            for field in [Field::Given, Field::Family, Field::BirthDate, Field::Sex] {
                pair[field as usize] = if rng.chance(agree) {
                    Level::Exact
                } else {
                    Level::Different
                };
            }
            pair
        };
        let random: Vec<Levels> = (0..50_000).map(|_| draw(&mut rng, 0.05)).collect();
        let candidates: Vec<Levels> = (0..20_000)
            .map(|n| {
                let agree = if n % 4 == 0 { 0.05 } else { 0.9 };
                draw(&mut rng, agree)
            })
            .collect();
        let e = estimate(&candidates, &random, 50);
        assert!((e.match_share - 0.75).abs() < 0.02, "{}", e.match_share);
        let m = e.m[Field::Given as usize][Level::Exact as usize];
        let u = e.u[Field::Given as usize][Level::Exact as usize];
        assert!((m - 0.9).abs() < 0.02 && (u - 0.05).abs() < 0.01, "{m} {u}");
        assert_eq!(e.present[Field::Phone as usize], 0);
    }
}
