//! Organise immunization history (logic specification 4.2): each vaccine
//! dose administered becomes one antigen administered record per antigen it
//! carries, honouring the CVX map's association ages, sorted by date.

use crate::data::{Cvx, SupportingData};
use crate::dates::Date;
use crate::model::AssessmentRequest;

/// One antigen administered record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    /// Index of the dose in the request.
    pub dose_index: usize,
    pub date: Date,
    pub cvx: Cvx,
}

/// Records per antigen, indexed like `data.antigens`, each in date order.
/// Doses whose CVX the supporting data does not know carry no antigen and
/// are left out (they cannot count for any series).
pub(crate) fn organize(data: &SupportingData, request: &AssessmentRequest) -> Vec<Vec<Record>> {
    let dob = request.patient.date_of_birth;
    let mut out = vec![Vec::new(); data.antigens.len()];
    for (dose_index, dose) in request.doses.iter().enumerate() {
        let Some(map) = data.cvx_map.get(&dose.cvx) else {
            continue;
        };
        for association in &map.associations {
            let begins = association
                .begin_age
                .is_none_or(|a| dob.plus(a) <= dose.date);
            let ends = association.end_age.is_none_or(|a| dose.date < dob.plus(a));
            if !(begins && ends) {
                continue;
            }
            if let Some(i) = data
                .antigens
                .iter()
                .position(|a| a.name == association.antigen)
            {
                // One record per antigen even if the map repeats it.
                if !out[i].iter().any(|r: &Record| r.dose_index == dose_index) {
                    out[i].push(Record {
                        dose_index,
                        date: dose.date,
                        cvx: dose.cvx,
                    });
                }
            }
        }
    }
    for records in &mut out {
        // Stable: same-day doses keep the order they were given in.
        records.sort_by_key(|r| r.date);
    }
    out
}
