//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP, HMAC-SHA1,
//! 30-second steps, 6 digits): the second factor of an administrator's
//! login, as authenticator apps compute it from an `otpauth://` URI.
//!
//! SHA-1 is what every authenticator app defaults to; as an HMAC over a
//! random 160-bit key it has no known weakness that matters here.

use ring::hmac;

/// Seconds per time step (RFC 6238's default, and every app's).
pub const STEP_SECONDS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps either side of now that are still accepted (a phone's clock a
/// little off, a code typed as it changed).
pub const SKEW_STEPS: i64 = 1;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as `otpauth://` URIs carry secrets.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Base32 back to bytes (case, spaces and padding forgiven, as people type
/// secrets); `None` for any other character.
pub fn from_base32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let c = c.to_ascii_uppercase();
        let value = BASE32.iter().position(|b| char::from(*b) == c)?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xFF) as u8);
        }
    }
    Some(out)
}

/// The time step `unix_seconds` falls in.
pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The HOTP code of `secret` for counter `step` (RFC 4226 §5.3, dynamic
/// truncation), `digits` long.
pub fn code(secret: &[u8], step: i64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0F);
    let binary = (u32::from(mac[offset] & 0x7F) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    binary % 10u32.pow(digits)
}

/// The step a typed code is valid for, within [`SKEW_STEPS`] of now, if
/// any. The caller refuses steps at or before the last one it accepted, so
/// a code seen over a shoulder cannot be used twice.
pub fn verify(secret: &[u8], typed: &str, unix_seconds: i64) -> Option<i64> {
    let typed = typed.trim();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u32 = typed.parse().ok()?;
    let now = step_at(unix_seconds);
    let mut found = None;
    // Every candidate is computed, so the time taken does not say which
    // step matched.
    for step in now - SKEW_STEPS..=now + SKEW_STEPS {
        if code(secret, step, DIGITS) == value && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` URI an authenticator app enrols from (issuer and account
/// percent-encoded).
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{issuer_e}:{account_e}?secret={secret}&issuer={issuer_e}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        issuer_e = percent(issuer),
        account_e = percent(account),
        secret = base32(secret),
    )
}

fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits), and their 6-digit
    /// truncations.
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, expected) in [
            (59, 94_287_082),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(code(secret, step_at(time), 8), expected, "t={time}");
            assert_eq!(code(secret, step_at(time), 6), expected % 1_000_000);
        }
    }

    #[test]
    fn rfc_4226_hotp_vectors() {
        let secret = b"12345678901234567890";
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(code(secret, counter as i64, 6), *want);
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_no_further() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let step = step_at(now);
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let typed = format!("{:06}", code(secret, step + offset, 6));
            assert_eq!(
                verify(secret, &typed, now).is_some(),
                accepted,
                "offset {offset}"
            );
        }
        let typed = format!("{:06}", code(secret, step, 6));
        assert_eq!(verify(secret, &format!(" {typed} "), now), Some(step));
        for bad in ["", "12345", "1234567", "12a456", "-12345"] {
            assert_eq!(verify(secret, bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(
            from_base32("mzxw 6ytb oi==").as_deref(),
            Some(&b"foobar"[..])
        );
        assert_eq!(from_base32("MZ1"), None);
        let secret: Vec<u8> = (0..20).collect();
        assert_eq!(from_base32(&base32(&secret)), Some(secret));
    }

    #[test]
    fn the_enrolment_uri_names_issuer_account_and_parameters() {
        let uri = otpauth_uri("IIS Console", "ana@dq", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/IIS%20Console:ana%40dq?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=IIS%20Console&algorithm=SHA1&digits=6&period=30"
        );
    }
}
