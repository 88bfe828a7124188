//! Byte-level helpers tuned for HL7 values, which are mostly a few bytes of ASCII.

use std::borrow::Cow;

/// From this length on `memchr`'s vector search pays for its dispatch and
/// setup; HL7 values are mostly a few bytes, and for them a plain loop wins.
const LONG: usize = 32;

/// Position of the first `needle` in `hay`.
pub(crate) fn find(needle: u8, hay: &[u8]) -> Option<usize> {
    if hay.len() < LONG {
        hay.iter().position(|&b| b == needle)
    } else {
        memchr::memchr(needle, hay)
    }
}

/// The bytes as text, invalid UTF-8 replaced with U+FFFD.
///
/// Same result as `String::from_utf8_lossy`, which walks the input chunk by
/// chunk even when it is valid; the strict check first is much faster on the
/// (usual) valid input.
pub(crate) fn lossy(raw: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_agrees_with_memchr() {
        // Every length up to past the memchr cutoff, needles at every place,
        // alone or several.
        for len in 0..LONG + 10 {
            for fill in [b'a', 0xDE, 0x5F, 0x00, 0xFF] {
                let mut hay = vec![fill; len];
                assert_eq!(find(b'^', &hay), memchr::memchr(b'^', &hay));
                for at in 0..len {
                    hay[at] = b'^';
                    assert_eq!(find(b'^', &hay), memchr::memchr(b'^', &hay), "{len} {at}");
                    if at + 3 < len {
                        hay[at + 3] = b'^';
                        assert_eq!(find(b'^', &hay), Some(at));
                        hay[at + 3] = fill;
                    }
                    hay[at] = fill;
                }
            }
        }
    }

    #[test]
    fn lossy_agrees_with_std() {
        for raw in [
            &b"abc"[..],
            b"",
            b"a\xFFb",
            b"\xC3\xA9t\xC3",
            "é".as_bytes(),
        ] {
            assert_eq!(lossy(raw), String::from_utf8_lossy(raw));
        }
    }
}
