//! Parses arbitrary bytes, walks every segment, field, repetition, component
//! and sub-component, and re-parses `to_er7()`. The walk and its checks are
//! shared with the proptest suite in `tests/never_panics.rs`.
#![no_main]

#[path = "../../tests/support/walk.rs"]
mod walk;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    walk::check(data);
});
