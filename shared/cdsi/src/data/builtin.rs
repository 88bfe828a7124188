//! The vendored CDC supporting data release 4.64 (`data/4.64/`), compiled
//! into the crate and parsed once on first use, so that callers have a
//! default without any file at run time.

use std::sync::OnceLock;

use super::{load, LoadError, SupportingData};

/// The release the built-in files are.
pub const BUILTIN_VERSION: &str = "4.64";

const SCHEDULE: (&str, &str) = (
    "ScheduleSupportingData.xml",
    include_str!("../../data/4.64/ScheduleSupportingData.xml"),
);

const ANTIGENS: &[(&str, &str)] = &[
    (
        "AntigenSupportingData- COVID-19-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- COVID-19-508.xml"),
    ),
    (
        "AntigenSupportingData- Chikungunya-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Chikungunya-508.xml"),
    ),
    (
        "AntigenSupportingData- Cholera-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Cholera-508.xml"),
    ),
    (
        "AntigenSupportingData- Dengue-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Dengue-508.xml"),
    ),
    (
        "AntigenSupportingData- Diphtheria-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Diphtheria-508.xml"),
    ),
    (
        "AntigenSupportingData- Ebola-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Ebola-508.xml"),
    ),
    (
        "AntigenSupportingData- HPV-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- HPV-508.xml"),
    ),
    (
        "AntigenSupportingData- HepA-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- HepA-508.xml"),
    ),
    (
        "AntigenSupportingData- HepB-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- HepB-508.xml"),
    ),
    (
        "AntigenSupportingData- Hib-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Hib-508.xml"),
    ),
    (
        "AntigenSupportingData- Influenza-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Influenza-508.xml"),
    ),
    (
        "AntigenSupportingData- JE-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- JE-508.xml"),
    ),
    (
        "AntigenSupportingData- Measles-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Measles-508.xml"),
    ),
    (
        "AntigenSupportingData- Meningococcal B-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Meningococcal B-508.xml"),
    ),
    (
        "AntigenSupportingData- Meningococcal-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Meningococcal-508.xml"),
    ),
    (
        "AntigenSupportingData- Mumps-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Mumps-508.xml"),
    ),
    (
        "AntigenSupportingData- Orthopoxvirus-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Orthopoxvirus-508.xml"),
    ),
    (
        "AntigenSupportingData- Pertussis-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Pertussis-508.xml"),
    ),
    (
        "AntigenSupportingData- Pneumococcal-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Pneumococcal-508.xml"),
    ),
    (
        "AntigenSupportingData- Polio-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Polio-508.xml"),
    ),
    (
        "AntigenSupportingData- RSV-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- RSV-508.xml"),
    ),
    (
        "AntigenSupportingData- Rabies-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Rabies-508.xml"),
    ),
    (
        "AntigenSupportingData- Rotavirus-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Rotavirus-508.xml"),
    ),
    (
        "AntigenSupportingData- Rubella-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Rubella-508.xml"),
    ),
    (
        "AntigenSupportingData- TBE-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- TBE-508.xml"),
    ),
    (
        "AntigenSupportingData- Tetanus-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Tetanus-508.xml"),
    ),
    (
        "AntigenSupportingData- Typhoid-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Typhoid-508.xml"),
    ),
    (
        "AntigenSupportingData- Varicella-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Varicella-508.xml"),
    ),
    (
        "AntigenSupportingData- YF-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- YF-508.xml"),
    ),
    (
        "AntigenSupportingData- Zoster-508.xml",
        include_str!("../../data/4.64/AntigenSupportingData- Zoster-508.xml"),
    ),
];

/// The built-in release 4.64, parsed on the first call. The files are
/// constant, so an error here means the vendored copy was damaged; it is
/// returned rather than panicking.
pub fn builtin() -> Result<&'static SupportingData, LoadError> {
    static DATA: OnceLock<Result<SupportingData, LoadError>> = OnceLock::new();
    DATA.get_or_init(|| load(BUILTIN_VERSION, SCHEDULE, ANTIGENS.iter().copied()))
        .as_ref()
        .map_err(Clone::clone)
}
