//! Who is asking. Development only: the Authorized User's HL7 credentials
//! (HTTP Basic). SMART Backend Services replaces this.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use registry::{AuthError, AuthorizedUser};

use crate::response::{failure, unavailable};
use crate::BulkDeps;

pub async fn caller(deps: &BulkDeps, headers: &HeaderMap) -> Result<AuthorizedUser, Response> {
    let challenge = |why: &str| {
        let mut r = failure(StatusCode::UNAUTHORIZED, "login", why.to_owned());
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"iisbulk\", charset=\"UTF-8\""),
        );
        r.into_response()
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(challenge(
            "this development API needs HTTP Basic credentials (the Authorized User's HL7 username and password)",
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| challenge("the Authorization header is not readable text"))?;
    let (user, password) = registry::credentials::parse_basic(value).map_err(challenge)?;
    let au = match deps.credentials.authenticate(&user, &password).await {
        Ok(au) => au,
        Err(AuthError::BadCredentials) => {
            return Err(challenge("unknown username or wrong password"))
        }
        Err(AuthError::Store(e)) => return Err(unavailable(e)),
    };
    // Credentials are cached briefly; the Group may be newer than the cache.
    match deps.users.get(&au.id).await {
        Ok(Some(fresh)) => Ok(fresh),
        Ok(None) => Err(challenge("this Authorized User no longer exists")),
        Err(e) => Err(unavailable(e)),
    }
}
