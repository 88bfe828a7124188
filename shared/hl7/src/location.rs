use std::fmt;

/// Where an element sits in a message, as HL7's ERL data type (ERR-2) spells it:
/// segment id, occurrence of that segment id in the message, field, repetition,
/// component, sub-component. Zero means "not narrowed to this level".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    pub segment: String,
    pub seq: u32,
    pub field: u32,
    pub rep: u32,
    pub component: u32,
    pub sub: u32,
}

impl Location {
    pub fn segment(id: &str, seq: u32) -> Self {
        Location {
            segment: id.to_string(),
            seq,
            field: 0,
            rep: 0,
            component: 0,
            sub: 0,
        }
    }
    pub fn field(id: &str, seq: u32, field: u32) -> Self {
        Location {
            field,
            ..Location::segment(id, seq)
        }
    }
    pub fn with_rep(mut self, rep: u32) -> Self {
        self.rep = rep;
        self
    }
    pub fn with_component(mut self, component: u32) -> Self {
        if self.rep == 0 {
            self.rep = 1;
        }
        self.component = component;
        self
    }
    pub fn with_sub(mut self, sub: u32) -> Self {
        self.sub = sub;
        self
    }

    /// The ERL text for ERR-2, e.g. `RXA^1^5^1^1`.
    pub fn to_erl(&self) -> String {
        let mut s = format!("{}^{}", self.segment, self.seq.max(1));
        for v in [self.field, self.rep, self.component, self.sub] {
            if v == 0 {
                break;
            }
            s.push('^');
            s.push_str(&v.to_string());
        }
        s
    }

    /// The ERL as separate components (segment id, sequence, field, …), for
    /// writers that escape each one: a segment id read from a malformed
    /// message may itself contain delimiters.
    pub fn to_erl_parts(&self) -> Vec<String> {
        let mut parts = vec![self.segment.clone(), self.seq.max(1).to_string()];
        for v in [self.field, self.rep, self.component, self.sub] {
            if v == 0 {
                break;
            }
            parts.push(v.to_string());
        }
        parts
    }

    /// The conventional human spelling, e.g. `RXA-5.1` (occurrence shown when > 1).
    pub fn to_path(&self) -> String {
        use fmt::Write;
        let mut s = String::with_capacity(self.segment.len() + 16);
        s.push_str(&self.segment);
        // Writing into a String cannot fail.
        if self.seq > 1 {
            let _ = write!(s, "[{}]", self.seq);
        }
        if self.field > 0 {
            let _ = write!(s, "-{}", self.field);
            if self.rep > 1 {
                let _ = write!(s, "({})", self.rep);
            }
            if self.component > 0 {
                let _ = write!(s, ".{}", self.component);
                if self.sub > 0 {
                    let _ = write!(s, ".{}", self.sub);
                }
            }
        }
        s
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_erl())
    }
}
