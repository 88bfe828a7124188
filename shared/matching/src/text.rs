//! String primitives for matching: folding to plain uppercase ASCII, tokens,
//! Jaro-Winkler similarity and the NYSIIS phonetic code.

/// Folds any Unicode text to uppercase ASCII letters, digits and single spaces:
/// diacritics are dropped (José → JOSE, Łukasz → LUKASZ), apostrophes vanish so
/// O'Connell and OConnell agree, and every other separator becomes a space.
pub fn fold(text: &str) -> String {
    let ascii = if text.is_ascii() {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(deunicode::deunicode(text))
    };
    let mut out = String::with_capacity(ascii.len());
    let mut pending_space = false;
    for b in ascii.bytes() {
        match b {
            b'\'' | b'`' => {}
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => {
                if pending_space && !out.is_empty() {
                    out.push(' ');
                }
                pending_space = false;
                out.push(b.to_ascii_uppercase() as char);
            }
            _ => pending_space = true,
        }
    }
    out
}

/// Only the letters of folded text, as one word (`HARDIN WORTH` → `HARDINWORTH`).
pub fn letters(folded: &str) -> String {
    folded
        .bytes()
        .filter(u8::is_ascii_alphabetic)
        .map(char::from)
        .collect()
}

/// Only the digits of some text (`(810) 433-3532` → `8104333532`).
pub fn digits(text: &str) -> String {
    text.bytes()
        .filter(u8::is_ascii_digit)
        .map(char::from)
        .collect()
}

/// Jaro-Winkler similarity of two ASCII strings, in 0.0..=1.0.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    if a == b {
        return 1.0;
    }
    let jaro = jaro(a, b);
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count();
    jaro + prefix as f64 * 0.1 * (1.0 - jaro)
}

fn jaro(a: &[u8], b: &[u8]) -> f64 {
    // Names are short; fixed buffers keep this allocation-free.
    const MAX: usize = 64;
    let (a, b) = (&a[..a.len().min(MAX)], &b[..b.len().min(MAX)]);
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let mut b_used = [false; MAX];
    let mut a_hits = [0u8; MAX];
    let mut matches = 0usize;
    for (i, &ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        for j in lo..hi {
            if !b_used[j] && b[j] == ca {
                b_used[j] = true;
                a_hits[matches] = ca;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut k = 0usize;
    for (j, &cb) in b.iter().enumerate() {
        if b_used[j] {
            if a_hits[k] != cb {
                transpositions += 1;
            }
            k += 1;
        }
    }
    let m = matches as f64;
    (m / a.len() as f64 + m / b.len() as f64 + (m - (transpositions / 2) as f64) / m) / 3.0
}

/// NYSIIS phonetic code (New York State Identification and Intelligence
/// System), the classic surname code of record linkage; truncated to 6.
/// Input is folded text; non-letters are ignored.
pub fn nysiis(folded: &str) -> String {
    let mut w: Vec<u8> = folded.bytes().filter(u8::is_ascii_alphabetic).collect();
    if w.is_empty() {
        return String::new();
    }
    // Prefixes.
    for (from, to) in [
        (&b"MAC"[..], &b"MCC"[..]),
        (b"KN", b"NN"),
        (b"K", b"C"),
        (b"PH", b"FF"),
        (b"PF", b"FF"),
        (b"SCH", b"SSS"),
    ] {
        if w.starts_with(from) {
            w[..from.len()].copy_from_slice(to);
            break;
        }
    }
    // Suffixes.
    let n = w.len();
    if w.ends_with(b"EE") || w.ends_with(b"IE") {
        w.truncate(n - 2);
        w.push(b'Y');
    } else if [&b"DT"[..], b"RT", b"RD", b"NT", b"ND"]
        .iter()
        .any(|s| w.ends_with(s))
    {
        w.truncate(n - 2);
        w.push(b'D');
    }
    let is_vowel = |c: u8| matches!(c, b'A' | b'E' | b'I' | b'O' | b'U');
    // Translations are written back into `w` (each keeps its length), so the
    // H and W rules see the previous letter as already translated.
    let mut key = vec![w[0]];
    let mut i = 1;
    while i < w.len() {
        let c = w[i];
        let next = w.get(i + 1).copied();
        let prev = w[i - 1];
        let replacement: &[u8] = if c == b'E' && next == Some(b'V') {
            b"AF"
        } else if is_vowel(c) {
            b"A"
        } else if c == b'Q' {
            b"G"
        } else if c == b'Z' {
            b"S"
        } else if c == b'M' {
            b"N"
        } else if c == b'K' {
            if next == Some(b'N') {
                b"NN"
            } else {
                b"C"
            }
        } else if c == b'S' && w.get(i + 1..i + 3) == Some(b"CH") {
            b"SSS"
        } else if c == b'P' && next == Some(b'H') {
            b"FF"
        } else if (c == b'H' && (!is_vowel(prev) || next.is_some_and(|n| !is_vowel(n))))
            || (c == b'W' && is_vowel(prev))
        {
            std::slice::from_ref(&w[i - 1])
        } else {
            std::slice::from_ref(&w[i])
        };
        let replacement = replacement.to_vec();
        w[i..i + replacement.len()].copy_from_slice(&replacement);
        for &e in &replacement {
            if key.last() != Some(&e) {
                key.push(e);
            }
        }
        i += replacement.len();
    }
    if key.len() > 1 && key.last() == Some(&b'S') {
        key.pop();
    }
    if key.ends_with(b"AY") {
        key.truncate(key.len() - 2);
        key.push(b'Y');
    }
    if key.len() > 1 && key.last() == Some(&b'A') {
        key.pop();
    }
    key.truncate(6);
    String::from_utf8(key).unwrap_or_default()
}

/// Whether two names are at most `k` edits apart (insertions, deletions,
/// substitutions and adjacent transpositions: the optimal-string-alignment
/// distance), the way one or two keying slips leave a name. Allocation-free
/// for names of up to 63 bytes; longer ones are compared on their first 63.
pub fn within_edits(a: &str, b: &str, k: usize) -> bool {
    const MAX: usize = 63;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (a, b) = (&a[..a.len().min(MAX)], &b[..b.len().min(MAX)]);
    if a.len().abs_diff(b.len()) > k {
        return false;
    }
    // Three rows of the distance table: two back (for transpositions),
    // the previous and the current.
    let mut back = [0usize; MAX + 1];
    let mut prev = [0usize; MAX + 1];
    let mut cur = [0usize; MAX + 1];
    for (j, p) in prev.iter_mut().enumerate().take(b.len() + 1) {
        *p = j;
    }
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(back[j - 2] + 1);
            }
            cur[j] = d;
            row_min = row_min.min(d);
        }
        if row_min > k {
            return false;
        }
        back = prev;
        prev = cur;
    }
    prev[b.len()] <= k
}

/// True when two equal-length digit strings differ in exactly one position,
/// or by one adjacent transposition: the typical keying slip.
pub fn one_slip(a: &str, b: &str) -> bool {
    one_slip_bytes(a.as_bytes(), b.as_bytes())
}

/// [`one_slip`] on bytes; allocation-free, as it runs for most candidates.
pub fn one_slip_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut first = None;
    let mut second = None;
    for i in 0..a.len() {
        if a[i] != b[i] {
            if first.is_none() {
                first = Some(i);
            } else if second.is_none() {
                second = Some(i);
            } else {
                return false;
            }
        }
    }
    match (first, second) {
        (Some(_), None) => true,
        (Some(i), Some(j)) => j == i + 1 && a[i] == b[j] && a[j] == b[i],
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_drops_diacritics_apostrophes_and_separators() {
        assert_eq!(fold("José  María"), "JOSE MARIA");
        assert_eq!(fold("O'Connell"), "OCONNELL");
        assert_eq!(fold("Hardin-Worth"), "HARDIN WORTH");
        assert_eq!(fold("Łukasz Müller"), "LUKASZ MULLER");
        assert_eq!(fold("  -- "), "");
        assert_eq!(letters("HARDIN WORTH"), "HARDINWORTH");
        assert_eq!(digits("(810)433-3532"), "8104333532");
    }

    #[test]
    fn jaro_winkler_known_values() {
        let close = |a, b, v: f64| assert!((jaro_winkler(a, b) - v).abs() < 0.001, "{a} {b}");
        close("MARTHA", "MARHTA", 0.961);
        close("DWAYNE", "DUANE", 0.840);
        close("DIXON", "DICKSONX", 0.813);
        close("SAME", "SAME", 1.0);
        assert_eq!(jaro_winkler("", "A"), 0.0);
        assert_eq!(jaro_winkler("ABC", "XYZ"), 0.0);
    }

    #[test]
    fn nysiis_groups_sound_alikes() {
        assert_eq!(nysiis("MACINTOSH"), nysiis("MCINTOSH"));
        assert_eq!(nysiis("KNIGHT"), nysiis("NIGHT"));
        assert_eq!(nysiis("SCHMIDT"), "SNAD");
        assert_eq!(nysiis("PHILLIPS"), nysiis("FILLIPS"));
        assert_eq!(nysiis("BROWN"), "BRAN");
        assert_eq!(nysiis("JOHNSON"), nysiis("JONSON"));
        assert_eq!(nysiis(""), "");
        assert!(nysiis("A").len() == 1);
    }

    #[test]
    fn edits_count_slips_and_swaps() {
        assert!(within_edits("AXEL", "AXRL", 1));
        assert!(within_edits("DAX", "FAX", 1));
        assert!(within_edits("MARTHA", "MARHTA", 1));
        assert!(within_edits("ANNA", "ANA", 1));
        assert!(!within_edits("LEVI", "LSVL", 1));
        assert!(within_edits("LEVI", "LSVL", 2));
        assert!(within_edits("APOLLO", "WPOILO", 2) && !within_edits("APOLLO", "WPOILO", 1));
        assert!(!within_edits("ELEANOR", "ELRANOD", 1));
        assert!(within_edits("", "A", 1) && !within_edits("", "AB", 1));
        assert!(within_edits("SAME", "SAME", 0));
    }

    #[test]
    fn one_slip_is_one_digit_or_one_swap() {
        assert!(one_slip("20071216", "20071217"));
        assert!(one_slip("123456789", "123456798"));
        assert!(!one_slip("123456789", "123456789"));
        assert!(!one_slip("123456789", "123456700"));
        assert!(!one_slip("12", "123"));
    }
}
