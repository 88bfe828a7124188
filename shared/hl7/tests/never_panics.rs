#![allow(clippy::unwrap_used)]
//! The codec must never panic, whatever bytes arrive: bounded property tests
//! over arbitrary and mutated input (the CI stand-in for `fuzz/`), plus
//! deterministic edge cases (size, escapes at the end, invalid UTF-8).

#[path = "support/walk.rs"]
mod support;

use hl7::{Level, Message};
use proptest::prelude::*;
use proptest::sample::Index;
use std::path::Path;
use std::sync::OnceLock;
use support::{check, walk};

const CASES: u32 = 2_000;
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/corpus/hl7");

/// The corpus messages, read once. Panics clearly when the folder is missing.
fn corpus() -> &'static [Vec<u8>] {
    static FILES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = Path::new(CORPUS);
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| {
                panic!(
                    "the HL7 corpus folder {} cannot be read ({e}); it is part of the \
                     repository, in testdata/corpus/hl7",
                    dir.display()
                )
            })
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "hl7"))
            .collect();
        paths.sort();
        assert!(!paths.is_empty(), "no *.hl7 files in {}", dir.display());
        paths
            .iter()
            .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .collect()
    })
}

/// Bytes the codec gives meaning to, so random input hits them often.
const SPECIAL: &[u8] = b"|^~\\&\r\n\x0B\x1C XFSTRE.Hbr0D\"\xFF";

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![any::<u8>(), proptest::sample::select(SPECIAL)]
}

#[derive(Debug, Clone)]
enum Mutation {
    /// XOR the byte at a position with a non-zero mask.
    Flip(Index, u8),
    /// Insert a delimiter, escape, CR or LF (or any byte) at a position.
    Insert(Index, u8),
    /// Cut the message at a position.
    Truncate(Index),
    /// Remove one byte.
    Delete(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::Flip(i, m)),
        4 => (any::<Index>(), byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => any::<Index>().prop_map(Mutation::Delete),
    ]
}

fn apply(mut msg: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match m {
            Mutation::Flip(i, mask) if !msg.is_empty() => {
                let i = i.index(msg.len());
                msg[i] ^= mask;
            }
            Mutation::Insert(i, b) => {
                let i = i.index(msg.len() + 1);
                msg.insert(i, *b);
            }
            Mutation::Truncate(i) => {
                let i = i.index(msg.len() + 1);
                msg.truncate(i);
            }
            Mutation::Delete(i) if !msg.is_empty() => {
                let i = i.index(msg.len());
                msg.remove(i);
            }
            _ => {}
        }
    }
    msg
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&data);
    }

    #[test]
    fn arbitrary_bytes_after_an_msh_header(
        tail in proptest::collection::vec(byte(), 0..768)
    ) {
        let mut data = b"MSH|^~\\&|".to_vec();
        data.extend_from_slice(&tail);
        // This prefix always declares usable delimiters.
        prop_assert!(Message::parse(&data).is_ok());
        check(&data);
    }

    #[test]
    fn mutated_corpus_messages(
        file in any::<Index>(),
        mutations in proptest::collection::vec(mutation(), 1..12),
    ) {
        let files = corpus();
        let original = &files[file.index(files.len())];
        check(&apply(original.clone(), &mutations));
    }

    /// Mutations confined to the MSH header, where delimiters are declared.
    #[test]
    fn mutated_msh_header(
        file in any::<Index>(),
        at in 0..12usize,
        value in any::<u8>(),
        insert in any::<bool>(),
    ) {
        let files = corpus();
        let mut msg = files[file.index(files.len())].clone();
        let at = at.min(msg.len());
        if insert || at == msg.len() {
            msg.insert(at, value);
        } else {
            msg[at] = value;
        }
        check(&msg);
    }

    #[test]
    fn escape_then_decode_is_identity(text in "\\PC*") {
        let d = hl7::Delimiters::default();
        let escaped = hl7::escape(&text, &d);
        prop_assert_eq!(hl7::decode(escaped.as_bytes(), &d), text.as_str());
    }
}

#[test]
fn every_corpus_message_survives_the_walk() {
    for msg in corpus() {
        check(msg);
    }
}

#[test]
fn ten_thousand_segments() {
    let mut data = b"MSH|^~\\&|APP|FAC|IIS|IISFAC|20150624||VXU^V04^VXU_V04|1|P|2.5.1\r".to_vec();
    for i in 0..10_000 {
        data.extend_from_slice(
            format!("RXA|0|1|20150624||08^HepB^CVX|0.5|mL^mL^UCUM||||||||L{i}\r").as_bytes(),
        );
    }
    let msg = Message::parse(&data).expect("parses");
    assert_eq!(msg.len(), 10_001);
    assert_eq!(msg.segments().filter(|s| s.id() == "RXA").count(), 10_000);
    let last = msg.segment(10_000).expect("last RXA");
    assert_eq!(last.seq(), 10_000);
    assert_eq!(last.value(15), "L9999");
    assert_eq!(last.field(5).at(1, 3, 0).text(), "CVX");
    assert_eq!(last.field_location(5).to_erl(), "RXA^10000^5");
    assert!(walk(&msg) > 0);
    assert_eq!(msg.to_er7().as_bytes(), data.as_slice());
}

#[test]
fn a_five_megabyte_field() {
    const SIZE: usize = 5 * 1024 * 1024;
    let mut data = b"MSH|^~\\&\rOBX|1|TX|x||".to_vec();
    data.extend(std::iter::repeat_n(b'a', SIZE));
    data.extend_from_slice(b"|F\r");
    let msg = Message::parse(&data).expect("parses");
    let obx = msg.first("OBX").expect("OBX");
    assert_eq!(obx.field(5).raw().len(), SIZE);
    assert_eq!(obx.field(5).text().len(), SIZE);
    assert_eq!(obx.value(6), "F");

    // The same size made of escapes: `\F\` (3 bytes) decodes to one `|`.
    let mut data = b"MSH|^~\\&\rOBX|1|TX|x||".to_vec();
    for _ in 0..SIZE / 4 {
        data.extend_from_slice(b"a\\F\\");
    }
    let msg = Message::parse(&data).expect("parses");
    let text = msg.first("OBX").expect("OBX").field(5).text();
    assert_eq!(text.len(), SIZE / 2);
    assert!(text.starts_with("a|a|"));
}

#[test]
fn escape_character_at_the_very_end() {
    for data in [
        &b"MSH|^~\\&|\\"[..],
        b"MSH|^~\\&\rNTE|1||text\\",
        b"MSH|^~\\&\rNTE|1||text\\F",
        b"MSH|^~\\&\rNTE|1||a^b&c\\",
        b"MSH|^~\\&\rNTE|1||\\X4",
        b"MSH|^~\\&\rNTE|1||\\\r",
    ] {
        let msg = Message::parse(data).expect("parses");
        check(data);
        let last = msg.segment(msg.len() - 1).expect("last segment");
        let n = last.field_count();
        let leaf = last.field(n).first_leaf();
        let _ = leaf.text();
        let _ = last.field(n).at(1, 2, 2).text();
    }
    let msg = Message::parse(b"MSH|^~\\&\rNTE|1||text\\").expect("parses");
    assert_eq!(msg.first("NTE").expect("NTE").value(3), "text\\");
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    let data = b"MSH|^~\\&\rPID|1||ab\xFF\xFEcd^x\\F\\\xFF|";
    let msg = Message::parse(data).expect("parses");
    let pid = msg.first("PID").expect("PID");
    let field = pid.field(3);
    assert!(field.text().contains('\u{FFFD}'));
    let first = field.at(1, 1, 0).text();
    assert_eq!(first, "ab\u{FFFD}\u{FFFD}cd");
    // Through the escape-decoding path too.
    let second = field.at(1, 2, 0).text();
    assert_eq!(second, "x|\u{FFFD}");
    assert_eq!(field.at(1, 2, 0).level(), Level::Component);
    assert!(msg.to_er7().contains('\u{FFFD}'));
    check(data);
}
