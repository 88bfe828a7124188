//! A person's consolidated demographics: field by field, the newest report
//! wins; `""` (HL7 null) clears a stored value; a field not sent changes nothing.

use iz::view::{Address, Coded, NextOfKin, PersonName, Phone, Value};
use iz::{Date, Vxu};
use serde::{Deserialize, Serialize};

use super::source::legal_name_at;

/// One field's current value, when it was reported and by which source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stamped<T> {
    pub value: Option<T>,
    /// Arrival time of the message that set (or cleared) it, epoch ms.
    pub at: i64,
    pub source: String,
}

impl<T> Default for Stamped<T> {
    fn default() -> Self {
        Stamped {
            value: None,
            at: i64::MIN,
            source: String::new(),
        }
    }
}

impl<T: Clone> Stamped<T> {
    /// Takes the other source's value when it is at least as new.
    fn merge(&mut self, other: &Stamped<T>) {
        if other.at >= self.at && other.at != i64::MIN {
            *self = other.clone();
        }
    }

    /// Applies one report. An older report than the one stored loses, so
    /// messages processed out of order still end with the newest data.
    fn apply(&mut self, reported: &Value<T>, at: i64, source: &str) {
        if at < self.at {
            return;
        }
        match reported {
            Value::Absent => {}
            Value::Null => {
                *self = Stamped {
                    value: None,
                    at,
                    source: source.to_owned(),
                }
            }
            Value::Present(v) => {
                *self = Stamped {
                    value: Some(v.clone()),
                    at,
                    source: source.to_owned(),
                }
            }
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Demographics {
    pub name: Stamped<PersonName>,
    pub other_names: Stamped<Vec<PersonName>>,
    pub mother_maiden_name: Stamped<PersonName>,
    pub birth_date: Stamped<Date>,
    pub sex: Stamped<String>,
    pub races: Stamped<Vec<Coded>>,
    pub ethnicity: Stamped<Vec<Coded>>,
    pub addresses: Stamped<Vec<Address>>,
    pub phones: Stamped<Vec<Phone>>,
    pub multiple_birth: Stamped<bool>,
    pub birth_order: Stamped<u32>,
    pub death_date: Stamped<Date>,
    pub deceased: Stamped<bool>,
    /// PD1-12: the patient asked that the record not be shared.
    pub protected: Stamped<bool>,
    pub publicity: Stamped<Coded>,
    pub next_of_kin: Stamped<Vec<NextOfKin>>,
}

macro_rules! each_field {
    ($m:ident, $self:ident, $other:ident) => {
        $self.name.$m(&$other.name);
        $self.other_names.$m(&$other.other_names);
        $self.mother_maiden_name.$m(&$other.mother_maiden_name);
        $self.birth_date.$m(&$other.birth_date);
        $self.sex.$m(&$other.sex);
        $self.races.$m(&$other.races);
        $self.ethnicity.$m(&$other.ethnicity);
        $self.addresses.$m(&$other.addresses);
        $self.phones.$m(&$other.phones);
        $self.multiple_birth.$m(&$other.multiple_birth);
        $self.birth_order.$m(&$other.birth_order);
        $self.death_date.$m(&$other.death_date);
        $self.deceased.$m(&$other.deceased);
        $self.protected.$m(&$other.protected);
        $self.publicity.$m(&$other.publicity);
        $self.next_of_kin.$m(&$other.next_of_kin);
    };
}

/// A legal name with a given name somebody chose (not BABY GIRL, not
/// blank).
fn chosen(name: &Stamped<PersonName>) -> bool {
    name.value
        .as_ref()
        .and_then(|n| n.given.as_deref())
        .is_some_and(|g| !g.trim().is_empty() && !matching::normalize::is_placeholder_given(g))
}

impl Demographics {
    /// A person's demographics from its sources': field by field, the
    /// newest; but a chosen name is never replaced by a placeholder one
    /// (another clinic's newborn record "BABY GIRL" reported after the
    /// child was named).
    pub fn merge(&mut self, other: &Demographics) {
        let before = self.name.clone();
        each_field!(merge, self, other);
        if !chosen(&self.name) {
            if chosen(&before) {
                self.name = before;
            } else if chosen(&other.name) {
                self.name = other.name.clone();
            }
        }
    }

    /// Folds one VXU's PID/PD1/NK1 into the consolidated record.
    pub fn apply(&mut self, vxu: &Vxu, at: i64, source: &str) {
        let p = &vxu.patient;
        // PID-5 is a required field without an HL7 null: a name sent is a value.
        let legal_at = legal_name_at(&p.names);
        let legal: Value<PersonName> = legal_at
            .map(|i| p.names[i].clone())
            .map_or(Value::Absent, Value::Present);
        self.name.apply(&legal, at, source);
        let others: Vec<PersonName> = p
            .names
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != legal_at)
            .map(|(_, n)| n.clone())
            .collect();
        let others = if others.is_empty() {
            Value::Absent
        } else {
            Value::Present(others)
        };
        self.other_names.apply(&others, at, source);
        self.mother_maiden_name
            .apply(&p.mother_maiden_name, at, source);
        self.birth_date.apply(&p.birth_date, at, source);
        self.sex.apply(&p.sex, at, source);
        self.races.apply(&p.races, at, source);
        self.ethnicity.apply(&p.ethnicity, at, source);
        self.addresses.apply(&p.addresses, at, source);
        self.phones.apply(&p.phones, at, source);
        self.multiple_birth.apply(&p.multiple_birth, at, source);
        self.birth_order.apply(&p.birth_order, at, source);
        self.death_date.apply(&p.death_date, at, source);
        self.deceased.apply(&p.deceased, at, source);
        self.protected.apply(&p.protected, at, source);
        self.publicity.apply(&p.publicity, at, source);
        let kin = if p.next_of_kin.is_empty() {
            Value::Absent
        } else {
            Value::Present(p.next_of_kin.clone())
        };
        self.next_of_kin.apply(&kin, at, source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(given: &str, at: i64, source: &str) -> Demographics {
        Demographics {
            name: Stamped {
                value: Some(PersonName {
                    family: Some("Jones".into()),
                    given: Some(given.into()),
                    ..PersonName::default()
                }),
                at,
                source: source.into(),
            },
            ..Demographics::default()
        }
    }

    fn given(d: &Demographics) -> &str {
        d.name.value.as_ref().unwrap().given.as_deref().unwrap()
    }

    #[test]
    fn a_placeholder_name_never_replaces_a_chosen_one_whatever_the_order() {
        // Katherine first, a newer "BABY GIRL" from another clinic: Katherine stays.
        let mut person = Demographics::default();
        person.merge(&named("Katherine", 1, "a"));
        person.merge(&named("Baby Girl", 2, "b"));
        assert_eq!(given(&person), "Katherine");
        // The other order: the chosen name wins even though older.
        let mut person = Demographics::default();
        person.merge(&named("BABY GIRL", 2, "b"));
        person.merge(&named("Katherine", 1, "a"));
        assert_eq!(given(&person), "Katherine");
        // Two chosen names: the newest, as for every field.
        let mut person = Demographics::default();
        person.merge(&named("Katherine", 1, "a"));
        person.merge(&named("Kate", 2, "b"));
        assert_eq!(given(&person), "Kate");
        // Only placeholders: the newest placeholder.
        let mut person = Demographics::default();
        person.merge(&named("Baby Girl", 1, "a"));
        person.merge(&named("Infant", 2, "b"));
        assert_eq!(given(&person), "Infant");
    }
}
