//! A Group `$export` kick-off, read and checked as the Bulk Data IG v2
//! says: every problem is reported at once, each naming the parameter; with
//! `Prefer: handling=lenient`, parameters we do not support are ignored and
//! listed for the manifest's `error` array instead of refusing the request.

use serde_json::Value;

use super::type_filter::{self, TypeFilter};

/// The resource types a Group export can contain.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum ResourceType {
    Patient,
    Immunization,
    Group,
    Organization,
    /// Each patient's CDC CDSi forecast as of the export's transaction
    /// date: exported only when `_type` names it (the Bulk Retrieval of
    /// Public Health Data guide lists it as an optional payload).
    ImmunizationRecommendation,
    /// Where each exported Patient and Immunization came from: exported
    /// with `includeAssociatedData=LatestProvenanceResources` (or when
    /// `_type` names it).
    Provenance,
}

impl ResourceType {
    pub const ALL: [ResourceType; 6] = [
        ResourceType::Patient,
        ResourceType::Immunization,
        ResourceType::Group,
        ResourceType::Organization,
        ResourceType::ImmunizationRecommendation,
        ResourceType::Provenance,
    ];

    /// What an export without `_type` holds.
    pub const DEFAULT: [ResourceType; 4] = [
        ResourceType::Patient,
        ResourceType::Immunization,
        ResourceType::Group,
        ResourceType::Organization,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Patient => "Patient",
            ResourceType::Immunization => "Immunization",
            ResourceType::Group => "Group",
            ResourceType::Organization => "Organization",
            ResourceType::ImmunizationRecommendation => "ImmunizationRecommendation",
            ResourceType::Provenance => "Provenance",
        }
    }

    pub fn parse(s: &str) -> Option<ResourceType> {
        ResourceType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// One reason a kick-off cannot be accepted, or a parameter ignored under
/// lenient handling.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// The parameter or header at fault (`_since`, `Prefer`, …).
    pub what: String,
    pub message: String,
}

fn problem(what: &str, message: impl Into<String>) -> Problem {
    Problem {
        what: what.to_owned(),
        message: message.into(),
    }
}

/// What the kick-off asks for, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportRequest {
    /// Epoch milliseconds of `_since`.
    pub since_ms: Option<i64>,
    /// The `_since` value as sent, for the manifest's `request`.
    pub since: Option<String>,
    /// Empty: the default types ([`ResourceType::DEFAULT`]).
    pub types: Vec<ResourceType>,
    /// `_elements`: (type or all types, element).
    pub elements: Vec<(Option<ResourceType>, String)>,
    /// `patient` (POST only): our patient ids, to be checked against the Group.
    pub patients: Vec<String>,
    /// Parameters ignored under lenient handling, for the manifest's `error`.
    pub ignored: Vec<Problem>,
    /// `_typeFilter` queries, applied by the writer (see [`super::type_filter`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub type_filters: Vec<TypeFilter>,
    /// `allowPartialManifests=true`: status polls of a running export
    /// answer the files finished so far, in manifests linked by `next`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_partial_manifests: bool,
    /// `organizeOutputBy=Patient`: each patient's resources together in
    /// the same file, after a header naming the patient, Patient first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub organize_by_patient: bool,
}

impl ExportRequest {
    /// Whether Provenance resources go with the export: asked for by
    /// `includeAssociatedData=LatestProvenanceResources` or by `_type`.
    pub fn wants_provenance(&self) -> bool {
        self.types.contains(&ResourceType::Provenance)
    }
}

/// The request as the transport saw it.
#[derive(Clone, Debug, Default)]
pub struct KickOff<'a> {
    pub accept: Option<&'a str>,
    /// Every `Prefer` header value.
    pub prefer: Vec<&'a str>,
    /// (name, value) pairs: the query string of a GET, or the Parameters of
    /// a POST already flattened (see [`parameters_of`]).
    pub params: Vec<(String, String)>,
    pub post: bool,
}

const OUTPUT_FORMATS: [&str; 3] = ["application/fhir+ndjson", "application/ndjson", "ndjson"];
/// Parameters of the IG we know but do not implement.
const UNSUPPORTED: [&str; 1] = ["_until"];

/// Reads a FHIR instant (`YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)`) as epoch ms.
pub fn parse_instant(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let max_day = i64::from(iz::datetime::days_in_month(
        u16::try_from(year).ok()?,
        u8::try_from(month).ok()?,
    ));
    if day < 1 || day > max_day {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let f = &frac[..digits];
        millis = f
            .chars()
            .chain("000".chars())
            .take(3)
            .collect::<String>()
            .parse()
            .ok()?;
        rest = &frac[digits..];
    }
    let offset_minutes = match rest {
        "Z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && &tz[3..4] == ":" => {
            let h: i64 = tz[1..3].parse().ok()?;
            let m: i64 = tz[4..6].parse().ok()?;
            if h > 14 || m > 59 {
                return None;
            }
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (h * 60 + m)
        }
        _ => return None,
    };
    let days = iz::Date {
        year: u16::try_from(year).ok()?,
        month: u8::try_from(month).ok()?,
        day: u8::try_from(day).ok()?,
    }
    .day_number();
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Flattens a POST body's Parameters resource into (name, value) pairs.
pub fn parameters_of(body: &Value) -> Result<Vec<(String, String)>, Problem> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(problem(
            "body",
            "a POST kick-off body must be a FHIR Parameters resource",
        ));
    }
    let mut out = Vec::new();
    for p in body
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| problem("parameter", "every parameter needs a name"))?;
        let value = ["valueString", "valueInstant", "valueCode", "valueUri"]
            .iter()
            .find_map(|k| p.get(*k).and_then(Value::as_str).map(str::to_owned))
            .or_else(|| {
                p.get("valueBoolean")
                    .and_then(Value::as_bool)
                    .map(|b| b.to_string())
            })
            .or_else(|| {
                p.get("valueReference")
                    .and_then(|r| r.get("reference"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .ok_or_else(|| {
                problem(
                    name,
                    format!("parameter {name} has no value of a type this server reads"),
                )
            })?;
        out.push((name.to_owned(), value));
    }
    Ok(out)
}

impl<'a> KickOff<'a> {
    /// Checks the request at `now_ms`. `Err` lists every problem.
    pub fn check(&self, now_ms: i64) -> Result<ExportRequest, Vec<Problem>> {
        let mut errors = Vec::new();
        let preferences: Vec<String> = self
            .prefer
            .iter()
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_ascii_lowercase().replace(' ', ""))
            .collect();
        if !preferences.iter().any(|p| p == "respond-async") {
            errors.push(problem(
                "Prefer",
                "the header Prefer: respond-async is required",
            ));
        }
        let lenient = preferences.iter().any(|p| p == "handling=lenient");
        match self.accept {
            Some(a)
                if a.split(',').any(|v| {
                    v.split(';')
                        .next()
                        .is_some_and(|t| t.trim() == "application/fhir+json")
                }) => {}
            _ => errors.push(problem(
                "Accept",
                "the header Accept: application/fhir+json is required",
            )),
        }
        let mut req = ExportRequest::default();
        let mut latest_provenance = false;
        for (name, value) in &self.params {
            match name.as_str() {
                "_outputFormat" => {
                    if !OUTPUT_FORMATS.contains(&value.as_str()) {
                        errors.push(problem(
                            "_outputFormat",
                            format!("_outputFormat {value:?} is not supported (application/fhir+ndjson)"),
                        ));
                    }
                }
                "_since" => match parse_instant(value) {
                    Some(ms) if ms > now_ms => errors.push(problem(
                        "_since",
                        format!("_since {value} is in the future"),
                    )),
                    Some(ms) => {
                        req.since_ms = Some(ms);
                        req.since = Some(value.clone());
                    }
                    None => errors.push(problem(
                        "_since",
                        format!(
                            "_since {value:?} is not a FHIR instant (e.g. 2026-01-31T08:00:00Z)"
                        ),
                    )),
                },
                "_type" => {
                    for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        match ResourceType::parse(t) {
                            Some(rt) if !req.types.contains(&rt) => req.types.push(rt),
                            Some(_) => {}
                            None => {
                                let p = problem("_type", format!("_type {t} is not exported here (Patient, Immunization, Group, Organization, ImmunizationRecommendation)"));
                                if lenient {
                                    req.ignored.push(p)
                                } else {
                                    errors.push(p)
                                }
                            }
                        }
                    }
                }
                "allowPartialManifests" => match value.as_str() {
                    "true" => req.allow_partial_manifests = true,
                    "false" => req.allow_partial_manifests = false,
                    other => errors.push(problem(
                        "allowPartialManifests",
                        format!(
                            "allowPartialManifests {:?} is not a boolean (true or false)",
                            other.chars().take(40).collect::<String>()
                        ),
                    )),
                },
                "includeAssociatedData" => {
                    for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                        // One Provenance per record lists every message
                        // behind it: it is the record's latest Provenance
                        // and all that is relevant to it at once.
                        if v == "LatestProvenanceResources" || v == "RelevantProvenanceResources" {
                            latest_provenance = true;
                            continue;
                        }
                        let p = problem(
                            "includeAssociatedData",
                            format!(
                                "includeAssociatedData {:?} is not supported (only LatestProvenanceResources or RelevantProvenanceResources: one Provenance per exported Patient and Immunization)",
                                v.chars().take(60).collect::<String>()
                            ),
                        );
                        if lenient {
                            req.ignored.push(p)
                        } else {
                            errors.push(p)
                        }
                    }
                }
                "organizeOutputBy" => {
                    if value == "Patient" {
                        req.organize_by_patient = true;
                    } else {
                        let p = problem(
                            "organizeOutputBy",
                            format!(
                                "organizeOutputBy {:?} is not supported (only Patient)",
                                value.chars().take(40).collect::<String>()
                            ),
                        );
                        if lenient {
                            req.ignored.push(p)
                        } else {
                            errors.push(p)
                        }
                    }
                }
                "_typeFilter" => {
                    let parsed = type_filter::parse(value);
                    for why in parsed.invalid {
                        errors.push(problem("_typeFilter", why));
                    }
                    for why in parsed.unsupported {
                        let p = problem("_typeFilter", why);
                        if lenient {
                            req.ignored.push(p)
                        } else {
                            errors.push(p)
                        }
                    }
                    req.type_filters.extend(parsed.filters);
                }
                "_elements" => {
                    for e in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                        match parse_element(e) {
                            Ok(el) => req.elements.push(el),
                            Err(m) => errors.push(problem("_elements", m)),
                        }
                    }
                }
                "patient" => {
                    if !self.post {
                        errors.push(problem("patient", "the patient parameter is accepted only in a POST kick-off (a Parameters body)"));
                        continue;
                    }
                    match value
                        .strip_prefix("Patient/")
                        .filter(|id| !id.is_empty() && !id.contains('/'))
                    {
                        Some(id) => req.patients.push(id.to_owned()),
                        None => errors.push(problem(
                            "patient",
                            format!("patient {value:?} is not a Patient/<id> reference"),
                        )),
                    }
                }
                other => {
                    let why = if UNSUPPORTED.contains(&other) {
                        format!("{other} is not supported by this server")
                    } else {
                        format!("{other} is not a parameter of Group $export")
                    };
                    let p = problem(other, why);
                    if lenient {
                        req.ignored.push(p)
                    } else {
                        errors.push(p)
                    }
                }
            }
        }
        // Provenance joins the types asked for, or the default ones when
        // `_type` names none, whatever the parameters' order.
        if latest_provenance {
            if req.types.is_empty() {
                req.types.extend(ResourceType::DEFAULT);
            }
            if !req.types.contains(&ResourceType::Provenance) {
                req.types.push(ResourceType::Provenance);
            }
        }
        // A filter on a type the export leaves out would silently filter
        // nothing: the request is contradictory, whatever the handling.
        if !req.types.is_empty() {
            for f in &req.type_filters {
                if !req.types.contains(&f.resource_type) {
                    errors.push(problem(
                        "_typeFilter",
                        format!(
                            "_typeFilter has a query on {} but _type does not name it",
                            f.resource_type.as_str()
                        ),
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(req)
        } else {
            Err(errors)
        }
    }
}

/// `element` or `Type.element`.
fn parse_element(e: &str) -> Result<(Option<ResourceType>, String), String> {
    let (t, name) = match e.split_once('.') {
        Some((t, n)) => (
            Some(ResourceType::parse(t).ok_or(format!("_elements {e}: {t} is not exported here"))?),
            n,
        ),
        None => (None, e),
    };
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric());
    if !ok {
        return Err(format!(
            "_elements {e}: only top-level element names are supported"
        ));
    }
    Ok((t, name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000_000;

    fn kick(
        params: &[(&str, &str)],
        prefer: &[&'static str],
    ) -> Result<ExportRequest, Vec<Problem>> {
        KickOff {
            accept: Some("application/fhir+json"),
            prefer: prefer.to_vec(),
            params: params
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
            post: false,
        }
        .check(NOW)
    }

    fn whats(r: Result<ExportRequest, Vec<Problem>>) -> Vec<String> {
        r.unwrap_err().into_iter().map(|p| p.what).collect()
    }

    #[test]
    fn instants() {
        assert_eq!(parse_instant("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_instant("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_instant("1970-01-01T00:00:01.5Z"), Some(1500));
        for bad in [
            "2026-01-01",
            "2026-01-01T00:00:00",
            "2026-02-30T00:00:00Z",
            "2026-01-01T25:00:00Z",
            "2026-01-01T00:00:00.Z",
            "x",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_plain_kick_off_is_everything() {
        let r = kick(&[], &["respond-async"]).unwrap();
        assert!(r.types.is_empty() && r.since_ms.is_none() && r.ignored.is_empty());
        let r = kick(
            &[
                ("_type", "Patient,Immunization"),
                ("_since", "2026-01-01T00:00:00Z"),
                ("_outputFormat", "ndjson"),
                ("_elements", "id,Patient.birthDate"),
            ],
            &["respond-async"],
        )
        .unwrap();
        assert_eq!(r.types, [ResourceType::Patient, ResourceType::Immunization]);
        assert_eq!(r.since.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(
            r.elements,
            [
                (None, "id".to_owned()),
                (Some(ResourceType::Patient), "birthDate".to_owned())
            ]
        );
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let r = KickOff {
            accept: None,
            prefer: vec![],
            params: vec![],
            post: false,
        }
        .check(NOW);
        assert_eq!(whats(r), ["Prefer", "Accept"]);
        assert_eq!(
            whats(kick(
                &[
                    ("_outputFormat", "text/csv"),
                    ("_since", "2099-01-01T00:00:00Z"),
                    ("_type", "Observation"),
                    ("_typeFilter", "Patient?x=1"),
                    ("patient", "Patient/1"),
                    ("_elements", "name.family")
                ],
                &["respond-async"]
            )),
            [
                "_outputFormat",
                "_since",
                "_type",
                "_typeFilter",
                "patient",
                "_elements"
            ]
        );
    }

    #[test]
    fn lenient_handling_ignores_and_reports() {
        let r = kick(
            &[
                ("_type", "Patient,Observation"),
                ("_typeFilter", "Patient?x=1"),
                ("foo", "1"),
            ],
            &["respond-async, handling=lenient"],
        )
        .unwrap();
        assert_eq!(r.types, [ResourceType::Patient]);
        let ignored: Vec<&str> = r.ignored.iter().map(|p| p.what.as_str()).collect();
        assert_eq!(ignored, ["_type", "_typeFilter", "foo"]);
        // Lenient never makes a bad value acceptable.
        assert_eq!(
            whats(kick(
                &[("_since", "yesterday")],
                &["respond-async", "handling=lenient"]
            )),
            ["_since"]
        );
    }

    #[test]
    fn type_filters_are_checked_against_type_and_handling() {
        let r = kick(
            &[
                ("_type", "Patient,Immunization"),
                ("_typeFilter", "Immunization?status=completed"),
                (
                    "_typeFilter",
                    "Immunization?date=ge2024-01-01,Patient?_lastUpdated=gt2020-01-01",
                ),
            ],
            &["respond-async"],
        )
        .unwrap();
        assert_eq!(r.type_filters.len(), 3);
        // A query on a type _type leaves out is refused, lenient or not.
        for prefer in ["respond-async", "respond-async, handling=lenient"] {
            let e = kick(
                &[
                    ("_type", "Patient"),
                    ("_typeFilter", "Immunization?status=completed"),
                ],
                &[prefer],
            )
            .unwrap_err();
            assert!(e[0].message.contains("_type does not name it"), "{e:?}");
        }
        // An unsupported search parameter is named; lenient drops it alone.
        let e = kick(
            &[("_typeFilter", "Immunization?lot-number=X&status=completed")],
            &["respond-async"],
        )
        .unwrap_err();
        assert_eq!(e[0].what, "_typeFilter");
        assert!(e[0].message.contains("lot-number"), "{e:?}");
        let r = kick(
            &[("_typeFilter", "Immunization?lot-number=X&status=completed")],
            &["respond-async, handling=lenient"],
        )
        .unwrap();
        assert_eq!(r.type_filters[0].criteria.len(), 1);
        assert!(r.ignored[0].message.contains("lot-number"));
        // A bad value is refused even under lenient handling.
        assert_eq!(
            whats(kick(
                &[("_typeFilter", "Immunization?date=soon")],
                &["respond-async, handling=lenient"]
            )),
            ["_typeFilter"]
        );
    }

    #[test]
    fn latest_provenance_joins_the_types_asked_for() {
        let r = kick(
            &[("includeAssociatedData", "LatestProvenanceResources")],
            &["respond-async"],
        )
        .unwrap();
        let mut want = ResourceType::DEFAULT.to_vec();
        want.push(ResourceType::Provenance);
        assert_eq!(r.types, want);
        assert!(r.wants_provenance());
        // Before or after _type, the same.
        for params in [
            [
                ("includeAssociatedData", "LatestProvenanceResources"),
                ("_type", "Immunization"),
            ],
            [
                ("_type", "Immunization"),
                ("includeAssociatedData", "LatestProvenanceResources"),
            ],
        ] {
            let r = kick(&params, &["respond-async"]).unwrap();
            assert_eq!(
                r.types,
                vec![ResourceType::Immunization, ResourceType::Provenance]
            );
        }
        let e = kick(
            &[("includeAssociatedData", "LatestProvenanceResources,_custom")],
            &["respond-async"],
        )
        .unwrap_err();
        assert_eq!(e[0].what, "includeAssociatedData");
        let r = kick(
            &[(
                "includeAssociatedData",
                "LatestProvenanceResources,RelevantProvenanceResources",
            )],
            &["respond-async"],
        )
        .unwrap();
        assert!(r.wants_provenance());
        let r = kick(
            &[("includeAssociatedData", "_custom")],
            &["respond-async", "handling=lenient"],
        )
        .unwrap();
        assert!(!r.wants_provenance());
        assert_eq!(r.ignored[0].what, "includeAssociatedData");
    }

    #[test]
    fn output_is_organized_by_patient_only() {
        let r = kick(&[("organizeOutputBy", "Patient")], &["respond-async"]).unwrap();
        assert!(r.organize_by_patient);
        assert_eq!(
            whats(kick(
                &[("organizeOutputBy", "Encounter")],
                &["respond-async"]
            )),
            ["organizeOutputBy"]
        );
        let r = kick(
            &[("organizeOutputBy", "Encounter")],
            &["respond-async, handling=lenient"],
        )
        .unwrap();
        assert!(!r.organize_by_patient && r.ignored[0].what == "organizeOutputBy");
        let e = kick(&[("_until", "2026-01-01T00:00:00Z")], &["respond-async"]).unwrap_err();
        assert!(
            e[0].message.contains("not supported by this server"),
            "{e:?}"
        );
    }

    #[test]
    fn post_parameters_carry_patients() {
        let body = serde_json::json!({"resourceType": "Parameters", "parameter": [
            {"name": "_type", "valueString": "Patient"},
            {"name": "patient", "valueReference": {"reference": "Patient/p1"}},
            {"name": "_since", "valueInstant": "2026-01-01T00:00:00Z"}
        ]});
        let params = parameters_of(&body).unwrap();
        let r = KickOff {
            accept: Some("application/fhir+json"),
            prefer: vec!["respond-async"],
            params,
            post: true,
        }
        .check(NOW)
        .unwrap();
        assert_eq!(r.patients, ["p1"]);
        let partial = serde_json::json!({"resourceType": "Parameters", "parameter": [
            {"name": "allowPartialManifests", "valueBoolean": true}]});
        let r = KickOff {
            accept: Some("application/fhir+json"),
            prefer: vec!["respond-async"],
            params: parameters_of(&partial).unwrap(),
            post: true,
        }
        .check(NOW)
        .unwrap();
        assert!(r.allow_partial_manifests);
        assert_eq!(
            whats(kick(
                &[("allowPartialManifests", "yes")],
                &["respond-async"]
            )),
            ["allowPartialManifests"]
        );
        assert!(parameters_of(&serde_json::json!({"resourceType": "Patient"})).is_err());
        let no_value =
            serde_json::json!({"resourceType": "Parameters", "parameter": [{"name": "_type"}]});
        assert_eq!(parameters_of(&no_value).unwrap_err().what, "_type");
    }
}
