//! CDC Clinical Decision Support for Immunization (CDSi): evaluation of an
//! immunization history and forecast of the next doses, per the CDSi Logic
//! Specification v4.6 over CDC's supporting data (built in: release 4.64).
//!
//! Pure: no I/O, no async, no global state besides the once-parsed built-in
//! supporting data.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cases;
pub mod data;
pub mod dates;
mod engine;
mod evaluate;
mod forecast;
mod history;
pub mod model;
mod relevant;
mod select;
mod skip;
mod vaccine_group;

pub use data::{builtin, load, load_dir, LoadError, SupportingData};
pub use dates::{Date, Duration};
pub use engine::assess;
pub use model::*;

#[cfg(test)]
mod tests {
    #[test]
    fn the_builtin_release_loads() {
        let data = crate::builtin().unwrap();
        assert_eq!(data.version, "4.64");
        assert_eq!(data.antigens.len(), 30);
        assert_eq!(data.vaccine_groups.len(), 26);
        let dtap = data.vaccine_group("DTaP/Tdap/Td").unwrap();
        assert_eq!(dtap.antigens, ["Diphtheria", "Pertussis", "Tetanus"]);
        assert!(!dtap.administer_full_vaccine_group);
        assert!(
            data.vaccine_group("MMR")
                .unwrap()
                .administer_full_vaccine_group
        );
        assert!(data.cvx_map[&3].associations.len() == 3);
        let cvx = |group: &str| data.vaccine_group(group).unwrap().vaccine_type;
        assert_eq!(cvx("DTaP/Tdap/Td"), Some(107));
        assert_eq!(cvx("MMR"), Some(3));
        assert_eq!(cvx("HepA"), Some(85));
        assert_eq!(cvx("Polio"), Some(89));
        assert_eq!(cvx("Influenza"), Some(88));
        assert!(data.vaccine_groups.iter().all(|g| g.vaccine_type.is_some()));
    }

    #[test]
    fn forecast_reasons_read_as_they_serialise() {
        use crate::model::ForecastReason::*;
        for r in [
            SeriesComplete,
            NotRecommendedPastHistory,
            EvidenceOfImmunity,
            Contraindication,
            PastSeasonalEnd,
            ExceededMaximumAge,
            UnableToFinish,
        ] {
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
    }
}
