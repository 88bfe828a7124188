//! HL7 escape sequences (v2.5.1 section 2.7).
//!
//! `\F\ \S\ \T\ \R\ \E\` stand for the delimiters and `\Xhh..\` for raw bytes.
//! Formatting and character-set escapes (`\H\ \N\ \.br\ \Zxx\ \Cxxxx\ \Mxxxxxx\`)
//! carry meaning this system does not interpret, so they are kept literally
//! rather than silently dropped, and so is a lone escape character.

use crate::{bytes, Delimiters};
use std::borrow::Cow;

/// Decodes escape sequences in a leaf value. Invalid UTF-8 is replaced with U+FFFD.
pub fn decode<'a>(raw: &'a [u8], d: &Delimiters) -> Cow<'a, str> {
    let Some(esc) = d.escape else {
        return bytes::lossy(raw);
    };
    if bytes::find(esc, raw).is_none() {
        return bytes::lossy(raw);
    }
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != esc {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(len) = memchr::memchr(esc, &raw[i + 1..]) else {
            // Unterminated: keep the rest as sent.
            out.extend_from_slice(&raw[i..]);
            break;
        };
        let body = &raw[i + 1..i + 1 + len];
        let whole = &raw[i..i + len + 2];
        match body {
            b"F" => out.push(d.field),
            b"S" => out.push(d.component),
            b"R" => out.push(d.repetition),
            b"E" => out.push(esc),
            b"T" => match d.subcomponent {
                Some(t) => out.push(t),
                None => out.extend_from_slice(whole),
            },
            [b'X', hex @ ..]
                if !hex.is_empty()
                    && hex.len() % 2 == 0
                    && hex.iter().all(u8::is_ascii_hexdigit) =>
            {
                for pair in hex.chunks_exact(2) {
                    out.push((hex_val(pair[0]) << 4) | hex_val(pair[1]));
                }
            }
            _ => out.extend_from_slice(whole),
        }
        i += len + 2;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// Escapes every delimiter (and the escape character itself) in text we write.
/// Segment terminators are escaped as `\X0D\` / `\X0A\` so no text can end a segment.
pub fn escape(text: &str, d: &Delimiters) -> String {
    escape_inner(text, d, false)
}

/// Like [`escape`], but leaves well-formed formatting escapes (`\H\`, `\.br\`, ...)
/// intact, so text decoded by [`decode`] re-encodes to what was received.
pub fn escape_preserving(text: &str, d: &Delimiters) -> String {
    escape_inner(text, d, true)
}

fn is_control(b: u8) -> bool {
    b < 0x20 && b != b'\t'
}

fn escape_inner(text: &str, d: &Delimiters, preserve: bool) -> String {
    let mut out = String::new();
    escape_into(&mut out, text, d, preserve);
    out
}

/// Appends `text`, escaped as [`escape`] (or, with `preserve`,
/// [`escape_preserving`]) would, to `out`: a writer building a whole message
/// escapes each value straight into its buffer instead of into a new string.
pub(crate) fn escape_into(out: &mut String, text: &str, d: &Delimiters, preserve: bool) {
    let esc = d.escape.unwrap_or(b'\\');
    let bytes = text.as_bytes();
    if !bytes
        .iter()
        .any(|&b| d.is_delimiter(b) || is_control(b) || b == esc)
    {
        out.push_str(text);
        return;
    }
    let e = esc as char;
    out.reserve(text.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == esc {
            if preserve {
                if let Some(n) = preserved_sequence_len(&bytes[i..], esc) {
                    out.push_str(&text[i..i + n]);
                    i += n;
                    continue;
                }
            }
            push_escape(out, e, "E");
        } else if b == d.field {
            push_escape(out, e, "F");
        } else if b == d.component {
            push_escape(out, e, "S");
        } else if b == d.repetition {
            push_escape(out, e, "R");
        } else if Some(b) == d.subcomponent {
            push_escape(out, e, "T");
        } else if is_control(b) {
            // CR and LF would end the segment, VT and FS are MLLP framing:
            // every C0 control but TAB travels as a hex escape.
            push_escape(out, e, &format!("X{b:02X}"));
        } else {
            // Copy the whole UTF-8 scalar starting here.
            let ch_len = utf8_len(b);
            let end = (i + ch_len).min(bytes.len());
            out.push_str(text.get(i..end).unwrap_or(""));
            i = end;
            continue;
        }
        i += 1;
    }
}

fn push_escape(out: &mut String, e: char, body: &str) {
    out.push(e);
    out.push_str(body);
    out.push(e);
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// Length of a formatting / character-set escape that [`decode`] keeps literally.
fn preserved_sequence_len(s: &[u8], esc: u8) -> Option<usize> {
    let end = memchr::memchr(esc, &s[1..])?;
    let body = &s[1..1 + end];
    let ok = match body {
        b"H" | b"N" => true,
        [b'.', rest @ ..] => {
            !rest.is_empty()
                && rest
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'-')
        }
        [b'Z' | b'C' | b'M', rest @ ..] => {
            !rest.is_empty() && rest.iter().all(u8::is_ascii_alphanumeric)
        }
        _ => false,
    };
    ok.then_some(end + 2)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d() -> Delimiters {
        Delimiters::default()
    }

    #[test]
    fn decodes_delimiter_escapes() {
        assert_eq!(decode(br"A\F\B\S\C\T\D\R\E\E\F", &d()), "A|B^C&D~E\\F");
    }

    #[test]
    fn decodes_hex() {
        assert_eq!(decode(br"x\X4142\y", &d()), "xABy");
        assert_eq!(decode(br"\XC3A9\", &d()), "é");
    }

    #[test]
    fn keeps_formatting_and_unknown_escapes_literally() {
        assert_eq!(
            decode(br"a\H\b\N\c\.br\d\Z99\", &d()),
            r"a\H\b\N\c\.br\d\Z99\"
        );
        assert_eq!(decode(br"odd \X4\ hex", &d()), r"odd \X4\ hex");
    }

    #[test]
    fn keeps_unterminated_escape() {
        assert_eq!(decode(br"ends with \", &d()), r"ends with \");
        assert_eq!(decode(br"\F", &d()), r"\F");
    }

    #[test]
    fn escape_covers_every_delimiter_and_line_ends() {
        assert_eq!(
            escape("a|b^c&d~e\\f\rg\nh", &d()),
            r"a\F\b\S\c\T\d\R\e\E\f\X0D\g\X0A\h"
        );
    }

    #[test]
    fn escape_round_trips() {
        for s in ["plain", "a|b", "x^y&z~w\\", "é ü 中"] {
            assert_eq!(decode(escape(s, &d()).as_bytes(), &d()), s);
        }
    }

    #[test]
    fn preserving_escape_keeps_formatting_sequences() {
        let raw = br"line\.br\next\H\bold\N\ \F\";
        let text = decode(raw, &d());
        assert_eq!(escape_preserving(&text, &d()).as_bytes(), raw);
    }

    #[test]
    fn other_delimiters_decode_too() {
        let hash = Delimiters {
            field: b'#',
            component: b'%',
            repetition: b'!',
            escape: Some(b'$'),
            subcomponent: Some(b'*'),
        };
        assert_eq!(decode(b"a$F$b$S$", &hash), "a#b%");
        assert_eq!(escape("a#b%", &hash), "a$F$b$S$");
    }
}
