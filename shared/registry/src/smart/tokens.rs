//! The token endpoint's rules and the bearer token check.
//!
//! A token request proves possession of a registered key with a signed,
//! short-lived, never-replayed client assertion (RFC 7523, SMART Backend
//! Services). The access token we hand back is random; only its SHA-256 is
//! stored, with a TTL, so a copy of the table grants nothing.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use store::{Condition, Item, ItemStore, StoreError};

use super::clients::{Client, Clients, JwksSource};
use super::jose::{Alg, Jwk, JwkSet, Jws};
use super::scopes::{self, Scopes};
use crate::audit::{clean as truncated, Actor, ActorKind, AuditEvent, AuditTrail, Outcome};
use crate::json::{decode, encode};
use crate::keys::{self, hex};

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest an assertion may live (SMART: exp no more than 5 minutes ahead).
pub const MAX_ASSERTION_LIFETIME: i64 = 300;
/// Access token lifetime, seconds.
pub const TOKEN_LIFETIME: i64 = 300;
/// What token requests are recorded as in the audit trail.
pub const AUDIT_ACTION: &str = "smart.token";
/// The longest `iss` of an unknown client kept in the audit trail.
const MAX_AUDITED_ISS: usize = 128;
/// The longest refusal reason kept in the audit trail.
const MAX_AUDITED_DETAIL: usize = 300;

/// The form of `POST /auth/token`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
    pub scope: Option<String>,
}

/// An OAuth 2.0 error response (RFC 6749 §5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OAuthError {
    InvalidRequest(String),
    UnsupportedGrantType(String),
    InvalidClient(String),
    InvalidScope(String),
    /// Storage trouble: nothing was decided.
    Unavailable(String),
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::Unavailable(_) => "temporarily_unavailable",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            OAuthError::InvalidClient(_) => 401,
            OAuthError::Unavailable(_) => 503,
            _ => 400,
        }
    }

    pub fn description(&self) -> String {
        match self {
            OAuthError::InvalidRequest(m)
            | OAuthError::UnsupportedGrantType(m)
            | OAuthError::InvalidClient(m)
            | OAuthError::InvalidScope(m) => m.clone(),
            OAuthError::Unavailable(_) => {
                "the authorization server is temporarily unavailable".into()
            }
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::Unavailable(e.to_string())
    }
}

/// A successful token response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Issued {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
}

/// What a valid bearer token carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessGrant {
    pub client: String,
    pub au: String,
    pub scope: String,
    /// Epoch seconds.
    pub expires_at: i64,
}

impl AccessGrant {
    pub fn scopes(&self) -> Scopes {
        Scopes::parse_granted(&self.scope)
    }
}

#[derive(Clone)]
pub struct Tokens {
    store: Arc<dyn ItemStore>,
    clients: Clients,
    jwks: Arc<dyn JwksSource>,
    /// Our token endpoint's absolute URL: the only `aud` accepted.
    token_url: String,
    /// Where every decided token request is recorded.
    audit: AuditTrail,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn bad(m: impl Into<String>) -> OAuthError {
    OAuthError::InvalidClient(m.into())
}

/// What a token request revealed of its caller, for the audit trail.
#[derive(Debug, Default)]
struct Caller {
    /// The assertion's `iss`, once it was read.
    iss: Option<String>,
    /// The Authorized User of the registered client `iss` names.
    au: Option<String>,
}

impl Tokens {
    pub fn new(store: Arc<dyn ItemStore>, jwks: Arc<dyn JwksSource>, token_url: String) -> Self {
        Tokens {
            clients: Clients::new(store.clone()),
            store: store.clone(),
            jwks,
            token_url,
            audit: AuditTrail::new(store),
        }
    }

    /// Records token requests in this trail (e.g. one with the
    /// jurisdiction's retention) instead of the default one.
    pub fn with_audit(mut self, audit: AuditTrail) -> Self {
        self.audit = audit;
        self
    }

    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// Answers a token request at `now` (epoch seconds) from `source` (the
    /// caller's address, when the transport knows it).
    ///
    /// Failed assertions never lock a client out: an assertion is signed,
    /// so failures cannot guess one, and counting them per `client_id` (not
    /// a secret) would let anyone refuse service to a real client. Callers
    /// are rate limited per source address by the transport instead. Every
    /// request that names a client (the assertion's `iss`) is recorded in
    /// the audit trail, granted or refused, with the reason; the assertion
    /// and the token are not.
    pub async fn issue(
        &self,
        req: &TokenRequest,
        now: i64,
        source: Option<&str>,
    ) -> Result<Issued, OAuthError> {
        let mut caller = Caller::default();
        let result = self.decide(req, now, &mut caller).await;
        self.record(&caller, &result, now, source).await;
        result
    }

    /// One token request's audit event: under the client when it is
    /// registered, else under the `iss` it gave; nothing when no assertion
    /// named a client or when storage failed (nothing was decided).
    async fn record(
        &self,
        caller: &Caller,
        result: &Result<Issued, OAuthError>,
        now: i64,
        source: Option<&str>,
    ) {
        let Some(iss) = &caller.iss else {
            return;
        };
        let (outcome, detail) = match result {
            Ok(issued) => (Outcome::Success, format!("granted {}", issued.scope)),
            Err(OAuthError::Unavailable(_)) => return,
            Err(e) => (
                Outcome::Failure,
                truncated(
                    &format!("{}: {}", e.code(), e.description()),
                    MAX_AUDITED_DETAIL,
                ),
            ),
        };
        let actor = match &caller.au {
            Some(_) => Actor {
                kind: ActorKind::Client,
                id: iss.clone(),
            },
            None => Actor {
                kind: ActorKind::Unauthenticated,
                id: truncated(iss, MAX_AUDITED_ISS),
            },
        };
        let mut event =
            AuditEvent::new(actor, AUDIT_ACTION, outcome, now.saturating_mul(1000)).detail(detail);
        if let Some(au) = &caller.au {
            event = event.subject(format!("AuthorizedUser/{au}"));
        }
        event.source = source.map(str::to_owned);
        if let Err(e) = self.audit.record(&event).await {
            tracing::warn!(error = %e, action = AUDIT_ACTION, "audit event not recorded");
        }
    }

    async fn decide(
        &self,
        req: &TokenRequest,
        now: i64,
        caller: &mut Caller,
    ) -> Result<Issued, OAuthError> {
        match req.grant_type.as_deref() {
            Some("client_credentials") => {}
            None | Some("") => {
                return Err(OAuthError::InvalidRequest(
                    "grant_type is required (client_credentials)".into(),
                ))
            }
            Some(other) => {
                return Err(OAuthError::UnsupportedGrantType(format!(
                    "grant_type {other:?} is not supported; use client_credentials"
                )))
            }
        }
        if req.client_assertion_type.as_deref() != Some(ASSERTION_TYPE) {
            return Err(OAuthError::InvalidRequest(format!(
                "client_assertion_type must be {ASSERTION_TYPE}"
            )));
        }
        let assertion = req
            .client_assertion
            .as_deref()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| OAuthError::InvalidRequest("client_assertion is required".into()))?;
        let jws = Jws::decode(assertion).map_err(bad)?;
        let client_id = jws
            .claim_str("iss")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("the assertion has no iss (the client_id)"))?
            .to_owned();
        caller.iss = Some(client_id.clone());
        let client = self
            .clients
            .get(&client_id)
            .await?
            .ok_or_else(|| bad("unknown client"))?;
        caller.au = Some(client.au.clone());
        self.authenticate(&client, &jws, now).await?;
        let granted = scopes::grant(req.scope.as_deref().unwrap_or(""), &client.allowed())
            .map_err(OAuthError::InvalidScope)?;
        let mut raw = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut raw);
        let access_token = URL_SAFE_NO_PAD.encode(raw);
        let grant = AccessGrant {
            client: client.id.clone(),
            au: client.au.clone(),
            scope: granted.as_string(),
            expires_at: now + TOKEN_LIFETIME,
        };
        self.store
            .put(
                Item::new(
                    keys::access_token(&token_hash(&access_token)),
                    encode(&grant)?,
                )
                .with_expiry(grant.expires_at),
                Condition::Absent,
            )
            .await?;
        Ok(Issued {
            access_token,
            token_type: "bearer",
            expires_in: TOKEN_LIFETIME,
            scope: grant.scope,
        })
    }

    /// Every rule of the assertion, in the order that reveals least.
    async fn authenticate(&self, client: &Client, jws: &Jws, now: i64) -> Result<(), OAuthError> {
        let alg_name = jws.header_str("alg").unwrap_or("");
        let alg = Alg::parse(alg_name).ok_or_else(|| {
            bad(format!(
                "alg {alg_name:?} is not accepted; sign with RS384 or ES384"
            ))
        })?;
        let kid = jws
            .header_str("kid")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| bad("the assertion header has no kid"))?;
        if jws.claim_str("sub") != Some(client.id.as_str()) {
            return Err(bad("sub must equal iss (the client_id)"));
        }
        if let Some(jku) = jws.header.get("jku") {
            if jku.as_str().is_none() || jku.as_str() != client.jwks_url.as_deref() {
                return Err(bad(
                    "jku does not match the JWKS URL registered for this client",
                ));
            }
        }
        let keys = self.keys_of(client).await?;
        let matching: Vec<&Jwk> = keys
            .keys
            .iter()
            .filter(|k| k.kid.as_deref() == Some(kid))
            .collect();
        let [key] = matching.as_slice() else {
            return Err(bad(if matching.is_empty() {
                format!("no registered key has kid {kid:?}")
            } else {
                format!("more than one registered key has kid {kid:?}")
            }));
        };
        if key.kty != alg.kty() {
            return Err(bad(format!(
                "key {kid:?} is {} but alg is {}",
                key.kty,
                alg.as_str()
            )));
        }
        if !jws.verify(alg, key) {
            return Err(bad("the assertion's signature does not verify"));
        }
        let aud_ok = match jws.claims.get("aud") {
            Some(Value::String(a)) => *a == self.token_url,
            Some(Value::Array(list)) => list
                .iter()
                .any(|a| a.as_str() == Some(self.token_url.as_str())),
            _ => false,
        };
        if !aud_ok {
            return Err(bad(format!(
                "aud must be this token endpoint, {}",
                self.token_url
            )));
        }
        let exp = jws
            .claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("the assertion has no numeric exp"))?;
        if exp <= now {
            return Err(bad("the assertion has expired"));
        }
        if exp > now + MAX_ASSERTION_LIFETIME {
            return Err(bad("exp is more than 5 minutes ahead"));
        }
        let jti = jws
            .claim_str("jti")
            .filter(|j| !j.is_empty())
            .ok_or_else(|| bad("the assertion has no jti"))?;
        // Remembered until the assertion could no longer be used anyway.
        match self
            .store
            .put(
                Item::new(keys::assertion_id(&client.id, jti), Vec::new()).with_expiry(exp),
                Condition::Absent,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::ConditionFailed { .. }) => {
                Err(bad("this assertion (jti) was already used"))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn keys_of(&self, client: &Client) -> Result<JwkSet, OAuthError> {
        if let Some(set) = &client.jwks {
            return Ok(set.clone());
        }
        let url = client
            .jwks_url
            .as_deref()
            .ok_or_else(|| bad("the client has no keys registered"))?;
        let text = self
            .jwks
            .fetch(url)
            .await
            .map_err(|e| bad(format!("the registered JWKS URL could not be read: {e}")))?;
        JwkSet::parse(&text).map_err(|e| {
            bad(format!(
                "the registered JWKS URL serves no usable JWKS: {e}"
            ))
        })
    }

    /// The grant behind a bearer token, if it is ours, unexpired and its
    /// client still registered.
    pub async fn authorize(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<AccessGrant>, StoreError> {
        if token.is_empty() || token.len() > 512 {
            return Ok(None);
        }
        let Some(item) = self
            .store
            .get(&keys::access_token(&token_hash(token)))
            .await?
        else {
            return Ok(None);
        };
        let grant: AccessGrant = decode(&item, "access token")?;
        if grant.expires_at <= now || self.clients.get(&grant.client).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(grant))
    }
}

#[cfg(test)]
mod tests {
    use super::truncated;

    #[test]
    fn audited_text_is_one_short_line_cut_at_a_character() {
        assert_eq!(
            truncated("invalid_client: expired", 300),
            "invalid_client: expired"
        );
        assert_eq!(truncated("a\r\nb\u{0}c", 300), "a  b c");
        // "é" is two bytes: never split.
        assert_eq!(truncated("ééé", 5), "éé…");
        assert_eq!(truncated(&"x".repeat(1000), 128).chars().count(), 129);
    }
}
