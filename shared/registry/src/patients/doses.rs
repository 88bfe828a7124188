//! Immunizations: each sender's doses as reported (added, updated and
//! deleted by RXA-21 against the sender + ORC-3 filler order number), and
//! the person's consolidated history, where one dose reported by two
//! senders appears once with both sources.

use iz::view::{Action, Administration, CompletionStatus, Order};
use serde::{Deserialize, Serialize};

use crate::keys::short_hash;

/// One dose as one sender reported it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceDose {
    pub au: String,
    /// The sender's id for the dose (ORC-3), or a key derived from what it
    /// describes when the sender gave none.
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
    Upsert(Box<SourceDose>),
    /// RXA-21 D: withdraw the sender's dose with this key.
    Delete { au: String, dose_key: String },
}

/// The sender-scoped identity of an order's dose.
pub fn dose_key(order: &Order) -> String {
    match &order.filler_order {
        // "9999" is what the guide requires in ORC-3 of every refusal and
        // not-administered order (IZ-45): it names no dose.
        Some(filler) if !filler.id.is_empty() && filler.id != "9999" => {
            let ns = filler.namespace.as_deref().unwrap_or("");
            format!(
                "f{}",
                &short_hash(format!("{}\u{0}{ns}", filler.id).as_bytes())[..24]
            )
        }
        _ => {
            let vaccine: Vec<&str> = order.vaccine.iter().map(|c| c.code.as_str()).collect();
            let date = order.administered.map(|d| d.to_hl7()).unwrap_or_default();
            let lots = order.lot_numbers.join(",");
            format!(
                "d{}",
                &short_hash(format!("{}\u{0}{date}\u{0}{lots}", vaccine.join(",")).as_bytes())
                    [..24]
            )
        }
    }
}

pub fn changes(
    au: &str,
    source: &str,
    message_id: &str,
    received_at: i64,
    orders: &[Order],
) -> Vec<DoseChange> {
    orders
        .iter()
        .map(|order| {
            let key = dose_key(order);
            match order.action {
                Action::Delete => DoseChange::Delete {
                    au: au.to_owned(),
                    dose_key: key,
                },
                Action::Add | Action::Update => DoseChange::Upsert(Box::new(SourceDose {
                    au: au.to_owned(),
                    dose_key: key,
                    source: source.to_owned(),
                    message_id: message_id.to_owned(),
                    received_at,
                    order: order.clone(),
                })),
            }
        })
        .fold(Vec::new(), |mut out: Vec<DoseChange>, change| {
            // One message naming the same dose twice (the same ORC-3, or no
            // ORC-3 and the same vaccine, date and lot) reports one dose:
            // its last mention wins, in the first one's place.
            let key = |c: &DoseChange| match c {
                DoseChange::Upsert(d) => d.dose_key.clone(),
                DoseChange::Delete { dose_key, .. } => dose_key.clone(),
            };
            let k = key(&change);
            match out.iter_mut().find(|c| key(c) == k) {
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

/// One immunization event in a person's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Immunization {
    /// Stable while its first source stays: the projection item's key.
    pub id: String,
    /// The most authoritative report: the administering provider's own
    /// (RXA-9 `00`) over a historical one, then the newest.
    pub order: Order,
    pub sources: Vec<DoseSource>,
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

/// Historical doses are remembered, not recorded on the day: a record of the
/// same vaccine group this close is taken for the same event.
const HISTORICAL_WINDOW_DAYS: i64 = 3;

fn is_historical(order: &Order) -> bool {
    matches!(order.administration, Administration::Historical(_))
}

fn same_event(groups: &VaccineGroups, a: &Order, b: &Order) -> bool {
    // A refusal is not a dose, nor is a dose not administered: only like
    // with like.
    if a.completion != b.completion {
        return false;
    }
    let (Some(da), Some(db)) = (a.administered, b.administered) else {
        return false;
    };
    let window = if is_historical(a) || is_historical(b) {
        HISTORICAL_WINDOW_DAYS
    } else {
        0
    };
    if (da.day_number() - db.day_number()).abs() > window {
        return false;
    }
    let ga = groups.groups(a);
    let gb = groups.groups(b);
    ga.iter().any(|g| gb.contains(g))
}

fn authority(dose: &SourceDose) -> (bool, i64) {
    (
        !is_historical(&dose.order) && dose.order.completion == CompletionStatus::Complete,
        dose.received_at,
    )
}

/// The person's history from every dose of every linked source.
pub fn consolidate(groups: &VaccineGroups, doses: &[SourceDose]) -> Vec<Immunization> {
    let mut sorted: Vec<&SourceDose> = doses.iter().collect();
    sorted.sort_by(|a, b| {
        (a.received_at, &a.au, &a.dose_key).cmp(&(b.received_at, &b.au, &b.dose_key))
    });
    let mut events: Vec<(Immunization, &SourceDose)> = Vec::new();
    for dose in sorted {
        let source = DoseSource {
            au: dose.au.clone(),
            source: dose.source.clone(),
            dose_key: dose.dose_key.clone(),
            message_id: dose.message_id.clone(),
        };
        // A chart is the authority on its own records: two doses one chart
        // lists separately stay two, however alike. Two charts (two clinics,
        // or one health system's two facilities) reporting alike are one.
        let found = events.iter_mut().find(|(imm, best)| {
            !imm.sources.iter().any(|s| s.source == dose.source)
                && same_event(groups, &best.order, &dose.order)
        });
        match found {
            Some((imm, best)) => {
                imm.sources.push(source);
                if authority(dose) > authority(best) {
                    *best = dose;
                    imm.order = dose.order.clone();
                }
            }
            None => {
                let id = short_hash(format!("{}\u{0}{}", dose.au, dose.dose_key).as_bytes())[..24]
                    .to_owned();
                events.push((
                    Immunization {
                        id,
                        order: dose.order.clone(),
                        sources: vec![source],
                    },
                    dose,
                ));
            }
        }
    }
    events.into_iter().map(|(imm, _)| imm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dose(
        source: &str,
        key: &str,
        cvx: &str,
        date: (u16, u8, u8),
        completion: &str,
        historical: bool,
    ) -> SourceDose {
        let administration = if historical {
            serde_json::json!({"kind": "historical", "source": "01"})
        } else {
            serde_json::json!({"kind": "new"})
        };
        let order: Order = serde_json::from_value(serde_json::json!({
            "rxa_segment": 1,
            "administered": {"year": date.0, "month": date.1, "day": date.2},
            "vaccine": [{"code": cvx, "system": "CVX"}],
            "administration": administration,
            "lot_numbers": [],
            "refusal_reasons": [],
            "completion": completion,
            "action": "add",
            "vis": [],
            "observations": [],
        }))
        .expect("an order");
        SourceDose {
            au: "au".into(),
            dose_key: key.into(),
            source: source.into(),
            message_id: "m".into(),
            received_at: 0,
            order,
        }
    }

    fn groups() -> VaccineGroups {
        VaccineGroups::parse("08\tHEPB\tHepB\n110\tDTAP,HEPB,POLIO\tPediarix\n20\tDTAP\tDTaP\n")
            .expect("table")
    }

    #[test]
    fn a_message_naming_one_dose_twice_changes_it_once_last_mention_winning() {
        let first = dose("chart-a", "k", "08", (2024, 5, 5), "complete", false).order;
        let mut again = dose("chart-a", "k", "08", (2024, 5, 5), "complete", false).order;
        again.lot_numbers = vec!["LOT2".into()];
        let other = dose("chart-a", "k", "20", (2024, 6, 6), "complete", false).order;
        // No ORC-3: the dose is named by vaccine, date and lot.
        let found = changes("au", "src", "m", 0, &[first.clone(), other, first]);
        assert_eq!(found.len(), 2, "{found:?}");
        let with_lot = changes("au", "src", "m", 0, &[again.clone(), again]);
        assert_eq!(with_lot.len(), 1);
    }

    #[test]
    fn one_event_per_group_and_date_across_charts_only() {
        let g = groups();
        let history = consolidate(
            &g,
            &[
                dose("chart-a", "1", "110", (2024, 5, 5), "complete", false),
                dose("chart-b", "9", "20", (2024, 5, 5), "complete", false),
                // The same chart listing two: kept as two.
                dose("chart-a", "2", "08", (2024, 5, 5), "complete", false),
            ],
        );
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].sources.len(), 2);
        // The administering clinic's record represents the event.
        assert_eq!(history[0].order.vaccine[0].code, "110");
    }

    #[test]
    fn refusals_and_doses_never_merge_and_history_allows_a_window() {
        let g = groups();
        let refused = consolidate(
            &g,
            &[
                dose("a", "1", "08", (2024, 5, 5), "refused", false),
                dose("b", "2", "08", (2024, 5, 5), "complete", false),
            ],
        );
        assert_eq!(refused.len(), 2);
        let remembered = consolidate(
            &g,
            &[
                dose("a", "1", "08", (2024, 5, 5), "complete", false),
                dose("b", "2", "08", (2024, 5, 7), "complete", true),
                dose("c", "3", "08", (2024, 5, 20), "complete", true),
            ],
        );
        assert_eq!(remembered.len(), 2);
        assert_eq!(remembered[0].sources.len(), 2);
    }
}
