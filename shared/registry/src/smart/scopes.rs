//! SMART system scopes: what a client asked for, what it may have, what it
//! gets. Reading is granted where the client may read; the one write is
//! changing the members of the client's own Group (`Group/$member-add`,
//! `$member-remove`: `system/Group.u`, v1 `system/Group.write`), for
//! clients registered with it. User, patient and launch scopes have no
//! meaning for a back-end client and are refused.

use std::collections::BTreeMap;

/// The resource types our FHIR side serves. ImmunizationRecommendation is
/// the answer of `$immds-forecast` (with its ImmunizationEvaluations) and an
/// optional Group export type: reading it is what that operation needs
/// (SMART v2 has no operation scopes; a scope names what is read).
/// Provenance is exported with `includeAssociatedData`.
pub const RESOURCE_TYPES: [&str; 6] = [
    "Group",
    "Patient",
    "Immunization",
    "Organization",
    "ImmunizationRecommendation",
    "Provenance",
];

/// Read access to one resource type (or all, `*`), as v1 or v2 syntax asked.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    /// `*` or a resource type.
    pub resource: String,
    /// Read by id (v1 `read`, v2 `r`).
    pub read: bool,
    /// Search (v1 `read`, v2 `s`).
    pub search: bool,
    /// Change (v1 `write`, v2 `u`): only ever for Group, whose members a
    /// client manages.
    pub update: bool,
    /// Written in SMART v2 syntax (`.rs`) rather than v1 (`.read`).
    pub v2: bool,
}

impl Grant {
    pub fn as_scope(&self) -> String {
        if self.v2 {
            let mut p = String::new();
            if self.read {
                p.push('r');
            }
            if self.update {
                p.push('u');
            }
            if self.search {
                p.push('s');
            }
            format!("system/{}.{p}", self.resource)
        } else {
            let mut out = Vec::new();
            if self.read || self.search {
                out.push(format!("system/{}.read", self.resource));
            }
            if self.update {
                out.push(format!("system/{}.write", self.resource));
            }
            out.join(" ")
        }
    }
}

/// A set of grants, as issued with a token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(pub Vec<Grant>);

impl Scopes {
    pub fn as_string(&self) -> String {
        self.0
            .iter()
            .map(Grant::as_scope)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether these scopes allow reading `resource` by id.
    pub fn can_read(&self, resource: &str) -> bool {
        self.0
            .iter()
            .any(|g| g.read && (g.resource == "*" || g.resource == resource))
    }

    /// Whether these scopes allow searching `resource`.
    pub fn can_search(&self, resource: &str) -> bool {
        self.0
            .iter()
            .any(|g| g.search && (g.resource == "*" || g.resource == resource))
    }

    /// Whether these scopes allow changing `resource` (Group membership).
    pub fn can_update(&self, resource: &str) -> bool {
        resource == UPDATABLE
            && self
                .0
                .iter()
                .any(|g| g.update && (g.resource == "*" || g.resource == resource))
    }

    /// Parses scopes we issued (or registered), trusting their syntax.
    pub fn parse_granted(text: &str) -> Scopes {
        Scopes(
            text.split_whitespace()
                .filter_map(|s| parse_one(s).ok().flatten())
                .collect(),
        )
    }
}

/// The one resource type a client may change: its Group's members.
pub const UPDATABLE: &str = "Group";

/// One requested scope: `Ok(Some)` a read (or Group update) grant, `Ok(None)` nothing to grant
/// here (write-only, or a resource type this server does not serve: left
/// out of the grant, as OAuth lets a server narrow what it issues), `Err` a
/// scope we refuse outright.
fn parse_one(scope: &str) -> Result<Option<Grant>, String> {
    let Some(rest) = scope.strip_prefix("system/") else {
        return Err(match scope.split('/').next() {
            Some("user") | Some("patient") => format!(
                "{scope}: user and patient scopes need a person at the keyboard; back-end clients ask for system/ scopes"
            ),
            _ if scope == "launch" || scope.starts_with("launch/") => {
                format!("{scope}: launch context does not exist for back-end clients")
            }
            _ => format!("{scope}: not a SMART system scope"),
        });
    };
    let (resource, permission) = rest
        .split_once('.')
        .ok_or(format!("{scope}: expected system/<resource>.<permissions>"))?;
    let served = resource == "*" || RESOURCE_TYPES.contains(&resource);
    let updatable = resource == "*" || resource == UPDATABLE;
    let grant = |read, search, update: bool, v2| {
        let update = update && updatable;
        Ok((served && (read || search || update)).then(|| Grant {
            resource: resource.to_owned(),
            read,
            search,
            update,
            v2,
        }))
    };
    match permission {
        "read" => grant(true, true, false, false),
        "*" => grant(true, true, true, false),
        "write" => grant(false, false, true, false),
        v2 if !v2.is_empty() && is_v2(v2) => {
            grant(v2.contains('r'), v2.contains('s'), v2.contains('u'), true)
        }
        _ => Err(format!("{scope}: unknown permissions {permission:?}")),
    }
}

/// The requested `system/` scopes that name a resource type this server does
/// not serve. A token request is granted without them; registering a client
/// with one is refused, since there it is a typo or a misunderstanding.
pub fn unserved(requested: &str) -> Vec<&str> {
    requested
        .split_whitespace()
        .filter(|scope| {
            scope
                .strip_prefix("system/")
                .and_then(|rest| rest.split_once('.'))
                .is_some_and(|(resource, _)| resource != "*" && !RESOURCE_TYPES.contains(&resource))
        })
        .collect()
}

/// SMART v2 permissions: a non-empty subsequence of `cruds`, in that order.
fn is_v2(p: &str) -> bool {
    let mut order = "cruds".chars();
    p.chars().all(|c| order.by_ref().any(|o| o == c))
}

/// The grants for a request: every requested scope must be one we
/// understand; reading is granted where the client may read, changing its
/// Group's members where it may, any other writing never.
/// Nothing to grant is an error (`invalid_scope`).
pub fn grant(requested: &str, allowed: &Scopes) -> Result<Scopes, String> {
    if requested.trim().is_empty() {
        return Err(
            "the scope parameter is required (for example system/*.read or system/*.rs)".into(),
        );
    }
    let mut out: BTreeMap<(String, bool), Grant> = BTreeMap::new();
    for scope in requested.split_whitespace() {
        let Some(want) = parse_one(scope)? else {
            continue;
        };
        // `*` asked of a client limited to some types grants those types.
        let targets: Vec<String> = if want.resource == "*"
            && !RESOURCE_TYPES
                .iter()
                .all(|t| allowed.can_read(t) && allowed.can_search(t))
        {
            RESOURCE_TYPES.iter().map(|t| (*t).to_owned()).collect()
        } else {
            vec![want.resource.clone()]
        };
        for resource in targets {
            let g = Grant {
                read: want.read && allowed.can_read(&resource),
                search: want.search && allowed.can_search(&resource),
                update: false,
                resource,
                v2: want.v2,
            };
            if g.read || g.search {
                let slot = out.entry((g.resource.clone(), g.v2)).or_insert(Grant {
                    read: false,
                    search: false,
                    ..g.clone()
                });
                slot.read |= g.read;
                slot.search |= g.search;
            }
        }
        // `*` with write asks for every change the server allows: the
        // Group's members, named as such in the grant.
        if want.update && allowed.can_update(UPDATABLE) {
            let slot = out.entry((UPDATABLE.to_owned(), want.v2)).or_insert(Grant {
                resource: UPDATABLE.to_owned(),
                read: false,
                search: false,
                update: false,
                v2: want.v2,
            });
            slot.update = true;
        }
    }
    if out.is_empty() {
        return Err(format!(
            "nothing in {requested:?} can be granted: this server grants read access only (system/<type>.read or .rs) to the resource types it serves ({}), and changes to the client's own Group's members (system/Group.u or system/Group.write) to clients registered for them",
            RESOURCE_TYPES.join(", ")
        ));
    }
    Ok(Scopes(out.into_values().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Scopes {
        Scopes::parse_granted("system/*.read")
    }

    #[test]
    fn v1_and_v2_reads_are_granted_in_their_own_syntax() {
        assert_eq!(
            grant("system/*.read", &all()).unwrap().as_string(),
            "system/*.read"
        );
        assert_eq!(
            grant("system/*.rs", &all()).unwrap().as_string(),
            "system/*.rs"
        );
        assert_eq!(
            grant("system/Patient.read system/Group.rs", &all())
                .unwrap()
                .as_string(),
            "system/Group.rs system/Patient.read"
        );
        // Write is never granted; the read part of *.* and cruds is.
        assert_eq!(
            grant("system/*.*", &all()).unwrap().as_string(),
            "system/*.read"
        );
        assert_eq!(
            grant("system/Patient.cruds", &all()).unwrap().as_string(),
            "system/Patient.rs"
        );
    }

    #[test]
    fn refused_scopes_say_why() {
        for (scope, why) in [
            ("system/Patient.write", "read access only"),
            ("system/Patient.cud", "read access only"),
            ("patient/*.read", "back-end clients"),
            ("user/Patient.read", "back-end clients"),
            ("launch", "launch"),
            ("launch/patient", "launch"),
            (
                "system/Observation.read",
                "resource types it serves (Group, ",
            ),
            ("system/Observation.rs system/Patient.u", "read access only"),
            ("system/Patient.sr", "unknown permissions"),
            ("openid", "not a SMART system scope"),
            ("", "required"),
        ] {
            let err = grant(scope, &all()).unwrap_err();
            assert!(err.contains(why), "{scope}: {err}");
        }
    }

    #[test]
    fn scopes_for_types_not_served_are_left_out_of_the_grant() {
        assert_eq!(
            grant("system/Patient.read system/Observation.rs", &all())
                .unwrap()
                .as_string(),
            "system/Patient.read"
        );
        // A malformed scope is still refused, whatever comes with it.
        assert!(grant("system/Patient.read system/Observation.xyz", &all())
            .unwrap_err()
            .contains("unknown permissions"));
    }

    #[test]
    fn the_grant_is_the_intersection_with_what_the_client_may_have() {
        let patients_only = Scopes::parse_granted("system/Patient.read");
        assert_eq!(
            grant("system/*.read", &patients_only).unwrap().as_string(),
            "system/Patient.read"
        );
        assert!(grant("system/Group.read", &patients_only)
            .unwrap_err()
            .contains("nothing"));
        assert_eq!(
            grant("system/Patient.rs system/Group.read", &patients_only)
                .unwrap()
                .as_string(),
            "system/Patient.rs"
        );
        let s = Scopes::parse_granted("system/*.rs");
        assert!(s.can_read("Group") && s.can_search("Immunization"));
        assert!(!s.can_update("Group"));
        let r = Scopes::parse_granted("system/Patient.r");
        assert!(r.can_read("Patient") && !r.can_search("Patient") && !r.can_read("Group"));
    }

    #[test]
    fn only_a_client_registered_for_it_may_change_its_group() {
        let managing = Scopes::parse_granted("system/*.rs system/Group.u");
        assert!(managing.can_update("Group") && !managing.can_update("Patient"));
        assert_eq!(
            grant("system/Group.u", &managing).unwrap().as_string(),
            "system/Group.u"
        );
        assert_eq!(
            grant("system/Group.write system/Patient.read", &managing)
                .unwrap()
                .as_string(),
            "system/Group.write system/Patient.read"
        );
        // `*` with write: the read grant and the Group change.
        assert_eq!(
            grant("system/*.*", &managing).unwrap().as_string(),
            "system/*.read system/Group.write"
        );
        assert_eq!(
            grant("system/Group.rus", &managing).unwrap().as_string(),
            "system/Group.rus"
        );
        // A reader asking to change gets nothing of it.
        let reader = Scopes::parse_granted("system/*.rs");
        assert!(grant("system/Group.u", &reader)
            .unwrap_err()
            .contains("registered for them"));
        assert_eq!(
            grant("system/*.cruds", &reader).unwrap().as_string(),
            "system/*.rs"
        );
        // Changing anything but a Group is never granted.
        assert!(grant("system/Patient.u", &managing).is_err());
        assert!(!Scopes::parse_granted("system/Patient.u").can_update("Patient"));
        let r = Scopes::parse_granted("system/Patient.r");
        assert!(r.can_read("Patient") && !r.can_search("Patient") && !r.can_read("Group"));
    }
}
