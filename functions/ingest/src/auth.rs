//! HTTP Basic credentials (RFC 7617) for `POST /hl7`.

use axum::http::HeaderMap;
use base64::Engine;

/// The username and password of an `Authorization: Basic` header, or why not.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Result<(String, String), &'static str> {
    let value = headers.get(axum::http::header::AUTHORIZATION).ok_or(
        "this endpoint needs HTTP Basic credentials (the Authorized User's username and password)",
    )?;
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not readable text")?;
    let (scheme, encoded) = value
        .trim()
        .split_once(' ')
        .ok_or("the Authorization header must be 'Basic <base64 of username:password>'")?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err("only HTTP Basic authentication is supported here");
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| "the Basic credentials are not valid base64")?;
    let text = String::from_utf8(decoded).map_err(|_| "the Basic credentials are not UTF-8")?;
    let (user, password) = text
        .split_once(':')
        .ok_or("the Basic credentials must be 'username:password'")?;
    Ok((user.to_string(), password.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn reads_basic() {
        // "nist:pa:ss" — the password may contain colons.
        assert_eq!(
            basic_credentials(&headers("Basic bmlzdDpwYTpzcw==")).unwrap(),
            ("nist".to_string(), "pa:ss".to_string())
        );
        assert!(basic_credentials(&headers("Bearer abc")).is_err());
        assert!(basic_credentials(&headers("Basic !!!")).is_err());
        assert!(basic_credentials(&HeaderMap::new()).is_err());
    }
}
