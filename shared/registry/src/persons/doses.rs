//! Immunizations: each sender's reports of doses as received (added,
//! updated and deleted by RXA-21 against the sender's own report), and the
//! person's history of vaccination events, where every report of one event
//! (the same dose resent with a new ORC-3, without one, by another clinic,
//! as a historical record days later, under another CVX of the same vaccine
//! group, inside a combination vaccine) is consolidated into one event that
//! lists them all, the best report speaking for it.

use std::collections::BTreeSet;

use iz::view::{Action, Administration, CompletionStatus, Order};
use serde::{Deserialize, Serialize};

use crate::keys::short_hash;

/// One dose as one sender reported it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceDose {
    pub au: String,
    /// The sender's id for its report: from ORC-3, or, without one, from
    /// the vaccine groups, date and kind of record it describes.
    pub dose_key: String,
    pub source: String,
    pub message_id: String,
    pub received_at: i64,
    pub order: Order,
}

/// What a VXU order asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum DoseChange {
    /// RXA-21 A or U: the dose as now reported (an update of an unknown
    /// dose adds it, as the guide expects receivers to do).
    Upsert {
        dose: Box<SourceDose>,
        /// The key an earlier version gave a report without ORC-3: a
        /// report stored under it is the one this updates.
        legacy_key: Option<String>,
    },
    /// RXA-21 D: withdraw the sender's report with this key.
    Delete {
        au: String,
        dose_key: String,
        legacy_key: Option<String>,
    },
}

impl DoseChange {
    /// The sender and the report's key (then the key an earlier version
    /// would have used).
    pub fn keys(&self) -> (&str, &str, Option<&str>) {
        match self {
            DoseChange::Upsert { dose, legacy_key } => {
                (&dose.au, &dose.dose_key, legacy_key.as_deref())
            }
            DoseChange::Delete {
                au,
                dose_key,
                legacy_key,
            } => (au, dose_key, legacy_key.as_deref()),
        }
    }
}

/// The kind of record: only reports of one kind can be one event (a
/// refusal is no dose, nor is a dose not given, nor a partial one).
fn kind(order: &Order) -> &'static str {
    match order.completion {
        CompletionStatus::Complete => "given",
        CompletionStatus::PartiallyAdministered => "partial",
        CompletionStatus::NotAdministered => "not-given",
        CompletionStatus::Refused => "refused",
    }
}

/// The sender-scoped identity of an order's report: its ORC-3, or, where
/// the sender gave none, the vaccine groups, date and kind of record it
/// describes (so a resend without ORC-3 updates it instead of adding one).
pub fn dose_key(groups: &VaccineGroups, order: &Order) -> String {
    match filler(order) {
        Some((id, ns)) => format!(
            "f{}",
            &short_hash(format!("{id}\u{0}{ns}").as_bytes())[..24]
        ),
        None => {
            let groups: BTreeSet<String> = groups.groups(order).into_iter().collect();
            let date = order.administered.map(|d| d.to_hl7()).unwrap_or_default();
            let groups: Vec<String> = groups.into_iter().collect();
            format!(
                "g{}",
                &short_hash(
                    format!("{}\u{0}{date}\u{0}{}", groups.join(","), kind(order)).as_bytes()
                )[..24]
            )
        }
    }
}

/// ORC-3 when it names a dose. "9999" is what the guide requires in ORC-3
/// of every refusal and not-administered order (IZ-45): it names none.
fn filler(order: &Order) -> Option<(&str, &str)> {
    order
        .filler_order
        .as_ref()
        .filter(|f| !f.id.is_empty() && f.id != "9999")
        .map(|f| (f.id.as_str(), f.namespace.as_deref().unwrap_or("")))
}

/// The key an earlier version gave a report without ORC-3 (vaccine codes,
/// date and lots), so that its updates and deletes still find it.
fn legacy_key(order: &Order) -> Option<String> {
    if filler(order).is_some() {
        return None;
    }
    let vaccine: Vec<&str> = order.vaccine.iter().map(|c| c.code.as_str()).collect();
    let date = order.administered.map(|d| d.to_hl7()).unwrap_or_default();
    let lots = order.lot_numbers.join(",");
    Some(format!(
        "d{}",
        &short_hash(format!("{}\u{0}{date}\u{0}{lots}", vaccine.join(",")).as_bytes())[..24]
    ))
}

pub fn changes(
    groups: &VaccineGroups,
    au: &str,
    source: &str,
    message_id: &str,
    received_at: i64,
    orders: &[Order],
) -> Vec<DoseChange> {
    orders
        .iter()
        .map(|order| {
            let key = dose_key(groups, order);
            let legacy_key = legacy_key(order);
            match order.action {
                Action::Delete => DoseChange::Delete {
                    au: au.to_owned(),
                    dose_key: key,
                    legacy_key,
                },
                Action::Add | Action::Update => DoseChange::Upsert {
                    dose: Box::new(SourceDose {
                        au: au.to_owned(),
                        dose_key: key,
                        source: source.to_owned(),
                        message_id: message_id.to_owned(),
                        received_at,
                        order: order.clone(),
                    }),
                    legacy_key,
                },
            }
        })
        .fold(Vec::new(), |mut out: Vec<DoseChange>, change| {
            // One message naming the same report twice (the same ORC-3, or
            // no ORC-3 and the same vaccine group, date and kind) reports
            // one: its last mention wins, in the first one's place.
            let k = change.keys().1.to_owned();
            match out.iter_mut().find(|c| c.keys().1 == k) {
                Some(earlier) => *earlier = change,
                None => out.push(change),
            }
            out
        })
}

/// Where a consolidated dose came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoseSource {
    pub au: String,
    /// The source record (chart) that reported it.
    #[serde(default)]
    pub source: String,
    pub dose_key: String,
    pub message_id: String,
}

/// One vaccination event in a person's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Immunization {
    /// Stable while its earliest report stays (more reports change nothing):
    /// the projection item's key.
    pub id: String,
    /// The report that speaks for the event ([`VaccinationRules`]).
    pub order: Order,
    /// Every report behind the event, earliest received first.
    pub sources: Vec<DoseSource>,
    /// Why `order` was the one chosen (empty in histories built before).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chosen: String,
}

/// Vaccine groups by CVX (`data/vaccine-groups.tsv`), so that DTaP-IPV-HepB
/// from one clinic and DTaP from another on the same day are one event.
pub struct VaccineGroups {
    by_cvx: std::collections::HashMap<u32, Vec<String>>,
}

impl std::fmt::Debug for VaccineGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VaccineGroups({} codes)", self.by_cvx.len())
    }
}

impl VaccineGroups {
    pub fn parse(text: &str) -> Result<VaccineGroups, String> {
        let mut by_cvx = std::collections::HashMap::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let mut cols = line.split('\t');
            let (Some(cvx), Some(groups)) = (cols.next(), cols.next()) else {
                return Err(format!(
                    "vaccine groups line {}: expected CVX<TAB>groups",
                    n + 1
                ));
            };
            let cvx: u32 = cvx.trim().parse().map_err(|_| {
                format!("vaccine groups line {}: CVX {cvx:?} is not a number", n + 1)
            })?;
            by_cvx.insert(
                cvx,
                groups
                    .split(',')
                    .map(|g| g.trim().to_owned())
                    .filter(|g| !g.is_empty())
                    .collect(),
            );
        }
        Ok(VaccineGroups { by_cvx })
    }

    pub fn built_in() -> &'static VaccineGroups {
        static TABLE: std::sync::OnceLock<VaccineGroups> = std::sync::OnceLock::new();
        TABLE.get_or_init(|| {
            VaccineGroups::parse(include_str!("../../data/vaccine-groups.tsv")).unwrap_or(
                VaccineGroups {
                    by_cvx: Default::default(),
                },
            )
        })
    }

    fn groups(&self, order: &Order) -> Vec<String> {
        let cvx = order
            .vaccine
            .iter()
            .find(|c| c.is_system("CVX"))
            .and_then(|c| c.code.trim().parse::<u32>().ok());
        match cvx.and_then(|c| self.by_cvx.get(&c)) {
            Some(groups) => groups.clone(),
            // An unknown code only ever equals itself.
            None => order
                .vaccine
                .first()
                .map(|c| vec![format!("code:{}", c.code)])
                .unwrap_or_default(),
        }
    }
}

/// What decides which report speaks for an event, in order: each rule
/// settles what the ones before it left even.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BestRecord {
    /// The administering provider's own record (RXA-9 `00`) over a
    /// historical one.
    Administered,
    /// The report that says the most: NDC or CVX with MVX, lot, expiration,
    /// site, route, administering provider, VIS.
    MostComplete,
    /// The report received first.
    EarliestReceived,
}

/// How a jurisdiction consolidates reports into vaccination events
/// (`[vaccination_events]` in its policy file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaccinationRules {
    /// Historical reports are remembered, not recorded on the day: reports
    /// of one vaccine group this many days apart are one event when either
    /// is historical (two administered records are one event only on the
    /// same day).
    #[serde(default = "default_window")]
    pub historical_window_days: u32,
    /// Which report speaks for an event.
    #[serde(default = "default_best_record")]
    pub best_record: Vec<BestRecord>,
}

fn default_window() -> u32 {
    3
}

fn default_best_record() -> Vec<BestRecord> {
    vec![
        BestRecord::Administered,
        BestRecord::MostComplete,
        BestRecord::EarliestReceived,
    ]
}

impl Default for VaccinationRules {
    fn default() -> Self {
        VaccinationRules {
            historical_window_days: default_window(),
            best_record: default_best_record(),
        }
    }
}

fn is_historical(order: &Order) -> bool {
    matches!(order.administration, Administration::Historical(_))
}

/// Whether two reports of the same kind and vaccine group can be one event
/// by their dates: two administered records on the same day, or any two
/// within the historical window when either is historical.
fn dates_agree(rules: &VaccinationRules, a: &Order, b: &Order) -> bool {
    let (Some(da), Some(db)) = (a.administered, b.administered) else {
        return false;
    };
    let window = if is_historical(a) || is_historical(b) {
        i64::from(rules.historical_window_days)
    } else {
        0
    };
    (da.day_number() - db.day_number()).abs() <= window
}

/// What a report offers, for [`BestRecord::MostComplete`]: its names.
fn completeness(order: &Order) -> Vec<&'static str> {
    let mut out = Vec::new();
    if order.ndc().is_some() {
        out.push("NDC");
    } else if order.cvx().is_some() && order.manufacturer.is_some() {
        out.push("CVX and MVX");
    }
    if !order.lot_numbers.is_empty() {
        out.push("lot");
    }
    if order.expiration.is_some() {
        out.push("expiration");
    }
    if order.site.is_some() {
        out.push("site");
    }
    if order.route.is_some() {
        out.push("route");
    }
    if order.administering_provider.is_some() {
        out.push("performer");
    }
    if !order.vis.is_empty() {
        out.push("VIS");
    }
    out
}

/// Orders two reports by the rules: `Greater` when `a` speaks better.
fn compare_reports(rules: &VaccinationRules, a: &SourceDose, b: &SourceDose) -> std::cmp::Ordering {
    for rule in &rules.best_record {
        let o = match rule {
            BestRecord::Administered => (!is_historical(&a.order)).cmp(&!is_historical(&b.order)),
            BestRecord::MostComplete => completeness(&a.order)
                .len()
                .cmp(&completeness(&b.order).len()),
            BestRecord::EarliestReceived => b.received_at.cmp(&a.received_at),
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    // Fully even: the earlier in the stored order (received, sender, key).
    std::cmp::Ordering::Equal
}

/// Why the chosen report speaks for its event, in words a reviewer reads.
fn chosen_because(rules: &VaccinationRules, best: &SourceDose, reports: usize) -> String {
    if reports == 1 {
        return "the only report".into();
    }
    let mut why = Vec::new();
    for rule in &rules.best_record {
        why.push(match rule {
            BestRecord::Administered if is_historical(&best.order) => {
                "a historical record (no administered one)".to_owned()
            }
            BestRecord::Administered => "an administered record".to_owned(),
            BestRecord::MostComplete => {
                let has = completeness(&best.order);
                if has.is_empty() {
                    "no details beyond the vaccine and date".to_owned()
                } else {
                    format!("most complete ({})", has.join(", "))
                }
            }
            BestRecord::EarliestReceived => "then received first".to_owned(),
        });
    }
    why.join("; ")
}

/// One event while it is being formed.
struct Forming<'d> {
    reports: Vec<&'d SourceDose>,
    groups: BTreeSet<String>,
}

impl Forming<'_> {
    /// Whether a report can join: same kind, a vaccine group in common,
    /// and dates that agree with every report already in (no chaining past
    /// the window; two administered records on two days stay two events,
    /// for the forecaster to judge).
    fn admits(&self, rules: &VaccinationRules, dose: &SourceDose, groups: &[String]) -> bool {
        groups.iter().any(|g| self.groups.contains(g))
            && self.reports.iter().all(|r| {
                kind(&r.order) == kind(&dose.order) && dates_agree(rules, &r.order, &dose.order)
            })
    }

    /// Whether two forming events can be one (a report bridging them).
    fn agrees_with(&self, rules: &VaccinationRules, other: &Forming<'_>) -> bool {
        self.reports.iter().all(|a| {
            other
                .reports
                .iter()
                .all(|b| kind(&a.order) == kind(&b.order) && dates_agree(rules, &a.order, &b.order))
        })
    }
}

/// The person's vaccination events from every report of every linked chart.
pub fn consolidate(
    groups: &VaccineGroups,
    rules: &VaccinationRules,
    doses: &[SourceDose],
) -> Vec<Immunization> {
    let mut sorted: Vec<&SourceDose> = doses.iter().collect();
    sorted.sort_by(|a, b| {
        (a.received_at, &a.au, &a.dose_key).cmp(&(b.received_at, &b.au, &b.dose_key))
    });
    let mut events: Vec<Forming<'_>> = Vec::new();
    for dose in sorted {
        let dose_groups = groups.groups(&dose.order);
        let joinable: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.admits(rules, dose, &dose_groups))
            .map(|(i, _)| i)
            .collect();
        let Some((&first, rest)) = joinable.split_first() else {
            events.push(Forming {
                reports: vec![dose],
                groups: dose_groups.into_iter().collect(),
            });
            continue;
        };
        // A report that is one event with several (a combination vaccine
        // reported beside its single-antigen doses) makes them one, where
        // their dates allow.
        for &i in rest.iter().rev() {
            if events[first].agrees_with(rules, &events[i]) {
                let merged = events.remove(i);
                events[first].reports.extend(merged.reports);
                events[first].groups.extend(merged.groups);
            }
        }
        let event = &mut events[first];
        event.reports.push(dose);
        event.groups.extend(dose_groups);
    }
    events
        .into_iter()
        .filter_map(|mut e| {
            e.reports.sort_by(|a, b| {
                (a.received_at, &a.au, &a.dose_key).cmp(&(b.received_at, &b.au, &b.dose_key))
            });
            let earliest = *e.reports.first()?;
            let mut best = earliest;
            for r in &e.reports[1..] {
                if compare_reports(rules, r, best) == std::cmp::Ordering::Greater {
                    best = r;
                }
            }
            Some(Immunization {
                id: short_hash(format!("{}\u{0}{}", earliest.au, earliest.dose_key).as_bytes())
                    [..24]
                    .to_owned(),
                order: best.order.clone(),
                chosen: chosen_because(rules, best, e.reports.len()),
                sources: e
                    .reports
                    .iter()
                    .map(|r| DoseSource {
                        au: r.au.clone(),
                        source: r.source.clone(),
                        dose_key: r.dose_key.clone(),
                        message_id: r.message_id.clone(),
                    })
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Report {
        chart: &'static str,
        key: &'static str,
        cvx: &'static str,
        date: (u16, u8, u8),
        completion: &'static str,
        historical: bool,
        received: i64,
    }

    fn report(
        chart: &'static str,
        key: &'static str,
        cvx: &'static str,
        date: (u16, u8, u8),
    ) -> Report {
        Report {
            chart,
            key,
            cvx,
            date,
            completion: "complete",
            historical: false,
            received: 0,
        }
    }

    impl Report {
        fn dose(&self) -> SourceDose {
            let administration = if self.historical {
                serde_json::json!({"kind": "historical", "source": "01"})
            } else {
                serde_json::json!({"kind": "new"})
            };
            let order: Order = serde_json::from_value(serde_json::json!({
                "rxa_segment": 1,
                "administered": {"year": self.date.0, "month": self.date.1, "day": self.date.2},
                "vaccine": [{"code": self.cvx, "system": "CVX"}],
                "administration": administration,
                "lot_numbers": [],
                "refusal_reasons": [],
                "completion": self.completion,
                "action": "add",
                "vis": [],
                "observations": [],
            }))
            .expect("an order");
            SourceDose {
                au: format!("au-{}", self.chart),
                dose_key: self.key.into(),
                source: self.chart.into(),
                message_id: "m".into(),
                received_at: self.received,
                order,
            }
        }
    }

    fn groups() -> VaccineGroups {
        VaccineGroups::parse(
            "08\tHEPB\tHepB\n45\tHEPB\tHepB unspecified\n110\tDTAP,HEPB,POLIO\tPediarix\n20\tDTAP\tDTaP\n107\tDTAP\tDTaP unspecified\n",
        )
        .expect("table")
    }

    fn events(reports: &[Report]) -> Vec<Immunization> {
        let doses: Vec<SourceDose> = reports.iter().map(Report::dose).collect();
        consolidate(&groups(), &VaccinationRules::default(), &doses)
    }

    #[test]
    fn a_message_naming_one_dose_twice_changes_it_once_last_mention_winning() {
        let g = groups();
        let first = report("a", "k", "08", (2024, 5, 5)).dose().order;
        let mut again = first.clone();
        again.lot_numbers = vec!["LOT2".into()];
        let other = report("a", "k", "20", (2024, 6, 6)).dose().order;
        // No ORC-3: the report is named by vaccine group, date and kind.
        let found = changes(&g, "au", "src", "m", 0, &[first.clone(), other, again]);
        assert_eq!(found.len(), 2, "{found:?}");
        match &found[0] {
            DoseChange::Upsert { dose, legacy_key } => {
                assert_eq!(dose.order.lot_numbers, ["LOT2"]);
                assert!(legacy_key.as_deref().is_some_and(|k| k.starts_with('d')));
            }
            other => panic!("{other:?}"),
        }
        // 08 and 45 are one vaccine group: one key for one date.
        let mut hep45 = first.clone();
        hep45.vaccine[0].code = "45".into();
        assert_eq!(dose_key(&g, &first), dose_key(&g, &hep45));
        // A refusal of the same group that day is another report.
        let mut refused = first.clone();
        refused.completion = CompletionStatus::Refused;
        assert_ne!(dose_key(&g, &first), dose_key(&g, &refused));
    }

    /// The EHR that regenerates ORC-3 on every resend: nine reports of one
    /// chart, one event.
    #[test]
    fn one_chart_resending_one_dose_is_one_event() {
        let keys = ["k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"];
        let reports: Vec<Report> = keys
            .iter()
            .enumerate()
            .map(|(n, k)| Report {
                received: n as i64,
                ..report("a", k, "08", (2026, 11, 1))
            })
            .collect();
        let history = events(&reports);
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].sources.len(), 9);
        // The id is the earliest report's, whatever arrives later.
        let first = events(&reports[..1]);
        assert_eq!(history[0].id, first[0].id);
    }

    #[test]
    fn one_event_per_group_and_date_whatever_the_code_or_combination() {
        let history = events(&[
            report("a", "1", "110", (2024, 5, 5)),
            report("b", "9", "20", (2024, 5, 5)),
            report("a", "2", "08", (2024, 5, 5)),
            report("c", "3", "45", (2024, 5, 5)),
        ]);
        assert_eq!(history.len(), 1, "{history:?}");
        assert_eq!(history[0].sources.len(), 4);
        // DTaP and HepB given apart the same day are two events; a
        // combination reported later covers both and makes them one.
        let apart = events(&[
            report("a", "1", "20", (2024, 5, 5)),
            report("a", "2", "08", (2024, 5, 5)),
        ]);
        assert_eq!(apart.len(), 2);
        let bridged = events(&[
            report("a", "1", "20", (2024, 5, 5)),
            report("a", "2", "08", (2024, 5, 5)),
            Report {
                received: 5,
                ..report("b", "3", "110", (2024, 5, 5))
            },
        ]);
        assert_eq!(bridged.len(), 1);
    }

    #[test]
    fn refusals_partial_doses_and_other_days_never_merge() {
        let refused = events(&[
            Report {
                completion: "refused",
                ..report("a", "1", "08", (2024, 5, 5))
            },
            report("b", "2", "08", (2024, 5, 5)),
            Report {
                completion: "partially_administered",
                ..report("b", "3", "08", (2024, 5, 5))
            },
        ]);
        assert_eq!(refused.len(), 3, "{refused:?}");
        // Administered one day apart: two doses (the forecaster judges).
        let apart = events(&[
            report("a", "1", "08", (2024, 5, 5)),
            report("b", "2", "08", (2024, 5, 6)),
        ]);
        assert_eq!(apart.len(), 2);
        // A historical report within three days is the same event; one
        // three days past the administered one is not, nor does a chain of
        // historical reports stretch the window.
        let remembered = events(&[
            report("a", "1", "08", (2024, 5, 5)),
            Report {
                historical: true,
                ..report("b", "2", "08", (2024, 5, 7))
            },
            Report {
                historical: true,
                ..report("c", "3", "08", (2024, 5, 10))
            },
        ]);
        assert_eq!(remembered.len(), 2, "{remembered:?}");
        assert_eq!(remembered[0].sources.len(), 2);
    }

    #[test]
    fn the_best_report_speaks_for_the_event_and_says_why() {
        let mut historical = Report {
            historical: true,
            ..report("a", "1", "08", (2024, 5, 5))
        }
        .dose();
        historical.order.lot_numbers = vec!["L1".into()];
        let administered = Report {
            received: 3,
            ..report("b", "2", "45", (2024, 5, 5))
        }
        .dose();
        let rules = VaccinationRules::default();
        let history = consolidate(
            &groups(),
            &rules,
            &[historical.clone(), administered.clone()],
        );
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].order.vaccine[0].code, "45");
        assert!(
            history[0].chosen.starts_with("an administered record"),
            "{}",
            history[0].chosen
        );
        // A jurisdiction that puts completeness first gets the lot's report.
        let complete_first = VaccinationRules {
            best_record: vec![BestRecord::MostComplete, BestRecord::EarliestReceived],
            ..rules
        };
        let history = consolidate(&groups(), &complete_first, &[historical, administered]);
        assert_eq!(history[0].order.vaccine[0].code, "08");
        assert!(
            history[0].chosen.contains("most complete (lot)"),
            "{}",
            history[0].chosen
        );
    }
}
