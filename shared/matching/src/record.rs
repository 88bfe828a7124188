//! The patient record as matching sees it, in the JSON-lines shape of the
//! `iisbulk matching` commands; the registry builds the same from a VXU's PID.

use serde::{Deserialize, Serialize};

/// One patient as reported by one source. Every field but `id` is optional:
/// an absent field is evidence of nothing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientRecord {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Other names the patient is or was known by (PID-5 repetitions of type
    /// alias or maiden, a hyphenated part): a bare string is a family name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<Alias>,
    /// `YYYY-MM-DD` (also accepted: `YYYYMMDD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    /// `F`, `M` or `U`; anything else counts as unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<RecordIdentifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mothers_maiden_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_birth: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_order: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardian_given: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardian_family: Option<String>,
}

/// Another name: `"Hastings"` (family only) or `{"given": .., "family": ..}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Alias {
    Family(String),
    Name {
        #[serde(default)]
        given: Option<String>,
        #[serde(default)]
        family: Option<String>,
    },
}

/// A patient identifier with its assigning authority (`system`) and type
/// (`MR`, `MA`, ...). Identifiers only agree or conflict within one
/// system and type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordIdentifier {
    #[serde(default)]
    pub system: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    pub value: String,
}
