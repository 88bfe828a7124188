#![allow(clippy::unwrap_used)]
//! `iz::respond` must never panic, and must answer every message it can read:
//! bounded property tests over arbitrary bytes and over corpus messages with
//! structural mutations (the CI stand-in for a fuzzer).
//!
//! The contract checked for every input (see `src/respond.rs`):
//! * bytes `hl7::Message::parse` rejects are `unreadable` (same error) and get
//!   no answer, no intake, no MSA code and are not accepted;
//! * anything else gets an answer, except an accepted Z34 query, which the query
//!   service answers later (`answer` and `ack_code` are `None`, `accepted` true);
//! * the answer is ER7 that re-parses whole, is ACK^V04^ACK for a VXU or a
//!   non-query and RSP^K11^RSP_K11 for a query, its MSA-1 is `ack_code`, and
//!   its MSA-2 echoes the first leaf of the input's MSH-10 (`""` when that is
//!   empty), checked when MSH-10 has a value of at most 20 characters;
//! * every ERR-2 is one ERL (segment^seq[^field[^rep[^comp[^sub]]]]).

use hl7::{Message, ParseError};
use iz::{respond, AckCode, Clock, IisIdentity, ProfileId, RequestKind};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use std::path::Path;
use std::sync::OnceLock;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/corpus/hl7");

/// Cases per property (2,000 in all); `PROPTEST_CASES` overrides it for a
/// longer local run.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // Failures are reported, not written beside the sources.
        failure_persistence: None,
        max_shrink_iters: 4_096,
        ..ProptestConfig::default()
    }
}

/// A fixed "today" after every corpus date, so results do not drift.
fn clock() -> Clock {
    Clock::at(1_790_000_000) // 2026-09-21
}

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

// ---- the contract ------------------------------------------------------------

/// Feeds `input` through `respond` and checks the answer contract.
fn check(input: &[u8]) {
    let r = respond(input, &IisIdentity::default(), clock());
    let msg = match Message::parse(input) {
        Err(e) => {
            assert_eq!(
                r.unreadable,
                Some(e),
                "unreadable must carry the parse error"
            );
            assert!(r.intake.is_none(), "unreadable input has no intake");
            assert!(r.answer.is_none(), "unreadable input cannot be answered");
            assert!(r.ack_code.is_none(), "unreadable input has no MSA-1");
            assert!(!r.accepted, "unreadable input is not accepted");
            return;
        }
        Ok(m) => m,
    };
    assert_eq!(
        r.unreadable, None::<ParseError>,
        "a parseable message is readable"
    );
    let intake = r.intake.as_ref().expect("a readable message is judged");

    let quiet = matches!(
        r.kind(),
        Some(RequestKind::Qbp(ProfileId::Z34 | ProfileId::Z44))
    ) && intake.accepted;
    if quiet {
        assert!(
            r.answer.is_none(),
            "a valid Z34 or Z44 query is answered by the query service"
        );
        assert_eq!(r.ack_code, None, "a valid query has no MSA-1 yet");
        assert!(r.accepted, "a valid query is accepted");
        return;
    }
    let answer = r.answer.as_deref().unwrap_or_else(|| {
        panic!(
            "no answer for a readable message (kind {:?}, accepted {})",
            r.kind(),
            intake.accepted
        )
    });
    let code = r.ack_code.expect("an answered message has an MSA-1 code");

    let ans = Message::parse(answer.as_bytes())
        .unwrap_or_else(|e| panic!("the answer does not parse ({e}): {answer:?}"));
    assert!(
        answer.ends_with('\r'),
        "the answer ends with CR: {answer:?}"
    );
    assert_eq!(
        ans.raw().len() + 1,
        answer.len(),
        "the answer does not re-parse whole (envelope bytes trimmed): {answer:?}"
    );
    for seg in ans.segments() {
        assert!(
            seg.has_valid_id(),
            "answer segment id {:?}: {answer:?}",
            seg.id()
        );
    }

    let is_query = msg.msh().field(9).at(1, 1, 0).text().trim() == "QBP";
    let expected_type = match r.kind() {
        Some(RequestKind::Vxu) => "ACK^V04^ACK",
        Some(RequestKind::Qbp(_)) => "RSP^K11^RSP_K11",
        None if is_query => "RSP^K11^RSP_K11",
        None => "ACK^V04^ACK",
    };
    assert_eq!(
        ans.msh().field(9).raw(),
        expected_type.as_bytes(),
        "answer type: {answer:?}"
    );

    let msa = ans.segment(1).expect("the answer has a second segment");
    assert_eq!(msa.id(), "MSA", "MSA follows MSH: {answer:?}");
    assert_eq!(
        msa.value(1),
        code.code(),
        "MSA-1 is the ack code: {answer:?}"
    );

    let msh10 = msg.msh().field(10);
    let sent = msh10.first_leaf().text();
    if msh10.has_value() && sent.chars().count() <= 20 {
        if sent.is_empty() {
            assert_eq!(msa.field(2).raw(), b"\"\"", "MSA-2 is null: {answer:?}");
        } else {
            assert_eq!(
                msa.field(2).first_leaf().text(),
                sent,
                "MSA-2 echoes MSH-10: {answer:?}"
            );
        }
    }

    if std::env::var_os("SKIP_ERR2").is_some() {
        return;
    }
    for err in ans.segments().filter(|s| s.id() == "ERR") {
        let erl = err.field(2);
        assert_eq!(erl.child_count(), 1, "ERR-2 is one ERL: {answer:?}");
        let parts: Vec<_> = erl.child(1).children().collect();
        assert!(
            (2..=6).contains(&parts.len()),
            "ERR-2 has 2 to 6 components: {:?} in {answer:?}",
            String::from_utf8_lossy(erl.raw())
        );
        for p in &parts[1..] {
            assert!(
                !p.raw().is_empty() && p.raw().iter().all(u8::is_ascii_digit),
                "ERR-2 numbers: {:?} in {answer:?}",
                String::from_utf8_lossy(erl.raw())
            );
        }
    }
}

// ---- strategies -----------------------------------------------------------------

/// Bytes the codec and the IIS give meaning to, so random input hits them often.
const SPECIAL: &[u8] = b"|^~\\&\r\n\x0B\x1C XFSTRE.Hbr0D\"\xFF";

/// The delimiters and segment terminators the brief asks to insert.
const DELIMS: &[u8] = b"|^~\\&\r\n";

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![any::<u8>(), select(SPECIAL)]
}

/// Values MSH-9, MSH-12 and MSH-21 are swapped among (each field gets values
/// meant for the others too).
const MSH_VALUES: &[&str] = &[
    "VXU^V04^VXU_V04",
    "QBP^Q11^QBP_Q11",
    "ACK^V04^ACK",
    "RSP^K11^RSP_K11",
    "VXU^V03",
    "QBP^Q22^QBP_Q21",
    "ADT^A04^ADT_A01",
    "VXU",
    "QBP",
    " VXU ^ V04 ",
    "VXU^V04^VXU_V04~QBP^Q11",
    "2.5.1",
    "2.5",
    "2.3.1",
    " 2.5.1 ",
    "2.5.1^USA",
    "2.4~2.5.1",
    "Z22^CDCPHINVS",
    "Z23^CDCPHINVS",
    "Z31^CDCPHINVS",
    "Z32^CDCPHINVS",
    "Z33^CDCPHINVS",
    "Z34^CDCPHINVS",
    "Z42^CDCPHINVS",
    "Z44^CDCPHINVS",
    "Z34^CDCPHINVS~Z44^CDCPHINVS",
    "Z44^CDCPHINVS~Z34^CDCPHINVS",
    "Z99^CDCPHINVS",
    "\"\"",
    "",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// XOR the byte at a position with a non-zero mask.
    Flip(Index, u8),
    /// Insert a delimiter, CR or LF (or another meaningful byte) at a position.
    Insert(Index, u8),
    /// Cut the message at a position.
    Truncate(Index),
    /// Remove one segment.
    DeleteSegment(Index),
    /// Copy one segment to before another.
    DuplicateSegment(Index, Index),
    /// Set MSH-n (9, 12 or 21) to a value from `MSH_VALUES`.
    SetMsh(usize, &'static str),
    /// Exchange two of MSH-9, MSH-12 and MSH-21.
    SwapMsh(usize, usize),
    /// Set MSH-10 to a short value of tricky characters.
    SetControlId(Vec<u8>),
    /// Blow a field up: `reps` copies of its value (or of `seed` when empty),
    /// joined by the repetition separator, or run together into one long value.
    BlowUp {
        seg: Index,
        field: Index,
        reps: usize,
        repeat: bool,
    },
}

fn msh_field() -> impl Strategy<Value = usize> {
    select(&[9usize, 12, 21][..])
}

/// Characters a control id can hold in ER7: text, escapes, controls, non-UTF-8;
/// half the time a plain id with one tricky ending (where trimming would bite).
fn control_id() -> impl Strategy<Value = Vec<u8>> {
    let mixed = proptest::collection::vec(
        prop_oneof![
            4 => select(&b"AZaz09-_. "[..]),
            2 => select(&b"^~\\&XFSTRE"[..]),
            1 => select(&b"\x0B\x1C\x0C\t\"\xFF\xC3"[..]),
        ],
        0..24,
    );
    let ending: &[&[u8]] = &[
        b"\x1C", b"\\X1C\\", b"\x0B", b"\\X0B\\", b" ", b"\t", b"\\X0D\\", b"\\F\\", b"\\E\\",
        b"\xFF", b"\"\"", b"^",
    ];
    let tricky_end = (
        proptest::collection::vec(select(&b"ABC123-_."[..]), 1..10),
        select(ending),
    )
        .prop_map(|(mut id, end)| {
            id.extend_from_slice(end);
            id
        });
    prop_oneof![mixed, tricky_end]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::Flip(i, m)),
        4 => (any::<Index>(), prop_oneof![3 => select(DELIMS), 1 => byte()])
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => any::<Index>().prop_map(Mutation::DeleteSegment),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::DuplicateSegment(a, b)),
        3 => (msh_field(), select(MSH_VALUES)).prop_map(|(n, v)| Mutation::SetMsh(n, v)),
        1 => (msh_field(), msh_field()).prop_map(|(a, b)| Mutation::SwapMsh(a, b)),
        1 => control_id().prop_map(Mutation::SetControlId),
        1 => (any::<Index>(), any::<Index>(), 2..1_500usize, any::<bool>())
            .prop_map(|(seg, field, reps, repeat)| Mutation::BlowUp { seg, field, reps, repeat }),
    ]
}

// ---- applying mutations -------------------------------------------------------------

/// Segment spans: each segment's bytes with the run of CR/LF after it.
fn spans(msg: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < msg.len() {
        let mut end = msg[start..]
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .map_or(msg.len(), |i| start + i);
        while end < msg.len() && (msg[end] == b'\r' || msg[end] == b'\n') {
            end += 1;
        }
        out.push((start, end));
        start = end;
    }
    out
}

/// The field separator and repetition separator the message declares (or the defaults).
fn separators(msg: &[u8]) -> (u8, u8) {
    if msg.starts_with(b"MSH") && msg.len() > 5 {
        (msg[3], msg[5])
    } else {
        (b'|', b'~')
    }
}

/// The MSH line split on its field separator: `parts[k]` is MSH-(k+1) for k >= 1.
fn msh_parts(msg: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    if !msg.starts_with(b"MSH") || msg.len() < 4 {
        return None;
    }
    let sep = msg[3];
    let end = msg
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(msg.len());
    if end < 4 {
        // "MSH" alone on its line: no field separator to split on.
        return None;
    }
    let mut parts: Vec<Vec<u8>> = vec![b"MSH".to_vec()];
    parts.extend(msg[4..end].split(|&b| b == sep).map(<[u8]>::to_vec));
    Some((parts, end))
}

fn with_msh_parts(msg: &[u8], parts: &[Vec<u8>], end: usize) -> Vec<u8> {
    let sep = msg[3];
    let mut out = parts[0].clone();
    for p in &parts[1..] {
        out.push(sep);
        out.extend_from_slice(p);
    }
    out.extend_from_slice(&msg[end..]);
    out
}

fn msh_get(msg: &[u8], n: usize) -> Option<Vec<u8>> {
    let (parts, _) = msh_parts(msg)?;
    Some(parts.get(n - 1).cloned().unwrap_or_default())
}

fn msh_set(msg: &[u8], n: usize, value: &[u8]) -> Option<Vec<u8>> {
    let (mut parts, end) = msh_parts(msg)?;
    if parts.len() < n {
        parts.resize(n, Vec::new());
    }
    parts[n - 1] = value.to_vec();
    Some(with_msh_parts(msg, &parts, end))
}

/// Copies segment `which` to before segment `to` (`to` = count: at the end).
fn duplicate_segment(msg: &mut Vec<u8>, which: usize, to: usize) {
    let s = spans(msg);
    let (a, b) = s[which];
    let mut copy = msg[a..b].to_vec();
    if !copy.ends_with(b"\r") && !copy.ends_with(b"\n") {
        copy.push(b'\r');
    }
    let pos = match s.get(to) {
        Some(&(start, _)) => start,
        None => {
            if !msg.ends_with(b"\r") && !msg.ends_with(b"\n") {
                msg.push(b'\r');
            }
            msg.len()
        }
    };
    msg.splice(pos..pos, copy);
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
            Mutation::DeleteSegment(i) => {
                let s = spans(&msg);
                if !s.is_empty() {
                    let (a, b) = s[i.index(s.len())];
                    msg.drain(a..b);
                }
            }
            Mutation::DuplicateSegment(i, at) => {
                let n = spans(&msg).len();
                if n > 0 {
                    duplicate_segment(&mut msg, i.index(n), at.index(n + 1));
                }
            }
            Mutation::SetMsh(n, v) => {
                if let Some(m) = msh_set(&msg, *n, v.as_bytes()) {
                    msg = m;
                }
            }
            Mutation::SwapMsh(a, b) => {
                if let (Some(va), Some(vb)) = (msh_get(&msg, *a), msh_get(&msg, *b)) {
                    if let Some(m) = msh_set(&msg, *a, &vb).and_then(|m| msh_set(&m, *b, &va)) {
                        msg = m;
                    }
                }
            }
            Mutation::SetControlId(v) => {
                if let Some(m) = msh_set(&msg, 10, v) {
                    msg = m;
                }
            }
            Mutation::BlowUp {
                seg,
                field,
                reps,
                repeat,
            } => {
                let s = spans(&msg);
                if s.is_empty() {
                    continue;
                }
                let (sep, rep_sep) = separators(&msg);
                let (a, b) = s[seg.index(s.len())];
                let content_end = msg[a..b]
                    .iter()
                    .position(|&c| c == b'\r' || c == b'\n')
                    .map_or(b, |i| a + i);
                let line = &msg[a..content_end];
                let mut parts: Vec<Vec<u8>> =
                    line.split(|&c| c == sep).map(<[u8]>::to_vec).collect();
                // Never the segment id; up to two fields past the last one.
                let f = 1 + field.index(parts.len() + 1);
                if parts.len() <= f {
                    parts.resize(f + 1, Vec::new());
                }
                let mut value = parts[f].clone();
                value.truncate(40);
                if value.is_empty() {
                    value = b"X1^Y2".to_vec();
                }
                let mut big = Vec::with_capacity((value.len() + 1) * reps);
                for r in 0..*reps {
                    if r > 0 && *repeat {
                        big.push(rep_sep);
                    }
                    big.extend_from_slice(&value);
                }
                parts[f] = big;
                let new_line = parts.join(&sep);
                msg.splice(a..content_end, new_line);
            }
            _ => {}
        }
    }
    msg
}

/// Headers that get past the parser and the header checks, for random bodies.
const HEADERS: &[&str] = &[
    "MSH|^~\\&|EHR|CLINIC|IIS|STATE|20250101120000-0500||VXU^V04^VXU_V04|CTRL-1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS\r",
    "MSH|^~\\&|EHR|CLINIC|IIS|STATE|20250101120000-0500||QBP^Q11^QBP_Q11|Q-1|P|2.5.1|||ER|AL|||||Z34^CDCPHINVS\r",
    "MSH|^~\\&|EHR|CLINIC|IIS|STATE|20250101120000-0500||QBP^Q11^QBP_Q11|Q-2|P|2.5.1|||ER|AL|||||Z44^CDCPHINVS\r",
    "MSH|^~\\&|EHR|CLINIC|IIS|STATE|20250101120000-0500||ACK^V04^ACK|A-1|P|2.5.1\r",
    "MSH|^~\\&|",
];

// ---- properties ---------------------------------------------------------------------

proptest! {
    #![proptest_config(config(300))]

    /// (a) Arbitrary bytes, most of which the codec rejects.
    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(byte(), 0..1_024)) {
        check(&data);
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// Arbitrary bytes after a header the IIS accepts, so validation runs on them.
    #[test]
    fn arbitrary_bytes_after_an_accepted_header(
        header in select(HEADERS),
        tail in proptest::collection::vec(byte(), 0..1_024),
    ) {
        let mut data = header.as_bytes().to_vec();
        data.extend_from_slice(&tail);
        check(&data);
    }
}

proptest! {
    #![proptest_config(config(900))]

    /// (b) Corpus messages with random mutations.
    #[test]
    fn mutated_corpus_messages(
        file in any::<Index>(),
        mutations in proptest::collection::vec(mutation(), 1..8),
    ) {
        let files = corpus();
        let original = &files[file.index(files.len())];
        check(&apply(original.clone(), &mutations));
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// Header-only mutations (MSH-9/10/12/21), so most messages stay readable
    /// and the profile choice, the query branch and the MSA-2 echo are exercised.
    #[test]
    fn corpus_messages_with_swapped_header_values(
        file in any::<Index>(),
        mutations in proptest::collection::vec(
            prop_oneof![
                3 => (msh_field(), select(MSH_VALUES)).prop_map(|(n, v)| Mutation::SetMsh(n, v)),
                1 => (msh_field(), msh_field()).prop_map(|(a, b)| Mutation::SwapMsh(a, b)),
                1 => control_id().prop_map(Mutation::SetControlId),
            ],
            1..4,
        ),
    ) {
        let files = corpus();
        let original = &files[file.index(files.len())];
        check(&apply(original.clone(), &mutations));
    }
}

/// The corpus messages answered AA: their ACK ends with MSA, so MSA-2 is the
/// last thing in the answer.
fn answered_aa() -> &'static [Vec<u8>] {
    static FILES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FILES.get_or_init(|| {
        let aa: Vec<_> = corpus()
            .iter()
            .filter(|m| respond(m, &IisIdentity::default(), clock()).ack_code == Some(AckCode::AA))
            .cloned()
            .collect();
        assert!(!aa.is_empty(), "no corpus message is answered AA");
        aa
    })
}

proptest! {
    #![proptest_config(config(200))]

    /// MSA-2 echoes MSH-10 whatever characters it holds, also at the very end
    /// of the answer.
    #[test]
    fn control_id_is_echoed(file in any::<Index>(), id in control_id()) {
        let files = answered_aa();
        let original = &files[file.index(files.len())];
        check(&apply(original.clone(), &[Mutation::SetControlId(id)]));
    }
}

// ---- deterministic cases ------------------------------------------------------------

#[test]
fn every_corpus_message_honours_the_contract() {
    for msg in corpus() {
        check(msg);
    }
}

#[test]
fn the_mutation_helpers_do_what_they_say() {
    let msg = b"MSH|^~\\&|A|B|C|D|20250101||VXU^V04^VXU_V04|ID|P|2.5.1\rPID|1||X\r".to_vec();
    assert_eq!(msh_get(&msg, 9).unwrap(), b"VXU^V04^VXU_V04");
    assert_eq!(msh_get(&msg, 12).unwrap(), b"2.5.1");
    let swapped = apply(msg.clone(), &[Mutation::SwapMsh(9, 12)]);
    assert!(swapped.starts_with(b"MSH|^~\\&|A|B|C|D|20250101||2.5.1|ID|P|VXU^V04^VXU_V04\r"));
    let set = apply(msg.clone(), &[Mutation::SetMsh(21, "Z22^CDCPHINVS")]);
    assert_eq!(msh_get(&set, 21).unwrap(), b"Z22^CDCPHINVS");
    assert_eq!(Message::parse(&set).unwrap().msh().value(21), "Z22");
    let msh_end = msg.iter().position(|&b| b == b'\r').unwrap() + 1;
    assert_eq!(spans(&msg), vec![(0, msh_end), (msh_end, msg.len())]);
    let mut dup = msg.clone();
    duplicate_segment(&mut dup, 1, 2);
    assert!(dup.ends_with(b"2.5.1\rPID|1||X\rPID|1||X\r"));
    let mut dup = msg.clone();
    duplicate_segment(&mut dup, 1, 0);
    assert!(dup.starts_with(b"PID|1||X\rMSH|"));
}

/// Found by `arbitrary_bytes_after_an_accepted_header`: a segment id holding a
/// component separator is written raw into ERR-2, so the ERL gains components.
#[test]
fn err2_with_a_delimiter_in_the_segment_id() {
    check(b"MSH|^~\\&|||||||VXU^V04|1|P|2.5.1\r^");
}

/// Found by `control_id_is_echoed`: MSH-10 ending in FS (0x1C, sent raw or as
/// `\X1C\`) is echoed unescaped, so an AA answer ends with FS CR (MLLP's end
/// of block) and reads back with MSA-2 cut short.
#[test]
fn control_id_ending_in_a_framing_byte() {
    let path = Path::new(CORPUS).join("vxu-001.hl7");
    let vxu = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    check(&msh_set(&vxu, 10, b"A\x1C").unwrap());
}
