//! The full walk shared by `tests/never_panics.rs` and the cargo-fuzz target
//! (`fuzz/fuzz_targets/parse.rs` includes this file by path).
//!
//! It touches every segment, field, repetition, component and sub-component
//! through the public API and checks the few invariants that must hold for
//! any input the parser accepts. It panics (so proptest / libFuzzer report a
//! failure) only when one of those invariants is broken.

use hl7::{decode, escape, escape_preserving, Element, Message};

/// Calls everything that reads an element and checks the ways of reaching a
/// child agree with each other.
fn touch(e: &Element<'_>) -> usize {
    let text = e.text();
    let count = e.child_count();
    assert_eq!(
        count,
        e.children().count(),
        "child_count() disagrees with children() for {:?}",
        e.raw()
    );
    let _ = (e.is_empty(), e.is_null(), e.has_value(), e.as_str());
    let _ = e.first_leaf().text();
    let _ = (e.child(0).raw(), e.child(count + 1).raw());
    text.len()
}

/// Walks every element of `msg`; returns the total decoded text length.
pub fn walk(msg: &Message<'_>) -> usize {
    let d = msg.delimiters();
    let mut total = 0;
    let _ = (msg.raw(), msg.len(), msg.is_empty(), msg.msh().id());
    let _ = msg.first("MSH");
    for seg in msg.segments() {
        let _ = (seg.id(), seg.has_valid_id(), seg.seq(), seg.byte_offset());
        let _ = seg.location().to_erl();
        let _ = seg.location().to_path();
        assert!(msg.segment(seg.index()).is_some());
        // Fields 0 and one past the end are absent and must read as empty.
        for n in 0..=seg.field_count() + 1 {
            let field = seg.field(n);
            let _ = seg.value(n);
            let _ = seg.field_location(n).to_erl();
            total += touch(&field);
            let _ = (field.at(0, 0, 0).raw(), field.at(99, 99, 99).raw());
            for (r, rep) in field.children().enumerate() {
                total += touch(&rep);
                for (c, comp) in rep.children().enumerate() {
                    total += touch(&comp);
                    for (s, sub) in comp.children().enumerate() {
                        total += touch(&sub);
                        let at = field.at(r + 1, c + 1, s + 1);
                        assert_eq!(
                            at.raw(),
                            sub.raw(),
                            "at({}, {}, {}) disagrees with children() in {}-{n}",
                            r + 1,
                            c + 1,
                            s + 1,
                            seg.id()
                        );
                        // Text written back must decode to the same text (only
                        // possible when MSH-2 declares an escape character).
                        let text = sub.text();
                        let escaped = escape(&text, &d);
                        if d.escape.is_some() {
                            assert_eq!(
                                decode(escaped.as_bytes(), &d),
                                text,
                                "escape/decode round trip failed for {:?}",
                                sub.raw()
                            );
                        }
                        let _ = escape_preserving(&text, &d);
                    }
                }
            }
        }
    }
    let _ = msg.segment(msg.len());
    total
}

/// Parses `data` and, when it is a message, walks it and checks that
/// `to_er7()` parses again to the same structure.
pub fn check(data: &[u8]) {
    let Ok(msg) = Message::parse(data) else {
        return;
    };
    walk(&msg);
    let er7 = msg.to_er7();
    let again = match Message::parse(er7.as_bytes()) {
        Ok(m) => m,
        Err(e) => panic!("to_er7() output does not parse again ({e}): {er7:?}"),
    };
    assert_eq!(
        again.len(),
        msg.len(),
        "re-parsing to_er7() changed the segment count: {er7:?}"
    );
    walk(&again);
    assert_eq!(
        again.to_er7(),
        er7,
        "to_er7() is not stable under re-parsing"
    );
}
