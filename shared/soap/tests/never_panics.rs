//! No input makes `parse_request` panic: arbitrary bytes, and NIST's sample
//! envelopes with random damage (flipped bytes, cuts, splices, duplicated
//! spans), which reach far deeper into the parser than random bytes do.
#![allow(clippy::unwrap_used)]

mod support;

use proptest::prelude::*;
use soap::parse_request;
use support::*;

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, byte: u8 },
    Delete { at: usize, len: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Duplicate { at: usize, len: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let markup = prop::sample::select(vec![
        b"<".to_vec(),
        b">".to_vec(),
        b"&".to_vec(),
        b"</".to_vec(),
        b"/>".to_vec(),
        b"<![CDATA[".to_vec(),
        b"]]>".to_vec(),
        b"<!DOCTYPE a>".to_vec(),
        b"&#13;".to_vec(),
        b"&#xFFFE;".to_vec(),
        b"xmlns=\"\"".to_vec(),
        b"xmlns:soap=\"urn:x\"".to_vec(),
        b" mustUnderstand=\"1\"".to_vec(),
        b"\xEF\xBB\xBF".to_vec(),
        b"\xFF".to_vec(),
        b"\0".to_vec(),
    ]);
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        (any::<usize>(), 0usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (
            any::<usize>(),
            prop_oneof![markup, prop::collection::vec(any::<u8>(), 0..8)]
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 0usize..80).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let n = bytes.len().max(1);
        match m {
            Mutation::Flip { at, byte } => {
                if !bytes.is_empty() {
                    bytes[at % n] = *byte;
                }
            }
            Mutation::Delete { at, len } => {
                let start = at % n;
                let end = (start + len).min(bytes.len());
                if start < end {
                    bytes.drain(start..end);
                }
            }
            Mutation::Insert { at, bytes: extra } => {
                let at = (at % n).min(bytes.len());
                bytes.splice(at..at, extra.iter().copied());
            }
            Mutation::Duplicate { at, len } => {
                let start = (at % n).min(bytes.len());
                let end = (start + len).min(bytes.len());
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
            Mutation::Truncate { at } => bytes.truncate(at % n),
        }
    }
    bytes
}

fn samples() -> Vec<Vec<u8>> {
    NIST_REQUESTS.iter().map(|name| nist(name)).collect()
}

/// Parses, and when an error comes back, builds its fault too (the path a
/// server takes), so that path is exercised on hostile messages as well.
fn exercise(body: &[u8]) {
    if let Err(e) = parse_request(body) {
        let version = e.version().unwrap_or_default();
        let xml = soap::fault(e.fault_kind(), e.message(), version);
        assert!(roxmltree::Document::parse(&xml).is_ok(), "{xml}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&body);
    }

    #[test]
    fn arbitrary_text(body in ".{0,512}") {
        exercise(body.as_bytes());
    }

    #[test]
    fn mutated_samples(which in 0usize..2, mutations in prop::collection::vec(mutation(), 1..6)) {
        let sample = samples().swap_remove(which);
        exercise(&apply(sample, &mutations));
    }
}
