//! Order-preserving byte encoding of composite keys.
//!
//! redb orders `&[u8]` keys lexicographically, so a composite key must encode
//! to bytes whose order is the order of its parts and where no encoded part
//! is a prefix of a different one. Each part is written with `0x00` escaped
//! as `0x00 0xFF` and terminated by `0x00 0x01`: the terminator sorts below
//! every escaped continuation, so `"a"` < `"a\0"` < `"ab"` as in DynamoDB's
//! byte-wise string order.
//!
//! * table key: `part(pk) part(sk)`
//! * index key: `part(gsi pk) part(gsi sk) part(pk) part(sk)` (the table key
//!   suffix makes index keys unique)

use std::ops::Bound;

use crate::model::{Key, SkRange};

const ESC: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xFF;
const END: u8 = 0x01;

/// Append `s` escaped, without terminator.
fn push_body(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        out.push(b);
        if b == ESC {
            out.push(ESCAPED_ZERO);
        }
    }
}

/// Append one terminated part.
pub fn push_part(out: &mut Vec<u8>, s: &str) {
    push_body(out, s);
    out.extend_from_slice(&[ESC, END]);
}

/// Encoded partition prefix: every key of partition `pk` starts with it.
pub fn partition(pk: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(pk.len() + 2);
    push_part(&mut out, pk);
    out
}

/// Encoded table key.
pub fn table_key(key: &Key) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.pk.len() + key.sk.len() + 4);
    push_part(&mut out, &key.pk);
    push_part(&mut out, &key.sk);
    out
}

/// Encoded index key for an item with table key `table` (already encoded).
pub fn index_key(gsi: &Key, table: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(gsi.pk.len() + gsi.sk.len() + 4 + table.len());
    push_part(&mut out, &gsi.pk);
    push_part(&mut out, &gsi.sk);
    out.extend_from_slice(table);
    out
}

/// The smallest byte string greater than every string starting with `prefix`
/// (`None` if there is none, i.e. `prefix` is all `0xFF`).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last != 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

fn upper(prefix: &[u8]) -> Bound<Vec<u8>> {
    successor(prefix).map_or(Bound::Unbounded, Bound::Excluded)
}

/// Byte bounds of the keys in partition `pk` whose sort part matches `range`.
pub fn bounds(pk: &str, range: &SkRange) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let part = partition(pk);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = part.clone();
        f(&mut v);
        v
    };
    match range {
        SkRange::All => (Bound::Included(part.clone()), upper(&part)),
        SkRange::Prefix(p) => {
            let start = with(&|v| push_body(v, p));
            let end = upper(&start);
            (Bound::Included(start), end)
        }
        SkRange::Between(low, high) => (
            Bound::Included(with(&|v| push_part(v, low))),
            upper(&with(&|v| push_part(v, high))),
        ),
        SkRange::From(low) => (Bound::Included(with(&|v| push_part(v, low))), upper(&part)),
    }
}

/// Split an encoded key back into its parts (to check stored keys and
/// cursors, and to key the item values stored without theirs).
pub fn parts(mut bytes: &[u8]) -> Option<Vec<String>> {
    let mut out = Vec::with_capacity(4);
    while !bytes.is_empty() {
        // Sized for the rest of the key: every item a query returns comes
        // through here, and growing byte by byte showed in the Z34 profile.
        let mut raw = Vec::with_capacity(bytes.len());
        loop {
            match bytes {
                [ESC, END, rest @ ..] => {
                    bytes = rest;
                    break;
                }
                [ESC, ESCAPED_ZERO, rest @ ..] => {
                    raw.push(ESC);
                    bytes = rest;
                }
                [ESC, ..] | [] => return None,
                [b, rest @ ..] => {
                    raw.push(*b);
                    bytes = rest;
                }
            }
        }
        out.push(String::from_utf8(raw).ok()?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(b: &(Bound<Vec<u8>>, Bound<Vec<u8>>), k: &[u8]) -> bool {
        let above = match &b.0 {
            Bound::Included(lo) => k >= lo.as_slice(),
            Bound::Excluded(lo) => k > lo.as_slice(),
            Bound::Unbounded => true,
        };
        let below = match &b.1 {
            Bound::Included(hi) => k <= hi.as_slice(),
            Bound::Excluded(hi) => k < hi.as_slice(),
            Bound::Unbounded => true,
        };
        above && below
    }

    #[test]
    fn order_matches_string_order() {
        let words = [
            "", "\0", "\0\0", "a", "a\0", "a\0b", "a\u{1}", "ab", "b", "\u{ff}", "é",
        ];
        for a in words {
            for b in words {
                let ka = table_key(&Key::new("p", a));
                let kb = table_key(&Key::new("p", b));
                assert_eq!(
                    ka.cmp(&kb),
                    a.as_bytes().cmp(b.as_bytes()),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn partitions_do_not_overlap() {
        let b = bounds("a", &SkRange::All);
        assert!(contains(&b, &table_key(&Key::new("a", "x"))));
        assert!(!contains(&b, &table_key(&Key::new("a\0", "x"))));
        assert!(!contains(&b, &table_key(&Key::new("ab", "x"))));
    }

    #[test]
    fn ranges() {
        let k = |sk: &str| table_key(&Key::new("p", sk));
        let pre = bounds("p", &SkRange::Prefix("a\0".into()));
        assert!(contains(&pre, &k("a\0")));
        assert!(contains(&pre, &k("a\0z")));
        assert!(!contains(&pre, &k("a")));
        assert!(!contains(&pre, &k("a\u{1}")));
        let btw = bounds("p", &SkRange::Between("b".into(), "d".into()));
        assert!(contains(&btw, &k("b")) && contains(&btw, &k("c9")) && contains(&btw, &k("d")));
        assert!(
            !contains(&btw, &k("a")) && !contains(&btw, &k("d\0")) && !contains(&btw, &k("da"))
        );
        let from = bounds("p", &SkRange::From("m".into()));
        assert!(contains(&from, &k("m")) && contains(&from, &k("\u{10ffff}")));
        assert!(!contains(&from, &k("l")));
    }

    #[test]
    fn parts_round_trip() {
        let t = table_key(&Key::new("a\0b", "ü"));
        let i = index_key(&Key::new("g", "h"), &t);
        assert_eq!(
            parts(&i),
            Some(vec!["g".into(), "h".into(), "a\0b".into(), "ü".into()])
        );
        assert_eq!(parts(b"x"), None);
    }
}
