//! `_typeFilter` of a Group `$export`: parsing (pure, at kick-off) and
//! matching (in the writer, per resource).
//!
//! Bulk Data semantics: a `_typeFilter` value is one or more FHIR search
//! queries (`Immunization?date=ge2024-01-01&status=completed`); the queries
//! of one type are ORed, the parameters inside one query ANDed, and a type
//! without a query is exported whole. Comma-separated values of one
//! parameter are ORed, as in any FHIR search.
//!
//! Supported here, because they are what an IIS consumer filters on and
//! what the registry can answer exactly:
//! * Immunization: `date` (occurrence date, with the prefixes eq, ne, gt,
//!   lt, ge, le, sa, eb), `vaccine-code` (token: `system|code`, `code`,
//!   `|code` or `system|`), `status` (token).
//! * Patient: `_lastUpdated` (the record's last change, same prefixes).

use super::request::ResourceType;

/// The CVX code system, as exported in `Immunization.vaccineCode`.
pub const CVX: &str = "http://hl7.org/fhir/sid/cvx";

/// The search parameters each type supports, for error messages and the
/// CapabilityStatement.
pub const SUPPORTED: [(ResourceType, &[&str]); 2] = [
    (
        ResourceType::Immunization,
        &["date", "vaccine-code", "status"],
    ),
    (ResourceType::Patient, &["_lastUpdated"]),
];

/// One query of `_typeFilter`: its type and ANDed criteria.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TypeFilter {
    pub resource_type: ResourceType,
    pub criteria: Vec<Criterion>,
}

/// One search parameter of a query; its values are ORed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Criterion {
    /// Immunization `date` (occurrence date).
    Date(Vec<DateTest>),
    /// Immunization `vaccine-code`.
    VaccineCode(Vec<Token>),
    /// Immunization `status`.
    Status(Vec<String>),
    /// Patient `_lastUpdated`.
    LastUpdated(Vec<DateTest>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
}

/// A prefixed date search value: the range `[start_ms, end_ms)` its
/// precision covers (`2024` is the whole year).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DateTest {
    pub prefix: Prefix,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A token search value; `None` system: any system; `Some("")`: no system.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Token {
    pub system: Option<String>,
    /// `None`: any code of the system (`system|`).
    pub code: Option<String>,
}

/// What parsing one `_typeFilter` value found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub filters: Vec<TypeFilter>,
    /// Parameters (or whole queries, for a type not exported here) that are
    /// not supported: refused, or ignored under lenient handling. Each a
    /// sentence naming the parameter.
    pub unsupported: Vec<String>,
    /// Malformed queries or values: always refused.
    pub invalid: Vec<String>,
}

const DAY_MS: i64 = 86_400_000;

/// Parses one `_typeFilter` value: a query, or several separated by commas
/// (a comma that starts `Type?`), each possibly percent-encoded once more
/// inside (a client encodes the query it puts in a query string).
pub fn parse(value: &str) -> Parsed {
    let mut out = Parsed::default();
    for query in split_queries(value) {
        parse_query(&query, &mut out);
    }
    out
}

/// Splits on the commas that begin a new `Type?...` query; other commas
/// separate ORed values of one parameter.
fn split_queries(value: &str) -> Vec<String> {
    let mut queries: Vec<String> = Vec::new();
    for piece in value.split(',') {
        let starts_query = piece
            .split_once('?')
            .is_some_and(|(t, _)| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphabetic()));
        match queries.last_mut() {
            Some(q) if !starts_query => {
                q.push(',');
                q.push_str(piece);
            }
            _ => queries.push(piece.to_owned()),
        }
    }
    queries
}

fn parse_query(query: &str, out: &mut Parsed) {
    let shown = query.chars().take(120).collect::<String>();
    let Some((type_name, params)) = query.split_once('?') else {
        out.invalid.push(format!(
            "_typeFilter {shown:?} is not a FHIR search query (Type?param=value)"
        ));
        return;
    };
    let Some(resource_type) = ResourceType::parse(type_name) else {
        out.unsupported.push(format!(
            "_typeFilter {shown:?}: {} is not exported here",
            type_name.chars().take(40).collect::<String>()
        ));
        return;
    };
    let mut criteria = Vec::new();
    for pair in params.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (percent_decode(name), percent_decode(value));
        let name_shown = name.chars().take(40).collect::<String>();
        let supported = SUPPORTED
            .iter()
            .find(|(t, _)| *t == resource_type)
            .map_or(&[][..], |(_, p)| *p);
        if !supported.contains(&name.as_str()) {
            out.unsupported.push(format!(
                "_typeFilter {shown:?}: the search parameter {name_shown} is not supported for {} ({})",
                resource_type.as_str(),
                if supported.is_empty() {
                    "none is".to_owned()
                } else {
                    format!("supported: {}", supported.join(", "))
                }
            ));
            continue;
        }
        let values: Vec<&str> = value.split(',').collect();
        if values.iter().any(|v| v.is_empty()) {
            out.invalid.push(format!(
                "_typeFilter {shown:?}: {name_shown} has an empty value"
            ));
            continue;
        }
        let parsed = match name.as_str() {
            "date" => dates(&values).map(Criterion::Date),
            "_lastUpdated" => dates(&values).map(Criterion::LastUpdated),
            "vaccine-code" => Ok(Criterion::VaccineCode(
                values.iter().map(|v| token(v)).collect(),
            )),
            "status" => Ok(Criterion::Status(
                values
                    .iter()
                    .map(|v| v.rsplit('|').next().unwrap_or(v).to_owned())
                    .collect(),
            )),
            _ => Err(format!("{name_shown} is not supported")),
        };
        match parsed {
            Ok(c) => criteria.push(c),
            Err(why) => out
                .invalid
                .push(format!("_typeFilter {shown:?}: {name_shown}: {why}")),
        }
    }
    out.filters.push(TypeFilter {
        resource_type,
        criteria,
    });
}

fn dates(values: &[&str]) -> Result<Vec<DateTest>, String> {
    values.iter().map(|v| date_test(v)).collect()
}

fn token(v: &str) -> Token {
    match v.split_once('|') {
        None => Token {
            system: None,
            code: Some(v.to_owned()),
        },
        Some((system, code)) => Token {
            system: Some(system.to_owned()),
            code: (!code.is_empty()).then(|| code.to_owned()),
        },
    }
}

/// `%XX` decoded; `+` is kept (after the outer query string's decoding a
/// `+` is a time zone sign, not a space).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                let v = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `[prefix]YYYY[-MM[-DD[Thh:mm:ss[.fff](Z|±hh:mm)]]]`.
pub fn date_test(v: &str) -> Result<DateTest, String> {
    let prefixes = [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("gt", Prefix::Gt),
        ("lt", Prefix::Lt),
        ("ge", Prefix::Ge),
        ("le", Prefix::Le),
        ("sa", Prefix::Sa),
        ("eb", Prefix::Eb),
    ];
    let (prefix, rest) = prefixes
        .iter()
        .find_map(|(p, prefix)| v.strip_prefix(p).map(|r| (*prefix, r)))
        .unwrap_or((Prefix::Eq, v));
    let bad = || {
        format!(
            "{:?} is not a date (YYYY, YYYY-MM, YYYY-MM-DD or an instant, with an optional prefix eq, ne, gt, lt, ge, le, sa or eb)",
            v.chars().take(40).collect::<String>()
        )
    };
    if rest.contains('T') {
        let start = super::request::parse_instant(rest).ok_or_else(bad)?;
        // An instant is as precise as it is written: to the second, or to
        // the millisecond with a fraction.
        let width = if rest.contains('.') { 1 } else { 1000 };
        return Ok(DateTest {
            prefix,
            start_ms: start,
            end_ms: start + width,
        });
    }
    let parts: Vec<&str> = rest.split('-').collect();
    let num = |s: &str, len: usize| -> Option<u32> {
        (s.len() == len && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let day_ms = |y: u32, m: u32, d: u32| -> Option<i64> {
        let date = iz::Date {
            year: u16::try_from(y).ok()?,
            month: u8::try_from(m).ok()?,
            day: u8::try_from(d).ok()?,
        };
        Some(date.day_number() * DAY_MS)
    };
    let valid_month = |m: u32| (1..=12).contains(&m);
    let (start, end) = match parts.as_slice() {
        [y] => {
            let y = num(y, 4).ok_or_else(bad)?;
            (day_ms(y, 1, 1), day_ms(y + 1, 1, 1))
        }
        [y, m] => {
            let (y, m) = (num(y, 4).ok_or_else(bad)?, num(m, 2).ok_or_else(bad)?);
            if !valid_month(m) {
                return Err(bad());
            }
            let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            (day_ms(y, m, 1), day_ms(next.0, next.1, 1))
        }
        [y, m, d] => {
            let (y, m, d) = (
                num(y, 4).ok_or_else(bad)?,
                num(m, 2).ok_or_else(bad)?,
                num(d, 2).ok_or_else(bad)?,
            );
            let max = u16::try_from(y)
                .ok()
                .filter(|_| valid_month(m))
                .and_then(|y| {
                    u8::try_from(m)
                        .ok()
                        .map(|m| iz::datetime::days_in_month(y, m))
                })
                .ok_or_else(bad)?;
            if d < 1 || d > u32::from(max) {
                return Err(bad());
            }
            let start = day_ms(y, m, d);
            (start, start.map(|s| s + DAY_MS))
        }
        _ => return Err(bad()),
    };
    match (start, end) {
        (Some(start_ms), Some(end_ms)) => Ok(DateTest {
            prefix,
            start_ms,
            end_ms,
        }),
        _ => Err(bad()),
    }
}

impl DateTest {
    /// Whether a target covering `[start, end)` matches, by the FHIR search
    /// rules for ranges (a day-precise occurrence is a whole day).
    pub fn matches(&self, start: i64, end: i64) -> bool {
        let (s, e) = (self.start_ms, self.end_ms);
        let eq = s <= start && end <= e;
        match self.prefix {
            Prefix::Eq => eq,
            Prefix::Ne => !eq,
            Prefix::Gt => end > e,
            Prefix::Lt => start < s,
            Prefix::Ge => end > e || eq,
            Prefix::Le => start < s || eq,
            Prefix::Sa => start >= e,
            Prefix::Eb => end <= s,
        }
    }
}

impl Token {
    fn matches(&self, coding: &fhir::Coding) -> bool {
        let system_ok = match self.system.as_deref() {
            None => true,
            Some("") => coding.system.is_none(),
            Some(s) => coding.system.as_deref() == Some(s),
        };
        let code_ok = match &self.code {
            None => true,
            Some(c) => coding.code.as_deref() == Some(c.as_str()),
        };
        system_ok && code_ok
    }
}

/// Whether a resource of type `t` is exported under `filters`: no filter of
/// its type, or at least one whose every criterion `holds`.
fn admits(filters: &[TypeFilter], t: ResourceType, holds: impl Fn(&Criterion) -> bool) -> bool {
    let mut of_type = filters.iter().filter(|f| f.resource_type == t).peekable();
    if of_type.peek().is_none() {
        return true;
    }
    of_type.any(|f| f.criteria.iter().all(&holds))
}

/// Whether an exported Immunization passes the job's filters.
pub fn admits_immunization(filters: &[TypeFilter], imm: &fhir::Immunization) -> bool {
    admits(filters, ResourceType::Immunization, |c| match c {
        Criterion::Date(tests) => {
            occurrence_range(imm).is_some_and(|(s, e)| tests.iter().any(|t| t.matches(s, e)))
        }
        Criterion::VaccineCode(tokens) => tokens
            .iter()
            .any(|t| imm.vaccine_code.coding.iter().any(|c| t.matches(c))),
        Criterion::Status(codes) => codes.contains(&imm.status),
        Criterion::LastUpdated(_) => false,
    })
}

/// Whether a Patient whose record last changed at `updated_at_ms` passes.
pub fn admits_patient(filters: &[TypeFilter], updated_at_ms: i64) -> bool {
    admits(filters, ResourceType::Patient, |c| match c {
        Criterion::LastUpdated(tests) => tests
            .iter()
            .any(|t| t.matches(updated_at_ms, updated_at_ms + 1)),
        _ => false,
    })
}

/// The occurrence as a range of epoch ms (a date is its whole UTC day);
/// `None` when unknown (such an event never matches a date criterion).
fn occurrence_range(imm: &fhir::Immunization) -> Option<(i64, i64)> {
    let d = imm.occurrence_date_time.as_deref()?;
    let t = date_test(d).ok()?;
    Some((t.start_ms, t.end_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> i64 {
        date_test(s).unwrap().start_ms
    }

    #[test]
    fn dates_cover_their_precision() {
        let y = date_test("2024").unwrap();
        assert_eq!(
            (y.start_ms, y.end_ms),
            (day("2024-01-01"), day("2025-01-01"))
        );
        let m = date_test("ge2024-12").unwrap();
        assert_eq!(m.prefix, Prefix::Ge);
        assert_eq!(
            (m.start_ms, m.end_ms),
            (day("2024-12-01"), day("2025-01-01"))
        );
        let d = date_test("lt2024-02-29").unwrap();
        assert_eq!(d.end_ms - d.start_ms, DAY_MS);
        let i = date_test("2024-02-29T10:00:00Z").unwrap();
        assert_eq!(i.end_ms - i.start_ms, 1000);
        for bad in [
            "",
            "24",
            "2024-13",
            "2023-02-29",
            "2024-1-01",
            "xx2024",
            "2024-01-01T10",
            "ge",
        ] {
            assert!(date_test(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes_follow_the_fhir_range_rules() {
        let (s, e) = (day("2024-03-05"), day("2024-03-06"));
        let t = |v: &str| date_test(v).unwrap().matches(s, e);
        assert!(t("2024-03-05") && t("2024-03") && t("2024"));
        assert!(!t("2024-03-04") && t("ne2024-03-04") && !t("ne2024-03"));
        assert!(t("ge2024-03-05") && t("le2024-03-05"));
        assert!(!t("gt2024-03-05") && !t("lt2024-03-05"));
        assert!(t("gt2024-03-04") && t("lt2024-03-06") && t("ge2024-02") && t("le2024-03"));
        assert!(!t("ge2024-04") && !t("le2024-02"));
        assert!(t("sa2024-03-04") && !t("sa2024-03-05") && t("eb2024-03-06"));
    }

    #[test]
    fn queries_values_and_encodings() {
        let p = parse(
            "Immunization?date=ge2024-01-01&vaccine-code=http://hl7.org/fhir/sid/cvx%7C08,20&status=completed,Patient?_lastUpdated=gt2020-01-01",
        );
        assert!(p.unsupported.is_empty() && p.invalid.is_empty(), "{p:?}");
        assert_eq!(p.filters.len(), 2);
        let imm = &p.filters[0];
        assert_eq!(imm.resource_type, ResourceType::Immunization);
        assert_eq!(
            imm.criteria[1],
            Criterion::VaccineCode(vec![
                Token {
                    system: Some(CVX.into()),
                    code: Some("08".into())
                },
                Token {
                    system: None,
                    code: Some("20".into())
                }
            ])
        );
        assert_eq!(imm.criteria[2], Criterion::Status(vec!["completed".into()]));
        assert_eq!(p.filters[1].resource_type, ResourceType::Patient);

        let p = parse("Immunization?lot-number=X1&status=completed");
        assert_eq!(p.filters[0].criteria.len(), 1);
        assert!(p.unsupported[0].contains("lot-number"), "{p:?}");
        let p = parse("Observation?code=1");
        assert!(p.filters.is_empty() && p.unsupported[0].contains("Observation"));
        let p = parse("Immunization?date=yesterday");
        assert!(p.invalid[0].contains("date"), "{p:?}");
        let p = parse("date=2024");
        assert!(p.invalid[0].contains("not a FHIR search query"));
        let p = parse("Immunization?vaccine-code:text=MMR");
        assert!(p.unsupported[0].contains("vaccine-code:text"), "{p:?}");
    }

    fn imm(date: Option<&str>, status: &str, cvx: &str) -> fhir::Immunization {
        serde_json::from_value(serde_json::json!({
            "resourceType": "Immunization", "id": "i", "status": status,
            "vaccineCode": {"coding": [{"system": CVX, "code": cvx}]},
            "patient": {"reference": "Patient/p"},
            "occurrenceDateTime": date,
        }))
        .unwrap()
    }

    #[test]
    fn filters_of_a_type_are_ored_and_their_criteria_anded() {
        let filters = |v: &str| parse(v).filters;
        let a = imm(Some("2024-03-05"), "completed", "08");
        let b = imm(Some("2024-05-06"), "not-done", "20");
        let c = imm(None, "completed", "20");
        let admitted = |f: &[TypeFilter]| {
            [&a, &b, &c]
                .iter()
                .map(|i| admits_immunization(f, i))
                .collect::<Vec<_>>()
        };
        assert_eq!(admitted(&[]), [true, true, true]);
        assert_eq!(
            admitted(&filters("Immunization?date=ge2024-04")),
            [false, true, false]
        );
        assert_eq!(
            admitted(&filters("Immunization?vaccine-code=20&status=completed")),
            [false, false, true]
        );
        assert_eq!(
            admitted(&filters(
                "Immunization?vaccine-code=http://hl7.org/fhir/sid/cvx|08,Immunization?status=not-done"
            )),
            [true, true, false]
        );
        assert_eq!(
            admitted(&filters("Immunization?vaccine-code=http://example.org|08")),
            [false, false, false]
        );
        assert_eq!(
            admitted(&filters(
                "Immunization?vaccine-code=http://hl7.org/fhir/sid/cvx|"
            )),
            [true, true, true]
        );
        // A Patient filter leaves Immunizations alone, and the reverse.
        let patient_only = filters("Patient?_lastUpdated=ge2024-01-01");
        assert_eq!(admitted(&patient_only), [true, true, true]);
        assert!(admits_patient(&patient_only, day("2024-06-01")));
        assert!(!admits_patient(&patient_only, day("2023-12-31")));
        assert!(admits_patient(&filters("Immunization?status=completed"), 0));
    }
}
