//! Fits the segments of a message onto the profile's message structure
//! (segments and nested groups), so that group rules and the group-level
//! rejection cascade have something to act on.

use crate::profile::{Profile, StructureNode};
use hl7::Message;

/// One instance of a group (or of the message itself, whose `node` is `None`).
#[derive(Debug, Clone)]
pub struct GroupInstance {
    pub node: Option<&'static StructureNode>,
    /// Items at each child position of the group definition.
    pub children: Vec<Vec<Item>>,
}

#[derive(Debug, Clone)]
pub enum Item {
    /// Index of the segment in the message.
    Segment(usize),
    Group(GroupInstance),
}

impl Item {
    /// Index of the first segment of this item (a group's anchor).
    pub fn first_segment(&self) -> Option<usize> {
        match self {
            Item::Segment(i) => Some(*i),
            Item::Group(g) => g.first_segment(),
        }
    }
}

impl GroupInstance {
    fn new(node: Option<&'static StructureNode>, width: usize) -> Self {
        GroupInstance {
            node,
            children: vec![Vec::new(); width],
        }
    }

    /// Every segment index in this instance, in message order.
    pub fn segments(&self) -> Vec<usize> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out.sort_unstable();
        out
    }

    fn collect(&self, out: &mut Vec<usize>) {
        for items in &self.children {
            for item in items {
                match item {
                    Item::Segment(i) => out.push(*i),
                    Item::Group(g) => g.collect(out),
                }
            }
        }
    }

    /// Index of the first segment (the group's anchor).
    pub fn first_segment(&self) -> Option<usize> {
        self.segments().first().copied()
    }
}

/// The outcome of structure matching.
#[derive(Debug, Clone)]
pub struct Structure {
    pub root: GroupInstance,
    /// Segments that fit nowhere in the structure (message index), with whether
    /// the profile knows the segment at all.
    pub unexpected: Vec<(usize, bool)>,
}

pub fn match_structure(msg: &Message<'_>, profile: &'static Profile) -> Structure {
    let defs: &'static [StructureNode] = &profile.message.children;
    let mut m = Matcher {
        msg,
        profile,
        pos: 0,
        unexpected: Vec::new(),
        known: Vec::new(),
    };
    let mut root = GroupInstance::new(None, defs.len());
    let mut i = 0;
    loop {
        i = m.level(defs, i, &mut root);
        if m.pos >= msg.len() {
            break;
        }
        m.unexpected.push((m.pos, true));
        m.pos += 1;
    }
    Structure {
        root,
        unexpected: m.unexpected,
    }
}

struct Matcher<'m, 'a> {
    msg: &'m Message<'a>,
    profile: &'static Profile,
    pos: usize,
    unexpected: Vec<(usize, bool)>,
    /// Segment ids already looked up in the profile: a message repeats a
    /// handful of ids, and `knows_segment` walks the whole structure tree.
    known: Vec<(&'a [u8], bool)>,
}

impl<'a> Matcher<'_, 'a> {
    fn knows(&mut self, id: &'a [u8]) -> bool {
        if let Some(&(_, k)) = self.known.iter().find(|(i, _)| same_id(i, id)) {
            return k;
        }
        let k = std::str::from_utf8(id).is_ok_and(|name| self.profile.knows_segment(name));
        self.known.push((id, k));
        k
    }

    /// Consumes segments for the child definitions `defs[start..]`; returns the
    /// definition index reached when the next segment belongs to an ancestor.
    fn level(
        &mut self,
        defs: &'static [StructureNode],
        start: usize,
        inst: &mut GroupInstance,
    ) -> usize {
        let mut i = start;
        while let Some(seg) = self.msg.segment(self.pos) {
            let id = seg.id_bytes();
            if !self.knows(id) {
                // Z-segments and segments foreign to the profile are skipped where they stand.
                self.unexpected.push((self.pos, false));
                self.pos += 1;
                continue;
            }
            let Some(j) =
                (i..defs.len()).find(|&j| same_id(defs[j].first_segment().as_bytes(), id))
            else {
                return i;
            };
            i = j;
            self.node(&defs[j], &mut inst.children[j]);
        }
        i
    }

    fn node(&mut self, def: &'static StructureNode, slot: &mut Vec<Item>) {
        match def {
            StructureNode::Segment { .. } => {
                slot.push(Item::Segment(self.pos));
                self.pos += 1;
            }
            StructureNode::Group { children, .. } => {
                let mut g = GroupInstance::new(Some(def), children.len());
                if let Some(first) = children.first() {
                    self.node(first, &mut g.children[0]);
                }
                self.level(children, 1, &mut g);
                slot.push(Item::Group(g));
            }
        }
    }
}

/// Whether two segment ids are the same, compared in place: ids are three
/// bytes, too short for a call to `memcmp` to pay, and matching walks the
/// structure comparing ids for every segment.
fn same_id(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}
