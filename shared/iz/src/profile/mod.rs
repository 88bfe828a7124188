//! The CDC IG R1.5 as NIST's machine-readable conformance profiles.
//!
//! The XML (vendored verbatim under `profiles/`) is parsed once per profile on
//! first use, so usage, cardinality, lengths, bindings, predicates and the IZ-nn
//! conformance statements all come from the published tables, never from code.

mod expr;
mod load;
mod memo;
mod model;
mod supplement;

pub use expr::{Expr, Op, Path, PathStep};
pub use memo::MEMO_SLOTS;
pub use model::*;
pub use supplement::{install_code_supplement, SupplementError};

use std::sync::OnceLock;

/// The eight message profiles of the guide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileId {
    /// VXU^V04 Send Immunization History.
    Z22,
    /// ACK^V04 acknowledgement.
    Z23,
    /// RSP^K11 list of candidates.
    Z31,
    /// RSP^K11 complete immunization history.
    Z32,
    /// RSP^K11 no person records (not found, too many, error).
    Z33,
    /// QBP^Q11 request complete immunization history.
    Z34,
    /// RSP^K11 evaluated history and forecast.
    Z42,
    /// QBP^Q11 request evaluated history and forecast.
    Z44,
}

impl ProfileId {
    pub const ALL: [ProfileId; 8] = [
        ProfileId::Z22,
        ProfileId::Z23,
        ProfileId::Z31,
        ProfileId::Z32,
        ProfileId::Z33,
        ProfileId::Z34,
        ProfileId::Z42,
        ProfileId::Z44,
    ];

    pub fn code(self) -> &'static str {
        match self {
            ProfileId::Z22 => "Z22",
            ProfileId::Z23 => "Z23",
            ProfileId::Z31 => "Z31",
            ProfileId::Z32 => "Z32",
            ProfileId::Z33 => "Z33",
            ProfileId::Z34 => "Z34",
            ProfileId::Z42 => "Z42",
            ProfileId::Z44 => "Z44",
        }
    }

    pub fn from_code(code: &str) -> Option<ProfileId> {
        ProfileId::ALL.into_iter().find(|p| p.code() == code.trim())
    }

    /// The profile's three XML files (profile, constraints, value sets),
    /// LZ4-compressed by `build.rs`.
    fn sources(self) -> (&'static [u8], &'static [u8], &'static [u8]) {
        macro_rules! files {
            ($name:literal) => {
                (
                    include_bytes!(concat!(env!("OUT_DIR"), "/", $name, "_Profile.xml.lz4")),
                    include_bytes!(concat!(env!("OUT_DIR"), "/", $name, "_Constraints.xml.lz4")),
                    include_bytes!(concat!(
                        env!("OUT_DIR"),
                        "/",
                        $name,
                        "_ValueSetLibrary.xml.lz4"
                    )),
                )
            };
        }
        match self {
            ProfileId::Z22 => files!("VXU-Z22"),
            ProfileId::Z23 => files!("ACK-Z23"),
            ProfileId::Z31 => files!("RSP-Z31"),
            ProfileId::Z32 => files!("RSP-Z32"),
            ProfileId::Z33 => files!("RSP-Z33"),
            ProfileId::Z34 => files!("QBP-Z34"),
            ProfileId::Z42 => files!("RSP-Z42"),
            ProfileId::Z44 => files!("QBP-Z44"),
        }
    }
}

/// One vendored XML file, decompressed.
fn unpack(packed: &[u8]) -> Result<String, String> {
    let bytes = lz4_flex::block::decompress_size_prepended(packed).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// The loaded profile for `id`, parsed on first use and shared afterwards.
///
/// The vendored XML is checked by tests, so a load failure is a build defect;
/// it is reported with the file and reason rather than hidden.
pub fn profile(id: ProfileId) -> &'static Profile {
    static CELLS: [OnceLock<Profile>; 8] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let i = ProfileId::ALL.iter().position(|p| *p == id).unwrap_or(0);
    CELLS[i].get_or_init(|| {
        supplement::mark_profiles_loaded();
        let (p, c, v) = id.sources();
        let loaded = unpack(p).and_then(|p| {
            let c = unpack(c)?;
            let v = unpack(v)?;
            load::load(id, &p, &c, &v)
        });
        match loaded {
            Ok(profile) => profile,
            Err(e) => panic!("vendored NIST profile {} is unreadable: {e}", id.code()),
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_loads_with_its_tables() {
        for id in ProfileId::ALL {
            let p = profile(id);
            assert!(!p.message.children.is_empty(), "{id:?} structure");
            assert!(p.segments.len() >= 3, "{id:?} segments");
            assert!(p.datatypes.len() >= 10, "{id:?} datatypes");
            assert!(p.value_sets.len() >= 20, "{id:?} value sets");
            let constraints: usize = p.segment_rules.values().map(|r| r.constraints.len()).sum();
            assert!(constraints > 0, "{id:?} constraints");
        }
    }

    #[test]
    fn vxu_tables_match_the_guide() {
        let p = profile(ProfileId::Z22);
        assert_eq!(p.message.message_type, "VXU");
        assert_eq!(p.message.event, "V04");
        let rxa = p.segment_def("RXA_IZ 1_5_Z22").expect("RXA");
        assert_eq!(rxa.fields[4].usage, Usage::R);
        assert_eq!(rxa.fields[4].binding, vec!["CVX", "NDC_Use", "NDC_Sale"]);
        assert!(p.value_set("CVX").expect("CVX").codes.contains("08"));
        let order =
            p.message.children.iter().find(
                |n| matches!(n, StructureNode::Group { name, .. } if name == "VXU_V04.ORDER"),
            );
        assert!(order.is_some());
        let rxa_rules = p.segment_rules("RXA_IZ 1_5_Z22").expect("RXA rules");
        assert!(rxa_rules.constraints.iter().any(|c| c.id == "IZ-47"));
    }

    #[test]
    fn vendored_profiles_match_their_recorded_checksums() {
        // The repository's verbatim copy is the truth: every file of it must
        // still have the SHA-256 recorded when it was copied
        // (`profiles/nist-iz-r1.5.sha256`, the format of `sha256sum -c`), and
        // nothing may have been added beside them.
        use sha2::{Digest, Sha256};
        let profiles = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let sums = std::fs::read_to_string(profiles.join("nist-iz-r1.5.sha256"))
            .expect("the recorded checksums");
        let ours = profiles.join("nist-iz-r1.5");
        let mut listed = std::collections::BTreeSet::new();
        for line in sums.lines().filter(|l| !l.trim().is_empty()) {
            let (want, name) = line.split_once("  ").expect("`<sha256>  <file>` lines");
            let bytes = std::fs::read(ours.join(name)).expect("a listed profile file");
            let got: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(
                got, want,
                "vendored {name:?} differs from its recorded checksum"
            );
            listed.insert(name.to_owned());
        }
        for e in std::fs::read_dir(&ours)
            .expect("the vendored profiles")
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(listed.contains(&name), "{name:?} has no recorded checksum");
        }
        let compared = listed.len();
        assert!(compared >= 24);
    }
}
