//! Labelled pairs: two records and whether they are one person, as the
//! IIS's reviewers decided on the possible-duplicate queue (`iisbulk
//! patients decisions --export`), one JSON object per line:
//!
//! ```json
//! {"id":"…","a":{record},"b":{record},"same_person":true,"decided_at":1790000000000}
//! ```
//!
//! the pair lines `iisbulk matching compare` reads, with the label. A
//! configuration is judged on them (`grade`), never trained on them: the
//! pairs a reviewer sees are the ones the matcher found hard, a sample
//! biased towards the possible band, so they are an acceptance check (as
//! AIRA's MIIS pairs are), not a sample to estimate m or u from.

use serde::{Deserialize, Serialize};

use crate::{Grade, Matcher, PatientRecord};

/// One labelled pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelledPair {
    pub id: String,
    pub a: PatientRecord,
    pub b: PatientRecord,
    /// Whether the two records are one person.
    pub same_person: bool,
    /// When the label was given (epoch milliseconds), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
}

/// Parses labelled-pair lines; the error names the line (never its
/// content: the records hold PHI).
pub fn parse(text: &str) -> Result<Vec<LabelledPair>, String> {
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let pair: LabelledPair = serde_json::from_str(line).map_err(|e| {
            format!(
                "line {}: not a labelled pair (column {}: {})",
                n + 1,
                e.column(),
                category(&e)
            )
        })?;
        pairs.push(pair);
    }
    Ok(pairs)
}

/// What serde says went wrong, without the value it quotes.
fn category(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "not JSON",
        Category::Data => "a field is missing, unknown or of the wrong type",
        Category::Eof => "cut short",
    }
}

/// How a configuration grades labelled pairs: counts per label and grade
/// (indexed by `Grade as usize`: none, possible, certain).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Grading {
    pub same: [usize; 3],
    pub different: [usize; 3],
}

impl Grading {
    /// Pairs of one person graded certain (merged without a reviewer).
    pub fn same_certain(&self) -> usize {
        self.same[Grade::Certain as usize]
    }

    /// Pairs of different people graded certain: false merges.
    pub fn false_merges(&self) -> usize {
        self.different[Grade::Certain as usize]
    }

    /// One line per label, in words.
    pub fn summary(&self, name: &str) -> String {
        let line = |label: &str, counts: &[usize; 3]| {
            format!(
                "  {name:<28} {label:<17} {:>6} pairs: {:>6} certain, {:>6} possible, {:>6} none\n",
                counts.iter().sum::<usize>(),
                counts[Grade::Certain as usize],
                counts[Grade::Possible as usize],
                counts[Grade::None as usize],
            )
        };
        let mut text = line("same person", &self.same);
        text.push_str(&line("different people", &self.different));
        text
    }
}

/// Grades every pair with `matcher`.
pub fn grade(matcher: &Matcher, pairs: &[LabelledPair]) -> Grading {
    let mut grading = Grading::default();
    for pair in pairs {
        let decision = matcher.decide(&matcher.normalize(&pair.a), &matcher.normalize(&pair.b));
        let counts = if pair.same_person {
            &mut grading.same
        } else {
            &mut grading.different
        };
        counts[decision.grade as usize] += 1;
    }
    grading
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, given: &str) -> PatientRecord {
        PatientRecord {
            id: id.into(),
            given: Some(given.into()),
            family: Some("Okonkwo-Lindqvist".into()),
            birth_date: Some("2024-03-05".into()),
            sex: Some("F".into()),
            street: Some("12 Elm Street".into()),
            zip: Some("48910".into()),
            phone: Some("5175550142".into()),
            ..Default::default()
        }
    }

    #[test]
    fn pairs_round_trip_and_are_graded_by_label() {
        let pairs = vec![
            LabelledPair {
                id: "1".into(),
                a: record("a1", "Katherine"),
                b: record("b1", "Katherine"),
                same_person: true,
                decided_at: Some(1),
            },
            LabelledPair {
                id: "2".into(),
                a: record("a2", "Katherine"),
                b: PatientRecord {
                    id: "b2".into(),
                    given: Some("Zebulon".into()),
                    family: Some("Quintero".into()),
                    birth_date: Some("1961-11-30".into()),
                    sex: Some("M".into()),
                    ..Default::default()
                },
                same_person: false,
                decided_at: None,
            },
        ];
        let text: String = pairs
            .iter()
            .map(|p| serde_json::to_string(p).unwrap() + "\n")
            .collect();
        assert_eq!(parse(&text).unwrap(), pairs);
        let grading = grade(&Matcher::default(), &pairs);
        assert_eq!(grading.same.iter().sum::<usize>(), 1);
        assert_eq!(grading.different[Grade::None as usize], 1);
        assert_eq!(grading.false_merges(), 0);
        assert!(grading.summary("shipped").contains("different people"));
    }

    #[test]
    fn a_bad_line_is_named_without_its_content() {
        let e =
            parse("\n{\"id\":\"1\",\"a\":{\"id\":\"x\",\"given\":\"Secretname\"}}\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        assert!(!e.contains("Secretname"), "{e}");
    }
}
