//! Profile-driven conformance validation and the guide's rejection cascade
//! (IG R1.5 Table 3-1): a bad value empties the element with a warning; an
//! empty required field empties its segment; an empty required segment drops
//! its group; an empty required top-level segment rejects the message.

use crate::datetime::{self, Clock, Date};
use crate::finding::{AppError, Finding, Hl7Error, Severity};
use crate::profile::{
    BindingRef, BoundCodes, Cardinality, DatatypeDef, ElementDef, Expr, Map, Op, Path, PathStep,
    Predicate, Primitive, Profile, Rules, SegmentDef, Set, StructureNode, Usage, MEMO_SLOTS,
};
use crate::structure::{match_structure, GroupInstance, Item};
use hl7::{Element, Level, Location, Message};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};

/// Address of an element inside a message (segment index, then ERL numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Loc {
    pub seg: usize,
    pub field: u32,
    pub rep: u32,
    pub comp: u32,
    pub sub: u32,
}

impl Loc {
    fn seg(seg: usize) -> Loc {
        Loc {
            seg,
            field: 0,
            rep: 0,
            comp: 0,
            sub: 0,
        }
    }
    fn field(seg: usize, field: u32) -> Loc {
        Loc {
            field,
            ..Loc::seg(seg)
        }
    }
    fn child(self, n: u32) -> Loc {
        if self.rep == 0 {
            Loc { rep: n, ..self }
        } else if self.comp == 0 {
            Loc { comp: n, ..self }
        } else {
            Loc { sub: n, ..self }
        }
    }
}

/// Result of validating one message against one profile.
#[derive(Debug)]
pub struct Validation {
    pub findings: Vec<Finding>,
    /// Elements emptied by the cascade: the rest of the system must not use them.
    cleared: Set<Loc>,
    /// Segments emptied or dropped with their group, by message index.
    dropped: Vec<bool>,
    /// A required top-level segment was lost: the message is rejected.
    pub rejected: bool,
    pub root: GroupInstance,
}

impl Validation {
    /// Whether element `loc` (any level) survived validation.
    pub fn usable(&self, loc: Loc) -> bool {
        if self.dropped.get(loc.seg).copied().unwrap_or(true) {
            return false;
        }
        if self.cleared.is_empty() {
            return true;
        }
        let probes = [
            Loc::field(loc.seg, loc.field),
            Loc {
                comp: 0,
                sub: 0,
                ..loc
            },
            Loc { sub: 0, ..loc },
            loc,
        ];
        !probes.iter().any(|p| self.cleared.contains(p))
    }

    pub fn segment_dropped(&self, seg: usize) -> bool {
        self.dropped.get(seg).copied().unwrap_or(true)
    }

    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Validates `msg` against `profile`, as of `clock` (for "date in the future").
pub fn validate(msg: &Message<'_>, profile: &'static Profile, clock: Clock) -> Validation {
    let structure = match_structure(msg, profile);
    let mut run = Run {
        msg,
        profile,
        today: clock.today(),
        findings: Vec::new(),
        cleared: Set::default(),
        dropped: vec![false; msg.len()],
        birth_date: None,
        flagged: Set::default(),
        group_rules: Vec::new(),
        segment_defs: Vec::new(),
        named: Vec::new(),
        formats: RefCell::new(Vec::new()),
        traces: 0,
    };
    for &(idx, known) in &structure.unexpected {
        run.unexpected_segment(idx, known);
    }
    let defs: &'static [StructureNode] = &profile.message.children;
    let ok = run.group(defs, &structure.root, None);
    run.message_constraints(&structure.root);
    Validation {
        findings: run.findings,
        cleared: run.cleared,
        dropped: run.dropped,
        rejected: !ok,
        root: structure.root,
    }
}

struct Run<'m, 'a> {
    msg: &'m Message<'a>,
    profile: &'static Profile,
    today: Date,
    findings: Vec<Finding>,
    cleared: Set<Loc>,
    dropped: Vec<bool>,
    birth_date: Option<Date>,
    /// Fields already reported, so a conformance statement does not repeat a usage finding.
    flagged: Set<(usize, u32)>,
    /// Group rule sets already looked up, by group definition (address).
    group_rules: Vec<(usize, GroupRules)>,
    /// Segment definitions already looked up, by id (the profile's own string).
    segment_defs: Vec<(&'static str, Option<&'static SegmentDef>)>,
    /// Data types OBX-2 named, by the raw name (see [`Run::named_datatype`]).
    named: Vec<(&'a [u8], Option<&'static DatatypeDef>)>,
    /// Format verdicts already reached in this message: regex (by address),
    /// the value's raw bytes (the message's delimiters decode them) and
    /// whether it matched (see [`Run::format_ok`]).
    formats: RefCell<Vec<(usize, &'a [u8], bool)>>,
    /// Counts what checking a value can leave behind besides findings:
    /// elements cleared and statements that failed (reported or not).
    traces: u32,
}

/// Values found clean by [`Run::check_value`] on this thread, across the
/// messages it validates (see [`Run::value`]), by their [`CleanKey`]'s hash.
///
/// Checking a value depends only on what its key holds, never on the rest
/// of the message or on the date, so a value once found clean is clean in
/// every message: senders repeat their codes, units, organizations and
/// providers from message to message, and those are looked up, not checked.
/// Per thread, so that servers validating on several threads share no lock.
/// Two keys with the same hash keep one place (the later one is not
/// remembered): a lookup compares the whole key, so that costs a check, never
/// a wrong answer.
struct CleanValues {
    keys: Map<u64, CleanKey<Box<[u8]>>>,
}

thread_local! {
    static CLEAN: RefCell<CleanValues> = RefCell::new(CleanValues { keys: Map::default() });
}

/// How many clean values a thread remembers; when full it starts over, so
/// that memory stays bounded (about 100 bytes a value, some 3 MB) however
/// varied the traffic.
const CLEAN_MAX: usize = 1 << 15;

/// How many Format verdicts a message remembers (see [`Run::format_ok`]).
const FORMATS_MAX: usize = 32;

/// What checking a value depends on: its definition and data type (by
/// address; both live in the 'static profiles, never freed, so an address
/// names one definition for the life of the process), whether it is checked
/// as profiled, its level, the delimiters it is split and unescaped with
/// (`context` packs those), and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CleanKey<B> {
    def: usize,
    datatype: usize,
    context: u64,
    raw: B,
}

impl<'a> CleanKey<&'a [u8]> {
    fn new(def: &ElementDef, dt: Option<&DatatypeDef>, profiled: bool, e: &Element<'a>) -> Self {
        let d = e.delimiters();
        let flags = u8::from(profiled)
            | u8::from(d.escape.is_some()) << 1
            | u8::from(d.subcomponent.is_some()) << 2;
        CleanKey {
            def: std::ptr::from_ref(def) as usize,
            datatype: dt.map_or(0, |dt| std::ptr::from_ref(dt) as usize),
            context: u64::from_le_bytes([
                flags,
                e.level() as u8,
                d.field,
                d.component,
                d.repetition,
                d.escape.unwrap_or(0),
                d.subcomponent.unwrap_or(0),
                0,
            ]),
            raw: e.raw(),
        }
    }

    /// Hashed in place, without copying the bytes next to the rest.
    fn hash(&self) -> u64 {
        use std::hash::Hasher;
        let mut h = rustc_hash::FxHasher::default();
        h.write_usize(self.def);
        h.write_usize(self.datatype);
        h.write_u64(self.context);
        h.write(self.raw);
        h.finish()
    }

    fn is(&self, other: &CleanKey<Box<[u8]>>) -> bool {
        self.def == other.def
            && self.datatype == other.datatype
            && self.context == other.context
            && *self.raw == *other.raw
    }

    fn to_owned(self) -> CleanKey<Box<[u8]>> {
        CleanKey {
            def: self.def,
            datatype: self.datatype,
            context: self.context,
            raw: self.raw.into(),
        }
    }
}

/// The rule sets of one group definition (see [`Run::rules_of_group`]).
type GroupRules = [Option<&'static Rules>; 2];

/// Field usages group predicates decide: segment index, field number, usage
/// (see [`Run::group_predicates`]).
type Overrides = Vec<(usize, u32, Usage)>;

/// What became of one value after checking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Kept,
    Emptied,
}

enum Ctx<'i, 'a> {
    Group(&'i GroupInstance),
    Segment(usize),
    Elem(Element<'a>),
}

/// What a path designates when it needs no walk (see [`Run::direct`]).
#[derive(Clone, Copy)]
enum Direct<'a> {
    Elem(Element<'a>),
    /// The context segment does not exist: nothing is designated.
    Nothing,
}

/// What the paths of one rule set designate in the segment or value being
/// checked, read when a rule first names each (see [`MEMO_SLOTS`]), so that
/// its predicates and statements look into the message once per element.
struct Memo<'a> {
    found: [Cell<Option<Direct<'a>>>; MEMO_SLOTS],
}

impl Memo<'_> {
    fn new() -> Self {
        Memo {
            found: std::array::from_fn(|_| Cell::new(None)),
        }
    }
}

enum Found<'i, 'a> {
    Segment(usize),
    Group(&'i GroupInstance),
    Elem(Element<'a>),
}

/// MSH fields whose loss does not stop processing: the IIS applies a default
/// (MSH-15/16), the receipt time (MSH-7) or the profile implied by MSH-9 (MSH-21).
fn msh_tolerates(field: u32) -> Option<Severity> {
    match field {
        7 | 15 | 16 => Some(Severity::Warning),
        21 | 3 | 4 | 5 | 6 | 22 | 23 => Some(Severity::Error),
        _ => None,
    }
}

impl<'a> Run<'_, 'a> {
    fn location(&self, l: Loc) -> Location {
        let (id, seq) = match self.msg.segment(l.seg) {
            Some(s) => (s.id().into_owned(), s.seq()),
            None => (String::from("MSH"), 1),
        };
        Location {
            segment: id,
            seq,
            field: l.field,
            rep: l.rep,
            component: l.comp,
            sub: l.sub,
        }
    }

    fn seg_name(&self, seg: usize) -> String {
        self.msg
            .segment(seg)
            .map(|s| s.id().into_owned())
            .unwrap_or_default()
    }

    fn push(
        &mut self,
        l: Loc,
        code: Hl7Error,
        sev: Severity,
        app: Option<AppError>,
        rule: &str,
        text: String,
    ) {
        if l.field > 0 {
            self.flagged.insert((l.seg, l.field));
        }
        let location = self.location(l);
        self.findings
            .push(Finding::new(location, code, sev, app, rule, text));
    }

    fn unexpected_segment(&mut self, idx: usize, known: bool) {
        self.dropped[idx] = true;
        let name = self.seg_name(idx);
        let text = if known {
            format!("{name} segment is not expected at this position in the message structure; it was ignored")
        } else {
            format!("{name} segment is not part of this message profile; it was ignored")
        };
        let sev = if known {
            Severity::Warning
        } else {
            Severity::Information
        };
        self.push(
            Loc::seg(idx),
            Hl7Error::SegmentSequence,
            sev,
            Some(AppError::DataIgnored),
            "structure",
            text,
        );
    }

    fn drop_instance(&mut self, g: &GroupInstance) {
        for s in g.segments() {
            self.dropped[s] = true;
        }
    }

    /// Checks one group instance (or the whole message when `node` is None).
    /// Returns false when a required child was lost, which drops the group.
    fn group(
        &mut self,
        defs: &'static [StructureNode],
        inst: &GroupInstance,
        node: Option<&'static StructureNode>,
    ) -> bool {
        let rules = self.rules_of_group(node);
        let overrides = self.group_predicates(inst, rules);
        let mut ok = true;
        for (j, def) in defs.iter().enumerate() {
            let items = &inst.children[j];
            let Cardinality { max, .. } = def.cardinality();
            let usage = def.usage();
            let mut valid = 0usize;
            for (k, item) in items.iter().enumerate() {
                let beyond_max = max.is_some_and(|m| k as u32 >= m);
                let unsupported = matches!(usage, Usage::X | Usage::W);
                if beyond_max || unsupported {
                    let first = item.first_segment();
                    if let Some(i) = first {
                        let name = self.seg_name(i);
                        let text = if unsupported {
                            format!(
                                "{name} is not supported in this message (usage X); it was ignored"
                            )
                        } else {
                            format!("{name} occurs more often than the guide allows ({}); the extra occurrence was ignored", max.unwrap_or(0))
                        };
                        self.push(
                            Loc::seg(i),
                            Hl7Error::SegmentSequence,
                            Severity::Warning,
                            Some(AppError::DataIgnored),
                            "cardinality",
                            text,
                        );
                    }
                    match item {
                        Item::Segment(i) => self.dropped[*i] = true,
                        Item::Group(g) => self.drop_instance(g),
                    }
                    continue;
                }
                let alive = match (item, def) {
                    (Item::Segment(i), StructureNode::Segment { def: seg_def, .. }) => {
                        let alive = self.segment(*i, seg_def, &overrides);
                        if !alive {
                            self.dropped[*i] = true;
                        }
                        alive
                    }
                    (Item::Group(g), StructureNode::Group { children, .. }) => {
                        let alive = self.group(children, g, Some(def));
                        if !alive {
                            self.drop_instance(g);
                        }
                        alive
                    }
                    _ => false,
                };
                if alive {
                    valid += 1;
                } else if usage == Usage::R {
                    // A required segment that was emptied takes its group (or the message) with it.
                    let first = item.first_segment();
                    if let Some(i) = first {
                        let name = self.seg_name(i);
                        let scope = match node {
                            Some(StructureNode::Group { name: g, .. }) => {
                                format!("the {} group was rejected", short_group(g))
                            }
                            _ => "the message was rejected".to_string(),
                        };
                        self.push(
                            Loc::seg(i),
                            Hl7Error::SegmentSequence,
                            Severity::Error,
                            None,
                            "cascade",
                            format!("{name} is a required segment and was rejected, so {scope}"),
                        );
                    }
                }
            }
            if usage == Usage::R && valid == 0 {
                if items.is_empty() {
                    let missing = def.first_segment().to_string();
                    let (l, scope) = match (node, inst.first_segment()) {
                        (Some(StructureNode::Group { name: g, .. }), Some(anchor)) => (
                            Loc::seg(anchor),
                            format!(
                                "in the {} group starting here; the group was rejected",
                                short_group(g)
                            ),
                        ),
                        _ => (
                            Loc::seg(usize::MAX),
                            "; the message was rejected".to_string(),
                        ),
                    };
                    let location = if l.seg == usize::MAX {
                        Location::segment(&missing, 1)
                    } else {
                        self.location(l)
                    };
                    self.findings.push(Finding::new(
                        location,
                        Hl7Error::SegmentSequence,
                        Severity::Error,
                        Some(AppError::RequiredDataMissing),
                        "usage",
                        format!("required segment {missing} is missing {scope}").replace(" ;", ";"),
                    ));
                }
                ok = false;
            }
        }
        if ok {
            // The rules live in the 'static profile, not in `self`: no copy
            // of the list is needed to check them while `self` changes.
            for r in rules.into_iter().flatten() {
                // Statements only report: segments dropped before them
                // stay dropped while they are evaluated.
                let memo = Memo::new();
                self.constraints(r, &Ctx::Group(inst), None, Some(&memo));
            }
        }
        ok
    }

    /// The rule sets of a group definition (under its id, then under its
    /// name), looked up by name once per message and group definition: a
    /// message repeats its order and observation groups many times over.
    fn rules_of_group(&mut self, node: Option<&'static StructureNode>) -> GroupRules {
        let Some(group @ StructureNode::Group { id, name, .. }) = node else {
            return [None, None];
        };
        let key = std::ptr::from_ref(group) as usize;
        if let Some(&(_, rules)) = self.group_rules.iter().find(|(k, _)| *k == key) {
            return rules;
        }
        let mut found = self.profile.group_rules(id, name);
        let rules = [found.next(), found.next()];
        self.group_rules.push((key, rules));
        rules
    }

    /// Usage overrides for fields of segments in this group instance
    /// (group-level predicates): segment index, field number and usage, a
    /// later entry for the same field taking precedence. A group has a
    /// handful at most, so a list searched in place costs less than a map.
    fn group_predicates(&self, inst: &GroupInstance, rules: GroupRules) -> Overrides {
        let mut out = Vec::new();
        for rules in rules.into_iter().flatten() {
            let memo = Memo::new();
            for p in &rules.predicates {
                let steps = p.target.steps();
                if steps.len() != 2 {
                    continue;
                }
                let Some(items) = inst.children.get(steps[0].position as usize - 1) else {
                    continue;
                };
                let Some(Item::Segment(seg)) = items.first() else {
                    continue;
                };
                let holds = self.eval(&p.condition, &Ctx::Group(inst), Some(&memo));
                out.push((
                    *seg,
                    steps[1].position,
                    if holds { p.true_usage } else { p.false_usage },
                ));
            }
        }
        out
    }

    /// Checks a segment's fields; false when a required field is missing or was emptied.
    fn segment(&mut self, idx: usize, def_id: &'static str, overrides: &Overrides) -> bool {
        let Some(def) = self.segment_def(def_id) else {
            return true;
        };
        let Some(seg) = self.msg.segment(idx) else {
            return false;
        };
        let is_msh = seg.is_msh();
        let rules = def.rules.as_ref();
        let memo = rules.map(|_| Memo::new());
        let mut alive = true;
        let sent = seg.field_count();
        // The segment's fields in step with their definitions (`fields` goes
        // on with empty ones past the last field sent).
        for ((i, fdef), field) in def.fields.iter().enumerate().zip(seg.fields()) {
            if i >= sent && i >= def.must_check {
                // This field and all after it are unsent and neither required
                // nor conditional: nothing more to check.
                break;
            }
            let n = (i + 1) as u32;
            let present = field.has_value();
            let mut usage = fdef.usage;
            if usage == Usage::C {
                let over = overrides
                    .iter()
                    .rev()
                    .find(|&&(s, f, _)| s == idx && f == n)
                    .map(|&(_, _, u)| u);
                usage = over.unwrap_or_else(|| {
                    rules
                        .and_then(|r| single_step_predicate(&r.predicates, n))
                        .map(|p| self.decide(p, present, &Ctx::Segment(idx), memo.as_ref()))
                        .unwrap_or(Usage::O)
                });
            }
            if !present {
                if usage == Usage::R {
                    if is_msh && n <= 2 {
                        continue;
                    }
                    alive &= self.required_field_lost(
                        idx,
                        n,
                        fdef,
                        "usage",
                        "is required but missing",
                        None,
                    );
                }
                continue;
            }
            if is_msh && n <= 2 {
                // The delimiters themselves: checked before profile validation.
                continue;
            }
            if field.is_null() && usage == Usage::R {
                // A required value cannot be cleared: "" here leaves nothing to use.
                alive &= self.required_field_lost(
                    idx,
                    n,
                    fdef,
                    "usage",
                    "is required but was sent as the null \"\" (clear the value)",
                    None,
                );
                continue;
            }
            if matches!(usage, Usage::X | Usage::W) {
                self.push(
                    Loc::field(idx, n),
                    Hl7Error::DataType,
                    Severity::Warning,
                    Some(AppError::DataIgnored),
                    "usage",
                    format!("{}-{n} ({}) is not supported by the guide (usage X); the value was ignored", seg.id(), fdef.name),
                );
                self.cleared.insert(Loc::field(idx, n));
                continue;
            }
            let mark = self.findings.len();
            let mut kept = 0;
            for (r, rep) in field.children().enumerate() {
                let r = (r + 1) as u32;
                if !rep.has_value() {
                    continue;
                }
                let l = Loc::field(idx, n).child(r);
                if fdef.cardinality.max.is_some_and(|m| r > m) {
                    self.push(
                        l,
                        Hl7Error::DataType,
                        Severity::Warning,
                        Some(AppError::DataIgnored),
                        "cardinality",
                        format!("{}-{n} repeats more than the guide allows ({}); repetition {r} was ignored", seg.id(), fdef.cardinality.max.unwrap_or(0)),
                    );
                    self.cleared.insert(l);
                    continue;
                }
                let v = self.value(l, rep, fdef, true);
                let v = if v == Verdict::Kept {
                    self.business_rules(seg.id_bytes(), n, l, rep)
                } else {
                    v
                };
                match v {
                    Verdict::Kept => kept += 1,
                    Verdict::Emptied => {
                        self.cleared.insert(l);
                    }
                }
            }
            if kept == 0 && usage == Usage::R {
                alive &= self.required_field_lost(
                    idx,
                    n,
                    fdef,
                    "cascade",
                    "is required and its value was rejected",
                    Some(mark),
                );
            }
        }
        if alive {
            if let Some(r) = rules {
                self.constraints(r, &Ctx::Segment(idx), Some(Loc::seg(idx)), memo.as_ref());
            }
        }
        alive
    }

    /// The usage a conditional element takes: `p`'s true or false usage.
    ///
    /// The validator only tells R, X/W and the other usages apart, and for an
    /// element not sent only R matters: when both outcomes fall in the same
    /// class, the (pure) condition cannot change anything and is not evaluated.
    fn decide(
        &self,
        p: &Predicate,
        present: bool,
        ctx: &Ctx<'_, 'a>,
        memo: Option<&Memo<'a>>,
    ) -> Usage {
        let class = |u: Usage| match u {
            Usage::R => 0,
            Usage::X | Usage::W if present => 1,
            _ => 2,
        };
        if class(p.true_usage) == class(p.false_usage) {
            return p.true_usage;
        }
        if self.eval(&p.condition, ctx, memo) {
            p.true_usage
        } else {
            p.false_usage
        }
    }

    /// Reports a required field with no usable value. Returns whether the
    /// segment survives: only MSH fields the IIS can default and set-id fields do.
    /// With `mark`, the value findings since then caused the loss and become errors.
    fn required_field_lost(
        &mut self,
        idx: usize,
        n: u32,
        fdef: &ElementDef,
        rule: &str,
        what: &str,
        mark: Option<usize>,
    ) -> bool {
        let Some(seg) = self.msg.segment(idx) else {
            return false;
        };
        let is_msh = seg.is_msh();
        let tolerated = if is_msh {
            msh_tolerates(n)
        } else {
            set_id_tolerated(fdef)
        };
        let consequence = match tolerated {
            Some(_) if is_msh => msh_default_note(n),
            Some(_) => "it carries no data, so the segment was kept".into(),
            None => format!("the {} segment was rejected", seg.id()),
        };
        if let (None, Some(mark)) = (tolerated, mark) {
            for f in &mut self.findings[mark..] {
                f.severity = Severity::Error;
            }
        }
        self.push(
            Loc::field(idx, n),
            Hl7Error::RequiredFieldMissing,
            tolerated.unwrap_or(Severity::Error),
            Some(AppError::RequiredDataMissing),
            rule,
            format!("{}-{n} ({}) {what}; {consequence}", seg.id(), fdef.name),
        );
        tolerated.is_some()
    }

    /// [`Run::check_value`], once per distinct value (see [`CleanValues`]).
    ///
    /// Messages repeat values (the same provider, unit or funding observation
    /// in every order, and from message to message). Checking a value depends only on its bytes, its
    /// definition, its data type (which for OBX-5 OBX-2 names) and
    /// `profiled`, except where it leaves a trace (a finding,
    /// a cleared element, a failed statement, whose report depends on what was
    /// reported before): a value checked with no trace at all is clean, and
    /// the same value under the same definition and delimiters is clean
    /// again, in this message or a later one.
    fn value(&mut self, l: Loc, e: Element<'a>, def: &ElementDef, profiled: bool) -> Verdict {
        if def.plain && is_plain_ok(e.raw(), def, profiled) {
            // What `primitive` would conclude for plain text, without the calls.
            return Verdict::Kept;
        }
        if e.is_null() {
            // "" asks the receiver to clear what it holds, whatever the type: it
            // is not a code, a date or a name to be checked.
            return Verdict::Kept;
        }
        let dt = if def.varies {
            // OBX-5 takes the type named in OBX-2.
            let Some(dt) = self.named_datatype(l.seg) else {
                return Verdict::Kept;
            };
            Some(dt)
        } else {
            self.profile.datatype_of(def)
        };
        // Plain text (no type to parse, no value set) costs less to check
        // than to remember.
        let costly = dt.is_some_and(|dt| {
            !dt.is_primitive() || dt.base != Primitive::Text || !def.binding.is_empty()
        });
        if !costly {
            return self.check_value(l, e, def, dt, profiled);
        }
        let key = CleanKey::new(def, dt, profiled, &e);
        let hash = key.hash();
        let known = CLEAN.with(|c| c.borrow().keys.get(&hash).is_some_and(|k| key.is(k)));
        if known {
            return Verdict::Kept;
        }
        let (findings, traces) = (self.findings.len(), self.traces);
        let v = self.check_value(l, e, def, dt, profiled);
        if v == Verdict::Kept && self.findings.len() == findings && self.traces == traces {
            CLEAN.with(|c| {
                let keys = &mut c.borrow_mut().keys;
                if keys.len() >= CLEAN_MAX {
                    keys.clear();
                }
                keys.entry(hash).or_insert_with(|| key.to_owned());
            });
        }
        v
    }

    /// The data type segment `seg`'s field 2 names (OBX-2, for OBX-5),
    /// looked up once per message and name: a message's observations name
    /// two or three types between them.
    fn named_datatype(&mut self, seg: usize) -> Option<&'static DatatypeDef> {
        let named = self.msg.segment(seg).map(|s| s.field(2).first_leaf());
        let raw = named.map_or(&[][..], |n| n.raw());
        if let Some(&(_, dt)) = self.named.iter().find(|(n, _)| *n == raw) {
            return dt;
        }
        let profile: &'static Profile = self.profile;
        let dt = profile.datatype(&named.map(|n| n.text()).unwrap_or_default());
        self.named.push((raw, dt));
        dt
    }

    /// The definition of segment `def_id`, looked up once per message and
    /// definition: a message repeats its OBX, RXA and ORC many times over.
    fn segment_def(&mut self, def_id: &'static str) -> Option<&'static SegmentDef> {
        if let Some(&(_, def)) = self
            .segment_defs
            .iter()
            .find(|(id, _)| std::ptr::eq(*id, def_id))
        {
            return def;
        }
        let profile: &'static Profile = self.profile;
        let def = profile.segment_def(def_id);
        self.segment_defs.push((def_id, def));
        def
    }

    /// Marks an element as emptied by validation.
    fn clear(&mut self, l: Loc) {
        self.traces += 1;
        self.cleared.insert(l);
    }

    /// Checks one value (a field repetition, a component or a sub-component)
    /// against its data type, length and binding.
    /// `profiled` is false inside base HL7 data types (no `_IZ` constraint):
    /// the guide gives no lengths or value sets there, so only formats are checked.
    /// `dt` is the value's data type, resolved by [`Run::value`].
    fn check_value(
        &mut self,
        l: Loc,
        e: Element<'a>,
        def: &ElementDef,
        dt: Option<&'static DatatypeDef>,
        profiled: bool,
    ) -> Verdict {
        let primitive = dt.is_none_or(DatatypeDef::is_primitive);
        if primitive {
            let base = dt.map_or_else(|| Primitive::of(&def.datatype), |d| d.base);
            return self.primitive(l, e, def, base, profiled);
        }
        let Some(dt) = dt else { return Verdict::Kept };
        if let Some(max) = def.max_length.filter(|_| profiled) {
            // Composite lengths are not checked against the guide (its component
            // lengths are), but a value past any plausible size is garbage.
            let hard = hard_length_limit(max);
            if e.raw().len() > hard {
                let path = self.path(l);
                self.push(l, Hl7Error::DataType, Severity::Warning, Some(AppError::InvalidValue), "length",
                    format!("{path} is {} characters long; the guide's length for {} is {max}; values over {hard} characters are not used", e.raw().len(), def.name));
                return Verdict::Emptied;
            }
        }
        // A composite used where a leaf is expected (sub-components) cannot split further.
        let children_level = match e.level() {
            Level::Repetition => Some(Level::Component),
            Level::Component => Some(Level::SubComponent),
            _ => None,
        };
        if children_level.is_none() {
            return self.primitive(l, e.first_leaf(), def, dt.base, profiled);
        }
        let preds = dt.rules.as_ref();
        let memo = preds.map(|_| Memo::new());
        let inner_profiled = dt.profiled;
        let mut verdict = Verdict::Kept;
        // One pass over the components (`child(c)` would rescan from the start
        // each time); components not sent read as empty, as `child` gives them.
        let mut comps = e.children();
        for (k, cdef) in dt.components.iter().enumerate() {
            let c = (k + 1) as u32;
            let comp = match comps.next() {
                Some(comp) => comp,
                // Every component from here on is unsent and neither required
                // nor conditional: nothing more to check.
                None if k >= dt.must_check => break,
                None => e.empty_child(),
            };
            let cl = l.child(c);
            let mut usage = cdef.usage;
            let present = comp.has_value();
            if usage == Usage::C {
                usage = preds
                    .and_then(|r| single_step_predicate(&r.predicates, c))
                    .map(|p| self.decide(p, present, &Ctx::Elem(e), memo.as_ref()))
                    .unwrap_or(Usage::O);
            }
            if !present {
                if usage == Usage::R {
                    // The first component carries the identity of the value (the code,
                    // the identifier, the time); without it the value means nothing.
                    let path = self.path(cl);
                    let consequence = if c == 1 {
                        "the value was not used"
                    } else {
                        "the rest of the value was kept"
                    };
                    self.push(
                        cl,
                        Hl7Error::RequiredFieldMissing,
                        Severity::Warning,
                        Some(AppError::RequiredDataMissing),
                        "usage",
                        format!(
                            "{path} ({}) is required in {} but missing; {consequence}",
                            cdef.name, dt.name
                        ),
                    );
                    if c == 1 {
                        verdict = Verdict::Emptied;
                    }
                }
                continue;
            }
            if matches!(usage, Usage::X | Usage::W) {
                // Unsupported components are ignored, not an error worth an ERR each.
                self.clear(cl);
                continue;
            }
            if self.value(cl, comp, cdef, inner_profiled) == Verdict::Emptied {
                self.clear(cl);
                if usage == Usage::R && c == 1 {
                    verdict = Verdict::Emptied;
                }
            }
        }
        if verdict == Verdict::Kept && profiled && !def.binding.is_empty() {
            let code = e.child(1).first_leaf();
            if code.has_value() {
                verdict = self.binding(l.child(1), &code.text(), def, "code");
            }
        }
        if verdict == Verdict::Kept {
            if let Some(r) = preds {
                self.constraints(r, &Ctx::Elem(e), Some(l), memo.as_ref());
            }
        }
        verdict
    }

    fn primitive(
        &mut self,
        l: Loc,
        e: Element<'a>,
        def: &ElementDef,
        base: Primitive,
        profiled: bool,
    ) -> Verdict {
        // Most values are fine: the element's path (for messages) is only
        // spelled out once a finding is actually reported.
        // (0xFF, which some senders use as a filler, is never valid UTF-8.)
        if !e.raw().is_ascii() && std::str::from_utf8(e.raw()).is_err() {
            return self.not_utf8(l);
        }
        let leaf = e.first_leaf();
        if leaf.is_null() {
            // "" asks the receiver to clear its stored value: valid for any type.
            return Verdict::Kept;
        }
        // Decoding never lengthens a value (an escape sequence stands for fewer
        // characters than it takes), so a raw value within the guide's length
        // needs no count; and a value with no length, type or code to check
        // needs no decoding at all.
        let max_length = def
            .max_length
            .filter(|&max| profiled && leaf.raw().len() > max as usize);
        let typed = base != Primitive::Text;
        let bound = profiled && !def.binding.is_empty();
        if max_length.is_none() && !typed && !bound {
            return Verdict::Kept;
        }
        let text = leaf.text();
        if let Some(max) = max_length {
            let len = text.chars().count();
            if len > max as usize {
                // IG R1.5 adopts v2.7.1 conformance lengths: a receiver must store at
                // least that much, so a longer value is kept with a warning, unless
                // it is so long it cannot be a real value of this element.
                let hard = hard_length_limit(max);
                let junk = len > hard;
                let consequence = if junk {
                    format!("values over {hard} characters are not used")
                } else {
                    "the value was kept as sent".into()
                };
                let path = self.path(l);
                self.push(
                    l,
                    Hl7Error::DataType,
                    Severity::Warning,
                    Some(AppError::InvalidValue),
                    "length",
                    format!("{path} is {len} characters long; the guide's length for {} is {max}; {consequence}", def.name),
                );
                if junk {
                    return Verdict::Emptied;
                }
            }
        }
        let problem = match base {
            Primitive::NM => (!is_number(&text)).then(|| {
                (
                    AppError::InvalidValue,
                    format!("{} '{}' is not a number", self.path(l), clip(&text, 40)),
                )
            }),
            Primitive::SI => {
                (!text.bytes().all(|b| b.is_ascii_digit()) || text.is_empty()).then(|| {
                    (
                        AppError::InvalidValue,
                        format!(
                            "{} '{}' is not a sequence number",
                            self.path(l),
                            clip(&text, 40)
                        ),
                    )
                })
            }
            Primitive::DT => datetime::parse_dt(&text).err().map(|d| {
                (
                    AppError::InvalidDate,
                    format!(
                        "{} '{}' is not a valid date: {}",
                        self.path(l),
                        clip(&text, 40),
                        d.0
                    ),
                )
            }),
            Primitive::DTM => datetime::parse_dtm(&text).err().map(|d| {
                (
                    AppError::InvalidDate,
                    format!(
                        "{} '{}' is not a valid date/time: {}",
                        self.path(l),
                        clip(&text, 40),
                        d.0
                    ),
                )
            }),
            Primitive::TM => datetime::check_tm(&text).err().map(|d| {
                (
                    AppError::InvalidValue,
                    format!(
                        "{} '{}' is not a valid time: {}",
                        self.path(l),
                        clip(&text, 40),
                        d.0
                    ),
                )
            }),
            Primitive::Text => None,
        };
        if let Some((app, msg)) = problem {
            self.push(
                l,
                Hl7Error::DataType,
                Severity::Warning,
                Some(app),
                "datatype",
                format!("{msg}; the value was not used"),
            );
            return Verdict::Emptied;
        }
        if bound {
            return self.binding(l, &text, def, "value");
        }
        Verdict::Kept
    }

    fn not_utf8(&mut self, l: Loc) -> Verdict {
        let path = self.path(l);
        self.push(
            l,
            Hl7Error::DataType,
            Severity::Warning,
            Some(AppError::InvalidValue),
            "encoding",
            format!("{path} contains bytes that are not valid UTF-8; the value was not used"),
        );
        Verdict::Emptied
    }

    /// Checks a code against the element's value sets. A code that matches only
    /// once surrounding spaces are removed is kept with a warning.
    fn binding(&mut self, l: Loc, text: &str, def: &ElementDef, noun: &str) -> Verdict {
        if self.in_resolved_binding(&def.binding_refs, text) {
            return Verdict::Kept;
        }
        let path = self.path(l);
        if self.in_resolved_binding(&def.binding_refs, text.trim()) {
            self.push(
                l,
                Hl7Error::DataType,
                Severity::Warning,
                Some(AppError::InvalidValue),
                "value-set",
                format!(
                    "{path} {noun} '{}' has surrounding spaces; it was read as '{}'",
                    clip(text, 40),
                    text.trim()
                ),
            );
            return Verdict::Kept;
        }
        self.push(
            l,
            Hl7Error::TableValueNotFound,
            Severity::Warning,
            Some(AppError::TableValueNotFound),
            "value-set",
            format!(
                "{path} {noun} '{}' ({}) is not in {}; the value was not used",
                clip(text, 40),
                def.name,
                def.binding.join(" or ")
            ),
        );
        Verdict::Emptied
    }

    /// [`Run::in_binding`] for an element's binding as resolved at load: the
    /// same answer (a code is admitted when some value set admits it, or when
    /// none of them is a closed, defined set), without string tests or map lookups.
    fn in_resolved_binding(&self, binding: &[BindingRef], code: &str) -> bool {
        let mut checked = false;
        for b in binding {
            if (b.coding_systems && is_coding_system_pattern(code))
                || (b.vis_barcodes && is_vis_barcode(code))
                || (b.ndc && is_ndc(code))
            {
                return true;
            }
            match b.codes {
                BoundCodes::Any => return true,
                BoundCodes::Closed(i) => {
                    checked = true;
                    if self
                        .profile
                        .bound_codes
                        .get(i)
                        .is_some_and(|c| c.contains(code))
                    {
                        return true;
                    }
                }
                BoundCodes::Unknown => {}
            }
        }
        !checked
    }

    fn in_binding(&self, binding: &[String], code: &str) -> bool {
        let mut checked = false;
        for b in binding {
            if b.starts_with("HL70396") && is_coding_system_pattern(code) {
                return true;
            }
            if b == "PHVS_VISBarcodes_IIS" && is_vis_barcode(code) {
                return true;
            }
            if b.starts_with("NDC_") && is_ndc(code) {
                return true;
            }
            if self.profile.no_validation.contains(b) {
                return true;
            }
            if let Some(vs) = self.profile.value_set(b) {
                if vs.codes.is_empty() || vs.open {
                    // Open (extensible) value sets admit local codes.
                    // An empty definition (local table such as HL70362) cannot be checked.
                    return true;
                }
                checked = true;
                if vs.codes.contains(code) {
                    return true;
                }
            }
        }
        !checked
    }

    /// IIS business rules on dates the profile cannot express.
    fn business_rules(&mut self, id: &[u8], field: u32, l: Loc, rep: Element<'a>) -> Verdict {
        let date = || {
            datetime::parse_dtm(&rep.first_leaf().text())
                .ok()
                .and_then(|d| d.date())
        };
        match (id, field) {
            (b"PID", 7) => {
                let Some(dob) = date() else {
                    return Verdict::Kept;
                };
                if dob > self.today {
                    self.push(
                        l.child(1),
                        Hl7Error::ApplicationError,
                        Severity::Error,
                        Some(AppError::IllogicalDate),
                        "business-rule",
                        format!(
                            "PID-7 birth date {} is after today ({}); the value was not used",
                            dob.iso(),
                            self.today.iso()
                        ),
                    );
                    return Verdict::Emptied;
                }
                self.birth_date = Some(dob);
            }
            (b"RXA", 3) => {
                let Some(given) = date() else {
                    return Verdict::Kept;
                };
                if given > self.today {
                    self.push(
                        l.child(1),
                        Hl7Error::ApplicationError,
                        Severity::Error,
                        Some(AppError::IllogicalDate),
                        "business-rule",
                        format!("RXA-3 administration date {} is after today ({}); the value was not used", given.iso(), self.today.iso()),
                    );
                    return Verdict::Emptied;
                }
                if let Some(dob) = self.birth_date {
                    if given < dob {
                        self.push(
                            l.child(1),
                            Hl7Error::ApplicationError,
                            Severity::Error,
                            Some(AppError::IllogicalDate),
                            "business-rule",
                            format!("RXA-3 administration date {} is before the birth date {}; the value was not used", given.iso(), dob.iso()),
                        );
                        return Verdict::Emptied;
                    }
                }
            }
            _ => {}
        }
        Verdict::Kept
    }

    /// The human spelling of `l` (`RXA-5.1`), for finding texts.
    fn path(&self, l: Loc) -> String {
        self.location(l).to_path()
    }

    // ---- conformance statements --------------------------------------------------

    fn message_constraints(&mut self, root: &GroupInstance) {
        let rules = &self.profile.message_rules;
        self.constraints(rules, &Ctx::Group(root), None, None);
    }

    fn constraints(
        &mut self,
        rules: &'static Rules,
        ctx: &Ctx<'_, 'a>,
        at: Option<Loc>,
        memo: Option<&Memo<'a>>,
    ) {
        for c in &rules.constraints {
            // A statement that holds is passed either way, so the (pure)
            // assertion goes first and the target is walked only for the few
            // that fail: a simple statement whose target is absent does not apply.
            if self.eval(&c.assertion, ctx, memo) {
                continue;
            }
            if is_simple(&c.assertion) && !self.target_present(ctx, &c.target) {
                continue;
            }
            // Whether it is reported now depends on what was reported before.
            self.traces += 1;
            let l = self.target_loc(ctx, &c.target, at);
            if let Some(l) = l {
                if l.field > 0 && self.flagged.contains(&(l.seg, l.field)) {
                    continue;
                }
            }
            let (code, app) = match c.id.as_str() {
                "IZ-23" | "IZ-24" => (
                    Hl7Error::RequiredFieldMissing,
                    AppError::RequiredObservationMissing,
                ),
                _ => (Hl7Error::DataType, AppError::InvalidValue),
            };
            let location = match l {
                Some(l) => self.location(l),
                None => self.location(Loc::seg(0)),
            };
            let text = format!("{}: {}", c.id, c.description);
            if let Some(l) = l {
                if l.field > 0 {
                    self.flagged.insert((l.seg, l.field));
                }
            }
            self.findings.push(Finding::new(
                location,
                code,
                Severity::Warning,
                Some(app),
                &c.id,
                text,
            ));
        }
    }

    fn target_present(&self, ctx: &Ctx<'_, 'a>, target: &Path) -> bool {
        self.any_present(ctx, None, target)
    }

    /// Where to report a failed statement: the target element in segment or group context.
    fn target_loc(&self, ctx: &Ctx<'_, 'a>, target: &Path, at: Option<Loc>) -> Option<Loc> {
        let steps = target.steps();
        match ctx {
            Ctx::Segment(i) => {
                let mut l = Loc::field(*i, steps.first()?.position);
                for s in steps.iter().skip(1) {
                    l = l.child(s.position);
                }
                if steps.len() > 1 && l.rep == 0 {
                    l.rep = 1;
                }
                Some(l)
            }
            Ctx::Group(g) => {
                // Walk group steps until a segment, then field steps.
                let mut inst = *g;
                for (k, s) in steps.iter().enumerate() {
                    let items = inst.children.get((s.position as usize).checked_sub(1)?)?;
                    match items.first() {
                        Some(Item::Group(next)) => inst = next,
                        Some(Item::Segment(i)) => {
                            let rest = &steps[k + 1..];
                            let mut l = match rest.first() {
                                Some(f) => Loc::field(*i, f.position),
                                None => Loc::seg(*i),
                            };
                            for s in rest.iter().skip(1) {
                                l = l.child(s.position);
                            }
                            return Some(l);
                        }
                        None => return inst.first_segment().map(Loc::seg),
                    }
                }
                inst.first_segment().map(Loc::seg)
            }
            Ctx::Elem(_) => {
                let mut l = at?;
                for s in steps {
                    l = l.child(s.position);
                }
                Some(l)
            }
        }
    }

    /// What `steps` designates from `ctx` when that is at most one element:
    /// below an element; below a segment when the field step names one
    /// repetition; below a group when every group step names one instance
    /// and the path goes on into the fields of a segment. Below an element the
    /// steps' instances are not consulted, as in [`Run::visit`], which this
    /// agrees with. `None` means "walk".
    fn direct(&self, ctx: &Ctx<'_, 'a>, steps: &[PathStep]) -> Option<Direct<'a>> {
        match ctx {
            Ctx::Elem(e) => Some(Direct::Elem(descend(*e, steps))),
            Ctx::Segment(i) => self.direct_in_segment(*i, steps),
            Ctx::Group(g) => {
                let mut g: &GroupInstance = g;
                let mut rest = steps;
                loop {
                    let (s, more) = rest.split_first()?;
                    let n = s.instance?;
                    let items = g.children.get((s.position as usize).wrapping_sub(1));
                    let Some(item) =
                        items.and_then(|items| items.get((n as usize).wrapping_sub(1)))
                    else {
                        return Some(Direct::Nothing);
                    };
                    match item {
                        Item::Group(next) => g = next,
                        // A path ending on a segment designates the segment, not an element.
                        Item::Segment(_) if more.is_empty() => return None,
                        Item::Segment(i) if self.dropped[*i] => return Some(Direct::Nothing),
                        Item::Segment(i) => return self.direct_in_segment(*i, more),
                    }
                    rest = more;
                }
            }
        }
    }

    /// [`Run::direct`] for `path`, through `memo` when the path has a place
    /// there: the context does not change while its rules are evaluated.
    fn locate(
        &self,
        ctx: &Ctx<'_, 'a>,
        path: &Path,
        memo: Option<&Memo<'a>>,
    ) -> Option<Direct<'a>> {
        let slot = memo
            .zip(path.memo_slot)
            .and_then(|(m, i)| m.found.get(usize::from(i)));
        let Some(slot) = slot else {
            return self.direct(ctx, path.steps());
        };
        if let Some(d) = slot.get() {
            return Some(d);
        }
        let d = self.direct(ctx, path.steps());
        slot.set(d);
        d
    }

    /// [`Run::direct`] below segment `i`.
    fn direct_in_segment(&self, i: usize, steps: &[PathStep]) -> Option<Direct<'a>> {
        let (s, rest) = steps.split_first()?;
        let n = s.instance?;
        let Some(seg) = self.msg.segment(i) else {
            return Some(Direct::Nothing);
        };
        let field = seg.field(s.position as usize);
        let (e, rest) = match rest.split_first() {
            Some((c, rest)) => (field.grandchild(n as usize, c.position as usize), rest),
            None => (field.child(n as usize), rest),
        };
        Some(Direct::Elem(descend(e, rest)))
    }

    /// Calls `f` on everything `steps` designates from `ctx`, in message
    /// order, until `f` returns false. Returns false when `f` stopped the walk.
    ///
    /// A visitor rather than a list: most statements are decided by the first
    /// match or two, and nothing has to be allocated per statement.
    fn visit<'i, F>(&self, ctx: &Ctx<'i, 'a>, steps: &[PathStep], f: &mut F) -> bool
    where
        F: FnMut(Found<'i, 'a>) -> bool,
    {
        // Below a segment, every step but a `[*]` field names exactly one
        // element: walk those in a loop instead of one recursive call per step
        // (most statement paths are of this kind).
        let single = match ctx {
            Ctx::Elem(e) => Some((*e, steps)),
            Ctx::Segment(i) => match steps.split_first() {
                Some((s, rest)) => match s.instance {
                    Some(n) => {
                        let Some(seg) = self.msg.segment(*i) else {
                            return true;
                        };
                        Some((seg.field(s.position as usize).child(n as usize), rest))
                    }
                    None => None,
                },
                None => None,
            },
            Ctx::Group(_) => None,
        };
        if let Some((mut e, rest)) = single {
            for s in rest {
                e = e.child(s.position as usize);
            }
            return f(Found::Elem(e));
        }
        let Some((s, rest)) = steps.split_first() else {
            return f(match ctx {
                Ctx::Group(g) => Found::Group(g),
                Ctx::Segment(i) => Found::Segment(*i),
                Ctx::Elem(e) => Found::Elem(*e),
            });
        };
        match ctx {
            Ctx::Group(g) => {
                let Some(items) = g.children.get((s.position as usize).wrapping_sub(1)) else {
                    return true;
                };
                for (k, item) in items.iter().enumerate() {
                    if s.instance.is_some_and(|n| n as usize != k + 1) {
                        continue;
                    }
                    let go_on = match item {
                        Item::Segment(i) => {
                            self.dropped[*i] || self.visit(&Ctx::Segment(*i), rest, f)
                        }
                        Item::Group(gg) => self.visit(&Ctx::Group(gg), rest, f),
                    };
                    if !go_on {
                        return false;
                    }
                }
                true
            }
            Ctx::Segment(i) => {
                let Some(seg) = self.msg.segment(*i) else {
                    return true;
                };
                let field = seg.field(s.position as usize);
                match s.instance {
                    Some(n) => self.visit(&Ctx::Elem(field.child(n as usize)), rest, f),
                    None => field
                        .children()
                        .all(|rep| self.visit(&Ctx::Elem(rep), rest, f)),
                }
            }
            Ctx::Elem(e) => self.visit(&Ctx::Elem(e.child(s.position as usize)), rest, f),
        }
    }

    fn present(&self, f: &Found<'_, 'a>) -> bool {
        match f {
            Found::Segment(i) => !self.dropped[*i],
            Found::Group(_) => true,
            Found::Elem(e) => e.has_value(),
        }
    }

    /// Whether anything at `path` is present (valued, or a kept segment).
    fn any_present(&self, ctx: &Ctx<'_, 'a>, memo: Option<&Memo<'a>>, path: &Path) -> bool {
        match self.locate(ctx, path, memo) {
            Some(Direct::Elem(e)) => e.has_value(),
            Some(Direct::Nothing) => false,
            None => !self.visit(ctx, path.steps(), &mut |f| !self.present(&f)),
        }
    }

    /// Calls `f` on the first leaf of each valued element at `path` until `f`
    /// returns false; false when stopped.
    fn each_leaf<F>(
        &self,
        ctx: &Ctx<'_, 'a>,
        memo: Option<&Memo<'a>>,
        path: &Path,
        mut f: F,
    ) -> bool
    where
        F: FnMut(Element<'a>) -> bool,
    {
        match self.locate(ctx, path, memo) {
            Some(Direct::Elem(e)) => !e.has_value() || f(e.first_leaf()),
            Some(Direct::Nothing) => true,
            None => self.visit(ctx, path.steps(), &mut |found| match found {
                Found::Elem(e) if e.has_value() => f(e.first_leaf()),
                _ => true,
            }),
        }
    }

    /// Calls `f` on the text of each valued element at `path` (its first
    /// leaf, decoded) until `f` returns false; false when stopped.
    fn each_value<F>(
        &self,
        ctx: &Ctx<'_, 'a>,
        memo: Option<&Memo<'a>>,
        path: &Path,
        mut f: F,
    ) -> bool
    where
        F: FnMut(Cow<'a, str>) -> bool,
    {
        self.each_leaf(ctx, memo, path, |leaf| f(leaf.text()))
    }

    /// There is at least one value at `path` and every one's decoded bytes satisfy `ok`.
    ///
    /// For comparisons with the profile's constants: most values are plain
    /// ASCII with no escape, and are compared as sent, without decoding.
    fn all_bytes<F>(
        &self,
        ctx: &Ctx<'_, 'a>,
        memo: Option<&Memo<'a>>,
        path: &Path,
        mut ok: F,
    ) -> bool
    where
        F: FnMut(&[u8]) -> bool,
    {
        let mut seen = false;
        let all = self.each_leaf(ctx, memo, path, |leaf| {
            seen = true;
            with_bytes(leaf, &mut ok)
        });
        seen && all
    }

    /// Some value at `path` has decoded bytes that satisfy `ok`.
    fn any_bytes<F>(
        &self,
        ctx: &Ctx<'_, 'a>,
        memo: Option<&Memo<'a>>,
        path: &Path,
        mut ok: F,
    ) -> bool
    where
        F: FnMut(&[u8]) -> bool,
    {
        !self.each_leaf(ctx, memo, path, |leaf| !with_bytes(leaf, &mut ok))
    }

    /// There is at least one value at `path` and every one satisfies `ok`.
    fn all_values<F>(
        &self,
        ctx: &Ctx<'_, 'a>,
        memo: Option<&Memo<'a>>,
        path: &Path,
        mut ok: F,
    ) -> bool
    where
        F: FnMut(&str) -> bool,
    {
        let mut seen = false;
        let all = self.each_value(ctx, memo, path, |v| {
            seen = true;
            ok(&v)
        });
        seen && all
    }

    /// Some value at `path` satisfies `ok`.
    fn first_value(
        &self,
        ctx: &Ctx<'_, 'a>,
        memo: Option<&Memo<'a>>,
        path: &Path,
    ) -> Option<Cow<'a, str>> {
        let mut first = None;
        self.each_value(ctx, memo, path, |v| {
            first = Some(v);
            false
        });
        first
    }

    fn eval(&self, e: &Expr, ctx: &Ctx<'_, 'a>, memo: Option<&Memo<'a>>) -> bool {
        match e {
            Expr::And(v) => v.iter().all(|x| self.eval(x, ctx, memo)),
            Expr::Or(v) => v.iter().any(|x| self.eval(x, ctx, memo)),
            Expr::Not(x) => !self.eval(x, ctx, memo),
            Expr::Imply(a, b) => !self.eval(a, ctx, memo) || self.eval(b, ctx, memo),
            Expr::Presence(p) => self.any_present(ctx, memo, p),
            Expr::PlainText {
                path,
                text,
                ignore_case,
                at_least_once,
            } => {
                let text = text.as_bytes();
                let eq = |v: &[u8]| {
                    if *ignore_case {
                        v.eq_ignore_ascii_case(text)
                    } else {
                        same_bytes(v, text)
                    }
                };
                if *at_least_once {
                    self.any_bytes(ctx, memo, path, eq)
                } else {
                    self.all_bytes(ctx, memo, path, eq)
                }
            }
            Expr::Format { path, regex } => {
                let mut seen = false;
                let all = self.each_leaf(ctx, memo, path, |leaf| {
                    seen = true;
                    self.format_ok(regex, leaf)
                });
                seen && all
            }
            Expr::StringList { path, values } => self.all_bytes(ctx, memo, path, |v| {
                values.iter().any(|x| same_bytes(x.as_bytes(), v))
            }),
            Expr::SimpleValue {
                path,
                op,
                value,
                numeric,
            } => {
                if *numeric {
                    let b = value.parse::<f64>();
                    self.all_values(ctx, memo, path, |v| match (v.trim().parse::<f64>(), &b) {
                        (Ok(a), Ok(b)) => compare(a.partial_cmp(b), *op),
                        _ => false,
                    })
                } else {
                    self.all_bytes(ctx, memo, path, |v| {
                        compare(Some(v.cmp(value.as_bytes())), *op)
                    })
                }
            }
            Expr::PathValue { left, op, right } => {
                match (
                    self.first_value(ctx, memo, left),
                    self.first_value(ctx, memo, right),
                ) {
                    (Some(x), Some(y)) => compare(Some(x.cmp(&y)), *op),
                    _ => false,
                }
            }
            Expr::ValueSet { path, value_sets } => {
                let in_value_sets = |e: Element<'a>| {
                    let code = if e.level() == Level::Repetition {
                        e.child(1)
                    } else {
                        e
                    };
                    self.in_binding(value_sets, &code.first_leaf().text())
                };
                match self.locate(ctx, path, memo) {
                    Some(Direct::Elem(e)) => e.has_value() && in_value_sets(e),
                    Some(Direct::Nothing) => false,
                    None => {
                        let mut seen = false;
                        let all = self.visit(ctx, path.steps(), &mut |f| match f {
                            Found::Elem(e) if e.has_value() => {
                                seen = true;
                                in_value_sets(e)
                            }
                            _ => true,
                        });
                        seen && all
                    }
                }
            }
            Expr::SetId(path) => match ctx {
                Ctx::Segment(i) => {
                    let seq = self.msg.segment(*i).map_or(0, |s| s.seq());
                    self.first_value(ctx, memo, path)
                        .is_some_and(|v| is_decimal(v.trim(), seq as usize))
                }
                _ => true,
            },
            Expr::IzSetId { parent, element } => self.set_ids_sequential(ctx, parent, element),
            Expr::Plugin(name) if name.ends_with("IZ24Constraint") => self.vis_documented(ctx),
            Expr::Plugin(_) => true,
        }
    }

    /// Whether the decoded text of `leaf` matches `regex` (a Format
    /// assertion's), asking each regex once per distinct value of the
    /// message: a message repeats its dates (every observation of an order
    /// carries the order's), and a timestamp pattern costs hundreds of
    /// instructions to run where looking up a few bytes costs tens.
    fn format_ok(&self, regex: &regex::Regex, leaf: Element<'a>) -> bool {
        let id = std::ptr::from_ref(regex) as usize;
        let raw = leaf.raw();
        let known = self
            .formats
            .borrow()
            .iter()
            .find(|&&(r, v, _)| r == id && same_bytes(v, raw))
            .map(|&(_, _, ok)| ok);
        if let Some(ok) = known {
            return ok;
        }
        let ok = regex.is_match(&leaf.text());
        let mut formats = self.formats.borrow_mut();
        // Searched in order, so kept short; values past this many are matched each time.
        if formats.len() < FORMATS_MAX {
            formats.push((id, raw, ok));
        }
        ok
    }

    /// NIST-01: OBX-1 runs 1, 2, 3... either across the message or within each group.
    fn set_ids_sequential(&self, ctx: &Ctx<'_, 'a>, parent: &Path, element: &Path) -> bool {
        // Both readings checked in one walk, without gathering the groups or
        // their values: the k-th value of each group must read k, or the
        // k-th value over all groups in turn must.
        let mut per_group_ok = true;
        let mut all_ok = true;
        let mut overall = 0;
        self.visit(ctx, parent.steps(), &mut |f| {
            let Found::Group(g) = f else { return true };
            let mut within = 0;
            self.each_value(&Ctx::Group(g), None, element, |v| {
                within += 1;
                overall += 1;
                let v = v.trim();
                per_group_ok &= is_decimal(v, within);
                all_ok &= is_decimal(v, overall);
                true
            });
            true
        });
        per_group_ok || all_ok
    }

    /// IZ-24: each VIS shared is documented either by bar code + presentation
    /// date, or by vaccine type + edition date + presentation date, tied by OBX-4.
    fn vis_documented(&self, ctx: &Ctx<'_, 'a>) -> bool {
        if !matches!(ctx, Ctx::Group(_)) {
            return true;
        }
        let mut groups: Map<String, Set<String>> = Map::default();
        let mut obx = Vec::new();
        // The observation group is child 5 of the Z22 ORDER group.
        self.visit(
            ctx,
            &[
                PathStep {
                    position: 5,
                    instance: None,
                },
                PathStep {
                    position: 1,
                    instance: Some(1),
                },
            ],
            &mut |f| {
                obx.push(f);
                true
            },
        );
        for f in obx {
            let Found::Segment(i) = f else { continue };
            let Some(seg) = self.msg.segment(i) else {
                continue;
            };
            let code = seg.value(3).into_owned();
            if matches!(code.as_str(), "69764-9" | "30956-7" | "29768-9" | "29769-7") {
                groups
                    .entry(seg.value(4).into_owned())
                    .or_default()
                    .insert(code);
            }
        }
        !groups.is_empty()
            && groups.values().all(|g| {
                (g.contains("69764-9") && g.contains("29769-7"))
                    || (g.contains("30956-7") && g.contains("29768-9") && g.contains("29769-7"))
            })
    }
}

/// Whether a plain text value (see [`ElementDef::plain`]) passes as is: ASCII
/// (so valid UTF-8) and, when the guide's length applies, within it (its
/// first leaf, which `primitive` measures, is no longer than all of it).
fn is_plain_ok(raw: &[u8], def: &ElementDef, profiled: bool) -> bool {
    raw.is_ascii() && (!profiled || def.max_length.is_none_or(|max| raw.len() <= max as usize))
}

/// The element `steps` lead to below `e` (instances are not consulted below an element).
fn descend<'a>(mut e: Element<'a>, steps: &[PathStep]) -> Element<'a> {
    let mut rest = steps;
    while let Some((s, more)) = rest.split_first() {
        match more.split_first() {
            Some((t, more)) => {
                e = e.grandchild(s.position as usize, t.position as usize);
                rest = more;
            }
            None => return e.child(s.position as usize),
        }
    }
    e
}

/// Calls `ok` on the decoded bytes of `leaf`. A leaf of ASCII without the
/// escape character decodes to itself, so it is passed as sent; otherwise it
/// is decoded (decoded text is UTF-8, whose byte order and equality are the
/// text's, so `ok` answers as it would on the `str`).
fn with_bytes<F>(leaf: Element<'_>, ok: &mut F) -> bool
where
    F: FnMut(&[u8]) -> bool,
{
    let raw = leaf.raw();
    let esc = leaf.delimiters().escape;
    if raw.iter().all(|&b| b.is_ascii() && Some(b) != esc) {
        ok(raw)
    } else {
        ok(leaf.text().as_bytes())
    }
}

/// Whether two values are the same bytes, compared in place: rule constants
/// and the values they meet are a few bytes, too short for a call to
/// `memcmp` to pay.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Table 0396 defines families of coding systems by pattern rather than by
/// listing them: `HL7nnnn` for HL7 tables and `99zzz` for local systems; the
/// guide also prescribes `cdcgs1vis` for VIS bar codes (OBX-5 with 69764-9).
fn is_coding_system_pattern(code: &str) -> bool {
    let b = code.as_bytes();
    (b.len() == 7 && code.starts_with("HL7") && b[3..].iter().all(u8::is_ascii_digit))
        || (b.len() == 5 && code.starts_with("99") && b[2..].iter().all(u8::is_ascii_alphanumeric))
        || code == "cdcgs1vis"
}

/// VIS documents are re-issued several times a year; a profile snapshot cannot
/// list every edition, so any GS1 VIS bar code (CDC's company prefix, 24
/// digits) is accepted as a VIS bar code.
fn is_vis_barcode(code: &str) -> bool {
    code.len() == 24 && code.starts_with("2530886983") && code.bytes().all(|b| b.is_ascii_digit())
}

/// The FDA assigns NDCs to new vaccine packages every season, so the 2016
/// NDC lists in the profiles cannot be complete: any well-formed NDC is
/// accepted (10 digits as 4-4-2, 5-3-2 or 5-4-1, or the 11-digit 5-4-2 form,
/// with or without hyphens).
fn is_ndc(code: &str) -> bool {
    let parts: Vec<&str> = code.split('-').collect();
    if !parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    matches!(
        lens.as_slice(),
        [10] | [11] | [4, 4, 2] | [5, 3, 2] | [5, 4, 1] | [5, 4, 2]
    )
}

/// Beyond this many characters a value is garbage, whatever the guide's length.
fn hard_length_limit(max: u32) -> usize {
    (max as usize).saturating_mul(4).max(1024)
}

/// Set ID fields (PID-1, NK1-1, OBX-1, ...) only number segments; losing one
/// must not cost the segment's data.
fn set_id_tolerated(def: &ElementDef) -> Option<Severity> {
    (def.datatype == "SI").then_some(Severity::Warning)
}

fn single_step_predicate(preds: &[Predicate], position: u32) -> Option<&Predicate> {
    preds
        .iter()
        .find(|p| p.target.steps().len() == 1 && p.target.steps()[0].position == position)
}

fn is_simple(e: &Expr) -> bool {
    !matches!(
        e,
        Expr::And(_) | Expr::Or(_) | Expr::Not(_) | Expr::Imply(..)
    )
}

fn compare(o: Option<std::cmp::Ordering>, op: Op) -> bool {
    use std::cmp::Ordering::*;
    matches!(
        (o, op),
        (Some(Equal), Op::Eq | Op::Ge | Op::Le)
            | (Some(Greater), Op::Gt | Op::Ge | Op::Ne)
            | (Some(Less), Op::Lt | Op::Le | Op::Ne)
    )
}

fn is_number(s: &str) -> bool {
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    let mut dot = false;
    let mut digit = false;
    for c in t.chars() {
        match c {
            '0'..='9' => digit = true,
            '.' if !dot => dot = true,
            _ => return false,
        }
    }
    digit
}

/// Whether `s` is exactly how `n` is written in decimal (`n.to_string() == s`),
/// without building the string.
fn is_decimal(s: &str, n: usize) -> bool {
    let mut rest = n;
    let mut digits = s.bytes().rev();
    loop {
        match digits.next() {
            Some(d) if d == b'0' + (rest % 10) as u8 => rest /= 10,
            _ => return false,
        }
        if rest == 0 {
            return digits.next().is_none();
        }
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}

fn short_group(name: &str) -> String {
    name.rsplit('.')
        .next()
        .unwrap_or(name)
        .to_ascii_lowercase()
        .replace('_', " ")
}

fn msh_default_note(n: u32) -> String {
    match n {
        7 => "the time of receipt was used instead".into(),
        15 => "ER (acknowledge errors only) was assumed".into(),
        16 => "AL (always acknowledge) was assumed".into(),
        21 => "the profile implied by MSH-9 was applied".into(),
        _ => "the message was processed without it".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::is_decimal;

    #[test]
    fn is_decimal_matches_to_string() {
        for n in [0usize, 1, 9, 10, 11, 99, 100, 1234] {
            for s in [
                "", "0", "1", "01", "9", "10", "010", "11", "99", "100", "1234", "a1", "1 ",
            ] {
                assert_eq!(is_decimal(s, n), s == n.to_string(), "{s:?} {n}");
            }
            assert!(is_decimal(&n.to_string(), n));
        }
    }
}
