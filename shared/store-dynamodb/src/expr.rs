//! Condition and update expressions.
//!
//! Expired items must behave as absent, as on the embedded backend, but
//! DynamoDB deletes them up to days late, so every condition also tests `ttl`
//! against the request's clock:
//!
//! | condition    | expression                                                     |
//! |--------------|----------------------------------------------------------------|
//! | `Absent`     | `attribute_not_exists(pk) OR ttl <= :now`                       |
//! | `Exists`     | `attribute_exists(pk) AND (attribute_not_exists(ttl) OR ttl > :now)` |
//! | `Version(n)` | `v = :n AND (attribute_not_exists(ttl) OR ttl > :now)`          |
//!
//! A put is an `UpdateItem` (not `PutItem`) so the version increments
//! atomically on the server with no read first; absent attributes are
//! `REMOVE`d so the update replaces the whole item.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use store::{Condition, Item, SkRange};

use crate::attrs::{b, n, s, DATA, GSI1PK, GSI1SK, GSI2PK, GSI2SK, PK, TTL, VERSION};

/// Placeholders used by one request's expressions.
#[derive(Debug, Default)]
pub struct Expr {
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl Expr {
    /// `#attr`, registered.
    pub fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    /// `:label`, registered with `value`.
    pub fn value(&mut self, label: &str, value: AttributeValue) -> String {
        let placeholder = format!(":{label}");
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// `None` when empty (DynamoDB rejects empty maps).
    pub fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    /// `None` when empty (DynamoDB rejects empty maps).
    pub fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }

    /// `(attribute_not_exists(ttl) OR ttl > :now)`
    pub fn alive(&mut self, now: i64) -> String {
        let ttl = self.name(TTL);
        let now = self.value("now", n(now));
        format!("(attribute_not_exists({ttl}) OR {ttl} > {now})")
    }

    /// The condition expression for `cond`, `None` for `Condition::None`.
    pub fn condition(&mut self, cond: Condition, now: i64) -> Option<String> {
        match cond {
            Condition::None => None,
            Condition::Absent => {
                let pk = self.name(PK);
                let ttl = self.name(TTL);
                let now = self.value("now", n(now));
                Some(format!("attribute_not_exists({pk}) OR {ttl} <= {now}"))
            }
            Condition::Exists => {
                let pk = self.name(PK);
                let alive = self.alive(now);
                Some(format!("attribute_exists({pk}) AND {alive}"))
            }
            Condition::Version(v) => {
                let ver = self.name(VERSION);
                let expected = self.value("expected", n(v));
                let alive = self.alive(now);
                Some(format!("{ver} = {expected} AND {alive}"))
            }
        }
    }

    /// `KeyConditionExpression` for partition `pk` and sort-key `range` on the
    /// index whose key attributes are `pk_attr`/`sk_attr`. An empty prefix
    /// means no sort-key condition (DynamoDB rejects empty strings there).
    pub fn key_condition(
        &mut self,
        pk_attr: &str,
        sk_attr: &str,
        pk: &str,
        range: &SkRange,
    ) -> String {
        let kp = self.name(pk_attr);
        let kv = self.value("kp", s(pk));
        let mut out = format!("{kp} = {kv}");
        let clause = match range {
            SkRange::All => None,
            SkRange::Prefix(p) if p.is_empty() => None,
            SkRange::Prefix(p) => {
                let ks = self.name(sk_attr);
                let a = self.value("a", s(p));
                Some(format!("begins_with({ks}, {a})"))
            }
            SkRange::Between(lo, hi) => {
                let ks = self.name(sk_attr);
                let a = self.value("a", s(lo));
                let b = self.value("b", s(hi));
                Some(format!("{ks} BETWEEN {a} AND {b}"))
            }
            SkRange::From(lo) => {
                let ks = self.name(sk_attr);
                let a = self.value("a", s(lo));
                Some(format!("{ks} >= {a}"))
            }
        };
        if let Some(clause) = clause {
            out.push_str(" AND ");
            out.push_str(&clause);
        }
        out
    }

    /// A condition that always holds, for `ConditionCheck` with `Condition::None`.
    pub fn always(&mut self) -> String {
        let pk = self.name(PK);
        format!("attribute_exists({pk}) OR attribute_not_exists({pk})")
    }

    /// The update expression writing `item` under `cond`, and the version it
    /// will get when the backend can tell in advance.
    pub fn put(&mut self, item: &Item, cond: Condition) -> (String, Option<u64>) {
        let mut set = Vec::new();
        let mut remove = Vec::new();
        let ver = self.name(VERSION);
        let known = match cond {
            Condition::Absent => {
                let one = self.value("one", n(1));
                set.push(format!("{ver} = {one}"));
                Some(1)
            }
            Condition::Version(v) => {
                let next = v.saturating_add(1);
                let nv = self.value("next", n(next));
                set.push(format!("{ver} = {nv}"));
                Some(next)
            }
            Condition::None | Condition::Exists => {
                let zero = self.value("zero", n(0));
                let one = self.value("one", n(1));
                set.push(format!("{ver} = if_not_exists({ver}, {zero}) + {one}"));
                None
            }
        };
        let mut attr = |this: &mut Self, name: &str, value: Option<AttributeValue>| {
            let placeholder = this.name(name);
            match value {
                Some(v) => {
                    let val = this.value(name, v);
                    set.push(format!("{placeholder} = {val}"));
                }
                None => remove.push(placeholder),
            }
        };
        attr(self, DATA, (!item.data.is_empty()).then(|| b(&item.data)));
        attr(self, GSI1PK, item.gsi1.as_ref().map(|k| s(&k.pk)));
        attr(self, GSI1SK, item.gsi1.as_ref().map(|k| s(&k.sk)));
        attr(self, GSI2PK, item.gsi2.as_ref().map(|k| s(&k.pk)));
        attr(self, GSI2SK, item.gsi2.as_ref().map(|k| s(&k.sk)));
        attr(self, TTL, item.expires_at.map(n));
        let mut update = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            update.push_str(" REMOVE ");
            update.push_str(&remove.join(", "));
        }
        (update, known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::Key;

    #[test]
    fn put_sets_present_and_removes_absent_attributes() {
        let mut e = Expr::default();
        let item = Item::new(Key::new("p", "s"), b"x".to_vec()).with_gsi1(Key::new("g", "h"));
        let (update, known) = e.put(&item, Condition::Absent);
        assert_eq!(known, Some(1));
        assert_eq!(
            update,
            "SET #v = :one, #d = :d, #gsi1pk = :gsi1pk, #gsi1sk = :gsi1sk \
             REMOVE #gsi2pk, #gsi2sk, #ttl"
        );
        let cond = e.condition(Condition::Absent, 10);
        assert_eq!(
            cond.as_deref(),
            Some("attribute_not_exists(#pk) OR #ttl <= :now")
        );
        // Every placeholder used is registered, and only those.
        for p in e.names.keys().chain(e.values.keys()) {
            assert!(
                update.contains(p.as_str())
                    || cond.as_deref().is_some_and(|c| c.contains(p.as_str())),
                "{p}"
            );
        }
    }

    #[test]
    fn key_conditions() {
        let mut e = Expr::default();
        let between = SkRange::Between("a".into(), "b".into());
        assert_eq!(
            e.key_condition("gsi1pk", "gsi1sk", "P", &between),
            "#gsi1pk = :kp AND #gsi1sk BETWEEN :a AND :b"
        );
        let mut e = Expr::default();
        assert_eq!(
            e.key_condition("pk", "sk", "P", &SkRange::Prefix(String::new())),
            "#pk = :kp"
        );
        assert!(
            !e.names.contains_key("#sk"),
            "unused names would be rejected"
        );
    }

    #[test]
    fn version_condition_checks_liveness() {
        let mut e = Expr::default();
        assert_eq!(
            e.condition(Condition::Version(4), 99).as_deref(),
            Some("#v = :expected AND (attribute_not_exists(#ttl) OR #ttl > :now)")
        );
        assert_eq!(e.values.get(":expected"), Some(&n(4)));
    }
}
