//! Given-name equivalence from the project's nickname table
//! (`data/nicknames.tsv`): each line is one group, a canonical name and its
//! diminutives and variants. A name may belong to several groups (ALEX is
//! both ALEXANDER and ALEXANDRA).

use rustc_hash::FxHashMap;

/// The table shipped with the crate.
pub const BUILT_IN: &str = include_str!("../data/nicknames.tsv");

#[derive(Debug, Default)]
pub struct Nicknames {
    /// Folded name → the canonical names of its groups, sorted.
    groups: FxHashMap<String, Vec<String>>,
}

impl Nicknames {
    /// Reads the table format: `canonical<TAB>nick,nick,...`, `#` comments.
    pub fn parse(text: &str) -> Result<Nicknames, String> {
        let mut groups: FxHashMap<String, Vec<String>> = FxHashMap::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (canonical, nicks) = line.split_once('\t').ok_or_else(|| {
                format!("nicknames line {}: no TAB after the canonical name", n + 1)
            })?;
            let canonical = crate::text::letters(&crate::text::fold(canonical));
            if canonical.is_empty() {
                return Err(format!("nicknames line {}: empty canonical name", n + 1));
            }
            let members = std::iter::once(canonical.clone()).chain(
                nicks
                    .split(',')
                    .map(|nick| crate::text::letters(&crate::text::fold(nick)))
                    .filter(|nick| !nick.is_empty()),
            );
            for member in members {
                let entry = groups.entry(member).or_default();
                if !entry.contains(&canonical) {
                    entry.push(canonical.clone());
                }
            }
        }
        for canonicals in groups.values_mut() {
            canonicals.sort();
        }
        Ok(Nicknames { groups })
    }

    pub fn built_in() -> &'static Nicknames {
        static TABLE: std::sync::OnceLock<Nicknames> = std::sync::OnceLock::new();
        TABLE.get_or_init(|| Nicknames::parse(BUILT_IN).unwrap_or_default())
    }

    /// The canonical names a folded given name stands for (empty if unknown).
    pub fn canonicals(&self, name: &str) -> &[String] {
        self.groups.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// True for a name the table knows, as canonical or as nickname.
    pub fn knows(&self, name: &str) -> bool {
        self.groups.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_overlap_and_names_are_folded() {
        let t = Nicknames::parse(
            "# c\nalexander\talex,sasha\nalexandra\talex,lexi\nWilliam\tBill, billy\n",
        )
        .expect("parses");
        assert_eq!(t.canonicals("ALEX"), ["ALEXANDER", "ALEXANDRA"]);
        assert_eq!(t.canonicals("BILLY"), ["WILLIAM"]);
        assert_eq!(t.canonicals("WILLIAM"), ["WILLIAM"]);
        assert!(t.canonicals("ZED").is_empty());
        assert!(t.knows("SASHA") && !t.knows("ZED"));
        assert!(Nicknames::parse("no tab here\n").is_err());
    }

    #[test]
    fn built_in_table_loads() {
        let t = Nicknames::parse(BUILT_IN).expect("the shipped table parses");
        assert!(t.len() > 400, "{}", t.len());
    }
}
