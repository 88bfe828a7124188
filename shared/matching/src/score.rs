//! Fellegi-Sunter scoring of one pair, the IIS vetoes, and the band.

use serde::{Deserialize, Serialize};

use crate::compare::{Field, Level};
use crate::config::{Bands, Config};
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

/// IIS rules that decide a pair whatever its score. Most say the two are
/// different people (the pair grades none): the fields that tell two
/// children apart are present and disagree. A few only hold the pair at
/// possible, where the fields that would tell are missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Veto {
    /// One record says the patient is from a multiple birth (PID-24 = Y)
    /// and the first names do not agree exactly: a twin's name may be a
    /// near twin of the other's (Aiden, Aidan). Holds at possible.
    MultipleBirth,
    /// Both give a birth order (PID-25) and they differ: different people.
    BirthOrder,
    /// The same household (phone, street, guardian or mother's maiden
    /// name), family name or a multiple birth, the same birth date or one a
    /// slip away, but one first name is missing or only an initial (BABY
    /// GIRL counts as none): a twin or sibling cannot be told from the same
    /// child. Holds at possible.
    SuspectedTwin,
    /// The same household, family name or a multiple birth, the same birth
    /// date or one a slip away, and both first names given and different:
    /// two children of one family (twins, or siblings whose birth dates are
    /// a keying slip apart). Different people.
    Twins,
    /// Birth dates further apart than a keying slip (or a month/day swap):
    /// different people.
    ConflictingBirthDate,
    /// Jr against Sr, II against III: different people.
    ConflictingSuffix,
    /// The same assigning authority gave them different identifiers. Holds
    /// at possible where a jurisdiction's identifiers are reliable; off in
    /// the IIS configuration, where clinics re-register children under a
    /// new chart number and the difference only weighs. (SSNs that differ
    /// only weigh too: a parent's SSN is often keyed in for a child.)
    ConflictingIdentifier,
    /// Birth dates and identifiers both differ beyond a slip: namesakes
    /// living near each other, however well names and address agree. For
    /// configurations where neither conflict vetoes alone. Holds at
    /// possible.
    Namesake,
    /// Too few fields present on both sides to tell two people apart.
    /// Holds at possible.
    MostlyMissing,
    /// Both records hold only the least a VXU carries (name, birth date,
    /// sex, address, a clinic's chart number): agreement on that much is
    /// for a person to confirm. Holds at possible.
    Sparse,
    /// One birth date was read by guessing how it was written and it does
    /// not agree: it cannot tell the two apart, nor can anything say they
    /// are one child born on one day. Holds at possible.
    GuessedBirthDate,
    /// One record has no valid birth date or no name at all: it can
    /// never be linked to anyone (none). Only a population with a
    /// reliable national identifier may switch it off.
    InsufficientIdentity,
}

impl Veto {
    pub const ALL: [Veto; 12] = [
        Veto::MultipleBirth,
        Veto::BirthOrder,
        Veto::SuspectedTwin,
        Veto::Twins,
        Veto::ConflictingBirthDate,
        Veto::ConflictingSuffix,
        Veto::ConflictingIdentifier,
        Veto::Namesake,
        Veto::MostlyMissing,
        Veto::Sparse,
        Veto::GuessedBirthDate,
        Veto::InsufficientIdentity,
    ];

    /// The best grade a pair can have when this rule fires: none where it
    /// shows two people, possible where it only shows too little to tell.
    pub fn cap(self) -> Grade {
        match self {
            Veto::MultipleBirth
            | Veto::SuspectedTwin
            | Veto::ConflictingIdentifier
            | Veto::Namesake
            | Veto::MostlyMissing
            | Veto::Sparse
            | Veto::GuessedBirthDate => Grade::Possible,
            Veto::BirthOrder
            | Veto::Twins
            | Veto::ConflictingBirthDate
            | Veto::ConflictingSuffix
            | Veto::InsufficientIdentity => Grade::None,
        }
    }
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
    /// Fields present on both sides (sex and identifiers not counted).
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
    /// Each field's weight (term frequency applied).
    pub weights: [f64; Field::COUNT],
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
                weight: self.weights[field as usize],
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

/// Scores a pair and applies the vetoes, without explaining, with the
/// configuration's own bands.
pub fn assess(config: &Config, a: &MatchRecord, b: &MatchRecord) -> Assessment {
    assess_in(config, &config.bands, a, b)
}

/// [`assess`] with the bands of a registry of some size ([`Bands::at`]).
pub fn assess_in(config: &Config, bands: &Bands, a: &MatchRecord, b: &MatchRecord) -> Assessment {
    let mut levels = [Level::Missing; Field::COUNT];
    let mut weights = [0.0; Field::COUNT];
    let mut score = 0.0;
    let mut compared = 0;
    for field in Field::ALL {
        let level = field.compare(a, b, config);
        // Sex agrees half the time by chance, and in an IIS identifiers
        // (chart, Medicaid and social security numbers) are shared within
        // families and reused by clinics: neither counts against the
        // "mostly missing" veto, though both weigh.
        let identifier = matches!(field, Field::Identifier | Field::Ssn);
        if level != Level::Missing
            && field != Field::Sex
            && (!identifier || config.vetoes.count_identifiers)
        {
            compared += 1;
        }
        let weight = config.weight_of(field, level, exact_value(field, level, a, b));
        score += weight;
        weights[field as usize] = weight;
        levels[field as usize] = level;
    }
    let uncapped = if score >= bands.certain {
        Grade::Certain
    } else if score >= bands.possible {
        Grade::Possible
    } else {
        Grade::None
    };
    let vetoes = vetoes(config, a, b, compared, &levels);
    let mut grade = uncapped;
    for veto in Veto::ALL {
        if vetoes & (1 << veto as u32) != 0 {
            grade = grade.min(veto.cap());
        }
    }
    Assessment {
        grade,
        uncapped,
        score,
        levels,
        compared,
        vetoes,
        weights,
    }
}

/// The value both records share, for a term-frequency weight: the given or
/// family name when they agree exactly on it (not through an alias).
fn exact_value<'r>(
    field: Field,
    level: Level,
    a: &'r MatchRecord,
    b: &MatchRecord,
) -> Option<&'r str> {
    if level != Level::Exact {
        return None;
    }
    let (x, y) = match field {
        Field::Given => (&a.given, &b.given),
        Field::Family => (&a.family, &b.family),
        _ => return None,
    };
    match (x, y) {
        (Some(x), Some(y)) if x.text == y.text => Some(x.text.as_str()),
        _ => None,
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
    // Without a birth date on one side, only an identifier the two share
    // can tell this child from a parent of the same name at the same
    // address (Jr and Sr).
    let undated = a.birth_date.is_none() || b.birth_date.is_none();
    let same_number = level(Field::Identifier) == Level::Exact || level(Field::Ssn) == Level::Exact;
    let undated_unproven = on.undated_needs_identifier && undated && !same_number;
    if on.insufficient_identity && (!a.is_linkable() || !b.is_linkable() || undated_unproven) {
        fire(Veto::InsufficientIdentity);
    }
    if on.birth_order && matches!((a.birth_order, b.birth_order), (Some(x), Some(y)) if x != y) {
        fire(Veto::BirthOrder);
    }
    // The same home: the same phone, address (but for a typo), guardian or
    // mother.
    let household = matches!(level(Field::Phone), Level::Exact | Level::Local)
        || matches!(level(Field::Address), Level::Exact | Level::Close)
        || matches!(level(Field::Guardian), Level::Exact | Level::Partial)
        || level(Field::MothersMaiden) == Level::Exact;
    let multiple = a.multiple_birth == Some(true) || b.multiple_birth == Some(true);
    let family = matches!(
        level(Field::Family),
        Level::Exact | Level::Partial | Level::Close | Level::Phonetic
    );
    let given = level(Field::Given);
    // Two children of one family share the family name and the household,
    // twins the birth date too, and a sibling's birth date can be one
    // keying slip from the other's; only the first name tells them apart
    // (the household fields agree because they are a family, not because
    // they are one child). Where it is missing nothing can; where it
    // differs they are two children.
    let date = level(Field::BirthDate);
    let same_or_near_date = !matches!(date, Level::Missing | Level::Different);
    let family_context = same_or_near_date && (household || multiple || family);
    // A child renamed (adopted, or named again) keeps the middle name more
    // often than twins share one: a first name that differs beside a full
    // middle name that agrees, on the same birth date, is for a person.
    let same_full_middle = level(Field::Middle) == Level::Exact;
    if on.suspected_twin && family_context {
        match given {
            Level::Different if same_full_middle && date == Level::Exact => {
                fire(Veto::SuspectedTwin)
            }
            Level::Different => fire(Veto::Twins),
            Level::Missing | Level::Initial => fire(Veto::SuspectedTwin),
            _ => {}
        }
    }
    // Of a multiple birth, only the very same first name is the same child:
    // a twin's name may be one slip from the other's.
    if on.multiple_birth && multiple && !matches!(given, Level::Exact | Level::Different) {
        fire(Veto::MultipleBirth);
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
    if on.conflicting_identifier && level(Field::Identifier) == Level::Different {
        fire(Veto::ConflictingIdentifier);
    }
    let identifier_conflicts =
        level(Field::Identifier) == Level::Different || level(Field::Ssn) == Level::Different;
    if on.namesake && level(Field::BirthDate) == Level::Different && identifier_conflicts {
        fire(Veto::Namesake);
    }
    if compared < config.vetoes.min_compared {
        fire(Veto::MostlyMissing);
    }
    if on.sparse && a.is_thin() && b.is_thin() {
        fire(Veto::Sparse);
    }
    let guessed = a.birth_date_repaired || b.birth_date_repaired;
    if on.guessed_birth_date
        && guessed
        && level(Field::BirthDate) == Level::Missing
        && a.birth_date.is_some()
        && b.birth_date.is_some()
    {
        fire(Veto::GuessedBirthDate);
    }
    out
}
