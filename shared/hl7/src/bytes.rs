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

/// Calls `f` with the position of every `needle` in `hay`, in order.
///
/// Eight bytes at a time: fields average ten bytes, too few for a vector
/// search per field to pay for its setup, and a byte-by-byte loop spends a
/// compare and a branch on each.
pub(crate) fn each_position(needle: u8, hay: &[u8], mut f: impl FnMut(usize)) {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let pattern = u64::from_ne_bytes([needle; 8]);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        // The high bit of each byte of `hits` is set exactly where `x` has a
        // zero byte (no carry crosses bytes: 0x7F + 0x7F < 0x100).
        let mut hits = !(((x & LOW7) + LOW7) | x | LOW7);
        while hits != 0 {
            f(base + (hits.trailing_zeros() / 8) as usize);
            hits &= hits - 1;
        }
        base += 8;
    }
    for (i, &b) in chunks.remainder().iter().enumerate() {
        if b == needle {
            f(base + i);
        }
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
    fn each_position_finds_every_needle() {
        for len in 0..40 {
            for fill in [b'a', 0xDE, 0x7C, 0xFC, 0x00, 0xFF] {
                let mut hay = vec![fill; len];
                for at in (0..len).step_by(3) {
                    hay[at] = b'|';
                }
                if len > 5 {
                    hay[len - 1] = b'|';
                    hay[4] = b'|';
                }
                let mut got = Vec::new();
                each_position(b'|', &hay, |i| got.push(i));
                let want: Vec<usize> = (0..len).filter(|&i| hay[i] == b'|').collect();
                assert_eq!(got, want, "{len} {fill}");
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
