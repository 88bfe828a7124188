//! The HL7 composite data types the views need (CE/CWE, CX, EI, XPN, XAD,
//! XTN, XCN), read from one repetition of a field.

use super::fields::Rep;
use serde::{Deserialize, Serialize};

/// A coded value (CE/CWE): code, text and the coding system it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coded {
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub system: Option<String>,
}

impl Coded {
    /// The primary triplet (components 1–3), else the alternate (4–6).
    pub(crate) fn read(r: &Rep<'_, '_>) -> Option<Coded> {
        Coded::triplet(r, 1).or_else(|| Coded::triplet(r, 4))
    }

    /// Both triplets, primary first: vaccines are often sent as CVX with an
    /// NDC alternate (or the reverse), and both are worth keeping.
    pub(crate) fn read_both(r: &Rep<'_, '_>) -> Vec<Coded> {
        [Coded::triplet(r, 1), Coded::triplet(r, 4)]
            .into_iter()
            .flatten()
            .collect()
    }

    fn triplet(r: &Rep<'_, '_>, first: u32) -> Option<Coded> {
        Some(Coded {
            code: r.text(first)?,
            text: r.text(first + 1),
            system: r.text(first + 2),
        })
    }

    pub fn is_system(&self, system: &str) -> bool {
        self.system
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(system))
    }
}

/// A person or record identifier (CX): the value, who assigned it, what kind it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifier {
    pub id: String,
    /// CX-4.1, the assigning authority's namespace id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub authority: Option<String>,
    /// CX-5, HL7 table 0203 (MR, SS, MA, PI, …).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub type_code: Option<String>,
}

impl Identifier {
    pub(crate) fn read(r: &Rep<'_, '_>) -> Option<Identifier> {
        Some(Identifier {
            id: r.text(1)?,
            authority: r.sub(4, 1),
            type_code: r.text(5),
        })
    }
}

/// An entity identifier (EI), as in ORC-2/ORC-3 order numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityId {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub namespace: Option<String>,
}

impl EntityId {
    pub(crate) fn read(r: &Rep<'_, '_>) -> Option<EntityId> {
        Some(EntityId {
            id: r.text(1)?,
            namespace: r.text(2),
        })
    }
}

/// A person's name (XPN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PersonName {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub given: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub middle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub suffix: Option<String>,
    /// XPN-7, HL7 table 0200: L legal, A alias, M maiden, …
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name_type: Option<String>,
}

impl PersonName {
    pub(crate) fn read(r: &Rep<'_, '_>) -> Option<PersonName> {
        let n = PersonName {
            family: r.sub(1, 1),
            given: r.text(2),
            middle: r.text(3),
            suffix: r.text(4),
            name_type: r.text(7),
        };
        (n.family.is_some() || n.given.is_some()).then_some(n)
    }

    /// Whether this is the legal name (XPN-7 `L`, or no type given).
    pub fn is_legal(&self) -> bool {
        self.name_type.as_deref().is_none_or(|t| t == "L")
    }
}

/// A postal address (XAD).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Address {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub other: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub zip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub country: Option<String>,
    /// XAD-7, HL7 table 0190: P permanent, M mailing, BDL birth delivery, …
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub address_type: Option<String>,
    /// XAD-9, county/parish code.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub county: Option<String>,
}

impl Address {
    pub(crate) fn read(r: &Rep<'_, '_>) -> Option<Address> {
        let a = Address {
            street: r.sub(1, 1),
            other: r.text(2),
            city: r.text(3),
            state: r.text(4),
            zip: r.text(5),
            country: r.text(6),
            address_type: r.text(7),
            county: r.text(9),
        };
        (a != Address::default()).then_some(a)
    }
}

/// A telephone number or e-mail address (XTN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Phone {
    /// XTN-2, HL7 table 0201: PRN primary residence, ORN other, WPN work, NET e-mail.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub use_code: Option<String>,
    /// XTN-3, HL7 table 0202: PH, CP, FX, Internet, …
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub equipment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub area_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub local_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub extension: Option<String>,
}

impl Phone {
    pub(crate) fn read(r: &Rep<'_, '_>) -> Option<Phone> {
        let p = Phone {
            use_code: r.text(2),
            equipment: r.text(3),
            email: r.text(4),
            area_code: r.text(6),
            local_number: r.text(7),
            extension: r.text(8),
            // XTN-1 (the unformatted number) is deprecated in 2.5.1 but still
            // sent by older systems: keep it when nothing else carries the number.
        };
        let p = match (&p.local_number, r.text(1)) {
            (None, Some(legacy)) => Phone {
                local_number: Some(legacy),
                ..p
            },
            _ => p,
        };
        (p.local_number.is_some() || p.email.is_some()).then_some(p)
    }

    /// The number as digits only (area code + local number), for matching.
    pub fn digits(&self) -> String {
        let mut s = String::new();
        for part in [&self.area_code, &self.local_number].into_iter().flatten() {
            s.extend(part.chars().filter(char::is_ascii_digit));
        }
        s
    }
}

/// A person in a role (XCN): ordering, entering or administering provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Provider {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub given: Option<String>,
    /// XCN-9.1, who assigned the id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub authority: Option<String>,
    /// XCN-13, HL7 table 0203 (MD, RN, PRN, …).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub type_code: Option<String>,
}

impl Provider {
    pub(crate) fn read(r: &Rep<'_, '_>) -> Option<Provider> {
        let p = Provider {
            id: r.text(1),
            family: r.sub(2, 1),
            given: r.text(3),
            authority: r.sub(9, 1),
            type_code: r.text(13),
        };
        (p.id.is_some() || p.family.is_some()).then_some(p)
    }
}
