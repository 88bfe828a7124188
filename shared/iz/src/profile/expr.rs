/// One step of a NIST path: child position and instance (`5[1]`, `5[*]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathStep {
    pub position: u32,
    /// `None` is `[*]`: every instance.
    pub instance: Option<u32>,
}

/// A dotted NIST path such as `3[1].20[1]`, relative to its context.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Path {
    steps: Vec<PathStep>,
    /// Where validation keeps what this path designates, shared by every
    /// rule of its rule set that names the same element (see
    /// `profile::memo`); `None` when it is looked up each time.
    pub memo_slot: Option<u8>,
}

impl Path {
    pub fn parse(s: &str) -> Option<Path> {
        let mut steps = Vec::new();
        for part in s.trim().split('.') {
            let (pos, inst) = match part.find('[') {
                Some(i) => (&part[..i], part[i + 1..].trim_end_matches(']')),
                None => (part, "1"),
            };
            let position = pos.parse().ok()?;
            let instance = if inst == "*" {
                None
            } else {
                Some(inst.parse().ok()?)
            };
            steps.push(PathStep { position, instance });
        }
        (!steps.is_empty()).then_some(Path {
            steps,
            memo_slot: None,
        })
    }

    pub fn steps(&self) -> &[PathStep] {
        &self.steps
    }

    /// Whether the path names one instance at every step, so that it
    /// designates at most one element.
    pub fn is_single(&self) -> bool {
        self.steps.iter().all(|s| s.instance.is_some())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    pub fn parse(s: &str) -> Op {
        match s {
            "NE" => Op::Ne,
            "GT" => Op::Gt,
            "GE" => Op::Ge,
            "LT" => Op::Lt,
            "LE" => Op::Le,
            _ => Op::Eq,
        }
    }
}

/// The assertion language of NIST conformance statements and predicates.
#[derive(Debug, Clone)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Imply(Box<Expr>, Box<Expr>),
    Presence(Path),
    PlainText {
        path: Path,
        text: String,
        ignore_case: bool,
        at_least_once: bool,
    },
    Format {
        path: Path,
        regex: regex::Regex,
    },
    StringList {
        path: Path,
        values: Vec<String>,
    },
    SimpleValue {
        path: Path,
        op: Op,
        value: String,
        numeric: bool,
    },
    PathValue {
        left: Path,
        op: Op,
        right: Path,
    },
    ValueSet {
        path: Path,
        value_sets: Vec<String>,
    },
    /// Set IDs valued 1, 2, 3... across the instances at `path`.
    SetId(Path),
    /// OBX-1 numbered sequentially within each instance of `parent`.
    IzSetId {
        parent: Path,
        element: Path,
    },
    /// A rule NIST implements in Java; evaluated by the validator by name.
    Plugin(String),
}
