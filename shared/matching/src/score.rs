//! Fellegi-Sunter scoring of one pair, the IIS vetoes, and the band.

use serde::{Deserialize, Serialize};

use crate::compare::{Field, Level};
use crate::config::Config;
use crate::normalize::MatchRecord;

/// How sure the IIS is that two records are one person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    /// Different people (or too little to say): a new person.
    None,
    /// Perhaps the same: never merged automatically; kept apart and flagged.
    Possible,
    /// The same person: linked automatically.
    Certain,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::None => "none",
            Grade::Possible => "possible",
            Grade::Certain => "certain",
        }
    }
}

/// IIS rules that hold a pair back from `certain` however high its score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Veto {
    /// One record says the patient is from a multiple birth (PID-24 = Y).
    MultipleBirth,
    /// Both give a birth order (PID-25) and they differ.
    BirthOrder,
    /// Same birth date and household (phone, street, guardian or mother's
    /// maiden name) but a different, missing or initial-only first name:
    /// the classic twin.
    SuspectedTwin,
    /// Birth dates further apart than a keying slip (or a month/day swap).
    ConflictingBirthDate,
    /// Jr against Sr, II against III.
    ConflictingSuffix,
    /// The same assigning authority gave them different identifiers
    /// (or the SSNs differ).
    ConflictingIdentifier,
    /// Birth dates and identifiers both differ beyond a slip: namesakes
    /// living near each other, however well names and address agree. For
    /// configurations where neither conflict vetoes alone.
    Namesake,
    /// Too few fields present on both sides to tell two people apart.
    MostlyMissing,
    /// One record has no valid birth date or no name at all: it can
    /// never be linked to anyone (caps at none). Only a population with a
    /// reliable national identifier may switch it off.
    InsufficientIdentity,
}

impl Veto {
    pub const ALL: [Veto; 9] = [
        Veto::MultipleBirth,
        Veto::BirthOrder,
        Veto::SuspectedTwin,
        Veto::ConflictingBirthDate,
        Veto::ConflictingSuffix,
        Veto::ConflictingIdentifier,
        Veto::Namesake,
        Veto::MostlyMissing,
        Veto::InsufficientIdentity,
    ];
}

/// One field's contribution.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    pub field: Field,
    pub level: Level,
    pub weight: f64,
}

/// Why a pair got its grade: every field's level and weight, the vetoes
/// that fired, the sum, and which configuration said so.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    pub config: String,
    pub score: f64,
    /// The grade the score alone would give.
    pub uncapped: Grade,
    pub fields: Vec<Evidence>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vetoes: Vec<Veto>,
    /// Fields present on both sides (sex not counted).
    pub compared: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub grade: Grade,
    pub score: f64,
    pub explanation: Explanation,
}

/// The allocation-free part of a decision: what matching a candidate costs
/// for the hundreds of candidates that end up graded none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Assessment {
    pub grade: Grade,
    pub uncapped: Grade,
    pub score: f64,
    pub levels: [Level; Field::COUNT],
    pub compared: u32,
    /// Vetoes that fired, as bits of `Veto as u32`.
    pub vetoes: u32,
}

impl Assessment {
    pub fn level(&self, field: Field) -> Level {
        self.levels[field as usize]
    }

    pub fn vetoed(&self, veto: Veto) -> bool {
        self.vetoes & (1 << veto as u32) != 0
    }

    /// The full, explained decision.
    pub fn explain(&self, config: &Config) -> Decision {
        let fields = Field::ALL
            .iter()
            .map(|&field| Evidence {
                field,
                level: self.level(field),
                weight: config.weight(field, self.level(field)),
            })
            .collect();
        let vetoes = Veto::ALL
            .iter()
            .copied()
            .filter(|v| self.vetoed(*v))
            .collect();
        Decision {
            grade: self.grade,
            score: self.score,
            explanation: Explanation {
                config: config.version.clone(),
                score: self.score,
                uncapped: self.uncapped,
                fields,
                vetoes,
                compared: self.compared,
            },
        }
    }
}

/// Scores a pair and applies the vetoes, without explaining.
pub fn assess(config: &Config, a: &MatchRecord, b: &MatchRecord) -> Assessment {
    let mut levels = [Level::Missing; Field::COUNT];
    let mut score = 0.0;
    let mut compared = 0;
    for field in Field::ALL {
        let level = field.compare(a, b, &config.similarity);
        // Sex agrees half the time by chance: it is not evidence enough
        // to count against the "mostly missing" veto.
        if level != Level::Missing && field != Field::Sex {
            compared += 1;
        }
        score += config.weight(field, level);
        levels[field as usize] = level;
    }
    let uncapped = if score >= config.bands.certain {
        Grade::Certain
    } else if score >= config.bands.possible {
        Grade::Possible
    } else {
        Grade::None
    };
    let vetoes = vetoes(config, a, b, compared, &levels);
    let mut grade = uncapped;
    for veto in Veto::ALL {
        if vetoes & (1 << veto as u32) != 0 {
            grade = grade.min(if veto == Veto::InsufficientIdentity {
                Grade::None
            } else {
                Grade::Possible
            });
        }
    }
    Assessment {
        grade,
        uncapped,
        score,
        levels,
        compared,
        vetoes,
    }
}

/// Scores a pair, applies the vetoes and explains the decision.
pub fn decide(config: &Config, a: &MatchRecord, b: &MatchRecord) -> Decision {
    assess(config, a, b).explain(config)
}

fn vetoes(
    config: &Config,
    a: &MatchRecord,
    b: &MatchRecord,
    compared: u32,
    levels: &[Level; Field::COUNT],
) -> u32 {
    let level = |f: Field| levels[f as usize];
    let on = &config.vetoes;
    let mut out = 0u32;
    let mut fire = |v: Veto| out |= 1 << v as u32;
    if on.insufficient_identity && (!a.is_linkable() || !b.is_linkable()) {
        fire(Veto::InsufficientIdentity);
    }
    if on.multiple_birth && (a.multiple_birth == Some(true) || b.multiple_birth == Some(true)) {
        fire(Veto::MultipleBirth);
    }
    if on.birth_order && matches!((a.birth_order, b.birth_order), (Some(x), Some(y)) if x != y) {
        fire(Veto::BirthOrder);
    }
    let household = matches!(level(Field::Phone), Level::Exact | Level::Local)
        || level(Field::Address) == Level::Exact
        || matches!(level(Field::Guardian), Level::Exact | Level::Partial)
        || level(Field::MothersMaiden) == Level::Exact;
    // A first name that differs, or that one side lacks (BABY GIRL counts as
    // none), is what two children of one birth look like.
    let first_name_unproven = matches!(
        level(Field::Given),
        Level::Different | Level::Missing | Level::Initial
    );
    if on.suspected_twin
        && level(Field::BirthDate) == Level::Exact
        && household
        && first_name_unproven
    {
        fire(Veto::SuspectedTwin);
    }
    // Birth dates that are not one slip apart are two children of one
    // household however much else agrees (a sister's middle name can be
    // the younger one's first name).
    if on.conflicting_birth_date && level(Field::BirthDate) == Level::Different {
        fire(Veto::ConflictingBirthDate);
    }
    if on.conflicting_suffix && matches!((&a.suffix, &b.suffix), (Some(x), Some(y)) if x != y) {
        fire(Veto::ConflictingSuffix);
    }
    let identifier_conflicts =
        level(Field::Identifier) == Level::Different || level(Field::Ssn) == Level::Different;
    if on.conflicting_identifier && identifier_conflicts {
        fire(Veto::ConflictingIdentifier);
    }
    if on.namesake && level(Field::BirthDate) == Level::Different && identifier_conflicts {
        fire(Veto::Namesake);
    }
    if compared < config.vetoes.min_compared {
        fire(Veto::MostlyMissing);
    }
    out
}
