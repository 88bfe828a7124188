#![allow(clippy::unwrap_used)]
//! Round trips over the real HL7 v2 messages of the corpus
//! (`testdata/corpus/hl7`, copied unchanged; see `testdata/README.md`).
//!
//! A missing or shrunken corpus fails these tests loudly instead of letting
//! them pass over zero files.

use hl7::{decode, escape_preserving, Delimiters, Element, Message};
use std::path::{Path, PathBuf};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/corpus/hl7");
const MIN_FILES: usize = 60;

/// Every `*.hl7` file of the corpus, sorted by name. Panics with a clear
/// message when the folder is missing or unreadable.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(CORPUS);
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| {
        panic!(
            "the HL7 corpus folder {} cannot be read ({e}); it is part of the repository, \
             in testdata/corpus/hl7",
            dir.display()
        )
    });
    let mut paths: Vec<PathBuf> = entries
        .map(|e| {
            e.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.extension().is_some_and(|x| x == "hl7"))
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "the HL7 corpus folder {} holds no *.hl7 files",
        dir.display()
    );
    paths
        .into_iter()
        .map(|p| {
            let bytes =
                std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, bytes)
        })
        .collect()
}

fn parse<'a>(name: &str, bytes: &'a [u8]) -> Message<'a> {
    Message::parse(bytes).unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

/// The file as `to_er7()` should write it, computed without the codec: BOM
/// dropped, split on CRLF / CR / LF, blank lines dropped, each line ended by CR.
fn normalise(bytes: &[u8]) -> Vec<u8> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut out = Vec::with_capacity(bytes.len() + 1);
    let mut line: Vec<u8> = Vec::new();
    let mut flush = |line: &mut Vec<u8>| {
        if !line.iter().all(|&b| b == b' ' || b == b'\t') {
            out.extend_from_slice(line);
            out.push(b'\r');
        }
        line.clear();
    };
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' => {
                flush(&mut line);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => flush(&mut line),
            b => line.push(b),
        }
        i += 1;
    }
    flush(&mut line);
    out
}

/// Every leaf of field `n` of a segment: MSH-1 and MSH-2 are atomic, every
/// other field is split into repetitions, components and sub-components.
fn leaves<'a>(field: Element<'a>, atomic: bool) -> Vec<Element<'a>> {
    if atomic {
        return vec![field];
    }
    let mut out = Vec::new();
    for rep in field.children() {
        for comp in rep.children() {
            out.extend(comp.children());
        }
    }
    out
}

/// Leaves whose escape round trip is not expected to be byte-exact: `\X..\`
/// hex escapes decode to bytes that are re-escaped differently, and invalid
/// UTF-8 is replaced when decoded.
fn round_trips_exactly(raw: &[u8], d: &Delimiters) -> bool {
    let hex = d.escape.is_some_and(|e| {
        raw.windows(2)
            .any(|w| w[0] == e && (w[1] == b'X' || w[1] == b'x'))
    });
    !hex && std::str::from_utf8(raw).is_ok()
}

#[test]
fn corpus_is_present_and_complete() {
    let files = corpus();
    assert!(
        files.len() >= MIN_FILES,
        "expected at least {MIN_FILES} *.hl7 files in {CORPUS}, found {}",
        files.len()
    );
    for (name, bytes) in &files {
        assert!(!bytes.is_empty(), "{name} is empty");
    }
}

#[test]
fn every_message_parses() {
    for (name, bytes) in corpus() {
        let msg = parse(&name, &bytes);
        assert!(msg.len() >= 2, "{name}: only {} segment(s)", msg.len());
        assert_eq!(msg.msh().id(), "MSH", "{name}");
        assert!(
            msg.delimiters().is_standard(),
            "{name}: unexpected delimiters"
        );
        for seg in msg.segments() {
            assert!(seg.has_valid_id(), "{name}: bad segment id {:?}", seg.id());
        }
    }
}

#[test]
fn to_er7_reproduces_the_file_with_cr_terminators() {
    for (name, bytes) in corpus() {
        let msg = parse(&name, &bytes);
        let expected = normalise(&bytes);
        let er7 = msg.to_er7();
        assert!(
            er7.as_bytes() == expected.as_slice(),
            "{name}: to_er7() differs from the normalised file\n got: {er7:?}\nwant: {:?}",
            String::from_utf8_lossy(&expected)
        );
        let lines = expected.iter().filter(|&&b| b == b'\r').count();
        assert_eq!(msg.len(), lines, "{name}: segment count");
    }
}

#[test]
fn every_leaf_decodes_and_re_escapes_to_its_raw_bytes() {
    let mut checked = 0usize;
    let mut escaped = 0usize;
    for (name, bytes) in corpus() {
        let msg = parse(&name, &bytes);
        let d = msg.delimiters();
        for seg in msg.segments() {
            for n in 1..=seg.field_count() {
                if seg.is_msh() && n <= 2 {
                    // MSH-1/MSH-2 hold the delimiters themselves; they are not text.
                    continue;
                }
                for leaf in leaves(seg.field(n), false) {
                    let raw = leaf.raw();
                    if !round_trips_exactly(raw, &d) {
                        continue;
                    }
                    let text = decode(raw, &d);
                    assert_eq!(text, leaf.text(), "{name} {}-{n}", seg.id());
                    let back = escape_preserving(&text, &d);
                    assert_eq!(
                        back.as_bytes(),
                        raw,
                        "{name} {}-{n}: leaf {:?} decodes to {text:?}, re-escapes to {back:?}",
                        seg.id(),
                        String::from_utf8_lossy(raw)
                    );
                    checked += 1;
                    if d.escape.is_some_and(|e| raw.contains(&e)) {
                        escaped += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 10_000, "only {checked} leaves checked");
    assert!(escaped > 0, "no leaf with an escape sequence was exercised");
}

/// Rebuilds a message from decoded leaves, joined by the delimiters, and
/// compares it with `to_er7()`: encode(parse(m)) reproduces content,
/// delimiters and escapes.
#[test]
fn rebuilding_from_decoded_leaves_reproduces_the_message() {
    for (name, bytes) in corpus() {
        let msg = parse(&name, &bytes);
        let d = msg.delimiters();
        let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
        for seg in msg.segments() {
            out.extend_from_slice(seg.id_bytes());
            for n in 1..=seg.field_count() {
                let field = seg.field(n);
                if seg.is_msh() && n <= 2 {
                    // MSH-1 is the field separator itself: no separator before MSH-2.
                    out.extend_from_slice(field.raw());
                    continue;
                }
                out.push(d.field);
                rebuild_field(&mut out, field, &d);
            }
            out.push(b'\r');
        }
        let er7 = msg.to_er7();
        assert_eq!(
            String::from_utf8_lossy(&out),
            er7,
            "{name}: rebuilt message differs from to_er7()"
        );
    }
}

fn rebuild_field(out: &mut Vec<u8>, field: Element<'_>, d: &Delimiters) {
    for (r, rep) in field.children().enumerate() {
        if r > 0 {
            out.push(d.repetition);
        }
        for (c, comp) in rep.children().enumerate() {
            if c > 0 {
                out.push(d.component);
            }
            for (s, sub) in comp.children().enumerate() {
                if s > 0 {
                    if let Some(t) = d.subcomponent {
                        out.push(t);
                    }
                }
                let raw = sub.raw();
                if round_trips_exactly(raw, d) {
                    out.extend_from_slice(escape_preserving(&decode(raw, d), d).as_bytes());
                } else {
                    out.extend_from_slice(raw);
                }
            }
        }
    }
}

#[test]
fn atomic_msh_fields_are_the_delimiters() {
    for (name, bytes) in corpus() {
        let msg = parse(&name, &bytes);
        let d = msg.delimiters();
        let msh = msg.msh();
        let one = leaves(msh.field(1), true);
        let two = leaves(msh.field(2), true);
        assert_eq!(one[0].raw(), [d.field], "{name}");
        assert_eq!(two[0].raw(), d.encoding_characters().as_bytes(), "{name}");
        assert_eq!(
            msh.field(2).child_count(),
            1,
            "{name}: MSH-2 must not split"
        );
    }
}
