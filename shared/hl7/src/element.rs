use crate::{bytes, escape, Delimiters};
use std::borrow::Cow;

/// How deep an [`Element`] sits; each level splits into the next one down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Field,
    Repetition,
    Component,
    SubComponent,
}

/// A borrowed slice of a message at one level of the ER7 hierarchy.
///
/// Children are found by scanning for the next level's separator on demand,
/// so reading one component of one field costs nothing for the rest.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    raw: &'a [u8],
    delims: Delimiters,
    level: Level,
}

impl<'a> Element<'a> {
    pub fn new(raw: &'a [u8], delims: Delimiters, level: Level) -> Self {
        Element { raw, delims, level }
    }

    /// An element that never splits further (MSH-1 and MSH-2 hold the delimiters themselves).
    pub fn atomic(raw: &'a [u8], delims: Delimiters) -> Self {
        Element {
            raw,
            delims,
            level: Level::SubComponent,
        }
    }

    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
    pub fn level(&self) -> Level {
        self.level
    }
    pub fn delimiters(&self) -> Delimiters {
        self.delims
    }

    /// Nothing was sent here (an empty field means "no change" in HL7).
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The HL7 null `""`: the sender asks the receiver to clear its stored value.
    pub fn is_null(&self) -> bool {
        self.raw == b"\"\""
    }

    /// Whether anything at all is valued below this element (ignores bare separators).
    ///
    /// Inline: validation asks it of every field and repetition, most of
    /// them empty or decided by their first byte, where the call costs more
    /// than the answer.
    #[inline]
    pub fn has_value(&self) -> bool {
        self.raw.iter().any(|&b| !self.is_separator_below(b))
    }

    fn is_separator_below(&self, b: u8) -> bool {
        let d = &self.delims;
        match self.level {
            Level::Field => b == d.repetition || b == d.component || Some(b) == d.subcomponent,
            Level::Repetition => b == d.component || Some(b) == d.subcomponent,
            Level::Component => Some(b) == d.subcomponent,
            Level::SubComponent => false,
        }
    }

    fn child_separator(&self) -> Option<(u8, Level)> {
        match self.level {
            Level::Field => Some((self.delims.repetition, Level::Repetition)),
            Level::Repetition => Some((self.delims.component, Level::Component)),
            Level::Component => self.delims.subcomponent.map(|s| (s, Level::SubComponent)),
            Level::SubComponent => None,
        }
    }

    /// Children one level down (repetitions of a field, components of a repetition, ...).
    /// An empty element has exactly one empty child, as in HL7.
    pub fn children(&self) -> Children<'a> {
        match self.child_separator() {
            Some((sep, level)) => Children {
                rest: Some(self.raw),
                sep: Some(sep),
                delims: self.delims,
                level,
            },
            None => Children {
                rest: Some(self.raw),
                sep: None,
                delims: self.delims,
                level: self.level,
            },
        }
    }

    /// The `n`th child (1-based); an empty element when it is not there.
    pub fn child(&self, n: usize) -> Element<'a> {
        if n == 0 {
            return self.empty_child();
        }
        let Some((sep, level)) = self.child_separator() else {
            // Nothing to split on: the element is its own (only) child.
            return if n == 1 { *self } else { self.empty_child() };
        };
        // Skip n - 1 separators directly; the validator asks for children by
        // number far more often than it iterates them.
        let mut rest = self.raw;
        for _ in 1..n {
            match bytes::find(sep, rest) {
                Some(i) => rest = &rest[i + 1..],
                None => return self.empty_child(),
            }
        }
        let end = bytes::find(sep, rest).unwrap_or(rest.len());
        Element {
            raw: &rest[..end],
            delims: self.delims,
            level,
        }
    }

    /// `self.child(n).child(c)` in one pass: component `c` of repetition `n`
    /// of a field (or sub-component `c` of component `n` of a repetition).
    ///
    /// `child(n)` alone must find where child `n` ends, which for the first
    /// repetition of a long field means scanning all of it; here the scan
    /// stops at the end of the component wanted.
    pub fn grandchild(&self, n: usize, c: usize) -> Element<'a> {
        let below = self.empty_child();
        let (Some((outer, _)), Some((inner, _))) =
            (self.child_separator(), below.child_separator())
        else {
            return self.child(n).child(c);
        };
        if n == 0 || c == 0 {
            return self.child(n).child(c);
        }
        let none = below.empty_child();
        let mut rest = self.raw;
        for _ in 1..n {
            match bytes::find(outer, rest) {
                Some(i) => rest = &rest[i + 1..],
                None => return none,
            }
        }
        // Step over c - 1 components of child n, stopping at its end.
        for _ in 1..c {
            match rest.iter().position(|&b| b == outer || b == inner) {
                Some(i) if rest[i] == inner => rest = &rest[i + 1..],
                _ => return none,
            }
        }
        let end = rest
            .iter()
            .position(|&b| b == outer || b == inner)
            .unwrap_or(rest.len());
        Element {
            raw: &rest[..end],
            ..none
        }
    }

    /// An empty element one level down: what [`Element::child`] gives for a
    /// child that was not sent, without scanning for it.
    pub fn empty_child(&self) -> Element<'a> {
        let level = self.child_separator().map(|(_, l)| l).unwrap_or(self.level);
        Element {
            raw: &[],
            delims: self.delims,
            level,
        }
    }

    /// How many children there are, counting empty ones between separators.
    pub fn child_count(&self) -> usize {
        match self.child_separator() {
            Some((sep, _)) => memchr::memchr_iter(sep, self.raw).count() + 1,
            None => 1,
        }
    }

    /// Repetition `r`, component `c`, sub-component `s` of a field (all 1-based).
    pub fn at(&self, r: usize, c: usize, s: usize) -> Element<'a> {
        let mut e = *self;
        if e.level == Level::Field {
            e = e.child(r.max(1));
        }
        if c > 0 && e.level == Level::Repetition {
            e = e.child(c);
            if s > 0 && e.level == Level::Component {
                e = e.child(s);
            }
        }
        e
    }

    /// The first leaf (first repetition, component and sub-component) — the
    /// "value" of a primitive field.
    ///
    /// Inline, like [`Element::has_value`]: rules read a first leaf for
    /// nearly every value they compare, mostly a few bytes long.
    #[inline]
    pub fn first_leaf(&self) -> Element<'a> {
        // The first leaf ends at the first separator of any level below:
        // one pass, where cutting level by level would first scan a whole
        // field for a repetition separator.
        let end = self
            .raw
            .iter()
            .position(|&b| self.is_separator_below(b))
            .unwrap_or(self.raw.len());
        let level = match (self.level, self.delims.subcomponent) {
            (Level::SubComponent, _) | (_, Some(_)) => Level::SubComponent,
            (_, None) => Level::Component,
        };
        Element {
            raw: &self.raw[..end],
            delims: self.delims,
            level,
        }
    }

    /// The text with escape sequences decoded (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'a, str> {
        escape::decode(self.raw, &self.delims)
    }

    /// The raw bytes as UTF-8 if they are valid.
    pub fn as_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.raw).ok()
    }
}

/// Iterator over the children of an [`Element`].
#[derive(Debug, Clone)]
pub struct Children<'a> {
    rest: Option<&'a [u8]>,
    sep: Option<u8>,
    delims: Delimiters,
    level: Level,
}

impl<'a> Iterator for Children<'a> {
    type Item = Element<'a>;
    fn next(&mut self) -> Option<Element<'a>> {
        let rest = self.rest?;
        let Some(sep) = self.sep else {
            self.rest = None;
            return Some(Element {
                raw: rest,
                delims: self.delims,
                level: self.level,
            });
        };
        match bytes::find(sep, rest) {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(Element {
                    raw: &rest[..i],
                    delims: self.delims,
                    level: self.level,
                })
            }
            None => {
                self.rest = None;
                Some(Element {
                    raw: rest,
                    delims: self.delims,
                    level: self.level,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_is_the_nth_of_children() {
        let d = Delimiters {
            field: b'|',
            component: b'^',
            repetition: b'~',
            escape: Some(b'\\'),
            subcomponent: Some(b'&'),
        };
        let no_sub = Delimiters {
            subcomponent: None,
            ..d
        };
        let raws: [&[u8]; 7] = [
            b"",
            b"a",
            b"a^b~c^d&e",
            b"^^x^",
            b"~~",
            b"&a&&",
            b"a long value^with several components^and more than thirty-two bytes",
        ];
        let levels = [
            Level::Field,
            Level::Repetition,
            Level::Component,
            Level::SubComponent,
        ];
        for delims in [d, no_sub] {
            for raw in raws {
                for level in levels {
                    let e = Element::new(raw, delims, level);
                    for n in 0..6 {
                        for c in 0..6 {
                            let got = e.grandchild(n, c);
                            let want = e.child(n).child(c);
                            assert_eq!(got.raw(), want.raw(), "{raw:?} {level:?} {n} {c}");
                            assert_eq!(got.level(), want.level(), "{raw:?} {level:?} {n} {c}");
                        }
                        let mut leaf = e;
                        while leaf.child_separator().is_some() {
                            leaf = leaf.child(1);
                        }
                        assert_eq!(e.first_leaf().raw(), leaf.raw(), "{raw:?} {level:?}");
                        assert_eq!(e.first_leaf().level(), leaf.level(), "{raw:?} {level:?}");
                        let got = e.child(n);
                        let want = match n {
                            0 => e.empty_child(),
                            _ => e.children().nth(n - 1).unwrap_or_else(|| e.empty_child()),
                        };
                        assert_eq!(got.raw(), want.raw(), "{raw:?} {level:?} {n}");
                        assert_eq!(got.level(), want.level(), "{raw:?} {level:?} {n}");
                    }
                }
            }
        }
    }
}
