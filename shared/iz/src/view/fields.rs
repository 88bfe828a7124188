//! Reading elements through the validation result, so that nothing the
//! cascade emptied or dropped leaks into a view.

use super::Value;
use crate::datetime::{parse_dtm, Date};
use crate::structure::{GroupInstance, Item};
use crate::validate::{Loc, Validation};
use hl7::{Element, Message, Segment};

/// A message together with what validation left usable in it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'v, 'm, 'a> {
    pub msg: &'m Message<'a>,
    pub v: &'v Validation,
}

/// One usable segment, read field by field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seg<'v, 'm, 'a> {
    pub seg: Segment<'m, 'a>,
    v: &'v Validation,
}

impl<'v, 'm, 'a> Fields<'v, 'm, 'a> {
    pub fn new(msg: &'m Message<'a>, v: &'v Validation) -> Self {
        Fields { msg, v }
    }

    /// Segment `index` unless validation dropped it.
    pub fn segment(&self, index: usize) -> Option<Seg<'v, 'm, 'a>> {
        if self.v.segment_dropped(index) {
            return None;
        }
        self.msg.segment(index).map(|seg| Seg { seg, v: self.v })
    }

    /// Top-level segments with this id, in message order.
    pub fn top_level(&self, id: &str) -> Vec<Seg<'v, 'm, 'a>> {
        let mut out = Vec::new();
        for items in &self.v.root.children {
            for item in items {
                if let Item::Segment(i) = item {
                    if let Some(s) = self.segment(*i) {
                        if s.seg.id_bytes() == id.as_bytes() {
                            out.push(s);
                        }
                    }
                }
            }
        }
        out
    }

    /// Instances of the group named `name` anywhere in the message.
    pub fn groups(&self, name: &str) -> Vec<&'v GroupInstance> {
        let mut out = Vec::new();
        collect_groups(&self.v.root, name, &mut out);
        out
    }

    /// The usable segments of one group instance with this id, in message order.
    pub fn in_group(&self, g: &GroupInstance, id: &str) -> Vec<Seg<'v, 'm, 'a>> {
        g.segments()
            .into_iter()
            .filter_map(|i| self.segment(i))
            .filter(|s| s.seg.id_bytes() == id.as_bytes())
            .collect()
    }
}

fn collect_groups<'v>(g: &'v GroupInstance, name: &str, out: &mut Vec<&'v GroupInstance>) {
    for items in &g.children {
        for item in items {
            if let Item::Group(child) = item {
                let matches = matches!(
                    child.node,
                    Some(crate::profile::StructureNode::Group { name: n, .. }) if n == name
                );
                if matches {
                    out.push(child);
                }
                collect_groups(child, name, out);
            }
        }
    }
}

impl<'v, 'm, 'a> Seg<'v, 'm, 'a> {
    pub fn index(&self) -> usize {
        self.seg.index()
    }

    fn loc(&self, field: u32, rep: u32, comp: u32, sub: u32) -> Loc {
        Loc {
            seg: self.seg.index(),
            field,
            rep,
            comp,
            sub,
        }
    }

    /// Repetition `rep` of `field` (1-based), or `None` when it is empty,
    /// null or was emptied by validation.
    pub fn rep(&self, field: u32, rep: u32) -> Option<Rep<'v, 'a>> {
        if !self.v.usable(self.loc(field, rep, 0, 0)) {
            return None;
        }
        let e = self.seg.field(field as usize).at(rep as usize, 0, 0);
        if e.has_value() && !e.is_null() {
            Some(Rep {
                e,
                v: self.v,
                loc: self.loc(field, rep, 0, 0),
            })
        } else {
            None
        }
    }

    /// Every valued repetition of `field`.
    pub fn reps(&self, field: u32) -> Vec<Rep<'v, 'a>> {
        let n = self.seg.field(field as usize).child_count() as u32;
        (1..=n).filter_map(|r| self.rep(field, r)).collect()
    }

    /// First repetition, first component, as trimmed text.
    pub fn text(&self, field: u32) -> Option<String> {
        self.rep(field, 1).and_then(|r| r.text(1))
    }

    /// How the sender valued `field` as a whole: empty, `""`, or something.
    fn state(&self, field: u32) -> Value<()> {
        let e = self.seg.field(field as usize);
        if e.is_null() {
            Value::Null
        } else if !e.has_value() {
            Value::Absent
        } else {
            Value::Present(())
        }
    }

    /// A single-valued field as an update: `""` → Null; a value that failed
    /// validation or cannot be read → Absent (keep what is stored).
    pub fn tri<T>(&self, field: u32, read: impl FnOnce(&Rep<'v, 'a>) -> Option<T>) -> Value<T> {
        match self.state(field) {
            Value::Null if self.v.usable(self.loc(field, 0, 0, 0)) => Value::Null,
            Value::Present(()) => match self.rep(field, 1).as_ref().and_then(read) {
                Some(t) => Value::Present(t),
                None => Value::Absent,
            },
            _ => Value::Absent,
        }
    }

    /// A repeating field as an update of the whole list.
    pub fn tri_list<T>(
        &self,
        field: u32,
        read: impl Fn(&Rep<'v, 'a>) -> Option<T>,
    ) -> Value<Vec<T>> {
        match self.state(field) {
            Value::Null if self.v.usable(self.loc(field, 0, 0, 0)) => Value::Null,
            Value::Present(()) => {
                let list: Vec<T> = self.reps(field).iter().filter_map(read).collect();
                if list.is_empty() {
                    Value::Absent
                } else {
                    Value::Present(list)
                }
            }
            _ => Value::Absent,
        }
    }
}

/// One usable repetition of a field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rep<'v, 'a> {
    e: Element<'a>,
    v: &'v Validation,
    loc: Loc,
}

impl<'v, 'a> Rep<'v, 'a> {
    /// Component `comp` (1-based; its first sub-component), trimmed, or `None`
    /// when empty, null or emptied by validation.
    pub fn text(&self, comp: u32) -> Option<String> {
        self.sub(comp, 1)
    }

    /// Sub-component `sub` of component `comp`.
    pub fn sub(&self, comp: u32, sub: u32) -> Option<String> {
        let loc = Loc {
            comp,
            sub: if sub > 1 { sub } else { 0 },
            ..self.loc
        };
        if !self.v.usable(loc) {
            return None;
        }
        let e = self.e.at(1, comp as usize, sub as usize);
        if e.is_null() {
            return None;
        }
        let t = e.text();
        let t = t.trim();
        (!t.is_empty()).then(|| t.to_string())
    }
}

/// A DT/TS value as a calendar date (values without a day are not dates).
pub(crate) fn date(r: &Rep<'_, '_>) -> Option<Date> {
    parse_dtm(&r.text(1)?).ok()?.date()
}

/// An HL7 table 0136 indicator: `Y` or `N`.
pub(crate) fn yes_no(r: &Rep<'_, '_>) -> Option<bool> {
    match r.text(1)?.to_ascii_uppercase().as_str() {
        "Y" => Some(true),
        "N" => Some(false),
        _ => None,
    }
}
