//! HTTP Basic credentials (RFC 7617) for `POST /hl7`.

use axum::http::HeaderMap;

/// The username and password of an `Authorization: Basic` header, or why not.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Result<(String, String), &'static str> {
    let value = headers.get(axum::http::header::AUTHORIZATION).ok_or(
        "this endpoint needs HTTP Basic credentials (the Authorized User's username and password)",
    )?;
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not readable text")?;
    registry::credentials::parse_basic(value)
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
