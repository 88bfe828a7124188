use super::model::*;
use super::{Expr, Op, Path, ProfileId};
use roxmltree::{Document, Node};

pub(super) fn load(
    id: ProfileId,
    profile_xml: &str,
    constraints_xml: &str,
    value_sets_xml: &str,
) -> Result<Profile, String> {
    let doc = Document::parse(profile_xml).map_err(|e| format!("profile XML: {e}"))?;
    let root = doc.root_element();
    let message_node = child(root, "Messages")
        .and_then(|m| child(m, "Message"))
        .ok_or("profile has no Messages/Message")?;
    let message = MessageDef {
        id: attr(message_node, "ID"),
        message_type: attr(message_node, "Type"),
        event: attr(message_node, "Event"),
        structure_id: attr(message_node, "StructID"),
        children: structure(message_node),
    };
    let mut segments = Map::default();
    if let Some(segs) = child(root, "Segments") {
        for s in elements(segs, "Segment") {
            let fields: Vec<ElementDef> = elements(s, "Field").map(element_def).collect();
            let def = SegmentDef {
                id: attr(s, "ID"),
                name: attr(s, "Name"),
                description: attr(s, "Description"),
                must_check: must_check(&fields),
                fields,
                rules: None,
            };
            segments.insert(def.id.clone(), def);
        }
    }
    let mut datatypes = Vec::new();
    let mut datatype_ids = Map::default();
    if let Some(dts) = child(root, "Datatypes") {
        for d in elements(dts, "Datatype") {
            let components: Vec<ElementDef> = elements(d, "Component").map(element_def).collect();
            let id = attr(d, "ID");
            let name = attr(d, "Name");
            let def = DatatypeDef {
                profiled: id.contains('_'),
                base: Primitive::of(&name),
                id,
                name,
                must_check: must_check(&components),
                components,
                rules: None,
            };
            // A repeated id replaces the earlier definition, as a map insert would.
            datatype_ids.insert(def.id.clone(), datatypes.len());
            datatypes.push(def);
        }
    }
    let text_types: Vec<bool> = datatypes
        .iter()
        .map(|d| d.is_primitive() && d.base == Primitive::Text)
        .collect();
    let resolve = |defs: &mut [ElementDef]| {
        for d in defs {
            d.datatype_index = datatype_ids.get(&d.datatype).copied();
            let text = match d.datatype_index {
                Some(i) => text_types.get(i).copied().unwrap_or(false),
                None => Primitive::of(&d.datatype) == Primitive::Text,
            };
            // OBX-5 (`varies`, which the profile also defines as a type of
            // its own) takes the type OBX-2 names: never plain.
            d.varies = d.datatype == "varies";
            d.plain = text && d.binding.is_empty() && !d.varies;
        }
    };
    for s in segments.values_mut() {
        resolve(&mut s.fields);
    }
    for d in &mut datatypes {
        resolve(&mut d.components);
    }

    let cdoc = Document::parse(constraints_xml).map_err(|e| format!("constraints XML: {e}"))?;
    let mut datatype_rules: Map<String, Rules> = Map::default();
    let mut segment_rules: Map<String, Rules> = Map::default();
    let mut group_rules: Map<String, Rules> = Map::default();
    let mut message_rules = Rules::default();
    for section in cdoc.root_element().children().filter(Node::is_element) {
        let is_predicates = match section.tag_name().name() {
            "Predicates" => true,
            "Constraints" => false,
            _ => continue,
        };
        for context in section.children().filter(Node::is_element) {
            for by in context.children().filter(Node::is_element) {
                let key = by
                    .attribute("ID")
                    .or_else(|| by.attribute("Name"))
                    .unwrap_or("")
                    .to_string();
                let rules = match context.tag_name().name() {
                    "Datatype" => datatype_rules.entry(key).or_default(),
                    "Segment" => segment_rules.entry(key).or_default(),
                    "Group" => group_rules.entry(key).or_default(),
                    "Message" => &mut message_rules,
                    other => return Err(format!("unknown constraint context {other}")),
                };
                for item in by.children().filter(Node::is_element) {
                    let description = child(item, "Description")
                        .and_then(|d| d.text())
                        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
                        .unwrap_or_default();
                    let target = Path::parse(&attr(item, "Target")).unwrap_or_default();
                    let rule_id = attr(item, "ID");
                    if is_predicates {
                        let cond = child(item, "Condition")
                            .and_then(first_element)
                            .ok_or_else(|| format!("predicate {rule_id} has no condition"))?;
                        rules.predicates.push(Predicate {
                            id: rule_id.clone(),
                            target,
                            true_usage: Usage::parse(&attr(item, "TrueUsage")),
                            false_usage: Usage::parse(&attr(item, "FalseUsage")),
                            description,
                            condition: expr(cond)
                                .map_err(|e| format!("predicate {rule_id}: {e}"))?,
                        });
                    } else {
                        let a = child(item, "Assertion")
                            .and_then(first_element)
                            .ok_or_else(|| format!("constraint {rule_id} has no assertion"))?;
                        rules.constraints.push(Constraint {
                            id: rule_id.clone(),
                            target,
                            description,
                            assertion: expr(a).map_err(|e| format!("constraint {rule_id}: {e}"))?,
                        });
                    }
                }
            }
        }
    }

    // Message rules are checked once per message: nothing to share there.
    for rules in segment_rules
        .values_mut()
        .chain(datatype_rules.values_mut())
        .chain(group_rules.values_mut())
    {
        super::memo::assign_memo_slots(rules);
    }

    // Each definition carries its own rules (a copy of the map entry).
    for s in segments.values_mut() {
        s.rules = segment_rules.get(&s.id).cloned();
    }
    for d in &mut datatypes {
        d.rules = datatype_rules.get(&d.id).cloned();
    }

    let vdoc = Document::parse(value_sets_xml).map_err(|e| format!("value set XML: {e}"))?;
    let mut value_sets = Map::default();
    let mut no_validation = Set::default();
    for n in vdoc.descendants().filter(Node::is_element) {
        match n.tag_name().name() {
            "BindingIdentifier" => {
                if let Some(t) = n.text() {
                    no_validation.insert(t.trim().to_string());
                }
            }
            "ValueSetDefinition" => {
                let mut codes = Set::default();
                let mut systems = Map::default();
                for v in elements(n, "ValueElement") {
                    let code = attr(v, "Value");
                    systems.insert(code.clone(), attr(v, "CodeSystem"));
                    codes.insert(code);
                }
                let vs = ValueSet {
                    id: attr(n, "BindingIdentifier"),
                    name: attr(n, "Name"),
                    codes,
                    systems,
                    open: n.attribute("Extensibility") == Some("Open"),
                };
                value_sets.insert(vs.id.clone(), vs);
            }
            _ => {}
        }
    }

    super::supplement::apply(&mut value_sets);

    // Bindings are resolved only now that the value sets (and their
    // supplements) are final.
    let mut bound_codes: Vec<Set<String>> = Vec::new();
    let mut closed_ids: Map<String, usize> = Map::default();
    let mut resolve_bindings = |defs: &mut [ElementDef]| {
        for d in defs {
            d.binding_refs = d
                .binding
                .iter()
                .map(|b| {
                    let codes = if no_validation.contains(b) {
                        BoundCodes::Any
                    } else {
                        match value_sets.get(b) {
                            Some(vs) if vs.codes.is_empty() || vs.open => BoundCodes::Any,
                            Some(vs) => BoundCodes::Closed(
                                *closed_ids.entry(b.clone()).or_insert_with(|| {
                                    bound_codes.push(vs.codes.clone());
                                    bound_codes.len() - 1
                                }),
                            ),
                            None => BoundCodes::Unknown,
                        }
                    };
                    BindingRef {
                        coding_systems: b.starts_with("HL70396"),
                        vis_barcodes: b == "PHVS_VISBarcodes_IIS",
                        ndc: b.starts_with("NDC_"),
                        codes,
                    }
                })
                .collect();
        }
    };
    for s in segments.values_mut() {
        resolve_bindings(&mut s.fields);
    }
    for d in &mut datatypes {
        resolve_bindings(&mut d.components);
    }

    Ok(Profile {
        id,
        message,
        segments,
        datatypes,
        datatype_ids,
        value_sets,
        no_validation,
        datatype_rules,
        segment_rules,
        group_rules,
        message_rules,
        bound_codes,
    })
}

fn structure(parent: Node) -> Vec<StructureNode> {
    parent
        .children()
        .filter(Node::is_element)
        .filter_map(|n| match n.tag_name().name() {
            "Segment" => {
                let def = attr(n, "Ref");
                // The name is the part before the first space or underscore of the ref.
                let name: String = def.chars().take(3).collect();
                Some(StructureNode::Segment {
                    def,
                    name,
                    usage: Usage::parse(&attr(n, "Usage")),
                    cardinality: card(n),
                })
            }
            "Group" => Some(StructureNode::Group {
                id: attr(n, "ID"),
                name: attr(n, "Name"),
                usage: Usage::parse(&attr(n, "Usage")),
                cardinality: card(n),
                children: structure(n),
            }),
            _ => None,
        })
        .collect()
}

fn element_def(n: Node) -> ElementDef {
    let binding = n
        .attribute("Binding")
        .map(|b| {
            b.split(':')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    ElementDef {
        name: attr(n, "Name"),
        usage: Usage::parse(&attr(n, "Usage")),
        cardinality: card(n),
        datatype: attr(n, "Datatype"),
        min_length: n
            .attribute("MinLength")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        max_length: n.attribute("MaxLength").and_then(|v| v.parse().ok()),
        binding,
        datatype_index: None,
        binding_refs: Vec::new(),
        plain: false,
        varies: false,
    }
}

fn card(n: Node) -> Cardinality {
    let min = n.attribute("Min").and_then(|v| v.parse().ok()).unwrap_or(0);
    let max = match n.attribute("Max") {
        Some("*") | None => None,
        Some(v) => v.parse().ok(),
    };
    Cardinality { min, max }
}

fn expr(n: Node) -> Result<Expr, String> {
    let path = |name: &str| -> Result<Path, String> {
        let raw = attr(n, name);
        Path::parse(&raw).ok_or_else(|| format!("bad path '{raw}' in {}", n.tag_name().name()))
    };
    let kids = || -> Result<Vec<Expr>, String> {
        n.children().filter(Node::is_element).map(expr).collect()
    };
    Ok(match n.tag_name().name() {
        "AND" => Expr::And(kids()?),
        "OR" => Expr::Or(kids()?),
        "NOT" => Expr::Not(Box::new(kids()?.into_iter().next().ok_or("empty NOT")?)),
        "IMPLY" => {
            let mut k = kids()?.into_iter();
            let a = k.next().ok_or("IMPLY without antecedent")?;
            let b = k.next().ok_or("IMPLY without consequent")?;
            Expr::Imply(Box::new(a), Box::new(b))
        }
        "Presence" => Expr::Presence(path("Path")?),
        "PlainText" => Expr::PlainText {
            path: path("Path")?,
            text: attr(n, "Text"),
            ignore_case: n.attribute("IgnoreCase") == Some("true"),
            at_least_once: n.attribute("AtLeastOnce") == Some("true"),
        },
        "Format" => {
            let re = attr(n, "Regex");
            Expr::Format {
                path: path("Path")?,
                regex: regex::Regex::new(&format!("^(?:{re})$"))
                    .map_err(|e| format!("regex {re}: {e}"))?,
            }
        }
        "StringList" => Expr::StringList {
            path: path("Path")?,
            values: attr(n, "CSV")
                .split(',')
                .map(|s| s.trim().to_string())
                .collect(),
        },
        "SimpleValue" => Expr::SimpleValue {
            path: path("Path")?,
            op: Op::parse(&attr(n, "Operator")),
            value: attr(n, "Value"),
            numeric: n.attribute("Type") == Some("Number"),
        },
        "PathValue" => Expr::PathValue {
            left: path("Path1")?,
            op: Op::parse(&attr(n, "Operator")),
            right: path("Path2")?,
        },
        "ValueSet" => Expr::ValueSet {
            path: path("Path")?,
            value_sets: attr(n, "ValueSetID")
                .split(':')
                .map(str::to_string)
                .collect(),
        },
        "SetID" => Expr::SetId(path("Path")?),
        "IZSetID" => Expr::IzSetId {
            parent: path("Parent")?,
            element: path("Element")?,
        },
        "Plugin" => Expr::Plugin(attr(n, "QualifiedClassName")),
        other => return Err(format!("unsupported assertion element {other}")),
    })
}

fn attr(n: Node, name: &str) -> String {
    n.attribute(name).unwrap_or("").to_string()
}

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn first_element<'a, 'i>(n: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    n.children().find(Node::is_element)
}

fn elements<'a, 'i: 'a>(n: Node<'a, 'i>, name: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}
