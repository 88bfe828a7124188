//! The QBP^Q11 view (Z34 history, Z44 evaluated history and forecast): the
//! query parameters in QPD and the requested limit in RCP.

use super::fields::{date, yes_no, Fields};
use super::types::{Address, Identifier, PersonName, Phone};
use super::vxu::Header;
use crate::datetime::Date;
use crate::validate::Validation;
use hl7::Message;
use serde::{Deserialize, Serialize};

/// A patient query, as far as it survived validation. Queries never update
/// anything, so there is no "clear this value" here: a `""` reads as not sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Query {
    pub header: Header,
    /// QPD-1.1: `Z34` or `Z44`.
    pub query_name: Option<String>,
    /// QPD-2, echoed in QAK-1 and the answer's QPD.
    pub query_tag: Option<String>,
    /// QPD-3
    pub identifiers: Vec<Identifier>,
    /// QPD-4
    pub name: Option<PersonName>,
    /// QPD-5
    pub mother_maiden_name: Option<PersonName>,
    /// QPD-6
    pub birth_date: Option<Date>,
    /// QPD-7
    pub sex: Option<String>,
    /// QPD-8
    pub address: Option<Address>,
    /// QPD-9
    pub phone: Option<Phone>,
    /// QPD-10
    pub multiple_birth: Option<bool>,
    /// QPD-11
    pub birth_order: Option<u32>,
    /// RCP-2.1: the most candidates the requester will take in a Z31.
    pub limit: Option<u32>,
}

/// Builds the view of a QBP from the message and its validation.
pub fn query(msg: &Message<'_>, validation: &Validation) -> Query {
    let f = Fields::new(msg, validation);
    let mut q = Query {
        header: Header::read(&f),
        ..Query::default()
    };
    if let Some(qpd) = f.top_level("QPD").into_iter().next() {
        let one = |field: u32| qpd.rep(field, 1);
        q.query_name = qpd.text(1);
        q.query_tag = qpd.text(2);
        q.identifiers = qpd.reps(3).iter().filter_map(Identifier::read).collect();
        q.name = one(4).as_ref().and_then(PersonName::read);
        q.mother_maiden_name = one(5).as_ref().and_then(PersonName::read);
        q.birth_date = one(6).as_ref().and_then(date);
        q.sex = qpd.text(7);
        q.address = one(8).as_ref().and_then(Address::read);
        q.phone = one(9).as_ref().and_then(Phone::read);
        q.multiple_birth = one(10).as_ref().and_then(yes_no);
        q.birth_order = qpd.text(11).and_then(|s| s.parse().ok());
    }
    if let Some(rcp) = f.top_level("RCP").into_iter().next() {
        q.limit = rcp.text(2).and_then(|s| s.parse().ok());
    }
    q
}
