//! Who is asking, and may they: a SMART Backend Services bearer token,
//! its Authorized User, and the scope for the resource type at hand.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use registry::AuthorizedUser;

use crate::audited::{Audit, INVALID_TOKEN};
use crate::response::{failure, unavailable};
use crate::BulkDeps;
use registry::audit::Actor;

/// What a route needs of the token's scopes.
#[derive(Clone, Copy, Debug)]
pub enum Need {
    Read(&'static str),
    Search(&'static str),
}

fn challenge(status: StatusCode, code: &str, why: &str, www: &'static str) -> Response {
    let mut r = failure(status, code, why.to_owned());
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(www));
    r
}

/// The caller's Authorized User, or the refusal to send. Names the actor of
/// `audit`: the token's client, or [`INVALID_TOKEN`] for a token that is
/// not valid; no one when no `Authorization` header was sent.
pub async fn caller(
    deps: &BulkDeps,
    headers: &HeaderMap,
    need: Need,
    audit: &mut Audit<'_>,
) -> Result<AuthorizedUser, Response> {
    let unauthorized = |why: &str| {
        challenge(
            StatusCode::UNAUTHORIZED,
            "login",
            why,
            "Bearer realm=\"iisbulk\", error=\"invalid_token\"",
        )
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(challenge(
            StatusCode::UNAUTHORIZED,
            "login",
            "an access token is required: Authorization: Bearer <token> (SMART Backend Services, token endpoint /auth/token)",
            "Bearer realm=\"iisbulk\"",
        ));
    };
    // Until a grant names the client.
    audit.actor(Actor::unauthenticated(INVALID_TOKEN));
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or_else(|| unauthorized("the Authorization header must be 'Bearer <access token>'"))?;
    let now = iz::Clock::now().unix_seconds;
    let grant = match deps.tokens.authorize(token, now).await {
        Ok(Some(g)) => g,
        Ok(None) => return Err(unauthorized("the access token is invalid or has expired")),
        Err(e) => return Err(unavailable(e)),
    };
    audit.actor(Actor::client(&grant.client));
    let scopes = grant.scopes();
    let (allowed, what) = match need {
        Need::Read(t) => (scopes.can_read(t), format!("read {t}")),
        Need::Search(t) => (scopes.can_search(t), format!("search {t}")),
    };
    if !allowed {
        return Err(challenge(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!(
                "the token's scopes ({}) do not allow to {what}",
                grant.scope
            ),
            "Bearer realm=\"iisbulk\", error=\"insufficient_scope\"",
        ));
    }
    match deps.users.get(&grant.au).await {
        Ok(Some(au)) => Ok(au),
        Ok(None) => Err(unauthorized("the token's Authorized User no longer exists")),
        Err(e) => Err(unavailable(e)),
    }
}
