//! Numbering of the elements a rule set's predicates and statements look at.
//!
//! The rules of one segment or data type name the same few elements again and
//! again (RXA-20 appears in most RXA rules); numbering each distinct one lets
//! validation find it in the message once per segment or value and share it.

use super::{Expr, Path, Rules};

/// How many distinct elements one rule set may share; further ones are
/// looked up each time they are named. The guide's largest rule sets (MSH,
/// RXA) name about a dozen.
pub const MEMO_SLOTS: usize = 16;

/// Numbers the single-instance paths of `rules` (same steps, same number).
///
/// A path designates the same element for as long as its context (a
/// segment, a value, a group instance) lasts and no segment of it is
/// dropped; validation shares what it found only that long.
pub(super) fn assign_memo_slots(rules: &mut Rules) {
    let mut seen: Vec<Path> = Vec::new();
    for p in &mut rules.predicates {
        number(&mut p.condition, &mut seen);
    }
    for c in &mut rules.constraints {
        number(&mut c.assertion, &mut seen);
    }
}

fn number(e: &mut Expr, seen: &mut Vec<Path>) {
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter_mut().for_each(|x| number(x, seen)),
        Expr::Not(x) => number(x, seen),
        Expr::Imply(a, b) => {
            number(a, seen);
            number(b, seen);
        }
        Expr::Presence(path)
        | Expr::PlainText { path, .. }
        | Expr::Format { path, .. }
        | Expr::StringList { path, .. }
        | Expr::SimpleValue { path, .. }
        | Expr::ValueSet { path, .. }
        | Expr::SetId(path) => slot(path, seen),
        Expr::PathValue { left, right, .. } => {
            slot(left, seen);
            slot(right, seen);
        }
        // Its paths are also read from other contexts (each group of the parent).
        Expr::IzSetId { .. } | Expr::Plugin(_) => {}
    }
}

fn slot(path: &mut Path, seen: &mut Vec<Path>) {
    if !path.is_single() {
        return;
    }
    let at = match seen.iter().position(|p| p.steps() == path.steps()) {
        Some(i) => i,
        None if seen.len() < MEMO_SLOTS => {
            seen.push(path.clone());
            seen.len() - 1
        }
        None => return,
    };
    path.memo_slot = u8::try_from(at).ok();
}
