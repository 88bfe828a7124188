//! Typed, validated views of what a message says, for the rest of the IIS.
//!
//! A view only ever shows what survived validation: an element the Table 3-1
//! cascade emptied, or a segment it dropped, reads as if it had not been sent.
//! HL7's two kinds of "nothing" are kept apart, because an update means
//! different things with each: an empty field ("no change", [`Value::Absent`])
//! and the null `""` ("delete what you hold", [`Value::Null`]).

mod fields;
mod qbp;
mod types;
mod vxu;

pub use qbp::{query, Query};
pub use types::{Address, Coded, EntityId, Identifier, PersonName, Phone, Provider};
pub use vxu::{
    vxu, Action, Administration, CompletionStatus, Header, NextOfKin, Observation, Order, Patient,
    VisDocument, Vxu,
};

use serde::{Deserialize, Serialize};

/// One element of an update, as HL7 distinguishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Value<T> {
    /// Not sent: keep whatever is stored.
    #[default]
    Absent,
    /// Sent as `""`: clear the stored value.
    Null,
    Present(T),
}

impl<T> Value<T> {
    pub fn present(&self) -> Option<&T> {
        match self {
            Value::Present(v) => Some(v),
            _ => None,
        }
    }

    pub fn into_present(self) -> Option<T> {
        match self {
            Value::Present(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, Value::Absent)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Value<U> {
        match self {
            Value::Absent => Value::Absent,
            Value::Null => Value::Null,
            Value::Present(v) => Value::Present(f(v)),
        }
    }
}
