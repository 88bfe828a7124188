//! A record's sketch: its comparison form packed into a few cache lines
//! without a pointer, and a ceiling on a pair's score read from two sketches
//! alone.
//!
//! Nearly every candidate a block brings grades none, and at a million
//! records reading one full record is several trips to memory. The ceiling
//! proves "none" for most candidates from the sketches, so only the few
//! that might reach the possible band are scored in full.
//!
//! The ceiling walks each comparison of [`crate::compare`] level by level.
//! What a sketch holds exactly (dates, sex, phones, short numbers) decides a
//! condition; what it holds as a fingerprint (names, streets) can rule a
//! condition out (different fingerprints are different texts) but never
//! confirm it; a Jaro-Winkler similarity is bounded from the lengths, first
//! letters and letter sets. A field's ceiling is the best weight among the
//! levels still possible, so the sum is never below the pair's score and a
//! pair whose ceiling misses the possible band is graded none by
//! [`crate::score::assess`] too. Keep the two in step: `tests` below and
//! tests/never_panics.rs check the ceiling against the score.

use std::hash::Hasher;

use rustc_hash::FxHasher;

use crate::compare::{birth_date_level, repaired_birth_date, Field, Level};
use crate::config::Config;
use crate::normalize::{BirthDate, MatchRecord, Name};

/// Nickname groups kept per given name; a name in more groups (rare) makes
/// any pair of group lists possibly overlapping.
const GROUP_SLOTS: usize = 3;
/// Identifiers kept per record; more make the identifier field unbounded.
const IDENTIFIER_SLOTS: usize = 2;
/// Bytes of a short value kept whole.
const TOKEN_BYTES: usize = 10;
/// Jaro-Winkler reads this many bytes of each string (see `text::jaro`).
const JARO_BYTES: usize = 64;

/// The packed comparison form of a [`MatchRecord`]: four cache lines,
/// fields in the order the ceiling reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Sketch {
    given: Text,
    middle: Text,
    family: Text,
    /// Fingerprints of the given name's nickname groups; `group_count`
    /// may exceed the slots.
    groups: [u32; GROUP_SLOTS],
    group_count: u8,
    /// Alias given names or family name parts exist: the sketch cannot say
    /// which texts they hold.
    other_given: bool,
    other_family: bool,
    identifier_count: u8,
    birth_date: Option<BirthDate>,
    birth_date_repaired: bool,
    sex: Option<char>,
    phone: Token,
    house: Token,
    street: Text,
    /// The secondary unit, by fingerprint (0: none).
    unit: Fingerprint,
    zip: Fingerprint,
    city: Fingerprint,
    mothers_maiden: Text,
    guardian_given: Fingerprint,
    guardian_family: Fingerprint,
    /// Authority and type, and value.
    identifiers: [(Fingerprint, Token); IDENTIFIER_SLOTS],
    ssn: Token,
}

/// A text by fingerprint; 0 stands for none.
type Fingerprint = u32;

/// A name or street: fingerprints of the text and its phonetic code, and
/// what bounds a Jaro-Winkler similarity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Text {
    text: Fingerprint,
    /// Bit `byte % 32` of every byte Jaro-Winkler reads.
    letters: u32,
    head: [u8; 4],
    code: u16,
    /// Byte length, saturated.
    len: u8,
    present: bool,
}

/// A short value (a number, a house number) kept whole when it fits, else
/// by length, first bytes and fingerprint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Token {
    whole: Fingerprint,
    head: [u8; TOKEN_BYTES],
    /// Byte length, saturated.
    len: u8,
    present: bool,
}

fn fingerprint(bytes: &[u8]) -> Fingerprint {
    let mut h = FxHasher::default();
    h.write(bytes);
    let x = h.finish();
    ((x ^ (x >> 32)) as u32).max(1)
}

fn fingerprint_of(text: Option<&str>) -> Fingerprint {
    text.map_or(0, |t| fingerprint(t.as_bytes()))
}

fn saturated(len: usize) -> u8 {
    u8::try_from(len).unwrap_or(u8::MAX)
}

impl Text {
    fn of(text: &str, code: &str) -> Text {
        let bytes = text.as_bytes();
        let mut head = [0u8; 4];
        for (h, b) in head.iter_mut().zip(bytes) {
            *h = *b;
        }
        Text {
            text: fingerprint(bytes),
            code: fingerprint(code.as_bytes()) as u16,
            present: true,
            letters: bytes
                .iter()
                .take(JARO_BYTES)
                .fold(0, |m, b| m | 1 << (b % 32)),
            head,
            len: saturated(bytes.len()),
        }
    }

    fn name(name: Option<&Name>) -> Text {
        name.map_or_else(Text::default, |n| Text::of(&n.text, &n.code))
    }
}

impl Token {
    fn of(value: &str) -> Token {
        let bytes = value.as_bytes();
        let mut head = [0u8; TOKEN_BYTES];
        for (h, b) in head.iter_mut().zip(bytes) {
            *h = *b;
        }
        Token {
            len: saturated(bytes.len()),
            head,
            whole: fingerprint(bytes),
            present: true,
        }
    }

    fn of_opt(value: Option<&str>) -> Token {
        value.map_or_else(Token::default, Token::of)
    }

    fn is_whole(&self) -> bool {
        usize::from(self.len) <= TOKEN_BYTES
    }

    fn bytes(&self) -> &[u8] {
        &self.head[..usize::from(self.len).min(TOKEN_BYTES)]
    }

    fn same(&self, other: &Token) -> Tri {
        if self.len != other.len || self.head != other.head || self.whole != other.whole {
            Tri::No
        } else if self.is_whole() {
            Tri::Yes
        } else {
            Tri::Maybe
        }
    }

    /// `compare::digits_level`: equal, one slip apart, or different.
    fn digits_level(&self, other: &Token) -> Levels {
        if self.is_whole() && other.is_whole() {
            let (x, y) = (self.bytes(), other.bytes());
            return Levels::one(if x == y {
                Level::Exact
            } else if crate::text::one_slip_bytes(x, y) {
                Level::OneDigit
            } else {
                Level::Different
            });
        }
        Walk::new()
            .step(|| self.same(other), Level::Exact)
            .step(|| Tri::maybe_if(self.len == other.len), Level::OneDigit)
            .step(|| Tri::Yes, Level::Different)
            .levels()
    }

    fn one_slip(&self, other: &Token) -> Tri {
        let levels = self.digits_level(other);
        if levels == Levels::one(Level::OneDigit) {
            Tri::Yes
        } else {
            Tri::maybe_if(levels.contains(Level::OneDigit))
        }
    }

    /// The last seven bytes of both agree (`compare::phone`'s local level).
    fn same_last_seven(&self, other: &Token) -> Tri {
        if self.len < 7 || other.len < 7 {
            return Tri::No;
        }
        if !(self.is_whole() && other.is_whole()) {
            return Tri::Maybe;
        }
        let (x, y) = (self.bytes(), other.bytes());
        Tri::of(x[x.len() - 7..] == y[y.len() - 7..])
    }
}

impl Sketch {
    pub fn of(r: &MatchRecord) -> Sketch {
        let mut groups = [0; GROUP_SLOTS];
        for (slot, g) in groups.iter_mut().zip(&r.given_groups) {
            *slot = fingerprint(g.as_bytes());
        }
        let mut identifiers = [(0, Token::default()); IDENTIFIER_SLOTS];
        for (slot, (scope, value)) in identifiers.iter_mut().zip(&r.identifiers) {
            *slot = (fingerprint(scope.as_bytes()), Token::of(value));
        }
        Sketch {
            given: Text::name(r.given.as_ref()),
            middle: Text::name(r.middle.as_ref()),
            family: Text::name(r.family.as_ref()),
            groups,
            group_count: saturated(r.given_groups.len()),
            other_given: !r.other_given.is_empty(),
            other_family: !r.other_family.is_empty(),
            identifier_count: saturated(r.identifiers.len()),
            birth_date: r.birth_date,
            birth_date_repaired: r.birth_date_repaired,
            sex: r.sex,
            phone: Token::of_opt(r.phone.as_deref()),
            house: Token::of_opt(r.house_number.as_deref()),
            street: r
                .street
                .as_deref()
                .map_or_else(Text::default, |s| Text::of(s, "")),
            unit: fingerprint_of(r.unit.as_deref()),
            zip: fingerprint_of(r.zip.as_deref()),
            city: fingerprint_of(r.city.as_deref()),
            mothers_maiden: Text::name(r.mothers_maiden.as_ref()),
            guardian_given: fingerprint_of(r.guardian_given.as_ref().map(|n| n.text.as_str())),
            guardian_family: fingerprint_of(r.guardian_family.as_ref().map(|n| n.text.as_str())),
            identifiers,
            ssn: Token::of_opt(r.ssn.as_deref()),
        }
    }

    /// Reads a byte from each cache line of the sketch. Touching the
    /// sketches of all candidates first lets their memory reads overlap;
    /// read one by one, each candidate waits for its own.
    pub fn touch(&self) -> u32 {
        u32::from(self.given.len)
            ^ u32::from(self.family.present)
            ^ u32::from(self.house.len)
            ^ u32::from(self.mothers_maiden.len)
            ^ u32::from(self.ssn.len)
    }
}

/// Whether a comparison's condition holds: known, or only not ruled out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tri {
    No,
    Maybe,
    Yes,
}

impl Tri {
    fn of(known: bool) -> Tri {
        if known {
            Tri::Yes
        } else {
            Tri::No
        }
    }

    fn maybe_if(possible: bool) -> Tri {
        if possible {
            Tri::Maybe
        } else {
            Tri::No
        }
    }

    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            _ => Tri::Maybe,
        }
    }

    fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
            (Tri::No, Tri::No) => Tri::No,
            _ => Tri::Maybe,
        }
    }
}

/// Two texts by fingerprint: different fingerprints are different texts.
fn same(x: u32, y: u32) -> Tri {
    Tri::maybe_if(x == y)
}

/// Two optional texts by fingerprint (0 is none): both there and the same.
fn same_opt(x: Fingerprint, y: Fingerprint) -> Tri {
    if x == 0 || y == 0 {
        Tri::No
    } else {
        same(x, y)
    }
}

/// Both texts, when both are present.
fn both(x: &Text, y: &Text) -> Option<(Text, Text)> {
    (x.present && y.present).then_some((*x, *y))
}

fn both_tokens(x: &Token, y: &Token) -> Option<(Token, Token)> {
    (x.present && y.present).then_some((*x, *y))
}

/// A set of levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Levels(u16);

impl Levels {
    fn one(level: Level) -> Levels {
        Levels(1 << level as u16)
    }

    fn with(self, other: Levels) -> Levels {
        Levels(self.0 | other.0)
    }

    fn contains(self, level: Level) -> bool {
        self.0 & (1 << level as u16) != 0
    }

    /// Every level the field can produce, and missing.
    fn any(field: Field) -> Levels {
        field
            .levels()
            .iter()
            .fold(Levels::one(Level::Missing), |s, l| s.with(Levels::one(*l)))
    }

    fn best_weight(self, config: &Config, field: Field) -> f64 {
        let mut best = f64::NEG_INFINITY;
        let mut bits = self.0;
        while bits != 0 {
            let at = bits.trailing_zeros();
            bits &= bits - 1;
            if let Some(level) = LEVELS.get(at as usize) {
                best = best.max(config.max_weight(field, *level));
            }
        }
        // An empty set cannot happen (every walk ends on a certain level);
        // were it to, no bound is the safe answer.
        if best == f64::NEG_INFINITY {
            f64::INFINITY
        } else {
            best
        }
    }
}

const LEVELS: [Level; Level::COUNT] = [
    Level::Exact,
    Level::Nickname,
    Level::Swapped,
    Level::Partial,
    Level::Close,
    Level::Phonetic,
    Level::Initial,
    Level::MonthDaySwap,
    Level::OneDigit,
    Level::YearOff,
    Level::Local,
    Level::Locality,
    Level::Different,
    Level::Missing,
];

/// A comparison's chain of "if this, that level": every level whose
/// condition may hold is possible, until one whose condition surely holds.
#[derive(Clone, Copy, Debug)]
struct Walk {
    levels: Levels,
    done: bool,
}

impl Walk {
    fn new() -> Walk {
        Walk {
            levels: Levels(0),
            done: false,
        }
    }

    /// The condition is only worked out while the walk goes on.
    fn step(mut self, condition: impl FnOnce() -> Tri, level: Level) -> Walk {
        if self.done {
            return self;
        }
        let condition = condition();
        if condition != Tri::No {
            self.levels = self.levels.with(Levels::one(level));
            self.done = condition == Tri::Yes;
        }
        self
    }

    fn levels(self) -> Levels {
        self.levels
    }
}

/// The best score the pair could have: never below
/// `score::assess(config, a, b).score` for the records sketched.
pub fn ceiling(config: &Config, a: &Sketch, b: &Sketch) -> f64 {
    let sim = &config.similarity;
    let mut score = 0.0;
    // Summed in the order assess sums: rounding then keeps the order too.
    for field in Field::ALL {
        let levels = match field {
            Field::Given => given(a, b, sim.close_name),
            Field::Middle => middle(a, b, sim.close_name),
            Field::Family => family(a, b, sim.close_name),
            Field::BirthDate => match (a.birth_date, b.birth_date) {
                (Some(x), Some(y)) => Levels::one(repaired_birth_date(
                    birth_date_level(x, y),
                    a.birth_date_repaired || b.birth_date_repaired,
                )),
                _ => Levels::one(Level::Missing),
            },
            Field::Sex => match (a.sex, b.sex) {
                (Some(x), Some(y)) if x == y => Levels::one(Level::Exact),
                (Some(_), Some(_)) => Levels::one(Level::Different),
                _ => Levels::one(Level::Missing),
            },
            Field::Phone => phone(a, b),
            Field::Address => address(a, b, sim.close_street),
            Field::MothersMaiden => mothers_maiden(a, b, sim.close_name),
            Field::Guardian => guardian(a, b),
            Field::Identifier => identifier(a, b),
            Field::Ssn => match both_tokens(&a.ssn, &b.ssn) {
                Some((x, y)) => x.digits_level(&y),
                None => Levels::one(Level::Missing),
            },
        };
        score += levels.best_weight(config, field);
    }
    score
}

/// Whether `score::assess` could grade the pair above none.
pub fn may_reach_possible(config: &Config, a: &Sketch, b: &Sketch) -> bool {
    ceiling(config, a, b) >= config.bands.possible
}

/// [`may_reach_possible`] under the bands of a registry of some size.
pub fn may_reach(config: &Config, possible: f64, a: &Sketch, b: &Sketch) -> bool {
    ceiling(config, a, b) >= possible
}

/// A ceiling on `text::jaro_winkler` of the two texts: every byte of one
/// absent from the other is unmatched, transpositions only lower it.
fn jaro_winkler_ceiling(x: &Text, y: &Text) -> f64 {
    let (lx, ly) = (
        usize::from(x.len).min(JARO_BYTES),
        usize::from(y.len).min(JARO_BYTES),
    );
    if lx == 0 || ly == 0 {
        return 0.0;
    }
    let only_x = (x.letters & !y.letters).count_ones() as usize;
    let only_y = (y.letters & !x.letters).count_ones() as usize;
    let matches = lx.saturating_sub(only_x).min(ly.saturating_sub(only_y));
    let jaro = if matches == 0 {
        0.0
    } else {
        let m = matches as f64;
        (m / lx as f64 + m / ly as f64 + 1.0) / 3.0
    };
    let prefix = (0..4)
        .take_while(|&i| i < lx && i < ly && x.head[i] == y.head[i])
        .count();
    // The margin covers rounding in a different order of operations.
    jaro + prefix as f64 * 0.1 * (1.0 - jaro) + 1e-9
}

fn close(x: &Text, y: &Text, threshold: f64) -> Tri {
    Tri::maybe_if(jaro_winkler_ceiling(x, y) >= threshold)
}

/// `compare::slip`, bounded: k edits change the length by at most k and
/// bring at most k letters the other text lacks (letter sets by bit).
fn slip(x: &Text, y: &Text) -> Tri {
    let (lx, ly) = (usize::from(x.len), usize::from(y.len));
    let shorter = lx.min(ly);
    if shorter < 3 {
        return Tri::No;
    }
    let k = if shorter >= 6 { 2 } else { 1 };
    let only_x = (x.letters & !y.letters).count_ones() as usize;
    let only_y = (y.letters & !x.letters).count_ones() as usize;
    Tri::maybe_if(lx.abs_diff(ly) <= k && only_x <= k && only_y <= k)
}

/// `compare::is_initial_of`.
fn initial(short: &Text, long: &Text) -> bool {
    short.len == 1 && long.len > 1 && short.head[0] == long.head[0]
}

fn initial_either(x: &Text, y: &Text) -> Tri {
    Tri::of(initial(x, y) || initial(y, x))
}

fn groups_meet(a: &Sketch, b: &Sketch) -> Tri {
    let (na, nb) = (usize::from(a.group_count), usize::from(b.group_count));
    if na == 0 || nb == 0 {
        return Tri::No;
    }
    if na > GROUP_SLOTS || nb > GROUP_SLOTS {
        return Tri::Maybe;
    }
    Tri::maybe_if(a.groups[..na].iter().any(|g| b.groups[..nb].contains(g)))
}

/// A text's fingerprint, 0 when absent.
fn text_of(t: &Text) -> Fingerprint {
    if t.present {
        t.text
    } else {
        0
    }
}

fn given(a: &Sketch, b: &Sketch, close_name: f64) -> Levels {
    let Some((x, y)) = both(&a.given, &b.given) else {
        return Levels::one(Level::Missing);
    };
    let swapped = |p: &Sketch, q: &Text| {
        same_opt(text_of(&p.middle), q.text).or(same_opt(text_of(&p.family), q.text))
    };
    Walk::new()
        .step(
            || same(x.text, y.text).or(Tri::maybe_if(a.other_given || b.other_given)),
            Level::Exact,
        )
        .step(|| groups_meet(a, b), Level::Nickname)
        .step(
            || {
                swapped(a, &y)
                    .or(swapped(b, &x))
                    .or(exchanged(a, b, close_name))
            },
            Level::Swapped,
        )
        .step(
            || match (
                a.group_count > 0 && b.group_count > 0 && x.len > 1 && y.len > 1,
                x.code == y.code,
            ) {
                (false, _) => Tri::No,
                // `compare::given`'s respelled exception needs equal codes.
                (true, true) => Tri::Maybe,
                (true, false) => Tri::Yes,
            },
            Level::Different,
        )
        .step(|| close(&x, &y, close_name).or(slip(&x, &y)), Level::Close)
        .step(|| Tri::maybe_if(x.code == y.code), Level::Phonetic)
        .step(|| initial_either(&x, &y), Level::Initial)
        .step(|| Tri::Yes, Level::Different)
        .levels()
}

/// `compare::exchanged`.
fn exchanged(a: &Sketch, b: &Sketch, close_name: f64) -> Tri {
    let alike = |x: &Text, y: &Text| match both(x, y) {
        Some((x, y)) => same(x.text, y.text).or(close(&x, &y, close_name)),
        None => Tri::No,
    };
    match alike(&a.given, &b.family) {
        Tri::No => Tri::No,
        first => first.and(alike(&a.family, &b.given)),
    }
}

fn middle(a: &Sketch, b: &Sketch, close_name: f64) -> Levels {
    let Some((x, y)) = both(&a.middle, &b.middle) else {
        return Levels::one(Level::Missing);
    };
    if x.len == 1 || y.len == 1 {
        return Levels::one(if x.head[0] == y.head[0] {
            Level::Initial
        } else {
            Level::Different
        });
    }
    Walk::new()
        .step(|| same(x.text, y.text), Level::Exact)
        .step(|| close(&x, &y, close_name), Level::Close)
        .step(|| Tri::Yes, Level::Different)
        .levels()
}

fn family(a: &Sketch, b: &Sketch, close_name: f64) -> Levels {
    let Some((x, y)) = both(&a.family, &b.family) else {
        return Levels::one(Level::Missing);
    };
    let shared = same(x.text, y.text).or(Tri::maybe_if(a.other_family || b.other_family));
    Walk::new()
        .step(|| same(x.text, y.text), Level::Exact)
        .step(|| shared, Level::Partial)
        .step(|| exchanged(a, b, close_name), Level::Partial)
        .step(|| close(&x, &y, close_name).or(slip(&x, &y)), Level::Close)
        .step(|| Tri::maybe_if(x.code == y.code), Level::Phonetic)
        .step(|| Tri::Yes, Level::Different)
        .levels()
}

fn phone(a: &Sketch, b: &Sketch) -> Levels {
    let Some((x, y)) = both_tokens(&a.phone, &b.phone) else {
        return Levels::one(Level::Missing);
    };
    Walk::new()
        .step(|| x.same(&y), Level::Exact)
        .step(|| x.same_last_seven(&y), Level::Local)
        .step(|| Tri::Yes, Level::Different)
        .levels()
}

fn address(a: &Sketch, b: &Sketch, close_street: f64) -> Levels {
    let place = |s: &Sketch| s.zip != 0 || s.city != 0;
    let streets = both(&a.street, &b.street);
    if streets.is_none() && !(place(a) && place(b)) {
        return Levels::one(Level::Missing);
    }
    let mut walk = Walk::new();
    if let Some((sa, sb)) = streets {
        let houses = both_tokens(&a.house, &b.house);
        let house_same = match (a.house.present, b.house.present, houses) {
            (false, false, _) => Tri::Yes,
            (_, _, Some((x, y))) => x.same(&y),
            _ => Tri::No,
        };
        // `compare::address`'s unit: equal (or both absent), different, or
        // only one side's.
        let (unit_equal, unit_different) = match (a.unit, b.unit) {
            (0, 0) => (Tri::Yes, Tri::No),
            (0, _) | (_, 0) => (Tri::No, Tri::No),
            (x, y) => (same(x, y), Tri::of(x != y)),
        };
        let unit_not_different = Tri::of(unit_different == Tri::No);
        let street_same = same(sa.text, sb.text);
        let house_slip = houses.map_or(Tri::No, |(x, y)| x.one_slip(&y));
        let zips_differ = a.zip != 0 && b.zip != 0 && a.zip != b.zip;
        walk = walk
            .step(|| house_same.and(street_same).and(unit_equal), Level::Exact)
            .step(
                || {
                    unit_not_different.and(
                        house_same
                            .and(street_same.or(close(&sa, &sb, close_street)))
                            .or(house_slip.and(street_same)),
                    )
                },
                Level::Close,
            )
            .step(
                || street_same.and(Tri::of(houses.is_some() && !zips_differ)),
                Level::Partial,
            );
    }
    let same_zip = same_opt(a.zip, b.zip);
    let same_city = same_opt(a.city, b.city);
    let a_zip_missing = Tri::of(a.zip == 0 || b.zip == 0);
    walk.step(
        || same_zip.or(same_city.and(a_zip_missing)),
        Level::Locality,
    )
    .step(|| Tri::Yes, Level::Different)
    .levels()
}

fn mothers_maiden(a: &Sketch, b: &Sketch, close_name: f64) -> Levels {
    let Some((x, y)) = both(&a.mothers_maiden, &b.mothers_maiden) else {
        return Levels::one(Level::Missing);
    };
    Walk::new()
        .step(|| same(x.text, y.text), Level::Exact)
        .step(
            || Tri::maybe_if(x.code == y.code).or(close(&x, &y, close_name)),
            Level::Close,
        )
        .step(|| Tri::Yes, Level::Different)
        .levels()
}

fn guardian(a: &Sketch, b: &Sketch) -> Levels {
    let part = |x: Fingerprint, y: Fingerprint| match (x, y) {
        (0, _) | (_, 0) => &[Level::Missing][..],
        (x, y) if x == y => &[Level::Exact, Level::Different][..],
        _ => &[Level::Different][..],
    };
    let mut out = Levels(0);
    for g in part(a.guardian_given, b.guardian_given) {
        for f in part(a.guardian_family, b.guardian_family) {
            out = out.with(Levels::one(match (g, f) {
                (Level::Missing, Level::Missing) => Level::Missing,
                (Level::Exact, Level::Exact) => Level::Exact,
                (Level::Exact, _) | (_, Level::Exact) => Level::Partial,
                _ => Level::Different,
            }));
        }
    }
    out
}

/// `compare::identifier`: the best level among the pairs of one scope.
fn identifier(a: &Sketch, b: &Sketch) -> Levels {
    let (na, nb) = (
        usize::from(a.identifier_count),
        usize::from(b.identifier_count),
    );
    if na > IDENTIFIER_SLOTS || nb > IDENTIFIER_SLOTS {
        return Levels::any(Field::Identifier);
    }
    let mut out = Levels(0);
    for (scope, value) in &a.identifiers[..na] {
        for (other_scope, other) in &b.identifiers[..nb] {
            if scope == other_scope {
                out = out.with(value.digits_level(other));
            }
        }
    }
    // Scopes are known by fingerprint only: none may be shared.
    out.with(Levels::one(Level::Missing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nicknames::Nicknames;
    use crate::normalize::normalize;
    use crate::record::{PatientRecord, RecordIdentifier};
    use crate::score::assess;

    fn configs() -> Vec<Config> {
        vec![
            Config::built_in(),
            Config::parse(include_str!("../config/general-fs-2.toml")).unwrap(),
        ]
    }

    fn check(a: &PatientRecord, b: &PatientRecord) {
        let t = Nicknames::built_in();
        let (x, y) = (normalize(a, t), normalize(b, t));
        for config in configs() {
            let score = assess(&config, &x, &y).score;
            let top = ceiling(&config, &Sketch::of(&x), &Sketch::of(&y));
            assert!(
                top >= score,
                "{} ceiling {top} < score {score}",
                config.version
            );
        }
    }

    fn child(given: &str, family: &str, dob: &str) -> PatientRecord {
        PatientRecord {
            id: "x".into(),
            given: Some(given.into()),
            family: Some(family.into()),
            birth_date: Some(dob.into()),
            sex: Some("F".into()),
            phone: Some("517-555-0142".into()),
            street: Some("12 Elm St".into()),
            zip: Some("48910".into()),
            mothers_maiden_family: Some("Bello".into()),
            guardian_given: Some("Ada".into()),
            guardian_family: Some("Okafor".into()),
            identifiers: vec![RecordIdentifier {
                system: "CLINIC1".into(),
                kind: "MR".into(),
                value: "A100".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_ceiling_is_the_score_when_the_sketch_knows_everything() {
        let a = child("Chioma", "Okafor", "2024-02-03");
        let b = PatientRecord {
            phone: Some("517-555-0143".into()),
            ..child("Adaeze", "Nwosu", "2024-03-02")
        };
        let t = Nicknames::built_in();
        let (x, y) = (normalize(&a, t), normalize(&b, t));
        let config = Config::built_in();
        let score = assess(&config, &x, &y).score;
        let top = ceiling(&config, &Sketch::of(&x), &Sketch::of(&y));
        assert!(top >= score && top - score < 1e-9, "{top} vs {score}");
    }

    #[test]
    fn the_ceiling_never_falls_below_the_score() {
        let base = child("Chioma", "Okafor", "2024-02-03");
        let variants = [
            child("Chioma", "Okafor", "2024-02-03"),
            child("Chiomа", "Okafr", "2024-02-04"),
            child("C", "Okafor", "2024-03-02"),
            child("Okafor", "Chioma", "2023-02-03"),
            PatientRecord {
                middle: Some("Chioma".into()),
                ..child("Ada", "Okafor-Bello", "2024-02-03")
            },
            PatientRecord {
                street: Some("21 Elm Street".into()),
                ..child("Chioma", "Okafor", "2024-02-03")
            },
            PatientRecord {
                street: Some("12 Elms Street".into()),
                phone: Some("555-0142".into()),
                identifiers: vec![RecordIdentifier {
                    system: "CLINIC1".into(),
                    kind: "MR".into(),
                    value: "A010".into(),
                }],
                ..child("Chioma", "Okafor", "2024-02-03")
            },
            PatientRecord {
                aliases: vec![crate::record::Alias::Name {
                    given: Some("Chioma".into()),
                    family: Some("Eze".into()),
                }],
                ..child("Grace", "Eze", "2024-02-03")
            },
        ];
        for v in &variants {
            check(&base, v);
            check(v, &base);
        }
    }
}
