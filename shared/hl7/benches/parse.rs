//! Parse throughput on two real messages from the corpus, against the
//! `hl7-parser` crate.
//!
//! `cargo bench -p hl7 --bench parse`
//!
//! Counters: bytes (MB/s) and segments (items/s). The corpus is in
//! `testdata/corpus/hl7`; files are read when each benchmark starts.

use divan::counter::{BytesCount, ItemsCount};
use divan::{black_box, Bencher};
use hl7::Message;
use std::path::Path;

fn main() {
    divan::main();
}

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/corpus/hl7");

/// vxu-001: 4 KB, CRLF terminators; vxu-012: 18 KB, LF terminators, 34 RXA.
const FILES: &[&str] = &["vxu-001.hl7", "vxu-012.hl7"];

fn load(file: &str) -> Vec<u8> {
    let path = Path::new(CORPUS).join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn segments(bytes: &[u8]) -> usize {
    Message::parse(bytes)
        .unwrap_or_else(|e| panic!("corpus file does not parse: {e}"))
        .len()
}

/// Sum of the raw lengths of every leaf (MSH-1/MSH-2 atomic).
fn walk(msg: &Message<'_>) -> usize {
    let mut sum = 0;
    for seg in msg.segments() {
        for n in 1..=seg.field_count() {
            let field = seg.field(n);
            if seg.is_msh() && n <= 2 {
                sum += field.raw().len();
                continue;
            }
            for rep in field.children() {
                for comp in rep.children() {
                    for sub in comp.children() {
                        sum += sub.raw().len();
                    }
                }
            }
        }
    }
    sum
}

/// (a) `Message::parse` alone: the segment and field index.
#[divan::bench(args = FILES)]
fn hl7_parse(bencher: Bencher, file: &str) {
    let bytes = load(file);
    bencher
        .counter(BytesCount::of_slice(&bytes))
        .counter(ItemsCount::new(segments(&bytes)))
        .bench(|| match Message::parse(black_box(&bytes)) {
            Ok(m) => m.len(),
            Err(_) => 0,
        });
}

/// (b) parse, then reach every leaf (repetitions, components and
/// sub-components are split lazily, so this is the full cost).
#[divan::bench(args = FILES)]
fn hl7_parse_walk(bencher: Bencher, file: &str) {
    let bytes = load(file);
    bencher
        .counter(BytesCount::of_slice(&bytes))
        .counter(ItemsCount::new(segments(&bytes)))
        .bench(|| match Message::parse(black_box(&bytes)) {
            Ok(m) => walk(&m),
            Err(_) => 0,
        });
}

/// (c) `hl7_parser::parse_message` (its main entry point, CR terminators only,
/// eager down to sub-components), fed the file with terminators turned into
/// CR as its own benchmark does.
#[divan::bench(args = FILES)]
fn hl7_parser_crate(bencher: Bencher, file: &str) {
    let bytes = load(file);
    let text = String::from_utf8(bytes)
        .unwrap_or_else(|e| panic!("{file} is not UTF-8: {e}"))
        .replace("\r\n", "\r")
        .replace('\n', "\r");
    let parsed = hl7_parser::parse_message(&text)
        .unwrap_or_else(|e| panic!("hl7-parser rejects {file}: {e}"))
        .segments
        .len();
    bencher
        .counter(BytesCount::of_str(&text))
        .counter(ItemsCount::new(parsed))
        .bench(|| match hl7_parser::parse_message(black_box(&text)) {
            Ok(m) => m.segments.len(),
            Err(_) => 0,
        });
}

/// (c') `hl7_parser::parse_message_with_lenient_newlines` on the file as
/// stored (CRLF / LF), the same input our parser gets.
#[divan::bench(args = FILES)]
fn hl7_parser_crate_lenient(bencher: Bencher, file: &str) {
    let bytes = load(file);
    let text = String::from_utf8(bytes).unwrap_or_else(|e| panic!("{file} is not UTF-8: {e}"));
    let parsed = hl7_parser::parse_message_with_lenient_newlines(&text)
        .unwrap_or_else(|e| panic!("hl7-parser rejects {file}: {e}"))
        .segments
        .len();
    bencher
        .counter(BytesCount::of_str(&text))
        .counter(ItemsCount::new(parsed))
        .bench(
            || match hl7_parser::parse_message_with_lenient_newlines(black_box(&text)) {
                Ok(m) => m.segments.len(),
                Err(_) => 0,
            },
        );
}
