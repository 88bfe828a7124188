use super::{Expr, Path, ProfileId};

/// Profile lookups are keyed by short ids (`CE_IZ`, `CVX`) and done hundreds
/// of times per message; the keys come from our own vendored XML, so a fast
/// non-DoS-resistant hash is the right trade.
pub type Map<K, V> = rustc_hash::FxHashMap<K, V>;
pub type Set<K> = rustc_hash::FxHashSet<K>;

/// Usage codes of the profile (HL7 v2.7.1 chapter 2B conformance usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// Required: must be valued.
    R,
    /// Required but may be empty: send it when known.
    RE,
    /// Conditional: a predicate decides between two other usages.
    C,
    /// Not supported: must not be sent.
    X,
    /// Optional.
    O,
    /// Backward compatible (kept for old senders); treated as optional.
    B,
    /// Withdrawn; treated as not supported.
    W,
}

impl Usage {
    pub fn parse(s: &str) -> Usage {
        match s {
            "R" => Usage::R,
            "RE" => Usage::RE,
            "C" => Usage::C,
            "X" => Usage::X,
            "B" => Usage::B,
            "W" => Usage::W,
            _ => Usage::O,
        }
    }
}

/// How many times an element may occur. `max == None` is `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cardinality {
    pub min: u32,
    pub max: Option<u32>,
}

/// A field of a segment or a component of a data type.
#[derive(Debug, Clone)]
pub struct ElementDef {
    pub name: String,
    pub usage: Usage,
    pub cardinality: Cardinality,
    /// Data type id in this profile (`CE_IZ`, `TS_NZ`, `ST`, `varies`, ...).
    pub datatype: String,
    pub min_length: u32,
    /// `None` when the profile says `*` or gives no length.
    pub max_length: Option<u32>,
    /// Value set ids; several are alternatives (RXA-5 `CVX:NDC_Use:NDC_Sale`).
    pub binding: Vec<String>,
    /// Where `datatype` sits in [`Profile::datatypes`], resolved once at load
    /// so validation does not look the id up for every value (`None` for
    /// `varies` and for ids the profile does not define).
    pub datatype_index: Option<usize>,
    /// `binding` resolved once at load (same order), so checking a code costs
    /// one set lookup instead of string tests and two map lookups per value set.
    pub binding_refs: Vec<BindingRef>,
    /// Plain text: a primitive type with no format to check (neither a number,
    /// a date nor a time) and no value set. Such a value needs only its UTF-8
    /// and its length looked at. Set at load.
    pub plain: bool,
    /// `datatype` is `varies` (OBX-5): the value takes the type OBX-2 names.
    /// Set at load, so validation does not compare the id for every value.
    pub varies: bool,
}

/// What one value set id of a binding admits, resolved at profile load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingRef {
    /// Table 0396 (`HL70396...`): coding-system patterns are admitted.
    pub coding_systems: bool,
    /// `PHVS_VISBarcodes_IIS`: any CDC GS1 VIS bar code is admitted.
    pub vis_barcodes: bool,
    /// `NDC_...`: any well-formed NDC is admitted.
    pub ndc: bool,
    pub codes: BoundCodes,
}

/// The value set behind a binding id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundCodes {
    /// Not validated (`NoValidation`), open, or empty: every code is admitted.
    Any,
    /// A closed value set: its codes are `Profile::bound_codes[i]`.
    Closed(usize),
    /// The profile does not define it: it decides nothing.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct SegmentDef {
    pub id: String,
    /// The three-letter segment name (`RXA`).
    pub name: String,
    pub description: String,
    pub fields: Vec<ElementDef>,
    /// See [`must_check`]: fields past this one need no look when not sent.
    pub must_check: usize,
    /// This segment's entry of [`Profile::segment_rules`], attached at load
    /// so validation does not look it up by id for every segment.
    pub rules: Option<Rules>,
}

/// How many leading elements of `defs` reach the last one whose usage is R or
/// C. An element not sent matters only when it is required (or conditional,
/// which may make it required), so past this count unsent elements need no look.
pub fn must_check(defs: &[ElementDef]) -> usize {
    defs.iter()
        .rposition(|d| matches!(d.usage, Usage::R | Usage::C))
        .map_or(0, |i| i + 1)
}

#[derive(Debug, Clone)]
pub struct DatatypeDef {
    pub id: String,
    /// The base HL7 type (`TS` for `TS_NZ`).
    pub name: String,
    pub components: Vec<ElementDef>,
    /// See [`must_check`]: components past this one need no look when not sent.
    pub must_check: usize,
    /// This type's entry of [`Profile::datatype_rules`], attached at load:
    /// validation needs it for every composite value.
    pub rules: Option<Rules>,
    /// `name` as one of the primitive types the validator checks the format of.
    pub base: Primitive,
    /// A guide-constrained type (`CE_IZ`, `TS_NZ`): its components carry the
    /// guide's lengths and value sets; a base HL7 type's (`CE`) do not.
    pub profiled: bool,
}

/// The primitive types whose format the validator checks; the rest are text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Primitive {
    NM,
    SI,
    DT,
    DTM,
    TM,
    Text,
}

impl Primitive {
    pub fn of(name: &str) -> Primitive {
        match name {
            "NM" => Primitive::NM,
            "SI" => Primitive::SI,
            "DT" => Primitive::DT,
            "DTM" => Primitive::DTM,
            "TM" => Primitive::TM,
            _ => Primitive::Text,
        }
    }
}

impl DatatypeDef {
    pub fn is_primitive(&self) -> bool {
        self.components.is_empty()
    }
}

/// One node of the message structure: a segment reference or a group.
#[derive(Debug, Clone)]
pub enum StructureNode {
    Segment {
        /// Segment definition id (`RXA_IZ 1_5_Z22`).
        def: String,
        /// Segment name (`RXA`).
        name: String,
        usage: Usage,
        cardinality: Cardinality,
    },
    Group {
        id: String,
        name: String,
        usage: Usage,
        cardinality: Cardinality,
        children: Vec<StructureNode>,
    },
}

impl StructureNode {
    pub fn usage(&self) -> Usage {
        match self {
            StructureNode::Segment { usage, .. } | StructureNode::Group { usage, .. } => *usage,
        }
    }
    pub fn cardinality(&self) -> Cardinality {
        match self {
            StructureNode::Segment { cardinality, .. }
            | StructureNode::Group { cardinality, .. } => *cardinality,
        }
    }
    /// The segment name that starts this node (a group starts with its first segment).
    pub fn first_segment(&self) -> &str {
        match self {
            StructureNode::Segment { name, .. } => name,
            StructureNode::Group { children, .. } => {
                children.first().map_or("", |c| c.first_segment())
            }
        }
    }
    pub fn contains_segment(&self, seg: &str) -> bool {
        match self {
            StructureNode::Segment { name, .. } => name == seg,
            StructureNode::Group { children, .. } => {
                children.iter().any(|c| c.contains_segment(seg))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct MessageDef {
    pub id: String,
    pub message_type: String,
    pub event: String,
    pub structure_id: String,
    pub children: Vec<StructureNode>,
}

/// A conditional usage: `target` is `true_usage` when `condition` holds.
#[derive(Debug, Clone)]
pub struct Predicate {
    pub id: String,
    pub target: Path,
    pub true_usage: Usage,
    pub false_usage: Usage,
    pub description: String,
    pub condition: Expr,
}

/// A conformance statement (IZ-nn).
#[derive(Debug, Clone)]
pub struct Constraint {
    pub id: String,
    pub target: Path,
    pub description: String,
    pub assertion: Expr,
}

/// Where predicates and constraints apply.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub predicates: Vec<Predicate>,
    pub constraints: Vec<Constraint>,
}

#[derive(Debug, Clone)]
pub struct ValueSet {
    pub id: String,
    pub name: String,
    pub codes: Set<String>,
    /// Code system of each code, for checking the coding-system component.
    pub systems: Map<String, String>,
    /// Open value sets accept local extensions.
    pub open: bool,
}

/// One fully loaded profile.
#[derive(Debug)]
pub struct Profile {
    pub id: ProfileId,
    pub message: MessageDef,
    pub segments: Map<String, SegmentDef>,
    pub datatypes: Vec<DatatypeDef>,
    /// Position of each data type id in `datatypes`.
    pub datatype_ids: Map<String, usize>,
    pub value_sets: Map<String, ValueSet>,
    /// Value sets the profile says not to validate (`NoValidation`).
    pub no_validation: Set<String>,
    pub datatype_rules: Map<String, Rules>,
    pub segment_rules: Map<String, Rules>,
    /// Keyed by group id and by group name (the XML uses both).
    pub group_rules: Map<String, Rules>,
    pub message_rules: Rules,
    /// Codes of the closed value sets that element bindings use, indexed by
    /// [`BoundCodes::Closed`].
    pub bound_codes: Vec<Set<String>>,
}

impl Profile {
    pub fn segment_def(&self, id: &str) -> Option<&SegmentDef> {
        self.segments.get(id)
    }
    pub fn datatype(&self, id: &str) -> Option<&DatatypeDef> {
        self.datatype_ids
            .get(id)
            .and_then(|&i| self.datatypes.get(i))
    }
    /// The data type of `def`, as resolved at load.
    pub fn datatype_of(&self, def: &ElementDef) -> Option<&DatatypeDef> {
        def.datatype_index.and_then(|i| self.datatypes.get(i))
    }
    /// Whether any node of the message structure uses this segment name.
    pub fn knows_segment(&self, name: &str) -> bool {
        self.message
            .children
            .iter()
            .any(|c| c.contains_segment(name))
    }
    pub fn value_set(&self, id: &str) -> Option<&ValueSet> {
        self.value_sets.get(id)
    }
    pub fn segment_rules(&self, def_id: &str) -> Option<&Rules> {
        self.segment_rules.get(def_id)
    }
    pub fn datatype_rules(&self, id: &str) -> Option<&Rules> {
        self.datatype_rules.get(id)
    }
    pub fn group_rules(&self, id: &str, name: &str) -> impl Iterator<Item = &Rules> {
        let a = self.group_rules.get(id);
        let b = if id != name {
            self.group_rules.get(name)
        } else {
            None
        };
        a.into_iter().chain(b)
    }
}
