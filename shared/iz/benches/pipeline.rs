//! Throughput of the whole intake pipeline on two real VXU messages from the
//! corpus: parse, parse + validate (`judge`), and parse + validate +
//! ACK (`respond`, which also builds the answer's bytes).
//!
//! `cargo bench -p iz --bench pipeline`
//!
//! Counters: bytes (MB/s) and messages (items/s). The corpus is in
//! `testdata/corpus/hl7`; files are read when each benchmark starts. The clock is
//! fixed so that date-dependent checks do not change the work done, and the
//! profile's lazy load happens before timing starts.

use divan::counter::{BytesCount, ItemsCount};
use divan::{black_box, Bencher};
use hl7::Message;
use iz::{judge, respond, Clock, IisIdentity};
use std::path::Path;

fn main() {
    divan::main();
}

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/corpus/hl7");

/// vxu-001: 4 KB, CRLF terminators; vxu-012: 18 KB, LF terminators, 34 RXA.
const FILES: &[&str] = &["vxu-001.hl7", "vxu-012.hl7"];

/// 2026-09-21T14:13:20Z, the date the crate's own tests use.
fn clock() -> Clock {
    Clock::at(1_790_000_000)
}

fn load(file: &str) -> Vec<u8> {
    let path = Path::new(CORPUS).join(file);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read benchmark input {} ({e}); the HL7 corpus is part of the \
             repository, in testdata/corpus/hl7",
            path.display()
        )
    })
}

/// Runs the full pipeline once outside the timed loop: loads the profile the
/// message needs (parsed from XML on first use) and checks the input is a
/// message that really gets validated and answered.
fn warm(file: &str, bytes: &[u8]) {
    let r = respond(bytes, &IisIdentity::default(), clock());
    assert!(
        r.unreadable.is_none() && r.intake.as_ref().is_some_and(|i| i.validation.is_some()),
        "{file} is not a message the pipeline validates: {:?}",
        r.unreadable
    );
    assert!(r.answer.is_some(), "{file} gets no answer");
}

fn counters<'a, 'b>(bencher: Bencher<'a, 'b>, bytes: &[u8]) -> Bencher<'a, 'b> {
    bencher
        .counter(BytesCount::of_slice(bytes))
        .counter(ItemsCount::new(1usize))
}

/// (a) `hl7::Message::parse` alone.
#[divan::bench(args = FILES)]
fn parse(bencher: Bencher, file: &str) {
    let bytes = load(file);
    warm(file, &bytes);
    counters(bencher, &bytes).bench(|| match Message::parse(black_box(&bytes)) {
        Ok(m) => m.len(),
        Err(_) => 0,
    });
}

/// (b) parse, then `iz::judge`: header checks, profile choice and validation.
#[divan::bench(args = FILES)]
fn parse_validate(bencher: Bencher, file: &str) {
    let bytes = load(file);
    warm(file, &bytes);
    let clock = clock();
    counters(bencher, &bytes).bench(|| match Message::parse(black_box(&bytes)) {
        Ok(m) => judge(&m, black_box(clock)).findings.len(),
        Err(_) => 0,
    });
}

/// (c) `iz::respond`: parse, validate and build the ACK bytes.
#[divan::bench(args = FILES)]
fn parse_validate_ack(bencher: Bencher, file: &str) {
    let bytes = load(file);
    warm(file, &bytes);
    let me = IisIdentity::default();
    let clock = clock();
    counters(bencher, &bytes).bench(|| {
        respond(black_box(&bytes), &me, black_box(clock))
            .answer
            .map_or(0, |a| a.len())
    });
}

/// (d) `iz::respond` over every corpus VXU in turn: varied traffic, where
/// only values that really repeat between messages (codes, facility ids,
/// units) are found in the per-thread memory of values already judged
/// clean, unlike (c), which answers one message again and again.
#[divan::bench]
fn parse_validate_ack_corpus_round_robin(bencher: Bencher) {
    let mut names: Vec<String> = std::fs::read_dir(CORPUS)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("vxu-") && n.ends_with(".hl7"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let me = IisIdentity::default();
    let messages: Vec<Vec<u8>> = names
        .iter()
        .map(|n| load(n))
        .filter(|b| {
            let r = respond(b, &me, clock());
            r.intake.as_ref().is_some_and(|i| i.validation.is_some()) && r.answer.is_some()
        })
        .collect();
    assert!(messages.len() >= 10, "too few corpus VXUs validate");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let clock = clock();
    bencher.counter(ItemsCount::new(1usize)).bench(|| {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % messages.len();
        respond(black_box(&messages[i]), &me, black_box(clock))
            .answer
            .map_or(0, |a| a.len())
    });
}
