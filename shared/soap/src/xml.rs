//! Low-level XML text handling: escaping what we write, decoding the bytes we
//! are sent into the `&str` roxmltree needs.
//!
//! Escaping is where HL7 meets XML: answers carry `&` (an HL7 encoding
//! character) and CR (the segment separator). A literal CR in XML text is
//! turned into LF by every conforming parser (XML 1.0 §2.11), so CR is always
//! written as the character reference `&#13;`, which parsers keep.

/// Appends `text` to `out` escaped for element content.
///
/// `&`, `<` and `>` become entity references (`>` too, so `]]>` can never
/// appear), CR becomes `&#13;`. Characters XML 1.0 cannot carry at all, not
/// even as references (C0 controls other than TAB/LF/CR, U+FFFE, U+FFFF),
/// become U+FFFD so the document stays well-formed; HL7 text never
/// legitimately contains them (MLLP framing bytes are the usual culprits).
pub(crate) fn push_text(out: &mut String, text: &str) {
    push_escaped(out, text, false);
}

/// Appends `text` to `out` escaped for a double-quoted attribute value: as
/// [`push_text`], plus `"`, and TAB/LF as references so attribute-value
/// normalisation cannot turn them into spaces.
pub(crate) fn push_attr(out: &mut String, text: &str) {
    push_escaped(out, text, true);
}

fn push_escaped(out: &mut String, text: &str, attr: bool) {
    out.reserve(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '"' if attr => out.push_str("&quot;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            '\t' | '\n' => out.push(c),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// XML 1.0 `Char` production (Rust `char`s are never surrogates).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
        && c != '\u{FFFE}'
        && c != '\u{FFFF}'
}

/// How the request bytes were turned into text; errors explain which rule
/// failed and where.
#[derive(Debug)]
pub(crate) enum Decoded<'a> {
    Borrowed(&'a str),
    Owned(String),
}

impl Decoded<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Decoded::Borrowed(s) => s,
            Decoded::Owned(s) => s,
        }
    }
}

/// Decodes a request body.
///
/// The policy, in order:
/// 1. A byte order mark decides: UTF-8 (EF BB BF), UTF-16LE (FF FE) or
///    UTF-16BE (FE FF).
/// 2. Without one, an XML declaration naming ISO-8859-1 (`latin1`, ...)
///    means Latin-1, which maps bytes to code points one to one.
/// 3. Anything else must be UTF-8. A declaration naming another encoding is
///    not trusted over the bytes: .NET's `StringWriter` famously declares
///    `utf-16` on text that is then sent as UTF-8, and ASCII-only bodies are
///    UTF-8 whatever they declare. Invalid UTF-8 is reported with its offset
///    and the declared encoding, if any.
pub(crate) fn decode(body: &[u8]) -> Result<Decoded<'_>, String> {
    if let Some(rest) = body.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return utf8(rest, 3, None);
    }
    if let Some(rest) = body.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, u16::from_le_bytes, "UTF-16LE");
    }
    if let Some(rest) = body.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, u16::from_be_bytes, "UTF-16BE");
    }
    let declared = declared_encoding(body);
    if let Some(name) = declared {
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "latin-1" | "l1" | "iso-latin-1"
        ) {
            return Ok(Decoded::Owned(
                body.iter().map(|&b| char::from(b)).collect(),
            ));
        }
    }
    utf8(body, 0, declared)
}

fn utf8<'a>(
    bytes: &'a [u8],
    skipped: usize,
    declared: Option<&str>,
) -> Result<Decoded<'a>, String> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(Decoded::Borrowed(s)),
        Err(e) => {
            let at = e.valid_up_to() + skipped;
            Err(match declared {
                Some(name) => format!(
                    "request body is not valid UTF-8 (invalid byte at offset {at}) and its declared \
                     encoding \"{name}\" is not supported; send UTF-8"
                ),
                None => format!(
                    "request body is not valid UTF-8 (invalid byte at offset {at}); send UTF-8 or \
                     declare encoding=\"ISO-8859-1\""
                ),
            })
        }
    }
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16, label: &str) -> Result<Decoded<'static>, String> {
    if !bytes.len().is_multiple_of(2) {
        return Err(format!(
            "request body starts with a {label} byte order mark but has an odd number of bytes"
        ));
    }
    let units = bytes.chunks_exact(2).map(|p| unit([p[0], p[1]]));
    let mut out = String::with_capacity(bytes.len() / 2);
    for (i, c) in char::decode_utf16(units).enumerate() {
        match c {
            Ok(c) => out.push(c),
            Err(_) => {
                return Err(format!(
                    "request body is not valid {label}: unpaired surrogate at byte offset {}",
                    2 + 2 * i
                ))
            }
        }
    }
    Ok(Decoded::Owned(out))
}

/// The `encoding` pseudo-attribute of a leading XML declaration, read from
/// raw bytes (ASCII-compatible encodings only, which is all we act on).
fn declared_encoding(body: &[u8]) -> Option<&str> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = body.get(start..)?;
    if !rest.starts_with(b"<?xml") {
        return None;
    }
    let end = rest.windows(2).take(512).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(rest.get(..end)?).ok()?;
    let after = &decl[decl.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let value = &after[1..];
    let close = value.find(quote)?;
    Some(&value[..close])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        let mut out = String::new();
        push_text(&mut out, s);
        out
    }

    #[test]
    fn escapes_text() {
        assert_eq!(
            text("MSH|^~\\&|a\rb\nc\t<x>]]>"),
            "MSH|^~\\&amp;|a&#13;b\nc\t&lt;x&gt;]]&gt;"
        );
        assert_eq!(text("a\u{0B}b\u{1C}\u{FFFE}"), "a\u{FFFD}b\u{FFFD}\u{FFFD}");
        assert_eq!(text("é€😀"), "é€😀");
    }

    #[test]
    fn escapes_attributes() {
        let mut out = String::new();
        push_attr(&mut out, "a\"b'&\r\n\t");
        assert_eq!(out, "a&quot;b'&amp;&#13;&#10;&#9;");
    }

    #[test]
    fn decodes() {
        assert_eq!(
            decode(b"<a/>").map(|d| d.as_str().to_owned()),
            Ok("<a/>".to_owned())
        );
        assert_eq!(
            decode(b"\xEF\xBB\xBF<a/>").map(|d| d.as_str().to_owned()),
            Ok("<a/>".to_owned())
        );
        assert_eq!(
            decode(b"<?xml version='1.0' encoding='ISO-8859-1'?><a>\xE9</a>")
                .map(|d| d.as_str().to_owned()),
            Ok("<?xml version='1.0' encoding='ISO-8859-1'?><a>é</a>".to_owned())
        );
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("<a>é</a>".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(
            decode(&le).map(|d| d.as_str().to_owned()),
            Ok("<a>é</a>".to_owned())
        );
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("<a>é</a>".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(
            decode(&be).map(|d| d.as_str().to_owned()),
            Ok("<a>é</a>".to_owned())
        );
        // .NET StringWriter: declares utf-16, sends UTF-8.
        assert!(decode(b"<?xml version=\"1.0\" encoding=\"utf-16\"?><a/>").is_ok());
        let err = decode(b"<?xml version='1.0' encoding='windows-1252'?><a>\x80</a>");
        assert!(err.is_err_and(|e| e.contains("windows-1252") && e.contains("offset 48")));
        assert!(decode(b"<a>\xFF</a>").is_err_and(|e| e.contains("offset 3")));
        assert!(decode(b"\xFF\xFE<").is_err());
    }
}
