//! The jurisdiction's Group membership rules, read from TOML and checked
//! whole before anything uses them.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::authorized_user::AuKind;

/// The built-in policy (`policy/jurisdiction.toml`, documented there).
pub const DEFAULT_POLICY: &str = include_str!("../../../../policy/jurisdiction.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MinimumCertainty {
    Certain,
    Possible,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Association {
    Multiple,
    Single,
}

/// How sure the registry is that a message's patient is the person it was
/// filed under, as membership rules weigh it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Certainty {
    /// Linked to an existing person by a certain match.
    Certain,
    /// A person the message created (nobody else came close).
    New,
    /// Linked or separated by a reviewer.
    Manual,
    /// A provisional person: kept apart after a possible match, or too
    /// little identity to match.
    Possible,
}

impl Certainty {
    pub fn as_str(self) -> &'static str {
        match self {
            Certainty::Certain => "certain",
            Certainty::New => "new",
            Certainty::Manual => "manual",
            Certainty::Possible => "possible",
        }
    }
}

/// The Group id returned in Z32 PID-3, when the jurisdiction wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RspGroupIdentifier {
    pub identifier_type: String,
    pub assigning_authority: String,
}

/// V2-dynamic (the Bulk Retrieval of Public Health Data guide): the
/// person's FHIR Patient id returned in Z32/Z42 PID-3 with the type and
/// assigning authority the jurisdiction chose, so the Authorized User can
/// use it in FHIR requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RspPatientIdentifier {
    pub identifier_type: String,
    pub assigning_authority: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JurisdictionPolicy {
    pub version: String,
    pub vxu: bool,
    pub qbp: bool,
    pub minimum_certainty: MinimumCertainty,
    pub kinds: BTreeSet<AuKind>,
    pub association: Association,
    pub rsp_group_identifier: Option<RspGroupIdentifier>,
    pub rsp_patient_identifier: Option<RspPatientIdentifier>,
    /// A `Patient/$match` the IIS answered with one certain match makes the
    /// asker's relationship with that patient, as a Z32 does under `qbp`.
    pub fhir_match: bool,
    /// An Authorized User may add a patient to its Group with `$member-add`
    /// on its own attestation of a relationship (kept in the provenance),
    /// not only on a VXU or query the registry holds.
    pub attestation: bool,
    /// What a `Patient/$match` answer says about possible matches.
    pub possible_matches: PossibleMatches,
    pub identifier_base: String,
    /// How reports become vaccination events (`[vaccination_events]`).
    pub vaccination_events: crate::persons::VaccinationRules,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: String,
    membership: MembershipSection,
    #[serde(default)]
    rsp: RspSection,
    #[serde(default)]
    fhir: FhirSection,
    #[serde(default)]
    vaccination_events: crate::persons::VaccinationRules,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembershipSection {
    vxu: bool,
    qbp: bool,
    #[serde(default)]
    fhir_match: bool,
    #[serde(default)]
    attestation: bool,
    minimum_certainty: MinimumCertainty,
    kinds: Vec<String>,
    association: Association,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RspSection {
    #[serde(default)]
    group_identifier: bool,
    identifier_type: Option<String>,
    assigning_authority: Option<String>,
    #[serde(default)]
    patient_identifier: bool,
    patient_identifier_type: Option<String>,
    patient_assigning_authority: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FhirSection {
    identifier_base: String,
    #[serde(default)]
    possible_matches: PossibleMatches,
}

impl Default for FhirSection {
    fn default() -> Self {
        FhirSection {
            identifier_base: "urn:iisbulk:id".into(),
            possible_matches: PossibleMatches::default(),
        }
    }
}

/// What a `Patient/$match` answer gives of the patients it matched only
/// possibly (a certain match always comes with its demographics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PossibleMatches {
    /// Nothing: only the count of possible matches withheld, in an
    /// OperationOutcome entry (the default; a possible match may be a
    /// twin or a namesake).
    #[default]
    Withheld,
    /// What a Z31 candidate list gives: name, birth date, sex, address and
    /// the asker's own identifiers, graded possible.
    Listed,
}

fn hl7_safe(option: &str, v: &str, max: usize) -> Result<(), String> {
    if v.is_empty() || v.chars().count() > max {
        return Err(format!("{option} must be 1 to {max} characters"));
    }
    if v.chars()
        .any(|c| c.is_control() || c.is_whitespace() || "|^~\\&#".contains(c))
    {
        return Err(format!(
            "{option} {v:?} must not contain spaces, control characters or the HL7 delimiters | ^ ~ \\ & #"
        ));
    }
    Ok(())
}

impl JurisdictionPolicy {
    /// Parses and checks a policy. The error names the option at fault.
    pub fn from_toml(text: &str) -> Result<JurisdictionPolicy, String> {
        let file: File = toml::from_str(text).map_err(|e| format!("jurisdiction policy: {e}"))?;
        let m = file.membership;
        let fail = |msg: String| Err(format!("jurisdiction policy: {msg}"));
        if file.version.trim().is_empty() {
            return fail("version must not be empty".into());
        }
        if !m.vxu && !m.qbp && !m.fhir_match && !m.attestation {
            return fail(
                "membership.vxu, membership.qbp, membership.fhir_match and membership.attestation are all false: nothing would ever add anyone to a Group".into(),
            );
        }
        let mut kinds = BTreeSet::new();
        for k in &m.kinds {
            match AuKind::parse(k) {
                Some(kind) => {
                    kinds.insert(kind);
                }
                None => {
                    let known: Vec<&str> = AuKind::ALL.iter().map(|k| k.as_str()).collect();
                    return fail(format!(
                        "membership.kinds: unknown kind {k:?} (known: {})",
                        known.join(", ")
                    ));
                }
            }
        }
        if kinds.is_empty() {
            return fail("membership.kinds is empty: no Authorized User would get a Group".into());
        }
        let rsp_group_identifier = if file.rsp.group_identifier {
            let t = file.rsp.identifier_type.unwrap_or_default();
            let a = file.rsp.assigning_authority.unwrap_or_default();
            // CX-5 is an ID of at most 5 characters; CX-4.1 an IS of 20.
            if let Err(e) = hl7_safe("rsp.identifier_type", &t, 5) {
                return fail(format!("{e} (required when rsp.group_identifier = true)"));
            }
            if let Err(e) = hl7_safe("rsp.assigning_authority", &a, 20) {
                return fail(format!("{e} (required when rsp.group_identifier = true)"));
            }
            Some(RspGroupIdentifier {
                identifier_type: t,
                assigning_authority: a,
            })
        } else {
            if file.rsp.identifier_type.is_some() || file.rsp.assigning_authority.is_some() {
                return fail(
                    "rsp.identifier_type / rsp.assigning_authority are set but rsp.group_identifier is false: turn it on or remove them".into(),
                );
            }
            None
        };
        let rsp_patient_identifier = if file.rsp.patient_identifier {
            let t = file.rsp.patient_identifier_type.unwrap_or_default();
            let a = file.rsp.patient_assigning_authority.unwrap_or_default();
            if let Err(e) = hl7_safe("rsp.patient_identifier_type", &t, 5) {
                return fail(format!("{e} (required when rsp.patient_identifier = true)"));
            }
            if let Err(e) = hl7_safe("rsp.patient_assigning_authority", &a, 20) {
                return fail(format!("{e} (required when rsp.patient_identifier = true)"));
            }
            Some(RspPatientIdentifier {
                identifier_type: t,
                assigning_authority: a,
            })
        } else {
            if file.rsp.patient_identifier_type.is_some()
                || file.rsp.patient_assigning_authority.is_some()
            {
                return fail(
                    "rsp.patient_identifier_type / rsp.patient_assigning_authority are set but rsp.patient_identifier is false: turn it on or remove them".into(),
                );
            }
            None
        };
        let events = &file.vaccination_events;
        if events.historical_window_days > 30 {
            return fail(format!(
                "vaccination_events.historical_window_days is {}: at most 30 (reports of one vaccine group further apart are two doses)",
                events.historical_window_days
            ));
        }
        let mut seen = Vec::new();
        for rule in &events.best_record {
            if seen.contains(rule) {
                return fail(format!(
                    "vaccination_events.best_record names {rule:?} twice"
                ));
            }
            seen.push(*rule);
        }
        let base = file.fhir.identifier_base.trim().to_owned();
        if !(base.starts_with("urn:")
            || base.starts_with("https://")
            || base.starts_with("http://"))
            || base.chars().any(char::is_whitespace)
        {
            return fail(format!(
                "fhir.identifier_base {base:?} must be a URI (urn:, http:// or https://) without spaces"
            ));
        }
        Ok(JurisdictionPolicy {
            version: file.version.trim().to_owned(),
            vxu: m.vxu,
            qbp: m.qbp,
            minimum_certainty: m.minimum_certainty,
            kinds,
            association: m.association,
            rsp_group_identifier,
            rsp_patient_identifier,
            fhir_match: m.fhir_match,
            attestation: m.attestation,
            possible_matches: file.fhir.possible_matches,
            identifier_base: base,
            vaccination_events: file.vaccination_events,
        })
    }

    /// Whether Authorized Users of this kind have a Group.
    pub fn gives_group(&self, kind: AuKind) -> bool {
        self.kinds.contains(&kind)
    }

    pub fn admits(&self, certainty: Certainty) -> bool {
        match certainty {
            Certainty::Certain | Certainty::New | Certainty::Manual => true,
            Certainty::Possible => self.minimum_certainty == MinimumCertainty::Possible,
        }
    }
}

impl Default for JurisdictionPolicy {
    fn default() -> Self {
        // A build defect, not an input: the shipped file is tested below.
        #[allow(clippy::expect_used)]
        JurisdictionPolicy::from_toml(DEFAULT_POLICY).expect("the built-in policy is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(replace: &str, by: &str) -> Result<JurisdictionPolicy, String> {
        assert!(DEFAULT_POLICY.contains(replace), "{replace}");
        JurisdictionPolicy::from_toml(&DEFAULT_POLICY.replace(replace, by))
    }

    #[test]
    fn the_shipped_policy_is_the_safe_default() {
        let p = JurisdictionPolicy::default();
        assert_eq!(
            p.vaccination_events,
            crate::persons::VaccinationRules::default()
        );
        assert!(p.vxu && !p.qbp);
        assert_eq!(p.minimum_certainty, MinimumCertainty::Certain);
        assert_eq!(p.association, Association::Multiple);
        assert_eq!(p.kinds.len(), AuKind::ALL.len());
        assert!(p.rsp_group_identifier.is_none());
        assert!(p.admits(Certainty::New) && !p.admits(Certainty::Possible));
    }

    #[test]
    fn bad_options_are_named() {
        let cases = [
            ("qbp = false", "qbp = maybe", "qbp"),
            (
                "association = \"multiple\"",
                "association = \"sometimes\"",
                "sometimes",
            ),
            (
                "minimum_certainty = \"certain\"",
                "minimum_certainty = \"none\"",
                "none",
            ),
            (
                "\"clinic\", ",
                "\"clinik\", ",
                "membership.kinds: unknown kind \"clinik\"",
            ),
            ("vxu = true", "vxu = true\nvxus = false", "vxus"),
            ("vxu = true", "vxu = false", "all false"),
            (
                "group_identifier = false",
                "group_identifier = true",
                "rsp.identifier_type",
            ),
            (
                "identifier_base = \"urn:iisbulk:id\"",
                "identifier_base = \"my ids\"",
                "fhir.identifier_base",
            ),
            (
                "# identifier_type = \"GI\"",
                "identifier_type = \"GI\"",
                "rsp.group_identifier is false",
            ),
            (
                "historical_window_days = 3",
                "historical_window_days = 90",
                "vaccination_events.historical_window_days",
            ),
            (
                "best_record = [\"administered\", \"most_complete\", \"earliest_received\"]",
                "best_record = [\"administered\", \"administered\"]",
                "names Administered twice",
            ),
            (
                "best_record = [\"administered\", \"most_complete\", \"earliest_received\"]",
                "best_record = [\"newest\"]",
                "newest",
            ),
        ];
        for (from, to, needle) in cases {
            let err = with(from, to).unwrap_err();
            assert!(err.contains(needle), "{to}: {err}");
        }
        let err = JurisdictionPolicy::from_toml("version = \"x\"").unwrap_err();
        assert!(err.contains("membership"), "{err}");
    }

    #[test]
    fn rsp_identifier_is_checked_for_delimiters() {
        let on = DEFAULT_POLICY
            .replace("group_identifier = false", "group_identifier = true")
            .replace("# identifier_type = \"GI\"", "identifier_type = \"GI\"");
        let err = JurisdictionPolicy::from_toml(&on.replace(
            "# assigning_authority = \"IISGROUP\"",
            "assigning_authority = \"A^B\"",
        ))
        .unwrap_err();
        assert!(err.contains("rsp.assigning_authority"), "{err}");
        let ok = JurisdictionPolicy::from_toml(&on.replace(
            "# assigning_authority = \"IISGROUP\"",
            "assigning_authority = \"IISGROUP\"",
        ))
        .unwrap();
        assert_eq!(
            ok.rsp_group_identifier,
            Some(RspGroupIdentifier {
                identifier_type: "GI".into(),
                assigning_authority: "IISGROUP".into()
            })
        );
    }

    #[test]
    fn the_patient_identifier_of_v2_dynamic_is_named_by_the_jurisdiction() {
        assert!(JurisdictionPolicy::from_toml(DEFAULT_POLICY)
            .unwrap()
            .rsp_patient_identifier
            .is_none());
        let on = DEFAULT_POLICY
            .replace("patient_identifier = false", "patient_identifier = true")
            .replace(
                "# patient_identifier_type = \"PI\"",
                "patient_identifier_type = \"PI\"",
            );
        let missing = JurisdictionPolicy::from_toml(&on).unwrap_err();
        assert!(
            missing.contains("rsp.patient_assigning_authority"),
            "{missing}"
        );
        let ok = JurisdictionPolicy::from_toml(&on.replace(
            "# patient_assigning_authority = \"IISFHIR\"",
            "patient_assigning_authority = \"IISFHIR\"",
        ))
        .unwrap();
        assert_eq!(
            ok.rsp_patient_identifier,
            Some(RspPatientIdentifier {
                identifier_type: "PI".into(),
                assigning_authority: "IISFHIR".into()
            })
        );
        let stray = DEFAULT_POLICY.replace(
            "# patient_identifier_type = \"PI\"",
            "patient_identifier_type = \"PI\"",
        );
        let err = JurisdictionPolicy::from_toml(&stray).unwrap_err();
        assert!(err.contains("rsp.patient_identifier is false"), "{err}");
    }
}
